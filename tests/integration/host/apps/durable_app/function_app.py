# mypy: disable-error-code="untyped-decorator"
"""Sample Durable app for the local host's tests: one function per feature the host supports."""

import json
import os
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import azure.durable_functions as df
import azure.functions as func

app = df.DFApp(http_auth_level=func.AuthLevel.FUNCTION)


@app.route(route="orchestrators/{name}/{instance_id?}", methods=["POST"])
@app.durable_client_input(client_name="client")
async def http_start(
    req: func.HttpRequest, client: df.DurableOrchestrationClient
) -> func.HttpResponse:
    body = req.get_body()
    payload = json.loads(body) if body else None
    instance_id = await client.start_new(
        req.route_params["name"], req.route_params.get("instance_id"), payload
    )
    response: func.HttpResponse = client.create_check_status_response(req, instance_id)
    return response


@app.route(route="status/{instance_id}", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@app.durable_client_input(client_name="client")
async def http_status(
    req: func.HttpRequest, client: df.DurableOrchestrationClient
) -> func.HttpResponse:
    status = await client.get_status(req.route_params["instance_id"], show_history=True)
    if not status:
        return func.HttpResponse(status_code=404)
    return func.HttpResponse(json.dumps(status.to_json(), default=str), mimetype="application/json")


@app.route(route="events/{instance_id}/{name}", methods=["POST"])
@app.durable_client_input(client_name="client")
async def http_raise(
    req: func.HttpRequest, client: df.DurableOrchestrationClient
) -> func.HttpResponse:
    await client.raise_event(
        req.route_params["instance_id"], req.route_params["name"], req.get_json()
    )
    return func.HttpResponse(status_code=202)


@app.route(route="counters/{key}/{op}", methods=["POST"])
@app.durable_client_input(client_name="client")
async def http_signal(
    req: func.HttpRequest, client: df.DurableOrchestrationClient
) -> func.HttpResponse:
    body = req.get_body()
    await client.signal_entity(
        df.EntityId("Counter", req.route_params["key"]),
        req.route_params["op"],
        json.loads(body) if body else None,
    )
    return func.HttpResponse(status_code=202)


@app.route(route="counters/{key}", methods=["GET"])
@app.durable_client_input(client_name="client")
async def http_read(
    req: func.HttpRequest, client: df.DurableOrchestrationClient
) -> func.HttpResponse:
    state = await client.read_entity_state(df.EntityId("Counter", req.route_params["key"]))
    if not state.entity_exists:
        return func.HttpResponse(status_code=404)
    return func.HttpResponse(json.dumps(state.entity_state), mimetype="application/json")


@app.activity_trigger(input_name="name")
def hello(name: str) -> str:
    return f"Hello {name}!"


@app.activity_trigger(input_name="payload")
def slow_step(payload: dict[str, Any]) -> int:
    """Sleeps, then appends a line to a log file: lets tests count executions.

    With `rendezvous` (a directory) and `count`, it first leaves a mark there and waits until
    `count` steps have left theirs: steps that run one after another never all meet, and the
    first one's wait ends after 10 s with a failure (a liveness limit, not a measure of speed).
    """
    rendezvous = payload.get("rendezvous")
    if rendezvous:
        place = Path(rendezvous)
        (place / f"step-{payload['step']}").touch()
        deadline = time.monotonic() + 10
        while len(list(place.iterdir())) < int(payload["count"]):
            if time.monotonic() > deadline:
                raise RuntimeError(f"step {payload['step']} met no other step: not parallel")
            time.sleep(0.02)
    time.sleep(payload.get("sleep", 0))
    log = payload.get("log")
    if log:
        with open(log, "a", encoding="utf-8") as handle:
            handle.write(f"{payload['step']}\n")
    return int(payload["step"]) * 10


@app.activity_trigger(input_name="payload")
def flaky(payload: dict[str, Any]) -> str:
    """Fails until it has been called `failures` times for this key (counted in a file)."""
    marker = Path(payload["dir"]) / f"flaky-{payload['key']}"
    calls = int(marker.read_text()) if marker.exists() else 0
    marker.write_text(str(calls + 1))
    if calls < payload["failures"]:
        raise ValueError(f"attempt {calls + 1} failed")
    return f"ok after {calls + 1}"


@app.activity_trigger(input_name="value")
def boom(value: str) -> str:
    raise RuntimeError(f"boom: {value}")


@app.orchestration_trigger(context_name="context")
def chaining(context: df.DurableOrchestrationContext):
    x = yield context.call_activity("hello", "Tokyo")
    y = yield context.call_activity("hello", "Seattle")
    z = yield context.call_activity("hello", "London")
    return [x, y, z]


@app.orchestration_trigger(context_name="context")
def fan_out(context: df.DurableOrchestrationContext):
    count = context.get_input() or 5
    tasks = [context.call_activity("hello", str(i)) for i in range(count)]
    results = yield context.task_all(tasks)
    return results


@app.orchestration_trigger(context_name="context")
def fan_out_slow(context: df.DurableOrchestrationContext):
    params = context.get_input()
    tasks = [
        context.call_activity("slow_step", {**params, "step": i}) for i in range(params["count"])
    ]
    results = yield context.task_all(tasks)
    return results


@app.orchestration_trigger(context_name="context")
def retrying(context: df.DurableOrchestrationContext):
    options = df.RetryOptions(first_retry_interval_in_milliseconds=50, max_number_of_attempts=3)
    params = context.get_input()
    result = yield context.call_activity_with_retry("flaky", options, params)
    return result


@app.orchestration_trigger(context_name="context")
def retrying_exhausted(context: df.DurableOrchestrationContext):
    options = df.RetryOptions(first_retry_interval_in_milliseconds=20, max_number_of_attempts=2)
    params = context.get_input()
    try:
        yield context.call_activity_with_retry("flaky", options, params)
    except Exception as error:
        after = yield context.call_activity("hello", "after")
        return {"caught": str(error).splitlines()[0], "after": after}
    return "unexpected"


@app.orchestration_trigger(context_name="context")
def flaky_child(context: df.DurableOrchestrationContext):
    result = yield context.call_activity("flaky", context.get_input())
    return result


@app.orchestration_trigger(context_name="context")
def retrying_child(context: df.DurableOrchestrationContext):
    options = df.RetryOptions(first_retry_interval_in_milliseconds=30, max_number_of_attempts=3)
    result = yield context.call_sub_orchestrator_with_retry(
        "flaky_child", options, context.get_input()
    )
    return result


@app.orchestration_trigger(context_name="context")
def timer_then_activity(context: df.DurableOrchestrationContext):
    start = context.current_utc_datetime
    yield context.create_timer(start + timedelta(milliseconds=300))
    after = context.current_utc_datetime
    greeting = yield context.call_activity("hello", "timer")
    return {"waited_ms": (after - start).total_seconds() * 1000, "greeting": greeting}


@app.orchestration_trigger(context_name="context")
def approval(context: df.DurableOrchestrationContext):
    context.set_custom_status("waiting")
    first = yield context.wait_for_external_event("Approval")
    context.set_custom_status({"approved_by": first})
    second = yield context.wait_for_external_event("Second")
    return [first, second]


@app.orchestration_trigger(context_name="context")
def event_or_timeout(context: df.DurableOrchestrationContext):
    deadline = context.current_utc_datetime + timedelta(milliseconds=context.get_input())
    timeout = context.create_timer(deadline)
    event = context.wait_for_external_event("Go")
    winner = yield context.task_any([event, timeout])
    if winner == event:
        timeout.cancel()
        return {"event": event.result}
    return "timed out"


@app.orchestration_trigger(context_name="context")
def parent(context: df.DurableOrchestrationContext):
    children = [
        context.call_sub_orchestrator("chaining"),
        context.call_sub_orchestrator("fan_out", 3, f"{context.instance_id}-child"),
    ]
    results = yield context.task_all(children)
    return results


@app.orchestration_trigger(context_name="context")
def counter_loop(context: df.DurableOrchestrationContext):
    state = context.get_input() or {"n": 0, "seen": []}
    if state["n"] >= 3:
        return state
    item = yield context.wait_for_external_event("Item")
    state = {"n": state["n"] + 1, "seen": state["seen"] + [item]}
    context.continue_as_new(state)
    return None


@app.orchestration_trigger(context_name="context")
def custom_status(context: df.DurableOrchestrationContext):
    for step in range(3):
        context.set_custom_status({"step": step})
        yield context.call_activity("hello", str(step))
    return "done"


@app.orchestration_trigger(context_name="context")
def failing_activity(context: df.DurableOrchestrationContext):
    result = yield context.call_activity("boom", "x")
    return result


@app.orchestration_trigger(context_name="context")
def failing_orchestrator(context: df.DurableOrchestrationContext):
    yield context.call_activity("hello", "before")
    raise ValueError("orchestrator gave up")


@app.orchestration_trigger(context_name="context")
def long_chain(context: df.DurableOrchestrationContext):
    params = context.get_input()
    results = []
    for step in range(params["steps"]):
        context.set_custom_status({"step": step})
        results.append((yield context.call_activity("slow_step", {**params, "step": step})))
        if step == 1:
            yield context.create_timer(context.current_utc_datetime + timedelta(milliseconds=200))
    return results


@app.orchestration_trigger(context_name="context")
def entity_user(context: df.DurableOrchestrationContext):
    entity = df.EntityId("Counter", context.get_input())
    context.signal_entity(entity, "add", 5)
    value = yield context.call_entity(entity, "add", 2)
    current = yield context.call_entity(entity, "get")
    try:
        yield context.call_entity(entity, "fail")
    except Exception as error:
        return {"after_add": value, "current": current, "error": str(error)}
    return "unexpected"


@app.entity_trigger(context_name="context")
def Counter(context: df.DurableEntityContext) -> None:
    value = context.get_state(lambda: 0)
    operation = context.operation_name
    if operation == "add":
        value += context.get_input()
        context.set_state(value)
        context.set_result(value)
    elif operation == "get":
        context.set_result(value)
    elif operation == "reset":
        context.set_state(0)
    elif operation == "fail":
        raise ValueError("counter refused")
    elif operation == "delete":
        context.destruct_on_exit()


@app.timer_trigger(schedule="%TICK_SCHEDULE%", arg_name="timer", run_on_startup=False)
def ticker(timer: func.TimerRequest) -> None:
    log = os.environ.get("TICK_LOG")
    if log:
        with open(log, "a", encoding="utf-8") as handle:
            handle.write(f"{'past' if timer.past_due else 'tick'}\n")


@app.timer_trigger(schedule="%TICK_SCHEDULE%", arg_name="timer")
@app.durable_client_input(client_name="client")
async def timer_starter(timer: func.TimerRequest, client: df.DurableOrchestrationClient) -> None:
    status = await client.get_status("from-timer")
    if not status or status.runtime_status.name not in ("Running", "Pending"):
        await client.start_new("chaining", "from-timer")

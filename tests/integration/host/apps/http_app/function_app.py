# mypy: disable-error-code="untyped-decorator"
"""Sample plain FunctionApp (no Durable) for the local host's HTTP and timer trigger tests."""

import asyncio
import json
import os
import time

import azure.functions as func

app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)


@app.route(route="hello/{name:alpha}", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def hello(req: func.HttpRequest) -> func.HttpResponse:
    greeting = req.params.get("greeting", "Hello")
    return func.HttpResponse(f"{greeting} {req.route_params['name']}")


@app.route(route="items/{id:int}", methods=["GET", "DELETE"])
def item(req: func.HttpRequest) -> func.HttpResponse:
    body = {"id": int(req.route_params["id"]), "method": req.method}
    return func.HttpResponse(json.dumps(body), mimetype="application/json")


@app.route(route="items/special", methods=["GET"])
def special_item(req: func.HttpRequest) -> str:
    return "special"


@app.route(route="files/{*path}", methods=["GET"])
def files(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse(req.route_params.get("path", "<root>"))


@app.route(route="optional/{value?}")
def optional(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse(req.route_params.get("value", "none"))


@app.route(route="echo", methods=["POST"])
def echo(req: func.HttpRequest) -> func.HttpResponse:
    body = {
        "json": req.get_json(),
        "header": req.headers.get("x-test"),
        "url": req.url,
        "method": req.method,
    }
    return func.HttpResponse(
        json.dumps(body), status_code=201, headers={"X-Echo": "yes"}, mimetype="application/json"
    )


@app.route(methods=["GET"])
def ping(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
    return func.HttpResponse(f"{context.function_name}:{len(context.invocation_id)}")


@app.route(route="fail")
def fail(req: func.HttpRequest) -> func.HttpResponse:
    raise RuntimeError("this function always fails")


@app.route(route="admin-only", auth_level=func.AuthLevel.ADMIN)
def admin_only(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse("admin")


@app.route(route="async", auth_level=func.AuthLevel.ANONYMOUS)
async def async_handler(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse("from the loop", status_code=200)


@app.route(route="linger", auth_level=func.AuthLevel.ANONYMOUS)
async def linger(req: func.HttpRequest) -> func.HttpResponse:
    """Answers only after ``seconds``: a request still open when the host stops."""
    await asyncio.sleep(float(req.params.get("seconds", "0")))
    return func.HttpResponse("lingered")


@app.route(route="block", auth_level=func.AuthLevel.ANONYMOUS)
async def block_the_loop(req: func.HttpRequest) -> func.HttpResponse:
    """Blocks the host's event loop for ``seconds`` (a blocking call in an async function)."""
    time.sleep(float(req.params.get("seconds", "0")))  # noqa: ASYNC251 - the point of it
    return func.HttpResponse("unblocked")


@app.timer_trigger(schedule="%FAST_SCHEDULE%", arg_name="timer", run_on_startup=True)
def fast_timer(timer: func.TimerRequest) -> None:
    _record("fast", timer)


@app.timer_trigger(schedule="0 0 0 1 1 *", arg_name="timer", use_monitor=True)
def yearly_timer(timer: func.TimerRequest) -> None:
    _record("yearly", timer)


def _record(name: str, timer: func.TimerRequest) -> None:
    log = os.environ.get("TIMER_LOG")
    if log:
        with open(log, "a", encoding="utf-8") as handle:
            handle.write(f"{name} {'past' if timer.past_due else 'on-time'}\n")

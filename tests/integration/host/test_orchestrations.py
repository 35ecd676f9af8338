"""Orchestrations on the local host: results and histories as the protocol note prescribes."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

from localdev.host.durable.history import parse_time
from tests.support.host_apps import HostClient

STARTED, COMPLETED_EXEC, FAILED_EXEC = 0, 1, 2
SCHEDULED, TASK_DONE, TASK_FAILED = 4, 5, 6
SUB_CREATED, SUB_DONE = 7, 8
TIMER_CREATED, TIMER_FIRED = 10, 11
EPISODE_START, EPISODE_END = 12, 13
EVENT_SENT, EVENT_RAISED = 14, 15


def types(history: list[dict[str, Any]]) -> list[int]:
    return [event["EventType"] for event in history]


def episodes(history: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """The history split into episodes (each from OrchestratorStarted to OrchestratorCompleted)."""
    result: list[list[dict[str, Any]]] = []
    for event in history:
        if event["EventType"] == EPISODE_START:
            result.append([])
        result[-1].append(event)
    return result


async def test_chaining_history_matches_the_protocol(durable_client: HostClient) -> None:
    instance_id = await durable_client.start("chaining")
    status = await durable_client.wait(instance_id)

    assert status["runtimeStatus"] == "Completed"
    assert status["output"] == ["Hello Tokyo!", "Hello Seattle!", "Hello London!"]
    history = durable_client.history(instance_id)
    assert types(history) == [
        *(EPISODE_START, STARTED, SCHEDULED, EPISODE_END),
        *(EPISODE_START, TASK_DONE, SCHEDULED, EPISODE_END),
        *(EPISODE_START, TASK_DONE, SCHEDULED, EPISODE_END),
        *(EPISODE_START, TASK_DONE, COMPLETED_EXEC, EPISODE_END),
    ]
    scheduled = [e for e in history if e["EventType"] == SCHEDULED]
    assert [(e["EventId"], e["Name"], e["Input"]) for e in scheduled] == [
        (0, "hello", '"Tokyo"'),
        (1, "hello", '"Seattle"'),
        (2, "hello", '"London"'),
    ]
    completed = [e for e in history if e["EventType"] == TASK_DONE]
    assert [(e["TaskScheduledId"], e["Result"]) for e in completed] == [
        (0, '"Hello Tokyo!"'),
        (1, '"Hello Seattle!"'),
        (2, '"Hello London!"'),
    ]
    assert history[1]["Name"] == "chaining"
    assert "Version" in history[1]
    starts = [parse_time(e["Timestamp"]) for e in history if e["EventType"] == EPISODE_START]
    assert starts == sorted(starts)
    assert len(set(starts)) == len(starts)


async def test_fan_out_schedules_all_then_completes_in_order(durable_client: HostClient) -> None:
    instance_id = await durable_client.start("fan_out", 6)
    status = await durable_client.wait(instance_id)

    assert status["output"] == [f"Hello {i}!" for i in range(6)]
    first = episodes(durable_client.history(instance_id))[0]
    assert [e["EventId"] for e in first if e["EventType"] == SCHEDULED] == list(range(6))
    done = [
        e["TaskScheduledId"] for e in durable_client.history(instance_id) if e["EventType"] == 5
    ]
    assert sorted(done) == list(range(6))


async def test_fan_out_activities_run_in_parallel(
    durable_client: HostClient, tmp_path: Path
) -> None:
    # Each step waits at a rendezvous until all six are there: only steps that run at the same
    # time meet, so the orchestration completes only if the host ran them in parallel.
    rendezvous = tmp_path / "rendezvous"
    rendezvous.mkdir()
    instance_id = await durable_client.start(
        "fan_out_slow", {"count": 6, "rendezvous": str(rendezvous)}
    )
    status = await durable_client.wait(instance_id)

    assert status["runtimeStatus"] == "Completed", status.get("output")
    assert status["output"] == [i * 10 for i in range(6)]


async def test_retry_takes_timer_episodes_between_attempts(
    durable_client: HostClient, tmp_path: Path
) -> None:
    params = {"dir": str(tmp_path), "key": "r1", "failures": 2}
    instance_id = await durable_client.start("retrying", params)
    status = await durable_client.wait(instance_id)

    assert status["runtimeStatus"] == "Completed"
    assert status["output"] == "ok after 3"
    history = durable_client.history(instance_id)
    assert types(history) == [
        *(EPISODE_START, STARTED, SCHEDULED, EPISODE_END),
        *(EPISODE_START, TASK_FAILED, TIMER_CREATED, EPISODE_END),
        *(EPISODE_START, TIMER_FIRED, SCHEDULED, EPISODE_END),
        *(EPISODE_START, TASK_FAILED, TIMER_CREATED, EPISODE_END),
        *(EPISODE_START, TIMER_FIRED, SCHEDULED, EPISODE_END),
        *(EPISODE_START, TASK_DONE, COMPLETED_EXEC, EPISODE_END),
    ]
    ids = [
        e.get("TaskScheduledId", e.get("TimerId", e["EventId"]))
        for e in history
        if e["EventType"] in (SCHEDULED, TASK_FAILED, TIMER_CREATED, TIMER_FIRED, TASK_DONE)
    ]
    assert ids == [0, 0, 1, 1, 2, 2, 3, 3, 4, 4]
    for timer in (e for e in history if e["EventType"] == TIMER_CREATED):
        delay = parse_time(timer["FireAt"]) - parse_time(timer["Timestamp"])
        assert delay.total_seconds() >= 0.05
    failure = next(e for e in history if e["EventType"] == TASK_FAILED)
    assert failure["Reason"] == "Activity function 'flaky' failed: ValueError: attempt 1 failed"


async def test_exhausted_retry_surfaces_after_one_more_timer(
    durable_client: HostClient, tmp_path: Path
) -> None:
    params = {"dir": str(tmp_path), "key": "r2", "failures": 9}
    instance_id = await durable_client.start("retrying_exhausted", params)
    status = await durable_client.wait(instance_id)

    assert status["runtimeStatus"] == "Completed"
    assert status["output"] == {
        "caught": "Activity function 'flaky' failed: ValueError: attempt 2 failed ",
        "after": "Hello after!",
    }
    history = durable_client.history(instance_id)
    timers = [e for e in history if e["EventType"] == TIMER_CREATED]
    assert [t["EventId"] for t in timers] == [1, 3]
    last_delay = parse_time(timers[1]["FireAt"]) - parse_time(timers[1]["Timestamp"])
    assert last_delay.total_seconds() == 0
    after = [e for e in history if e["EventType"] == SCHEDULED][-1]
    assert (after["EventId"], after["Name"]) == (4, "hello")
    assert (tmp_path / "flaky-r2").read_text() == "2"


async def test_sub_orchestration_retry_starts_a_new_child_per_attempt(
    durable_client: HostClient, tmp_path: Path
) -> None:
    params = {"dir": str(tmp_path), "key": "child", "failures": 1}
    instance_id = await durable_client.start("retrying_child", params, instance_id="sub-retry")
    status = await durable_client.wait(instance_id)

    assert status["output"] == "ok after 2"
    history = durable_client.history(instance_id)
    assert [e["EventType"] for e in history if e["EventType"] not in (12, 13)] == [
        STARTED,
        SUB_CREATED,
        9,
        TIMER_CREATED,
        TIMER_FIRED,
        SUB_CREATED,
        SUB_DONE,
        COMPLETED_EXEC,
    ]
    children = [e["InstanceId"] for e in history if e["EventType"] == SUB_CREATED]
    assert children == ["sub-retry:0", "sub-retry:2"]
    assert (await durable_client.status("sub-retry:0"))[1]["runtimeStatus"] == "Failed"
    assert (await durable_client.status("sub-retry:2"))[1]["runtimeStatus"] == "Completed"


async def test_durable_timer_waits_and_moves_the_clock(durable_client: HostClient) -> None:
    instance_id = await durable_client.start("timer_then_activity")
    status = await durable_client.wait(instance_id)

    assert status["output"]["greeting"] == "Hello timer!"
    assert status["output"]["waited_ms"] >= 300
    history = durable_client.history(instance_id)
    created = next(e for e in history if e["EventType"] == TIMER_CREATED)
    fired = next(e for e in history if e["EventType"] == TIMER_FIRED)
    assert (created["EventId"], fired["TimerId"]) == (0, 0)
    assert fired["FireAt"] == created["FireAt"]


async def test_external_events_raised_late(durable_client: HostClient) -> None:
    instance_id = await durable_client.start("approval")
    await durable_client.wait_for(instance_id, lambda s: s["customStatus"] == "waiting")
    assert await durable_client.raise_event(instance_id, "Approval", "alice") == 202
    await durable_client.wait_for(
        instance_id, lambda s: s["customStatus"] == {"approved_by": "alice"}
    )
    assert await durable_client.raise_event(instance_id, "Second", {"n": 2}) == 202
    status = await durable_client.wait(instance_id)

    assert status["output"] == ["alice", {"n": 2}]
    raised = [e for e in durable_client.history(instance_id) if e["EventType"] == EVENT_RAISED]
    assert [(e["Name"], e["Input"]) for e in raised] == [
        ("Approval", '"alice"'),
        ("Second", '{"n": 2}'),
    ]


async def test_external_events_raised_early_are_buffered(durable_client: HostClient) -> None:
    instance_id = await durable_client.start("approval")
    # "Second" arrives before anyone waits for it, possibly before the first episode.
    assert await durable_client.raise_event(instance_id, "Second", "early") == 202
    await durable_client.wait_for(instance_id, lambda s: s["customStatus"] == "waiting")
    assert await durable_client.raise_event(instance_id, "Approval", "bob") == 202
    status = await durable_client.wait(instance_id)

    assert status["output"] == ["bob", "early"]


async def test_task_any_with_timeout(durable_client: HostClient) -> None:
    fast = await durable_client.start("event_or_timeout", 50)
    slow = await durable_client.start("event_or_timeout", 10_000)
    await durable_client.wait_for(slow, lambda s: s["runtimeStatus"] == "Running")
    await durable_client.raise_event(slow, "Go", "now")

    assert (await durable_client.wait(fast))["output"] == "timed out"
    assert (await durable_client.wait(slow))["output"] == {"event": "now"}


async def test_sub_orchestrations(durable_client: HostClient) -> None:
    instance_id = await durable_client.start("parent", instance_id="family")
    status = await durable_client.wait(instance_id)

    assert status["output"] == [
        ["Hello Tokyo!", "Hello Seattle!", "Hello London!"],
        ["Hello 0!", "Hello 1!", "Hello 2!"],
    ]
    history = durable_client.history(instance_id)
    created = [e for e in history if e["EventType"] == SUB_CREATED]
    assert [(e["EventId"], e["Name"], e["InstanceId"]) for e in created] == [
        (0, "chaining", "family:0"),
        (1, "fan_out", "family-child"),
    ]
    done = {e["TaskScheduledId"]: e["Result"] for e in history if e["EventType"] == SUB_DONE}
    assert done[1] == '["Hello 0!", "Hello 1!", "Hello 2!"]'
    for child in ("family:0", "family-child"):
        code, child_status = await durable_client.status(child)
        assert code == 200
        assert child_status["runtimeStatus"] == "Completed"


async def test_continue_as_new_drops_unconsumed_events(durable_client: HostClient) -> None:
    instance_id = await durable_client.start("counter_loop")
    await durable_client.wait_for(instance_id, lambda s: s["runtimeStatus"] == "Running")
    client = durable_client.host.api
    assert client is not None
    # Suspended, the instance queues both events; on resume they arrive in one episode: the
    # first is consumed, the second is left unconsumed when the orchestration continues as new.
    engine = durable_client.host.engine
    assert engine is not None
    engine.suspend(instance_id, "batch")
    await durable_client.wait_for(instance_id, lambda s: s["runtimeStatus"] == "Suspended")
    await durable_client.raise_event(instance_id, "Item", "a")
    await durable_client.raise_event(instance_id, "Item", "b")
    engine.resume(instance_id, "go")
    await durable_client.wait_for(instance_id, lambda s: (s["input"] or {}).get("n") == 1)
    await durable_client.wait_for(instance_id, lambda s: s["runtimeStatus"] == "Running")
    await durable_client.raise_event(instance_id, "Item", "c")
    await durable_client.wait_for(instance_id, lambda s: (s["input"] or {}).get("n") == 2)
    await durable_client.wait_for(instance_id, lambda s: s["runtimeStatus"] == "Running")
    await durable_client.raise_event(instance_id, "Item", "d")
    status = await durable_client.wait(instance_id)

    assert status["output"] == {"n": 3, "seen": ["a", "c", "d"]}
    history = durable_client.history(instance_id)
    assert types(history) == [EPISODE_START, STARTED, COMPLETED_EXEC, EPISODE_END]
    assert history[1]["Input"] == '{"n": 3, "seen": ["a", "c", "d"]}'


async def test_custom_status_follows_the_orchestration(durable_client: HostClient) -> None:
    instance_id = await durable_client.start("custom_status")
    status = await durable_client.wait(instance_id)

    assert status["output"] == "done"
    assert status["customStatus"] == {"step": 2}


async def test_failed_activity_fails_the_orchestration(durable_client: HostClient) -> None:
    instance_id = await durable_client.start("failing_activity")
    status = await durable_client.wait(instance_id)

    assert status["runtimeStatus"] == "Failed"
    assert status["output"].startswith(
        "Orchestrator function 'failing_activity' failed: "
        "Activity function 'boom' failed: RuntimeError: boom: x"
    )
    failed = next(e for e in durable_client.history(instance_id) if e["EventType"] == TASK_FAILED)
    assert failed["TaskScheduledId"] == 0
    assert durable_client.history(instance_id)[-2]["EventType"] == FAILED_EXEC


async def test_orchestrator_exception_fails_with_its_message(durable_client: HostClient) -> None:
    instance_id = await durable_client.start("failing_orchestrator")
    status = await durable_client.wait(instance_id)

    assert status["runtimeStatus"] == "Failed"
    assert status["output"] == (
        "Orchestrator function 'failing_orchestrator' failed: orchestrator gave up"
    )


async def test_status_endpoint_codes_and_times(durable_client: HostClient) -> None:
    code, _ = await durable_client.status("no-such-instance")
    assert code == 404

    instance_id = await durable_client.start("approval")
    await durable_client.wait_for(instance_id, lambda s: s["customStatus"] == "waiting")
    url = f"{durable_client.base}/runtime/webhooks/durabletask/instances/{instance_id}"
    async with durable_client.session.get(url) as response:
        assert response.status == 202
        assert response.headers["Location"].startswith(url)
        assert response.headers["Retry-After"] == "10"
        running = await response.json()
    assert running["runtimeStatus"] == "Running"
    for field in ("createdTime", "lastUpdatedTime"):
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", running[field])

    await durable_client.raise_event(instance_id, "Approval", 1)
    await durable_client.raise_event(instance_id, "Second", 2)
    await durable_client.wait(instance_id)
    async with durable_client.session.get(url, params={"showHistory": "true"}) as response:
        assert response.status == 200
        done = await response.json()
    assert done["output"] == [1, 2]
    assert [e["EventType"] for e in done["historyEvents"]][:2] == [
        "ExecutionStarted",
        "EventRaised",
    ]


async def test_events_to_unknown_or_finished_instances(durable_client: HostClient) -> None:
    assert await durable_client.raise_event("missing", "Approval", 1) == 500
    instance_id = await durable_client.start("chaining")
    await durable_client.wait(instance_id)
    url = f"{durable_client.base}/runtime/webhooks/durabletask/instances"
    async with durable_client.session.post(f"{url}/missing/raiseEvent/X", json=1) as response:
        assert response.status == 404
    async with durable_client.session.post(f"{url}/{instance_id}/raiseEvent/X", json=1) as r:
        assert r.status == 410


async def test_instances_run_concurrently_without_interference(durable_client: HostClient) -> None:
    ids = await asyncio.gather(*(durable_client.start("chaining") for _ in range(8)))
    statuses = await asyncio.gather(*(durable_client.wait(i) for i in ids))

    assert all(s["output"] == ["Hello Tokyo!", "Hello Seattle!", "Hello London!"] for s in statuses)

"""`Calls.wait_for_operation` (`orchestrators/calls.py`) by history replay.

A small orchestration waits for one ARM operation as the scaler (its capacity PATCH) and the
teardown (its resource group's DELETE) do, through the SDK's replay engine
(`tests/support/replay.py`), against a fake `check_operations`: when it polls, when it gives
up, and that the histories instances wrote at the earlier fixed interval still replay.
"""

from __future__ import annotations

import json
from collections.abc import Generator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import azure.durable_functions as df

from orchestrators.calls import Calls
from outsystems.messages import CheckRequest, Operation, Tuning, to_wire
from outsystems.polling import POLL_CEILING
from tests.support.replay import (
    CALL_ACTIVITY_WITH_RETRY,
    CREATE_TIMER,
    START,
    History,
    Outcome,
    Replay,
    run_episode,
)

SUBSCRIPTION = "11111111-2222-3333-4444-555555555555"
VMSS = (
    f"/subscriptions/{SUBSCRIPTION}/resourceGroups/acme-rg/providers/"
    "Microsoft.Compute/virtualMachineScaleSets/acme-prod-vmss"
)
#: Azure's pace (`OPERATION_POLL_SECONDS`' default): the shortest interval between polls.
SHORTEST = 15.0
_STAMP = "%Y-%m-%dT%H:%M:%S.%fZ"


def operation(status: str, retry_after: float | None = None) -> Operation:
    running = status == "InProgress"
    return Operation(
        VMSS,
        "PATCH",
        "InProgress" if running else "Succeeded",
        "2024-07-01",
        "async-operation" if running else "none",
        "https://management.azure.com/op/1" if running else None,
        retry_after=retry_after,
    )


def request(started: Operation, limit_seconds: float = 7200.0) -> dict[str, Any]:
    return {
        "tuning": Tuning(poll_seconds=SHORTEST).to_json(),
        "operation": started.to_json(),
        "limitSeconds": limit_seconds,
    }


def waiting(context: df.DurableOrchestrationContext) -> Generator[Any, Any, Any]:
    """Wait for the operation in the input until its limit, as the scaler and teardown do."""
    given = context.get_input()
    calls = Calls(context, Tuning.from_json(given["tuning"]))
    done = yield from calls.wait_for_operation(
        Operation.from_json(given["operation"]),
        subscription_id=SUBSCRIPTION,
        solution_id="acme",
        deadline=context.current_utc_datetime + timedelta(seconds=given["limitSeconds"]),
        timed_out=lambda: "the capacity change still runs",
    )
    return done.to_json()


def run(started: Operation, answers: Sequence[Operation], limit_seconds: float = 7200.0) -> Outcome:
    remaining = list(answers)

    def check(wire: Any) -> list[dict[str, Any]]:
        checked = CheckRequest.from_json(wire)
        assert [o.resource_id for o in checked.operations] == [VMSS]
        assert (checked.subscription_id, checked.solution_id) == (SUBSCRIPTION, "acme")
        return [remaining.pop(0).to_json()]

    return Replay(
        waiting,
        request(started, limit_seconds),
        name="waiting",
        activities={"check_operations": check},
    ).run()


def waits(outcome: Outcome) -> list[float]:
    """Each timer's wait, in seconds, from the moment it was asked for."""
    return [(c.input - c.at).total_seconds() for c in outcome.calls if c.kind == "timer"]


def checks(outcome: Outcome) -> int:
    return len(outcome.named("check_operations"))


def test_an_operation_that_ended_at_once_is_not_polled() -> None:
    outcome = run(operation("Succeeded"), [])
    assert outcome.output["status"] == "Succeeded"
    assert checks(outcome) == 0
    assert waits(outcome) == []


def test_without_retry_after_the_polls_back_off_from_the_shortest_interval_to_the_ceiling() -> None:
    answers = [operation("InProgress")] * 7 + [operation("Succeeded")]
    outcome = run(operation("InProgress"), answers)
    assert outcome.output["status"] == "Succeeded"
    assert checks(outcome) == 8
    # The shortest interval, each next 1.5 times the last, never over 4 times the shortest.
    assert waits(outcome) == [15.0, 22.5, 33.75, 50.625, 60.0, 60.0, 60.0, 60.0]
    assert max(waits(outcome)) == SHORTEST * POLL_CEILING


def test_the_polls_honour_arms_retry_after_in_seconds() -> None:
    # ARM's RPC: "The time interval in the Retry-After header can only be specified in seconds,
    # with a minimum of 10 seconds and a maximum of 10 minutes", and "Clients should wait for
    # the Retry-After interval, if it was specified" (Azure/azure-resource-manager-rpc,
    # v1.0/Addendum.md, "Asynchronous Operations" / "202 Accepted and Location Headers",
    # commit 4fdacf348d15c1cf120c1e308445161cccdec685). `arm.operations.retry_after` reads the
    # header into `Operation.retry_after` as seconds; the wait is bounded by the app's own
    # shortest interval and ceiling (the deployment's policy, `outsystems.polling.poll_wait`).
    started = operation("InProgress", retry_after=30)
    answers = [
        operation("InProgress", retry_after=45),
        operation("InProgress"),
        operation("InProgress", retry_after=10),
        operation("InProgress", retry_after=600),
        operation("Succeeded"),
    ]
    outcome = run(started, answers)
    assert outcome.output["status"] == "Succeeded"
    # The begin answer's Retry-After decides the first poll; each check's the next one; without
    # one the backoff goes on where it stands (22.5, 33.75, 50.625, ...).
    assert waits(outcome) == [30.0, 45.0, 33.75, SHORTEST, SHORTEST * POLL_CEILING]


def test_an_operation_still_running_past_its_deadline_ends_as_operation_timed_out() -> None:
    outcome = run(operation("InProgress"), [operation("InProgress")] * 10, limit_seconds=120)
    assert outcome.output["status"] == "Failed"
    assert outcome.output["error"] == {
        "code": "OperationTimedOut",
        "message": "the capacity change still runs",
        "target": VMSS,
    }
    # Polled at 15, 37.5, 71.25 and 121.875 s; the last saw it still running past 120 s.
    assert waits(outcome) == [15.0, 22.5, 33.75, 50.625]
    assert checks(outcome) == 4


def _fire_at(action: dict[str, Any]) -> datetime:
    return datetime.strptime(action["fireAt"], _STAMP).replace(tzinfo=UTC)


def _actions(state: dict[str, Any]) -> list[dict[str, Any]]:
    """The state's actions, compound ones (the SDK's retryable call) walked depth first."""

    def atomic(actions: list[Any]) -> list[dict[str, Any]]:
        found = []
        for action in actions:
            if isinstance(action, list):
                found += atomic(action)
            elif "compoundActions" in action:
                found += atomic(action["compoundActions"])
            else:
                found.append(action)
        return found

    return atomic(state["actions"])


def test_a_history_written_at_the_fixed_interval_replays_and_goes_on_with_the_backoff() -> None:
    # An instance waiting when this version is deployed wrote its timers every `Tuning.poll`.
    # Its steps are the same as now (a timer, then check_operations); only the timers' times
    # differ, and Durable matches a replayed timer by its sequence number alone
    # (Azure/durabletask, src/DurableTask.Core/TaskOrchestrationContext.cs,
    # `HandleTimerCreatedEvent`, commit 07b40c768dc442bd5b11ccbf65e0c496e46e6adb; the Python
    # SDK's `TaskOrchestrationExecutor` resolves a `TimerFired` by its `TimerId`).
    started = operation("InProgress")
    history = History("waiting", request(started), "old-instance", START)
    check = json.dumps(to_wire(CheckRequest(SUBSCRIPTION, "acme", (started,))))
    fixed = timedelta(seconds=SHORTEST)
    at = START
    for timer_id in (0, 2):
        history.timer_created(at, timer_id, at + fixed)
        history.completed(at)
        at += fixed
        history.started(at)
        history.timer_fired(at, timer_id, at)
        history.task_scheduled(at, timer_id + 1, "check_operations", check)
        history.completed(at)
        history.started(at)
        history.task_completed(at, timer_id + 1, [started.to_json()])

    state = run_episode(waiting, history)
    assert state.get("error") is None
    assert not state["isDone"]
    actions = _actions(state)
    assert [a["actionType"] for a in actions] == [CREATE_TIMER, CALL_ACTIVITY_WITH_RETRY] * 2 + [
        CREATE_TIMER
    ]
    # The new timer: the backoff's third interval from the replayed clock.
    assert _fire_at(actions[-1]) == at + timedelta(seconds=33.75)

    # It fires, the check says the operation ended: the wait ends with it.
    fire_at = _fire_at(actions[-1])
    history.timer_created(at, 4, fire_at)
    history.completed(at)
    history.started(fire_at)
    history.timer_fired(fire_at, 4, fire_at)
    history.task_scheduled(fire_at, 5, "check_operations", check)
    history.completed(fire_at)
    history.started(fire_at)
    history.task_completed(fire_at, 5, [operation("Succeeded").to_json()])
    state = run_episode(waiting, history)
    assert state.get("error") is None
    assert state["isDone"]
    assert state["output"]["status"] == "Succeeded"

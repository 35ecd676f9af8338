"""The scaler orchestration's decisions and failure paths, driven step by step.

The orchestrator generator runs against a hand-written context: its entity calls go to the real
entity logic (in memory), its activities to fakes that answer as ARM would. The happy paths and
the host's durability are covered end to end in `tests/e2e/test_scaling.py`; here are the paths
ARM rarely takes: a failed or busy PATCH, a slow operation, an unmanaged scale set, an
unreachable ARM, and the cooldown sleep.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from orchestrators.scale_requests import add_request, empty_state, record_fates, snapshot
from orchestrators.scaler import WAKE_EVENT, scale_frontends, scaler_input
from outsystems.policy import ScalingPolicy, policy_to_tags
from outsystems.scaling import ScaleKind, ScaleRequest, ScaleSource

VMSS = (
    "/subscriptions/11111111-2222-3333-4444-555555555555/resourceGroups/acme-rg/providers/"
    "Microsoft.Compute/virtualMachineScaleSets/acme-prod-vmss"
)
START = datetime(2026, 11, 20, 9, 14, tzinfo=UTC)
POLICY = policy_to_tags(ScalingPolicy(min_capacity=2, max_capacity=8, scale_out_step=2))
orchestrator = scale_frontends._function._func.orchestrator_function


@dataclass
class Task:
    kind: str
    name: str
    payload: Any = None


@dataclass
class Run:
    """The context the orchestrator sees, the scale set it changes and what it did."""

    info: dict[str, Any]
    patch_results: list[dict[str, Any]] = field(default_factory=list)
    polls: list[dict[str, Any]] = field(default_factory=list)
    fail_inspect: bool = False
    state: dict[str, Any] = field(default_factory=empty_state)
    now: datetime = START
    log: list[Task] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    continued: Any = None
    #: Called with the number of the `take` about to be answered (1, 2, ...): a trigger storing
    #: a request at that moment.
    on_take: Callable[[int], None] | None = None
    takes: int = 0
    _ids: Any = field(default_factory=itertools.count)

    # --- the context API the scaler uses ------------------------------------------------------
    is_replaying = False
    instance_id = "scaler-test"

    def get_input(self) -> Any:
        return scaler_input(VMSS, {"pollSeconds": 5, "cooldownScale": 1})

    @property
    def current_utc_datetime(self) -> datetime:
        return self.now

    def new_uuid(self) -> str:
        return f"00000000-0000-0000-0000-{next(self._ids):012d}"

    def set_custom_status(self, status: Any) -> None:
        self.log.append(Task("status", status["phase"], status))

    def call_entity(self, entity: Any, operation: str, value: Any = None) -> Task:
        return Task("entity", operation, value)

    def call_activity_with_retry(self, name: str, retry: Any, value: Any) -> Task:
        return Task("activity", name, value)

    def create_timer(self, at: datetime) -> Task:
        return Task("timer", "timer", at)

    def wait_for_external_event(self, name: str) -> Task:
        return Task("event", name)

    def task_any(self, tasks: list[Task]) -> Task:
        return Task("any", "any", tasks)

    def continue_as_new(self, value: Any) -> None:
        self.continued = value

    # --- answering the tasks ------------------------------------------------------------------
    def answer(self, task: Task) -> Any:
        self.log.append(task)
        if task.kind == "entity":
            if task.name == "take":
                self.takes += 1
                if self.on_take is not None:
                    self.on_take(self.takes)
            if task.name == "record":
                record_fates(self.state, task.payload)
            return snapshot(self.state)
        if task.kind == "timer":
            self.now = max(self.now, task.payload)
            return None
        if task.kind == "any":
            timer = task.payload[0]
            self.now = max(self.now, timer.payload)
            return timer
        assert task.kind == "activity", task
        return self.activity(task.name, task.payload)

    def activity(self, name: str, value: Any) -> Any:
        if name == "inspect_scale_set":
            if self.fail_inspect:
                raise Exception("Activity function 'inspect_scale_set' failed: 503")
            return self.info
        if name == "set_scale_set_capacity":
            return self.patch_results.pop(0)
        if name == "check_operations":
            return [self.polls.pop(0)]
        if name == "publish_event":
            self.events.append(value)
            return value["id"]
        raise AssertionError(name)

    def drive(self) -> Any:
        generator: Generator[Any, Any, Any] = orchestrator(self)
        value: Any = None
        error: Exception | None = None
        while True:
            try:
                task = generator.throw(error) if error else generator.send(value)
            except StopIteration as stop:
                return stop.value
            try:
                value, error = self.answer(task), None
            except Exception as failure:
                value, error = None, failure

    def add(self, request_id: str, request: ScaleRequest) -> None:
        add_request(self.state, {"id": request_id, "request": ScaleRequest.to_json(request)})

    def names(self, kind: str) -> list[str]:
        return [t.name for t in self.log if t.kind == kind]


def info(capacity: int = 2, *, managed: bool = True, **extra: Any) -> dict[str, Any]:
    return {
        "id": VMSS,
        "exists": True,
        "managed": managed,
        "solutionId": "acme" if managed else None,
        "capacity": capacity,
        "policyTags": POLICY if managed else {},
        **extra,
    }


def operation(status: str, error: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "resource_id": VMSS,
        "method": "PATCH",
        "status": status,
        "api_version": "2026-04-01",
        "poll_mode": "async-operation" if status == "InProgress" else "none",
        "poll_url": "http://arm/op/1" if status == "InProgress" else None,
        "error": error,
    }


def alert(n: int = 1, kind: ScaleKind = ScaleKind.OUT) -> ScaleRequest:
    return ScaleRequest(
        kind, None, ScaleSource.ALERT, f"alert-{n}", START, "cpu-high", "CPU 90 > 70"
    )


def test_a_slow_operation_is_polled_after_timers_then_recorded_with_its_cooldown() -> None:
    run = Run(
        info(),
        patch_results=[operation("InProgress")],
        polls=[operation("InProgress"), operation("Succeeded")],
    )
    run.add("r1", alert())
    assert run.drive() == {"scaleSet": VMSS, "pending": 0}
    assert run.names("activity") == [
        "inspect_scale_set",
        "set_scale_set_capacity",
        "check_operations",
        "check_operations",
        "publish_event",
    ]
    # The solution id goes with the operation so that the activities can mask the platform's
    # derived keys in ARM's error messages.
    assert {
        t.payload["solutionId"]
        for t in run.log
        if t.name in ("set_scale_set_capacity", "check_operations")
    } == {"acme"}
    assert [t.payload for t in run.log if t.kind == "timer"] == [
        START + timedelta(seconds=5),
        START + timedelta(seconds=10),
    ]
    [record] = run.state["decisions"]
    assert (record["requestId"], record["outcome"], record["from"], record["to"]) == (
        "r1",
        "applied",
        2,
        4,
    )
    assert run.state["pending"] == []
    assert run.state["cooldownUntil"] == (START + timedelta(seconds=10, minutes=10)).isoformat()
    [event] = run.events
    assert (event["type"], event["subject"], event["data"]["requests"]) == (
        "outsystems.scale.applied",
        "acme/prod",
        1,
    )


def test_a_failed_change_is_recorded_as_skipped_with_arms_reason_and_no_cooldown() -> None:
    quota = {"code": "OperationNotAllowed", "message": "exceeding approved Total Regional Cores"}
    run = Run(info(), patch_results=[operation("Failed", quota)])
    run.add("r1", alert())
    run.drive()
    [record] = run.state["decisions"]
    assert record["outcome"] == "skipped"
    assert record["reason"] == (
        "CPU 90 > 70: the capacity change failed: OperationNotAllowed: exceeding approved "
        "Total Regional Cores"
    )
    assert run.state["cooldownUntil"] is None
    assert run.state["pending"] == []
    assert run.events[0]["type"] == "outsystems.scale.skipped"


def test_a_busy_scale_set_is_tried_again_later() -> None:
    busy = operation("Failed", {"code": "AnotherOperationInProgress", "message": "busy"})
    run = Run(info(), patch_results=[busy, busy, operation("Succeeded")])
    run.add("r1", alert())
    run.drive()
    assert run.names("activity").count("set_scale_set_capacity") == 3
    assert [t.payload - START for t in run.log if t.kind == "timer"] == [
        timedelta(seconds=5),
        timedelta(seconds=15),
    ]
    assert run.state["decisions"][-1]["outcome"] == "applied"


def test_requests_for_a_scale_set_the_app_does_not_manage_are_settled_without_events() -> None:
    run = Run(info(managed=False))
    run.add("r1", alert(1))
    run.add("r2", alert(2, ScaleKind.IN))
    run.drive()
    assert run.state["pending"] == []
    assert [(d["requestId"], d["outcome"]) for d in run.state["decisions"]] == [
        ("r1", "skipped"),
        ("r2", "skipped"),
    ]
    assert run.state["decisions"][0]["reason"] == (
        f"scale set {VMSS} is not managed by this app (its tags)"
    )
    assert "set_scale_set_capacity" not in run.names("activity")
    assert run.events == []


def test_a_managed_scale_set_without_policy_tags_is_not_scaled() -> None:
    run = Run(info(policyTags={}))
    run.add("r1", alert())
    run.drive()
    assert run.state["decisions"][0]["reason"] == f"scale set {VMSS} carries no scaling policy tags"
    assert run.events[0]["type"] == "outsystems.scale.skipped"


def test_an_unreachable_arm_keeps_the_requests_for_later() -> None:
    run = Run(info(), fail_inspect=True)
    run.add("r1", alert())
    assert run.drive() == {"scaleSet": VMSS, "pending": 1}
    assert [p["id"] for p in run.state["pending"]] == ["r1"]
    assert run.state["decisions"] == []


def test_alerts_in_the_cooldown_are_announced_once_then_the_scaler_sleeps() -> None:
    run = Run(info(4))
    until = START + timedelta(minutes=7)
    run.state["cooldownUntil"] = until.isoformat()
    run.add("r1", alert(1))
    run.add("r2", alert(2))
    run.drive()
    assert [(p["id"], p["deferred"]) for p in run.state["pending"]] == [
        ("r1", True),
        ("r2", True),
    ]
    assert [d["reason"] for d in run.state["decisions"]] == [
        "cooldown until 2026-11-20T09:21:00Z: kept pending, decided once when it ends"
    ] * 2
    [event] = run.events
    assert (event["type"], event["data"]["requests"]) == ("outsystems.scale.skipped", 2)
    [sleep] = [t for t in run.log if t.kind == "any"]
    timer, wake = sleep.payload
    # It looks again within NOTICE_POLLS polls (alerts do not wake it: issue 14.11).
    assert (timer.payload, wake.name) == (START + 4 * timedelta(seconds=5), WAKE_EVENT)
    assert run.continued == run.get_input()

    # The next execution: nothing new to announce, it only sleeps again.
    again = Run(info(4), state=run.state)
    again.drive()
    assert again.names("activity") == []
    assert again.events == []
    assert len(again.state["decisions"]) == 2


def test_after_the_cooldown_the_kept_alerts_are_decided_once() -> None:
    run = Run(info(4), patch_results=[operation("Succeeded")])
    run.state["cooldownUntil"] = (START - timedelta(seconds=1)).isoformat()
    for n in range(3):
        run.add(f"r{n}", alert(n))
    run.drive()
    outcomes = [(d["requestId"], d["outcome"]) for d in run.state["decisions"]]
    assert outcomes == [("r0", "coalesced"), ("r1", "coalesced"), ("r2", "applied")]
    assert run.names("activity").count("set_scale_set_capacity") == 1
    [event] = run.events
    assert (event["data"]["from"], event["data"]["to"], event["data"]["requests"]) == (4, 6, 3)


def test_the_capacity_ceiling_caps_even_a_policy_the_app_signed() -> None:
    # inspect_scale_set says the SCALING_MAX_CAPACITY setting with the scale set (3 here); the
    # signed policy allows 8 and steps out by 2.
    run = Run(info(2, ceiling=3), patch_results=[operation("Succeeded")])
    run.add("r1", alert())
    run.drive()
    assert [t.payload["capacity"] for t in run.log if t.name == "set_scale_set_capacity"] == [3]
    [record] = run.state["decisions"]
    assert (record["from"], record["to"], record["reason"]) == (
        2,
        3,
        "CPU 90 > 70; limited to maximum 3",
    )


def test_a_scale_set_above_the_ceiling_is_never_scaled_out() -> None:
    run = Run(info(5, ceiling=3))
    run.add("r1", alert())
    run.drive()
    assert "set_scale_set_capacity" not in run.names("activity")
    assert run.state["decisions"][0]["reason"] == "already 5, above maximum (3)"


# --- Issue 14.11: wake-ups only for a scaler that waits for one -------------------------------


def phases(run: Run) -> list[str]:
    """What the scaler told its triggers, in order, with the entity calls between."""
    return [
        t.name if t.kind == "status" else f"{t.kind}:{t.name}"
        for t in run.log
        if t.kind in ("status", "entity")
    ]


def test_the_scaler_says_it_sleeps_before_its_last_look_at_the_requests() -> None:
    """A request stored after that look finds the phase `cooldown` (and, if urgent, wakes
    it); one stored before it is seen by the look: none waits for the cooldown unseen."""
    run = Run(info(4))
    run.state["cooldownUntil"] = (START + timedelta(minutes=7)).isoformat()
    run.add("r1", alert(1))
    run.drive()
    assert phases(run) == [
        "working",
        "entity:take",
        "entity:record",
        "entity:take",
        "cooldown",
        "entity:take",
        "working",
    ]
    assert [t.kind for t in run.log][-2:] == ["any", "status"]


def test_a_manual_request_stored_while_the_scaler_decides_to_sleep_is_decided_at_once() -> None:
    run = Run(info(4), patch_results=[operation("Succeeded")])
    run.state["cooldownUntil"] = (START + timedelta(minutes=7)).isoformat()
    run.add("r1", alert(1))
    manual = ScaleRequest(ScaleKind.EXACT, 6, ScaleSource.MANUAL, "m1", START, None, "by hand")

    def store_at_last_look(take: int) -> None:
        if take == 3:
            run.add("m1", manual)

    run.on_take = store_at_last_look
    run.drive()
    assert [t.payload["capacity"] for t in run.log if t.name == "set_scale_set_capacity"] == [6]
    # Decided in this execution, without sleeping first; the alert it supersedes is settled.
    assert "any" not in [t.kind for t in run.log]
    assert run.continued is None
    assert run.state["pending"] == []


def test_the_scaler_says_it_ends_before_its_last_look_at_the_requests() -> None:
    run = Run(info(), patch_results=[operation("Succeeded")])
    run.add("r1", alert())
    assert run.drive() == {"scaleSet": VMSS, "pending": 0}
    assert phases(run)[-4:] == ["entity:take", "ending", "entity:take", "done"]


def test_a_request_stored_while_the_scaler_ends_is_decided_by_it() -> None:
    run = Run(info(), patch_results=[operation("Succeeded"), operation("Succeeded")])
    run.add("r1", alert())
    later = ScaleRequest(ScaleKind.EXACT, 3, ScaleSource.MANUAL, "m1", START, None, "by hand")

    def store_at_last_look(take: int) -> None:
        if take == 3:
            run.add("m1", later)

    run.on_take = store_at_last_look
    assert run.drive() == {"scaleSet": VMSS, "pending": 0}
    assert [t.payload["capacity"] for t in run.log if t.name == "set_scale_set_capacity"] == [4, 3]

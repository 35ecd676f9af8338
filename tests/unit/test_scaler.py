"""The scaler orchestration (`orchestrators/scaler.py`) by history replay.

Each test runs `scale_frontends` the way the Durable extension does, episode after episode,
through the SDK's replay engine (`tests/support/replay.py`): its entity calls reach the real
entity logic (`orchestrators/scale_requests.py`) on an in-memory state, its activities fakes
that answer as the activities do. The happy paths on the real host are in
`tests/e2e/test_scaling.py`; here are the paths ARM rarely takes: a failed, busy, transiently
failing or slow PATCH, an unmanaged scale set, an unreachable ARM, the cooldown sleep, and the
phases the scaler announces to its triggers.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from orchestrators.scale_requests import add_request, record_fates, release
from orchestrators.scaler import WAKE_EVENT, scaler_linger
from outsystems.messages import (
    AddScaleRequest,
    HoldScaleSet,
    RecordFates,
    ScaleRequestsState,
    ScalerRequest,
    Tuning,
)
from outsystems.policy import ScalingPolicy, policy_to_tags
from outsystems.scaling import ScaleKind, ScaleRequest, ScaleSource
from tests.support.functions import orchestrator
from tests.support.replay import START, Outcome, Replay

VMSS = (
    "/subscriptions/11111111-2222-3333-4444-555555555555/resourceGroups/acme-rg/providers/"
    "Microsoft.Compute/virtualMachineScaleSets/acme-prod-vmss"
)
POLICY = policy_to_tags(ScalingPolicy(min_capacity=2, max_capacity=8, scale_out_step=2))
POLL = timedelta(seconds=5)
RETRYABLE = {"code": "RetryableError", "message": "A retryable error occurred."}


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
    # The snake_case keys earlier versions of the activities wrote: histories of running
    # instances still hold them, and the orchestration must read them.
    return {
        "resource_id": VMSS,
        "method": "PATCH",
        "status": status,
        "api_version": "2026-04-01",
        "poll_mode": "async-operation" if status == "InProgress" else "none",
        "poll_url": "http://arm/op/1" if status == "InProgress" else None,
        "error": error,
    }


def alert(n: int = 1, kind: ScaleKind = ScaleKind.OUT, rule: str = "cpu-high") -> ScaleRequest:
    return ScaleRequest(kind, None, ScaleSource.ALERT, f"alert-{n}", START, rule, "CPU 90 > 70")


def manual(capacity: int, source_id: str = "m1") -> ScaleRequest:
    return ScaleRequest(
        ScaleKind.EXACT, capacity, ScaleSource.MANUAL, source_id, START, None, "by hand"
    )


@dataclass
class ScaleSet:
    """The world the scaler sees: its entity's state, ARM's answers, the events it published."""

    info: dict[str, Any]
    patch_results: list[dict[str, Any]] = field(default_factory=list)
    polls: list[dict[str, Any]] = field(default_factory=list)
    inspect_fails: bool = False
    servers: list[list[str]] = field(default_factory=list)
    state: dict[str, Any] = field(default_factory=lambda: ScaleRequestsState().to_json())
    events: list[dict[str, Any]] = field(default_factory=list)
    #: Called with the number of the `take` about to be answered: a trigger storing a request
    #: at that moment.
    on_take: Callable[[int], None] | None = None
    takes: int = 0

    def add(self, request_id: str, request: ScaleRequest) -> None:
        state = ScaleRequestsState.from_json(self.state)
        self.state = add_request(state, AddScaleRequest(request_id, request))[0].to_json()

    def entity(self, entity_id: str, operation: str, value: Any) -> Any:
        assert entity_id.startswith("@track_scale_requests@"), entity_id
        if operation == "take":
            self.takes += 1
            if self.on_take is not None:
                self.on_take(self.takes)
        elif operation == "record":
            state = ScaleRequestsState.from_json(self.state)
            self.state = record_fates(state, RecordFates.from_json(value)).to_json()
        else:
            raise AssertionError(operation)
        return ScaleRequestsState.from_json(self.state).to_json(decisions=False)

    def inspect(self, request: Any) -> Any:
        if self.inspect_fails:
            raise RuntimeError("ARM answered 503 ServiceUnavailable")
        return self.info

    def publish(self, event: dict[str, Any]) -> str:
        self.events.append(event)
        return str(event["id"])

    def run(
        self,
        *,
        wake: bool = False,
        poll: timedelta = POLL,
        timeout_scale: float = 1.0,
        lease: timedelta | None = None,
    ) -> Outcome:
        tuning = {
            "pollSeconds": poll.total_seconds(),
            "cooldownScale": 1,
            "timeoutScale": timeout_scale,
        }
        return Replay(
            orchestrator("scale_frontends"),
            ScalerRequest(
                VMSS, Tuning.from_json(tuning), None if lease is None else START + lease
            ).to_json(),
            name="scale_frontends",
            instance_id="scaler-test",
            activities={
                "inspect_scale_set": self.inspect,
                "set_scale_set_capacity": lambda _: self.patch_results.pop(0),
                "check_operations": lambda _: [self.polls.pop(0)],
                "list_scale_set_servers": lambda _: self.servers.pop(0),
                "publish_event": self.publish,
            },
            entity=self.entity,
            events=[(WAKE_EVENT, None)] if wake else [],
        ).run()


def activities(outcome: Outcome) -> list[str]:
    return [call.name for call in outcome.calls if call.kind == "activity"]


def timers(outcome: Outcome) -> list[timedelta]:
    return [call.input - START for call in outcome.calls if call.kind == "timer"]


# --- Capacity changes ---------------------------------------------------------------------------


def test_a_slow_operation_is_polled_after_timers_then_recorded_with_its_cooldown() -> None:
    world = ScaleSet(
        info(),
        patch_results=[operation("InProgress")],
        polls=[operation("InProgress"), operation("Succeeded")],
    )
    world.add("r1", alert())
    outcome = world.run()
    assert outcome.output == {"scaleSet": VMSS, "pending": 0}
    assert activities(outcome) == [
        "inspect_scale_set",
        "set_scale_set_capacity",
        "check_operations",
        "check_operations",
        "publish_event",
    ]
    # The solution id goes with the operation so that the activities can mask the platform's
    # derived keys in ARM's error messages.
    assert {
        str(call.input["solutionId"])
        for call in outcome.calls
        if call.name in ("set_scale_set_capacity", "check_operations")
    } == {"acme"}
    # Polled after the shortest interval, then 1.5 times later (`outsystems.polling`).
    assert timers(outcome) == [POLL, POLL + POLL * 1.5]
    [record] = world.state["decisions"]
    assert (record["requestId"], record["outcome"], record["from"], record["to"]) == (
        "r1",
        "applied",
        2,
        4,
    )
    assert world.state["pending"] == []
    # The cooldown runs from the moment the new capacity is there.
    assert world.state["cooldownUntil"] == (START + POLL * 2.5 + timedelta(minutes=10)).isoformat()
    [event] = world.events
    assert (event["type"], event["subject"], event["data"]["requests"]) == (
        "outsystems.scale.applied",
        "acme/prod",
        1,
    )


def test_a_failed_change_is_recorded_as_skipped_with_arms_reason_and_no_cooldown() -> None:
    quota = {"code": "OperationNotAllowed", "message": "exceeding approved Total Regional Cores"}
    world = ScaleSet(info(), patch_results=[operation("Failed", quota)])
    world.add("r1", alert())
    world.run()
    [record] = world.state["decisions"]
    assert record["outcome"] == "skipped"
    assert record["reason"] == (
        "CPU 90 > 70: the capacity change failed: OperationNotAllowed: exceeding approved "
        "Total Regional Cores"
    )
    assert world.state["cooldownUntil"] is None
    assert world.state["pending"] == []
    assert world.events[0]["type"] == "outsystems.scale.skipped"


def test_a_busy_scale_set_is_tried_again_later() -> None:
    busy = operation("Failed", {"code": "AnotherOperationInProgress", "message": "busy"})
    world = ScaleSet(info(), patch_results=[busy, busy, operation("Succeeded")])
    world.add("r1", alert())
    outcome = world.run()
    assert activities(outcome).count("set_scale_set_capacity") == 3
    assert timers(outcome) == [POLL, 3 * POLL]
    assert world.state["decisions"][-1]["outcome"] == "applied"


def test_an_operation_still_running_past_its_limit_is_given_up() -> None:
    world = ScaleSet(
        info(), patch_results=[operation("InProgress")], polls=[operation("InProgress")] * 100
    )
    world.add("r1", alert())
    poll = timedelta(minutes=5)
    outcome = world.run(poll=poll)
    [record] = world.state["decisions"]
    assert record["outcome"] == "skipped"
    assert "OperationTimedOut" in record["reason"]
    # Polled after 5 minutes, each next poll 1.5 times later, never more than 20 minutes apart,
    # until the limit (a scale set's operation: 120 minutes, as in a deployment), then given
    # up without a cooldown.
    minutes = [5, 12.5, 23.75, 40.625, 60.625, 80.625, 100.625, 120.625]
    assert timers(outcome) == [timedelta(minutes=m) for m in minutes]
    assert world.state["cooldownUntil"] is None


def test_the_operation_limit_follows_the_timeout_scale() -> None:
    world = ScaleSet(
        info(), patch_results=[operation("InProgress")], polls=[operation("InProgress")] * 100
    )
    world.add("r1", alert())
    poll = timedelta(minutes=5)
    # 120 minutes scaled down to 12: polled at 5 and 12.5 minutes, then given up.
    outcome = world.run(poll=poll, timeout_scale=0.1)
    [record] = world.state["decisions"]
    assert "OperationTimedOut" in record["reason"]
    assert timers(outcome) == [poll, poll * 2.5]


def test_a_transiently_failed_change_is_sent_again_with_the_same_target() -> None:
    """A PATCH whose operation failed with a retryable code left the new capacity in the scale
    set's model: deciding again would read it and take the change as done, so the same PATCH
    is sent again (found by `tests/e2e/test_resilience_faults.py` under injected faults)."""
    failed = operation("Failed", RETRYABLE)
    world = ScaleSet(info(), patch_results=[failed, failed, operation("Succeeded")])
    world.add("r1", alert())
    outcome = world.run()
    assert [c.input["capacity"] for c in outcome.named("set_scale_set_capacity")] == [4, 4, 4]
    # Decided once: the live capacity is not read again between the attempts.
    assert activities(outcome).count("inspect_scale_set") == 1
    assert timers(outcome) == [POLL, 3 * POLL]
    [record] = world.state["decisions"]
    assert (record["outcome"], record["from"], record["to"]) == ("applied", 2, 4)
    assert world.events[0]["type"] == "outsystems.scale.applied"


def test_a_change_that_keeps_failing_is_recorded_as_skipped_after_the_attempts() -> None:
    world = ScaleSet(info(), patch_results=[operation("Failed", RETRYABLE)] * 4)
    world.add("r1", alert())
    outcome = world.run()
    assert activities(outcome).count("set_scale_set_capacity") == 4
    [record] = world.state["decisions"]
    assert record["outcome"] == "skipped"
    assert record["reason"].endswith(
        "the capacity change failed: RetryableError: A retryable error occurred."
    )
    assert world.state["pending"] == []


def test_a_scale_in_names_the_servers_it_removed() -> None:
    world = ScaleSet(
        info(4),
        patch_results=[operation("Succeeded")],
        servers=[
            ["acme-fe000000", "acme-fe000001", "acme-fe000002", "acme-fe000003"],
            ["acme-fe000000", "acme-fe000001", "acme-fe000003"],
        ],
    )
    world.add("r1", alert(1, ScaleKind.IN))
    outcome = world.run()
    assert activities(outcome) == [
        "inspect_scale_set",
        "list_scale_set_servers",
        "set_scale_set_capacity",
        "list_scale_set_servers",
        "publish_event",
    ]
    [record] = world.state["decisions"]
    assert (record["outcome"], record["to"], record["serversToRemove"]) == (
        "applied",
        3,
        ["acme-fe000002"],
    )
    assert world.events[0]["data"]["serversToRemove"] == ["acme-fe000002"]


# --- Scale sets the scaler may not change -------------------------------------------------------


def test_requests_for_a_scale_set_the_app_does_not_manage_are_settled_without_events() -> None:
    world = ScaleSet(info(managed=False))
    world.add("r1", alert(1))
    world.add("r2", alert(2, ScaleKind.IN))
    outcome = world.run()
    assert world.state["pending"] == []
    assert [(d["requestId"], d["outcome"]) for d in world.state["decisions"]] == [
        ("r1", "skipped"),
        ("r2", "skipped"),
    ]
    assert world.state["decisions"][0]["reason"] == (
        f"scale set {VMSS} is not managed by this app (its tags)"
    )
    assert "set_scale_set_capacity" not in activities(outcome)
    assert world.events == []


def test_a_managed_scale_set_without_policy_tags_is_not_scaled() -> None:
    world = ScaleSet(info(policyTags={}))
    world.add("r1", alert())
    world.run()
    assert world.state["decisions"][0]["reason"] == (
        f"scale set {VMSS} carries no scaling policy tags"
    )
    assert world.events[0]["type"] == "outsystems.scale.skipped"


def test_an_unreachable_arm_keeps_the_requests_for_later() -> None:
    world = ScaleSet(info(), inspect_fails=True)
    world.add("r1", alert())
    outcome = world.run()
    assert outcome.output == {"scaleSet": VMSS, "pending": 1}
    # Durable retried the read (with the retry options' attempts) before giving up.
    assert activities(outcome) == ["inspect_scale_set"] * 5
    assert [p["id"] for p in world.state["pending"]] == ["r1"]
    assert world.state["decisions"] == []


def test_the_capacity_ceiling_caps_even_a_policy_the_app_signed() -> None:
    # inspect_scale_set says the SCALING_MAX_CAPACITY setting with the scale set (3 here); the
    # signed policy allows 8 and steps out by 2.
    world = ScaleSet(info(2, ceiling=3), patch_results=[operation("Succeeded")])
    world.add("r1", alert())
    outcome = world.run()
    assert [c.input["capacity"] for c in outcome.named("set_scale_set_capacity")] == [3]
    [record] = world.state["decisions"]
    assert (record["from"], record["to"], record["reason"]) == (
        2,
        3,
        "CPU 90 > 70; limited to maximum 3",
    )


def test_a_scale_set_above_the_ceiling_is_never_scaled_out() -> None:
    world = ScaleSet(info(5, ceiling=3))
    world.add("r1", alert())
    outcome = world.run()
    assert "set_scale_set_capacity" not in activities(outcome)
    assert world.state["decisions"][0]["reason"] == "already 5, above maximum (3)"


# --- The cooldown -------------------------------------------------------------------------------


def test_alerts_in_the_cooldown_are_announced_once_then_the_scaler_sleeps() -> None:
    world = ScaleSet(info(4))
    world.state["cooldownUntil"] = (START + timedelta(minutes=7)).isoformat()
    world.add("r1", alert(1))
    world.add("r2", alert(2))
    world.add("r3", alert(3, rule="cpu-high-2"))
    outcome = world.run()
    # The two alerts of one rule and direction are one pending request of two (issue 16).
    assert [(p["id"], p["deferred"]) for p in world.state["pending"]] == [
        ("r1", True),
        ("r3", True),
    ]
    assert [(d["reason"], d.get("requests", 1)) for d in world.state["decisions"]] == [
        ("cooldown until 2026-11-20T09:21:00Z: kept pending, decided once when it ends", 2),
        ("cooldown until 2026-11-20T09:21:00Z: kept pending, decided once when it ends", 1),
    ]
    [event] = world.events
    assert (event["type"], event["data"]["requests"]) == ("outsystems.scale.skipped", 3)
    # It sleeps until the cooldown ends or NOTICE_POLLS polls passed, whichever comes first,
    # or until a trigger wakes it (alerts do not: issue 14.11); then it continues as new.
    [wait] = [call for call in outcome.calls if call.kind == "wait"]
    assert wait.name == WAKE_EVENT
    assert timers(outcome) == [4 * POLL]
    assert (
        outcome.continued_with
        == ScalerRequest(
            VMSS, Tuning.from_json({"pollSeconds": POLL.total_seconds(), "cooldownScale": 1})
        ).to_json()
    )

    # The next execution: nothing new to announce, it only sleeps again.
    again = ScaleSet(info(4), state=world.state).run()
    assert activities(again) == []
    assert len(world.state["decisions"]) == 2


def test_a_sleeping_scaler_that_is_woken_continues_at_once() -> None:
    world = ScaleSet(info(4))
    world.state["cooldownUntil"] = (START + timedelta(minutes=7)).isoformat()
    world.add("r1", alert(1))
    outcome = world.run(wake=True)
    assert outcome.continued_with is not None
    # Woken before its timer fired: its clock did not move.
    assert outcome.now == START


def test_after_the_cooldown_the_kept_alerts_are_decided_once() -> None:
    world = ScaleSet(info(4), patch_results=[operation("Succeeded")])
    world.state["cooldownUntil"] = (START - timedelta(seconds=1)).isoformat()
    world.add("r0", alert(0, rule="cpu-high-2"))
    for n in range(1, 3):
        world.add(f"r{n}", alert(n))
    outcome = world.run()
    outcomes = [(d["requestId"], d["outcome"]) for d in world.state["decisions"]]
    assert outcomes == [("r0", "coalesced"), ("r1", "applied")]
    assert world.state["decisions"][-1]["reason"] == "CPU 90 > 70 (and 2 more alerts)"
    assert world.state["pending"] == []
    assert activities(outcome).count("set_scale_set_capacity") == 1
    [event] = world.events
    assert (event["data"]["from"], event["data"]["to"], event["data"]["requests"]) == (4, 6, 3)


# --- Issue 14.11: what the scaler tells its triggers --------------------------------------------


def phases(outcome: Outcome) -> list[tuple[str, str]]:
    """Each entity call with the phase the scaler announced when it made it."""
    return [(call.name, call.status["phase"]) for call in outcome.calls if call.kind == "entity"]


def test_the_scaler_says_it_sleeps_before_its_last_look_at_the_requests() -> None:
    """A request stored after that look finds the phase `cooldown` (and, if urgent, wakes
    it); one stored before it is seen by the look: none waits for the cooldown unseen."""
    world = ScaleSet(info(4))
    world.state["cooldownUntil"] = (START + timedelta(minutes=7)).isoformat()
    world.add("r1", alert(1))
    outcome = world.run()
    assert phases(outcome) == [
        ("take", "working"),
        ("record", "working"),
        ("take", "working"),
        ("take", "cooldown"),
    ]
    [sleep] = [call for call in outcome.calls if call.kind == "wait"]
    assert sleep.status == {"phase": "cooldown", "until": world.state["cooldownUntil"]}
    assert outcome.status == {"phase": "working"}


def test_a_manual_request_stored_while_the_scaler_decides_to_sleep_is_decided_at_once() -> None:
    world = ScaleSet(info(4), patch_results=[operation("Succeeded")])
    world.state["cooldownUntil"] = (START + timedelta(minutes=7)).isoformat()
    world.add("r1", alert(1))

    def store_at_last_look(take: int) -> None:
        if take == 3:
            world.add("m1", manual(6))

    world.on_take = store_at_last_look
    outcome = world.run()
    assert [c.input["capacity"] for c in outcome.named("set_scale_set_capacity")] == [6]
    # Decided in this execution, without sleeping first; the alert it supersedes is settled.
    assert "wait" not in outcome.kinds()
    assert outcome.continued_with is None
    assert world.state["pending"] == []


def test_the_scaler_says_it_ends_before_its_last_look_at_the_requests() -> None:
    world = ScaleSet(info(), patch_results=[operation("Succeeded")])
    world.add("r1", alert())
    outcome = world.run()
    assert outcome.output == {"scaleSet": VMSS, "pending": 0}
    assert phases(outcome)[-2:] == [("take", "working"), ("take", "ending")]
    assert outcome.status == {"phase": "done"}


def test_a_request_stored_while_the_scaler_ends_is_decided_by_it() -> None:
    world = ScaleSet(info(), patch_results=[operation("Succeeded"), operation("Succeeded")])
    world.add("r1", alert())

    def store_at_last_look(take: int) -> None:
        if take == 3:
            world.add("m1", manual(3))

    world.on_take = store_at_last_look
    outcome = world.run()
    assert outcome.output == {"scaleSet": VMSS, "pending": 0}
    assert [c.input["capacity"] for c in outcome.named("set_scale_set_capacity")] == [4, 3]


# --- Issue 16: the lease a trigger relies on to store alerts without looking at the scaler ------


def test_a_scaler_with_a_lease_does_not_end_before_it_and_says_so_before_its_last_look() -> None:
    world = ScaleSet(info())
    outcome = world.run(lease=timedelta(seconds=30))
    assert phases(outcome) == [("take", "working"), ("take", "idle")]
    lease = (START + timedelta(seconds=30)).isoformat()
    [sleep] = [call for call in outcome.calls if call.kind == "wait"]
    assert (sleep.name, sleep.status) == (WAKE_EVENT, {"phase": "idle", "leaseUntil": lease})
    assert timers(outcome) == [timedelta(seconds=30)]
    assert outcome.continued_with is not None
    assert outcome.continued_with["leaseUntil"] == lease

    # Continued after its lease: nothing pending, it ends as a scaler without one does.
    after = Replay(
        orchestrator("scale_frontends"),
        outcome.continued_with,
        name="scale_frontends",
        instance_id="scaler-test",
        activities={},
        entity=world.entity,
        start=START + timedelta(seconds=31),
    ).run()
    assert after.output == {"scaleSet": VMSS, "pending": 0}
    assert after.status == {"phase": "done", "leaseUntil": lease}


def test_a_scaler_that_finds_requests_extends_its_lease() -> None:
    world = ScaleSet(info(), patch_results=[operation("Succeeded")])
    world.add("r1", alert())
    outcome = world.run(lease=timedelta(seconds=1))
    linger = scaler_linger(Tuning.from_json({"pollSeconds": POLL.total_seconds()}))
    assert linger == 8 * POLL
    # Extended when it took the request: it lingers that long after, then continues as new.
    assert outcome.continued_with is not None
    extended = outcome.continued_with["leaseUntil"]
    assert extended == (START + linger).isoformat()
    assert outcome.status == {"phase": "working", "leaseUntil": extended}


def test_a_request_stored_while_the_scaler_turns_idle_is_decided_at_once() -> None:
    world = ScaleSet(info(), patch_results=[operation("Succeeded")])

    def store_at_last_look(take: int) -> None:
        if take == 2:
            world.add("m1", manual(3))

    world.on_take = store_at_last_look
    outcome = world.run(lease=timedelta(seconds=30))
    assert [c.input["capacity"] for c in outcome.named("set_scale_set_capacity")] == [3]
    assert world.state["pending"] == []


# --- Issue 17: an upgrade holds the scale set ---------------------------------------------------

HOLD = HoldScaleSet("platform-acme:upgrade-1", "upgrade to 11.33.0")
HELD = (
    "held by upgrade platform-acme:upgrade-1 (upgrade to 11.33.0): kept pending, decided once "
    "the upgrade releases the scale set"
)


def held(world: ScaleSet) -> ScaleSet:
    world.state["heldBy"] = HOLD.to_json()
    return world


def test_a_held_scale_set_is_not_scaled_its_requests_are_announced_once_and_kept() -> None:
    world = held(ScaleSet(info(4)))
    world.add("r1", alert(1))
    world.add("m1", manual(6))
    outcome = world.run()
    # Nothing decided, not even the manual request, which never waits for a cooldown.
    assert activities(outcome) == ["inspect_scale_set", "publish_event"]
    assert [(p["id"], p["deferred"]) for p in world.state["pending"]] == [
        ("r1", True),
        ("m1", True),
    ]
    assert [(d["requestId"], d["outcome"], d["reason"]) for d in world.state["decisions"]] == [
        ("r1", "skipped", HELD),
        ("m1", "skipped", HELD),
    ]
    assert [(d["from"], d["to"]) for d in world.state["decisions"]] == [(4, 4), (4, 4)]
    [event] = world.events
    assert (event["type"], event["data"]["reason"], event["data"]["requests"]) == (
        "outsystems.scale.skipped",
        HELD,
        2,
    )
    # It says `held` and looks again after NOTICE_POLLS polls; no trigger wakes it for a request
    # that could not be decided anyway.
    [sleep] = [call for call in outcome.calls if call.kind == "wait"]
    assert sleep.status == {"phase": "held"}
    assert timers(outcome) == [4 * POLL]
    assert outcome.continued_with is not None
    assert outcome.status == {"phase": "working"}

    # The next look, still held: nothing new to say, it sleeps again.
    again = ScaleSet(info(4), state=world.state).run()
    assert activities(again) == []
    assert again.continued_with is not None
    assert len(world.state["decisions"]) == 2


def test_a_request_arriving_during_the_hold_is_announced_once_on_its_own() -> None:
    world = held(ScaleSet(info(4)))
    world.add("r1", alert(1))
    world.run()
    follow = ScaleSet(info(4), state=world.state)
    follow.add("r2", alert(2, rule="cpu-high-2"))
    outcome = follow.run()
    assert activities(outcome) == ["inspect_scale_set", "publish_event"]
    assert [(d["requestId"], d["reason"]) for d in follow.state["decisions"]] == [
        ("r1", HELD),
        ("r2", HELD),
    ]
    assert [event["data"]["requests"] for event in follow.events] == [1]


def test_after_the_release_the_kept_requests_are_decided() -> None:
    world = held(ScaleSet(info(4)))
    world.add("r1", alert(1))
    world.add("m1", manual(6))
    world.run()
    state = ScaleRequestsState.from_json(world.state)
    released, ok = release(state, HOLD)
    assert ok
    after = ScaleSet(info(4), patch_results=[operation("Succeeded")], state=released.to_json())
    outcome = after.run()
    assert [c.input["capacity"] for c in outcome.named("set_scale_set_capacity")] == [6]
    assert after.state["pending"] == []
    # The manual request applied; the alert before it superseded by it, as without a hold.
    assert [(d["requestId"], d["outcome"], d["reason"]) for d in after.state["decisions"][2:]] == [
        ("r1", "coalesced", "superseded by manual request m1"),
        ("m1", "applied", "by hand"),
    ]
    assert after.events[-1]["type"] == "outsystems.scale.applied"


def test_a_held_scaler_with_nothing_pending_ends() -> None:
    world = held(ScaleSet(info(4)))
    outcome = world.run()
    assert outcome.output == {"scaleSet": VMSS, "pending": 0}
    assert activities(outcome) == []

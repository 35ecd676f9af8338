"""The scaler: one orchestration per scale set that turns stored requests into capacity changes.

Instance id `scaler-<entity key>`, so requests from alerts, the timer and the manual API for one
scale set are decided by one scaler and never race. Each round:

    take the pending requests from the scale set's entity
    coalesce them (outsystems.scaling) into the one request to decide now
    read the live capacity and the policy (the scale set's tags), decide
    PATCH sku.capacity and poll the operation with durable timers
    record every request's fate in the entity, publish one scale.applied|skipped event

When only alerts remain and the cooldown holds them, the scaler announces them once (a
`skipped` record and event saying until when), then sleeps until the cooldown ends, or for
`NOTICE_POLLS` polls at most (to announce alerts that arrived meanwhile), or until a trigger
wakes it (a manual or timer request must not wait for the cooldown), and continues as new: the
requests live in the entity, never in external events, which `continue_as_new` drops. It ends
when nothing is pending, unless it holds a lease (`ScalerRequest.lease_until`, given by the
trigger that started it and extended whenever it finds requests): then it says `idle`, sleeps
until the lease ends (or a trigger wakes it) and looks once more. A trigger that read the lease
stores an alert's request without looking at the scaler again until the lease is about to end:
one durable call per alert in a storm (issue 16).

While an upgrade holds the scale set (the entity's `heldBy`, issue 17) it decides nothing:
it announces each pending request once (a `skipped` record and event "held by upgrade <id>"),
says `held`, sleeps for `NOTICE_POLLS` polls and looks again, so the requests are decided soon
after the release.

Its custom status says what it does, for the triggers (`services.scaler_client`): `working`
(it will look at its requests again), `cooldown` and `idle` (asleep: a `wake` event is
awaited), `held` (asleep, looking again by itself: a request cannot be decided before the
release, so nothing wakes it), `ending` and `done` (it will not look again), with `leaseUntil`
when it holds one.
It says `cooldown`, `idle` or `ending` *before* its last look at the requests, so a request is
either seen by that look or stored after the status says so: then a trigger wakes the sleeping
scaler (for an urgent request, or any request when `idle`) or waits for the ending one to end
and starts another. Alerts never wake it in a cooldown, and the triggers that share a look raise
one event, so an alert storm raises no event nobody waits for (issue 14.11: the SDK keeps such
events and warns at every replay).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Generator, Sequence
from datetime import datetime, timedelta
from typing import Any

import azure.durable_functions as df

from orchestrators.calls import Calls, Steps, first_line, orchestration
from orchestrators.scale_requests import scale_set_entity, scale_set_key
from outsystems.arm_errors import BUSY_CODES, TRANSIENT_CODES
from outsystems.events import scale_event
from outsystems.messages import (
    INSPECT_SCALE_SET,
    LIST_SCALE_SET_SERVERS,
    PUBLISH_EVENT,
    SCALE_FRONTENDS,
    SET_SCALE_SET_CAPACITY,
    CapacityRequest,
    CloudEvent,
    DecisionRecord,
    RecordFates,
    ScaleRequestsState,
    ScalerRequest,
    ScalerResult,
    ScalerStatus,
    ScaleSetInfo,
    ScaleSetRef,
    Tuning,
)
from outsystems.policy import PolicyTagError, ScalingPolicy, capped, policy_from_tags
from outsystems.resource_types import subscription_of
from outsystems.scaling import (
    Decision,
    Fate,
    Outcome,
    ScaleRequest,
    ScaleSource,
    coalesce,
    decide,
    fates,
)
from outsystems.times import utc_z

bp = df.Blueprint()

SCALER_PREFIX = "scaler-"
#: External event that tells a sleeping scaler to look at its entity again (a hint only).
WAKE_EVENT = "wake"
#: The phases of the scaler's custom status (see the module docstring).
WORKING, COOLDOWN, ENDING, DONE = "working", "cooldown", "ending", "done"
#: Asleep until its lease ends (nothing pending): a `wake` event is awaited.
IDLE = "idle"
#: An upgrade holds the scale set: asleep, looking again by itself after `NOTICE_POLLS` polls.
HELD = "held"
#: A sleeping scaler looks at its requests again after this many polls at most.
NOTICE_POLLS = 4
#: Rounds per execution before `continue_as_new`, to keep the history short.
MAX_ROUNDS = 8
# ARM codes (`outsystems.arm_errors`): on BUSY_CODES the round is tried again a bit later; on
# TRANSIENT_CODES the same PATCH is sent again (deciding again instead would read the capacity
# the failed operation left in the scale set's model and take the change as done).
BUSY_ATTEMPTS = 3
TRANSIENT_ATTEMPTS = 3


def scaler_instance_id(scale_set_id: str) -> str:
    """The deterministic instance id of a scale set's scaler."""
    return SCALER_PREFIX + scale_set_key(scale_set_id)


def scaler_linger(tuning: Tuning) -> timedelta:
    """How long a scaler with a lease stays after its last request (`ScalerRequest.lease_until`):
    twice the longest it sleeps in a cooldown, so that in an alert storm the lease a trigger
    read outlives the scaler's next look, and at least two seconds."""
    return max(tuning.poll * NOTICE_POLLS * 2, timedelta(seconds=2))


def _zulu(moment: datetime | None) -> str:
    if moment is None:
        return "unknown"
    return utc_z(moment)


class _Round:
    """The requests of one round, with their ids (fates refer to the very same objects)."""

    def __init__(self, answer: Any) -> None:
        state = ScaleRequestsState.from_json(answer)
        self.entries = state.pending
        self.requests = [entry.request for entry in self.entries]
        self._ids = {id(entry.request): entry.id for entry in self.entries}
        self.cooldown_until = state.cooldown_until
        self.held_by = state.held_by
        self.solution_id = state.solution_id

    def request_id(self, request: ScaleRequest) -> str:
        return self._ids[id(request)]

    def settling(self, requests: Sequence[ScaleRequest]) -> dict[str, Any]:
        """`RecordFates` fields settling these requests: their ids and the counts taken (alerts
        that join them meanwhile stay pending)."""
        ids = tuple(self.request_id(request) for request in requests)
        counts = {self.request_id(request): request.count for request in requests}
        return {"settled": ids, "counts": counts}

    def records(self, settled: tuple[Fate, ...], at: datetime) -> list[DecisionRecord]:
        return [DecisionRecord.of(fate, at, self.request_id(fate.request)) for fate in settled]

    def undeferred_alerts(self) -> list[tuple[str, ScaleRequest]]:
        return [
            (entry.id, entry.request)
            for entry in self.entries
            if not entry.deferred and entry.request.source is ScaleSource.ALERT
        ]

    def unannounced(self) -> list[tuple[str, ScaleRequest]]:
        """The requests of every source not announced yet (held: none is decided)."""
        return [(entry.id, entry.request) for entry in self.entries if not entry.deferred]


def _usable(info: ScaleSetInfo, ceiling: int | None) -> tuple[ScalingPolicy | None, str | None]:
    """The policy of a scale set the scaler may change (capped by the capacity ceiling), or why
    it may not."""
    reason = info.not_managed_reason
    if reason is not None:
        return None, reason
    if info.capacity is None:
        return None, f"scale set {info.id} reports no capacity"
    try:
        policy = policy_from_tags(info.policy_tags)
    except PolicyTagError as error:
        return None, f"the scaling policy tags of {info.id} are unreadable: {error}"
    if policy is None:
        return None, f"scale set {info.id} carries no scaling policy tags"
    return (policy if ceiling is None else capped(policy, ceiling)), None


def _failed(decision: Decision, message: str, cooldown_until: datetime | None) -> Decision:
    return dataclasses.replace(
        decision,
        target=None,
        outcome=Outcome.SKIPPED,
        reason=f"{decision.reason}: the capacity change failed: {message}",
        starts_cooldown=False,
        cooldown_until=cooldown_until,
    )


@bp.orchestration_trigger(context_name="context")
@orchestration(SCALE_FRONTENDS)
def scale_frontends(
    context: df.DurableOrchestrationContext, params: ScalerRequest
) -> Steps[ScalerResult | None]:
    """Drain one scale set's requests (see the module docstring)."""
    scale_set_id = params.scale_set_id
    calls = Calls(context, params.tuning)
    poll = params.tuning.poll
    cooldown_scale = params.tuning.cooldown_scale
    entity = scale_set_entity(scale_set_id)
    subscription = subscription_of(scale_set_id)
    busy_attempts = 0
    notice = max(poll * NOTICE_POLLS, timedelta(seconds=1))
    linger = scaler_linger(params.tuning)
    # A scaler started with a lease never ends before it, and extends it whenever it finds
    # requests: a trigger that read the lease skips looking at the scaler until it ends.
    lease = params.lease_until

    def status(phase: str, until: datetime | None = None) -> None:
        context.set_custom_status(ScalerStatus(phase, until, lease).to_json())

    def extend() -> None:
        nonlocal lease
        if lease is not None:
            lease = max(lease, context.current_utc_datetime + linger)

    def again() -> None:
        context.continue_as_new(params._replace(lease_until=lease).to_json())

    status(WORKING)

    def publish(decision: Decision, solution_id: str | None) -> Generator[Any, Any, None]:
        # A scale set the app does not manage belongs to no platform: no event subject.
        if solution_id is None:
            return
        event = scale_event(
            solution_id,
            scale_set_id,
            decision,
            id=str(context.new_uuid()),
            time=context.current_utc_datetime,
        )
        yield calls.task(PUBLISH_EVENT, CloudEvent(event))

    for _ in range(MAX_ROUNDS):
        work = _Round((yield context.call_entity(entity, "take")))
        if not work.requests and lease is not None and context.current_utc_datetime < lease:
            # Nothing pending but the lease holds: say so before the last look (as below).
            status(IDLE)
            work = _Round((yield context.call_entity(entity, "take")))
            if not work.requests:
                yield from _sleep(context, None, lease)
                status(WORKING)
                again()
                return None
            status(WORKING)
        if not work.requests:
            status(ENDING)
            work = _Round((yield context.call_entity(entity, "take")))
            if not work.requests:
                status(DONE)
                return ScalerResult(scale_set_id, 0)
            status(WORKING)
        extend()
        if work.held_by is not None:
            unannounced = work.unannounced()
            if unannounced:
                yield from _announce_hold(calls, scale_set_id, entity, work, unannounced, publish)
            status(HELD)
            yield from _sleep(context, None, context.current_utc_datetime + notice)
            status(WORKING)
            again()
            return None
        now = context.current_utc_datetime
        batch = coalesce(work.requests, now, work.cooldown_until)
        newly_deferred = work.undeferred_alerts() if batch.request is None else []
        if batch.request is None and not newly_deferred:
            status(COOLDOWN, work.cooldown_until)
            work = _Round((yield context.call_entity(entity, "take")))
            now = context.current_utc_datetime
            batch = coalesce(work.requests, now, work.cooldown_until)
            newly_deferred = work.undeferred_alerts() if batch.request is None else []
            if batch.request is None and not newly_deferred:
                yield from _sleep(context, work.cooldown_until, now + notice)
                status(WORKING)
                again()
                return None
            status(WORKING)

        try:
            inspected = yield from calls.one(INSPECT_SCALE_SET, ScaleSetRef(scale_set_id))
        # The SDK surfaces an activity that failed all its retries as a plain Exception. The
        # requests stay pending; the scaling timer starts this scaler again later.
        except Exception:
            status("ARM unreachable; requests kept pending")
            return ScalerResult(scale_set_id, len(work.requests))
        info = inspected.info
        policy, unusable = _usable(info, inspected.ceiling)
        if policy is None or info.capacity is None:
            settled = tuple(
                Fate(request, Outcome.SKIPPED, unusable or "unusable", info.capacity, None)
                for request in work.requests
            )
            unusable_fates = RecordFates(
                **work.settling(work.requests), records=tuple(work.records(settled, now))
            )
            yield context.call_entity(entity, "record", unusable_fates.to_json())
            if info.solution_id is not None and unusable is not None:
                request = work.requests[-1]
                skipped = Decision(
                    None, info.capacity or 0, Outcome.SKIPPED, unusable, False, None, request
                )
                yield from publish(skipped, info.solution_id)
            continue

        if batch.request is None:
            yield from _announce(context, entity, work, newly_deferred, info, publish)
            continue

        decision = decide(info.capacity, policy, batch.request, now, work.cooldown_until)
        scaling_in = decision.target is not None and decision.target < info.capacity
        servers_before: list[str] = []
        if scaling_in:
            servers_before = yield from calls.one(LIST_SCALE_SET_SERVERS, ScaleSetRef(scale_set_id))
        if decision.target is not None:
            change = CapacityRequest(scale_set_id, decision.target, info.solution_id)
            error = yield from _change_capacity(calls, subscription, change)
            for attempt in range(1, TRANSIENT_ATTEMPTS + 1):
                if error is None or error[0] not in TRANSIENT_CODES:
                    break
                yield context.create_timer(context.current_utc_datetime + poll * attempt)
                error = yield from _change_capacity(calls, subscription, change)
            if error is not None and error[0] in BUSY_CODES and busy_attempts < BUSY_ATTEMPTS:
                busy_attempts += 1
                yield context.create_timer(context.current_utc_datetime + poll * busy_attempts)
                continue
            if error is not None:
                decision = _failed(decision, f"{error[0]}: {error[1]}", work.cooldown_until)
            elif scaling_in:
                servers_after = yield from calls.one(
                    LIST_SCALE_SET_SERVERS, ScaleSetRef(scale_set_id)
                )
                decision = _naming_removed(decision, servers_before, servers_after)
        at = context.current_utc_datetime
        if decision.starts_cooldown and decision.cooldown_until is not None:
            # The cooldown runs from the moment the new capacity is there (new instances take
            # minutes to boot); tests and demos shrink it, in Azure the scale is 1.
            length = (decision.cooldown_until - now) * cooldown_scale
            decision = dataclasses.replace(decision, cooldown_until=at + length)
        settled = fates(batch, decision)
        fates_of_round = RecordFates(
            **work.settling([fate.request for fate in settled]),
            records=tuple(_with_servers(work.records(settled, at), decision)),
            cooldown_until=decision.cooldown_until,
            sets_cooldown=True,
        )
        yield context.call_entity(entity, "record", fates_of_round.to_json())
        yield from publish(decision, info.solution_id)
    again()
    return None


def _naming_removed(decision: Decision, before: list[str], after: list[str]) -> Decision:
    """The decision, naming the servers a scale-in removed and what to do about them.

    Scaled-in front-ends stay registered in Service Center and count against the license's
    front-ends; OutSystems' Azure docs advise deleting them there (Administration > Servers).
    """
    removed = tuple(sorted(set(before) - set(after)))
    return dataclasses.replace(decision, removed_servers=removed) if removed else decision


def _with_servers(records: list[DecisionRecord], decision: Decision) -> list[DecisionRecord]:
    """The records, the applied one naming the servers to delete in Service Center."""
    if not decision.removed_servers:
        return records
    servers = decision.removed_servers
    return [
        record.naming_servers(servers) if record.outcome == "applied" else record
        for record in records
    ]


def _sleep(
    context: df.DurableOrchestrationContext, until: datetime | None, latest: datetime
) -> Generator[Any, Any, None]:
    """Wait for the cooldown to end (or `latest`, to notice new alerts), or for a trigger's
    wake-up call, whichever comes first."""
    wake = context.wait_for_external_event(WAKE_EVENT)
    timer = context.create_timer(latest if until is None else min(until, latest))
    winner = yield context.task_any([timer, wake])
    if winner is not timer:
        timer.cancel()


def _announce_hold(
    calls: Calls,
    scale_set_id: str,
    entity: df.EntityId,
    work: _Round,
    waiting: list[tuple[str, ScaleRequest]],
    publish: Callable[[Decision, str | None], Generator[Any, Any, None]],
) -> Generator[Any, Any, None]:
    """Say once that these requests wait for the upgrade holding the scale set."""
    hold = work.held_by
    assert hold is not None
    try:
        inspected = yield from calls.one(INSPECT_SCALE_SET, ScaleSetRef(scale_set_id))
        info = inspected.info
    # An activity that failed all its retries (a plain Exception): announce without capacity.
    except Exception:
        info = ScaleSetInfo(scale_set_id, exists=True)
    if info.solution_id is None:
        info = info._replace(solution_id=work.solution_id)
    about = f" ({hold.reason})" if hold.reason else ""
    reason = (
        f"held by upgrade {hold.holder}{about}: kept pending, decided once the upgrade "
        "releases the scale set"
    )
    yield from _announce(calls.context, entity, work, waiting, info, publish, reason)


def _announce(
    context: df.DurableOrchestrationContext,
    entity: df.EntityId,
    work: _Round,
    deferred: list[tuple[str, ScaleRequest]],
    info: ScaleSetInfo,
    publish: Callable[[Decision, str | None], Generator[Any, Any, None]],
    reason: str | None = None,
) -> Generator[Any, Any, None]:
    """Say once that these requests wait (for the cooldown, unless `reason` says what for):
    they stay pending."""
    now = context.current_utc_datetime
    until = work.cooldown_until
    if reason is None:
        reason = f"cooldown until {_zulu(until)}: kept pending, decided once when it ends"
    requests = tuple(request for _, request in deferred)
    capacity = info.capacity or 0
    representative = requests[-1]
    if len(requests) > 1:
        representative = dataclasses.replace(representative, merged_from=requests)
    records = tuple(
        DecisionRecord.of(Fate(request, Outcome.SKIPPED, reason, capacity, capacity), now, rid)
        for rid, request in deferred
    )
    announced = RecordFates(deferred=tuple(rid for rid, _ in deferred), records=records)
    yield context.call_entity(entity, "record", announced.to_json())
    notice = Decision(None, capacity, Outcome.SKIPPED, reason, False, until, representative)
    yield from publish(notice, info.solution_id)


def _change_capacity(
    calls: Calls, subscription: str, change: CapacityRequest
) -> Steps[tuple[str, str] | None]:
    """PATCH the capacity and wait for the operation; None when done, else (code, message).

    The wait is limited as a deployment's wait on a scale set is (`timeoutScale` applies). The
    solution id lets the activities mask the platform's derived keys in ARM's error messages:
    new instances run the setup extension, whose failure may quote its command.
    """
    # Imported here: the graph modules are heavy, and the worker imports this one at start.
    from outsystems.deployment import timeout_for
    from outsystems.resource_types import SCALE_SET

    limit = timeout_for(SCALE_SET, calls.tuning.timeout_scale)
    try:
        started = yield from calls.one(SET_SCALE_SET_CAPACITY, change)
        operation = yield from calls.wait_for_operation(
            started,
            subscription_id=subscription,
            solution_id=change.solution_id,
            deadline=calls.context.current_utc_datetime + limit,
            timed_out=lambda: f"still running after {limit}",
        )
    # See scale_frontends: an activity that failed all its retries is a plain Exception.
    except Exception as error:
        return ("ActivityFailed", first_line(error, 300))
    if operation.succeeded:
        return None
    failure = operation.error
    return (
        (failure.code if failure is not None else "") or operation.status,
        (failure.message if failure is not None else "") or "the operation did not succeed",
    )

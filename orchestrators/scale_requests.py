"""The durable home of one scale set's scaling requests: a Durable Entity per scale set.

The webhook, the manual API and the timer `add` requests here (a client's `signal_entity`
returns once the host has stored the signal, so an accepted request is never lost); the scaler
orchestration reads them (`take`), and once it has decided records what became of them
(`record`), which is when they leave the pending list. Nothing is removed before its fate is
recorded, so a scaler that stops half-way loses nothing: the next one finds the same requests.

State (`outsystems.messages.ScaleRequestsState`; its JSON is what `read_entity_state` reads
for `GET .../scaling`):
`{"scaleSet", "solutionId", "pending": [{"id", "request", "deferred", "alertIds"}],
"cooldownUntil", "heldBy", "decisions": [...], "recentIds": [...]}`; `decisions` keeps the
latest `MAX_DECISIONS` records, oldest first.

An upgrade holds the scale set while it works on its instances (issue 17): `hold` stores
`HoldScaleSet` as `heldBy`, and until the same holder sends `release` the scaler decides
nothing; requests keep arriving and stay pending (the scaler announces each once), and are
decided after the release. Both clear the pending requests' `deferred` mark: the wait has a new
reason, to be announced again.

Its size does not grow with the alerts pending (issue 16): the alerts of one rule and direction
are ONE pending request, the latest of them with their `count` (and the ids of the latest
`MAX_ALERT_IDS`, for a Resolved to withdraw its own share); a re-delivered request is known by
its id among the latest `RECENT_IDS` stored, the pending ones and the decisions. Manual and
timer requests stay one entry each (they are few). So an `add` costs the same whether two or
two thousand alerts wait.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import logging
import re
from collections.abc import Sequence
from datetime import UTC, datetime

import azure.durable_functions as df

from outsystems.messages import (
    AddScaleRequest,
    DecisionRecord,
    HoldScaleSet,
    PendingRequest,
    RecordFates,
    ScaleRequestsState,
    WithdrawAlert,
)
from outsystems.scaling import Fate, Outcome, ScaleRequest, ScaleSource

bp = df.Blueprint()
log = logging.getLogger(__name__)

ENTITY_NAME = "track_scale_requests"
#: Decision records kept per scale set (older ones are dropped).
MAX_DECISIONS = 50
#: Request ids remembered to store a re-delivered request once (Azure Monitor re-delivers
#: within minutes: 5, 20, 5, 40, 5 s apart).
RECENT_IDS = 256
#: Alert ids kept per pending request (the latest), for a Resolved to withdraw its share.
MAX_ALERT_IDS = 32


@functools.lru_cache(maxsize=1024)
def scale_set_key(scale_set_id: str) -> str:
    """The entity key of a scale set: stable, lowercase, URL-safe (no slashes).

    The scale set's name keeps it readable; a digest of the whole lowercased ARM id keeps it
    unique across resource groups and subscriptions (ARM ids compare case-insensitively).
    """
    normalized = scale_set_id.strip().rstrip("/").lower()
    name = re.sub(r"[^a-z0-9-]+", "-", normalized.rsplit("/", 1)[-1]).strip("-")[:40]
    digest = hashlib.sha256(normalized.encode()).hexdigest()[:16]
    return f"{name}-{digest}" if name else digest


def scale_set_entity(scale_set_id: str) -> df.EntityId:
    """The entity holding a scale set's requests."""
    return df.EntityId(ENTITY_NAME, scale_set_key(scale_set_id))


def _joins(entry: PendingRequest, request: ScaleRequest) -> bool:
    """Whether an alert's request joins this pending request (same rule and direction)."""
    other = entry.request
    return (
        other.source is ScaleSource.ALERT
        and other.rule == request.rule
        and other.kind is request.kind
    )


def add_request(
    state: ScaleRequestsState, operation: AddScaleRequest
) -> tuple[ScaleRequestsState, bool]:
    """Store one request; False when a request with this id is already known (a re-delivery).

    An alert joins the pending request of its rule and direction when there is one.
    """
    request_id = operation.id
    if (
        request_id in state.recent_ids
        or any(entry.id == request_id for entry in state.pending)
        or any(record.request_id == request_id for record in state.decisions)
    ):
        return state, False
    request = operation.request
    pending = list(state.pending)
    joined = False
    if request.source is ScaleSource.ALERT:
        for index, entry in enumerate(pending):
            if _joins(entry, request):
                latest = request if request.received_at >= entry.request.received_at else None
                kept = dataclasses.replace(
                    latest or entry.request, count=entry.request.count + request.count
                )
                ids = (*entry.alert_ids, request.source_id)[-MAX_ALERT_IDS:]
                pending[index] = entry._replace(request=kept, alert_ids=ids)
                joined = True
                break
    if not joined:
        ids = (request.source_id,) if request.source is ScaleSource.ALERT else ()
        pending.append(PendingRequest(request_id, request, alert_ids=ids))
    return (
        state._replace(
            scale_set_id=operation.scale_set_id or state.scale_set_id,
            solution_id=operation.solution_id or state.solution_id,
            pending=tuple(pending),
            recent_ids=(*state.recent_ids, request_id)[-RECENT_IDS:],
        ),
        True,
    )


def withdraw_alert(
    state: ScaleRequestsState, operation: WithdrawAlert, now: datetime
) -> tuple[ScaleRequestsState, int]:
    """Drop the pending requests of the alert a `Resolved` notification resolves; how many.

    A signal without `alertId` (sent by an older version of the app, which withdrew by rule)
    withdraws nothing.
    """
    alert_id = operation.alert_id
    if alert_id is None:
        log.warning("withdraw without an alertId ignored: %s", operation.to_json())
        return state, 0
    # Ids compared case-insensitively, as ARM compares resource ids; Fired and Resolved share
    # alertId, so other alerts of the same rule keep their share.
    key = alert_id.casefold()
    label = operation.rule or alert_id
    reason = f"withdrawn: alert {label} resolved before the request was decided"
    remaining: list[PendingRequest] = []
    records: list[DecisionRecord] = []
    withdrawn = 0
    for entry in state.pending:
        request = entry.request
        ids = tuple(i for i in entry.alert_ids if i.casefold() != key)
        if request.source is not ScaleSource.ALERT or len(ids) == len(entry.alert_ids):
            remaining.append(entry)
            continue
        share = len(entry.alert_ids) - len(ids)
        withdrawn += share
        stored = next(i for i in entry.alert_ids if i.casefold() == key)
        gone = dataclasses.replace(request, source_id=stored, count=share)
        records.append(
            DecisionRecord.of(Fate(gone, Outcome.SKIPPED, reason, None, None), now, entry.id)
        )
        if request.count > share:
            left = dataclasses.replace(
                request,
                count=request.count - share,
                source_id=ids[-1] if ids else request.source_id,
            )
            remaining.append(entry._replace(request=left, alert_ids=ids))
    if not withdrawn:
        return state, 0
    return append_records(state._replace(pending=tuple(remaining)), records), withdrawn


def _unannounced(pending: tuple[PendingRequest, ...]) -> tuple[PendingRequest, ...]:
    return tuple(entry._replace(deferred=False) for entry in pending)


def hold(state: ScaleRequestsState, operation: HoldScaleSet) -> ScaleRequestsState:
    """Hold the scaler's capacity changes for an upgrade. Holding again with the same holder
    changes nothing (a replayed signal); another holder takes over the hold (one operation of a
    platform runs at a time, so the previous holder is over)."""
    current = state.held_by
    if current is not None and current.holder == operation.holder:
        return state
    if current is not None:
        log.warning("hold of %s replaces the hold of %s", operation.holder, current.holder)
    return state._replace(held_by=operation, pending=_unannounced(state.pending))


def release(state: ScaleRequestsState, operation: HoldScaleSet) -> tuple[ScaleRequestsState, bool]:
    """Release the hold; False (nothing changes) when `operation` is not the current holder."""
    current = state.held_by
    if current is None or current.holder != operation.holder:
        return state, False
    return state._replace(held_by=None, pending=_unannounced(state.pending)), True


def record_fates(state: ScaleRequestsState, operation: RecordFates) -> ScaleRequestsState:
    """Apply what the scaler decided: settled requests leave, deferred ones are marked."""
    settled, deferred = set(operation.settled), set(operation.deferred)
    pending: list[PendingRequest] = []
    for entry in state.pending:
        if entry.id in settled:
            # Alerts that joined it after the scaler took it were not decided: they stay.
            decided = operation.counts.get(entry.id, entry.request.count)
            left = entry.request.count - decided
            if left > 0:
                request = dataclasses.replace(entry.request, count=left)
                ids = entry.alert_ids[-left:]
                pending.append(PendingRequest(entry.id, request, False, ids))
            continue
        pending.append(entry._replace(deferred=entry.deferred or entry.id in deferred))
    state = state._replace(pending=tuple(pending))
    if operation.sets_cooldown:
        state = state._replace(cooldown_until=operation.cooldown_until)
    # A cooldown notice for a request withdrawn since the scaler took it (its alert resolved
    # meanwhile) speaks of a request no longer pending: the withdrawal is its last record.
    still = {entry.id for entry in state.pending}
    records = [
        r for r in operation.records if r.request_id not in deferred or r.request_id in still
    ]
    return append_records(state, records)


def append_records(
    state: ScaleRequestsState, records: Sequence[DecisionRecord]
) -> ScaleRequestsState:
    return state._replace(decisions=(*state.decisions, *records)[-MAX_DECISIONS:])


@bp.entity_trigger(context_name="context", entity_name=ENTITY_NAME)
def track_scale_requests(context: df.DurableEntityContext) -> None:
    """Operations: `add`, `withdraw`, `take`, `record`, `hold`, `release` (see the module
    docstring)."""
    state = ScaleRequestsState.from_json(context.get_state(lambda: None))
    operation = context.operation_name
    data = context.get_input()
    if operation == "add":
        # Read before touching the state: the SDK keeps state changes of a failed operation.
        state, added = add_request(state, AddScaleRequest.from_json(data))
        if not added:
            log.info("request %s already known to %s", data.get("id"), context.entity_key)
        context.set_result(added)
    elif operation == "withdraw":
        state, withdrawn = withdraw_alert(state, WithdrawAlert.from_json(data), datetime.now(UTC))
        context.set_result(withdrawn)
    elif operation == "take":
        context.set_result(state.to_json(decisions=False))
    elif operation == "record":
        state = record_fates(state, RecordFates.from_json(data))
        context.set_result(state.to_json(decisions=False))
    elif operation == "hold":
        state = hold(state, HoldScaleSet.from_json(data))
        context.set_result(True)
    elif operation == "release":
        state, released = release(state, HoldScaleSet.from_json(data))
        if not released:
            log.info("release by %s ignored by %s", data.get("holder"), context.entity_key)
        context.set_result(released)
    else:
        raise ValueError(f"unknown operation {operation!r} of {ENTITY_NAME}")
    context.set_state(state.to_json())

"""The durable home of one scale set's scaling requests: a Durable Entity per scale set.

The webhook, the manual API and the timer `add` requests here (a client's `signal_entity`
returns once the host has stored the signal, so an accepted request is never lost); the scaler
orchestration reads them (`take`), and once it has decided records what became of them
(`record`), which is when they leave the pending list. Nothing is removed before its fate is
recorded, so a scaler that stops half-way loses nothing: the next one finds the same requests.

State (`outsystems.messages.ScaleRequestsState`; its JSON is what `read_entity_state` reads
for `GET .../scaling`):
`{"scaleSet", "solutionId", "pending": [{"id", "request", "deferred"}], "cooldownUntil",
"decisions": [...]}`; `decisions` keeps the latest `MAX_DECISIONS` records, oldest first.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Sequence
from datetime import UTC, datetime

import azure.durable_functions as df

from outsystems.messages import (
    AddScaleRequest,
    DecisionRecord,
    PendingRequest,
    RecordFates,
    ScaleRequestsState,
    WithdrawAlert,
)
from outsystems.scaling import Fate, Outcome, withdraw

bp = df.Blueprint()
log = logging.getLogger(__name__)

ENTITY_NAME = "track_scale_requests"
#: Decision records kept per scale set (older ones are dropped).
MAX_DECISIONS = 50


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


def add_request(
    state: ScaleRequestsState, operation: AddScaleRequest
) -> tuple[ScaleRequestsState, bool]:
    """Store one request; False when a request with this id is already known (a re-delivery)."""
    known: set[str | None] = {entry.id for entry in state.pending}
    known.update(record.request_id for record in state.decisions)
    if operation.id in known:
        return state, False
    return (
        state._replace(
            scale_set_id=operation.scale_set_id or state.scale_set_id,
            solution_id=operation.solution_id or state.solution_id,
            pending=(*state.pending, PendingRequest(operation.id, operation.request)),
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
    kept = {id(request) for request in withdraw([e.request for e in state.pending], alert_id)}
    gone = [entry for entry in state.pending if id(entry.request) not in kept]
    if not gone:
        return state, 0
    label = operation.rule or alert_id
    reason = f"withdrawn: alert {label} resolved before the request was decided"
    records = [
        DecisionRecord.of(Fate(entry.request, Outcome.SKIPPED, reason, None, None), now, entry.id)
        for entry in gone
    ]
    remaining = tuple(entry for entry in state.pending if id(entry.request) in kept)
    return append_records(state._replace(pending=remaining), records), len(gone)


def record_fates(state: ScaleRequestsState, operation: RecordFates) -> ScaleRequestsState:
    """Apply what the scaler decided: settled requests leave, deferred ones are marked."""
    settled, deferred = set(operation.settled), set(operation.deferred)
    pending = tuple(
        entry._replace(deferred=entry.deferred or entry.id in deferred)
        for entry in state.pending
        if entry.id not in settled
    )
    state = state._replace(pending=pending)
    if operation.sets_cooldown:
        state = state._replace(cooldown_until=operation.cooldown_until)
    return append_records(state, operation.records)


def append_records(
    state: ScaleRequestsState, records: Sequence[DecisionRecord]
) -> ScaleRequestsState:
    return state._replace(decisions=(*state.decisions, *records)[-MAX_DECISIONS:])


@bp.entity_trigger(context_name="context", entity_name=ENTITY_NAME)
def track_scale_requests(context: df.DurableEntityContext) -> None:
    """Operations: `add`, `withdraw`, `take`, `record` (see the module docstring)."""
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
    else:
        raise ValueError(f"unknown operation {operation!r} of {ENTITY_NAME}")
    context.set_state(state.to_json())

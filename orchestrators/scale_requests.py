"""The durable home of one scale set's scaling requests: a Durable Entity per scale set.

The webhook, the manual API and the timer `add` requests here (a client's `signal_entity`
returns once the host has stored the signal, so an accepted request is never lost); the scaler
orchestration reads them (`take`), and once it has decided records what became of them
(`record`), which is when they leave the pending list. Nothing is removed before its fate is
recorded, so a scaler that stops half-way loses nothing: the next one finds the same requests.

State (plain JSON, readable with `read_entity_state` for `GET .../scaling`):
`{"scaleSet", "solutionId", "pending": [{"id", "request", "deferred"}], "cooldownUntil",
"decisions": [...]}`; `decisions` keeps the latest `MAX_DECISIONS` records, oldest first.
"""

from __future__ import annotations

import hashlib
import logging
import re
from datetime import UTC, datetime
from typing import Any

import azure.durable_functions as df

from outsystems.scaling import Fate, Outcome, ScaleRequest, withdraw

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


def empty_state() -> dict[str, Any]:
    return {
        "scaleSet": None,
        "solutionId": None,
        "pending": [],
        "cooldownUntil": None,
        "decisions": [],
    }


def snapshot(state: dict[str, Any]) -> dict[str, Any]:
    """What `take` and `record` answer: everything but the decision records."""
    return {key: value for key, value in state.items() if key != "decisions"}


def add_request(state: dict[str, Any], operation: dict[str, Any]) -> bool:
    """Store one request; False when a request with this id is already known (a re-delivery)."""
    request_id = str(operation["id"])
    # Validate before touching the state: the SDK keeps state changes of a failed operation.
    request = ScaleRequest.from_json(operation["request"])
    known = {entry["id"] for entry in state["pending"]}
    known.update(record.get("requestId") for record in state["decisions"])
    if request_id in known:
        return False
    if operation.get("scaleSet"):
        state["scaleSet"] = operation["scaleSet"]
    if operation.get("solutionId"):
        state["solutionId"] = operation["solutionId"]
    state["pending"].append(
        {"id": request_id, "request": ScaleRequest.to_json(request), "deferred": False}
    )
    return True


def withdraw_alert(state: dict[str, Any], operation: dict[str, Any], now: datetime) -> int:
    """Drop the pending requests of the alert a `Resolved` notification resolves; how many.

    `operation` is `{"alertId", "rule"}`; a signal without `alertId` (sent by an older version
    of the app, which withdrew by rule) withdraws nothing.
    """
    alert_id = operation.get("alertId")
    if not isinstance(alert_id, str) or not alert_id:
        log.warning("withdraw without an alertId ignored: %s", operation)
        return 0
    entries = [(entry, ScaleRequest.from_json(entry["request"])) for entry in state["pending"]]
    kept = {id(request) for request in withdraw([r for _, r in entries], alert_id)}
    gone = [(entry, request) for entry, request in entries if id(request) not in kept]
    if not gone:
        return 0
    state["pending"] = [entry for entry, request in entries if id(request) in kept]
    label = operation.get("rule") or alert_id
    reason = f"withdrawn: alert {label} resolved before the request was decided"
    append_records(
        state,
        [
            {
                **Fate(request, Outcome.SKIPPED, reason, None, None).to_record(now),
                "requestId": entry["id"],
            }
            for entry, request in gone
        ],
    )
    return len(gone)


def record_fates(state: dict[str, Any], operation: dict[str, Any]) -> None:
    """Apply what the scaler decided: settled requests leave, deferred ones are marked."""
    settled = set(operation.get("settled") or ())
    deferred = set(operation.get("deferred") or ())
    state["pending"] = [
        {**entry, "deferred": entry["deferred"] or entry["id"] in deferred}
        for entry in state["pending"]
        if entry["id"] not in settled
    ]
    if "cooldownUntil" in operation:
        state["cooldownUntil"] = operation["cooldownUntil"]
    append_records(state, list(operation.get("records") or ()))


def append_records(state: dict[str, Any], records: list[dict[str, Any]]) -> None:
    state["decisions"] = [*state["decisions"], *records][-MAX_DECISIONS:]


@bp.entity_trigger(context_name="context", entity_name=ENTITY_NAME)
def track_scale_requests(context: df.DurableEntityContext) -> None:
    """Operations: `add`, `withdraw`, `take`, `record` (see the module docstring)."""
    state: dict[str, Any] = {**empty_state(), **(context.get_state(empty_state) or {})}
    operation = context.operation_name
    data = context.get_input()
    if operation == "add":
        added = add_request(state, data)
        if not added:
            log.info("request %s already known to %s", data.get("id"), context.entity_key)
        context.set_result(added)
    elif operation == "withdraw":
        context.set_result(withdraw_alert(state, dict(data or {}), datetime.now(UTC)))
    elif operation == "take":
        context.set_result(snapshot(state))
    elif operation == "record":
        record_fates(state, data)
        context.set_result(snapshot(state))
    else:
        raise ValueError(f"unknown operation {operation!r} of {ENTITY_NAME}")
    context.set_state(state)

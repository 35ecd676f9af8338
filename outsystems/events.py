"""CloudEvents 1.0 for every change of state, and their Azure Storage queue encoding.

Events are built from values passed in (ids and times included), so the orchestrations that
publish them stay deterministic; an activity puts the encoded message on the queue
(`PLATFORM_EVENTS_QUEUE`). Azure Functions queue triggers expect base64 message text by default,
hence `encode_queue_message`.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Mapping
from datetime import datetime
from enum import StrEnum
from typing import Any

from outsystems.scaling import Decision
from outsystems.times import utc_z

SPEC_VERSION = "1.0"
DEFAULT_SOURCE = "/outsystems-azure-ops"
CONTENT_TYPE = "application/json"
# Azure Storage queues take messages of at most 64 KiB, measured on the (base64) text.
MAX_QUEUE_MESSAGE = 64 * 1024

_SUBJECT = re.compile(r"[a-z][a-z0-9]{0,5}(/(dev|test|prod|life))?")
# Field names that would carry a secret: events are stored and read by anyone with queue access.
# References to secrets (a Key Vault secret id, the name of the setting holding it) are fine.
_SECRET_NAME = re.compile(
    r"password|passwd|pwd|secret|token|privatekey|connectionstring|accountkey|functionkey|apikey"
)
_REFERENCE_SUFFIXES = ("id", "ids", "uri", "url", "name", "setting")


class EventType(StrEnum):
    """The event types of the API contract."""

    DEPLOYMENT_STARTED = "outsystems.deployment.started"
    DEPLOYMENT_SUCCEEDED = "outsystems.deployment.succeeded"
    DEPLOYMENT_FAILED = "outsystems.deployment.failed"
    DEPLOYMENT_CANCELED = "outsystems.deployment.canceled"
    ENVIRONMENT_SUCCEEDED = "outsystems.environment.succeeded"
    ENVIRONMENT_FAILED = "outsystems.environment.failed"
    SCALE_APPLIED = "outsystems.scale.applied"
    SCALE_SKIPPED = "outsystems.scale.skipped"
    TEARDOWN_SUCCEEDED = "outsystems.teardown.succeeded"
    TEARDOWN_FAILED = "outsystems.teardown.failed"
    PLATFORM_DRIFTED = "outsystems.platform.drifted"
    UPGRADE_STARTED = "outsystems.upgrade.started"
    UPGRADE_STEP = "outsystems.upgrade.step"
    UPGRADE_PAUSED = "outsystems.upgrade.paused"
    UPGRADE_APPROVED = "outsystems.upgrade.approved"
    UPGRADE_SUCCEEDED = "outsystems.upgrade.succeeded"
    UPGRADE_FAILED = "outsystems.upgrade.failed"
    UPGRADE_CANCELED = "outsystems.upgrade.canceled"


class EventError(ValueError):
    """An event that must not be published, or a queue message that is not an event."""


def cloud_event(
    type: str,  # the parameters are named after the CloudEvents attributes
    subject: str,
    data: Mapping[str, Any],
    *,
    id: str,
    time: datetime,
    source: str = DEFAULT_SOURCE,
) -> dict[str, Any]:
    """A structured-mode CloudEvent (JSON) of one of the contract's types.

    `subject` is `<solutionId>` or `<solutionId>/<env>`. Raises `EventError` for an unknown
    type, a malformed subject, an empty id or source, a naive time, data that is not JSON, or a
    data field whose name says it holds a secret.
    """
    try:
        event_type = EventType(type)
    except ValueError:
        known = ", ".join(member.value for member in EventType)
        raise EventError(f"unknown event type {type!r}; known types: {known}") from None
    if not _SUBJECT.fullmatch(subject):
        raise EventError(f"event subject {subject!r} is not <solutionId>[/<env>]")
    if not id:
        raise EventError("event id must not be empty")
    if not source:
        raise EventError("event source must not be empty")
    if time.tzinfo is None or time.utcoffset() is None:
        raise EventError(f"event time must be an aware datetime, not {time!r}")
    secret = _secret_field(data)
    if secret is not None:
        raise EventError(f"event data field {secret!r} looks like a secret; events carry none")
    try:
        # Round-trip so the event holds plain JSON values only, detached from the caller's data.
        payload = json.loads(json.dumps(data, allow_nan=False))
    except (TypeError, ValueError) as error:
        raise EventError(f"event data is not JSON: {error}") from error
    return {
        "specversion": SPEC_VERSION,
        "id": id,
        "source": source,
        "type": event_type.value,
        "subject": subject,
        "time": _rfc3339(time),
        "datacontenttype": CONTENT_TYPE,
        "data": payload,
    }


def _secret_field(value: object, path: str = "data") -> str | None:
    if isinstance(value, Mapping):
        for key, item in value.items():
            name = str(key)
            where = f"{path}.{name}"
            letters = re.sub(r"[^a-z]", "", name.lower())
            if _SECRET_NAME.search(letters) and not letters.endswith(_REFERENCE_SUFFIXES):
                return where
            found = _secret_field(item, where)
            if found is not None:
                return found
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            found = _secret_field(item, f"{path}[{index}]")
            if found is not None:
                return found
    return None


def _rfc3339(moment: datetime) -> str:
    return utc_z(moment)


def scale_event(
    solution_id: str, scale_set_id: str, decision: Decision, *, id: str, time: datetime
) -> dict[str, Any]:
    """`outsystems.scale.applied|skipped` for one decision of the scaler (never one per alert:
    a storm of requests coalesced into one decision is one event, `requests` counts them)."""
    request = decision.request
    data = {
        "scaleSet": scale_set_id,
        "source": request.source.value,
        "sourceId": request.source_id,
        "direction": decision.direction,
        "from": decision.from_capacity,
        "to": decision.to_capacity,
        "outcome": decision.outcome.value,
        "reason": decision.reason,
        "requests": decision.request.requests,
        "serversToRemove": list(decision.removed_servers),
        "cooldownUntil": (
            None if decision.cooldown_until is None else _rfc3339(decision.cooldown_until)
        ),
    }
    applied = decision.target is not None
    return cloud_event(
        EventType.SCALE_APPLIED if applied else EventType.SCALE_SKIPPED,
        f"{solution_id}/prod",
        data,
        id=id,
        time=time,
    )


def encode_queue_message(event: Mapping[str, Any]) -> str:
    """The queue message text of `event`: its JSON, UTF-8, base64 (the Functions default)."""
    text = json.dumps(event, separators=(",", ":"), ensure_ascii=False)
    message = base64.b64encode(text.encode("utf-8")).decode("ascii")
    if len(message) > MAX_QUEUE_MESSAGE:
        raise EventError(
            f"event {event.get('id')!r} encodes to {len(message)} characters; a queue message "
            f"holds at most {MAX_QUEUE_MESSAGE}"
        )
    return message

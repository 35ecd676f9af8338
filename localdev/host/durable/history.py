"""History events and times as the Durable extension hands them to the Python SDK.

Event field names and numbers follow the extension (see the protocol note); timestamps are UTC
ISO-8601 with microseconds and a ``Z`` (the SDK parses them with dateutil), status times are
``yyyy-MM-ddTHH:mm:ssZ``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import IntEnum
from typing import Any


class EventType(IntEnum):
    EXECUTION_STARTED = 0
    EXECUTION_COMPLETED = 1
    EXECUTION_FAILED = 2
    EXECUTION_TERMINATED = 3
    TASK_SCHEDULED = 4
    TASK_COMPLETED = 5
    TASK_FAILED = 6
    SUB_ORCHESTRATION_CREATED = 7
    SUB_ORCHESTRATION_COMPLETED = 8
    SUB_ORCHESTRATION_FAILED = 9
    TIMER_CREATED = 10
    TIMER_FIRED = 11
    ORCHESTRATOR_STARTED = 12
    ORCHESTRATOR_COMPLETED = 13
    EVENT_SENT = 14
    EVENT_RAISED = 15
    CONTINUE_AS_NEW = 16


class ActionType(IntEnum):
    CALL_ACTIVITY = 0
    CALL_ACTIVITY_WITH_RETRY = 1
    CALL_SUB_ORCHESTRATOR = 2
    CALL_SUB_ORCHESTRATOR_WITH_RETRY = 3
    CONTINUE_AS_NEW = 4
    CREATE_TIMER = 5
    WAIT_FOR_EXTERNAL_EVENT = 6
    CALL_ENTITY = 7
    CALL_HTTP = 8
    SIGNAL_ENTITY = 9
    WHEN_ANY = 11
    WHEN_ALL = 12


# Completion events and the field naming the event id of the task they complete.
COMPLETION_KEYS: dict[int, str] = {
    EventType.TASK_COMPLETED: "TaskScheduledId",
    EventType.TASK_FAILED: "TaskScheduledId",
    EventType.SUB_ORCHESTRATION_COMPLETED: "TaskScheduledId",
    EventType.SUB_ORCHESTRATION_FAILED: "TaskScheduledId",
    EventType.TIMER_FIRED: "TimerId",
}

TERMINAL_STATUSES = frozenset({"Completed", "Failed", "Terminated"})
RUNNING_STATUSES = frozenset({"Pending", "Running", "ContinuedAsNew", "Suspended"})


def utcnow() -> datetime:
    return datetime.now(UTC)


def format_timestamp(moment: datetime) -> str:
    """Event timestamp: ``2024-05-01T10:11:12.123456Z``."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def format_status_time(moment: datetime) -> str:
    """Status times as the Durable HTTP API shows them: ``yyyy-MM-ddTHH:mm:ssZ``."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text: str) -> datetime:
    """Parse an ISO time as the SDK writes it (``...Z``, fractional seconds optional)."""
    value = text.strip()
    if value.endswith("Z"):
        value = value[:-1] + "+00:00"
    # Python 3.11 accepts up to 6 fractional digits; .NET writes 7.
    if "." in value:
        head, _, tail = value.partition(".")
        digits = ""
        rest = ""
        for index, char in enumerate(tail):
            if not char.isdigit():
                rest = tail[index:]
                break
            digits += char
        value = f"{head}.{digits[:6].ljust(6, '0')}{rest}"
    moment = datetime.fromisoformat(value)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def make_event(
    event_type: EventType, moment: datetime, event_id: int = -1, **fields: Any
) -> dict[str, Any]:
    """A history event as stored (``IsPlayed`` is added when the history is handed over)."""
    event: dict[str, Any] = {
        "EventType": int(event_type),
        "EventId": event_id,
        "Timestamp": format_timestamp(moment),
    }
    event.update(fields)
    return event


def event_name(event_type: int) -> str:
    """``TaskScheduled`` style name of an event type (for the status API's history)."""
    names = {
        0: "ExecutionStarted",
        1: "ExecutionCompleted",
        2: "ExecutionFailed",
        3: "ExecutionTerminated",
        4: "TaskScheduled",
        5: "TaskCompleted",
        6: "TaskFailed",
        7: "SubOrchestrationInstanceCreated",
        8: "SubOrchestrationInstanceCompleted",
        9: "SubOrchestrationInstanceFailed",
        10: "TimerCreated",
        11: "TimerFired",
        12: "OrchestratorStarted",
        13: "OrchestratorCompleted",
        14: "EventSent",
        15: "EventRaised",
        16: "ContinueAsNew",
    }
    return names.get(event_type, f"Event{event_type}")

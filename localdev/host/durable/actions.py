"""What an episode decides: the SDK's answer turned into history events, work and an outcome.

Pure (no store, no I/O): given the instance, the events delivered and what the orchestrator
returned, `decide` numbers the new actions' events exactly as the SDK numbers its tasks while it
replays (replay schema V2: one flat, cumulative action list; only the actions past those already
scheduled are new), applies what Durable Task's retry interceptor does for retried tasks (a
failure schedules a retry timer, the timer a new attempt, each taking the next event id), and
concludes the instance: Running, Completed, Failed or ContinuedAsNew, with the closing history
events and the message for its parent.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from localdev.host.durable.history import (
    COMPLETION_KEYS,
    ActionType,
    EventType,
    format_timestamp,
    make_event,
    parse_time,
)
from localdev.host.durable.store import InstanceRow
from localdev.host.durable.versioning import VersionPolicy

HTTP_ACTIVITY_NAME = "BuiltIn::HttpActivity"
_TASK_ACTIONS = frozenset(
    {
        ActionType.CALL_ACTIVITY,
        ActionType.CALL_ACTIVITY_WITH_RETRY,
        ActionType.CALL_SUB_ORCHESTRATOR,
        ActionType.CALL_SUB_ORCHESTRATOR_WITH_RETRY,
    }
)
_RETRY_ACTIONS = frozenset(
    {ActionType.CALL_ACTIVITY_WITH_RETRY, ActionType.CALL_SUB_ORCHESTRATOR_WITH_RETRY}
)


@dataclass
class Episode:
    """What one episode decided; written in one transaction, acted on after the commit."""

    instance: InstanceRow
    now: datetime
    next_id: int
    retries: dict[str, dict[str, Any]]
    versioning: VersionPolicy
    events: list[dict[str, Any]] = field(default_factory=list)
    activities: list[tuple[int, str, str | None]] = field(default_factory=list)
    timers: list[tuple[int, datetime, str]] = field(default_factory=list)
    children: list[tuple[str, str, str | None, int, str | None]] = field(default_factory=list)
    entity_ops: list[tuple[str, str, str | None, bool, str]] = field(default_factory=list)
    self_messages: list[dict[str, Any]] = field(default_factory=list)
    continue_input: str | None = None
    continued: bool = False
    #: ExecutionCompleted or ExecutionFailed when the instance ended in this episode.
    closing: list[dict[str, Any]] = field(default_factory=list)
    #: SubOrchestrationInstanceCompleted/Failed for the parent, when the instance ended.
    parent_message: dict[str, Any] | None = None

    def take_id(self) -> int:
        event_id = self.next_id
        self.next_id += 1
        return event_id


def decide(
    instance: InstanceRow,
    now: datetime,
    new_events: list[dict[str, Any]],
    state: dict[str, Any],
    error: str | None,
    versioning: VersionPolicy,
) -> Episode:
    """The episode's events, work and outcome; updates the instance's status, output, custom
    status and engine state (what the next episode needs to number its events)."""
    engine_state = instance.engine_state
    work = Episode(
        instance=instance,
        now=now,
        next_id=int(engine_state.get("next_id", 0)),
        retries=dict(engine_state.get("retries", {})),
        versioning=versioning,
    )
    is_done = bool(state.get("isDone")) and error is None
    finished = is_done or error is not None
    if not finished:
        _retry_consequences(work, new_events)
    else:
        for event in new_events:
            if event["EventType"] in COMPLETION_KEYS:
                work.retries.pop(str(event[COMPLETION_KEYS[event["EventType"]]]), None)
    actions = _flatten(state)
    done = int(engine_state.get("actions", 0))
    for action in actions[done:]:
        _schedule(work, action)
    if is_done and any(a.get("actionType") == ActionType.CONTINUE_AS_NEW for a in actions):
        work.continued = True
        for action in actions:
            if action.get("actionType") == ActionType.CONTINUE_AS_NEW:
                work.continue_input = action.get("input")
    custom_status = state.get("customStatus")
    instance.custom_status = None if custom_status is None else json.dumps(custom_status)
    instance.engine_state = {
        "actions": len(actions),
        "next_id": work.next_id,
        "retries": work.retries,
    }
    _conclude(work, state, error, is_done)
    return work


def _conclude(work: Episode, state: dict[str, Any], error: str | None, is_done: bool) -> None:
    instance, now = work.instance, work.now
    if error is not None:
        instance.runtime_status = "Failed"
        message = f"Orchestrator function '{instance.name}' failed: {error}"
        instance.output = json.dumps(message)
        work.closing.append(
            make_event(
                EventType.EXECUTION_FAILED,
                now,
                OrchestrationStatus="Failed",
                Reason=message,
                Details=error,
            )
        )
        work.parent_message = make_event(
            EventType.SUB_ORCHESTRATION_FAILED,
            now,
            TaskScheduledId=instance.parent_task_id,
            Reason=message,
            Details=error,
        )
    elif work.continued:
        instance.runtime_status = "ContinuedAsNew"
    elif is_done:
        instance.runtime_status = "Completed"
        instance.output = json.dumps(state.get("output"))
        work.closing.append(
            make_event(
                EventType.EXECUTION_COMPLETED,
                now,
                OrchestrationStatus="Completed",
                Result=instance.output,
            )
        )
        work.parent_message = make_event(
            EventType.SUB_ORCHESTRATION_COMPLETED,
            now,
            TaskScheduledId=instance.parent_task_id,
            Result=instance.output,
        )
    else:
        instance.runtime_status = "Running"
    instance.last_updated_time = format_timestamp(now)


def _flatten(state: dict[str, Any]) -> list[dict[str, Any]]:
    actions = state.get("actions") or []
    if int(state.get("schemaVersion", 0)) >= 1:
        return list(actions[0]) if actions else []
    return [action for group in actions for action in group]


def _retry_consequences(work: Episode, new_events: list[dict[str, Any]]) -> None:
    """What Durable Task's retry interceptor does on a retried task's failure or timer."""
    for event in new_events:
        event_type = event["EventType"]
        if event_type in (EventType.TASK_COMPLETED, EventType.SUB_ORCHESTRATION_COMPLETED):
            work.retries.pop(str(event["TaskScheduledId"]), None)
        elif event_type in (EventType.TASK_FAILED, EventType.SUB_ORCHESTRATION_FAILED):
            entry = work.retries.pop(str(event["TaskScheduledId"]), None)
            if entry is None:
                continue
            timer_id = work.take_id()
            delay = entry["interval_ms"] if entry["attempt"] < entry["max"] else 0
            fire_at = work.now + timedelta(milliseconds=delay)
            fire_text = format_timestamp(fire_at)
            work.events.append(
                make_event(EventType.TIMER_CREATED, work.now, timer_id, FireAt=fire_text)
            )
            work.timers.append((timer_id, fire_at, fire_text))
            work.retries[str(timer_id)] = dict(entry, phase="timer")
        elif event_type == EventType.TIMER_FIRED:
            entry = work.retries.pop(str(event["TimerId"]), None)
            if entry is None or entry["attempt"] >= entry["max"]:
                continue
            task_id = work.take_id()
            _schedule_task(work, task_id, entry)
            work.retries[str(task_id)] = dict(entry, attempt=entry["attempt"] + 1, phase="task")


def _schedule_task(work: Episode, task_id: int, entry: dict[str, Any]) -> None:
    if entry["kind"] == "activity":
        work.events.append(
            make_event(
                EventType.TASK_SCHEDULED,
                work.now,
                task_id,
                Name=entry["name"],
                Input=entry["input"],
            )
        )
        work.activities.append((task_id, entry["name"], entry["input"]))
    else:
        child_id = entry.get("instance") or f"{work.instance.instance_id}:{task_id}"
        # The default applies when the child is created: after a redeploy with a new
        # defaultVersion, a child of an older instance gets the new one (as in Azure).
        version = work.versioning.version_for_new(entry.get("version"))
        work.events.append(
            make_event(
                EventType.SUB_ORCHESTRATION_CREATED,
                work.now,
                task_id,
                Name=entry["name"],
                InstanceId=child_id,
                Input=entry["input"],
                Version=version or "",
            )
        )
        work.children.append((child_id, entry["name"], entry["input"], task_id, version))


def _schedule(work: Episode, action: dict[str, Any]) -> None:
    """Turn one new action into history events and work, taking event ids in order."""
    action_type = action.get("actionType")
    if action_type in (ActionType.WHEN_ALL, ActionType.WHEN_ANY):
        for child in action.get("compoundActions") or []:
            _schedule(work, child)
        return
    if action_type == ActionType.WAIT_FOR_EXTERNAL_EVENT:
        return
    event_id = work.take_id()
    if action_type in _TASK_ACTIONS:
        is_activity = action_type in (
            ActionType.CALL_ACTIVITY,
            ActionType.CALL_ACTIVITY_WITH_RETRY,
        )
        entry: dict[str, Any] = {
            "kind": "activity" if is_activity else "orchestrator",
            "name": action["functionName"],
            "input": action.get("input"),
            "instance": action.get("instanceId"),
            "version": action.get("version"),
            "attempt": 1,
            "phase": "task",
        }
        _schedule_task(work, event_id, entry)
        if action_type in _RETRY_ACTIONS:
            options = action.get("retryOptions") or {}
            entry["max"] = int(options.get("maxNumberOfAttempts", 1))
            entry["interval_ms"] = int(options.get("firstRetryIntervalInMilliseconds", 1000))
            work.retries[str(event_id)] = entry
    elif action_type == ActionType.CONTINUE_AS_NEW:
        work.continue_input = action.get("input")
    elif action_type == ActionType.CREATE_TIMER:
        fire_text = str(action["fireAt"])
        work.events.append(
            make_event(EventType.TIMER_CREATED, work.now, event_id, FireAt=fire_text)
        )
        if not action.get("isCanceled"):
            work.timers.append((event_id, parse_time(fire_text), fire_text))
    elif action_type in (ActionType.CALL_ENTITY, ActionType.SIGNAL_ENTITY):
        _send_to_entity(work, event_id, action)
    elif action_type == ActionType.CALL_HTTP:
        work.events.append(
            make_event(
                EventType.TASK_SCHEDULED,
                work.now,
                event_id,
                Name=HTTP_ACTIVITY_NAME,
                Input=json.dumps(action.get("httpRequest")),
            )
        )
        work.self_messages.append(
            make_event(
                EventType.TASK_FAILED,
                work.now,
                TaskScheduledId=event_id,
                Reason="Durable HTTP (call_http) is not supported by the local host",
                Details="",
            )
        )
    else:
        raise ValueError(f"unsupported action type {action_type!r}: {action}")


def _send_to_entity(work: Episode, event_id: int, action: dict[str, Any]) -> None:
    """An entity call or signal: an EventSent event and an operation for the entity."""
    signal = action.get("actionType") == ActionType.SIGNAL_ENTITY
    request_id = str(uuid.uuid4())
    target = str(action["instanceId"])
    request = {
        "id": request_id,
        "op": action.get("operation"),
        "signal": signal,
        "input": action.get("input"),
        "parent": None if signal else work.instance.instance_id,
    }
    work.events.append(
        make_event(
            EventType.EVENT_SENT,
            work.now,
            event_id,
            Name="op",
            InstanceId=target,
            Input=json.dumps(request),
        )
    )
    work.entity_ops.append(
        (target, str(action.get("operation")), action.get("input"), signal, request_id)
    )

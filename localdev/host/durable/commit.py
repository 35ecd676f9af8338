"""Writing an episode into the task hub, in one transaction, and what to set going after it.

Everything an episode decided (`actions.Episode`) is committed before anything is dispatched:
the history it appended, the messages it consumed, activity work items, timer messages (visible
when they fire), messages to itself, new sub-orchestration instances, entity operations, the
message to its parent, a fresh execution when it continued as new, and the instance's status.
A host killed at any point therefore restarts from a consistent hub. The commit answers with
the `Followups`: the work items to run and the instances and entities to wake.
"""

from __future__ import annotations

import sqlite3
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from localdev.host.app_loader import IndexedApp
from localdev.host.durable.actions import Episode
from localdev.host.durable.history import (
    RUNNING_STATUSES,
    TERMINAL_STATUSES,
    EventType,
    format_timestamp,
    make_event,
)
from localdev.host.durable.store import InstanceRow, MessageRow, TaskHubStore


@dataclass
class Followups:
    """What to set going once a step is committed."""

    #: Activity work items to run.
    activities: list[int] = field(default_factory=list)
    #: Instances with new messages.
    instances: set[str] = field(default_factory=set)
    #: Entities with new operations.
    entities: set[str] = field(default_factory=set)
    #: (visible_at, instance id) of timer messages to deliver when they fire.
    timers: list[tuple[str, str]] = field(default_factory=list)
    #: The instance reached a terminal status: whoever waits for it may stop waiting.
    finished: bool = False


def create_instance(
    store: TaskHubStore,
    db: sqlite3.Connection,
    instance_id: str,
    name: str,
    input_text: str | None,
    version: str | None,
    now: datetime,
    parent: tuple[str, str, int] | None = None,
) -> None:
    """A new Pending instance and its ExecutionStarted message (`parent`: instance, execution,
    task id of the orchestration that started it as a sub-orchestration)."""
    execution_id = uuid.uuid4().hex
    stamp = format_timestamp(now)
    store.put_instance(
        db,
        InstanceRow(
            instance_id=instance_id,
            name=name,
            version=version,
            execution_id=execution_id,
            runtime_status="Pending",
            input=input_text,
            output=None,
            custom_status=None,
            created_time=stamp,
            last_updated_time=stamp,
            parent_instance_id=parent[0] if parent else None,
            parent_execution_id=parent[1] if parent else None,
            parent_task_id=parent[2] if parent else None,
            engine_state={"actions": 0, "next_id": 0, "retries": {}},
        ),
    )
    started = make_event(
        EventType.EXECUTION_STARTED,
        now,
        Name=name,
        Input=input_text,
        Version=version or "",
    )
    if parent is not None:
        started["ParentInstance"] = {"InstanceId": parent[0], "TaskScheduledId": parent[2]}
    store.add_message(db, instance_id, "event", started, stamp, execution_id)


def commit_episode(
    store: TaskHubStore,
    app: IndexedApp,
    work: Episode,
    history_length: int,
    appended: list[dict[str, Any]],
    batch: list[MessageRow],
) -> Followups:
    """Write the episode in one transaction; return what to dispatch and whom to wake."""
    instance = work.instance
    stamp = format_timestamp(work.now)
    followups = Followups(finished=instance.runtime_status in TERMINAL_STATUSES)
    iid = instance.instance_id
    with store.transaction() as db:
        store.append_history(db, iid, history_length, appended)
        store.delete_messages(db, [m.id for m in batch])
        for task_id, name, input_text in work.activities:
            followups.activities.append(
                store.add_activity(db, iid, instance.execution_id, task_id, name, input_text)
            )
        for timer_id, fire_at, fire_text in work.timers:
            visible = format_timestamp(fire_at)
            fired = make_event(EventType.TIMER_FIRED, fire_at, TimerId=timer_id, FireAt=fire_text)
            store.add_message(db, iid, "event", fired, visible, instance.execution_id)
            followups.timers.append((visible, iid))
        for event in work.self_messages:
            store.add_message(db, iid, "event", event, stamp, instance.execution_id)
            followups.instances.add(iid)
        for child_id, name, input_text, task_id, version in work.children:
            followups.instances.add(
                _start_child(store, app, db, work, child_id, name, input_text, task_id, version)
            )
        for target, operation, input_text, signal, request_id in work.entity_ops:
            store.add_entity_op(
                db,
                target,
                operation,
                input_text,
                signal=signal,
                request_id=None if signal else request_id,
                parent_instance_id=None if signal else iid,
                parent_execution_id=None if signal else instance.execution_id,
            )
            followups.entities.add(target)
        if work.parent_message is not None and instance.parent_instance_id:
            store.add_message(
                db,
                instance.parent_instance_id,
                "event",
                work.parent_message,
                stamp,
                instance.parent_execution_id,
            )
            followups.instances.add(instance.parent_instance_id)
        if work.continued:
            _continue_as_new(store, db, instance, work)
            followups.instances.add(iid)
        store.put_instance(db, instance)
    return followups


def _start_child(
    store: TaskHubStore,
    app: IndexedApp,
    db: sqlite3.Connection,
    work: Episode,
    child_id: str,
    name: str,
    input_text: str | None,
    task_id: int,
    version: str | None,
) -> str:
    """Create a sub-orchestration instance, or fail the task at once in the parent when the
    orchestrator is unknown or the id is taken by a running instance; whom to wake."""
    parent = work.instance
    existing = store.get_instance(child_id)
    spec = app.orchestrator(name)
    failure: str | None = None
    if spec is None:
        failure = f"The function '{name}' doesn't exist, is disabled, or is not an orchestrator."
    elif existing is not None and existing.runtime_status in RUNNING_STATUSES:
        failure = (
            f"An Orchestration instance with the status {existing.runtime_status} already exists."
        )
    if failure is not None:
        event = make_event(
            EventType.SUB_ORCHESTRATION_FAILED,
            work.now,
            TaskScheduledId=task_id,
            Reason=failure,
            Details="",
        )
        store.add_message(
            db,
            parent.instance_id,
            "event",
            event,
            format_timestamp(work.now),
            parent.execution_id,
        )
        return parent.instance_id
    assert spec is not None
    if existing is not None:
        store.delete_instance(db, child_id)
    create_instance(
        store,
        db,
        child_id,
        spec.name,
        input_text,
        version,
        work.now,
        parent=(parent.instance_id, parent.execution_id, task_id),
    )
    return child_id


def _continue_as_new(
    store: TaskHubStore, db: sqlite3.Connection, instance: InstanceRow, work: Episode
) -> None:
    """Restart the same instance with a fresh history; unconsumed events go with the old."""
    store.clear_history(db, instance.instance_id)
    instance.execution_id = uuid.uuid4().hex
    instance.input = work.continue_input
    instance.output = None
    instance.engine_state = {"actions": 0, "next_id": 0, "retries": {}}
    started = make_event(
        EventType.EXECUTION_STARTED,
        work.now,
        Name=instance.name,
        Input=work.continue_input,
        Version=instance.version or "",
    )
    store.add_message(
        db,
        instance.instance_id,
        "event",
        started,
        format_timestamp(work.now),
        instance.execution_id,
    )

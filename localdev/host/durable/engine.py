"""The orchestration engine: episodes, activities, timers, sub-orchestrations and entities.

It plays the Durable extension's part of the protocol (see the protocol note): each orchestration
episode hands the SDK the stored history plus a batch of new events, turns the actions the SDK
returns (replay schema V2: one flat, cumulative list) into history events with sequential event
ids, and commits history, consumed messages, new work items and the instance status in one
transaction before anything is dispatched. Activities run on a bounded pool
(``maxConcurrentActivityFunctions``), orchestrator code on its own pool, entity operations one
batch at a time per entity, in order.

The SDK numbers tasks while it replays; the engine must number them identically. Retry tasks
allocate ids while the SDK processes their failure and timer events, before user code resumes, so
such an event is always delivered alone in its episode (as the note prescribes); every other
completion may share an episode.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import json
import logging
import traceback
import uuid
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from azure.functions import meta
from azure.functions.durable_functions import (
    ActivityTriggerConverter,
    EnitityTriggerConverter,
    OrchestrationTriggerConverter,
)

from localdev.host.app_loader import FunctionSpec, IndexedApp
from localdev.host.durable.history import (
    COMPLETION_KEYS,
    RUNNING_STATUSES,
    TERMINAL_STATUSES,
    ActionType,
    EventType,
    format_timestamp,
    make_event,
    parse_time,
    utcnow,
)
from localdev.host.durable.store import EntityOpRow, InstanceRow, MessageRow, TaskHubStore
from localdev.host.durable.versioning import VersionPolicy
from localdev.host.invoke import Invoker

logger = logging.getLogger(__name__)

_OUT_OF_PROC_MARKER = "$OutOfProcData$:"
_SCHEDULING_EVENTS = frozenset(
    {
        EventType.TASK_SCHEDULED,
        EventType.SUB_ORCHESTRATION_CREATED,
        EventType.TIMER_CREATED,
        EventType.EVENT_SENT,
    }
)
HTTP_ACTIVITY_NAME = "BuiltIn::HttpActivity"


class DurableError(Exception):
    """Base of the errors the durable client API maps to HTTP status codes."""


class InstanceNotFoundError(DurableError):
    pass


class InstanceGoneError(DurableError):
    """The instance exists but is completed, failed or terminated."""


class InstanceExistsError(DurableError):
    pass


class UnknownFunctionError(DurableError):
    pass


def parse_entity_id(entity_id: str) -> tuple[str, str]:
    """``@name@key`` → (name, key)."""
    if not entity_id.startswith("@") or "@" not in entity_id[1:]:
        raise ValueError(f"not an entity id: {entity_id!r}")
    name, key = entity_id[1:].split("@", 1)
    return name, key


def entity_scheduler_id(name: str, key: str) -> str:
    return f"@{name.lower()}@{key}"


@dataclass
class _Episode:
    """What one episode decided; written in one transaction, acted on after the commit."""

    instance: InstanceRow
    now: datetime
    next_id: int
    retries: dict[str, dict[str, Any]]
    events: list[dict[str, Any]] = field(default_factory=list)
    activities: list[tuple[int, str, str | None]] = field(default_factory=list)
    timers: list[tuple[int, datetime, str]] = field(default_factory=list)
    children: list[tuple[str, str, str | None, int, str | None]] = field(default_factory=list)
    entity_ops: list[tuple[str, str, str | None, bool, str]] = field(default_factory=list)
    self_messages: list[dict[str, Any]] = field(default_factory=list)
    continue_input: str | None = None
    continued: bool = False

    def take_id(self) -> int:
        event_id = self.next_id
        self.next_id += 1
        return event_id


class DurableEngine:
    """Runs orchestrations, activities and entities of one task hub for one indexed app."""

    def __init__(
        self,
        store: TaskHubStore,
        app: IndexedApp,
        invoker: Invoker,
        *,
        max_activities: int,
        max_orchestrators: int,
        entity_batch_size: int = 50,
        record_episodes: bool = False,
        versioning: VersionPolicy | None = None,
    ) -> None:
        self.store = store
        self.versioning = versioning or VersionPolicy()
        self._rejected: set[str] = set()
        self.app = app
        self.invoker = invoker
        self._max_activities = max_activities
        self._max_orchestrators = max_orchestrators
        self._entity_batch_size = entity_batch_size
        self._activity_pool = ThreadPoolExecutor(max_activities, thread_name_prefix="activity")
        self._orchestrator_pool = ThreadPoolExecutor(
            max_orchestrators, thread_name_prefix="orchestrator"
        )
        self._activity_slots: asyncio.Semaphore | None = None
        self._orchestrator_slots: asyncio.Semaphore | None = None
        self._running: set[str] = set()
        self._again: set[str] = set()
        self._entities_running: set[str] = set()
        self._entities_again: set[str] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._timers: list[tuple[str, str]] = []
        self._timer_changed: asyncio.Event | None = None
        self._waiters: dict[str, list[asyncio.Future[None]]] = {}
        self._closing = False
        self._last_started: dict[str, datetime] = {}
        # Tests replay what the SDK was given and compare with what it answered.
        self.recorded_episodes: dict[str, list[dict[str, Any]]] | None = (
            {} if record_episodes else None
        )

    # --- life cycle ------------------------------------------------------------------------

    async def start(self) -> None:
        """Resume everything the hub holds: messages, activity work items, entity operations."""
        self._activity_slots = asyncio.Semaphore(self._max_activities)
        self._orchestrator_slots = asyncio.Semaphore(self._max_orchestrators)
        self._timer_changed = asyncio.Event()
        now = format_timestamp(utcnow())
        for visible_at, instance_id in self.store.future_messages(now):
            heapq.heappush(self._timers, (visible_at, instance_id))
        self._spawn(self._timer_loop())
        pending_activities = self.store.activities()
        if pending_activities:
            logger.info(
                "Resuming %d activity work item(s) from the task hub", len(pending_activities)
            )
        for activity in pending_activities:
            self._spawn(self._run_activity(activity.id))
        for instance_id in self.store.instances_with_messages(now):
            self._notify(instance_id)
        for entity_id in self.store.entities_with_ops():
            self._notify_entity(entity_id)

    async def stop(self) -> None:
        self._closing = True
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for waiters in self._waiters.values():
            for waiter in waiters:
                if not waiter.done():
                    waiter.cancel()
        # Threads still running user code cannot be interrupted; do not wait for them.
        self._activity_pool.shutdown(wait=False, cancel_futures=True)
        self._orchestrator_pool.shutdown(wait=False, cancel_futures=True)

    def _spawn(self, coroutine: Any) -> None:
        task: asyncio.Task[None] = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error("Durable engine task failed", exc_info=task.exception())

    # --- client operations -----------------------------------------------------------------

    def start_orchestration(
        self,
        name: str,
        instance_id: str | None = None,
        input_text: str | None = None,
        version: str | None = None,
    ) -> str:
        spec = self.app.orchestrator(name)
        if spec is None:
            raise UnknownFunctionError(
                f"The function '{name}' doesn't exist, is disabled, or is not an orchestrator "
                "function. Additional info: the local host found no such orchestrator."
            )
        instance_id = instance_id or uuid.uuid4().hex
        existing = self.store.get_instance(instance_id)
        if existing is not None and existing.runtime_status in RUNNING_STATUSES:
            raise InstanceExistsError(
                f"An Orchestration instance with the status {existing.runtime_status} "
                "already exists."
            )
        now = utcnow()
        with self.store.transaction() as db:
            if existing is not None:
                self.store.delete_instance(db, instance_id)
            self._create_instance(
                db,
                instance_id,
                spec.name,
                input_text,
                self.versioning.version_for_new(version),
                now,
            )
        self._notify(instance_id)
        return instance_id

    def _create_instance(
        self,
        db: Any,
        instance_id: str,
        name: str,
        input_text: str | None,
        version: str | None,
        now: datetime,
        parent: tuple[str, str, int] | None = None,
    ) -> None:
        execution_id = uuid.uuid4().hex
        stamp = format_timestamp(now)
        self.store.put_instance(
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
        self.store.add_message(db, instance_id, "event", started, stamp, execution_id)

    def raise_event(self, instance_id: str, event_name: str, input_text: str | None) -> None:
        instance = self._require(instance_id)
        now = utcnow()
        event = make_event(EventType.EVENT_RAISED, now, Name=event_name, Input=input_text)
        with self.store.transaction() as db:
            self.store.add_message(db, instance.instance_id, "event", event, format_timestamp(now))
        self._notify(instance_id)

    def terminate(self, instance_id: str, reason: str) -> None:
        self._control(instance_id, "terminate", {"reason": reason})

    def suspend(self, instance_id: str, reason: str) -> None:
        self._control(instance_id, "suspend", {"reason": reason})

    def resume(self, instance_id: str, reason: str) -> None:
        self._control(instance_id, "resume", {"reason": reason})

    def _control(self, instance_id: str, kind: str, payload: dict[str, Any]) -> None:
        self._require(instance_id)
        with self.store.transaction() as db:
            self.store.add_message(db, instance_id, kind, payload, format_timestamp(utcnow()))
        self._notify(instance_id)

    def _require(self, instance_id: str) -> InstanceRow:
        instance = self.store.get_instance(instance_id)
        if instance is None:
            raise InstanceNotFoundError(f"No instance with ID '{instance_id}' found.")
        if instance.runtime_status in TERMINAL_STATUSES:
            raise InstanceGoneError(
                f"Instance with ID {instance_id} is gone: it is {instance.runtime_status}."
            )
        return instance

    def restart(self, instance_id: str, new_instance_id: bool) -> str:
        instance = self.store.get_instance(instance_id)
        if instance is None:
            raise InstanceNotFoundError(f"No instance with ID '{instance_id}' found.")
        target = uuid.uuid4().hex if new_instance_id else instance_id
        if not new_instance_id and instance.runtime_status in RUNNING_STATUSES:
            raise InstanceExistsError(
                f"An Orchestration instance with the status {instance.runtime_status} "
                "already exists."
            )
        return self.start_orchestration(instance.name, target, instance.input, instance.version)

    def purge(self, instance_ids: Iterable[str]) -> int:
        """Delete finished instances (running ones are kept, as Azure does); return the count."""
        deleted = 0
        with self.store.transaction() as db:
            for instance_id in instance_ids:
                instance = self.store.get_instance(instance_id)
                if instance is None or instance.runtime_status not in TERMINAL_STATUSES:
                    continue
                self.store.delete_instance(db, instance_id)
                deleted += 1
        return deleted

    def signal_entity(self, name: str, key: str, operation: str, input_text: str | None) -> None:
        if self.app.entity(name) is None:
            raise UnknownFunctionError(
                f"The function '{name}' doesn't exist, is disabled, or is not an entity function."
            )
        entity_id = entity_scheduler_id(name, key)
        with self.store.transaction() as db:
            self.store.add_entity_op(db, entity_id, operation, input_text, signal=True)
        self._notify_entity(entity_id)

    def read_entity(self, name: str, key: str) -> tuple[bool, str | None]:
        entity_id = entity_scheduler_id(name, key)
        return self.store.entity_exists(entity_id), self.store.entity_state(entity_id)

    async def wait_for_instance(self, instance_id: str, seconds: float) -> InstanceRow | None:
        """Wait until the instance is completed, failed or terminated (or the timeout passes)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while True:
            instance = self.store.get_instance(instance_id)
            if instance is None or instance.runtime_status in TERMINAL_STATUSES:
                return instance
            remaining = deadline - loop.time()
            if remaining <= 0:
                return instance
            waiter: asyncio.Future[None] = loop.create_future()
            self._waiters.setdefault(instance_id, []).append(waiter)
            try:
                await asyncio.wait_for(waiter, remaining)
            except TimeoutError:
                pass
            finally:
                waiters = self._waiters.get(instance_id, [])
                if waiter in waiters:
                    waiters.remove(waiter)

    def _wake_waiters(self, instance_id: str) -> None:
        self._last_started.pop(instance_id, None)
        for waiter in self._waiters.pop(instance_id, []):
            if not waiter.done():
                waiter.set_result(None)

    # --- scheduling ------------------------------------------------------------------------

    def _notify(self, instance_id: str) -> None:
        if self._closing:
            return
        if instance_id in self._running:
            self._again.add(instance_id)
            return
        self._running.add(instance_id)
        self._spawn(self._instance_loop(instance_id))

    async def _instance_loop(self, instance_id: str) -> None:
        assert self._orchestrator_slots is not None
        try:
            while True:
                self._again.discard(instance_id)
                async with self._orchestrator_slots:
                    progressed = await self._episode(instance_id)
                if not progressed and instance_id not in self._again:
                    return
        finally:
            self._running.discard(instance_id)

    def _arm(self, visible_at: str, instance_id: str) -> None:
        heapq.heappush(self._timers, (visible_at, instance_id))
        if self._timer_changed is not None:
            self._timer_changed.set()

    async def _timer_loop(self) -> None:
        assert self._timer_changed is not None
        while True:
            now = utcnow()
            stamp = format_timestamp(now)
            while self._timers and self._timers[0][0] <= stamp:
                _, instance_id = heapq.heappop(self._timers)
                self._notify(instance_id)
            timeout = None
            if self._timers:
                timeout = max(0.0, (parse_time(self._timers[0][0]) - now).total_seconds())
            self._timer_changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._timer_changed.wait(), timeout)

    # --- orchestration episodes ------------------------------------------------------------

    def _episode_time(self, instance_id: str, history: list[dict[str, Any]]) -> datetime:
        """Now, but strictly after the previous episode (``current_utc_datetime`` only grows)."""
        now = utcnow()
        previous = self._last_started.get(instance_id)
        for event in reversed(history):
            if event["EventType"] == EventType.ORCHESTRATOR_STARTED:
                stamp = parse_time(event["Timestamp"])
                previous = stamp if previous is None else max(previous, stamp)
                break
        if previous is not None and now <= previous:
            now = previous + timedelta(microseconds=1)
        self._last_started[instance_id] = now
        return now

    async def _episode(self, instance_id: str) -> bool:
        """Process the instance's visible messages once; return whether any was consumed."""
        now = utcnow()
        messages = self.store.messages(instance_id, visible_before=format_timestamp(now))
        if not messages:
            return False
        instance = self.store.get_instance(instance_id)
        if instance is None:
            with self.store.transaction() as db:
                self.store.delete_messages(db, [m.id for m in messages])
            return True
        terminate = next((m for m in messages if m.kind == "terminate"), None)
        if instance.runtime_status in TERMINAL_STATUSES:
            with self.store.transaction() as db:
                self.store.delete_messages(db, [m.id for m in messages])
            return True
        if terminate is not None:
            self._terminate_now(instance, str(terminate.payload.get("reason", "")))
            return True
        controls = [m for m in messages if m.kind in ("suspend", "resume")]
        if controls:
            suspended = controls[-1].kind == "suspend"
            history_exists = bool(self.store.history(instance_id))
            instance.runtime_status = (
                "Suspended" if suspended else ("Running" if history_exists else "Pending")
            )
            instance.last_updated_time = format_timestamp(utcnow())
            with self.store.transaction() as db:
                self.store.delete_messages(db, [m.id for m in controls])
                self.store.put_instance(db, instance)
            return True
        if instance.runtime_status == "Suspended":
            return False
        events = [m for m in messages if m.kind == "event"]
        history = self.store.history(instance_id)
        deliverable, dropped = self._sort_out(instance, history, events)
        if dropped:
            with self.store.transaction() as db:
                self.store.delete_messages(db, [m.id for m in dropped])
        batch = self._select_batch(instance, history, deliverable)
        if not batch:
            return bool(dropped)
        mismatch = self.versioning.mismatch(instance.version)
        if mismatch is not None and not self.versioning.fails_mismatches:
            # versionFailureStrategy Reject: the messages stay for a worker that may run them.
            if instance_id not in self._rejected:
                self._rejected.add(instance_id)
                logger.warning(
                    "Orchestration '%s' is left for another worker (versionMatchStrategy %s): %s",
                    instance_id,
                    self.versioning.match_strategy,
                    mismatch,
                )
            return bool(dropped)
        await self._run_orchestrator(instance, history, batch, refusal=mismatch)
        return True

    def _sort_out(
        self, instance: InstanceRow, history: list[dict[str, Any]], events: list[MessageRow]
    ) -> tuple[list[MessageRow], list[MessageRow]]:
        """Split messages into deliverable ones and stale or duplicate ones to drop."""
        scheduled = {e["EventId"] for e in history if e["EventType"] in _SCHEDULING_EVENTS}
        completed = {
            e[COMPLETION_KEYS[e["EventType"]]] for e in history if e["EventType"] in COMPLETION_KEYS
        }
        started = any(e["EventType"] == EventType.EXECUTION_STARTED for e in history)
        deliverable: list[MessageRow] = []
        dropped: list[MessageRow] = []
        for message in events:
            payload = message.payload
            event_type = payload["EventType"]
            stale = message.execution_id not in (None, instance.execution_id)
            if stale or (event_type == EventType.EXECUTION_STARTED and started):
                dropped.append(message)
            elif event_type in COMPLETION_KEYS:
                task_id = payload[COMPLETION_KEYS[event_type]]
                if task_id in completed or task_id not in scheduled:
                    dropped.append(message)
                else:
                    completed.add(task_id)
                    deliverable.append(message)
            else:
                deliverable.append(message)
        return deliverable, dropped

    def _select_batch(
        self, instance: InstanceRow, history: list[dict[str, Any]], messages: list[MessageRow]
    ) -> list[MessageRow]:
        if not history:
            first = next(
                (m for m in messages if m.payload["EventType"] == EventType.EXECUTION_STARTED),
                None,
            )
            if first is None:
                return []
            messages = [first] + [m for m in messages if m is not first]
        retries: dict[str, dict[str, Any]] = instance.engine_state.get("retries", {})
        batch: list[MessageRow] = []
        for message in messages:
            if self._is_retry_event(message.payload, retries):
                if not batch:
                    batch.append(message)
                break
            batch.append(message)
        return batch

    @staticmethod
    def _is_retry_event(payload: dict[str, Any], retries: dict[str, dict[str, Any]]) -> bool:
        event_type = payload["EventType"]
        if event_type in (EventType.TASK_FAILED, EventType.SUB_ORCHESTRATION_FAILED):
            entry = retries.get(str(payload["TaskScheduledId"]))
            return entry is not None and entry["phase"] == "task"
        if event_type == EventType.TIMER_FIRED:
            entry = retries.get(str(payload["TimerId"]))
            return entry is not None and entry["phase"] == "timer"
        return False

    async def _call_orchestrator(
        self, spec: FunctionSpec, payload: dict[str, Any]
    ) -> tuple[dict[str, Any], str | None]:
        """Run the orchestrator on its pool; return (state, error message or None)."""
        datum = meta.Datum(type="string", value=json.dumps(payload))
        context = OrchestrationTriggerConverter.decode(datum, trigger_metadata=None)
        try:
            result = await self.invoker.invoke(
                spec,
                {spec.trigger_name: context},
                reason="(null)",
                executor=self._orchestrator_pool,
            )
        # The SDK reports a failed orchestration by raising with its state after a marker;
        # anything else raised is also the orchestration's failure, not the host's.
        except Exception as error:
            text = str(error)
            if _OUT_OF_PROC_MARKER in text:
                message, _, data = text.partition(_OUT_OF_PROC_MARKER)
                state = json.loads(data)
                reported = state.get("error") or message.strip()
                return state, str(reported)
            return {"isDone": False, "actions": []}, f"{type(error).__name__}: {text}"
        if not isinstance(result, str):
            return {}, f"orchestrator returned {type(result).__name__}, not the SDK's JSON"
        return json.loads(result), None

    async def _run_orchestrator(
        self,
        instance: InstanceRow,
        history: list[dict[str, Any]],
        batch: list[MessageRow],
        refusal: str | None = None,
    ) -> None:
        """One episode; ``refusal`` fails the instance without running it (a version mismatch
        under versionFailureStrategy Fail)."""
        now = self._episode_time(instance.instance_id, history)
        started_event = make_event(EventType.ORCHESTRATOR_STARTED, now)
        new_events = [m.payload for m in batch]
        spec = self.app.orchestrator(instance.name)
        state: dict[str, Any]
        error: str | None
        if refusal is not None:
            state, error = {}, refusal
        elif spec is None:
            state, error = (
                {},
                f"The function '{instance.name}' doesn't exist or is not an orchestrator.",
            )
        else:
            payload = {
                "history": [dict(e, IsPlayed=True) for e in history]
                + [dict(e, IsPlayed=False) for e in [started_event, *new_events]],
                "input": instance.input,
                "instanceId": instance.instance_id,
                "isReplaying": bool(history),
                "parentInstanceId": instance.parent_instance_id,
                "upperSchemaVersion": 1,
                "upperSchemaVersionNew": 2,
            }
            state, error = await self._call_orchestrator(spec, payload)
            if self.recorded_episodes is not None:
                self.recorded_episodes.setdefault(instance.instance_id, []).append(
                    {"payload": payload, "state": state, "error": error}
                )

        engine_state = instance.engine_state
        work = _Episode(
            instance=instance,
            now=now,
            next_id=int(engine_state.get("next_id", 0)),
            retries=dict(engine_state.get("retries", {})),
        )
        is_done = bool(state.get("isDone")) and error is None
        finished = is_done or error is not None
        if not finished:
            self._retry_consequences(work, new_events)
        else:
            for event in new_events:
                if event["EventType"] in COMPLETION_KEYS:
                    work.retries.pop(str(event[COMPLETION_KEYS[event["EventType"]]]), None)
        actions = self._flatten(state)
        done = int(engine_state.get("actions", 0))
        for action in actions[done:]:
            self._schedule(work, action)
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
        stamp = format_timestamp(now)
        closing: list[dict[str, Any]] = []
        parent_message: dict[str, Any] | None = None
        if error is not None:
            instance.runtime_status = "Failed"
            message = f"Orchestrator function '{instance.name}' failed: {error}"
            instance.output = json.dumps(message)
            closing.append(
                make_event(
                    EventType.EXECUTION_FAILED,
                    now,
                    OrchestrationStatus="Failed",
                    Reason=message,
                    Details=error,
                )
            )
            parent_message = make_event(
                EventType.SUB_ORCHESTRATION_FAILED,
                now,
                TaskScheduledId=instance.parent_task_id,
                Reason=message,
                Details=error,
            )
            logger.info("Orchestration '%s' (%s) failed", instance.instance_id, instance.name)
        elif work.continued:
            instance.runtime_status = "ContinuedAsNew"
        elif is_done:
            instance.runtime_status = "Completed"
            instance.output = json.dumps(state.get("output"))
            closing.append(
                make_event(
                    EventType.EXECUTION_COMPLETED,
                    now,
                    OrchestrationStatus="Completed",
                    Result=instance.output,
                )
            )
            parent_message = make_event(
                EventType.SUB_ORCHESTRATION_COMPLETED,
                now,
                TaskScheduledId=instance.parent_task_id,
                Result=instance.output,
            )
        else:
            instance.runtime_status = "Running"
        instance.last_updated_time = stamp
        appended = [
            started_event,
            *new_events,
            *work.events,
            *closing,
            make_event(EventType.ORCHESTRATOR_COMPLETED, now),
        ]
        activity_ids, notify, entity_ids = self._commit(
            instance, history, appended, batch, work, parent_message
        )
        for activity_id in activity_ids:
            self._spawn(self._run_activity(activity_id))
        for other in notify:
            self._notify(other)
        for entity_id in entity_ids:
            self._notify_entity(entity_id)
        if instance.runtime_status in TERMINAL_STATUSES:
            self._wake_waiters(instance.instance_id)

    @staticmethod
    def _flatten(state: dict[str, Any]) -> list[dict[str, Any]]:
        actions = state.get("actions") or []
        if int(state.get("schemaVersion", 0)) >= 1:
            return list(actions[0]) if actions else []
        return [action for group in actions for action in group]

    def _retry_consequences(self, work: _Episode, new_events: list[dict[str, Any]]) -> None:
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
                self._schedule_task(work, task_id, entry)
                work.retries[str(task_id)] = dict(entry, attempt=entry["attempt"] + 1, phase="task")

    def _schedule_task(self, work: _Episode, task_id: int, entry: dict[str, Any]) -> None:
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
            version = self.versioning.version_for_new(entry.get("version"))
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

    def _schedule(self, work: _Episode, action: dict[str, Any]) -> None:
        """Turn one new action into history events and work, taking event ids in order."""
        action_type = action.get("actionType")
        if action_type in (ActionType.WHEN_ALL, ActionType.WHEN_ANY):
            for child in action.get("compoundActions") or []:
                self._schedule(work, child)
            return
        if action_type == ActionType.WAIT_FOR_EXTERNAL_EVENT:
            return
        event_id = work.take_id()
        if action_type in (
            ActionType.CALL_ACTIVITY,
            ActionType.CALL_ACTIVITY_WITH_RETRY,
            ActionType.CALL_SUB_ORCHESTRATOR,
            ActionType.CALL_SUB_ORCHESTRATOR_WITH_RETRY,
        ):
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
            self._schedule_task(work, event_id, entry)
            if action_type in (
                ActionType.CALL_ACTIVITY_WITH_RETRY,
                ActionType.CALL_SUB_ORCHESTRATOR_WITH_RETRY,
            ):
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
            signal = action_type == ActionType.SIGNAL_ENTITY
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

    def _commit(
        self,
        instance: InstanceRow,
        history: list[dict[str, Any]],
        appended: list[dict[str, Any]],
        batch: list[MessageRow],
        work: _Episode,
        parent_message: dict[str, Any] | None,
    ) -> tuple[list[int], set[str], set[str]]:
        """Write the episode in one transaction; return what to dispatch and whom to wake."""
        store = self.store
        stamp = format_timestamp(work.now)
        activity_ids: list[int] = []
        notify: set[str] = set()
        entity_ids: set[str] = set()
        timers: list[tuple[str, str]] = []
        iid = instance.instance_id
        with store.transaction() as db:
            store.append_history(db, iid, len(history), appended)
            store.delete_messages(db, [m.id for m in batch])
            for task_id, name, input_text in work.activities:
                activity_ids.append(
                    store.add_activity(db, iid, instance.execution_id, task_id, name, input_text)
                )
            for timer_id, fire_at, fire_text in work.timers:
                visible = format_timestamp(fire_at)
                fired = make_event(
                    EventType.TIMER_FIRED, fire_at, TimerId=timer_id, FireAt=fire_text
                )
                store.add_message(db, iid, "event", fired, visible, instance.execution_id)
                timers.append((visible, iid))
            for event in work.self_messages:
                store.add_message(db, iid, "event", event, stamp, instance.execution_id)
                notify.add(iid)
            for child_id, name, input_text, task_id, version in work.children:
                notify.update(
                    self._start_child(db, work, child_id, name, input_text, task_id, version)
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
                entity_ids.add(target)
            if parent_message is not None and instance.parent_instance_id:
                store.add_message(
                    db,
                    instance.parent_instance_id,
                    "event",
                    parent_message,
                    stamp,
                    instance.parent_execution_id,
                )
                notify.add(instance.parent_instance_id)
            if work.continued:
                self._continue_as_new(db, instance, work)
                notify.add(iid)
            store.put_instance(db, instance)
        for visible, target in timers:
            self._arm(visible, target)
        return activity_ids, notify, entity_ids

    def _start_child(
        self,
        db: Any,
        work: _Episode,
        child_id: str,
        name: str,
        input_text: str | None,
        task_id: int,
        version: str | None,
    ) -> set[str]:
        parent = work.instance
        existing = self.store.get_instance(child_id)
        spec = self.app.orchestrator(name)
        failure: str | None = None
        if spec is None:
            failure = (
                f"The function '{name}' doesn't exist, is disabled, or is not an orchestrator."
            )
        elif existing is not None and existing.runtime_status in RUNNING_STATUSES:
            failure = (
                f"An Orchestration instance with the status {existing.runtime_status} "
                "already exists."
            )
        if failure is not None:
            event = make_event(
                EventType.SUB_ORCHESTRATION_FAILED,
                work.now,
                TaskScheduledId=task_id,
                Reason=failure,
                Details="",
            )
            self.store.add_message(
                db,
                parent.instance_id,
                "event",
                event,
                format_timestamp(work.now),
                parent.execution_id,
            )
            return {parent.instance_id}
        assert spec is not None
        if existing is not None:
            self.store.delete_instance(db, child_id)
        self._create_instance(
            db,
            child_id,
            spec.name,
            input_text,
            version,
            work.now,
            parent=(parent.instance_id, parent.execution_id, task_id),
        )
        return {child_id}

    def _continue_as_new(self, db: Any, instance: InstanceRow, work: _Episode) -> None:
        """Restart the same instance with a fresh history; unconsumed events go with the old."""
        self.store.clear_history(db, instance.instance_id)
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
        self.store.add_message(
            db,
            instance.instance_id,
            "event",
            started,
            format_timestamp(work.now),
            instance.execution_id,
        )

    def _terminate_now(self, instance: InstanceRow, reason: str) -> None:
        now = utcnow()
        stamp = format_timestamp(now)
        history = self.store.history(instance.instance_id)
        instance.runtime_status = "Terminated"
        instance.output = json.dumps(reason)
        instance.last_updated_time = stamp
        with self.store.transaction() as db:
            self.store.append_history(
                db,
                instance.instance_id,
                len(history),
                [make_event(EventType.EXECUTION_TERMINATED, now, Input=json.dumps(reason))],
            )
            db.execute("DELETE FROM messages WHERE instance_id = ?", (instance.instance_id,))
            db.execute("DELETE FROM activities WHERE instance_id = ?", (instance.instance_id,))
            if instance.parent_instance_id:
                failure = make_event(
                    EventType.SUB_ORCHESTRATION_FAILED,
                    now,
                    TaskScheduledId=instance.parent_task_id,
                    Reason=f"Sub-orchestration '{instance.instance_id}' was terminated: {reason}",
                    Details="",
                )
                self.store.add_message(
                    db,
                    instance.parent_instance_id,
                    "event",
                    failure,
                    stamp,
                    instance.parent_execution_id,
                )
            self.store.put_instance(db, instance)
        logger.info("Orchestration '%s' terminated", instance.instance_id)
        if instance.parent_instance_id:
            self._notify(instance.parent_instance_id)
        self._wake_waiters(instance.instance_id)

    # --- activities ------------------------------------------------------------------------

    async def _run_activity(self, activity_id: int) -> None:
        assert self._activity_slots is not None
        async with self._activity_slots:
            row = self.store.activity(activity_id)
            if row is None:
                return
            instance = self.store.get_instance(row.instance_id)
            if (
                instance is None
                or instance.execution_id != row.execution_id
                or instance.runtime_status in TERMINAL_STATUSES
            ):
                with self.store.transaction() as db:
                    self.store.delete_activity(db, activity_id)
                return
            event = await self._execute_activity(row.name, row.input, row.task_id)
            with self.store.transaction() as db:
                if self.store.delete_activity(db, activity_id):
                    self.store.add_message(
                        db,
                        row.instance_id,
                        "event",
                        event,
                        format_timestamp(utcnow()),
                        row.execution_id,
                    )
            self._notify(row.instance_id)

    async def _execute_activity(
        self, name: str, input_text: str | None, task_id: int
    ) -> dict[str, Any]:
        spec = self.app.activity(name)
        if spec is None:
            return make_event(
                EventType.TASK_FAILED,
                utcnow(),
                TaskScheduledId=task_id,
                Reason=(
                    f"The function '{name}' doesn't exist, is disabled, or is not an activity "
                    "function."
                ),
                Details="",
            )
        try:
            value = ActivityTriggerConverter.decode(
                meta.Datum(type="json", value=input_text if input_text is not None else "null"),
                trigger_metadata=None,
            )
            result = await self.invoker.invoke(
                spec, {spec.trigger_name: value}, reason="(null)", executor=self._activity_pool
            )
            encoded = ActivityTriggerConverter.encode(result, expected_type=None)
        # A failing activity is the orchestration's business: it becomes TaskFailed, as the
        # worker reports it to the extension.
        except Exception as error:
            summary = f"{type(error).__name__}: {error}"
            details = {
                "Message": summary,
                "ExceptionType": type(error).__name__,
                "StackTrace": "".join(traceback.format_exception(error)).strip(),
            }
            return make_event(
                EventType.TASK_FAILED,
                utcnow(),
                TaskScheduledId=task_id,
                Reason=f"Activity function '{spec.name}' failed: {summary}",
                Details=json.dumps(details),
            )
        return make_event(
            EventType.TASK_COMPLETED,
            utcnow(),
            TaskScheduledId=task_id,
            Result=str(encoded.value),
        )

    # --- entities --------------------------------------------------------------------------

    def _notify_entity(self, entity_id: str) -> None:
        if self._closing:
            return
        if entity_id in self._entities_running:
            self._entities_again.add(entity_id)
            return
        self._entities_running.add(entity_id)
        self._spawn(self._entity_loop(entity_id))

    async def _entity_loop(self, entity_id: str) -> None:
        try:
            while True:
                self._entities_again.discard(entity_id)
                operations = self.store.entity_ops(entity_id, self._entity_batch_size)
                if not operations:
                    if entity_id in self._entities_again:
                        continue
                    return
                await self._entity_batch(entity_id, operations)
        finally:
            self._entities_running.discard(entity_id)

    async def _entity_batch(self, entity_id: str, operations: list[EntityOpRow]) -> None:
        name, key = parse_entity_id(entity_id)
        spec = self.app.entity(name)
        exists = self.store.entity_exists(entity_id)
        state = self.store.entity_state(entity_id)
        results: list[dict[str, Any]]
        new_exists, new_state = exists, state
        if spec is None:
            message = json.dumps(f"The entity function '{name}' doesn't exist.")
            results = [{"isError": True, "result": message} for _ in operations]
        else:
            payload = {
                "self": {"name": name, "key": key},
                "state": state,
                "exists": exists,
                "batch": [
                    {
                        "name": op.operation,
                        "input": json.dumps(op.input if op.input is not None else "null"),
                    }
                    for op in operations
                ],
            }
            datum = meta.Datum(type="string", value=json.dumps(payload))
            context = EnitityTriggerConverter.decode(datum, trigger_metadata=None)
            try:
                raw = await self.invoker.invoke(
                    spec,
                    {spec.trigger_name: context},
                    reason="(null)",
                    executor=self._orchestrator_pool,
                )
                response = json.loads(raw)
                results = list(response.get("results") or [])
                new_exists = bool(response.get("entityExists"))
                new_state = response.get("entityState") if new_exists else None
            # The SDK raises only for its own internal errors; every call in the batch then
            # fails and the state is kept, as the extension does.
            except Exception as error:
                logger.error("Entity '%s' batch failed: %s", entity_id, error)
                message = json.dumps(f"{type(error).__name__}: {error}")
                results = [{"isError": True, "result": message} for _ in operations]
        now = utcnow()
        stamp = format_timestamp(now)
        notify: set[str] = set()
        with self.store.transaction() as db:
            self.store.put_entity(db, entity_id, new_state, new_exists, stamp)
            self.store.delete_entity_ops(db, [op.id for op in operations])
            for index, op in enumerate(operations):
                if op.signal or not op.parent_instance_id or not op.request_id:
                    continue
                outcome = results[index] if index < len(results) else {"isError": True}
                response_message: dict[str, Any] = {"result": outcome.get("result", "null")}
                if outcome.get("isError"):
                    response_message["exceptionType"] = "System.Exception"
                event = make_event(
                    EventType.EVENT_RAISED,
                    now,
                    Name=op.request_id,
                    Input=json.dumps(response_message),
                )
                self.store.add_message(
                    db, op.parent_instance_id, "event", event, stamp, op.parent_execution_id
                )
                notify.add(op.parent_instance_id)
        for instance_id in notify:
            self._notify(instance_id)

"""The durable engine: the client operations and the scheduler of one task hub's work.

It plays the Durable extension's part of the protocol (see the protocol note). The client
operations (start, raise an event, terminate, suspend, resume, restart, purge, signal and read
entities) write messages to the task hub and wake whoever must act on them. The scheduler runs
that work: each orchestration instance's episodes one at a time (`episodes.py`, on the
orchestrator pool, at most ``maxConcurrentOrchestratorFunctions`` at once), activity work items
(`activities.py`, at most ``maxConcurrentActivityFunctions``), each entity's operations one
batch at a time, in order (`entities.py`; clients' signals wait `ENTITY_SIGNAL_WINDOW_SECONDS`
for more to join their batch), and timer messages when they become visible. Every
step is committed to the hub before what it starts is dispatched, so a host killed at any point
resumes at `start` from what the hub holds.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import logging
import uuid
from collections.abc import Coroutine, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from localdev.host.app_loader import IndexedApp
from localdev.host.durable.activities import ActivityRunner
from localdev.host.durable.commit import Followups, create_instance
from localdev.host.durable.counters import WorkCounters
from localdev.host.durable.entities import EntityRunner, entity_scheduler_id
from localdev.host.durable.episodes import EpisodeRunner
from localdev.host.durable.errors import (
    InstanceExistsError,
    InstanceGoneError,
    InstanceNotFoundError,
    UnknownFunctionError,
)
from localdev.host.durable.history import (
    RUNNING_STATUSES,
    TERMINAL_STATUSES,
    EventType,
    format_timestamp,
    make_event,
    parse_time,
    utcnow,
)
from localdev.host.durable.store import InstanceRow, TaskHubStore
from localdev.host.durable.versioning import VersionPolicy
from localdev.host.invoke import Invoker

logger = logging.getLogger(__name__)

#: How long a client's signal waits for more signals to the same entity before its batch runs:
#: an alert storm's signals run a few per batch, one state load and save for several, instead
#: of one batch each (issue 16). The Durable extension batches an entity's queued operations
#: too; an orchestration's call never waits for it.
ENTITY_SIGNAL_WINDOW_SECONDS = 0.02


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
        entity_signal_window: float = ENTITY_SIGNAL_WINDOW_SECONDS,
        record_episodes: bool = False,
        versioning: VersionPolicy | None = None,
    ) -> None:
        self.store = store
        self.versioning = versioning or VersionPolicy()
        self.app = app
        self.invoker = invoker
        self._max_activities = max_activities
        self._max_orchestrators = max_orchestrators
        self._activity_pool = ThreadPoolExecutor(max_activities, thread_name_prefix="activity")
        self._orchestrator_pool = ThreadPoolExecutor(
            max_orchestrators, thread_name_prefix="orchestrator"
        )
        #: Episodes, replayed history and activity executions so far (benchmarks read them).
        self.counters = WorkCounters()
        self._episodes = EpisodeRunner(
            store,
            app,
            invoker,
            self._orchestrator_pool,
            self.versioning,
            record=record_episodes,
            counters=self.counters,
        )
        self._activities = ActivityRunner(
            store, app, invoker, self._activity_pool, counters=self.counters
        )
        self._entities = EntityRunner(
            store, app, invoker, self._orchestrator_pool, batch_size=entity_batch_size
        )
        self._activity_slots: asyncio.Semaphore | None = None
        self._orchestrator_slots: asyncio.Semaphore | None = None
        self._running: set[str] = set()
        self._again: set[str] = set()
        self._entities_running: set[str] = set()
        self._entities_again: set[str] = set()
        # Entities with an operation that is not a client's signal (an orchestration's call
        # or signal, or what the hub held at start): their next batch runs at once.
        self._entities_urgent: set[str] = set()
        self._entity_lingers: dict[str, asyncio.Event] = {}
        self._entity_signal_window = entity_signal_window
        self._tasks: set[asyncio.Task[None]] = set()
        self._timer_task: asyncio.Task[None] | None = None
        self._timers: list[tuple[str, str]] = []
        self._timer_changed: asyncio.Event | None = None
        self._waiters: dict[str, list[asyncio.Future[None]]] = {}
        self._closing = False
        # Tests replay what the SDK was given and compare with what it answered.
        self.recorded_episodes: dict[str, list[dict[str, Any]]] | None = self._episodes.recorded

    # --- life cycle ------------------------------------------------------------------------

    async def start(self) -> None:
        """Resume everything the hub holds: messages, activity work items, entity operations."""
        self._activity_slots = asyncio.Semaphore(self._max_activities)
        self._orchestrator_slots = asyncio.Semaphore(self._max_orchestrators)
        self._timer_changed = asyncio.Event()
        now = format_timestamp(utcnow())
        for visible_at, instance_id in self.store.future_messages(now):
            heapq.heappush(self._timers, (visible_at, instance_id))
        self._timer_task = self._spawn(self._timer_loop())
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

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task: asyncio.Task[None] = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

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
        version = self.versioning.version_for_new(version)
        with self.store.transaction() as db:
            if existing is not None:
                self.store.delete_instance(db, instance_id)
            create_instance(self.store, db, instance_id, spec.name, input_text, version, utcnow())
        self._notify(instance_id)
        return instance_id

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
        self._notify_entity(entity_id, signal=True)

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

    async def wait_until_idle(self, seconds: float = 10) -> bool:
        """Wait for a quiet point: no episode, activity or entity batch running or waiting to
        run, and no timer message due; whether one came within ``seconds``. What the hub holds
        then stays as it is until a client acts or a timer fires (tests check that nothing
        happened at such a point rather than after a sleep)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while loop.time() < deadline:
            busy = [task for task in self._tasks if task is not self._timer_task]
            if busy:
                await asyncio.wait(busy, timeout=deadline - loop.time())
            elif self._timers and self._timers[0][0] <= format_timestamp(utcnow()):
                # Due but not yet handed out: let the timer loop run.
                if self._timer_changed is not None:
                    self._timer_changed.set()
                await asyncio.sleep(0)
            else:
                return True
        return False

    def _wake_waiters(self, instance_id: str) -> None:
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
                    followups = await self._episodes.run(instance_id)
                    if followups is not None:
                        self._follow(instance_id, followups)
                if followups is None and instance_id not in self._again:
                    return
        finally:
            self._running.discard(instance_id)

    def _follow(self, instance_id: str, followups: Followups) -> None:
        """Set going what a committed episode started."""
        for visible_at, target in followups.timers:
            heapq.heappush(self._timers, (visible_at, target))
            if self._timer_changed is not None:
                self._timer_changed.set()
        for activity_id in followups.activities:
            self._spawn(self._run_activity(activity_id))
        for other in followups.instances:
            self._notify(other)
        for entity_id in followups.entities:
            self._notify_entity(entity_id)
        if followups.finished:
            self._wake_waiters(instance_id)

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

    async def _run_activity(self, activity_id: int) -> None:
        assert self._activity_slots is not None
        async with self._activity_slots:
            instance_id = await self._activities.run(activity_id)
        if instance_id is not None:
            self._notify(instance_id)

    def _notify_entity(self, entity_id: str, *, signal: bool = False) -> None:
        """Run the entity's operations: at once, or, when only clients' signals wait, after
        `entity_signal_window` (more signals join the batch)."""
        if self._closing:
            return
        if not signal:
            self._entities_urgent.add(entity_id)
            linger = self._entity_lingers.get(entity_id)
            if linger is not None:
                linger.set()
        if entity_id in self._entities_running:
            self._entities_again.add(entity_id)
            return
        self._entities_running.add(entity_id)
        self._spawn(self._entity_loop(entity_id))

    async def _entity_loop(self, entity_id: str) -> None:
        try:
            while True:
                if entity_id not in self._entities_urgent and self._entity_signal_window > 0:
                    linger = self._entity_lingers[entity_id] = asyncio.Event()
                    try:
                        await asyncio.wait_for(linger.wait(), self._entity_signal_window)
                    except TimeoutError:
                        pass
                    finally:
                        del self._entity_lingers[entity_id]
                self._entities_urgent.discard(entity_id)
                self._entities_again.discard(entity_id)
                woken = await self._entities.run_batch(entity_id)
                if woken is None:
                    if entity_id in self._entities_again:
                        continue
                    return
                for instance_id in woken:
                    self._notify(instance_id)
        finally:
            self._entities_running.discard(entity_id)

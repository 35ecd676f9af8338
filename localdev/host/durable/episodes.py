"""Orchestration episodes: an instance's waiting messages in, one run of its code, one commit.

An episode takes the instance's visible messages. A terminate message ends the instance at once
(`terminate`); suspend and resume change its status alone; a suspended instance takes nothing
else. The other events are sorted out (stale executions, duplicate or unknown completions are
dropped) and a batch is chosen: the ExecutionStarted event first, and a retried task's failure
or retry timer always alone, because the SDK allocates event ids while it processes those,
before user code resumes (see the protocol note). The SDK gets the stored history plus the
batch; what it answers becomes events, work and an outcome (`actions.decide`), committed in one
transaction (`commit.commit_episode`). An instance whose version this worker may not run is
left alone (versionFailureStrategy Reject) or failed without running (Fail).
"""

from __future__ import annotations

import json
import logging
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Any

from azure.functions import meta
from azure.functions.durable_functions import OrchestrationTriggerConverter

from localdev.host.app_loader import FunctionSpec, IndexedApp
from localdev.host.durable.actions import decide
from localdev.host.durable.commit import Followups, commit_episode
from localdev.host.durable.counters import WorkCounters
from localdev.host.durable.history import (
    COMPLETION_KEYS,
    TERMINAL_STATUSES,
    EventType,
    format_timestamp,
    make_event,
    parse_time,
    utcnow,
)
from localdev.host.durable.store import InstanceRow, MessageRow, TaskHubStore
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


class EpisodeRunner:
    """Runs the episodes of one task hub's orchestration instances."""

    def __init__(
        self,
        store: TaskHubStore,
        app: IndexedApp,
        invoker: Invoker,
        pool: ThreadPoolExecutor,
        versioning: VersionPolicy,
        *,
        record: bool = False,
        counters: WorkCounters | None = None,
    ) -> None:
        self.store = store
        self.counters = counters or WorkCounters()
        self.app = app
        self.invoker = invoker
        self.versioning = versioning
        self._pool = pool
        #: Instances left to another worker (their version mismatch is logged once).
        self._rejected: set[str] = set()
        #: When each running instance's last episode started (``current_utc_datetime``).
        self._last_started: dict[str, datetime] = {}
        #: What the SDK was given and answered, per instance (tests replay them).
        self.recorded: dict[str, list[dict[str, Any]]] | None = {} if record else None

    async def run(self, instance_id: str) -> Followups | None:
        """Process the instance's visible messages once; None when none was consumed."""
        store = self.store
        messages = store.messages(instance_id, visible_before=format_timestamp(utcnow()))
        if not messages:
            return None
        instance = store.get_instance(instance_id)
        if instance is None or instance.runtime_status in TERMINAL_STATUSES:
            with store.transaction() as db:
                store.delete_messages(db, [m.id for m in messages])
            return Followups()
        terminate = next((m for m in messages if m.kind == "terminate"), None)
        if terminate is not None:
            return self._terminate(instance, str(terminate.payload.get("reason", "")))
        controls = [m for m in messages if m.kind in ("suspend", "resume")]
        if controls:
            suspended = controls[-1].kind == "suspend"
            history_exists = bool(store.history(instance_id))
            instance.runtime_status = (
                "Suspended" if suspended else ("Running" if history_exists else "Pending")
            )
            instance.last_updated_time = format_timestamp(utcnow())
            with store.transaction() as db:
                store.delete_messages(db, [m.id for m in controls])
                store.put_instance(db, instance)
            return Followups()
        if instance.runtime_status == "Suspended":
            return None
        events = [m for m in messages if m.kind == "event"]
        history = store.history(instance_id)
        deliverable, dropped = _sort_out(instance, history, events)
        if dropped:
            with store.transaction() as db:
                store.delete_messages(db, [m.id for m in dropped])
        batch = _select_batch(instance, history, deliverable)
        if not batch:
            return Followups() if dropped else None
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
            return Followups() if dropped else None
        return await self._run_orchestrator(instance, history, batch, refusal=mismatch)

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

    async def _run_orchestrator(
        self,
        instance: InstanceRow,
        history: list[dict[str, Any]],
        batch: list[MessageRow],
        refusal: str | None = None,
    ) -> Followups:
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
            self.counters.episode(spec.name, len(history))
            state, error = await self._call_orchestrator(spec, payload)
            if self.recorded is not None:
                self.recorded.setdefault(instance.instance_id, []).append(
                    {"payload": payload, "state": state, "error": error}
                )
        work = decide(instance, now, new_events, state, error, self.versioning)
        if error is not None:
            logger.info("Orchestration '%s' (%s) failed", instance.instance_id, instance.name)
        appended = [
            started_event,
            *new_events,
            *work.events,
            *work.closing,
            make_event(EventType.ORCHESTRATOR_COMPLETED, now),
        ]
        followups = commit_episode(self.store, self.app, work, len(history), appended, batch)
        if followups.finished:
            self._last_started.pop(instance.instance_id, None)
        return followups

    async def _call_orchestrator(
        self, spec: FunctionSpec, payload: dict[str, Any]
    ) -> tuple[dict[str, Any], str | None]:
        """Run the orchestrator on its pool; return (state, error message or None)."""
        datum = meta.Datum(type="string", value=json.dumps(payload))
        context = OrchestrationTriggerConverter.decode(datum, trigger_metadata=None)
        try:
            result = await self.invoker.invoke(
                spec, {spec.trigger_name: context}, reason="(null)", executor=self._pool
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

    def _terminate(self, instance: InstanceRow, reason: str) -> Followups:
        """End the instance now: its pending messages and activities go, its parent hears."""
        now = utcnow()
        stamp = format_timestamp(now)
        history = self.store.history(instance.instance_id)
        instance.runtime_status = "Terminated"
        instance.output = json.dumps(reason)
        instance.last_updated_time = stamp
        followups = Followups(finished=True)
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
                followups.instances.add(instance.parent_instance_id)
            self.store.put_instance(db, instance)
        logger.info("Orchestration '%s' terminated", instance.instance_id)
        self._last_started.pop(instance.instance_id, None)
        return followups


def _sort_out(
    instance: InstanceRow, history: list[dict[str, Any]], events: list[MessageRow]
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
    instance: InstanceRow, history: list[dict[str, Any]], messages: list[MessageRow]
) -> list[MessageRow]:
    """The events of this episode: ExecutionStarted first; a retry event alone."""
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
        if _is_retry_event(message.payload, retries):
            if not batch:
                batch.append(message)
            break
        batch.append(message)
    return batch


def _is_retry_event(payload: dict[str, Any], retries: dict[str, dict[str, Any]]) -> bool:
    event_type = payload["EventType"]
    if event_type in (EventType.TASK_FAILED, EventType.SUB_ORCHESTRATION_FAILED):
        entry = retries.get(str(payload["TaskScheduledId"]))
        return entry is not None and entry["phase"] == "task"
    if event_type == EventType.TIMER_FIRED:
        entry = retries.get(str(payload["TimerId"]))
        return entry is not None and entry["phase"] == "timer"
    return False

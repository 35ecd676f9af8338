"""Activity work items: run the function, record its result for the orchestration.

A work item is committed with the episode that scheduled it and deleted in the transaction that
delivers its result (TaskCompleted, or TaskFailed with the exception's type, message and stack),
so a host killed while it runs runs it again at start (at-least-once, as in Azure). A work item
of an instance that has ended, or moved on to a new execution, is dropped unrun.
"""

from __future__ import annotations

import json
import traceback
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from azure.functions import meta
from azure.functions.durable_functions import ActivityTriggerConverter

from localdev.host.app_loader import IndexedApp
from localdev.host.durable.counters import WorkCounters
from localdev.host.durable.history import (
    TERMINAL_STATUSES,
    EventType,
    format_timestamp,
    make_event,
    utcnow,
)
from localdev.host.durable.store import TaskHubStore
from localdev.host.invoke import Invoker


class ActivityRunner:
    """Runs one task hub's activity work items on the activity pool."""

    def __init__(
        self,
        store: TaskHubStore,
        app: IndexedApp,
        invoker: Invoker,
        pool: ThreadPoolExecutor,
        counters: WorkCounters | None = None,
    ) -> None:
        self.store = store
        self.counters = counters or WorkCounters()
        self.app = app
        self.invoker = invoker
        self._pool = pool

    async def run(self, activity_id: int) -> str | None:
        """Run one work item; the instance to wake with its result (None when dropped)."""
        store = self.store
        row = store.activity(activity_id)
        if row is None:
            return None
        instance = store.get_instance(row.instance_id)
        if (
            instance is None
            or instance.execution_id != row.execution_id
            or instance.runtime_status in TERMINAL_STATUSES
        ):
            with store.transaction() as db:
                store.delete_activity(db, activity_id)
            return None
        event = await self._execute(row.name, row.input, row.task_id)
        with store.transaction() as db:
            if store.delete_activity(db, activity_id):
                store.add_message(
                    db,
                    row.instance_id,
                    "event",
                    event,
                    format_timestamp(utcnow()),
                    row.execution_id,
                )
        return row.instance_id

    async def _execute(self, name: str, input_text: str | None, task_id: int) -> dict[str, Any]:
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
        self.counters.activity(spec.name)
        try:
            value = ActivityTriggerConverter.decode(
                meta.Datum(type="json", value=input_text if input_text is not None else "null"),
                trigger_metadata=None,
            )
            result = await self.invoker.invoke(
                spec, {spec.trigger_name: value}, reason="(null)", executor=self._pool
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

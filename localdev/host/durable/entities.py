"""Durable entities: their ids, and their operations run one batch at a time, in order.

Signals (from clients and orchestrations) and calls (from orchestrations) wait in the hub as
entity operations. A batch goes to the entity function with the entity's state; its new state,
the end of the batch's operations and the calls' answers (an EventRaised named after each
call's request id, for the calling orchestration) are committed in one transaction.
"""

from __future__ import annotations

import json
import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from azure.functions import meta
from azure.functions.durable_functions import EnitityTriggerConverter

from localdev.host.app_loader import IndexedApp
from localdev.host.durable.history import EventType, format_timestamp, make_event, utcnow
from localdev.host.durable.store import EntityOpRow, TaskHubStore
from localdev.host.invoke import Invoker

logger = logging.getLogger(__name__)


def parse_entity_id(entity_id: str) -> tuple[str, str]:
    """``@name@key`` → (name, key)."""
    if not entity_id.startswith("@") or "@" not in entity_id[1:]:
        raise ValueError(f"not an entity id: {entity_id!r}")
    name, key = entity_id[1:].split("@", 1)
    return name, key


def entity_scheduler_id(name: str, key: str) -> str:
    """The id an entity has in the hub (``@name@key``, the name in lower case)."""
    return f"@{name.lower()}@{key}"


class EntityRunner:
    """Runs one task hub's entity operations (the caller runs one entity at a time)."""

    def __init__(
        self,
        store: TaskHubStore,
        app: IndexedApp,
        invoker: Invoker,
        pool: ThreadPoolExecutor,
        *,
        batch_size: int = 50,
    ) -> None:
        self.store = store
        self.app = app
        self.invoker = invoker
        self._pool = pool
        self._batch_size = batch_size

    async def run_batch(self, entity_id: str) -> set[str] | None:
        """Run the entity's next batch; the orchestrations to wake (None: nothing waited)."""
        operations = self.store.entity_ops(entity_id, self._batch_size)
        if not operations:
            return None
        exists, state, results = await self._invoke(entity_id, operations)
        now = utcnow()
        stamp = format_timestamp(now)
        woken: set[str] = set()
        with self.store.transaction() as db:
            self.store.put_entity(db, entity_id, state, exists, stamp)
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
                woken.add(op.parent_instance_id)
        return woken

    async def _invoke(
        self, entity_id: str, operations: list[EntityOpRow]
    ) -> tuple[bool, str | None, list[dict[str, Any]]]:
        """(exists, state, one result per operation) after the batch."""
        name, key = parse_entity_id(entity_id)
        spec = self.app.entity(name)
        exists = self.store.entity_exists(entity_id)
        state = self.store.entity_state(entity_id)
        if spec is None:
            message = json.dumps(f"The entity function '{name}' doesn't exist.")
            return exists, state, [{"isError": True, "result": message} for _ in operations]
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
                spec, {spec.trigger_name: context}, reason="(null)", executor=self._pool
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
            return exists, state, [{"isError": True, "result": message} for _ in operations]
        return new_exists, new_state, results

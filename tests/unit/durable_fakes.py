"""A hand-written fake of the Durable client the triggers use, recording what they ask for.

It answers the calls `triggers/` make (`signal_entity`, `get_status`, `raise_event`,
`start_new`, `read_entity_state`) the way the Durable extension's HTTP API does: a started
instance runs, an event to an instance that does not run is refused (the SDK raises a plain
Exception), a second start of a running instance is refused.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import azure.durable_functions as df


@dataclass
class Instance:
    runtime_status: str = "Running"
    custom_status: Any = None
    input: Any = None


@dataclass
class _Status:
    runtime_status: Any
    custom_status: Any


@dataclass
class _EntityState:
    entity_exists: bool
    entity_state: Any


@dataclass
class FakeDurableClient:
    """What the triggers did: signals per entity key, events and starts per instance."""

    instances: dict[str, Instance] = field(default_factory=dict)
    entity_states: dict[str, Any] = field(default_factory=dict)
    signals: list[tuple[str, str, Any]] = field(default_factory=list)
    events: list[tuple[str, str]] = field(default_factory=list)
    starts: list[str] = field(default_factory=list)
    #: Seconds each call takes (a slow task hub).
    delay: float = 0.0

    async def _pause(self) -> None:
        await asyncio.sleep(self.delay)

    async def signal_entity(
        self, entity_id: df.EntityId, operation_name: str, operation_input: Any = None
    ) -> None:
        await self._pause()
        self.signals.append((entity_id.key, operation_name, operation_input))

    async def get_status(self, instance_id: str, *args: Any, **kwargs: Any) -> _Status | None:
        await self._pause()
        instance = self.instances.get(instance_id)
        if instance is None:
            return None
        return _Status(instance.runtime_status, instance.custom_status)

    async def raise_event(self, instance_id: str, event_name: str, event_data: Any = None) -> None:
        await self._pause()
        instance = self.instances.get(instance_id)
        if instance is None or instance.runtime_status not in ("Running", "Pending"):
            raise Exception(f"instance {instance_id} is not running")
        self.events.append((instance_id, event_name))

    async def start_new(
        self, name: str, instance_id: str | None = None, client_input: Any = None
    ) -> str:
        await self._pause()
        assert instance_id is not None
        running = self.instances.get(instance_id)
        if running is not None and running.runtime_status in ("Running", "Pending"):
            raise Exception(f"instance {instance_id} is already running")
        self.instances[instance_id] = Instance("Running", None, client_input)
        self.starts.append(instance_id)
        return instance_id

    async def read_entity_state(self, entity_id: df.EntityId) -> _EntityState:
        await self._pause()
        state = self.entity_states.get(entity_id.key)
        return _EntityState(state is not None, state)

    def signalled(self, operation: str) -> list[tuple[str, Any]]:
        """(entity key, input) of every signal of `operation`, in order."""
        return [(key, value) for key, name, value in self.signals if name == operation]

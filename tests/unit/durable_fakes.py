"""A hand-written fake of the Durable client (`services.ports.DurableClient`), recording what
the services ask for.

It answers the calls the services make (`signal_entity`, `get_status`, `raise_event`,
`start_new`, `terminate`, `read_entity_state`) the way the Durable extension's HTTP API does: a
started instance runs, an event to an instance that does not run is refused (the SDK raises a
plain Exception), a second start of a running instance is refused, terminating an instance
that does not run is refused.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import azure.durable_functions as df

_ACTIVE = ("Running", "Pending")


@dataclass
class Instance:
    runtime_status: str = "Running"
    custom_status: Any = None
    input: Any = None
    output: Any = None
    created_time: str | None = None
    last_updated_time: str | None = None


@dataclass
class _Status:
    instance_id: str | None
    runtime_status: Any
    input_: Any
    output: Any
    custom_status: Any
    created_time: Any
    last_updated_time: Any


@dataclass
class _EntityState:
    entity_exists: bool
    entity_state: Any


@dataclass
class FakeDurableClient:
    """What the services did: signals per entity key, events, starts and terminations per
    instance."""

    instances: dict[str, Instance] = field(default_factory=dict)
    entity_states: dict[str, Any] = field(default_factory=dict)
    signals: list[tuple[str, str, Any]] = field(default_factory=list)
    events: list[tuple[str, str]] = field(default_factory=list)
    starts: list[str] = field(default_factory=list)
    terminated: list[tuple[str, str]] = field(default_factory=list)
    #: Seconds each call takes (a slow task hub).
    delay: float = 0.0

    async def _pause(self) -> None:
        await asyncio.sleep(self.delay)

    async def signal_entity(
        self, entity_id: df.EntityId, operation_name: str, operation_input: Any = None
    ) -> None:
        await self._pause()
        self.signals.append((entity_id.key, operation_name, operation_input))

    async def get_status(
        self,
        instance_id: str,
        show_history: bool = False,
        show_history_output: bool = False,
        show_input: bool = False,
    ) -> _Status | None:
        await self._pause()
        instance = self.instances.get(instance_id)
        if instance is None:
            return None
        return _Status(
            instance_id,
            instance.runtime_status,
            instance.input if show_input else None,
            instance.output,
            instance.custom_status,
            instance.created_time,
            instance.last_updated_time,
        )

    async def raise_event(self, instance_id: str, event_name: str, event_data: Any = None) -> None:
        await self._pause()
        instance = self.instances.get(instance_id)
        if instance is None or instance.runtime_status not in _ACTIVE:
            raise Exception(f"instance {instance_id} is not running")
        self.events.append((instance_id, event_name))

    async def start_new(
        self,
        orchestration_function_name: str,
        instance_id: str | None = None,
        client_input: Any = None,
    ) -> str:
        await self._pause()
        assert instance_id is not None
        running = self.instances.get(instance_id)
        if running is not None and running.runtime_status in _ACTIVE:
            raise Exception(f"instance {instance_id} is already running")
        self.instances[instance_id] = Instance("Running", None, client_input)
        self.starts.append(instance_id)
        return instance_id

    async def terminate(self, instance_id: str, reason: str) -> None:
        await self._pause()
        instance = self.instances.get(instance_id)
        if instance is None or instance.runtime_status not in _ACTIVE:
            raise Exception(f"instance {instance_id} is not running")
        instance.runtime_status = "Terminated"
        self.terminated.append((instance_id, reason))

    async def read_entity_state(self, entity_id: df.EntityId) -> _EntityState:
        await self._pause()
        state = self.entity_states.get(entity_id.key)
        return _EntityState(state is not None, state)

    def signalled(self, operation: str) -> list[tuple[str, Any]]:
        """(entity key, input) of every signal of `operation`, in order."""
        return [(key, value) for key, name, value in self.signals if name == operation]

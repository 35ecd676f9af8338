"""The ports of the use cases: what the services need from the durable client and from ARM.

The production adapters are the Durable SDK's `DurableOrchestrationClient` (it has these
methods) and `services.azure`; the unit tests drive the services with hand-written fakes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from outsystems.errors import FieldError
    from outsystems.messages import ScaleSetInfo
    from outsystems.names import NamingScheme
    from outsystems.scale_set_lookup import Unchecked
    from outsystems.spec import PlatformSpec
    from outsystems.topology import Resource


class InstanceStatus(Protocol):
    """What the durable client says of an orchestration instance (`DurableOrchestrationStatus`;
    every field None when there is no such instance)."""

    @property
    def instance_id(self) -> str | None: ...
    @property
    def runtime_status(self) -> Any: ...
    @property
    def input_(self) -> Any: ...
    @property
    def output(self) -> Any: ...
    @property
    def custom_status(self) -> Any: ...
    @property
    def created_time(self) -> Any: ...
    @property
    def last_updated_time(self) -> Any: ...


class EntityState(Protocol):
    """What the durable client says of an entity (`EntityStateResponse`)."""

    @property
    def entity_exists(self) -> bool: ...
    @property
    def entity_state(self) -> Any: ...


class DurableClient(Protocol):
    """The calls the services make on the Durable Functions client (its HTTP API: start,
    status, terminate, raise an event, signal and read an entity). The client raises a plain
    `Exception` for every refusal."""

    async def get_status(
        self,
        instance_id: str,
        show_history: bool = False,
        show_history_output: bool = False,
        show_input: bool = False,
    ) -> InstanceStatus | None: ...

    async def start_new(
        self,
        orchestration_function_name: str,
        instance_id: str | None = None,
        client_input: Any | None = None,
    ) -> str: ...

    async def terminate(self, instance_id: str, reason: str) -> None: ...

    async def raise_event(
        self, instance_id: str, event_name: str, event_data: Any = None
    ) -> None: ...

    async def signal_entity(
        self, entity_id: Any, /, operation_name: str, operation_input: Any | None = None
    ) -> None: ...

    async def read_entity_state(self, entity_id: Any, /) -> EntityState: ...


class PlatformArm(Protocol):
    """What the platform use cases read from ARM (blocking calls; the services run them on a
    thread). `TransientArmError` (`arm.operations`) when ARM did not answer."""

    def deployed_naming(self, spec: PlatformSpec) -> NamingScheme | None:
        """The naming scheme of the platform's resources in Azure; None when none exist."""
        ...

    def preflight_problems(
        self, spec: PlatformSpec, allowed_vnet_ids: Sequence[str]
    ) -> list[FieldError]:
        """What exists in Azure that rules the spec out (empty: go ahead)."""
        ...

    def read_live(
        self, subscription_id: str, resources: Sequence[Resource]
    ) -> list[Mapping[str, Any] | None]:
        """The live body of each resource (None where it does not exist), in order."""
        ...

    def resource_groups(self, subscription_ids: Sequence[str]) -> list[list[Mapping[str, Any]]]:
        """The resource groups of each subscription, in order."""
        ...


class DriftReader(Protocol):
    """What the drift check reads from ARM (blocking calls; `services.azure.AzurePlatformArm`).
    `ArmUnavailableError` when ARM did not answer."""

    def read_live(
        self, subscription_id: str, resources: Sequence[Resource]
    ) -> list[Mapping[str, Any] | None]:
        """The live body of each resource (None where it does not exist), in order."""
        ...

    def platform_resources(
        self, subscription_id: str, resource_group: str, solution_id: str
    ) -> list[Mapping[str, Any]]:
        """The resources of the platform's group as ARM lists them (id, type, tags; the
        caller picks the platform's by their tags); empty when the group does not exist."""
        ...


class ScaleSetArm(Protocol):
    """What the scaling use cases read from ARM (blocking calls)."""

    def read_scale_set(self, scale_set_id: str) -> ScaleSetInfo:
        """One scale set as the scaler sees it."""
        ...

    def list_scale_sets(self, subscription_id: str) -> list[ScaleSetInfo]:
        """Every scale set of a subscription."""
        ...


class ScaleSetDirectory(Protocol):
    """The webhook's quick, cached look-up: a verdict, or `Unchecked` when ARM said nothing in
    time (`arm.scale_sets.ManagedScaleSets`)."""

    async def lookup(self, resource_id: str) -> ScaleSetInfo | Unchecked: ...


class ArmUnavailableError(RuntimeError):
    """ARM did not answer a read a use case needs (transient): nothing was started."""

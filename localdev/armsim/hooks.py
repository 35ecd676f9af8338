"""The per-type hooks the engine calls, with no effect by default.

A type's behaviour (in `behaviours.py`, `keyvault.py`, `rbac.py`, `network.py`) overrides the
hooks it needs; `registry.py` maps types to behaviours. Kept apart from the behaviours so that
every behaviour module can import it without importing the others. Hooks see the engine as an
`ArmSim`: its state and the two services a behaviour asks of it, so that no behaviour imports
the engine (which imports them all through the registry), nor do the engine's handlers.
"""

from __future__ import annotations

from typing import Any, Protocol

from localdev.armsim.config import SimConfig
from localdev.armsim.messages import SimRequest, SimResponse
from localdev.armsim.paths import ResourcePath
from localdev.armsim.store import Operation, Resource, Store


class ArmSim(Protocol):
    """The engine as hooks and handlers see it (`engine.Engine` is one)."""

    store: Store
    config: SimConfig
    #: The simulator's time for the request being answered (seconds since the epoch).
    now: float

    def view(self, resource: Resource, expand: str = "") -> dict[str, Any]:
        """The JSON body ARM returns for a resource."""
        ...

    def start_removal(self, resource: Resource, request: SimRequest) -> SimResponse:
        """Begin removing a resource as an action's long-running operation (202 + `Location`)."""
        ...

    def start_action(
        self,
        resource: Resource,
        action: str,
        request: SimRequest,
        seconds: float,
        *,
        targets: list[str] | None = None,
        lock: bool = True,
    ) -> SimResponse:
        """Begin a POST action as a long-running operation on `resource` (202 with
        `Azure-AsyncOperation` and `Location`); with `lock` the resource is `Updating` and
        busy until it ends. A fault planned for the request makes the operation fail."""
        ...

    def require_idle(self, resource: Resource, request: SimRequest) -> None:
        """409 `AnotherOperationInProgress` while an operation keeps `resource` busy."""
        ...


class Behaviour:
    """Hooks with no effect; subclasses override what their type needs."""

    def check(
        self,
        engine: ArmSim,
        path: ResourcePath,
        body: dict[str, Any],
        existing: Resource | None,
    ) -> None:
        """Validate a write against other resources; raise `ArmError` to refuse it."""

    def prepare(
        self,
        engine: ArmSim,
        path: ResourcePath,
        body: dict[str, Any],
        existing: Resource | None,
    ) -> dict[str, Any] | None:
        """Before a PUT is stored: a body to store instead (e.g. a recovered resource), or None."""
        return None

    def applied(self, engine: ArmSim, resource: Resource, previous: dict[str, Any] | None) -> None:
        """The write was accepted and stored (an operation may be running)."""

    def outcome(self, engine: ArmSim, resource: Resource, op: Operation) -> dict[str, Any] | None:
        """When a write's operation ends: the error it ends with, or None for success.

        Evaluated at completion, so it sees the resources as they are by then (a role granted
        while a gateway is being created counts, as it would in Azure).
        """
        return None

    def completed(self, engine: ArmSim, resource: Resource, op: Operation | None) -> None:
        """The write's operation succeeded (or the write was synchronous)."""

    def failed(self, engine: ArmSim, resource: Resource, op: Operation) -> None:
        """The write's operation failed."""

    def deleting(self, engine: ArmSim, resource: Resource) -> None:
        """A delete of this resource was accepted."""

    def removed(self, engine: ArmSim, resource: Resource) -> None:
        """The resource is being removed from the store."""

    def decorate(
        self, engine: ArmSim, resource: Resource, view: dict[str, Any], expand: str
    ) -> None:
        """Add the read-only values ARM computes to a view."""

    def instance_view(self, engine: ArmSim, resource: Resource) -> dict[str, Any] | None:
        """The `/instanceView` of the resource, None when the type has none."""
        return None

    def listed(
        self, engine: ArmSim, resource: Resource, child_type: str
    ) -> list[dict[str, Any]] | None:
        """Views of a list ARM computes under the resource (`.../{child_type}`), e.g. a
        scale-set instance's network interfaces; None when the type has no such list."""
        return None

    def action(
        self, engine: ArmSim, resource: Resource, name: str, request: SimRequest
    ) -> SimResponse | None:
        """A POST action on the resource (`.../{name}`); None when the type has no such action."""
        return None

    def list_at(
        self, engine: ArmSim, scope: str, request: SimRequest
    ) -> list[dict[str, Any]] | None:
        """The list of this (extension) type at a scope; None for the generic list."""
        return None

    def action_outcome(
        self, engine: ArmSim, resource: Resource, op: Operation
    ) -> dict[str, Any] | None:
        """When an action's operation ends: the error it ends with, or None for success (it may
        set `op.result`, what the operation's `Location` answers)."""
        return None

    def action_completed(self, engine: ArmSim, resource: Resource, op: Operation) -> None:
        """An action's operation succeeded."""

    def action_failed(self, engine: ArmSim, resource: Resource, op: Operation) -> None:
        """An action's operation failed (`op.error` says why)."""


def properties_of(view: dict[str, Any]) -> dict[str, Any]:
    """The `properties` object of a view, created when absent."""
    properties = view.setdefault("properties", {})
    assert isinstance(properties, dict)
    return properties

"""Long-running operations and the clock that completes them.

A write that ARM answers asynchronously starts an `Operation` that ends at a time of the
simulator's clock (the type's duration from `latency.py`, times the latency scale). Every
request first `advance`s the clock: operations now due complete in end-time order, ending as the
type's `outcome` hook says (or as fault injection planned), and their resources become
`Succeeded`, `Failed` or disappear. Also here: the URLs clients poll, `Retry-After`, and which
operation keeps a resource busy.
"""

from __future__ import annotations

import math
import uuid
from typing import Any
from urllib.parse import urlencode

from localdev.armsim import registry
from localdev.armsim.catalog import spec_for
from localdev.armsim.errors import ArmError, another_operation_in_progress
from localdev.armsim.hooks import ArmSim
from localdev.armsim.latency import Operation as OperationKind
from localdev.armsim.latency import operation_seconds
from localdev.armsim.messages import SimRequest, SimResponse
from localdev.armsim.paths import key, parse_resource_id
from localdev.armsim.store import Operation, Resource

_STATE_FOR_KIND = {"create": "Creating", "update": "Updating", "delete": "Deleting"}


def advance(sim: ArmSim) -> None:
    """Complete every operation whose end time has passed, in end-time order."""
    operations = sim.store.operations
    due = sorted(
        (operations[op_id] for op_id in sim.store.pending if operations[op_id].end <= sim.now),
        key=lambda op: (op.end, op.start),
    )
    for op in due:
        sim.store.pending.discard(op.id)
        _complete(sim, op)
    expired = [k for k, at in sim.store.expiring.items() if at <= sim.now]
    for resource_key in expired:
        sim.store.remove(resource_key)


def _complete(sim: ArmSim, op: Operation) -> None:
    store = sim.store
    resource = store.get(op.resource_id)
    store.dirty = True
    if op.action is not None:
        _complete_action(sim, op, resource)
        return
    if op.planned_error is None and resource is not None and resource.operation_id == op.id:
        op.planned_error = registry.for_type(resource.type).outcome(sim, resource, op)
    if op.planned_error is not None:
        op.status, op.error = "Failed", op.planned_error
        store.counters["operations.failed"] += 1
        if resource is not None and resource.operation_id == op.id:
            resource.operation_id = None
            resource.state = "Failed"
            if op.kind == "delete":
                # The delete did not happen: what it would have taken along stays.
                for descendant in store.descendants(resource.id):
                    if descendant.state == "Deleting":
                        descendant.state = "Succeeded"
            registry.for_type(resource.type).failed(sim, resource, op)
        return
    op.status = "Succeeded"
    store.counters["operations.succeeded"] += 1
    if resource is None:
        return
    resource.operation_id = None
    if op.kind == "delete":
        remove(sim, resource)
        return
    resource.state = "Succeeded"
    registry.for_type(resource.type).completed(sim, resource, op)


def _complete_action(sim: ArmSim, op: Operation, resource: Resource | None) -> None:
    """End a POST action's operation as its type's action hooks say (or as a fault planned)."""
    behaviour = registry.for_type(resource.type) if resource is not None else None
    error = op.planned_error
    if error is None and behaviour is not None and resource is not None:
        error = behaviour.action_outcome(sim, resource, op)
    if resource is not None and resource.operation_id == op.id:
        resource.operation_id = None
        resource.state = "Succeeded"
    if error is not None:
        op.status, op.error, op.result = "Failed", error, None
        sim.store.counters["operations.failed"] += 1
        if behaviour is not None and resource is not None:
            behaviour.action_failed(sim, resource, op)
        return
    op.status = "Succeeded"
    sim.store.counters["operations.succeeded"] += 1
    if behaviour is not None and resource is not None:
        behaviour.action_completed(sim, resource, op)


def remove(sim: ArmSim, resource: Resource) -> None:
    """Take a resource and everything under it out of the store, deepest first, telling each
    one's behaviour (which frees what it held: IP addresses, quota, ...)."""
    for removed in sorted(
        [resource, *sim.store.descendants(resource.id)], key=lambda r: -len(r.id)
    ):
        registry.for_type(removed.type).removed(sim, removed)
    sim.store.remove(resource.id)


def start(
    sim: ArmSim,
    resource: Resource,
    kind: OperationKind,
    method: str,
    seconds: float,
    planned_error: dict[str, Any] | None = None,
    *,
    action: str | None = None,
    targets: list[str] | None = None,
    lock: bool = True,
) -> Operation:
    """Begin a long-running operation on a resource; it ends after `seconds` x scale.

    An action's operation (`action`) may leave the resource as it is (`lock=False`: a read
    such as a gateway's backend health neither shows `Updating` nor blocks writes)."""
    store = sim.store
    parsed = parse_resource_id(resource.id)
    namespace = parsed.namespace if parsed else "Microsoft.Resources"
    # Ids derive from the resource and its operation count, not randomness, so a rerun
    # polls the same URLs and seeded fault decisions repeat exactly.
    count = store.operation_counts.get(key(resource.id), 0) + 1
    store.operation_counts[key(resource.id)] = count
    op = Operation(
        id=str(uuid.uuid5(uuid.NAMESPACE_URL, f"{key(resource.id)}#{count}")),
        resource_id=resource.id,
        kind=kind,
        method=method,
        namespace=namespace,
        location=store.location_of(resource),
        subscription=resource.id.split("/")[2],
        start=sim.now,
        end=sim.now + seconds * sim.config.latency_scale,
        planned_error=planned_error,
        action=action,
        targets=list(targets or []),
    )
    store.operations[op.id] = op
    store.pending.add(op.id)
    if lock:
        resource.operation_id = op.id
        resource.state = _STATE_FOR_KIND[kind]
    store.counters["operations.started"] += 1
    store.dirty = True
    return op


def start_removal(sim: ArmSim, resource: Resource, request: SimRequest) -> SimResponse:
    """Begin removing a resource as an action's long-running operation (202 + `Location`)."""
    seconds = operation_seconds(resource.type, "delete", resource.body)
    op = start(sim, resource, "delete", "POST", seconds)
    headers = {
        "x-sim-operation-id": op.id,
        "Location": result_url(request, op),
        **retry_after(sim, op),
    }
    return SimResponse(202, None, headers)


def start_action(
    sim: ArmSim,
    resource: Resource,
    action: str,
    request: SimRequest,
    seconds: float,
    planned_error: dict[str, Any] | None,
    *,
    targets: list[str] | None = None,
    lock: bool = True,
) -> SimResponse:
    """Begin a POST action as a long-running operation: 202 with `Azure-AsyncOperation` and
    `Location` (the provider's poll URLs; `Location` answers the result once it is done)."""
    op = start(
        sim,
        resource,
        "update",
        "POST",
        seconds,
        planned_error,
        action=action,
        targets=targets,
        lock=lock,
    )
    headers = {
        "x-sim-operation-id": op.id,
        "Azure-AsyncOperation": status_url(request, op),
        "Location": result_url(request, op),
        **retry_after(sim, op),
    }
    return SimResponse(202, None, headers)


def busy(sim: ArmSim, resource: Resource) -> Operation | None:
    """The operation keeping a resource busy: its own, or one on a parent-locking child."""
    candidates = [resource]
    candidates += [
        child for child in sim.store.children(resource.id) if spec_for(child.type).locks_parent
    ]
    for candidate in candidates:
        op = running(sim, candidate)
        if op is not None:
            return op
    return None


def running(sim: ArmSim, resource: Resource) -> Operation | None:
    """The resource's own operation, while it is in progress."""
    if resource.operation_id:
        op = sim.store.operations.get(resource.operation_id)
        if op is not None and op.status == "InProgress":
            return op
    return None


def busy_error(request: SimRequest, op: Operation) -> ArmError:
    """409 `AnotherOperationInProgress`, pointing at the operation that is in the way."""
    return another_operation_in_progress(status_url(request, op))


def status_url(request: SimRequest, op: Operation) -> str:
    """The operation's `Azure-AsyncOperation` URL."""
    return (
        f"{request.base_url}/subscriptions/{op.subscription}/providers/{op.namespace}/"
        f"locations/{op.location}/operations/{op.id}?"
        + urlencode({"api-version": request.param("api-version") or ""})
    )


def result_url(request: SimRequest, op: Operation) -> str:
    """The operation's `Location` URL (where its result is fetched)."""
    version = urlencode({"api-version": request.param("api-version") or ""})
    if op.namespace.lower() == "microsoft.resources":
        base = f"{request.base_url}/subscriptions/{op.subscription}"
        return f"{base}/operationresults/{op.id}?{version}"
    if op.namespace.lower() == "microsoft.compute":
        # Compute's Location is its status URL with `monitor=true` (answered as a result): its
        # poll is authorized as `Microsoft.Compute/locations/operations/read`, the only
        # asynchronous-operation read Compute publishes (MicrosoftDocs/azure-docs,
        # articles/role-based-access-control/resource-provider-operations.md, commit d6526ee2:
        # there is no `Microsoft.Compute/locations/operationResults/read`).
        return (
            f"{request.base_url}/subscriptions/{op.subscription}/providers/{op.namespace}/"
            f"locations/{op.location}/operations/{op.id}?monitor=true&{version}"
        )
    # Storage's Location is `.../locations/{loc}/asyncoperations/{id}` (its poll's action
    # is `Microsoft.Storage/locations/asyncoperations/read`); the others `operationResults`.
    segment = (
        "asyncoperations" if op.namespace.lower() == "microsoft.storage" else "operationResults"
    )
    return (
        f"{request.base_url}/subscriptions/{op.subscription}/providers/{op.namespace}/"
        f"locations/{op.location}/{segment}/{op.id}?{version}"
    )


def retry_after(sim: ArmSim, op: Operation) -> dict[str, str]:
    """The `Retry-After` header to send with a running operation (none under a second)."""
    remaining = op.end - sim.now
    if op.status != "InProgress" or remaining < 1:
        # Sub-second waits: let the client's own polling interval decide.
        return {}
    return {"Retry-After": str(min(math.ceil(remaining), sim.config.max_poll_retry_after))}

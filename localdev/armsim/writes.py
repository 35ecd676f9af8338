"""Writes to resources: PUT, PATCH, DELETE and POST actions.

A write passes the checks (`checks.py`), is stored at once (without secrets; write-only values
only as digests), and is answered as its type's catalog entry says: synchronously, or with a
long-running operation (`operations.py`) and the headers the type's SDK polls. The type's
behaviour hooks run at each step: `prepare`, `applied`, `completed`, `deleting`, `removed`,
`action`.
"""

from __future__ import annotations

import copy
import uuid
from typing import Any

from localdev.armsim import extensions, operations, registry
from localdev.armsim.bodies import (
    json_body,
    keep_digests,
    merge_patch,
    strip_secrets,
    take_write_only,
)
from localdev.armsim.catalog import WriteMode, canonical_type, spec_for
from localdev.armsim.checks import (
    check_not_in_use,
    check_write_target,
    not_found,
    require_scope,
    validate,
)
from localdev.armsim.errors import ArmError
from localdev.armsim.faults import EXTENSION_REBOOT, RETRYABLE_OPERATION_ERROR, FaultKind
from localdev.armsim.hooks import ArmSim
from localdev.armsim.latency import Operation as OperationKind
from localdev.armsim.latency import operation_seconds
from localdev.armsim.messages import SimRequest, SimResponse
from localdev.armsim.paths import ResourcePath
from localdev.armsim.store import Resource
from localdev.armsim.views import view


def new_resource(sim: ArmSim, resource_id: str, type_name: str, body: dict[str, Any]) -> Resource:
    """A resource as first stored: provisioned, without secrets."""
    return Resource(
        id=resource_id,
        type=canonical_type(type_name),
        body=strip_secrets(body),
        state="Succeeded",
        created=sim.now,
        changed=sim.now,
        etag=f'W/"{uuid.uuid4()}"',
    )


def put(
    sim: ArmSim, path: ResourcePath, request: SimRequest, fault: FaultKind | None
) -> SimResponse:
    spec = spec_for(path.full_type)
    if not spec.creatable:
        raise ArmError(
            409,
            "OperationNotAllowed",
            f"Resources of type {spec.type} are created by their parent and cannot be "
            "written directly.",
        )
    body = json_body(request)
    for read_only in ("id", "name", "type", "etag"):
        body.pop(read_only, None)
    existing = check_write_target(sim, path, request)
    validate(sim, path, spec, body, existing)
    body = registry.for_type(spec.type).prepare(sim, path, body, existing) or body
    digests = take_write_only(spec, body)
    kind: OperationKind = "update" if existing is not None else "create"
    previous = copy.deepcopy(existing.body) if existing is not None else None
    if existing is None:
        resource = new_resource(sim, path.id, path.full_type, body)
        sim.store.put(resource)
        sim.store.record_creation(resource.id)
        sim.store.counters[f"created.{resource.type}"] += 1
    else:
        resource = existing
        resource.body = strip_secrets(body)
        resource.changed = sim.now
        resource.etag = f'W/"{uuid.uuid4()}"'
        sim.store.dirty = True
    keep_digests(resource, digests)
    mode: WriteMode = spec.put
    if mode == "location202" and existing is not None:
        mode = "sync"
    return _answer(sim, resource, kind, "PUT", mode, previous, request, fault)


def patch(
    sim: ArmSim, path: ResourcePath, request: SimRequest, fault: FaultKind | None
) -> SimResponse:
    spec = spec_for(path.full_type)
    changes = json_body(request)
    existing = check_write_target(sim, path, request)
    if existing is None:
        raise not_found(sim, path)
    merged = merge_patch(existing.body, changes)
    validate(sim, path, spec, merged, existing)
    digests = take_write_only(spec, merged)
    previous = copy.deepcopy(existing.body)
    existing.body = strip_secrets(merged)
    keep_digests(existing, digests)
    existing.changed = sim.now
    existing.etag = f'W/"{uuid.uuid4()}"'
    sim.store.dirty = True
    return _answer(sim, existing, "update", "PATCH", spec.patch, previous, request, fault)


def _answer(
    sim: ArmSim,
    resource: Resource,
    kind: OperationKind,
    method: str,
    mode: WriteMode,
    previous: dict[str, Any] | None,
    request: SimRequest,
    fault: FaultKind | None,
) -> SimResponse:
    """The answer to a stored write: its view at once, or an operation and where to poll it."""
    behaviour = registry.for_type(resource.type)
    created = kind == "create"
    if mode == "sync":
        resource.state = "Succeeded"
        behaviour.applied(sim, resource, previous)
        behaviour.completed(sim, resource, None)
        status = spec_for(resource.type).sync_create_status if created else 200
        return SimResponse(status, view(sim, resource))
    seconds = operation_seconds(resource.type, kind, resource.body, previous)
    planned = _fault_error(fault)
    if fault == EXTENSION_REBOOT:
        planned = _reboot_error(resource)
    op = operations.start(sim, resource, kind, method, seconds, planned)
    behaviour.applied(sim, resource, previous)
    headers = {"x-sim-operation-id": op.id, **operations.retry_after(sim, op)}
    if mode in {"async201", "async200"}:
        headers["Azure-AsyncOperation"] = operations.status_url(request, op)
        status = 201 if created and mode == "async201" else 200
        return SimResponse(status, view(sim, resource), headers)
    if mode == "location201":
        headers["Location"] = operations.result_url(request, op)
        return SimResponse(201 if created else 200, view(sim, resource), headers)
    headers["Location"] = operations.result_url(request, op)
    if mode == "async202":
        headers["Azure-AsyncOperation"] = operations.status_url(request, op)
    return SimResponse(202, None, headers)


def delete(
    sim: ArmSim, path: ResourcePath, request: SimRequest, fault: FaultKind | None
) -> SimResponse:
    spec = spec_for(path.full_type)
    require_scope(sim, path, writing=True)
    resource = sim.store.get(path.id)
    if resource is None:
        return SimResponse(204)
    check_write_target(sim, path, request)
    check_not_in_use(sim, resource, spec)
    registry.for_type(resource.type).deleting(sim, resource)
    if spec.delete == "sync":
        answer = view(sim, resource) if spec.delete_body else None
        operations.remove(sim, resource)
        return SimResponse(200, answer)
    for descendant in sim.store.descendants(resource.id):
        descendant.state = "Deleting"
    op = operations.start(
        sim,
        resource,
        "delete",
        "DELETE",
        operation_seconds(resource.type, "delete", resource.body),
        _fault_error(fault),
    )
    headers = {
        "x-sim-operation-id": op.id,
        "Location": operations.result_url(request, op),
        "Azure-AsyncOperation": operations.status_url(request, op),
        **operations.retry_after(sim, op),
    }
    return SimResponse(202, None, headers)


def post_action(sim: ArmSim, path: ResourcePath, request: SimRequest) -> SimResponse:
    """POST `.../{type}/{name}/{action}`: the type's action (405 when it has none)."""
    target = path.parent
    action = path.types[-1]
    if target is None or target.is_collection:
        raise ArmError(405, "MethodNotAllowed", "The requested method POST is not supported here.")
    require_scope(sim, target, writing=True)
    resource = sim.store.get(target.id)
    if resource is None:
        raise not_found(sim, target)
    busy = operations.busy(sim, resource)
    if busy is not None:
        raise operations.busy_error(request, busy)
    response = registry.for_type(resource.type).action(sim, resource, action, request)
    if response is None:
        raise ArmError(
            405,
            "MethodNotAllowed",
            f"The action '{action}' is not supported for resources of type {resource.type}.",
        )
    return response


def _fault_error(fault: FaultKind | None) -> dict[str, Any] | None:
    return dict(RETRYABLE_OPERATION_ERROR) if fault == "operation-failed" else None


def _reboot_error(resource: Resource) -> dict[str, Any] | None:
    """The reboot fault's error: the write's (first) script extension exits with 3010."""
    reboot = extensions.ScriptResult(extensions.REBOOT_EXIT_CODE)
    properties = resource.body.get("properties") or {}
    if extensions.is_script(properties):
        return extensions.script_failure(resource.name, properties, reboot)
    for name, script in extensions.profile_scripts(resource.body):
        return extensions.script_failure(name, script, reboot)
    return None

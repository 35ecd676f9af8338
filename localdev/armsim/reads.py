"""Reads: a resource, the lists ARM offers, instance views, and operation status.

Lists are paged (`views.page`); extension types (role assignments) and computed lists
(scale-set instances' NICs) come from the type's behaviour (`list_at`, `listed`); the generic
resource lists filter on `resourceType` or on a tag.
"""

from __future__ import annotations

import re
from typing import Any

from localdev.armsim import behaviours, operations, registry
from localdev.armsim.catalog import canonical_type, spec_for
from localdev.armsim.checks import not_found, require_group, require_scope
from localdev.armsim.errors import ArmError
from localdev.armsim.hooks import ArmSim
from localdev.armsim.messages import SimRequest, SimResponse
from localdev.armsim.paths import RESOURCE_GROUP_TYPE, ResourcePath, Route, key, parse_resource_id
from localdev.armsim.store import iso
from localdev.armsim.views import page, view

_FILTER_TYPE = re.compile(r"resourceType\s+eq\s+'([^']+)'", re.IGNORECASE)
_FILTER_TAG = re.compile(
    r"tagName\s+eq\s+'([^']+)'(?:\s+and\s+tagValue\s+eq\s+'([^']*)')?", re.IGNORECASE
)
_FILTER_LATEST_MODEL = re.compile(
    r"properties/latestModelApplied\s+eq\s+(true|false)", re.IGNORECASE
)
_GENERIC_KEYS = frozenset({"id", "name", "type", "location", "tags", "sku", "kind"})


def get(sim: ArmSim, path: ResourcePath, request: SimRequest) -> SimResponse:
    """`GET` of one resource (`$expand` passed on to its view)."""
    require_scope(sim, path, writing=False)
    resource = sim.store.get(path.id)
    if resource is None:
        raise not_found(sim, path)
    return SimResponse(200, view(sim, resource, request.param("$expand") or ""))


def get_other(sim: ArmSim, route: Route, request: SimRequest) -> SimResponse:
    """`GET` of anything but one resource, a group or the subscription: lists, usages and
    operation status."""
    expand = request.param("$expand") or ""
    if route.kind == "collection" and route.path is not None:
        return _get_collection(sim, route.path, request)
    if route.kind == "group_list":
        return page(sim, request, _groups(sim, route.subscription))
    if route.kind in {"group_resources", "subscription_resources"}:
        if route.kind == "group_resources":
            require_group(sim, route.subscription, route.resource_group, writing=False)
        return page(sim, request, _generic_resources(sim, route, request))
    if route.kind == "subscription_type_list":
        wanted = f"{route.namespace}/{route.type_name}".lower()
        if spec_for(wanted).extension:
            scope = f"/subscriptions/{route.subscription}"
            listed = registry.for_type(wanted).list_at(sim, scope, request)
            return page(sim, request, listed or [])
        prefix = f"/subscriptions/{route.subscription}/".lower()
        found = [
            view(sim, r, expand)
            for k, r in sim.store.resources.items()
            if k.startswith(prefix) and r.type.lower() == wanted
        ]
        return page(sim, request, found)
    if route.kind in {"operation_status", "operation_result", "group_operation_result"}:
        return _get_operation(sim, route, request)
    if route.kind == "usages":
        return SimResponse(200, {"value": behaviours.compute_usages(sim, route)})
    raise ArmError(404, "InvalidRequestUri", f"The request URI '{request.path}' is not valid.")


def _groups(sim: ArmSim, subscription: str) -> list[dict[str, Any]]:
    """`GET /subscriptions/{sub}/resourceGroups`: the subscription's groups."""
    return [
        view(sim, r)
        for r in sim.store.resources.values()
        if r.type == RESOURCE_GROUP_TYPE and r.id.split("/")[2].lower() == subscription.lower()
    ]


def _generic_resources(sim: ArmSim, route: Route, request: SimRequest) -> list[dict[str, Any]]:
    """`.../resources` of a group or a subscription: top-level resources, optionally filtered."""
    prefix = f"/subscriptions/{route.subscription}/"
    if route.kind == "group_resources":
        prefix += f"resourcegroups/{route.resource_group}/"
    wanted_type, tag_name, tag_value = _parse_filter(request.param("$filter") or "")
    found = []
    for resource_key, resource in sim.store.resources.items():
        parsed = parse_resource_id(resource.id)
        if (
            not resource_key.startswith(prefix.lower())
            or parsed is None
            or len(parsed.types) != 1
            or not parsed.resource_group
            or parsed.extends
            or spec_for(resource.type).extension
        ):
            continue
        if wanted_type and resource.type.lower() != wanted_type.lower():
            continue
        tags = {k.lower(): v for k, v in (resource.body.get("tags") or {}).items()}
        if tag_name and (
            tag_name.lower() not in tags
            or (tag_value is not None and tags[tag_name.lower()] != tag_value)
        ):
            continue
        listed = {k: v for k, v in view(sim, resource).items() if k in _GENERIC_KEYS}
        if tag_name:
            # Resources - List: "When you filter by a tag name and value, the tags for each
            # resource are not returned in the results" (resources.json, 2021-04-01).
            listed.pop("tags", None)
        found.append(listed)
    return found


def _parse_filter(expression: str) -> tuple[str | None, str | None, str | None]:
    """The `$filter` forms ARM's generic resource list supports: resourceType, tagName/Value."""
    resource_type = _FILTER_TYPE.search(expression)
    tag = _FILTER_TAG.search(expression)
    return (
        resource_type.group(1) if resource_type else None,
        tag.group(1) if tag else None,
        tag.group(2) if tag else None,
    )


def _get_collection(sim: ArmSim, path: ResourcePath, request: SimRequest) -> SimResponse:
    """A type's list in a group (or at an extension scope), or a list under a resource."""
    require_scope(sim, path, writing=False)
    expand = request.param("$expand") or ""
    parent_path = path.parent
    spec = spec_for(path.full_type)
    if parent_path is None and spec.extension:
        listed = registry.for_type(spec.type).list_at(sim, path.scope, request)
        return page(sim, request, listed or [])
    if parent_path is None:
        wanted = canonical_type(path.full_type).lower()
        prefix = key(path.group_id) + "/"
        found = [
            view(sim, r, expand)
            for k, r in sim.store.resources.items()
            if k.startswith(prefix) and r.type.lower() == wanted
        ]
        return page(sim, request, found)
    parent = sim.store.get(parent_path.id)
    if parent is None:
        raise not_found(sim, parent_path)
    if path.types[-1].lower() == "instanceview":
        instance_view = registry.for_type(parent.type).instance_view(sim, parent)
        if instance_view is None:
            raise ArmError(
                404, "InvalidRequestUri", f"The request URI '{request.path}' is not valid."
            )
        return SimResponse(200, instance_view)
    computed = registry.for_type(parent.type).listed(sim, parent, path.types[-1])
    if computed is not None:
        return page(sim, request, computed)
    children = sim.store.children(parent.id, canonical_type(path.full_type))
    views = [view(sim, child, expand) for child in children]
    latest = _FILTER_LATEST_MODEL.search(request.param("$filter") or "")
    if latest is not None:
        # VirtualMachineScaleSetVMs_List's `$filter`: 'properties/latestModelApplied eq
        # true|false' (Compute's virtualMachineScaleSet.json, 2024-11-01).
        applied = latest.group(1).lower() == "true"
        views = [v for v in views if v["properties"].get("latestModelApplied") is applied]
    return page(sim, request, views)


def _get_operation(sim: ArmSim, route: Route, request: SimRequest) -> SimResponse:
    """An operation's status (`Azure-AsyncOperation`) or result (`Location`)."""
    op = sim.store.operations.get(route.operation_id)
    if op is None or op.subscription.lower() != route.subscription.lower():
        raise ArmError(
            404, "OperationNotFound", f"The operation '{route.operation_id}' was not found."
        )
    if route.kind == "operation_status":
        status: dict[str, Any] = {
            "id": request.path,
            "name": op.id,
            "status": op.status,
            "startTime": iso(op.start),
        }
        if op.status != "InProgress":
            status["endTime"] = iso(op.end)
        if op.error is not None:
            status["error"] = op.error
        return SimResponse(200, status, operations.retry_after(sim, op))
    if op.status == "InProgress":
        headers = {
            "Location": operations.result_url(request, op),
            **operations.retry_after(sim, op),
        }
        return SimResponse(202, None, headers)
    if op.status != "Succeeded":
        return SimResponse(400, {"error": op.error})
    if op.action is not None:
        # An action's result (a gateway's backend health, a restore point), or no body.
        return SimResponse(200, op.result)
    resource = sim.store.get(op.resource_id)
    if op.kind == "delete" or resource is None:
        return SimResponse(200 if op.kind != "delete" else 204)
    return SimResponse(200, view(sim, resource))

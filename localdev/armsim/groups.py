"""Resource groups: `PUT/PATCH/GET/HEAD/DELETE /subscriptions/{sub}/resourceGroups/{name}`.

A group is created or updated synchronously (its location never changes); deleting it is a
long-running operation that deletes everything in it.
"""

from __future__ import annotations

from localdev.armsim import operations
from localdev.armsim.bodies import json_body, merge_patch, strip_secrets
from localdev.armsim.catalog import spec_for
from localdev.armsim.checks import group, require_group
from localdev.armsim.errors import ArmError
from localdev.armsim.hooks import ArmSim
from localdev.armsim.latency import operation_seconds
from localdev.armsim.messages import SimRequest, SimResponse
from localdev.armsim.paths import RESOURCE_GROUP_TYPE, Route
from localdev.armsim.validation import require_location
from localdev.armsim.views import view
from localdev.armsim.writes import new_resource

_GROUP_KEYS = frozenset({"location", "tags", "managedBy"})


def put(sim: ArmSim, route: Route, request: SimRequest) -> SimResponse:
    body = json_body(request)
    spec = spec_for(RESOURCE_GROUP_TYPE)
    assert spec.name_rule is not None
    spec.name_rule.check(route.resource_group, RESOURCE_GROUP_TYPE)
    require_location(body)
    kept = {k: v for k, v in body.items() if k in _GROUP_KEYS}
    existing = group(sim, route.subscription, route.resource_group)
    if existing is not None:
        if existing.state == "Deleting":
            require_group(sim, route.subscription, route.resource_group, writing=True)
        old = str(existing.body.get("location", "")).replace(" ", "").lower()
        new = str(body["location"]).replace(" ", "").lower()
        if old != new:
            raise ArmError(
                409,
                "InvalidResourceGroupLocation",
                f"Invalid resource group location '{body['location']}'. The Resource group "
                f"already exists in location '{existing.body['location']}'.",
            )
        existing.body = strip_secrets(kept)
        existing.changed = sim.now
        sim.store.dirty = True
        return SimResponse(200, view(sim, existing))
    created = new_resource(
        sim,
        f"/subscriptions/{route.subscription}/resourceGroups/{route.resource_group}",
        RESOURCE_GROUP_TYPE,
        kept,
    )
    sim.store.put(created)
    sim.store.record_creation(created.id)
    return SimResponse(201, view(sim, created))


def patch(sim: ArmSim, route: Route, request: SimRequest) -> SimResponse:
    found = require_group(sim, route.subscription, route.resource_group, writing=True)
    changes = json_body(request)
    found.body = merge_patch(found.body, {k: v for k, v in changes.items() if k != "location"})
    found.changed = sim.now
    sim.store.dirty = True
    return SimResponse(200, view(sim, found))


def get(sim: ArmSim, route: Route) -> SimResponse:
    found = require_group(sim, route.subscription, route.resource_group, writing=False)
    return SimResponse(200, view(sim, found))


def head(sim: ArmSim, route: Route) -> SimResponse:
    exists = group(sim, route.subscription, route.resource_group) is not None
    return SimResponse(204 if exists else 404)


def delete(sim: ArmSim, route: Route, request: SimRequest) -> SimResponse:
    found = require_group(sim, route.subscription, route.resource_group, writing=False)
    if found.state == "Deleting" and found.operation_id:
        op = sim.store.operations[found.operation_id]
    else:
        for resource in sim.store.descendants(found.id):
            resource.state = "Deleting"
        seconds = operation_seconds(RESOURCE_GROUP_TYPE, "delete")
        op = operations.start(sim, found, "delete", "DELETE", seconds)
    headers = {"Location": operations.result_url(request, op), **operations.retry_after(sim, op)}
    headers["x-sim-operation-id"] = op.id
    return SimResponse(202, None, headers)

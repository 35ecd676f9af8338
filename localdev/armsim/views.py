"""The JSON ARM returns: a resource's view, the subscription, and paged lists.

A view is the stored body with `id`, `name`, `type` and `properties.provisioningState` as ARM
shows them, sub-resource ids and etags on network resources, each user-assigned identity's
principal and client ids, and what the type's `decorate` hook computes; never `userData` unless
asked for (`$expand=userData`).
"""

from __future__ import annotations

import copy
from typing import Any
from urllib.parse import urlencode

from localdev.armsim import operations, registry
from localdev.armsim.bodies import without_key
from localdev.armsim.catalog import spec_for
from localdev.armsim.errors import ArmError
from localdev.armsim.hooks import ArmSim
from localdev.armsim.messages import SimRequest, SimResponse
from localdev.armsim.store import Resource


def visible_state(sim: ArmSim, resource: Resource) -> str:
    """`provisioningState` as ARM shows it (a VNet updating a subnet shows `Updating`)."""
    if resource.state == "Succeeded" and operations.busy(sim, resource) is not None:
        return "Updating"
    return resource.state


def view(sim: ArmSim, resource: Resource, expand: str = "") -> dict[str, Any]:
    """The JSON body ARM returns for a resource."""
    body = copy.deepcopy(resource.body)
    if "userdata" not in expand.lower():
        body = without_key(body, "userdata")
    out: dict[str, Any] = {"id": resource.id, "name": resource.name, "type": resource.type}
    for name in ("location", "tags", "sku", "kind", "zones", "identity", "plan"):
        if name in body:
            out[name] = body.pop(name)
    properties = body.pop("properties", None)
    properties = properties if isinstance(properties, dict) else {}
    out.update(body)
    state = visible_state(sim, resource)
    if spec_for(resource.type).sub_resource_ids:
        out["etag"] = resource.etag
        for collection, items in properties.items():
            if isinstance(items, list):
                for item in items:
                    if isinstance(item, dict) and item.get("name"):
                        item.setdefault("id", f"{resource.id}/{collection}/{item['name']}")
                        item.setdefault("etag", resource.etag)
                        item_properties = item.setdefault("properties", {})
                        if isinstance(item_properties, dict):
                            item_properties["provisioningState"] = state
    properties["provisioningState"] = state
    out["properties"] = properties
    _decorate_identities(sim, out)
    registry.for_type(resource.type).decorate(sim, resource, out, expand)
    return out


def _decorate_identities(sim: ArmSim, view: dict[str, Any]) -> None:
    """`identity.userAssignedIdentities[id]` shows each identity's principal and client ids."""
    identity = view.get("identity")
    assigned = identity.get("userAssignedIdentities") if isinstance(identity, dict) else None
    if not isinstance(assigned, dict):
        return
    for identity_id in assigned:
        stored = sim.store.get(identity_id)
        if stored is not None and stored.extra.get("principalId"):
            assigned[identity_id] = {
                "principalId": stored.extra["principalId"],
                "clientId": stored.extra.get("clientId", ""),
            }


def subscription_view(sim: ArmSim, subscription: str) -> dict[str, Any]:
    """`GET /subscriptions/{id}` (Subscriptions - Get, Microsoft.Resources 2022-12-01)."""
    return {
        "id": f"/subscriptions/{subscription}",
        "subscriptionId": subscription,
        "tenantId": sim.config.tenant_id,
        "displayName": f"Simulated subscription {subscription}",
        "state": "Enabled",
        "subscriptionPolicies": {
            "locationPlacementId": "Public_2014-09-01",
            "quotaId": "PayAsYouGo_2014-09-01",
            "spendingLimit": "Off",
        },
        "authorizationSource": "RoleBased",
    }


def page(sim: ArmSim, request: SimRequest, items: list[dict[str, Any]]) -> SimResponse:
    """One page of a list, sorted by id, with a `nextLink` (`$skiptoken`) while more remain."""
    items = sorted(items, key=lambda item: str(item.get("id", "")).lower())
    try:
        skip = int(request.param("$skiptoken") or 0)
    except ValueError:
        raise ArmError(400, "InvalidSkipToken", "The skip token is not valid.") from None
    size = sim.config.page_size
    answer: dict[str, Any] = {"value": items[skip : skip + size]}
    if skip + size < len(items):
        query = {k: v for k, v in request.query.items() if k.lower() != "$skiptoken"}
        query["$skiptoken"] = str(skip + size)
        answer["nextLink"] = f"{request.base_url}{request.path}?{urlencode(query)}"
    return SimResponse(200, answer)

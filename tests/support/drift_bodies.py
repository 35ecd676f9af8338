"""Live bodies as ARM returns them after the desired ones were PUT, for the drift tests.

ARM adds its read-only and server-filled properties and never returns write-only values; the
shapes are the published ones: Azure/azure-rest-api-specs,
specification/network/resource-manager/Microsoft.Network/stable/2023-09-01/
examples/NetworkSecurityGroupGet.json (commit b8d93149913bfd224f1e1046994976eb1cd7f9e6) and
networkSecurityGroup.json (commit 114077a23cb1edc9c5604cfb9a957570203dc706).
"""

from __future__ import annotations

import copy
from typing import Any

from outsystems.placeholders import placeholders_in
from outsystems.policy import POLICY_MAC_TAG
from outsystems.resource_types import NSG, VM
from outsystems.topology import Resource

#: One of the default rules ARM adds to every NSG (NetworkSecurityGroupGet.json).
DEFAULT_RULE = {
    "name": "DenyAllInBound",
    "properties": {
        "provisioningState": "Succeeded",
        "description": "Deny all inbound traffic",
        "protocol": "*",
        "sourcePortRange": "*",
        "destinationPortRange": "*",
        "sourceAddressPrefix": "*",
        "destinationAddressPrefix": "*",
        "access": "Deny",
        "priority": 65500,
        "direction": "Inbound",
    },
}
#: A rule someone added in the portal (the shape of NetworkSecurityGroupGet.json's `rule1`).
HAND_RULE = {
    "name": "rule1",
    "properties": {
        "protocol": "*",
        "sourcePortRange": "*",
        "destinationPortRange": "80",
        "sourceAddressPrefix": "*",
        "destinationAddressPrefix": "*",
        "access": "Allow",
        "priority": 130,
        "direction": "Inbound",
    },
}


def _strip_write_only(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            k: _strip_write_only(v)
            for k, v in value.items()
            if k.lower() not in {"protectedsettings", "adminpassword", "userdata", "value"}
            and not (isinstance(v, str) and placeholders_in(v) and k != POLICY_MAC_TAG)
        }
    if isinstance(value, list):
        return [_strip_write_only(item) for item in value]
    return value


def as_arm_returns(resource: Resource) -> dict[str, Any]:
    """The live body ARM answers a GET with after the desired body was PUT."""
    body: dict[str, Any] = _strip_write_only(copy.deepcopy(dict(resource.body)))
    body.update(id=resource.id, name=resource.name, type=resource.type, etag='W/"0a1b"')
    tags = body.get("tags")
    if isinstance(tags, dict) and POLICY_MAC_TAG in tags:
        tags[POLICY_MAC_TAG] = "9f" * 32  # what arm/secrets.py rendered
    properties = body.setdefault("properties", {})
    properties.update(provisioningState="Succeeded", resourceGuid="5b1c8f0e-1d2e-4f3a-9b8c")
    if resource.type == NSG:
        for rule in properties.get("securityRules", []):
            rule["id"] = f"{resource.id}/securityRules/{rule['name']}"
            rule["etag"] = 'W/"0a1b"'
            rule["type"] = "Microsoft.Network/networkSecurityGroups/securityRules"
            rule["properties"]["provisioningState"] = "Succeeded"
        properties["defaultSecurityRules"] = [
            {**DEFAULT_RULE, "id": f"{resource.id}/defaultSecurityRules/DenyAllInBound"}
        ]
        properties["subnets"] = [{"id": f"{resource.id.split('/providers/')[0]}/x/subnets/s"}]
    if resource.type == VM:
        properties["vmId"] = "0a1b2c3d-0000-4000-8000-000000000001"
    return body

"""The ARM resource types the app creates or reads, the API version of each, and ARM ids.

One table: the topology builds bodies with these versions, the activities send them, the scaler
reads scale sets with them and the teardown deletes with them. The versions are those of the
Azure SDKs the `arm/` adapter uses.
"""

from __future__ import annotations

from typing import Final

SUBSCRIPTION: Final = "Microsoft.Resources/subscriptions"
RESOURCE_GROUP: Final = "Microsoft.Resources/resourceGroups"
NSG: Final = "Microsoft.Network/networkSecurityGroups"
VNET: Final = "Microsoft.Network/virtualNetworks"
SUBNET: Final = "Microsoft.Network/virtualNetworks/subnets"
PUBLIC_IP: Final = "Microsoft.Network/publicIPAddresses"
NIC: Final = "Microsoft.Network/networkInterfaces"
APP_GATEWAY: Final = "Microsoft.Network/applicationGateways"
BASTION_HOST: Final = "Microsoft.Network/bastionHosts"
NAT_GATEWAY: Final = "Microsoft.Network/natGateways"
ROUTE_TABLE: Final = "Microsoft.Network/routeTables"
STORAGE_ACCOUNT: Final = "Microsoft.Storage/storageAccounts"
FILE_SHARE: Final = "Microsoft.Storage/storageAccounts/fileServices/shares"
SQL_SERVER: Final = "Microsoft.Sql/servers"
SQL_DATABASE: Final = "Microsoft.Sql/servers/databases"
SQL_VNET_RULE: Final = "Microsoft.Sql/servers/virtualNetworkRules"
SQL_FIREWALL_RULE: Final = "Microsoft.Sql/servers/firewallRules"
VM: Final = "Microsoft.Compute/virtualMachines"
VM_EXTENSION: Final = "Microsoft.Compute/virtualMachines/extensions"
#: A VM's managed disk: the topology creates none, but a deleted VM may leave one behind.
DISK: Final = "Microsoft.Compute/disks"
SCALE_SET: Final = "Microsoft.Compute/virtualMachineScaleSets"
IDENTITY: Final = "Microsoft.ManagedIdentity/userAssignedIdentities"
ACTION_GROUP: Final = "Microsoft.Insights/actionGroups"
METRIC_ALERT: Final = "Microsoft.Insights/metricAlerts"
KEY_VAULT: Final = "Microsoft.KeyVault/vaults"
KEY_VAULT_SECRET_TYPE: Final = "Microsoft.KeyVault/vaults/secrets"
ROLE_ASSIGNMENT: Final = "Microsoft.Authorization/roleAssignments"
WAF_POLICY: Final = "Microsoft.Network/ApplicationGatewayWebApplicationFirewallPolicies"

#: The API version of every type of a resource provider ...
_API_VERSIONS: Final = {
    "Microsoft.Resources": "2025-04-01",
    "Microsoft.Network": "2026-03-01",
    "Microsoft.Compute": "2026-04-01",
    "Microsoft.Sql": "2025-01-01",
    "Microsoft.Storage": "2025-06-01",
    "Microsoft.ManagedIdentity": "2023-01-31",
    "Microsoft.KeyVault": "2024-11-01",
    "Microsoft.Authorization": "2022-04-01",
}
#: ... but for these types.
_TYPE_API_VERSIONS: Final = {
    SUBSCRIPTION: "2022-12-01",
    ACTION_GROUP: "2023-01-01",
    METRIC_ALERT: "2018-03-01",
}


def api_version(resource_type: str) -> str:
    """The API version the app uses for `resource_type` (`KeyError` for a provider it never
    uses)."""
    if resource_type in _TYPE_API_VERSIONS:
        return _TYPE_API_VERSIONS[resource_type]
    return _API_VERSIONS[resource_type.split("/", 1)[0]]


def type_of(resource_id: str) -> str:
    """The resource type an ARM id names (the last provider's), e.g.
    `Microsoft.Network/virtualNetworks/subnets`, or `Microsoft.Authorization/roleAssignments`
    for an extension resource."""
    parts = resource_id.strip("/").split("/")
    lowered = [part.lower() for part in parts]
    if "providers" not in lowered:
        return RESOURCE_GROUP if "resourcegroups" in lowered else SUBSCRIPTION
    start = len(lowered) - 1 - lowered[::-1].index("providers")
    namespace, *rest = parts[start + 1 :]
    return "/".join([namespace, *rest[0::2]])


def subscription_of(resource_id: str) -> str:
    """The subscription id in an ARM id (`ValueError` for anything else)."""
    parts = resource_id.strip("/").split("/")
    if len(parts) < 2 or parts[0].lower() != "subscriptions":
        raise ValueError(f"{resource_id!r} is not an ARM resource id")
    return parts[1]

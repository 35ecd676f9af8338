"""ARM ids and types, the one table of types and API versions.

Oracle for the id shapes: Microsoft Learn, "Resource functions for ARM templates"
(https://learn.microsoft.com/azure/azure-resource-manager/templates/template-functions-resource):
`resourceId` returns `/subscriptions/{subscriptionId}/resourceGroups/{resourceGroupName}/
providers/{resourceProviderNamespace}/{resourceType}/{resourceName}` (child types add
`/{childType}/{childName}`), `subscription().id` is `/subscriptions/{subscriptionId}`, and
`extensionResourceId` returns `{scope}/providers/{extensionResourceProviderNamespace}/
{extensionResourceType}/{extensionResourceName}`.
"""

from __future__ import annotations

import pytest

from outsystems import resource_types as types
from outsystems.resource_types import api_version, subscription_of, type_of

SUB = "11111111-2222-3333-4444-555555555555"
GROUP = f"/subscriptions/{SUB}/resourceGroups/acme-rg"
VNET = f"{GROUP}/providers/Microsoft.Network/virtualNetworks/acme-vnet"


@pytest.mark.parametrize(
    ("resource_id", "expected"),
    [
        (f"/subscriptions/{SUB}", types.SUBSCRIPTION),
        (GROUP, types.RESOURCE_GROUP),
        (VNET, types.VNET),
        (
            f"{GROUP}/providers/Microsoft.Network/virtualNetworks/acme-vnet/subnets/dev",
            types.SUBNET,
        ),
        (
            f"{GROUP}/providers/Microsoft.KeyVault/vaults/acme-kv/providers/"
            "Microsoft.Authorization/roleAssignments/0c8d7f1e-3c55-4d6a-9a0f-7b1f2a4c9e21",
            types.ROLE_ASSIGNMENT,
        ),
        (f"{GROUP.upper()}/PROVIDERS/Microsoft.Sql/servers/acme-sql", types.SQL_SERVER),
    ],
)
def test_the_type_an_id_names(resource_id: str, expected: str) -> None:
    assert type_of(resource_id) == expected


def test_the_subscription_of_an_id() -> None:
    assert subscription_of(f"{GROUP}/providers/Microsoft.Compute/virtualMachines/vm") == SUB
    assert subscription_of(f"/SUBSCRIPTIONS/{SUB}") == SUB
    with pytest.raises(ValueError, match="not an ARM resource id"):
        subscription_of("acme-prod-vmss")


def test_every_type_of_the_table_has_an_api_version() -> None:
    table = [
        value
        for name, value in vars(types).items()
        if not name.startswith("_") and isinstance(value, str) and "/" in value
    ]
    assert len(table) == len(set(table))
    for resource_type in table:
        assert api_version(resource_type)
    assert api_version(types.SCALE_SET) == api_version(types.VM)
    with pytest.raises(KeyError):
        api_version("Microsoft.Web/sites")

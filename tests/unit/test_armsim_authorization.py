"""The simulator's authorization: ARM action names per request and role wildcard matching.

Oracles: action names from MicrosoftDocs/azure-docs, articles/role-based-access-control/
resource-provider-operations.md (e.g. `Microsoft.Compute/virtualMachines/instanceView/read`,
`Microsoft.Resources/subscriptions/operationresults/read`,
`Microsoft.Storage/locations/asyncoperations/read`); the built-in Managed Identity Operator
role (built-in-roles/identity.md) grants `Microsoft.ManagedIdentity/userAssignedIdentities/
assign/action` through its `userAssignedIdentities/*/assign/action`.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from localdev.armsim.authorization import Permissions, linked_references, matches, required_action
from localdev.armsim.paths import parse_resource_id, parse_route

ROLE_FILE = Path(__file__).resolve().parents[2] / "infra" / "app" / "platform-operator-role.json"
G = "/subscriptions/s1/resourceGroups/rg"


@pytest.mark.parametrize(
    ("pattern", "action", "expected"),
    [
        (
            "Microsoft.ManagedIdentity/userAssignedIdentities/*/assign/action",
            "Microsoft.ManagedIdentity/userAssignedIdentities/assign/action",
            True,
        ),
        ("Microsoft.Sql/locations/*/read", "Microsoft.Sql/locations/operations/read", True),
        ("Microsoft.Sql/locations/*/read", "Microsoft.Sql/servers/read", False),
        ("*/read", "Microsoft.Network/virtualNetworks/subnets/read", True),
        ("*/read", "Microsoft.Network/virtualNetworks/write", False),
        ("*", "Microsoft.Storage/storageAccounts/listKeys/action", True),
        (
            "microsoft.compute/virtualmachines/write",
            "Microsoft.Compute/virtualMachines/write",
            True,
        ),
        (
            "Microsoft.Compute/virtualMachines/write",
            "Microsoft.Compute/virtualMachines/extensions/write",
            False,
        ),
    ],
)
def test_role_wildcards(pattern: str, action: str, expected: bool) -> None:
    assert matches([pattern], action) is expected


def test_not_actions_take_away_what_actions_grant() -> None:
    permissions = Permissions("r", ("Microsoft.Authorization/*",), ("*/Write",))
    assert permissions.allows("Microsoft.Authorization/roleAssignments/read")
    assert not permissions.allows("Microsoft.Authorization/roleAssignments/write")


@pytest.mark.parametrize(
    ("method", "path", "action"),
    [
        ("GET", f"{G}", "Microsoft.Resources/subscriptions/resourceGroups/read"),
        ("HEAD", f"{G}", "Microsoft.Resources/subscriptions/resourceGroups/read"),
        ("DELETE", f"{G}", "Microsoft.Resources/subscriptions/resourceGroups/delete"),
        ("GET", "/subscriptions/s1", "Microsoft.Resources/subscriptions/read"),
        (
            "GET",
            f"{G}/resources",
            "Microsoft.Resources/subscriptions/resourceGroups/resources/read",
        ),
        (
            "PUT",
            f"{G}/providers/microsoft.compute/virtualmachines/vm/extensions/setup",
            "Microsoft.Compute/virtualMachines/extensions/write",
        ),
        (
            "GET",
            f"{G}/providers/Microsoft.Compute/virtualMachines/vm/instanceView",
            "Microsoft.Compute/virtualMachines/instanceView/read",
        ),
        (
            "GET",
            f"{G}/providers/Microsoft.Compute/virtualMachineScaleSets/fe/virtualMachines",
            "Microsoft.Compute/virtualMachineScaleSets/virtualMachines/read",
        ),
        (
            "POST",
            f"{G}/providers/Microsoft.Storage/storageAccounts/st/listKeys",
            "Microsoft.Storage/storageAccounts/listKeys/action",
        ),
        (
            "PUT",
            f"{G}/providers/Microsoft.KeyVault/vaults/kv/secrets/s/providers/"
            "Microsoft.Authorization/roleAssignments/0b5fe924-9a61-425c-96af-cfe6e287ca2d",
            "Microsoft.Authorization/roleAssignments/write",
        ),
        (
            "GET",
            "/subscriptions/s1/providers/Microsoft.KeyVault/locations/westeurope/deletedVaults/kv",
            "Microsoft.KeyVault/locations/deletedVaults/read",
        ),
        (
            "POST",
            "/subscriptions/s1/providers/Microsoft.KeyVault/locations/westeurope/deletedVaults/kv/"
            "purge",
            "Microsoft.KeyVault/locations/deletedVaults/purge/action",
        ),
        (
            "GET",
            "/subscriptions/s1/providers/Microsoft.Network/locations/westeurope/operations/x",
            "Microsoft.Network/locations/operations/read",
        ),
        (
            "GET",
            "/subscriptions/s1/providers/Microsoft.Storage/locations/westeurope/asyncoperations/x",
            "Microsoft.Storage/locations/asyncoperations/read",
        ),
        (
            "GET",
            "/subscriptions/s1/operationresults/x",
            "Microsoft.Resources/subscriptions/operationresults/read",
        ),
    ],
)
def test_requests_map_to_arm_actions(method: str, path: str, action: str) -> None:
    route = parse_route(path)
    assert route is not None
    assert required_action(route, method) == action


def test_extension_resources_parse_onto_their_scope() -> None:
    assignment = (
        f"{G}/providers/Microsoft.KeyVault/vaults/kv/secrets/s/providers/"
        "Microsoft.Authorization/roleAssignments/0b5fe924-9a61-425c-96af-cfe6e287ca2d"
    )
    path = parse_resource_id(assignment)
    assert path is not None
    assert path.extends == f"{G}/providers/Microsoft.KeyVault/vaults/kv/secrets/s"
    assert path.full_type == "Microsoft.Authorization/roleAssignments"
    assert path.id == assignment
    at_group = parse_resource_id(
        f"{G}/providers/Microsoft.Authorization/roleAssignments/0b5fe924-9a61-425c-96af-cfe6e287ca2d"
    )
    assert at_group is not None
    assert at_group.scope == G


def test_linked_references_name_the_linked_action() -> None:
    nic = parse_resource_id(f"{G}/providers/Microsoft.Network/networkInterfaces/nic")
    subnet = f"{G}/providers/Microsoft.Network/virtualNetworks/v/subnets/dev"
    nsg = f"{G}/providers/Microsoft.Network/networkSecurityGroups/nsg"
    assert nic is not None
    body = {
        "properties": {
            "networkSecurityGroup": {"id": nsg},
            "ipConfigurations": [{"name": "ip", "properties": {"subnet": {"id": subnet}}}],
        }
    }
    assert linked_references(nic, body) == [
        ("Microsoft.Network/networkSecurityGroups/join/action", nsg),
        ("Microsoft.Network/virtualNetworks/subnets/join/action", subnet),
    ]
    rule = parse_resource_id(f"{G}/providers/Microsoft.Sql/servers/sql/virtualNetworkRules/r")
    assert rule is not None
    assert linked_references(rule, {"properties": {"virtualNetworkSubnetId": subnet}}) == [
        ("Microsoft.Network/virtualNetworks/subnets/joinViaServiceEndpoint/action", subnet)
    ]


def test_the_role_file_loads_and_bad_files_are_refused(tmp_path: Path) -> None:
    role = Permissions.load(ROLE_FILE)
    data = json.loads(ROLE_FILE.read_text(encoding="utf-8"))
    assert role.role_name == data["roleName"]
    assert role.allows("Microsoft.Compute/virtualMachines/write")
    assert not role.allows("Microsoft.Storage/storageAccounts/listKeys/action")
    assert role.may_assign(data["assignableRoleIds"][0].upper())
    assert not role.may_assign("b24988ac-6180-42a0-ab88-20f7382dd24c")
    broken = tmp_path / "role.json"
    for text in ("{", "[]", '{"actions": "x"}', '{"actions": [], "assignableRoleIds": [1]}'):
        broken.write_text(text, encoding="utf-8")
        with pytest.raises(ValueError, match=r"permissions|actions|assignableRoleIds"):
            Permissions.load(broken)

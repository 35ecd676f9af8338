"""Authorization from the app's role file: ARM's 403s for actions, linked scopes and conditions.

Oracles (MicrosoftDocs/azure-docs at commit 012ad308577ca7a4bcf96132a0e71b2819fa4a98,
articles/role-based-access-control/troubleshooting.md):
- "Symptom - Authorization failed": code `AuthorizationFailed`, message
  "The client '<client>' with object id '<objectId>' does not have authorization to perform
  action '<action>' over scope '<scope>' or the scope is invalid." followed, in the
  role-assignment example of the same page, by "If access was recently granted, please refresh
  your credentials."
- "Symptom - Unable to assign a role" (a role assignment condition not fulfilled): "... does
  not have authorization or an ABAC condition not fulfilled to perform action
  'Microsoft.Authorization/roleAssignments/write' over scope '<role assignment id>' or the scope
  is invalid. If access was recently granted, please refresh your credentials."
- `LinkedAuthorizationFailed` (403): "The client '<client>' with object id '<objectId>' has
  permission to perform action '<action>' on scope '<scope>'; however, it does not have
  permission to perform action(s) '<linked action>' on the linked scope(s) '<linked scope>'
  (respectively) or the linked scope(s) are invalid." (same page, "Unable to create or update a
  custom role", for the wording; the identity case with
  'Microsoft.ManagedIdentity/userAssignedIdentities/assign/action' and ErrorCode
  LinkedAuthorizationFailed / StatusCode 403 as Azure PowerShell prints it; the subnet case with
  'Microsoft.Network/virtualNetworks/subnets/join/action' as ARM returned it to an AKS write).
- Service endpoints: "To secure Azure service resources to a VNet, the user must have permission
  Microsoft.Network/virtualNetworks/subnets/joinViaServiceEndpoint/action for the subnets being
  added." (articles/virtual-network/virtual-networks-faq.md, "What permissions do I need to set
  up service endpoints?").
Action names: articles/role-based-access-control/resource-provider-operations.md (e.g.
`Microsoft.Resources/subscriptions/operationresults/read`, "Get the subscription operation
results").
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from localdev.armsim.authorization import Permissions
from localdev.armsim.server import SimulatorServer
from tests.support import armsim_bodies as bodies
from tests.support.armsim_clients import (
    AUTHORIZATION_API,
    COMPUTE_API,
    IDENTITY_API,
    NETWORK_API,
    SQL_API,
    STORAGE_API,
    SUBSCRIPTION,
    Clients,
    Raw,
)

ROOT = Path(__file__).resolve().parents[3]
ROLE_FILE = ROOT / "infra" / "app" / "platform-operator-role.json"
G = bodies.GROUP
GROUP_ID = f"/subscriptions/{SUBSCRIPTION}/resourceGroups/{G}"
SUBNET = bodies.rid(SUBSCRIPTION, G, "Microsoft.Network/virtualNetworks/vnet/subnets/dev")
IDENTITY = bodies.rid(SUBSCRIPTION, G, "Microsoft.ManagedIdentity/userAssignedIdentities/dev-id")


def _role() -> Permissions:
    return Permissions.load(ROLE_FILE)


def _caller(sim: SimulatorServer) -> tuple[str, str]:
    return sim.config.caller_client_id, sim.config.caller_object_id


def _denied(sim: SimulatorServer, action: str, scope: str, *, condition: bool = False) -> str:
    client, object_id = _caller(sim)
    what = "authorization or an ABAC condition not fulfilled" if condition else "authorization"
    return (
        f"The client '{client}' with object id '{object_id}' does not have {what} to perform "
        f"action '{action}' over scope '{scope}' or the scope is invalid. If access was recently "
        "granted, please refresh your credentials."
    )


def _linked(sim: SimulatorServer, action: str, scope: str, linked: str, linked_scope: str) -> str:
    client, object_id = _caller(sim)
    return (
        f"The client '{client}' with object id '{object_id}' has permission to perform action "
        f"'{action}' on scope '{scope}'; however, it does not have permission to perform "
        f"action(s) '{linked}' on the linked scope(s) '{linked_scope}' (respectively) or the "
        "linked scope(s) are invalid."
    )


def _network(clients: Clients) -> None:
    clients.resource.resource_groups.create_or_update(G, {"location": bodies.LOCATION})
    clients.network.virtual_networks.begin_create_or_update(
        G, "vnet", bodies.vnet({"dev": "10.0.0.0/24"})
    ).result()


def test_without_a_permissions_file_every_action_is_allowed(sim: SimulatorServer, raw: Raw):
    assert sim.permissions() is None
    raw.send("PUT", GROUP_ID, {"location": bodies.LOCATION})
    lb = f"{GROUP_ID}/providers/Microsoft.Network/loadBalancers/lb"
    answer = raw.put(lb, {"location": bodies.LOCATION, "properties": {}}, api=NETWORK_API)
    assert answer.status == 200, answer.body


def test_an_action_the_role_lacks_is_authorization_failed_and_changes_nothing(
    sim: SimulatorServer, raw: Raw
):
    raw.send("PUT", GROUP_ID, {"location": bodies.LOCATION})
    sim.set_permissions(_role())
    lb = f"{GROUP_ID}/providers/Microsoft.Network/loadBalancers/lb"
    answer = raw.send("PUT", lb, {"location": bodies.LOCATION, "properties": {}}, api=NETWORK_API)
    assert (answer.status, answer.code) == (403, "AuthorizationFailed")
    assert answer.message == _denied(sim, "Microsoft.Network/loadBalancers/write", lb)
    assert sim.resources(type_name="Microsoft.Network/loadBalancers") == []
    # Reads of what the role lists are allowed; the group exists.
    assert raw.send("GET", GROUP_ID).status == 200


@pytest.mark.parametrize(
    ("path", "action"),
    [
        # POST actions map to `<type>/<action>/action`: the role has no listKeys, no runCommand.
        (
            "/providers/Microsoft.Storage/storageAccounts/simstore/listKeys",
            "Microsoft.Storage/storageAccounts/listKeys/action",
        ),
        (
            "/providers/Microsoft.Compute/virtualMachines/vm1/runCommand",
            "Microsoft.Compute/virtualMachines/runCommand/action",
        ),
    ],
)
def test_post_actions_outside_the_role_are_refused(
    sim: SimulatorServer, raw: Raw, path: str, action: str
):
    raw.send("PUT", GROUP_ID, {"location": bodies.LOCATION})
    sim.set_permissions(_role())
    answer = raw.send("POST", f"{GROUP_ID}{path}", {}, api=STORAGE_API)
    assert (answer.status, answer.code) == (403, "AuthorizationFailed")
    assert answer.message == _denied(sim, action, f"{GROUP_ID}{path}")


# The provider operations of the upgrade actions (MicrosoftDocs/azure-docs, articles/role-based-
# access-control/resource-provider-operations.md: Microsoft.Compute/virtualMachineScaleSets/
# manualUpgrade/action "Manually updates instances to latest model of the virtual machine scale
# set", .../reimage/action, .../delete/action, .../virtualMachines/reimage/action; Microsoft.
# Network/applicationGateways/backendhealth/action; Microsoft.Sql/servers/databases/
# restorePoints/action).
_UPGRADE_ACTIONS = {
    "/providers/Microsoft.Compute/virtualMachineScaleSets/fe/manualupgrade": (
        "Microsoft.Compute/virtualMachineScaleSets/manualUpgrade/action"
    ),
    "/providers/Microsoft.Compute/virtualMachineScaleSets/fe/reimage": (
        "Microsoft.Compute/virtualMachineScaleSets/reimage/action"
    ),
    "/providers/Microsoft.Compute/virtualMachineScaleSets/fe/delete": (
        "Microsoft.Compute/virtualMachineScaleSets/delete/action"
    ),
    "/providers/Microsoft.Compute/virtualMachineScaleSets/fe/virtualMachines/0/reimage": (
        "Microsoft.Compute/virtualMachineScaleSets/virtualMachines/reimage/action"
    ),
    "/providers/Microsoft.Network/applicationGateways/gw/backendhealth": (
        "Microsoft.Network/applicationGateways/backendhealth/action"
    ),
    "/providers/Microsoft.Sql/servers/sql/databases/db/restorePoints": (
        "Microsoft.Sql/servers/databases/restorePoints/action"
    ),
}


def test_upgrade_actions_need_their_provider_operations(sim: SimulatorServer, raw: Raw):
    raw.send("PUT", GROUP_ID, {"location": bodies.LOCATION})
    role = _role().without(*_UPGRADE_ACTIONS.values())
    sim.set_permissions(role)
    for path, action in _UPGRADE_ACTIONS.items():
        answer = raw.send("POST", f"{GROUP_ID}{path}", {"instanceIds": ["0"]}, api=COMPUTE_API)
        assert (answer.status, answer.code) == (403, "AuthorizationFailed"), path
        assert answer.message == _denied(sim, action, f"{GROUP_ID}{path}")
    sim.set_permissions(role.with_actions(*_UPGRADE_ACTIONS.values()))
    for path in _UPGRADE_ACTIONS:
        # Authorized: the request reaches the provider (nothing of that name exists here).
        answer = raw.send("POST", f"{GROUP_ID}{path}", {"instanceIds": ["0"]}, api=COMPUTE_API)
        assert answer.status == 404, path


def test_a_read_the_role_lacks_is_refused_too(sim: SimulatorServer, raw: Raw):
    sim.set_permissions(_role().without("Microsoft.Resources/subscriptions/resourceGroups/read"))
    answer = raw.send("GET", GROUP_ID)
    assert (answer.status, answer.code) == (403, "AuthorizationFailed")
    assert "'Microsoft.Resources/subscriptions/resourceGroups/read'" in answer.message


def test_assigning_an_identity_needs_assign_on_the_identity(
    sim: SimulatorServer, clients: Clients, raw: Raw
):
    _network(clients)
    raw.put(IDENTITY, bodies.identity(), api=IDENTITY_API)
    nic = clients.network.network_interfaces.begin_create_or_update(
        G, "nic1", bodies.nic(SUBNET)
    ).result()
    vm = bodies.vm(nic.id)
    vm["identity"] = {"type": "UserAssigned", "userAssignedIdentities": {IDENTITY: {}}}
    vm_id = f"{GROUP_ID}/providers/Microsoft.Compute/virtualMachines/vm1"
    # The role file names the action either way (the built-in Managed Identity Operator's
    # `*/assign/action` form, or the operation itself).
    sim.set_permissions(
        _role().without(
            "Microsoft.ManagedIdentity/userAssignedIdentities/*/assign/action",
            "Microsoft.ManagedIdentity/userAssignedIdentities/assign/action",
        )
    )
    answer = raw.send("PUT", vm_id, vm, api=COMPUTE_API)
    assert (answer.status, answer.code) == (403, "LinkedAuthorizationFailed")
    assert answer.message == _linked(
        sim,
        "Microsoft.Compute/virtualMachines/write",
        vm_id,
        "Microsoft.ManagedIdentity/userAssignedIdentities/assign/action",
        IDENTITY,
    )
    assert sim.resources(type_name="Microsoft.Compute/virtualMachines") == []
    # The role's `userAssignedIdentities/assign/action` grants the assign operation.
    sim.set_permissions(_role())
    assert raw.put(vm_id, vm, api=COMPUTE_API).status == 200


def test_joining_a_subnet_needs_join_on_the_subnet(
    sim: SimulatorServer, clients: Clients, raw: Raw
):
    _network(clients)
    nic_id = f"{GROUP_ID}/providers/Microsoft.Network/networkInterfaces/nic1"
    sim.set_permissions(_role().without("Microsoft.Network/virtualNetworks/subnets/join/action"))
    answer = raw.send("PUT", nic_id, bodies.nic(SUBNET), api=NETWORK_API)
    assert (answer.status, answer.code) == (403, "LinkedAuthorizationFailed")
    assert answer.message == _linked(
        sim,
        "Microsoft.Network/networkInterfaces/write",
        nic_id,
        "Microsoft.Network/virtualNetworks/subnets/join/action",
        SUBNET,
    )
    sim.set_permissions(_role())
    assert raw.put(nic_id, bodies.nic(SUBNET), api=NETWORK_API).status == 200


def test_a_sql_vnet_rule_needs_join_via_service_endpoint_on_the_subnet(
    sim: SimulatorServer, clients: Clients, raw: Raw
):
    _network(clients)
    clients.sql.servers.begin_create_or_update(G, "sim-sql", bodies.sql_server()).result()
    rule = f"{GROUP_ID}/providers/Microsoft.Sql/servers/sim-sql/virtualNetworkRules/dev"
    sim.set_permissions(
        _role().with_actions("Microsoft.Network/virtualNetworks/subnets/joinViaServiceEndpoint/*")
    )
    answer = raw.put(rule, {"properties": {"virtualNetworkSubnetId": SUBNET}}, api=SQL_API)
    assert answer.status == 200, answer.body
    sim.set_permissions(
        _role().without(
            "Microsoft.Network/virtualNetworks/subnets/joinViaServiceEndpoint/*",
            "Microsoft.Network/virtualNetworks/subnets/joinViaServiceEndpoint/action",
        )
    )
    answer = raw.send(
        "PUT", f"{rule}2", {"properties": {"virtualNetworkSubnetId": SUBNET}}, api=SQL_API
    )
    assert (answer.status, answer.code) == (403, "LinkedAuthorizationFailed")
    assert (
        "'Microsoft.Network/virtualNetworks/subnets/joinViaServiceEndpoint/action' on the linked "
        f"scope(s) '{SUBNET}'" in answer.message
    )


def test_role_assignments_only_for_the_assignable_roles(sim: SimulatorServer, raw: Raw):
    raw.send("PUT", GROUP_ID, {"location": bodies.LOCATION})
    identity = raw.put(IDENTITY, bodies.identity(), api=IDENTITY_API).body
    principal = identity["properties"]["principalId"]
    sim.set_permissions(_role())
    base = f"{GROUP_ID}/providers/Microsoft.Authorization/roleAssignments"
    contributor = f"{base}/3f8a2c51-0d4e-4b8e-9a43-6c1d2e7f9b01"
    answer = raw.send(
        "PUT",
        contributor,
        bodies.role_assignment(SUBSCRIPTION, bodies.CONTRIBUTOR, principal),
        api=AUTHORIZATION_API,
    )
    assert (answer.status, answer.code) == (403, "AuthorizationFailed")
    assert answer.message == _denied(
        sim, "Microsoft.Authorization/roleAssignments/write", contributor, condition=True
    )
    allowed = f"{base}/8b6c1f3e-2a7d-4c59-b0e4-91f2d3a6c7e8"
    answer = raw.send(
        "PUT",
        allowed,
        bodies.role_assignment(SUBSCRIPTION, bodies.KEY_VAULT_SECRETS_USER, principal),
        api=AUTHORIZATION_API,
    )
    assert answer.status == 201, answer.body


def test_operation_polls_need_their_read_action(sim: SimulatorServer, clients: Clients, raw: Raw):
    clients.resource.resource_groups.create_or_update(G, {"location": bodies.LOCATION})
    sim.set_permissions(_role().without("Microsoft.Network/locations/operations/read"))
    answer = raw.send(
        "PUT",
        f"{GROUP_ID}/providers/Microsoft.Network/networkSecurityGroups/nsg",
        {"location": bodies.LOCATION},
        api=NETWORK_API,
    )
    assert answer.status == 201
    polled = raw.send("GET", answer.headers["Azure-AsyncOperation"])
    assert (polled.status, polled.code) == (403, "AuthorizationFailed")
    assert "'Microsoft.Network/locations/operations/read'" in polled.message


def _admin(sim: SimulatorServer, method: str, body: Any = None) -> tuple[int, Any]:
    request = urllib.request.Request(
        f"{sim.url}/_sim/permissions",
        data=json.dumps(body).encode() if body is not None else None,
        method=method,
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_admin_api_switches_permissions_on_and_off(sim: SimulatorServer, raw: Raw):
    raw.send("PUT", GROUP_ID, {"location": bodies.LOCATION})
    role = json.loads(ROLE_FILE.read_text(encoding="utf-8"))
    status, shown = _admin(sim, "PUT", role)
    assert status == 200
    assert shown["permissions"]["roleName"] == role["roleName"]
    assert shown["permissions"]["assignableRoleIds"] == role["assignableRoleIds"]
    lb = f"{GROUP_ID}/providers/Microsoft.Network/loadBalancers/lb"
    assert raw.send("PUT", lb, {"location": bodies.LOCATION}, api=NETWORK_API).status == 403
    assert _admin(sim, "DELETE") == (200, {"permissions": None})
    assert raw.send("PUT", lb, {"location": bodies.LOCATION}, api=NETWORK_API).status == 201
    assert _admin(sim, "PUT", {"actions": "not-a-list"})[0] == 400


def test_cli_loads_the_permissions_file():
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "localdev.armsim",
            "--port",
            "0",
            "--latency-scale",
            "0",
            "--permissions",
            str(ROLE_FILE),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline().strip()
        match = re.fullmatch(r"ARM simulator listening on (http://127\.0\.0\.1:\d+)", line)
        assert match, line
        url = match.group(1)
        with urllib.request.urlopen(f"{url}/_sim/permissions", timeout=10) as response:
            shown = json.loads(response.read())
        assert shown["permissions"]["roleName"] == "OutSystems Ops platform operator"
        request = urllib.request.Request(
            f"{url}/subscriptions/{SUBSCRIPTION}/resourceGroups/{G}/providers/"
            f"Microsoft.Network/loadBalancers/lb?api-version={NETWORK_API}",
            data=json.dumps({"location": bodies.LOCATION}).encode(),
            method="PUT",
            headers={"Content-Type": "application/json"},
        )
        with pytest.raises(urllib.error.HTTPError) as caught:
            urllib.request.urlopen(request, timeout=10)
        assert caught.value.code == 403
        assert json.loads(caught.value.read())["error"]["code"] == "AuthorizationFailed"
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=20) == 0


def test_cli_refuses_an_unreadable_permissions_file(tmp_path: Path):
    broken = tmp_path / "role.json"
    broken.write_text("{not json", encoding="utf-8")
    process = subprocess.Popen(
        [sys.executable, "-m", "localdev.armsim", "--port", "0", "--permissions", str(broken)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    out, err = process.communicate(timeout=20)
    assert process.returncode == 2
    assert "listening" not in out
    assert "permissions" in err

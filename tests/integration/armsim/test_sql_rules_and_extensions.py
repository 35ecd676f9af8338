"""SQL VNet rules on subnets the platform did not create, and Custom Script Extension outcomes.

Oracles:
- hashicorp/terraform-provider-azurerm, internal/services/sql (acceptance test
  TestAccSqlVirtualNetworkRule_IgnoreEndpointInvalid, run against real Azure): a VNet rule on a
  subnet without the Microsoft.Sql service endpoint, `ignoreMissingVnetServiceEndpoint` false,
  fails with Code="VirtualNetworkRuleBadRequest".
- ARM's answer to a rule across regions (quoted in a public deployment log):
  VirtualNetworkRuleBadRequest "Microsoft.Sql resources in canadacentral cannot be ACL-ed to
  virtual network in westeurope. Only resources in westeurope can be ACL-ed to virtual networks
  in westeurope."
- Custom Script Extension failures (Microsoft Learn, AKS troubleshooting
  "CniDownloadTimeoutVMExtensionError", the Windows case): code VMExtensionProvisioningError,
  message "VM has reported a failure when processing extension '{name}' (publisher
  'Microsoft.Compute' and type 'CustomScriptExtension'). Error message: 'Command execution
  finished, but failed because it returned a non-zero exit code of: '{code}'. The command had an
  error output of: '{stderr}' For more information, check the instance view by executing
  Get-AzVmssVm or Get-AzVm (https://aka.ms/GetAzVm). These commands can be executed using
  CloudShell (https://aka.ms/CloudShell)'. More information on troubleshooting is available at
  https://aka.ms/VMExtensionCSEWindowsTroubleshoot."
- Exit code 3010 asks for a reboot (Outsystems.SetupTools' examples end with `exit 3010`); the
  extension does not continue after a restart (Microsoft's Custom Script Extension for Windows
  docs), so the run reports 3010 and a later run collects the outcome.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError

from localdev.armsim import extensions
from localdev.armsim.hooks import ArmSim
from localdev.armsim.server import SimulatorServer
from localdev.armsim.store import Resource
from tests.support import armsim_bodies as bodies
from tests.support.armsim_clients import (
    NETWORK_API,
    SQL_API,
    SUBSCRIPTION,
    Clients,
    Raw,
    error_of,
    message_of,
)

G = bodies.GROUP
GROUP_ID = f"/subscriptions/{SUBSCRIPTION}/resourceGroups/{G}"
SQL = f"{GROUP_ID}/providers/Microsoft.Sql/servers/sim-sql"
BYO = f"/subscriptions/{SUBSCRIPTION}/resourceGroups/customer-network"
BYO_VNET = f"{BYO}/providers/Microsoft.Network/virtualNetworks/hub"
SUBNET = bodies.rid(SUBSCRIPTION, G, "Microsoft.Network/virtualNetworks/vnet/subnets/dev")


def _sql(raw: Raw, clients: Clients) -> None:
    clients.resource.resource_groups.create_or_update(G, {"location": bodies.LOCATION})
    clients.sql.servers.begin_create_or_update(G, "sim-sql", bodies.sql_server()).result()


def _rule(raw: Raw, subnet: str, name: str = "dev", **extra: Any) -> Any:
    body = {"properties": {"virtualNetworkSubnetId": subnet, **extra}}
    return raw.send("PUT", f"{SQL}/virtualNetworkRules/{name}", body, api=SQL_API)


def _byo_vnet(raw: Raw, location: str = bodies.LOCATION, endpoint: bool = False) -> str:
    raw.send("PUT", BYO, {"location": location})
    subnet: dict[str, Any] = {"name": "apps", "properties": {"addressPrefix": "10.8.0.0/24"}}
    if endpoint:
        subnet["properties"]["serviceEndpoints"] = [{"service": "Microsoft.Sql"}]
    body = {
        "location": location,
        "properties": {"addressSpace": {"addressPrefixes": ["10.8.0.0/16"]}, "subnets": [subnet]},
    }
    assert raw.put(BYO_VNET, body, api=NETWORK_API).status == 200
    return f"{BYO_VNET}/subnets/apps"


def test_rule_on_a_brought_subnet_without_the_endpoint_is_refused(raw: Raw, clients: Clients):
    # Already refused by the simulator before this change (kept as a regression test).
    _sql(raw, clients)
    subnet = _byo_vnet(raw)
    answer = _rule(raw, subnet)
    assert (answer.status, answer.code) == (400, "VirtualNetworkRuleBadRequest")
    assert subnet in answer.message


def test_rule_on_a_subnet_nobody_knows_is_refused(raw: Raw, clients: Clients):
    # Already refused by the simulator before this change (kept as a regression test).
    _sql(raw, clients)
    unknown = (
        f"/subscriptions/{SUBSCRIPTION}/resourceGroups/elsewhere/providers/"
        "Microsoft.Network/virtualNetworks/v/subnets/s"
    )
    assert _rule(raw, unknown).status == 400


def test_rule_on_a_vnet_in_another_region_is_refused(raw: Raw, clients: Clients):
    _sql(raw, clients)
    subnet = _byo_vnet(raw, location="northeurope", endpoint=True)
    answer = _rule(raw, subnet)
    assert (answer.status, answer.code) == (400, "VirtualNetworkRuleBadRequest")
    assert answer.message == (
        "Microsoft.Sql resources in westeurope cannot be ACL-ed to virtual network in "
        "northeurope. Only resources in northeurope can be ACL-ed to virtual networks in "
        "northeurope."
    )
    ignored = _rule(raw, subnet, name="ignored", ignoreMissingVnetServiceEndpoint=True)
    assert ignored.status == 400, "the region rule holds with the endpoint check off"


def _vm(clients: Clients) -> None:
    clients.resource.resource_groups.create_or_update(G, {"location": bodies.LOCATION})
    clients.network.virtual_networks.begin_create_or_update(
        G, "vnet", bodies.vnet({"dev": "10.0.0.0/24"})
    ).result()
    nic = clients.network.network_interfaces.begin_create_or_update(
        G, "nic1", bodies.nic(SUBNET)
    ).result()
    clients.compute.virtual_machines.begin_create_or_update(G, "vm1", bodies.vm(nic.id)).result()


def _cse_failure(name: str, code: int, stderr: str = "") -> str:
    output = f" The command had an error output of: '{stderr}'" if stderr else ""
    return (
        f"VM has reported a failure when processing extension '{name}' (publisher "
        "'Microsoft.Compute' and type 'CustomScriptExtension'). Error message: 'Command "
        f"execution finished, but failed because it returned a non-zero exit code of: '{code}'."
        f"{output} For more information, check the instance view by executing Get-AzVmssVm or "
        "Get-AzVm (https://aka.ms/GetAzVm). These commands can be executed using CloudShell "
        "(https://aka.ms/CloudShell)'. More information on troubleshooting is available at "
        "https://aka.ms/VMExtensionCSEWindowsTroubleshoot."
    )


def test_reboot_fault_ends_the_extension_with_3010_once(clients: Clients, sim: SimulatorServer):
    _vm(clients)
    sim.add_fault_rule(method="PUT", path="/extensions/setup", kind="extension-exit-3010", count=1)
    with pytest.raises(HttpResponseError) as caught:
        clients.compute.virtual_machine_extensions.begin_create_or_update(
            G, "vm1", "setup", bodies.extension()
        ).result()
    assert error_of(caught.value)[1] == "VMExtensionProvisioningError"
    assert message_of(caught.value) == _cse_failure("setup", 3010)
    view = clients.compute.virtual_machine_extensions.get(G, "vm1", "setup", expand="instanceView")
    assert view.provisioning_state == "Failed"
    assert "3010" in view.instance_view.statuses[0].message
    again = clients.compute.virtual_machine_extensions.begin_create_or_update(
        G, "vm1", "setup", bodies.extension()
    ).result()
    assert again.provisioning_state == "Succeeded"


def test_reboot_fault_reaches_a_scale_sets_profile_extension(
    clients: Clients, sim: SimulatorServer
):
    _vm(clients)
    sim.add_fault_rule(method="PUT", path="/virtualmachinescalesets/fe", kind="extension-exit-3010")
    with pytest.raises(HttpResponseError) as caught:
        clients.compute.virtual_machine_scale_sets.begin_create_or_update(
            G, "fe", bodies.scale_set(SUBNET, 1)
        ).result()
    assert error_of(caught.value)[1] == "VMExtensionProvisioningError"
    assert message_of(caught.value) == _cse_failure("setup", 3010)


def test_the_fault_kind_is_only_for_script_extensions(sim: SimulatorServer, clients: Clients):
    _vm(clients)
    sim.add_fault_rule(method="PUT", path="/networksecuritygroups/", kind="extension-exit-3010")
    clients.network.network_security_groups.begin_create_or_update(
        G, "nsg", {"location": bodies.LOCATION}
    ).result()
    assert [r["fault"] for r in sim.requests() if r["method"] == "PUT"][-1] is None


@pytest.fixture
def failing_setup() -> Iterator[list[str]]:
    """An outcome decider for CustomScriptExtension: the server's setup fails."""
    seen: list[str] = []

    def decide(
        engine: ArmSim, host: Resource, extension: Mapping[str, Any]
    ) -> extensions.ScriptResult:
        seen.append(host.id)
        return extensions.ScriptResult(1, "OutSystems setup failed: no route to SQL (line 12)")

    extensions.register_outcome_decider("CustomScriptExtension", decide)
    try:
        yield seen
    finally:
        extensions.unregister_outcome_decider("CustomScriptExtension")


def test_an_outcome_decider_decides_how_a_script_ends(clients: Clients, failing_setup: list[str]):
    _vm(clients)
    with pytest.raises(HttpResponseError) as caught:
        clients.compute.virtual_machine_extensions.begin_create_or_update(
            G, "vm1", "setup", bodies.extension()
        ).result()
    assert message_of(caught.value) == _cse_failure(
        "setup", 1, "OutSystems setup failed: no route to SQL (line 12)"
    )
    assert failing_setup == [f"{GROUP_ID}/providers/Microsoft.Compute/virtualMachines/vm1"]

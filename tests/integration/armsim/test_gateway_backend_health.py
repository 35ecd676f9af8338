"""An Application Gateway's backend health, through azure-mgmt-network.

Oracle: Azure/azure-rest-api-specs, specification/network/resource-manager/Microsoft.Network/
stable/2024-05-01/applicationGateway.json (commit dea509ed): `ApplicationGateways_BackendHealth`,
POST `.../applicationGateways/{name}/backendhealth`, responses 200 (`ApplicationGatewayBackend
Health`) and 202, long-running with `final-state-via: location`; `ApplicationGatewayBackend
Health.backendAddressPools[]` = `{backendAddressPool, backendHttpSettingsCollection[]:
{backendHttpSettings, servers[]: {address, ipConfiguration, health, healthProbeLog}}}`, `health`
in `Unknown | Up | Down | Partial | Draining`. The app (and this client) call Network 2026-03-01.
"""

from __future__ import annotations

import json
import urllib.request
from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError

from localdev.armsim import backend_health
from localdev.armsim.server import SimulatorServer
from tests.support import armsim_bodies as bodies
from tests.support.armsim_clients import SUBSCRIPTION, Clients, Raw, error_of

G = bodies.GROUP
GROUP_ID = f"/subscriptions/{SUBSCRIPTION}/resourceGroups/{G}"
GATEWAY = f"{GROUP_ID}/providers/Microsoft.Network/applicationGateways/gw"
POOL = f"{GATEWAY}/backendAddressPools/frontends"
VMSS = f"{GROUP_ID}/providers/Microsoft.Compute/virtualMachineScaleSets/fe"
NETWORK_API = "2026-03-01"
COMPUTE_API = "2026-04-01"
VM_ADDRESS = "10.0.0.10"
NOBODY = "10.0.0.99"


def _farm(clients: Clients) -> None:
    """A gateway whose pool holds a VM's static address, an empty address and a scale set."""
    clients.resource.resource_groups.create_or_update(G, {"location": bodies.LOCATION})
    vnet = clients.network.virtual_networks.begin_create_or_update(
        G, "vnet", bodies.vnet({"vms": "10.0.0.0/24", "fe": "10.0.2.0/24", "gw": "10.0.4.0/24"})
    ).result()
    subnets = {s.name: s.id for s in vnet.subnets}
    nic = clients.network.network_interfaces.begin_create_or_update(
        G, "vm-nic", bodies.nic(subnets["vms"], static_ip=VM_ADDRESS)
    ).result()
    clients.compute.virtual_machines.begin_create_or_update(G, "vm", bodies.vm(nic.id)).result()
    pip = clients.network.public_ip_addresses.begin_create_or_update(
        G, "gw-pip", bodies.public_ip("simgw")
    ).result()
    gateway: dict[str, Any] = bodies.application_gateway(GATEWAY, subnets["gw"], pip.id)
    gateway["properties"]["backendAddressPools"][0]["properties"] = {
        "backendAddresses": [{"ipAddress": VM_ADDRESS}, {"ipAddress": NOBODY}]
    }
    clients.network.application_gateways.begin_create_or_update(G, "gw", gateway).result()
    clients.compute.virtual_machine_scale_sets.begin_create_or_update(
        G, "fe", bodies.scale_set(subnets["fe"], 2, pool_id=POOL)
    ).result()


def _servers(clients: Clients) -> dict[str, str]:
    health = clients.network.application_gateways.begin_backend_health(G, "gw").result()
    (pool,) = health.backend_address_pools
    assert pool.backend_address_pool.id == POOL
    (settings,) = pool.backend_http_settings_collection
    assert settings.backend_http_settings.id == f"{GATEWAY}/backendHttpSettingsCollection/settings"
    return {server.address: server.health for server in settings.servers}


def _result(raw: Raw, answer: Any) -> Any:
    """The operation's final state, from its `Location` (final-state-via: location)."""
    assert raw.wait(answer).body["status"] == "Succeeded"
    return raw.send("GET", answer.headers["Location"])


def _instance_addresses(raw: Raw) -> list[str]:
    nics = raw.send("GET", f"{VMSS}/networkInterfaces", api=NETWORK_API).body["value"]
    return [n["properties"]["ipConfigurations"][0]["properties"]["privateIPAddress"] for n in nics]


def test_backend_health_lists_the_pool_servers(clients: Clients, raw: Raw) -> None:
    _farm(clients)
    first, second = _instance_addresses(raw)
    assert _servers(clients) == {VM_ADDRESS: "Up", NOBODY: "Down", first: "Up", second: "Up"}

    answer = raw.send("POST", f"{GATEWAY}/backendhealth", api=NETWORK_API)
    assert answer.status == 202
    result = _result(raw, answer)
    assert result.status == 200
    servers = result.body["backendAddressPools"][0]["backendHttpSettingsCollection"][0]["servers"]
    by_address = {s["address"]: s for s in servers}
    assert by_address[first]["ipConfiguration"]["id"] == (
        f"{VMSS}/virtualMachines/0/networkInterfaces/fe-nic/ipConfigurations/fe-ip"
    )
    assert "ipConfiguration" not in by_address[VM_ADDRESS]  # listed by address in the pool
    assert {s["health"] for s in servers} <= {"Unknown", "Up", "Down", "Partial", "Draining"}


def test_routed_servers_are_the_routed_pools_servers_with_the_health_backendhealth_reports(
    clients: Clients, raw: Raw, sim: SimulatorServer
) -> None:
    _farm(clients)
    first, second = _instance_addresses(raw)
    sim.set_backend_health(second, "Down")
    answered = _servers(clients)
    # A second pool that no routing rule names: the gateway sends nothing there.
    gateway = raw.send("GET", GATEWAY, api=NETWORK_API).body
    gateway["properties"]["backendAddressPools"].append(
        {"name": "spare", "properties": {"backendAddresses": [{"ipAddress": "10.0.0.50"}]}}
    )
    assert raw.put(GATEWAY, gateway, api=NETWORK_API).status == 200

    resource = sim.engine.store.get(GATEWAY)
    assert resource is not None
    routed = backend_health.routed_servers(sim.engine, resource)

    # The same servers and health as the ARM answer, from the routed pool only.
    assert {(s.pool, s.address, s.health) for s in routed} == {
        ("frontends", address, health) for address, health in answered.items()
    }
    assert {s.address: s.health for s in routed} == {
        VM_ADDRESS: "Up",
        NOBODY: "Down",
        first: "Up",
        second: "Down",
    }
    machines = {s.address: s.machine_id for s in routed}
    vm_id = machines[VM_ADDRESS]
    assert vm_id is not None
    assert vm_id.lower() == f"{GROUP_ID}/providers/Microsoft.Compute/virtualMachines/vm".lower()
    assert machines[NOBODY] is None
    assert {machines[first], machines[second]} == {
        f"{VMSS}/virtualMachines/0",
        f"{VMSS}/virtualMachines/1",
    }
    # No setup script ran on these machines: no OutSystems version.
    assert {s.version for s in routed} == {None}


def test_tests_mark_a_server_down_in_process_and_through_the_admin_api(
    clients: Clients, raw: Raw, sim: SimulatorServer
) -> None:
    _farm(clients)
    first, second = _instance_addresses(raw)
    sim.set_backend_health(second, "Down")
    assert _servers(clients)[second] == "Down"
    sim.set_backend_health(second, None)
    assert _servers(clients)[second] == "Up"

    request = urllib.request.Request(
        f"{sim.url}/_sim/backendHealth",
        data=json.dumps({"address": first, "health": "Down"}).encode(),
        headers={"Content-Type": "application/json"},
        method="PUT",
    )
    with urllib.request.urlopen(request) as response:  # loopback only
        assert json.loads(response.read())["servers"] == {first: "Down"}
    assert _servers(clients)[first] == "Down"
    with pytest.raises(ValueError, match="health must be one of Unknown, Up, Down"):
        sim.set_backend_health(first, "Unhealthy")


def test_an_instance_being_reimaged_is_down_and_the_gateway_stays_idle(
    clients: Clients, raw: Raw, sim: SimulatorServer
) -> None:
    _farm(clients)
    first, _ = _instance_addresses(raw)
    sim.configure({"latencyScale": 1.0})
    started = raw.send("POST", f"{VMSS}/virtualMachines/0/reimage", {}, api=COMPUTE_API)
    assert started.status == 202
    health = raw.send("POST", f"{GATEWAY}/backendhealth", api=NETWORK_API)
    sim.fast_forward(10)
    result = _result(raw, health)
    servers = result.body["backendAddressPools"][0]["backendHttpSettingsCollection"][0]["servers"]
    assert {s["address"]: s["health"] for s in servers}[first] == "Down"
    # Reading the health neither shows the gateway Updating nor blocks a write to it.
    sim.configure({"latencyScale": 0.0})
    assert raw.send("GET", GATEWAY, api=NETWORK_API).body["properties"]["provisioningState"] == (
        "Succeeded"
    )
    sim.fast_forward(3600)
    assert _servers(clients)[first] == "Up"


def test_faults_on_backend_health(clients: Clients, sim: SimulatorServer) -> None:
    _farm(clients)
    sim.add_fault_rule("POST", "/applicationgateways/gw/backendhealth", "operation-failed")
    with pytest.raises(HttpResponseError) as raised:
        clients.network.application_gateways.begin_backend_health(G, "gw").result()
    assert error_of(raised.value)[1] == "RetryableError"
    sim.add_fault_rule("POST", "/applicationgateways/gw/backendhealth", "500")
    assert _servers(clients)[VM_ADDRESS] == "Up"  # azure-core retries the 500

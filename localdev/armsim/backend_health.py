"""An Application Gateway's backend health (`POST .../applicationGateways/{gw}/backendhealth`).

Facts (Azure/azure-rest-api-specs, specification/network/resource-manager/Microsoft.Network/
stable/2024-05-01/applicationGateway.json, commit dea509ed; the app calls Network 2026-03-01
through azure-mgmt-network): `ApplicationGateways_BackendHealth` is a long-running POST (200 or
202) whose final state comes from `Location` (`final-state-via: location`), an
`ApplicationGatewayBackendHealth`: `backendAddressPools[]` of `{backendAddressPool: {id},
backendHttpSettingsCollection[]: {backendHttpSettings: {id}, servers[]: {address,
ipConfiguration?: {id}, health, healthProbeLog}}}`, `health` one of `Unknown`, `Up`, `Down`,
`Partial`, `Draining`.

The simulator probes no server: a pool's servers are its `backendAddresses` (IP or FQDN) and the
IP configurations that name the pool (NICs', and each live instance of a scale set whose profile
names it, with the instance's address). A server is `Up` when the machine behind the address is
provisioned and idle (a VM whose extensions all succeeded, a scale-set instance `Succeeded`),
`Down` while it is being built, upgraded, reimaged or deleted, when it failed, when the setup
script drained it (`run_command.py`), or when no machine of the simulator has that address; a
test may set any address's health (`SimulatorServer.set_backend_health`, `PUT
/_sim/backendHealth`), which wins until cleared. Each pool is listed
with the HTTP settings its routing rules pair it with (all settings when no rule names it). The
`healthProbeLog` texts are ours.

`routed_servers` is the read tests use to ask what a gateway serves now: the servers of the pools
its request routing rules name, each with the health above and the OutSystems version its machine
runs (Application Gateway sends a rule's requests to the healthy members of the rule's pool:
MicrosoftDocs/azure-docs `articles/application-gateway/application-gateway-probe-overview.md`).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from localdev.armsim import setup_model
from localdev.armsim.hooks import ArmSim
from localdev.armsim.latency import action_seconds
from localdev.armsim.messages import SimRequest, SimResponse
from localdev.armsim.paths import key
from localdev.armsim.store import Operation, Resource
from localdev.armsim.validation import get_path

#: `ApplicationGatewayBackendHealthServerHealth` (applicationGateway.json 2024-05-01).
HEALTH_VALUES = ("Unknown", "Up", "Down", "Partial", "Draining")
_PROBE_LOG = {
    "Up": "Success. Received 200 status code",
    "Down": "The backend server did not answer the health probe.",
}
_NIC_TYPE = "Microsoft.Network/networkInterfaces"
_VM_TYPE = "Microsoft.Compute/virtualMachines"
_VM_EXTENSION_TYPE = "Microsoft.Compute/virtualMachines/extensions"
_VMSS_TYPE = "Microsoft.Compute/virtualMachineScaleSets"
_VMSS_VM_TYPE = "Microsoft.Compute/virtualMachineScaleSets/virtualMachines"


@dataclass(frozen=True)
class Server:
    """One backend server: its address, the IP configuration it comes from, its machine."""

    address: str
    ip_configuration: str | None
    machine: Resource | None


@dataclass(frozen=True)
class RoutedServer:
    """A server of a backend pool that one of a gateway's request routing rules names."""

    pool: str
    address: str
    #: As `backendhealth` reports it now (`HEALTH_VALUES`).
    health: str
    #: The ARM id of the VM or scale-set instance at the address (None: no machine has it).
    machine_id: str | None
    #: The OutSystems version the setup script last installed on that machine (`setup_model`).
    version: str | None


def start(engine: ArmSim, gateway: Resource, request: SimRequest) -> SimResponse:
    """Begin the backend-health action; the gateway stays as it is (not `Updating`)."""
    seconds = action_seconds(gateway.type, "backendhealth")
    return engine.start_action(gateway, "backendhealth", request, seconds, lock=False)


def report(engine: ArmSim, gateway: Resource, op: Operation) -> None:
    """The operation's result: the gateway's backend health as it is now."""
    op.result = backend_health(engine, gateway)


def backend_health(engine: ArmSim, gateway: Resource) -> dict[str, Any]:
    """`ApplicationGatewayBackendHealth` of a gateway."""
    properties = gateway.body.get("properties") or {}
    collection = properties.get("backendHttpSettingsCollection") or []
    settings = [str(s.get("name", "")) for s in collection]
    pools = []
    for pool in properties.get("backendAddressPools") or []:
        name = str(pool.get("name", ""))
        pool_id = f"{gateway.id}/backendAddressPools/{name}"
        servers = [_server_view(engine, server) for server in _servers(engine, gateway, pool)]
        paired = _paired_settings(properties, pool_id) or settings
        pools.append(
            {
                "backendAddressPool": {"id": pool_id},
                "backendHttpSettingsCollection": [
                    {
                        "backendHttpSettings": {
                            "id": f"{gateway.id}/backendHttpSettingsCollection/{setting}"
                        },
                        "servers": servers,
                    }
                    for setting in paired
                ],
            }
        )
    return {"backendAddressPools": pools}


def routed_servers(engine: ArmSim, gateway: Resource) -> list[RoutedServer]:
    """Every server of the backend pools the gateway's request routing rules name, in pool
    order: the gateway sends traffic to those whose `health` is `Up`. A pool no rule names is
    left out; a pool two rules name is listed once. Takes the store's lock."""
    with engine.store.lock:
        properties = gateway.body.get("properties") or {}
        routed = {
            key(str(get_path(rule, "properties.backendAddressPool.id") or ""))
            for rule in properties.get("requestRoutingRules") or []
        }
        found = []
        for pool in properties.get("backendAddressPools") or []:
            name = str(pool.get("name", ""))
            if key(f"{gateway.id}/backendAddressPools/{name}") not in routed:
                continue
            for server in _servers(engine, gateway, pool):
                machine = server.machine
                found.append(
                    RoutedServer(
                        pool=name,
                        address=server.address,
                        health=_health(engine, server),
                        machine_id=None if machine is None else machine.id,
                        version=None if machine is None else setup_model.installed_version(machine),
                    )
                )
        return found


def _paired_settings(properties: dict[str, Any], pool_id: str) -> list[str]:
    names = []
    for rule in properties.get("requestRoutingRules") or []:
        pool = get_path(rule, "properties.backendAddressPool.id")
        setting = get_path(rule, "properties.backendHttpSettings.id")
        if pool and setting and key(str(pool)) == key(pool_id):
            name = str(setting).rsplit("/", 1)[-1]
            if name not in names:
                names.append(name)
    return names


def _names_pool(configuration: dict[str, Any], pool_id: str) -> bool:
    pools = get_path(configuration, "properties.applicationGatewayBackendAddressPools") or []
    return any(key(str(p.get("id", ""))) == key(pool_id) for p in pools if isinstance(p, dict))


def _servers(engine: ArmSim, gateway: Resource, pool: dict[str, Any]) -> Iterator[Server]:
    pool_id = f"{gateway.id}/backendAddressPools/{pool.get('name', '')}"
    for address in get_path(pool, "properties.backendAddresses") or []:
        value = address.get("ipAddress") or address.get("fqdn")
        if value:
            yield Server(str(value), None, _machine_at(engine, str(value)))
    for resource in list(engine.store.resources.values()):
        if resource.type == _NIC_TYPE:
            for configuration in get_path(resource.body, "properties.ipConfigurations") or []:
                if not _names_pool(configuration, pool_id):
                    continue
                name = str(configuration.get("name", ""))
                held = (resource.extra.get("ips") or {}).get(name) or {}
                if held.get("ip"):
                    yield Server(
                        str(held["ip"]),
                        f"{resource.id}/ipConfigurations/{name}",
                        _vm_with_nic(engine, resource.id) or resource,
                    )
        elif resource.type == _VMSS_TYPE:
            yield from _scale_set_servers(engine, resource, pool_id)


def _scale_set_servers(engine: ArmSim, scale_set: Resource, pool_id: str) -> Iterator[Server]:
    profile = get_path(scale_set.body, "properties.virtualMachineProfile") or {}
    for nic in get_path(profile, "networkProfile.networkInterfaceConfigurations") or []:
        for configuration in get_path(nic, "properties.ipConfigurations") or []:
            if not _names_pool(configuration, pool_id):
                continue
            for instance in engine.store.children(scale_set.id, _VMSS_VM_TYPE):
                address = instance.extra.get("privateIPAddress")
                if address:
                    yield Server(
                        str(address),
                        f"{instance.id}/networkInterfaces/{nic.get('name', '')}/"
                        f"ipConfigurations/{configuration.get('name', '')}",
                        instance,
                    )
            return


def _vm_with_nic(engine: ArmSim, nic_id: str) -> Resource | None:
    for resource in engine.store.resources.values():
        if resource.type != _VM_TYPE:
            continue
        for nic in get_path(resource.body, "properties.networkProfile.networkInterfaces") or []:
            if isinstance(nic, dict) and key(str(nic.get("id", ""))) == key(nic_id):
                return resource
    return None


def _machine_at(engine: ArmSim, address: str) -> Resource | None:
    """The VM (through its NIC) or scale-set instance holding a private address."""
    for reservations in engine.store.ip_reservations.values():
        owner = reservations.get(address)
        if owner is None:
            continue
        resource = engine.store.get(owner)
        if resource is not None and resource.type == _VMSS_VM_TYPE:
            return resource
        nic_id = owner.split("/ipconfigurations/", 1)[0]
        nic = engine.store.get(nic_id)
        if nic is not None:
            return _vm_with_nic(engine, nic.id) or nic
    return None


def _health(engine: ArmSim, server: Server) -> str:
    chosen = engine.store.backend_health.get(server.address.lower())
    if chosen is not None:
        return chosen
    machine = server.machine
    if machine is None or machine.state != "Succeeded":
        return "Down"
    if machine.extra.get("drained"):
        return "Down"  # the setup script's Drain refuses the gateway subnet on 80 and 443
    if machine.type == _VM_TYPE:
        for extension in engine.store.children(machine.id, _VM_EXTENSION_TYPE):
            if extension.state != "Succeeded":
                return "Down"
    if machine.type == _NIC_TYPE:
        return "Down"  # a NIC no VM uses: nothing answers
    return "Up"


def _server_view(engine: ArmSim, server: Server) -> dict[str, Any]:
    health = _health(engine, server)
    view: dict[str, Any] = {"address": server.address, "health": health}
    if server.ip_configuration is not None:
        view["ipConfiguration"] = {"id": server.ip_configuration}
    view["healthProbeLog"] = _PROBE_LOG.get(health, "")
    return view

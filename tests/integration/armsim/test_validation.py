"""Wrong order, bad names, weak passwords and missing fields fail as ARM fails them."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError

from localdev.armsim.server import SimulatorServer
from tests.support import armsim_bodies as bodies
from tests.support.armsim_clients import SUBSCRIPTION, Clients, error_of, message_of

G = bodies.GROUP
SUBNET = bodies.rid(SUBSCRIPTION, G, "Microsoft.Network/virtualNetworks/vnet/subnets/dev")
NIC = bodies.rid(SUBSCRIPTION, G, "Microsoft.Network/networkInterfaces/nic1")


def _group(clients: Clients) -> None:
    clients.resource.resource_groups.create_or_update(G, {"location": bodies.LOCATION})


def _network(clients: Clients) -> None:
    _group(clients)
    clients.network.virtual_networks.begin_create_or_update(
        G, "vnet", bodies.vnet({"dev": "10.0.0.0/24"})
    ).result()


def _with_nic(clients: Clients) -> None:
    _network(clients)
    clients.network.network_interfaces.begin_create_or_update(
        G, "nic1", bodies.nic(SUBNET)
    ).result()


def test_resource_in_missing_group_is_resource_group_not_found(clients: Clients):
    with pytest.raises(HttpResponseError) as caught:
        clients.network.virtual_networks.begin_create_or_update(G, "vnet", bodies.vnet())
    assert isinstance(caught.value, ResourceNotFoundError)
    assert error_of(caught.value)[:2] == (404, "ResourceGroupNotFound")


def test_nic_before_its_subnet_is_invalid_resource_reference(
    clients: Clients, sim: SimulatorServer
):
    _group(clients)
    with pytest.raises(HttpResponseError) as caught:
        clients.network.network_interfaces.begin_create_or_update(G, "nic1", bodies.nic(SUBNET))
    assert error_of(caught.value)[:2] == (400, "InvalidResourceReference")
    assert SUBNET in message_of(caught.value)
    assert sim.resources(type_name="Microsoft.Network/networkInterfaces") == []


def test_vm_before_its_nic_is_invalid_resource_reference(clients: Clients):
    _network(clients)
    with pytest.raises(HttpResponseError) as caught:
        clients.compute.virtual_machines.begin_create_or_update(G, "vm1", bodies.vm(NIC))
    assert error_of(caught.value)[:2] == (400, "InvalidResourceReference")


def test_database_before_its_server_is_parent_not_found(clients: Clients):
    _group(clients)
    with pytest.raises(HttpResponseError) as caught:
        clients.sql.databases.begin_create_or_update(
            G, "sim-sql", "platform", bodies.sql_database()
        )
    assert isinstance(caught.value, ResourceNotFoundError)
    assert error_of(caught.value)[:2] == (404, "ParentResourceNotFound")


def test_vnet_rule_needs_an_existing_subnet_with_the_sql_endpoint(clients: Clients):
    _group(clients)
    clients.sql.servers.begin_create_or_update(G, "sim-sql", bodies.sql_server()).result()
    with pytest.raises(HttpResponseError) as caught:
        clients.sql.virtual_network_rules.begin_create_or_update(
            G, "sim-sql", "dev", {"properties": {"virtualNetworkSubnetId": SUBNET}}
        )
    assert error_of(caught.value)[:2] == (400, "InvalidResourceReference")
    clients.network.virtual_networks.begin_create_or_update(
        G,
        "vnet",
        {
            "location": bodies.LOCATION,
            "properties": {
                "addressSpace": {"addressPrefixes": ["10.0.0.0/16"]},
                "subnets": [{"name": "dev", "properties": {"addressPrefix": "10.0.0.0/24"}}],
            },
        },
    ).result()
    with pytest.raises(HttpResponseError) as caught:
        clients.sql.virtual_network_rules.begin_create_or_update(
            G, "sim-sql", "dev", {"properties": {"virtualNetworkSubnetId": SUBNET}}
        )
    assert error_of(caught.value) == (
        400,
        "VirtualNetworkRuleBadRequest",
        "properties.virtualNetworkSubnetId",
    )


def test_scale_set_referencing_a_missing_gateway_pool_fails(clients: Clients):
    _network(clients)
    pool = bodies.rid(
        SUBSCRIPTION, G, "Microsoft.Network/applicationGateways/gw/backendAddressPools/frontends"
    )
    with pytest.raises(HttpResponseError) as caught:
        clients.compute.virtual_machine_scale_sets.begin_create_or_update(
            G, "fe", bodies.scale_set(SUBNET, 1, pool_id=pool)
        )
    assert error_of(caught.value)[:2] == (400, "InvalidResourceReference")


def test_gateway_needs_public_ip_and_its_own_elements(clients: Clients):
    _group(clients)
    clients.network.virtual_networks.begin_create_or_update(
        G, "vnet", bodies.vnet({"dev": "10.0.0.0/24", "gw": "10.0.4.0/24"})
    ).result()
    gateway_id = bodies.rid(SUBSCRIPTION, G, "Microsoft.Network/applicationGateways/gw")
    gw_subnet = bodies.rid(SUBSCRIPTION, G, "Microsoft.Network/virtualNetworks/vnet/subnets/gw")
    pip_id = bodies.rid(SUBSCRIPTION, G, "Microsoft.Network/publicIPAddresses/gw-pip")
    body = bodies.application_gateway(gateway_id, gw_subnet, pip_id)
    with pytest.raises(HttpResponseError) as caught:
        clients.network.application_gateways.begin_create_or_update(G, "gw", body)
    assert error_of(caught.value)[:2] == (400, "InvalidResourceReference")

    pip = clients.network.public_ip_addresses.begin_create_or_update(
        G, "gw-pip", bodies.public_ip("simgw")
    ).result()
    assert pip.ip_address.startswith("203.0.113.")
    assert pip.dns_settings.fqdn == "simgw.westeurope.cloudapp.azure.com"
    broken = copy.deepcopy(body)
    broken["properties"]["requestRoutingRules"][0]["properties"]["backendAddressPool"]["id"] = (
        f"{gateway_id}/backendAddressPools/missing"
    )
    with pytest.raises(HttpResponseError) as caught:
        clients.network.application_gateways.begin_create_or_update(G, "gw", broken)
    assert error_of(caught.value)[:2] == (400, "InvalidResourceReference")

    no_priority = copy.deepcopy(body)
    del no_priority["properties"]["requestRoutingRules"][0]["properties"]["priority"]
    with pytest.raises(HttpResponseError) as caught:
        clients.network.application_gateways.begin_create_or_update(G, "gw", no_priority)
    assert error_of(caught.value)[1] == "ApplicationGatewayRequestRoutingRulePriorityCannotBeEmpty"

    gateway = clients.network.application_gateways.begin_create_or_update(G, "gw", body).result()
    assert gateway.backend_address_pools[0].id == f"{gateway_id}/backendAddressPools/frontends"
    pool = gateway.backend_address_pools[0].id
    vmss = clients.compute.virtual_machine_scale_sets.begin_create_or_update(
        G, "fe", bodies.scale_set(SUBNET, 1, pool_id=pool)
    ).result()
    assert vmss.sku.capacity == 1


@pytest.mark.parametrize(
    ("mutate", "target"),
    [
        (lambda b: b["properties"].pop("hardwareProfile"), "vmSize"),
        (lambda b: b["properties"]["storageProfile"].pop("imageReference"), "imageReference"),
        (lambda b: b["properties"]["storageProfile"]["osDisk"].pop("createOption"), "createOption"),
        (lambda b: b["properties"].pop("osProfile"), "osProfile"),
        (
            lambda b: b["properties"]["networkProfile"].pop("networkInterfaces"),
            "networkProfile.networkInterfaces",
        ),
        (lambda b: b["properties"]["hardwareProfile"].update(vmSize="Huge_1"), "vmSize"),
        (
            lambda b: b["properties"]["osProfile"].update(computerName="platform-server-1"),
            "computerName",
        ),
        (lambda b: b["properties"]["osProfile"].update(adminUsername="admin"), "adminUsername"),
        (
            lambda b: b["properties"]["osProfile"].update(adminUsername="a-very-long-admin-name-x"),
            "adminUsername",
        ),
        (lambda b: b["properties"]["osProfile"].update(adminPassword="password"), "adminPassword"),
        (lambda b: b["properties"]["osProfile"].update(adminPassword="Sh0rt!"), "adminPassword"),
        (lambda b: b["properties"]["osProfile"].update(adminPassword="P@ssw0rd"), "adminPassword"),
    ],
)
def test_vm_invalid_bodies_fail_with_invalid_parameter_and_target(
    clients: Clients, mutate: Any, target: str
):
    _with_nic(clients)
    body = bodies.vm(NIC)
    mutate(body)
    with pytest.raises(HttpResponseError) as caught:
        clients.compute.virtual_machines.begin_create_or_update(G, "vm1", body)
    assert error_of(caught.value) == (400, "InvalidParameter", target)
    assert bodies.PASSWORD not in str(caught.value)


def test_missing_location_is_location_required(clients: Clients):
    _group(clients)
    with pytest.raises(HttpResponseError) as caught:
        clients.network.network_security_groups.begin_create_or_update(G, "nsg", {"properties": {}})
    assert error_of(caught.value)[:2] == (400, "LocationRequired")


def test_windows_vm_name_longer_than_15_without_computer_name_fails(clients: Clients):
    _with_nic(clients)
    body = bodies.vm(NIC)
    del body["properties"]["osProfile"]["computerName"]
    with pytest.raises(HttpResponseError) as caught:
        clients.compute.virtual_machines.begin_create_or_update(G, "sim-platform-vm-01", body)
    assert error_of(caught.value) == (400, "InvalidParameter", "computerName")


def test_scale_set_prefix_longer_than_9_and_missing_fields(clients: Clients):
    _network(clients)
    with pytest.raises(HttpResponseError) as caught:
        clients.compute.virtual_machine_scale_sets.begin_create_or_update(
            G, "fe", bodies.scale_set(SUBNET, 2, prefix="frontends01")
        )
    assert error_of(caught.value) == (400, "InvalidParameter", "computerNamePrefix")
    body = bodies.scale_set(SUBNET, 2)
    del body["properties"]["upgradePolicy"]
    with pytest.raises(HttpResponseError) as caught:
        clients.compute.virtual_machine_scale_sets.begin_create_or_update(G, "fe", body)
    assert error_of(caught.value) == (400, "InvalidParameter", "upgradePolicy.mode")
    body = bodies.scale_set(SUBNET, 2)
    del body["properties"]["virtualMachineProfile"]["extensionProfile"]["extensions"][0][
        "properties"
    ]["typeHandlerVersion"]
    with pytest.raises(HttpResponseError) as caught:
        clients.compute.virtual_machine_scale_sets.begin_create_or_update(G, "fe", body)
    assert error_of(caught.value) == (400, "InvalidParameter", "properties.typeHandlerVersion")


def test_extension_missing_fields(clients: Clients):
    _with_nic(clients)
    clients.compute.virtual_machines.begin_create_or_update(G, "vm1", bodies.vm(NIC)).result()
    body = bodies.extension()
    del body["properties"]["publisher"]
    with pytest.raises(HttpResponseError) as caught:
        clients.compute.virtual_machine_extensions.begin_create_or_update(G, "vm1", "setup", body)
    assert error_of(caught.value) == (400, "InvalidParameter", "properties.publisher")


@pytest.mark.parametrize(
    ("name", "code"),
    [
        ("Bad_Name", "InvalidResourceName"),
        ("-leading", "InvalidResourceName"),
        ("x" * 64, "InvalidResourceName"),
    ],
)
def test_sql_server_name_rules(clients: Clients, name: str, code: str):
    _group(clients)
    with pytest.raises(HttpResponseError) as caught:
        clients.sql.servers.begin_create_or_update(G, name, bodies.sql_server())
    assert error_of(caught.value)[:2] == (400, code)


def test_sql_server_login_and_password_rules(clients: Clients):
    _group(clients)
    cases = [
        (bodies.sql_server(login="sa"), "InvalidLoginName"),
        (bodies.sql_server(login="1admin"), "InvalidLoginName"),
        (bodies.sql_server(login="os admin"), "InvalidLoginName"),
        (bodies.sql_server(password="alllowercase"), "PasswordNotComplex"),
        (bodies.sql_server(password="Sqladmin-1x"), "PasswordNotComplex"),
        (
            {"location": bodies.LOCATION, "properties": {"administratorLogin": "sqladmin"}},
            "InvalidParameterValue",
        ),
    ]
    for body, code in cases:
        with pytest.raises(HttpResponseError) as caught:
            clients.sql.servers.begin_create_or_update(G, "sim-sql", body)
        assert error_of(caught.value)[:2] == (400, code)


def test_a_hyphenated_login_as_outsystems_templates_use_is_accepted(clients: Clients):
    # OutSystems/AzureARMTemplates environmentAzSQL.json defaults the login to
    # "OutSystemsOnAzureAdmin-SQL"; its Marketplace template uses "<VM admin user>-sql".
    _group(clients)
    body = bodies.sql_server(login="OutSystemsOnAzureAdmin-SQL")
    clients.sql.servers.begin_create_or_update(G, "sim-sql-hyphen", body).result()


def test_global_names_are_unique_across_subscriptions(clients: Clients, connection: Any):
    _group(clients)
    clients.sql.servers.begin_create_or_update(G, "sim-sql-global", bodies.sql_server()).result()
    clients.storage.storage_accounts.begin_create(
        G, "simglobal01", bodies.storage_account()
    ).result()
    other = Clients(connection, "00000000-0000-0000-0000-000000000002")
    other.resource.resource_groups.create_or_update("other", {"location": bodies.LOCATION})
    with pytest.raises(HttpResponseError) as caught:
        other.sql.servers.begin_create_or_update("other", "sim-sql-global", bodies.sql_server())
    assert isinstance(caught.value, ResourceExistsError)
    assert error_of(caught.value)[:2] == (409, "NameAlreadyExists")
    with pytest.raises(HttpResponseError) as caught:
        other.storage.storage_accounts.begin_create(
            "other", "simglobal01", bodies.storage_account()
        )
    assert isinstance(caught.value, ResourceExistsError)
    assert error_of(caught.value)[:2] == (409, "StorageAccountAlreadyTaken")
    with pytest.raises(HttpResponseError) as caught:
        other.storage.storage_accounts.begin_create("other", "Not-Valid", bodies.storage_account())
    assert error_of(caught.value)[:2] == (400, "AccountNameInvalid")


def test_subnet_ranges_are_checked_against_the_vnet(clients: Clients):
    _network(clients)
    with pytest.raises(HttpResponseError) as caught:
        clients.network.subnets.begin_create_or_update(
            G, "vnet", "out", {"properties": {"addressPrefix": "10.1.0.0/24"}}
        )
    assert error_of(caught.value)[:2] == (400, "NetcfgSubnetRangeOutsideVnet")
    with pytest.raises(HttpResponseError) as caught:
        clients.network.subnets.begin_create_or_update(
            G, "vnet", "overlap", {"properties": {"addressPrefix": "10.0.0.128/25"}}
        )
    assert error_of(caught.value)[:2] == (400, "NetcfgSubnetRangesOverlap")
    with pytest.raises(HttpResponseError) as caught:
        clients.network.virtual_networks.begin_create_or_update(
            G, "vnet2", bodies.vnet({"a": "10.0.0.0/24", "b": "10.0.0.0/23"})
        )
    assert error_of(caught.value)[:2] == (400, "NetcfgSubnetRangesOverlap")


def test_static_ip_conflicts_and_out_of_subnet(clients: Clients):
    _with_nic(clients)
    with pytest.raises(HttpResponseError) as caught:
        clients.network.network_interfaces.begin_create_or_update(
            G, "nic2", bodies.nic(SUBNET, static_ip="10.0.0.4")
        )
    assert error_of(caught.value)[:2] == (400, "PrivateIPAddressInUse")
    with pytest.raises(HttpResponseError) as caught:
        clients.network.network_interfaces.begin_create_or_update(
            G, "nic2", bodies.nic(SUBNET, static_ip="10.0.9.4")
        )
    assert error_of(caught.value)[:2] == (400, "PrivateIPAddressNotInSubnet")
    with pytest.raises(HttpResponseError) as caught:
        clients.network.network_interfaces.begin_create_or_update(
            G, "nic2", bodies.nic(SUBNET, static_ip="10.0.0.1")
        )
    assert error_of(caught.value)[:2] == (400, "PrivateIPAddressInReservedRange")


def test_in_use_resources_cannot_be_deleted(clients: Clients):
    _with_nic(clients)
    clients.compute.virtual_machines.begin_create_or_update(G, "vm1", bodies.vm(NIC)).result()
    with pytest.raises(HttpResponseError) as caught:
        clients.network.network_interfaces.begin_delete(G, "nic1")
    assert error_of(caught.value)[:2] == (400, "NicInUse")
    with pytest.raises(HttpResponseError) as caught:
        clients.network.subnets.begin_delete(G, "vnet", "dev")
    assert error_of(caught.value)[:2] == (400, "InUseSubnetCannotBeDeleted")
    with pytest.raises(HttpResponseError) as caught:
        clients.compute.virtual_machines.begin_create_or_update(
            G, "vm2", bodies.vm(NIC, computer_name="simvm02")
        )
    assert error_of(caught.value)[:2] == (400, "NicInUse")
    clients.compute.virtual_machines.begin_delete(G, "vm1").result()
    clients.network.network_interfaces.begin_delete(G, "nic1").result()
    clients.network.subnets.begin_delete(G, "vnet", "dev").result()


def test_vnet_put_without_a_used_subnet_is_refused(clients: Clients):
    _with_nic(clients)
    with pytest.raises(HttpResponseError) as caught:
        clients.network.virtual_networks.begin_create_or_update(G, "vnet", bodies.vnet({}))
    assert error_of(caught.value)[:2] == (400, "InUseSubnetCannotBeDeleted")


def test_vcpu_quota_is_operation_not_allowed(clients: Clients, sim: SimulatorServer):
    sim.configure({"vcpuQuota": 20})
    _network(clients)
    clients.compute.virtual_machine_scale_sets.begin_create_or_update(
        G, "fe", bodies.scale_set(SUBNET, 4, size="Standard_F4s_v2")
    ).result()
    with pytest.raises(HttpResponseError) as caught:
        clients.compute.virtual_machine_scale_sets.begin_update(G, "fe", {"sku": {"capacity": 6}})
    assert isinstance(caught.value, ResourceExistsError)
    status, code, _ = error_of(caught.value)
    assert (status, code) == (409, "OperationNotAllowed")
    assert "exceeding approved Total Regional Cores quota" in message_of(caught.value)
    assert "Current Limit: 20, Current Usage: 16, Additional Required: 8" in message_of(
        caught.value
    )
    assert clients.compute.virtual_machine_scale_sets.get(G, "fe").sku.capacity == 4
    usage = list(clients.compute.usage.list(bodies.LOCATION))
    assert (usage[0].current_value, usage[0].limit) == (16, 20)


def test_location_and_group_conflicts(clients: Clients):
    _group(clients)
    with pytest.raises(HttpResponseError) as caught:
        clients.resource.resource_groups.create_or_update(G, {"location": "eastus"})
    assert isinstance(caught.value, ResourceExistsError)
    assert error_of(caught.value)[:2] == (409, "InvalidResourceGroupLocation")
    clients.network.network_security_groups.begin_create_or_update(
        G, "nsg", {"location": bodies.LOCATION}
    ).result()
    with pytest.raises(HttpResponseError) as caught:
        clients.network.network_security_groups.begin_create_or_update(
            G, "nsg", {"location": "eastus"}
        )
    assert error_of(caught.value)[:2] == (400, "InvalidResourceLocation")


def test_get_missing_resource_and_missing_parent(clients: Clients):
    _network(clients)
    with pytest.raises(HttpResponseError) as caught:
        clients.compute.virtual_machines.get(G, "nope")
    assert isinstance(caught.value, ResourceNotFoundError)
    assert error_of(caught.value)[:2] == (404, "ResourceNotFound")
    with pytest.raises(HttpResponseError) as caught:
        clients.network.subnets.get(G, "novnet", "dev")
    assert isinstance(caught.value, ResourceNotFoundError)
    assert error_of(caught.value)[:2] == (404, "ParentResourceNotFound")

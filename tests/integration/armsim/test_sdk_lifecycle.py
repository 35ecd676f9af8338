"""The real azure-mgmt clients and their pollers against the simulator: the happy paths."""

from __future__ import annotations

import json

import pytest
from azure.core.exceptions import ResourceNotFoundError

from localdev.armsim.server import SimulatorServer
from tests.support import armsim_bodies as bodies
from tests.support.armsim_clients import SUBSCRIPTION, Clients

G = bodies.GROUP


def _network(clients: Clients) -> str:
    clients.resource.resource_groups.create_or_update(G, {"location": bodies.LOCATION})
    clients.network.virtual_networks.begin_create_or_update(
        G, "vnet", bodies.vnet({"dev": "10.0.0.0/24", "prod": "10.0.2.0/24"})
    ).result()
    return bodies.rid(SUBSCRIPTION, G, "Microsoft.Network/virtualNetworks/vnet/subnets/dev")


def test_resource_group_create_get_exists_list_and_delete(clients: Clients, sim: SimulatorServer):
    created = clients.resource.resource_groups.create_or_update(
        G, {"location": "westeurope", "tags": {"a": "1"}}
    )
    assert created.name == G
    assert created.properties.provisioning_state == "Succeeded"
    again = clients.resource.resource_groups.create_or_update(G, {"location": "westeurope"})
    assert again.id == created.id
    assert clients.resource.resource_groups.check_existence(G) is True
    assert clients.resource.resource_groups.check_existence("absent") is False
    assert [g.name for g in clients.resource.resource_groups.list()] == [G]
    statuses = [r["status"] for r in sim.requests() if r["method"] == "PUT"]
    assert statuses == [201, 200]

    _network(clients)
    clients.resource.resource_groups.begin_delete(G).result()
    assert clients.resource.resource_groups.check_existence(G) is False
    assert sim.resources() == []


def test_vnet_with_inline_subnets_child_subnet_and_list(clients: Clients, sim: SimulatorServer):
    _network(clients)
    vnet = clients.network.virtual_networks.get(G, "vnet")
    assert vnet.provisioning_state == "Succeeded"
    assert sorted(s.name for s in vnet.subnets) == ["dev", "prod"]
    assert all(s.id.endswith(f"/subnets/{s.name}") for s in vnet.subnets)

    subnet = clients.network.subnets.begin_create_or_update(
        G, "vnet", "life", {"properties": {"addressPrefix": "10.0.3.0/24"}}
    ).result()
    assert subnet.address_prefix == "10.0.3.0/24"
    assert subnet.provisioning_state == "Succeeded"
    assert sorted(s.name for s in clients.network.subnets.list(G, "vnet")) == [
        "dev",
        "life",
        "prod",
    ]
    assert [v.name for v in clients.network.virtual_networks.list(G)] == ["vnet"]

    # Network PUTs are answered 201 + Azure-AsyncOperation; the poller then GETs the resource.
    methods = [(r["method"], r["status"]) for r in sim.requests()]
    assert ("PUT", 201) in methods
    assert any("/operations/" in r["path"] for r in sim.requests())


def test_nic_gets_private_ips_dynamic_and_static(clients: Clients):
    subnet_id = _network(clients)
    first = clients.network.network_interfaces.begin_create_or_update(
        G, "nic1", bodies.nic(subnet_id)
    ).result()
    second = clients.network.network_interfaces.begin_create_or_update(
        G, "nic2", bodies.nic(subnet_id)
    ).result()
    static = clients.network.network_interfaces.begin_create_or_update(
        G, "nic3", bodies.nic(subnet_id, static_ip="10.0.0.50")
    ).result()
    ips = [n.ip_configurations[0].private_ip_address for n in (first, second, static)]
    assert ips == ["10.0.0.4", "10.0.0.5", "10.0.0.50"]
    # Re-applying the same body keeps the address.
    again = clients.network.network_interfaces.begin_create_or_update(
        G, "nic1", bodies.nic(subnet_id)
    ).result()
    assert again.ip_configurations[0].private_ip_address == "10.0.0.4"


def test_vm_with_extension_instance_view_and_no_secrets(clients: Clients, sim: SimulatorServer):
    subnet_id = _network(clients)
    nic = clients.network.network_interfaces.begin_create_or_update(
        G, "vm1-nic", bodies.nic(subnet_id)
    ).result()
    vm = clients.compute.virtual_machines.begin_create_or_update(
        G, "vm1", bodies.vm(nic.id)
    ).result()
    assert vm.provisioning_state == "Succeeded"
    assert vm.vm_id
    assert vm.os_profile.admin_password is None
    assert vm.user_data is None
    expanded = clients.compute.virtual_machines.get(G, "vm1", expand="userData")
    assert expanded.user_data == "c2V0dXAgZGF0YQ=="

    extension = clients.compute.virtual_machine_extensions.begin_create_or_update(
        G, "vm1", "setup", bodies.extension()
    ).result()
    assert extension.provisioning_state == "Succeeded"
    assert extension.protected_settings is None
    with_view = clients.compute.virtual_machine_extensions.get(
        G, "vm1", "setup", expand="instanceView"
    )
    assert with_view.instance_view.statuses[0].code == "ProvisioningState/succeeded"

    view = clients.compute.virtual_machines.instance_view(G, "vm1")
    assert view.computer_name == "simvm01"
    assert {s.code for s in view.statuses} == {"ProvisioningState/succeeded", "PowerState/running"}
    assert [e.name for e in view.extensions] == ["setup"]
    nic_after = clients.network.network_interfaces.get(G, "vm1-nic")
    assert nic_after.virtual_machine.id.lower() == vm.id.lower()

    dump = json.dumps(sim.resources())
    assert bodies.PASSWORD not in dump
    assert "s3cret-value" not in dump

    clients.compute.virtual_machines.begin_delete(G, "vm1").result()
    assert [v.name for v in clients.compute.virtual_machines.list(G)] == []


def test_scale_set_capacity_follows_patch_and_instances_list(
    clients: Clients, sim: SimulatorServer
):
    _network(clients)
    subnet_id = bodies.rid(SUBSCRIPTION, G, "Microsoft.Network/virtualNetworks/vnet/subnets/prod")
    vmss = clients.compute.virtual_machine_scale_sets.begin_create_or_update(
        G, "fe", bodies.scale_set(subnet_id, 2)
    ).result()
    assert vmss.sku.capacity == 2
    instances = list(clients.compute.virtual_machine_scale_set_vms.list(G, "fe"))
    assert sorted(i.instance_id for i in instances) == ["0", "1"]
    assert all(i.provisioning_state == "Succeeded" for i in instances)

    grown = clients.compute.virtual_machine_scale_sets.begin_update(
        G, "fe", {"sku": {"capacity": 5}}
    ).result()
    assert grown.sku.capacity == 5
    assert len(list(clients.compute.virtual_machine_scale_set_vms.list(G, "fe"))) == 5
    patch_statuses = [r["status"] for r in sim.requests() if r["method"] == "PATCH"]
    assert patch_statuses == [200]

    clients.compute.virtual_machine_scale_sets.begin_update(
        G, "fe", {"sku": {"capacity": 3}}
    ).result()
    remaining = sorted(
        int(i.instance_id) for i in clients.compute.virtual_machine_scale_set_vms.list(G, "fe")
    )
    assert remaining == [0, 1, 2]  # the default scale-in policy removes the newest instances
    computer_names = {
        i.os_profile.computer_name
        for i in clients.compute.virtual_machine_scale_set_vms.list(G, "fe")
    }
    assert computer_names == {"simfe000000", "simfe000001", "simfe000002"}

    view = clients.compute.virtual_machine_scale_sets.get_instance_view(G, "fe")
    assert view.virtual_machine.statuses_summary[0].count == 3
    clients.compute.virtual_machine_scale_sets.begin_delete(G, "fe").result()
    with pytest.raises(ResourceNotFoundError):
        clients.compute.virtual_machine_scale_sets.get(G, "fe")
    assert (
        sim.resources(type_name="Microsoft.Compute/virtualMachineScaleSets/virtualMachines") == []
    )


def test_sql_server_database_and_vnet_rule(clients: Clients, sim: SimulatorServer):
    subnet_id = _network(clients)
    server = clients.sql.servers.begin_create_or_update(
        G, "sim-sql-dev", bodies.sql_server()
    ).result()
    assert server.fully_qualified_domain_name == "sim-sql-dev.database.windows.net"
    assert server.administrator_login_password is None
    database = clients.sql.databases.begin_create_or_update(
        G, "sim-sql-dev", "platform", bodies.sql_database()
    ).result()
    assert database.status == "Online"
    rule = clients.sql.virtual_network_rules.begin_create_or_update(
        G, "sim-sql-dev", "dev", {"properties": {"virtualNetworkSubnetId": subnet_id}}
    ).result()
    assert rule.state == "Ready"
    assert [d.name for d in clients.sql.databases.list_by_server(G, "sim-sql-dev")] == ["platform"]
    # SQL answers writes with 202 (no body) and both polling headers.
    assert [
        r["status"] for r in sim.requests() if r["method"] == "PUT" and "microsoft.sql" in r["path"]
    ] == [202, 202, 202]
    clients.sql.servers.begin_delete(G, "sim-sql-dev").result()
    assert sim.resources(type_name="Microsoft.Sql/servers/databases") == []


def test_storage_account_file_share_and_location_polling(clients: Clients, sim: SimulatorServer):
    clients.resource.resource_groups.create_or_update(G, {"location": bodies.LOCATION})
    account = clients.storage.storage_accounts.begin_create(
        G, "simstore01", bodies.storage_account()
    ).result()
    assert account.name == "simstore01"
    assert account.primary_endpoints.file == "https://simstore01.file.core.windows.net/"
    assert account.provisioning_state == "Succeeded"
    share = clients.storage.file_shares.create(
        G, "simstore01", "config", {"properties": {"shareQuota": 100}}
    )
    assert share.name == "config"
    assert [s.name for s in clients.storage.file_shares.list(G, "simstore01")] == ["config"]
    assert [r["status"] for r in sim.requests() if r["method"] == "PUT"][1] == 202


@pytest.mark.parametrize("page_size", [1, 2])
def test_lists_page_with_absolute_next_links(
    clients: Clients, sim: SimulatorServer, page_size: int
):
    sim.configure({"pageSize": page_size})
    subnet_id = _network(clients)
    for index in range(5):
        clients.network.network_interfaces.begin_create_or_update(
            G, f"nic{index}", bodies.nic(subnet_id)
        ).result()
    names = [n.name for n in clients.network.network_interfaces.list(G)]
    assert names == [f"nic{i}" for i in range(5)]
    list_paths = [
        r
        for r in sim.requests()
        if r["method"] == "GET" and r["path"].endswith("/networkinterfaces")
    ]
    assert len(list_paths) == -(-5 // page_size)


def test_get_list_update_and_delete_through_each_client(clients: Clients, sim: SimulatorServer):
    subnet_id = _network(clients)
    nic = clients.network.network_interfaces.begin_create_or_update(
        G, "nic", bodies.nic(subnet_id)
    ).result()
    clients.compute.virtual_machines.begin_create_or_update(G, "vm1", bodies.vm(nic.id)).result()
    tagged = clients.compute.virtual_machines.begin_update(
        G, "vm1", {"tags": {"role": "controller"}}
    ).result()
    assert tagged.tags == {"role": "controller"}
    assert tagged.hardware_profile.vm_size == "Standard_F4s_v2"
    assert [v.name for v in clients.compute.virtual_machines.list_all()] == ["vm1"]
    clients.compute.virtual_machine_extensions.begin_create_or_update(
        G, "vm1", "setup", bodies.extension()
    ).result()
    assert [e.name for e in clients.compute.virtual_machine_extensions.list(G, "vm1").value] == [
        "setup"
    ]

    prod = bodies.rid(SUBSCRIPTION, G, "Microsoft.Network/virtualNetworks/vnet/subnets/prod")
    clients.compute.virtual_machine_scale_sets.begin_create_or_update(
        G, "fe", bodies.scale_set(prod, 1)
    ).result()
    extension = clients.compute.virtual_machine_scale_set_extensions.begin_create_or_update(
        G,
        "fe",
        "monitor",
        {
            "properties": {
                "publisher": "Microsoft.Azure.Monitor",
                "type": "AzureMonitorWindowsAgent",
                "typeHandlerVersion": "1.0",
            }
        },
    ).result()
    assert extension.provisioning_state == "Succeeded"
    assert [e.name for e in clients.compute.virtual_machine_scale_set_extensions.list(G, "fe")] == [
        "monitor"
    ]
    instance = clients.compute.virtual_machine_scale_set_vms.get(G, "fe", "0")
    assert instance.instance_id == "0"

    clients.sql.servers.begin_create_or_update(G, "sim-sql-x", bodies.sql_server()).result()
    assert clients.sql.servers.get(G, "sim-sql-x").state == "Ready"
    assert [s.name for s in clients.sql.servers.list_by_resource_group(G)] == ["sim-sql-x"]
    updated = clients.sql.servers.begin_update(G, "sim-sql-x", {"tags": {"env": "dev"}}).result()
    assert updated.tags == {"env": "dev"}

    clients.storage.storage_accounts.begin_create(G, "simstorex", bodies.storage_account()).result()
    assert clients.storage.storage_accounts.get_properties(G, "simstorex").kind == "StorageV2"
    assert [a.name for a in clients.storage.storage_accounts.list_by_resource_group(G)] == [
        "simstorex"
    ]
    clients.storage.storage_accounts.delete(G, "simstorex")
    assert list(clients.storage.storage_accounts.list_by_resource_group(G)) == []

    generic = {r.name for r in clients.resource.resources.list_by_resource_group(G)}
    assert generic == {"vnet", "nic", "vm1", "fe", "sim-sql-x"}
    by_type = clients.resource.resources.list_by_resource_group(
        G, filter="resourceType eq 'Microsoft.Compute/virtualMachines'"
    )
    assert [r.name for r in by_type] == ["vm1"]

    clients.compute.virtual_machine_extensions.begin_delete(G, "vm1", "setup").result()
    clients.compute.virtual_machines.begin_delete(G, "vm1").result()
    clients.network.network_interfaces.begin_delete(G, "nic").result()
    clients.compute.virtual_machine_scale_sets.begin_delete(G, "fe").result()
    clients.sql.servers.begin_delete(G, "sim-sql-x").result()
    clients.network.virtual_networks.begin_delete(G, "vnet").result()
    assert [r["type"] for r in sim.resources()] == ["Microsoft.Resources/resourceGroups"]
    deletes = [r["status"] for r in sim.requests() if r["method"] == "DELETE"]
    assert deletes == [200, 202, 202, 202, 202, 202, 202]  # storage deletes synchronously

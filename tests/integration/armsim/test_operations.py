"""Long-running operations on the clock: in-progress states, conflicts, saved status URLs."""

from __future__ import annotations

from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError, ResourceExistsError

from arm.connection import ArmConnection
from localdev.armsim.server import SimulatorServer
from tests.support import armsim_bodies as bodies
from tests.support.armsim_clients import SUBSCRIPTION, Clients, error_of

G = bodies.GROUP
SUBNET = bodies.rid(SUBSCRIPTION, G, "Microsoft.Network/virtualNetworks/vnet/subnets/dev")


class Capture:
    """A `raw_response_hook` keeping the headers of every response of one call."""

    def __init__(self) -> None:
        self.headers: list[dict[str, str]] = []
        self.request_headers: list[dict[str, str]] = []

    def __call__(self, pipeline_response: Any) -> None:
        self.headers.append(dict(pipeline_response.http_response.headers))
        self.request_headers.append(dict(pipeline_response.http_request.headers))


def _nic(clients: Clients, group: str = G) -> str:
    clients.resource.resource_groups.create_or_update(group, {"location": bodies.LOCATION})
    clients.network.virtual_networks.begin_create_or_update(
        group, "vnet", bodies.vnet({"dev": "10.0.0.0/24"})
    ).result()
    subnet = bodies.rid(SUBSCRIPTION, group, "Microsoft.Network/virtualNetworks/vnet/subnets/dev")
    return str(
        clients.network.network_interfaces.begin_create_or_update(group, "nic1", bodies.nic(subnet))
        .result()
        .id
    )


def test_vm_is_creating_until_its_time_then_succeeded(clients: Clients, sim: SimulatorServer):
    nic_id = _nic(clients)
    sim.configure({"latencyScale": 1.0})
    capture = Capture()
    started = clients.compute.virtual_machines.begin_create_or_update(
        G, "vm1", bodies.vm(nic_id), polling=False, raw_response_hook=capture
    ).result()
    assert started.provisioning_state == "Creating"
    assert capture.headers[0]["Retry-After"] == "10"
    assert "Azure-AsyncOperation" in capture.headers[0]
    assert "Authorization" not in capture.request_headers[0]
    assert clients.compute.virtual_machines.get(G, "vm1").provisioning_state == "Creating"

    with pytest.raises(HttpResponseError) as caught:
        clients.compute.virtual_machines.begin_create_or_update(G, "vm1", bodies.vm(nic_id))
    assert isinstance(caught.value, ResourceExistsError)
    assert error_of(caught.value)[:2] == (409, "AnotherOperationInProgress")
    with pytest.raises(ResourceExistsError):
        clients.compute.virtual_machines.begin_delete(G, "vm1")
    with pytest.raises(ResourceExistsError):
        clients.compute.virtual_machine_extensions.begin_create_or_update(
            G, "vm1", "setup", bodies.extension()
        )

    sim.fast_forward(179)
    assert clients.compute.virtual_machines.get(G, "vm1").provisioning_state == "Creating"
    sim.fast_forward(1)
    assert clients.compute.virtual_machines.get(G, "vm1").provisioning_state == "Succeeded"

    put = next(r for r in sim.requests() if r["method"] == "PUT" and r["path"].endswith("/vm1"))
    assert put["status"] == 201
    assert put["operation"]["end"] - put["operation"]["start"] == pytest.approx(180)
    assert put["operation"]["status"] == "Succeeded"


def test_a_saved_async_operation_url_can_be_polled_later(
    clients: Clients, sim: SimulatorServer, connection: ArmConnection
):
    nic_id = _nic(clients)
    sim.configure({"latencyScale": 1.0})
    capture = Capture()
    clients.compute.virtual_machines.begin_create_or_update(
        G, "vm1", bodies.vm(nic_id), polling=False, raw_response_hook=capture
    )
    status_url = capture.headers[0]["Azure-AsyncOperation"]
    status, body = connection.get_json(status_url, SUBSCRIPTION)
    assert (status, body["status"]) == (200, "InProgress")
    sim.fast_forward(200)
    status, body = connection.get_json(status_url, SUBSCRIPTION)
    assert (status, body["status"]) == (200, "Succeeded")
    assert "endTime" in body
    with pytest.raises(ValueError, match="not on the ARM endpoint"):
        connection.get_json("http://127.0.0.2:1/x", SUBSCRIPTION)


def test_long_operations_of_two_groups_overlap(clients: Clients, sim: SimulatorServer):
    nics = {group: _nic(clients, group) for group in ("rg-a", "rg-b")}
    sim.configure({"latencyScale": 0.01})
    pollers = [
        clients.compute.virtual_machines.begin_create_or_update(group, "vm1", bodies.vm(nic))
        for group, nic in nics.items()
    ]
    for poller in pollers:
        assert poller.result().provisioning_state == "Succeeded"
    operations = [
        r["operation"]
        for r in sim.requests()
        if r["method"] == "PUT" and r["path"].endswith("/vm1")
    ]
    first, second = operations
    assert first["start"] < second["end"]
    assert second["start"] < first["end"]
    assert first["end"] - first["start"] == pytest.approx(1.8)


def test_parallel_subnets_on_one_vnet_conflict_as_in_azure(clients: Clients, sim: SimulatorServer):
    clients.resource.resource_groups.create_or_update(G, {"location": bodies.LOCATION})
    clients.network.virtual_networks.begin_create_or_update(G, "vnet", bodies.vnet()).result()
    sim.configure({"latencyScale": 1.0})
    clients.network.subnets.begin_create_or_update(
        G, "vnet", "a", {"properties": {"addressPrefix": "10.0.0.0/24"}}, polling=False
    )
    assert clients.network.virtual_networks.get(G, "vnet").provisioning_state == "Updating"
    with pytest.raises(HttpResponseError) as caught:
        clients.network.subnets.begin_create_or_update(
            G, "vnet", "b", {"properties": {"addressPrefix": "10.0.1.0/24"}}
        )
    assert isinstance(caught.value, ResourceExistsError)
    assert error_of(caught.value)[:2] == (409, "AnotherOperationInProgress")
    with pytest.raises(HttpResponseError) as caught:
        clients.network.network_interfaces.begin_create_or_update(
            G,
            "nic",
            bodies.nic(
                bodies.rid(SUBSCRIPTION, G, "Microsoft.Network/virtualNetworks/vnet/subnets/a")
            ),
        )
    assert error_of(caught.value)[:2] == (400, "ReferencedResourceNotProvisioned")
    sim.fast_forward(5)
    sim.configure({"latencyScale": 0.0})
    clients.network.subnets.begin_create_or_update(
        G, "vnet", "b", {"properties": {"addressPrefix": "10.0.1.0/24"}}
    ).result()


def test_scale_out_instances_appear_creating_then_succeed(clients: Clients, sim: SimulatorServer):
    clients.resource.resource_groups.create_or_update(G, {"location": bodies.LOCATION})
    clients.network.virtual_networks.begin_create_or_update(
        G, "vnet", bodies.vnet({"dev": "10.0.0.0/24"})
    ).result()
    clients.compute.virtual_machine_scale_sets.begin_create_or_update(
        G, "fe", bodies.scale_set(SUBNET, 1)
    ).result()
    sim.configure({"latencyScale": 1.0})
    capture = Capture()
    patched = clients.compute.virtual_machine_scale_sets.begin_update(
        G, "fe", {"sku": {"capacity": 3}}, polling=False, raw_response_hook=capture
    ).result()
    assert patched.provisioning_state == "Updating"
    assert patched.sku.capacity == 3
    states = sorted(
        i.provisioning_state for i in clients.compute.virtual_machine_scale_set_vms.list(G, "fe")
    )
    assert states == ["Creating", "Creating", "Succeeded"]
    operation = next(r["operation"] for r in sim.requests() if r["method"] == "PATCH")
    # Scale-out time plus the profile's script extension (latency.py).
    assert operation["end"] - operation["start"] == pytest.approx(150 + 1200)
    sim.fast_forward(1350)
    states = sorted(
        i.provisioning_state for i in clients.compute.virtual_machine_scale_set_vms.list(G, "fe")
    )
    assert states == ["Succeeded"] * 3

    # Deleting one instance lowers the capacity, as in Azure.
    clients.compute.virtual_machine_scale_set_vms.begin_delete(G, "fe", "2", polling=False)
    assert clients.compute.virtual_machine_scale_sets.get(G, "fe").sku.capacity == 2
    sim.fast_forward(200)
    assert sorted(
        i.instance_id for i in clients.compute.virtual_machine_scale_set_vms.list(G, "fe")
    ) == ["0", "1"]


def test_deleting_group_is_busy_then_gone(clients: Clients, sim: SimulatorServer):
    _nic(clients)
    sim.configure({"latencyScale": 1.0})
    clients.resource.resource_groups.begin_delete(G, polling=False)
    with pytest.raises(HttpResponseError) as caught:
        clients.network.network_security_groups.begin_create_or_update(
            G, "nsg", {"location": bodies.LOCATION}
        )
    assert isinstance(caught.value, ResourceExistsError)
    assert error_of(caught.value)[:2] == (409, "ResourceGroupBeingDeleted")
    assert clients.network.network_interfaces.get(G, "nic1").provisioning_state == "Deleting"
    sim.fast_forward(60)
    assert clients.resource.resource_groups.check_existence(G) is False
    assert sim.resources() == []


def test_injected_operation_failure_then_retry_does_not_create_twice(
    clients: Clients, sim: SimulatorServer
):
    nic_id = _nic(clients)
    sim.add_fault_rule(method="PUT", path="/virtualmachines/vm1", kind="operation-failed")
    with pytest.raises(HttpResponseError) as caught:
        clients.compute.virtual_machines.begin_create_or_update(
            G, "vm1", bodies.vm(nic_id)
        ).result()
    assert error_of(caught.value)[1] == "RetryableError"
    assert clients.compute.virtual_machines.get(G, "vm1").provisioning_state == "Failed"
    vm = clients.compute.virtual_machines.begin_create_or_update(
        G, "vm1", bodies.vm(nic_id)
    ).result()
    assert vm.provisioning_state == "Succeeded"
    assert sim.creation_count(vm.id) == 1
    statuses = [
        r["status"] for r in sim.requests() if r["method"] == "PUT" and r["path"].endswith("/vm1")
    ]
    assert statuses == [201, 200]


def test_api_version_is_required_and_well_formed(sim: SimulatorServer, connection: ArmConnection):
    base = f"{sim.url}/subscriptions/{SUBSCRIPTION}/resourcegroups"
    status, body = connection.get_json(base, SUBSCRIPTION)
    assert (status, body["error"]["code"]) == (400, "MissingApiVersionParameter")
    status, body = connection.get_json(f"{base}?api-version=latest", SUBSCRIPTION)
    assert (status, body["error"]["code"]) == (400, "InvalidApiVersionParameter")
    status, body = connection.get_json(f"{base}?api-version=2099-01-01-preview", SUBSCRIPTION)
    assert (status, body) == (200, {"value": []})


def test_paths_and_ids_are_case_insensitive(clients: Clients, sim: SimulatorServer):
    nic_id = _nic(clients)
    nic = clients.network.network_interfaces.get(G.upper(), "NIC1")
    assert nic.id == nic_id
    vm = clients.compute.virtual_machines.begin_create_or_update(
        G, "vm1", bodies.vm(nic_id.upper())
    ).result()
    assert vm.provisioning_state == "Succeeded"


def test_failed_delete_leaves_the_resource_and_its_children(clients: Clients, sim: SimulatorServer):
    clients.resource.resource_groups.create_or_update(G, {"location": bodies.LOCATION})
    clients.sql.servers.begin_create_or_update(G, "sim-sql-del", bodies.sql_server()).result()
    clients.sql.databases.begin_create_or_update(
        G, "sim-sql-del", "db", bodies.sql_database()
    ).result()
    sim.add_fault_rule(method="DELETE", path="/servers/sim-sql-del", kind="operation-failed")
    with pytest.raises(HttpResponseError) as caught:
        clients.sql.servers.begin_delete(G, "sim-sql-del").result()
    assert error_of(caught.value)[1] == "RetryableError"
    assert sim.resources(type_name="Microsoft.Sql/servers")[0]["provisioningState"] == "Failed"
    assert clients.sql.databases.get(G, "sim-sql-del", "db").status == "Online"
    clients.sql.servers.begin_delete(G, "sim-sql-del").result()
    assert sim.resources(type_name="Microsoft.Sql/servers/databases") == []


def test_a_vnet_applied_again_after_a_failure_settles_its_inline_subnets(
    clients: Clients, sim: SimulatorServer
):
    clients.resource.resource_groups.create_or_update(G, {"location": bodies.LOCATION})
    body = bodies.vnet({"dev": "10.0.0.0/24"})
    sim.add_fault_rule(method="PUT", path="/virtualnetworks/vnet", kind="operation-failed")
    with pytest.raises(HttpResponseError):
        clients.network.virtual_networks.begin_create_or_update(G, "vnet", body).result()
    assert clients.network.subnets.get(G, "vnet", "dev").provisioning_state == "Failed"
    clients.network.virtual_networks.begin_create_or_update(G, "vnet", body).result()
    assert clients.network.subnets.get(G, "vnet", "dev").provisioning_state == "Succeeded"

"""The ARM operations adapter against the simulator: start, keep only data, poll later."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from arm.connection import ArmConnection
from arm.operations import (
    Operation,
    Sender,
    TransientArmError,
    begin_delete,
    begin_patch,
    begin_put,
    check,
    get_resource,
)
from localdev.armsim.server import SimulatorServer
from localdev.armsim.testing import running_simulator
from tests.support import armsim_bodies as bodies

SUB = "00000000-0000-0000-0000-0000000000aa"
GROUP_ID = f"/subscriptions/{SUB}/resourceGroups/{bodies.GROUP}"
VNET_ID = f"{GROUP_ID}/providers/Microsoft.Network/virtualNetworks/vnet"
SUBNET_ID = f"{VNET_ID}/subnets/dev"
NIC_ID = f"{GROUP_ID}/providers/Microsoft.Network/networkInterfaces/nic1"
VM_ID = f"{GROUP_ID}/providers/Microsoft.Compute/virtualMachines/vm1"
NET, COMPUTE, RESOURCES = "2026-03-01", "2026-04-01", "2025-04-01"


@pytest.fixture(scope="module")
def sim() -> Iterator[SimulatorServer]:
    with running_simulator(latency_scale=0.0) as server:
        yield server


@pytest.fixture
def client(sim: SimulatorServer) -> Iterator[Sender]:
    sim.reset()
    sim.configure({"latencyScale": 0.0, "faultRate": 0.0})
    connection = ArmConnection(sim.url, polling_interval=0, retry_backoff_factor=0.01)
    from azure.mgmt.resource.resources import ResourceManagementClient

    yield connection.client(ResourceManagementClient, SUB)
    connection.close()


def _network(client: Sender, sim: SimulatorServer) -> None:
    for resource_id, version, body in (
        (GROUP_ID, RESOURCES, {"location": bodies.LOCATION}),
        (VNET_ID, NET, bodies.vnet({"dev": "10.0.0.0/24"})),
    ):
        operation = begin_put(client, resource_id, version, body)
        assert check(client, operation, sim.url).status == "Succeeded"


def test_slow_operation_returns_at_once_and_is_polled_from_plain_data(
    client: Sender, sim: SimulatorServer
) -> None:
    _network(client, sim)
    sim.configure({"latencyScale": 1.0})
    started = begin_put(client, NIC_ID, NET, bodies.nic(SUBNET_ID))
    assert started.status == "InProgress"
    assert started.poll_mode == "async-operation"
    # ARM's `Retry-After` travels with the operation: an integer number of seconds
    # (Azure/azure-resource-manager-rpc, v1.0/Addendum.md, "Asynchronous Operations").
    assert started.retry_after is not None
    assert started.retry_after >= 1
    # What the orchestration keeps: JSON, no response body, no continuation token.
    saved = json.loads(json.dumps(started.to_json()))
    assert "resource" not in saved
    again = check(client, Operation.from_json(saved), sim.url)
    assert again.status == "InProgress"
    assert again.retry_after is not None
    assert again.retry_after >= 1
    sim.fast_forward(3600)
    done = check(client, again, sim.url)
    assert done.status == "Succeeded"
    assert done.error is None
    assert done.retry_after is None
    live = get_resource(client, NIC_ID, NET)
    assert live is not None
    assert live["properties"]["provisioningState"] == "Succeeded"


def test_permanent_errors_come_back_with_arms_code_and_target(
    client: Sender, sim: SimulatorServer
) -> None:
    failed = begin_put(client, NIC_ID, NET, bodies.nic(SUBNET_ID))
    assert failed.status == "Failed"
    assert failed.error is not None
    assert failed.error.code == "ResourceGroupNotFound"
    _network(client, sim)
    body = bodies.vm(NIC_ID)
    body["properties"]["osProfile"]["adminPassword"] = "weak"
    bad = begin_put(client, VM_ID, COMPUTE, body)
    assert bad.status == "Failed"
    assert bad.error is not None
    assert (bad.error.code, bad.error.target) == ("InvalidParameter", "adminPassword")
    assert "weak" not in json.dumps(bad.to_json())


def test_transient_failures_beyond_the_pipelines_retries_raise(
    client: Sender, sim: SimulatorServer
) -> None:
    _network(client, sim)
    sim.add_fault_rule(method="PUT", path="/networkinterfaces/nic1", kind="503", count=20)
    with pytest.raises(TransientArmError, match="503"):
        begin_put(client, NIC_ID, NET, bodies.nic(SUBNET_ID))


def test_delete_of_an_absent_resource_succeeds_and_capacity_patch_is_an_operation(
    client: Sender,
) -> None:
    assert begin_delete(client, NIC_ID, NET).status == "Succeeded"
    missing = begin_patch(client, NIC_ID, NET, {"tags": {}})
    assert missing.status == "Failed"


def test_polling_refuses_urls_of_another_host(client: Sender, sim: SimulatorServer) -> None:
    foreign = Operation(
        NIC_ID, "PUT", "InProgress", NET, "async-operation", "https://evil.example/op"
    )
    with pytest.raises(ValueError, match="refusing"):
        check(client, foreign, sim.url)


class _Answer:
    """The one part of an answer `retry_after` reads."""

    def __init__(self, headers: dict[str, str]) -> None:
        from azure.core.utils import case_insensitive_dict

        self.headers = case_insensitive_dict(headers)


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ({"Retry-After": "17"}, 17.0),
        ({"retry-after": "0"}, 0.0),
        ({}, None),
        # ARM's RPC: "Retry-After should be (integer), will not support http-date"
        # (Azure/azure-resource-manager-rpc, v1.0/Addendum.md, "Asynchronous Operations",
        # commit 4fdacf348d15c1cf120c1e308445161cccdec685): anything else is no hint.
        ({"Retry-After": "Wed, 21 Oct 2026 07:28:00 GMT"}, None),
        ({"Retry-After": "1.5"}, None),
    ],
)
def test_retry_after_reads_arms_integer_seconds_only(
    header: dict[str, str], seconds: float | None
) -> None:
    from typing import cast

    from azure.core.rest import HttpResponse

    from arm.operations import retry_after

    assert retry_after(cast(HttpResponse, _Answer(header))) == seconds

"""ARM's throttling (absorbed by the SDK's retry policy) and reproducible seeded faults."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any, TypeVar

from azure.core.exceptions import HttpResponseError

from arm.connection import ArmConnection
from localdev.armsim.server import SimulatorServer
from tests.support import armsim_bodies as bodies
from tests.support.armsim_clients import SUBSCRIPTION, Clients

G = bodies.GROUP
T = TypeVar("T")


def test_every_response_reports_the_remaining_budget(clients: Clients):
    seen: list[dict[str, str]] = []
    clients.resource.resource_groups.create_or_update(
        G,
        {"location": bodies.LOCATION},
        raw_response_hook=lambda r: seen.append(dict(r.http_response.headers)),
    )
    clients.resource.resource_groups.get(
        G, raw_response_hook=lambda r: seen.append(dict(r.http_response.headers))
    )
    assert seen[0]["x-ms-ratelimit-remaining-subscription-writes"] == "199"
    assert seen[1]["x-ms-ratelimit-remaining-subscription-reads"] == "249"


def test_write_throttling_is_absorbed_by_the_sdk_retry_policy(
    clients: Clients, sim: SimulatorServer
):
    sim.configure({"buckets": {"writes": {"capacity": 3, "refillPerSecond": 4}}})
    clients.resource.resource_groups.create_or_update(G, {"location": bodies.LOCATION})
    for index in range(5):
        clients.network.network_security_groups.begin_create_or_update(
            G, f"nsg{index}", {"location": bodies.LOCATION}
        ).result()
    throttled = [r for r in sim.requests() if r["status"] == 429]
    assert throttled, "the small bucket must have throttled some writes"
    assert all(r["throttled"] and r["method"] == "PUT" for r in throttled)
    assert sim.counters()["throttled"] == len(throttled)
    assert len(sim.resources(type_name="Microsoft.Network/networkSecurityGroups")) == 5
    assert all(sim.creation_count(r["id"]) == 1 for r in sim.resources())


def test_throttled_answer_is_arms(sim: SimulatorServer, connection: ArmConnection):
    sim.configure({"buckets": {"reads": {"capacity": 1, "refillPerSecond": 0.5}}})
    strict = ArmConnection(sim.url, retry_total=0, polling_interval=0)
    url = f"{sim.url}/subscriptions/{SUBSCRIPTION}/resourcegroups?api-version=2025-04-01"
    assert strict.get_json(url, SUBSCRIPTION)[0] == 200
    status, body = strict.get_json(url, SUBSCRIPTION)
    assert status == 429
    assert body["error"]["code"] == "SubscriptionRequestsThrottled"
    strict.close()


def test_no_throttling_when_disabled(clients: Clients, sim: SimulatorServer):
    sim.configure(
        {"throttling": False, "buckets": {"writes": {"capacity": 1, "refillPerSecond": 0.01}}}
    )
    clients.resource.resource_groups.create_or_update(G, {"location": bodies.LOCATION})
    for index in range(3):
        clients.network.network_security_groups.begin_create_or_update(
            G, f"nsg{index}", {"location": bodies.LOCATION}
        ).result()
    assert not any(r["status"] == 429 for r in sim.requests())


def _retrying(call: Callable[[], T]) -> T:
    """What an app does with a failed operation: retry the idempotent PUT."""
    for _ in range(8):
        try:
            return call()
        except HttpResponseError as error:
            if error.error is None or error.error.code != "RetryableError":
                raise
    raise AssertionError("still failing after 8 attempts")


def _scenario(clients: Clients) -> None:
    _retrying(
        lambda: clients.resource.resource_groups.create_or_update(G, {"location": bodies.LOCATION})
    )
    _retrying(
        lambda: clients.network.virtual_networks.begin_create_or_update(
            G, "vnet", bodies.vnet({"dev": "10.0.0.0/24"})
        ).result()
    )
    subnet = bodies.rid(SUBSCRIPTION, G, "Microsoft.Network/virtualNetworks/vnet/subnets/dev")

    def create_nic(name: str) -> Any:
        return clients.network.network_interfaces.begin_create_or_update(
            G, name, bodies.nic(subnet)
        ).result()

    def create_vm(index: int, nic_id: str) -> Any:
        body = bodies.vm(nic_id, computer_name=f"simvm{index}")
        return clients.compute.virtual_machines.begin_create_or_update(
            G, f"vm{index}", body
        ).result()

    nic_ids = [_retrying(partial(create_nic, f"nic{i}")).id for i in range(4)]
    for index, nic_id in enumerate(nic_ids[:2]):
        _retrying(partial(create_vm, index, nic_id))
    _retrying(
        lambda: clients.sql.servers.begin_create_or_update(
            G, "sim-sql-faults", bodies.sql_server()
        ).result()
    )


def _fault_log(sim: SimulatorServer) -> list[tuple[Any, ...]]:
    return [(r["method"], r["path"], r["status"], r["fault"]) for r in sim.requests()]


def test_seeded_fault_run_is_reproducible_and_survivable(
    sim: SimulatorServer, connection: ArmConnection
):
    sim.configure({"faultRetryAfter": 0})
    patient = ArmConnection(
        sim.url,
        retry_total=10,
        retry_backoff_factor=0.001,
        retry_backoff_max=0.01,
        polling_interval=0,
    )
    runs = []
    for seed in (3, 3, 99):
        sim.reset()
        sim.set_faults(0.3, seed)
        _scenario(Clients(patient))
        runs.append(_fault_log(sim))
        assert all(sim.creation_count(r["id"]) == 1 for r in sim.resources())
        assert len(sim.resources(type_name="Microsoft.Compute/virtualMachines")) == 2
    patient.close()
    first, again, other = runs
    faults = [entry for entry in first if entry[3]]
    assert len(faults) >= 5
    assert {entry[3] for entry in faults} == {"500", "503", "429", "operation-failed"}
    assert first == again
    assert first != other

"""Fixtures: a fresh in-process ARM simulator and SDK clients made through `arm.connection`."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from arm.connection import ArmConnection
from localdev.armsim.server import SimulatorServer
from localdev.armsim.testing import running_simulator

SUBSCRIPTION = "00000000-0000-0000-0000-000000000001"


@pytest.fixture(scope="module")
def _shared_simulator() -> Iterator[SimulatorServer]:
    with running_simulator() as sim:
        yield sim


@pytest.fixture
def sim(_shared_simulator: SimulatorServer) -> SimulatorServer:
    """The module's simulator, reset to defaults (scale 0, throttling on) for each test."""
    _shared_simulator.reset()
    _shared_simulator.configure(
        {
            "latencyScale": 0.0,
            "faultRate": 0.0,
            "seed": 0,
            "throttling": True,
            "vcpuQuota": 350,
            "pageSize": 100,
            "buckets": {
                "reads": {"capacity": 250, "refillPerSecond": 25},
                "writes": {"capacity": 200, "refillPerSecond": 10},
                "deletes": {"capacity": 200, "refillPerSecond": 10},
            },
        }
    )
    return _shared_simulator


@pytest.fixture
def connection(sim: SimulatorServer) -> Iterator[ArmConnection]:
    """The app's connection path, pointed at the simulator, with fast polling and retries."""
    conn = ArmConnection(
        sim.url, polling_interval=0, retry_backoff_factor=0.01, retry_backoff_max=0.05
    )
    yield conn
    conn.close()


class Clients:
    """The real management clients, created through `ArmConnection`."""

    def __init__(self, connection: ArmConnection, subscription: str = SUBSCRIPTION) -> None:
        from azure.mgmt.compute import ComputeManagementClient
        from azure.mgmt.network import NetworkManagementClient
        from azure.mgmt.resource.resources import ResourceManagementClient
        from azure.mgmt.sql import SqlManagementClient
        from azure.mgmt.storage import StorageManagementClient

        self.resource: Any = connection.client(ResourceManagementClient, subscription)
        self.network: Any = connection.client(NetworkManagementClient, subscription)
        self.compute: Any = connection.client(ComputeManagementClient, subscription)
        self.sql: Any = connection.client(SqlManagementClient, subscription)
        self.storage: Any = connection.client(StorageManagementClient, subscription)


@pytest.fixture
def clients(connection: ArmConnection) -> Clients:
    return Clients(connection)


@pytest.fixture
def raw(connection: ArmConnection) -> Any:
    """Raw ARM requests through the connection's pipeline (types without an installed SDK)."""
    from tests.integration.armsim.raw import Raw

    return Raw(connection)


def message_of(exc: Any) -> str:
    """The ARM error message of an azure-core HttpResponseError."""
    return str(exc.error.message)


def error_of(exc: Any) -> tuple[int, str, str | None]:
    """(status, ARM code, target) of an azure-core HttpResponseError."""
    error = exc.error
    return exc.status_code, error.code, getattr(error, "target", None)

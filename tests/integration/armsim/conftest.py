"""Fixtures: a fresh in-process ARM simulator and SDK clients made through `arm.connection`."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from arm.connection import ArmConnection
from localdev.armsim.server import SimulatorServer
from localdev.armsim.testing import running_simulator
from tests.support.armsim_clients import Clients, Raw


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


@pytest.fixture
def clients(connection: ArmConnection) -> Clients:
    return Clients(connection)


@pytest.fixture
def raw(connection: ArmConnection) -> Raw:
    """Raw ARM requests through the connection's pipeline (types without an installed SDK)."""
    return Raw(connection)

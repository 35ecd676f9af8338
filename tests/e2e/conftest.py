"""End-to-end fixtures: one Azurite and one ARM simulator per session, a fresh app per test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from localdev.armsim.server import SimulatorServer
from localdev.armsim.testing import running_simulator
from tests.support.azurite import Azurite, running_azurite
from tests.support.stack import Stack, running_stack


@pytest.fixture(scope="session")
def azurite() -> Iterator[Azurite]:
    with running_azurite() as service:
        yield service


@pytest.fixture(scope="session")
def _simulator() -> Iterator[SimulatorServer]:
    with running_simulator(latency_scale=0.0) as sim:
        yield sim


@pytest.fixture
def sim(_simulator: SimulatorServer) -> SimulatorServer:
    """The session's simulator, emptied and back to defaults for each test."""
    _simulator.reset()
    _simulator.configure({"latencyScale": 0.0, "faultRate": 0.0, "seed": 0, "throttling": True})
    return _simulator


@pytest.fixture
def stack(sim: SimulatorServer, azurite: Azurite) -> Iterator[Stack]:
    azurite.drain("platform-events")
    with running_stack(sim, azurite) as running:
        yield running

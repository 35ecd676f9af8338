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


#: The settings a test may change through the admin API (`SimConfig.update`), each put back to
#: the session's simulator's value before every test: a test that fails half-way (e.g. with a
#: lowered vCPU quota) must not fail the tests after it.
RESETTABLE = (
    "latencyScale",
    "faultRate",
    "seed",
    "faultRetryAfter",
    "throttling",
    "buckets",
    "vcpuQuota",
    "pageSize",
    "maxPollRetryAfter",
)


@pytest.fixture(scope="session")
def _simulator_defaults(_simulator: SimulatorServer) -> dict[str, object]:
    settings = _simulator.config.to_json()
    return {name: settings[name] for name in RESETTABLE}


@pytest.fixture
def sim(_simulator: SimulatorServer, _simulator_defaults: dict[str, object]) -> SimulatorServer:
    """The session's simulator, emptied and back to its defaults for each test."""
    _simulator.reset()
    _simulator.configure(_simulator_defaults)
    return _simulator


@pytest.fixture
def stack(sim: SimulatorServer, azurite: Azurite) -> Iterator[Stack]:
    azurite.drain("platform-events")
    with running_stack(sim, azurite) as running:
        yield running

"""Start the ARM simulator in-process for a test or a benchmark.

    with running_simulator() as sim:
        connection = ArmConnection(sim.url, polling_interval=0)
        ...
        assert sim.creation_count(vm_id) == 1

Defaults suit tests: latency scale 0 (operations complete at the first poll, still through the
long-running-operation protocol); throttling on, as in Azure. Any `SimConfig` field can be
overridden by keyword.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from localdev.armsim.config import SimConfig
from localdev.armsim.server import SimulatorServer


@contextmanager
def running_simulator(
    config: SimConfig | None = None, **overrides: Any
) -> Iterator[SimulatorServer]:
    """A simulator serving on a free loopback port for the duration of the block."""
    settings = config or SimConfig(latency_scale=0.0)
    for name, value in overrides.items():
        if not hasattr(settings, name):
            raise TypeError(f"unknown simulator setting {name!r}")
        setattr(settings, name, value)
    server = SimulatorServer(settings)
    server.start()
    try:
        yield server
    finally:
        server.stop()

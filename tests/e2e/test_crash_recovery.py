"""The host SIGKILLed five times at random points of a farm deployment, restarted each time.

The local host runs as a subprocess on a task hub file; the test kills it (SIGKILL: no
clean-up, no flush beyond what the hub already committed) at points drawn from a seeded
`random.Random` (after a random number of ARM PUTs, plus a random delay, so kills land in
activities, in episodes, and right after a restart while the host is resuming), and starts it
again on the same hub. The deployment must complete with all four environments Succeeded and
every resource created exactly once, and the host's output and its hub hold no secret.
"""

from __future__ import annotations

import random
import time
from pathlib import Path

import requests

from localdev.armsim.server import SimulatorServer
from tests.support.azurite import Azurite
from tests.support.deployment import (
    assert_all_succeeded,
    assert_created_once,
    puts,
    resource_ids,
)
from tests.support.examples import sample
from tests.support.host_process import host_process, wait_terminal, write_settings
from tests.support.leaks import assert_no_leak, dump_hub
from tests.support.stack import app_settings

#: Change it to explore other kill points; a failure names the seed and the points it drew.
SEED = 20261127
KILLS = 5
LISTENING = "Local Functions host listening"


def kill_points(rng: random.Random, resources: int) -> list[tuple[int, float]]:
    """Where to kill: (ARM PUTs seen so far, then a delay in seconds), in order.

    The PUT counts are spread over most of the graph (not its very end, so that the deployment
    is still running when the kill comes); each restart also re-sends what was in flight, so
    two close counts mean a kill soon after a restart, while the host is resuming.
    """
    counts = sorted(rng.sample(range(2, resources * 4 // 5), KILLS))
    return [(count, rng.uniform(0.0, 0.4)) for count in counts]


def wait_for_puts(sim: SimulatorServer, count: int, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while puts(sim) < count:
        assert time.monotonic() < deadline, f"only {puts(sim)} PUTs after {seconds}s"
        time.sleep(0.01)


def test_five_sigkills_at_random_points_and_the_deployment_completes_with_nothing_twice(
    sim: SimulatorServer, azurite: Azurite, tmp_path: Path
) -> None:
    # Latency keeps long operations in flight across the kills; a platform takes ~10 s of it.
    sim.configure({"latencyScale": 0.003})
    spec = sample("spec-farm.json")
    points = kill_points(random.Random(SEED), len(resource_ids(spec)))
    settings = write_settings(tmp_path, app_settings(sim, azurite))
    hub = tmp_path / "hub.sqlite"
    output = tmp_path / "host.log"

    killed_at: list[int] = []
    for index, (count, delay) in enumerate(points):
        with host_process(settings, hub, output) as (process, base):
            if index == 0:
                response = requests.put(f"{base}/api/platforms/acme", json=spec, timeout=60)
                assert response.status_code == 202, response.text
            wait_for_puts(sim, count)
            time.sleep(delay)
            state = requests.get(f"{base}/api/platforms/acme", timeout=30).json()
            assert state["lastOperation"]["runtimeStatus"] == "Running", (points, state)
            process.kill()
            process.wait(10)
            assert process.returncode == -9
            killed_at.append(puts(sim))
    assert len(killed_at) == KILLS

    with host_process(settings, hub, output) as (_, base):
        state = wait_terminal(base, "acme", 180)
    assert_all_succeeded(state)
    assert_created_once(sim, spec)
    # The kills were real and each restart resumed work: PUTs kept coming after every kill.
    assert killed_at == sorted(killed_at)
    assert puts(sim) > killed_at[-1]
    console = output.read_text(errors="replace")
    assert console.count(LISTENING) == KILLS + 1
    assert_no_leak({"host output": console, "task hub": dump_hub(hub)})

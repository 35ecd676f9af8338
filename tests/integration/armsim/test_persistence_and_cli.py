"""`--state FILE` keeps resources across restarts; the command line starts and stops cleanly."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from arm.connection import ArmConnection
from localdev.armsim.testing import running_simulator
from tests.support import armsim_bodies as bodies
from tests.support.armsim_clients import SUBSCRIPTION, Clients

ROOT = Path(__file__).resolve().parents[3]
G = bodies.GROUP


def test_state_file_survives_a_restart(tmp_path: Path):
    state = tmp_path / "armsim-state.json"
    subnet = bodies.rid(SUBSCRIPTION, G, "Microsoft.Network/virtualNetworks/vnet/subnets/dev")
    with running_simulator(state_file=state) as sim:
        connection = ArmConnection(sim.url, polling_interval=0)
        clients = Clients(connection)
        clients.resource.resource_groups.create_or_update(G, {"location": bodies.LOCATION})
        clients.network.virtual_networks.begin_create_or_update(
            G, "vnet", bodies.vnet({"dev": "10.0.0.0/24"})
        ).result()
        first = clients.network.network_interfaces.begin_create_or_update(
            G, "nic1", bodies.nic(subnet)
        ).result()
        deadline = time.monotonic() + 5
        while not (state.exists() and "nic1" in state.read_text()) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert "nic1" in state.read_text(), "the state is saved shortly after a change"
        connection.close()
    assert [p.name for p in tmp_path.iterdir()] == [state.name]
    assert bodies.PASSWORD not in state.read_text()

    with running_simulator(state_file=state) as sim:
        connection = ArmConnection(sim.url, polling_interval=0)
        clients = Clients(connection)
        again = clients.network.network_interfaces.get(G, "nic1")
        assert (
            again.ip_configurations[0].private_ip_address
            == first.ip_configurations[0].private_ip_address
        )
        second = clients.network.network_interfaces.begin_create_or_update(
            G, "nic2", bodies.nic(subnet)
        ).result()
        assert second.ip_configurations[0].private_ip_address == "10.0.0.5"
        clients.network.network_interfaces.begin_create_or_update(
            G, "nic1", bodies.nic(subnet)
        ).result()
        assert sim.creation_count(first.id) == 1
        connection.close()


def _start(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "localdev.armsim", *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_cli_prints_its_url_first_serves_and_stops_on_sigterm(tmp_path: Path):
    state = tmp_path / "state.json"
    process = _start(
        "--port", "0", "--latency-scale", "0", "--no-throttling", "--state", str(state)
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline().strip()
        match = re.fullmatch(r"ARM simulator listening on (http://127\.0\.0\.1:(\d+))", line)
        assert match, line
        url = match.group(1)
        request = urllib.request.Request(
            f"{url}/subscriptions/{SUBSCRIPTION}/resourcegroups/{G}?api-version=2025-04-01",
            data=json.dumps({"location": bodies.LOCATION}).encode(),
            method="PUT",
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 201
            assert "x-ms-ratelimit-remaining-subscription-writes" in response.headers
        with urllib.request.urlopen(f"{url}/_sim/config", timeout=10) as response:
            config = json.loads(response.read())
        assert (config["latencyScale"], config["throttling"]) == (0.0, False)
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=20) == 0
    assert G in state.read_text()


def test_cli_refuses_a_non_loopback_host():
    process = _start("--host", "0.0.0.0", "--port", "0")
    out, err = process.communicate(timeout=20)
    assert process.returncode == 2
    assert "listening" not in out
    assert "non-loopback" in err


def test_an_instance_upgrade_in_flight_survives_a_restart(tmp_path: Path):
    """A caller that kept only the operation's URL polls it after the simulator restarted
    (state file) and sees the upgrade end: the action, its targets and the model it applies
    are persisted with the operation (Compute's manualupgrade, virtualMachineScaleSet.json
    2024-11-01: a long-running POST)."""
    from urllib.parse import urlsplit

    from tests.support.armsim_clients import Raw

    state = tmp_path / "armsim-state.json"
    subnet = bodies.rid(SUBSCRIPTION, G, "Microsoft.Network/virtualNetworks/vnet/subnets/fe")
    vmss = bodies.rid(SUBSCRIPTION, G, "Microsoft.Compute/virtualMachineScaleSets/fe")
    with running_simulator(state_file=state, latency_scale=0) as sim:
        connection = ArmConnection(sim.url, polling_interval=0)
        clients = Clients(connection)
        clients.resource.resource_groups.create_or_update(G, {"location": bodies.LOCATION})
        clients.network.virtual_networks.begin_create_or_update(
            G, "vnet", bodies.vnet({"fe": "10.0.2.0/24"})
        ).result()
        body = bodies.scale_set(subnet, 2)
        clients.compute.virtual_machine_scale_sets.begin_create_or_update(G, "fe", body).result()
        body["properties"]["virtualMachineProfile"]["storageProfile"]["imageReference"][
            "version"
        ] = "2.0.0"
        clients.compute.virtual_machine_scale_sets.begin_create_or_update(G, "fe", body).result()
        sim.configure({"latencyScale": 1.0})
        started = Raw(connection).send(
            "POST", f"{vmss}/manualupgrade", {"instanceIds": ["1"]}, api="2026-04-01"
        )
        assert started.status == 202
        status = urlsplit(started.headers["Azure-AsyncOperation"])
        connection.close()
    # The instances' models are kept without the profile's secrets.
    assert bodies.PASSWORD not in state.read_text()

    with running_simulator(state_file=state, latency_scale=1) as sim:
        connection = ArmConnection(sim.url, polling_interval=0)
        raw = Raw(connection)
        path = f"{status.path}?{status.query}"
        assert raw.send("GET", path).body["status"] == "InProgress"
        sim.fast_forward(3600)
        assert raw.send("GET", path).body["status"] == "Succeeded"
        vms = Clients(connection).compute.virtual_machine_scale_set_vms
        latest = {vm.instance_id: vm.latest_model_applied for vm in vms.list(G, "fe")}
        assert latest == {"0": False, "1": True}
        connection.close()

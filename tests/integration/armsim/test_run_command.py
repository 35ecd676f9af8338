"""Run Command on scale-set instances and VMs, and the setup script's front-end modes.

Oracles: Azure/azure-rest-api-specs, specification/compute/resource-manager/Microsoft.Compute/
ComputeRP/stable/2024-11-01/runCommand.json (commit 05b997f6): `VirtualMachineScaleSetVMs_
RunCommand` (POST `.../virtualmachines/{instanceId}/runCommand`) and `VirtualMachines_RunCommand`,
body `RunCommandInput` (`commandId` required, `script`), `RunCommandResult.value` statuses,
long-running with `final-state-via: location`; MicrosoftDocs/azure-docs articles/virtual-
machines/windows/run-command.md (commit 056d350e): one script at a time, the last 4,096 bytes of
output. The app calls Compute 2026-04-01. What the script does is the project's own contract
(docs/upgrades.md, "The command line"): the simulator runs the real script's text only to find
its `-Mode` values and its throw line, which these tests read from infra/scripts/Install-
OutSystems.ps1 too.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError

from localdev.armsim import run_command
from localdev.armsim.hooks import ArmSim
from localdev.armsim.server import SimulatorServer
from localdev.armsim.store import Resource
from tests.support import armsim_bodies as bodies
from tests.support.armsim_clients import SUBSCRIPTION, Clients, Raw, error_of

G = bodies.GROUP
GROUP_ID = f"/subscriptions/{SUBSCRIPTION}/resourceGroups/{G}"
GATEWAY = f"{GROUP_ID}/providers/Microsoft.Network/applicationGateways/gw"
POOL = f"{GATEWAY}/backendAddressPools/frontends"
VMSS = f"{GROUP_ID}/providers/Microsoft.Compute/virtualMachineScaleSets/fe"
COMPUTE_API = "2026-04-01"
SCRIPT = Path(__file__).resolve().parents[3] / "infra" / "scripts" / "Install-OutSystems.ps1"
OLD_SCRIPT = "param([ValidateSet('Setup', 'Resume', 'WatchTermination')][string]$Mode = 'Setup')"


def _command(mode: str, role: str = "frontend") -> dict[str, Any]:
    line = (
        f"& 'C:\\OutSystems\\Install-OutSystems.ps1' -Role '{role}' -PlatformVersion '11.32.0' "
        f"-Mode '{mode}'; exit $LASTEXITCODE"
    )
    return {"commandId": "RunPowerShellScript", "script": [line]}


def _farm(clients: Clients, script: str) -> None:
    """A gateway whose pool is a two-instance scale set that got `script` as its userData."""
    clients.resource.resource_groups.create_or_update(G, {"location": bodies.LOCATION})
    vnet = clients.network.virtual_networks.begin_create_or_update(
        G, "vnet", bodies.vnet({"fe": "10.0.2.0/24", "gw": "10.0.4.0/24"})
    ).result()
    subnets = {s.name: s.id for s in vnet.subnets}
    pip = clients.network.public_ip_addresses.begin_create_or_update(
        G, "gw-pip", bodies.public_ip("simgw")
    ).result()
    gateway = bodies.application_gateway(GATEWAY, subnets["gw"], pip.id)
    clients.network.application_gateways.begin_create_or_update(G, "gw", gateway).result()
    body = bodies.scale_set(subnets["fe"], 2, pool_id=POOL)
    body["properties"]["virtualMachineProfile"]["userData"] = base64.b64encode(
        script.encode()
    ).decode()
    clients.compute.virtual_machine_scale_sets.begin_create_or_update(G, "fe", body).result()


def _run(clients: Clients, instance: str, command: dict[str, Any]) -> tuple[str, str]:
    result = clients.compute.virtual_machine_scale_set_vms.begin_run_command(
        G, "fe", instance, command
    ).result()
    stdout, stderr = result.value
    assert stdout.code == "ComponentStatus/StdOut/succeeded"
    assert stderr.code == "ComponentStatus/StdErr/succeeded"
    return stdout.message, stderr.message


def _health(clients: Clients) -> list[str]:
    health = clients.network.application_gateways.begin_backend_health(G, "gw").result()
    servers = health.backend_address_pools[0].backend_http_settings_collection[0].servers
    by_configuration = {s.ip_configuration.id.split("/")[-5]: s.health for s in servers}
    return [by_configuration[i] for i in sorted(by_configuration)]


def test_drain_takes_a_front_end_out_of_the_gateway_until_serve(clients: Clients) -> None:
    _farm(clients, SCRIPT.read_text(encoding="utf-8"))
    assert _health(clients) == ["Up", "Up"]
    assert _run(clients, "1", _command("Drain")) == (
        "OutSystems front-end drained",
        "OutSystems front-end drained",
    )
    assert _health(clients) == ["Up", "Down"]
    assert _run(clients, "1", _command("HoldDeployments"))[0] == (
        "OutSystems front-end holding deployments"
    )
    assert _health(clients) == ["Up", "Down"]
    assert _run(clients, "1", _command("Serve"))[0] == "OutSystems front-end serving"
    assert _health(clients) == ["Up", "Up"]


def test_a_drained_instance_stays_drained_through_an_upgrade_not_a_reimage(
    clients: Clients,
) -> None:
    _farm(clients, SCRIPT.read_text(encoding="utf-8"))
    _run(clients, "0", _command("Drain"))
    scale_sets = clients.compute.virtual_machine_scale_sets
    scale_sets.begin_update(G, "fe", {"sku": {"name": "Standard_F8s_v2"}}).result()
    scale_sets.begin_update_instances(G, "fe", {"instanceIds": ["0"]}).result()
    assert _health(clients) == ["Down", "Up"]  # the script keeps its Drain rule on an upgrade
    clients.compute.virtual_machine_scale_set_vms.begin_reimage(G, "fe", "0").result()
    assert _health(clients) == ["Up", "Up"]  # a new OS disk has no such rule


def test_the_front_end_modes_refuse_other_roles_with_the_scripts_failure_line(
    clients: Clients,
) -> None:
    text = SCRIPT.read_text(encoding="utf-8")
    _farm(clients, text)
    lines = text.splitlines()
    throw = next(n for n, line in enumerate(lines, 1) if "is for front-ends, not a $Role" in line)
    expected = (
        f"OutSystems setup failed: -Mode Drain is for front-ends, not a controller (line {throw})"
    )
    assert _run(clients, "0", _command("Drain", role="controller")) == (expected, expected)
    assert _health(clients) == ["Up", "Up"]


def test_an_older_script_knows_no_front_end_mode(clients: Clients) -> None:
    _farm(clients, OLD_SCRIPT)
    stdout, stderr = _run(clients, "0", _command("Drain"))
    assert stdout == ""
    assert "OutSystems front-end" not in stderr
    assert stderr.startswith("Cannot validate argument on parameter 'Mode'.")
    assert _health(clients) == ["Up", "Up"]


def test_one_script_at_a_time_and_the_instance_stays_idle(
    clients: Clients, raw: Raw, sim: SimulatorServer
) -> None:
    _farm(clients, SCRIPT.read_text(encoding="utf-8"))
    sim.configure({"latencyScale": 1.0})
    path = f"{VMSS}/virtualmachines/0/runCommand"
    first = raw.send("POST", path, _command("Drain"), api=COMPUTE_API)
    assert first.status == 202
    assert "Location" in first.headers
    second = raw.send("POST", path, _command("Serve"), api=COMPUTE_API)
    assert (second.status, second.code) == (409, "Conflict")
    vm = clients.compute.virtual_machine_scale_set_vms.get(G, "fe", "0")
    assert vm.provisioning_state == "Succeeded"
    missing = raw.send("POST", path, {"script": ["hostname"]}, api=COMPUTE_API)
    assert (missing.status, missing.code) == (400, "InvalidParameter")
    sim.fast_forward(30)
    assert raw.send("POST", path, _command("Serve"), api=COMPUTE_API).status == 202


@pytest.fixture
def echo() -> Iterator[list[str]]:
    """A run-command decider that echoes the script, recording what ran where."""
    ran: list[str] = []

    def decide(engine: ArmSim, machine: Resource, script: str) -> run_command.RunOutput:
        ran.append(f"{machine.name}: {script}")
        return run_command.RunOutput("x" * 5000 + "end", "")

    run_command.register_decider(decide)
    yield ran
    run_command.unregister_decider()


def test_run_command_on_a_vm_keeps_the_last_4096_characters(
    clients: Clients, sim: SimulatorServer, echo: list[str]
) -> None:
    clients.resource.resource_groups.create_or_update(G, {"location": bodies.LOCATION})
    vnet = clients.network.virtual_networks.begin_create_or_update(
        G, "vnet", bodies.vnet({"vms": "10.0.0.0/24"})
    ).result()
    nic = clients.network.network_interfaces.begin_create_or_update(
        G, "nic", bodies.nic(vnet.subnets[0].id)
    ).result()
    clients.compute.virtual_machines.begin_create_or_update(G, "vm", bodies.vm(nic.id)).result()
    result = clients.compute.virtual_machines.begin_run_command(
        G, "vm", {"commandId": "RunPowerShellScript", "script": ["hostname"]}
    ).result()
    assert len(result.value[0].message) == 4096
    assert result.value[0].message.endswith("end")
    assert echo == ["vm: hostname"]
    vm = sim.engine.store.get(f"{GROUP_ID}/providers/Microsoft.Compute/virtualMachines/vm")
    assert vm is not None
    assert "script" not in vm.extra["runCommand"]  # not kept once it ran

    sim.add_fault_rule("POST", "/virtualmachines/vm/runcommand", "operation-failed")
    with pytest.raises(HttpResponseError) as raised:
        clients.compute.virtual_machines.begin_run_command(
            G, "vm", {"commandId": "RunPowerShellScript", "script": ["hostname"]}
        ).result()
    assert error_of(raised.value)[1] == "RetryableError"
    assert echo == ["vm: hostname"]  # the failed run ran nothing

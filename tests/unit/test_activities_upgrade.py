"""The upgrade's activities (`activities/upgrade.py`) against ARM on the wire.

Each activity runs as the worker runs it (the registered function, JSON in and out) against the
ARM simulator on loopback, through the app's own connection, with the caller holding exactly
the app's role (`infra/app/platform-operator-role.json`): what works here works with those
rights and no more (`test_each_upgrade_action_of_the_role_is_needed` removes each one).

The ARM facts relied on, from the published REST specs (Azure/azure-rest-api-specs; the app
calls Compute 2026-04-01, Network 2026-03-01, Sql 2025-01-01 with the same operations):
- specification/compute/resource-manager/Microsoft.Compute/ComputeRP/stable/2024-11-01/
  virtualMachineScaleSet.json: `VirtualMachineScaleSets_UpdateInstances` (POST
  `.../manualupgrade`, body `VirtualMachineScaleSetVMInstanceRequiredIDs`, long-running),
  `VirtualMachineScaleSets_DeleteInstances` (POST `.../delete`, same body), `VirtualMachine
  ScaleSetVMs_List` (`$expand=instanceView`; `latestModelApplied`, `provisioningState`,
  `instanceView.computerName`, `instanceView.extensions[]`: `VirtualMachineExtensionInstanceView`
  `name`, `statuses[]`, `substatuses[]` with `code` and `message`).
- .../ComputeRP/stable/2024-11-01/runCommand.json: `VirtualMachineScaleSetVMs_RunCommand` (POST
  `.../virtualmachines/{instanceId}/runCommand`, `RunCommandInput.commandId` +
  `script`), `RunCommandResult.value` (instance view statuses), `final-state-via: location`.
- specification/network/resource-manager/Microsoft.Network/stable/2024-05-01/
  applicationGateway.json: `ApplicationGateways_BackendHealth` (POST `.../backendhealth`,
  `final-state-via: location`), `ApplicationGatewayBackendHealth.backendAddressPools[]
  .backendHttpSettingsCollection[].servers[]` `address`, `health` (`Unknown`, `Up`, `Down`,
  `Partial`, `Draining`); a gateway's `backendAddressPools[].properties.backendAddresses[]`
  `ipAddress`, `requestRoutingRules[].properties.backendAddressPool.id`.
- .../network/.../stable/2024-05-01/networkInterface.json:
  `NetworkInterfaces_ListVirtualMachineScaleSetNetworkInterfaces` (GET
  `.../virtualMachineScaleSets/{vmss}/networkInterfaces`), each NIC's `virtualMachine.id` and
  `ipConfigurations[].properties.privateIPAddress`.
- specification/sql/resource-manager/Microsoft.Sql/stable/2021-11-01/Databases.json: a database
  PUT with `createMode: Copy` and `sourceDatabaseId`.
What the setup script prints (the instance view's last line, Run Command's output) is the
project's own contract, docs/upgrades.md ("What the script reports").
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from localdev.armsim import extensions
from localdev.armsim.authorization import Permissions
from localdev.armsim.extensions import ScriptResult
from localdev.armsim.hooks import ArmSim
from localdev.armsim.server import SimulatorServer
from localdev.armsim.store import Resource
from localdev.armsim.testing import running_simulator
from outsystems.messages import ActionOutcome, Operation, ScaleSetInstance
from outsystems.resource_types import SCALE_SET
from outsystems.spec import parse_spec
from outsystems.topology import build_topology
from tests.support import armsim_bodies as bodies
from tests.support.arm_loopback import SUBSCRIPTION, app_on, get, put, send
from tests.support.functions import activity

ROOT = Path(__file__).resolve().parents[2]
ROLE = ROOT / "infra" / "app" / "platform-operator-role.json"
SCRIPT = ROOT / "infra" / "scripts" / "Install-OutSystems.ps1"
GROUP_ID = f"/subscriptions/{SUBSCRIPTION}/resourceGroups/acme-rg"
VNET = f"{GROUP_ID}/providers/Microsoft.Network/virtualNetworks/acme-vnet"
GATEWAY = f"{GROUP_ID}/providers/Microsoft.Network/applicationGateways/acme-prod-appgw"
OWN_POOL = f"{GATEWAY}/backendAddressPools/frontends"
PIP = f"{GROUP_ID}/providers/Microsoft.Network/publicIPAddresses/acme-prod-pip"
VMSS = f"{GROUP_ID}/providers/Microsoft.Compute/virtualMachineScaleSets/acme-prod-vmss"
SQL = f"{GROUP_ID}/providers/Microsoft.Sql/servers/acme-prod-sql"
DATABASE = f"{SQL}/databases/acme-prod-db"
RESOURCES_API = "2025-04-01"
NETWORK_API = "2026-03-01"
COMPUTE_API = "2026-04-01"
SQL_API = "2025-01-01"
SOLUTION = "acme"
OLD, NEW = "11.31.0", "11.32.0"
PRODUCT = "Platform Server"


def _setup_extension(version: str) -> dict[str, Any]:
    """The scale set's setup extension as the topology writes it (C1), at `version`."""
    body = json.loads((ROOT / "examples" / "spec-farm.json").read_text())
    body["platformVersion"] = version
    graph = build_topology(parse_spec(SOLUTION, body, default_subscription_id=SUBSCRIPTION))
    scale_set = next(r for r in graph if r.type == SCALE_SET)
    profile = scale_set.body["properties"]["virtualMachineProfile"]
    extension: dict[str, Any] = profile["extensionProfile"]["extensions"][0]
    return extension


class Servers:
    """What the front-ends' setup script does, as docs/upgrades.md says it reports: each
    instance remembers its version; `failing` instances fail the health gate of an upgrade."""

    def __init__(self) -> None:
        self.versions: dict[str, str] = {}
        self.failing: set[str] = set()
        self.runs: list[str] = []

    def decide(
        self, engine: ArmSim, host: Resource, extension: Mapping[str, Any]
    ) -> ScriptResult | None:
        command = str(extension["properties"]["settings"]["commandToExecute"])
        wanted = re.search(r"-PlatformVersion '([^']+)'", command)
        if wanted is None:
            return None
        version = wanted.group(1)
        instances = [
            i
            for i in engine.store.children(host.id, f"{SCALE_SET}/virtualMachines")
            if i.state != "Deleting"
        ]
        targets = host.extra.get("targetInstances")
        if isinstance(targets, list):
            instances = [i for i in instances if i.name in targets]
        else:
            instances = [i for i in instances if i.state == "Creating"] or instances
        outcome: ScriptResult | None = None
        for instance in instances:
            self.runs.append(instance.name)
            before = self.versions.get(instance.name)
            if before is None:
                line = f"OutSystems setup succeeded: installed {PRODUCT} {version} (role frontend)"
                result = ScriptResult(0, line, line)
            elif before == version:
                line = f"OutSystems setup succeeded: already at {PRODUCT} {version} (role frontend)"
                result = ScriptResult(0, line, line)
            elif instance.name in self.failing:
                line = (
                    "OutSystems setup failed: health check: /servicecenter/_ping.aspx failed for "
                    "10 minutes after the upgrade (HTTP 503) (line 812)"
                )
                result = ScriptResult(1, line, line)
            else:
                line = (
                    f"OutSystems setup succeeded: upgraded Platform Server {before} to {version} "
                    "(role frontend)"
                )
                result = ScriptResult(0, line, line)
            if result.exit_code == 0:
                self.versions[instance.name] = version
            instance.extra.setdefault("extensions", {})[str(extension["name"])] = {
                **result.to_json(),
                "error": extensions.failure_of(
                    str(extension["name"]), extension["properties"], result
                ),
            }
            if outcome is None or result.exit_code != 0:
                outcome = result
        return outcome


@pytest.fixture(scope="module")
def simulator() -> Iterator[SimulatorServer]:
    with running_simulator(throttling=False, permissions_file=ROLE) as sim:
        yield sim


@pytest.fixture
def servers() -> Iterator[Servers]:
    model = Servers()
    extensions.register_outcome_decider("CustomScriptExtension", model.decide)
    yield model
    extensions.unregister_outcome_decider("CustomScriptExtension")


@pytest.fixture
def sim(
    simulator: SimulatorServer, monkeypatch: pytest.MonkeyPatch, servers: Servers
) -> Iterator[SimulatorServer]:
    with app_on(simulator, monkeypatch) as running:
        yield running


def _scale_set(version: str, capacity: int = 2, script: bytes | None = None) -> dict[str, Any]:
    body = bodies.scale_set(f"{VNET}/subnets/prod", capacity, prefix="acmefe", pool_id=OWN_POOL)
    profile = body["properties"]["virtualMachineProfile"]
    profile["extensionProfile"]["extensions"] = [_setup_extension(version)]
    profile["userData"] = base64.b64encode(script or SCRIPT.read_bytes()).decode()
    return body


def _farm(capacity: int = 2, script: bytes | None = None) -> None:
    """A prod gateway whose pool is a front-end scale set at the old version."""
    put(GROUP_ID, RESOURCES_API, {"location": bodies.LOCATION})
    put(VNET, NETWORK_API, bodies.vnet({"prod": "10.0.2.0/24", "gateway": "10.0.4.0/24"}))
    put(PIP, NETWORK_API, bodies.public_ip("acmeprod"))
    gateway = bodies.application_gateway(GATEWAY, f"{VNET}/subnets/gateway", PIP)
    put(GATEWAY, NETWORK_API, gateway)
    put(VMSS, COMPUTE_API, _scale_set(OLD, capacity, script))


def _new_model(capacity: int = 2) -> None:
    """The scale set's model at the new version (what `deploy_environment` applies)."""
    put(VMSS, COMPUTE_API, _scale_set(NEW, capacity))


def _until_done(answer: Any, *, solution: str = SOLUTION) -> Operation:
    operation = Operation.from_json(answer)
    for _ in range(20):
        if operation.done:
            return operation
        checked = activity("check_operations")(
            {"subscriptionId": SUBSCRIPTION, "solutionId": solution, "operations": [answer]}
        )
        answer = checked[0]
        operation = Operation.from_json(answer)
    raise AssertionError(f"{operation} did not end")


def _check(operation: Operation) -> Operation:
    """One `check_operations` of one operation, as the orchestration polls it."""
    request = {
        "subscriptionId": SUBSCRIPTION,
        "solutionId": SOLUTION,
        "operations": [operation.to_json()],
    }
    return Operation.from_json(activity("check_operations")(request)[0])


def _instances(scale_set: str = VMSS) -> list[ScaleSetInstance]:
    answer = activity("read_scale_set_instances")({"scaleSet": scale_set})
    return [ScaleSetInstance.from_json(i) for i in answer]


def _posts(sim: SimulatorServer, since: int, action: str) -> list[dict[str, Any]]:
    return [
        r
        for r in sim.requests(since)
        if r["method"] == "POST" and r["path"].endswith(f"/{action.lower()}")
    ]


def _last_seq(sim: SimulatorServer) -> int:
    requests = sim.requests()
    return int(requests[-1]["seq"]) if requests else 0


def _instances_request(ids: list[str], scale_set: str = VMSS) -> dict[str, Any]:
    return {
        "subscriptionId": SUBSCRIPTION,
        "solutionId": SOLUTION,
        "scaleSet": scale_set,
        "instanceIds": ids,
    }


def _run(instance: str, mode: str, scale_set: str = VMSS) -> ActionOutcome:
    answer = activity("begin_run_command")(
        {
            "subscriptionId": SUBSCRIPTION,
            "solutionId": SOLUTION,
            "scaleSet": scale_set,
            "instanceId": instance,
            "mode": mode,
        }
    )
    operation = _until_done(answer)
    assert operation.succeeded, operation
    return ActionOutcome.from_json(activity("read_action_result")(operation.to_json()))


def _backend_health(gateway: str = GATEWAY) -> dict[str, str]:
    answer = activity("begin_backend_health")(
        {"subscriptionId": SUBSCRIPTION, "solutionId": SOLUTION, "gatewayId": gateway}
    )
    operation = _until_done(answer)
    assert operation.succeeded, operation
    outcome = ActionOutcome.from_json(activity("read_action_result")(operation.to_json()))
    assert outcome.succeeded
    return dict(outcome.health)


def _switch(addresses: list[str] | None, gateway: str = GATEWAY) -> Operation:
    answer = activity("begin_switch_gateway")(
        {
            "subscriptionId": SUBSCRIPTION,
            "solutionId": SOLUTION,
            "gatewayId": gateway,
            "addresses": addresses,
        }
    )
    return _until_done(answer)


# --- read_scale_set_instances ----------------------------------------------------------------


def test_the_instances_are_read_with_address_model_and_the_scripts_last_line(
    sim: SimulatorServer,
) -> None:
    _farm()
    instances = _instances()
    assert [i.instance_id for i in instances] == ["0", "1"]
    assert all(i.name.startswith("acmefe") for i in instances)
    assert all(i.latest_model_applied and i.provisioning_state == "Succeeded" for i in instances)
    assert [i.setup_status for i in instances] == ["Succeeded", "Succeeded"]
    assert {i.setup_message for i in instances} == {
        f"OutSystems setup succeeded: installed Platform Server {OLD} (role frontend)"
    }
    # The addresses are the ones Network lists for each instance's NIC (read by the test with
    # rights of its own: the app does not need this read).
    sim.set_permissions(None)
    for instance in instances:
        nics = send(
            "GET", f"{VMSS}/virtualMachines/{instance.instance_id}/networkInterfaces", NETWORK_API
        ).json()["value"]
        expected = nics[0]["properties"]["ipConfigurations"][0]["properties"]["privateIPAddress"]
        assert instance.private_ip == expected
    assert len({i.private_ip for i in instances}) == 2


def test_a_missing_scale_set_has_no_instances(sim: SimulatorServer) -> None:
    put(GROUP_ID, RESOURCES_API, {"location": bodies.LOCATION})
    assert _instances() == []


# --- begin_manual_upgrade -------------------------------------------------------------------


def test_a_manual_upgrade_takes_the_named_instances_to_the_new_model_once(
    sim: SimulatorServer, servers: Servers
) -> None:
    _farm()
    _new_model()
    assert [i.latest_model_applied for i in _instances()] == [False, False]

    since = _last_seq(sim)
    operation = _until_done(activity("begin_manual_upgrade")(_instances_request(["0"])))
    assert operation.succeeded, operation
    assert len(_posts(sim, since, "manualupgrade")) == 1
    first, second = _instances()
    assert (first.latest_model_applied, second.latest_model_applied) == (True, False)
    assert first.setup_status == "Succeeded"
    assert first.setup_message == (
        f"OutSystems setup succeeded: upgraded Platform Server {OLD} to {NEW} (role frontend)"
    )
    assert servers.versions[first.instance_id] == NEW
    assert servers.versions[second.instance_id] == OLD

    # Run again (a retried activity, a resumed upgrade): nothing is upgraded twice.
    runs = len(servers.runs)
    since = _last_seq(sim)
    again = Operation.from_json(activity("begin_manual_upgrade")(_instances_request(["0"])))
    assert again.succeeded
    assert _posts(sim, since, "manualupgrade") == []
    assert len(servers.runs) == runs


def test_an_instance_failing_its_health_gate_is_named_with_the_scripts_line(
    sim: SimulatorServer, servers: Servers
) -> None:
    _farm()
    _new_model()
    failing = _instances()[1]
    servers.failing.add(failing.instance_id)
    operation = _until_done(activity("begin_manual_upgrade")(_instances_request(["0", "1"])))
    assert operation.status == "Failed"
    assert operation.error is not None
    assert operation.error.code == "VMExtensionProvisioningError"
    by_id = {i.instance_id: i for i in _instances()}
    assert by_id["0"].setup_status == "Succeeded"
    assert by_id["1"].latest_model_applied  # the new model stays on it
    assert by_id["1"].setup_status == "Failed"
    assert by_id["1"].setup_message is not None
    assert by_id["1"].setup_message.startswith(
        "OutSystems setup failed: health check: /servicecenter/_ping.aspx failed for 10 minutes"
    )

    # Resumed once the server is fixed: the failed instance is upgraded again, the other not.
    servers.failing.clear()
    runs = len(servers.runs)
    since = _last_seq(sim)
    again = _until_done(activity("begin_manual_upgrade")(_instances_request(["0", "1"])))
    assert again.succeeded, again
    assert len(_posts(sim, since, "manualupgrade")) == 1
    assert servers.runs[runs:] == ["1"]
    by_id = {i.instance_id: i for i in _instances()}
    assert by_id["1"].setup_status == "Succeeded"
    assert by_id["1"].setup_message == (
        f"OutSystems setup succeeded: upgraded {PRODUCT} {OLD} to {NEW} (role frontend)"
    )


def test_an_upgrade_or_delete_called_again_while_its_action_runs_follows_it(
    sim: SimulatorServer,
) -> None:
    """A host stopped after the POST and before recording the answer runs the activity again:
    it must neither fail on ARM's 409 nor start the action a second time."""
    _farm(capacity=3)
    _new_model(capacity=3)
    sim.configure({"latencyScale": 1.0})
    try:
        for name, ids, action in (
            ("begin_manual_upgrade", ["0"], "manualupgrade"),
            ("begin_delete_instances", ["2"], "delete"),
        ):
            started = Operation.from_json(activity(name)(_instances_request(ids)))
            assert started.status == "InProgress", started
            since = _last_seq(sim)
            again = Operation.from_json(activity(name)(_instances_request(ids)))
            assert again.status == "InProgress", again
            assert _posts(sim, since, action) == []
            sim.fast_forward(7200)
            assert _until_done(again.to_json()).succeeded
    finally:
        sim.configure({"latencyScale": 0.0})
    instances = _instances()
    assert [i.instance_id for i in instances] == ["0", "1"]
    assert [i.latest_model_applied for i in instances] == [True, False]


def test_an_unknown_instance_fails_the_upgrade_with_arms_code(sim: SimulatorServer) -> None:
    _farm()
    _new_model()
    operation = Operation.from_json(activity("begin_manual_upgrade")(_instances_request(["7"])))
    assert operation.status == "Failed"
    assert operation.error is not None
    assert operation.error.code == "InvalidParameter"


# --- begin_delete_instances -------------------------------------------------------------------


def test_temporary_instances_are_deleted_once_and_the_capacity_follows(
    sim: SimulatorServer,
) -> None:
    _farm(capacity=3)
    since = _last_seq(sim)
    operation = _until_done(activity("begin_delete_instances")(_instances_request(["2"])))
    assert operation.succeeded, operation
    assert len(_posts(sim, since, "delete")) == 1
    assert [i.instance_id for i in _instances()] == ["0", "1"]
    live = get(VMSS, COMPUTE_API)
    assert live is not None
    assert live["sku"]["capacity"] == 2

    since = _last_seq(sim)
    again = Operation.from_json(activity("begin_delete_instances")(_instances_request(["2"])))
    assert again.succeeded
    assert _posts(sim, since, "delete") == []


# --- begin_run_command and read_action_result -------------------------------------------------


def test_the_front_end_modes_run_with_the_models_arguments(sim: SimulatorServer) -> None:
    _farm()
    assert _run("1", "Drain") == ActionOutcome(True, "OutSystems front-end drained")
    assert _run("1", "HoldDeployments").message == "OutSystems front-end holding deployments"
    assert _run("1", "Serve").message == "OutSystems front-end serving"


def test_a_front_end_whose_script_predates_the_modes_reports_no_success(
    sim: SimulatorServer,
) -> None:
    # The script as it was before the modes (docs/upgrades.md: its Run Command output then has
    # no `OutSystems front-end` line).
    _farm(script=b"param([ValidateSet('Setup', 'Resume', 'WatchTermination')][string]$Mode)")
    outcome = _run("0", "Drain")
    assert not outcome.succeeded
    assert "OutSystems front-end" not in outcome.message
    assert "Mode" in outcome.message


def test_run_command_on_a_scale_set_without_the_setup_extension_fails(
    sim: SimulatorServer,
) -> None:
    _farm()
    body = _scale_set(OLD)
    body["properties"]["virtualMachineProfile"]["extensionProfile"] = {"extensions": []}
    put(VMSS, COMPUTE_API, body)
    answer = activity("begin_run_command")(
        {
            "subscriptionId": SUBSCRIPTION,
            "solutionId": SOLUTION,
            "scaleSet": VMSS,
            "instanceId": "0",
            "mode": "Drain",
        }
    )
    operation = Operation.from_json(answer)
    assert operation.status == "Failed"


def test_run_command_while_a_script_runs_answers_arms_conflict_for_the_orchestration(
    sim: SimulatorServer,
) -> None:
    """ARM refuses a second script while one runs on the VM: 409 `Conflict`, "Run command
    extension execution is in progress. Please wait for completion before invoking a run
    command." (as Azure CLI users quote it: Azure/azure-cli#32305). The activity answers it as
    a failed operation with ARM's code, so that the upgrade waits for the script (up to Run
    Command's 90 minutes) instead of failing after Durable's few retries."""
    from outsystems.upgrade import run_command_busy

    _farm()
    request = {
        "subscriptionId": SUBSCRIPTION,
        "solutionId": SOLUTION,
        "scaleSet": VMSS,
        "instanceId": "0",
        "mode": "Drain",
    }
    sim.configure({"latencyScale": 1.0})
    try:
        first = Operation.from_json(activity("begin_run_command")(request))
        assert first.status == "InProgress"
        refused = Operation.from_json(activity("begin_run_command")(request))
        assert refused.status == "Failed"
        assert refused.error is not None
        assert refused.error.code == "Conflict"
        assert "in progress" in refused.error.message
        assert run_command_busy(refused)
        sim.fast_forward(7200)
        assert _until_done(first.to_json()).succeeded
        again = Operation.from_json(activity("begin_run_command")(request))
        assert not run_command_busy(again)
    finally:
        sim.configure({"latencyScale": 0.0})


def test_the_front_end_script_is_the_models_invocation_with_a_mode() -> None:
    from arm.upgrade import front_end_script, setup_invocation

    command = _setup_extension(NEW)["properties"]["settings"]["commandToExecute"]
    script = front_end_script(command, "Drain")
    invocation = command.split("& ", 1)[1].split("; exit $LASTEXITCODE", 1)[0]
    assert script == f"& {invocation} -Mode 'Drain'; exit $LASTEXITCODE"
    # An earlier -Mode in the model's command is replaced, not repeated.
    again = front_end_script(script.replace("; exit $LASTEXITCODE", ""), "Serve")
    assert again.count("-Mode") == 1
    assert again.endswith("-Mode 'Serve'; exit $LASTEXITCODE")
    names = [name for name, _ in setup_invocation(command)]
    assert names[:3] == ["Role", "PlatformVersion", "LifetimeVersion"]


# --- the gateway -------------------------------------------------------------------------------


def test_a_drained_front_end_is_down_in_the_backend_health(sim: SimulatorServer) -> None:
    _farm()
    first, second = _instances()
    assert _backend_health() == {first.private_ip: "Up", second.private_ip: "Up"}
    _run(second.instance_id, "Drain")
    assert _backend_health() == {first.private_ip: "Up", second.private_ip: "Down"}


def _routes() -> tuple[set[str], dict[str, list[str]]]:
    live = get(GATEWAY, NETWORK_API)
    assert live is not None
    properties = live["properties"]
    rules = {
        str(r["properties"]["backendAddressPool"]["id"]).rsplit("/", 1)[-1]
        for r in properties["requestRoutingRules"]
        if r["properties"].get("backendAddressPool")
    }
    pools = {
        str(p["name"]): [a["ipAddress"] for a in p["properties"].get("backendAddresses") or []]
        for p in properties["backendAddressPools"]
    }
    return rules, pools


def test_the_gateway_switches_to_one_set_in_one_put_and_back(sim: SimulatorServer) -> None:
    _farm()
    first, second = _instances()
    assert first.private_ip is not None
    since = _last_seq(sim)
    operation = _switch([first.private_ip])
    assert operation.succeeded, operation
    puts = [r for r in sim.requests(since) if r["method"] == "PUT"]
    assert [r["path"] for r in puts] == [GATEWAY.lower()]
    rules, pools = _routes()
    assert rules == {"upgrade-servers"}
    assert pools["upgrade-servers"] == [first.private_ip]
    assert second.private_ip not in pools["upgrade-servers"]
    health = _backend_health()
    assert health[first.private_ip] == "Up"

    # The same switch again writes nothing.
    since = _last_seq(sim)
    assert _switch([first.private_ip]).succeeded
    assert [r for r in sim.requests(since) if r["method"] == "PUT"] == []

    assert _switch(None).succeeded
    rules, pools = _routes()
    assert rules == {"frontends"}
    assert "upgrade-servers" not in pools


def test_a_switch_run_again_while_its_put_is_applied_follows_it(sim: SimulatorServer) -> None:
    _farm()
    first, _ = _instances()
    assert first.private_ip is not None
    request = {
        "subscriptionId": SUBSCRIPTION,
        "solutionId": SOLUTION,
        "gatewayId": GATEWAY,
        "addresses": [first.private_ip],
    }
    sim.configure({"latencyScale": 1.0})
    try:
        started = Operation.from_json(activity("begin_switch_gateway")(request))
        assert started.status == "InProgress"
        since = _last_seq(sim)
        again = Operation.from_json(activity("begin_switch_gateway")(request))
        assert again.status == "InProgress"  # not "routes so already": ARM is still applying it
        assert [r for r in sim.requests(since) if r["method"] == "PUT"] == []
        sim.fast_forward(3600)
        assert _until_done(again.to_json()).succeeded
    finally:
        sim.configure({"latencyScale": 0.0})


# --- begin_database_copy ----------------------------------------------------------------------


def _database() -> dict[str, Any]:
    """The prod platform database on its server; the request of its restore point's copy."""
    put(GROUP_ID, RESOURCES_API, {"location": bodies.LOCATION})
    put(SQL, SQL_API, bodies.sql_server())
    put(DATABASE, SQL_API, bodies.sql_database())
    return {
        "subscriptionId": SUBSCRIPTION,
        "solutionId": SOLUTION,
        "sourceDatabaseId": DATABASE,
        "copyName": "acme-prod-db-pre-11-32-0",
    }


def test_the_restore_point_is_a_copy_of_the_database_kept_on_a_rerun(
    sim: SimulatorServer,
) -> None:
    request = _database()
    operation = _until_done(activity("begin_database_copy")(request))
    assert operation.succeeded, operation
    assert operation.resource_id == f"{SQL}/databases/acme-prod-db-pre-11-32-0"
    copy = get(operation.resource_id, SQL_API)
    assert copy is not None
    since = _last_seq(sim)
    again = Operation.from_json(activity("begin_database_copy")(request))
    assert (again.status, again.kept) == ("Succeeded", "the copy exists")
    assert [r for r in sim.requests(since) if r["method"] == "PUT"] == []


def test_a_copy_called_again_while_it_is_made_is_followed_not_started_twice(
    sim: SimulatorServer,
) -> None:
    """A database reports no provisioningState, only its `status` (Azure/azure-rest-api-specs
    Databases.json, `DatabaseStatus`; azure-mgmt-sql 4.0.0): a copy still `Creating` is neither
    reported done nor started again. The activity run twice (its first answer lost) answers an
    operation followed by the database's status, however long the copy takes (minutes to
    hours in Azure), instead of failing after Durable's few retries."""
    request = _database()
    sim.configure({"latencyScale": 1.0})
    try:
        started = Operation.from_json(activity("begin_database_copy")(request))
        assert started.status == "InProgress"
        since = _last_seq(sim)
        again = Operation.from_json(activity("begin_database_copy")(request))
        assert (again.status, again.poll_mode) == ("InProgress", "resource")
        assert again.resource_id == started.resource_id
        assert [r for r in sim.requests(since) if r["method"] == "PUT"] == []
        checked = _check(again)
        assert checked.status == "InProgress"
        sim.fast_forward(3600)
        assert _check(checked).status == "Succeeded"
        kept = Operation.from_json(activity("begin_database_copy")(request))
        assert (kept.status, kept.kept) == ("Succeeded", "the copy exists")
    finally:
        sim.configure({"latencyScale": 0.0})


def test_a_copy_of_a_missing_database_fails(sim: SimulatorServer) -> None:
    put(GROUP_ID, RESOURCES_API, {"location": bodies.LOCATION})
    put(SQL, SQL_API, bodies.sql_server())
    request = {
        "subscriptionId": SUBSCRIPTION,
        "solutionId": SOLUTION,
        "sourceDatabaseId": f"{SQL}/databases/nothing",
        "copyName": "nothing-pre-11-32-0",
    }
    operation = _until_done(activity("begin_database_copy")(request))
    assert operation.status == "Failed"


# --- the role -----------------------------------------------------------------------------------

UPGRADE_ACTIONS = {
    "Microsoft.Compute/virtualMachineScaleSets/manualUpgrade/action": "manual upgrade",
    "Microsoft.Compute/virtualMachineScaleSets/delete/action": "delete instances",
    "Microsoft.Compute/virtualMachineScaleSets/virtualMachines/runCommand/action": "run command",
    "Microsoft.Network/applicationGateways/backendhealth/action": "backend health",
}


def _attempt(what: str) -> Any:
    if what == "manual upgrade":
        _new_model()
        return activity("begin_manual_upgrade")(_instances_request(["0"]))
    if what == "delete instances":
        return activity("begin_delete_instances")(_instances_request(["1"]))
    if what == "run command":
        return activity("begin_run_command")(
            {
                "subscriptionId": SUBSCRIPTION,
                "solutionId": SOLUTION,
                "scaleSet": VMSS,
                "instanceId": "0",
                "mode": "Drain",
            }
        )
    return activity("begin_backend_health")(
        {"subscriptionId": SUBSCRIPTION, "solutionId": SOLUTION, "gatewayId": GATEWAY}
    )


@pytest.mark.parametrize("action", sorted(UPGRADE_ACTIONS))
def test_each_upgrade_action_of_the_role_is_needed(sim: SimulatorServer, action: str) -> None:
    role = Permissions.load(ROLE)
    assert action in role.actions
    _farm()
    sim.set_permissions(role.without(action))
    operation = Operation.from_json(_attempt(UPGRADE_ACTIONS[action]))
    assert operation.status == "Failed"
    assert operation.error is not None
    assert operation.error.code == "AuthorizationFailed"
    assert action.lower() in operation.error.message.lower()


def test_the_switched_gateway_sends_back_nothing_arm_computes() -> None:
    from arm.upgrade import switched_gateway

    identity = (
        f"{GROUP_ID}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/acme-appgw-id"
    )
    live = {
        "id": GATEWAY,
        "etag": 'W/"1"',
        "identity": {
            "type": "UserAssigned",
            "userAssignedIdentities": {identity: {"principalId": "p", "clientId": "c"}},
        },
        "properties": {
            "provisioningState": "Succeeded",
            "resourceGuid": "g",
            "operationalState": "Running",
            "backendAddressPools": [
                {
                    "name": "frontends",
                    "etag": 'W/"1"',
                    "properties": {
                        "provisioningState": "Succeeded",
                        "backendIPConfigurations": [{"id": f"{VMSS}/virtualMachines/0/x"}],
                    },
                }
            ],
            "requestRoutingRules": [
                {"name": "https", "properties": {"backendAddressPool": {"id": OWN_POOL}}}
            ],
        },
    }
    body = switched_gateway(live, GATEWAY, ["10.0.2.5"])
    assert body is not None
    text = json.dumps(body)
    for computed in ("etag", "provisioningState", "resourceGuid", "operationalState"):
        assert computed not in text
    assert "backendIPConfigurations" not in text
    assert body["identity"]["userAssignedIdentities"] == {identity: {}}
    rule = body["properties"]["requestRoutingRules"][0]["properties"]
    assert rule["backendAddressPool"]["id"] == f"{GATEWAY}/backendAddressPools/upgrade-servers"


def test_the_scale_set_nics_are_listed_at_the_version_network_defines_them() -> None:
    """azure-mgmt-network 33.1.0 is generated from the REST specs: it lists a scale set's NICs
    at the one version the spec gives that operation, not at the provider's latest."""
    from urllib.parse import parse_qs, urlsplit

    from azure.mgmt.network.operations._operations import (
        build_network_interfaces_list_virtual_machine_scale_set_network_interfaces_request as build,
    )

    from arm.upgrade import VMSS_NIC_API

    request = build("acme-rg", "acme-prod-vmss", SUBSCRIPTION)
    assert parse_qs(urlsplit(request.url).query)["api-version"] == [VMSS_NIC_API]


# --- the balanced sequence on a farm the app deployed ------------------------------------------
#
# The farm of examples/spec-farm.json (shared and prod resources) applied by the deployment's own
# activity, with the simulator's OutSystems server model deciding each setup run (no decider of
# ours): the activities meet the topology's real gateway (HTTPS listener, Key Vault certificate,
# WAF policy, identity) and scale set, with the app's role only.

FARM_SEED = "upgrade-activity-seed"


def _farm_spec(version: str) -> dict[str, Any]:
    from outsystems.spec import parse_spec as parse

    body = json.loads((ROOT / "examples" / "spec-farm.json").read_text())
    body["platformVersion"] = version
    spec: dict[str, Any] = parse(
        SOLUTION,
        json.dumps(body).encode(),
        default_subscription_id=SUBSCRIPTION,
        managed_subscription_ids=(),
    ).to_json_dict()
    return spec


def _apply(spec: dict[str, Any], resource_id: str) -> Operation:
    answer = activity("begin_apply_resource")(
        {"spec": spec, "resourceId": resource_id, "nonce": "n-1", "rerun": 0}
    )
    return _until_done(answer)


@pytest.fixture
def farm(simulator: SimulatorServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    """The farm deployed at the old version; the ids the upgrade works on. No decider of the
    tests above: the simulator's own model of the setup script decides."""
    from outsystems.deployment import graph_of
    from outsystems.resource_types import APP_GATEWAY, SQL_DATABASE, VM_EXTENSION

    with app_on(
        simulator,
        monkeypatch,
        PLATFORM_KEY_SEED=FARM_SEED,
        ALERT_WEBHOOK_URL="https://ops.example.com/api/alerts?code=k",
    ):
        spec = _farm_spec(OLD)
        _, graph = graph_of(spec)
        for environment in ("shared", "prod"):
            for resource in graph.for_environment(environment):
                operation = _apply(spec, resource.id)
                assert operation.succeeded, (resource.id, operation.error)
        prod = graph.for_environment("prod")
        yield {
            "scaleSet": next(r.id for r in prod if r.type == SCALE_SET),
            "gateway": next(r.id for r in prod if r.type == APP_GATEWAY),
            "controllerSetup": next(r.id for r in prod if r.type == VM_EXTENSION),
            "database": next(
                r.id for r in prod if r.type == SQL_DATABASE and r.id.endswith("-prod-db")
            ),
        }


def _farm_instances(scale_set: str) -> dict[str, ScaleSetInstance]:
    return {i.instance_id: i for i in _instances(scale_set)}


def _farm_upgrade(scale_set: str, ids: list[str]) -> Operation:
    return _until_done(activity("begin_manual_upgrade")(_instances_request(ids, scale_set)))


def test_the_balanced_upgrade_of_a_deployed_farm_step_by_step(farm: dict[str, str]) -> None:
    scale_set, gateway = farm["scaleSet"], farm["gateway"]
    copy = _until_done(
        activity("begin_database_copy")(
            {
                "subscriptionId": SUBSCRIPTION,
                "solutionId": SOLUTION,
                "sourceDatabaseId": farm["database"],
                "copyName": "acme-prod-db-pre-11-32-0",
            }
        )
    )
    assert copy.succeeded, copy
    instances = _farm_instances(scale_set)
    updating, loaded = instances["0"], instances["1"]
    assert updating.private_ip
    assert loaded.private_ip
    installed = f"OutSystems setup succeeded: installed {PRODUCT} {OLD} (role frontend)"
    assert {i.setup_message for i in instances.values()} == {installed}

    assert _switch([loaded.private_ip], gateway).succeeded
    assert _run("0", "Drain", scale_set).message == "OutSystems front-end drained"
    assert _run("1", "HoldDeployments", scale_set).message == (
        "OutSystems front-end holding deployments"
    )
    new = _farm_spec(NEW)
    assert _apply(new, farm["controllerSetup"]).succeeded
    assert _apply(new, scale_set).succeeded
    assert [i.latest_model_applied for i in _farm_instances(scale_set).values()] == [False, False]

    assert _farm_upgrade(scale_set, ["0"]).succeeded
    after = _farm_instances(scale_set)
    assert after["0"].latest_model_applied
    assert after["0"].setup_status == "Succeeded"
    assert after["0"].setup_message == (
        f"OutSystems setup succeeded: upgraded {PRODUCT} {OLD} to {NEW} (role frontend)"
    )
    assert not after["1"].latest_model_applied
    assert _run("0", "Serve", scale_set).message == "OutSystems front-end serving"
    assert _switch([updating.private_ip], gateway).succeeded
    assert _backend_health(gateway)[updating.private_ip] == "Up"

    assert _run("1", "Drain", scale_set).message == "OutSystems front-end drained"
    assert _farm_upgrade(scale_set, ["1"]).succeeded
    assert _run("1", "Serve", scale_set).message == "OutSystems front-end serving"
    assert _switch(None, gateway).succeeded
    health = _backend_health(gateway)
    assert (health[updating.private_ip], health[loaded.private_ip]) == ("Up", "Up")
    final = _farm_instances(scale_set)
    assert all(i.latest_model_applied and i.setup_status == "Succeeded" for i in final.values())


def test_a_health_gate_failing_on_a_deployed_farm_names_the_instance(
    simulator: SimulatorServer, farm: dict[str, str]
) -> None:
    scale_set = farm["scaleSet"]
    failing = _farm_instances(scale_set)["1"]
    assert failing.private_ip is not None
    new = _farm_spec(NEW)
    assert _apply(new, farm["controllerSetup"]).succeeded
    assert _apply(new, scale_set).succeeded
    simulator.fail_health_gate(failing.private_ip, "HTTP 503")
    operation = _farm_upgrade(scale_set, ["0", "1"])
    assert operation.status == "Failed"
    instances = _farm_instances(scale_set)
    assert instances["0"].setup_status == "Succeeded"
    assert instances["1"].setup_status == "Failed"
    assert instances["1"].name == failing.name
    assert instances["1"].setup_message is not None
    assert instances["1"].setup_message.startswith(
        "OutSystems setup failed: health check: /servicecenter/_ping.aspx failed for 10 minutes "
        "after the upgrade (HTTP 503)"
    )

"""The upgrade orchestration (`orchestrators/upgrade.py`) by history replay.

`upgrade_platform` and the `deploy_environment` runs it starts go through the SDK's replay
engine (`tests/support/replay.py`) against fake activities standing for ARM and the servers: a
scale set whose instances run a version, take the model's version on a manual upgrade and pass
or fail the setup script's health gate; a gateway whose traffic goes to some addresses; Run
Command answering the script's last line. The fake checks, at every gateway change, what
OutSystems' balanced upgrade requires (OutSystems/docs-product
src/setup-infra-platform/upgrade/balanced-upgrade-highly-loaded-farms.md, as recorded in
`tests/oracles/outsystems-upgrade.json`): traffic never to two versions at once, never to fewer
than the scale set's minimum, and never to a server being upgraded. The script's lines are
`docs/upgrades.md`'s ("What the script reports"). The whole app on the local host with the ARM
simulator is `tests/e2e/test_upgrade.py`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from outsystems.messages import SpecDocument, UpgradeProgress, UpgradeRequest
from outsystems.names import PlatformNames
from outsystems.spec import PlatformSpec, parse_spec
from outsystems.upgrade import FARM_STEPS, UpgradeTargets
from tests.support.functions import orchestrator
from tests.support.replay import Outcome, Replay

ROOT = Path(__file__).resolve().parents[2]
SUBSCRIPTION = "11111111-2222-3333-4444-555555555555"
INSTANCE = "platform-acme"
TUNING = {"pollSeconds": 5.0, "retrySeconds": 5.0, "timeoutScale": 1.0, "backoffScale": 1.0}
OLD_BUILD, NEW_BUILD = "11.32.0.5", "11.33.0.2"
OLD_LIFETIME, NEW_LIFETIME = "11.26.0.1", "11.27.0.3"


def spec_json(platform: str, lifetime: str = "11.26.0", **changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = json.loads((ROOT / "examples" / "spec-demo.json").read_text())
    body.update(platformVersion=platform, lifetimeVersion=lifetime, **changes)
    return parse_spec("acme", body, default_subscription_id=SUBSCRIPTION).to_json_dict()


OLD = spec_json("11.32.0")
NEW = spec_json("11.33.0", "11.27.0")
NEW_SPEC = PlatformSpec.from_json_dict(NEW)
NAMES = PlatformNames.of("acme", SUBSCRIPTION, "acme-rg")
PROD = UpgradeTargets.of(NEW_SPEC, "prod")


def succeeded_line(role: str, old: str, new: str, product: str = "Platform Server") -> str:
    return f"OutSystems setup succeeded: upgraded {product} {old} to {new} (role {role})"


@dataclass
class Server:
    instance_id: str
    version: str
    latest: bool = True
    status: str = "Succeeded"
    message: str = ""

    @property
    def name(self) -> str:
        return f"acme-fe{int(self.instance_id):06d}"

    @property
    def ip(self) -> str:
        return f"10.0.3.{10 + int(self.instance_id)}"


@dataclass
class Platform:
    """Fake activities: ARM and the servers as the upgrade sees them."""

    minimum: int = 2
    capacity: int = 2
    #: Instances whose health gate fails on their manual upgrade (with this message).
    gate_fails: dict[str, str] = field(default_factory=dict)
    #: Addresses the gateway reports Unhealthy.
    unhealthy: set[str] = field(default_factory=set)
    #: Servers (VM names) whose setup extension fails.
    setup_fails: set[str] = field(default_factory=set)
    #: Instances whose first manual upgrade ends 3010 (a reboot the script scheduled).
    reboot_once: set[str] = field(default_factory=set)
    #: Instances whose Run Command prints no front-end line (an older script).
    old_script: set[str] = field(default_factory=set)
    #: New instances (the temporary ones) fail their setup.
    new_instances_fail: bool = False
    servers: dict[str, Server] = field(default_factory=dict)
    model: str = OLD_BUILD
    controller: str = OLD_BUILD
    #: Addresses the gateway sends traffic to (None: the scale set's pool, every instance).
    traffic: tuple[str, ...] | None = None
    modes: dict[str, str] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)
    copies: list[str] = field(default_factory=list)
    applied: list[str] = field(default_factory=list)
    manual_upgrades: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    switches: list[tuple[str, ...] | None] = field(default_factory=list)
    signals: list[tuple[str, Any]] = field(default_factory=list)
    results: dict[str, dict[str, Any]] = field(default_factory=dict)
    polls: dict[str, int] = field(default_factory=dict)
    #: Instances that refuse this many Run Commands (a script of an earlier run still runs).
    busy_runs: dict[str, int] = field(default_factory=dict)
    run_commands: list[tuple[str, str]] = field(default_factory=list)
    #: How many checks a database copy stays running, and ARM's `Retry-After` on it (seconds).
    copy_polls: int = 1
    copy_retry_after: float | None = None
    _next: int = 0

    def __post_init__(self) -> None:
        for _ in range(self.capacity):
            self.add_server(OLD_BUILD)

    def add_server(self, version: str) -> Server:
        server = Server(str(len(self.servers)), version)
        server.message = (
            f"OutSystems setup succeeded: installed Platform Server {version} (role frontend)"
        )
        self.servers[server.instance_id] = server
        return server

    # --- operations ----------------------------------------------------------------------

    def operation(
        self, resource_id: str, *, polls: int = 0, error: dict[str, str] | None = None
    ) -> dict[str, Any]:
        self._next += 1
        url = f"http://arm/operations/{self._next}"
        self.polls[url] = polls
        status = "InProgress" if polls else ("Failed" if error else "Succeeded")
        self.results.setdefault(url, {})
        self.results[url]["error"] = error
        return {
            "resourceId": resource_id,
            "method": "POST",
            "status": status,
            "apiVersion": "2024-07-01",
            "pollMode": "async-operation" if polls else "none",
            "pollUrl": url,
            "error": None if polls else error,
        }

    def check(self, request: dict[str, Any]) -> list[dict[str, Any]]:
        answers = []
        for operation in request["operations"]:
            url = operation["pollUrl"]
            if url is None or url not in self.polls:
                answers.append({**operation, "status": "Succeeded"})
                continue
            self.polls[url] -= 1
            if self.polls[url] > 0:
                answers.append(operation)
            else:
                error = self.results[url].get("error")
                answers.append(
                    {**operation, "status": "Failed" if error else "Succeeded", "error": error}
                )
        return answers

    # --- the deployment's activities (deploy_environment applying an extension or model) ---

    def apply(self, request: dict[str, Any]) -> dict[str, Any]:
        resource_id = request["resourceId"]
        self.applied.append(resource_id)
        target = NEW_SPEC.platform_version
        if resource_id == PROD.scale_set:
            # Never the new version in the model before the controller (docs/upgrades.md).
            assert self.controller == NEW_BUILD
            # A new model leaves every instance behind it; the same model again changes nothing.
            if self.model != NEW_BUILD:
                for server in self.servers.values():
                    server.latest = False
            self.model = NEW_BUILD
        vm = (
            resource_id.split("/virtualMachines/")[1].split("/")[0]
            if "/virtualMachines/" in resource_id
            else ""
        )
        if vm in self.setup_fails:
            error = {
                "code": "VMExtensionProvisioningError",
                "message": "OutSystems setup failed: boom (line 7)",
            }
            return {**self.operation(resource_id, error=error), "method": "PUT"}
        if vm == NAMES.vm("prod"):
            assert target == "11.33.0"
            self.controller = NEW_BUILD
        return {**self.operation(resource_id), "method": "PUT"}

    def apply_batch(self, request: dict[str, Any]) -> list[dict[str, Any]]:
        """`begin_apply_resources` (walk version 4): `apply` for each item, in order."""
        return [self.apply({**request, **item}) for item in request["items"]]

    def publish(self, event: dict[str, Any]) -> str:
        self.events.append(event)
        return str(event["id"])

    # --- the upgrade's activities --------------------------------------------------------

    def copy(self, request: dict[str, Any]) -> dict[str, Any]:
        self.copies.append(request["copyName"])
        operation = self.operation(request["sourceDatabaseId"], polls=self.copy_polls)
        if self.copy_retry_after is not None:
            operation["retryAfter"] = self.copy_retry_after
        return operation

    def instances(self, request: dict[str, Any]) -> list[dict[str, Any]]:
        assert request["scaleSet"] == PROD.scale_set
        return [
            {
                "instanceId": s.instance_id,
                "name": s.name,
                "privateIp": s.ip,
                "latestModelApplied": s.latest,
                "provisioningState": "Succeeded",
                "setupStatus": s.status,
                "setupMessage": "some output\n" + s.message,
            }
            for s in self.servers.values()
        ]

    def set_capacity(self, request: dict[str, Any]) -> dict[str, Any]:
        while len(self.servers) < request["capacity"]:
            server = self.add_server(self.model)
            if self.new_instances_fail:
                server.status = "Failed"
                server.message = "OutSystems setup failed: SQL unreachable (line 300)"
        return self.operation(request["scaleSet"], polls=1)

    def run_command(self, request: dict[str, Any]) -> dict[str, Any]:
        server = self.servers[request["instanceId"]]
        mode = request["mode"]
        self.run_commands.append((server.instance_id, mode))
        if self.busy_runs.get(server.instance_id, 0) > 0:
            self.busy_runs[server.instance_id] -= 1
            # ARM's refusal while a script runs (Azure/azure-cli#32305: 409, code Conflict).
            error = {
                "code": "Conflict",
                "message": "Run command extension execution is in progress. Please wait for "
                "completion before invoking a run command.",
            }
            return self.operation(request["scaleSet"], error=error)
        operation = self.operation(request["scaleSet"], polls=1)
        line = {"Drain": "drained", "HoldDeployments": "holding deployments", "Serve": "serving"}
        if server.instance_id in self.old_script:
            message = "Install-OutSystems.ps1 : A parameter cannot be found that matches 'Mode'."
        else:
            message = f"preflight ok\nOutSystems front-end {line[mode]}"
            self.modes[server.instance_id] = mode
        self.results[operation["pollUrl"]]["outcome"] = {"succeeded": True, "message": message}
        return operation

    def manual_upgrade(self, request: dict[str, Any]) -> dict[str, Any]:
        served = (
            self.traffic if self.traffic is not None else tuple(s.ip for s in self.servers.values())
        )
        for instance_id in request["instanceIds"]:
            server = self.servers[instance_id]
            # Never upgrade a server the gateway sends traffic to, nor one not drained.
            assert server.ip not in served, f"{server.name} is upgraded while serving"
            assert self.modes.get(instance_id) == "Drain"
            self.manual_upgrades.append(instance_id)
            server.latest = True
            if instance_id in self.reboot_once:
                self.reboot_once.discard(instance_id)
                server.status = "Failed"
                server.message = (
                    "OutSystems setup not finished: reboot pending (hosting bundle); "
                    "apply the extension again later"
                )
                continue
            if instance_id in self.gate_fails:
                server.status = "Failed"
                server.message = (
                    f"OutSystems setup failed: {self.gate_fails[instance_id]} (line 2270)"
                )
                continue
            old = server.version
            server.version = self.model
            server.status = "Succeeded"
            server.message = succeeded_line("frontend", old, self.model)
        return self.operation(request["scaleSet"], polls=2)

    def delete(self, request: dict[str, Any]) -> dict[str, Any]:
        for instance_id in request["instanceIds"]:
            self.deleted.append(instance_id)
            del self.servers[instance_id]
        return self.operation(request["scaleSet"], polls=1)

    def switch(self, request: dict[str, Any]) -> dict[str, Any]:
        addresses = request["addresses"]
        self.traffic = None if addresses is None else tuple(addresses)
        self.switches.append(self.traffic)
        served = [s for s in self.servers.values() if self.traffic is None or s.ip in self.traffic]
        # balanced-upgrade: the load balancer sends traffic to one set, one version, and that
        # set carries the load (at least the scale set's minimum).
        assert len({s.version for s in served}) == 1, [(s.name, s.version) for s in served]
        assert len(served) >= self.minimum
        assert all(self.modes.get(s.instance_id) != "Drain" for s in served) or addresses is None
        return self.operation(request["gatewayId"], polls=1)

    def backend_health(self, request: dict[str, Any]) -> dict[str, Any]:
        operation = self.operation(request["gatewayId"], polls=1)
        health = {
            # ARM's values (applicationGateway.json 2024-05-01: Unknown, Up, Down, Partial,
            # Draining).
            s.ip: "Down" if s.ip in self.unhealthy else "Up"
            for s in self.servers.values()
        }
        self.results[operation["pollUrl"]]["outcome"] = {"succeeded": True, "health": health}
        return operation

    def read_result(self, operation: dict[str, Any]) -> dict[str, Any]:
        outcome: dict[str, Any] = self.results[operation["pollUrl"]]["outcome"]
        return outcome

    def entity(self, entity_id: str, operation: str, value: Any) -> Any:
        self.signals.append((operation, value))
        return None

    # --- running it -----------------------------------------------------------------------

    def run(
        self,
        *,
        approvals: tuple[str, ...] = ("dev", "test", "prod"),
        events: list[tuple[str, Any]] | None = None,
        soak: float | None = None,
        resumed: dict[str, Any] | None = None,
        previous: dict[str, Any] = OLD,
        spec: dict[str, Any] = NEW,
    ) -> Outcome:
        request = UpgradeRequest(
            operation_id="op-2" if resumed else "op-1",
            spec=SpecDocument(spec),
            previous=SpecDocument(previous),
            order=("dev", "test", "prod"),
            soak_seconds=soak,
            resumed=None if resumed is None else UpgradeProgress.from_json(resumed),
        ).to_json()
        request["tuning"] = TUNING
        raised = (
            events
            if events is not None
            else [("UpgradeApproved", {"environment": env, "by": "ops"}) for env in approvals]
        )
        replay = Replay(
            orchestrator("upgrade_platform"),
            request,
            name="upgrade_platform",
            instance_id=INSTANCE,
            activities={
                "begin_apply_resource": self.apply,
                "begin_apply_resources": self.apply_batch,
                "check_operations": self.check,
                "publish_event": self.publish,
                "begin_database_copy": self.copy,
                "read_scale_set_instances": self.instances,
                "set_scale_set_capacity": self.set_capacity,
                "begin_run_command": self.run_command,
                "begin_manual_upgrade": self.manual_upgrade,
                "begin_delete_instances": self.delete,
                "begin_switch_gateway": self.switch,
                "begin_backend_health": self.backend_health,
                "read_action_result": self.read_result,
            },
            entity=self.entity,
            orchestrators={"deploy_environment": orchestrator("deploy_environment")},
            events=list(raised),
            follow_continue=True,
        )
        return replay.run()

    def event_types(self) -> list[str]:
        return [e["type"].removeprefix("outsystems.upgrade.") for e in self.events]


def environments(outcome: Outcome) -> dict[str, str]:
    return {e["environment"]: e["state"] for e in outcome.output["environments"]}


def test_a_farm_is_upgraded_lifetime_first_with_approvals_and_the_balanced_switch() -> None:
    platform = Platform()
    outcome = platform.run()
    assert outcome.error is None
    assert outcome.output["state"] == "Succeeded"
    assert environments(outcome) == dict.fromkeys(("life", "dev", "test", "prod"), "Succeeded")
    # LifeTime first (upgrade-platform.md), then the order; a restore point before each.
    assert platform.copies == [
        "acme-life-db-pre-11-33-0",
        "acme-dev-db-pre-11-33-0",
        "acme-test-db-pre-11-33-0",
        "acme-prod-db-pre-11-33-0",
    ]
    extensions = [a for a in platform.applied if a.endswith("/extensions/outsystems-setup")]
    assert [a.split("/virtualMachines/")[1].split("/")[0] for a in extensions] == [
        "acme-life-vm",
        "acme-dev-vm",
        "acme-test-vm",
        "acme-prod-vm",
    ]
    # A pause before each environment after LifeTime, ended by its approval.
    types = platform.event_types()
    assert types[0] == "started"
    assert types[-1] == "succeeded"
    assert types.count("paused") == types.count("approved") == 3
    paused = [e["data"]["awaiting"] for e in platform.events if e["type"].endswith("paused")]
    assert paused == ["dev", "test", "prod"]
    # The scaler is held while the farm is upgraded, and released.
    assert [op for op, _ in platform.signals] == ["hold", "release"]
    assert {v["holder"] for _, v in platform.signals} == {"op-1"}
    # Two sets of the minimum: two temporary instances (at the old version) were added to the
    # loaded set and deleted at the end; each instance was upgraded once.
    assert sorted(platform.deleted) == ["2", "3"]
    assert sorted(platform.manual_upgrades) == ["0", "1", "2", "3"]
    assert sorted(platform.servers) == ["0", "1"]
    assert {s.version for s in platform.servers.values()} == {NEW_BUILD}
    # Gateway: the loaded set, then the updating set (one PUT each), then the pool again.
    loaded = ("10.0.3.12", "10.0.3.13")
    updating = ("10.0.3.10", "10.0.3.11")
    assert platform.switches == [loaded, updating, None]
    prod = outcome.output["environments"][3]
    assert prod["stepsDone"] == prod["stepsTotal"] == len(FARM_STEPS)
    assert prod["restorePoint"]["databaseId"].endswith("/databases/acme-prod-db-pre-11-33-0")
    groups = {s["name"]: s["group"] for s in prod["servers"]}
    assert (
        groups
        == {"acme-prod-vm": "updating", "acme-fe000000": "updating", "acme-fe000001": "updating"}
        | {}
    )
    assert all(s["state"] == "Succeeded" for s in prod["servers"])
    # The custom status followed the upgrade (awaiting an approval at some point).
    assert any(
        s and s.get("state") == "AwaitingApproval" and s["awaiting"] == "prod"
        for s in outcome.statuses
    )
    assert outcome.status == outcome.output
    # A new generation after each environment but the last: no episode replays the history of
    # the environments before (the farm's own is the longest).
    assert outcome.generations == 4
    continued = [
        c.input for c in outcome.calls if c.name == "continue_as_new" and "resumed" in c.input
    ]
    assert [c["resumed"]["operationId"] for c in continued] == ["op-1"] * 3
    assert [e["type"] for e in platform.events].count("outsystems.upgrade.started") == 1


def test_the_soak_time_ends_a_pause_without_an_approval() -> None:
    platform = Platform()
    outcome = platform.run(events=[], soak=3600)
    assert outcome.output["state"] == "Succeeded"
    approved = [e["data"] for e in platform.events if e["type"].endswith("approved")]
    assert [a["soakEnded"] for a in approved] == [True, True, True]
    waiting = [c.status for c in outcome.calls if c.kind == "wait"]
    life = outcome.output["environments"][0]
    first = next(s for s in waiting if s["awaiting"] == "dev")
    # The soak runs from the end of the environment before.
    assert first["resumesAt"] is not None
    from datetime import datetime, timedelta

    assert datetime.fromisoformat(first["resumesAt"]) == datetime.fromisoformat(
        life["endedAt"]
    ) + timedelta(seconds=3600)


def test_an_approval_of_another_environment_is_ignored() -> None:
    platform = Platform()
    events = [("UpgradeApproved", {"environment": e}) for e in ("test", "dev", "test", "prod")]
    outcome = platform.run(events=events)
    assert outcome.output["state"] == "Succeeded"
    waits = [c for c in outcome.calls if c.kind == "wait"]
    # Two waits before dev (the first answered by test's approval), one before each other.
    assert [c.status["awaiting"] for c in waits] == ["dev", "dev", "test", "prod"]
    # Nothing of dev started before dev's approval.
    dev_copy = next(
        c for c in outcome.calls if c.name == "begin_database_copy" and "dev" in c.input["copyName"]
    )
    assert dev_copy.at >= waits[1].at


def test_a_failed_health_gate_stops_the_upgrade_naming_the_instance() -> None:
    reason = "health check: /servicecenter/_ping.aspx failed for 10 minutes after the upgrade (503)"
    platform = Platform(gate_fails={"1": reason})
    outcome = platform.run()
    assert outcome.output["state"] == "Failed"
    assert environments(outcome)["prod"] == "Failed"
    prod = outcome.output["environments"][3]
    assert prod["error"]["resource"] == "acme-fe000001"
    assert reason in prod["error"]["message"]
    assert prod["step"] == "upgradeUpdating"
    failed = [s for s in prod["servers"] if s["state"] == "Failed"]
    assert [s["name"] for s in failed] == ["acme-fe000001"]
    # The other instance of the set is shown upgraded, the loaded set untouched.
    states = {s["name"]: (s["state"], s["version"]) for s in prod["servers"]}
    assert states["acme-fe000000"] == ("Succeeded", NEW_BUILD)
    assert states["acme-fe000002"] == states["acme-fe000003"] == ("Pending", OLD_BUILD)
    # The gateway still sends traffic to the loaded set (old version) only; nothing rolled back.
    assert platform.switches == [("10.0.3.12", "10.0.3.13")]
    assert [op for op, _ in platform.signals] == ["hold", "release"]
    [event] = [e for e in platform.events if e["type"].endswith("upgrade.failed")]
    assert event["subject"] == "acme/prod"
    assert event["data"]["server"] == "acme-fe000001"
    assert event["data"]["step"] == "upgradeUpdating"


def test_a_second_attempt_resumes_where_the_first_stopped() -> None:
    platform = Platform(gate_fails={"1": "health check failed"})
    first = platform.run()
    assert first.output["state"] == "Failed"
    platform.gate_fails.clear()
    copies, upgrades, applied = (
        len(platform.copies),
        len(platform.manual_upgrades),
        len(platform.applied),
    )
    platform.events.clear()
    second = platform.run(resumed=first.output, events=[])
    assert second.error is None
    assert second.output["state"] == "Succeeded"
    # LifeTime, dev and test are kept; prod keeps its restore point (no second copy) and is
    # not paused again (it was approved in the first attempt).
    assert platform.copies[copies:] == []
    assert "paused" not in platform.event_types()
    new_applied = platform.applied[applied:]
    assert not any("/acme-dev-vm/" in a or "/acme-life-vm/" in a for a in new_applied)
    # Only the instance that failed is upgraded again (the other updating one is at the target).
    assert platform.manual_upgrades[upgrades:].count("0") == 0
    assert platform.manual_upgrades[upgrades:].count("1") == 1
    assert sorted(platform.manual_upgrades).count("0") == 1
    assert {s.version for s in platform.servers.values()} == {NEW_BUILD}
    # The same temporary instances were used, and deleted at the end.
    assert sorted(platform.deleted) == ["2", "3"]
    assert sorted(platform.servers) == ["0", "1"]
    assert second.output["environments"][0] == first.output["environments"][0]


def test_an_unhealthy_updating_set_sends_traffic_back_to_the_loaded_set_and_stops() -> None:
    platform = Platform(unhealthy={"10.0.3.11"})
    outcome = platform.run()
    assert outcome.output["state"] == "Failed"
    prod = outcome.output["environments"][3]
    assert prod["error"]["code"] == "BackendUnhealthy"
    assert prod["error"]["resource"] == "acme-fe000001"
    loaded, updating = ("10.0.3.12", "10.0.3.13"), ("10.0.3.10", "10.0.3.11")
    assert platform.switches == [loaded, updating, loaded]
    # The loaded set was never drained nor upgraded.
    assert all(platform.modes[i] == "HoldDeployments" for i in ("2", "3"))
    assert sorted(platform.manual_upgrades) == ["0", "1"]
    assert [op for op, _ in platform.signals] == ["hold", "release"]


def test_a_failed_standalone_setup_stops_the_upgrade_naming_the_server() -> None:
    platform = Platform()
    platform.setup_fails.add("acme-dev-vm")
    outcome = platform.run()
    assert environments(outcome) == {
        "life": "Succeeded",
        "dev": "Failed",
        "test": "Pending",
        "prod": "Pending",
    }
    dev = outcome.output["environments"][1]
    assert dev["error"]["resource"] == "acme-dev-vm"
    assert "OutSystems setup failed: boom" in dev["error"]["message"]
    assert platform.copies == ["acme-life-db-pre-11-33-0", "acme-dev-db-pre-11-33-0"]
    assert platform.event_types()[-1] == "failed"


def test_a_front_end_with_an_older_script_fails_its_run_command() -> None:
    platform = Platform(old_script={"0"})
    outcome = platform.run()
    prod = outcome.output["environments"][3]
    assert prod["state"] == "Failed"
    assert prod["step"] == "drainUpdating"
    assert prod["error"]["resource"] == "acme-fe000000"
    assert "OutSystems front-end drained" in prod["error"]["message"]
    assert platform.manual_upgrades == []


def test_a_scale_set_too_small_for_two_sets_is_refused_before_any_change() -> None:
    tight = spec_json(
        "11.33.0",
        "11.27.0",
        environments={
            "prod": {
                "mode": "farm",
                "frontends": {"capacity": 2, "minCapacity": 2, "maxCapacity": 3},
            }
        },
    )
    platform = Platform()
    outcome = platform.run(previous=OLD, spec=tight)
    prod = outcome.output["environments"][3]
    assert (prod["state"], prod["error"]["code"]) == ("Failed", "CapacityTooLow")
    assert platform.switches == []
    assert len(platform.servers) == 2
    assert [op for op, _ in platform.signals] == ["hold", "release"]


def test_only_lifetime_is_upgraded_when_only_its_version_rises() -> None:
    platform = Platform()
    outcome = platform.run(spec=spec_json("11.32.0", "11.27.0"), events=[])
    assert environments(outcome) == {
        "life": "Succeeded",
        "dev": "Skipped",
        "test": "Skipped",
        "prod": "Skipped",
    }
    assert platform.copies == ["acme-life-db-pre-11-32-0"]
    assert "paused" not in platform.event_types()


@pytest.mark.parametrize("count", [5])
def test_a_large_farm_needs_no_temporary_instance(count: int) -> None:
    platform = Platform(capacity=count)
    outcome = platform.run()
    assert outcome.output["state"] == "Succeeded"
    assert platform.deleted == []
    assert platform.switches[0] == tuple(f"10.0.3.{10 + n}" for n in (2, 3, 4))
    assert platform.switches[1] == ("10.0.3.10", "10.0.3.11")


def test_a_schedule_window_in_force_raises_the_minimum_of_each_set() -> None:
    # spec-farm.json: minCapacity 2, and 4 on weekdays 08:00-19:00 Europe/Lisbon; the replay
    # runs on a Friday morning (tests/support/replay.py START), so each set needs 4.
    farm: dict[str, Any] = json.loads((ROOT / "examples" / "spec-farm.json").read_text())
    old = parse_spec(
        "acme", {**farm, "platformVersion": "11.32.0"}, default_subscription_id=SUBSCRIPTION
    )
    new = parse_spec(
        "acme", {**farm, "platformVersion": "11.33.0"}, default_subscription_id=SUBSCRIPTION
    )
    platform = Platform(minimum=4)
    outcome = platform.run(previous=old.to_json_dict(), spec=new.to_json_dict())
    assert outcome.output["state"] == "Succeeded"
    assert [len(s or ()) for s in platform.switches] == [4, 4, 0]
    assert sorted(platform.deleted, key=int) == ["2", "3", "4", "5", "6", "7"]


def test_an_instance_whose_setup_asked_for_a_reboot_is_upgraded_again() -> None:
    platform = Platform(reboot_once={"1"})
    outcome = platform.run()
    assert outcome.output["state"] == "Succeeded"
    # docs/upgrades.md: after a 3010 the same extension is applied again until 0 or 1.
    assert platform.manual_upgrades.count("1") == 2
    assert platform.manual_upgrades.count("0") == 1
    assert {s.version for s in platform.servers.values()} == {NEW_BUILD}


def test_temporary_instances_of_a_stopped_attempt_are_used_and_deleted_by_the_next() -> None:
    platform = Platform(new_instances_fail=True)
    first = platform.run()
    prod = first.output["environments"][3]
    assert (prod["state"], prod["error"]["code"]) == ("Failed", "TemporaryInstanceFailed")
    assert prod["error"]["resource"] == "acme-fe000002"
    assert platform.switches == []
    assert {s["name"]: s["temporary"] for s in prod["servers"]} == {
        "acme-fe000002": True,
        "acme-fe000003": True,
    }
    # Repaired (say, by hand); the next attempt adds none and deletes those two at the end.
    for server in platform.servers.values():
        server.status = "Succeeded"
    platform.new_instances_fail = False
    second = platform.run(resumed=first.output, events=[])
    assert second.output["state"] == "Succeeded"
    assert sorted(platform.deleted) == ["2", "3"]
    assert sorted(platform.servers) == ["0", "1"]


def test_an_activity_that_keeps_failing_stops_the_upgrade_and_releases_the_hold() -> None:
    platform = Platform()

    def broken(request: dict[str, Any]) -> dict[str, Any]:
        raise RuntimeError("ARM answered 503 ServiceUnavailable")

    platform.run_command = broken  # type: ignore[method-assign]
    outcome = platform.run()
    prod = outcome.output["environments"][3]
    assert (prod["state"], prod["error"]["code"]) == ("Failed", "ActivityFailed")
    assert "503" in prod["error"]["message"]
    assert [op for op, _ in platform.signals] == ["hold", "release"]


def _first_copy_waits(outcome: Any) -> list[float]:
    """The timers (seconds) between the first database copy and the next step after it."""
    calls = outcome.calls
    start = next(n for n, c in enumerate(calls) if c.name == "begin_database_copy") + 1
    waits: list[float] = []
    for call in calls[start:]:
        if call.kind == "timer":
            waits.append((call.input - call.at).total_seconds())
        elif call.name != "check_operations":
            break
    return waits


def test_a_running_step_is_polled_after_a_backoff_not_at_a_fixed_pace() -> None:
    outcome = Platform(copy_polls=6).run()
    assert outcome.output["state"] == "Succeeded"
    # The shortest interval (5 s here) first, each next 1.5 times the last, at most 4 times the
    # shortest: the deployment's policy (`outsystems.polling`), six checks for six polls.
    assert _first_copy_waits(outcome) == [5.0, 7.5, 11.25, 16.875, 20.0, 20.0]


def test_a_running_step_is_polled_after_arms_retry_after() -> None:
    # ARM's `Retry-After` is in seconds and tells the client when to poll again
    # (Azure/azure-resource-manager-rpc, v1.0/Addendum.md, "Asynchronous Operations").
    outcome = Platform(copy_polls=3, copy_retry_after=12.0).run()
    assert outcome.output["state"] == "Succeeded"
    assert _first_copy_waits(outcome) == [12.0, 12.0, 12.0]


def test_an_instance_still_running_a_script_is_waited_for_then_asked_again() -> None:
    platform = Platform(busy_runs={"0": 2})
    outcome = platform.run()
    assert outcome.error is None
    assert outcome.output["state"] == "Succeeded"
    # Refused twice while its earlier script ran, asked again after durable timers, then done.
    first = [mode for instance, mode in platform.run_commands if instance == "0"]
    assert first[:3] == [first[0]] * 3
    waits = [(c.input - c.at).total_seconds() for c in outcome.calls if c.kind == "timer"]
    assert [w for w in waits if w >= 30] == [30.0, 45.0]


def test_an_instance_busy_past_the_run_command_limit_stops_the_upgrade_naming_it() -> None:
    platform = Platform(busy_runs={"0": 10_000})
    outcome = platform.run()
    assert outcome.output["state"] == "Failed"
    prod = next(e for e in outcome.output["environments"] if e["environment"] == "prod")
    # ARM's code and words, and the server: what an on-call engineer needs to look at.
    assert prod["error"]["code"] == "Conflict"
    assert prod["error"]["message"].startswith("acme-fe000000: Conflict: Run command extension")
    # Asked again after 30 s, 45 s, ... up to 2 minutes apart, for Run Command's 90 minutes.
    asked = [mode for instance, mode in platform.run_commands if instance == "0"]
    # (the polls of running operations wait 20 s at most here: TUNING's 5 s, 4 times)
    waits = [
        w
        for c in outcome.calls
        if c.kind == "timer" and (w := (c.input - c.at).total_seconds()) >= 30
    ]
    assert waits[:5] == [30.0, 45.0, 67.5, 101.25, 120.0]
    assert sum(waits[: len(asked) - 1]) >= 90 * 60
    assert 40 < len(asked) < 60

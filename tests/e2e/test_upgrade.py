"""Acceptance of issue 17's upgrade on the local host + ARM simulator + Azurite.

A farm deployed at one version (Platform Server 11.32.0, LifeTime 11.25.2) is upgraded to the
next (11.33.0, 11.26.0) by a PUT of the same spec with the higher versions:

- LifeTime first, then dev, test, prod (`upgrade.order`'s default), with a pause awaiting the
  approval after each environment but the last (LifeTime included) (OutSystems/docs-product
  `src/setup-infra-platform/upgrade/upgrade-platform.md`: "LifeTime must always be the most
  up-to-date environment", then the environments in their staging order);
- the production farm upgraded the balanced way (docs-product
  `src/setup-infra-platform/upgrade/balanced-upgrade-highly-loaded-farms.md`: two sets of
  front-ends, the load balancer sending traffic to one set at a time): the gateway never serves
  two versions at once and never fewer servers than the scale set's minimum, checked before
  every ARM request the app makes (`upgrade_support.FarmWatch`; what the gateway serves is
  Azure's rule: the healthy members of the pool the routing rule names);
- a health gate failing on one instance (the setup script's `health check:` failure,
  `docs/upgrades.md`) stops the upgrade naming that instance; a second PUT resumes it to the
  end;
- an alert arriving while the upgrade holds the scale set is kept pending and applied after;
- SIGKILL of the host in the middle of the production upgrade: it resumes and completes, and no
  instance is upgraded twice (each manual upgrade naming an instance is recorded by the
  simulator's script model, `upgrade_support.ScriptRuns`).
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import requests

from localdev.armsim.server import SimulatorServer
from tests.e2e.scaling_support import (
    SCALE_SET_ID,
    SOLUTION,
    alert,
    capacity,
    farm_spec,
    post_alert,
    scaling,
    wait_for,
)
from tests.e2e.upgrade_support import FarmWatch, ScriptRuns, platform_state
from tests.support.azurite import Azurite
from tests.support.host_process import host_process, wait_terminal, write_settings
from tests.support.stack import TERMINAL, Stack, app_settings, running_stack

OLD = {"platformVersion": "11.32.0", "lifetimeVersion": "11.25.2"}
NEW = {"platformVersion": "11.33.0", "lifetimeVersion": "11.26.0"}
GATEWAY = f"{SOLUTION}-prod-appgw"
MINIMUM = 2
VMS = {env: f"{SOLUTION}-{env}-vm" for env in ("life", "dev", "test", "prod")}


def spec_at(versions: dict[str, str], **upgrade: Any) -> dict[str, Any]:
    """The farm sample (2 front-ends, minimum 2, no cooldown, no schedules) at `versions`."""
    spec = copy.deepcopy(farm_spec(cooldownMinutes=0))
    spec.update(versions)
    if upgrade:
        spec["upgrade"] = upgrade
    return spec


@pytest.fixture
def script_runs() -> Iterator[ScriptRuns]:
    with ScriptRuns() as runs:
        yield runs


@pytest.fixture
def upgrade_stack(
    sim: SimulatorServer, azurite: Azurite, script_runs: ScriptRuns
) -> Iterator[Stack]:
    azurite.drain("platform-events")
    with running_stack(sim, azurite) as running:
        yield running


def upgrade_of(stack: Stack) -> dict[str, Any] | None:
    upgrade: dict[str, Any] | None = stack.state(SOLUTION).get("upgrade")
    return upgrade


def environment(upgrade: dict[str, Any], name: str) -> dict[str, Any]:
    return next(e for e in upgrade["environments"] if e["environment"] == name)


def awaiting(stack: Stack, env: str) -> dict[str, Any] | None:
    upgrade = upgrade_of(stack)
    if (
        upgrade is not None
        and upgrade["state"] == "AwaitingApproval"
        and upgrade["awaiting"] == env
    ):
        return upgrade
    assert upgrade is None or upgrade["state"] not in ("Failed", "Canceled"), upgrade
    return None


def ended(stack: Stack) -> dict[str, Any] | None:
    """The upgrade's progress once its orchestration has ended."""
    state = stack.state(SOLUTION)
    if state["lastOperation"]["runtimeStatus"] in TERMINAL:
        upgrade: dict[str, Any] | None = state.get("upgrade")
        assert upgrade is not None, state
        return upgrade
    return None


def approve(stack: Stack, env: str) -> requests.Response:
    return stack.api("POST", f"platforms/{SOLUTION}/upgrade/approve", json={"environment": env})


def instances(sim: SimulatorServer) -> list[dict[str, Any]]:
    """The scale set's instances as ARM lists them."""
    answer = sim.call("GET", f"{SCALE_SET_ID}/virtualMachines", api_version="2024-11-01")
    assert answer.status == 200
    listed: list[dict[str, Any]] = answer.body["value"]
    return listed


def instance_address(sim: SimulatorServer, instance_id: str) -> str:
    with sim.engine.store.lock:
        instance = sim.engine.store.get(f"{SCALE_SET_ID}/virtualMachines/{instance_id}")
        assert instance is not None
        return str(instance.extra["privateIPAddress"])


def test_a_farm_is_upgraded_lifetime_first_with_approvals_balanced_and_resumed_after_a_failure(
    upgrade_stack: Stack, script_runs: ScriptRuns
) -> None:
    stack, sim = upgrade_stack, upgrade_stack.sim
    response = stack.deploy(SOLUTION, spec_at(OLD))
    assert response.status_code == 202, response.text
    assert stack.wait(SOLUTION)["lastOperation"]["runtimeStatus"] == "Completed"
    stack.events()
    # Some latency from here: the upgrade's operations stay in flight long enough for the test
    # to see its phases (the hold, above all) through the API.
    sim.configure({"latencyScale": 0.002})
    watch = FarmWatch(sim, GATEWAY, SCALE_SET_ID)
    watch.start()
    # The health gate fails on the first front-end after its upgrade, whichever set it is in.
    [first, *_] = sorted(instances(sim), key=lambda i: int(i["instanceId"]))
    failing_address = instance_address(sim, first["instanceId"])
    sim.fail_health_gate(failing_address, "the probe answered 503 Service Unavailable")
    events: list[dict[str, Any]] = []

    response = stack.deploy(SOLUTION, spec_at(NEW))
    assert response.status_code == 202, response.text

    # LifeTime alone first; then the pause before dev (after each environment but the last).
    paused = wait_for(lambda: awaiting(stack, "dev"), what="the pause before dev", timeout=120)
    assert [e["environment"] for e in paused["environments"]] == ["life", "dev", "test", "prod"]
    assert [e["state"] for e in paused["environments"]] == [
        "Succeeded",
        "Pending",
        "Pending",
        "Pending",
    ]
    versions = watch.now().versions
    assert versions[VMS["life"]] == NEW["lifetimeVersion"]
    assert {versions[VMS[env]] for env in ("dev", "test", "prod")} == {OLD["platformVersion"]}

    # An approval naming another environment is refused; the right one continues.
    wrong = approve(stack, "test")
    assert wrong.status_code == 400, wrong.text
    assert awaiting(stack, "dev") is not None
    assert approve(stack, "dev").status_code == 202
    paused = wait_for(lambda: awaiting(stack, "test"), what="the pause before test", timeout=120)
    life_at = watch.first_at(VMS["life"], NEW["lifetimeVersion"])
    dev_at = watch.first_at(VMS["dev"], NEW["platformVersion"])
    assert life_at is not None
    assert dev_at is not None
    assert life_at < dev_at, "LifeTime first"
    versions = watch.now().versions
    assert versions[VMS["test"]] == versions[VMS["prod"]] == OLD["platformVersion"]
    # The environment's restore point is recorded in the progress.
    assert environment(paused, "dev")["restorePoint"]["kind"] in ("copy", "pointInTime")

    assert approve(stack, "test").status_code == 202
    wait_for(lambda: awaiting(stack, "prod"), what="the pause before prod", timeout=120)
    assert watch.now().versions[VMS["test"]] == NEW["platformVersion"]
    assert watch.now().versions[VMS["prod"]] == OLD["platformVersion"]
    assert approve(stack, "prod").status_code == 202

    # The production farm: the health gate fails on one instance; the upgrade stops naming it.
    failed = wait_for(lambda: ended(stack), what="the upgrade to stop", timeout=180)
    assert failed["state"] == "Failed", failed
    prod = environment(failed, "prod")
    assert prod["state"] == "Failed"
    # The instance as ARM names it (`<scale set>_<id>`), as the list gives it, or its computer.
    names = {
        first["name"],
        first["instanceId"],
        f"{SCALE_SET_ID.rsplit('/', 1)[-1]}_{first['instanceId']}",
    }
    computer = (first.get("properties") or {}).get("osProfile", {}).get("computerName")
    if computer:
        names.add(computer)
    assert prod["error"]["resource"] in names, prod["error"]
    assert "health check" in prod["error"]["message"], prod["error"]
    # LifeTime, dev and test upgraded, production failed (contract C4: from the environments).
    assert stack.state(SOLUTION)["status"] == "PartiallySucceeded"
    # The hold ends with the upgrade, also on failure.
    wait_for(
        lambda: scaling(stack)["heldBy"] is None, what="the release after the failure", timeout=120
    )
    events += stack.events()

    # The second PUT resumes: the lower environments are kept, production finishes.
    sim.fail_health_gate(failing_address, None)
    resumed_from = len(script_runs.taken())
    response = stack.deploy(SOLUTION, spec_at(NEW))
    assert response.status_code == 202, response.text

    # An alert during the resumed production upgrade waits for the release.
    wait_for(
        lambda: scaling(stack)["heldBy"] is not None,
        what="the hold of the resumed upgrade",
        timeout=120,
    )
    assert post_alert(stack, alert("high")).status_code == 202

    def held_notice() -> bool:
        return any(d["reason"].startswith("held by upgrade ") for d in scaling(stack)["decisions"])

    wait_for(held_notice, what="the alert's hold notice", timeout=120)
    if awaiting(stack, "prod") is not None:
        assert approve(stack, "prod").status_code == 202
    done = wait_for(lambda: ended(stack), what="the resumed upgrade", timeout=180)
    assert done["state"] == "Succeeded", [
        (e["environment"], e["step"], e["error"], [(v["name"], v["state"]) for v in e["servers"]])
        for e in done["environments"]
    ]
    assert all(e["state"] == "Succeeded" for e in done["environments"])
    # Kept environments ran nothing again: after the resume only prod's servers ran the script.
    resumed_hosts = {run.host for run in script_runs.taken()[resumed_from:]}
    assert resumed_hosts <= {VMS["prod"], SCALE_SET_ID.rsplit("/", 1)[-1]}, resumed_hosts

    # The kept alert applied after the release: two more front-ends on top of the minimum.
    # (The capacity alone says nothing: the upgrade's temporary instances made it 4 too.)

    def applied_decisions() -> list[dict[str, Any]]:
        return [d for d in scaling(stack)["decisions"] if d["outcome"] == "applied"]

    applied = wait_for(
        applied_decisions, what="the kept alert applied after the release", timeout=120
    )
    assert capacity(sim) == 4
    # Decided after the production upgrade ended (the release is its last step).
    decided = datetime.fromisoformat(applied[0]["at"])
    assert decided >= datetime.fromisoformat(environment(done, "prod")["endedAt"])
    view = scaling(stack)
    assert [(d["source"], d["from"], d["to"]) for d in applied] == [("alert", 2, 4)]
    assert view["heldBy"] is None
    assert view["pending"] == []

    # Every server at the new version; the gateway never served two versions nor < minimum.
    final = watch.now()
    watch.stop()
    assert {v for k, v in final.versions.items() if k != VMS["life"]} <= {
        NEW["platformVersion"],
        None,
    }
    assert final.versions[VMS["life"]] == NEW["lifetimeVersion"]
    assert watch.violations(MINIMUM) == []
    # Both versions were served, one after the other (the switch happened).
    served = [{v for _, v in s.serving} for s in watch.taken() if s.serving]
    assert {OLD["platformVersion"]} in served
    assert {NEW["platformVersion"]} in served

    events += stack.events()
    upgrade_events = [e["type"] for e in events if e["type"].startswith("outsystems.upgrade.")]
    assert upgrade_events[0] == "outsystems.upgrade.started"
    for kind in ("step", "paused", "approved", "failed", "succeeded"):
        assert f"outsystems.upgrade.{kind}" in upgrade_events, upgrade_events
    assert upgrade_events[-1] == "outsystems.upgrade.succeeded"


def test_sigkill_during_the_production_upgrade_resumes_and_upgrades_no_instance_twice(
    sim: SimulatorServer, azurite: Azurite, script_runs: ScriptRuns, tmp_path: Path
) -> None:
    # Latency keeps the instances' upgrade in flight when the kill comes.
    sim.configure({"latencyScale": 0.003})
    settings = write_settings(tmp_path, app_settings(sim, azurite))
    hub, output = tmp_path / "hub.sqlite", tmp_path / "host.log"
    watch = FarmWatch(sim, GATEWAY, SCALE_SET_ID)

    # No approvals: a soak of 0 minutes lets each pause end by itself.
    with host_process(settings, hub, output) as (process, base):
        deploy = spec_at(OLD, soakMinutes=0)
        put = requests.put(f"{base}/api/platforms/{SOLUTION}", json=deploy, timeout=60)
        assert put.status_code == 202, put.text
        deployed = wait_terminal(base, SOLUTION, 180)
        assert deployed["lastOperation"]["runtimeStatus"] == "Completed", deployed
        watch.start()
        upgrade = spec_at(NEW, soakMinutes=0)
        put = requests.put(f"{base}/api/platforms/{SOLUTION}", json=upgrade, timeout=60)
        assert put.status_code == 202, put.text

        def upgrading_instances() -> bool:
            return any(
                r["method"] == "POST" and r["path"].endswith("/manualupgrade")
                for r in sim.requests()
            )

        wait_for(upgrading_instances, what="the first manual upgrade", timeout=240)
        state = platform_state(base, SOLUTION)
        assert state["lastOperation"]["runtimeStatus"] == "Running", state
        process.kill()
        process.wait(10)
        assert process.returncode == -9
    killed_at = len(sim.requests())

    with host_process(settings, hub, output) as (_, base):
        state = wait_terminal(base, SOLUTION, 240)
    assert state["lastOperation"]["runtimeStatus"] == "Completed", state
    assert state["upgrade"]["state"] == "Succeeded", [
        (e["environment"], e["step"], e["error"]) for e in state["upgrade"]["environments"]
    ]
    assert len(sim.requests()) > killed_at, "the restarted host resumed the work"
    final = watch.now()
    watch.stop()

    live = [i["instanceId"] for i in instances(sim)]
    twice = {i: len(script_runs.rebuilds(i)) for i in live if len(script_runs.rebuilds(i)) > 1}
    assert not twice, twice
    assert {final.versions[f"instance {i}"] for i in live} == {NEW["platformVersion"]}
    assert watch.violations(MINIMUM) == []

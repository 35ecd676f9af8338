"""The upgrade's API on the local host (issue 17): what the app answers around an upgrade
before any upgrade runs. The approval route answers 404 for an unknown platform, 409 when no
upgrade awaits an approval, 400 for a body that is no approval; a deployed platform's plan of
higher versions is the upgrade's steps, LifeTime first; a lower version, or other changes made
with an upgrade, are 400s naming the fields, and nothing starts.

Then a whole upgrade through the API: each pause refuses the approval of another environment
and takes the right one, the outputs stay, and the same spec afterwards deploys. (The upgrade's
own behaviour, the balanced switch, failures and resumes: tests/e2e/test_upgrade.py.)
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from typing import Any

from tests.e2e.scaling_support import SOLUTION, farm_spec
from tests.support.examples import sample
from tests.support.stack import Stack

APPROVE = "platforms/acme/upgrade/approve"
OLD = {"platformVersion": "11.32.0", "lifetimeVersion": "11.25.2"}
NEW = {"platformVersion": "11.33.0", "lifetimeVersion": "11.26.0"}


def test_approvals_plans_and_refusals_around_an_upgrade(stack: Stack) -> None:
    unknown = stack.api("POST", APPROVE)
    assert unknown.status_code == 404, unknown.text
    assert unknown.json()["error"]["code"] == "PlatformNotFound"

    stack.sim.configure({"latencyScale": 0.002})
    spec = sample("spec-demo.json")
    assert stack.deploy("acme", spec).status_code == 202
    # While a deployment runs, nothing awaits an approval.
    running = stack.api("POST", APPROVE, json={})
    assert running.status_code == 409, running.text
    assert running.json()["error"]["code"] == "NoUpgradeAwaitingApproval"
    deployed = stack.wait("acme")
    assert deployed["status"] == "Succeeded", deployed
    started = deployed["lastOperation"]["startedAt"]

    for body in (None, {"environment": "dev"}):
        answer = stack.api("POST", APPROVE, json=body)
        assert answer.status_code == 409, answer.text
        assert answer.json()["error"]["code"] == "NoUpgradeAwaitingApproval"
        assert "its last operation is a deploy" in answer.json()["error"]["message"]
    invalid = stack.api("POST", APPROVE, json={"environment": "qa"})
    assert invalid.status_code == 400, invalid.text
    assert invalid.json()["error"]["code"] == "InvalidApproval"
    assert [d["target"] for d in invalid.json()["error"]["details"]] == ["environment"]

    higher = {**spec, "platformVersion": "11.33.0", "lifetimeVersion": "11.26.0"}
    plan = stack.api("POST", "platforms/acme/plan", json=higher)
    assert plan.status_code == 200, plan.text
    steps = plan.json()["steps"]
    assert plan.json()["operation"] == "upgrade"
    assert plan.json()["order"] == ["life", "dev", "test", "prod"]
    assert steps[0]["environment"] == "life"
    assert [s["environment"] for s in steps if s["step"] == "approval"] == ["dev", "test", "prod"]

    lower = stack.deploy("acme", {**spec, "platformVersion": "11.31.0"})
    assert lower.status_code == 400, lower.text
    assert [d["target"] for d in lower.json()["error"]["details"]] == ["platformVersion"]
    mixed = stack.deploy("acme", {**higher, "bastion": True})
    assert mixed.status_code == 400, mixed.text
    assert [d["target"] for d in mixed.json()["error"]["details"]] == ["bastion"]
    # Nothing started: the platform's last operation is still the deployment.
    after = stack.state("acme")
    assert after["lastOperation"]["kind"] == "deploy"
    assert after["lastOperation"]["startedAt"] == started


def _state_of(stack: Stack) -> dict[str, Any]:
    state = stack.state(SOLUTION)
    assert state["lastOperation"]["runtimeStatus"] in ("Pending", "Running"), state
    return state


def _moved_on(stack: Stack, environment: str) -> bool:
    """The upgrade no longer awaits `environment` (it goes on, or it already ended)."""
    upgrade = stack.state(SOLUTION).get("upgrade") or {}
    return bool(upgrade.get("awaiting") != environment)


def _until(check: Callable[[], Any], seconds: float = 300) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError("waited in vain")


def test_an_upgrade_through_the_api_pauses_is_approved_and_keeps_the_outputs(
    stack: Stack,
) -> None:
    old = {**farm_spec(cooldownMinutes=0), **OLD}
    assert stack.deploy(SOLUTION, old).status_code == 202
    deployed = stack.wait(SOLUTION)
    assert deployed["status"] == "Succeeded", deployed
    stack.sim.configure({"latencyScale": 0.002})
    new = {**old, **NEW}

    started = stack.deploy(SOLUTION, new)
    assert started.status_code == 202, started.text
    assert started.json()["kind"] == "upgrade"
    operation = started.json()["id"]

    def awaiting() -> dict[str, Any] | None:
        upgrade = _state_of(stack).get("upgrade")
        return upgrade if upgrade and upgrade["state"] == "AwaitingApproval" else None

    for environment in ("dev", "test", "prod"):
        paused = _until(awaiting)
        assert paused["awaiting"] == environment, paused
        state = stack.state(SOLUTION)
        assert state["status"] == "Running"
        # The deployment's outputs stay visible while the upgrade runs.
        assert state["outputs"] == deployed["outputs"]
        other = "prod" if environment != "prod" else "dev"
        wrong = stack.api("POST", APPROVE, json={"environment": other})
        assert wrong.status_code == 400, wrong.text
        assert wrong.json()["error"]["code"] == "WrongEnvironment"
        approved = stack.api("POST", APPROVE, json={})
        assert approved.status_code == 202, approved.text
        assert approved.json()["environment"] == environment
        assert approved.headers["Location"].endswith(f"/operations/{operation}")
        _until(functools.partial(_moved_on, stack, environment))

    done = stack.wait(SOLUTION, 600)
    assert (done["status"], done["upgrade"]["state"]) == ("Succeeded", "Succeeded"), done
    assert [e["environment"] for e in done["upgrade"]["environments"]] == [
        "life",
        "dev",
        "test",
        "prod",
    ]
    assert done["outputs"] == deployed["outputs"]
    assert stack.api("POST", APPROVE).status_code == 409
    # The same spec again is a deployment of the upgraded platform.
    again = stack.deploy(SOLUTION, new)
    assert again.status_code == 202, again.text
    assert again.json()["kind"] == "deploy"
    assert stack.wait(SOLUTION)["status"] == "Succeeded"

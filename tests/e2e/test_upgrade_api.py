"""The upgrade's API on the local host (issue 17): what the app answers around an upgrade
before any upgrade runs. The approval route answers 404 for an unknown platform, 409 when no
upgrade awaits an approval, 400 for a body that is no approval; a deployed platform's plan of
higher versions is the upgrade's steps, LifeTime first; a lower version, or other changes made
with an upgrade, are 400s naming the fields, and nothing starts.

(The upgrade itself, its pauses and approvals: tests/e2e/test_upgrade.py.)
"""

from __future__ import annotations

from tests.support.examples import sample
from tests.support.stack import Stack

APPROVE = "platforms/acme/upgrade/approve"


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

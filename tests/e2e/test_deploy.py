"""Deploying whole platforms through the HTTP API on the local host against the ARM simulator."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from outsystems.names import ENVIRONMENTS
from outsystems.resource_types import VM
from outsystems.spec import parse_spec
from outsystems.topology import build_topology
from tests.support.stack import SUBSCRIPTION, Stack

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def sample(name: str) -> dict[str, Any]:
    body: dict[str, Any] = json.loads((EXAMPLES / name).read_text())
    return body


def expected_ids(solution_id: str, spec: dict[str, Any]) -> set[str]:
    parsed = parse_spec(solution_id, spec, default_subscription_id=SUBSCRIPTION)
    return {r.id.lower() for r in build_topology(parsed)}


def arm_writes(stack: Stack, method: str = "PUT") -> list[str]:
    return [r["path"] for r in stack.sim.requests() if r["method"] == method]


@pytest.mark.parametrize("spec_file", ["spec-farm.json", "spec-standalone.json"])
def test_deploy_creates_exactly_the_platform_and_reports_outputs(
    stack: Stack, spec_file: str
) -> None:
    spec = sample(spec_file)
    response = stack.deploy("acme", spec)
    assert response.status_code == 202, response.text
    assert response.headers["Location"].startswith(f"{stack.base}/api/platforms/acme/operations/")

    state = stack.wait("acme")

    assert state["lastOperation"]["runtimeStatus"] == "Completed"
    assert state["lastOperation"]["kind"] == "deploy"
    assert {env: e["status"] for env, e in state["environments"].items()} == dict.fromkeys(
        ENVIRONMENTS, "Succeeded"
    )
    for env in ENVIRONMENTS:
        progress = state["environments"][env]
        assert progress["resourcesDone"] == progress["resourcesTotal"] > 0
    live = {r["id"].lower() for r in stack.sim.resources()}
    expected = expected_ids("acme", spec)
    assert expected <= live
    # What else exists is what ARM makes of our resources: inline subnets, scale-set instances.
    assert all(any(i.startswith(e + "/") for e in expected) for i in live - expected)
    assert all(stack.sim.creation_count(i) == 1 for i in expected)
    outputs = state["outputs"]
    assert outputs["life"]["lifetimeUrl"].endswith("/LifeTime")
    for env in ("dev", "test", "prod"):
        assert outputs[env]["serviceCenterUrl"].startswith("https://acme-")
        assert outputs[env]["certificate"].startswith("self-signed")
        assert outputs[env]["privateIps"]


def test_redeploy_of_an_unchanged_platform_sends_no_put(stack: Stack) -> None:
    spec = sample("spec-demo.json")
    assert stack.deploy("acme", spec).status_code == 202
    assert stack.wait("acme")["lastOperation"]["runtimeStatus"] == "Completed"
    writes_before = len(arm_writes(stack))

    assert stack.deploy("acme", spec).status_code == 202
    state = stack.wait("acme")

    assert state["lastOperation"]["runtimeStatus"] == "Completed"
    assert all(e["status"] == "Succeeded" for e in state["environments"].values())
    assert len(arm_writes(stack)) == writes_before


def test_plan_reads_live_state_and_shows_only_what_changed(stack: Stack) -> None:
    spec = sample("spec-demo.json")
    before = stack.api("POST", "platforms/acme/plan", json=spec)
    assert before.status_code == 200
    assert before.json()["totals"]["update"] == before.json()["totals"]["noop"] == 0

    stack.deploy("acme", spec)
    stack.wait("acme")
    writes = len(arm_writes(stack))
    after = stack.api("POST", "platforms/acme/plan", json=spec).json()
    assert after["totals"] == {"create": 0, "update": 0, "noop": len(after["resources"])}

    bigger = json.loads(json.dumps(spec))
    bigger["environments"]["life"] = {"vmSize": "Standard_D4s_v5"}
    changed = stack.api("POST", "platforms/acme/plan", json=bigger).json()
    updates = [r for r in changed["resources"] if r["action"] != "noop"]
    assert [(r["type"], r["name"], r["environment"]) for r in updates] == [
        (VM, "acme-life-vm", "life")
    ]
    assert updates[0]["changes"] == [
        {
            "path": "properties.hardwareProfile.vmSize",
            "from": "Standard_F4s_v2",
            "to": "Standard_D4s_v5",
        }
    ]
    assert len(arm_writes(stack)) == writes, "planning must not change anything"

    stack.deploy("acme", bigger)
    stack.wait("acme")
    new_puts = arm_writes(stack)[writes:]
    assert [p.rsplit("/", 1)[-1] for p in new_puts] == ["acme-life-vm"]


def test_second_put_while_deploying_is_a_conflict(stack: Stack) -> None:
    stack.sim.configure({"latencyScale": 0.002})
    spec = sample("spec-demo.json")
    assert stack.deploy("acme", spec).status_code == 202
    second = stack.deploy("acme", spec)
    assert second.status_code == 409
    assert second.json()["error"]["code"] == "Conflict"
    stack.wait("acme")

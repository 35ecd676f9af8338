"""What a deployment should have done: its resources, created once each, all Succeeded.

What ARM saw comes from the simulator's request log and store; what the app says from
`GET /api/platforms/{id}`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import Any

from localdev.armsim.authorization import Permissions
from localdev.armsim.server import SimulatorServer
from outsystems.names import ENVIRONMENTS
from outsystems.spec import parse_spec
from outsystems.topology import Resource, build_topology
from tests.support.stack import ROOT, SUBSCRIPTION

ROLE_FILE = ROOT / "infra" / "app" / "platform-operator-role.json"


def topology(spec: Mapping[str, Any], solution_id: str = "acme") -> list[Resource]:
    return list(build_topology(parse_spec(solution_id, spec, default_subscription_id=SUBSCRIPTION)))


def resource_ids(spec: Mapping[str, Any]) -> set[str]:
    return {r.id.lower() for r in topology(spec)}


def creations(sim: SimulatorServer) -> Counter[str]:
    """How many times ARM answered 201 Created to a PUT, per (lower-case) resource path."""
    return Counter(r["path"] for r in sim.requests() if r["method"] == "PUT" and r["status"] == 201)


def assert_created_once(sim: SimulatorServer, spec: Mapping[str, Any]) -> None:
    """Every resource of the platform exists and was created exactly once; nothing else was."""
    expected = resource_ids(spec)
    live = {r["id"].lower(): r for r in sim.resources()}
    assert expected <= set(live), sorted(expected - set(live))
    # What else exists is what ARM makes of ours: inline subnets, file services, instances.
    extra = set(live) - expected
    assert all(any(i.startswith(e + "/") for e in expected) for i in extra), sorted(extra)
    assert all(live[i]["provisioningState"] == "Succeeded" for i in expected)
    counts = {i: sim.creation_count(i) for i in expected}
    assert all(n == 1 for n in counts.values()), {i: n for i, n in counts.items() if n != 1}
    twice = {path: n for path, n in creations(sim).items() if n > 1}
    assert not twice, twice


def assert_all_succeeded(state: Mapping[str, Any]) -> None:
    assert state["lastOperation"]["kind"] == "deploy"
    assert state["lastOperation"]["runtimeStatus"] == "Completed", state
    assert {env: e["status"] for env, e in state["environments"].items()} == dict.fromkeys(
        ENVIRONMENTS, "Succeeded"
    ), state
    for progress in state["environments"].values():
        assert progress["resourcesDone"] == progress["resourcesTotal"] > 0
        assert progress["error"] is None


def puts(sim: SimulatorServer) -> int:
    return sum(1 for r in sim.requests() if r["method"] == "PUT")


def apps_role() -> Permissions:
    """The app's rights exactly as `infra/app/platform-operator-role.json` grants them."""
    return Permissions.load(ROLE_FILE)

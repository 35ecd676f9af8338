"""The deployment's activities (`activities/resources.py`) against ARM on the wire.

Each activity runs as the worker runs it (the registered function, JSON in and out) against the
ARM simulator on loopback, reached through the app's own connection; nothing of ours is mocked.
What is checked is the activities' own contract with the orchestration: a plan answers each
resource's action only, a started PUT answers an `Operation` that `check_operations` follows to
its end, a second plan sees what the first PUTs made, and the outputs name the gateways' URLs.
ARM's side of it is published: a PUT that takes time answers 201/202 with
`Azure-AsyncOperation` (or `Location`) to poll (Microsoft's "Track asynchronous Azure
operations", https://learn.microsoft.com/azure/azure-resource-manager/management/async-operations).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from localdev.armsim.server import SimulatorServer
from localdev.armsim.testing import running_simulator
from outsystems.deployment import graph_of
from outsystems.messages import Operation, PlannedAction, outputs_from_json
from outsystems.resource_types import PUBLIC_IP
from outsystems.spec import parse_spec
from outsystems.topology import Resource
from tests.support.arm_loopback import SUBSCRIPTION, app_on, get
from tests.support.functions import activity

ROOT = Path(__file__).resolve().parents[2]
SPEC = parse_spec(
    "acme",
    (ROOT / "examples" / "spec-demo.json").read_bytes(),
    default_subscription_id=SUBSCRIPTION,
    managed_subscription_ids=(),
).to_json_dict()
_, GRAPH = graph_of(SPEC)
SHARED = GRAPH.for_environment("shared")
GROUP, NSG = SHARED[0], SHARED[1]


@pytest.fixture(scope="module")
def simulator() -> Iterator[SimulatorServer]:
    with running_simulator(throttling=False) as sim:
        yield sim


@pytest.fixture
def sim(simulator: SimulatorServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[SimulatorServer]:
    with app_on(simulator, monkeypatch, PLATFORM_KEY_SEED="activity-test-seed") as running:
        yield running


def plan(environment: str) -> dict[str, str]:
    answer = activity("plan_environment")({"spec": SPEC, "environment": environment})
    return {item.id: item.action for item in map(PlannedAction.from_json, answer)}


def apply(resource: Resource) -> Operation:
    """Start one resource's PUT and follow it to its end, as the orchestration does."""
    answer: Any = activity("begin_apply_resource")(
        {"spec": SPEC, "resourceId": resource.id, "nonce": "n-1", "rerun": 0}
    )
    for _ in range(10):
        if Operation.from_json(answer).done:
            break
        [answer] = activity("check_operations")(
            {"subscriptionId": SUBSCRIPTION, "solutionId": "acme", "operations": [answer]}
        )
    return Operation.from_json(answer)


def test_a_plan_answers_each_resources_action_and_sees_what_was_applied(
    sim: SimulatorServer,
) -> None:
    answer = activity("plan_environment")({"spec": SPEC, "environment": "shared"})
    # Only the id and the action travel: the changes quote live bodies, kept out of history.
    assert all(set(item) == {"id", "action"} for item in answer)
    assert set(plan("shared").values()) == {"create"}

    for resource in (GROUP, NSG):
        operation = apply(resource)
        assert operation.succeeded, operation.error
        assert operation.method == "PUT"
        assert get(resource.id, resource.api_version) is not None

    after = plan("shared")
    assert (after[GROUP.id], after[NSG.id]) == ("noop", "noop")
    assert {action for rid, action in after.items() if rid not in {GROUP.id, NSG.id}} == {"create"}


def test_the_outputs_name_a_gateways_url_once_its_address_exists(sim: SimulatorServer) -> None:
    address = next(r for r in GRAPH if r.type == PUBLIC_IP and r.environment == "life")
    assert apply(GROUP).succeeded
    assert apply(address).succeeded
    outputs = outputs_from_json(activity("read_outputs")({"spec": SPEC}))
    life = outputs["life"]
    assert life.lifetime_url is not None
    assert life.lifetime_url.startswith("https://")
    assert life.lifetime_url.endswith("/LifeTime")
    assert life.service_center_url is None
    assert life.certificate is not None
    assert life.certificate.startswith("self-signed")
    # Nothing of dev exists yet: no URL, no address.
    assert outputs.get("dev") is None or outputs["dev"].service_center_url is None

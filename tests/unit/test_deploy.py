"""The deployment orchestrations (`orchestrators/deploy.py`) by history replay.

`deploy_platform` and its `deploy_environment` sub-orchestrations run through the SDK's replay
engine (`tests/support/replay.py`) against fake activities standing for ARM: each resource's
operation succeeds, runs for a while, fails for good or fails transiently, as the test says.
The whole app on the local host is in `tests/e2e/test_deploy.py`; here the orchestrations'
own decisions are checked, failure paths included, in milliseconds.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from outsystems.deployment import graph_of
from outsystems.messages import CheckRequest
from outsystems.names import ENVIRONMENTS, SHARED
from outsystems.resource_types import APP_GATEWAY, VM
from outsystems.spec import parse_spec
from outsystems.topology import Resource
from tests.support.functions import orchestrator
from tests.support.replay import Outcome, Replay

ROOT = Path(__file__).resolve().parents[2]
SUBSCRIPTION = "11111111-2222-3333-4444-555555555555"
SPEC = parse_spec(
    "acme",
    (ROOT / "examples" / "spec-demo.json").read_bytes(),
    default_subscription_id=SUBSCRIPTION,
    managed_subscription_ids=(),
).to_json_dict()
_, GRAPH = graph_of(SPEC)
TUNING = {"pollSeconds": 5.0, "retrySeconds": 5.0, "timeoutScale": 1.0, "backoffScale": 1.0}
INSTANCE = "platform-acme"
POLL = timedelta(seconds=5)

#: What a fake ARM does with one resource's PUT: a list of the states its operation reports,
#: the first when it is started, the others at each poll.
Script = list[tuple[str, dict[str, str] | None]]


def the(resource_type: str, environment: str) -> Resource:
    return next(r for r in GRAPH if r.type == resource_type and r.environment == environment)


@dataclass
class Arm:
    """Fake activities answering as ARM would, per resource; every resource not scripted
    succeeds at once."""

    scripts: dict[str, Script] = field(default_factory=dict)
    plan_action: Callable[[str], str] = lambda resource_id: "create"
    plan_fails: bool = False
    started: list[str] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)

    def _operation(self, resource_id: str) -> dict[str, Any]:
        script = self.scripts.get(resource_id.lower())
        status, error = script.pop(0) if script else ("Succeeded", None)
        running = status == "InProgress"
        # As the activities answer today (`Operation.to_json`); the scaler's and the teardown's
        # tests answer in the snake_case keys earlier versions wrote into histories.
        return {
            "resourceId": resource_id,
            "method": "PUT",
            "status": status,
            "apiVersion": "2026-04-01",
            "pollMode": "async-operation" if running else "none",
            "pollUrl": f"http://arm/operations/{resource_id}" if running else None,
            "error": error,
        }

    def plan(self, request: dict[str, Any]) -> list[dict[str, Any]]:
        if self.plan_fails:
            raise RuntimeError("ARM answered 503 ServiceUnavailable")
        return [
            {"id": r.id, "action": self.plan_action(r.id)}
            for r in GRAPH.for_environment(request["environment"])
        ]

    def apply(self, request: dict[str, Any]) -> dict[str, Any]:
        self.started.append(request["resourceId"])
        return self._operation(request["resourceId"])

    def check(self, request: dict[str, Any]) -> list[dict[str, Any]]:
        return [self._operation(o.resource_id) for o in CheckRequest.from_json(request).operations]

    def outputs(self, request: dict[str, Any]) -> dict[str, Any]:
        return {
            env: {"serviceCenterUrl": f"https://{env}.example/ServiceCenter"}
            for env in ENVIRONMENTS
        }

    def publish(self, event: dict[str, Any]) -> str:
        self.events.append(event)
        return str(event["id"])

    def run(self, tuning: dict[str, float] = TUNING) -> Outcome:
        return Replay(
            orchestrator("deploy_platform"),
            {"operation": "deploy", "operationId": "op-1", "spec": SPEC, "tuning": tuning},
            name="deploy_platform",
            instance_id=INSTANCE,
            activities={
                "plan_environment": self.plan,
                "begin_apply_resource": self.apply,
                "check_operations": self.check,
                "read_outputs": self.outputs,
                "publish_event": self.publish,
            },
            orchestrators={"deploy_environment": orchestrator("deploy_environment")},
        ).run()

    def event_types(self) -> list[str]:
        return [event["type"].removeprefix("outsystems.") for event in self.events]


def statuses(outcome: Outcome) -> dict[str, str]:
    return {env: progress["status"] for env, progress in outcome.output["environments"].items()}


def test_a_platform_deploys_shared_resources_first_then_the_four_environments() -> None:
    arm = Arm()
    outcome = arm.run()
    assert outcome.error is None
    assert outcome.output["status"] == "Succeeded"
    assert statuses(outcome) == dict.fromkeys(ENVIRONMENTS, "Succeeded")
    children = [c for c in outcome.calls if c.kind == "orchestration"]
    # The children have deterministic instance ids: shared first, alone, then the four.
    assert [c.input["environment"] for c in children] == [SHARED, *ENVIRONMENTS]
    assert {c.input["nonce"] for c in children} == {children[0].input["nonce"]}
    # Every resource was applied once, each after everything it depends on.
    assert sorted(arm.started) == sorted(r.id for r in GRAPH)
    position = {resource_id.lower(): n for n, resource_id in enumerate(arm.started)}
    for resource in GRAPH:
        for dependency in resource.depends_on:
            assert position[dependency.lower()] < position[resource.id.lower()]
    assert outcome.output["outputs"]["dev"] == {
        "serviceCenterUrl": "https://dev.example/ServiceCenter"
    }
    assert arm.event_types() == [
        "deployment.started",
        *["environment.succeeded"] * 4,
        "deployment.succeeded",
    ]
    assert outcome.status["phase"] == "done"


def test_resources_the_plan_leaves_alone_are_not_applied() -> None:
    vm = the(VM, "dev")
    arm = Arm(plan_action=lambda resource_id: "update" if resource_id == vm.id else "noop")
    outcome = arm.run()
    assert arm.started == [vm.id]
    dev = outcome.output["environments"]["dev"]
    assert (dev["status"], dev["resourcesDone"]) == ("Succeeded", len(GRAPH.for_environment("dev")))


def test_a_running_operation_is_polled_after_durable_timers() -> None:
    gateway = the(APP_GATEWAY, "test")
    arm = Arm(
        scripts={
            gateway.id.lower(): [("InProgress", None), ("InProgress", None), ("Succeeded", None)]
        }
    )
    outcome = arm.run()
    assert outcome.output["status"] == "Succeeded"
    checks = [c for c in outcome.calls if c.name == "check_operations"]
    assert [c.input["operations"][0]["resourceId"] for c in checks] == [gateway.id] * 2
    assert {c.input["subscriptionId"] for c in checks} == {SUBSCRIPTION}
    timers = [c for c in outcome.calls if c.kind == "timer"]
    assert [t.input - t.at for t in timers] == [POLL, POLL]


def test_a_permanent_arm_error_fails_only_its_environment() -> None:
    vm = the(VM, "test")
    quota = {"code": "OperationNotAllowed", "message": "quota exceeded"}
    arm = Arm(scripts={vm.id.lower(): [("Failed", quota)]})
    outcome = arm.run()
    assert outcome.output["status"] == "Failed"
    assert statuses(outcome) == {
        "dev": "Succeeded",
        "test": "Failed",
        "prod": "Succeeded",
        "life": "Succeeded",
    }
    assert outcome.output["environments"]["test"]["error"] == {**quota, "resource": vm.id}
    # Outputs only of the environments that succeeded.
    assert sorted(outcome.output["outputs"]) == ["dev", "life", "prod"]
    assert "environment.failed" in arm.event_types()
    assert arm.event_types()[-1] == "deployment.failed"
    [failed] = [e for e in arm.events if e["type"].endswith("deployment.failed")]
    assert failed["data"]["failedEnvironments"] == ["test"]


def test_a_retryable_arm_error_is_retried_after_a_backoff() -> None:
    vm = the(VM, "dev")
    busy = {"code": "InternalServerError", "message": "try again"}
    arm = Arm(scripts={vm.id.lower(): [("Failed", busy), ("Succeeded", None)]})
    outcome = arm.run()
    assert outcome.output["status"] == "Succeeded"
    assert arm.started.count(vm.id) == 2
    # The backoff is a durable timer (10 s for the first retry, times the backoff scale).
    assert any(c.kind == "timer" and c.input - c.at == timedelta(seconds=10) for c in outcome.calls)


def test_an_operation_past_its_limit_fails_its_environment_as_timed_out() -> None:
    gateway = the(APP_GATEWAY, "life")
    arm = Arm(scripts={gateway.id.lower(): [("InProgress", None)] * 100})
    # timeoutScale shrinks the per-type limit (60 minutes for a gateway) to 30 seconds.
    outcome = arm.run({**TUNING, "timeoutScale": 30 / 3600})
    life = outcome.output["environments"]["life"]
    assert (life["status"], life["error"]["code"]) == ("Failed", "OperationTimedOut")
    assert statuses(outcome)["dev"] == "Succeeded"


def test_failed_shared_resources_fail_every_environment_without_starting_them() -> None:
    vnet = next(r for r in GRAPH.for_environment(SHARED) if r.type.endswith("virtualNetworks"))
    arm = Arm(scripts={vnet.id.lower(): [("Failed", {"code": "InvalidRequest", "message": "no"})]})
    outcome = arm.run()
    assert outcome.output["status"] == "Failed"
    assert statuses(outcome) == dict.fromkeys(ENVIRONMENTS, "Failed")
    error = outcome.output["environments"]["dev"]["error"]
    assert (error["code"], error["resource"]) == ("InvalidRequest", vnet.id)
    assert error["message"].startswith("shared resources failed")
    children = [c.input["environment"] for c in outcome.calls if c.kind == "orchestration"]
    assert children == [SHARED]
    assert "read_outputs" not in [c.name for c in outcome.calls]


def test_a_plan_that_cannot_be_read_fails_every_environment() -> None:
    arm = Arm(plan_fails=True)
    outcome = arm.run()
    assert outcome.output["status"] == "Failed"
    assert {p["error"]["code"] for p in outcome.output["environments"].values()} == {"PlanFailed"}
    assert "orchestration" not in outcome.kinds()
    assert arm.event_types()[-1] == "deployment.failed"


@pytest.mark.parametrize("environment", ["dev", "prod"])
def test_progress_is_published_as_the_custom_status_while_an_environment_runs(
    environment: str,
) -> None:
    gateway = the(APP_GATEWAY, environment)
    arm = Arm(scripts={gateway.id.lower(): [("InProgress", None), ("Succeeded", None)]})
    outcome = arm.run()
    polling = [c for c in outcome.calls if c.name == "check_operations"]
    [poll] = polling
    # The environment's own status says what it is doing while it waits.
    assert poll.status["status"] == "Running"
    assert poll.status["step"] == f"creating {gateway.name}"
    assert poll.status["resourcesTotal"] == len(GRAPH.for_environment(environment))

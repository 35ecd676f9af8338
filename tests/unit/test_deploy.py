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
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest

from orchestrators.calls import ACTIVITY_ATTEMPTS
from orchestrators.deploy import PLAN_THROTTLE_ROUNDS
from outsystems.deployment import graph_of
from outsystems.messages import WALK_VERSION, CheckRequest
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


def running(polls: int) -> Script:
    """An operation that runs for `polls` polls after it started, then succeeds."""
    script: Script = [("InProgress", None)] * (polls + 1)
    return [*script, ("Succeeded", None)]


def the(resource_type: str, environment: str) -> Resource:
    return next(r for r in GRAPH if r.type == resource_type and r.environment == environment)


@dataclass
class Arm:
    """Fake activities answering as ARM would, per resource; every resource not scripted
    succeeds at once."""

    scripts: dict[str, Script] = field(default_factory=dict)
    plan_action: Callable[[str], str] = lambda resource_id: "create"
    plan_fails: bool = False
    #: Environments whose plan cannot be read (`plan_fails`: every scope's).
    plan_fails_in: tuple[str, ...] = ()
    #: How many plan reads of each scope ARM throttles (429) before it answers.
    plan_throttled: int = 0
    plan_calls: dict[str, int] = field(default_factory=dict)
    #: How many `begin_apply_resources` calls ARM throttles (429) before it answers, or which
    #: ones (1: the first call).
    batches_throttled: int = 0
    throttled_calls: tuple[int, ...] = ()
    #: Which `check_operations` calls ARM throttles (429), counted from 1.
    throttled_checks: tuple[int, ...] = ()
    check_calls: int = 0
    batch_calls: int = 0
    #: ARM's `Retry-After` (seconds) on a resource's running operation.
    retry_after: dict[str, float] = field(default_factory=dict)
    started: list[str] = field(default_factory=list)
    #: The resources each `begin_apply_resources` call (walk version 4) started, in call
    #: order, and the items each was asked for.
    batches: list[list[str]] = field(default_factory=list)
    requested: list[list[dict[str, Any]]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    replay: Replay | None = None

    def _operation(self, resource_id: str) -> dict[str, Any]:
        script = self.scripts.get(resource_id.lower())
        status, error = script.pop(0) if script else ("Succeeded", None)
        running = status == "InProgress"
        # As the activities answer today (`Operation.to_json`); the scaler's and the teardown's
        # tests answer in the snake_case keys earlier versions wrote into histories.
        operation: dict[str, Any] = {
            "resourceId": resource_id,
            "method": "PUT",
            "status": status,
            "apiVersion": "2026-04-01",
            "pollMode": "async-operation" if running else "none",
            "pollUrl": f"http://arm/operations/{resource_id}" if running else None,
            "error": error,
        }
        if running and resource_id.lower() in self.retry_after:
            operation["retryAfter"] = self.retry_after[resource_id.lower()]
        return operation

    def plan(self, request: dict[str, Any]) -> list[dict[str, Any]]:
        if self.plan_fails or request["environment"] in self.plan_fails_in:
            raise RuntimeError("ARM answered 503 ServiceUnavailable")
        scope = request["environment"]
        self.plan_calls[scope] = self.plan_calls.get(scope, 0) + 1
        if self.plan_calls[scope] <= self.plan_throttled:
            # As azure-core writes ARM's 429 (its HttpResponseError: `(code) message`); the code
            # and wording are ARM's: Microsoft Learn, "Troubleshoot the
            # SubscriptionRequestsThrottled error code (429)".
            raise RuntimeError(
                "(SubscriptionRequestsThrottled) Number of 'read' requests for subscription "
                "'sub' actor 'app' exceeded. Please try again after '6' seconds after "
                "additional tokens are available."
            )
        return [
            {"id": r.id, "action": self.plan_action(r.id)}
            for r in GRAPH.for_environment(request["environment"])
        ]

    def apply(self, request: dict[str, Any]) -> dict[str, Any]:
        self.started.append(request["resourceId"])
        return self._operation(request["resourceId"])

    def apply_batch(self, request: dict[str, Any]) -> list[dict[str, Any]]:
        self.batch_calls += 1
        if self.batches_throttled > 0 or self.batch_calls in self.throttled_calls:
            self.batches_throttled = max(0, self.batches_throttled - 1)
            # As the activity reports a write ARM kept throttling (`TransientArmError`); the
            # code and wording are ARM's: Microsoft Learn, "Troubleshoot the
            # SubscriptionRequestsThrottled error code (429)".
            raise RuntimeError(
                "TransientArmError: ARM answered 429 SubscriptionRequestsThrottled: Number of "
                "'write' requests for subscription 'sub' exceeded the limit. Please try after "
                "'1' seconds."
            )
        return self._start(request, {})

    def _start(
        self, request: dict[str, Any], polled: dict[str, dict[str, Any]]
    ) -> list[dict[str, Any]]:
        self.requested.append(request["items"])
        # As `begin_apply_resources` answers: an item `after` others of the batch (walk version
        # 6), or after operations the same activity polled (walk version 8), is sent only once
        # each of them was answered done, and left out otherwise.
        answered: dict[str, dict[str, Any]] = {}
        for item in request["items"]:
            if all(
                {**polled, **answered}.get(i.lower(), {}).get("status") == "Succeeded"
                for i in item.get("after", ())
            ):
                answered[item["resourceId"].lower()] = self.apply({**request, **item})
        self.batches.append([operation["resourceId"] for operation in answered.values()])
        return list(answered.values())

    def check_then_start(self, request: dict[str, Any]) -> dict[str, Any]:
        """As `check_operations_then_start` answers (walk version 8): the polls, then the
        batch, whose items may come after the polled operations."""
        checked = self.check(request["check"])
        polled = {operation["resourceId"].lower(): operation for operation in checked}
        return {"checked": checked, "started": self._start(request["then"], polled)}

    def check(self, request: dict[str, Any]) -> list[dict[str, Any]]:
        self.check_calls += 1
        if self.check_calls in self.throttled_checks:
            # As azure-core writes ARM's 429 (its HttpResponseError: `(code) message`); the code
            # and wording are ARM's: Microsoft Learn, "Troubleshoot the
            # SubscriptionRequestsThrottled error code (429)".
            raise RuntimeError(
                "(SubscriptionRequestsThrottled) Number of 'read' requests for subscription "
                "'sub' actor 'app' exceeded. Please try again after '6' seconds after "
                "additional tokens are available."
            )
        return [self._operation(o.resource_id) for o in CheckRequest.from_json(request).operations]

    def outputs(self, request: dict[str, Any]) -> dict[str, Any]:
        return {
            env: {"serviceCenterUrl": f"https://{env}.example/ServiceCenter"}
            for env in ENVIRONMENTS
        }

    def publish(self, event: dict[str, Any]) -> str:
        self.events.append(event)
        return str(event["id"])

    def run(
        self, tuning: dict[str, float] = TUNING, walk_version: int | None = WALK_VERSION
    ) -> Outcome:
        """Deploy; `walk_version` None: the input as versions before walk version 2 wrote it."""
        request: dict[str, Any] = {
            "operation": "deploy",
            "operationId": "op-1",
            "spec": SPEC,
            "tuning": tuning,
        }
        if walk_version is not None:
            request["walkVersion"] = walk_version
        self.replay = Replay(
            orchestrator("deploy_platform"),
            request,
            name="deploy_platform",
            instance_id=INSTANCE,
            activities={
                "plan_environment": self.plan,
                "begin_apply_resource": self.apply,
                "begin_apply_resources": self.apply_batch,
                "check_operations": self.check,
                "check_operations_then_start": self.check_then_start,
                "read_outputs": self.outputs,
                "publish_event": self.publish,
            },
            orchestrators={
                name: orchestrator(name) for name in ("deploy_environment", "deploy_environments")
            },
        )
        return self.replay.run()

    def event_types(self) -> list[str]:
        return [event["type"].removeprefix("outsystems.") for event in self.events]


#: The activities that poll running operations (walk version 8: a poll may also start).
POLLING = ("check_operations", "check_operations_then_start")
#: The activities that start resources.
STARTING = ("begin_apply_resources", "check_operations_then_start")


def polled(call: Any) -> list[str]:
    """The resources whose operations an activity call polled."""
    if call.name not in POLLING:
        return []
    check = call.input["check"] if call.name == "check_operations_then_start" else call.input
    return [operation["resourceId"] for operation in check["operations"]]


def step_of(status: Any, environment: str) -> str:
    """What a walk's custom status says `environment` is doing ("" for nothing)."""
    shown = ((status or {}).get("environments") or {}).get(environment) or {}
    return str(shown.get("step") or "")


def statuses(outcome: Outcome) -> dict[str, str]:
    return {env: progress["status"] for env, progress in outcome.output["environments"].items()}


def test_a_platform_deploys_its_shared_resources_and_four_environments_in_one_walk() -> None:
    arm = Arm()
    outcome = arm.run()
    assert outcome.error is None
    assert outcome.output["status"] == "Succeeded"
    assert statuses(outcome) == dict.fromkeys(ENVIRONMENTS, "Succeeded")
    # Walk version 5: every scope planned, then one sub-orchestration walks them all, with a
    # deterministic instance id and what each scope's plan said to apply.
    [child] = [c for c in outcome.calls if c.kind == "orchestration"]
    assert child.name == "deploy_environments"
    assert arm.replay is not None
    assert list(arm.replay.children) == [f"{INSTANCE}:walk"]
    assert sorted(child.input["apply"]) == sorted((SHARED, *ENVIRONMENTS))
    for scope in (SHARED, *ENVIRONMENTS):
        assert child.input["apply"][scope] == [r.id for r in GRAPH.for_environment(scope)]
    assert child.input["nonce"]
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


def test_an_input_of_walk_version_4_walks_shared_first_then_each_environment_in_its_own() -> None:
    # Instances started before walk version 5 replay their histories as they were written.
    arm = Arm()
    outcome = arm.run(walk_version=4)
    assert outcome.error is None
    assert statuses(outcome) == dict.fromkeys(ENVIRONMENTS, "Succeeded")
    children = [c for c in outcome.calls if c.kind == "orchestration"]
    # The children have deterministic instance ids: shared first, alone, then the four.
    assert {c.name for c in children} == {"deploy_environment"}
    assert [c.input["environment"] for c in children] == [SHARED, *ENVIRONMENTS]
    assert {c.input["nonce"] for c in children} == {children[0].input["nonce"]}
    assert sorted(arm.started) == sorted(r.id for r in GRAPH)
    assert len(arm.batches) < len(GRAPH) // 3


def test_every_scope_is_planned_before_the_one_walk_starts() -> None:
    outcome = Arm().run()
    plans = outcome.named("plan_environment")
    assert sorted(c.input["environment"] for c in plans) == sorted((SHARED, *ENVIRONMENTS))
    assert {c.status["phase"] for c in plans} == {"planning"}
    walk = next(n for n, c in enumerate(outcome.calls) if c.kind == "orchestration")
    assert all(outcome.calls.index(c) < walk for c in plans)


def _dependents(resource_id: str) -> set[str]:
    """The lower-cased ids of everything that depends on `resource_id`, directly or not."""
    found: set[str] = set()
    frontier = {resource_id.lower()}
    while frontier:
        frontier = {
            r.id.lower()
            for r in GRAPH
            if r.id.lower() not in found and {d.lower() for d in r.depends_on} & frontier
        }
        found |= frontier
    return found


def test_an_environments_resources_start_before_the_shared_walk_ends() -> None:
    # A slow shared resource that some environment resources do not need: they start while it
    # runs (issue 16, "start what can start"), and those that need it wait for it.
    shared = GRAPH.for_environment(SHARED)
    environment_ids = {r.id.lower() for env in ENVIRONMENTS for r in GRAPH.for_environment(env)}
    slow = next(
        r
        for r in shared
        if environment_ids - _dependents(r.id)
        and _dependents(r.id) & environment_ids
        and r.type != "Microsoft.Resources/resourceGroups"
    )
    arm = Arm(scripts={slow.id.lower(): running(5)})
    outcome = arm.run()
    assert statuses(outcome) == dict.fromkeys(ENVIRONMENTS, "Succeeded")
    checks = [c for c in outcome.calls if slow.id in polled(c)]
    last_check = outcome.calls.index(checks[-1])
    batches = [c for c in outcome.calls if c.name in STARTING]
    before = {
        resource_id.lower()
        for c, started in zip(batches, arm.batches, strict=True)
        if outcome.calls.index(c) < last_check
        for resource_id in started
    }
    assert before & environment_ids, "no environment resource started while it ran"
    assert not before & _dependents(slow.id)


def test_an_input_of_walk_version_4_starts_the_shared_resources_while_it_plans_the_rest() -> None:
    outcome = Arm().run(walk_version=4)
    plans = {c.input["environment"]: c for c in outcome.named("plan_environment")}
    # The shared plan alone first; the environments' plans are asked in the episode that
    # starts the shared walk (phase "shared"), before its first resource is applied.
    assert plans[SHARED].status["phase"] == "planning"
    assert {plans[env].status["phase"] for env in ENVIRONMENTS} == {"shared"}
    first_apply = next(n for n, c in enumerate(outcome.calls) if c.name == "begin_apply_resources")
    assert all(outcome.calls.index(plans[env]) < first_apply for env in ENVIRONMENTS)
    children = [c.input["environment"] for c in outcome.calls if c.kind == "orchestration"]
    assert children == [SHARED, *ENVIRONMENTS]
    assert statuses(outcome) == dict.fromkeys(ENVIRONMENTS, "Succeeded")


def test_the_resources_that_become_ready_together_start_in_one_activity() -> None:
    arm = Arm()
    outcome = arm.run()
    assert outcome.output["status"] == "Succeeded"
    assert not outcome.named("begin_apply_resource")
    # Every resource once, in fewer activities than resources; each batch starts a resource
    # only once its dependencies were done (in earlier batches, outside the walk, or, walk
    # version 6, answered done earlier in the same batch).
    assert sorted(r for batch in arm.batches for r in batch) == sorted(r.id for r in GRAPH)
    assert len(arm.batches) < len(GRAPH) // 3
    by_id = {r.id.lower(): r for r in GRAPH}
    done: set[str] = set()
    for batch in arm.batches:
        for resource_id in batch:
            assert {d.lower() for d in by_id[resource_id.lower()].depends_on} <= done
            done.add(resource_id.lower())
    # The batch carries the deployment's nonce (the secrets it creates derive from it).
    batches = outcome.named("begin_apply_resources")
    assert {c.input["nonce"] for c in batches} == {batches[0].input["nonce"]} != {""}


def test_an_input_of_walk_version_3_starts_one_activity_per_resource() -> None:
    # Instances started before walk version 4 replay their histories as they were written.
    arm = Arm()
    outcome = arm.run(walk_version=3)
    assert outcome.output["status"] == "Succeeded"
    assert len(outcome.named("begin_apply_resource")) == len(GRAPH)
    assert not arm.batches


def test_an_input_of_walk_version_2_plans_every_scope_before_the_shared_resources() -> None:
    # Instances started before walk version 3 replay their histories as they were written.
    outcome = Arm().run(walk_version=2)
    assert outcome.error is None
    plans = outcome.named("plan_environment")
    assert len(plans) == 1 + len(ENVIRONMENTS)
    assert {c.status["phase"] for c in plans} == {"planning"}
    assert statuses(outcome) == dict.fromkeys(ENVIRONMENTS, "Succeeded")


def test_an_environment_plan_that_fails_fails_all_and_starts_nothing() -> None:
    arm = Arm(plan_fails_in=("prod",))
    outcome = arm.run()
    assert outcome.output["status"] == "Failed"
    assert {p["error"]["code"] for p in outcome.output["environments"].values()} == {"PlanFailed"}
    assert "orchestration" not in outcome.kinds()
    assert arm.started == []
    assert arm.event_types()[-1] == "deployment.failed"


def test_an_input_of_walk_version_4_walks_the_shared_resources_when_a_plan_fails() -> None:
    arm = Arm(plan_fails_in=("prod",))
    outcome = arm.run(walk_version=4)
    assert outcome.output["status"] == "Failed"
    assert {p["error"]["code"] for p in outcome.output["environments"].values()} == {"PlanFailed"}
    children = [c.input["environment"] for c in outcome.calls if c.kind == "orchestration"]
    assert children == [SHARED]
    # The shared walk ran to its end before the deployment ended.
    assert sorted(arm.started) == sorted(r.id for r in GRAPH.for_environment(SHARED))
    assert arm.event_types()[-1] == "deployment.failed"


def test_resources_the_plan_leaves_alone_are_not_applied() -> None:
    vm = the(VM, "dev")
    arm = Arm(plan_action=lambda resource_id: "update" if resource_id == vm.id else "noop")
    outcome = arm.run()
    assert arm.started == [vm.id]
    dev = outcome.output["environments"]["dev"]
    assert (dev["status"], dev["resourcesDone"]) == ("Succeeded", len(GRAPH.for_environment("dev")))


@pytest.mark.parametrize(
    ("walk_version", "waits"),
    [
        # The shortest interval first, then 1.5 times the last, up to four times the shortest
        # (walk version 9, as a single wait, `outsystems.polling`).
        (WALK_VERSION, [5.0, 7.5, 11.25, 16.875, 20.0, 20.0, 20.0]),
        # Walk versions 6-8 histories replay with the five times they were written with.
        (8, [5.0, 7.5, 11.25, 16.875, 25.0, 25.0, 25.0]),
        # Walk version 5 histories replay with the six times they were written with.
        (5, [5.0, 7.5, 11.25, 16.875, 25.3125, 30.0, 30.0]),
    ],
)
def test_a_running_operation_is_polled_after_durable_timers_that_back_off(
    walk_version: int, waits: list[float]
) -> None:
    gateway = the(APP_GATEWAY, "test")
    arm = Arm(scripts={gateway.id.lower(): running(6)})
    outcome = arm.run(walk_version=walk_version)
    assert outcome.output["status"] == "Succeeded"
    checks = [c for c in outcome.calls if c.name == "check_operations"]
    assert [c.input["operations"][0]["resourceId"] for c in checks] == [gateway.id] * 7
    assert {c.input["subscriptionId"] for c in checks} == {SUBSCRIPTION}
    timers = [c for c in outcome.calls if c.kind == "timer"]
    assert [(t.input - t.at).total_seconds() for t in timers] == waits


@pytest.mark.parametrize("walk_version", [WALK_VERSION, 6])
def test_what_nothing_waits_for_is_polled_less_often_while_a_waited_one_runs(
    walk_version: int,
) -> None:
    # The dev VM (its setup waits for it) is polled every 9 s (ARM's `Retry-After`); the test
    # gateway (nothing depends on it) is polled along with it once within half its interval
    # of its own poll. Walk version 7: its interval grows to 10x the shortest (50 s), so it is
    # polled every third wake (27 s); version 6 histories replay with 5x for all: every other
    # wake (18 s).
    gateway, vm = the(APP_GATEWAY, "test"), the(VM, "dev")
    arm = Arm(
        scripts={gateway.id.lower(): running(12), vm.id.lower(): running(40)},
        retry_after={vm.id.lower(): 9.0},
    )
    outcome = arm.run(walk_version=walk_version)
    assert outcome.output["status"] == "Succeeded"
    polls = [c.at for c in outcome.calls if gateway.id in polled(c)]
    gaps = [(b - a).total_seconds() for a, b in pairwise(polls)]
    assert gaps[-1] == (27.0 if walk_version == WALK_VERSION else 18.0)


@pytest.mark.parametrize("walk_version", [WALK_VERSION, 8])
def test_what_nothing_waits_for_is_polled_at_the_wakes_of_what_is_waited_for(
    walk_version: int,
) -> None:
    # The dev VM (its setup waits for it) asks to be polled every 9 s, the test gateway
    # (nothing depends on it) every 7 s (ARM's `Retry-After`). Walk version 9: while the VM
    # runs, only its polls wake the walk (every 9 s), and the gateway is read at those wakes;
    # version 8 histories hold the gateway's own wakes (every 7 s, the VM read along with it
    # within its early window), replayed so. The gateway is read as many times either way.
    gateway, vm = the(APP_GATEWAY, "test"), the(VM, "dev")
    arm = Arm(
        scripts={gateway.id.lower(): running(6), vm.id.lower(): running(12)},
        retry_after={vm.id.lower(): 9.0, gateway.id.lower(): 7.0},
    )
    outcome = arm.run(walk_version=walk_version)
    assert statuses(outcome) == dict.fromkeys(ENVIRONMENTS, "Succeeded")
    reads = [c for c in outcome.calls if gateway.id in polled(c)]
    assert len(reads) == 7
    assert all(vm.id in polled(c) for c in reads)
    gaps = {(b.at - a.at).total_seconds() for a, b in pairwise(reads)}
    assert gaps == ({9.0} if walk_version == WALK_VERSION else {7.0})


def test_an_input_of_walk_version_4_polls_up_to_the_ceiling_it_was_written_with() -> None:
    # Its history holds timers of four times the shortest interval at most: it replays them.
    gateway = the(APP_GATEWAY, "test")
    outcome = Arm(scripts={gateway.id.lower(): running(6)}).run(walk_version=4)
    timers = [(c.input - c.at).total_seconds() for c in outcome.calls if c.kind == "timer"]
    assert timers == [5.0, 7.5, 11.25, 16.875, 20.0, 20.0, 20.0]


@pytest.mark.parametrize(
    ("resource_type", "environment", "retry_after", "waits"),
    [
        # 9 s is honoured; 600 s is cut to the walk's ceiling (four times the shortest interval).
        (APP_GATEWAY, "test", 9.0, [9.0, 9.0]),
        (VM, "dev", 600.0, [20.0, 20.0]),
    ],
)
def test_an_operation_is_polled_after_arms_retry_after_within_the_bounds(
    resource_type: str, environment: str, retry_after: float, waits: list[float]
) -> None:
    resource = the(resource_type, environment)
    arm = Arm(
        scripts={resource.id.lower(): running(1)},
        retry_after={resource.id.lower(): retry_after},
    )
    outcome = arm.run()
    assert outcome.output["status"] == "Succeeded"
    timers = [
        (c.input - c.at).total_seconds()
        for c in outcome.calls
        if c.kind == "timer" and step_of(c.status, environment).endswith(resource.name)
    ]
    assert timers == waits


def test_an_input_without_a_walk_version_replays_with_the_fixed_interval() -> None:
    """Instances started before walk version 2 (their inputs have no `walkVersion`) keep the
    fixed interval, the shared-first barrier and one history: they replay as written."""
    gateway = the(APP_GATEWAY, "test")
    arm = Arm(
        scripts={
            gateway.id.lower(): [("InProgress", None), ("InProgress", None), ("Succeeded", None)]
        }
    )
    outcome = arm.run(walk_version=None)
    assert outcome.output["status"] == "Succeeded"
    children = [c for c in outcome.calls if c.kind == "orchestration"]
    assert all("walkVersion" not in c.input or c.input["walkVersion"] == 1 for c in children)
    timers = [c for c in outcome.calls if c.kind == "timer"]
    assert [t.input - t.at for t in timers] == [POLL, POLL]
    assert "continue_as_new" not in [c.name for c in outcome.calls]


def test_a_long_walk_continues_as_new_and_no_episode_replays_a_long_history() -> None:
    gateway = the(APP_GATEWAY, "prod")
    polls = 60
    arm = Arm(scripts={gateway.id.lower(): running(polls)})
    outcome = arm.run()
    assert outcome.output["status"] == "Succeeded"
    assert statuses(outcome) == dict.fromkeys(ENVIRONMENTS, "Succeeded")
    # Every resource applied once: the walk's state crossed the generations intact.
    assert sorted(arm.started) == sorted(r.id for r in GRAPH)
    assert arm.scripts[gateway.id.lower()] == []
    prod = outcome.output["environments"]["prod"]
    assert prod["resourcesDone"] == prod["resourcesTotal"] == len(GRAPH.for_environment("prod"))
    continued = [c for c in outcome.calls if c.name == "continue_as_new"]
    assert len(continued) >= 2
    assert all(c.input["walks"]["prod"]["running"] for c in continued)
    assert arm.replay is not None
    child = arm.replay.children[f"{INSTANCE}:walk"]
    assert child.generations == len(continued) + 1
    # Bounded: a generation's history holds at most 20 steps, whatever the walk's length
    # (issue 16's target: no episode replays more than 300 history events).
    assert child.longest_history <= 300


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


def test_failed_shared_resources_fail_every_environment_and_start_nothing_that_needs_them() -> None:
    vnet = next(r for r in GRAPH.for_environment(SHARED) if r.type.endswith("virtualNetworks"))
    arm = Arm(scripts={vnet.id.lower(): [("Failed", {"code": "InvalidRequest", "message": "no"})]})
    outcome = arm.run()
    assert outcome.output["status"] == "Failed"
    assert statuses(outcome) == dict.fromkeys(ENVIRONMENTS, "Failed")
    error = outcome.output["environments"]["dev"]["error"]
    assert (error["code"], error["resource"]) == ("InvalidRequest", vnet.id)
    assert error["message"].startswith("shared resources failed")
    assert not {r.lower() for r in arm.started} & _dependents(vnet.id)
    assert "read_outputs" not in [c.name for c in outcome.calls]


def test_an_input_of_walk_version_4_starts_no_environment_when_shared_resources_fail() -> None:
    vnet = next(r for r in GRAPH.for_environment(SHARED) if r.type.endswith("virtualNetworks"))
    arm = Arm(scripts={vnet.id.lower(): [("Failed", {"code": "InvalidRequest", "message": "no"})]})
    outcome = arm.run(walk_version=4)
    assert statuses(outcome) == dict.fromkeys(ENVIRONMENTS, "Failed")
    error = outcome.output["environments"]["dev"]["error"]
    assert error["message"].startswith("shared resources failed")
    children = [c.input["environment"] for c in outcome.calls if c.kind == "orchestration"]
    assert children == [SHARED]


def test_a_start_arm_kept_throttling_is_sent_again_after_growing_waits() -> None:
    # Every attempt of the first two rounds throttled (the activity's own retries), then ARM
    # answers: the walk waits with durable timers instead of failing (many deployments at once
    # spend the subscription's write budget).
    arm = Arm(batches_throttled=2 * ACTIVITY_ATTEMPTS)
    outcome = arm.run()
    assert outcome.output["status"] == "Succeeded"
    assert statuses(outcome) == dict.fromkeys(ENVIRONMENTS, "Succeeded")
    assert sorted(r for batch in arm.batches for r in batch) == sorted(r.id for r in GRAPH)
    waits = [c.input - c.at for c in outcome.calls if c.kind == "timer"][:2]
    assert waits[1] == 2 * waits[0] > timedelta(0)


def test_a_start_throttled_past_every_round_fails_the_walk() -> None:
    arm = Arm(batches_throttled=10_000)
    outcome = arm.run()
    assert outcome.output["status"] == "Failed"
    assert {p["error"]["code"] for p in outcome.output["environments"].values()} == {
        "ActivityFailed"
    }
    timers = [c for c in outcome.calls if c.kind == "timer"]
    assert len(timers) == PLAN_THROTTLE_ROUNDS


def test_a_throttled_plan_is_read_again_after_growing_waits_and_the_deployment_goes_on() -> None:
    # Every attempt of the first two rounds throttled (Durable's own retries of the activity
    # come within seconds), the third round's first attempt answers.
    arm = Arm(plan_throttled=2 * ACTIVITY_ATTEMPTS)
    outcome = arm.run()
    assert outcome.output["status"] == "Succeeded"
    assert statuses(outcome) == dict.fromkeys(ENVIRONMENTS, "Succeeded")
    assert arm.plan_calls == dict.fromkeys((SHARED, *ENVIRONMENTS), 2 * ACTIVITY_ATTEMPTS + 1)
    waits = [c.input - c.at for c in outcome.calls if c.kind == "timer"][:2]
    assert waits[1] == 2 * waits[0] > timedelta(0)


def test_a_plan_throttled_past_every_round_fails_every_environment() -> None:
    arm = Arm(plan_throttled=100)
    outcome = arm.run()
    assert outcome.output["status"] == "Failed"
    assert {p["error"]["code"] for p in outcome.output["environments"].values()} == {"PlanFailed"}
    assert arm.plan_calls[SHARED] == (1 + PLAN_THROTTLE_ROUNDS) * ACTIVITY_ATTEMPTS


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
    polling = [c for c in outcome.calls if polled(c)]
    [poll] = polling
    # The walk's status says what each environment is doing while it waits.
    shown = poll.status["environments"][environment]
    assert poll.status["phase"] == "environments"
    assert shown["status"] == "Running"
    assert shown["step"] == f"creating {gateway.name}"
    assert shown["resourcesTotal"] == len(GRAPH.for_environment(environment))


def test_a_batch_carries_what_waits_only_for_it_and_starts_it_as_arm_answers_done() -> None:
    # Walk version 6: the vault runs on (a long-running operation), so what waits for it waits
    # for the walk's poll; a password secret ARM answers done at once, so the SQL server that
    # needs it starts in the same activity, not one batch later.
    group = the("Microsoft.Resources/resourceGroups", SHARED)
    vault = the("Microsoft.KeyVault/vaults", SHARED)
    server = the("Microsoft.Sql/servers", "prod")
    password = next(r for r in GRAPH if r.name == "prod-sql-admin-password")
    arm = Arm(scripts={vault.id.lower(): running(1), server.id.lower(): running(1)})
    outcome = arm.run()
    assert statuses(outcome) == dict.fromkeys(ENVIRONMENTS, "Succeeded")
    first, *_ = arm.requested
    after = {item["resourceId"].lower(): item.get("after", []) for item in first}
    # The group alone was ready; the vault came along after it, and the secrets after the vault.
    assert after[group.id.lower()] == []
    assert after[vault.id.lower()] == [group.id]
    assert after[password.id.lower()] == [vault.id]
    assert {group.id, vault.id} <= set(arm.batches[0])
    assert password.id not in arm.batches[0]  # the vault was still running
    [with_password] = [batch for batch in arm.batches if password.id in batch]
    assert with_password.index(password.id) < with_password.index(server.id)
    assert sorted(r for batch in arm.batches for r in batch) == sorted(r.id for r in GRAPH)


def test_an_input_of_walk_version_5_sends_no_item_after_another() -> None:
    # Instances started before walk version 6 replay their histories as they were written.
    arm = Arm()
    outcome = arm.run(walk_version=5)
    assert statuses(outcome) == dict.fromkeys(ENVIRONMENTS, "Succeeded")
    assert all("after" not in item for items in arm.requested for item in items)
    assert [[i["resourceId"] for i in items] for items in arm.requested] == arm.batches


@pytest.mark.parametrize("walk_version", [WALK_VERSION, 5])
def test_deployment_started_is_published_with_the_plans(walk_version: int) -> None:
    # The oracle is the Durable Python SDK itself (azure-functions-durable, as pinned in
    # requirements.txt), which the replay runs: it schedules a task when the orchestrator
    # yields it, not when it is created (`TaskOrchestrationExecutor`). Walk versions 3-5 created
    # the task first but yielded it with the last events, so their histories publish it at the
    # end; they replay that way. Version 6 yields it with the plans, not waiting for it.
    outcome = Arm().run(walk_version=walk_version)
    assert outcome.error is None
    calls = outcome.calls
    [started] = [
        n
        for n, c in enumerate(calls)
        if c.name == "publish_event" and c.input["type"] == "outsystems.deployment.started"
    ]
    plans = [n for n, c in enumerate(calls) if c.name == "plan_environment"]
    walk = next(n for n, c in enumerate(calls) if c.kind == "orchestration")
    if walk_version >= 6:
        # Asked in the episode that asks the plans (same orchestration time), before the walk.
        assert calls[started].at == calls[plans[0]].at
        assert started < walk
    else:
        assert started > walk


def test_a_batch_sends_first_what_the_longest_chains_wait_for() -> None:
    arm = Arm()
    outcome = arm.run()
    assert outcome.output["status"] == "Succeeded"
    first = [item["resourceId"] for item in arm.requested[0]]
    assert first[0] == the("Microsoft.Resources/resourceGroups", SHARED).id
    heights = {r.id.lower(): _height(r.id) for r in GRAPH}
    for items in arm.requested:
        sent = [heights[item["resourceId"].lower()] for item in items]
        assert sent == sorted(sent, reverse=True)


def _height(resource_id: str) -> int:
    """The longest chain of dependents below a resource, from the graph itself."""
    below = [r for r in GRAPH if resource_id.lower() in {d.lower() for d in r.depends_on}]
    return max((1 + _height(r.id) for r in below), default=0)


@pytest.mark.parametrize("walk_version", [WALK_VERSION, 6])
def test_after_a_throttled_check_the_poll_due_goes_out_without_another_timer(
    walk_version: int,
) -> None:
    # ARM throttles the first check past Durable's retries: the walk waits, and then its poll
    # is already due. Walk version 7 sends it at once; version 6 histories hold a timer that
    # fires at once before it (replayed as written).
    gateway = the(APP_GATEWAY, "test")
    arm = Arm(
        scripts={gateway.id.lower(): running(3)},
        throttled_checks=tuple(range(1, 1 + ACTIVITY_ATTEMPTS)),
    )
    outcome = arm.run(walk_version=walk_version)
    assert outcome.output["status"] == "Succeeded"
    calls = [c for c in outcome.calls if c.kind == "timer" or c.name == "check_operations"]
    throttled = next(i for i, c in enumerate(calls) if c.attempt == ACTIVITY_ATTEMPTS)
    wait, after = calls[throttled + 1], calls[throttled + 2]
    assert wait.kind == "timer"
    assert wait.input - wait.at == timedelta(seconds=max(TUNING["retrySeconds"], 1.0))
    if walk_version == WALK_VERSION:
        assert after.name == "check_operations"
    else:
        assert (after.kind, after.input) == ("timer", after.at)


@pytest.mark.parametrize("walk_version", [WALK_VERSION, 7])
def test_a_start_also_polls_what_is_due_at_that_moment(walk_version: int) -> None:
    # ARM throttles the second batch past Durable's retries: after the walk's wait, the vault's
    # first poll is due while what that batch held is still to start: one step does both. Walk
    # version 8 asks one activity for both; versions 6-7 asked two at once (replayed so).
    vault = the("Microsoft.KeyVault/vaults", SHARED)
    second = tuple(range(2, 2 + ACTIVITY_ATTEMPTS))
    arm = Arm(scripts={vault.id.lower(): running(1)}, throttled_calls=second)
    outcome = arm.run(walk_version=walk_version)
    assert statuses(outcome) == dict.fromkeys(ENVIRONMENTS, "Succeeded")
    calls = outcome.calls
    if walk_version == WALK_VERSION:
        [throttled, *_] = [c for c in calls if c.name == "begin_apply_resources"][1:]
        both = next(c for c in calls if c.name == "check_operations_then_start")
        assert calls.index(both) > calls.index(throttled)
        assert polled(both) == [vault.id]
        held = {i["resourceId"] for i in throttled.input["items"] if not i.get("after")}
        assert held <= {i["resourceId"] for i in both.input["then"]["items"]}
        return
    together = [
        (a, b)
        for a, b in pairwise(calls)
        if a.name == "begin_apply_resources" and b.name == "check_operations" and a.at == b.at
    ]
    assert together, "no start polled what was due"
    batch, check = together[0]
    assert [o["resourceId"] for o in check.input["operations"]] == [vault.id]
    # Nothing waited between them: they were asked in one episode.
    assert calls.index(check) == calls.index(batch) + 1


def test_a_poll_that_sees_an_operation_done_starts_what_waited_only_for_it() -> None:
    # Walk version 8: the prod SQL server runs two polls; the poll that sees it done starts
    # its databases in the same activity (they wait for nothing else by then); the polls that
    # saw it running started nothing of what waits for it.
    server = the("Microsoft.Sql/servers", "prod")
    databases = {r.id for r in GRAPH if server.id in r.depends_on and r.environment == "prod"}
    assert databases
    arm = Arm(scripts={server.id.lower(): running(2)})
    outcome = arm.run()
    assert statuses(outcome) == dict.fromkeys(ENVIRONMENTS, "Succeeded")
    starting = [c for c in outcome.calls if c.name in STARTING]
    started = dict(zip(map(id, starting), arm.batches, strict=True))
    polls = [c for c in outcome.calls if server.id in polled(c)]
    assert len(polls) == 3
    assert all(c.name == "check_operations_then_start" for c in polls)
    for poll in polls:
        items = {i["resourceId"]: i.get("after", []) for i in poll.input["then"]["items"]}
        assert all(items[d] == [server.id] for d in databases & items.keys())
    *running_polls, done_poll = polls
    assert not databases & {r for c in running_polls for r in started[id(c)]}
    assert databases <= set(started[id(done_poll)])
    # Nowhere else: each database started once.
    assert sorted(r for batch in arm.batches for r in batch) == sorted(r.id for r in GRAPH)


def test_walk_version_8_asks_fewer_activities_than_version_7_for_the_same_answers() -> None:
    # The same ARM answers (a chain of long operations: the prod SQL server, a database, the
    # setup, the scale set); version 8's polls start what their ends allow, so the starts that
    # version 7 asked one activity (one episode) later are not asked on their own.
    chain = [
        the("Microsoft.Sql/servers", "prod"),
        next(r for r in GRAPH if r.name.endswith("prodlog-db")),
        the("Microsoft.Compute/virtualMachines/extensions", "prod"),
        the("Microsoft.Compute/virtualMachineScaleSets", "prod"),
    ]

    def deploy(walk_version: int) -> tuple[Arm, Outcome]:
        arm = Arm(scripts={r.id.lower(): running(3) for r in chain})
        return arm, arm.run(walk_version=walk_version)

    (new, eight), (old, seven) = deploy(WALK_VERSION), deploy(7)
    for arm, outcome in ((new, eight), (old, seven)):
        assert statuses(outcome) == dict.fromkeys(ENVIRONMENTS, "Succeeded")
        assert sorted(r for batch in arm.batches for r in batch) == sorted(r.id for r in GRAPH)
    assert not [c for c in seven.calls if c.name == "check_operations_then_start"]
    activities = [len([c for c in o.calls if c.kind == "activity"]) for o in (eight, seven)]
    assert activities[0] < activities[1]
    # Each long link's end starts the next in the poll that saw it.
    starting = [c for c in eight.calls if c.name in STARTING]
    for before, after in pairwise(chain):
        [start] = [c for c, ids in zip(starting, new.batches, strict=True) if after.id in ids]
        assert start.name == "check_operations_then_start"
        assert before.id in polled(start)

"""The deployment's activities (`activities/resources.py`) against ARM on the wire.

Each activity runs as the worker runs it (the registered function, JSON in and out) against the
ARM simulator on loopback, reached through the app's own connection; nothing of ours is mocked.
What is checked is the activities' own contract with the orchestration: a plan answers each
resource's action only, a started PUT answers an `Operation` that `check_operations` follows to
its end, a second plan sees what the first PUTs made, and the outputs name the gateways' URLs.
ARM's side of it is published: a PUT that takes time answers 201/202 with
`Azure-AsyncOperation` (or `Location`) to poll (Microsoft's "Track asynchronous Azure
operations", ms.date 01/31/2022,
https://learn.microsoft.com/azure/azure-resource-manager/management/async-operations).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest

from localdev.armsim.server import SimulatorServer
from localdev.armsim.testing import running_simulator
from outsystems.deployment import graph_of
from outsystems.messages import Operation, PlannedAction, outputs_from_json
from outsystems.resource_types import KEY_VAULT, PUBLIC_IP, ROLE_ASSIGNMENT, SQL_SERVER
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


def follow(operation: Operation) -> Operation:
    """Poll a running operation until it ends (or ten polls), as the orchestration does."""
    answer: Any = operation.to_json()
    for _ in range(10):
        if Operation.from_json(answer).done:
            break
        time.sleep(0.05)
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


def test_a_batch_starts_each_of_its_resources_and_answers_in_its_order(
    sim: SimulatorServer,
) -> None:
    assert apply(GROUP).succeeded
    batch = [r for r in SHARED[1:] if r.depends_on == (GROUP.id,)][:4]
    assert len(batch) >= 2
    answer: Any = activity("begin_apply_resources")(
        {
            "spec": SPEC,
            "items": [{"resourceId": r.id, "rerun": 0} for r in batch],
            "nonce": "n-1",
        }
    )
    operations = [Operation.from_json(item) for item in answer]
    assert [o.resource_id for o in operations] == [r.id for r in batch]
    assert {o.method for o in operations} == {"PUT"}
    puts = [q["path"].lower() for q in sim.requests() if q["method"] == "PUT"]
    assert all(r.id.lower() in puts for r in batch)


def test_a_batch_sends_every_put_before_it_raises_for_one_that_could_not_start(
    sim: SimulatorServer,
) -> None:
    assert apply(GROUP).succeeded
    unknown = GROUP.id + "/providers/Microsoft.Network/networkSecurityGroups/not-in-the-spec"
    with pytest.raises(Exception, match="not-in-the-spec"):
        activity("begin_apply_resources")(
            {
                "spec": SPEC,
                "items": [{"resourceId": unknown}, {"resourceId": NSG.id}],
                "nonce": "n-1",
            }
        )
    # The NSG's PUT went out all the same: Durable's retry of the batch sends it again, as a
    # second run of an idempotent PUT.
    assert get(NSG.id, NSG.api_version) is not None


def test_only_the_types_whose_body_depends_on_live_state_are_read_before_their_put(
    sim: SimulatorServer,
) -> None:
    from activities.resources import _desired_body, reads_before_put

    assert apply(GROUP).succeeded
    since = len(sim.requests())
    assert apply(NSG).succeeded
    nsg_requests = [(q["method"], q["path"].lower()) for q in sim.requests(since)]
    assert ("GET", NSG.id.lower()) not in nsg_requests
    assert ("PUT", NSG.id.lower()) in nsg_requests
    # The guard of that saving: for every type started without a read, the body sent is the
    # same whatever exists (a live body with foreign tags and another capacity changes nothing).
    live = {"tags": {"owner": "someone"}, "sku": {"capacity": 7}, "properties": {"x": 1}}
    unread = [r for r in GRAPH if not reads_before_put(r.type)]
    assert len(unread) > len(GRAPH) // 2
    for resource in unread:
        assert _desired_body(resource, live, False) == _desired_body(resource, None, False), (
            resource.type
        )
    assert {r.type for r in GRAPH if reads_before_put(r.type)} >= {GROUP.type}


def _needed_by(resources: list[Resource]) -> list[Resource]:
    """Everything `resources` depend on, directly or not, in the graph's (dependency) order."""
    by_id = {r.id.lower(): r for r in GRAPH}
    needed: set[str] = set()
    frontier = [d.lower() for r in resources for d in r.depends_on]
    while frontier:
        resource_id = frontier.pop()
        if resource_id not in needed and resource_id in by_id:
            needed.add(resource_id)
            frontier += [d.lower() for d in by_id[resource_id].depends_on]
    return [r for r in GRAPH if r.id.lower() in needed]


def test_a_batch_reads_what_its_resources_refer_to_once_and_an_absent_assignment_not_at_all(
    sim: SimulatorServer,
) -> None:
    identity = next(r for r in GRAPH if r.name == "acme-dev-id")
    assignments = [r for r in GRAPH if r.type == ROLE_ASSIGNMENT and identity.id in r.depends_on]
    assert len(assignments) >= 3
    for resource in _needed_by(assignments):
        assert apply(resource).succeeded, resource.id
    since = len(sim.requests())
    answer: Any = activity("begin_apply_resources")(
        {
            "spec": SPEC,
            "items": [{"resourceId": r.id, "absent": True} for r in assignments],
            "nonce": "n-1",
        }
    )
    assert {Operation.from_json(o).status for o in answer} <= {"Succeeded", "InProgress"}
    sent = [(q["method"], q["path"].lower()) for q in sim.requests(since)]
    # Every assignment names the identity's principal: read once for the batch, not each time.
    assert sent.count(("GET", identity.id.lower())) == 1
    for assignment in assignments:
        assert ("PUT", assignment.id.lower()) in sent
        # The plan found it absent moments before: not read again (first attempt).
        assert ("GET", assignment.id.lower()) not in sent
    # Not absent (a retry, or one that exists): read first, for an earlier principal.
    since = len(sim.requests())
    activity("begin_apply_resources")(
        {"spec": SPEC, "items": [{"resourceId": assignments[0].id}], "nonce": "n-1"}
    )
    sent = [(q["method"], q["path"].lower()) for q in sim.requests(since)]
    assert ("GET", assignments[0].id.lower()) in sent


def test_the_plan_of_a_platform_whose_group_does_not_exist_reads_the_group_alone(
    sim: SimulatorServer,
) -> None:
    # A resource whose id is under a resource group lives in it and cannot outlive it:
    # "When you delete a resource group, all of its resources are also deleted" (Microsoft
    # Learn, "Azure Resource Manager resource group and resource deletion",
    # learn.microsoft.com/azure/azure-resource-manager/management/delete-resource-group). So
    # with no group nothing of the platform exists, and one read tells the whole plan.
    group = f"/subscriptions/{SUBSCRIPTION}/resourcegroups/acme-rg"
    for scope in ("shared", "dev"):
        since = len(sim.requests())
        actions = plan(scope)
        reads = [q["path"].lower() for q in sim.requests(since) if q["method"] == "GET"]
        assert reads == [group], scope
        assert set(actions.values()) == {"create"}
        assert sorted(actions) == sorted(r.id for r in GRAPH.for_environment(scope))
    # Once the group exists, each resource is read, and what exists is seen.
    assert apply(GROUP).succeeded
    assert apply(NSG).succeeded
    since = len(sim.requests())
    actions = plan("shared")
    reads = [q["path"].lower() for q in sim.requests(since) if q["method"] == "GET"]
    assert len(reads) == len(SHARED)
    assert (actions[GROUP.id], actions[NSG.id]) == ("noop", "noop")


@pytest.fixture
def slow_sim(monkeypatch: pytest.MonkeyPatch) -> Iterator[SimulatorServer]:
    """A simulator where a vault, a network security group and a SQL server take a while (a
    hundredth of the latency table: 0.1 s, 0.05 s, 1.8 s), and groups, identities and secrets
    are answered done with their PUT."""
    with (
        running_simulator(throttling=False, latency_scale=0.01) as simulator,
        app_on(simulator, monkeypatch, PLATFORM_KEY_SEED="activity-test-seed") as running,
    ):
        yield running


def test_a_batch_starts_what_comes_after_its_items_once_arm_answered_them_done(
    slow_sim: SimulatorServer,
) -> None:
    # Walk version 6's `after`. ARM's side: a PUT answered 200/201 without
    # `Azure-AsyncOperation` or `Location` is done; one answered with them runs on and is
    # polled ("Track asynchronous Azure operations", see the module's docstring). The
    # activity sends what comes after only the first kind, and never waits for the second.
    by_name = {r.name: r for r in GRAPH}
    vault, identity = by_name["acme-kv-itqutubduzs7u"], by_name["acme-dev-id"]
    password, server = by_name["dev-sql-admin-password"], by_name["acme-dev-srvitqutubduzs7u"]
    assignment = next(r for r in GRAPH if r.type == ROLE_ASSIGNMENT and password.id in r.depends_on)

    def batch(*items: dict[str, Any]) -> dict[str, Operation]:
        answer: Any = activity("begin_apply_resources")(
            {"spec": SPEC, "items": list(items), "nonce": "n-1"}
        )
        return {o.resource_id.lower(): o for o in map(Operation.from_json, answer)}

    answered = batch(
        {"resourceId": GROUP.id},
        {"resourceId": NSG.id, "after": [GROUP.id]},
        {"resourceId": vault.id, "after": [GROUP.id]},
        {"resourceId": identity.id, "after": [GROUP.id]},
        {"resourceId": password.id, "after": [vault.id]},
    )
    assert answered[GROUP.id.lower()].status == "Succeeded"
    assert answered[identity.id.lower()].status == "Succeeded"
    assert answered[NSG.id.lower()].status == "InProgress"
    # The vault runs on (0.1 s here; polled once more when the rest was sent, it is answered
    # as that poll saw it): while it runs, its secret is neither sent nor answered (its walk
    # starts it later).
    if answered[vault.id.lower()].status == "InProgress":
        assert password.id.lower() not in answered
        assert ("PUT", password.id.lower()) not in {
            (q["method"], q["path"].lower()) for q in slow_sim.requests()
        }
        assert follow(answered[vault.id.lower()]).succeeded
    else:  # a slow machine: the batch outlasted the vault
        assert answered[password.id.lower()].status == "Succeeded"
    since = len(slow_sim.requests())
    answered = batch(
        {"resourceId": password.id},
        {"resourceId": server.id, "after": [password.id]},
        {"resourceId": assignment.id, "after": [password.id]},
    )
    assert answered[password.id.lower()].status == "Succeeded"
    assert answered[assignment.id.lower()].status == "Succeeded"
    assert answered[server.id.lower()].status == "InProgress"
    puts = {q["path"].lower(): q for q in slow_sim.requests(since) if q["method"] == "PUT"}
    # Each sent once its secret was written (the server's password is read from it).
    assert puts[server.id.lower()]["start"] >= puts[password.id.lower()]["end"]
    assert puts[assignment.id.lower()]["start"] >= puts[password.id.lower()]["end"]


def test_a_check_starts_what_waits_for_a_polled_operation_once_its_poll_answers_it_done(
    slow_sim: SimulatorServer,
) -> None:
    # Walk version 8's `check_operations_then_start`. ARM's side: an operation is done when its
    # poll answers `Succeeded` ("Track asynchronous Azure operations", ms.date 01/31/2022; the
    # oracle test of that word is tests/unit/test_arm_poll_oracle.py). A vault answers its PUT
    # with a provisioning state, polled by reading the vault; until it is done, what waits for
    # it is neither sent nor answered.
    by_name = {r.name: r for r in GRAPH}
    vault, password = by_name["acme-kv-itqutubduzs7u"], by_name["dev-sql-admin-password"]
    assert apply(GROUP).succeeded
    [started] = activity("begin_apply_resources")(
        {"spec": SPEC, "items": [{"resourceId": vault.id}], "nonce": "n-1"}
    )
    operation = Operation.from_json(started)
    assert operation.status == "InProgress"

    def check_then_start() -> tuple[list[Operation], list[Operation]]:
        answer: Any = activity("check_operations_then_start")(
            {
                "check": {
                    "subscriptionId": SUBSCRIPTION,
                    "solutionId": "acme",
                    "operations": [operation.to_json()],
                },
                "then": {
                    "spec": SPEC,
                    "items": [
                        {"resourceId": NSG.id},
                        {"resourceId": password.id, "after": [vault.id]},
                    ],
                    "nonce": "n-1",
                },
            }
        )
        return (
            [Operation.from_json(o) for o in answer["checked"]],
            [Operation.from_json(o) for o in answer["started"]],
        )

    checked, begun = check_then_start()
    assert [(o.resource_id, o.status) for o in checked] == [(vault.id, "InProgress")]
    # What waits for nothing polled starts at once; the secret waits for the vault.
    assert [o.resource_id for o in begun] == [NSG.id]
    assert ("PUT", password.id.lower()) not in {
        (q["method"], q["path"].lower()) for q in slow_sim.requests()
    }
    time.sleep(0.2)  # the vault takes 0.1 s here
    since = len(slow_sim.requests())
    checked, begun = check_then_start()
    assert [(o.resource_id, o.status) for o in checked] == [(vault.id, "Succeeded")]
    assert {o.resource_id for o in begun} == {NSG.id, password.id}
    sent = slow_sim.requests(since)
    # The vault's PUT answered 201 with a provisioning state: polled by reading the vault.
    poll = next(q for q in sent if (q["method"], q["path"].lower()) == ("GET", vault.id.lower()))
    put = next(q for q in sent if (q["method"], q["path"].lower()) == ("PUT", password.id.lower()))
    # Sent once the poll answered the vault done.
    assert put["start"] >= poll["end"]


@pytest.mark.parametrize(
    ("first", "then"),
    [
        # A vault answers its PUT with a provisioning state: polled by reading the vault.
        ("acme-kv-itqutubduzs7u", "dev-sql-admin-password"),
        # A public IP answers with `Azure-AsyncOperation`: polled at that URL.
        ("acme-natgw-pip", "acme-natgw"),
    ],
)
def test_what_waits_for_an_operation_of_its_batch_starts_if_that_ended_while_the_batch_ran(
    slow_sim: SimulatorServer, monkeypatch: pytest.MonkeyPatch, first: str, then: str
) -> None:
    # The first resource's PUT is answered running; the simulator's clock then jumps past its
    # end (as if the rest of the batch had taken that long). Once the rest was sent, the batch
    # polls it once more, sees it done (its poll answers `Succeeded`: "Track asynchronous Azure
    # operations", ms.date 01/31/2022, tests/unit/test_arm_poll_oracle.py), and sends what
    # waits for it; it is answered as seen.
    by_name = {r.name: r for r in GRAPH}
    running, waiting = by_name[first], by_name[then]
    engine = slow_sim.engine
    handle = engine.handle

    def jump_after_its_put(request: Any, **options: Any) -> Any:
        response = handle(request, **options)
        if (request.method, request.path.lower()) == ("PUT", running.id.lower()):
            engine.fast_forward(60)
        return response

    monkeypatch.setattr(engine, "handle", jump_after_its_put)
    answer: Any = activity("begin_apply_resources")(
        {
            "spec": SPEC,
            "items": [
                {"resourceId": GROUP.id},
                {"resourceId": running.id, "after": [GROUP.id]},
                {"resourceId": waiting.id, "after": [GROUP.id, running.id]},
            ],
            "nonce": "n-1",
        }
    )
    answered = {o.resource_id.lower(): o for o in map(Operation.from_json, answer)}
    statuses = [answered[r.id.lower()].status for r in (GROUP, running, waiting)]
    assert statuses[:2] == ["Succeeded", "Succeeded"]
    assert statuses[2] in {"Succeeded", "InProgress"}  # sent: its own operation may run on
    sent = [q for q in slow_sim.requests() if q["method"] in {"GET", "PUT"}]
    keys = [(q["method"], q["path"].lower()) for q in sent]
    put_first, put_then = (
        keys.index(("PUT", running.id.lower())),
        keys.index(("PUT", waiting.id.lower())),
    )
    # Polled between the two PUTs (by reading it, or at its operation's URL).
    polls = [key for key in keys[put_first + 1 : put_then] if key[0] == "GET"]
    assert polls, "not polled again before what waits for it was sent"


def test_what_the_plan_found_absent_is_not_read_again_and_a_second_run_sends_it_again(
    sim: SimulatorServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The chain a deployment starts with: the group, the vault, the SQL password, the server.
    # Found absent by the plan moments before (first attempt), the group, the vault and the
    # server are not read again before their PUT; a second run of the activity (Durable runs
    # an activity at least once) sends each again, and ARM accepts it: a SQL server's
    # administratorLoginPassword may be sent on an update (Microsoft Learn,
    # Azure.ResourceManager.Sql `SqlServerData.AdministratorLoginPassword` { get; set; }: "The
    # administrator login password (required for server creation)"; the Java SDK's
    # `ServerUpdate.withAdministratorLoginPassword`). A secret is still read first: a vault
    # recovered from soft delete brings its secrets back (tests/e2e/test_lifecycle.py). What the
    # batch keeps of a secret is what ARM answers of one: its content type, never its value
    # (Azure.ResourceManager.KeyVault `SecretProperties.Value`: "'value' will never be returned
    # from the service").
    from activities.resources import reads_before_put
    from arm.secrets import nonce_of

    # A platform that had its SQL password in an app setting before the vault: a password's
    # render looks for its server, to carry that password over to a server made with it.
    monkeypatch.setenv("SQL_ADMIN_PASSWORD", "Pre-Vault-Passw0rd!q4")

    vault = next(r for r in SHARED if r.type == KEY_VAULT)
    password = next(r for r in GRAPH if r.name == "prod-sql-admin-password")
    server = next(r for r in GRAPH if r.type == SQL_SERVER and "prod" in r.name)
    assert password.id in server.depends_on
    chain = [GROUP, vault, password, server]
    for resource in _needed_by(chain):
        if resource not in chain:
            assert apply(resource).succeeded, resource.id
    assert reads_before_put(password.type, absent=True)

    def batch() -> list[tuple[str, str]]:
        """Start the chain as the walk does; the requests the start batches sent."""
        sent: list[tuple[str, str]] = []

        def start(items: list[dict[str, Any]]) -> list[Operation]:
            since = len(sim.requests())
            answer: Any = activity("begin_apply_resources")(
                {"spec": SPEC, "items": items, "nonce": "n-1"}
            )
            sent.extend((q["method"], q["path"].lower()) for q in sim.requests(since))
            return [Operation.from_json(o) for o in answer]

        items: list[dict[str, Any]] = [{"resourceId": GROUP.id, "absent": True}]
        for before, resource in pairwise(chain):
            items.append({"resourceId": resource.id, "absent": True, "after": [before.id]})
        started = start(items)
        # Should the vault's creation outlast the batch, the rest starts in the next one, as
        # the walk's next poll would start it (the server still after its password).
        if len(started) < len(chain):
            assert follow(started[-1]).succeeded
            rest = items[len(started) :]
            started += start([{**rest[0], "after": []}, *rest[1:]])
        assert [o.resource_id for o in started] == [r.id for r in chain]
        assert all(follow(o).succeeded for o in started), started
        return sent

    for run in (1, 2):
        sent = batch()
        for resource in (GROUP, vault, server):
            put = sent.index(("PUT", resource.id.lower()))
            # Not read before its PUT (a GET after it is the poll of its operation), and in
            # the first run the password's render did not read the server either.
            assert ("GET", resource.id.lower()) not in sent[:put], (run, resource.name)
        # The password is read once, by its own start; the server's PUT takes its nonce from
        # what the batch wrote (first run) or read and kept (second run).
        assert sent.count(("GET", password.id.lower())) == 1, run
        assert (("PUT", password.id.lower()) in sent) == (run == 1)
        # A soft-deleted vault of that name would be recovered: that is still looked for.
        assert any("/deletedvaults/" in path for method, path in sent if method == "GET")
        [secret] = [r for r in sim.resources() if r["id"].lower() == password.id.lower()]
        assert nonce_of(secret["body"]["properties"]["contentType"]) == "n-1", run

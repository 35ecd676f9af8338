"""The environment walk: dependency order, parallel starts, retries, timeouts, progress."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from outsystems.deployment import (
    MAX_ATTEMPTS,
    PlatformWalk,
    Walk,
    display_name,
    leaf_poll_ceiling,
    poll_policy,
    timeout_for,
)
from outsystems.messages import Operation, WalkState
from outsystems.resource_types import NIC, NSG, SCALE_SET, VM, VNET
from outsystems.teardown import Found, deletion_graph, rank, select
from outsystems.topology import Resource

T0 = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


def res(name: str, *deps: str, type_: str = NIC) -> Resource:
    return Resource(
        id=f"/x/{name}", type=type_, name=name, api_version="v", environment="dev", body={},
        depends_on=tuple(f"/x/{d}" for d in deps),
    )  # fmt: skip


def op(resource: Resource, status: str, code: str | None = None) -> Operation:
    error = {"code": code, "message": f"{code} happened"} if code else None
    return Operation.from_json(
        {"resourceId": resource.id, "method": "PUT", "status": status, "error": error}
    )


A, B, C, D = res("a"), res("b", "a"), res("c", "a"), res("d", "b", "c")
SHARED_DEP = res("e", "outside")


def names(resources: list[Resource]) -> list[str]:
    return [r.name for r in resources]


def test_independent_branches_start_together_and_joins_wait_for_both() -> None:
    walk = Walk([A, B, C, D], [r.id for r in (A, B, C, D)])
    assert names(walk.ready(T0)) == ["a"]
    walk.started(A.id, op(A, "Succeeded"), T0)
    assert names(walk.ready(T0)) == ["b", "c"]
    walk.started(B.id, op(B, "InProgress"), T0)
    walk.started(C.id, op(C, "Succeeded"), T0)
    assert walk.ready(T0) == []
    assert walk.progress().to_json() == {
        "status": "Running", "resourcesDone": 2, "resourcesTotal": 4, "step": "creating b",
        "error": None,
    }  # fmt: skip
    walk.checked(op(B, "Succeeded"), T0)
    assert names(walk.ready(T0)) == ["d"]
    walk.started(D.id, op(D, "Succeeded"), T0)
    assert walk.finished
    assert walk.progress().to_json()["status"] == "Succeeded"


def test_resources_the_plan_left_alone_count_as_done() -> None:
    walk = Walk([A, B, C, D], [D.id])
    assert names(walk.ready(T0)) == ["d"]
    assert walk.done_count == 3
    assert Walk([A], []).finished


def test_dependencies_outside_the_walk_count_as_done() -> None:
    assert names(Walk([SHARED_DEP], [SHARED_DEP.id]).ready(T0)) == ["e"]


def test_retryable_failure_backs_off_then_retries_until_attempts_run_out() -> None:
    walk = Walk([A], [A.id], backoff_scale=1.0)
    now = T0
    for attempt in range(1, MAX_ATTEMPTS):
        walk.started(A.id, op(A, "Failed", "RetryableError"), now)
        assert not walk.finished
        assert walk.ready(now) == []
        retry_at = walk.next_retry_at()
        assert retry_at is not None
        assert retry_at > now
        now = retry_at
        assert names(walk.ready(now)) == ["a"], f"attempt {attempt}"
    walk.started(A.id, op(A, "Failed", "RetryableError"), now)
    assert walk.finished
    assert walk.progress().to_json()["error"] == {
        "code": "RetryableError", "message": "RetryableError happened", "resource": A.id,
    }  # fmt: skip


def test_permanent_failure_stops_the_walk_with_arms_error() -> None:
    walk = Walk([A, B], [A.id, B.id])
    walk.started(A.id, op(A, "InProgress"), T0)
    walk.checked(op(A, "Failed", "OperationNotAllowed"), T0)
    assert walk.finished
    progress = walk.progress().to_json()
    assert progress["status"] == "Failed"
    assert progress["step"] is None
    assert progress["error"]["code"] == "OperationNotAllowed"
    assert walk.ready(T0) == []


def test_an_operation_past_its_limit_times_out() -> None:
    vm = res("vm", type_=VM)
    walk = Walk([vm], [vm.id], timeout_scale=0.5)
    walk.started(vm.id, op(vm, "InProgress"), T0)
    walk.check_deadlines(T0 + timeout_for(VM, 0.5))
    assert not walk.finished
    walk.check_deadlines(T0 + timeout_for(VM, 0.5) + timedelta(seconds=1))
    assert walk.progress().to_json()["error"]["code"] == "OperationTimedOut"
    assert "20 minutes" in walk.progress().to_json()["error"]["message"]


def test_a_check_for_an_unknown_operation_is_ignored() -> None:
    walk = Walk([A], [A.id])
    walk.checked(op(B, "Succeeded"), T0)
    assert names(walk.ready(T0)) == ["a"]


@pytest.mark.parametrize(
    ("before", "after"),
    [(SCALE_SET, NIC), (VM, NIC), (NIC, VNET), (VNET, NSG), ("Microsoft.Foo/bars", VM)],
)
def test_teardown_deletes_users_before_what_they_use(before: str, after: str) -> None:
    assert rank(before) < rank(after)


def test_deletion_graph_makes_each_wave_wait_for_the_previous_one() -> None:
    found = [
        Found("/x/nsg", NSG, "dev"),
        Found("/x/vm", VM, "dev"),
        Found("/x/nic", NIC, "dev"),
        Found("/x/vm2", VM, "test"),
    ]
    graph = {r.name: r for r in deletion_graph(found)}
    assert graph["vm"].depends_on == graph["vm2"].depends_on == ()
    assert set(graph["nic"].depends_on) == {"/x/vm", "/x/vm2"}
    assert set(graph["nsg"].depends_on) == {"/x/vm", "/x/vm2", "/x/nic"}


def test_teardown_selects_shared_resources_only_for_the_whole_platform() -> None:
    found = [Found("/x/a", NIC, "dev"), Found("/x/s", VNET, "shared"), Found("/x/t", NIC, "test")]
    assert [f.id for f in select(found, ["dev"], whole_platform=False)] == ["/x/a"]
    assert [f.id for f in select(found, ["dev", "test"], whole_platform=True)] == [
        "/x/a", "/x/s", "/x/t",
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("resource_id", "type_", "shown"),
    [
        ("/s/1/providers/Microsoft.Compute/virtualMachines/vm1", VM, "vm1"),
        (
            "/s/1/providers/Microsoft.Compute/virtualMachines/vm1/extensions/setup",
            "Microsoft.Compute/virtualMachines/extensions",
            "vm1/setup",
        ),
        (
            "/s/1/providers/Microsoft.Storage/storageAccounts/sa/fileServices/default/shares/cfg",
            "Microsoft.Storage/storageAccounts/fileServices/shares",
            "sa/cfg",
        ),
    ],
)
def test_steps_name_child_resources_with_their_parent(
    resource_id: str, type_: str, shown: str
) -> None:
    resource = Resource(resource_id, type_, resource_id.rsplit("/", 1)[1], "v", "dev", {})
    assert display_name(resource) == shown


# The Custom Script Extension's failure for exit code 3010, as ARM relays it (Microsoft's
# "Custom Script Extension for Windows" troubleshooting: "Command execution finished, but failed
# because it returned a non-zero exit code of: '<code>'").
REBOOTED = (
    "VM has reported a failure when processing extension 'outsystems-setup' (publisher "
    "'Microsoft.Compute' and type 'CustomScriptExtension'). Error message: 'Command execution "
    "finished, but failed because it returned a non-zero exit code of: '3010''."
)


def failed_with(resource: Resource, message: str) -> Operation:
    error = {"code": "VMExtensionProvisioningError", "message": message}
    return Operation.from_json(
        {"resourceId": resource.id, "method": "PUT", "status": "Failed", "error": error}
    )


def test_a_setup_that_exits_3010_runs_again_after_a_wait_then_succeeds() -> None:
    from outsystems.deployment import MAX_REBOOT_RERUNS, REBOOT_WAIT_SECONDS
    from outsystems.resource_types import VM_EXTENSION

    setup = res("vm/outsystems-setup", type_=VM_EXTENSION)
    walk = Walk([setup], [setup.id])
    now = T0
    assert walk.rerun_of(setup.id) == 0
    for rerun in range(1, MAX_REBOOT_RERUNS + 1):
        walk.started(setup.id, op(setup, "InProgress"), now)
        walk.checked(failed_with(setup, REBOOTED), now)
        assert not walk.finished
        assert (
            walk.progress()
            .to_json()["step"]
            .endswith("/outsystems-setup (rebooted or running in the background)")
        )
        assert walk.ready(now) == []
        now = now + timedelta(seconds=REBOOT_WAIT_SECONDS)
        assert names(walk.ready(now)) == ["vm/outsystems-setup"]
        # The orchestration sends the rerun number as the extension's forceUpdateTag.
        assert walk.rerun_of(setup.id) == rerun
    walk.started(setup.id, op(setup, "Succeeded"), now)
    assert walk.progress().to_json()["status"] == "Succeeded"


def test_a_setup_that_never_finishes_fails_naming_the_log() -> None:
    from outsystems.deployment import MAX_REBOOT_RERUNS, REBOOT_WAIT_SECONDS
    from outsystems.resource_types import VM_EXTENSION

    setup = res("vm/outsystems-setup", type_=VM_EXTENSION)
    walk = Walk([setup], [setup.id])
    now = T0
    for _ in range(MAX_REBOOT_RERUNS + 1):
        walk.started(setup.id, op(setup, "InProgress"), now)
        walk.checked(failed_with(setup, REBOOTED), now)
        now = now + timedelta(seconds=REBOOT_WAIT_SECONDS)
    assert walk.finished
    error = walk.progress().to_json()["error"]
    assert error["code"] == "VMExtensionProvisioningError"
    assert "still unfinished" in error["message"]
    assert "file share" in error["message"]


def test_other_exit_codes_and_other_types_do_not_rerun() -> None:
    from outsystems.deployment import reboot_requested
    from outsystems.resource_types import VM_EXTENSION

    assert reboot_requested(REBOOTED)
    assert not reboot_requested(REBOOTED.replace("3010", "1"))
    assert not reboot_requested("exit code of: '30100'")
    setup = res("vm/outsystems-setup", type_=VM_EXTENSION)
    walk = Walk([setup], [setup.id])
    walk.started(setup.id, failed_with(setup, REBOOTED.replace("3010", "1")), T0)
    assert walk.finished
    vm = res("vm", type_=VM)
    other = Walk([vm], [vm.id])
    other.started(vm.id, failed_with(vm, REBOOTED), T0)
    assert other.finished


def test_teardown_deletes_every_resource_after_whatever_references_it() -> None:
    """For the graph the app builds: a resource that another one references (a subnet, a WAF
    policy, a public IP, a NAT gateway...) goes in a later wave, or ARM refuses the delete as in
    use. Child resources go with their top-level parent."""
    import json
    import re
    from pathlib import Path

    from outsystems.resource_types import ROLE_ASSIGNMENT, type_of
    from outsystems.spec import parse_spec
    from outsystems.topology import build_topology
    from tests.support.graphs import owner_of

    body = {**json.loads((Path("examples") / "spec-farm.json").read_text()), "bastion": True}
    graph = build_topology(
        parse_spec("acme", body, default_subscription_id="0" * 8 + "-0000-0000-0000-" + "0" * 12)
    )

    def top(resource_id: str) -> str:
        parts = resource_id.split("/")
        lowered = [p.lower() for p in parts]
        start = lowered.index("providers") if "providers" in lowered else len(parts)
        return "/".join(parts[: start + 3])

    arm_id = re.compile(r"/subscriptions/[^\s'\"#}]+")
    for resource in graph:
        if resource.type == ROLE_ASSIGNMENT:
            continue  # deleted first of all; references nothing but its scope and principal
        for text in re.findall(r'"(/subscriptions/[^"]+)"', json.dumps(resource.body)):
            for ref in arm_id.findall(text):
                owner = owner_of(graph, ref)
                if owner is None or top(owner.id) == top(resource.id):
                    continue
                user, used = type_of(top(resource.id)), type_of(top(owner.id))
                if used == "Microsoft.Resources/resourceGroups":
                    continue
                assert rank(user) < rank(used), f"{user} references {used}"


def test_a_walk_round_trips_through_its_state_message_mid_way() -> None:
    import json

    from outsystems.messages import WalkState

    walk = Walk([A, B, C, D], [r.id for r in (A, B, C, D)], poll_seconds=5)
    walk.started(A.id, op(A, "Succeeded"), T0)
    for resource in walk.ready(T0):
        walk.started(resource.id, op(resource, "InProgress"), T0)
    walk.checked(op(C, "Failed", "InternalServerError"), T0 + timedelta(seconds=5))
    state = WalkState.from_json(json.loads(json.dumps(walk.state().to_json())))
    resumed = Walk([A, B, C, D], [r.id for r in (A, B, C, D)], poll_seconds=5)
    resumed.resume(state)
    assert resumed.state() == walk.state()
    assert resumed.progress() == walk.progress()
    assert [o.resource_id for o in resumed.running] == [B.id]
    # C waits out its retry backoff, B its next poll: the same in both.
    later = T0 + timedelta(minutes=5)
    assert names(resumed.ready(later)) == names(walk.ready(later)) == ["c"]
    assert resumed.next_wake(T0) == walk.next_wake(T0) == T0 + timedelta(seconds=5)


@pytest.mark.parametrize(
    ("version", "early_at", "waits"),
    [
        # Walk version 6: within half its interval an operation is polled with one that is
        # due; the intervals grow to five times the shortest.
        (6, 5, [15.0, 22.5, 33.75, 50.0, 50.0]),
        # Walk version 5: the same, up to six times (what those histories replay with).
        (5, 5, [15.0, 22.5, 33.75, 50.625, 60.0]),
        # Before: within a quarter, up to four times (what those histories replay with).
        (4, 8, [15.0, 22.5, 33.75, 40.0, 40.0]),
    ],
)
def test_polls_back_off_per_operation_and_honour_retry_after_within_bounds(
    version: int, early_at: int, waits: list[float]
) -> None:
    ceiling, early = poll_policy(version)
    walk = Walk([A, B], [A.id, B.id], poll_seconds=10, poll_ceiling=ceiling, poll_early=early)
    walk.started(A.id, op(A, "InProgress"), T0)
    # The first poll after the shortest interval.
    assert walk.next_wake(T0) == T0 + timedelta(seconds=10)
    assert walk.due(T0 + timedelta(seconds=early_at - 1)) == []
    # Early enough, it is polled with another that is due.
    assert [o.resource_id for o in walk.due(T0 + timedelta(seconds=early_at))] == [A.id]
    now = T0
    seen = []
    for _ in range(5):
        now = walk.next_wake(now) or now
        assert [o.resource_id for o in walk.due(now)] == [A.id]
        walk.checked(op(A, "InProgress"), now)
        seen.append(((walk.next_wake(now) or now) - now).total_seconds())
    assert seen == waits
    hinted = op(A, "InProgress")._replace(retry_after=25.0)
    walk.checked(hinted, now)
    assert walk.next_wake(now) == now + timedelta(seconds=25)
    walk.checked(hinted._replace(retry_after=1.0), now)
    assert walk.next_wake(now) == now + timedelta(seconds=10)


# --- several walks driven as one (walk version 5) ------------------------------------------

S1, S2 = res("s1"), res("s2", "s1")
#: `x` needs the shared `s1` only; `y` needs `s2` too; `z` is in another environment.
X, Y, Z = res("x", "s1"), res("y", "x", "s2"), res("z", "s1")


def platform_walk(apply: dict[str, list[Resource]] | None = None) -> PlatformWalk:
    scopes = {"shared": [S1, S2], "dev": [X, Y], "test": [Z]}
    apply = apply or scopes
    return PlatformWalk(
        {
            scope: Walk(resources, [r.id for r in apply.get(scope, [])])
            for scope, resources in scopes.items()
        },
        shared="shared",
    )


def test_an_environments_resource_starts_once_the_shared_ones_it_needs_are_done() -> None:
    walk = platform_walk()
    assert names(walk.ready(T0)) == ["s1"]
    assert {scope: p.status for scope, p in walk.progress().items()} == {
        "shared": "Running", "dev": "Pending", "test": "Pending",
    }  # fmt: skip
    assert walk.phase == "shared"
    walk.started(S1.id, op(S1, "Succeeded"), T0)
    # s2 (shared) and what needs s1 alone start together, before the shared walk ends.
    assert names(walk.ready(T0)) == ["s2", "x", "z"]
    walk.started(S2.id, op(S2, "InProgress"), T0)
    walk.started(X.id, op(X, "Succeeded"), T0)
    walk.started(Z.id, op(Z, "InProgress"), T0)
    assert walk.ready(T0) == []  # y waits for s2
    assert walk.progress()["dev"].status == "Running"
    # One poll for what runs in two walks.
    assert {o.resource_id for o in walk.due(walk.next_wake(T0) or T0)} == {S2.id, Z.id}
    walk.checked(op(S2, "Succeeded"), T0)
    assert names(walk.ready(T0)) == ["y"]
    assert walk.phase == "environments"
    walk.started(Y.id, op(Y, "Succeeded"), T0)
    walk.checked(op(Z, "Succeeded"), T0)
    assert walk.finished
    assert {p.status for p in walk.progress().values()} == {"Succeeded"}


def test_a_failure_in_one_environment_leaves_the_others_walking() -> None:
    walk = platform_walk()
    walk.started(S1.id, op(S1, "Succeeded"), T0)
    walk.started(S2.id, op(S2, "Succeeded"), T0)
    walk.started(X.id, op(X, "Failed", "InvalidParameter"), T0)
    walk.started(Z.id, op(Z, "InProgress"), T0)
    progress = walk.progress()
    assert (progress["dev"].status, progress["test"].status) == ("Failed", "Running")
    assert not walk.finished
    assert walk.ready(T0) == []
    walk.checked(op(Z, "Succeeded"), T0)
    assert walk.finished
    assert walk.progress()["test"].status == "Succeeded"


def test_failed_shared_resources_fail_every_environment_with_them_as_the_cause() -> None:
    walk = platform_walk()
    walk.started(S1.id, op(S1, "Succeeded"), T0)
    walk.started(Z.id, op(Z, "InProgress"), T0)
    walk.started(S2.id, op(S2, "Failed", "InvalidRequest"), T0)
    assert walk.finished
    for scope in ("dev", "test"):
        error = walk.progress()[scope].error
        assert error is not None
        assert (error.code, error.resource) == ("InvalidRequest", S2.id)
        assert error.message.startswith("shared resources failed: InvalidRequest happened")


def test_an_activity_that_failed_fails_every_walk_still_going() -> None:
    walk = platform_walk()
    walk.started(S1.id, op(S1, "Succeeded"), T0)
    walk.started(S2.id, op(S2, "Succeeded"), T0)
    walk.started(Z.id, op(Z, "Succeeded"), T0)
    walk.fail(None, "ActivityFailed", "the check failed")
    progress = walk.progress()
    assert (progress["shared"].status, progress["test"].status) == ("Succeeded", "Succeeded")
    assert progress["dev"].error is not None
    assert progress["dev"].error.code == "ActivityFailed"


def test_walks_driven_as_one_round_trip_through_their_state_messages() -> None:
    walk = platform_walk()
    walk.started(S1.id, op(S1, "Succeeded"), T0)
    walk.started(S2.id, op(S2, "InProgress"), T0)
    walk.started(X.id, op(X, "Succeeded"), T0)
    states = {
        scope: WalkState.from_json(json.loads(json.dumps(state.to_json())))
        for scope, state in walk.state().items()
    }
    again = platform_walk()
    again.resume(states)
    assert again.progress() == walk.progress()
    assert again.ready(T0) == [Z]
    assert [o.resource_id for o in again.due(T0 + timedelta(minutes=1))] == [S2.id]


def test_a_scope_the_plan_left_alone_is_done_at_once() -> None:
    walk = platform_walk({"shared": [S1, S2], "dev": [X, Y]})
    assert walk.progress()["test"].status == "Succeeded"


@pytest.mark.parametrize("code", ["SubscriptionRequestsThrottled", "TooManyRequests"])
def test_a_start_arm_throttled_waits_and_goes_again_without_spending_an_attempt(code: str) -> None:
    # ARM's throttling answer (429 `SubscriptionRequestsThrottled`, Microsoft Learn,
    # "Troubleshoot the SubscriptionRequestsThrottled error code (429)"): nothing was started.
    walk = Walk([A], [A.id])
    for n in range(MAX_ATTEMPTS + 2):
        now = T0 + timedelta(minutes=n)
        assert names(walk.ready(now)) == ["a"], n
        walk.started(A.id, op(A, "Failed", code), now)
        assert not walk.finished
        assert walk.ready(now) == []  # it waits before going again
    walk.started(A.id, op(A, "Succeeded"), T0 + timedelta(hours=1))
    assert walk.finished
    assert walk.progress().status == "Succeeded"


def test_before_walk_version_5_a_throttled_start_counts_as_an_attempt() -> None:
    walk = Walk([A], [A.id], throttle_waits=False)
    for n in range(MAX_ATTEMPTS):
        now = T0 + timedelta(minutes=n)
        walk.started(A.id, op(A, "Failed", "SubscriptionRequestsThrottled"), now)
    assert walk.finished
    assert walk.progress().status == "Failed"


def test_a_batch_carries_what_waits_only_for_it_across_scopes_and_links() -> None:
    # Walk version 6: s1 is ready; s2 and x wait for it alone (x across scopes), z too; y waits
    # for x and s2, both in the batch by then: two links down.
    walk = platform_walk()
    [ready] = walk.ready(T0)
    following = {
        r.name: [a.rsplit("/", 1)[-1] for a in after] for r, after in walk.following([ready], T0)
    }
    assert following == {"s2": ["s1"], "x": ["s1"], "z": ["s1"], "y": ["x", "s2"]}
    # One link only: y is left for a later batch.
    assert [r.name for r, _ in walk.following([ready], T0, depth=1)] == ["s2", "x", "z"]
    # What waits for an operation that runs on is not carried: it is not in the batch.
    walk.started(S1.id, op(S1, "Succeeded"), T0)
    walk.started(S2.id, op(S2, "InProgress"), T0)
    assert names(walk.ready(T0)) == ["x", "z"]
    assert walk.following(walk.ready(T0), T0) == []


def test_the_height_of_a_resource_is_its_longest_chain_of_dependents() -> None:
    walk = platform_walk()
    # s1 <- x <- y, s1 <- z, s2 <- y
    assert [walk.height(r.id) for r in (S1, S2, X, Y, Z)] == [2, 1, 1, 0, 0]
    # A resource is always higher than what depends on it: a batch sorted by height keeps
    # what an item comes after before it.
    for resource in (S2, X, Y, Z):
        for dep in resource.depends_on:
            assert walk.height(dep) > walk.height(resource.id)


# --- walk version 7: what nothing waits for is polled later while others are waited for ----


def paced_walk(
    leaf_ceiling: float | None = None, poll_together: bool = False, leaves_ride: bool = False
) -> PlatformWalk:
    """s1, s2 (shared), x, y (dev), z (test), all to apply, polled from 10 s up to 50 s."""
    scopes = {"shared": [S1, S2], "dev": [X, Y], "test": [Z]}
    return PlatformWalk(
        {
            scope: Walk(resources, [r.id for r in resources], poll_seconds=10, poll_ceiling=5)
            for scope, resources in scopes.items()
        },
        shared="shared",
        leaf_ceiling=leaf_ceiling,
        poll_together=poll_together,
        leaves_ride=leaves_ride,
    )


def leaf_walk(leaf_ceiling: float | None) -> PlatformWalk:
    """s1 (done) <- s2 (runs; y waits for it) ; s1 <- z (runs; nothing waits for it)."""
    walk = paced_walk(leaf_ceiling)
    walk.started(S1.id, op(S1, "Succeeded"), T0)
    walk.started(S2.id, op(S2, "InProgress"), T0)
    walk.started(X.id, op(X, "Succeeded"), T0)
    walk.started(Z.id, op(Z, "InProgress"), T0)
    return walk


def intervals(walk: PlatformWalk) -> dict[str, float]:
    return {
        step.resource_id.rsplit("/", 1)[-1]: step.interval
        for state in walk.state().values()
        for step in state.running
    }


def wake(walk: PlatformWalk, now: datetime) -> tuple[datetime, list[str]]:
    """One wake of the walk: when it comes, and the names of what it polls (answered still
    running)."""
    now = walk.next_wake(now) or now
    due = walk.due(now)
    for operation in due:
        walk.checked(operation._replace(status="InProgress"), now)
    return now, sorted(o.resource_id.rsplit("/", 1)[-1] for o in due)


def poll_all(walk: PlatformWalk, now: datetime, times: int) -> datetime:
    for _ in range(times):
        now, _polled = wake(walk, now)
    return now


@pytest.mark.parametrize(("leaf_ceiling", "z_longest"), [(10.0, 100.0), (None, 50.0)])
def test_an_operation_nothing_waits_for_is_polled_later_while_a_waited_one_runs(
    leaf_ceiling: float | None, z_longest: float
) -> None:
    # Walk version 7: z's end starts nothing, and the walk cannot end before s2 (y waits for
    # it): z backs off to 10x the shortest interval, s2 to the walk's 5x. Version 6: both 5x.
    walk = leaf_walk(leaf_ceiling)
    now = poll_all(walk, T0, 12)
    assert intervals(walk) == {"s2": 50.0, "z": z_longest}
    # s2 ends and y starts: nothing left that anything waits for, so z's next poll comes
    # within the walk's ceiling again (one of them ends the walk).
    walk.checked(op(S2, "Succeeded"), now)
    walk.started(Y.id, op(Y, "InProgress"), now)
    assert intervals(walk)["z"] == 50.0
    assert (walk.walks["test"].next_wake(now) or now) - now <= timedelta(seconds=50)
    poll_all(walk, now, 6)
    assert intervals(walk) == {"y": 50.0, "z": 50.0}


def test_the_leaf_ceiling_comes_with_walk_version_7() -> None:
    assert leaf_poll_ceiling(6) is None
    assert leaf_poll_ceiling(7) == 10.0


# --- walk version 8: what a resource still to start waits for is polled together ------------


@pytest.mark.parametrize("together", [True, False])
def test_what_a_resource_still_to_start_waits_for_is_polled_together(together: bool) -> None:
    # y waits for x and s2, which run out of phase (x started 35 s after s2; both back off to
    # 50 s). Walk version 8 polls both whenever either is due, so the last end is seen at the
    # next poll of either; before, each on its own schedule (the early window joins them only
    # when the other is due within half its interval).
    walk = paced_walk(poll_together=together)
    walk.started(S1.id, op(S1, "Succeeded"), T0)
    walk.started(Z.id, op(Z, "Succeeded"), T0)
    walk.started(S2.id, op(S2, "InProgress"), T0)
    now = T0 + timedelta(seconds=35)
    walk.started(X.id, op(X, "InProgress"), now)
    polls: list[list[str]] = []
    for _ in range(12):
        now, polled = wake(walk, now)
        polls.append(polled)
    if together:
        assert all(names == ["s2", "x"] for names in polls)
    else:
        assert ["s2"] in polls or ["x"] in polls
    # Once y is no longer waiting (x failed: its walk stops), s2 is polled on its own.
    walk.checked(op(X, "Failed", "Conflict"), now)
    now = walk.next_wake(now) or now
    assert [o.resource_id for o in walk.due(now)] == [S2.id]


# --- walk version 9: what nothing waits for is polled at the wakes the others set ----------


def next_polls(walk: PlatformWalk) -> dict[str, datetime | None]:
    return {
        step.resource_id.rsplit("/", 1)[-1]: step.next_poll
        for state in walk.state().values()
        for step in state.running
    }


@pytest.mark.parametrize("ride", [True, False])
def test_an_operation_nothing_waits_for_sets_no_wake_while_a_waited_one_runs(ride: bool) -> None:
    # s2 (y waits for it) and z (nothing waits for it) run out of phase: z started 7 s after
    # s2. Walk version 9: every wake is one that s2's polls set, and z is polled at the first of
    # them once its poll is due (never more than one of s2's intervals late). Before, z's own
    # polls woke the walk too: wakes that read z alone and start nothing.
    walk = paced_walk(leaf_ceiling=10.0, leaves_ride=ride)
    walk.started(S1.id, op(S1, "Succeeded"), T0)
    walk.started(X.id, op(X, "Succeeded"), T0)
    walk.started(S2.id, op(S2, "InProgress"), T0)
    now = T0 + timedelta(seconds=7)
    walk.started(Z.id, op(Z, "InProgress"), now)
    polls: list[list[str]] = []
    z_late: list[float] = []
    for _ in range(16):
        z_due = next_polls(walk)["z"]
        now, polled = wake(walk, now)
        polls.append(polled)
        if "z" in polled and z_due is not None:
            z_late.append((now - z_due).total_seconds())
    assert sum("z" in p for p in polls) >= 3, polls
    if ride:
        assert all("s2" in p for p in polls), polls
        # s2's interval is 50 s at most: z is never later than that.
        assert max(z_late) <= 50.0
    else:
        assert ["z"] in polls
    # s2 ends and y starts: nothing is waited for any more, so z's own polls set wakes again
    # (one of y and z ends the walk).
    walk.checked(op(S2, "Succeeded"), now)
    walk.started(Y.id, op(Y, "InProgress"), now)
    expected = min(t for t in next_polls(walk).values() if t is not None)
    assert walk.next_wake(now) == expected


def test_a_leaf_sets_the_wake_when_nothing_else_does() -> None:
    # y waits for s2, which is still to start: something is waited for, but nothing that is
    # waited for runs or backs off, so z's own poll is the walk's wake (not none at all).
    walk = paced_walk(leaf_ceiling=10.0, leaves_ride=True)
    walk.started(S1.id, op(S1, "Succeeded"), T0)
    walk.started(X.id, op(X, "Succeeded"), T0)
    walk.started(Z.id, op(Z, "InProgress"), T0)
    assert names(walk.ready(T0)) == ["s2"]
    assert walk.next_wake(T0) == next_polls(walk)["z"] == T0 + timedelta(seconds=10)

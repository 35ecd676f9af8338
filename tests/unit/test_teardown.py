"""The teardown orchestration (`orchestrators/teardown.py`) by history replay.

`teardown_platform` runs through the SDK's replay engine (`tests/support/replay.py`) against
fake activities standing for ARM: what it lists as the platform's, how each delete goes, and
whether the resource group can go. The whole app on the local host is in
`tests/e2e/test_lifecycle.py`; here the orchestration's own decisions, failure paths included.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from outsystems.messages import CheckRequest
from outsystems.names import ENVIRONMENTS
from tests.support.functions import orchestrator
from tests.support.replay import Outcome, Replay

SUBSCRIPTION = "11111111-2222-3333-4444-555555555555"
GROUP = f"/subscriptions/{SUBSCRIPTION}/resourceGroups/acme-rg"
SPEC = {"solutionId": "acme", "subscriptionId": SUBSCRIPTION, "resourceGroup": "acme-rg"}
TUNING = {"pollSeconds": 5.0, "retrySeconds": 5.0, "timeoutScale": 1.0, "backoffScale": 1.0}


def resource(provider: str, name: str, environment: str) -> dict[str, str]:
    return {
        "id": f"{GROUP}/providers/{provider}/{name}",
        "type": provider,
        "environment": environment,
    }


VNET = resource("Microsoft.Network/virtualNetworks", "acme-vnet", "shared")
DEV_VM = resource("Microsoft.Compute/virtualMachines", "acme-dev-vm", "dev")
DEV_NIC = resource("Microsoft.Network/networkInterfaces", "acme-dev-nic", "dev")
TEST_VM = resource("Microsoft.Compute/virtualMachines", "acme-test-vm", "test")
LISTED = [VNET, DEV_NIC, DEV_VM, TEST_VM]


def operation(resource_id: str, status: str, error: dict[str, str] | None = None) -> dict[str, Any]:
    # The snake_case keys earlier versions of the activities wrote: histories of running
    # instances still hold them, and the orchestration must read them.
    return {
        "resource_id": resource_id,
        "method": "DELETE",
        "status": status,
        "api_version": "2025-04-01",
        "poll_mode": "location" if status == "InProgress" else "none",
        "poll_url": f"http://arm/operations{resource_id}" if status == "InProgress" else None,
        "error": error,
    }


@dataclass
class Arm:
    """Fake teardown activities: what ARM lists, how deletes go, what happens to the group."""

    listed: list[dict[str, str]] = field(default_factory=lambda: list(LISTED))
    failing: dict[str, dict[str, str]] = field(default_factory=dict)
    group: list[dict[str, Any]] = field(
        default_factory=lambda: [operation(GROUP, "InProgress"), operation(GROUP, "Succeeded")]
    )
    deleted: list[str] = field(default_factory=list)
    #: How many polls a resource's delete runs for (none: it ends at once).
    slow: dict[str, int] = field(default_factory=dict)
    lists: int = 0
    events: list[dict[str, Any]] = field(default_factory=list)

    def delete(self, request: dict[str, Any]) -> dict[str, Any]:
        resource_id = request["resourceId"]
        self.deleted.append(resource_id)
        error = self.failing.get(resource_id)
        if self.slow.get(resource_id):
            return operation(resource_id, "InProgress")
        return operation(resource_id, "Failed" if error else "Succeeded", error)

    def check(self, request: dict[str, Any]) -> list[dict[str, Any]]:
        operations = CheckRequest.from_json(request).operations
        if [o.resource_id for o in operations] == [GROUP]:
            return [self.group.pop(0)]
        answers = []
        for o in operations:
            assert o.resource_id in self.slow, o.resource_id
            self.slow[o.resource_id] -= 1
            answers.append(
                operation(o.resource_id, "InProgress" if self.slow[o.resource_id] else "Succeeded")
            )
        return answers

    def publish(self, event: dict[str, Any]) -> str:
        self.events.append(event)
        return str(event["id"])

    def list_resources(self, request: dict[str, Any]) -> list[dict[str, str]]:
        self.lists += 1
        return self.listed

    def run(
        self,
        environments: tuple[str, ...] = ENVIRONMENTS,
        walk_version: int | None = 2,
        **tuning: float,
    ) -> Outcome:
        """Tear down; `walk_version` None: the input as versions before walk version 2 wrote
        it (their histories replay with the fixed interval and one history)."""
        request: dict[str, Any] = {
            "operation": "teardown",
            "operationId": "op-2",
            "spec": SPEC,
            "environments": list(environments),
            "tuning": {**TUNING, **tuning},
        }
        if walk_version is not None:
            request["walkVersion"] = walk_version
        return Replay(
            orchestrator("teardown_platform"),
            request,
            name="teardown_platform",
            instance_id="platform-acme",
            follow_continue=True,
            activities={
                "list_platform_resources": self.list_resources,
                "begin_delete_resource": self.delete,
                "begin_delete_resource_group": lambda request: self.group.pop(0),
                "check_operations": self.check,
                "publish_event": self.publish,
            },
        ).run()


def test_a_whole_platform_is_deleted_users_first_then_its_group() -> None:
    arm = Arm()
    outcome = arm.run()
    assert outcome.output["status"] == "Succeeded"
    # VMs before the NICs they use, the VNet last of all.
    assert arm.deleted.index(DEV_VM["id"]) < arm.deleted.index(DEV_NIC["id"])
    assert arm.deleted[-1] == VNET["id"]
    [group] = outcome.inputs("begin_delete_resource_group")
    assert group == {
        "subscriptionId": SUBSCRIPTION,
        "resourceGroup": "acme-rg",
        "solutionId": "acme",
    }
    # The group's deletion is polled after a durable timer.
    [poll] = [call for call in outcome.calls if call.kind == "timer"]
    assert poll.input - poll.at == timedelta(seconds=5)
    assert {env: p["status"] for env, p in outcome.output["environments"].items()} == dict.fromkeys(
        ENVIRONMENTS, "Deleted"
    )
    [event] = arm.events
    assert event["type"] == "outsystems.teardown.succeeded"
    assert (event["data"]["resourcesDeleted"], event["data"]["resourceGroup"]) == (4, "deleted")


def test_a_group_the_app_did_not_create_is_kept_and_says_why() -> None:
    kept = {
        **operation(GROUP, "Succeeded"),
        "kept": "the resource group was not created by this app",
    }
    arm = Arm(group=[kept])
    outcome = arm.run()
    assert outcome.output["status"] == "Succeeded"
    assert "check_operations" not in [call.name for call in outcome.calls]
    assert arm.events[0]["data"]["resourceGroup"] == (
        "the resource group was not created by this app"
    )


def test_some_environments_are_torn_down_without_the_shared_resources() -> None:
    arm = Arm()
    outcome = arm.run(("dev",))
    assert sorted(arm.deleted) == sorted([DEV_VM["id"], DEV_NIC["id"]])
    assert "begin_delete_resource_group" not in [call.name for call in outcome.calls]
    assert list(outcome.output["environments"]) == ["dev"]
    assert arm.events[0]["data"]["resourceGroup"] == "kept"


def test_a_failed_delete_stops_the_teardown_and_keeps_the_group() -> None:
    conflict = {"code": "InUseSubnetCannotBeDeleted", "message": "the subnet is in use"}
    arm = Arm(failing={VNET["id"]: conflict})
    outcome = arm.run()
    assert outcome.output["status"] == "Failed"
    assert "begin_delete_resource_group" not in [call.name for call in outcome.calls]
    [event] = arm.events
    assert event["type"] == "outsystems.teardown.failed"
    assert event["data"]["error"] == {**conflict, "resource": VNET["id"]}


def test_a_group_deletion_past_its_limit_fails_the_teardown() -> None:
    arm = Arm(group=[operation(GROUP, "InProgress")] * 50)
    # The resource group's limit (the 30-minute fallback) scaled down to 20 seconds.
    outcome = arm.run(timeoutScale=20 / 1800)
    assert outcome.output["status"] == "Failed"
    [event] = arm.events
    assert event["data"]["error"]["code"] == "OperationTimedOut"
    assert event["data"]["error"]["resource"] == GROUP
    # Polled after 5, 7.5 and 11.25 seconds (the backoff of `outsystems.polling`): at 23.75 s
    # the group still goes, past its 20 seconds.
    waits = [(c.input - c.at).total_seconds() for c in outcome.calls if c.kind == "timer"]
    assert waits == [5.0, 7.5, 11.25]


def test_nothing_listed_is_nothing_to_delete() -> None:
    arm = Arm(listed=[])
    outcome = arm.run(("dev", "test"))
    assert outcome.output["status"] == "Succeeded"
    assert arm.deleted == []


def test_a_long_teardown_continues_as_new_with_what_it_listed_and_where_it_stands() -> None:
    arm = Arm(slow={DEV_VM["id"]: 45, TEST_VM["id"]: 3})
    outcome = arm.run()
    assert outcome.output["status"] == "Succeeded"
    assert outcome.generations >= 3
    continued = [c for c in outcome.calls if c.name == "continue_as_new"]
    assert all(c.input["found"] == LISTED and c.input["walk"] for c in continued)
    # Listed once, each resource deleted once, in the same order as one history would.
    assert arm.lists == 1
    assert sorted(arm.deleted) == sorted(r["id"] for r in LISTED)
    assert arm.deleted.index(DEV_VM["id"]) < arm.deleted.index(DEV_NIC["id"])
    assert arm.deleted[-1] == VNET["id"]
    assert outcome.longest_history <= 300
    [event] = arm.events
    assert event["data"]["resourcesDeleted"] == 4


def test_an_input_without_a_walk_version_tears_down_in_one_history() -> None:
    arm = Arm(slow={DEV_VM["id"]: 45})
    outcome = arm.run(walk_version=None)
    assert outcome.output["status"] == "Succeeded"
    assert outcome.generations == 1
    timers = [c for c in outcome.calls if c.kind == "timer"]
    # One fixed interval for every poll (45 of the VM's, one of the group's).
    assert {t.input - t.at for t in timers} == {timedelta(seconds=5)}

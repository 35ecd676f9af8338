"""The platform use cases (`services.platforms`), driven through their ports with hand-written
fakes: the Durable client of `durable_fakes` and an ARM that answers from a dict
(`platform_fakes`)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from orchestrators.deploy import child_instance_id, walk_instance_id
from outsystems.errors import FieldError
from outsystems.messages import DeployRequest, PlatformResult, SpecDocument, TeardownRequest
from outsystems.names import Environment
from services import platforms
from services.errors import ServiceError
from services.platform_state import OperationStatus, request_of
from services.platforms import Started, standing_platform, torn_down, version_changes
from tests.unit.durable_fakes import FakeDurableClient, Instance
from tests.unit.platform_fakes import SETTINGS, SUB, FakeArm

SPEC = {"solutionId": "acme", "subscriptionId": "s"}
INSTANCE = "platform-acme"
BODY = json.dumps({"location": "westeurope"}).encode()
EVERYTHING: list[Environment] = ["dev", "test", "prod", "life"]


def platform(runtime: str, request: Mapping[str, Any], output: Any = None) -> FakeDurableClient:
    instance = Instance(runtime, None, dict(request), output, "2026-11-20T09:00:00Z")
    return FakeDurableClient(instances={INSTANCE: instance})


def teardown(
    environments: Sequence[str], status: str = "Succeeded", *, encoded: bool = False
) -> Any:
    request = {"operation": "teardown", "spec": SPEC, "environments": list(environments)}
    output = {"status": status, "environments": {}}
    client = platform("Completed", request, json.dumps(output) if encoded else output)
    if encoded:
        client.instances[INSTANCE].input = json.dumps(request)
    return client


def refusal(coroutine: Any) -> ServiceError:
    with pytest.raises(ServiceError) as raised:
        asyncio.run(coroutine)
    return raised.value


# --- which platform stands ---------------------------------------------------------------------


async def test_a_deployed_platform_stands_with_its_spec() -> None:
    client = platform("Running", {"operation": "deploy", "spec": SPEC})
    client.instances[INSTANCE].input = json.dumps({"operation": "deploy", "spec": SPEC})
    standing = await standing_platform(client, "acme")
    assert standing is not None
    assert (standing.instance_id, standing.operation.runtime_status, standing.spec) == (
        INSTANCE,
        "Running",
        SpecDocument(SPEC),
    )


async def test_unknown_and_unnameable_platforms_are_none() -> None:
    assert await standing_platform(FakeDurableClient(), "nope") is None
    client = FakeDurableClient(delay=0)
    assert await standing_platform(client, "a/../b") is None


async def test_a_platform_is_gone_once_its_environments_are_torn_down() -> None:
    for encoded in (False, True):
        assert await standing_platform(teardown(EVERYTHING, encoded=encoded), "acme") is None
        assert (
            await standing_platform(teardown(["prod"], encoded=encoded), "acme", ("prod",)) is None
        )
    # Part of it torn down, or a teardown that failed: still there.
    assert await standing_platform(teardown(["prod"]), "acme") is not None
    assert await standing_platform(teardown(["dev"]), "acme", ("prod",)) is not None
    assert await standing_platform(teardown(EVERYTHING, "Failed"), "acme") is not None


def test_torn_down_needs_a_completed_teardown_of_every_environment_asked() -> None:
    def status(runtime: str, request: Mapping[str, Any], output: Any) -> OperationStatus:
        result = None if output is None else PlatformResult.from_json(output)
        return OperationStatus(
            INSTANCE, runtime, request=request_of({**request, "spec": SPEC}), result=result
        )

    done = {"operation": "teardown", "environments": ["dev", "prod"]}
    succeeded = {"status": "Succeeded", "environments": {}}
    assert torn_down(status("Completed", done, succeeded), ["prod"])
    assert not torn_down(status("Completed", done, succeeded), ["prod", "life"])
    assert not torn_down(status("Running", done, None), ["prod"])
    assert not torn_down(status("Completed", done, {**succeeded, "status": "Failed"}), ["dev"])
    deployed = {"operation": "deploy", "environments": ["dev"]}
    assert not torn_down(status("Completed", deployed, succeeded), ["dev"])


def test_versions_of_a_deployed_platform_are_never_lowered() -> None:
    deployed = SpecDocument({"platformVersion": "11.32.0", "lifetimeVersion": "11.25.2"})
    before = DeployRequest("op", deployed)
    [change] = version_changes(before, {"platformVersion": "11.31.9", "lifetimeVersion": "11.25.2"})
    assert change.target == "platformVersion"
    assert "from 11.32.0 to 11.31.9" in change.message
    # Higher is an upgrade (services.platforms.upgrade_of), and a build of the same version equal.
    assert version_changes(before, {"platformVersion": "11.33.0"}) == []
    assert version_changes(before, {"platformVersion": "11.32.0.7"}) == []
    # Nothing deployed yet, or the last operation a teardown: any version goes.
    spec = {"platformVersion": "11.31.0", "lifetimeVersion": "11.25.2"}
    assert version_changes(None, spec) == []
    assert version_changes(TeardownRequest("op", deployed, ("dev",)), spec) == []


# --- deploy ------------------------------------------------------------------------------------


def test_a_new_platform_is_deployed_with_its_spec_and_tuning() -> None:
    client, arm = FakeDurableClient(), FakeArm()
    started = asyncio.run(platforms.deploy(client, arm, SETTINGS, "acme", BODY))
    assert isinstance(started, Started)
    assert (started.solution_id, started.kind) == ("acme", "deploy")
    assert client.starts == [INSTANCE]
    request = client.instances[INSTANCE].input
    assert request["operation"] == "deploy"
    assert request["operationId"] == started.operation_id
    assert request["spec"]["solutionId"] == "acme"
    assert request["spec"]["naming"] == "marketplace"
    assert request["tuning"]["pollSeconds"] == SETTINGS.operation_poll_seconds
    # A platform the task hub does not know: Azure says how it was named; then the pre-flight.
    assert arm.asked == ["naming", "preflight"]


def test_a_platform_azure_knows_by_the_legacy_scheme_keeps_it() -> None:
    client, arm = FakeDurableClient(), FakeArm()
    arm.naming = "legacy"
    asyncio.run(platforms.deploy(client, arm, SETTINGS, "acme", BODY))
    assert client.instances[INSTANCE].input["spec"]["naming"] == "legacy"


def test_a_running_operation_refuses_a_second_one() -> None:
    client = platform("Running", {"operation": "teardown", "spec": SPEC, "environments": ["dev"]})
    error = refusal(platforms.deploy(client, FakeArm(), SETTINGS, "acme", BODY))
    assert (error.kind, error.code) == ("conflict", "Conflict")
    assert "A teardown of platform acme is running" in error.message
    assert client.starts == []


def test_an_invalid_spec_is_refused_with_its_fields() -> None:
    client = FakeDurableClient()
    error = refusal(platforms.deploy(client, FakeArm(), SETTINGS, "acme", b'{"location": 3}'))
    assert (error.kind, error.code) == ("invalid", "InvalidSpec")
    assert [detail.target for detail in error.details] == ["location"]
    assert client.starts == []


def test_a_lower_version_than_deployed_is_refused() -> None:
    deployed = {"operation": "deploy", "spec": {"platformVersion": "11.33.0", "naming": "legacy"}}
    client = platform("Completed", deployed, {"status": "Succeeded"})
    error = refusal(platforms.deploy(client, FakeArm(), SETTINGS, "acme", BODY))
    assert (error.kind, error.code) == ("invalid", "BadRequest")
    assert [detail.target for detail in error.details] == ["platformVersion"]
    assert client.starts == []


def test_what_azure_rules_out_is_refused_before_anything_starts() -> None:
    client, arm = FakeDurableClient(), FakeArm()
    arm.problems = [FieldError("resourceGroup", "exists and belongs to someone else")]
    error = refusal(platforms.deploy(client, arm, SETTINGS, "acme", BODY))
    assert (error.kind, error.code) == ("invalid", "PreflightFailed")
    assert error.details == (arm.problems[0],)
    assert client.starts == []


def test_an_arm_that_does_not_answer_is_a_retryable_refusal() -> None:
    client, arm = FakeDurableClient(), FakeArm()
    arm.unavailable = True
    error = refusal(platforms.deploy(client, arm, SETTINGS, "acme", BODY))
    assert (error.kind, error.code, error.retry_after) == ("unavailable", "ArmUnavailable", 30)
    assert client.starts == []


def test_losing_the_race_to_start_is_a_conflict() -> None:
    class Racing(FakeDurableClient):
        async def start_new(
            self,
            orchestration_function_name: str,
            instance_id: str | None = None,
            client_input: Any = None,
        ) -> str:
            # Another request started the platform between the check and this start.
            self.instances[INSTANCE] = Instance("Running", None, {"operation": "deploy"})
            raise Exception("409 instance already exists")

    error = refusal(platforms.deploy(Racing(), FakeArm(), SETTINGS, "acme", BODY))
    assert (error.kind, error.code) == ("conflict", "Conflict")


# --- plan --------------------------------------------------------------------------------------


def test_a_plan_of_a_new_platform_creates_everything_and_starts_nothing() -> None:
    arm = FakeArm()
    result = platforms.plan(arm, SETTINGS, "acme", BODY).to_json()
    totals = result["totals"]
    assert totals["create"] == len(result["resources"]) > 0
    assert (totals["update"], totals["noop"]) == (0, 0)
    assert arm.asked == ["naming", "preflight", "live"]


# --- teardown, cancel, operations ---------------------------------------------------------------


def test_a_teardown_takes_the_spec_of_the_last_operation() -> None:
    client = platform("Completed", {"operation": "deploy", "spec": SPEC}, {"status": "Succeeded"})
    started = asyncio.run(platforms.teardown(client, SETTINGS, "acme", ["dev", "test"]))
    assert (started.kind, client.starts) == ("teardown", [INSTANCE])
    request = client.instances[INSTANCE].input
    assert (request["operation"], request["spec"], request["environments"]) == (
        "teardown",
        SPEC,
        ["dev", "test"],
    )
    assert request["operationId"] == started.operation_id


def test_a_teardown_of_an_unknown_or_busy_platform_is_refused() -> None:
    error = refusal(platforms.teardown(FakeDurableClient(), SETTINGS, "acme", EVERYTHING))
    assert (error.kind, error.code) == ("not_found", "PlatformNotFound")
    busy = platform("Running", {"operation": "deploy", "spec": SPEC})
    error = refusal(platforms.teardown(busy, SETTINGS, "acme", EVERYTHING))
    assert (error.kind, error.code) == ("conflict", "Conflict")
    gone = teardown(EVERYTHING)
    error = refusal(platforms.teardown(gone, SETTINGS, "acme", EVERYTHING))
    assert error.code == "PlatformNotFound"


def test_cancel_stops_the_operation_and_its_running_environments() -> None:
    client = platform("Running", {"operation": "deploy", "operationId": "op", "spec": SPEC})
    client.instances[child_instance_id(INSTANCE, "dev")] = Instance("Running")
    client.instances[child_instance_id(INSTANCE, "prod")] = Instance("Completed")
    canceled = asyncio.run(platforms.cancel(client, "acme"))
    assert (canceled.instance_id, canceled.operation_id) == (INSTANCE, "op")
    assert [instance for instance, _ in client.terminated] == [
        INSTANCE,
        child_instance_id(INSTANCE, "dev"),
    ]


def test_cancel_stops_the_walk_of_all_environments() -> None:
    # Walk version 5: one sub-orchestration walks every environment.
    client = platform("Running", {"operation": "deploy", "operationId": "op", "spec": SPEC})
    client.instances[walk_instance_id(INSTANCE)] = Instance("Running")
    asyncio.run(platforms.cancel(client, "acme"))
    assert [instance for instance, _ in client.terminated] == [INSTANCE, f"{INSTANCE}:walk"]


def test_the_state_of_a_running_deployment_shows_each_environments_entry_in_the_walk() -> None:
    client = platform("Running", {"operation": "deploy", "operationId": "op", "spec": SPEC})
    dev = {"status": "Running", "resourcesDone": 3, "resourcesTotal": 9,
           "step": "creating acme-dev-vm", "error": None}  # fmt: skip
    test = {**dev, "status": "Pending", "resourcesDone": 0, "step": None}
    shared = {**dev, "step": "creating acme-vnet"}
    walk = {"phase": "shared", "environments": {"shared": shared, "dev": dev, "test": test}}
    client.instances[walk_instance_id(INSTANCE)] = Instance(
        "Running", walk, None, None, "2026-11-20T09:00:01Z"
    )
    state = asyncio.run(platforms.state(client, "acme"))
    assert state["status"] == "Running"
    # The shared resources are no environment of the API (`docs/api.md`).
    assert state["environments"] == {"dev": dev, "test": test}


def test_cancel_with_nothing_running_is_refused() -> None:
    client = platform("Completed", {"operation": "deploy", "spec": SPEC})
    error = refusal(platforms.cancel(client, "acme"))
    assert (error.kind, error.code) == ("conflict", "NothingRunning")
    assert client.terminated == []


def test_an_operation_is_found_by_its_id_only_while_it_is_the_last() -> None:
    operation_id = "0b5b1f6e-3f1c-4c8e-9d8e-2a2f1c0d9e7a"
    client = platform(
        "Completed",
        {"operation": "deploy", "operationId": operation_id, "spec": SPEC},
        {"status": "Succeeded", "environments": {}, "outputs": {}},
    )
    view = asyncio.run(platforms.operation(client, "acme", operation_id))
    assert (view.running, view.document["id"], view.document["kind"]) == (
        False,
        operation_id,
        "deploy",
    )
    for other in ("1b5b1f6e-3f1c-4c8e-9d8e-2a2f1c0d9e7a", "not-a-guid"):
        error = refusal(platforms.operation(client, "acme", other))
        assert (error.kind, error.code) == ("not_found", "OperationNotFound")


def test_the_list_holds_the_groups_the_app_tagged() -> None:
    arm = FakeArm()
    arm.groups[SUB] = [
        {"name": "zed-rg", "tags": {"managedBy": "outsystems-azure-ops", "osSolutionId": "zed"}},
        {"name": "acme-rg", "tags": {"MANAGEDBY": "outsystems-azure-ops", "ossolutionid": "acme"}},
        {"name": "other-rg", "tags": {"osSolutionId": "other"}},
        {"name": "bare-rg"},
    ]
    client = platform("Completed", {"operation": "deploy", "spec": SPEC}, {"status": "Succeeded"})
    listed = asyncio.run(platforms.list_platforms(client, arm, SETTINGS))
    assert [(p.solution_id, p.resource_group) for p in listed] == [
        ("acme", "acme-rg"),
        ("zed", "zed-rg"),
    ]
    assert (listed[0].status, listed[1].status, listed[1].last_operation) == (
        "Succeeded",
        None,
        None,
    )


def test_the_state_of_a_running_deployment_shows_its_environments_live_progress() -> None:
    client = platform("Running", {"operation": "deploy", "operationId": "op", "spec": SPEC})
    dev = {"status": "Running", "resourcesDone": 3, "resourcesTotal": 9,
           "step": "creating acme-dev-vm", "error": None}  # fmt: skip
    client.instances[child_instance_id(INSTANCE, "dev")] = Instance(
        "Running", dev, None, None, "2026-11-20T09:00:01Z"
    )
    # A sub-orchestration of an earlier operation is not this one's progress.
    client.instances[child_instance_id(INSTANCE, "prod")] = Instance(
        "Completed", None, None, {**dev, "status": "Failed"}, "2026-11-19T09:00:00Z"
    )
    state = asyncio.run(platforms.state(client, "acme"))
    assert (state["status"], state["subscriptionId"]) == ("Running", "s")
    assert state["environments"] == {"dev": dev}
    assert state["lastOperation"]["operationId"] == "op"
    error = refusal(platforms.state(FakeDurableClient(), "acme"))
    assert error.code == "PlatformNotFound"

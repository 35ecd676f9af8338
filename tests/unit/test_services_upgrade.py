"""Upgrades at the API's edge (issue 17, `services.platforms`): which PUT starts an upgrade,
which is refused and why, how a stopped upgrade resumes, the plan of an upgrade, and the
approval of the next environment. Driven through the ports with the hand-written Durable
client of `durable_fakes` and the ARM fake of `test_services_platforms`."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from orchestrators.scale_requests import scale_set_key
from outsystems.messages import (
    UPGRADE_APPROVED_EVENT,
    SpecDocument,
    UpgradeApproval,
    UpgradeRequest,
    Versions,
)
from outsystems.upgrade import UpgradeTargets
from services import platforms
from services.errors import ServiceError
from tests.unit.durable_fakes import FakeDurableClient, Instance
from tests.unit.platform_fakes import SETTINGS, FakeArm
from tests.unit.upgrade_support import (
    INSTANCE,
    NEW,
    OLD,
    OUTPUTS,
    RecordingClient,
    awaiting,
    body,
    deployed,
    spec,
    upgrading,
)


def refusal(coroutine: Any) -> ServiceError:
    with pytest.raises(ServiceError) as raised:
        asyncio.run(coroutine)
    return raised.value


def started_input(client: FakeDurableClient) -> dict[str, Any]:
    assert client.starts == [INSTANCE]
    document: dict[str, Any] = client.instances[INSTANCE].input
    return document


# --- which PUT starts an upgrade ----------------------------------------------------------------


def test_higher_versions_start_the_upgrade_with_the_deployed_spec_and_outputs() -> None:
    client = deployed()
    started = asyncio.run(platforms.deploy(client, FakeArm(), SETTINGS, "acme", body(**NEW)))
    assert (started.kind, started.resumes) == ("upgrade", None)
    request = UpgradeRequest.from_json(started_input(client))
    assert started_input(client)["operation"] == "upgrade"
    assert request.operation_id == started.operation_id
    assert request.source == Versions("11.31.0", "11.24.0")
    assert request.target == Versions("11.32.0", "11.25.2")
    assert request.previous.document == spec(**OLD)
    assert (request.order, request.soak_seconds, request.resumed) == (
        ("dev", "test", "prod"),
        None,
        None,
    )
    assert request.outputs == OUTPUTS
    assert request.tuning.poll_seconds == SETTINGS.operation_poll_seconds


def test_one_version_raised_is_an_upgrade_too_and_the_upgrade_block_is_kept() -> None:
    client = deployed()
    upgrade = {"order": ["test", "dev", "prod"], "soakMinutes": 30}
    put = body(platformVersion="11.31.0", lifetimeVersion="11.25.2", upgrade=upgrade)
    started = asyncio.run(platforms.deploy(client, FakeArm(), SETTINGS, "acme", put))
    request = UpgradeRequest.from_json(started_input(client))
    assert started.kind == "upgrade"
    assert request.target == Versions("11.31.0", "11.25.2")
    assert (request.order, request.soak_seconds) == (("test", "dev", "prod"), 1800.0)


def test_the_same_versions_deploy_even_when_only_the_upgrade_block_changes() -> None:
    client = deployed()
    put = body(**OLD, upgrade={"soakMinutes": 5})
    started = asyncio.run(platforms.deploy(client, FakeArm(), SETTINGS, "acme", put))
    assert started.kind == "deploy"
    assert started_input(client)["operation"] == "deploy"


def test_a_lower_version_is_refused_naming_the_field() -> None:
    client = deployed()
    put = body(platformVersion="11.32.0", lifetimeVersion="11.23.0")
    error = refusal(platforms.deploy(client, FakeArm(), SETTINGS, "acme", put))
    assert (error.kind, [d.target for d in error.details]) == ("invalid", ["lifetimeVersion"])
    assert "cannot lower lifetimeVersion" in error.details[0].message
    assert "from 11.24.0 to 11.23.0" in error.details[0].message
    assert client.starts == []


def test_other_changes_mixed_into_an_upgrade_are_refused_each_named() -> None:
    client = deployed()
    put = body(**NEW, tags={"owner": "ops"}, environments={"dev": {"vmSize": "Standard_D4s_v5"}})
    error = refusal(platforms.deploy(client, FakeArm(), SETTINGS, "acme", put))
    assert error.kind == "invalid"
    assert [d.target for d in error.details] == ["environments.dev.vmSize", "tags.owner"]
    assert "together with an upgrade" in error.details[0].message
    assert client.starts == []


def test_an_upgrade_of_a_platform_whose_deployment_failed_is_refused() -> None:
    client = deployed("Failed")
    error = refusal(platforms.deploy(client, FakeArm(), SETTINGS, "acme", body(**NEW)))
    assert [d.target for d in error.details] == ["platformVersion", "lifetimeVersion"]
    assert "last deployment did not succeed (Failed)" in error.details[0].message
    assert client.starts == []


def test_a_put_while_the_upgrade_runs_is_a_conflict() -> None:
    client = upgrading("Running", "AwaitingApproval", awaiting="prod")
    error = refusal(platforms.deploy(client, FakeArm(), SETTINGS, "acme", body(**NEW)))
    assert (error.kind, error.code) == ("conflict", "Conflict")
    assert "An upgrade of platform acme is running" in error.message


# --- resuming --------------------------------------------------------------------------------


@pytest.mark.parametrize("as_output", [True, False])
def test_a_put_of_the_same_spec_after_a_failed_upgrade_resumes_it(as_output: bool) -> None:
    # The orchestration's output says Failed (it ended on its own); or it crashed, and its
    # last custom status is all there is.
    runtime = "Completed" if as_output else "Failed"
    client = upgrading(runtime, "Failed" if as_output else "Running", as_output=as_output)
    started = asyncio.run(platforms.deploy(client, FakeArm(), SETTINGS, "acme", body(**NEW)))
    assert (started.kind, started.resumes) == ("upgrade", "u1")
    request = UpgradeRequest.from_json(started_input(client))
    assert request.operation_id != "u1"
    assert request.previous.document == spec(**OLD)
    assert request.outputs == OUTPUTS
    assert request.resumed is not None
    assert request.resumed.state == "Failed"
    assert [(e.environment, e.state) for e in request.resumed.environments] == [
        ("life", "Succeeded"),
        ("dev", "Succeeded"),
        ("prod", "Failed"),
        ("test", "Pending"),
    ]


def test_a_put_after_a_canceled_upgrade_resumes_it_as_canceled() -> None:
    client = upgrading("Terminated", "AwaitingApproval", awaiting="prod")
    started = asyncio.run(platforms.deploy(client, FakeArm(), SETTINGS, "acme", body(**NEW)))
    request = UpgradeRequest.from_json(started_input(client))
    assert started.resumes == "u1"
    assert request.resumed is not None
    assert (request.resumed.state, request.resumed.awaiting) == ("Canceled", None)
    prod = request.resumed.environment("prod")
    assert prod is not None
    assert prod.state == "Canceled"
    # The server the cancel interrupted is not said to have finished.
    assert [s.state for s in prod.servers] == ["Succeeded", "Canceled"]


def test_after_a_stopped_upgrade_only_its_own_target_is_accepted() -> None:
    client = upgrading("Completed", "Failed", as_output=True)
    back = refusal(platforms.deploy(client, FakeArm(), SETTINGS, "acme", body(**OLD)))
    assert [d.target for d in back.details] == ["platformVersion", "lifetimeVersion"]
    assert "stopped (Failed): PUT its spec again to resume it" in back.details[0].message
    further = body(platformVersion="11.33.0", lifetimeVersion="11.25.2")
    error = refusal(platforms.deploy(client, FakeArm(), SETTINGS, "acme", further))
    assert [d.target for d in error.details] == ["platformVersion"]
    mixed = refusal(
        platforms.deploy(client, FakeArm(), SETTINGS, "acme", body(**NEW, bastion=True))
    )
    assert [d.target for d in mixed.details] == ["bastion"]
    assert client.starts == []


def test_after_an_upgrade_succeeded_the_same_spec_deploys_and_a_lower_one_is_refused() -> None:
    client = upgrading("Completed", "Succeeded", as_output=True)
    lower = refusal(platforms.deploy(client, FakeArm(), SETTINGS, "acme", body(**OLD)))
    assert [d.target for d in lower.details] == ["platformVersion", "lifetimeVersion"]
    started = asyncio.run(platforms.deploy(client, FakeArm(), SETTINGS, "acme", body(**NEW)))
    assert started.kind == "deploy"


# --- the plan of an upgrade --------------------------------------------------------------------


def test_the_plan_of_an_upgrade_is_its_steps_lifetime_first_and_starts_nothing() -> None:
    client, arm = deployed(), FakeArm()
    put = body(**NEW, upgrade={"order": ["test", "dev", "prod"]})
    result = asyncio.run(platforms.plan_of(client, arm, SETTINGS, "acme", put)).to_json()
    assert result["operation"] == "upgrade"
    assert (result["from"], result["to"]) == (OLD, NEW)
    assert result["order"] == ["life", "test", "dev", "prod"]
    environments = [step["environment"] for step in result["steps"]]
    # Each environment's steps together, in the order, an approval before each but the first.
    assert [e for i, e in enumerate(environments) if i == 0 or environments[i - 1] != e] == [
        "life",
        "test",
        "dev",
        "prod",
    ]
    assert [s["environment"] for s in result["steps"] if s["step"] == "approval"] == [
        "test",
        "dev",
        "prod",
    ]
    assert result["steps"][0]["step"] == "restorePoint"
    assert client.starts == []
    assert "live" not in arm.asked


def test_the_plan_of_a_resumed_upgrade_leaves_out_what_the_stopped_one_did() -> None:
    client = upgrading("Completed", "Failed", as_output=True)
    result = asyncio.run(
        platforms.plan_of(client, FakeArm(), SETTINGS, "acme", body(**NEW))
    ).to_json()
    assert (result["resumes"], result["kept"]) == ("u1", ["life", "dev"])
    assert {s["environment"] for s in result["steps"]} == {"prod", "test"}


def test_the_plan_of_a_same_version_spec_is_the_resource_plan() -> None:
    result = asyncio.run(
        platforms.plan_of(deployed(), FakeArm(), SETTINGS, "acme", body(**OLD))
    ).to_json()
    assert "resources" in result
    assert "operation" not in result


def test_the_plan_refuses_what_the_put_would_refuse() -> None:
    low = body(platformVersion="11.30.0", lifetimeVersion="11.24.0")
    lower = refusal(platforms.plan_of(deployed(), FakeArm(), SETTINGS, "acme", low))
    assert [d.target for d in lower.details] == ["platformVersion"]


# --- approvals ---------------------------------------------------------------------------------


def test_an_approval_of_the_awaited_environment_raises_the_event() -> None:
    for named in (None, "prod"):
        client = awaiting("prod")
        approved = asyncio.run(platforms.approve_upgrade(client, "acme", named))
        assert (approved.environment, approved.operation_id) == ("prod", "u1")
        assert client.events == [(INSTANCE, UPGRADE_APPROVED_EVENT)]
        assert [UpgradeApproval.from_json(d) for d in client.event_data] == [
            UpgradeApproval("prod")
        ]


def test_an_approval_naming_another_environment_is_a_400_and_approves_nothing() -> None:
    client = awaiting("prod")
    error = refusal(platforms.approve_upgrade(client, "acme", "test"))
    assert (error.kind, error.code) == ("invalid", "WrongEnvironment")
    assert [(d.target, d.message) for d in error.details] == [
        ("environment", "must be prod, the environment the upgrade awaits")
    ]
    assert client.events == []


def test_an_approval_with_no_upgrade_awaiting_one_is_a_409() -> None:
    cases = {
        "a running upgrade that awaits nothing": upgrading("Running", "Running"),
        "an upgrade that ended": upgrading("Completed", "Succeeded", as_output=True),
        "a canceled upgrade (its last status awaited)": upgrading(
            "Terminated", "AwaitingApproval", awaiting="prod"
        ),
        "a deployment": deployed(),
    }
    for why, client in cases.items():
        error = refusal(platforms.approve_upgrade(client, "acme", None))
        assert (error.kind, error.code) == ("conflict", "NoUpgradeAwaitingApproval"), why
        assert client.events == [], why
    unknown = refusal(platforms.approve_upgrade(FakeDurableClient(), "acme", None))
    assert unknown.kind == "not_found"


def test_an_upgrade_that_ends_before_the_event_is_a_409() -> None:
    class Ending(RecordingClient):
        async def raise_event(
            self, instance_id: str, event_name: str, event_data: Any = None
        ) -> None:
            self.instances[INSTANCE].runtime_status = "Completed"
            await super().raise_event(instance_id, event_name, event_data)

    client = Ending(awaiting("prod").instances)
    error = refusal(platforms.approve_upgrade(client, "acme", None))
    assert (error.kind, error.code) == ("conflict", "NoUpgradeAwaitingApproval")


# --- cancel ----------------------------------------------------------------------------------


def test_the_child_ids_are_those_upgrade_platform_gives() -> None:
    from orchestrators import upgrade as orchestration
    from outsystems.upgrade import CONTROLLER, SCALE_SET_MODEL, SETUP

    assert platforms._UPGRADE_CHILD_STEPS == (SETUP, CONTROLLER, SCALE_SET_MODEL)
    for step in platforms._UPGRADE_CHILD_STEPS:
        assert platforms.upgrade_child_instance_id(
            INSTANCE, "u1", "prod", step
        ) == orchestration._instance_id(INSTANCE, "u1", "prod", step)


def test_cancel_stops_the_upgrade_and_the_step_its_running_environment_runs() -> None:
    client = upgrading("Running", "Running")
    controller = platforms.upgrade_child_instance_id(INSTANCE, "u1", "prod", "controller")
    done = platforms.upgrade_child_instance_id(INSTANCE, "u1", "prod", "setup")
    client.instances[controller] = Instance("Running")
    client.instances[done] = Instance("Completed")
    canceled = asyncio.run(platforms.cancel(client, "acme"))
    assert (canceled.instance_id, canceled.operation_id) == (INSTANCE, "u1")
    assert [instance for instance, _ in client.terminated] == [INSTANCE, controller]
    # The terminated upgrade cannot release the scaler's hold itself: the cancel does, as the
    # upgrade's holder (the entity ignores another holder's release).
    [(key, release)] = client.signalled("release")
    assert release["holder"] == "u1"
    farm, _ = SpecDocument(spec(**NEW)).parsed()
    assert key == scale_set_key(UpgradeTargets.of(farm, "prod").scale_set or "")


def test_after_a_partial_teardown_the_versions_stay_until_all_four_stand_again() -> None:
    def torn(environments: list[str]) -> FakeDurableClient:
        request = {
            "operation": "teardown",
            "operationId": "t1",
            "spec": spec(**OLD),
            "environments": environments,
        }
        output = {"status": "Succeeded", "environments": {}}
        instance = Instance("Completed", None, request, output, "2026-12-03T11:00:00Z")
        return FakeDurableClient(instances={INSTANCE: instance})

    client = torn(["dev"])
    error = refusal(platforms.deploy(client, FakeArm(), SETTINGS, "acme", body(**NEW)))
    assert [d.target for d in error.details] == ["platformVersion", "lifetimeVersion"]
    assert "after the teardown of dev" in error.details[0].message
    lower = body(platformVersion="11.30.0", lifetimeVersion="11.24.0")
    error = refusal(platforms.deploy(client, FakeArm(), SETTINGS, "acme", lower))
    assert [d.target for d in error.details] == ["platformVersion"]
    assert client.starts == []
    # The same versions redeploy; once all four are gone, a new platform takes any version.
    assert asyncio.run(platforms.deploy(client, FakeArm(), SETTINGS, "acme", body(**OLD))).kind == (
        "deploy"
    )
    everything = torn(["dev", "test", "prod", "life"])
    started = asyncio.run(platforms.deploy(everything, FakeArm(), SETTINGS, "acme", body(**NEW)))
    assert started.kind == "deploy"

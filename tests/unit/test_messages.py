"""The message types (`outsystems/messages.py`): what goes on the wire and what comes back.

Each type reads back what it writes, and reads the shapes that earlier versions of the app
wrote into orchestration histories (running instances outlive a deployment of the app).
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest

from outsystems.messages import (
    ApplyRequest,
    ArmError,
    CapacityRequest,
    CheckRequest,
    DeployRequest,
    EnvironmentProgress,
    EnvironmentRequest,
    ErrorInfo,
    Operation,
    PlannedAction,
    PlatformResult,
    PlatformStatus,
    ScalerRequest,
    ScaleSetInfo,
    ScaleSetInspection,
    SpecDocument,
    TeardownRequest,
    Tuning,
)

SPEC = SpecDocument({"solutionId": "acme", "subscriptionId": "sub", "resourceGroup": "acme-rg"})
GROUP = "/subscriptions/sub/resourceGroups/acme-rg"


def wire(document: Any) -> Any:
    """What Durable stores: the JSON text, read back."""
    return json.loads(json.dumps(document))


def test_tuning_has_one_set_of_defaults() -> None:
    assert Tuning.from_json(None) == Tuning.from_json({}) == Tuning()
    assert Tuning().poll == timedelta(seconds=15)
    # The scaler's inputs carried no retrySeconds: retries follow the polling pace.
    assert Tuning.from_json({"pollSeconds": 0.5}).retry_seconds == 0.5


def test_tuning_from_settings_derives_retries_and_backoff_from_the_pace() -> None:
    tuning = Tuning.from_settings(0.3, timeout_scale=0.01, cooldown_scale=0.1)
    assert tuning.retry_seconds == 1.0
    assert tuning.backoff_scale == pytest.approx(0.02)
    assert Tuning.from_json(wire(tuning.to_json())) == tuning
    assert Tuning.from_settings(15.0).backoff_scale == 1.0


def test_orchestration_requests_read_back_what_they_write() -> None:
    tuning = Tuning.from_settings(2.0)
    deploy = DeployRequest("op-1", SPEC, tuning)
    assert DeployRequest.from_json(wire(deploy.to_json())) == deploy
    assert deploy.to_json()["operation"] == "deploy"
    teardown = TeardownRequest("op-2", SPEC, ("dev", "test"), tuning)
    assert TeardownRequest.from_json(wire(teardown.to_json())) == teardown
    assert teardown.to_json()["operation"] == "teardown"
    child = EnvironmentRequest(SPEC, "dev", ("/a", "/b"), tuning, "nonce")
    assert EnvironmentRequest.from_json(wire(child.to_json())) == child
    scaler = ScalerRequest("/subscriptions/sub/x", tuning)
    assert ScalerRequest.from_json(wire(scaler.to_json())) == scaler


def test_environment_progress_has_the_api_shape() -> None:
    error = ErrorInfo("Conflict", "no", "/r")
    progress = EnvironmentProgress("Running", 3, 9, "creating vm")
    assert progress.to_json() == {
        "status": "Running",
        "resourcesDone": 3,
        "resourcesTotal": 9,
        "step": "creating vm",
        "error": None,
    }
    ended = progress.ended("Failed", error)
    assert ended.to_json()["step"] is None
    assert ended.to_json()["error"] == {"code": "Conflict", "message": "no", "resource": "/r"}
    assert EnvironmentProgress.from_json(wire(ended.to_json())) == ended
    assert EnvironmentProgress.pending(4).to_json()["status"] == "Pending"
    with pytest.raises(ValueError, match="unknown environment status"):
        EnvironmentProgress.from_json({"status": "Exploded"})


def test_platform_status_and_result_read_back_what_they_write() -> None:
    envs = {"dev": EnvironmentProgress("Deleted", 2, 2)}
    status = PlatformStatus("teardown", envs)
    assert PlatformStatus.from_json(wire(status.to_json())) == status
    result = PlatformResult("Succeeded", envs, {}, phase="teardown")
    # Teardown's output names its phase, as it always did.
    assert list(result.to_json()) == ["status", "phase", "environments", "outputs"]
    assert PlatformResult.from_json(wire(result.to_json())) == result


def test_operations_have_one_key_casing_and_read_the_old_one() -> None:
    operation = Operation(
        "/r", "PUT", "InProgress", "2024-01-01", "async-operation", "https://arm/op",
        ArmError("Conflict", "busy", "/r"),
    )  # fmt: skip
    written = operation.to_json()
    assert "resourceId" in written
    assert "resource_id" not in written
    assert Operation.from_json(wire(written)) == operation
    old = {
        "resource_id": "/r",
        "method": "PUT",
        "status": "InProgress",
        "api_version": "2024-01-01",
        "poll_mode": "async-operation",
        "poll_url": "https://arm/op",
        "error": {"code": "Conflict", "message": "busy", "target": "/r"},
    }
    assert Operation.from_json(old) == operation
    kept = Operation(GROUP, "DELETE", "Succeeded", kept="already deleted")
    assert Operation.from_json(wire(kept.to_json())).kept == "already deleted"
    with pytest.raises(ValueError, match="unknown operation status"):
        Operation.from_json({**old, "status": "Sleeping"})


def test_activity_requests_read_back_what_they_write() -> None:
    operation = Operation("/r", "PUT", "Succeeded")
    check = CheckRequest("sub", "acme", (operation,))
    assert CheckRequest.from_json(wire(check.to_json())) == check
    apply = ApplyRequest(SPEC, "/r", "nonce", 2)
    assert ApplyRequest.from_json(wire(apply.to_json())) == apply
    capacity = CapacityRequest("/subscriptions/sub/vmss", 3, "acme")
    assert CapacityRequest.from_json(wire(capacity.to_json())) == capacity


def test_planned_action_reads_the_whole_planned_resource_of_earlier_versions() -> None:
    old = {"id": "/r", "type": "t", "name": "n", "environment": "dev", "action": "update",
           "changes": [{"path": "tags.x", "from": 1, "to": 2}]}  # fmt: skip
    assert PlannedAction.from_json(old) == PlannedAction("/r", "update")


def test_scale_set_inspection_is_one_object_on_the_wire() -> None:
    info = ScaleSetInfo("/subscriptions/sub/vmss", True, True, "acme", 2, {"a": "b"})
    inspection = ScaleSetInspection(info, 10)
    assert inspection.to_json()["ceiling"] == 10
    assert inspection.to_json()["capacity"] == 2
    assert ScaleSetInspection.from_json(wire(inspection.to_json())) == inspection
    assert ScaleSetInspection.from_json({**info.to_json(), "ceiling": None}).ceiling is None


def test_the_scale_requests_state_reads_back_what_it_writes() -> None:
    from datetime import UTC, datetime

    from outsystems.messages import DecisionRecord, PendingRequest, ScaleRequestsState
    from outsystems.scaling import ScaleKind, ScaleRequest, ScaleSource

    at = datetime(2026, 11, 20, 9, 14, tzinfo=UTC)
    request = ScaleRequest(ScaleKind.OUT, None, ScaleSource.ALERT, "a-1", at, "cpu", "CPU high")
    state = ScaleRequestsState(
        "/subscriptions/sub/vmss",
        "acme",
        (PendingRequest("r1", request, deferred=True, alert_ids=("a-1",)),),
        at,
        (DecisionRecord({"requestId": "r0", "outcome": "applied"}),),
    )
    assert ScaleRequestsState.from_json(wire(state.to_json())) == state
    # What `take` answers: no decisions.
    assert "decisions" not in state.to_json(decisions=False)
    assert ScaleRequestsState.from_json(None) == ScaleRequestsState()


def test_a_record_sets_the_cooldown_only_when_it_says_so() -> None:
    from outsystems.messages import RecordFates

    announced = RecordFates(deferred=("r1",))
    assert "cooldownUntil" not in announced.to_json()
    assert not RecordFates.from_json(wire(announced.to_json())).sets_cooldown
    decided = RecordFates(settled=("r1",), sets_cooldown=True)
    assert decided.to_json()["cooldownUntil"] is None
    assert RecordFates.from_json(wire(decided.to_json())) == decided


def test_a_withdrawal_without_an_alert_id_names_no_alert() -> None:
    from outsystems.messages import WithdrawAlert

    assert WithdrawAlert.from_json({"rule": "cpu-high"}).alert_id is None
    assert WithdrawAlert.from_json(None) == WithdrawAlert(None)
    assert WithdrawAlert.from_json({"alertId": "a-1"}) == WithdrawAlert("a-1")


def test_the_scaler_status_says_until_when_only_in_a_cooldown() -> None:
    from datetime import UTC, datetime

    from outsystems.messages import ScalerStatus

    until = datetime(2026, 11, 20, 9, 14, tzinfo=UTC)
    assert ScalerStatus("working").to_json() == {"phase": "working"}
    sleeping = ScalerStatus("cooldown", until)
    assert ScalerStatus.from_json(wire(sleeping.to_json())) == sleeping
    assert ScalerStatus.from_json(None) is None
    assert ScalerStatus.from_json("working") is None


def test_an_upgrade_request_and_its_progress_travel_as_json() -> None:
    from outsystems.messages import (
        EnvironmentUpgrade,
        RestorePoint,
        ServerUpgrade,
        SpecDocument,
        UpgradeProgress,
        UpgradeRequest,
        Versions,
    )

    old = SpecDocument({"platformVersion": "11.32.0", "lifetimeVersion": "11.25.2"})
    new = SpecDocument({"platformVersion": "11.33.0", "lifetimeVersion": "11.26.0"})
    request = UpgradeRequest("op-1", new, old, ("dev", "test", "prod"), 3600.0)
    assert UpgradeRequest.from_json(json.loads(json.dumps(request.to_json()))) == request
    assert request.source == Versions("11.32.0", "11.25.2")
    assert request.target == Versions("11.33.0", "11.26.0")

    progress = UpgradeProgress(
        "op-1",
        request.source,
        request.target,
        "AwaitingApproval",
        (
            EnvironmentUpgrade(
                "life",
                "Succeeded",
                restore_point=RestorePoint("copy", "/sub/db", "/sub/db-copy"),
                servers=(ServerUpgrade("acme-life-vm", "Succeeded", version="11.26.0"),),
            ),
            EnvironmentUpgrade("dev", "Pending"),
        ),
        awaiting="dev",
    )
    assert UpgradeProgress.from_json(json.loads(json.dumps(progress.to_json()))) == progress
    with pytest.raises(ValueError, match="unknown upgrade state"):
        UpgradeProgress.from_json({**progress.to_json(), "state": "Sleeping"})


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("11.32.0", "11.33.0", 1),
        ("11.33.0", "11.32.0", -1),
        ("11.32.0", "11.32.0.7", 0),
        ("11.9.0", "11.10.0", 1),
        ("11.32.0.7", "11.32.1", 1),
    ],
)
def test_versions_compare_by_number_and_a_three_part_one_means_any_build(
    old: str, new: str, expected: int
) -> None:
    from outsystems.spec.versions import compare_versions

    assert compare_versions(old, new) == expected

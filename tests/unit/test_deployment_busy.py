"""Resources ARM is still busy with, or left failed: waited for, and applied again."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from outsystems.deployment import BUSY_BACKOFF_SECONDS, MAX_ATTEMPTS, Walk, timeout_for
from outsystems.messages import ArmError, Operation
from outsystems.plan import plan_resource, unsettled_state
from outsystems.resource_types import APP_GATEWAY
from outsystems.topology import Resource

T0 = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
GATEWAY = Resource(
    id="/x/gw", type=APP_GATEWAY, name="gw", api_version="v", environment="dev", body={},
    depends_on=(),
)  # fmt: skip


def busy(code: str = "AnotherOperationInProgress") -> Operation:
    error = {"code": code, "message": "Another operation on this resource is in progress."}
    return Operation.from_json(
        {"resourceId": GATEWAY.id, "method": "PUT", "status": "Failed", "error": error}
    )


def test_another_operation_in_progress_is_waited_for_beyond_the_attempts() -> None:
    walk = Walk([GATEWAY], [GATEWAY.id], backoff_scale=1.0)
    now = T0
    # Far more conflicts than attempts: an hour-long gateway creation of an earlier run.
    for _ in range(MAX_ATTEMPTS * 3):
        walk.started(GATEWAY.id, busy(), now)
        assert not walk.finished
        retry_at = walk.next_retry_at()
        assert retry_at == now + timedelta(seconds=BUSY_BACKOFF_SECONDS)
        now = retry_at
    walk.started(GATEWAY.id, busy()._replace(status="Succeeded", error=None), now)
    assert walk.progress().to_json()["status"] == "Succeeded"


def test_waiting_for_another_operation_ends_at_the_types_limit() -> None:
    walk = Walk([GATEWAY], [GATEWAY.id], backoff_scale=1.0)
    walk.started(GATEWAY.id, busy("RetryableErrorDueToAnotherOperation"), T0)
    late = T0 + timeout_for(APP_GATEWAY)
    walk.started(GATEWAY.id, busy("RetryableErrorDueToAnotherOperation"), late)
    assert walk.finished
    assert walk.progress().to_json()["error"]["code"] == "RetryableErrorDueToAnotherOperation"
    assert walk.progress().to_json()["error"]["resource"] == GATEWAY.id


def test_conflicts_do_not_use_up_the_attempts_of_real_failures() -> None:
    walk = Walk([GATEWAY], [GATEWAY.id], backoff_scale=0.0)
    for _ in range(5):
        walk.started(GATEWAY.id, busy(), T0)
    failed = busy()._replace(error=ArmError("RetryableError", "try again"))
    for _ in range(MAX_ATTEMPTS - 1):
        walk.started(GATEWAY.id, failed, T0)
        assert not walk.finished
    walk.started(GATEWAY.id, failed, T0)
    assert walk.progress().to_json()["error"]["code"] == "RetryableError"


SIZED = Resource(
    id="/x/vm", type="Microsoft.Compute/virtualMachines", name="vm", api_version="v",
    environment="dev", body={"properties": {"size": "S"}}, depends_on=(),
)  # fmt: skip


@pytest.mark.parametrize("state", ["Failed", "Canceled", "Creating", "Updating", "Deleting"])
def test_an_unsettled_resource_is_applied_again(state: str) -> None:
    live = {"properties": {"size": "S", "provisioningState": state}}
    assert unsettled_state(live) == state
    planned = plan_resource(SIZED, live).to_json()
    assert planned["action"] == "update"
    assert planned["changes"] == [
        {"path": "properties.provisioningState", "from": state, "to": "Succeeded"}
    ]


@pytest.mark.parametrize(
    "extra", [{}, {"provisioningState": "Succeeded"}, {"provisioningState": "succeeded"}]
)
def test_a_settled_resource_is_left_alone(extra: dict[str, Any]) -> None:
    live = {"properties": {"size": "S", **extra}}
    assert unsettled_state(live) is None
    assert plan_resource(SIZED, live).action == "noop"
    assert plan_resource(SIZED, None).action == "create"


def test_an_update_keeps_its_own_changes() -> None:
    live = {"properties": {"size": "M", "provisioningState": "Failed"}}
    planned = plan_resource(SIZED, live).to_json()
    assert planned["action"] == "update"
    assert [c["path"] for c in planned["changes"]] == [
        "properties.size",
        "properties.provisioningState",
    ]

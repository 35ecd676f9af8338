"""Resources ARM is still busy with, or left failed: waited for, and applied again."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from outsystems.deployment import (
    BUSY_BACKOFF_SECONDS,
    MAX_ATTEMPTS,
    Walk,
    settle_plan_entry,
    timeout_for,
    unsettled_state,
)
from outsystems.topology import APP_GATEWAY, Resource

T0 = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
GATEWAY = Resource(
    id="/x/gw", type=APP_GATEWAY, name="gw", api_version="v", environment="dev", body={},
    depends_on=(),
)  # fmt: skip


def busy(code: str = "AnotherOperationInProgress") -> dict[str, Any]:
    error = {"code": code, "message": "Another operation on this resource is in progress."}
    return {"resource_id": GATEWAY.id, "method": "PUT", "status": "Failed", "error": error}


def test_another_operation_in_progress_is_waited_for_beyond_the_attempts() -> None:
    walk = Walk("dev", [GATEWAY], [GATEWAY.id], backoff_scale=1.0)
    now = T0
    # Far more conflicts than attempts: an hour-long gateway creation of an earlier run.
    for _ in range(MAX_ATTEMPTS * 3):
        walk.started(GATEWAY.id, busy(), now)
        assert not walk.finished
        retry_at = walk.next_retry_at()
        assert retry_at == now + timedelta(seconds=BUSY_BACKOFF_SECONDS)
        now = retry_at
    walk.started(GATEWAY.id, {**busy(), "status": "Succeeded", "error": None}, now)
    assert walk.progress()["status"] == "Succeeded"


def test_waiting_for_another_operation_ends_at_the_types_limit() -> None:
    walk = Walk("dev", [GATEWAY], [GATEWAY.id], backoff_scale=1.0)
    walk.started(GATEWAY.id, busy("RetryableErrorDueToAnotherOperation"), T0)
    late = T0 + timeout_for(APP_GATEWAY)
    walk.started(GATEWAY.id, busy("RetryableErrorDueToAnotherOperation"), late)
    assert walk.finished
    assert walk.progress()["error"]["code"] == "RetryableErrorDueToAnotherOperation"
    assert walk.progress()["error"]["resource"] == GATEWAY.id


def test_conflicts_do_not_use_up_the_attempts_of_real_failures() -> None:
    walk = Walk("dev", [GATEWAY], [GATEWAY.id], backoff_scale=0.0)
    for _ in range(5):
        walk.started(GATEWAY.id, busy(), T0)
    failed = {**busy(), "error": {"code": "RetryableError", "message": "try again"}}
    for _ in range(MAX_ATTEMPTS - 1):
        walk.started(GATEWAY.id, failed, T0)
        assert not walk.finished
    walk.started(GATEWAY.id, failed, T0)
    assert walk.progress()["error"]["code"] == "RetryableError"


def entry(action: str = "noop") -> dict[str, Any]:
    return {"id": GATEWAY.id, "name": "gw", "action": action, "changes": []}


@pytest.mark.parametrize("state", ["Failed", "Canceled", "Creating", "Updating", "Deleting"])
def test_an_unsettled_resource_is_applied_again(state: str) -> None:
    live = {"properties": {"provisioningState": state}}
    assert unsettled_state(live) == state
    settled = settle_plan_entry(entry(), live)
    assert settled["action"] == "update"
    assert settled["changes"] == [
        {"path": "properties.provisioningState", "from": state, "to": "Succeeded"}
    ]


@pytest.mark.parametrize(
    "live", [None, {}, {"properties": {}}, {"properties": {"provisioningState": "Succeeded"}}]
)
def test_a_settled_or_absent_resource_keeps_its_action(live: dict[str, Any] | None) -> None:
    assert unsettled_state(live) is None
    assert settle_plan_entry(entry(), live) == entry()
    assert settle_plan_entry(entry("create"), live) == entry("create")


def test_an_update_keeps_its_own_changes() -> None:
    changed = {**entry("update"), "changes": [{"path": "sku", "from": 1, "to": 2}]}
    live = {"properties": {"provisioningState": "Failed"}}
    assert settle_plan_entry(changed, live) == changed

"""ARM error classes: one case-insensitive table for the deployment walk and the scaler.

Oracle for `SubscriptionRequestsThrottled`: Microsoft Learn, "Troubleshoot the
SubscriptionRequestsThrottled error code (429)"
(https://learn.microsoft.com/troubleshoot/azure/azure-kubernetes/error-code-subscriptionrequeststhrottled,
read 2026-12-03): ARM answers `Code="SubscriptionRequestsThrottled"`, status 429, "Please try
again after '6' seconds" — a throttled request, to be sent again later.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from outsystems.arm_errors import BUSY_CODES, RETRYABLE_CODES, TRANSIENT_CODES, CodeSet
from outsystems.deployment import Walk
from outsystems.messages import Operation
from outsystems.resource_types import NIC
from outsystems.topology import Resource

T0 = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
NIC_A = Resource(
    id="/x/a", type=NIC, name="a", api_version="v", environment="dev", body={}, depends_on=()
)


@pytest.mark.parametrize(
    "code",
    ["SubscriptionRequestsThrottled", "subscriptionrequeststhrottled", "TooManyRequests"],
)
def test_throttling_is_transient_and_retryable_whatever_the_casing(code: str) -> None:
    assert code in TRANSIENT_CODES
    assert code in RETRYABLE_CODES
    assert code not in BUSY_CODES


@pytest.mark.parametrize(
    "code",
    [
        "AnotherOperationInProgress",
        "anotheroperationinprogress",
        "RETRYABLEERRORDUETOANOTHEROPERATION",
    ],
)
def test_a_busy_resource_is_retryable_but_not_transient(code: str) -> None:
    assert code in BUSY_CODES
    assert code in RETRYABLE_CODES
    assert code not in TRANSIENT_CODES


@pytest.mark.parametrize("code", ["OperationNotAllowed", "InvalidParameter", "", None, 429])
def test_other_codes_and_non_codes_are_not_retried(code: Any) -> None:
    assert code not in RETRYABLE_CODES


def test_the_classes_partition_the_retryable_codes() -> None:
    assert not BUSY_CODES & TRANSIENT_CODES
    assert RETRYABLE_CODES == BUSY_CODES | TRANSIENT_CODES
    assert isinstance(RETRYABLE_CODES, CodeSet)


@pytest.mark.parametrize("code", ["SubscriptionRequestsThrottled", "retryableerror"])
def test_the_deployment_walk_retries_a_throttled_or_retryable_operation(code: str) -> None:
    walk = Walk([NIC_A], [NIC_A.id], backoff_scale=1.0)
    failed = {"resource_id": NIC_A.id, "method": "PUT", "status": "Failed"}
    error = {"code": code, "message": "later"}
    walk.started(NIC_A.id, Operation.from_json({**failed, "error": error}), T0)
    assert not walk.finished
    retry_at = walk.next_retry_at()
    assert retry_at is not None
    assert [r.id for r in walk.ready(retry_at)] == [NIC_A.id]

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
from outsystems.messages import ArmError, Operation
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
    failed = Operation(NIC_A.id, "PUT", "Failed", error=ArmError(code, "later"))
    walk.started(NIC_A.id, failed, T0)
    assert not walk.finished
    retry_at = walk.next_retry_at()
    assert retry_at is not None
    assert [r.id for r in walk.ready(retry_at)] == [NIC_A.id]


def _http_error(status: int, reason: str, body: dict[str, Any] | None) -> Exception:
    """The error azure-core (the SDKs' pipeline) raises for an ARM answer, built by azure-core."""
    import json

    import requests
    from azure.core.exceptions import HttpResponseError
    from azure.core.pipeline.transport import HttpRequest, RequestsTransportResponse
    from azure.mgmt.core.exceptions import ARMErrorFormat

    answer = requests.Response()
    answer.status_code = status
    answer.reason = reason
    answer._content = b"" if body is None else json.dumps(body).encode()
    answer.headers["Content-Type"] = "application/json"
    request = HttpRequest("GET", "https://management.azure.com/subscriptions/s/resourcegroups")
    return HttpResponseError(
        response=RequestsTransportResponse(request, answer), error_format=ARMErrorFormat
    )


@pytest.mark.parametrize(
    ("status", "reason", "body", "expected"),
    [
        # ARM's throttling answer (the page above): 429 with its code.
        (
            429,
            "Too Many Requests",
            {
                "error": {
                    "code": "SubscriptionRequestsThrottled",
                    "message": "Please try again after '6' seconds.",
                }
            },
            True,
        ),
        # A 429 without ARM's body: azure-core names the status's reason phrase (RFC 6585).
        (429, "Too Many Requests", None, True),
        (
            503,
            "Service Unavailable",
            {"error": {"code": "ServiceUnavailable", "message": "x"}},
            False,
        ),
        (403, "Forbidden", {"error": {"code": "AuthorizationFailed", "message": "no"}}, False),
    ],
)
def test_a_throttled_request_is_told_by_its_message_as_the_sdk_writes_it(
    status: int, reason: str, body: dict[str, Any] | None, expected: bool
) -> None:
    from outsystems.arm_errors import throttled

    error = _http_error(status, reason, body)
    # As an orchestration sees it: the activity's failure message, wrapped by Durable.
    assert throttled(f"Activity function 'plan_environment' failed: {error}") is expected


@pytest.mark.parametrize(("status", "expected"), [(429, True), (503, False)])
def test_a_request_the_apps_adapter_gave_up_on_is_told_throttled_by_its_status(
    status: int, expected: bool
) -> None:
    # What `begin_apply_resources` and `plan_environment` raise when ARM kept answering 429
    # past the pipeline's retries (ARM's code and wording: Microsoft Learn, "Troubleshoot the
    # SubscriptionRequestsThrottled error code (429)").
    from azure.core.pipeline.transport import HttpRequest

    from arm.operations import TransientArmError, _raise_if_transient
    from outsystems.arm_errors import throttled

    body = {
        "error": {
            "code": "SubscriptionRequestsThrottled" if status == 429 else "ServiceUnavailable",
            "message": "Number of 'write' requests for subscription 's' exceeded the limit. "
            "Please try after '1' seconds.",
        }
    }
    import json

    import requests
    from azure.core.pipeline.transport import RequestsTransportResponse

    answer = requests.Response()
    answer.status_code = status
    answer.reason = "Too Many Requests" if status == 429 else "Service Unavailable"
    answer._content = json.dumps(body).encode()
    answer.headers["Content-Type"] = "application/json"
    request = HttpRequest("PUT", "https://management.azure.com/x")
    response = RequestsTransportResponse(request, answer)
    with pytest.raises(TransientArmError) as raised:
        _raise_if_transient(response, "/x")
    message = f"Activity function 'begin_apply_resources' failed: {raised.value}"
    assert throttled(message) is expected

"""The classes of ARM error codes the app acts on: busy, transient, retryable.

One table for the deployment walk (`outsystems.deployment`) and the scaler
(`orchestrators.scaler`), so that both retry the same failures (the scaler's own list had
drifted: it matched codes case-sensitively and missed `SubscriptionRequestsThrottled`). Codes are
matched case-insensitively, as the deployment walk always did: they come from many resource
providers; a `CodeSet` answers `in` whatever the casing.

`SubscriptionRequestsThrottled` is ARM's throttling of a subscription's requests, answered with
429 and a time to try again after: Microsoft Learn, "Troubleshoot the SubscriptionRequestsThrottled
error code (429)"
(https://learn.microsoft.com/troubleshoot/azure/azure-kubernetes/error-code-subscriptionrequeststhrottled,
`Code="SubscriptionRequestsThrottled"`, "Please try again after '6' seconds", pointing to
"Throttling Resource Manager requests"). The other codes are those the deployment walk retried.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final, Self


class CodeSet(frozenset[str]):
    """A set of ARM error codes that contains a code whatever its casing."""

    def __new__(cls, codes: Iterable[str] = ()) -> Self:
        return super().__new__(cls, (code.lower() for code in codes))

    def __contains__(self, code: object) -> bool:
        return isinstance(code, str) and super().__contains__(code.lower())


#: The resource is busy with another operation: try again once that one is over.
BUSY_CODES: Final = CodeSet({"AnotherOperationInProgress", "RetryableErrorDueToAnotherOperation"})
#: The operation failed transiently (ARM says to retry it, or was throttled, or failed inside):
#: the same request may be sent again.
TRANSIENT_CODES: Final = CodeSet(
    {
        "RetryableError",
        "InternalServerError",
        "InternalError",
        "ServerTimeout",
        "ServiceUnavailable",
        "GatewayTimeout",
        "TooManyRequests",
        "SubscriptionRequestsThrottled",
        "OperationPreempted",
    }
)
#: ARM throttled the request (429): the subscription's request budget is spent for now. What it
#: would have done was not done; it may be sent again once the budget refills.
THROTTLED_CODES: Final = CodeSet({"TooManyRequests", "SubscriptionRequestsThrottled"})
#: Every code whose operation is worth another attempt.
RETRYABLE_CODES: Final = CodeSet(BUSY_CODES | TRANSIENT_CODES)

#: How a throttled request reads once it failed an activity: azure-core writes an ARM error as
#: `(<code>) <message>`, and a 429 without an ARM body as "Operation returned an invalid status
#: 'Too Many Requests'" (its `HttpResponseError` for the status's reason phrase, RFC 6585); the
#: app's own adapter (`arm.operations.TransientArmError`) as "ARM answered 429 <code>: ...".
_THROTTLED_MARKS: Final = (
    "(subscriptionrequeststhrottled)",
    "(toomanyrequests)",
    "'too many requests'",
    "arm answered 429 ",
)


def throttled(message: str) -> bool:
    """Whether a failure's message says ARM throttled the request (429): the same request may
    be sent again once the caller's request budget has refilled."""
    text = message.lower()
    return any(mark in text for mark in _THROTTLED_MARKS)

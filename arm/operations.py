"""Generic ARM operations by resource id: start a PUT/PATCH/DELETE, check it later, read state.

An operation is started and the function returns at once with an `Operation` (its type lives
in `outsystems.messages`): plain, JSON-serialisable data that an orchestration can keep in its
history and hand back to `check` after a durable timer. It carries the ARM polling URL
(`Azure-AsyncOperation` or `Location`), never the SDK's continuation token (which embeds
response bodies, and so could embed secrets).

Requests go through a management client's pipeline (`send_request`), so they get the same
authentication, retry (429/5xx with `Retry-After`) and logging policies as every SDK call.
"""

from __future__ import annotations

import json
import logging
from typing import Any, Final, Protocol
from urllib.parse import urlsplit

from azure.core.exceptions import HttpResponseError
from azure.core.rest import HttpRequest, HttpResponse

from outsystems.messages import ArmError, Operation, OperationStatus, PollMode

log = logging.getLogger(__name__)

# Re-exported: the names callers of this module used before the messages had their home.
__all__ = ["ArmError", "Operation", "PollMode", "Sender", "Status", "TransientArmError"]
Status = OperationStatus

_TRANSIENT_STATUS = frozenset({408, 429, 500, 502, 503, 504})


class Sender(Protocol):
    """What a management client offers: its pipeline, for raw requests."""

    def send_request(self, request: HttpRequest, **kwargs: Any) -> HttpResponse: ...


class TransientArmError(RuntimeError):
    """ARM answered with a transient failure even after the pipeline's retries: try again later."""


def _json(response: HttpResponse) -> Any:
    text = response.text()
    if not text:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return None


def error_of(response: HttpResponse, resource_id: str) -> ArmError:
    """ARM's error envelope of a failed response, with sensible fallbacks."""
    body = _json(response)
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        return ArmError(
            code=str(error.get("code") or response.status_code),
            message=str(error.get("message") or response.reason or ""),
            target=str(error["target"]) if error.get("target") else resource_id,
        )
    return ArmError(
        code=f"Http{response.status_code}",
        message=response.reason or f"HTTP {response.status_code}",
        target=resource_id,
    )


def _raise_if_transient(response: HttpResponse, what: str) -> None:
    if response.status_code in _TRANSIENT_STATUS:
        error = error_of(response, what)
        raise TransientArmError(
            f"{what}: ARM answered {response.status_code} {error.code}: {error.message}"
        )


_TERMINAL_STATES = frozenset({"succeeded", "failed", "canceled"})


def retry_after(response: HttpResponse) -> float | None:
    """ARM's `Retry-After` on an answer, in seconds (None when absent or not an integer).

    ARM's RPC says the header of an asynchronous operation is an integer number of seconds and
    "will not support http-date" (Azure/azure-resource-manager-rpc, v1.0/Addendum.md,
    "Asynchronous Operations", commit 4fdacf348d15c1cf120c1e308445161cccdec685).
    """
    value = (response.headers.get("Retry-After") or "").strip()
    return float(value) if value.isdigit() else None


def _url(resource_id: str, api_version: str) -> str:
    return f"{resource_id}?api-version={api_version}"


def _provisioning_state(body: Any) -> str | None:
    if isinstance(body, dict):
        props = body.get("properties")
        if isinstance(props, dict) and isinstance(props.get("provisioningState"), str):
            return str(props["provisioningState"])
    return None


def _database_status(body: Any) -> str:
    """A SQL database's `status`, lowered ("" for anything else)."""
    props = body.get("properties") if isinstance(body, dict) else None
    status = props.get("status") if isinstance(props, dict) else None
    return status.lower() if isinstance(status, str) else ""


def _started(
    response: HttpResponse,
    resource_id: str,
    method: str,
    api_version: str,
    *,
    allow_body_mode: bool = True,
) -> Operation:
    """Interpret the initial response of a PUT/PATCH/DELETE as the SDK's ARM poller does."""
    body = _json(response)
    base = Operation(
        resource_id,
        method,
        "InProgress",
        api_version,
    )
    base = base._replace(retry_after=retry_after(response))
    async_url = response.headers.get("Azure-AsyncOperation")
    location = response.headers.get("Location")
    if async_url:
        return base._replace(poll_mode="async-operation", poll_url=async_url)
    if location and response.status_code == 202:
        return base._replace(poll_mode="location", poll_url=location)
    state = (_provisioning_state(body) or "").lower()
    if allow_body_mode and state and state not in _TERMINAL_STATES:
        return base._replace(poll_mode="resource")
    base = base._replace(retry_after=None)
    if state in {"failed", "canceled"}:
        error = ArmError("ProvisioningFailed", f"provisioningState is {state}", resource_id)
        return base._replace(status="Failed", error=error)
    return base._replace(status="Succeeded")


def _begin(
    sender: Sender,
    method: str,
    resource_id: str,
    api_version: str,
    body: dict[str, Any] | None = None,
) -> Operation:
    request = HttpRequest(method, _url(resource_id, api_version), json=body)
    response = sender.send_request(request)
    _raise_if_transient(response, resource_id)
    if method == "DELETE" and response.status_code == 404:
        return Operation(resource_id, method, "Succeeded", api_version)
    if response.status_code >= 400:
        return Operation(
            resource_id, method, "Failed", api_version, error=error_of(response, resource_id)
        )
    return _started(response, resource_id, method, api_version, allow_body_mode=method != "DELETE")


def begin_put(
    sender: Sender, resource_id: str, api_version: str, body: dict[str, Any]
) -> Operation:
    """Send the full desired body of a resource; return at once with the operation."""
    return _begin(sender, "PUT", resource_id, api_version, body)


def begin_patch(
    sender: Sender, resource_id: str, api_version: str, body: dict[str, Any]
) -> Operation:
    """Merge a partial body into a resource (e.g. a scale set's `sku.capacity`)."""
    return _begin(sender, "PATCH", resource_id, api_version, body)


def begin_delete(sender: Sender, resource_id: str, api_version: str) -> Operation:
    """Delete a resource; an absent resource counts as deleted."""
    return _begin(sender, "DELETE", resource_id, api_version)


def raise_for_status(response: HttpResponse, what: str) -> None:
    """Raise for a failed read: `TransientArmError` when worth retrying, else ARM's error."""
    _raise_if_transient(response, what)
    if response.status_code >= 400:
        error = error_of(response, what)
        raise HttpResponseError(message=f"{error.code}: {error.message}", response=response)


def get_resource(sender: Sender, resource_id: str, api_version: str) -> dict[str, Any] | None:
    """The live resource, or None when it does not exist (or its resource group does not)."""
    response = sender.send_request(HttpRequest("GET", _url(resource_id, api_version)))
    if response.status_code == 404:
        return None
    raise_for_status(response, resource_id)
    body = _json(response)
    return body if isinstance(body, dict) else None


def _same_origin(url: str, endpoint: str) -> bool:
    a, b = urlsplit(url), urlsplit(endpoint)
    return (a.scheme.lower(), a.netloc.lower()) == (b.scheme.lower(), b.netloc.lower())


def check(sender: Sender, operation: Operation, endpoint: str) -> Operation:
    """Poll a started operation once; return it with its new status (never waits)."""
    if operation.done:
        return operation
    if operation.poll_mode == "resource" or operation.poll_url is None:
        return _check_by_resource(sender, operation)
    if not _same_origin(operation.poll_url, endpoint):
        # The pipeline adds our token to whatever URL it is given: never send it elsewhere.
        raise ValueError(f"refusing to poll {operation.poll_url!r}: not on {endpoint}")
    response = sender.send_request(HttpRequest("GET", operation.poll_url))
    _raise_if_transient(response, operation.resource_id)
    if response.status_code >= 400:
        return _failed(operation, error_of(response, operation.resource_id))
    operation = operation._replace(retry_after=retry_after(response))
    if operation.poll_mode == "location":
        if response.status_code == 202:
            return operation
        return operation._replace(status="Succeeded", retry_after=None)
    body = _json(response) or {}
    status = str(body.get("status", "")).lower()
    if status == "succeeded":
        return operation._replace(status="Succeeded", retry_after=None)
    if status in {"failed", "canceled"}:
        error = body.get("error") or {}
        return _failed(
            operation,
            ArmError(
                code=str(error.get("code") or status.capitalize()),
                message=str(error.get("message") or f"the operation ended {status}"),
                target=str(error.get("target") or operation.resource_id),
            ),
            "Canceled" if status == "canceled" else "Failed",
        )
    return operation


#: A SQL database's `status` while it is still being made: it reports no provisioningState
#: (azure-mgmt-sql 4.0.0 `DatabaseStatus`, from Azure/azure-rest-api-specs Databases.json).
DATABASE_UNDER_WAY: Final = frozenset({"copying", "creating", "restoring", "scaling"})


def _check_by_resource(sender: Sender, operation: Operation) -> Operation:
    operation = operation._replace(retry_after=None)
    live = get_resource(sender, operation.resource_id, operation.api_version)
    if live is None:
        if operation.method == "DELETE":
            return operation._replace(status="Succeeded")
        error = ArmError("ResourceNotFound", "the resource disappeared", operation.resource_id)
        return _failed(operation, error)
    if _provisioning_state(live) is None and _database_status(live) in DATABASE_UNDER_WAY:
        return operation
    state = (_provisioning_state(live) or "Succeeded").lower()
    if state == "succeeded":
        return operation._replace(status="Succeeded")
    if state in {"failed", "canceled"}:
        error = ArmError(
            "ProvisioningFailed", f"provisioningState is {state}", operation.resource_id
        )
        return _failed(operation, error)
    return operation


def _failed(operation: Operation, error: ArmError, status: Status = "Failed") -> Operation:
    return operation._replace(status=status, poll_url=None, error=error, retry_after=None)

"""Small helpers shared by the HTTP triggers: JSON answers, the API's error envelope, and the
one place where refusals of the services (`ServiceError`) and domain errors (`ApiError`)
become answers."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import azure.functions as func

from outsystems.errors import ApiError, FieldError
from services.errors import Kind, ServiceError

JSON = "application/json"

#: The largest request body any route accepts (a platform spec is a few KiB; Azure Monitor's
#: alert payloads stay well below it). Documented in `docs/api.md`.
MAX_BODY_BYTES = 256 * 1024


def json_response(
    body: Any, status: int = 200, headers: Mapping[str, str] | None = None
) -> func.HttpResponse:
    """A JSON answer."""
    return func.HttpResponse(
        json.dumps(body), status_code=status, mimetype=JSON, headers=dict(headers or {})
    )


def error_response(
    status: int, code: str, message: str, details: Sequence[FieldError] = ()
) -> func.HttpResponse:
    """An answer carrying the API's error envelope (ARM's shape)."""
    error: dict[str, Any] = {"code": code, "message": message}
    if details:
        error["details"] = [detail.to_json() for detail in details]
    return json_response({"error": error}, status)


def api_error_response(error: ApiError, status: int = 400) -> func.HttpResponse:
    """A domain error as a 4xx answer."""
    return json_response(error.to_envelope(), status)


#: The status code of each kind of refusal.
_STATUS: dict[Kind, int] = {
    "invalid": 400,
    "not_found": 404,
    "conflict": 409,
    "unavailable": 503,
}


def error_answer(error: ServiceError | ApiError) -> func.HttpResponse:
    """The answer to a refusal: its status code, the error envelope, `Retry-After` when the
    caller should try again later."""
    if isinstance(error, ApiError):
        return api_error_response(error)
    headers = {"Retry-After": str(error.retry_after)} if error.retry_after is not None else None
    return json_response(error.to_envelope(), _STATUS[error.kind], headers)


def route_param(req: func.HttpRequest, name: str) -> str:
    """A route value (the host always provides the ones in the route template)."""
    return str(req.route_params.get(name, ""))


def too_large(req: func.HttpRequest, limit: int = MAX_BODY_BYTES) -> func.HttpResponse | None:
    """A 413 for a body over `limit` bytes, None for one within it: every route that takes a
    body asks this first."""
    size = len(req.get_body() or b"")
    if size <= limit:
        return None
    return error_response(
        413,
        "RequestTooLarge",
        f"The request body has {size} bytes; the limit is {limit} bytes.",
        [FieldError("body", f"at most {limit} bytes")],
    )

"""Small helpers shared by the HTTP triggers: JSON answers and the API's error envelope."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import azure.functions as func

from outsystems.errors import ApiError, FieldError

JSON = "application/json"


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


def route_param(req: func.HttpRequest, name: str) -> str:
    """A route value (the host always provides the ones in the route template)."""
    return str(req.route_params.get(name, ""))

"""Scaling by hand, what the scaler did, and the scaling timer (`services.scaling`).

- `POST /api/platforms/{solutionId}/scale` (`{"capacity": N}` or `{"delta": N}`): checked
  against the live policy (the scale set's tags), then handed to the scale set's scaler like
  any other request. 202 `{"requestId", "scaleSet", "target"}`; 400 outside the bounds or not a
  farm; 404 unknown platform; 409 the scale set does not exist (yet) or is not the app's.
- `GET /api/platforms/{solutionId}/scaling`: policy, live capacity, cooldown, pending requests
  and the recent decisions with their source and reason.
- `enforce_scaling_schedules` (`%SCALING_TIMER_SCHEDULE%`): for every managed farm's scale set
  in the managed subscriptions, asks for the schedule floor or a drift repair when the live
  capacity is outside the bounds in force, and starts the scaler of any scale set whose
  requests wait without one (a request stored while its scaler was ending).
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import azure.durable_functions as df
import azure.functions as func

from appsettings import AppSettings
from outsystems.errors import ApiError, FieldError
from services.azure import AzureScaleSets
from services.errors import ServiceError
from triggers.http import error_answer, json_response, route_param, too_large

if TYPE_CHECKING:
    from services.scaling import ManualField

bp = df.Blueprint(http_auth_level=func.AuthLevel.FUNCTION)
log = logging.getLogger(__name__)


class _ScaleRequestError(ApiError):
    """The body of a manual scale request is not one."""

    code = "InvalidScaleRequest"

    def __init__(self, target: str, message: str) -> None:
        super().__init__("The scale request is invalid.", [FieldError(target, message)])


def _manual_body(req: func.HttpRequest) -> tuple[ManualField, int]:
    """`("capacity", N)` or `("delta", N)` from the body; `_ScaleRequestError` otherwise."""
    try:
        body = json.loads(req.get_body() or b"null")
    except (ValueError, RecursionError):
        raise _ScaleRequestError("body", "must be a JSON object") from None
    if not isinstance(body, dict):
        raise _ScaleRequestError("body", 'must be a JSON object: {"capacity": N} or {"delta": N}')
    unknown = sorted(set(body) - {"capacity", "delta"})
    if unknown:
        raise _ScaleRequestError(unknown[0], "unknown field; give capacity or delta")
    if len(body) != 1:
        raise _ScaleRequestError("body", "give exactly one of capacity and delta")
    ((field, value),) = body.items()
    if not isinstance(value, int) or isinstance(value, bool):
        raise _ScaleRequestError(field, "must be an integer")
    return ("capacity" if field == "capacity" else "delta"), value


@bp.route(route="platforms/{solutionId}/scale", methods=["POST"])
@bp.durable_client_input(client_name="client")
async def scale_platform(
    req: func.HttpRequest, client: df.DurableOrchestrationClient
) -> func.HttpResponse:
    """Set the production front-end capacity by hand, through the scale set's scaler."""
    import services.scaling as scaling

    if oversized := too_large(req):
        return oversized
    try:
        field, amount = _manual_body(req)
        accepted = await scaling.scale(
            client,
            AzureScaleSets(),
            AppSettings.load(),
            route_param(req, "solutionId"),
            field,
            amount,
        )
    except (ApiError, ServiceError) as error:
        return error_answer(error)
    return json_response(accepted.to_json(), 202)


@bp.route(route="platforms/{solutionId}/scaling", methods=["GET"])
@bp.durable_client_input(client_name="client")
async def get_scaling(
    req: func.HttpRequest, client: df.DurableOrchestrationClient
) -> func.HttpResponse:
    """The scaling policy, live capacity, cooldown, pending requests and recent decisions."""
    import services.scaling as scaling

    try:
        found = await scaling.view(
            client, AzureScaleSets(), AppSettings.load(), route_param(req, "solutionId")
        )
    except ServiceError as error:
        return error_answer(error)
    return json_response(found.to_json())


@bp.timer_trigger(schedule="%SCALING_TIMER_SCHEDULE%", arg_name="timer", use_monitor=True)
@bp.durable_client_input(client_name="client")
async def enforce_scaling_schedules(
    timer: func.TimerRequest, client: df.DurableOrchestrationClient
) -> None:
    """Schedule floors and drift repair for every managed farm; restart idle scalers."""
    import services.scaling as scaling

    report = await scaling.enforce_all(
        client, AzureScaleSets(), AppSettings.load(), datetime.now(UTC)
    )
    log.info(
        "scaling timer%s: %d managed scale sets, %d requests, %d scalers restarted",
        " (past due)" if timer.past_due else "",
        report.scale_sets,
        report.requested,
        report.kicked,
    )

"""Drift: the timer that checks every managed platform, and the route showing the last check.

- `check_platform_drift` (`%DRIFT_SCHEDULE%`, every 6 hours in the samples and in Azure):
  compares every managed platform with its live state and records what differs
  (`services.drift`); it changes nothing.
- `GET /api/platforms/{solutionId}/drift`: 200 with the last check (`status` `Drifted`,
  `InSync`, or `NeverChecked` with `checkedAt` null), 404 for an unknown platform.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import azure.durable_functions as df
import azure.functions as func

from appsettings import AppSettings
from services.azure import AzurePlatformArm
from services.errors import ServiceError
from triggers.http import error_answer, json_response, route_param

bp = df.Blueprint(http_auth_level=func.AuthLevel.FUNCTION)
log = logging.getLogger(__name__)


@bp.route(route="platforms/{solutionId}/drift", methods=["GET"])
@bp.durable_client_input(client_name="client")
async def get_drift(
    req: func.HttpRequest, client: df.DurableOrchestrationClient
) -> func.HttpResponse:
    """The platform's last drift check: when, and every difference found."""
    import services.drift as drift

    try:
        found = await drift.view(client, route_param(req, "solutionId"))
    except ServiceError as error:
        return error_answer(error)
    return json_response(found.to_json())


@bp.timer_trigger(schedule="%DRIFT_SCHEDULE%", arg_name="timer", use_monitor=True)
@bp.durable_client_input(client_name="client")
async def check_platform_drift(
    timer: func.TimerRequest, client: df.DurableOrchestrationClient
) -> None:
    """Compare every managed platform with its live state; record and announce drift."""
    import services.drift as drift

    arm = AzurePlatformArm()
    report = await drift.check_all(client, arm, arm, AppSettings.load(), datetime.now(UTC))
    log.info(
        "drift timer%s: %d platforms, %d checked, %d drifted, %d failed",
        " (past due)" if timer.past_due else "",
        report.platforms,
        report.checked,
        report.drifted,
        report.failed,
    )

"""`POST /api/alerts`: Azure Monitor's action-group webhook (common alert schema).

The trigger parses the body and hands the alert to the intake (`services.alerts`), which
decides whether an alert is a request for scale sets this app manages, stores
it and hands it to each scale set's scaler; the scaler does the work. It answers well inside
Azure Monitor's 10-second webhook timeout: what it must know about a scale set (does it exist,
do its tags carry this app's MAC) comes from a short-lived cache, filled by one ARM read per
scale set with short timeouts and no retries, the targets of one alert are checked side by side,
and storing the requests has a deadline too.

An answer that is not a verdict is never taken for one. When ARM does not answer in time, or
answers without saying anything about the scale set (429 throttling, 401/403 while the app's
role assignments propagate, 5xx, a proxy's page instead of JSON), or the task hub does not store
the request in time, the webhook answers 503 with `Retry-After` and stores nothing for that
alert: Azure Monitor retries 408, 429, 503 and 504 (azure-monitor-docs, action-groups.md,
"Webhook retry behavior"), and requests are idempotent (their ids derive from the alert and
the scale set), so a retry stores each request once.

Answers: 202 `{"accepted": [{"scaleSet", "direction", "requestId"}]}` (plus `"ignored"`, the
reasons for the other targets); 200 `{"ignored": "<reason>"}` for an alert that asks for nothing
this app does: no target, older than `ALERT_MAX_AGE_MINUTES`, no direction, no target that is a
scale set this app manages, or a `Resolved` (which withdraws the pending requests of the alert
it resolves); 400 for a body that is not a common-schema alert; 503 as above.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import azure.durable_functions as df
import azure.functions as func

from appsettings import AppSettings
from services.azure import managed_scale_sets
from services.errors import ServiceError
from triggers.http import error_answer, json_response, too_large

bp = df.Blueprint(http_auth_level=func.AuthLevel.FUNCTION)
log = logging.getLogger(__name__)


@bp.route(route="alerts", methods=["POST"])
@bp.durable_client_input(client_name="client")
async def receive_alert(
    req: func.HttpRequest, client: df.DurableOrchestrationClient
) -> func.HttpResponse:
    """Accept an Azure Monitor alert as a scale request for the scale sets it targets."""
    from outsystems.alerts import MAX_ALERT_BYTES, AlertPayloadError, parse_alert
    from services.alerts import AlertAccepted, AlertIntake

    if oversized := too_large(req, MAX_ALERT_BYTES):
        return oversized
    try:
        alert = parse_alert(req.get_body())
    except AlertPayloadError as error:
        log.warning("alert webhook refused a body: %s", error)
        return error_answer(error)
    settings = AppSettings.load()
    intake = AlertIntake(client, managed_scale_sets(settings.arm_endpoint), settings)
    try:
        outcome = await intake.receive(alert, datetime.now(UTC))
    except ServiceError as error:
        return error_answer(error)
    if isinstance(outcome, AlertAccepted):
        return json_response(outcome.to_json(), 202)
    return json_response({"ignored": outcome.reason}, 200)

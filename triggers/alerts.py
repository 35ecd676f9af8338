"""`POST /api/alerts`: Azure Monitor's action-group webhook (common alert schema).

The webhook only decides whether an alert is a request for a scale set this app manages, stores
it and hands it to that scale set's scaler; the scaler does the work. It answers within a
second: what it must know about a scale set (does it exist, do its tags say this app manages
it) comes from a short-lived cache, filled by one ARM read per scale set with short timeouts and
no retries. When ARM does not answer in time the alert is accepted anyway: the scaler checks the
tags again before it changes anything, and Azure Monitor would not re-deliver a 2xx.

Answers: 202 `{"accepted": [{"scaleSet", "direction", "requestId"}]}`; 200 `{"ignored":
"<reason>"}` for a resolved alert (which withdraws the pending request of its rule), a target
that is not a scale set or not one this app manages, or a direction that cannot be told; 400
for a body that is not a common-schema alert.
"""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import azure.durable_functions as df
import azure.functions as func

from appsettings import AppSettings
from triggers.http import api_error_response, json_response

if TYPE_CHECKING:
    from arm.scale_sets import ManagedScaleSets, ScaleSetInfo
    from outsystems.alerts import Alert

bp = df.Blueprint(http_auth_level=func.AuthLevel.FUNCTION)
log = logging.getLogger(__name__)

#: How long the webhook waits for ARM before accepting an alert unchecked.
LOOKUP_DEADLINE_SECONDS = 0.6
#: How long it trusts what it learnt: a managed scale set, and anything else.
MANAGED_TTL_SECONDS = 60.0
UNMANAGED_TTL_SECONDS = 10.0
# Request ids of alerts are derived from the alert and the scale set, so that Azure Monitor
# re-delivering a notification (it retries on timeouts) stores the request once.
_REQUEST_NAMESPACE = uuid.UUID("5b0b7c36-4a8e-4f62-9d38-2f7d0e6a9c11")

_directories: dict[str, ManagedScaleSets] = {}


def managed_scale_sets(endpoint: str) -> ManagedScaleSets:
    """The process's cache of what ARM at `endpoint` says about scale sets."""
    from arm.scale_sets import ManagedScaleSets

    key = endpoint.lower()
    directory = _directories.get(key)
    if directory is None:
        directory = ManagedScaleSets(
            _reader(endpoint),
            ttl=MANAGED_TTL_SECONDS,
            negative_ttl=UNMANAGED_TTL_SECONDS,
            deadline=LOOKUP_DEADLINE_SECONDS,
        )
        _directories[key] = directory
    return directory


def _reader(endpoint: str) -> Any:
    def read(resource_id: str) -> ScaleSetInfo:
        from azure.mgmt.resource.resources import ResourceManagementClient

        from arm.scale_sets import quick_connection, read_scale_set, scaling_key, subscription_of

        client = quick_connection(endpoint).client(
            ResourceManagementClient, subscription_of(resource_id)
        )
        return read_scale_set(
            client,
            resource_id,
            scaling_key(),
            connection_timeout=LOOKUP_DEADLINE_SECONDS,
            read_timeout=LOOKUP_DEADLINE_SECONDS,
        )

    return read


def alert_request_id(alert_id: str, scale_set_id: str) -> str:
    """The request id of an alert for one scale set (the same for a re-delivered alert)."""
    return str(uuid.uuid5(_REQUEST_NAMESPACE, f"{alert_id}|{scale_set_id.lower()}"))


def _ignored(alert: Alert, reason: str) -> func.HttpResponse:
    log.info("alert %s (rule %s) ignored: %s", alert.alert_id, alert.rule, reason)
    return json_response({"ignored": reason}, 200)


async def _withdraw(
    client: df.DurableOrchestrationClient, alert: Alert, directory: ManagedScaleSets
) -> func.HttpResponse:
    from arm.scale_sets import ScaleSetInfo
    from orchestrators.scale_requests import scale_set_entity
    from outsystems.alerts import is_scale_set_id

    for target in alert.targets:
        if not is_scale_set_id(target):
            continue
        info = await directory.lookup(target)
        # Unknown (ARM slow): withdraw anyway; a withdrawal that finds nothing does nothing.
        if not isinstance(info, ScaleSetInfo) or info.managed:
            await client.signal_entity(scale_set_entity(target), "withdraw", {"rule": alert.rule})
    return _ignored(alert, f"alert {alert.rule} resolved; its pending requests are withdrawn")


@bp.route(route="alerts", methods=["POST"])
@bp.durable_client_input(client_name="client")
async def receive_alert(
    req: func.HttpRequest, client: df.DurableOrchestrationClient
) -> func.HttpResponse:
    """Accept an Azure Monitor alert as a scale request for the scale sets it targets."""
    from arm.scale_sets import ScaleSetInfo, foreign_reason
    from outsystems.alerts import AlertPayloadError, is_scale_set_id, parse_alert
    from triggers.scaler_client import submit

    try:
        alert = parse_alert(req.get_body())
    except AlertPayloadError as error:
        log.warning("alert webhook refused a body: %s", error)
        return api_error_response(error)
    settings = AppSettings.load()
    directory = managed_scale_sets(settings.arm_endpoint)
    if alert.resolved:
        return await _withdraw(client, alert, directory)
    if alert.direction is None:
        return _ignored(alert, alert.ignored or "no direction")

    received = datetime.now(UTC)
    accepted: list[dict[str, str]] = []
    ignored: list[str] = []
    for target in alert.targets:
        if not is_scale_set_id(target):
            ignored.append(f"target {target} is not a virtual machine scale set")
            continue
        foreign = foreign_reason(target, settings.all_subscription_ids)
        if foreign is not None:
            ignored.append(foreign)
            continue
        info = await directory.lookup(target)
        if isinstance(info, ScaleSetInfo) and not info.managed:
            ignored.append(info.not_managed_reason or f"scale set {target} is not managed")
            continue
        if not isinstance(info, ScaleSetInfo):
            log.warning("alert %s accepted for %s unchecked (ARM slow)", alert.alert_id, target)
        scale_set_id = info.id if isinstance(info, ScaleSetInfo) else target
        request_id = alert_request_id(alert.alert_id, scale_set_id)
        await submit(
            client,
            scale_set_id,
            info.solution_id if isinstance(info, ScaleSetInfo) else None,
            alert.request(received),
            request_id,
            settings,
        )
        accepted.append(
            {"scaleSet": scale_set_id, "direction": alert.direction.value, "requestId": request_id}
        )
    if not accepted:
        return _ignored(alert, "; ".join(ignored))
    for reason in ignored:
        log.info("alert %s: %s", alert.alert_id, reason)
    log.info(
        "alert %s (rule %s, %s) accepted for %s",
        alert.alert_id,
        alert.rule,
        alert.direction.value,
        ", ".join(a["scaleSet"] for a in accepted),
    )
    body: dict[str, Any] = {"accepted": accepted}
    if ignored:
        body["ignored"] = ignored
    return json_response(body, 202)

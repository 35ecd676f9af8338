"""`POST /api/alerts`: Azure Monitor's action-group webhook (common alert schema).

The webhook only decides whether an alert is a request for scale sets this app manages, stores
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

import asyncio
import logging
import uuid
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import azure.durable_functions as df
import azure.functions as func

from appsettings import AppSettings
from triggers.http import api_error_response, json_response, too_large

if TYPE_CHECKING:
    from arm.scale_sets import ManagedScaleSets, ScaleSetInfo, Unchecked
    from outsystems.alerts import Alert

bp = df.Blueprint(http_auth_level=func.AuthLevel.FUNCTION)
log = logging.getLogger(__name__)

#: How long the webhook waits for ARM about one scale set (the targets are read side by side).
LOOKUP_DEADLINE_SECONDS = 0.6
#: How long it waits for the task hub to store the requests of one alert.
SUBMIT_DEADLINE_SECONDS = 4.0
#: How long it trusts what it learnt: a managed scale set, and anything else.
MANAGED_TTL_SECONDS = 60.0
UNMANAGED_TTL_SECONDS = 10.0
#: The Retry-After of a 503 (Azure Monitor retries on its own schedule: 5, 20, 5, 40, 5 s).
RETRY_AFTER_SECONDS = 10
# Request ids of alerts are derived from the alert and the scale set, so that Azure Monitor
# re-delivering a notification (it retries on timeouts) stores the request once.
_REQUEST_NAMESPACE = uuid.UUID("5b0b7c36-4a8e-4f62-9d38-2f7d0e6a9c11")

_directories: dict[str, ManagedScaleSets] = {}


def managed_scale_sets(endpoint: str) -> ManagedScaleSets:
    """The process's cache of what ARM at `endpoint` says about scale sets."""
    from arm.scale_sets import ManagedScaleSets
    from outsystems.alerts import MAX_ALERT_TARGETS

    key = endpoint.lower()
    directory = _directories.get(key)
    if directory is None:
        directory = ManagedScaleSets(
            _reader(endpoint),
            ttl=MANAGED_TTL_SECONDS,
            negative_ttl=UNMANAGED_TTL_SECONDS,
            deadline=LOOKUP_DEADLINE_SECONDS,
            max_reads=MAX_ALERT_TARGETS,
        )
        _directories[key] = directory
    return directory


def _reader(endpoint: str) -> Any:
    def read(resource_id: str) -> ScaleSetInfo:
        from azure.mgmt.resource.resources import ResourceManagementClient

        from arm.scale_sets import quick_connection, read_scale_set, scaling_key
        from outsystems.resource_types import subscription_of

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


def _retry_later(alert: Alert, message: str) -> func.HttpResponse:
    """503 with Retry-After: Azure Monitor sends the notification again."""
    log.warning("alert %s (rule %s) to be retried: %s", alert.alert_id, alert.rule, message)
    return json_response(
        {"error": {"code": "TargetUnchecked", "message": message}},
        503,
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
    )


def _name(scale_set_id: str) -> str:
    return scale_set_id.rsplit("/", 1)[-1]


async def _check(
    alert: Alert, settings: AppSettings, directory: ManagedScaleSets
) -> tuple[list[ScaleSetInfo], list[str], list[tuple[str, Unchecked]]]:
    """The targets' verdicts: managed scale sets, reasons for the others, and the unchecked."""
    from arm.scale_sets import ScaleSetInfo, foreign_reason
    from outsystems.alerts import is_scale_set_id

    reasons: list[str] = []
    to_read: list[str] = []
    for target in alert.targets:
        if not is_scale_set_id(target):
            reasons.append(f"target {target} is not a virtual machine scale set")
            continue
        foreign = foreign_reason(target, settings.all_subscription_ids)
        if foreign is not None:
            reasons.append(foreign)
            continue
        to_read.append(target)
    verdicts = await asyncio.gather(*(directory.lookup(target) for target in to_read))
    managed: list[ScaleSetInfo] = []
    unchecked: list[tuple[str, Unchecked]] = []
    for target, verdict in zip(to_read, verdicts, strict=True):
        if not isinstance(verdict, ScaleSetInfo):
            unchecked.append((target, verdict))
        elif verdict.managed:
            managed.append(verdict)
        else:
            reasons.append(verdict.not_managed_reason or f"scale set {target} is not managed")
    return managed, reasons, unchecked


async def _withdraw(
    client: df.DurableOrchestrationClient,
    alert: Alert,
    managed: list[ScaleSetInfo],
    reasons: list[str],
) -> func.HttpResponse:
    """A Resolved: withdraw the pending requests of the alert it resolves, nothing else."""
    from orchestrators.scale_requests import scale_set_entity

    resolved = f"alert {alert.label} resolved"
    if not managed:
        return _ignored(alert, f"{resolved}; nothing to withdraw: {'; '.join(reasons)}")
    signals = (
        client.signal_entity(
            scale_set_entity(info.id), "withdraw", {"alertId": alert.alert_id, "rule": alert.rule}
        )
        for info in managed
    )
    try:
        await asyncio.wait_for(asyncio.gather(*signals), SUBMIT_DEADLINE_SECONDS)
    except TimeoutError:
        return _retry_later(alert, "the task hub did not take the withdrawal in time")
    names = ", ".join(_name(info.id) for info in managed)
    return _ignored(alert, f"{resolved}; its requests still pending for {names} are withdrawn")


@bp.route(route="alerts", methods=["POST"])
@bp.durable_client_input(client_name="client")
async def receive_alert(
    req: func.HttpRequest, client: df.DurableOrchestrationClient
) -> func.HttpResponse:
    """Accept an Azure Monitor alert as a scale request for the scale sets it targets."""
    from outsystems.alerts import MAX_ALERT_BYTES, AlertPayloadError, parse_alert, stale_reason
    from triggers.scaler_client import submit

    if oversized := too_large(req, MAX_ALERT_BYTES):
        return oversized
    try:
        alert = parse_alert(req.get_body())
    except AlertPayloadError as error:
        log.warning("alert webhook refused a body: %s", error)
        return api_error_response(error)
    if not alert.targets:
        return _ignored(alert, alert.ignored or "no target")
    settings = AppSettings.load()
    received = datetime.now(UTC)
    stale = stale_reason(alert, received, timedelta(minutes=settings.alert_max_age_minutes))
    if stale is not None:
        return _ignored(alert, stale)
    if not alert.resolved and alert.direction is None:
        return _ignored(alert, alert.ignored or "no direction")

    managed, reasons, unchecked = await _check(
        alert, settings, managed_scale_sets(settings.arm_endpoint)
    )
    if unchecked:
        said = "; ".join(f"{target}: {verdict.reason}" for target, verdict in unchecked)
        return _retry_later(alert, f"ARM did not say whether this app manages {said}")
    if alert.resolved:
        return await _withdraw(client, alert, managed, reasons)
    if not managed:
        return _ignored(alert, "; ".join(reasons))

    direction = alert.direction
    if direction is None:
        return _ignored(alert, alert.ignored or "no direction")
    accepted = [
        {
            "scaleSet": info.id,
            "direction": direction.value,
            "requestId": alert_request_id(alert.alert_id, info.id),
        }
        for info in managed
    ]
    submissions = (
        submit(
            client, info.id, info.solution_id, alert.request(received), item["requestId"], settings
        )
        for info, item in zip(managed, accepted, strict=True)
    )
    try:
        await asyncio.wait_for(asyncio.gather(*submissions), SUBMIT_DEADLINE_SECONDS)
    except TimeoutError:
        return _retry_later(alert, "the task hub did not store the requests in time")
    for reason in reasons:
        log.info("alert %s: %s", alert.alert_id, reason)
    log.info(
        "alert %s (rule %s, %s) accepted for %s",
        alert.alert_id,
        alert.rule,
        direction.value,
        ", ".join(item["scaleSet"] for item in accepted),
    )
    body: dict[str, Any] = {"accepted": accepted}
    if reasons:
        body["ignored"] = reasons
    return json_response(body, 202)

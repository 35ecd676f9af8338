"""The alert intake: what an Azure Monitor alert asks of the scale sets this app manages.

It decides whether a parsed alert is a request for managed scale sets, stores one request per
managed target and hands it to that scale set's scaler (`services.scaler_client`), or, for a
`Resolved`, withdraws the pending requests of the alert it resolves. What the scale sets are
comes from the webhook's quick, cached look-up (`services.ports.ScaleSetDirectory`); an answer
that is not a verdict is never taken for one: when ARM or the task hub does not answer in
time, the intake refuses with an `unavailable` `ServiceError` and stores nothing for that
alert, so that Azure Monitor sends it again (requests are idempotent: their ids derive from
the alert and the scale set).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from appsettings import AppSettings
from orchestrators.scale_requests import scale_set_entity
from outsystems.messages import ScaleSetInfo, WithdrawAlert
from outsystems.scale_set_lookup import Unchecked, foreign_reason
from services.errors import ServiceError
from services.ports import DurableClient, ScaleSetDirectory
from services.scaler_client import submit

if TYPE_CHECKING:
    from outsystems.alerts import Alert

log = logging.getLogger(__name__)

#: How long the intake waits for the task hub to store the requests of one alert.
SUBMIT_DEADLINE_SECONDS = 4.0
#: The Retry-After of a refusal to be retried (Azure Monitor retries on its own schedule:
#: 5, 20, 5, 40, 5 s).
RETRY_AFTER_SECONDS = 10
# Request ids of alerts are derived from the alert and the scale set, so that Azure Monitor
# re-delivering a notification (it retries on timeouts) stores the request once.
_REQUEST_NAMESPACE = uuid.UUID("5b0b7c36-4a8e-4f62-9d38-2f7d0e6a9c11")


def alert_request_id(alert_id: str, scale_set_id: str) -> str:
    """The request id of an alert for one scale set (the same for a re-delivered alert)."""
    return str(uuid.uuid5(_REQUEST_NAMESPACE, f"{alert_id}|{scale_set_id.lower()}"))


@dataclass(frozen=True)
class AlertIgnored:
    """The alert asks for nothing this app does (or only withdrew requests): why."""

    reason: str


@dataclass(frozen=True)
class AcceptedTarget:
    """A managed scale set the alert's request was stored for."""

    scale_set: str
    direction: str
    request_id: str

    def to_json(self) -> dict[str, str]:
        return {
            "scaleSet": self.scale_set,
            "direction": self.direction,
            "requestId": self.request_id,
        }


@dataclass(frozen=True)
class AlertAccepted:
    """The alert's requests were stored; `ignored` says why the other targets were not."""

    accepted: Sequence[AcceptedTarget]
    ignored: Sequence[str] = ()

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"accepted": [target.to_json() for target in self.accepted]}
        if self.ignored:
            body["ignored"] = list(self.ignored)
        return body


def _name(scale_set_id: str) -> str:
    return scale_set_id.rsplit("/", 1)[-1]


class AlertIntake:
    """The alert intake, over the durable client and the scale-set look-up."""

    def __init__(
        self, client: DurableClient, directory: ScaleSetDirectory, settings: AppSettings
    ) -> None:
        self.client = client
        self.directory = directory
        self.settings = settings

    async def receive(self, alert: Alert, received: datetime) -> AlertIgnored | AlertAccepted:
        """Accept an alert as a scale request for the scale sets it targets."""
        from outsystems.alerts import stale_reason

        if not alert.targets:
            return self._ignored(alert, alert.ignored or "no target")
        max_age = timedelta(minutes=self.settings.alert_max_age_minutes)
        stale = stale_reason(alert, received, max_age)
        if stale is not None:
            return self._ignored(alert, stale)
        if not alert.resolved and alert.direction is None:
            return self._ignored(alert, alert.ignored or "no direction")

        managed, reasons, unchecked = await self._check(alert)
        if unchecked:
            said = "; ".join(f"{target}: {verdict.reason}" for target, verdict in unchecked)
            raise self._retry_later(alert, f"ARM did not say whether this app manages {said}")
        if alert.resolved:
            return await self._withdraw(alert, managed, reasons)
        if not managed:
            return self._ignored(alert, "; ".join(reasons))

        direction = alert.direction
        if direction is None:
            return self._ignored(alert, alert.ignored or "no direction")
        accepted = [
            AcceptedTarget(info.id, direction.value, alert_request_id(alert.alert_id, info.id))
            for info in managed
        ]
        submissions = (
            submit(
                self.client,
                info.id,
                info.solution_id,
                alert.request(received),
                target.request_id,
                self.settings,
            )
            for info, target in zip(managed, accepted, strict=True)
        )
        try:
            await asyncio.wait_for(asyncio.gather(*submissions), SUBMIT_DEADLINE_SECONDS)
        except TimeoutError:
            raise self._retry_later(
                alert, "the task hub did not store the requests in time"
            ) from None
        for reason in reasons:
            log.info("alert %s: %s", alert.alert_id, reason)
        log.info(
            "alert %s (rule %s, %s) accepted for %s",
            alert.alert_id,
            alert.rule,
            direction.value,
            ", ".join(target.scale_set for target in accepted),
        )
        return AlertAccepted(tuple(accepted), tuple(reasons))

    @staticmethod
    def _ignored(alert: Alert, reason: str) -> AlertIgnored:
        log.info("alert %s (rule %s) ignored: %s", alert.alert_id, alert.rule, reason)
        return AlertIgnored(reason)

    @staticmethod
    def _retry_later(alert: Alert, message: str) -> ServiceError:
        """The refusal that makes Azure Monitor send the notification again."""
        log.warning("alert %s (rule %s) to be retried: %s", alert.alert_id, alert.rule, message)
        return ServiceError(
            "unavailable", "TargetUnchecked", message, retry_after=RETRY_AFTER_SECONDS
        )

    async def _check(
        self, alert: Alert
    ) -> tuple[list[ScaleSetInfo], list[str], list[tuple[str, Unchecked]]]:
        """The targets' verdicts: managed scale sets, reasons for the others, and the
        unchecked."""
        from outsystems.alerts import is_scale_set_id

        reasons: list[str] = []
        to_read: list[str] = []
        for target in alert.targets:
            if not is_scale_set_id(target):
                reasons.append(f"target {target} is not a virtual machine scale set")
                continue
            foreign = foreign_reason(target, self.settings.all_subscription_ids)
            if foreign is not None:
                reasons.append(foreign)
                continue
            to_read.append(target)
        verdicts = await asyncio.gather(*(self.directory.lookup(target) for target in to_read))
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
        self, alert: Alert, managed: list[ScaleSetInfo], reasons: list[str]
    ) -> AlertIgnored:
        """A Resolved: withdraw the pending requests of the alert it resolves, nothing else."""
        resolved = f"alert {alert.label} resolved"
        if not managed:
            return self._ignored(alert, f"{resolved}; nothing to withdraw: {'; '.join(reasons)}")
        signals = (
            self.client.signal_entity(
                scale_set_entity(info.id),
                "withdraw",
                WithdrawAlert(alert.alert_id, alert.rule).to_json(),
            )
            for info in managed
        )
        try:
            await asyncio.wait_for(asyncio.gather(*signals), SUBMIT_DEADLINE_SECONDS)
        except TimeoutError:
            raise self._retry_later(
                alert, "the task hub did not take the withdrawal in time"
            ) from None
        names = ", ".join(_name(info.id) for info in managed)
        return self._ignored(
            alert, f"{resolved}; its requests still pending for {names} are withdrawn"
        )

"""The alert intake (`services.alerts`), driven through its ports with hand-written fakes: the
Durable client of `durable_fakes` and a scale-set directory answering from a dict. The webhook
around it (body parsing, answers, deadlines) is tested in `test_alerts_webhook.py`."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from appsettings import AppSettings
from orchestrators.scale_requests import scale_set_key
from outsystems.alerts import Alert
from outsystems.messages import ScaleSetInfo
from outsystems.scale_set_lookup import Unchecked
from outsystems.scaling import ScaleKind
from services.alerts import AlertAccepted, AlertIgnored, AlertIntake, alert_request_id
from services.errors import ServiceError
from tests.unit.durable_fakes import FakeDurableClient

SUB = "11111111-2222-3333-4444-555555555555"
SETTINGS = AppSettings.load({"AZURE_SUBSCRIPTION_ID": SUB})
VMSS = (
    f"/subscriptions/{SUB}/resourceGroups/acme-rg/providers/"
    "Microsoft.Compute/virtualMachineScaleSets/acme-prod-vmss"
)
OTHER = VMSS.replace("acme-prod-vmss", "other-vmss")
NOW = datetime(2026, 11, 20, 9, 14, tzinfo=UTC)
FIRED = Alert(
    alert_id="/subscriptions/s/providers/Microsoft.AlertsManagement/alerts/a1",
    rule="cpu-high",
    resolved=False,
    targets=(VMSS,),
    direction=ScaleKind.OUT,
    ignored=None,
    reason="Percentage CPU 86.4 > 70",
    fired_at=NOW - timedelta(minutes=1),
)


class FakeDirectory:
    """`services.ports.ScaleSetDirectory`: a verdict per id (absent: does not exist)."""

    def __init__(self, **verdicts: ScaleSetInfo | Unchecked) -> None:
        self.verdicts = {VMSS: ScaleSetInfo(VMSS, True, True, "acme", 2), **verdicts}
        self.looked_up: list[str] = []

    async def lookup(self, resource_id: str) -> ScaleSetInfo | Unchecked:
        self.looked_up.append(resource_id)
        return self.verdicts.get(resource_id) or ScaleSetInfo(resource_id, exists=False)


def receive(alert: Alert, client: FakeDurableClient, directory: Any = None) -> Any:
    intake = AlertIntake(client, directory or FakeDirectory(), SETTINGS)
    return asyncio.run(intake.receive(alert, NOW))


def test_a_fired_alert_stores_one_request_per_managed_target() -> None:
    client = FakeDurableClient()
    outcome = receive(replace(FIRED, targets=(VMSS, OTHER)), client)
    assert isinstance(outcome, AlertAccepted)
    [target] = outcome.accepted
    assert (target.scale_set, target.direction) == (VMSS, "out")
    assert target.request_id == alert_request_id(FIRED.alert_id, VMSS)
    assert outcome.ignored == (f"scale set {OTHER} does not exist",)
    [(key, added)] = client.signalled("add")
    assert (key, added["id"], added["request"]["source"]) == (
        scale_set_key(VMSS),
        target.request_id,
        "alert",
    )


def test_an_alert_for_nothing_the_app_does_is_ignored_and_stores_nothing() -> None:
    client = FakeDurableClient()
    stale = replace(FIRED, fired_at=NOW - timedelta(hours=3))
    no_direction = replace(FIRED, direction=None, ignored="no threshold to compare")
    cases: list[tuple[Alert, str]] = [
        (replace(FIRED, targets=()), "no target"),
        (no_direction, "no threshold to compare"),
        (replace(FIRED, targets=(OTHER,)), "does not exist"),
        (replace(FIRED, targets=(VMSS.replace(SUB, "9" * 8 + SUB[8:]),)), "does not manage"),
    ]
    for alert, why in cases:
        outcome = receive(alert, client)
        assert isinstance(outcome, AlertIgnored)
        assert why in outcome.reason
    assert isinstance(receive(stale, client), AlertIgnored)
    assert (client.signals, client.starts) == ([], [])


def test_a_target_arm_said_nothing_about_is_a_refusal_to_retry() -> None:
    client = FakeDurableClient()
    directory = FakeDirectory(**{OTHER: Unchecked("no answer within 0.60s")})
    with pytest.raises(ServiceError) as raised:
        receive(replace(FIRED, targets=(VMSS, OTHER)), client, directory)
    error = raised.value
    assert (error.kind, error.code, error.retry_after) == ("unavailable", "TargetUnchecked", 10)
    assert "no answer within 0.60s" in error.message
    assert client.signals == [], "nothing is stored for an alert to be retried"


def test_a_resolved_alert_withdraws_its_requests_only() -> None:
    client = FakeDurableClient()
    resolved = replace(FIRED, resolved=True, direction=None, ignored="resolved")
    outcome = receive(replace(resolved, targets=(VMSS, OTHER)), client)
    assert isinstance(outcome, AlertIgnored)
    assert "cpu-high resolved" in outcome.reason
    assert "acme-prod-vmss" in outcome.reason
    assert client.signalled("withdraw") == [
        (scale_set_key(VMSS), {"alertId": FIRED.alert_id, "rule": "cpu-high"})
    ]
    assert client.signalled("add") == []

"""`POST /api/alerts` against a fake ARM (a reader behind the real `ManagedScaleSets`) and the
hand-written Durable client of `durable_fakes`: what it answers and what it stores.

Oracles:
- Azure Monitor retries a webhook call that answers 408, 429, 503 or 504 (or does not answer),
  and no other: MicrosoftDocs/azure-monitor-docs, articles/azure-monitor/alerts/
  action-groups.md ("Webhook retry behavior") at 0fbb3c9ea74ddab08806408ecebc570e9aae89f4. So
  an answer that is not a verdict (ARM throttling, role assignments still propagating, a
  proxy's page, no answer in time) is a 503 with Retry-After, and nothing is stored for it.
- Azure Monitor gives a webhook 10 seconds to answer (articles/azure-monitor/alerts/
  alerts-troubleshoot.md, "Our timeout period for a webhook response is 10 seconds", in the
  versions before the retry table replaced it).
- Fired and Resolved notifications of one alert share `alertId`; `resolvedDateTime` is "currently
  only applicable for metric alerts" (articles/azure-monitor/alerts/alerts-common-schema.md at
  0dc1e484da0e7b7d19b53a4be2742160b3ba8097).
"""

from __future__ import annotations

import copy
import json
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from arm.scale_sets import ScaleSetReadError
from orchestrators.scale_requests import scale_set_key
from outsystems.messages import ScaleSetInfo
from services import alerts as intake
from services import azure as adapters
from tests.support.alert_webhook import SUBSCRIPTION, VMSS, Arm, answer, arm, post, vmss
from tests.unit.durable_fakes import FakeDurableClient

__all__ = ["arm"]  # the fixture

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def alert(name: str = "high", *, age: timedelta = timedelta(minutes=1), **essentials: Any) -> Any:
    """A sample of `examples/` that fired `age` ago (and, resolved, resolved then too)."""
    files = {
        "high": "alert-cpu-high-fired.json",
        "low": "alert-cpu-low-fired.json",
        "resolved": "alert-cpu-high-resolved.json",
    }
    body: dict[str, Any] = json.loads((EXAMPLES / files[name]).read_text())
    body = copy.deepcopy(body)
    moment = (datetime.now(UTC) - age).isoformat().replace("+00:00", "Z")
    body["data"]["essentials"]["firedDateTime"] = moment
    if name == "resolved":
        body["data"]["essentials"]["resolvedDateTime"] = moment
    body["data"]["essentials"].update(essentials)
    return body


def test_a_fresh_alert_for_a_managed_scale_set_is_stored_and_its_scaler_started(arm: Arm) -> None:
    arm.managed(VMSS)
    client = FakeDurableClient()
    response = post(alert(), client)
    assert response.status_code == 202
    [accepted] = answer(response)["accepted"]
    assert (accepted["scaleSet"], accepted["direction"]) == (VMSS, "out")
    [(key, added)] = client.signalled("add")
    assert key == scale_set_key(VMSS)
    assert added["id"] == accepted["requestId"]
    assert client.starts == [f"scaler-{key}"]


def test_an_alert_older_than_the_setting_is_ignored_with_the_reason(
    arm: Arm, monkeypatch: pytest.MonkeyPatch
) -> None:
    arm.managed(VMSS)
    client = FakeDurableClient()
    response = post(alert(age=timedelta(hours=2)), client)
    assert response.status_code == 200
    assert "ALERT_MAX_AGE_MINUTES" in answer(response)["ignored"]
    assert (arm.reads, client.signals) == ([], [])

    monkeypatch.setenv("ALERT_MAX_AGE_MINUTES", "180")
    assert post(alert(age=timedelta(hours=2)), client).status_code == 202


@pytest.mark.parametrize(
    "failure",
    [
        ScaleSetReadError(f"reading {VMSS}: ARM answered 429 TooManyRequests: slow down"),
        ScaleSetReadError(f"reading {VMSS}: ARM answered 403 AuthorizationFailed: no access"),
        ScaleSetReadError(f"reading {VMSS}: ARM answered 200 with a body that is not JSON"),
        "too slow",
    ],
)
def test_a_target_arm_said_nothing_about_is_retried_not_accepted_unchecked(
    arm: Arm, failure: Exception | str
) -> None:
    """Issue 13.3: such targets were accepted unchecked, each with an entity and a scaler."""
    if isinstance(failure, Exception):
        arm.answers[VMSS.lower()] = failure
    else:
        arm.managed(VMSS)
        arm.delay = adapters.LOOKUP_DEADLINE_SECONDS + 0.3
    client = FakeDurableClient()
    response = post(alert(), client)
    assert response.status_code == 503
    assert int(response.headers["Retry-After"]) > 0
    error = answer(response)["error"]
    assert error["code"] == "TargetUnchecked"
    assert VMSS in error["message"]
    assert (client.signals, client.starts, client.events) == ([], [], [])


@pytest.mark.parametrize(
    ("info", "reason"),
    [
        (ScaleSetInfo(VMSS, exists=False), "does not exist"),
        (
            ScaleSetInfo(VMSS, exists=False, problem="ARM refused to read it (400 BadRequest)"),
            "400 BadRequest",
        ),
        (ScaleSetInfo(VMSS, exists=True, managed=False), "not managed by this app"),
    ],
)
def test_a_400_404_or_a_foreign_scale_set_is_a_verdict(
    arm: Arm, info: ScaleSetInfo, reason: str
) -> None:
    arm.answers[VMSS.lower()] = info
    client = FakeDurableClient()
    response = post(alert(), client)
    assert response.status_code == 200
    assert reason in answer(response)["ignored"]
    assert client.signals == []


def test_a_target_outside_the_managed_subscriptions_is_not_even_read(arm: Arm) -> None:
    foreign = VMSS.replace(SUBSCRIPTION, "99999999-8888-7777-6666-555555555555")
    client = FakeDurableClient()
    response = post(alert(alertTargetIDs=[foreign]), client)
    assert response.status_code == 200
    assert "which this app does not manage" in answer(response)["ignored"]
    assert (arm.reads, client.signals) == ([], [])


def test_a_target_listed_1500_times_is_read_and_stored_once(arm: Arm) -> None:
    """Issue 14.6: the same scale set listed 1 500 times made 4 500 durable calls."""
    arm.managed(VMSS)
    client = FakeDurableClient()
    response = post(alert(alertTargetIDs=[VMSS, VMSS.upper()] * 750), client)
    assert response.status_code == 202
    assert len(answer(response)["accepted"]) == 1
    assert len(arm.reads) == 1
    assert len(client.signalled("add")) == 1


def test_ten_targets_are_read_side_by_side_within_the_lookup_deadline(arm: Arm) -> None:
    """Issue 14.6: targets were handled one after the other; 10 took over 6 s, near Azure
    Monitor's webhook timeout. Each read of the fake ARM waits until all ten are in flight
    (a barrier, not a clock): read one after the other, the first read would wait for the rest
    until the barrier broke, no target would be checked, and the answer would be a 503."""
    targets = [vmss(f"farm{i}-vmss") for i in range(10)]
    arm.managed(*targets)
    arm.barrier = threading.Barrier(len(targets), timeout=adapters.LOOKUP_DEADLINE_SECONDS)
    client = FakeDurableClient(delay=0.05)
    response = post(alert(alertTargetIDs=targets), client)
    assert response.status_code == 202, answer(response)
    assert len(answer(response)["accepted"]) == 10
    assert not arm.barrier.broken


def test_a_task_hub_too_slow_for_the_deadline_is_a_retryable_answer(
    arm: Arm, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The webhook answers at its own deadline: waiting for this task hub would have stored
    the request and answered 202."""
    arm.managed(VMSS)
    monkeypatch.setattr(intake, "SUBMIT_DEADLINE_SECONDS", 0.2)
    client = FakeDurableClient(delay=1.0)
    response = post(alert(), client)
    assert response.status_code == 503
    assert "Retry-After" in response.headers


def test_a_resolved_alert_withdraws_its_own_requests_from_the_managed_targets_only(
    arm: Arm,
) -> None:
    arm.managed(VMSS)
    other = vmss("other-vmss")
    vm = VMSS.replace("virtualmachinescalesets/acme-prod-vmss", "virtualmachines/acme-vm")
    client = FakeDurableClient()
    body = alert("resolved", alertTargetIDs=[VMSS, other, vm])
    response = post(body, client)
    assert response.status_code == 200
    reason = answer(response)["ignored"]
    assert "acme-prod-vmss" in reason
    essentials = body["data"]["essentials"]
    assert client.signalled("withdraw") == [
        (scale_set_key(VMSS), {"alertId": essentials["alertId"], "rule": essentials["alertRule"]})
    ]
    assert client.signalled("add") == []


def test_a_resolved_alert_for_nothing_the_app_manages_withdraws_nothing(arm: Arm) -> None:
    """Issue 14.7: it said "its pending requests are withdrawn" when nothing was a scale set."""
    vm = VMSS.replace("virtualmachinescalesets/acme-prod-vmss", "virtualmachines/acme-vm")
    client = FakeDurableClient()
    response = post(alert("resolved", alertTargetIDs=[vm]), client)
    assert response.status_code == 200
    reason = answer(response)["ignored"]
    assert "nothing to withdraw" in reason
    assert "are withdrawn" not in reason
    assert client.signals == []


def test_a_resolved_alert_with_an_unchecked_target_is_retried(arm: Arm) -> None:
    arm.answers[VMSS.lower()] = ScaleSetReadError("ARM answered 429 TooManyRequests")
    client = FakeDurableClient()
    response = post(alert("resolved"), client)
    assert response.status_code == 503
    assert client.signals == []


def test_an_old_resolved_alert_withdraws_nothing(arm: Arm) -> None:
    arm.managed(VMSS)
    client = FakeDurableClient()
    response = post(alert("resolved", age=timedelta(days=1)), client)
    assert response.status_code == 200
    assert "ALERT_MAX_AGE_MINUTES" in answer(response)["ignored"]
    assert client.signals == []


def test_a_budget_alert_is_ignored_not_refused(arm: Arm) -> None:
    body = alert(alertRule=None, alertTargetIDs=None, monitoringService="CostAlerts")
    client = FakeDurableClient()
    response = post(body, client)
    assert response.status_code == 200
    assert answer(response) == {
        "ignored": "a CostAlerts alert names no target resource (alertTargetIDs): nothing to scale"
    }

"""The scaler's view of a scale set and the scaling timer: subscriptions and the hard ceiling.

Issue 13.2: scale sets outside `AZURE_SUBSCRIPTION_ID` + `MANAGED_SUBSCRIPTION_IDS` are ignored
everywhere, and capacity never leaves the spec's bounds nor the `SCALING_MAX_CAPACITY` ceiling.
The activity runs as the worker runs it (the decorated function); the timer's per-scale-set
step runs against the hand-written Durable client of `durable_fakes`.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from appsettings import AppSettings
from outsystems.messages import ScaleSetInfo
from outsystems.policy import ScalingPolicy, policy_to_tags
from services.scaling import enforce
from tests.support.functions import activity
from tests.unit.durable_fakes import FakeDurableClient

SUBSCRIPTION = "11111111-2222-3333-4444-555555555555"
FOREIGN = "99999999-8888-7777-6666-555555555555"
VMSS = (
    f"/subscriptions/{SUBSCRIPTION}/resourceGroups/acme-rg/providers/"
    "Microsoft.Compute/virtualMachineScaleSets/acme-prod-vmss"
)
NOW = datetime(2026, 11, 20, 9, 14, tzinfo=UTC)


@pytest.fixture
def settings(monkeypatch: pytest.MonkeyPatch) -> AppSettings:
    values = {
        "AZURE_SUBSCRIPTION_ID": SUBSCRIPTION,
        "MANAGED_SUBSCRIPTION_IDS": "",
        "PLATFORM_KEY_SEED": "unit-test-seed",
        # Nothing listens there: a read would fail the test.
        "ARM_ENDPOINT": "http://127.0.0.1:9",
        "SCALING_MAX_CAPACITY": "100",
    }
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    return AppSettings.load()


def test_the_ceiling_setting_defaults_to_100_and_must_be_a_whole_number() -> None:
    from appsettings import InvalidSettingError

    base = {"AZURE_SUBSCRIPTION_ID": SUBSCRIPTION}
    assert AppSettings.load(base).scaling_max_capacity == 100
    assert AppSettings.load({**base, "SCALING_MAX_CAPACITY": "12"}).scaling_max_capacity == 12
    for bad in ("0", "-1", "2.5", "many"):
        with pytest.raises(InvalidSettingError, match="SCALING_MAX_CAPACITY"):
            AppSettings.load({**base, "SCALING_MAX_CAPACITY": bad})


def test_a_scale_set_outside_the_managed_subscriptions_is_not_read(settings: AppSettings) -> None:
    foreign = VMSS.replace(SUBSCRIPTION, FOREIGN)
    result = activity("inspect_scale_set")({"scaleSet": foreign})
    info = ScaleSetInfo.from_json(result)
    assert not info.managed
    assert info.not_managed_reason is not None
    assert f"subscription {FOREIGN}, which this app does not manage" in info.not_managed_reason
    assert result["ceiling"] == 100


def managed(capacity: int, policy: ScalingPolicy, scale_set_id: str = VMSS) -> ScaleSetInfo:
    return ScaleSetInfo(scale_set_id, True, True, "acme", capacity, policy_to_tags(policy))


def test_the_timer_repairs_a_capacity_above_the_ceiling(
    settings: AppSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SCALING_MAX_CAPACITY", "100")
    client = FakeDurableClient()
    info = managed(150, ScalingPolicy(min_capacity=2, max_capacity=200))
    assert asyncio.run(enforce(client, AppSettings.load(), info, NOW)) == "requested"
    [(_, added)] = client.signalled("add")
    assert (added["request"]["amount"], added["request"]["reason"]) == (
        100,
        "drift: 150 above maximum 100",
    )


def test_the_timer_ignores_a_scale_set_outside_the_managed_subscriptions(
    settings: AppSettings,
) -> None:
    client = FakeDurableClient()
    info = managed(
        1, ScalingPolicy(min_capacity=2, max_capacity=8), VMSS.replace(SUBSCRIPTION, FOREIGN)
    )
    assert asyncio.run(enforce(client, settings, info, NOW)) == "nothing"
    assert client.signals == []
    assert client.starts == []

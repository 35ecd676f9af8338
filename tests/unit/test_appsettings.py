"""Typed settings: defaults, required settings named in errors, subscription lists."""

from __future__ import annotations

import pytest

from appsettings import (
    DEFAULT_ARM_ENDPOINT,
    AppSettings,
    InvalidSettingError,
    MissingSettingError,
    optional,
    required,
)

SUB = "11111111-2222-3333-4444-555555555555"


def test_defaults_apply_when_optional_settings_are_absent() -> None:
    settings = AppSettings.load({"AZURE_SUBSCRIPTION_ID": SUB})
    assert settings.arm_endpoint == DEFAULT_ARM_ENDPOINT
    assert settings.events_queue == "platform-events"
    assert settings.managed_subscription_ids == ()
    assert settings.all_subscription_ids == (SUB,)


def test_missing_required_setting_is_named() -> None:
    with pytest.raises(MissingSettingError, match="AZURE_SUBSCRIPTION_ID"):
        AppSettings.load({})
    with pytest.raises(MissingSettingError, match="VM_ADMIN_PASSWORD"):
        required("VM_ADMIN_PASSWORD", {"VM_ADMIN_PASSWORD": "   "})


def test_managed_subscriptions_are_split_trimmed_and_deduplicated() -> None:
    other = "AAAAAAAA-0000-0000-0000-000000000001"
    settings = AppSettings.load(
        {
            "AZURE_SUBSCRIPTION_ID": SUB,
            "MANAGED_SUBSCRIPTION_IDS": f" {other} ,,{SUB}",
            "ARM_ENDPOINT": "http://127.0.0.1:4580/",
        }
    )
    assert settings.managed_subscription_ids == (other, SUB)
    assert settings.all_subscription_ids == (SUB, other.lower())
    assert settings.arm_endpoint == "http://127.0.0.1:4580"


def test_optional_returns_default_for_blank_values() -> None:
    assert optional("PLATFORM_EVENTS_QUEUE", "platform-events", {"PLATFORM_EVENTS_QUEUE": ""}) == (
        "platform-events"
    )


def test_operation_tuning_settings_are_positive_numbers() -> None:
    settings = AppSettings.load({"AZURE_SUBSCRIPTION_ID": SUB, "OPERATION_POLL_SECONDS": "0.5"})
    assert settings.operation_poll_seconds == 0.5
    assert settings.operation_timeout_scale == 1.0
    for bad in ("0", "-3", "soon"):
        with pytest.raises(InvalidSettingError, match="OPERATION_TIMEOUT_SCALE"):
            AppSettings.load({"AZURE_SUBSCRIPTION_ID": SUB, "OPERATION_TIMEOUT_SCALE": bad})

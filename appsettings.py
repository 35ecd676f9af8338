"""The app settings the function app reads, in one typed place.

Settings are read when needed (never at import time) and fail fast with a message naming the
missing setting. Secrets are read only by the code that sends them to Azure and are never logged.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

DEFAULT_ARM_ENDPOINT = "https://management.azure.com"
DEFAULT_EVENTS_QUEUE = "platform-events"
#: `DRIFT_SCHEDULE`, the drift timer's six-field NCRONTAB (every 6 hours). The Functions host
#: reads it (`%DRIFT_SCHEDULE%`) and cannot index the app without it, so the samples and the
#: infrastructure set it to this value.
DEFAULT_DRIFT_SCHEDULE = "0 0 */6 * * *"

#: Settings holding secrets (Key Vault references in Azure).
SECRET_SETTINGS: tuple[str, ...] = (
    "VM_ADMIN_PASSWORD",
    "SQL_ADMIN_PASSWORD",
    "PLATFORM_KEY_SEED",
    "ALERT_WEBHOOK_URL",
)


class MissingSettingError(RuntimeError):
    """A required app setting is absent or empty."""

    def __init__(self, name: str) -> None:
        super().__init__(
            f"The app setting {name} is required but not set "
            "(local.settings.json locally, application settings in Azure)."
        )
        self.name = name


def required(name: str, environ: Mapping[str, str] | None = None) -> str:
    """The value of a required setting, or `MissingSettingError` naming it."""
    value = (environ if environ is not None else os.environ).get(name, "").strip()
    if not value:
        raise MissingSettingError(name)
    return value


def optional(name: str, default: str, environ: Mapping[str, str] | None = None) -> str:
    """The value of an optional setting, `default` when absent or empty."""
    value = (environ if environ is not None else os.environ).get(name, "").strip()
    return value or default


class InvalidSettingError(RuntimeError):
    """An app setting holds a value the app cannot use."""


def positive_number(name: str, default: float, environ: Mapping[str, str] | None = None) -> float:
    """An optional setting holding a positive number."""
    text = optional(name, str(default), environ)
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value > 0:
        raise InvalidSettingError(
            f"The app setting {name} must be a positive number, not {text!r}."
        )
    return value


def positive_integer(name: str, default: int, environ: Mapping[str, str] | None = None) -> int:
    """An optional setting holding a whole number of at least 1."""
    text = optional(name, str(default), environ)
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise InvalidSettingError(
            f"The app setting {name} must be a whole number >= 1, not {text!r}."
        )
    return value


@dataclass(frozen=True)
class AppSettings:
    """The non-secret settings; secrets are read with `required()` where they are used."""

    subscription_id: str
    managed_subscription_ids: tuple[str, ...]
    arm_endpoint: str
    events_queue: str
    operation_poll_seconds: float = 15.0
    operation_timeout_scale: float = 1.0
    scaling_cooldown_scale: float = 1.0
    #: VNets (ARM ids) whose subnets a spec's `existingSubnetIds` may name; empty: any.
    allowed_vnet_ids: tuple[str, ...] = ()
    #: Hard ceiling of every scale set's capacity, whatever its (signed) policy says.
    scaling_max_capacity: int = 100
    #: Alerts that fired (or resolved) longer ago than this are not acted on.
    alert_max_age_minutes: float = 60.0

    @property
    def all_subscription_ids(self) -> tuple[str, ...]:
        """The default subscription first, then the other managed ones, without repeats."""
        ids = [self.subscription_id, *self.managed_subscription_ids]
        return tuple(dict.fromkeys(i.lower() for i in ids))

    @classmethod
    def load(cls, environ: Mapping[str, str] | None = None) -> AppSettings:
        """Read the settings from the environment (or a given mapping)."""
        env = environ if environ is not None else os.environ
        managed = optional("MANAGED_SUBSCRIPTION_IDS", "", env)
        return cls(
            subscription_id=required("AZURE_SUBSCRIPTION_ID", env),
            managed_subscription_ids=tuple(s.strip() for s in managed.split(",") if s.strip()),
            arm_endpoint=optional("ARM_ENDPOINT", DEFAULT_ARM_ENDPOINT, env).rstrip("/"),
            events_queue=optional("PLATFORM_EVENTS_QUEUE", DEFAULT_EVENTS_QUEUE, env),
            operation_poll_seconds=positive_number("OPERATION_POLL_SECONDS", 15.0, env),
            operation_timeout_scale=positive_number("OPERATION_TIMEOUT_SCALE", 1.0, env),
            scaling_cooldown_scale=positive_number("SCALING_COOLDOWN_SCALE", 1.0, env),
            allowed_vnet_ids=tuple(
                item.strip().rstrip("/")
                for item in optional("ALLOWED_VNET_IDS", "", env).split(",")
                if item.strip()
            ),
            scaling_max_capacity=positive_integer("SCALING_MAX_CAPACITY", 100, env),
            alert_max_age_minutes=positive_number("ALERT_MAX_AGE_MINUTES", 60.0, env),
        )

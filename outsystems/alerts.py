"""Azure Monitor alerts in the common alert schema, read as scaling requests.

`parse_alert` validates a webhook body (pydantic) and says what it asks for: the targets, the
rule, whether it fired or resolved, and the direction, taken from the metric condition's
operator (GreaterThan/GreaterThanOrEqual: out, LessThan/LessThanOrEqual: in) unless
`customProperties.scaleDirection` says `out` or `in`. Log and activity-log alerts carry no
operator that means load (a query's row count above a threshold says nothing about the
direction), so they need the custom property. An alert whose direction cannot be told is not an
error: `Alert.ignored` says why, and the webhook answers 200.

Pure: no I/O, no clock (the receive time is passed in).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from outsystems.errors import ApiError, FieldError
from outsystems.scaling import ScaleKind, ScaleRequest, ScaleSource

COMMON_SCHEMA_ID = "azureMonitorCommonAlertSchema"
DIRECTION_PROPERTY = "scaleDirection"
_METRIC_CONDITION_TYPES = frozenset(
    {
        "singleresourcemultiplemetriccriteria",
        "multipleresourcemultiplemetriccriteria",
        "dynamicthresholdcriteria",
    }
)
_OPERATORS: Mapping[str, tuple[ScaleKind, str]] = {
    "greaterthan": (ScaleKind.OUT, ">"),
    "greaterthanorequal": (ScaleKind.OUT, ">="),
    "lessthan": (ScaleKind.IN, "<"),
    "lessthanorequal": (ScaleKind.IN, "<="),
}
_SCALE_SET_ID = re.compile(
    r"/subscriptions/[^/]+/resourcegroups/[^/]+/providers/"
    r"microsoft\.compute/virtualmachinescalesets/[^/]+",
    re.IGNORECASE,
)
# Bodies larger than this are not alerts (Azure Monitor's payloads are a few KiB).
MAX_ALERT_BYTES = 256 * 1024


class AlertPayloadError(ApiError):
    """The body is not an Azure Monitor alert in the common alert schema."""

    code = "InvalidAlert"


class _Model(BaseModel):
    # Azure adds fields over time: ignore what we do not read, validate what we do.
    model_config = ConfigDict(extra="ignore", frozen=True)


class Essentials(_Model):
    """The part of the common schema that is the same for every alert type."""

    alert_id: str = Field(alias="alertId", min_length=1)
    alert_rule: str = Field(alias="alertRule", min_length=1)
    signal_type: str | None = Field(default=None, alias="signalType")
    monitor_condition: Literal["Fired", "Resolved"] = Field(alias="monitorCondition")
    alert_target_ids: tuple[str, ...] = Field(alias="alertTargetIDs", min_length=1)
    description: str | None = None

    @field_validator("alert_target_ids")
    @classmethod
    def _targets_not_empty(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if any(not target.strip() for target in value):
            raise ValueError("target ids must not be empty")
        return value


class AlertData(_Model):
    essentials: Essentials
    alert_context: dict[str, Any] | None = Field(default=None, alias="alertContext")
    custom_properties: dict[str, Any] | None = Field(default=None, alias="customProperties")


class CommonAlert(_Model):
    """`{"schemaId": "azureMonitorCommonAlertSchema", "data": {...}}`."""

    schema_id: Literal["azureMonitorCommonAlertSchema"] = Field(alias="schemaId")
    data: AlertData


class Criterion(_Model):
    """One metric criterion of `alertContext.condition.allOf` (static or dynamic threshold)."""

    metric_name: str | None = Field(default=None, alias="metricName")
    operator: str | None = None
    threshold: str | float | None = None
    metric_value: float | None = Field(default=None, alias="metricValue")


class _Condition(_Model):
    all_of: tuple[Criterion, ...] = Field(default=(), alias="allOf")


class _MetricContext(_Model):
    condition_type: str | None = Field(default=None, alias="conditionType")
    condition: _Condition | None = None


@dataclass(frozen=True)
class Alert:
    """What one alert notification asks for.

    `direction` is None when the alert asks for nothing: then `ignored` says why (a resolved
    alert, or a direction that cannot be told). `reason` is the human explanation that goes
    into the scaler's decision, e.g. `Percentage CPU 86.4 > 70`.
    """

    alert_id: str
    rule: str
    resolved: bool
    targets: tuple[str, ...]
    direction: ScaleKind | None
    ignored: str | None
    reason: str

    def request(self, received_at: datetime) -> ScaleRequest:
        """The scale request this alert makes (only for a fired alert with a direction)."""
        if self.direction is None:
            raise ValueError(f"alert {self.alert_id} asks for nothing: {self.ignored}")
        return ScaleRequest(
            kind=self.direction,
            amount=None,
            source=ScaleSource.ALERT,
            source_id=self.alert_id,
            received_at=received_at,
            rule=self.rule,
            reason=self.reason,
        )


def is_scale_set_id(resource_id: str) -> bool:
    """Whether an ARM id names a VM scale set (any case), not a VM, an instance or a child."""
    return _SCALE_SET_ID.fullmatch(resource_id.strip().rstrip("/")) is not None


def parse_alert(body: object) -> Alert:
    """The alert a webhook body carries; `AlertPayloadError` when it is not a common-schema alert.

    `body` is decoded JSON or JSON text (`str`/`bytes`).
    """
    if isinstance(body, str | bytes | bytearray):
        body = _decode(body)
    if not isinstance(body, dict):
        raise AlertPayloadError(
            "The body is not an Azure Monitor alert in the common alert schema.",
            [FieldError("body", "must be a JSON object")],
        )
    try:
        alert = CommonAlert.model_validate(body)
    except ValidationError as error:
        raise AlertPayloadError(
            "The body is not an Azure Monitor alert in the common alert schema "
            "(enable 'Use common alert schema' on the action group's webhook).",
            _field_errors(error),
        ) from None
    essentials = alert.data.essentials
    resolved = essentials.monitor_condition == "Resolved"
    criteria = _metric_criteria(alert.data)
    direction, why_not = _direction(essentials, criteria, alert.data.custom_properties)
    ignored = why_not
    if resolved:
        direction, ignored = None, f"alert {essentials.alert_rule} resolved"
    return Alert(
        alert_id=essentials.alert_id,
        rule=essentials.alert_rule,
        resolved=resolved,
        targets=tuple(t.strip().rstrip("/") for t in essentials.alert_target_ids),
        direction=direction,
        ignored=ignored,
        reason=_reason(essentials, criteria),
    )


def _decode(body: str | bytes | bytearray) -> object:
    if len(body) > MAX_ALERT_BYTES:
        raise AlertPayloadError(f"The body is larger than {MAX_ALERT_BYTES} bytes.")
    try:
        return json.loads(body)
    except (ValueError, RecursionError):
        raise AlertPayloadError(
            "The body is not JSON.", [FieldError("body", "must be a JSON object")]
        ) from None


def _field_errors(error: ValidationError) -> list[FieldError]:
    details = []
    for item in error.errors()[:20]:
        target = ".".join(str(part) for part in item["loc"]) or "body"
        details.append(FieldError(target, item["msg"]))
    return details


def _metric_criteria(data: AlertData) -> tuple[Criterion, ...]:
    """The metric criteria of a metric alert (empty for any other alert type)."""
    context = data.alert_context or {}
    try:
        parsed = _MetricContext.model_validate(context)
    except ValidationError:
        return ()
    is_metric = (data.essentials.signal_type or "").lower() == "metric" or (
        (parsed.condition_type or "").lower() in _METRIC_CONDITION_TYPES
    )
    if not is_metric or parsed.condition is None:
        return ()
    return parsed.condition.all_of


def _direction(
    essentials: Essentials,
    criteria: Sequence[Criterion],
    custom: Mapping[str, Any] | None,
) -> tuple[ScaleKind | None, str | None]:
    override = _custom_direction(custom or {})
    if override is not None:
        if override in (ScaleKind.OUT.value, ScaleKind.IN.value):
            return ScaleKind(override), None
        return None, (f"customProperties.{DIRECTION_PROPERTY} is {override!r}; use 'out' or 'in'")
    if not criteria:
        kind = essentials.signal_type or "this"
        return None, (
            f"cannot tell the direction of a {kind} alert without "
            f"customProperties.{DIRECTION_PROPERTY} ('out' or 'in')"
        )
    directions = set()
    for criterion in criteria:
        known = _OPERATORS.get((criterion.operator or "").lower())
        if known is None:
            return None, (
                f"cannot tell the direction from operator {criterion.operator or 'none'}; "
                f"set customProperties.{DIRECTION_PROPERTY} ('out' or 'in')"
            )
        directions.add(known[0])
    if len(directions) > 1:
        return None, (
            "the alert's criteria point both ways; "
            f"set customProperties.{DIRECTION_PROPERTY} ('out' or 'in')"
        )
    return directions.pop(), None


def _custom_direction(custom: Mapping[str, Any]) -> str | None:
    for key, value in custom.items():
        if key.lower() == DIRECTION_PROPERTY.lower():
            return str(value).strip().lower()
    return None


def _reason(essentials: Essentials, criteria: Sequence[Criterion]) -> str:
    parts = [_describe(c) for c in criteria]
    described = " and ".join(p for p in parts if p)
    return described or essentials.description or f"alert {essentials.alert_rule} fired"


def _describe(criterion: Criterion) -> str:
    if criterion.metric_name is None:
        return ""
    known = _OPERATORS.get((criterion.operator or "").lower())
    symbol = known[1] if known else (criterion.operator or "?")
    value = "" if criterion.metric_value is None else f" {_number(criterion.metric_value)}"
    threshold = criterion.threshold
    if threshold is None or threshold == "":
        limit = "dynamic threshold"
    elif isinstance(threshold, float):
        limit = _number(threshold)
    else:
        limit = threshold
    return f"{criterion.metric_name}{value} {symbol} {limit}"


def _number(value: float) -> str:
    if math.isfinite(value) and value == int(value):
        return str(int(value))
    return f"{value:g}"

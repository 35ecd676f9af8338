"""Azure Monitor alerts in the common alert schema, read as scaling requests.

`parse_alert` validates a webhook body and says what it asks for: the targets, the rule,
whether it fired or resolved and when, and the direction, taken from the metric condition's
operator (GreaterThan/GreaterThanOrEqual: out, LessThan/LessThanOrEqual: in) unless
`customProperties.scaleDirection` says `out` or `in`. Log and activity-log alerts carry no
operator that means load (a query's row count above a threshold says nothing about the
direction), so they need the custom property; service health, resource health, smart
detection and budget alerts say nothing about load at all. An alert that asks for nothing is
not an error: `Alert.ignored` says why, and the webhook answers 200 (an action group sends
every alert source to its webhooks, and Microsoft's own budget samples have no rule and no
target).

What the webhook must never pass on is refused with `AlertPayloadError` (a 400): a body that is
not JSON, numbers that are not finite (NaN, Infinity, 1e400), lone surrogate escapes (text no
encoder accepts), target ids that are not canonical ARM ids (they are joined into ARM URLs), and
more distinct targets than `MAX_ALERT_TARGETS`. One unusable field of `alertContext` drops that
field only, never the other criteria.

Pure: no I/O, no clock (the receive time is passed in).
"""

from __future__ import annotations

import json
import math
import re
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from outsystems.errors import ApiError, FieldError
from outsystems.scaling import ScaleKind, ScaleRequest, ScaleSource
from outsystems.times import utc_z

COMMON_SCHEMA_ID = "azureMonitorCommonAlertSchema"
DIRECTION_PROPERTY = "scaleDirection"
# Bodies larger than this are not alerts: "Alerts that use the common schema have an upper size
# limit of 256 KB per alert" (azure-monitor-docs, alerts-payload-samples.md).
MAX_ALERT_BYTES = 256 * 1024
#: Distinct targets one notification may name. A metric alert fires once per resource, so real
#: notifications name one; a body naming more is refused rather than read target by target.
MAX_ALERT_TARGETS = 20
MAX_ID_LENGTH = 1024
#: How far ahead of this app's clock an alert's time may be (clocks disagree a little).
FUTURE_SKEW = timedelta(minutes=5)

_METRIC_CONDITION_TYPES = frozenset(
    {
        "singleresourcemultiplemetriccriteria",
        "multipleresourcemultiplemetriccriteria",
        "dynamicthresholdcriteria",
        "webtestlocationavailabilitycriteria",
    }
)
#: monitoringService values of alerts about something else than load.
_NOT_ABOUT_LOAD = frozenset(
    {"servicehealth", "resourcehealth", "resource health", "smartdetector", "costalerts"}
)
_OPERATORS: Mapping[str, tuple[ScaleKind, str]] = {
    "greaterthan": (ScaleKind.OUT, ">"),
    "greaterthanorequal": (ScaleKind.OUT, ">="),
    "lessthan": (ScaleKind.IN, "<"),
    "lessthanorequal": (ScaleKind.IN, "<="),
}

# --- Canonical ARM resource ids ----------------------------------------------------------------
#
#   /subscriptions/{guid}[/resourceGroups/{name}]
#       [/providers/{Namespace}/{type}/{name}[/{type}/{name}]...]...
#
# keywords in any case (ARM compares ids case-insensitively), every segment non-empty, no query,
# fragment, percent-escape, "..", whitespace, control, format or unassigned character.
_GUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
_NAME = r"[^/]+"
_TYPE = r"[a-z][a-z0-9]*"
_PROVIDER = rf"/providers/[a-z][a-z0-9]*(?:\.[a-z0-9]+)+/{_TYPE}/{_NAME}(?:/{_TYPE}/{_NAME})*"
_RESOURCE_ID = re.compile(
    rf"/subscriptions/{_GUID}(?:/resourcegroups/{_NAME})?(?:{_PROVIDER})*", re.IGNORECASE
)
_SCALE_SET_ID = re.compile(
    rf"/subscriptions/{_GUID}/resourcegroups/{_NAME}/providers/"
    rf"microsoft\.compute/virtualmachinescalesets/{_NAME}",
    re.IGNORECASE,
)
_FORBIDDEN_CHARACTERS = frozenset("?#%\\")
# Unicode categories that are never part of a name: control, format (e.g. RTL overrides),
# surrogate, private use, unassigned, and every separator (spaces, line and paragraph).
_FORBIDDEN_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zs", "Zl", "Zp"})


def _refused_in_id(c: str) -> bool:
    return c in _FORBIDDEN_CHARACTERS or unicodedata.category(c) in _FORBIDDEN_CATEGORIES


def _is_control(c: str) -> bool:
    return unicodedata.category(c) in ("Cc", "Cs")


def _ascii_class(refused: Callable[[str], bool]) -> re.Pattern[str]:
    """A pattern matching the ASCII characters `refused` refuses: the C-speed check of an ASCII
    string, with the verdict of the loop over its characters (an alert storm's hottest lines,
    issue 16)."""
    return re.compile(f"[{re.escape(''.join(c for c in map(chr, range(128)) if refused(c)))}]")


_ASCII_REFUSED_IN_ID = _ascii_class(_refused_in_id)
_ASCII_CONTROL = _ascii_class(_is_control)


class AlertPayloadError(ApiError):
    """The body is not an Azure Monitor alert in the common alert schema."""

    code = "InvalidAlert"


class _Model(BaseModel):
    # Azure adds fields over time: ignore what we do not read, validate what we do.
    model_config = ConfigDict(extra="ignore", frozen=True)


def _printable(value: str | None, what: str) -> str | None:
    if value is None:
        return None
    if not value.strip():
        raise ValueError(f"{what} must not be blank")
    if (
        _ASCII_CONTROL.search(value) is not None
        if value.isascii()
        else any(map(_is_control, value))
    ):
        raise ValueError(f"{what} must not hold control characters")
    return value


class Essentials(_Model):
    """The part of the common schema that is the same for every alert type."""

    alert_id: str = Field(alias="alertId", min_length=1, max_length=MAX_ID_LENGTH)
    # Null in Microsoft's budget (cost) alert samples.
    alert_rule: str | None = Field(default=None, alias="alertRule", max_length=MAX_ID_LENGTH)
    signal_type: str | None = Field(default=None, alias="signalType")
    monitoring_service: str | None = Field(default=None, alias="monitoringService")
    monitor_condition: Literal["Fired", "Resolved"] = Field(alias="monitorCondition")
    alert_target_ids: tuple[str, ...] | None = Field(default=None, alias="alertTargetIDs")
    description: str | None = None
    # Read leniently (`_moment`): a missing or odd time makes the alert's age unknown.
    fired_date_time: Any = Field(default=None, alias="firedDateTime")
    resolved_date_time: Any = Field(default=None, alias="resolvedDateTime")

    @field_validator("alert_id")
    @classmethod
    def _alert_id(cls, value: str) -> str:
        return _printable(value, "alertId") or value

    @field_validator("alert_rule")
    @classmethod
    def _alert_rule(cls, value: str | None) -> str | None:
        return _printable(value, "alertRule")


class AlertData(_Model):
    essentials: Essentials
    # Shapes vary by alert type; read leniently (`_metric_criteria`).
    alert_context: Any = Field(default=None, alias="alertContext")
    custom_properties: Any = Field(default=None, alias="customProperties")


class CommonAlert(_Model):
    """`{"schemaId": "azureMonitorCommonAlertSchema", "data": {...}}`."""

    schema_id: Literal["azureMonitorCommonAlertSchema"] = Field(alias="schemaId")
    data: AlertData


@dataclass(frozen=True)
class Criterion:
    """One metric criterion of `alertContext.condition.allOf`, each field read on its own.

    `threshold` is None for a dynamic threshold and `"?"` when it is unusable.
    """

    metric_name: str | None
    operator: str | None
    threshold: str | None
    metric_value: float | None


@dataclass(frozen=True)
class Alert:
    """What one alert notification asks for.

    `direction` is None when the alert asks for nothing: then `ignored` says why (a resolved
    alert, no target, or a direction that cannot be told). `reason` is the human explanation
    that goes into the scaler's decision, e.g. `Percentage CPU 86.4 > 70`. `targets` are
    canonical ARM ids, each once (in the spelling it first had).
    """

    alert_id: str
    rule: str | None
    resolved: bool
    targets: tuple[str, ...]
    direction: ScaleKind | None
    ignored: str | None
    reason: str
    fired_at: datetime | None = None
    resolved_at: datetime | None = None

    @property
    def label(self) -> str:
        """The rule's name, or the alert's id for alerts without a rule."""
        return self.rule or self.alert_id

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


def is_resource_id(resource_id: str) -> bool:
    """Whether a string is a canonical ARM resource id (see the grammar above)."""
    if len(resource_id) > MAX_ID_LENGTH or ".." in resource_id:
        return False
    if (
        _ASCII_REFUSED_IN_ID.search(resource_id) is not None
        if resource_id.isascii()
        else any(map(_refused_in_id, resource_id))
    ):
        return False
    return _RESOURCE_ID.fullmatch(resource_id) is not None


def is_scale_set_id(resource_id: str) -> bool:
    """Whether a canonical ARM id names a VM scale set (any case), not a VM, an instance or a
    child."""
    return is_resource_id(resource_id) and _SCALE_SET_ID.fullmatch(resource_id) is not None


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
    _refuse_lone_surrogates(body)
    try:
        alert = CommonAlert.model_validate(body)
    except ValidationError as error:
        raise AlertPayloadError(
            "The body is not an Azure Monitor alert in the common alert schema "
            "(enable 'Use common alert schema' on the action group's webhook).",
            _field_errors(error),
        ) from None
    essentials = alert.data.essentials
    targets = _targets(essentials.alert_target_ids or ())
    resolved = essentials.monitor_condition == "Resolved"
    criteria = _metric_criteria(alert.data)
    direction, ignored = _direction(essentials, criteria, alert.data.custom_properties)
    rule = essentials.alert_rule
    if not targets:
        source = _an(essentials.monitoring_service or essentials.signal_type, "the")
        direction = None
        ignored = f"{source} alert names no target resource (alertTargetIDs): nothing to scale"
    elif resolved:
        direction, ignored = None, f"alert {rule or essentials.alert_id} resolved"
    return Alert(
        alert_id=essentials.alert_id,
        rule=rule,
        resolved=resolved,
        targets=targets,
        direction=direction,
        ignored=ignored,
        reason=_reason(essentials, criteria),
        fired_at=_moment(essentials.fired_date_time),
        resolved_at=_moment(essentials.resolved_date_time),
    )


def stale_reason(alert: Alert, now: datetime, max_age: timedelta) -> str | None:
    """Why an alert is too old (or from too far in the future) to act on; None when it is not.

    A fired alert is as old as its `firedDateTime`; a resolved one as its `resolvedDateTime`,
    which the common schema sets for metric alerts only (otherwise its `firedDateTime`). An
    alert whose age cannot be told is not acted on either: replaying old alerts is the abuse
    the limit (`ALERT_MAX_AGE_MINUTES`) is there to stop.
    """
    moment, what = alert.fired_at, "fired"
    if alert.resolved and alert.resolved_at is not None:
        moment, what = alert.resolved_at, "resolved"
    if moment is None:
        return "the alert carries no valid firedDateTime: its age cannot be told"
    when = utc_z(moment, seconds=True)
    if moment - now > FUTURE_SKEW:
        minutes = f"{FUTURE_SKEW.total_seconds() / 60:g}"
        return (
            f"alert {what} at {when}, in the future (more than {minutes} minutes ahead of this "
            "app's clock): not acted on"
        )
    if now - moment > max_age:
        return (
            f"alert {what} at {when}, more than {max_age.total_seconds() / 60:g} minutes before "
            "it reached the app (ALERT_MAX_AGE_MINUTES): too old to act on"
        )
    return None


# --- decoding ---------------------------------------------------------------------------------


def _decode(body: str | bytes | bytearray) -> object:
    if len(body) > MAX_ALERT_BYTES:
        raise AlertPayloadError(f"The body is larger than {MAX_ALERT_BYTES} bytes.")
    try:
        return json.loads(body, parse_constant=_not_a_number, parse_float=_finite)
    except AlertPayloadError:
        raise
    except (ValueError, RecursionError):
        raise AlertPayloadError(
            "The body is not JSON.", [FieldError("body", "must be a JSON object")]
        ) from None


def _not_a_number(token: str) -> float:
    raise AlertPayloadError(
        f"The body holds {token}, which is not a finite number (JSON has no NaN or Infinity)."
    )


def _finite(token: str) -> float:
    value = float(token)
    if not math.isfinite(value):
        raise AlertPayloadError(f"The body holds {token[:40]}, which is not a finite number.")
    return value


def _is_unicode(text: str) -> bool:
    """False for text holding a surrogate code point (U+D800-U+DFFF), which is exactly what a
    strict UTF-8 encoder refuses: one C-speed pass instead of a Python loop per character (the
    webhook's hottest line in an alert storm, issue 16)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _refuse_lone_surrogates(document: object) -> None:
    """A `\\ud800` escape decodes to text no encoder accepts (UTF-8 included): refuse it."""
    stack = [document]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, str) and not _is_unicode(item):
            raise AlertPayloadError(
                "The body holds a lone surrogate escape, which is not Unicode text.",
                [FieldError("body", "must be valid Unicode text")],
            )


def _field_errors(error: ValidationError) -> list[FieldError]:
    details = []
    for item in error.errors()[:20]:
        target = ".".join(str(part) for part in item["loc"]) or "body"
        details.append(FieldError(target, item["msg"]))
    return details


def _targets(raw: Sequence[str]) -> tuple[str, ...]:
    """The distinct canonical target ids; `AlertPayloadError` for any other."""
    where = "data.essentials.alertTargetIDs"
    problems = [
        FieldError(f"{where}.{index}", "is not a canonical ARM resource id")
        for index, target in enumerate(raw)
        if not is_resource_id(target)
    ]
    if problems:
        raise AlertPayloadError(
            "The alert names targets that are not canonical ARM resource ids "
            f"(like /subscriptions/<id>/resourceGroups/<group>/providers/...): "
            f"{problems[0].target} is not a canonical ARM resource id.",
            problems[:20],
        )
    first_spelling: dict[str, str] = {}
    for target in raw:
        first_spelling.setdefault(target.lower(), target)
    distinct = tuple(first_spelling.values())
    if len(distinct) > MAX_ALERT_TARGETS:
        raise AlertPayloadError(
            f"The alert names {len(distinct)} targets, more than {MAX_ALERT_TARGETS} targets "
            "per notification (Azure Monitor sends one per resource).",
            [FieldError(where, f"at most {MAX_ALERT_TARGETS} distinct targets")],
        )
    return distinct


def _moment(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    # The common schema's times are UTC, with or without an offset.
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


# --- what the alert says ----------------------------------------------------------------------


def _metric_criteria(data: AlertData) -> tuple[Criterion, ...]:
    """The metric criteria of a metric alert (empty for any other alert type), each read on its
    own: an unusable field is left out, an unusable criterion (not an object) is skipped."""
    context = data.alert_context if isinstance(data.alert_context, dict) else {}
    condition_type = context.get("conditionType")
    is_metric = (data.essentials.signal_type or "").lower() == "metric" or (
        isinstance(condition_type, str) and condition_type.lower() in _METRIC_CONDITION_TYPES
    )
    condition = context.get("condition")
    if not is_metric or not isinstance(condition, dict):
        return ()
    all_of = condition.get("allOf")
    if isinstance(all_of, dict):
        all_of = [all_of]
    if not isinstance(all_of, list):
        return ()
    return tuple(_criterion(item) for item in all_of if isinstance(item, dict))


def _criterion(item: Mapping[str, Any]) -> Criterion:
    name, operator = item.get("metricName"), item.get("operator")
    return Criterion(
        metric_name=name.strip() if isinstance(name, str) and name.strip() else None,
        operator=operator.strip() if isinstance(operator, str) and operator.strip() else None,
        threshold=_threshold(item.get("threshold")),
        metric_value=_finite_number(item.get("metricValue")),
    )


def _threshold(value: object) -> str | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, str):
        return value.strip()
    number = _finite_number(value)
    return "?" if number is None else _number(number)


def _finite_number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        number = float(value)
    except (ValueError, OverflowError):
        return None
    return number if math.isfinite(number) else None


def _an(word: str | None, default: str) -> str:
    """`a Metric`, `an Activity Log`, or `default` when there is no word."""
    if not word:
        return default
    return f"{'an' if word[:1].lower() in 'aeiou' else 'a'} {word}"


def _direction(
    essentials: Essentials,
    criteria: Sequence[Criterion],
    custom: object,
) -> tuple[ScaleKind | None, str | None]:
    override = _custom_direction(custom if isinstance(custom, dict) else {})
    if override is not None:
        if override in (ScaleKind.OUT.value, ScaleKind.IN.value):
            return ScaleKind(override), None
        return None, (f"customProperties.{DIRECTION_PROPERTY} is {override!r}; use 'out' or 'in'")
    service = essentials.monitoring_service
    if service and service.strip().lower() in _NOT_ABOUT_LOAD:
        return None, (
            f"{_an(service, 'an')} alert says nothing about the front-ends' load: nothing to scale"
        )
    advice = f"customProperties.{DIRECTION_PROPERTY} ('out' or 'in')"
    if not criteria:
        subject = _an(essentials.signal_type, "this")
        return None, f"cannot tell the direction of {subject} alert without {advice}"
    directions = set()
    for criterion in criteria:
        if criterion.operator is None:
            continue
        known = _OPERATORS.get(criterion.operator.lower())
        if known is None:
            return None, (
                f"cannot tell the direction from operator {criterion.operator}; set {advice}"
            )
        directions.add(known[0])
    if not directions:
        return None, f"cannot tell the direction from operator none; set {advice}"
    if len(directions) > 1:
        return None, f"the alert's criteria point both ways; set {advice}"
    return directions.pop(), None


def _custom_direction(custom: Mapping[str, Any]) -> str | None:
    for key, value in custom.items():
        if key.lower() == DIRECTION_PROPERTY.lower():
            return str(value).strip().lower()
    return None


def _reason(essentials: Essentials, criteria: Sequence[Criterion]) -> str:
    parts = [_describe(c) for c in criteria]
    described = " and ".join(p for p in parts if p)
    label = essentials.alert_rule or essentials.alert_id
    return described or essentials.description or f"alert {label} fired"


def _describe(criterion: Criterion) -> str:
    if criterion.metric_name is None:
        return ""
    known = _OPERATORS.get((criterion.operator or "").lower())
    symbol = known[1] if known else (criterion.operator or "?")
    value = "" if criterion.metric_value is None else f" {_number(criterion.metric_value)}"
    limit = "dynamic threshold" if criterion.threshold is None else criterion.threshold
    return f"{criterion.metric_name}{value} {symbol} {limit}"


def _number(value: float) -> str:
    if math.isfinite(value) and value == int(value):
        return str(int(value))
    return f"{value:g}"

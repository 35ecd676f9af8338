"""Reading Azure Monitor's common alert schema: validation, direction, reason, targets."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from outsystems.alerts import AlertPayloadError, is_scale_set_id, parse_alert
from outsystems.scaling import ScaleKind, ScaleSource

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
VMSS = (
    "/subscriptions/11111111-2222-3333-4444-555555555555/resourcegroups/acme-rg/providers/"
    "microsoft.compute/virtualmachinescalesets/acme-prod-vmss"
)


def sample(name: str) -> dict[str, Any]:
    body: dict[str, Any] = json.loads((EXAMPLES / f"alert-{name}.json").read_text())
    return body


def with_criteria(*criteria: dict[str, Any], **context: Any) -> dict[str, Any]:
    body = copy.deepcopy(sample("cpu-high-fired"))
    body["data"]["alertContext"]["condition"]["allOf"] = list(criteria)
    body["data"]["alertContext"].update(context)
    return body


def criterion(operator: str, threshold: Any = "70", value: float | None = 80.0) -> dict[str, Any]:
    return {
        "metricName": "Percentage CPU",
        "operator": operator,
        "threshold": threshold,
        "metricValue": value,
    }


def test_the_sample_alerts() -> None:
    high = parse_alert(json.dumps(sample("cpu-high-fired")))
    assert (high.direction, high.ignored, high.resolved) == (ScaleKind.OUT, None, False)
    assert high.rule == "acme-prod-frontends-cpu-high"
    assert high.alert_id.endswith("/alerts/4e5c1f2a-8d3b-4c6e-9f10-2a3b4c5d6e7f")
    assert high.targets == (VMSS,)
    assert high.reason == "Percentage CPU 86.4 > 70"

    low = parse_alert(sample("cpu-low-fired"))
    assert (low.direction, low.reason) == (ScaleKind.IN, "Percentage CPU 11.7 < 25")

    resolved = parse_alert(sample("cpu-high-resolved"))
    assert resolved.resolved
    assert resolved.direction is None
    assert resolved.ignored == "alert acme-prod-frontends-cpu-high resolved"


@pytest.mark.parametrize(
    ("operator", "direction", "symbol"),
    [
        ("GreaterThan", ScaleKind.OUT, ">"),
        ("GreaterThanOrEqual", ScaleKind.OUT, ">="),
        ("LessThan", ScaleKind.IN, "<"),
        ("LessThanOrEqual", ScaleKind.IN, "<="),
        ("lessthan", ScaleKind.IN, "<"),
    ],
)
def test_direction_follows_the_operator(operator: str, direction: ScaleKind, symbol: str) -> None:
    alert = parse_alert(with_criteria(criterion(operator, "50", 61.0)))
    assert alert.direction is direction
    assert alert.reason == f"Percentage CPU 61 {symbol} 50"


def test_dynamic_thresholds() -> None:
    dynamic = {"conditionType": "DynamicThresholdCriteria"}
    above = parse_alert(with_criteria(criterion("GreaterThan", None, 93.5), **dynamic))
    assert above.direction is ScaleKind.OUT
    assert above.reason == "Percentage CPU 93.5 > dynamic threshold"

    both = parse_alert(with_criteria(criterion("GreaterOrLessThan", None), **dynamic))
    assert both.direction is None
    assert both.ignored is not None
    assert "GreaterOrLessThan" in both.ignored
    assert "scaleDirection" in both.ignored

    told = with_criteria(criterion("GreaterOrLessThan", None), **dynamic)
    told["data"]["customProperties"] = {"scaleDirection": "out"}
    assert parse_alert(told).direction is ScaleKind.OUT


def test_custom_property_overrides_the_operator_in_any_case() -> None:
    body = with_criteria(criterion("GreaterThan"))
    body["data"]["customProperties"] = {"ScaleDirection": " IN "}
    assert parse_alert(body).direction is ScaleKind.IN

    body["data"]["customProperties"] = {"scaleDirection": "up"}
    alert = parse_alert(body)
    assert alert.direction is None
    assert alert.ignored == "customProperties.scaleDirection is 'up'; use 'out' or 'in'"


def test_criteria_pointing_both_ways_are_ambiguous() -> None:
    alert = parse_alert(with_criteria(criterion("GreaterThan"), criterion("LessThan", "5")))
    assert alert.direction is None
    assert alert.ignored is not None
    assert "both ways" in alert.ignored
    assert alert.reason == "Percentage CPU 80 > 70 and Percentage CPU 80 < 5"


def log_alert(custom: dict[str, Any] | None) -> dict[str, Any]:
    body = copy.deepcopy(sample("cpu-high-fired"))
    body["data"]["essentials"].update(signalType="Log", description="Slow requests")
    # A log alert's operator compares a query result, not the load: it must not give a direction.
    body["data"]["alertContext"] = {
        "conditionType": "LogQueryCriteria",
        "condition": {"allOf": [{"searchQuery": "requests", "operator": "GreaterThan"}]},
    }
    body["data"]["customProperties"] = custom
    return body


def test_log_alerts_need_the_custom_property() -> None:
    without = parse_alert(log_alert(None))
    assert without.direction is None
    assert without.ignored == (
        "cannot tell the direction of a Log alert without customProperties.scaleDirection "
        "('out' or 'in')"
    )
    told = parse_alert(log_alert({"scaleDirection": "out"}))
    assert (told.direction, told.reason) == (ScaleKind.OUT, "Slow requests")


def test_an_alert_makes_an_alert_request() -> None:
    received = datetime(2026, 11, 20, 9, 14, 8, tzinfo=UTC)
    request = parse_alert(sample("cpu-high-fired")).request(received)
    assert (request.kind, request.amount, request.source) == (
        ScaleKind.OUT,
        None,
        ScaleSource.ALERT,
    )
    assert request.rule == "acme-prod-frontends-cpu-high"
    assert request.received_at == received
    with pytest.raises(ValueError, match="asks for nothing"):
        parse_alert(sample("cpu-high-resolved")).request(received)


def broken(path: tuple[str, ...], value: Any) -> dict[str, Any]:
    body = copy.deepcopy(sample("cpu-high-fired"))
    target: Any = body
    for key in path[:-1]:
        target = target[key]
    if value is ...:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return body


@pytest.mark.parametrize(
    ("body", "target"),
    [
        (broken(("schemaId",), "Microsoft.Insights/activityLogs"), "schemaId"),
        (broken(("schemaId",), ...), "schemaId"),
        (broken(("data", "essentials"), ...), "data.essentials"),
        (broken(("data", "essentials", "alertTargetIDs"), []), "data.essentials.alertTargetIDs"),
        (broken(("data", "essentials", "alertTargetIDs"), [" "]), "data.essentials.alertTargetIDs"),
        (broken(("data", "essentials", "monitorCondition"), "Open"), "monitorCondition"),
        (broken(("data", "essentials", "alertId"), ""), "data.essentials.alertId"),
        (broken(("data", "essentials", "alertRule"), 7), "data.essentials.alertRule"),
        ({"text": "Azure Monitor legacy payload"}, "schemaId"),
        ([sample("cpu-high-fired")], "body"),
        ("not json", "body"),
    ],
)
def test_what_is_not_a_common_schema_alert(body: Any, target: str) -> None:
    payload = body if isinstance(body, str) else json.dumps(body)
    with pytest.raises(AlertPayloadError) as raised:
        parse_alert(payload.encode())
    error = raised.value.to_envelope()["error"]
    assert isinstance(error, dict)
    assert error["code"] == "InvalidAlert"
    assert any(target in detail["target"] for detail in error["details"]), error


def test_oversized_bodies_are_refused_before_parsing() -> None:
    with pytest.raises(AlertPayloadError, match="larger than"):
        parse_alert(b"[" * (300 * 1024))


def test_unknown_fields_are_ignored_and_context_shapes_tolerated() -> None:
    body = sample("cpu-high-fired")
    body["data"]["essentials"]["newField"] = {"x": 1}
    body["data"]["alertContext"] = {"condition": "not an object"}
    alert = parse_alert(body)
    assert alert.direction is None
    assert alert.reason == "Front-end CPU above 70% for 5 minutes"


@pytest.mark.parametrize(
    ("resource_id", "expected"),
    [
        (VMSS, True),
        (VMSS.upper(), True),
        (VMSS + "/", True),
        (VMSS + "/virtualMachines/0", False),
        (VMSS.replace("virtualmachinescalesets", "virtualMachines"), False),
        ("/subscriptions/x/resourceGroups/acme-rg", False),
        ("acme-prod-vmss", False),
    ],
)
def test_scale_set_targets(resource_id: str, expected: bool) -> None:
    assert is_scale_set_id(resource_id) is expected


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=20,
)


@settings(max_examples=200, deadline=None)
@given(
    essentials=st.dictionaries(
        st.sampled_from(["alertId", "alertRule", "monitorCondition", "alertTargetIDs", "x"]),
        json_values,
    ),
    context=json_values,
    custom=json_values,
)
def test_any_json_is_either_an_alert_or_a_payload_error(
    essentials: dict[str, Any], context: Any, custom: Any
) -> None:
    body = {
        "schemaId": "azureMonitorCommonAlertSchema",
        "data": {"essentials": essentials, "alertContext": context, "customProperties": custom},
    }
    try:
        alert = parse_alert(json.dumps(body))
    except AlertPayloadError:
        return
    assert alert.direction is not None or alert.ignored

"""Reading Azure Monitor's common alert schema: validation, direction, reason, targets."""

from __future__ import annotations

import copy
import json
import unicodedata
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from outsystems.alerts import (
    MAX_ALERT_TARGETS,
    AlertPayloadError,
    is_resource_id,
    is_scale_set_id,
    parse_alert,
    stale_reason,
)
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
        (broken(("data", "essentials", "alertTargetIDs"), [" "]), "data.essentials.alertTargetIDs"),
        (broken(("data", "essentials", "monitorCondition"), "Open"), "monitorCondition"),
        (broken(("data", "essentials", "alertId"), ""), "data.essentials.alertId"),
        (broken(("data", "essentials", "alertRule"), 7), "data.essentials.alertRule"),
        # Issue 14.7: a rule name of spaces passed the length check.
        (broken(("data", "essentials", "alertRule"), "   "), "data.essentials.alertRule"),
        (broken(("data", "essentials", "alertId"), " \t "), "data.essentials.alertId"),
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
        # Canonical ids only (issue 13.3): no trailing slash.
        (VMSS + "/", False),
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


# --- Issue 13.3 and 14.3-14.7: what real payloads and hostile ones must not break ------------

NOW = datetime(2026, 11, 20, 9, 30, tzinfo=UTC)
ESSENTIALS_TARGETS = ("data", "essentials", "alertTargetIDs")


def with_targets(*targets: str) -> dict[str, Any]:
    body = sample("cpu-high-fired")
    body["data"]["essentials"]["alertTargetIDs"] = list(targets)
    return body


def refused_target(body: Any) -> list[str]:
    """The detail targets of the refusal of `body` (JSON text or a document)."""
    payload = body if isinstance(body, str | bytes) else json.dumps(body)
    with pytest.raises(AlertPayloadError) as raised:
        parse_alert(payload)
    error = raised.value.to_envelope()["error"]
    assert isinstance(error, dict)
    return [detail["target"] for detail in error.get("details", [])]


@pytest.mark.parametrize(
    "target",
    [
        VMSS + "?api-version=2020-01-01",
        VMSS + "#fragment",
        VMSS.replace("acme-rg", "acme%2Frg"),
        VMSS.replace("acme-rg", "acme-rg/..") + "/x",
        VMSS.replace("acme-prod-vmss", "..%2F..%2Fother"),
        VMSS.replace("acme-prod-vmss", "a..b"),
        " " + VMSS,
        VMSS + "\t",
        VMSS.replace("acme-rg", "acme rg"),
        VMSS.replace("acme-rg", "acme\x00rg"),
        VMSS.replace("acme-rg", "acme\u202erg"),
        VMSS.replace("acme-rg", "acme\u2028rg"),
        VMSS.replace("acme-rg", "acme//rg"),
        VMSS + "/",
        VMSS.replace("/subscriptions/", "/subscription/"),
        VMSS.replace("11111111-2222-3333-4444-555555555555", "not-a-guid"),
        "subscriptions/11111111-2222-3333-4444-555555555555",
        "https://management.azure.com" + VMSS,
        VMSS + "/" + "x" * 2000,
    ],
)
def test_targets_must_be_canonical_arm_ids(target: str) -> None:
    assert f"{'.'.join(ESSENTIALS_TARGETS)}.0" in refused_target(with_targets(target))


def test_a_lone_surrogate_anywhere_is_refused_before_it_reaches_an_encoder() -> None:
    """Issue 14.5: an escaped lone surrogate passed validation and raised UnicodeEncodeError
    (a 500) in uuid5."""
    text = json.dumps(with_targets(VMSS))
    for where in (VMSS, "acme-prod-frontends-cpu-high", "Percentage CPU"):
        spoiled = text.replace(where, where + "\\ud800", 1)
        with pytest.raises(AlertPayloadError, match="lone surrogate"):
            parse_alert(spoiled.encode())
    # Every surrogate code point, escaped or sent as raw bytes (json reads bytes with
    # "surrogatepass"), and a key; a valid pair escape is one character and passes.
    for point in (0xD800, 0xDBFF, 0xDC00, 0xDFFF):
        for raw in (
            text.replace("Percentage CPU", f"Percentage CPU\\u{point:04x}", 1).encode(),
            text.replace("Percentage CPU", "Percentage CPU" + chr(point), 1).encode(
                "utf-8", "surrogatepass"
            ),
            text.replace('"metricName"', f'"metricName\\u{point:04x}"', 1).encode(),
        ):
            with pytest.raises(AlertPayloadError, match="lone surrogate"):
                parse_alert(raw)
    paired = text.replace("Percentage CPU", "Percentage CPU\\ud83d\\ude00", 1)
    assert parse_alert(paired.encode()).reason is not None


@pytest.mark.parametrize("number", ["NaN", "Infinity", "-Infinity", "1e400", "-1e999"])
def test_nan_and_infinity_are_not_numbers(number: str) -> None:
    """Issue 14.5: they were accepted and shown as "Percentage CPU nan > inf"."""
    text = json.dumps(sample("cpu-high-fired")).replace("86.4", number)
    with pytest.raises(AlertPayloadError, match="not a finite number"):
        parse_alert(text.encode())


def test_a_non_finite_value_in_a_document_is_left_out_of_the_reason() -> None:
    alert = parse_alert(with_criteria(criterion("GreaterThan", float("inf"), float("nan"))))
    assert alert.direction is ScaleKind.OUT
    assert alert.reason == "Percentage CPU > ?"


def test_targets_are_deduplicated_and_capped() -> None:
    """Issue 14.6: one scale set listed 1 500 times made 4 500 durable calls."""
    same = parse_alert(with_targets(*[VMSS, VMSS.upper()] * 750))
    assert same.targets == (VMSS,)
    others = [VMSS.replace("acme-prod-vmss", f"vmss{i}") for i in range(MAX_ALERT_TARGETS)]
    assert len(parse_alert(with_targets(*others, *others)).targets) == MAX_ALERT_TARGETS
    many = with_targets(*others, VMSS)
    with pytest.raises(AlertPayloadError, match=f"more than {MAX_ALERT_TARGETS} targets"):
        parse_alert(many)


@pytest.mark.parametrize(
    "target",
    [
        "/subscriptions/aaaa0a0a-bb1b-cc2c-dd3d-eeeeee4e4e4e",
        "/subscriptions/aaaa0a0a-bb1b-cc2c-dd3d-eeeeee4e4e4e/resourceGroups/test-RG",
        "/subscriptions/aaaa0a0a-bb1b-cc2c-dd3d-eeeeee4e4e4e/resourcegroups/grupo-ação_(1).x",
        "/subscriptions/aaaa0a0a-bb1b-cc2c-dd3d-eeeeee4e4e4e/resourceGroups/rg/providers/"
        "Microsoft.Web/sites/app/slots/staging",
        "/subscriptions/aaaa0a0a-bb1b-cc2c-dd3d-eeeeee4e4e4e/resourceGroups/rg/providers/"
        "Microsoft.Compute/virtualMachines/vm/providers/Microsoft.Insights/diagnosticSettings/d",
    ],
)
def test_other_canonical_ids_are_targets_that_are_not_scale_sets(target: str) -> None:
    alert = parse_alert(with_targets(target))
    assert alert.targets == (target,)
    assert not is_scale_set_id(target)


def criterion_with(**fields: Any) -> dict[str, Any]:
    return {**criterion("GreaterThan", "70", 86.4), **fields}


@pytest.mark.parametrize(
    ("criteria", "reason"),
    [
        ([criterion_with(metricValue="n/a")], "Percentage CPU > 70"),
        ([criterion_with(threshold={"dynamic": True})], "Percentage CPU 86.4 > ?"),
        ([criterion_with(metricName=["Percentage CPU"])], "Front-end CPU above 70%"),
        ([criterion_with(), 42, "junk"], "Percentage CPU 86.4 > 70"),
        (
            [criterion_with(), {"metricName": "Memory", "metricValue": {}}],
            "Percentage CPU 86.4 > 70",
        ),
        (criterion_with(), "Percentage CPU 86.4 > 70"),
    ],
)
def test_one_bad_field_does_not_drop_the_other_criteria(criteria: Any, reason: str) -> None:
    """Issue 14.4: a metricValue of "n/a", a threshold that is an object or an allOf that is
    not a list dropped every criterion, and a GreaterThan CPU alert was ignored."""
    body = sample("cpu-high-fired")
    body["data"]["alertContext"]["condition"]["allOf"] = criteria
    alert = parse_alert(body)
    assert alert.direction is ScaleKind.OUT, alert.ignored
    assert alert.reason.startswith(reason)


def test_an_unusable_operator_still_asks_for_the_custom_property() -> None:
    alert = parse_alert(with_criteria(criterion_with(operator={"op": ">"})))
    assert alert.direction is None
    assert alert.ignored == (
        "cannot tell the direction from operator none; set customProperties.scaleDirection "
        "('out' or 'in')"
    )


def test_a_context_or_custom_properties_of_the_wrong_shape_are_tolerated() -> None:
    body = sample("cpu-high-fired")
    body["data"]["customProperties"] = ["scaleDirection", "in"]
    assert parse_alert(body).direction is ScaleKind.OUT
    body["data"]["alertContext"] = "not an object"
    alert = parse_alert(body)
    assert alert.direction is None
    assert alert.ignored is not None


def test_an_alert_naming_no_target_is_ignored_not_refused() -> None:
    """Issue 14.3: Microsoft's budget samples carry alertRule and alertTargetIDs null."""
    nothing: tuple[list[str] | None, ...] = (None, [])
    for targets in nothing:
        body = sample("cpu-high-fired")
        body["data"]["essentials"].update(
            alertRule=None, alertTargetIDs=targets, monitoringService="CostAlerts"
        )
        alert = parse_alert(body)
        assert (alert.targets, alert.direction, alert.rule) == ((), None, None)
        assert alert.ignored == (
            "a CostAlerts alert names no target resource (alertTargetIDs): nothing to scale"
        )


@pytest.mark.parametrize(
    ("signal", "service", "ignored"),
    [
        (
            "Activity Log",
            "Activity Log - Administrative",
            "cannot tell the direction of an Activity Log alert without "
            "customProperties.scaleDirection ('out' or 'in')",
        ),
        (
            "Activity Log",
            "Resource Health",
            "a Resource Health alert says nothing about the front-ends' load: nothing to scale",
        ),
        (
            "ActivityLog",
            "ServiceHealth",
            "a ServiceHealth alert says nothing about the front-ends' load: nothing to scale",
        ),
        (
            "Log",
            "SmartDetector",
            "a SmartDetector alert says nothing about the front-ends' load: nothing to scale",
        ),
    ],
)
def test_wording_of_alerts_that_say_nothing_about_load(
    signal: str, service: str, ignored: str
) -> None:
    """Issue 14.7: health alerts were advised to set scaleDirection; "a Activity Log alert"."""
    body = sample("cpu-high-fired")
    body["data"]["essentials"].update(signalType=signal, monitoringService=service)
    body["data"]["alertContext"] = {"eventSource": "x"}
    assert parse_alert(body).ignored == ignored


def test_when_an_alert_fired_and_resolved() -> None:
    fired = parse_alert(sample("cpu-high-fired"))
    assert fired.fired_at == datetime(2026, 11, 20, 9, 14, 7, 331000, tzinfo=UTC)
    assert fired.resolved_at is None
    resolved = parse_alert(sample("cpu-high-resolved"))
    assert resolved.resolved_at == datetime(2026, 11, 20, 9, 31, 7, tzinfo=UTC)
    body = sample("cpu-high-fired")
    body["data"]["essentials"]["firedDateTime"] = "yesterday"
    assert parse_alert(body).fired_at is None
    body["data"]["essentials"]["firedDateTime"] = "2026-11-20T09:14:07"  # no offset: UTC
    assert parse_alert(body).fired_at == datetime(2026, 11, 20, 9, 14, 7, tzinfo=UTC)


def test_old_alerts_are_too_old_to_act_on() -> None:
    """Issue 13.3: nothing checked when an alert fired, so old alerts could be replayed."""
    hour = timedelta(minutes=60)
    fired = parse_alert(sample("cpu-high-fired"))  # fired 09:14:07
    assert stale_reason(fired, NOW, hour) is None
    assert stale_reason(fired, NOW + timedelta(hours=2), hour) == (
        "alert fired at 2026-11-20T09:14:07Z, more than 60 minutes before it reached the "
        "app (ALERT_MAX_AGE_MINUTES): too old to act on"
    )
    # A Resolved alert is as old as its resolution (resolvedDateTime 09:31:07).
    resolved = parse_alert(sample("cpu-high-resolved"))
    assert stale_reason(resolved, NOW + timedelta(minutes=50), hour) is None
    assert stale_reason(resolved, NOW + timedelta(minutes=80), hour) is not None
    # Clocks disagree a little; an alert from the future is not believed.
    assert fired.fired_at is not None
    assert stale_reason(fired, fired.fired_at - timedelta(minutes=4), hour) is None
    assert "in the future" in (stale_reason(fired, NOW - timedelta(hours=1), hour) or "")
    body = sample("cpu-high-fired")
    del body["data"]["essentials"]["firedDateTime"]
    assert stale_reason(parse_alert(body), NOW, hour) == (
        "the alert carries no valid firedDateTime: its age cannot be told"
    )


def test_the_ascii_fast_path_refuses_exactly_the_characters_the_per_character_check_refuses() -> (
    None
):
    """Issue 16: ASCII ids and names are checked by one regex instead of a loop over their
    characters; for every ASCII character the verdict is the loop's (the categories are
    Python's `unicodedata`, the same table the loop reads)."""
    from outsystems.alerts import _ASCII_CONTROL, _ASCII_REFUSED_IN_ID

    base = VMSS
    assert is_resource_id(base)
    for code in range(128):
        c = chr(code)
        category = unicodedata.category(c)
        refused = c in "?#%\\" or category in {"Cc", "Cf", "Cs", "Co", "Cn", "Zs", "Zl", "Zp"}
        assert (_ASCII_REFUSED_IN_ID.search(c) is not None) is refused, repr(c)
        assert (_ASCII_CONTROL.search(c) is not None) is (category in {"Cc", "Cs"}), repr(c)
        if refused:
            assert not is_resource_id(f"{base}{c}x"), repr(c)
    # Beyond ASCII the loop still decides.
    assert not is_resource_id(base + "\u202e")
    assert not is_resource_id(base + "\u00a0x")
    assert is_resource_id(base + "\u00e9")

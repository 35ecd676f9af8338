"""Microsoft's published Azure Monitor payloads, as a table: source | body | status | words.

The samples live in `tests/data/alerts/` (their README names repository, path and commit of
each). Rows marked "retargeted" point the sample's `alertTargetIDs` at the farm's scale set
(`alert_webhook.VMSS`); rows built from `alert-contexts.json` put a section's `alertContext`
into the envelope of the common schema's sample. The expected outcome is what the webhook
answers when that scale set is managed (`tests/unit/test_triggers_alerts_samples.py`); the e2e
corpus sends the same table to the running app, where no platform is deployed.
"""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from tests.support.alert_webhook import VMSS

DATA = Path(__file__).resolve().parents[1] / "data" / "alerts"
SUBSCRIPTION_PLACEHOLDER = "<subscription ID>"
SAMPLE_SUBSCRIPTION = "aaaa0a0a-bb1b-cc2c-dd3d-eeeeee4e4e4e"

NOT_A_SCALE_SET = "is not a virtual machine scale set"
NO_TARGET = "names no target resource (alertTargetIDs): nothing to scale"
SAYS_NOTHING = "says nothing about the front-ends' load: nothing to scale"
LOG = "cannot tell the direction of a Log alert without customProperties.scaleDirection"
ACTIVITY = "cannot tell the direction of an Activity Log alert without customProperties"
METRIC = "cannot tell the direction of a Metric alert without customProperties"
NOT_COMMON = "not an Azure Monitor alert in the common alert schema"
NOT_CANONICAL = "is not a canonical ARM resource id"


def load(name: str) -> Any:
    return json.loads((DATA / name).read_text(encoding="utf-8"))


def fresh(body: Any) -> Any:
    """The sample with its times set to one minute ago (the samples are years old)."""
    body = copy.deepcopy(body)
    essentials = (body.get("data") or {}).get("essentials") if isinstance(body, dict) else None
    if isinstance(essentials, dict):
        moment = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
        for field in ("firedDateTime", "resolvedDateTime"):
            if field in essentials:
                essentials[field] = moment
    return body


def filled(body: Any) -> Any:
    """The sample with the doc's `<subscription ID>` placeholder filled in."""
    return json.loads(json.dumps(body).replace(SUBSCRIPTION_PLACEHOLDER, SAMPLE_SUBSCRIPTION))


def retargeted(body: Any, **custom: str) -> Any:
    body = copy.deepcopy(body)
    body["data"]["essentials"]["alertTargetIDs"] = [VMSS]
    if custom:
        body["data"]["customProperties"] = custom
    return body


def composed(section: str, signal: str, service: str) -> Any:
    """A section of alert-contexts.json in the common sample's envelope, fired at the farm."""
    body = filled(load("common/common-schema-sample.json"))
    body["data"]["essentials"].update(
        monitorCondition="Fired", signalType=signal, monitoringService=service
    )
    del body["data"]["essentials"]["resolvedDateTime"]
    body["data"]["alertContext"] = load("alert-contexts.json")[section]
    body["data"]["customProperties"] = None
    return retargeted(body)


# source | what is sent | expected status | expected words in the answer
TABLE: list[tuple[str, Any, int, str]] = [
    (
        "common/sample-alert-payload.json (as published)",
        load("common/sample-alert-payload.json"),
        400,
        NOT_CANONICAL,
    ),
    (
        "common/sample-alert-payload.json",
        filled(load("common/sample-alert-payload.json")),
        200,
        "nothing to withdraw",
    ),
    (
        "common/common-schema-sample.json",
        filled(load("common/common-schema-sample.json")),
        200,
        "nothing to withdraw",
    ),
    (
        "common/test-action-activity-log.json",
        load("common/test-action-activity-log.json"),
        200,
        ACTIVITY,
    ),
    (
        "common/test-action-availability-test.json",
        load("common/test-action-availability-test.json"),
        200,
        NOT_A_SCALE_SET,
    ),
    ("common/test-action-budget.json", load("common/test-action-budget.json"), 200, NO_TARGET),
    (
        "common/test-action-cost-budget.json",
        load("common/test-action-cost-budget.json"),
        200,
        NO_TARGET,
    ),
    (
        "common/test-action-forecasted-budget.json",
        load("common/test-action-forecasted-budget.json"),
        200,
        NO_TARGET,
    ),
    (
        "common/test-action-log-v1-metric-measurement.json",
        load("common/test-action-log-v1-metric-measurement.json"),
        200,
        LOG,
    ),
    (
        "common/test-action-log-v1-number-of-results.json",
        load("common/test-action-log-v1-number-of-results.json"),
        200,
        LOG,
    ),
    ("common/test-action-log-v2.json", load("common/test-action-log-v2.json"), 200, LOG),
    (
        "common/test-action-metric-dynamic-threshold.json",
        load("common/test-action-metric-dynamic-threshold.json"),
        200,
        NOT_A_SCALE_SET,
    ),
    (
        "common/test-action-metric-static-threshold.json",
        load("common/test-action-metric-static-threshold.json"),
        200,
        NOT_A_SCALE_SET,
    ),
    (
        "common/test-action-resource-health.json",
        load("common/test-action-resource-health.json"),
        200,
        "a Resource Health alert " + SAYS_NOTHING,
    ),
    (
        "common/test-action-service-health.json",
        load("common/test-action-service-health.json"),
        200,
        "a ServiceHealth alert " + SAYS_NOTHING,
    ),
    (
        "common/test-action-smart-alert.json",
        load("common/test-action-smart-alert.json"),
        200,
        "a SmartDetector alert " + SAYS_NOTHING,
    ),
    (
        "common/test-action-metric-static-threshold.json (retargeted)",
        retargeted(load("common/test-action-metric-static-threshold.json")),
        202,
        '"direction": "out"',
    ),
    (
        "common/test-action-metric-dynamic-threshold.json (retargeted)",
        retargeted(load("common/test-action-metric-dynamic-threshold.json")),
        202,
        '"direction": "out"',
    ),
    (
        "common/test-action-log-v2.json (retargeted)",
        retargeted(load("common/test-action-log-v2.json")),
        200,
        LOG,
    ),
    (
        "common/test-action-log-v2.json (retargeted, customProperties.scaleDirection in)",
        retargeted(load("common/test-action-log-v2.json"), scaleDirection="in"),
        202,
        '"direction": "in"',
    ),
    (
        "common/test-action-resource-health.json (retargeted)",
        retargeted(load("common/test-action-resource-health.json")),
        200,
        SAYS_NOTHING,
    ),
    (
        "alert-contexts.json metric-static-threshold",
        composed("metric-static-threshold", "Metric", "Platform"),
        202,
        '"direction": "out"',
    ),
    (
        "alert-contexts.json metric-dynamic-threshold",
        composed("metric-dynamic-threshold", "Metric", "Platform"),
        202,
        '"direction": "out"',
    ),
    (
        "alert-contexts.json metric-availability-test",
        composed("metric-availability-test", "Metric", "Platform"),
        202,
        '"direction": "out"',
    ),
    (
        "alert-contexts.json log-search-application-insights",
        composed("log-search-application-insights", "Log", "Application Insights"),
        200,
        LOG,
    ),
    (
        "alert-contexts.json activity-log-policy",
        composed("activity-log-policy", "Activity Log", "Activity Log - Policy"),
        200,
        ACTIVITY,
    ),
    (
        "alert-contexts.json activity-log-autoscale",
        composed("activity-log-autoscale", "Activity Log", "Activity Log - Autoscale"),
        200,
        ACTIVITY,
    ),
    (
        "alert-contexts.json activity-log-security",
        composed("activity-log-security", "Activity Log", "Activity Log - Security"),
        200,
        ACTIVITY,
    ),
    (
        "alert-contexts.json activity-log-service-health",
        composed("activity-log-service-health", "Activity Log", "ServiceHealth"),
        200,
        SAYS_NOTHING,
    ),
    (
        "alert-contexts.json activity-log-resource-health",
        composed("activity-log-resource-health", "Activity Log", "ResourceHealth"),
        200,
        SAYS_NOTHING,
    ),
    ("alert-contexts.json prometheus", composed("prometheus", "Metric", "Platform"), 200, METRIC),
    *[
        (f"noncommon/{name}", load(f"noncommon/{name}"), 400, NOT_COMMON)
        for name in (
            "metric-static-threshold.json",
            "metric-dynamic-threshold.json",
            "log-v1-number-of-results.json",
            "activity-log-administrative.json",
        )
    ],
]

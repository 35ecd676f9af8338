"""`record_platform_drift` (`orchestrators/drift.py`) by history replay (`tests/support/replay.py`):
it keeps the check as its output and publishes `outsystems.platform.drifted` only for a changed,
non-empty set of differences, with the time of its own clock (deterministic on replay)."""

from __future__ import annotations

from typing import Any

import pytest

from outsystems.drift import Difference, Drift, DriftCheck
from tests.support.functions import orchestrator
from tests.support.replay import START, Outcome, Replay

NSG = (
    "/subscriptions/11111111-2222-3333-4444-555555555555/resourceGroups/acme-rg/providers/"
    "Microsoft.Network/networkSecurityGroups/acme-prod-nsg"
)
RULE = Difference(NSG, "properties.securityRules[rdp]", None, {"name": "rdp"})


def run(check: DriftCheck) -> tuple[Outcome, list[dict[str, Any]]]:
    published: list[dict[str, Any]] = []

    def publish(event: dict[str, Any]) -> str:
        published.append(event)
        return str(event["id"])

    outcome = Replay(
        orchestrator("record_platform_drift"),
        check.to_json(),
        name="record_platform_drift",
        instance_id="drift-acme",
        activities={"publish_event": publish},
    ).run()
    return outcome, published


def test_a_changed_drift_is_kept_and_announced_with_its_paths() -> None:
    check = DriftCheck("acme", "2026-12-03T06:00:00Z", Drift((RULE,)), changed=True)
    outcome, published = run(check)
    assert outcome.error is None
    assert DriftCheck.from_json(outcome.output) == check
    [event] = published
    assert (event["type"], event["subject"]) == ("outsystems.platform.drifted", "acme")
    assert event["data"] == {
        "checkedAt": "2026-12-03T06:00:00Z",
        "count": 1,
        "differences": [{"resourceId": NSG, "path": "properties.securityRules[rdp]"}],
    }
    assert event["time"] == START.isoformat().replace("+00:00", "Z")


@pytest.mark.parametrize(
    ("drift", "changed"), [(Drift((RULE,)), False), (Drift(()), True), (Drift(()), False)]
)
def test_the_same_drift_or_none_is_kept_without_an_event(drift: Drift, changed: bool) -> None:
    check = DriftCheck("acme", "2026-12-03T06:00:00Z", drift, changed)
    outcome, published = run(check)
    assert outcome.error is None
    assert DriftCheck.from_json(outcome.output) == check
    assert published == []

"""The scale-request entity (through the Durable SDK's own entity handler) and its keys."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from orchestrators.scale_requests import (
    ENTITY_NAME,
    MAX_ALERT_IDS,
    MAX_DECISIONS,
    RECENT_IDS,
    scale_set_key,
)
from orchestrators.scaler import scaler_instance_id
from outsystems.scaling import ScaleKind, ScaleRequest, ScaleSource
from tests.support.functions import user_function

VMSS = (
    "/subscriptions/11111111-2222-3333-4444-555555555555/resourceGroups/acme-rg/providers/"
    "Microsoft.Compute/virtualMachineScaleSets/acme-prod-vmss"
)
NOW = datetime(2026, 11, 20, 9, 14, tzinfo=UTC)


def test_keys_are_stable_lowercase_url_safe_and_unique_per_scale_set() -> None:
    key = scale_set_key(VMSS)
    assert key == scale_set_key(VMSS.upper()) == scale_set_key(VMSS + "/")
    assert key.startswith("acme-prod-vmss-")
    assert key == key.lower()
    assert all(c.isalnum() or c == "-" for c in key)
    other_group = VMSS.replace("acme-rg", "acme-rg2")
    assert scale_set_key(other_group) != key
    assert scaler_instance_id(VMSS) == f"scaler-{key}"
    assert scale_set_key(VMSS.replace("acme-prod-vmss", "a.b_c")).startswith("a-b-c-")


def request(
    source: ScaleSource = ScaleSource.ALERT,
    kind: ScaleKind = ScaleKind.OUT,
    rule: str | None = "cpu-high",
    source_id: str = "alert-1",
    amount: int | None = None,
) -> dict[str, Any]:
    return ScaleRequest.to_json(
        ScaleRequest(kind, amount, source, source_id, NOW, rule, "Percentage CPU 86 > 70")
    )


class Entity:
    """Runs operations through the decorated entity function, as the host does."""

    def __init__(self) -> None:
        self.state: str | None = None
        self.exists = False
        self.handle = user_function("track_scale_requests")

    def run(self, *operations: tuple[str, Any]) -> list[dict[str, Any]]:
        payload = {
            "self": {"name": ENTITY_NAME, "key": scale_set_key(VMSS)},
            "state": self.state,
            "exists": self.exists,
            "batch": [
                {"name": name, "input": json.dumps(json.dumps(value))} for name, value in operations
            ],
        }
        response = json.loads(self.handle(json.dumps(payload)))
        self.exists = response["entityExists"]
        self.state = response["entityState"]
        results: list[dict[str, Any]] = response["results"]
        return results

    def call(self, name: str, value: Any = None) -> Any:
        (result,) = self.run((name, value))
        assert not result["isError"], result
        return json.loads(result["result"])

    @property
    def data(self) -> dict[str, Any]:
        assert self.state is not None
        data: dict[str, Any] = json.loads(self.state)
        return data


def add(entity: Entity, request_id: str, body: dict[str, Any]) -> Any:
    return entity.call(
        "add", {"id": request_id, "scaleSet": VMSS, "solutionId": "acme", "request": body}
    )


def test_requests_are_kept_in_arrival_order_and_a_redelivery_is_stored_once() -> None:
    entity = Entity()
    assert add(entity, "r1", request()) is True
    assert add(entity, "r2", request(source_id="alert-2", rule="cpu-high-2")) is True
    assert add(entity, "r1", request()) is False
    taken = entity.call("take")
    assert [p["id"] for p in taken["pending"]] == ["r1", "r2"]
    assert (taken["scaleSet"], taken["solutionId"], taken["cooldownUntil"]) == (VMSS, "acme", None)
    assert "decisions" not in taken
    # Decided requests are remembered too: a late re-delivery does not scale twice.
    entity.call("record", {"settled": ["r1"], "records": [{"requestId": "r1"}]})
    assert add(entity, "r1", request()) is False


def test_a_malformed_request_fails_and_leaves_the_state_alone() -> None:
    entity = Entity()
    add(entity, "r1", request())
    before = entity.data
    bad = {**request(), "amount": "two"}
    [result] = entity.run(("add", {"id": "r2", "request": bad}))
    assert result["isError"]
    assert entity.data == before
    [result] = entity.run(("explode", None))
    assert result["isError"]
    assert "unknown operation" in result["result"]


def test_a_resolved_alert_withdraws_only_its_own_pending_requests() -> None:
    high = "/subscriptions/x/providers/Microsoft.AlertsManagement/alerts/high-1"
    entity = Entity()
    add(entity, "high", request(rule="acme-prod-frontends-cpu-high", source_id=high))
    add(entity, "high2", request(rule="acme-prod-frontends-cpu-high", source_id=high + "0"))
    add(
        entity,
        "low",
        request(kind=ScaleKind.IN, rule="acme-prod-frontends-cpu-low", source_id="alert-2"),
    )
    manual = request(ScaleSource.MANUAL, ScaleKind.EXACT, None, "m1", amount=4)
    add(entity, "manual", manual)
    resolved = {"alertId": high.upper(), "rule": "acme-prod-frontends-cpu-high"}
    assert entity.call("withdraw", resolved) == 1
    assert entity.call("withdraw", resolved) == 0
    # A signal of an older version of the app names the rule only: it withdraws nothing.
    assert entity.call("withdraw", {"rule": "acme-prod-frontends-cpu-high"}) == 0
    # The two alerts of the rule were one pending request of two: the other alert's share stays.
    pending = entity.data["pending"]
    assert [p["id"] for p in pending] == ["high", "low", "manual"]
    assert pending[0]["alertIds"] == [high + "0"]
    assert (pending[0]["request"]["sourceId"], pending[0]["request"].get("count", 1)) == (
        high + "0",
        1,
    )
    [record] = entity.data["decisions"]
    assert (record["requestId"], record["outcome"], record["sourceId"]) == ("high", "skipped", high)
    assert record["reason"] == (
        "withdrawn: alert acme-prod-frontends-cpu-high resolved before the request was decided"
    )


def test_record_settles_defers_sets_the_cooldown_and_keeps_the_latest_decisions() -> None:
    entity = Entity()
    for index in range(3):
        add(entity, f"r{index}", request(source_id=f"alert-{index}", rule=f"rule-{index}"))
    until = (NOW + timedelta(minutes=10)).isoformat()
    snapshot = entity.call(
        "record",
        {
            "settled": ["r0"],
            "deferred": ["r2"],
            "cooldownUntil": until,
            "records": [{"requestId": f"x{i}"} for i in range(MAX_DECISIONS + 5)],
        },
    )
    assert [(p["id"], p["deferred"]) for p in snapshot["pending"]] == [
        ("r1", False),
        ("r2", True),
    ]
    assert snapshot["cooldownUntil"] == until
    decisions = entity.data["decisions"]
    assert len(decisions) == MAX_DECISIONS
    assert decisions[-1] == {"requestId": f"x{MAX_DECISIONS + 4}"}
    # Without a cooldown in the operation, the one in force stays.
    assert entity.call("record", {"settled": ["r1"]})["cooldownUntil"] == until


@pytest.mark.parametrize("operation", ["take", "record"])
def test_a_new_entity_answers_empty(operation: str) -> None:
    entity = Entity()
    snapshot = entity.call(operation, {} if operation == "record" else None)
    assert snapshot == {
        "scaleSet": None,
        "solutionId": None,
        "pending": [],
        "cooldownUntil": None,
        "heldBy": None,
    }


def test_scaler_tuning_comes_from_the_settings() -> None:
    from appsettings import AppSettings, InvalidSettingError
    from services.scaler_client import scaler_tuning

    base = {"AZURE_SUBSCRIPTION_ID": "11111111-2222-3333-4444-555555555555"}
    default = scaler_tuning(AppSettings.load(base))
    assert (default.poll_seconds, default.cooldown_scale, default.timeout_scale) == (15.0, 1.0, 1.0)
    tuned = {
        **base,
        "OPERATION_POLL_SECONDS": "0.5",
        "SCALING_COOLDOWN_SCALE": "0.01",
        "OPERATION_TIMEOUT_SCALE": "0.1",
    }
    tuning = scaler_tuning(AppSettings.load(tuned))
    # The scaler's wait limits follow OPERATION_TIMEOUT_SCALE like the deployments' (issue 15.1).
    assert (tuning.poll_seconds, tuning.cooldown_scale, tuning.timeout_scale) == (0.5, 0.01, 0.1)
    with pytest.raises(InvalidSettingError, match="SCALING_COOLDOWN_SCALE"):
        AppSettings.load({**base, "SCALING_COOLDOWN_SCALE": "0"})


# --- Issue 16: the state does not grow with the alerts pending ------------------------------------


def test_alerts_of_one_rule_and_direction_are_one_pending_request_with_a_count() -> None:
    entity = Entity()
    for n in range(500):
        assert add(entity, f"r{n}", request(source_id=f"alert-{n}")) is True
    add(entity, "in", request(kind=ScaleKind.IN, source_id="alert-in"))
    add(entity, "other", request(rule="cpu-high-2", source_id="alert-x"))
    pending = entity.call("take")["pending"]
    assert [(p["id"], p["request"].get("count", 1)) for p in pending] == [
        ("r0", 500),
        ("in", 1),
        ("other", 1),
    ]
    # The latest alert stands for them, with the ids of the latest MAX_ALERT_IDS.
    assert pending[0]["request"]["sourceId"] == "alert-499"
    assert pending[0]["alertIds"] == [f"alert-{n}" for n in range(500 - MAX_ALERT_IDS, 500)]
    # A re-delivery of a recent request is stored once, and the state stays bounded.
    assert add(entity, "r499", request(source_id="alert-499")) is False
    size = len(entity.state or "")
    for n in range(500, 1500):
        add(entity, f"r{n}", request(source_id=f"alert-{n}"))
    assert len(entity.data["recentIds"]) == RECENT_IDS
    assert len(entity.state or "") < size * 1.1


def test_alerts_that_join_a_request_after_the_scaler_took_it_stay_pending() -> None:
    entity = Entity()
    for n in range(3):
        add(entity, f"r{n}", request(source_id=f"alert-{n}"))
    [taken] = entity.call("take")["pending"]
    add(entity, "r3", request(source_id="alert-3"))
    add(entity, "r4", request(source_id="alert-4"))
    count = taken["request"]["count"]
    after = entity.call("record", {"settled": [taken["id"]], "counts": {taken["id"]: count}})
    [left] = after["pending"]
    assert (left["request"]["count"], left["alertIds"], left["deferred"]) == (
        2,
        ["alert-3", "alert-4"],
        False,
    )
    # Without counts (an older scaler), the whole request is settled.
    assert entity.call("record", {"settled": [left["id"]]})["pending"] == []


def test_a_state_written_before_issue_16_still_loads_one_entry_per_alert() -> None:
    entity = Entity()
    old = {
        "scaleSet": VMSS,
        "solutionId": "acme",
        "pending": [
            {"id": "r1", "request": request(source_id="alert-1"), "deferred": True},
            {"id": "r2", "request": request(source_id="alert-2"), "deferred": False},
        ],
        "cooldownUntil": None,
        "decisions": [{"requestId": "r0", "outcome": "applied"}],
    }
    entity.state, entity.exists = json.dumps(old), True
    assert add(entity, "r0", request(source_id="alert-0")) is False
    assert add(entity, "r3", request(source_id="alert-3")) is True
    pending = entity.data["pending"]
    assert [(p["id"], p["alertIds"]) for p in pending] == [
        ("r1", ["alert-1", "alert-3"]),
        ("r2", ["alert-2"]),
    ]
    assert entity.call("withdraw", {"alertId": "alert-2"}) == 1
    assert [p["id"] for p in entity.data["pending"]] == ["r1"]


def test_a_cooldown_notice_for_a_request_withdrawn_meanwhile_is_not_recorded() -> None:
    """The scaler took an alert's request, the alert was resolved (its request withdrawn, a
    `withdrawn` record), then the scaler's cooldown notice for it arrived: the notice spoke of
    a request no longer pending and is dropped; a notice for one still pending is kept."""
    entity = Entity()
    add(entity, "gone", request(source_id="alert-1", rule="cpu-high"))
    add(entity, "kept", request(source_id="alert-2", rule="cpu-high-2"))
    assert entity.call("withdraw", {"alertId": "alert-1", "rule": "cpu-high"}) == 1
    notice = "cooldown until 2026-11-20T09:24:00Z: kept pending, decided once when it ends"
    entity.call(
        "record",
        {
            "deferred": ["gone", "kept"],
            "records": [
                {"requestId": "gone", "outcome": "skipped", "reason": notice},
                {"requestId": "kept", "outcome": "skipped", "reason": notice},
            ],
        },
    )
    decisions = [(d["requestId"], d["reason"].split(":")[0]) for d in entity.data["decisions"]]
    assert decisions == [("gone", "withdrawn"), ("kept", "cooldown until 2026-11-20T09")]
    assert [(p["id"], p["deferred"]) for p in entity.data["pending"]] == [("kept", True)]


# --- Issue 17: an upgrade holds the scale set ---------------------------------------------------

HOLD = {"holder": "platform-acme:upgrade-1", "reason": "upgrade to 11.33.0"}


def test_a_hold_is_stored_and_seen_by_take_and_only_its_holder_releases_it() -> None:
    entity = Entity()
    add(entity, "r1", request())
    assert entity.call("hold", HOLD) is True
    assert entity.call("take")["heldBy"] == HOLD
    # Requests keep arriving while held: they are stored as ever.
    assert add(entity, "r2", request(source_id="alert-2", rule="cpu-high-2")) is True
    assert [p["id"] for p in entity.data["pending"]] == ["r1", "r2"]
    # Another operation's release (a stale one) leaves the hold alone.
    assert entity.call("release", {"holder": "platform-acme:upgrade-0"}) is False
    assert entity.data["heldBy"] == HOLD
    assert entity.call("release", HOLD) is True
    assert entity.call("take")["heldBy"] is None
    # A replayed release changes nothing.
    assert entity.call("release", HOLD) is False
    assert [p["id"] for p in entity.data["pending"]] == ["r1", "r2"]


def test_hold_and_release_ask_for_the_wait_to_be_announced_again() -> None:
    entity = Entity()
    add(entity, "r1", request())
    entity.call("record", {"deferred": ["r1"]})
    assert entity.data["pending"][0]["deferred"] is True
    entity.call("hold", HOLD)
    assert entity.data["pending"][0]["deferred"] is False
    # Announced under the hold; the same hold signalled again (a replay) keeps the mark.
    entity.call("record", {"deferred": ["r1"]})
    entity.call("hold", HOLD)
    assert entity.data["pending"][0]["deferred"] is True
    entity.call("release", HOLD)
    assert entity.data["pending"][0]["deferred"] is False


def test_a_new_holder_takes_over_the_hold() -> None:
    entity = Entity()
    entity.call("hold", HOLD)
    other = {"holder": "platform-acme:upgrade-2", "reason": ""}
    entity.call("hold", other)
    assert entity.data["heldBy"] == other
    assert entity.call("release", HOLD) is False
    assert entity.call("release", other) is True


def test_a_hold_without_holder_fails_and_leaves_the_state_alone() -> None:
    entity = Entity()
    entity.call("hold", HOLD)
    before = entity.data
    [result] = entity.run(("release", {"reason": "no holder"}))
    assert result["isError"]
    assert entity.data == before

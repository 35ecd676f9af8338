"""CloudEvents built for the contract's types, and their base64 queue encoding."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from outsystems.events import (
    DEFAULT_SOURCE,
    MAX_QUEUE_MESSAGE,
    EventError,
    EventType,
    cloud_event,
    encode_queue_message,
    scale_event,
)
from outsystems.policy import ScalingPolicy
from outsystems.scaling import ScaleKind, ScaleRequest, ScaleSource, coalesce, decide

AT = datetime(2024, 6, 5, 10, 0, 0, tzinfo=UTC)
CONTRACT_TYPES = {
    "outsystems.deployment.started",
    "outsystems.deployment.succeeded",
    "outsystems.deployment.failed",
    "outsystems.deployment.canceled",
    "outsystems.environment.succeeded",
    "outsystems.environment.failed",
    "outsystems.scale.applied",
    "outsystems.scale.skipped",
    "outsystems.teardown.succeeded",
    "outsystems.teardown.failed",
    "outsystems.platform.drifted",
    "outsystems.upgrade.started",
    "outsystems.upgrade.step",
    "outsystems.upgrade.paused",
    "outsystems.upgrade.approved",
    "outsystems.upgrade.succeeded",
    "outsystems.upgrade.failed",
    "outsystems.upgrade.canceled",
}


def test_the_types_are_exactly_the_contracts() -> None:
    assert {member.value for member in EventType} == CONTRACT_TYPES


@pytest.mark.parametrize("event_type", sorted(CONTRACT_TYPES))
def test_every_contract_type_builds_a_cloud_event(event_type: str) -> None:
    event = cloud_event(event_type, "acme/prod", {"resourcesDone": 3}, id="e-1", time=AT)

    assert event == {
        "specversion": "1.0",
        "id": "e-1",
        "source": "/outsystems-azure-ops",
        "type": event_type,
        "subject": "acme/prod",
        "time": "2024-06-05T10:00:00Z",
        "datacontenttype": "application/json",
        "data": {"resourcesDone": 3},
    }


def test_time_is_written_in_utc_and_source_can_be_set() -> None:
    lisbon_summer = timezone(timedelta(hours=1))
    event = cloud_event(
        EventType.DEPLOYMENT_STARTED,
        "acme",
        {},
        id="x",
        time=datetime(2024, 6, 5, 11, 0, 0, 250000, tzinfo=lisbon_summer),
        source="/subscriptions/s/resourceGroups/r/providers/Microsoft.Web/sites/app",
    )

    assert event["time"] == "2024-06-05T10:00:00.250000Z"
    assert event["source"] != DEFAULT_SOURCE
    assert event["type"] == "outsystems.deployment.started"


def test_data_is_copied_as_plain_json() -> None:
    counts = {"dev": 9}
    data = {"environments": ("dev", "test"), "counts": counts}
    event = cloud_event("outsystems.deployment.succeeded", "acme", data, id="x", time=AT)
    counts["dev"] = 0

    assert event["data"] == {"environments": ["dev", "test"], "counts": {"dev": 9}}


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"type": "outsystems.deployment.exploded"}, "unknown event type"),
        ({"type": "deployment.started"}, "unknown event type"),
        ({"subject": "Acme"}, "not <solutionId>"),
        ({"subject": "acme/staging"}, "not <solutionId>"),
        ({"subject": "toolongid"}, "not <solutionId>"),
        ({"subject": "acme/prod/x"}, "not <solutionId>"),
        ({"id": ""}, "id must not be empty"),
        ({"source": ""}, "source must not be empty"),
        ({"time": datetime(2024, 6, 5, 10)}, "aware"),
        ({"data": {"when": AT}}, "not JSON"),
        ({"data": {"ratio": float("nan")}}, "not JSON"),
        ({"data": {"adminPassword": "x"}}, "data.adminPassword"),
        ({"data": {"env": {"sql_admin_password": "x"}}}, "data.env.sql_admin_password"),
        ({"data": {"items": [{"ok": 1}, {"clientSecret": "x"}]}}, r"data.items\[1\].clientSecret"),
        ({"data": {"PLATFORM_PRIVATE_KEY": "x"}}, "PLATFORM_PRIVATE_KEY"),
        ({"data": {"storageConnectionString": "x"}}, "storageConnectionString"),
        ({"data": {"accessToken": "x"}}, "accessToken"),
    ],
)
def test_bad_events_are_refused(changes: dict[str, object], message: str) -> None:
    arguments: dict[str, object] = {
        "type": "outsystems.environment.failed",
        "subject": "acme/test",
        "data": {"error": {"code": "OperationNotAllowed", "message": "quota"}},
        "id": "e-1",
        "time": AT,
        **changes,
    }
    with pytest.raises(EventError, match=message):
        cloud_event(**arguments)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "data",
    [
        {"error": {"code": "OperationNotAllowed", "message": "quota"}},
        {"tls": {"certificateSecretId": "https://kv.vault.azure.net/secrets/cert"}},
        {"passwordSetting": "VM_ADMIN_PASSWORD"},
        {"tokenName": "x", "keyVaultUri": "https://kv.vault.azure.net"},
    ],
)
def test_references_to_secrets_and_error_codes_are_allowed(data: dict[str, object]) -> None:
    assert cloud_event("outsystems.environment.failed", "acme/dev", data, id="e", time=AT)["data"]


def test_a_queue_message_is_base64_json() -> None:
    event = cloud_event("outsystems.teardown.succeeded", "acme", {"note": "olá"}, id="1", time=AT)

    message = encode_queue_message(event)

    assert json.loads(base64.b64decode(message, validate=True)) == event


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.sampled_from(["a", "b", "reason", "to"]), children, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=100, deadline=None)
@given(
    st.sampled_from(sorted(CONTRACT_TYPES)),
    st.dictionaries(st.sampled_from(["x", "y", "step", "detail"]), json_values, max_size=4),
    st.text(min_size=1, max_size=40),
)
def test_any_event_survives_the_queue(
    event_type: str, data: dict[str, object], event_id: str
) -> None:
    event = cloud_event(event_type, "abc123/life", data, id=event_id, time=AT)

    assert json.loads(base64.b64decode(encode_queue_message(event), validate=True)) == event


def test_an_event_too_large_for_a_queue_message_is_refused() -> None:
    event = cloud_event(
        "outsystems.deployment.failed", "acme", {"log": "x" * 50_000}, id="big", time=AT
    )
    with pytest.raises(EventError, match=f"at most {MAX_QUEUE_MESSAGE}"):
        encode_queue_message(event)


POLICY = ScalingPolicy(2, 10, scale_out_step=2)
SCALE_SET = (
    "/subscriptions/s/resourceGroups/acme-rg/providers/"
    "Microsoft.Compute/virtualMachineScaleSets/acme-prod-vmss"
)


def cpu_alert(n: int) -> ScaleRequest:
    return ScaleRequest(
        ScaleKind.OUT, None, ScaleSource.ALERT, f"alert-{n}", AT, "cpu", "Percentage CPU 86.4 > 70"
    )


def test_one_scale_event_for_a_coalesced_storm() -> None:
    batch = coalesce([cpu_alert(n) for n in range(50)], AT, None)
    assert batch.request is not None
    decision = decide(4, POLICY, batch.request, AT, None)

    event = scale_event("acme", SCALE_SET, decision, id="ev-1", time=AT)

    assert event["type"] == "outsystems.scale.applied"
    assert event["subject"] == "acme/prod"
    assert event["data"] == {
        "scaleSet": SCALE_SET,
        "source": "alert",
        "sourceId": "alert-49",
        "direction": "out",
        "from": 4,
        "to": 6,
        "outcome": "applied",
        "reason": "Percentage CPU 86.4 > 70 (and 49 more alerts)",
        "requests": 50,
        "serversToRemove": [],
        "cooldownUntil": "2024-06-05T10:10:00Z",
    }


def test_a_skipped_decision_is_a_scale_skipped_event() -> None:
    decision = decide(10, POLICY, cpu_alert(1), AT, None)

    event = scale_event("acme", SCALE_SET, decision, id="ev-2", time=AT)

    assert event["type"] == "outsystems.scale.skipped"
    assert event["data"]["reason"] == "already at maximum (10)"
    assert (event["data"]["from"], event["data"]["to"]) == (10, 10)
    assert event["data"]["cooldownUntil"] is None

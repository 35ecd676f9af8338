"""The scaling use cases (`services.scaling`): scaling by hand, the scaling view and the timer,
driven through their ports with hand-written fakes (the Durable client of `durable_fakes`, an
ARM that answers from a dict of scale sets)."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from typing import Any

import pytest

from appsettings import AppSettings
from orchestrators.scale_requests import scale_set_key
from orchestrators.scaler import scaler_instance_id
from outsystems.messages import ScaleSetInfo
from outsystems.policy import ScalingPolicy, policy_to_tags
from outsystems.scaling import ScaleKind, ScaleRequest, ScaleSource
from outsystems.spec import parse_spec
from services import scaling
from services.errors import ServiceError
from tests.unit.durable_fakes import FakeDurableClient, Instance

SUB = "11111111-2222-3333-4444-555555555555"
FOREIGN = "99999999-8888-7777-6666-555555555555"
SETTINGS = AppSettings.load({"AZURE_SUBSCRIPTION_ID": SUB, "PLATFORM_KEY_SEED": "seed"})
VMSS = (
    f"/subscriptions/{SUB}/resourceGroups/acme-rg/providers/"
    "Microsoft.Compute/virtualMachineScaleSets/acme-prod-vmss"
)
POLICY = ScalingPolicy(min_capacity=2, max_capacity=8)
NOW = datetime(2026, 11, 20, 9, 14, tzinfo=UTC)


class FakeScaleSets:
    """`services.ports.ScaleSetArm` from a dict; records what was read."""

    def __init__(self, *infos: ScaleSetInfo) -> None:
        self.infos = {info.id.lower(): info for info in infos}
        self.reads: list[str] = []

    def read_scale_set(self, scale_set_id: str) -> ScaleSetInfo:
        self.reads.append(scale_set_id)
        return self.infos.get(scale_set_id.lower()) or ScaleSetInfo(scale_set_id, exists=False)

    def list_scale_sets(self, subscription_id: str) -> list[ScaleSetInfo]:
        self.reads.append(subscription_id)
        return [i for i in self.infos.values() if f"/subscriptions/{subscription_id}/" in i.id]


def managed(capacity: int, policy: ScalingPolicy = POLICY, scale_set_id: str = VMSS) -> Any:
    return ScaleSetInfo(scale_set_id, True, True, "acme", capacity, policy_to_tags(policy))


def spec_json(body: dict[str, Any]) -> dict[str, Any]:
    return parse_spec("acme", json.dumps(body), default_subscription_id=SUB).to_json_dict()


FRONTENDS = {"capacity": 2, "minCapacity": 2, "maxCapacity": 8}
FARM = spec_json(
    {"location": "westeurope", "license": "own", "environments": {"prod": {"frontends": FRONTENDS}}}
)
STANDALONE = spec_json({"location": "westeurope", "environments": {"prod": {"mode": "standalone"}}})


def deployed(spec: dict[str, Any]) -> FakeDurableClient:
    request = {"operation": "deploy", "operationId": "op", "spec": spec}
    instance = Instance("Completed", None, request, {"status": "Succeeded"})
    return FakeDurableClient(instances={"platform-acme": instance})


def refusal(coroutine: Any) -> ServiceError:
    with pytest.raises(ServiceError) as raised:
        asyncio.run(coroutine)
    return raised.value


# --- scaling by hand ---------------------------------------------------------------------------


def test_a_manual_delta_is_stored_and_the_scaler_started() -> None:
    client, arm = deployed(FARM), FakeScaleSets(managed(3))
    accepted = asyncio.run(scaling.scale(client, arm, SETTINGS, "acme", "delta", 2))
    assert (accepted.scale_set, accepted.target) == (VMSS, 5)
    [(key, added)] = client.signalled("add")
    assert key == scale_set_key(VMSS)
    assert added["id"] == accepted.request_id
    request = added["request"]
    assert (request["kind"], request["amount"], request["source"]) == ("delta", 2, "manual")
    assert request["reason"] == "manual request: delta +2"
    assert client.starts == [scaler_instance_id(VMSS)]
    # The scaler starts with the settings' pace, as a ScalerRequest.
    assert client.instances[scaler_instance_id(VMSS)].input["scaleSet"] == VMSS


def test_a_capacity_outside_the_live_policy_is_refused() -> None:
    client = deployed(FARM)
    for wanted in (1, 9):
        arm = FakeScaleSets(managed(3))
        error = refusal(scaling.scale(client, arm, SETTINGS, "acme", "capacity", wanted))
        assert (error.kind, error.code) == ("invalid", "CapacityOutOfRange")
        assert "allowed range 2-8" in error.message
    assert client.signals == []


def test_the_ceiling_setting_is_named_when_it_caps_the_range() -> None:
    settings = AppSettings.load({"AZURE_SUBSCRIPTION_ID": SUB, "SCALING_MAX_CAPACITY": "4"})
    arm = FakeScaleSets(managed(3))
    error = refusal(scaling.scale(deployed(FARM), arm, settings, "acme", "capacity", 6))
    assert "allowed range 2-4" in error.message
    assert "SCALING_MAX_CAPACITY setting caps it at 4" in error.message


def test_scaling_needs_a_farm_whose_scale_set_is_the_apps() -> None:
    error = refusal(
        scaling.scale(FakeDurableClient(), FakeScaleSets(), SETTINGS, "acme", "delta", 1)
    )
    assert (error.kind, error.code) == ("not_found", "PlatformNotFound")
    error = refusal(
        scaling.scale(deployed(STANDALONE), FakeScaleSets(), SETTINGS, "acme", "delta", 1)
    )
    assert (error.kind, error.code) == ("invalid", "NotAFarm")
    foreign = ScaleSetInfo(VMSS, True, False, None, 2)
    error = refusal(
        scaling.scale(deployed(FARM), FakeScaleSets(foreign), SETTINGS, "acme", "delta", 1)
    )
    assert (error.kind, error.code) == ("conflict", "ScaleSetNotReady")
    assert "is not managed by this app" in error.message


def test_a_scale_set_outside_the_managed_subscriptions_is_never_read() -> None:
    arm = FakeScaleSets()
    info = scaling.read_live(arm, SETTINGS, VMSS.replace(SUB, FOREIGN))
    assert (info.exists, arm.reads) == (False, [])
    assert info.not_managed_reason is not None
    assert "which this app does not manage" in info.not_managed_reason


# --- the scaling view --------------------------------------------------------------------------


def test_the_view_shows_the_live_policy_and_the_pending_requests() -> None:
    client = deployed(FARM)
    live = ScalingPolicy(min_capacity=3, max_capacity=6)
    received = "2026-11-20T10:14:00+01:00"
    request = {"source": "alert", "sourceId": "a1", "kind": "out", "amount": None,
               "receivedAt": received, "rule": "cpu-high", "reason": "cpu high"}  # fmt: skip
    client.entity_states[scale_set_key(VMSS)] = {
        "pending": [{"id": "r1", "request": request, "deferred": False}],
        "cooldownUntil": "2026-11-20T09:30:00+00:00",
        "decisions": [{"requestId": "r0"}],
    }
    view = asyncio.run(scaling.view(client, FakeScaleSets(managed(4, live)), SETTINGS, "acme"))
    body = view.to_json()
    assert (body["capacity"], body["policy"]["minCapacity"], body["policy"]["maxCapacity"]) == (
        4,
        3,
        6,
    )
    assert body["cooldownUntil"] == "2026-11-20T09:30:00Z"
    assert body["pending"] == [{"requestId": "r1", "source": "alert", "sourceId": "a1",
        "kind": "out", "amount": None, "receivedAt": "2026-11-20T09:14:00Z",
        "reason": "cpu high", "count": 1, "alertIds": ["a1"]}]  # fmt: skip
    assert (body["decisions"], body["scaler"]) == ([{"requestId": "r0"}], None)
    assert body["heldBy"] is None
    assert "note" not in body


def test_the_view_says_which_upgrade_holds_the_scale_set() -> None:
    client = deployed(FARM)
    hold = {"holder": "platform-acme:upgrade-1", "reason": "upgrade to 11.33.0"}
    client.entity_states[scale_set_key(VMSS)] = {"pending": [], "heldBy": hold}
    view = asyncio.run(scaling.view(client, FakeScaleSets(managed(4)), SETTINGS, "acme"))
    assert view.to_json()["heldBy"] == hold


def test_the_view_of_a_missing_scale_set_shows_the_specs_policy_and_says_why() -> None:
    view = asyncio.run(scaling.view(deployed(FARM), FakeScaleSets(), SETTINGS, "acme"))
    body = view.to_json()
    assert (body["capacity"], body["pending"], body["cooldownUntil"]) == (None, [], None)
    assert (body["policy"]["minCapacity"], body["policy"]["maxCapacity"]) == (2, 8)
    assert body["note"] == "the scale set does not exist (yet)"


# --- the timer ---------------------------------------------------------------------------------


def test_the_timer_repairs_drift_once_per_decision() -> None:
    client = FakeDurableClient()
    arm = FakeScaleSets(managed(12))
    report = asyncio.run(scaling.enforce_all(client, arm, SETTINGS, NOW))
    assert (report.scale_sets, report.requested, report.kicked) == (1, 1, 0)
    [(_, added)] = client.signalled("add")
    assert (added["request"]["amount"], added["request"]["reason"]) == (
        8,
        "drift: 12 above maximum 8",
    )
    # The same decision again (a timer that runs twice) carries the same request id.
    asyncio.run(scaling.enforce_all(client, arm, SETTINGS, NOW))
    first, second = client.signalled("add")
    assert first[1]["id"] == second[1]["id"]


def test_the_timer_restarts_the_scaler_of_requests_that_wait_without_one() -> None:
    client = FakeDurableClient()
    waiting = ScaleRequest(ScaleKind.DELTA, 1, ScaleSource.MANUAL, "r1", NOW, None, "by hand")
    entry = {"id": "r1", "request": ScaleRequest.to_json(waiting), "deferred": False}
    client.entity_states[scale_set_key(VMSS)] = {"pending": [entry]}
    arm = FakeScaleSets(managed(4))
    report = asyncio.run(scaling.enforce_all(client, arm, SETTINGS, NOW))
    assert (report.requested, report.kicked) == (0, 1)
    assert client.starts == [scaler_instance_id(VMSS)]
    # With its scaler running there is nothing to do.
    report = asyncio.run(scaling.enforce_all(client, arm, SETTINGS, NOW))
    assert (report.requested, report.kicked) == (0, 0)
    assert client.starts == [scaler_instance_id(VMSS)]


def test_the_timer_leaves_alone_what_the_app_does_not_manage() -> None:
    client = FakeDurableClient()
    unmanaged = ScaleSetInfo(VMSS, True, False, None, 1)
    arm = FakeScaleSets(unmanaged, managed(1, scale_set_id=VMSS.replace(SUB, FOREIGN)))
    report = asyncio.run(scaling.enforce_all(client, arm, SETTINGS, NOW))
    assert (report.scale_sets, report.requested, report.kicked) == (0, 0, 0)
    assert arm.reads == [SUB], "only the managed subscriptions are listed"
    assert (client.signals, client.starts) == ([], [])


# --- Issue 17: a hold whose upgrade no longer runs ------------------------------------------------

HOLD = {"holder": "op-upgrade", "reason": "upgrade to 11.33.0"}


def upgrading(runtime_status: str) -> FakeDurableClient:
    request = {"operation": "upgrade", "operationId": "op-upgrade", "spec": FARM,
               "previous": FARM, "order": ["dev", "test", "prod"]}  # fmt: skip
    instance = Instance(runtime_status, None, request)
    return FakeDurableClient(instances={"platform-acme": instance})


def test_the_timer_keeps_the_hold_of_the_running_upgrade() -> None:
    client = upgrading("Running")
    client.entity_states[scale_set_key(VMSS)] = {"pending": [], "heldBy": HOLD}
    report = asyncio.run(scaling.enforce_all(client, FakeScaleSets(managed(2)), SETTINGS, NOW))
    assert (report.released, client.signalled("release")) == (0, [])


@pytest.mark.parametrize("runtime_status", ["Terminated", "Failed", "Completed"])
def test_the_timer_releases_the_hold_of_an_upgrade_that_no_longer_runs(
    runtime_status: str,
) -> None:
    """A canceled upgrade (terminated) never sends its release: the timer does, once it sees
    the holder is not the platform's running operation, and starts the scaler of what waits."""
    client = upgrading(runtime_status)
    waiting = ScaleRequest(ScaleKind.DELTA, 1, ScaleSource.MANUAL, "r1", NOW, None, "by hand")
    entry = {"id": "r1", "request": ScaleRequest.to_json(waiting), "deferred": True}
    client.entity_states[scale_set_key(VMSS)] = {"pending": [entry], "heldBy": HOLD}
    report = asyncio.run(scaling.enforce_all(client, FakeScaleSets(managed(2)), SETTINGS, NOW))
    assert report.released == 1
    assert client.signalled("release") == [(scale_set_key(VMSS), HOLD)]
    assert client.starts == [scaler_instance_id(VMSS)]


def test_the_timer_releases_a_hold_whose_holder_is_another_operation() -> None:
    client = deployed(FARM)
    client.entity_states[scale_set_key(VMSS)] = {"pending": [], "heldBy": HOLD}
    asyncio.run(scaling.enforce_all(client, FakeScaleSets(managed(2)), SETTINGS, NOW))
    assert client.signalled("release") == [(scale_set_key(VMSS), HOLD)]
    assert client.starts == []

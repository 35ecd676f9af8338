"""The simulator's engine without HTTP: clock, latency table, throttling, faults, rules."""

from __future__ import annotations

import json
from typing import Any

import pytest

from localdev.armsim.bodies import merge_patch
from localdev.armsim.config import SimConfig
from localdev.armsim.engine import Engine
from localdev.armsim.errors import ArmError
from localdev.armsim.faults import FaultInjector
from localdev.armsim.latency import operation_seconds
from localdev.armsim.messages import SimRequest
from localdev.armsim.paths import parse_route
from localdev.armsim.store import Store
from localdev.armsim.throttling import Throttler
from localdev.armsim.validation import check_admin_password, check_admin_username, vcpus_of

SUB = "/subscriptions/s1"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def _send(
    engine: Engine, method: str, path: str, body: Any = None, version: str = "2026-01-01"
) -> Any:
    request = SimRequest(
        method,
        path,
        {"api-version": version},
        json.dumps(body).encode() if body is not None else b"",
        "http://127.0.0.1:1",
    )
    return engine.handle(request)


def test_an_operation_completes_exactly_at_its_scaled_duration():
    clock = FakeClock()
    engine = Engine(SimConfig(latency_scale=0.5), clock=clock)
    assert (
        _send(engine, "PUT", f"{SUB}/resourcegroups/rg", {"location": "westeurope"}).status == 201
    )
    vnet = f"{SUB}/resourceGroups/rg/providers/Microsoft.Network/virtualNetworks/v"
    body = {
        "location": "westeurope",
        "properties": {"addressSpace": {"addressPrefixes": ["10.0.0.0/16"]}},
    }
    response = _send(engine, "PUT", vnet, body)
    assert response.status == 201
    assert response.body["properties"]["provisioningState"] == "Creating"
    assert "Retry-After" in response.headers  # 5 s left: the client is told to wait
    clock.now += 4.99
    assert _send(engine, "GET", vnet).body["properties"]["provisioningState"] == "Creating"
    clock.now += 0.01
    assert _send(engine, "GET", vnet).body["properties"]["provisioningState"] == "Succeeded"


def test_latency_table_scale_set_includes_profile_extensions():
    body = {
        "sku": {"capacity": 2},
        "properties": {
            "virtualMachineProfile": {
                "extensionProfile": {
                    "extensions": [{"name": "s", "properties": {"type": "CustomScriptExtension"}}]
                }
            }
        },
    }
    scale_set = "Microsoft.Compute/virtualMachineScaleSets"
    assert operation_seconds(scale_set, "create", body) == 240 + 1200
    assert (
        operation_seconds(scale_set, "update", {**body, "sku": {"capacity": 4}}, body) == 150 + 1200
    )
    assert operation_seconds(scale_set, "update", {**body, "sku": {"capacity": 1}}, body) == 60
    assert operation_seconds("Microsoft.Insights/actionGroups", "create", {}) == 0
    assert operation_seconds("Microsoft.Network/applicationGateways", "create", {}) == 1200


def test_token_bucket_refills_and_reports_retry_after():
    clock = FakeClock()
    config = SimConfig()
    config.writes.capacity, config.writes.refill_per_second = 2, 0.5
    throttler = Throttler(config, clock)
    assert [throttler.take("s", "writes").allowed for _ in range(3)] == [True, True, False]
    denied = throttler.take("s", "writes")
    assert (denied.allowed, denied.retry_after) == (False, 2)
    assert throttler.take("other", "writes").allowed
    clock.now += 2
    assert throttler.take("s", "writes").allowed
    config.throttling = False
    assert all(throttler.take("s", "writes").allowed for _ in range(10))


def test_fault_decisions_do_not_depend_on_interleaving():
    paths = [f"/subscriptions/s/p{i}" for i in range(30)]
    sequential = FaultInjector(SimConfig(fault_rate=0.4, seed=5))
    expected = {
        (p, n): sequential.decide("PUT", p, operation_capable=True) for p in paths for n in range(3)
    }
    interleaved = FaultInjector(SimConfig(fault_rate=0.4, seed=5))
    got = {
        (p, n): interleaved.decide("PUT", p, operation_capable=True)
        for n in range(3)
        for p in reversed(paths)
    }
    assert got == expected
    assert any(expected.values())
    assert not all(expected.values())
    other_seed = FaultInjector(SimConfig(fault_rate=0.4, seed=6))
    assert {
        (p, n): other_seed.decide("PUT", p, operation_capable=True) for p in paths for n in range(3)
    } != expected


def test_merge_patch_replaces_tags_and_merges_objects():
    target: dict[str, Any] = {
        "tags": {"a": "1", "b": "2"},
        "sku": {"name": "x", "capacity": 2},
        "properties": {"p": 1, "q": 2},
    }
    patched = merge_patch(
        target, {"tags": {"c": "3"}, "sku": {"capacity": 5}, "properties": {"q": None}}
    )
    assert patched == {
        "tags": {"c": "3"},
        "sku": {"name": "x", "capacity": 5},
        "properties": {"p": 1},
    }
    assert target["sku"]["capacity"] == 2


@pytest.mark.parametrize(
    ("size", "vcpus"),
    [
        ("Standard_F4s_v2", 4),
        ("Standard_D2s_v3", 2),
        ("Standard_DS3_v2", 4),
        ("Standard_E8-4s_v3", 8),
        ("Standard_M128ms", 128),
        ("Basic_A0", 1),
    ],
)
def test_vcpus_from_size_names(size: str, vcpus: int):
    assert vcpus_of(size) == vcpus


def test_credential_rules():
    check_admin_username("osadmin", windows=True)
    check_admin_password("Abcdefg1", windows=True)
    for name in ("Administrator", "root", "x" * 21, "bad@name", "ends."):
        with pytest.raises(ArmError):
            check_admin_username(name, windows=True)
    for password in ("abcdefgh", "Abcdefgh", "Ab1!", "P@ssw0rd", "x" * 124 + "A1"):
        with pytest.raises(ArmError) as caught:
            check_admin_password(password, windows=True)
        assert caught.value.target == "adminPassword"


def test_routes():
    route = parse_route(
        "/subscriptions/S/resourcegroups/RG/providers/Microsoft.Compute/virtualMachineScaleSets/ss/virtualMachines"
    )
    assert route is not None
    assert route.kind == "collection"
    assert route.path is not None
    assert route.path.full_type == "Microsoft.Compute/virtualMachineScaleSets/virtualMachines"
    assert route.path.parent is not None
    assert route.path.parent.id.endswith("/virtualMachineScaleSets/ss")
    status = parse_route(
        "/subscriptions/S/providers/Microsoft.Network/locations/westeurope/operations/abc"
    )
    assert status is not None
    assert (status.kind, status.operation_id) == ("operation_status", "abc")
    assert parse_route("/subscriptions/S/resourcegroups")
    assert parse_route("/nothing/here") is None


def test_snapshot_round_trip_keeps_resources_and_counts():
    clock = FakeClock()
    engine = Engine(SimConfig(latency_scale=0), clock=clock)
    _send(engine, "PUT", f"{SUB}/resourcegroups/rg", {"location": "westeurope", "tags": {"k": "v"}})
    restored = Store()
    restored.restore(json.loads(json.dumps(engine.store.snapshot())))
    assert restored.get(f"{SUB}/resourceGroups/RG") is not None
    assert restored.creation_count(f"{SUB}/resourcegroups/rg") == 1
    with pytest.raises(ValueError, match="version"):
        restored.restore({"version": 99})


def test_unknown_types_are_accepted_synchronously_and_secrets_are_never_echoed():
    engine = Engine(SimConfig(latency_scale=1), clock=FakeClock())
    _send(engine, "PUT", f"{SUB}/resourcegroups/rg", {"location": "westeurope"})
    group = f"{SUB}/resourceGroups/rg/providers/Microsoft.Insights/actionGroups/ag"
    body = {
        "location": "global",
        "properties": {
            "webhookReceivers": [{"name": "w", "serviceUri": "https://x"}],
            "adminPassword": "nope",
        },
    }
    response = _send(engine, "PUT", group, body)
    assert response.status == 201
    assert response.body["properties"]["provisioningState"] == "Succeeded"
    assert "adminPassword" not in json.dumps(response.body)
    assert _send(engine, "PUT", group, body).status == 200
    assert _send(engine, "DELETE", group).status == 200
    assert _send(engine, "DELETE", group).status == 204


def test_readme_latency_table_mirrors_latency_py():
    from pathlib import Path

    from localdev.armsim.latency import LATENCY_SECONDS

    readme = Path(__file__).resolve().parents[2] / "localdev" / "armsim" / "README.md"
    rows = {}
    sources = {}
    for line in readme.read_text(encoding="utf-8").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 5 and cells[0].count("/") >= 1 and cells[1].isdigit():
            rows[cells[0].lower()] = tuple(float(c) for c in cells[1:4])
            sources[cells[0].lower()] = cells[4]
    table = {k: (t.create, t.update, t.delete) for k, t in LATENCY_SECONDS.items()}
    assert rows == table
    # Every duration says where it comes from: a Microsoft page, or that none publishes it.
    assert all(sources.values()), sources


def test_action_durations_add_the_rebuilt_instances_extensions():
    from localdev.armsim.latency import action_seconds

    profile = {
        "extensionProfile": {"extensions": [{"properties": {"type": "CustomScriptExtension"}}]}
    }
    scale_set = "Microsoft.Compute/virtualMachineScaleSets"
    assert action_seconds(scale_set, "manualUpgrade", profile) == 120 + 1200
    assert action_seconds(scale_set, "reimage", profile) == 180 + 1200
    assert action_seconds(scale_set, "delete", profile) == 60
    assert action_seconds("Microsoft.Network/applicationGateways", "backendhealth") == 10

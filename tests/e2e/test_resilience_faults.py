"""Deployments and scaling complete while a seeded 10% of ARM requests fail transiently.

The app runs on the local host against the ARM simulator with fault injection on (500, 503,
429 and long-running operations that end `Failed` with `RetryableError`, decided by a hash of
the seed, the request and its attempt number, so a failing seed fails the same way again).
Every scaling path is exercised under those faults: the scaling timer (schedule floor), alerts
(out and in), manual requests (capacity and delta) and an alert storm. What ARM saw comes from
the simulator's request log: nothing is created twice, and the scale set gets exactly one
successful capacity PATCH per decision the app reports as applied.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests

from localdev.armsim.config import SimConfig
from localdev.armsim.faults import FaultInjector
from localdev.armsim.server import SimulatorServer
from outsystems.resource_types import SCALE_SET
from tests.e2e.scaling_support import (
    SCALE_SET_ID,
    SOLUTION,
    alert,
    farm_spec,
    post_alert,
    scale_events,
    scaler_idle,
    scaling,
    wait_for,
    window_around_now,
)
from tests.e2e.test_deploy_resilience import assert_all_succeeded, assert_created_once
from tests.support.stack import Stack

FAULT_RATE = 0.1
HIGH_ALERT_ID = alert("high")["data"]["essentials"]["alertId"]
SCALE_SET_PATH = SCALE_SET_ID.lower()


def faulty(sim: SimulatorServer, seed: int) -> None:
    """Turn on the seeded faults, with a little latency so that operations are polled too."""
    sim.configure(
        {"faultRate": FAULT_RATE, "seed": seed, "faultRetryAfter": 0, "latencyScale": 0.0002}
    )


def settled(stack: Stack) -> dict[str, Any]:
    """The scaling view once the scaler has nothing left to do."""
    wait_for(lambda: scaler_idle(stack), what="the scaler to finish", timeout=60)
    return scaling(stack)


def capacity(sim: SimulatorServer) -> int:
    """The scale set's live capacity, read through the simulator's admin API: a read through
    ARM would meet the injected faults and use up the attempts the app's requests are decided
    by."""
    [scale_set] = [r for r in sim.resources(SCALE_SET) if r["id"].lower() == SCALE_SET_PATH]
    return int(scale_set["body"]["sku"]["capacity"])


def capacity_patches(sim: SimulatorServer, since: int = 0) -> list[dict[str, Any]]:
    """The capacity PATCHes ARM received for the front-end scale set, faulted ones included."""
    return [
        r for r in sim.requests()[since:] if r["method"] == "PATCH" and r["path"] == SCALE_SET_PATH
    ]


def applied_patches(sim: SimulatorServer, since: int = 0) -> list[dict[str, Any]]:
    """The capacity PATCHes that changed something: answered 2xx, operation not failed."""
    return [
        r
        for r in capacity_patches(sim, since)
        if r["status"] < 300
        and r["fault"] is None
        and (r.get("operation") or {}).get("status", "Succeeded") == "Succeeded"
    ]


def step(stack: Stack, action: Callable[[], requests.Response], expected: int) -> None:
    """Do one scaling action, wait for the capacity it must reach and for the scaler to rest."""
    response = action()
    assert response.status_code in (200, 202), response.text
    wait_for(lambda: capacity(stack.sim) == expected, what=f"capacity {expected}", timeout=60)
    settled(stack)


def assert_faults_were_seeded(sim: SimulatorServer, seed: int, until: int) -> None:
    """The faults of the first `until` requests are exactly those the seed decides, so a failure
    of this test is reproduced by running it again with the same seed."""
    injector = FaultInjector(SimConfig(fault_rate=FAULT_RATE, seed=seed))
    for request in sorted(sim.requests()[:until], key=lambda r: r["seq"]):
        # Every request counts as an attempt of its path, throttled ones too (the fault is
        # decided first), but a throttled answer records no fault.
        expected = injector.decide(request["method"], request["path"], operation_capable=True)
        if request["throttled"]:
            continue
        seen = request["fault"]
        # Where no operation is started, the simulator turns `operation-failed` into a 503.
        assert seen == expected or (expected, seen) == ("operation-failed", "503"), (
            request,
            expected,
        )


@pytest.mark.parametrize("seed", [21, 22])
def test_deployment_and_every_kind_of_scaling_complete_under_ten_percent_faults(
    stack: Stack, seed: int
) -> None:
    faulty(stack.sim, seed)
    spec = farm_spec(cooldownMinutes=0, schedules=[window_around_now(3)])
    assert stack.deploy(SOLUTION, spec).status_code == 202
    state = stack.wait(SOLUTION, 180)
    assert_all_succeeded(state)
    assert_created_once(stack.sim, spec)
    deployed = len(stack.sim.requests())
    faults = Counter(r["fault"] for r in stack.sim.requests() if r["fault"])
    assert sum(faults.values()) >= 10, faults
    assert_faults_were_seeded(stack.sim, seed, deployed)
    assert capacity(stack.sim) == 2
    stack.events()

    # Besides the random 10%, each scaling path meets one fault of its own for sure.
    sim = stack.sim
    sim.add_fault_rule("GET", "/acme-prod-vmss", "503", 1)
    step(stack, lambda: fire_timer_response(stack), 3)
    sim.add_fault_rule("PATCH", "/acme-prod-vmss", "500", 1)
    step(stack, lambda: post_alert(stack, alert("high")), 5)
    sim.add_fault_rule("PATCH", "/acme-prod-vmss", "operation-failed", 1)
    step(
        stack,
        lambda: stack.api("POST", f"platforms/{SOLUTION}/scale", json={"capacity": 7}),
        7,
    )
    sim.add_fault_rule("PATCH", "/acme-prod-vmss", "429", 1)
    step(stack, lambda: post_alert(stack, alert("low")), 6)
    sim.add_fault_rule("GET", "/acme-prod-vmss", "500", 2)
    step(stack, lambda: stack.api("POST", f"platforms/{SOLUTION}/scale", json={"delta": -2}), 4)

    view = scaling(stack)
    assert [(d["source"], d["outcome"], d["from"], d["to"]) for d in view["decisions"]] == [
        ("timer", "applied", 2, 3),
        ("alert", "applied", 3, 5),
        ("manual", "applied", 5, 7),
        ("alert", "applied", 7, 6),
        ("manual", "applied", 6, 4),
    ]
    assert view["capacity"] == 4
    assert not view["pending"]
    patches = capacity_patches(sim, deployed)
    assert {r["fault"] for r in patches} >= {"500", "operation-failed", "429"}, patches
    assert [r["path"] for r in applied_patches(sim, deployed)] == [SCALE_SET_PATH] * 5
    events = scale_events(stack)
    assert [(e["type"], e["data"]["to"]) for e in events] == [
        ("outsystems.scale.applied", 3),
        ("outsystems.scale.applied", 5),
        ("outsystems.scale.applied", 7),
        ("outsystems.scale.applied", 6),
        ("outsystems.scale.applied", 4),
    ]
    # Scaling only ever PATCHes: nothing is created again, not even under faults.
    assert not [r for r in sim.requests()[deployed:] if r["method"] in ("PUT", "DELETE")]
    assert_created_once(sim, spec)


def fire_timer_response(stack: Stack) -> requests.Response:
    return requests.post(f"{stack.base}/admin/functions/enforce_scaling_schedules", timeout=10)


def test_an_alert_storm_under_faults_is_answered_and_changes_the_capacity_once(
    stack: Stack,
) -> None:
    faulty(stack.sim, 31)
    spec = farm_spec()
    assert stack.deploy(SOLUTION, spec).status_code == 202
    assert_all_succeeded(stack.wait(SOLUTION, 180))
    deployed = len(stack.sim.requests())
    stack.events()
    count = 60
    bodies = [alert("high", alertId=f"{HIGH_ALERT_ID}-storm{i:03d}") for i in range(count)]

    def post(body: dict[str, Any]) -> int:
        return requests.post(f"{stack.base}/api/alerts", json=body, timeout=30).status_code

    stack.sim.add_fault_rule("PATCH", "/acme-prod-vmss", "503", 1)
    with ThreadPoolExecutor(max_workers=16) as pool:
        statuses = list(pool.map(post, bodies))

    assert statuses == [202] * count
    wait_for(lambda: capacity(stack.sim) == 4, what="the one scale out", timeout=60)
    events: list[dict[str, Any]] = []

    def accounted() -> bool:
        events.extend(scale_events(stack))
        return bool(sum(e["data"]["requests"] for e in events) >= count)

    wait_for(accounted, what="every request to be in an event", timeout=60)
    applied = [e for e in events if e["type"] == "outsystems.scale.applied"]
    assert [(e["data"]["from"], e["data"]["to"]) for e in applied] == [(2, 4)]
    assert sum(e["data"]["requests"] for e in events) == count
    time.sleep(0.5)
    assert capacity(stack.sim) == 4
    assert len(applied_patches(stack.sim, deployed)) == 1
    assert any(r["fault"] for r in capacity_patches(stack.sim, deployed))
    assert_created_once(stack.sim, spec)

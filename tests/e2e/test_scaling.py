"""Scaling the production front-ends of a deployed farm: alerts, the timer, manual requests.

The whole app runs on the local host against the ARM simulator and Azurite; alerts are the
samples of `examples/`, capacities are read from the simulator, decisions from the API and the
events queue.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import requests

from localdev.armsim.server import SimulatorServer
from outsystems.resource_types import ACTION_GROUP, METRIC_ALERT
from tests.e2e.scaling_support import (
    HIGH_ALERT_ID,
    SCALE_SET_API,
    SCALE_SET_ID,
    SOLUTION,
    alert,
    arm,
    capacity,
    capacity_writes,
    copy_of_the_farm_scale_set,
    deploy_farm,
    example,
    farm_spec,
    live_scale_set,
    post_alert,
    scale_events,
    scaler_idle,
    scaling,
    set_capacity_behind_the_app,
    untagged_scale_set,
    wait_for,
    window_around_now,
)
from tests.support.azurite import Azurite
from tests.support.quiet import quiet_point, run_timer, scaler_asleep, scaler_finished
from tests.support.stack import SECRETS, Stack, running_stack


def settled(stack: Stack) -> dict[str, Any]:
    """The scaling view once the scaler has nothing left to do."""
    wait_for(lambda: scaler_idle(stack), what="the scaler to finish")
    return scaling(stack)


def fire_timer(stack: Stack) -> None:
    response = requests.post(f"{stack.base}/admin/functions/enforce_scaling_schedules", timeout=10)
    assert response.status_code == 202, response.text


def timer_listings(sim: SimulatorServer, since: int) -> int:
    """How many times the scaling timer listed the subscription's scale sets after `since`
    (each of its runs does, once; nothing else of the app lists them)."""
    return sum(
        1
        for r in sim.requests(since)
        if r["method"] == "GET"
        and r["path"].lower().endswith("/providers/microsoft.compute/virtualmachinescalesets")
    )


def test_sample_alerts_scale_out_by_step_in_by_step_and_resolved_changes_nothing(
    stack: Stack,
) -> None:
    deploy_farm(stack, farm_spec(cooldownMinutes=0))
    stack.events()

    high = post_alert(stack, alert("high"))
    assert high.status_code == 202, high.text
    [accepted] = high.json()["accepted"]
    assert accepted["scaleSet"].lower() == SCALE_SET_ID.lower()
    assert accepted["direction"] == "out"
    wait_for(lambda: capacity(stack.sim) == 4, what="scale out by scaleOutStep 2")

    low = post_alert(stack, alert("low"))
    assert low.status_code == 202, low.text
    assert low.json()["accepted"][0]["direction"] == "in"
    wait_for(lambda: capacity(stack.sim) == 3, what="scale in by scaleInStep 1")
    settled(stack)
    writes = len(capacity_writes(stack.sim))

    resolved = post_alert(stack, alert("resolved"))
    assert resolved.status_code == 200, resolved.text
    assert "resolved" in resolved.json()["ignored"]
    quiet_point(stack, scaler_finished(SCALE_SET_ID))
    assert capacity(stack.sim) == 3
    assert len(capacity_writes(stack.sim)) == writes

    view = settled(stack)
    assert [
        (d["source"], d["direction"], d["from"], d["to"], d["outcome"]) for d in view["decisions"]
    ] == [("alert", "out", 2, 4, "applied"), ("alert", "in", 4, 3, "applied")]
    assert view["decisions"][0]["sourceId"] == HIGH_ALERT_ID
    assert view["decisions"][0]["reason"] == "Percentage CPU 86.4 > 70"
    assert view["decisions"][1]["reason"] == "Percentage CPU 11.7 < 25"
    events = scale_events(stack)
    assert [(e["type"], e["subject"], e["data"]["to"]) for e in events] == [
        ("outsystems.scale.applied", "acme/prod", 4),
        ("outsystems.scale.applied", "acme/prod", 3),
    ]


def test_capacity_never_leaves_the_bounds(stack: Stack) -> None:
    deploy_farm(stack, farm_spec(cooldownMinutes=0, capacity=6))
    outcomes = []
    for index in range(3):
        body = alert("high", alertId=f"{HIGH_ALERT_ID}-up{index}")
        assert post_alert(stack, body).status_code == 202
        outcomes.append(settled(stack)["decisions"][-1])
    assert capacity(stack.sim) == 8
    assert [(d["from"], d["to"], d["outcome"]) for d in outcomes] == [
        (6, 8, "applied"),
        (8, 8, "skipped"),
        (8, 8, "skipped"),
    ]
    assert outcomes[1]["reason"] == "already at maximum (8)"

    set_capacity_behind_the_app(stack.sim, 3)
    for index in range(2):
        body = alert("low", alertId=f"{HIGH_ALERT_ID}-down{index}")
        assert post_alert(stack, body).status_code == 202
        settled(stack)
    assert capacity(stack.sim) == 2
    last = scaling(stack)["decisions"][-1]
    assert (last["outcome"], last["reason"]) == ("skipped", "already at minimum (2)")


def duplicate_wake_warnings(recorded: pytest.WarningsRecorder) -> list[str]:
    """The Durable SDK's warning for events nothing waits for (issue 14.11)."""
    return [
        str(w.message) for w in recorded if "Potential duplicate Task completion" in str(w.message)
    ]


def test_an_alert_storm_changes_the_capacity_once(
    stack: Stack, recwarn: pytest.WarningsRecorder
) -> None:
    deploy_farm(stack)
    stack.events()
    count = 200
    bodies = [alert("high", alertId=f"{HIGH_ALERT_ID}-storm{i:03d}") for i in range(count)]

    def post(body: dict[str, Any]) -> tuple[int, float]:
        started = time.monotonic()
        response = requests.post(f"{stack.base}/api/alerts", json=body, timeout=30)
        return response.status_code, time.monotonic() - started

    with ThreadPoolExecutor(max_workers=32) as pool:
        answers = list(pool.map(post, bodies))

    assert [status for status, _ in answers] == [202] * count
    latencies = sorted(seconds for _, seconds in answers)
    median, slowest = latencies[count // 2], latencies[-1]
    # Informative only: answer times are measured by `bench/alert_storm.py`, never asserted.
    print(f"\n200 concurrent alerts: median {median:.3f}s, slowest {slowest:.3f}s")
    wait_for(lambda: capacity(stack.sim) == 4, what="the one scale out")
    events: list[dict[str, Any]] = []

    def accounted() -> bool:
        # The alerts of one rule and direction wait as one pending request with a count
        # (issue 16): every alert is in the applied change or in that count, once it is
        # announced as waiting for the cooldown.
        events.extend(scale_events(stack))
        applied = sum(
            e["data"]["requests"] for e in events if e["type"] == "outsystems.scale.applied"
        )
        pending = scaling(stack)["pending"]
        announced = bool(pending) == any(e["type"] == "outsystems.scale.skipped" for e in events)
        return bool(applied and announced and applied + pending_count(stack) == count)

    wait_for(accounted, what="every request to be decided or kept", timeout=60)
    applied = [e for e in events if e["type"] == "outsystems.scale.applied"]
    skipped = [e for e in events if e["type"] == "outsystems.scale.skipped"]
    assert len(applied) == 1
    assert (applied[0]["data"]["from"], applied[0]["data"]["to"]) == (2, 4)
    assert all(e["data"]["reason"].startswith("cooldown until ") for e in skipped)
    assert len(capacity_writes(stack.sim)) == 1
    assert capacity(stack.sim) == 4
    # Whatever arrived after the change waits for the cooldown (10 minutes), kept, not lost:
    # as one pending request of the rule, with their count.
    view = scaling(stack)
    assert pending_count(stack) == count - applied[0]["data"]["requests"]
    assert len(view["pending"]) <= 1
    assert view["cooldownUntil"] is not None
    # No request raised an event the scaler did not wait for.
    assert duplicate_wake_warnings(recwarn) == []


def pending_count(stack: Stack) -> int:
    return sum(int(p["count"]) for p in scaling(stack)["pending"])


@pytest.fixture
def fast_cooldown(sim: SimulatorServer, azurite: Azurite) -> Iterator[Stack]:
    """The app with cooldowns shrunk 150 times: the sample's 10 minutes last 4 seconds."""
    azurite.drain("platform-events")
    with running_stack(sim, azurite, SCALING_COOLDOWN_SCALE=str(4 / 600)) as running:
        yield running


def test_cooldown_holds_a_second_alert_until_it_ends_then_applies_it_once(
    fast_cooldown: Stack,
) -> None:
    stack = fast_cooldown
    deploy_farm(stack)
    assert post_alert(stack, alert("high")).status_code == 202
    wait_for(lambda: capacity(stack.sim) == 4, what="first scale out")
    first_change = time.monotonic()

    second = alert("high", alertId=f"{HIGH_ALERT_ID}-second")
    assert post_alert(stack, second).status_code == 202

    def deferred() -> dict[str, Any] | None:
        # The first change's decision is recorded once its PATCH has ended: the capacity can
        # read 4 before the view lists any decision.
        view = scaling(stack)
        decisions = view["decisions"]
        return view if decisions and decisions[-1]["sourceId"].endswith("second") else None

    view = wait_for(deferred, what="the second alert's cooldown notice")
    assert view is not None
    assert [p["sourceId"] for p in view["pending"]] == [second["data"]["essentials"]["alertId"]]
    assert view["decisions"][-1]["outcome"] == "skipped"
    assert view["decisions"][-1]["reason"].startswith("cooldown until ")
    quiet_point(stack, scaler_asleep(SCALE_SET_ID))
    assert capacity(stack.sim) == 4, "no change inside the cooldown"

    wait_for(lambda: capacity(stack.sim) == 6, what="the second alert after the cooldown")
    assert time.monotonic() - first_change > 3
    final = settled(stack)
    assert capacity(stack.sim) == 6
    assert len(capacity_writes(stack.sim)) == 2
    applied = [d for d in final["decisions"] if d["outcome"] == "applied"]
    assert [(d["from"], d["to"]) for d in applied] == [(2, 4), (4, 6)]


def test_a_resolved_alert_withdraws_the_pending_request_of_the_alert_it_resolves(
    fast_cooldown: Stack,
) -> None:
    """Fired and Resolved share alertId: a Resolved withdraws that alert's request only, not
    those of other alerts of its rule (issue 13.3: a forged Resolved withdrew them all)."""
    stack = fast_cooldown
    deploy_farm(stack)
    assert post_alert(stack, alert("high")).status_code == 202
    wait_for(lambda: capacity(stack.sim) == 4, what="first scale out")
    second_id = f"{HIGH_ALERT_ID}-to-withdraw"
    assert post_alert(stack, alert("high", alertId=second_id)).status_code == 202
    wait_for(lambda: scaling(stack)["pending"], what="the second alert kept")

    # The first alert resolving (or anyone posting a Resolved of another alert of the rule)
    # leaves the second one pending.
    first = post_alert(stack, alert("resolved"))
    assert first.status_code == 200, first.text
    assert [p["sourceId"] for p in scaling(stack)["pending"]] == [second_id]

    resolved = post_alert(stack, alert("resolved", alertId=second_id))
    assert resolved.status_code == 200
    assert "acme-prod-vmss are withdrawn" in resolved.json()["ignored"]

    reason = "withdrawn: alert acme-prod-frontends-cpu-high resolved before the request was decided"

    def withdrawn() -> dict[str, Any] | None:
        # The scaler's cooldown notice for the same request may be recorded after the withdrawal.
        view = scaling(stack)
        reasons = [d["reason"] for d in view["decisions"]]
        return None if view["pending"] or reason not in reasons else view

    view = wait_for(withdrawn, what="the pending request withdrawn")
    assert view is not None
    quiet_point(stack, scaler_finished(SCALE_SET_ID))
    assert capacity(stack.sim) == 4, "the withdrawn request never applies"
    assert len(capacity_writes(stack.sim)) == 1


def test_a_throttled_arm_read_is_answered_with_a_retry_not_accepted_unchecked(
    stack: Stack,
) -> None:
    """ARM's 429 on the scale set's read says nothing about the scale set: the webhook answers
    503 with Retry-After (Azure Monitor retries 408/429/503/504: azure-monitor-docs,
    articles/azure-monitor/alerts/action-groups.md at 0fbb3c9e, "Webhook retry behavior"),
    stores nothing, and the retry is accepted."""
    from orchestrators.scale_requests import ENTITY_NAME, scale_set_key
    from services.azure import managed_scale_sets

    deploy_farm(stack)
    managed_scale_sets(stack.sim.url).clear()
    stack.sim.add_fault_rule("GET", "acme-prod-vmss", "429", count=1)
    assert stack.host.host is not None
    store = stack.host.host.store
    assert store is not None
    entity = f"@{ENTITY_NAME}@{scale_set_key(SCALE_SET_ID)}"
    body = alert("high")
    response = post_alert(stack, body)
    assert response.status_code == 503, response.text
    assert int(response.headers["Retry-After"]) > 0
    assert response.json()["error"]["code"] == "TargetUnchecked"
    # A signal is stored before the client's call returns: nothing was.
    assert (store.entities_with_ops(), store.entity_exists(entity)) == ([], False)
    statuses = [r["status"] for r in stack.sim.requests() if r["path"].endswith("acme-prod-vmss")]
    assert 429 in statuses

    retried = post_alert(stack, body)
    assert retried.status_code == 202, retried.text
    wait_for(lambda: capacity(stack.sim) == 4, what="the scale out")


def test_a_host_restart_during_the_cooldown_loses_no_pending_request(
    sim: SimulatorServer, azurite: Azurite, tmp_path: Path
) -> None:
    hub = str(tmp_path / "hub.sqlite")
    scale = str(5 / 600)
    with running_stack(sim, azurite, hub_path=hub, SCALING_COOLDOWN_SCALE=scale) as stack:
        deploy_farm(stack)
        assert post_alert(stack, alert("high")).status_code == 202
        wait_for(lambda: capacity(stack.sim) == 4, what="first scale out")
        second = alert("high", alertId=f"{HIGH_ALERT_ID}-before-restart")
        assert post_alert(stack, second).status_code == 202
        wait_for(lambda: scaling(stack)["pending"], what="the second alert stored")
    assert capacity(sim) == 4

    with running_stack(sim, azurite, hub_path=hub, SCALING_COOLDOWN_SCALE=scale) as stack:
        assert [p["sourceId"] for p in scaling(stack)["pending"]] == [
            f"{HIGH_ALERT_ID}-before-restart"
        ]
        wait_for(lambda: capacity(stack.sim) == 6, what="the kept request after the restart")
        final = settled(stack)
    assert [(d["from"], d["to"]) for d in final["decisions"] if d["outcome"] == "applied"] == [
        (2, 4),
        (4, 6),
    ]


def test_timer_raises_capacity_to_the_schedule_floor_and_repairs_drift(stack: Stack) -> None:
    deploy_farm(stack, farm_spec(schedules=[window_around_now(5)]))
    assert capacity(stack.sim) == 2
    stack.events()

    fire_timer(stack)
    wait_for(lambda: capacity(stack.sim) == 5, what="the schedule floor")
    view = settled(stack)
    floor = view["decisions"][-1]
    assert (floor["source"], floor["outcome"], floor["from"], floor["to"]) == (
        "timer",
        "applied",
        2,
        5,
    )
    assert floor["reason"].startswith("schedule floor 5 (Mon-Sun ")

    set_capacity_behind_the_app(stack.sim, 12)
    fire_timer(stack)
    wait_for(lambda: capacity(stack.sim) == 8, what="drift above the maximum repaired")
    repair = settled(stack)["decisions"][-1]
    assert (repair["source"], repair["reason"]) == ("timer", "drift: 12 above maximum 8")

    writes = len(capacity_writes(stack.sim))
    run_timer(stack, "enforce_scaling_schedules")
    quiet_point(stack, scaler_finished(SCALE_SET_ID))
    assert len(capacity_writes(stack.sim)) == writes, "nothing to repair: no change"
    types = [e["type"] for e in scale_events(stack)]
    assert types == ["outsystems.scale.applied", "outsystems.scale.applied"]


def test_the_scaling_timer_runs_on_its_schedule_setting(
    sim: SimulatorServer, azurite: Azurite
) -> None:
    with running_stack(sim, azurite, SCALING_TIMER_SCHEDULE="*/1 * * * * *") as stack:
        deploy_farm(stack, farm_spec(schedules=[window_around_now(4)]))
        wait_for(lambda: capacity(stack.sim) == 4, what="the floor, by the timer alone")
        # Two more runs of the timer began after the floor was reached: the first of them
        # ended before the second began (the schedule does not overlap its runs).
        since = stack.sim.requests()[-1]["seq"]
        wait_for(lambda: timer_listings(stack.sim, since) >= 2, what="two more timer runs")
        quiet_point(stack, scaler_finished(SCALE_SET_ID))
        assert len(capacity_writes(stack.sim)) == 1, "a floor reached is not asked again"


def test_alerts_that_are_not_for_a_managed_scale_set_change_nothing(stack: Stack) -> None:
    deploy_farm(stack)
    other = untagged_scale_set(stack.sim)
    vm = SCALE_SET_ID.replace(
        "virtualMachineScaleSets/acme-prod-vmss", "virtualMachines/acme-prod-vm"
    )
    missing = SCALE_SET_ID.replace("acme-prod-vmss", "gone-vmss")
    requests_before = len(stack.sim.requests())

    for target, why in (
        (other.upper(), "is not managed by this app"),
        (vm, "is not a virtual machine scale set"),
        (missing, "does not exist"),
    ):
        response = post_alert(stack, alert("high", alertTargetIDs=[target]))
        assert response.status_code == 200, response.text
        assert why in response.json()["ignored"]

    for body, status in (
        (b"not json", 400),
        ({"schemaId": "Microsoft.Insights/activityLogs", "data": {}}, 400),
        ({"schemaId": "azureMonitorCommonAlertSchema", "data": {"essentials": {}}}, 400),
        ([1, 2], 400),
    ):
        response = post_alert(stack, body)
        assert response.status_code == status, response.text
        assert response.json()["error"]["code"] == "InvalidAlert"

    ambiguous = alert("high")
    ambiguous["data"]["alertContext"]["condition"]["allOf"][0]["operator"] = "GreaterOrLessThan"
    response = post_alert(stack, ambiguous)
    assert response.status_code == 200
    assert "scaleDirection" in response.json()["ignored"]

    quiet_point(stack, scaler_finished(SCALE_SET_ID))
    assert capacity(stack.sim) == 2
    assert live_scale_set(stack.sim, other)["sku"]["capacity"] == 3
    writes = [r for r in stack.sim.requests()[requests_before:] if r["method"] != "GET"]
    assert writes == []
    assert scaling(stack)["decisions"] == []


def test_a_log_alert_with_a_scale_direction_property_scales(stack: Stack) -> None:
    deploy_farm(stack, farm_spec(cooldownMinutes=0))
    body = alert("high", signalType="Log", monitoringService="Log Alerts V2")
    body["data"]["alertContext"] = {"condition": {"allOf": [{"searchQuery": "requests"}]}}
    body["data"]["customProperties"] = {"scaleDirection": "in"}
    set_capacity_behind_the_app(stack.sim, 5)
    response = post_alert(stack, body)
    assert response.status_code == 202, response.text
    wait_for(lambda: capacity(stack.sim) == 4, what="scale in by the log alert")


def test_wrong_function_key_is_refused_before_the_app_runs(
    sim: SimulatorServer, azurite: Azurite
) -> None:
    key = "e2e-scaling-key-5c1"
    with running_stack(sim, azurite, require_keys=True, LOCALDEV_FUNCTION_KEY=key) as stack:
        deploy = stack.api("PUT", f"platforms/{SOLUTION}", json=farm_spec(), params={"code": key})
        assert deploy.status_code == 202, deploy.text
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            state = stack.api("GET", f"platforms/{SOLUTION}", params={"code": key}).json()
            if state["lastOperation"]["runtimeStatus"] == "Completed":
                break
            time.sleep(0.1)
        for params in ({"code": "wrong"}, {}):
            response = stack.api("POST", "alerts", json=alert("high"), params=params)
            assert response.status_code == 401
        quiet_point(stack)
        assert capacity(sim) == 2
        assert capacity_writes(sim) == []
        accepted = stack.api("POST", "alerts", json=alert("high"), headers={"x-functions-key": key})
        assert accepted.status_code == 202
        wait_for(lambda: capacity(sim) == 4, what="the keyed alert")


def test_manual_scaling_goes_through_the_scaler_and_checks_the_bounds(stack: Stack) -> None:
    deploy_farm(stack)
    path = f"platforms/{SOLUTION}/scale"

    response = stack.api("POST", path, json={"capacity": 6})
    assert response.status_code == 202, response.text
    body = response.json()
    assert body["target"] == 6
    assert body["scaleSet"].lower() == SCALE_SET_ID.lower()
    wait_for(lambda: capacity(stack.sim) == 6, what="manual capacity")
    response = stack.api("POST", path, json={"delta": -1})
    assert response.status_code == 202
    assert response.json()["target"] == 5
    wait_for(lambda: capacity(stack.sim) == 5, what="manual delta")
    view = settled(stack)
    assert [(d["source"], d["sourceId"], d["to"]) for d in view["decisions"]][-1] == (
        "manual",
        response.json()["requestId"],
        5,
    )

    for payload, status, code in (
        ({"capacity": 9}, 400, "CapacityOutOfRange"),
        ({"delta": -4}, 400, "CapacityOutOfRange"),
        ({"capacity": 4, "delta": 1}, 400, "InvalidScaleRequest"),
        ({"capacity": "4"}, 400, "InvalidScaleRequest"),
        ({"capacity": True}, 400, "InvalidScaleRequest"),
        ({"size": 4}, 400, "InvalidScaleRequest"),
        ({}, 400, "InvalidScaleRequest"),
    ):
        response = stack.api("POST", path, json=payload)
        assert response.status_code == status, (payload, response.text)
        assert response.json()["error"]["code"] == code
    out_of_range = stack.api("POST", path, json={"capacity": 9}).json()["error"]["message"]
    assert "2-8" in out_of_range
    unknown = stack.api("POST", "platforms/nosuch/scale", json={"capacity": 3})
    assert unknown.status_code == 404
    assert stack.api("GET", "platforms/nosuch/scaling").status_code == 404
    assert capacity(stack.sim) == 5


def test_a_manual_request_does_not_wait_for_the_alert_cooldown(
    stack: Stack, recwarn: pytest.WarningsRecorder
) -> None:
    deploy_farm(stack)
    assert post_alert(stack, alert("high")).status_code == 202
    wait_for(lambda: capacity(stack.sim) == 4, what="alert scale out")
    second = alert("high", alertId=f"{HIGH_ALERT_ID}-waiting")
    assert post_alert(stack, second).status_code == 202
    wait_for(
        lambda: scaling(stack)["scaler"] == "Running" and scaling(stack)["pending"],
        what="the scaler asleep in the cooldown",
    )
    # Running with a request pending is not yet asleep: the scaler may still be taking it.
    quiet_point(stack, scaler_asleep(SCALE_SET_ID))

    response = stack.api("POST", f"platforms/{SOLUTION}/scale", json={"capacity": 7})
    assert response.status_code == 202
    wait_for(lambda: capacity(stack.sim) == 7, what="the manual change, at once", timeout=10)
    view = settled(stack)
    superseded = [d for d in view["decisions"] if d["sourceId"].endswith("-waiting")]
    assert superseded[-1]["outcome"] == "coalesced"
    assert "superseded by manual request" in superseded[-1]["reason"]
    assert view["cooldownUntil"] is not None, "a manual change keeps the alert cooldown"
    assert duplicate_wake_warnings(recwarn) == [], "one wake-up, for a scaler that waited"


def test_standalone_platform_has_no_scaling(stack: Stack) -> None:
    response = stack.deploy(SOLUTION, example("spec-standalone.json"))
    assert response.status_code == 202
    assert stack.wait(SOLUTION)["lastOperation"]["runtimeStatus"] == "Completed"
    for method, path, body in (
        ("GET", "scaling", None),
        ("POST", "scale", {"capacity": 3}),
    ):
        answer = stack.api(method, f"platforms/{SOLUTION}/{path}", json=body)
        assert answer.status_code == 400, answer.text
        assert answer.json()["error"]["code"] == "NotAFarm"
    assert stack.sim.resources(ACTION_GROUP) == []
    assert stack.sim.resources(METRIC_ALERT) == []


def test_deploying_a_farm_wires_its_cpu_alerts_to_the_webhook(stack: Stack) -> None:
    deploy_farm(stack)
    [group] = stack.sim.resources(ACTION_GROUP)
    [receiver] = group["body"]["properties"]["webhookReceivers"]
    assert receiver["serviceUri"] == SECRETS["ALERT_WEBHOOK_URL"]
    assert receiver["useCommonAlertSchema"] is True
    rules = {r["body"]["name"]: r["body"]["properties"] for r in stack.sim.resources(METRIC_ALERT)}
    assert set(rules) == {"acme-prod-frontends-cpu-high", "acme-prod-frontends-cpu-low"}
    for name, operator, threshold, window in (
        ("acme-prod-frontends-cpu-high", "GreaterThan", 70, "PT5M"),
        ("acme-prod-frontends-cpu-low", "LessThan", 25, "PT15M"),
    ):
        rule = rules[name]
        assert [s.lower() for s in rule["scopes"]] == [SCALE_SET_ID.lower()]
        [criterion] = rule["criteria"]["allOf"]
        assert (criterion["metricName"], criterion["operator"], criterion["threshold"]) == (
            "Percentage CPU",
            operator,
            threshold,
        )
        assert rule["windowSize"] == window
        assert rule["autoMitigate"] is True
        assert [a["actionGroupId"].lower() for a in rule["actions"]] == [group["id"].lower()]
    # What such a rule sends (its own name, our scale set as target) is accepted.
    fired = alert("high", alertRule="acme-prod-frontends-cpu-high", alertTargetIDs=rule["scopes"])
    response = post_alert(stack, fired)
    assert response.status_code == 202, response.text
    wait_for(lambda: capacity(stack.sim) == 4, what="the rule's alert applied")


def test_copied_owner_tags_and_a_forged_policy_do_not_make_a_scale_set_managed(
    stack: Stack,
) -> None:
    """Issue 13.2's probe: the farm's tags on a scale set the app did not make, with a policy
    allowing 5 000 instances; without the app's MAC (or with the farm's, copied) it is not
    the app's to scale."""
    from outsystems.policy import POLICY_MAC_TAG, ScalingPolicy, policy_to_tags

    deploy_farm(stack, farm_spec(cooldownMinutes=0))
    farm_tags = live_scale_set(stack.sim)["tags"]
    assert POLICY_MAC_TAG in farm_tags, "the app signs the scale sets it deploys"
    forged_policy = policy_to_tags(ScalingPolicy(min_capacity=2, max_capacity=5000))
    owner = {k: farm_tags[k] for k in ("managedBy", "osSolutionId", "osEnvironment")}
    unsigned = copy_of_the_farm_scale_set(stack.sim, "forged-vmss", {**owner, **forged_policy})
    copied = copy_of_the_farm_scale_set(stack.sim, "copied-vmss", dict(farm_tags))
    writes_before = len([r for r in stack.sim.requests() if r["method"] != "GET"])

    for target in (unsigned, copied):
        body = alert("high", alertTargetIDs=[target], alertId=f"{HIGH_ALERT_ID}-{target[-12:]}")
        response = post_alert(stack, body)
        assert response.status_code == 200, response.text
        assert f"no valid {POLICY_MAC_TAG}" in response.json()["ignored"]

    quiet_point(stack, scaler_finished(SCALE_SET_ID))
    for target in (unsigned, copied):
        assert live_scale_set(stack.sim, target)["sku"]["capacity"] == 3
    writes = [r for r in stack.sim.requests() if r["method"] != "GET"][writes_before:]
    assert writes == []
    assert capacity(stack.sim) == 2


def test_alerts_for_scale_sets_of_other_subscriptions_are_ignored_without_reading_them(
    stack: Stack,
) -> None:
    deploy_farm(stack)
    foreign = SCALE_SET_ID.replace(
        "11111111-2222-3333-4444-555555555555", "99999999-8888-7777-6666-555555555555"
    )
    from orchestrators.scale_requests import scale_set_key

    before = len(stack.sim.requests())
    response = post_alert(stack, alert("high", alertTargetIDs=[foreign]))
    assert response.status_code == 200, response.text
    assert "which this app does not manage" in response.json()["ignored"]
    assert [r for r in stack.sim.requests()[before:] if "99999999" in r["path"]] == []
    assert stack.host.host is not None
    assert stack.host.host.store is not None
    entities = " ".join(stack.host.host.store.entities_with_ops())
    assert scale_set_key(foreign) not in entities, "no entity for a foreign scale set"


def test_the_capacity_ceiling_setting_caps_alerts_and_manual_requests(
    sim: SimulatorServer, azurite: Azurite, tmp_path: Path
) -> None:
    hub = str(tmp_path / "hub.sqlite")
    with running_stack(sim, azurite, hub_path=hub) as stack:
        deploy_farm(stack, farm_spec(cooldownMinutes=0))
    # The ceiling is lowered after the farm was deployed with a higher maximum (a new deployment
    # above it is refused: tests/e2e/test_bad_input.py).
    with running_stack(sim, azurite, hub_path=hub, SCALING_MAX_CAPACITY="3") as stack:
        refused = stack.api("POST", f"platforms/{SOLUTION}/scale", json={"capacity": 6})
        assert refused.status_code == 400, refused.text
        assert "SCALING_MAX_CAPACITY" in refused.json()["error"]["message"]
        assert post_alert(stack, alert("high")).status_code == 202
        wait_for(lambda: capacity(stack.sim) == 3, what="the scale out, capped at 3")
        view = settled(stack)
        assert view["policy"]["maxCapacity"] == 3
        assert view["decisions"][-1]["reason"].endswith("limited to maximum 3")
        second = alert("high", alertId=f"{HIGH_ALERT_ID}-second")
        assert post_alert(stack, second).status_code == 202
        assert settled(stack)["decisions"][-1]["reason"] == "already at maximum (3)"
        assert capacity(stack.sim) == 3


def test_the_alert_function_key_opens_the_webhook_only(
    sim: SimulatorServer, azurite: Azurite
) -> None:
    """Issue 13.1. A function key opens its own function's endpoint only; a host key opens
    every endpoint (MicrosoftDocs/azure-docs, articles/azure-functions/function-keys-how-to.md
    @02be6d7a). The key Azure Monitor holds must therefore be `receive_alert`'s own."""
    import json

    master, alert_key = "e2e-master-key-3f1", "e2e-alert-function-key-8c2"
    keys = {"functions": {"receive_alert": {"alertwebhook": alert_key}}}
    with running_stack(
        sim,
        azurite,
        require_keys=True,
        LOCALDEV_FUNCTION_KEY=master,
        LOCALDEV_KEYS=json.dumps(keys),
    ) as stack:
        stack.session.headers["x-functions-key"] = master
        deploy_farm(stack)
        del stack.session.headers["x-functions-key"]
        for method, path, body in (
            ("GET", "platforms", None),
            ("GET", f"platforms/{SOLUTION}", None),
            ("PUT", f"platforms/{SOLUTION}", farm_spec()),
            ("POST", f"platforms/{SOLUTION}/plan", farm_spec()),
            ("DELETE", f"platforms/{SOLUTION}", None),
            ("POST", f"platforms/{SOLUTION}/scale", {"capacity": 3}),
            ("GET", f"platforms/{SOLUTION}/scaling", None),
        ):
            answer = stack.api(method, path, json=body, params={"code": alert_key})
            assert answer.status_code == 401, (method, path, answer.status_code)
        assert capacity_writes(sim) == []
        assert post_alert(stack, alert("high"), params={"code": alert_key}).status_code == 202
        wait_for(lambda: capacity(sim) == 4, what="the keyed alert")
        assert len(capacity_writes(sim)) == 1


def test_a_scale_in_names_the_servers_to_remove_from_service_center(stack: Stack) -> None:
    """Scaled-in front-ends stay registered in Service Center and count against the license
    (OutSystems' Azure docs, "additional configurations": delete them in Service Center); no
    API removes them, so the decision and its event name them."""
    deploy_farm(stack)
    path = f"platforms/{SOLUTION}/scale"
    assert stack.api("POST", path, json={"capacity": 4}).status_code == 202
    wait_for(lambda: capacity(stack.sim) == 4, what="the scale-out")
    instances = arm(
        "GET", f"{stack.sim.url}{SCALE_SET_ID}/virtualMachines?api-version={SCALE_SET_API}"
    ).json()["value"]
    before = {i["properties"]["osProfile"]["computerName"] for i in instances}
    assert len(before) == 4
    stack.events()
    assert stack.api("POST", path, json={"capacity": 2}).status_code == 202
    wait_for(lambda: capacity(stack.sim) == 2, what="the scale-in")
    instances = arm(
        "GET", f"{stack.sim.url}{SCALE_SET_ID}/virtualMachines?api-version={SCALE_SET_API}"
    ).json()["value"]
    removed = before - {i["properties"]["osProfile"]["computerName"] for i in instances}
    assert len(removed) == 2
    decision = wait_for(
        lambda: next((d for d in reversed(scaling(stack)["decisions"]) if d["to"] == 2), None),
        what="the scale-in decision",
    )
    assert decision is not None
    assert set(decision["serversToRemove"]) == removed
    events = wait_for(
        lambda: [e for e in scale_events(stack) if e["data"]["to"] == 2], what="the event"
    )
    assert set(events[0]["data"]["serversToRemove"]) == removed

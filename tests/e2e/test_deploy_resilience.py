"""Deployments under stress: parallel environments, a killed host, ARM faults, a quota failure.

All end to end: the app on the local host (in-process, or as a subprocess that the test
SIGKILLs), the ARM simulator and Azurite. What ARM saw is read from the simulator's request
log: nothing may ever be created twice.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Iterable, Mapping
from datetime import datetime
from itertools import combinations
from pathlib import Path
from typing import Any

import pytest
import requests

from localdev.armsim.server import SimulatorServer
from outsystems.deployment import MAX_ATTEMPTS
from outsystems.names import ENVIRONMENTS
from outsystems.resource_types import APP_GATEWAY, SCALE_SET, SQL_SERVER, VM, VM_EXTENSION
from outsystems.topology import Resource
from tests.support.azurite import Azurite
from tests.support.deployment import (
    assert_all_succeeded,
    assert_created_once,
    puts,
    resource_ids,
    topology,
)
from tests.support.examples import sample
from tests.support.host_process import host_process, wait_terminal, write_settings
from tests.support.leaks import assert_no_leak
from tests.support.stack import Stack, app_settings, assert_torn_down, running_stack

LONG_TYPES = frozenset({VM, VM_EXTENSION, APP_GATEWAY, SQL_SERVER, SCALE_SET})


# --- the four environments run in parallel ---------------------------------------------------


def overlapping(a: tuple[float, float], b: tuple[float, float]) -> bool:
    return a[0] < b[1] and b[0] < a[1]


def most_in_flight(intervals: Mapping[str, list[tuple[float, float]]]) -> int:
    """The most environments that had a long operation in flight at one instant."""
    moments = sorted({start for spans in intervals.values() for start, _ in spans})
    return max(
        (
            sum(1 for spans in intervals.values() if any(s <= t < e for s, e in spans))
            for t in moments
        ),
        default=0,
    )


def test_environments_run_their_long_operations_at_the_same_time(stack: Stack) -> None:
    # Gateways take 1.2 s at this scale: long enough to overlap even on a busy machine.
    stack.sim.configure({"latencyScale": 0.001})
    spec = sample("spec-farm.json")
    resources = {r.id.lower(): r for r in topology(spec)}
    assert stack.deploy("acme", spec).status_code == 202
    assert_all_succeeded(stack.wait("acme"))

    intervals: dict[str, list[tuple[float, float]]] = {env: [] for env in ENVIRONMENTS}
    for request in stack.sim.requests():
        operation = request.get("operation")
        if request["method"] != "PUT" or not operation or operation["kind"] != "create":
            continue
        resource = resources[operation["resourceId"].lower()]
        if resource.type in LONG_TYPES:
            intervals[resource.environment].append((operation["start"], operation["end"]))
    assert all(len(spans) >= 3 for spans in intervals.values()), intervals
    for first, second in combinations(ENVIRONMENTS, 2):
        assert any(overlapping(a, b) for a in intervals[first] for b in intervals[second]), (
            f"no long operation of {first} overlaps one of {second}"
        )
    assert most_in_flight(intervals) == len(ENVIRONMENTS)


# --- the host is killed mid-deployment and restarted -------------------------------------------


def wait_for_puts(sim: SimulatorServer, count: int, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while puts(sim) < count:
        assert time.monotonic() < deadline, f"only {puts(sim)} PUTs after {seconds}s"
        time.sleep(0.02)


def test_killed_host_resumes_the_deployment_and_creates_nothing_twice(
    sim: SimulatorServer, azurite: Azurite, tmp_path: Path
) -> None:
    sim.configure({"latencyScale": 0.002})
    spec = sample("spec-farm.json")
    total = len(resource_ids(spec))
    settings = write_settings(tmp_path, app_settings(sim, azurite))
    hub = tmp_path / "hub.sqlite"
    output = tmp_path / "host.log"

    # Killed twice: early (shared resources and the first of each environment's) and late
    # (most of the graph started, long operations in flight), each time with a SIGKILL.
    kills = [total // 4, total * 2 // 3]
    for kill_after in kills:
        with host_process(settings, hub, output) as (process, base):
            if kill_after == kills[0]:
                response = requests.put(f"{base}/api/platforms/acme", json=spec, timeout=60)
                assert response.status_code == 202, response.text
            wait_for_puts(sim, kill_after)
            state = requests.get(f"{base}/api/platforms/acme", timeout=30).json()
            assert state["lastOperation"]["runtimeStatus"] == "Running", state
            process.kill()
            process.wait(10)
            assert process.returncode == -9
    with host_process(settings, hub, output) as (_, base):
        state = wait_terminal(base, "acme", 120)
    assert_all_succeeded(state)
    assert_created_once(sim, spec)
    assert output.read_text().count("Local Functions host listening") == 3
    assert_no_leak({"host output": output.read_text(errors="replace")})


# --- transient ARM faults -------------------------------------------------------------------


@pytest.mark.parametrize("seed", [11, 12, 13])
def test_deployment_and_teardown_complete_despite_ten_percent_of_arm_requests_failing(
    stack: Stack, seed: int
) -> None:
    # A little latency, so that operations are polled (and polls fail too).
    stack.sim.configure(
        {"faultRate": 0.1, "seed": seed, "faultRetryAfter": 0, "latencyScale": 0.0002}
    )
    # Whatever the seed draws, one operation that ARM accepts and then fails, to be retried.
    stack.sim.add_fault_rule(
        method="PUT", path="/virtualmachines/acme-dev-vm", kind="operation-failed", count=1
    )
    spec = sample("spec-farm.json")
    assert stack.deploy("acme", spec).status_code == 202
    state = stack.wait("acme", 180)

    assert_all_succeeded(state)
    assert_created_once(stack.sim, spec)
    faults = Counter(r["fault"] for r in stack.sim.requests() if r["fault"])
    assert sum(faults.values()) >= 10, faults
    assert faults["operation-failed"] >= 1, faults

    assert stack.api("DELETE", "platforms/acme").status_code == 202
    state = stack.wait("acme", 180)
    assert state["lastOperation"]["kind"] == "teardown"
    assert state["lastOperation"]["runtimeStatus"] == "Completed"
    assert {e["status"] for e in state["environments"].values()} == {"Deleted"}
    assert_torn_down(stack.sim)


# --- a permanent failure in one environment ----------------------------------------------------


def vcpus(size: str) -> int:
    """The vCPUs of a VM size, the number after the family letters: Standard_F8s_v2 -> 8."""
    match = re.match(r"(?:Standard|Basic)_[A-Za-z]+(\d+)", size)
    assert match, size
    return int(match.group(1))


def cores_needed(resources: Iterable[Resource], environments: Iterable[str]) -> int:
    wanted = set(environments)
    total = 0
    for resource in resources:
        if resource.environment not in wanted:
            continue
        if resource.type == VM:
            total += vcpus(resource.body["properties"]["hardwareProfile"]["vmSize"])
        elif resource.type == SCALE_SET:
            sku = resource.body["sku"]
            total += vcpus(sku["name"]) * int(sku["capacity"])
    return total


def test_quota_failure_fails_prod_only_and_a_second_put_completes_it(stack: Stack) -> None:
    spec = sample("spec-farm.json")
    resources = topology(spec)
    others = cores_needed(resources, ["dev", "test", "life"])
    prod = cores_needed(resources, ["prod"])
    assert (others, prod) == (12, 4 + 2 * 8)
    # Enough for the other environments and prod's controller (started alongside them), not for
    # the front-ends, which come last in prod: the failure is prod's whatever the ordering.
    quota = others + prod - 1
    stack.sim.configure({"vcpuQuota": quota})
    scale_set = next(r for r in resources if r.type == SCALE_SET)

    assert stack.deploy("acme", spec).status_code == 202
    state = stack.wait("acme")

    statuses = {env: e["status"] for env, e in state["environments"].items()}
    assert statuses == {
        "dev": "Succeeded",
        "test": "Succeeded",
        "prod": "Failed",
        "life": "Succeeded",
    }
    error = state["environments"]["prod"]["error"]
    assert error["code"] == "OperationNotAllowed"
    # ARM's own message, whole: the limit, the usage and what more the front-ends need.
    assert error["message"].startswith("Operation could not be completed as it results in")
    usage = re.search(
        rf"Current Limit: {quota}, Current Usage: (\d+), Additional Required: 16,", error["message"]
    )
    assert usage, error["message"]
    assert int(usage.group(1)) + 16 > quota
    assert error["resource"].lower() == scale_set.id.lower()
    assert (
        state["environments"]["prod"]["resourcesDone"]
        < state["environments"]["prod"]["resourcesTotal"]
    )
    assert "prod" not in state["outputs"]
    assert set(state["outputs"]) == {"dev", "test", "life"}
    events = stack.events()
    failed = [e for e in events if e["type"] == "outsystems.environment.failed"]
    assert [e["subject"] for e in failed] == ["acme/prod"]
    assert failed[0]["data"]["error"]["code"] == "OperationNotAllowed"
    assert failed[0]["data"]["error"]["resource"].lower() == scale_set.id.lower()
    # A storage queue does not promise order (the started event's publication may also be
    # retried): events are ordered by their CloudEvents `time` (CloudEvents 1.0, "time").
    outcome = sorted(
        (e for e in events if e["type"].startswith("outsystems.deployment.")),
        key=lambda e: datetime.fromisoformat(str(e["time"])),
    )
    assert [e["type"] for e in outcome] == [
        "outsystems.deployment.started",
        "outsystems.deployment.failed",
    ]
    assert outcome[1]["data"]["failedEnvironments"] == ["prod"]
    succeeded = {e["subject"] for e in events if e["type"] == "outsystems.environment.succeeded"}
    assert succeeded == {"acme/dev", "acme/test", "acme/life"}

    # Fix the cause and apply the same spec again: only what is missing is sent.
    live = {r["id"].lower() for r in stack.sim.resources() if r["provisioningState"] == "Succeeded"}
    missing = resource_ids(spec) - live
    assert scale_set.id.lower() in missing
    assert len(missing) < 5
    stack.sim.configure({"vcpuQuota": 350})
    seen = len(stack.sim.requests())
    assert stack.deploy("acme", spec).status_code == 202
    state = stack.wait("acme")

    assert_all_succeeded(state)
    assert set(state["outputs"]) == set(ENVIRONMENTS)
    new_puts = {r["path"] for r in stack.sim.requests()[seen:] if r["method"] == "PUT"}
    assert new_puts == missing
    assert_created_once(stack.sim, spec)
    types = [e["type"] for e in stack.events()]
    assert types.count("outsystems.environment.succeeded") == 4
    assert "outsystems.deployment.succeeded" in types


# --- a PUT again while ARM is still busy with an earlier run -----------------------------------


def operations_by_resource(sim: SimulatorServer) -> dict[str, list[tuple[float, float]]]:
    """Each resource's operations (start, end), from the request log."""
    found: dict[str, list[tuple[float, float]]] = {}
    for request in sim.requests():
        operation = request.get("operation")
        if operation:
            span = (operation["start"], operation["end"])
            found.setdefault(operation["resourceId"].lower(), []).append(span)
    return found


def assert_dependencies_were_done(
    sim: SimulatorServer, spec: Mapping[str, Any], since: int
) -> None:
    """Each PUT sent from request `since` on found everything it depends on finished."""
    resources = {r.id.lower(): r for r in topology(spec)}
    operations = operations_by_resource(sim)
    for request in sim.requests()[since:]:
        resource = resources.get(request["path"])
        if request["method"] != "PUT" or resource is None or request["status"] >= 300:
            continue
        for dependency in resource.depends_on:
            busy = [
                (start, end)
                for start, end in operations.get(dependency.lower(), [])
                if start <= request["start"] < end
            ]
            assert not busy, f"{resource.name} was sent while {dependency} was still busy"


def drive(stack: Stack, solution_id: str, step: float = 5.0, seconds: float = 60) -> dict[str, Any]:
    """Wait for the operation to end, moving ARM's clock `step` seconds every 50 ms."""
    deadline = time.monotonic() + seconds
    while True:
        state = stack.state(solution_id)
        if state["lastOperation"]["runtimeStatus"] in {"Completed", "Failed", "Canceled"}:
            return state
        assert time.monotonic() < deadline, f"still running: {state}"
        stack.sim.fast_forward(step)
        time.sleep(0.05)


def test_put_again_while_arm_still_runs_the_canceled_deployment(stack: Stack) -> None:
    stack.sim.configure({"latencyScale": 0.01})
    spec = sample("spec-farm.json")
    setup = next(r for r in topology(spec) if r.type == VM_EXTENSION and r.environment == "prod")
    assert stack.deploy("acme", spec).status_code == 202
    deadline = time.monotonic() + 30
    while not any(
        r["id"].lower() == setup.id.lower() and r["provisioningState"] == "Creating"
        for r in stack.sim.resources()
    ):
        assert time.monotonic() < deadline, "the setup never started"
        time.sleep(0.05)
    assert stack.api("POST", "platforms/acme/cancel").status_code == 202
    busy = [r["id"] for r in stack.sim.resources() if r["provisioningState"] != "Succeeded"]
    assert setup.id in busy
    seen = len(stack.sim.requests())

    # ARM goes on with what the canceled run started; the new run must wait for it.
    assert stack.deploy("acme", spec).status_code == 202
    state = drive(stack, "acme")

    assert_all_succeeded(state)
    live = {r["id"].lower(): r["provisioningState"] for r in stack.sim.resources()}
    assert all(live[i] == "Succeeded" for i in resource_ids(spec))
    assert_dependencies_were_done(stack.sim, spec, seen)
    assert_created_once(stack.sim, spec)


def test_a_resource_left_failed_is_applied_again_by_the_next_put(stack: Stack) -> None:
    spec = sample("spec-farm.json")
    setup = next(r for r in topology(spec) if r.type == VM_EXTENSION and r.environment == "dev")
    # The setup of dev fails every attempt: the extension stays in ARM, `Failed`.
    stack.sim.add_fault_rule(
        "PUT", "/acme-dev-vm/extensions/outsystems-setup", "operation-failed", MAX_ATTEMPTS
    )
    assert stack.deploy("acme", spec).status_code == 202
    state = stack.wait("acme")
    assert state["environments"]["dev"]["status"] == "Failed"
    assert state["environments"]["dev"]["error"]["resource"].lower() == setup.id.lower()
    live = {r["id"].lower(): r["provisioningState"] for r in stack.sim.resources()}
    assert live[setup.id.lower()] == "Failed"
    seen = len(stack.sim.requests())

    assert stack.deploy("acme", spec).status_code == 202
    state = stack.wait("acme")

    assert_all_succeeded(state)
    new_puts = [r["path"] for r in stack.sim.requests()[seen:] if r["method"] == "PUT"]
    assert new_puts == [setup.id.lower()]
    live = {r["id"].lower(): r["provisioningState"] for r in stack.sim.resources()}
    assert all(live[i] == "Succeeded" for i in resource_ids(spec))


def test_a_wait_past_its_limit_fails_as_timed_out_and_a_later_put_finishes(
    sim: SimulatorServer, azurite: Azurite
) -> None:
    azurite.drain("platform-events")
    spec = sample("spec-farm.json")
    sim.configure({"latencyScale": 0.01})
    # Limits of a few tenths of a second: every environment's first long operation outlasts it.
    with running_stack(sim, azurite, OPERATION_TIMEOUT_SCALE="0.0002") as stack:
        assert stack.deploy("acme", spec).status_code == 202
        state = stack.wait("acme", 60)
        for env in ENVIRONMENTS:
            progress = state["environments"][env]
            assert progress["status"] == "Failed", progress
            assert progress["error"]["code"] == "OperationTimedOut", progress
            assert "did not finish within" in progress["error"]["message"]
            assert progress["error"]["resource"]
        types = [e["type"] for e in stack.events()]
        assert types.count("outsystems.environment.failed") == 4
        assert "outsystems.deployment.failed" in types
    assert any(r["provisioningState"] == "Creating" for r in sim.resources())

    # With the default limits, the same spec again: ARM's running operations are waited for.
    seen = len(sim.requests())
    with running_stack(sim, azurite) as stack:
        assert stack.deploy("acme", spec).status_code == 202
        # ARM's clock at ten times real time: what still runs outlasts a few quick retries.
        state = drive(stack, "acme", step=0.5)
    assert_all_succeeded(state)
    assert_dependencies_were_done(sim, spec, seen)
    assert_created_once(sim, spec)

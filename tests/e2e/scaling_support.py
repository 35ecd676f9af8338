"""Helpers of the scaling e2e tests: a deployed farm, the sample alerts, live capacity, waits."""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import requests

from localdev.armsim.server import SimulatorServer
from tests.support.stack import SUBSCRIPTION, Stack

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
SOLUTION = "acme"
SCALE_SET_ID = (
    f"/subscriptions/{SUBSCRIPTION}/resourceGroups/acme-rg/providers/"
    "Microsoft.Compute/virtualMachineScaleSets/acme-prod-vmss"
)
SCALE_SET_API = "2026-04-01"

T = TypeVar("T")


def example(name: str) -> dict[str, Any]:
    body: dict[str, Any] = json.loads((EXAMPLES / name).read_text())
    return body


def farm_spec(**frontends: Any) -> dict[str, Any]:
    """The sample farm (bounds 2-8, out step 2, in step 1, cooldown 10 min) without schedules,
    so that results do not depend on the day and hour the tests run."""
    spec = example("spec-farm.json")
    spec["environments"]["prod"]["frontends"]["schedules"] = []
    spec["environments"]["prod"]["frontends"].update(frontends)
    return spec


def deploy_farm(stack: Stack, spec: dict[str, Any] | None = None) -> None:
    response = stack.deploy(SOLUTION, spec or farm_spec())
    assert response.status_code == 202, response.text
    state = stack.wait(SOLUTION)
    assert state["lastOperation"]["runtimeStatus"] == "Completed", state


def now_iso(ago: timedelta = timedelta(0)) -> str:
    """An alert time as Azure Monitor writes it (UTC, `Z`), `ago` before now."""
    return (datetime.now(UTC) - ago).isoformat().replace("+00:00", "Z")


def alert(name: str, **essentials: Any) -> dict[str, Any]:
    """A sample alert (`high`, `low`, `resolved`) that fired just now (and, resolved, resolved
    just now: the webhook ignores alerts older than ALERT_MAX_AGE_MINUTES), with some
    essentials changed."""
    files = {
        "high": "alert-cpu-high-fired.json",
        "low": "alert-cpu-low-fired.json",
        "resolved": "alert-cpu-high-resolved.json",
    }
    body = copy.deepcopy(example(files[name]))
    body["data"]["essentials"]["firedDateTime"] = now_iso()
    if name == "resolved":
        body["data"]["essentials"]["resolvedDateTime"] = now_iso()
    body["data"]["essentials"].update(essentials)
    return body


HIGH_ALERT_ID = alert("high")["data"]["essentials"]["alertId"]


def post_alert(stack: Stack, body: Any, **kwargs: Any) -> requests.Response:
    if isinstance(body, dict | list):
        return stack.api("POST", "alerts", json=body, **kwargs)
    return stack.api("POST", "alerts", data=body, **kwargs)


def arm(method: str, url: str, **kwargs: Any) -> requests.Response:
    """A request of the test's own straight to ARM (the simulator), made as any client makes
    it: the test's requests share the subscription's budget with the app's, so a 429 is waited
    out for its `Retry-After` (seconds: Microsoft Learn, "Understand how Azure Resource Manager
    throttles requests") and sent again."""
    for _ in range(20):
        response = requests.request(method, url, timeout=10, **kwargs)
        if response.status_code != 429:
            return response
        time.sleep(float(response.headers.get("Retry-After") or 1))
    return response


def live_scale_set(sim: SimulatorServer, resource_id: str = SCALE_SET_ID) -> dict[str, Any]:
    """The scale set as ARM answers a GET."""
    response = arm("GET", f"{sim.url}{resource_id}?api-version={SCALE_SET_API}")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def capacity(sim: SimulatorServer) -> int:
    return int(live_scale_set(sim)["sku"]["capacity"])


def capacity_writes(sim: SimulatorServer) -> list[dict[str, Any]]:
    """The PATCH requests the app sent to the scale set."""
    return [
        r
        for r in sim.requests()
        if r["method"] == "PATCH" and r["path"].lower().endswith("/acme-prod-vmss")
    ]


def set_capacity_behind_the_app(sim: SimulatorServer, value: int) -> None:
    """Someone moves the portal's slider: a PATCH straight to ARM."""
    response = arm(
        "PATCH",
        f"{sim.url}{SCALE_SET_ID}?api-version={SCALE_SET_API}",
        json={"sku": {"capacity": value}},
    )
    assert response.status_code in (200, 202), response.text
    wait_for(lambda: capacity(sim) == value, what=f"capacity {value}")


def scaling(stack: Stack) -> dict[str, Any]:
    response = stack.api("GET", f"platforms/{SOLUTION}/scaling")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def wait_for(
    probe: Callable[[], T | None], *, what: str, timeout: float = 30, interval: float = 0.1
) -> T:
    """Poll `probe` until it returns something truthy, and return that."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(interval)


def scaler_idle(stack: Stack) -> bool:
    """Nothing pending and the scaler not running."""
    body = scaling(stack)
    return not body["pending"] and body["scaler"] not in ("Running", "Pending", "ContinuedAsNew")


def scale_events(stack: Stack) -> list[dict[str, Any]]:
    return [e for e in stack.events() if e["type"].startswith("outsystems.scale.")]


def window_around_now(floor: int) -> dict[str, Any]:
    """A schedule window that holds now, whatever the day and hour the test runs."""
    now = datetime.now(UTC)
    return {
        "days": ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"],
        "start": (now - timedelta(hours=1)).strftime("%H:%M"),
        "end": (now + timedelta(hours=2)).strftime("%H:%M"),
        "timeZone": "UTC",
        "minCapacity": floor,
    }


def untagged_scale_set(sim: SimulatorServer) -> str:
    """A scale set in the farm's subnet that this app did not make (no tags)."""
    body = live_scale_set(sim)
    other_id = SCALE_SET_ID.replace("acme-prod-vmss", "other-vmss")
    profile = body["properties"]["virtualMachineProfile"]
    profile["osProfile"] = {
        **profile["osProfile"],
        "computerNamePrefix": "other",
        "adminPassword": "Other-Passw0rd!x1",
    }
    profile.pop("extensionProfile", None)
    profile.pop("userData", None)
    put = {
        "location": body["location"],
        "sku": {**body["sku"], "capacity": 3},
        "properties": {
            k: v
            for k, v in body["properties"].items()
            if k not in ("provisioningState", "uniqueId", "timeCreated")
        },
    }
    response = arm("PUT", f"{sim.url}{other_id}?api-version={SCALE_SET_API}", json=put)
    assert response.status_code in (200, 201), response.text
    wait_for(lambda: live_scale_set(sim, other_id)["sku"]["capacity"] == 3, what="other vmss")
    return other_id


def copy_of_the_farm_scale_set(sim: SimulatorServer, name: str, tags: dict[str, str]) -> str:
    """A scale set next to the farm's, made by someone else, carrying `tags`."""
    other_id = untagged_scale_set(sim).replace("other-vmss", name)
    body = live_scale_set(sim, SCALE_SET_ID.replace("acme-prod-vmss", "other-vmss"))
    put = {
        "location": body["location"],
        "tags": tags,
        "sku": {**body["sku"], "capacity": 3},
        "properties": {
            k: v
            for k, v in body["properties"].items()
            if k not in ("provisioningState", "uniqueId", "timeCreated")
        },
    }
    put["properties"]["virtualMachineProfile"]["osProfile"]["adminPassword"] = "Other-Passw0rd!x1"
    response = arm("PUT", f"{sim.url}{other_id}?api-version={SCALE_SET_API}", json=put)
    assert response.status_code in (200, 201), response.text
    wait_for(lambda: live_scale_set(sim, other_id)["sku"]["capacity"] == 3, what=name)
    return other_id

"""Alert storm: N concurrent Azure Monitor alerts for one scale set of a deployed farm.

Deploys the farm sample (without its business-hours schedule, so that the figures do not depend
on the hour of the run), then sends N copies of `examples/alert-cpu-high-fired.json`, each with
its own `alertId`, to `POST /api/alerts` from many threads at once, and waits for the scaler to
go idle. Prints, per N: answered requests (must all be 2xx), the capacity changes ARM saw (must
be 1: the first alert scales out, the cooldown holds the rest), p50/p99/max answer latency and
the storm's throughput.
"""

from __future__ import annotations

import copy
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import requests

from bench.common import (
    SUBSCRIPTION,
    app_stack,
    example,
    format_table,
    percentile,
    verdict,
    wait_all,
)

if TYPE_CHECKING:
    from tests.support.stack import Stack

SOLUTION = "acme"
SCALE_SET_PATH = (
    f"/subscriptions/{SUBSCRIPTION}/resourcegroups/acme-rg/providers/"
    "microsoft.compute/virtualmachinescalesets/acme-prod-vmss"
)
ALERT_FILE = "alert-cpu-high-fired.json"
#: Threads sending alerts at once (Azure Monitor fans a storm out from many senders).
SENDERS = 64


@dataclass(frozen=True)
class StormResult:
    """The figures of one storm."""

    alerts: int
    statuses: dict[int, int]
    accepted: int
    capacity_changes: int
    capacity_before: int
    capacity_after: int
    p50: float
    p99: float
    max: float
    storm_seconds: float
    settle_seconds: float
    pending: int

    @property
    def answered_2xx(self) -> int:
        return sum(n for status, n in self.statuses.items() if 200 <= status < 300)

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "answered_2xx": self.answered_2xx}


def storm_alert(template: dict[str, Any], index: int) -> dict[str, Any]:
    """The sample alert with its own id (Azure Monitor gives each fired alert one), fired now
    (the webhook ignores alerts older than ALERT_MAX_AGE_MINUTES)."""
    body = copy.deepcopy(template)
    alert_id = f"/subscriptions/{SUBSCRIPTION}/providers/Microsoft.AlertsManagement/alerts/"
    body["data"]["essentials"]["alertId"] = alert_id + str(uuid.UUID(int=index + 1))
    body["data"]["essentials"]["firedDateTime"] = datetime.now(UTC).isoformat()
    return body


def capacity_changes(app: Stack) -> int:
    """Successful capacity writes (PATCH or PUT) ARM received for the scale set."""
    return sum(
        1
        for r in app.sim.requests()
        if r["method"] in {"PATCH", "PUT"}
        and r["path"] == SCALE_SET_PATH
        and 200 <= r["status"] < 300
    )


def live_capacity(app: Stack) -> int:
    """The scale set's capacity, read from ARM (the simulator) directly."""
    url = f"{app.sim.url}{SCALE_SET_PATH}?api-version=2026-04-01"
    response = requests.get(url, timeout=10)
    response.raise_for_status()
    return int(response.json()["sku"]["capacity"])


def scaling_view(app: Stack) -> dict[str, Any]:
    """`GET /api/platforms/acme/scaling` (empty when it does not answer 200)."""
    response = app.api("GET", f"platforms/{SOLUTION}/scaling")
    body: dict[str, Any] = response.json() if response.status_code == 200 else {}
    return body


def wait_settled(app: Stack, capacity_before: int, timeout: float) -> dict[str, Any]:
    """Until the scale-out reached ARM and the scaler's view stopped changing for a second.

    Alerts that arrive during the cooldown are kept pending and decided once when it ends
    (10 minutes here), so the scaler does not go idle within the storm: what counts is that
    every alert was taken in and only one change was made.
    """
    deadline = time.monotonic() + timeout
    last: tuple[int, int] | None = None
    stable_since = time.monotonic()
    while True:
        view = scaling_view(app)
        shape = (len(view.get("pending") or []), len(view.get("decisions") or []))
        if shape != last:
            last, stable_since = shape, time.monotonic()
        scaled = live_capacity(app) != capacity_before
        if scaled and time.monotonic() - stable_since >= 1.0:
            return view
        if time.monotonic() > deadline:
            raise TimeoutError(f"the storm did not settle within {timeout:g} s")
        time.sleep(0.2)


def storm(app: Stack, alerts: int) -> StormResult:
    """Send `alerts` alerts at once; wait for the scaler; count what happened."""
    template = example(ALERT_FILE)
    bodies = [storm_alert(template, i) for i in range(alerts)]
    url = f"{app.base}/api/alerts"
    local = threading.local()

    def send(body: dict[str, Any]) -> tuple[int, float, bool]:
        session = getattr(local, "session", None)
        if session is None:
            session = local.session = requests.Session()
        started = time.perf_counter()
        response = session.post(url, json=body, timeout=120)
        elapsed = time.perf_counter() - started
        accepted = response.status_code == 202 and bool(response.json().get("accepted"))
        return response.status_code, elapsed, accepted

    changes_before = capacity_changes(app)
    capacity_before = live_capacity(app)
    started = time.monotonic()
    with ThreadPoolExecutor(SENDERS) as pool:
        answers = list(pool.map(send, bodies))
    storm_seconds = time.monotonic() - started
    view = wait_settled(app, capacity_before, timeout=120 + alerts * 0.5)
    settle_seconds = time.monotonic() - started
    latencies = [elapsed for _, elapsed, _ in answers]
    return StormResult(
        alerts=alerts,
        statuses=dict(Counter(status for status, _, _ in answers)),
        accepted=sum(1 for _, _, accepted in answers if accepted),
        capacity_changes=capacity_changes(app) - changes_before,
        capacity_before=capacity_before,
        capacity_after=live_capacity(app),
        p50=percentile(latencies, 0.5),
        p99=percentile(latencies, 0.99),
        max=max(latencies, default=0.0),
        storm_seconds=storm_seconds,
        settle_seconds=settle_seconds,
        pending=len(view.get("pending") or []),
    )


def run(*, sizes: tuple[int, ...] = (100, 1000), latency_scale: float = 0.002) -> list[StormResult]:
    """For each N: a freshly deployed farm (so each storm starts out of cooldown), then N alerts."""
    results = []
    spec = example("spec-farm.json")
    spec["environments"]["prod"]["frontends"]["schedules"] = []
    for alerts in sizes:
        with app_stack(latency_scale=0.0) as app:
            app.deploy(SOLUTION, spec)
            state = wait_all(app, [SOLUTION], timeout=300)[SOLUTION]
            if state["lastOperation"]["runtimeStatus"] != "Completed":
                raise RuntimeError(f"the farm did not deploy: {state['lastOperation']}")
            # The scale-out itself takes time, as in Azure, so alerts arrive while it runs.
            app.sim.configure({"latencyScale": latency_scale})
            results.append(storm(app, alerts))
    return results


def report(results: list[StormResult]) -> str:
    """The storms' figures as text."""
    rows = [
        (
            r.alerts,
            f"{r.answered_2xx}/{r.alerts}",
            r.accepted,
            f"{r.capacity_changes} ({r.capacity_before}->{r.capacity_after})",
            r.p50 * 1000,
            r.p99 * 1000,
            r.max * 1000,
            r.alerts / r.storm_seconds if r.storm_seconds else 0.0,
            r.pending,
            r.settle_seconds,
        )
        for r in results
    ]
    lines = [
        f"alert storm: N concurrent alerts ({SENDERS} senders) for acme-prod-vmss of the farm",
        format_table(
            rows,
            (
                "N",
                "2xx",
                "accepted",
                "capacity changes",
                "p50 ms",
                "p99 ms",
                "max ms",
                "alerts/s",
                "kept pending",
                "settled after s",
            ),
        ),
    ]
    for r in results:
        others = {s: n for s, n in r.statuses.items() if not 200 <= s < 300}
        all_answered = verdict(r.answered_2xx, r.alerts, at_most=False)
        one_change = "met" if r.capacity_changes == 1 else "MISSED"
        lines.append(
            f"N={r.alerts}: all answered 2xx: {all_answered}"
            + (f" (other statuses {others})" if others else "")
            + f"; exactly one capacity change: {one_change}"
        )
    return "\n".join(lines)

"""Fleet under throttling: K platforms deployed at once into one subscription, ARM throttling on.

For each K (1 as the baseline, then 5 and 20 by default), a fresh simulator with the default
token buckets (writes 200 + 10/s, reads 250 + 25/s per subscription) and a fresh app; K copies
of the farm sample (solution ids `f01`, `f02`, ...) are PUT at once and waited for. Prints per K:
failures (must be 0), PUTs the API refused with 503 and the client retried (the API's checks of
the spec could not read ARM under throttling), 429s the app absorbed (simulator counters), wall
time, wall time per platform, and the floor the write budget alone forces,
`(K x writes per platform - 200) / 10` seconds, next to the single-platform wall time.

The regional vCPU quota is raised for the run: 20 farms need 640 vCPUs, more than the
simulator's default quota of 350 per subscription, and quota is not what is measured here.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any

from bench.common import (
    app_stack,
    completed_at,
    example,
    format_table,
    graph_of,
    path_figures,
    wait_all,
)

SPEC_FILE = "spec-farm.json"
#: Default buckets of the simulator (and of ARM): capacity and refill per second.
WRITE_CAPACITY = 200.0
WRITE_REFILL = 10.0
READ_CAPACITY = 250.0
READ_REFILL = 25.0
VCPU_QUOTA = 100_000


@dataclass(frozen=True)
class FleetResult:
    """The figures of K platforms deployed at once."""

    platforms: int
    failures: int
    failed: dict[str, str]
    wall: float
    throttled: int
    requests: int
    writes: int
    reads: int
    write_floor: float
    read_floor: float
    #: PUTs the API refused with 503 (its checks of the spec could not read ARM), each retried.
    refused_503: int = 0

    @property
    def per_platform(self) -> float:
        return self.wall / self.platforms

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "per_platform": self.per_platform}


def write_floor(writes: int) -> float:
    """Seconds the write bucket forces for `writes` writes from a full bucket."""
    return max(0.0, (writes - WRITE_CAPACITY) / WRITE_REFILL)


def read_floor(reads: int) -> float:
    """Seconds the read bucket forces for `reads` reads (planning, polls) from a full bucket."""
    return max(0.0, (reads - READ_CAPACITY) / READ_REFILL)


#: How long a client keeps retrying a PUT the API answers 503 (as a well-behaved client does).
RETRY_503_SECONDS = 300.0


def put_platform(app: Any, solution_id: str, spec: dict[str, Any]) -> int:
    """PUT the platform; a 503 (ARM did not answer the API's checks) is retried after its
    `Retry-After` (1 s without one), as a client should. The number of 503s answered."""
    refused = 0
    deadline = time.monotonic() + RETRY_503_SECONDS
    while True:
        response = app.deploy(solution_id, spec)
        if response.status_code == 202:
            return refused
        if response.status_code != 503 or time.monotonic() > deadline:
            raise RuntimeError(f"PUT {solution_id}: {response.status_code} {response.text}")
        refused += 1
        time.sleep(float(response.headers.get("Retry-After", "1")))


def deploy_fleet(platforms: int, latency_scale: float, poll_seconds: float) -> FleetResult:
    """K copies of the farm sample deployed at once; wait for all; count what happened."""
    spec = example(SPEC_FILE)
    solution_ids = [f"f{i:02d}" for i in range(1, platforms + 1)]
    with app_stack(
        latency_scale=latency_scale,
        simulator={"vcpu_quota": VCPU_QUOTA},
        OPERATION_POLL_SECONDS=f"{poll_seconds:g}",
    ) as app:
        started = time.time()
        refused = sum(put_platform(app, solution_id, spec) for solution_id in solution_ids)
        states = wait_all(app, solution_ids, timeout=600 + 120 * platforms)
        # From the first PUT to the end of the last orchestration, as the host recorded it.
        wall = max(completed_at(app, solution_id) for solution_id in solution_ids) - started
        failed = {
            solution_id: "; ".join(
                f"{env}: {(e.get('error') or {}).get('code')}"
                for env, e in state["environments"].items()
                if e["status"] != "Succeeded"
            )
            or state["lastOperation"]["runtimeStatus"]
            for solution_id, state in states.items()
            if state["lastOperation"]["runtimeStatus"] != "Completed"
            or any(e["status"] != "Succeeded" for e in state["environments"].values())
        }
        counters = app.sim.counters()
        # Only requests that got through took a token: a 429 costs nothing from the bucket.
        taken = [r for r in app.sim.requests() if not r.get("throttled")]
        writes = sum(1 for r in taken if r["method"] in {"PUT", "PATCH", "POST"})
        reads = sum(1 for r in taken if r["method"] in {"GET", "HEAD"})
        return FleetResult(
            platforms=platforms,
            failures=len(failed),
            failed=failed,
            wall=wall,
            throttled=int(counters.get("throttled", 0)),
            requests=int(counters.get("requests", 0)),
            writes=writes,
            reads=reads,
            write_floor=write_floor(writes),
            read_floor=read_floor(reads),
            refused_503=refused,
        )


def run(
    *,
    sizes: tuple[int, ...] = (1, 5, 20),
    latency_scale: float = 0.005,
    poll_seconds: float = 0.25,
) -> list[FleetResult]:
    """One fleet per size, each on a fresh simulator (full token buckets)."""
    return [deploy_fleet(k, latency_scale, poll_seconds) for k in sizes]


def report(
    results: list[FleetResult], *, latency_scale: float = 0.005, poll_seconds: float = 0.25
) -> str:
    """The fleets' figures as text."""
    critical = path_figures(graph_of("f01", example(SPEC_FILE))).critical_path * latency_scale
    base = results[0].wall if results and results[0].platforms == 1 else None
    rows = []
    for r in results:
        single = base or critical
        rows.append(
            (
                r.platforms,
                r.failures,
                r.refused_503,
                r.throttled,
                r.requests,
                r.writes,
                r.reads,
                r.wall,
                r.per_platform,
                r.write_floor,
                r.read_floor,
                r.wall / max(single, r.write_floor),
                r.wall / max(single, r.write_floor, r.read_floor),
            )
        )
    lines = [
        f"fleet under throttling: K farm platforms at once, one subscription, default buckets, "
        f"latency scale {latency_scale:g}, OPERATION_POLL_SECONDS {poll_seconds:g} "
        f"(critical path of one platform {critical:.1f} s)",
        format_table(
            rows,
            (
                "K",
                "failures",
                "PUT 503s retried",
                "429s absorbed",
                "ARM requests",
                "writes",
                "reads",
                "wall s",
                "wall/K s",
                "write floor s",
                "read floor s",
                "wall/max(K=1,write floor)",
                "wall/max(K=1,both floors)",
            ),
        ),
    ]
    for r in results:
        verdict = "met" if r.failures == 0 else f"MISSED: {r.failed}"
        lines.append(f"K={r.platforms}: no failures: {verdict}")
    return "\n".join(lines)

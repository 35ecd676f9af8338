"""Upgrade: the wall time of a production farm's upgrade of N front-ends vs the sum of its steps.

Deploys the farm sample with N front-ends (minimum 2) at one version, then upgrades it to the
next by a PUT (issue 17) with `upgrade.soakMinutes` 0, so that no pause waits for an approval,
and reads the simulator's request log of the production part: from the first request on a
production resource after the last one on Test, to the end of the last operation.

The balanced upgrade is a sequence of steps that each wait for the previous one (restore point,
gateway to the loaded set, drain, controller, scale set model, manual upgrade of a set, serve,
gateway, backend health, ...); the operations inside one step (Run Command on each instance of a
set) run side by side. So the **sum of its steps** is the time ARM spent on at least one of the
production upgrade's operations: the length of the union of their intervals (each step counted
once, its parallel operations overlapping). Our wall time ÷ that sum is the overhead of the
orchestration (polls, episodes, activities between steps); the gaps are printed per step count.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from bench.common import app_stack, example, format_table, wait_all

SOLUTION = "acme"
OLD = {"platformVersion": "11.32.0", "lifetimeVersion": "11.25.2"}
NEW = {"platformVersion": "11.33.0", "lifetimeVersion": "11.26.0"}
#: Paths of the production environment's resources (VM, scale set, gateway, databases).
PROD_MARKERS = (f"{SOLUTION}-prod", f"{SOLUTION}_prod")
TEST_MARKERS = (f"{SOLUTION}-test", f"{SOLUTION}_test")


@dataclass(frozen=True)
class UpgradeResult:
    """One production upgrade (seconds, on the simulator's clock)."""

    frontends: int
    latency_scale: float
    wall: float
    steps_sum: float
    steps: int
    operations: int
    requests: int
    whole_upgrade: float
    #: The longest operations: (method and the path's last two segments, seconds).
    longest: tuple[tuple[str, float], ...] = ()

    @property
    def ratio(self) -> float:
        return self.wall / self.steps_sum if self.steps_sum else float("nan")

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "ratio": self.ratio}


def union(intervals: Iterable[tuple[float, float]]) -> list[tuple[float, float]]:
    """The intervals merged where they overlap or touch, in order."""
    merged: list[tuple[float, float]] = []
    for start, end in sorted(intervals):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def production_part(records: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The requests of the production upgrade: from the first on a production resource after
    the last on Test (the environments go one after the other) to the end."""
    last_test = max(
        (r["seq"] for r in records if any(m in r["path"] for m in TEST_MARKERS)), default=0
    )
    after = [r for r in records if r["seq"] > last_test]
    first = next((i for i, r in enumerate(after) if any(m in r["path"] for m in PROD_MARKERS)), 0)
    return after[first:]


def measure(records: Sequence[Mapping[str, Any]]) -> tuple[float, float, int, int]:
    """(wall, sum of steps, steps, operations) of a run's request log (see the docstring)."""
    if not records:
        return 0.0, 0.0, 0, 0
    start = min(float(r["start"]) for r in records)
    ends = [float(r["end"]) for r in records]
    operations = [
        (float(r["operation"]["start"]), float(r["operation"]["end"]))
        for r in records
        if r.get("operation") and r["operation"].get("end") is not None
    ]
    ends += [end for _, end in operations]
    steps = union(operations)
    return max(ends) - start, sum(b - a for a, b in steps), len(steps), len(operations)


def longest_operations(
    records: Sequence[Mapping[str, Any]], count: int = 5
) -> tuple[tuple[str, float], ...]:
    """The `count` longest operations, named by method and the path's last two segments."""
    found = [
        (
            f"{r['method']} {'/'.join(str(r['path']).rsplit('/', 2)[-2:])}",
            float(r["operation"]["end"]) - float(r["operation"]["start"]),
        )
        for r in records
        if r.get("operation") and r["operation"].get("end") is not None
    ]
    return tuple(sorted(found, key=lambda f: -f[1])[:count])


def farm_at(versions: Mapping[str, str], frontends: int) -> dict[str, Any]:
    spec = copy.deepcopy(example("spec-farm.json"))
    spec.update(versions)
    scaling = spec["environments"]["prod"]["frontends"]
    scaling.update(capacity=frontends, minCapacity=2, maxCapacity=max(8, frontends))
    scaling["schedules"] = []
    spec["upgrade"] = {"soakMinutes": 0}
    return spec


def run_one(frontends: int, latency_scale: float) -> UpgradeResult:
    with app_stack(latency_scale=latency_scale, throttling=False) as app:
        response = app.deploy(SOLUTION, farm_at(OLD, frontends))
        if response.status_code != 202:
            raise RuntimeError(f"deploy refused: {response.status_code} {response.text}")
        wait_all(app, [SOLUTION], timeout=600)
        since = max((r["seq"] for r in app.sim.requests()), default=0)
        started = time.monotonic()
        response = app.deploy(SOLUTION, farm_at(NEW, frontends))
        if response.status_code != 202:
            raise RuntimeError(f"upgrade refused: {response.status_code} {response.text}")
        state = wait_all(app, [SOLUTION], timeout=1800)[SOLUTION]
        whole = time.monotonic() - started
        upgrade = state.get("upgrade") or {}
        if upgrade.get("state") != "Succeeded":
            raise RuntimeError(f"upgrade ended {upgrade.get('state')}: {upgrade}")
        records = production_part(app.sim.requests(since))
    wall, steps_sum, steps, operations = measure(records)
    return UpgradeResult(
        frontends=frontends,
        latency_scale=latency_scale,
        wall=wall,
        steps_sum=steps_sum,
        steps=steps,
        operations=operations,
        requests=len(records),
        whole_upgrade=whole,
        longest=longest_operations(records),
    )


def run(sizes: Sequence[int] = (2, 4, 8), latency_scale: float = 0.005) -> list[UpgradeResult]:
    return [run_one(n, latency_scale) for n in sizes]


def report(results: Sequence[UpgradeResult]) -> str:
    rows = [
        (
            r.frontends,
            f"{r.wall:.2f}",
            f"{r.steps_sum:.2f}",
            f"{r.ratio:.2f}",
            r.steps,
            r.operations,
            r.requests,
            f"{(r.wall - r.steps_sum) / max(r.steps, 1):.3f}",
            f"{r.whole_upgrade:.1f}",
        )
        for r in results
    ]
    header = (
        "front-ends",
        "prod wall s",
        "sum of steps s",
        "wall / steps",
        "steps",
        "ARM operations",
        "ARM requests",
        "gap per step s",
        "whole upgrade s (host clock)",
    )
    scale = results[0].latency_scale if results else 0.0
    longest = "\n".join(
        f"  N={r.frontends}: " + ", ".join(f"{name} {seconds:.2f} s" for name, seconds in r.longest)
        for r in results
    )
    return (
        f"production upgrade at latency scale {scale:g} (simulator clock; soak 0, no approvals)\n"
        + format_table(rows, header)
        + "\nlongest operations:\n"
        + longest
    )

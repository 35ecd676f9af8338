"""Fan-out: how close a deployment gets to the resource graph's critical path.

Deploys the farm sample through the API on the local host against the ARM simulator at a scaled
down latency profile, then provisions the same graph sequentially (one resource after the other,
each waited for, through `arm.operations` on the same simulator). Prints, side by side:

- our wall time ÷ the critical path of the graph under the same latencies (target ≤ 1.1);
- sequential wall time ÷ our wall time (target ≥ 3).

The critical path comes from `build_topology` and the simulator's latency table; the request
log's operation times give the time ARM actually spent, to tell waiting from overhead.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from bench.common import (
    SUBSCRIPTION,
    FunctionTimings,
    PathFigures,
    app_stack,
    example,
    format_table,
    graph_of,
    path_figures,
    verdict,
    wait_all,
)

if TYPE_CHECKING:
    from localdev.armsim.server import SimulatorServer
    from outsystems.topology import ResourceGraph

log = logging.getLogger(__name__)

SOLUTION = "acme"
SPEC_FILE = "spec-farm.json"
#: The functions on a deployment's critical path: one orchestrator episode, then an activity.
TIMED_FUNCTIONS = (
    "deploy_platform",
    "deploy_environment",
    "plan_environment",
    "begin_apply_resource",
    "check_operations",
    "publish_event",
    "read_outputs",
)


@dataclass(frozen=True)
class FanoutResult:
    """The figures of one fan-out run (seconds unless named otherwise)."""

    latency_scale: float
    poll_seconds: float
    throttling: bool
    resources: int
    critical_path: float
    phased_critical_path: float
    sequential_estimate: float
    ours: float
    arm_span: float
    sequential: float | None
    throttled: int
    arm_requests: int
    chain: tuple[str, ...]
    measured: tuple[Link, ...] = ()
    functions: tuple[tuple[str, int, int, float, float, float], ...] = ()

    @property
    def ours_over_critical(self) -> float:
        return self.ours / self.critical_path

    @property
    def sequential_over_ours(self) -> float | None:
        return None if self.sequential is None else self.sequential / self.ours

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["ours_over_critical"] = self.ours_over_critical
        data["sequential_over_ours"] = self.sequential_over_ours
        return data


def _arm_span(sim: SimulatorServer) -> float:
    """From the first ARM request to the end of the last operation (the simulator's clock)."""
    records = sim.requests()
    if not records:
        return 0.0
    start = min(r["start"] for r in records)
    ends = [r["end"] for r in records]
    ends += [r["operation"]["end"] for r in records if r.get("operation")]
    return float(max(ends) - start)


@dataclass(frozen=True)
class Link:
    """One resource on the measured critical chain: when it could start, started and ended."""

    name: str
    ready: float
    started: float
    ended: float

    @property
    def gap(self) -> float:
        """How long the resource waited after its last dependency was done."""
        return self.started - self.ready


def measured_chain(records: list[dict[str, Any]], graph: ResourceGraph) -> list[Link]:
    """The chain of resources that finished last, walked back through the dependency each
    one waited for longest, with times relative to the first ARM request (request log)."""
    if not records:
        return []
    origin = min(r["start"] for r in records)
    started: dict[str, float] = {}
    ended: dict[str, float] = {}
    for record in records:
        if record["method"] != "PUT" or not 200 <= record["status"] < 300:
            continue
        path = record["path"]
        started[path] = record["start"] - origin
        operation = record.get("operation")
        ended[path] = (operation["end"] if operation else record["end"]) - origin
    by_path = {r.id.lower(): r for r in graph}
    present = [p for p in by_path if p in ended]
    if not present:
        return []
    chain: list[Link] = []
    current: str | None = max(present, key=lambda p: ended[p])
    while current is not None:
        deps = [d.lower() for d in by_path[current].depends_on if d.lower() in ended]
        previous = max(deps, key=lambda d: ended[d], default=None)
        ready = ended[previous] if previous is not None else 0.0
        chain.append(Link(by_path[current].name, ready, started[current], ended[current]))
        current = previous
    return chain[::-1]


def deploy_once(sim: SimulatorServer, app: Any, spec: dict[str, Any], timeout: float) -> float:
    """PUT the spec, wait for the deployment to complete; the wall time in seconds."""
    started = time.monotonic()
    response = app.deploy(SOLUTION, spec)
    if response.status_code != 202:
        raise RuntimeError(f"PUT answered {response.status_code}: {response.text[:300]}")
    state = wait_all(app, [SOLUTION], timeout)[SOLUTION]
    elapsed = time.monotonic() - started
    status = state["lastOperation"]["runtimeStatus"]
    failed = {e: s["error"] for e, s in state["environments"].items() if s["status"] != "Succeeded"}
    if status != "Completed" or failed:
        raise RuntimeError(f"deployment ended {status}: {failed}")
    return elapsed


def provision_sequentially(sim: SimulatorServer, graph: ResourceGraph, poll: float) -> float:
    """Create every resource of the graph one after the other, each waited for; wall time."""
    from azure.mgmt.resource.resources import ResourceManagementClient

    from arm.connection import ArmConnection
    from arm.operations import begin_put, check
    from arm.secrets import render_body
    from tests.support.stack import SECRETS

    connection = ArmConnection(sim.url, polling_interval=0, retry_backoff_max=2.0)
    try:
        client = connection.client(ResourceManagementClient, SUBSCRIPTION)
        started = time.monotonic()
        for resource in graph:
            body = render_body(
                dict(resource.body),
                solution_id=SOLUTION,
                environment=resource.environment,
                resource_id=resource.id,
                environ=SECRETS,
            )
            operation = begin_put(client, resource.id, resource.api_version, body)
            while not operation.done:
                time.sleep(poll)
                operation = check(client, operation, sim.url)
            if operation.status != "Succeeded":
                raise RuntimeError(f"{resource.id}: {operation.error}")
        return time.monotonic() - started
    finally:
        connection.close()


def run(
    *,
    latency_scale: float = 0.005,
    poll_seconds: float = 0.05,
    throttling: bool = True,
    sequential: bool = True,
) -> FanoutResult:
    """Deploy the farm sample, then provision it sequentially; the figures of both."""
    spec = example(SPEC_FILE)
    graph = graph_of(SOLUTION, spec)
    figures: PathFigures = path_figures(graph)
    timeout = 30 + 20 * figures.sequential * latency_scale
    with app_stack(
        latency_scale=latency_scale,
        throttling=throttling,
        OPERATION_POLL_SECONDS=f"{poll_seconds:g}",
    ) as app:
        sim = app.sim
        with FunctionTimings() as timings:
            ours = deploy_once(sim, app, spec, timeout)
        arm_span = _arm_span(sim)
        measured = tuple(measured_chain(sim.requests(), graph))
        counters = sim.counters()
        throttled = int(counters.get("throttled", 0))
        requests = int(counters.get("requests", 0))
        sequential_seconds: float | None = None
        if sequential:
            sim.reset()
            sequential_seconds = provision_sequentially(sim, graph, poll_seconds)
    return FanoutResult(
        latency_scale=latency_scale,
        poll_seconds=poll_seconds,
        throttling=throttling,
        resources=figures.resources,
        critical_path=figures.critical_path * latency_scale,
        phased_critical_path=figures.phased_critical_path * latency_scale,
        sequential_estimate=figures.sequential * latency_scale,
        ours=ours,
        arm_span=arm_span,
        sequential=sequential_seconds,
        throttled=throttled,
        arm_requests=requests,
        chain=figures.chain,
        measured=measured,
        functions=tuple(timings.summary(TIMED_FUNCTIONS)),
    )


def report(result: FanoutResult) -> str:
    """The run's figures as text."""
    rows: list[tuple[object, ...]] = [
        ("critical path (graph, latency table)", result.critical_path),
        ("critical path with shared-first barrier", result.phased_critical_path),
        ("sum of all operations (table)", result.sequential_estimate),
        ("ours: PUT to Completed", result.ours),
        ("ours: first ARM request to last operation end", result.arm_span),
    ]
    if result.sequential is not None:
        rows.append(("sequential provisioning (measured)", result.sequential))
    lines = [
        f"fan-out: farm sample, {result.resources} resources, latency scale "
        f"{result.latency_scale:g}, OPERATION_POLL_SECONDS {result.poll_seconds:g}, "
        f"throttling {'on' if result.throttling else 'off'}",
        f"critical chain: {' -> '.join(result.chain)}",
        format_table(rows, ("measure", "seconds")),
        "measured critical chain (seconds from the first ARM request; gap = start - last "
        "dependency done):",
        format_table(
            [
                (link.name, link.ready, link.started, link.ended, link.gap)
                for link in result.measured
            ],
            ("resource", "ready", "started", "ended", "gap"),
        ),
        "host invocations during our deployment (orchestrator episodes and activities):",
        format_table(
            result.functions, ("function", "calls", "failed", "total s", "median s", "p99 s")
        ),
        f"ARM requests {result.arm_requests}, throttled {result.throttled}",
        f"ours / critical path = {result.ours_over_critical:.3f} (target <= 1.1: "
        f"{verdict(result.ours_over_critical, 1.1, at_most=True)})",
    ]
    ratio = result.sequential_over_ours
    if ratio is not None:
        lines.append(
            f"sequential / ours = {ratio:.2f} (target >= 3: {verdict(ratio, 3, at_most=False)})"
        )
    return "\n".join(lines)

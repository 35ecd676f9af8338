"""Fan-out: how close a deployment gets to the resource graph's critical path, and its cost.

Deploys the farm sample through the API on the local host against the ARM simulator at a scaled
down latency profile, then provisions the same graph sequentially (one resource after the other,
each waited for, through `arm.operations` on the same simulator). Prints, side by side, against
issue 16's targets:

- our wall time ÷ the critical path of the graph under the same latencies (target ≤ 1.08);
- the deployment's orchestrator episodes (≤ 200), the history events they replayed in total and
  the most one episode replayed (≤ 300), from the local host's counters;
- activity executions, and ARM reads and writes from the simulator's request log (reads ÷
  resources ≤ 4);
- sequential wall time ÷ our wall time (target ≥ 4).

The critical path comes from `build_topology` and the simulator's latency table; the request
log's operation times give the time ARM actually spent, to tell waiting from overhead.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from bench.common import (
    STATUS_POLL_SECONDS,
    SUBSCRIPTION,
    FunctionTimings,
    PathFigures,
    app_stack,
    busy_seconds,
    completed_at,
    example,
    format_table,
    graph_of,
    path_figures,
    reads_and_writes,
    verdict,
    wait_all,
    work_counters,
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
    "deploy_environments",
    "plan_environment",
    "begin_apply_resource",
    "begin_apply_resources",
    "check_operations",
    "check_operations_then_start",
    "publish_event",
    "read_outputs",
)
#: Issue 16's targets (benchmarks report them; nothing fails on them).
TARGET_OURS_OVER_CRITICAL = 1.08
TARGET_EPISODES = 200
TARGET_MAX_REPLAYED = 300
TARGET_SEQUENTIAL_OVER_OURS = 4.0
TARGET_READS_PER_RESOURCE = 4.0
#: Flex Consumption's default instance memory size (MB), for the memory-time figure.
INSTANCE_MEMORY_MB = 2048


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
    #: ARM requests of our deployment: GET/HEAD, and every other method.
    arm_reads: int = 0
    arm_writes: int = 0
    #: Per orchestrator function: (name, episodes, history events replayed, most in one).
    orchestrators: tuple[tuple[str, int, int, int], ...] = ()
    #: Per activity function: (name, executions).
    activities: tuple[tuple[str, int], ...] = ()
    #: Seconds during which at least one orchestrator episode or activity ran (their union),
    #: and the sum of their durations.
    durable_busy: float = 0.0
    durable_summed: float = 0.0

    @property
    def ours_over_critical(self) -> float:
        return self.ours / self.critical_path

    @property
    def episodes(self) -> int:
        return sum(o[1] for o in self.orchestrators)

    @property
    def replayed(self) -> int:
        return sum(o[2] for o in self.orchestrators)

    @property
    def max_replayed(self) -> int:
        return max((o[3] for o in self.orchestrators), default=0)

    @property
    def activity_executions(self) -> int:
        return sum(a[1] for a in self.activities)

    @property
    def memory_gb_seconds(self) -> float:
        """Flex Consumption's billed quantity: instance memory while executing (one instance)."""
        return self.durable_busy * INSTANCE_MEMORY_MB / 1024

    @property
    def reads_per_resource(self) -> float:
        return self.arm_reads / self.resources if self.resources else 0.0

    @property
    def sequential_over_ours(self) -> float | None:
        return None if self.sequential is None else self.sequential / self.ours

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["ours_over_critical"] = self.ours_over_critical
        data["sequential_over_ours"] = self.sequential_over_ours
        data["episodes"] = self.episodes
        data["replayed"] = self.replayed
        data["max_replayed"] = self.max_replayed
        data["activity_executions"] = self.activity_executions
        data["reads_per_resource"] = self.reads_per_resource
        data["memory_gb_seconds"] = self.memory_gb_seconds
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
    """One resource on the measured critical chain: when it could start, started and ended,
    and when a poll first saw its operation done (None: its PUT answered it done)."""

    name: str
    ready: float
    started: float
    ended: float
    seen: float | None = None

    @property
    def gap(self) -> float:
        """How long the resource waited after its last dependency was done."""
        return self.started - self.ready

    @property
    def poll_lateness(self) -> float:
        """From the end of its operation to the poll that saw it (the backoff's share)."""
        return 0.0 if self.seen is None else max(0.0, self.seen - self.ended)


def _operation_seen(
    records: list[dict[str, Any]], origin: float, ended: dict[str, float]
) -> dict[str, float]:
    """Per resource path, when a poll of its operation (a GET of the operation's URL) was first
    answered after the operation ended."""
    by_operation: dict[str, str] = {}
    for record in records:
        operation = record.get("operation")
        if record["method"] == "PUT" and operation and operation.get("id"):
            by_operation[str(operation["id"]).lower()] = record["path"]
    seen: dict[str, float] = {}
    for record in records:
        path = record["path"]
        if record["method"] != "GET" or "/operations/" not in path:
            continue
        target = by_operation.get(path.rsplit("/", 1)[-1].lower())
        if target is None or target in seen:
            continue
        at = record["end"] - origin
        if at >= ended.get(target, float("inf")):
            seen[target] = at
    return seen


def measured_chain(records: list[dict[str, Any]], graph: ResourceGraph) -> list[Link]:
    """The chain of resources that finished last, walked back through the dependency each
    one waited for longest, with times relative to the first ARM request (request log)."""
    if not records:
        return []
    origin = min(r["start"] for r in records)
    started: dict[str, float] = {}
    ended: dict[str, float] = {}
    asynchronous: set[str] = set()
    for record in records:
        if record["method"] != "PUT" or not 200 <= record["status"] < 300:
            continue
        path = record["path"]
        started[path] = record["start"] - origin
        operation = record.get("operation")
        ended[path] = (operation["end"] if operation else record["end"]) - origin
        if operation:
            asynchronous.add(path)
    seen = _operation_seen(records, origin, ended)
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
        chain.append(
            Link(
                by_path[current].name,
                ready,
                started[current],
                ended[current],
                seen.get(current) if current in asynchronous else None,
            )
        )
        current = previous
    return chain[::-1]


def deploy_once(
    sim: SimulatorServer,
    app: Any,
    spec: dict[str, Any],
    timeout: float,
    status_poll: float | None = None,
) -> float:
    """PUT the spec, wait for the deployment to complete; the wall time in seconds, from the
    PUT to the orchestration's end as the host recorded it. The client reads the state every
    `status_poll` seconds (None: as the API's `Retry-After` asks), so that its reads do not
    load the process measured."""
    started = time.time()
    response = app.deploy(SOLUTION, spec)
    if response.status_code != 202:
        raise RuntimeError(f"PUT answered {response.status_code}: {response.text[:300]}")
    poll = status_poll or float(response.headers.get("Retry-After", STATUS_POLL_SECONDS))
    state = wait_all(app, [SOLUTION], timeout, poll=poll)[SOLUTION]
    elapsed = completed_at(app, SOLUTION) - started
    status = state["lastOperation"]["runtimeStatus"]
    failed = {e: s["error"] for e, s in state["environments"].items() if s["status"] != "Succeeded"}
    if status != "Completed" or failed:
        raise RuntimeError(f"deployment ended {status}: {failed}")
    return elapsed


def provision_sequentially(
    sim: SimulatorServer, spec_json: dict[str, Any], graph: ResourceGraph, poll: float
) -> float:
    """Create every resource of the graph one after the other, each waited for; wall time."""
    from azure.mgmt.resource.resources import ResourceManagementClient

    from arm.connection import ArmConnection
    from arm.operations import begin_put, check, get_resource
    from arm.secrets import RenderContext, render_body
    from outsystems.spec import PlatformSpec
    from tests.support.stack import SECRETS

    connection = ArmConnection(sim.url, polling_interval=0, retry_backoff_max=2.0)
    try:
        client = connection.client(ResourceManagementClient, SUBSCRIPTION)
        spec = PlatformSpec.from_json_dict(spec_json)
        started = time.monotonic()
        for resource in graph:
            context = RenderContext(
                spec=spec,
                graph=graph,
                resource=resource,
                nonce="sequential",
                read=lambda resource_id, version: get_resource(client, resource_id, version),
                environ=SECRETS,
            )
            body = render_body(dict(resource.body), context)
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
    status_poll: float | None = None,
) -> FanoutResult:
    """Deploy the farm sample, then provision it sequentially; the figures of both.
    `status_poll`: how often the client reads the state (None: the API's `Retry-After`)."""
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
            ours = deploy_once(sim, app, spec, timeout, status_poll)
        work = work_counters(app)
        arm_span = _arm_span(sim)
        records = sim.requests()
        measured = tuple(measured_chain(records, graph))
        reads, writes = reads_and_writes(records)
        durable = set(work.orchestrators) | set(work.activities)
        intervals = [(start, end) for name, start, end in timings.intervals if name in durable]
        counters = sim.counters()
        throttled = int(counters.get("throttled", 0))
        requests = int(counters.get("requests", 0))
        sequential_seconds: float | None = None
        if sequential:
            sim.reset()
            from outsystems.spec import parse_spec

            normalized = parse_spec(SOLUTION, dict(spec), default_subscription_id=SUBSCRIPTION)
            sequential_seconds = provision_sequentially(
                sim, normalized.to_json_dict(), graph, poll_seconds
            )
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
        arm_reads=reads,
        arm_writes=writes,
        orchestrators=tuple(
            (name, f.episodes, f.replayed, f.max_replayed)
            for name, f in sorted(work.orchestrators.items())
        ),
        activities=tuple(sorted(work.activities.items())),
        durable_busy=busy_seconds(intervals),
        durable_summed=sum(end - start for start, end in intervals),
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
        "dependency done; polled late = from its operation's end to the poll that saw it):",
        format_table(
            [
                (link.name, link.ready, link.started, link.ended, link.gap, link.poll_lateness)
                for link in result.measured
            ],
            ("resource", "ready", "started", "ended", "gap", "polled late"),
        ),
        f"gaps on the chain {sum(link.gap for link in result.measured):.2f} s, of which polls "
        f"late {sum(link.poll_lateness for link in result.measured[:-1]):.2f} s (the rest: "
        "orchestrator episodes and activities between a poll and the next PUT)",
        "host invocations during our deployment (orchestrator episodes and activities):",
        format_table(
            result.functions, ("function", "calls", "failed", "total s", "median s", "p99 s")
        ),
        "the farm deployment's durable work (the local host's counters; replayed = stored "
        "history events given to the SDK as already played):",
        format_table(
            [
                *result.orchestrators,
                ("total", result.episodes, result.replayed, result.max_replayed),
            ],
            ("orchestrator", "episodes", "events replayed", "most in one episode"),
        ),
        f"activity executions {result.activity_executions}: "
        + ", ".join(f"{name} {n}" for name, n in result.activities),
        f"durable executions {result.episodes + result.activity_executions} (episodes and "
        f"activities; the HTTP calls are the benchmark's); at least one running "
        f"{result.durable_busy:.1f} s of {result.ours:.1f} s, summed {result.durable_summed:.1f} "
        f"s; x {INSTANCE_MEMORY_MB} MB instance memory = {result.memory_gb_seconds:.1f} GB-s",
        f"ARM requests {result.arm_requests} for {result.resources} resources: reads (GET) "
        f"{result.arm_reads}, writes (PUT/PATCH/DELETE/POST) {result.arm_writes}, throttled "
        f"{result.throttled}",
        "against issue 16's targets:",
        _target_line(
            "ours / critical path", result.ours_over_critical, TARGET_OURS_OVER_CRITICAL, True
        ),
        _target_line("orchestrator episodes per farm", result.episodes, TARGET_EPISODES, True),
        _target_line(
            "most history events replayed by one episode",
            result.max_replayed,
            TARGET_MAX_REPLAYED,
            True,
        ),
    ]
    ratio = result.sequential_over_ours
    if ratio is not None:
        lines.append(_target_line("sequential / ours", ratio, TARGET_SEQUENTIAL_OVER_OURS, False))
    lines.append(
        _target_line(
            "ARM reads / resources", result.reads_per_resource, TARGET_READS_PER_RESOURCE, True
        )
    )
    return "\n".join(lines)


def _target_line(name: str, value: float, target: float, at_most: bool) -> str:
    shown = f"{value:.3f}" if isinstance(value, float) else str(value)
    sign = "<=" if at_most else ">="
    return (
        f"  {name} = {shown} (target {sign} {target:g}: {verdict(value, target, at_most=at_most)})"
    )

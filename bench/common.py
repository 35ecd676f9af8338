"""What the benchmarks share: samples, the app on the local host, graph arithmetic, reporting.

The app runs as in the end-to-end tests (`tests.support.stack`): the local Functions host
in-process, the ARM simulator in-process and Azurite's queue service as a child process. The
graph arithmetic (critical path, sequential sum) uses the simulator's own latency table, so the
reference figures and the measured run are under the same latencies.
"""

from __future__ import annotations

import json
import logging
import math
import statistics
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from localdev.armsim.server import SimulatorServer
    from localdev.host.durable.counters import WorkSnapshot
    from outsystems.topology import Resource, ResourceGraph
    from tests.support.azurite import Azurite
    from tests.support.stack import Stack

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
#: The subscription of every benchmark platform (the one the stack's settings name).
SUBSCRIPTION = "11111111-2222-3333-4444-555555555555"


def example(name: str) -> dict[str, Any]:
    """A sample file of `examples/`, parsed."""
    body: dict[str, Any] = json.loads((EXAMPLES / name).read_text())
    return body


def graph_of(solution_id: str, spec: Mapping[str, Any]) -> ResourceGraph:
    """The resource graph the app will deploy for this spec."""
    from outsystems.spec import parse_spec
    from outsystems.topology import build_topology

    return build_topology(parse_spec(solution_id, dict(spec), default_subscription_id=SUBSCRIPTION))


def create_seconds(resource: Resource) -> float:
    """How long the simulator takes to create this resource, at latency scale 1."""
    from localdev.armsim.latency import operation_seconds

    return operation_seconds(resource.type, "create", resource.body)


@dataclass(frozen=True)
class PathFigures:
    """Reference times of a graph at latency scale 1 (seconds)."""

    critical_path: float
    chain: tuple[str, ...]
    phased_critical_path: float
    sequential: float
    resources: int


def path_figures(graph: Iterable[Resource]) -> PathFigures:
    """Critical path (longest dependency chain), the same with the app's shared-first barrier,
    and the sum of all operations (one after the other)."""
    resources = list(graph)
    finish: dict[str, tuple[float, tuple[str, ...]]] = {}
    for resource in resources:  # the graph is in dependency order
        start, chain = max(
            (finish[d.lower()] for d in resource.depends_on), default=(0.0, ()), key=lambda f: f[0]
        )
        finish[resource.id.lower()] = (start + create_seconds(resource), (*chain, resource.name))
    longest, chain = max(finish.values(), key=lambda f: f[0])
    # The deployment creates the shared resources first, then fans out the environments: the
    # environments' chains start after the slowest shared resource, not after their own deps.
    shared = [r for r in resources if r.environment == "shared"]
    shared_done = max((finish[r.id.lower()][0] for r in shared), default=0.0)
    env_finish: dict[str, float] = {}
    for resource in resources:
        if resource.environment == "shared":
            continue
        start = max(
            (env_finish.get(d.lower(), shared_done) for d in resource.depends_on),
            default=shared_done,
        )
        env_finish[resource.id.lower()] = max(start, shared_done) + create_seconds(resource)
    phased = max(env_finish.values(), default=shared_done)
    return PathFigures(
        critical_path=longest,
        chain=chain,
        phased_critical_path=phased,
        sequential=sum(create_seconds(r) for r in resources),
        resources=len(resources),
    )


def percentile(values: Sequence[float], fraction: float) -> float:
    """The `fraction` quantile (nearest rank: the smallest value with at least `fraction` of
    the values at or below it) of `values`; 0 when empty."""
    if not values:
        return 0.0
    ordered = sorted(values)
    # The epsilon keeps float noise (0.07 * 100 = 7.000000000000001) from skipping a rank.
    rank = math.ceil(fraction * len(ordered) - 1e-9)
    return ordered[max(1, min(len(ordered), rank)) - 1]


#: ARM reads: what does not change anything. Every other method (PUT, PATCH, DELETE, POST) is a
#: write for the figures, as ARM's throttling counts them (POST actions included).
READ_METHODS = frozenset({"GET", "HEAD"})


def reads_and_writes(records: Iterable[Mapping[str, Any]]) -> tuple[int, int]:
    """ARM reads and writes in a request log (throttled and failed requests included: each
    was sent)."""
    reads = writes = 0
    for record in records:
        if str(record["method"]).upper() in READ_METHODS:
            reads += 1
        else:
            writes += 1
    return reads, writes


def work_counters(app: Stack) -> WorkSnapshot:
    """What the local host's durable engine has done so far (episodes, replays, activities)."""
    host = app.host.host
    if host is None or host.engine is None:
        raise RuntimeError("the local host is not running")
    return host.engine.counters.snapshot()


def busy_seconds(intervals: Iterable[tuple[float, float]]) -> float:
    """How long at least one of the (start, end) intervals was running: their union's length
    (what Flex Consumption bills memory for, per instance, rather than the sum)."""
    total = 0.0
    current: tuple[float, float] | None = None
    for start, end in sorted(intervals):
        if current is None or start > current[1]:
            if current is not None:
                total += current[1] - current[0]
            current = (start, end)
        else:
            current = (current[0], max(current[1], end))
    if current is not None:
        total += current[1] - current[0]
    return total


def median(values: Sequence[float]) -> float:
    """The median, 0 when empty."""
    return statistics.median(values) if values else 0.0


@contextmanager
def app_stack(
    *,
    latency_scale: float,
    throttling: bool = True,
    simulator: Mapping[str, Any] | None = None,
    **settings: str,
) -> Iterator[Stack]:
    """Azurite, the ARM simulator and the app on the local host, torn down afterwards.

    `simulator` overrides further `SimConfig` fields; `settings` override app settings.
    """
    from localdev.armsim.testing import running_simulator
    from tests.support.azurite import running_azurite
    from tests.support.stack import running_stack

    with ExitStack() as stack:
        azurite: Azurite = stack.enter_context(running_azurite())
        sim: SimulatorServer = stack.enter_context(
            running_simulator(
                latency_scale=latency_scale, throttling=throttling, **dict(simulator or {})
            )
        )
        # Typed loosely: `running_stack` takes its own keyword flags next to the settings.
        options: dict[str, Any] = dict(settings)
        yield stack.enter_context(running_stack(sim, azurite, **options))


#: How often the benchmarks' client reads a platform's state while it waits: what the API's
#: `Retry-After` asks of a client (whole seconds, at least one; `triggers.platforms`). Until
#: round 8 the client polled every 20 ms, and each `GET` ran in the process it measured.
STATUS_POLL_SECONDS = 1.0


def wait_all(
    app: Stack,
    solution_ids: Sequence[str],
    timeout: float,
    *,
    poll: float = STATUS_POLL_SECONDS,
) -> dict[str, dict[str, Any]]:
    """Poll each platform's state every `poll` seconds until its last operation ended; their
    final states. When an operation ended comes from `completed_at`, not from the poll."""
    from tests.support.stack import TERMINAL

    deadline = time.monotonic() + timeout
    states: dict[str, dict[str, Any]] = {}
    while len(states) < len(solution_ids):
        for solution_id in solution_ids:
            if solution_id in states:
                continue
            state = app.state(solution_id)
            if state["lastOperation"]["runtimeStatus"] in TERMINAL:
                states[solution_id] = state
        if len(states) == len(solution_ids):
            break
        if time.monotonic() > deadline:
            missing = sorted(set(solution_ids) - set(states))
            raise TimeoutError(f"still running after {timeout:g} s: {', '.join(missing)}")
        time.sleep(poll)
    return states


def completed_at(app: Stack, solution_id: str) -> float:
    """When the platform's last operation ended (wall clock, `time.time()`): the local host's
    record of its orchestration, to the microsecond (the API shows whole seconds)."""
    from datetime import datetime

    from services.platforms import platform_instance_id

    host = app.host.host
    if host is None or host.engine is None:
        raise RuntimeError("the local host is not running")
    row = host.engine.store.get_instance(platform_instance_id(solution_id))
    if row is None:
        raise RuntimeError(f"no orchestration for {solution_id}")
    return datetime.fromisoformat(row.last_updated_time.replace("Z", "+00:00")).timestamp()


def format_table(rows: Sequence[Sequence[object]], header: Sequence[str]) -> str:
    """A plain-text table, columns left-aligned."""
    cells = [[str(c) for c in header], *[[_cell(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(line.rstrip() for line in lines)


def _cell(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 100 else f"{value:.0f}"
    return str(value)


def verdict(value: float, target: float, *, at_most: bool) -> str:
    """`met` or `missed` against a target (never raises: benchmarks do not fail on numbers)."""
    ok = value <= target if at_most else value >= target
    return "met" if ok else "MISSED"


class FunctionTimings(logging.Handler):
    """Durations of every function invocation, from the local host's `Executed ...` log lines.

    Used as a context manager: attached to the host's invoker logger for the duration of a run.
    """

    LOGGER = "localdev.host.invoke"

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.durations: dict[str, list[float]] = {}
        self.failures: dict[str, int] = {}
        #: Every invocation: (function, start, end), wall clock.
        self.intervals: list[tuple[str, float, float]] = []
        self._saved_level = logging.NOTSET
        self._saved_propagate = True

    def emit(self, record: logging.LogRecord) -> None:
        if not str(record.msg).startswith("Executed 'Functions."):
            return
        args = record.args
        if isinstance(args, tuple) and len(args) == 4:
            name, outcome, _id, duration_ms = args
            duration = float(str(duration_ms)) / 1000
            self.durations.setdefault(str(name), []).append(duration)
            # Logged when the invocation ended: it ran from `duration` before that.
            self.intervals.append((str(name), record.created - duration, record.created))
            if outcome != "Succeeded":
                self.failures[str(name)] = self.failures.get(str(name), 0) + 1

    def __enter__(self) -> FunctionTimings:
        logger = logging.getLogger(self.LOGGER)
        self._saved_level, self._saved_propagate = logger.level, logger.propagate
        # Every invocation is logged at INFO: collect them without flooding the console.
        logger.setLevel(logging.INFO)
        logger.propagate = False
        logger.addHandler(self)
        return self

    def __exit__(self, *exc_info: object) -> None:
        logger = logging.getLogger(self.LOGGER)
        logger.removeHandler(self)
        logger.setLevel(self._saved_level)
        logger.propagate = self._saved_propagate

    def summary(self, names: Iterable[str]) -> list[tuple[str, int, int, float, float, float]]:
        """Per function: invocations, failed ones, total, median and p99 seconds."""
        rows = []
        for name in names:
            values = self.durations.get(name, [])
            rows.append(
                (
                    name,
                    len(values),
                    self.failures.get(name, 0),
                    sum(values),
                    median(values),
                    percentile(values, 0.99),
                )
            )
        return rows

"""A zero-overhead model of the deployment's walks: what the poll policy alone costs and allows.

Runs `outsystems.deployment.Walk` (the walk the orchestrations drive) over the farm sample's
graph in simulated time, with each create lasting what the simulator's latency table says at the
fan-out's latency scale, and no orchestrator or activity time at all: every poll is answered at
the instant it is due, every start at once. Prints, per poll ceiling and early fraction, for
walk version 4 (the shared walk, then one walk per environment) and walk version 5 (one walk of
them all, `PlatformWalk`): the wall time ÷ the critical path (the lateness the polls alone add),
the polls (wake-ups), the operations read, the start steps and the least orchestrator episodes
they imply (two per poll: the timer, the check's answer; one per start step at best). A model,
not a measurement: the phase of each operation's end against its poll schedule comes from the
latency table, so read the trend, not the digits.

    .venv/bin/python -m bench.walk_model
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from outsystems.messages import OperationStatus

LATENCY_SCALE = 0.005
POLL_SECONDS = 0.05
CEILINGS = (2.0, 4.0, 6.0, 8.0)
#: `Walk.poll_early`: how early (a fraction of its interval) an operation is polled along with
#: one that is due.
EARLY = (0.0, 0.25, 0.5)
_T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _walk(
    walk: Any, durations: dict[str, float], start: datetime
) -> tuple[datetime, int, int, int]:
    """Drive a walk (`Walk` or `PlatformWalk`) to its end; when it ended, its polls (wake-ups),
    its start steps and the operations it read (ARM reads of operations)."""
    from outsystems.messages import Operation

    now, polls, starts, reads = start, 0, 0, 0
    ends: dict[str, datetime] = {}
    while not walk.finished:
        ready = walk.ready(now)
        if ready:
            starts += 1
            for resource in ready:
                seconds = durations[resource.id]
                ends[resource.id] = now + timedelta(seconds=seconds)
                status: OperationStatus = "Succeeded" if seconds <= 0 else "InProgress"
                operation = Operation(resource.id, "PUT", status, poll_mode="async-operation")
                walk.started(resource.id, operation, now)
            continue
        wake = walk.next_wake(now)
        if wake is None:
            raise RuntimeError("the walk waits for nothing")
        now, polls = max(wake, now), polls + 1
        due = walk.due(now)
        reads += len(due)
        for operation in due:
            done = now >= ends[operation.resource_id]
            walk.checked(operation._replace(status="Succeeded" if done else "InProgress"), now)
    return now, polls, starts, reads


def main() -> None:
    from bench.common import example, graph_of, path_figures
    from localdev.armsim.latency import operation_seconds
    from outsystems.deployment import PlatformWalk, Walk
    from outsystems.names import ENVIRONMENTS, SHARED

    graph = graph_of("acme", example("spec-farm.json"))
    critical = path_figures(graph).critical_path * LATENCY_SCALE
    durations = {
        r.id: operation_seconds(r.type, "create", dict(r.body)) * LATENCY_SCALE for r in graph
    }
    print(f"critical path {critical:.2f} s, shortest poll {POLL_SECONDS:g} s, no overhead")
    print(
        "ceiling  early  design           wall s  / critical  polls  operation reads  "
        "start steps  episodes at least"
    )

    def walk_of(scope: str, ceiling: float, early: float) -> Walk:
        resources = graph.for_environment(scope)
        ids = [r.id for r in resources]
        return Walk(
            resources, ids, poll_seconds=POLL_SECONDS, poll_ceiling=ceiling, poll_early=early
        )

    for ceiling in CEILINGS:
        for early in EARLY:
            policy = (ceiling, early)
            # Walk version 4: the shared walk, then one walk per environment, each on its own.
            end, polls, starts, reads = _walk(walk_of(SHARED, *policy), durations, _T0)
            shared_end = end
            for env in ENVIRONMENTS:
                env_end, env_polls, env_starts, env_reads = _walk(
                    walk_of(env, *policy), durations, shared_end
                )
                end = max(end, env_end)
                polls, starts, reads = polls + env_polls, starts + env_starts, reads + env_reads
            # Walk version 5: one walk of them all.
            platform = PlatformWalk(
                {scope: walk_of(scope, *policy) for scope in (SHARED, *ENVIRONMENTS)},
                shared=SHARED,
            )
            one = _walk(platform, durations, _T0)
            for design, (finish, n_polls, n_starts, n_reads) in (
                ("per environment", (end, polls, starts, reads)),
                ("one walk", one),
            ):
                wall = (finish - _T0).total_seconds()
                print(
                    f"{ceiling:>6g}x  {early:5g}  {design:15s}  {wall:6.2f}  "
                    f"{wall / critical:10.3f}  {n_polls:5d}  {n_reads:15d}  {n_starts:11d}  "
                    f"{2 * n_polls + n_starts:17d}"
                )


if __name__ == "__main__":
    main()

"""When to poll a running ARM operation again: ARM's `Retry-After`, else a backoff.

One policy for every wait on ARM: the deployment's and teardown's walks
(`outsystems.deployment.Walk`) and the waits on one operation (`orchestrators.calls`,
`Calls.wait_for_operation`: the scaler's capacity change, the teardown's resource group).
Pure and light (nothing but the standard library), so the orchestrators the worker loads at
cold start can use it without the graph modules. `docs/performance.md`, "Bounded orchestrations
and polling" and its rounds, has the trade-off and the choice.
"""

from __future__ import annotations

from typing import Final

#: How a running operation is polled when ARM gives no `Retry-After`: the first poll after the
#: shortest interval (`Tuning.poll_seconds`, `OPERATION_POLL_SECONDS`), each next one this many
#: times later than the last, never later than `POLL_CEILING` times the shortest. A generic
#: policy (an operation that has run long is likely to run a while more), not a table of
#: durations per type.
POLL_GROWTH: Final = 1.5
POLL_CEILING: Final = 4.0
#: The ceiling of the deployment's and teardown's walks (`outsystems.deployment.Walk`): a walk
#: polls many operations with one timer and one check, each wake-up costs the orchestration
#: two episodes, and a later ceiling lets more operations share each wake-up
#: (`docs/performance.md`, "Bounded orchestrations and polling"). A single wait keeps
#: `POLL_CEILING`.
#: Walk version 6 (whose start batches take one activity for a chain of synchronous answers)
#: spent some of the episodes it saved on polling a little sooner: 5 times (version 5: 6).
#: Walk version 9 polls at 4 times: an operation that something waits for is seen ended a fifth
#: sooner, for 10-15 more orchestrator episodes per farm deployment than version 8 (25-30 more
#: at 4 times alone, less the 8 or so its leaves save by no longer waking the walk on their
#: own, `outsystems.deployment.PlatformWalk`); `docs/performance.md`, "Round 12", has the
#: trade-off measured at 5, 4 and 3.5 times.
WALK_POLL_CEILING: Final = 4.0
#: The ceiling of an operation that nothing still to start waits for (walk version 7), while
#: one that something waits for is still running or to start: its end starts nothing, and the
#: walk cannot finish before the others anyway. Once only such operations are left, they go back
#: to `WALK_POLL_CEILING` (`outsystems.deployment.PlatformWalk`): one of them may end the walk.
LEAF_POLL_CEILING: Final = 10.0


def poll_interval(shortest: float, previous: float | None, ceiling: float | None = None) -> float:
    """The interval (seconds) before the next poll of an operation polled after `previous`
    (None: not polled yet); `ceiling` in multiples of the shortest (default `POLL_CEILING`)."""
    if previous is None or previous <= 0:
        return shortest
    return min(previous * POLL_GROWTH, shortest * (ceiling or POLL_CEILING))


def poll_wait(
    shortest: float, interval: float, retry_after: float | None, ceiling: float | None = None
) -> float:
    """How long to wait before the next poll: ARM's `Retry-After` where it gave one, else the
    backoff's interval; never under the shortest interval nor over the ceiling."""
    wait = interval if retry_after is None else retry_after
    return max(shortest, min(wait, shortest * (ceiling or POLL_CEILING)))

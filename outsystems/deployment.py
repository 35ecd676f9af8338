"""The walk of one environment's resources: what to start next, what is running, what failed.

Pure state that the deployment orchestration drives, and so deterministic: it is given the time
(`context.current_utc_datetime`) and the outcomes of activities, and decides what to start, when
a wait has lasted too long and how the environment's progress reads. Resources start as soon as
everything they depend on is done, so independent branches of the graph run in parallel.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Container, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any, Final

from outsystems.arm_errors import BUSY_CODES, RETRYABLE_CODES, THROTTLED_CODES
from outsystems.messages import (
    EnvironmentProgress,
    EnvironmentStatus,
    ErrorInfo,
    Operation,
    StepState,
    Tuning,
    WalkState,
)

# The polling policy lives in its own light module (the scaler loads it at cold start); the
# names stay importable from here.
from outsystems.polling import LEAF_POLL_CEILING as LEAF_POLL_CEILING
from outsystems.polling import POLL_CEILING as POLL_CEILING
from outsystems.polling import POLL_GROWTH as POLL_GROWTH
from outsystems.polling import WALK_POLL_CEILING as WALK_POLL_CEILING
from outsystems.polling import poll_interval as poll_interval
from outsystems.polling import poll_wait as poll_wait
from outsystems.resource_types import (
    APP_GATEWAY,
    BASTION_HOST,
    SCALE_SET,
    SQL_DATABASE,
    SQL_SERVER,
    VM,
    VM_EXTENSION,
)
from outsystems.spec import PlatformSpec
from outsystems.topology import Resource, ResourceGraph, build_topology

#: How long one resource's operation may run before the step fails as timed out (minutes).
#: Generous: the Marketplace deployment takes about an hour, mostly gateways and the setup.
DEFAULT_TIMEOUT_MINUTES: Final[Mapping[str, float]] = {
    APP_GATEWAY: 60,
    BASTION_HOST: 45,
    VM_EXTENSION: 120,
    SCALE_SET: 120,
    VM: 40,
    SQL_SERVER: 40,
    SQL_DATABASE: 40,
}
FALLBACK_TIMEOUT_MINUTES: Final = 30.0
#: Attempts of one resource when its operation fails with a retryable ARM code.
MAX_ATTEMPTS: Final = 4
RETRY_BACKOFF_SECONDS: Final = (10.0, 30.0, 60.0)
#: Between two tries of a resource that another operation holds (e.g. one that an earlier,
#: canceled or crashed run started, or the first send of an activity that ran twice).
BUSY_BACKOFF_SECONDS: Final = 30.0
#: The setup script's exit code when the server needed a reboot: it scheduled its own
#: continuation after the reboot, and running the extension again collects the outcome
#: (infra/scripts/Install-OutSystems.ps1; 3010 is Windows' ERROR_SUCCESS_REBOOT_REQUIRED).
REBOOT_EXIT_CODE: Final = 3010
#: How long to wait before running a setup extension again that exited 3010, and how many
#: times at most. 3010 means the server rebooted, or a step would not fit the extension's 90
#: minutes and goes on in the background: the next run waits for that run and reports it.
REBOOT_WAIT_SECONDS: Final = 600.0
MAX_REBOOT_RERUNS: Final = 6
# The Custom Script Extension's message for a non-zero exit code ("... failed because it
# returned a non-zero exit code of: '3010'"), as ARM relays it in VMExtensionProvisioningError.
_EXIT_CODE_RE: Final = re.compile(r"exit code of:?\s*'?(\d+)'?", re.IGNORECASE)


#: How many links down a start batch carries the resources that wait only for it (walk version
#: 6, `PlatformWalk.following`): each link is one synchronous answer the activity waits for.
FOLLOW_DEPTH: Final = 3

#: An operation whose next poll is this fraction of its interval away or less is polled with
#: one that is due: fewer checks and orchestrator episodes, at most half an interval early.
POLL_EARLY: Final = 0.5
#: What walks before walk version 5 used (`poll_policy`): their histories replay with them.
_POLL_EARLY_BEFORE_5: Final = 0.25
#: The ceiling of walk version 5, which version 6 lowered, and of versions 6-8, which version 9
#: lowered (`poll_policy`).
_WALK_POLL_CEILING_5: Final = 6.0
_WALK_POLL_CEILING_6_TO_8: Final = 5.0


def poll_policy(walk_version: int) -> tuple[float, float]:
    """The poll ceiling (in multiples of the shortest interval) and the early fraction of a walk
    of this version (`outsystems.messages.WALK_VERSION`): a walk started before version 6
    replays its history with the values it was written with."""
    if walk_version >= 9:
        return WALK_POLL_CEILING, POLL_EARLY
    if walk_version >= 6:
        return _WALK_POLL_CEILING_6_TO_8, POLL_EARLY
    if walk_version == 5:
        return _WALK_POLL_CEILING_5, POLL_EARLY
    return POLL_CEILING, _POLL_EARLY_BEFORE_5


def leaf_poll_ceiling(walk_version: int) -> float | None:
    """The poll ceiling of an operation nothing waits for while others are waited for
    (`PlatformWalk`'s `leaf_ceiling`): walk version 7 on; None before (one ceiling for all)."""
    return LEAF_POLL_CEILING if walk_version >= 7 else None


def reboot_requested(message: str) -> bool:
    """Whether an extension's failure is the setup script asking to be run after a reboot."""
    match = _EXIT_CODE_RE.search(message)
    return match is not None and int(match.group(1)) == REBOOT_EXIT_CODE


def display_name(resource: Resource) -> str:
    """A resource's name as people read it: a child with its parent (`vm/outsystems-setup`)."""
    depth = resource.type.count("/")
    if depth < 2:
        return resource.name
    segments = resource.id.split("/")
    lowered = [segment.lower() for segment in segments]
    top = lowered.index("providers") + 3 if "providers" in lowered else len(segments) - 3
    return f"{segments[min(top, len(segments) - 3)]}/{segments[-1]}"


def timeout_for(resource_type: str, scale: float = 1.0) -> timedelta:
    """The wait limit of one operation on a resource of this type."""
    minutes = DEFAULT_TIMEOUT_MINUTES.get(resource_type, FALLBACK_TIMEOUT_MINUTES)
    return timedelta(minutes=minutes * scale)


@dataclass
class _Step:
    resource: Resource
    attempts: int = 0
    operation: Operation | None = None
    deadline: datetime | None = None
    not_before: datetime | None = None
    first_started: datetime | None = None
    reruns: int = 0
    waiting_for: str | None = None
    next_poll: datetime | None = None
    interval: float = 0.0

    def state(self) -> StepState:
        return StepState(
            self.resource.id,
            self.attempts,
            self.operation,
            self.deadline,
            self.not_before,
            self.first_started,
            self.reruns,
            self.waiting_for,
            self.next_poll,
            self.interval,
        )

    @staticmethod
    def of(resource: Resource, state: StepState) -> _Step:
        return _Step(
            resource,
            state.attempts,
            state.operation,
            state.deadline,
            state.not_before,
            state.first_started,
            state.reruns,
            state.waiting_for,
            state.next_poll,
            state.interval,
        )


@dataclass
class Walk:
    """The deployment of a set of resources in dependency order.

    `resources` are the environment's resources in dependency order; those not in `to_apply`
    are already as desired (the plan said `noop`) and count as done. Dependencies outside the
    walk (shared resources, deployed first) count as done too.
    """

    resources: Sequence[Resource]
    to_apply: Iterable[str]
    timeout_scale: float = 1.0
    backoff_scale: float = 1.0
    verb: str = "creating"
    #: The shortest interval between polls of one operation (seconds; `Tuning.poll_seconds`).
    poll_seconds: float = 15.0
    #: The longest interval, in multiples of the shortest, and how early (a fraction of its
    #: interval) an operation is polled along with one that is due (`poll_policy`).
    poll_ceiling: float = WALK_POLL_CEILING
    poll_early: float = POLL_EARLY
    #: A start ARM throttled waits like one of a busy resource, not as a failed attempt (walk
    #: version 5, whose start batches answer a throttled PUT as not started).
    throttle_waits: bool = True
    #: The poll ceiling of a resource's operation, where it is not `poll_ceiling` for all (set
    #: by `PlatformWalk` for walk version 7). Not part of the walk's state.
    ceiling_of: Callable[[Resource], float] | None = field(default=None, compare=False)
    _pending: list[_Step] = field(init=False)
    _running: list[_Step] = field(init=False)
    _done: set[str] = field(init=False)
    _ids: set[str] = field(init=False)
    #: The resources the plan left alone (done from the start).
    _unchanged: frozenset[str] = field(init=False)
    error: ErrorInfo | None = field(init=False, default=None)
    step: str | None = field(init=False, default=None)

    @classmethod
    def tuned(
        cls,
        resources: Sequence[Resource],
        to_apply: Iterable[str],
        tuning: Tuning,
        walk_version: int,
        verb: str = "creating",
    ) -> Walk:
        """A walk at an orchestration's pace (`Tuning`), with the poll policy and throttling
        behaviour of its walk version (what its history was written with)."""
        ceiling, early = poll_policy(walk_version)
        return cls(
            resources,
            to_apply,
            timeout_scale=tuning.timeout_scale,
            backoff_scale=tuning.backoff_scale,
            verb=verb,
            poll_seconds=tuning.poll_seconds,
            poll_ceiling=ceiling,
            poll_early=early,
            throttle_waits=walk_version >= 5,
        )

    def __post_init__(self) -> None:
        apply = {resource_id.lower() for resource_id in self.to_apply}
        self._ids = {r.id.lower() for r in self.resources}
        self._pending = [_Step(r) for r in self.resources if r.id.lower() in apply]
        self._done = {r.id.lower() for r in self.resources if r.id.lower() not in apply}
        self._unchanged = frozenset(self._done)
        self._running = []

    # --- what to do next ------------------------------------------------------------------

    @property
    def finished(self) -> bool:
        """Nothing left to start or wait for (or a permanent failure stopped the walk)."""
        return self.error is not None or (not self._pending and not self._running)

    @property
    def running(self) -> list[Operation]:
        """The operations in flight, as the activities returned them."""
        return [step.operation for step in self._running if step.operation is not None]

    def ready(self, now: datetime, outside_done: Container[str] | None = None) -> list[Resource]:
        """Pending resources whose dependencies are all done and whose backoff has passed.

        A dependency outside the walk counts as done, or, where `outside_done` is given (the
        lower-cased ids done elsewhere: the shared walk's, when it runs alongside), when in it.
        """
        if self.error is not None:
            return []
        return [
            step.resource
            for step in self._pending
            if (step.not_before is None or step.not_before <= now)
            and all(self._dependency_done(dep, outside_done) for dep in step.resource.depends_on)
        ]

    def _dependency_done(self, dependency: str, outside_done: Container[str] | None) -> bool:
        """Whether a dependency is done: in the walk, once it succeeded; outside it, always, or
        once in `outside_done` where that is given (`ready`)."""
        key = dependency.lower()
        if key in self._ids:
            return key in self._done
        return outside_done is None or key in outside_done

    def following(
        self, now: datetime, batch: Container[str], outside_done: Container[str] | None = None
    ) -> list[tuple[Resource, tuple[str, ...]]]:
        """Pending resources not in `batch` (lower-cased ids about to start together) that wait
        only for some of the batch: each with the ids of the batch it waits for. Every other
        dependency is done (one outside the walk as in `ready`), and its backoff has passed.
        """
        if self.error is not None:
            return []
        found: list[tuple[Resource, tuple[str, ...]]] = []
        for step in self._pending:
            resource = step.resource
            if resource.id.lower() in batch or (step.not_before and step.not_before > now):
                continue
            after: list[str] = []
            for dep in resource.depends_on:
                key = dep.lower()
                if key in batch:
                    after.append(dep)
                elif not self._dependency_done(dep, outside_done):
                    break
            else:
                if after:
                    found.append((resource, tuple(after)))
        return found

    def rerun_of(self, resource_id: str) -> int:
        """How many times a resource is being run again after its server rebooted (0: never)."""
        step = next(
            (s for s in self._pending if s.resource.id.lower() == resource_id.lower()), None
        )
        return step.reruns if step is not None else 0

    def first_attempt(self, resource_id: str) -> bool:
        """Whether the resource is to start for the first time (no attempt, no rerun yet)."""
        return any(
            s.resource.id.lower() == resource_id.lower() and s.attempts == 0 and s.reruns == 0
            for s in self._pending
        )

    def next_retry_at(self) -> datetime | None:
        """When the earliest backed-off resource may start again."""
        times = [s.not_before for s in self._pending if s.not_before is not None]
        return min(times) if times else None

    def next_wake(
        self, now: datetime, riding: Callable[[Resource], bool] | None = None
    ) -> datetime | None:
        """When something may have changed: the earliest poll due or backoff ending (None:
        nothing runs and nothing waits for a time). `riding`: running operations whose polls
        wait for a wake that something else sets (`PlatformWalk.next_wake`)."""
        running = self._running
        if riding is not None:
            running = [s for s in running if not riding(s.resource)]
        times = [s.next_poll or now for s in running]
        times += [s.not_before for s in self._pending if s.not_before and s.not_before > now]
        return min(times) if times else None

    def due(self, at: datetime) -> list[Operation]:
        """The running operations to poll at `at`: those whose next poll is due, and those due
        within `poll_early` of their interval (one check for several, one episode less)."""
        return [
            step.operation
            for step in self._running
            if step.operation is not None
            and (
                step.next_poll is None
                or step.next_poll - at <= timedelta(seconds=step.interval * self.poll_early)
            )
        ]

    # --- outcomes -------------------------------------------------------------------------

    def started(self, resource_id: str, operation: Operation, now: datetime) -> None:
        """A resource's operation was started."""
        step = self._take(self._pending, resource_id)
        step.attempts += 1
        step.operation = operation
        step.not_before = None
        step.waiting_for = None
        step.first_started = step.first_started or now
        step.deadline = now + timeout_for(step.resource.type, self.timeout_scale)
        self._running.append(step)
        self._settle(step, now)

    def checked(self, operation: Operation, now: datetime) -> None:
        """The latest state of a running operation."""
        step = next(
            (s for s in self._running if s.resource.id.lower() == operation.resource_id.lower()),
            None,
        )
        if step is None:
            return
        step.operation = operation
        self._settle(step, now)

    def _schedule_poll(self, step: _Step, now: datetime) -> None:
        ceiling = self.poll_ceiling if self.ceiling_of is None else self.ceiling_of(step.resource)
        step.interval = poll_interval(self.poll_seconds, step.interval or None, ceiling)
        retry_after = None if step.operation is None else step.operation.retry_after
        wait = poll_wait(self.poll_seconds, step.interval, retry_after, ceiling)
        step.next_poll = now + timedelta(seconds=wait)

    def cap_polls(self, now: datetime) -> None:
        """Bring every running operation's next poll within `poll_ceiling` of `now`, and its
        interval within the ceiling (those polled at a later ceiling, `ceiling_of`)."""
        longest = self.poll_seconds * self.poll_ceiling
        for step in self._running:
            step.interval = min(step.interval, longest)
            if step.next_poll is not None:
                step.next_poll = min(step.next_poll, now + timedelta(seconds=longest))

    def fail(self, resource_id: str | None, code: str, message: str) -> None:
        """A permanent failure: the walk stops starting anything."""
        self.error = ErrorInfo(code, message, resource_id or "")
        self.step = None

    def check_deadlines(self, now: datetime) -> None:
        """Fail the walk if an operation has run past its limit."""
        for step in self._running:
            if step.deadline is not None and now > step.deadline:
                limit = timeout_for(step.resource.type, self.timeout_scale)
                self.fail(
                    step.resource.id,
                    "OperationTimedOut",
                    f"{step.resource.name} did not finish within {_minutes(limit)}",
                )
                return

    def _settle(self, step: _Step, now: datetime) -> None:
        operation = step.operation
        status = None if operation is None else operation.status
        if status == "InProgress":
            self.step = f"{self.verb} {display_name(step.resource)}"
            self._schedule_poll(step, now)
            return
        self._running.remove(step)
        step.next_poll, step.interval = None, 0.0
        if status == "Succeeded":
            self._done.add(step.resource.id.lower())
            return
        error = None if operation is None else operation.error
        code = (error.code if error is not None else "") or "Failed"
        message = (error.message if error is not None else "") or "the operation failed"
        limit = timeout_for(step.resource.type, self.timeout_scale)
        if code in BUSY_CODES or (code in THROTTLED_CODES and self.throttle_waits):
            # ARM is still running another operation on the resource, or throttled the request
            # (nothing was started): waiting is no failed attempt, and may take as long as that
            # type's operations take.
            if step.first_started is None or now - step.first_started >= limit:
                self.fail(step.resource.id, code, message)
                return
            step.attempts -= 1
            step.not_before = now + timedelta(seconds=BUSY_BACKOFF_SECONDS * self.backoff_scale)
            step.operation = None
            self._pending.append(step)
            return
        if step.resource.type == VM_EXTENSION and reboot_requested(message):
            if step.reruns < MAX_REBOOT_RERUNS:
                step.reruns += 1
                step.attempts -= 1
                step.not_before = now + timedelta(seconds=REBOOT_WAIT_SECONDS * self.backoff_scale)
                step.operation = None
                step.waiting_for = (
                    f"waiting for {display_name(step.resource)} (rebooted or running in the "
                    "background)"
                )
                self._pending.append(step)
                return
            message = (
                f"the setup was still unfinished after {step.reruns + 1} runs (reboots or "
                f"background steps); its log is on the platform's file share ({message})"
            )
        if code in RETRYABLE_CODES and step.attempts < MAX_ATTEMPTS:
            backoff = RETRY_BACKOFF_SECONDS[min(step.attempts, len(RETRY_BACKOFF_SECONDS)) - 1]
            step.not_before = now + timedelta(seconds=backoff * self.backoff_scale)
            step.operation = None
            self._pending.append(step)
            return
        self.fail(step.resource.id, code, message)

    # --- carried into the next generation (`continue_as_new`) --------------------------------

    def state(self) -> WalkState:
        """Where the walk stands, as a message."""
        return WalkState(
            pending=tuple(step.state() for step in self._pending),
            running=tuple(step.state() for step in self._running),
            done=tuple(sorted(self._done)),
            error=self.error,
            step=self.step,
        )

    def resume(self, state: WalkState) -> None:
        """Take up where an earlier generation's walk stood (same resources)."""
        by_id = {r.id.lower(): r for r in self.resources}
        self._pending = [_Step.of(by_id[s.resource_id.lower()], s) for s in state.pending]
        self._running = [_Step.of(by_id[s.resource_id.lower()], s) for s in state.running]
        self._done = {resource_id.lower() for resource_id in state.done}
        self.error = state.error
        self.step = state.step

    @staticmethod
    def _take(steps: list[_Step], resource_id: str) -> _Step:
        for step in steps:
            if step.resource.id.lower() == resource_id.lower():
                steps.remove(step)
                return step
        raise KeyError(resource_id)

    # --- reporting ------------------------------------------------------------------------

    def is_done(self, resource_id: str) -> bool:
        """Whether this resource's operation succeeded (or it needed none)."""
        return resource_id.lower() in self._done

    @property
    def done_ids(self) -> frozenset[str]:
        """The lower-cased ids of the resources done (or that needed nothing)."""
        return frozenset(self._done)

    @property
    def idle(self) -> bool:
        """Nothing started yet (nor failed): what it applies all waits for its dependencies."""
        return (
            self.error is None
            and not self._running
            and self._done == self._unchanged
            and all(s.attempts == 0 and s.not_before is None for s in self._pending)
        )

    @property
    def done_count(self) -> int:
        return sum(1 for r in self.resources if r.id.lower() in self._done)

    def status(self) -> EnvironmentStatus:
        """`Failed` after a permanent error, `Succeeded` when all is done, else `Running`."""
        if self.error is not None:
            return "Failed"
        return "Succeeded" if self.finished else "Running"

    def progress(self) -> EnvironmentProgress:
        """The environment's entry in the platform state (`api.md`)."""
        status = self.status()
        waiting = next((s.waiting_for for s in self._pending if s.waiting_for), None)
        step = self.step if self._running or waiting is None else waiting
        return EnvironmentProgress(
            status,
            self.done_count,
            len(self.resources),
            step if status == "Running" else None,
            self.error,
        )


class PlatformWalk:
    """The shared resources' walk and each environment's, driven as one (walk version 5).

    One orchestration steps them all: what is ready anywhere starts in one batch, and the
    operations due to be polled anywhere are polled with one timer and one check, so the five
    walks share their orchestrator episodes instead of each polling on its own. Each walk keeps
    its own outcome: an environment's resource waits only for the shared resources it depends
    on (`Walk.ready`'s `outside_done`), a permanent failure stops that environment alone, and a
    failure of the shared resources stops every environment with it as the cause.

    Offers what `orchestrators.deploy.walk_steps` drives, as `Walk` does.
    """

    def __init__(
        self,
        walks: Mapping[str, Walk],
        shared: str,
        leaf_ceiling: float | None = None,
        poll_together: bool = False,
        leaves_ride: bool = False,
    ) -> None:
        """`walks` by scope; `shared` names the one the others depend on. `leaf_ceiling`
        (walk version 7): the poll ceiling of an operation nothing still to start waits for,
        while one that something waits for runs or is still to start (`_ceiling_of`).
        `poll_together` (walk version 8): what a resource still to start waits for is polled
        together (`due`). `leaves_ride` (walk version 9): such an operation never sets a wake
        of its own while that lasts (`next_wake`)."""
        self.walks = dict(walks)
        self.shared = shared
        self._scope_of = {
            r.id.lower(): scope for scope, walk in self.walks.items() for r in walk.resources
        }
        self._heights: dict[str, int] | None = None
        self._dependents: dict[str, list[str]] = {}
        self._depends_on = {
            r.id.lower(): [d.lower() for d in r.depends_on]
            for walk in self.walks.values()
            for r in walk.resources
        }
        for walk in self.walks.values():
            for resource in walk.resources:
                for dep in resource.depends_on:
                    self._dependents.setdefault(dep.lower(), []).append(resource.id.lower())
        self.leaf_ceiling = leaf_ceiling
        self.poll_together = poll_together
        self.leaves_ride = leaves_ride and leaf_ceiling is not None
        self._seen: tuple[frozenset[str], bool] | None = None
        if leaf_ceiling is not None:
            for walk in self.walks.values():
                walk.ceiling_of = self._ceiling_of

    def _outlook(self) -> tuple[frozenset[str], bool]:
        """What is still to start in the walks still going (lower-cased ids), and whether a
        resource that something still to start waits for is itself running or still to start.
        Computed once per change of what runs or waits (`_seen` is reset then), not per poll."""
        if self._seen is None:
            unfinished = self._unfinished()
            to_start = frozenset(
                s.resource.id.lower() for walk in unfinished for s in walk._pending
            )
            waited = any(
                self._waited_for(s.resource.id, to_start)
                for walk in unfinished
                for s in (*walk._pending, *walk._running)
            )
            self._seen = (to_start, waited)
        return self._seen

    def _waited_for(self, resource_id: str, to_start: Container[str]) -> bool:
        return any(d in to_start for d in self._dependents.get(resource_id.lower(), ()))

    def _ceiling_of(self, resource: Resource) -> float:
        """The poll ceiling of a resource's operation (walk version 7): `leaf_ceiling` where
        nothing still to start waits for it while something else that is waited for runs or
        is still to start; its walk's ceiling otherwise. Polled later, such an operation
        costs fewer reads and checks and delays nothing: every start waits for the others."""
        ceiling = self._walk_of(resource.id).poll_ceiling
        if self.leaf_ceiling is None:
            return ceiling
        to_start, waited = self._outlook()
        if waited and not self._waited_for(resource.id, to_start):
            return max(ceiling, self.leaf_ceiling)
        return ceiling

    def _cap_leaves(self, now: datetime) -> None:
        """Once nothing that is waited for is left, every operation is polled at its walk's
        ceiling again: the last of them ends the walk."""
        if self.leaf_ceiling is not None and not self._outlook()[1]:
            for walk in self._unfinished():
                walk.cap_polls(now)

    def height(self, resource_id: str) -> int:
        """How many resources, at most, wait one after the other for this one (0: none):
        the longest chain of dependents below it, in links. A start batch sends first what
        the longest chains wait for (walk version 6), as list scheduling does without knowing
        any durations."""
        if self._heights is None:
            dependents = self._dependents
            heights: dict[str, int] = {}

            def of(key: str) -> int:
                if key not in heights:
                    heights[key] = 0  # a cycle (none in a graph that was built) ends here
                    heights[key] = max((1 + of(d) for d in dependents.get(key, ())), default=0)
                return heights[key]

            for walk in self.walks.values():
                for resource in walk.resources:
                    of(resource.id.lower())
            self._heights = heights
        return self._heights.get(resource_id.lower(), 0)

    def _walk_of(self, resource_id: str) -> Walk:
        return self.walks[self._scope_of[resource_id.lower()]]

    def _unfinished(self) -> list[Walk]:
        return [walk for walk in self.walks.values() if not walk.finished]

    def _settle(self) -> None:
        """Once the shared resources failed, every environment still walking fails with them."""
        failure = self.walks[self.shared].error
        if failure is None:
            return
        for scope, walk in self.walks.items():
            if scope != self.shared and walk.error is None:
                walk.fail(
                    failure.resource or None,
                    failure.code or "SharedResourcesFailed",
                    f"shared resources failed: {failure.message}",
                )

    @property
    def finished(self) -> bool:
        return all(walk.finished for walk in self.walks.values())

    def ready(self, now: datetime) -> list[Resource]:
        shared = self.walks[self.shared]
        done = shared.done_ids
        ready = shared.ready(now)
        for scope, walk in self.walks.items():
            if scope != self.shared:
                ready += walk.ready(now, outside_done=done)
        return ready

    def following(
        self, ready: Sequence[Resource], now: datetime, depth: int = FOLLOW_DEPTH
    ) -> list[tuple[Resource, tuple[str, ...]]]:
        """The pending resources, in any scope, that wait only for `ready` (about to start in
        one batch) or for each other, up to `depth` links down: each with the ids of the batch
        it waits for, in an order where those come first (walk version 6's `ApplyItem.after`).
        """
        batch = {resource.id.lower() for resource in ready}
        shared = self.walks[self.shared]
        done = shared.done_ids
        found: list[tuple[Resource, tuple[str, ...]]] = []
        for _ in range(depth):
            level = shared.following(now, batch)
            for scope, walk in self.walks.items():
                if scope != self.shared:
                    level += walk.following(now, batch, outside_done=done)
            if not level:
                break
            batch.update(resource.id.lower() for resource, _after in level)
            found += level
        return found

    def rerun_of(self, resource_id: str) -> int:
        return self._walk_of(resource_id).rerun_of(resource_id)

    def first_attempt(self, resource_id: str) -> bool:
        return self._walk_of(resource_id).first_attempt(resource_id)

    def next_wake(self, now: datetime) -> datetime | None:
        """The walks' earliest wake. With `leaves_ride` (walk version 9), while something that
        is waited for runs or is still to start, an operation nothing still to start waits for
        sets no wake of its own: it is polled at the next wake the others set once its poll is
        due (`due`), at most one of their intervals late, which delays nothing (whatever starts
        next waits for the others). Those wakes come at least every `poll_ceiling` intervals;
        a leaf's own wake would cost the orchestration two episodes for a read that starts
        nothing. When the others set no wake at all, the leaves' wakes count again."""
        walks = self._unfinished()
        if self.leaves_ride:
            to_start, waited = self._outlook()
            if waited:

                def riding(resource: Resource) -> bool:
                    return not self._waited_for(resource.id, to_start)

                paced = [w for walk in walks if (w := walk.next_wake(now, riding)) is not None]
                if paced:
                    return min(paced)
        wakes = [wake for walk in walks if (wake := walk.next_wake(now)) is not None]
        return min(wakes) if wakes else None

    def due(self, at: datetime) -> list[Operation]:
        """What each walk has due at `at`; with `poll_together` (walk version 8), also each
        running operation that a resource still to start waits for along with one of those.

        A resource starts once the last of what it waits for is seen done. Polled each on its
        own schedule, one that ended first may be seen after one that ended last; polled
        together, the last end is seen at the next poll of any of them (their schedules then
        merge, so this adds few reads)."""
        due = [operation for walk in self._unfinished() for operation in walk.due(at)]
        if not self.poll_together or not due:
            return due
        return due + self._waited_with(due)

    def _waited_with(self, due: Sequence[Operation]) -> list[Operation]:
        """The running operations not in `due` that a resource still to start waits for along
        with one in `due`, in a fixed order (the walks', then their steps')."""
        to_start = self._outlook()[0]
        polled = {operation.resource_id.lower() for operation in due}
        wanted: set[str] = set()
        for key in polled:
            for dependent in self._dependents.get(key, ()):
                if dependent in to_start:
                    wanted.update(self._depends_on[dependent])
        return [
            step.operation
            for walk in self._unfinished()
            for step in walk._running
            if step.operation is not None
            and (key := step.resource.id.lower()) in wanted
            and key not in polled
        ]

    def started(self, resource_id: str, operation: Operation, now: datetime) -> None:
        self._seen = None  # what runs and what waits change
        self._walk_of(resource_id).started(resource_id, operation, now)
        self._settle()
        self._seen = None
        self._cap_leaves(now)

    def checked(self, operation: Operation, now: datetime) -> None:
        # An operation still running changes nothing of what runs or waits.
        ended = operation.status != "InProgress"
        if ended:
            self._seen = None
        self._walk_of(operation.resource_id).checked(operation, now)
        self._settle()
        if ended:
            self._seen = None
        self._cap_leaves(now)

    def check_deadlines(self, now: datetime) -> None:
        for walk in self._unfinished():
            walk.check_deadlines(now)
        self._settle()
        self._seen = None

    def fail(self, resource_id: str | None, code: str, message: str) -> None:
        """A permanent failure of one resource's walk; with no resource (an activity that
        failed all its retries, for a batch that may span them), of every walk still going."""
        walks = self._unfinished() if resource_id is None else [self._walk_of(resource_id)]
        for walk in walks:
            walk.fail(resource_id, code, message)
        self._settle()
        self._seen = None

    def state(self) -> dict[str, WalkState]:
        return {scope: walk.state() for scope, walk in self.walks.items()}

    def resume(self, states: Mapping[str, WalkState]) -> None:
        for scope, state in states.items():
            self.walks[scope].resume(state)
        self._seen = None

    def progress(self) -> dict[str, EnvironmentProgress]:
        """Each scope's entry in the platform state: `Pending` while none of its resources has
        started and the shared resources it waits for are not done."""
        shared_finished = self.walks[self.shared].finished
        shown: dict[str, EnvironmentProgress] = {}
        for scope, walk in self.walks.items():
            progress = walk.progress()
            if scope != self.shared and not shared_finished and walk.idle and not walk.finished:
                progress = progress._replace(status="Pending", step=None)
            shown[scope] = progress
        return shown

    @property
    def phase(self) -> str:
        """`shared` while the shared resources deploy, then `environments`."""
        return "environments" if self.walks[self.shared].finished else "shared"


def _minutes(delta: timedelta) -> str:
    minutes = delta.total_seconds() / 60
    return f"{minutes:g} minutes" if minutes >= 1 else f"{delta.total_seconds():g} seconds"


@lru_cache(maxsize=32)
def _graph_of_text(spec_text: str) -> tuple[PlatformSpec, ResourceGraph]:
    spec = PlatformSpec.from_json_dict(json.loads(spec_text))
    return spec, build_topology(spec)


def graph_of(spec_json: Mapping[str, Any]) -> tuple[PlatformSpec, ResourceGraph]:
    """The spec and its resource graph from the normalized spec JSON (cached: pure and costly)."""
    return _graph_of_text(json.dumps(spec_json, sort_keys=True))

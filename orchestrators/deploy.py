"""The deployment orchestration: every scope planned, then all resources walked as one.

`deploy_platform` plans against the live state (so a redeploy sends PUTs only for what differs),
then starts one `deploy_environments` sub-orchestration that walks the shared resources and the
four environments together (walk version 5, `outsystems.deployment.PlatformWalk`): a resource
starts as soon as what it depends on is done, whatever its scope, and running operations are
polled with durable timers, all that is due with one timer and one check, so the five walks
share their episodes. No activity waits on a long Azure operation. A permanent ARM error fails
that environment only; the others finish; a failure of the shared resources fails them all.
Instances started before walk version 5 replay through `deploy_environment`, one
sub-orchestration per scope. Deterministic: time comes from the context, the graph from the spec.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Final, Protocol

import azure.durable_functions as df

from orchestrators.calls import Calls, Steps, first_line, orchestration
from outsystems.events import EventType
from outsystems.messages import (
    BEGIN_APPLY_RESOURCE,
    BEGIN_APPLY_RESOURCES,
    CHECK_OPERATIONS,
    CHECK_THEN_START,
    DEPLOY_ENVIRONMENT,
    DEPLOY_ENVIRONMENTS,
    DEPLOY_PLATFORM,
    PLAN_ENVIRONMENT,
    READ_OUTPUTS,
    ApplyBatchRequest,
    ApplyItem,
    ApplyRequest,
    CheckRequest,
    CheckThenStartRequest,
    DeployRequest,
    EnvironmentOutputs,
    EnvironmentProgress,
    EnvironmentRequest,
    EnvironmentsRequest,
    ErrorInfo,
    Operation,
    OutputsRequest,
    PlannedAction,
    PlanRequest,
    PlatformResult,
    PlatformStatus,
    SpecDocument,
    WalkState,
)
from outsystems.names import ENVIRONMENTS, SHARED

# Function-local imports: see `docs/architecture.md`, "Cold start".

if TYPE_CHECKING:
    from datetime import datetime

    from outsystems.deployment import Walk
    from outsystems.topology import Resource

    #: How a walk starts what is ready: the operations of the resources it started (by their
    #: ids; walk version 6's batches also start what came after them, and leave out what did
    #: not start).
    Start = Callable[[list[Resource]], Steps[list[Operation]]]
    #: The same as an SDK task to yield with others, and how to read its answer.
    StartTask = Callable[[list[Resource]], tuple[Any, Callable[[Any], list[Operation]]]]
    #: Walk version 8: one task that starts what is ready and polls what is due, with what
    #: waits only for either, and how to read its answer (the polled operations' states, then
    #: the operations it started).
    Advanced = tuple[list[Operation], list[Operation]]
    Advance = Callable[[list[Resource], list[Operation]], tuple[Any, Callable[[Any], Advanced]]]

bp = df.Blueprint()
log = logging.getLogger(__name__)


def child_instance_id(parent_id: str, environment: str) -> str:
    """The deterministic instance id of an environment's sub-orchestration (walk versions 1-4)."""
    return f"{parent_id}:{environment}"


def walk_instance_id(parent_id: str) -> str:
    """The deterministic instance id of `deploy_environments` (walk version 5)."""
    return f"{parent_id}:walk"


class Walker(Protocol):
    """What `walk_steps` drives: one walk (`outsystems.deployment.Walk`) or several walked as
    one (`PlatformWalk`)."""

    @property
    def finished(self) -> bool: ...
    def ready(self, now: datetime) -> list[Resource]: ...
    def rerun_of(self, resource_id: str) -> int: ...
    def next_wake(self, now: datetime) -> datetime | None: ...
    def due(self, at: datetime) -> list[Operation]: ...
    def started(self, resource_id: str, operation: Operation, now: datetime) -> None: ...
    def checked(self, operation: Operation, now: datetime) -> None: ...
    def check_deadlines(self, now: datetime) -> None: ...
    def fail(self, resource_id: str | None, code: str, message: str) -> None: ...


#: Steps (a start of what is ready, or a poll) one generation of a walk's orchestration takes
#: before it continues as new with the walk's state: each episode replays at most this many
#: steps' events (about eight for a poll), however long the walk runs.
STEPS_PER_GENERATION: Final = 20


def walk_steps(
    calls: Calls,
    walk: Walker,
    *,
    start: Start,
    subscription_id: str,
    solution_id: str,
    report: Callable[[], None],
    limit: int = STEPS_PER_GENERATION,
    wait_out_throttling: bool = False,
    start_task: StartTask | None = None,
    poll_when_due: bool = False,
    advance: Advance | None = None,
) -> Steps[bool]:
    """Drive a walk for at most `limit` steps: start what is ready, else wait (a durable
    timer) until a running operation's next poll or a backoff's end, then poll what is due.

    What is ready starts with `start(ready)`: one activity per resource (walk versions 2-3,
    the teardown), or one for them all (walk version 4 on: one answer, one episode).

    Each operation is polled after ARM's `Retry-After` or its own backoff
    (`outsystems.deployment.poll_wait`), never all at one fixed pace. True when the walk
    finished; False when it stopped after `limit` steps, between two steps (nothing in
    flight), for the orchestration to continue as new with `walk.state()`.

    With `wait_out_throttling` (walk version 5), a start or a check that ARM kept throttling
    past the activity's own retries (the subscription's request budget is spent: many
    deployments at once) is tried again after a durable timer, each wait twice the last, up to
    `PLAN_THROTTLE_ROUNDS` in a row, instead of failing the walk: what it would have started
    is still pending, and what it would have polled is polled again.

    With `start_task` (walk version 6: the start's task and how to read its answer), a start
    also polls what is due at that moment, both activities at once: a walk with something to
    start at every step still sees what ended.

    With `poll_when_due` (walk version 7), a poll already due right after the wait that
    followed a throttled check is sent at once, not after a durable timer that would
    fire at once. (Elsewhere the walk keeps its timers, as version 6 did: polling at once
    whenever a poll was due changed every walk's path and gained nothing measurable.)

    With `advance` (walk version 8), each step asks one activity for what it starts and what
    it polls, and that activity also starts what waits only for those (`advance`'s task): the
    answer's polled states are taken first, then what it started.
    """
    from outsystems.arm_errors import throttled

    context = calls.context
    throttle_wait = _first_throttle_wait(calls)
    throttle_rounds = 0
    for _ in range(limit):
        if walk.finished:
            return True
        now = context.current_utc_datetime
        ready = walk.ready(now)
        try:
            polls_with_starts = start_task is not None or advance is not None
            due = walk.due(now) if ready and polls_with_starts else []
            if ready and advance is not None:
                yield from _advance(context, walk, advance, ready, due)
            elif due and start_task is not None:
                task, read = start_task(ready)
                request = CheckRequest(subscription_id, solution_id, tuple(due))
                answers = yield context.task_all([task, calls.task(CHECK_OPERATIONS, request)])
                now = context.current_utc_datetime
                for operation in read(answers[0]):
                    walk.started(operation.resource_id, operation, now)
                for operation in CHECK_OPERATIONS.read_answer(answers[1]):
                    walk.checked(operation, now)
                walk.check_deadlines(now)
            elif ready:
                for operation in (yield from start(ready)):
                    walk.started(operation.resource_id, operation, context.current_utc_datetime)
            else:
                wake = walk.next_wake(now)
                if wake is None:
                    walk.fail(None, "InternalError", "nothing is ready to start")
                else:
                    # Right after a throttling wait, what is due is polled at once.
                    waited = poll_when_due and throttle_rounds > 0 and wake <= now
                    due = walk.due(now) if waited else []
                    if not due:
                        yield context.create_timer(max(wake, now))
                        due = walk.due(wake)
                    if due and advance is not None:
                        yield from _advance(context, walk, advance, [], due)
                    elif due:
                        request = CheckRequest(subscription_id, solution_id, tuple(due))
                        checked = yield from calls.one(CHECK_OPERATIONS, request)
                        for operation in checked:
                            walk.checked(operation, context.current_utc_datetime)
                    walk.check_deadlines(context.current_utc_datetime)
            throttle_rounds, throttle_wait = 0, _first_throttle_wait(calls)
        # The Durable SDK surfaces an activity that failed all its retries as a plain Exception.
        except Exception as error:
            if (
                wait_out_throttling
                and throttle_rounds < PLAN_THROTTLE_ROUNDS
                and throttled(str(error))
            ):
                if not context.is_replaying:
                    log.warning("ARM throttled the walk; trying again in %s", throttle_wait)
                yield context.create_timer(context.current_utc_datetime + throttle_wait)
                throttle_rounds += 1
                throttle_wait = min(throttle_wait * 2, PLAN_WAIT_CEILING)
            else:
                walk.fail(None, "ActivityFailed", first_line(error))
        report()
    return walk.finished


def _advance(
    context: df.DurableOrchestrationContext,
    walk: Walker,
    advance: Advance,
    ready: list[Resource],
    due: list[Operation],
) -> Steps[None]:
    """One step of walk version 8: one activity starts `ready`, polls `due` and starts what
    waits only for either; what it polled is taken first (what it started may have waited for
    it), then what it started."""
    task, read = advance(ready, due)
    checked, started = read((yield task))
    now = context.current_utc_datetime
    for operation in checked:
        walk.checked(operation, now)
    for operation in started:
        walk.started(operation.resource_id, operation, now)
    walk.check_deadlines(now)


def _first_throttle_wait(calls: Calls) -> timedelta:
    """The first wait after ARM throttled a deployment's activity past its retries."""
    return timedelta(seconds=max(calls.tuning.retry_seconds, 1.0))


def drive_walk(
    calls: Calls,
    walk: Walk,
    *,
    start: Start,
    subscription_id: str,
    solution_id: str,
    report: Callable[[], None],
) -> Steps[bool]:
    """Run a walk to its end: start what is ready, poll all that runs after one fixed interval.

    How instances started before walk version 2 walk (`outsystems.messages.WALK_VERSION`):
    their histories replay only through this loop. `start` as `walk_steps` takes it (one
    activity per resource, as those histories hold).
    """
    context = calls.context
    while not walk.finished:
        now = context.current_utc_datetime
        ready = walk.ready(now)
        try:
            if ready:
                for operation in (yield from start(ready)):
                    walk.started(operation.resource_id, operation, context.current_utc_datetime)
            elif walk.running:
                checked = yield from calls.poll(subscription_id, solution_id, walk.running)
                for operation in checked:
                    walk.checked(operation, context.current_utc_datetime)
                walk.check_deadlines(context.current_utc_datetime)
            else:
                retry_at = walk.next_retry_at()
                if retry_at is None:
                    walk.fail(None, "InternalError", "nothing is ready to start")
                else:
                    yield context.create_timer(retry_at)
        # The Durable SDK surfaces an activity that failed all its retries as a plain Exception.
        except Exception as error:
            walk.fail(None, "ActivityFailed", first_line(error))
        report()
    return True


@bp.orchestration_trigger(context_name="context")
@orchestration(DEPLOY_ENVIRONMENT)
def deploy_environment(
    context: df.DurableOrchestrationContext, request: EnvironmentRequest
) -> Steps[EnvironmentProgress | None]:
    """Create or update one environment's resources (or the shared ones), then report."""
    from outsystems.deployment import Walk

    spec, graph = request.spec.parsed()
    calls = Calls(context, request.tuning)
    walk = Walk.tuned(
        graph.for_environment(request.environment),
        request.apply,
        request.tuning,
        request.walk_version,
    )
    if request.walk is not None:
        walk.resume(request.walk)
    # Secrets created by this deployment derive their values from its nonce.
    nonce = request.nonce or context.instance_id

    def report() -> None:
        context.set_custom_status(walk.progress().to_json())

    version = request.walk_version

    def start(ready: list[Resource]) -> Steps[list[Operation]]:
        if version < 4:  # one activity per resource, as those histories hold
            requests = [ApplyRequest(request.spec, r.id, nonce, walk.rerun_of(r.id)) for r in ready]
            return (yield from calls.all(BEGIN_APPLY_RESOURCE, requests))
        items = tuple(ApplyItem(r.id, walk.rerun_of(r.id)) for r in ready)
        batch = ApplyBatchRequest(request.spec, items, nonce)
        return (yield from calls.one(BEGIN_APPLY_RESOURCES, batch))

    report()
    # Walk version 1 polled at one fixed pace, as its histories hold.
    drive = drive_walk if version < 2 else walk_steps
    finished = yield from drive(
        calls,
        walk,
        start=start,
        subscription_id=spec.subscription_id,
        solution_id=spec.solution_id,
        report=report,
    )
    if not finished:
        # A fresh history for the rest of the walk (same instance id, so the same nonce).
        context.continue_as_new(request._replace(walk=walk.state()).to_json())
        return None
    return walk.progress()


@bp.orchestration_trigger(context_name="context")
@orchestration(DEPLOY_ENVIRONMENTS)
def deploy_environments(
    context: df.DurableOrchestrationContext, request: EnvironmentsRequest
) -> Steps[PlatformStatus | None]:
    """Create or update the shared resources and every environment's, walked as one (walk
    version 5): one batch starts what is ready anywhere, one timer and one check poll what is
    due anywhere. Each scope keeps its own outcome (`outsystems.deployment.PlatformWalk`)."""
    from outsystems.deployment import PlatformWalk, Walk, leaf_poll_ceiling

    spec, graph = request.spec.parsed()
    calls = Calls(context, request.tuning)
    walk = PlatformWalk(
        {
            scope: Walk.tuned(
                graph.for_environment(scope),
                request.apply.get(scope, ()),
                request.tuning,
                request.walk_version,
            )
            for scope in (SHARED, *ENVIRONMENTS)
        },
        shared=SHARED,
        leaf_ceiling=leaf_poll_ceiling(request.walk_version),
        poll_together=request.walk_version >= 8,
        leaves_ride=request.walk_version >= 9,
    )
    if request.walks is not None:
        walk.resume(request.walks)

    def report() -> None:
        context.set_custom_status(PlatformStatus(walk.phase, walk.progress()).to_json())

    absent = {resource_id.lower() for resource_id in request.absent}

    def item(resource: Resource, after: tuple[str, ...] = ()) -> ApplyItem:
        return ApplyItem(
            resource.id,
            walk.rerun_of(resource.id),
            absent=resource.id.lower() in absent and walk.first_attempt(resource.id),
            after=after,
        )

    def start_task(ready: list[Resource]) -> tuple[Any, Callable[[Any], list[Operation]]]:
        items = [item(resource) for resource in ready]
        if request.walk_version >= 6:
            # What waits only for this batch comes along, started as ARM answers it done; the
            # batch sends first what the longest chains wait for (a resource is higher than
            # what depends on it, so what an item comes after stays before it).
            now = context.current_utc_datetime
            items += [item(r, after) for r, after in walk.following(ready, now)]
            items.sort(key=lambda i: -walk.height(i.resource_id))
        batch = ApplyBatchRequest(request.spec, tuple(items), request.nonce)
        return calls.task(BEGIN_APPLY_RESOURCES, batch), BEGIN_APPLY_RESOURCES.read_answer

    def start(ready: list[Resource]) -> Steps[list[Operation]]:
        task, read = start_task(ready)
        return read((yield task))

    def advance(
        ready: list[Resource], due: list[Operation]
    ) -> tuple[Any, Callable[[Any], Advanced]]:
        """Walk version 8: start `ready`, poll `due`, and start what waits only for either
        (`walk.following`), in one activity; without anything to start, a plain check."""
        if not due:
            task, read_started = start_task(ready)
            return task, lambda answer: ([], read_started(answer))
        now = context.current_utc_datetime
        polled = [graph.get(operation.resource_id) for operation in due]
        items = [item(resource) for resource in ready]
        items += [item(r, after) for r, after in walk.following([*ready, *polled], now)]
        # What the longest chains wait for is polled first (the activity polls before it starts).
        due = sorted(due, key=lambda operation: -walk.height(operation.resource_id))
        check = CheckRequest(spec.subscription_id, spec.solution_id, tuple(due))
        if not items:
            read_checked = CHECK_OPERATIONS.read_answer
            return calls.task(CHECK_OPERATIONS, check), lambda a: (read_checked(a), [])
        # As in a start batch: what the longest chains wait for first.
        items.sort(key=lambda i: -walk.height(i.resource_id))
        then = ApplyBatchRequest(request.spec, tuple(items), request.nonce)
        task = calls.task(CHECK_THEN_START, CheckThenStartRequest(check, then))

        def read(answer: Any) -> tuple[list[Operation], list[Operation]]:
            advanced = CHECK_THEN_START.read_answer(answer)
            return list(advanced.checked), list(advanced.started)

        return task, read

    report()
    finished = yield from walk_steps(
        calls,
        walk,
        start=start,
        subscription_id=spec.subscription_id,
        solution_id=spec.solution_id,
        report=report,
        wait_out_throttling=True,
        start_task=start_task if request.walk_version >= 6 else None,
        poll_when_due=request.walk_version >= 7,
        advance=advance if request.walk_version >= 8 else None,
    )
    if not finished:
        # A fresh history for the rest of the walks (same instance id, so the same nonce).
        state: dict[str, WalkState] = walk.state()
        context.continue_as_new(request._replace(walks=state).to_json())
        return None
    return PlatformStatus("done", walk.progress())


#: How many times a deployment plans again after ARM throttled its plan's reads, and the first
#: wait (a multiple of the retry interval, doubling each time, at most `PLAN_WAIT_CEILING`).
#: The activity's own retries come within seconds; a subscription whose read budget is spent
#: (many deployments at once) needs minutes to refill ("Throttling Resource Manager requests":
#: the bucket refills by 25 reads a second per principal and region).
PLAN_THROTTLE_ROUNDS: Final = 6
PLAN_WAIT_CEILING: Final = timedelta(minutes=5)


def plan_scopes(
    calls: Calls, spec: SpecDocument, scopes: Sequence[str], alongside: Any = None
) -> Steps[list[list[PlannedAction]]]:
    """The plans of `scopes`, read in parallel; planned again after a durable timer when ARM
    throttled the reads (each round waits twice as long), any other failure raised at once.

    `alongside`, a task (walk version 6: the `deployment.started` event), is scheduled with
    the first round and not waited for: the caller yields it again later to read its answer
    (the Durable Python SDK schedules a task when it is first yielded, and a task yielded
    again once done answers at once)."""
    from outsystems.arm_errors import throttled

    context = calls.context
    wait = timedelta(seconds=max(calls.tuning.retry_seconds, 1.0))
    requests = [PlanRequest(spec, scope) for scope in scopes]
    for round_ in range(PLAN_THROTTLE_ROUNDS + 1):
        try:
            if round_ == 0 and alongside is not None:
                plans = context.task_all([calls.task(PLAN_ENVIRONMENT, r) for r in requests])
                yield context.task_any([plans, alongside])
                answers = yield plans  # at once if the plans were the first to end
                return [PLAN_ENVIRONMENT.read_answer(answer) for answer in answers]
            return (yield from calls.all(PLAN_ENVIRONMENT, requests))
        # The Durable SDK surfaces an activity that failed all its retries as a plain Exception.
        except Exception as error:
            if round_ == PLAN_THROTTLE_ROUNDS or not throttled(str(error)):
                raise
            if not context.is_replaying:
                log.warning("plan of %s throttled; planning again in %s", scopes, wait)
            yield context.create_timer(context.current_utc_datetime + wait)
            wait = min(wait * 2, PLAN_WAIT_CEILING)
    raise AssertionError("unreachable")


def _failed_everywhere(
    error: ErrorInfo, totals: Mapping[str, int]
) -> dict[str, EnvironmentProgress]:
    return {env: EnvironmentProgress.failed(totals[env], error) for env in ENVIRONMENTS}


@bp.orchestration_trigger(context_name="context")
@orchestration(DEPLOY_PLATFORM)
def deploy_platform(
    context: df.DurableOrchestrationContext, request: DeployRequest
) -> Steps[PlatformResult]:
    """Plan, deploy the shared resources, fan out the environments, publish the outcome."""
    spec, graph = request.spec.parsed()
    calls = Calls(context, request.tuning)
    solution = spec.solution_id
    # One id per deployment (deterministic in replay): the nonce of the secrets it creates.
    nonce = str(context.new_uuid())
    totals: dict[str, int] = {env: len(graph.for_environment(env)) for env in ENVIRONMENTS}
    environments: dict[str, EnvironmentProgress] = {
        env: EnvironmentProgress.pending(totals[env]) for env in ENVIRONMENTS
    }

    def report(phase: str) -> None:
        context.set_custom_status(PlatformStatus(phase, environments).to_json())

    report("planning")
    started = calls.event(
        EventType.DEPLOYMENT_STARTED,
        solution,
        {"instanceId": context.instance_id, "resourceGroup": spec.resource_group},
    )
    # Walk versions 3-5 meant to publish it while the shared resources were planned, reading
    # its answer with the last events'; but the Durable Python SDK schedules a task only when
    # it is yielded (`TaskOrchestrationExecutor`), so their histories hold it published at the
    # end, with the outcome's events. Versions 1-2 publish it first; 6 on with the plans (not
    # waited for: its answer is read with the last events').
    pending_events = [started] if request.walk_version >= 3 else []
    if not pending_events:
        yield started

    def child(scope: str, apply: tuple[str, ...]) -> Any:
        return calls.sub_task(
            DEPLOY_ENVIRONMENT,
            EnvironmentRequest(
                request.spec, scope, apply, request.tuning, nonce, walk_version=request.walk_version
            ),
            child_instance_id(context.instance_id, scope),
        )

    def to_apply(plan: Sequence[PlannedAction]) -> tuple[str, ...]:
        return tuple(item.id for item in plan if item.action != "noop")

    def plan_failed(error: Exception) -> dict[str, EnvironmentProgress]:
        return _failed_everywhere(ErrorInfo("PlanFailed", str(error)[:500]), totals)

    plan_error: Exception | None = None
    shared: EnvironmentProgress | None = None
    apply: dict[str, tuple[str, ...]] = {}
    walked: PlatformStatus | None = None
    if request.walk_version >= 5:
        # Every scope planned at once, then one walk of them all (`deploy_environments`).
        scopes = [SHARED, *ENVIRONMENTS]
        try:
            alongside = started if request.walk_version >= 6 else None
            plans = yield from plan_scopes(calls, request.spec, scopes, alongside)
        except Exception as error:  # see drive_walk
            plan_error = error
        else:
            apply = {scope: to_apply(plan) for scope, plan in zip(scopes, plans, strict=True)}
            # The walk's own status has each environment's progress (`services.platforms`).
            environments = {env: p.running() for env, p in environments.items()}
            report("environments")
            walk_request = EnvironmentsRequest(
                request.spec,
                apply,
                request.tuning,
                nonce,
                walk_version=request.walk_version,
                absent=tuple(i.id for plan in plans for i in plan if i.action == "create"),
            )
            answer = yield calls.sub_task(
                DEPLOY_ENVIRONMENTS, walk_request, walk_instance_id(context.instance_id)
            )
            walked = DEPLOY_ENVIRONMENTS.read_answer(answer)
    elif request.walk_version < 3:
        # Walk versions 1-2: every scope planned before the shared resources start.
        scopes = [SHARED, *ENVIRONMENTS]
        try:
            plans = yield from calls.all(
                PLAN_ENVIRONMENT, [PlanRequest(request.spec, scope) for scope in scopes]
            )
        except Exception as error:  # see drive_walk
            plan_error = error
        else:
            apply = {scope: to_apply(plan) for scope, plan in zip(scopes, plans, strict=True)}
            report("shared")
            shared = DEPLOY_ENVIRONMENT.read_answer((yield child(SHARED, apply[SHARED])))
    else:
        # The shared resources start once their own plan is read; the environments' plans run
        # while they deploy (the environments need the shared resources done anyway).
        try:
            (shared_plan,) = yield from plan_scopes(calls, request.spec, [SHARED])
        except Exception as error:  # see drive_walk
            plan_error = error
        else:
            report("shared")
            shared_task = child(SHARED, to_apply(shared_plan))
            try:
                plans = yield from plan_scopes(calls, request.spec, ENVIRONMENTS)
            except Exception as error:  # see drive_walk
                plan_error = error
            else:
                apply = {env: to_apply(plan) for env, plan in zip(ENVIRONMENTS, plans, strict=True)}
            # Whatever the environments' plans said, the shared walk is waited for.
            shared = DEPLOY_ENVIRONMENT.read_answer((yield shared_task))

    if plan_error is not None:
        environments = plan_failed(plan_error)
    elif walked is not None:
        environments = {env: walked.environments[env] for env in ENVIRONMENTS}
    elif shared is not None and not shared.succeeded:
        failure = shared.error or ErrorInfo("SharedResourcesFailed", "")
        cause = ErrorInfo(
            failure.code or "SharedResourcesFailed",
            f"shared resources failed: {failure.message}",
            failure.resource,
        )
        environments = _failed_everywhere(cause, totals)
    else:
        environments = {env: p.running() for env, p in environments.items()}
        report("environments")
        results = yield context.task_all([child(env, apply[env]) for env in ENVIRONMENTS])
        environments = {
            env: DEPLOY_ENVIRONMENT.read_answer(result)
            for env, result in zip(ENVIRONMENTS, results, strict=True)
        }

    outputs: dict[str, EnvironmentOutputs] = {}
    if any(e.succeeded for e in environments.values()):
        read = yield from calls.one(READ_OUTPUTS, OutputsRequest(request.spec))
        outputs = {env: read[env] for env in read if environments[env].succeeded}
    events = [
        calls.event(
            EventType.ENVIRONMENT_SUCCEEDED if result.succeeded else EventType.ENVIRONMENT_FAILED,
            f"{solution}/{env}",
            {
                "status": result.status,
                "error": None if result.error is None else result.error.to_json(),
            },
        )
        for env, result in environments.items()
    ]
    succeeded = all(e.succeeded for e in environments.values())
    events.append(
        calls.event(
            EventType.DEPLOYMENT_SUCCEEDED if succeeded else EventType.DEPLOYMENT_FAILED,
            solution,
            {
                "instanceId": context.instance_id,
                "failedEnvironments": [env for env, e in environments.items() if not e.succeeded],
            },
        )
    )
    yield context.task_all([*pending_events, *events])
    report("done")
    return PlatformResult("Succeeded" if succeeded else "Failed", environments, outputs)

"""The teardown orchestration: delete what ARM lists as the platform's, in reverse order.

It removes only resources tagged as this platform's and managed by this app (their child
resources go with them), wave after wave so that nothing is deleted while something still uses
it, each wave in parallel and polled with durable timers. Tearing down the whole platform also
deletes the resource group when this app created it and it is left empty.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import azure.durable_functions as df

from orchestrators.calls import Calls, Steps, orchestration
from orchestrators.deploy import drive_walk, walk_steps
from outsystems.events import EventType
from outsystems.messages import (
    BEGIN_DELETE_RESOURCE,
    BEGIN_DELETE_RESOURCE_GROUP,
    LIST_PLATFORM_RESOURCES,
    TEARDOWN_PLATFORM,
    DeleteRequest,
    EnvironmentProgress,
    EnvironmentStatus,
    GroupRequest,
    ListRequest,
    PlatformResult,
    PlatformStatus,
    TeardownRequest,
)
from outsystems.names import ENVIRONMENTS

if TYPE_CHECKING:
    from outsystems.deployment import Walk
    from outsystems.messages import Operation
    from outsystems.topology import Resource

bp = df.Blueprint()

PHASE = "teardown"


def _progress(walk: Walk, environment: str) -> EnvironmentProgress:
    mine = [r for r in walk.resources if r.environment == environment]
    done = sum(1 for r in mine if walk.is_done(r.id))
    error = walk.error
    failed = error is not None and any(r.id == error.resource for r in mine)
    status: EnvironmentStatus = (
        "Failed" if failed else ("Deleted" if done == len(mine) else "Running")
    )
    if error is not None and status == "Running":
        status = "Failed"
    return EnvironmentProgress(
        status,
        done,
        len(mine),
        walk.step if status == "Running" else None,
        error if status == "Failed" else None,
    )


@bp.orchestration_trigger(context_name="context")
@orchestration(TEARDOWN_PLATFORM)
def teardown_platform(
    context: df.DurableOrchestrationContext, request: TeardownRequest
) -> Steps[PlatformResult | None]:
    """Delete the platform's resources (all, or some environments') and maybe its group."""
    from outsystems.deployment import Walk, timeout_for
    from outsystems.resource_types import RESOURCE_GROUP
    from outsystems.teardown import Found, deletion_graph, select

    spec = request.spec
    environments = list(request.environments)
    whole = set(environments) == set(ENVIRONMENTS)
    tuning = request.tuning
    calls = Calls(context, tuning)
    subscription, group, solution = spec.subscription_id, spec.resource_group, spec.solution_id

    if request.found is None:
        listed = tuple((yield from calls.one(LIST_PLATFORM_RESOURCES, ListRequest.of(spec))))
    else:
        listed = request.found  # an earlier generation listed them
    found = [Found(f.id, f.type, f.environment) for f in listed]
    resources = deletion_graph(select(found, environments, whole_platform=whole))
    walk = Walk.tuned(
        resources, [r.id for r in resources], tuning, request.walk_version, verb="deleting"
    )
    if request.walk is not None:
        walk.resume(request.walk)

    def status() -> PlatformStatus:
        return PlatformStatus(PHASE, {env: _progress(walk, env) for env in environments})

    def report() -> None:
        context.set_custom_status(status().to_json())

    def start(ready: list[Resource]) -> Steps[list[Operation]]:
        requests = [DeleteRequest(subscription, r.id, r.api_version, solution) for r in ready]
        return (yield from calls.all(BEGIN_DELETE_RESOURCE, requests))

    report()
    drive = drive_walk if request.walk_version < 2 else walk_steps
    finished = yield from drive(
        calls,
        walk,
        start=start,
        subscription_id=subscription,
        solution_id=solution,
        report=report,
    )
    if not finished:
        # A fresh history for the rest of the walk: what was listed and where the walk stands.
        context.continue_as_new(request._replace(found=listed, walk=walk.state()).to_json())
        return None

    group_note = None
    if whole and walk.error is None:
        started = yield from calls.one(BEGIN_DELETE_RESOURCE_GROUP, GroupRequest.of(spec))
        group_note = started.kept
        operation = yield from calls.wait_for_operation(
            started,
            subscription_id=subscription,
            solution_id=solution,
            deadline=context.current_utc_datetime
            + timeout_for(RESOURCE_GROUP, tuning.timeout_scale),
            timed_out=lambda: f"the resource group {group} was not deleted in time",
        )
        if not operation.succeeded:
            failure = operation.error
            walk.fail(
                operation.resource_id,
                failure.code if failure is not None and failure.code else "Failed",
                failure.message if failure is not None else "",
            )

    final = status()
    succeeded = walk.error is None
    yield calls.event(
        EventType.TEARDOWN_SUCCEEDED if succeeded else EventType.TEARDOWN_FAILED,
        solution,
        {
            "instanceId": context.instance_id,
            "environments": environments,
            "resourcesDeleted": walk.done_count,
            "error": None if walk.error is None else walk.error.to_json(),
            "resourceGroup": group_note or ("deleted" if whole and succeeded else "kept"),
        },
    )
    context.set_custom_status(final.to_json())
    return PlatformResult(
        "Succeeded" if succeeded else "Failed", final.environments, {}, phase=PHASE
    )

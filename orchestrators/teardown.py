"""The teardown orchestration: delete what ARM lists as the platform's, in reverse order.

It removes only resources tagged as this platform's and managed by this app (their child
resources go with them), wave after wave so that nothing is deleted while something still uses
it, each wave in parallel and polled with durable timers. Tearing down the whole platform also
deletes the resource group when this app created it and it is left empty.
"""

from __future__ import annotations

from collections.abc import Generator
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import azure.durable_functions as df

from orchestrators.deploy import drive_walk, publish, retry_options
from outsystems.events import EventType
from outsystems.names import ENVIRONMENTS

if TYPE_CHECKING:
    from outsystems.deployment import Walk

bp = df.Blueprint()


def _progress(walk: Walk, environment: str) -> dict[str, Any]:
    mine = [r for r in walk.resources if r.environment == environment]
    done = sum(1 for r in mine if walk.is_done(r.id))
    failed = walk.error is not None and any(r.id == walk.error["resource"] for r in mine)
    status = "Failed" if failed else ("Deleted" if done == len(mine) else "Running")
    if walk.error is not None and status == "Running":
        status = "Failed"
    return {
        "status": status,
        "resourcesDone": done,
        "resourcesTotal": len(mine),
        "step": walk.step if status == "Running" else None,
        "error": walk.error if status == "Failed" else None,
    }


@bp.orchestration_trigger(context_name="context")
def teardown_platform(context: df.DurableOrchestrationContext) -> Generator[Any, Any, Any]:
    """Delete the platform's resources (all, or some environments') and maybe its group."""
    # Imported here, not at module level: the worker imports this module at every cold start.
    from outsystems.deployment import Walk, timeout_for
    from outsystems.resource_types import RESOURCE_GROUP
    from outsystems.teardown import Found, deletion_graph, select

    request = context.get_input()
    spec = request["spec"]
    environments = request["environments"]
    whole = set(environments) == set(ENVIRONMENTS)
    tuning = request.get("tuning") or {}
    retry = retry_options(tuning)
    poll = timedelta(seconds=float(tuning.get("pollSeconds", 15)))
    subscription, group = spec["subscriptionId"], spec["resourceGroup"]
    solution = spec["solutionId"]
    scope = {"subscriptionId": subscription, "resourceGroup": group, "solutionId": solution}

    listed = yield context.call_activity_with_retry(
        "list_platform_resources", retry, {**scope, "spec": spec}
    )
    targets = select([Found.from_json(f) for f in listed], environments, whole_platform=whole)
    resources = deletion_graph(targets)
    walk = Walk(
        resources,
        [r.id for r in resources],
        timeout_scale=float(tuning.get("timeoutScale", 1.0)),
        backoff_scale=float(tuning.get("backoffScale", 1.0)),
        verb="deleting",
    )

    def status() -> dict[str, Any]:
        return {
            "phase": "teardown",
            "environments": {env: _progress(walk, env) for env in environments},
        }

    context.set_custom_status(status())
    yield from drive_walk(
        context,
        walk,
        begin=lambda resource: context.call_activity_with_retry(
            "begin_delete_resource",
            retry,
            {
                "subscriptionId": subscription,
                "resourceId": resource.id,
                "apiVersion": resource.api_version,
            },
        ),
        subscription_id=subscription,
        solution_id=solution,
        retry=retry,
        poll=poll,
        report=lambda: context.set_custom_status(status()),
    )

    group_note = None
    if whole and walk.error is None:
        operation = yield context.call_activity_with_retry(
            "begin_delete_resource_group", retry, scope
        )
        group_note = operation.get("kept")
        deadline = context.current_utc_datetime + timeout_for(
            RESOURCE_GROUP, float(tuning.get("timeoutScale", 1.0))
        )
        while operation["status"] == "InProgress":
            if context.current_utc_datetime > deadline:
                operation = {
                    **operation,
                    "status": "Failed",
                    "error": {
                        "code": "OperationTimedOut",
                        "message": f"the resource group {group} was not deleted in time",
                    },
                }
                break
            yield context.create_timer(context.current_utc_datetime + poll)
            (operation,) = yield context.call_activity_with_retry(
                "check_operations",
                retry,
                {**scope, "operations": [operation]},
            )
        if operation["status"] != "Succeeded":
            failure = operation.get("error") or {}
            walk.fail(
                operation["resource_id"], failure.get("code", "Failed"), failure.get("message", "")
            )

    final = status()
    succeeded = walk.error is None
    yield publish(
        context,
        EventType.TEARDOWN_SUCCEEDED if succeeded else EventType.TEARDOWN_FAILED,
        solution,
        {
            "instanceId": context.instance_id,
            "environments": environments,
            "resourcesDeleted": walk.done_count,
            "error": walk.error,
            "resourceGroup": group_note or ("deleted" if whole and succeeded else "kept"),
        },
        retry,
    )
    context.set_custom_status(final)
    return {"status": "Succeeded" if succeeded else "Failed", **final, "outputs": {}}

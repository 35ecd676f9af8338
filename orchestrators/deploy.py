"""The deployment orchestration: shared resources first, then the four environments in parallel.

`deploy_platform` plans against the live state (so a redeploy sends PUTs only for what differs),
deploys the shared resources, then fans out one `deploy_environment` sub-orchestration per
environment. Each walks its part of the graph in dependency order, starting resources as soon as
their dependencies are done and polling running operations with durable timers: no activity
waits on a long Azure operation. A permanent ARM error fails that environment only; the others
finish. Deterministic: time comes from the context, the graph from the spec.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Mapping
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import azure.durable_functions as df

from outsystems.events import EventType
from outsystems.names import ENVIRONMENTS, SHARED

# The domain's graph modules (pydantic models) are imported inside the orchestrators: the worker
# imports this module at every cold start, before any orchestration runs.

if TYPE_CHECKING:
    from outsystems.deployment import Walk
    from outsystems.topology import Resource

bp = df.Blueprint()

Orchestration = Generator[Any, Any, dict[str, Any]]


def retry_options(tuning: dict[str, Any]) -> df.RetryOptions:
    """Retries of activities that failed transiently (after the ARM pipeline's own retries)."""
    first = max(1, int(float(tuning.get("retrySeconds", 5)) * 1000))
    return df.RetryOptions(first_retry_interval_in_milliseconds=first, max_number_of_attempts=5)


def child_instance_id(parent_id: str, environment: str) -> str:
    """The deterministic instance id of an environment's sub-orchestration."""
    return f"{parent_id}:{environment}"


def publish(
    context: df.DurableOrchestrationContext,
    event_type: EventType,
    subject: str,
    data: dict[str, Any],
    retry: df.RetryOptions,
) -> Any:
    """The task publishing one CloudEvent (deterministic id and time)."""
    from outsystems.events import cloud_event

    event = cloud_event(
        event_type, subject, data, id=str(context.new_uuid()), time=context.current_utc_datetime
    )
    return context.call_activity_with_retry("publish_event", retry, event)


def drive_walk(
    context: df.DurableOrchestrationContext,
    walk: Walk,
    *,
    begin: Callable[[Resource], Any],
    subscription_id: str,
    solution_id: str,
    retry: df.RetryOptions,
    poll: timedelta,
    report: Callable[[], None],
) -> Generator[Any, Any, None]:
    """Run a walk to its end: start what is ready, poll what runs after a durable timer.

    `begin(resource)` is the task that starts one resource's operation. Used with `yield from`
    by the orchestrations that create (deploy) and delete (teardown) resources.
    """
    while not walk.finished:
        now = context.current_utc_datetime
        ready = walk.ready(now)
        try:
            if ready:
                started = yield context.task_all([begin(resource) for resource in ready])
                for resource, operation in zip(ready, started, strict=True):
                    walk.started(resource.id, operation, context.current_utc_datetime)
            elif walk.running:
                yield context.create_timer(now + poll)
                checked = yield context.call_activity_with_retry(
                    "check_operations",
                    retry,
                    {
                        "subscriptionId": subscription_id,
                        "solutionId": solution_id,
                        "operations": walk.running,
                    },
                )
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
            walk.fail(None, "ActivityFailed", str(error).split("\n", 1)[0][:500])
        report()


@bp.orchestration_trigger(context_name="context")
def deploy_environment(context: df.DurableOrchestrationContext) -> Orchestration:
    """Create or update one environment's resources (or the shared ones), then report."""
    from outsystems.deployment import Walk, graph_of

    request = context.get_input()
    spec, graph = graph_of(request["spec"])
    tuning = request.get("tuning") or {}
    retry = retry_options(tuning)
    poll = timedelta(seconds=float(tuning.get("pollSeconds", 15)))
    environment = request["environment"]
    walk = Walk(
        graph.for_environment(environment),
        request["apply"],
        timeout_scale=float(tuning.get("timeoutScale", 1.0)),
        backoff_scale=float(tuning.get("backoffScale", 1.0)),
    )
    context.set_custom_status(walk.progress())
    yield from drive_walk(
        context,
        walk,
        begin=lambda resource: context.call_activity_with_retry(
            "begin_apply_resource",
            retry,
            {
                "spec": request["spec"],
                "resourceId": resource.id,
                # Secrets created by this deployment derive their values from it.
                "nonce": request.get("nonce") or context.instance_id,
                "rerun": walk.rerun_of(resource.id),
            },
        ),
        subscription_id=spec.subscription_id,
        solution_id=spec.solution_id,
        retry=retry,
        poll=poll,
        report=lambda: context.set_custom_status(walk.progress()),
    )
    return walk.progress()


def _failed_everywhere(code: str, message: str, totals: Mapping[str, int]) -> dict[str, Any]:
    from outsystems.deployment import pending_progress

    error = {"code": code, "message": message, "resource": ""}
    return {
        env: {**pending_progress(totals[env]), "status": "Failed", "error": error}
        for env in ENVIRONMENTS
    }


@bp.orchestration_trigger(context_name="context")
def deploy_platform(context: df.DurableOrchestrationContext) -> Orchestration:
    """Plan, deploy the shared resources, fan out the environments, publish the outcome."""
    from outsystems.deployment import graph_of, pending_progress

    request = context.get_input()
    spec_json = request["spec"]
    tuning = request.get("tuning") or {}
    retry = retry_options(tuning)
    spec, graph = graph_of(spec_json)
    solution = spec.solution_id
    # One id per deployment (deterministic in replay): the nonce of the secrets it creates.
    nonce = str(context.new_uuid())
    totals: dict[str, int] = {env: len(graph.for_environment(env)) for env in ENVIRONMENTS}
    environments: dict[str, Any] = {env: pending_progress(totals[env]) for env in ENVIRONMENTS}
    context.set_custom_status({"phase": "planning", "environments": environments})
    yield publish(
        context,
        EventType.DEPLOYMENT_STARTED,
        solution,
        {"instanceId": context.instance_id, "resourceGroup": spec.resource_group},
        retry,
    )

    scopes = [SHARED, *ENVIRONMENTS]
    try:
        plans = yield context.task_all(
            [
                context.call_activity_with_retry(
                    "plan_environment", retry, {"spec": spec_json, "environment": scope}
                )
                for scope in scopes
            ]
        )
    except Exception as error:  # see deploy_environment
        environments = _failed_everywhere("PlanFailed", str(error)[:500], totals)
    else:
        apply = {
            scope: [item["id"] for item in plan if item["action"] != "noop"]
            for scope, plan in zip(scopes, plans, strict=True)
        }

        def child(scope: str) -> Any:
            return context.call_sub_orchestrator(
                "deploy_environment",
                {
                    "spec": spec_json,
                    "environment": scope,
                    "apply": apply[scope],
                    "tuning": tuning,
                    "nonce": nonce,
                },
                child_instance_id(context.instance_id, scope),
            )

        context.set_custom_status({"phase": "shared", "environments": environments})
        shared = yield child(SHARED)
        if shared["status"] != "Succeeded":
            failure = shared["error"] or {}
            environments = _failed_everywhere(
                failure.get("code", "SharedResourcesFailed"),
                f"shared resources failed: {failure.get('message', '')}",
                totals,
            )
            for env in ENVIRONMENTS:
                environments[env]["error"]["resource"] = failure.get("resource", "")
        else:
            for env in ENVIRONMENTS:
                environments[env]["status"] = "Running"
            context.set_custom_status({"phase": "environments", "environments": environments})
            results = yield context.task_all([child(env) for env in ENVIRONMENTS])
            environments = dict(zip(ENVIRONMENTS, results, strict=True))

    outputs: dict[str, Any] = {}
    if any(e["status"] == "Succeeded" for e in environments.values()):
        outputs = yield context.call_activity_with_retry("read_outputs", retry, {"spec": spec_json})
        outputs = {
            env: outputs[env] for env in outputs if environments[env]["status"] == "Succeeded"
        }
    events = [
        publish(
            context,
            EventType.ENVIRONMENT_SUCCEEDED
            if result["status"] == "Succeeded"
            else EventType.ENVIRONMENT_FAILED,
            f"{solution}/{env}",
            {"status": result["status"], "error": result["error"]},
            retry,
        )
        for env, result in environments.items()
    ]
    succeeded = all(e["status"] == "Succeeded" for e in environments.values())
    events.append(
        publish(
            context,
            EventType.DEPLOYMENT_SUCCEEDED if succeeded else EventType.DEPLOYMENT_FAILED,
            solution,
            {
                "instanceId": context.instance_id,
                "failedEnvironments": [
                    env for env, e in environments.items() if e["status"] != "Succeeded"
                ],
            },
            retry,
        )
    )
    yield context.task_all(events)
    result = {
        "status": "Succeeded" if succeeded else "Failed",
        "environments": environments,
        "outputs": outputs,
    }
    context.set_custom_status({"phase": "done", "environments": environments})
    return result

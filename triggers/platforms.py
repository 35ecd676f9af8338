"""HTTP API for platforms: deploy, follow, plan, cancel, tear down, list (`docs/api.md`).

Input is parsed and validated here, at the edge; bad input answers 4xx with the error envelope
and starts nothing. Each platform has one orchestration instance id, shared by its deployments
and teardowns, so two operations on one platform never run at once.

PUT and DELETE follow Azure's asynchronous-operation pattern on the app's own routes: 202 with
`Location` (and `Retry-After`) to `/api/platforms/{solutionId}/operations/{operationId}`, which
answers 202 while the operation runs and 200 with its result. Each operation gets an id of its
own (kept in the orchestration's input), since the instance id is the platform's. The Durable
extension's management URLs (`create_check_status_response`) are never handed out: in Azure
they carry the extension's system key, with which anyone could terminate or purge any instance
of the task hub (Durable Functions HTTP API reference,
https://learn.microsoft.com/azure/azure-functions/durable/durable-functions-http-api).
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import re
import uuid
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

import azure.durable_functions as df
import azure.functions as func

from appsettings import AppSettings
from outsystems.errors import ApiError, FieldError, SpecError
from outsystems.names import ENVIRONMENTS
from triggers.http import (
    api_error_response,
    error_response,
    json_response,
    route_param,
    too_large,
)
from triggers.platform_state import (
    RUNNING_STATES,
    last_operation,
    operation_document,
    operation_outcome,
    platform_state,
)

if TYPE_CHECKING:
    from outsystems.spec import PlatformSpec

bp = df.Blueprint(http_auth_level=func.AuthLevel.FUNCTION)
log = logging.getLogger(__name__)


def platform_instance_id(solution_id: str) -> str:
    """The orchestration instance id of a platform's deployments and teardowns."""
    return f"platform-{solution_id}"


def unknown_platform(solution_id: str) -> func.HttpResponse:
    return error_response(404, "PlatformNotFound", f"No platform {solution_id[:40]} is known.")


#: An operation id: a GUID in its canonical, lower-case form (what `uuid4()` writes).
_OPERATION_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def new_operation_id() -> str:
    """The id of a new operation of a platform (its URL is the app's operation route)."""
    return str(uuid.uuid4())


def operation_url(req: func.HttpRequest, solution_id: str, operation_id: str) -> str:
    """The absolute URL of an operation, on the origin and route prefix the request came to.

    Only the scheme, host and the path up to `platforms/` of the request are kept: never its
    query, which may hold the caller's key (`?code=`).
    """
    parts = urlsplit(req.url)
    path = parts.path
    prefix = path[: path.lower().rfind("/platforms/")] if "/platforms/" in path.lower() else "/api"
    return (
        f"{parts.scheme}://{parts.netloc}{prefix}/platforms/{quote(solution_id, safe='')}"
        f"/operations/{operation_id}"
    )


def _polling_headers(url: str, settings: AppSettings) -> dict[str, str]:
    """`Location` and `Retry-After` (whole seconds, at least one: RFC 9110's delay-seconds)."""
    return {
        "Location": url,
        "Retry-After": str(max(1, math.ceil(settings.operation_poll_seconds))),
    }


def _accepted(
    req: func.HttpRequest, solution_id: str, operation_id: str, kind: str, settings: AppSettings
) -> func.HttpResponse:
    """The 202 of a started operation: where to follow it, and what it is."""
    body = {"id": operation_id, "solutionId": solution_id, "kind": kind, "status": "Running"}
    url = operation_url(req, solution_id, operation_id)
    return json_response(body, 202, _polling_headers(url, settings))


def _nameable(solution_id: str) -> bool:
    """Only a valid solution id can name a platform. Any other must not reach the durable
    client, which puts instance ids into its URLs as they are (`?`, `#`, `/` would address
    another instance or endpoint)."""
    from outsystems.names import is_valid_solution_id

    return is_valid_solution_id(solution_id)


def deployment_tuning(settings: AppSettings) -> dict[str, float]:
    """Polling and wait limits of deployments, from settings (kept in the orchestration input)."""
    poll = settings.operation_poll_seconds
    return {
        "pollSeconds": poll,
        "retrySeconds": max(poll, 1.0),
        "timeoutScale": settings.operation_timeout_scale,
        # Backoff after a retryable ARM failure follows the polling pace (seconds in Azure).
        "backoffScale": max(poll / 15.0, 0.01),
    }


def _spec_of(
    req: func.HttpRequest, settings: AppSettings, previous: dict[str, Any] | None = None
) -> PlatformSpec:
    """The validated spec in the request (path solution id + body), named by the scheme the
    platform already has; `SpecError` if invalid, `ArmUnavailable` if ARM cannot say.

    `previous` is the platform's last operation's input, when the task hub still has it.
    Blocking: it may read the platform's resource group.
    """
    from outsystems.spec import naming_change, parse_spec, resolve_naming

    def parse(body: object) -> PlatformSpec:
        return parse_spec(
            route_param(req, "solutionId"),
            body,
            default_subscription_id=settings.subscription_id,
            managed_subscription_ids=settings.managed_subscription_ids,
        )

    spec = parse(req.get_body())
    frontends = spec.frontends
    if frontends is not None and frontends.max_capacity > settings.scaling_max_capacity:
        raise SpecError(
            "The platform spec is invalid.",
            [
                FieldError(
                    "environments.prod.frontends.maxCapacity",
                    f"must be at most {settings.scaling_max_capacity}, the ceiling this app "
                    "puts on any scale set (app setting SCALING_MAX_CAPACITY)",
                )
            ],
        )
    previous_spec = (previous or {}).get("spec") if (previous or {}).get("operation") else None
    body = json.loads(req.get_body())
    scheme = resolve_naming(body, previous_spec, None)
    if previous_spec is None and not (isinstance(body, dict) and "naming" in body):
        from arm.preflight import TransientArmError, deployed_naming

        # The task hub knows nothing of the platform (a new one, or a purged hub): Azure does.
        try:
            scheme = deployed_naming(spec) or "marketplace"
        except TransientArmError as error:
            raise ArmUnavailableError(str(error)) from error
    if scheme is not None and scheme != spec.naming:
        spec = parse({**body, "naming": scheme})
    change = naming_change(previous_spec, spec)
    if change is not None:
        raise SpecError("The platform spec is invalid.", [change])
    return spec


def json_value(value: Any) -> Any:
    """A value the durable client may hand back still JSON-encoded; None if it is unreadable."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return None
    return value


def _status_dict(status: df.DurableOrchestrationStatus) -> dict[str, Any] | None:
    if status is None or status.runtime_status is None:
        return None
    value = json_value(status.input_)
    return {
        "instanceId": status.instance_id,
        "runtimeStatus": status.runtime_status.value,
        "input": value if isinstance(value, dict) else None,
        "output": status.output,
        "customStatus": status.custom_status,
        "createdTime": status.created_time,
        "lastUpdatedTime": status.last_updated_time,
    }


async def _operation(
    client: df.DurableOrchestrationClient, instance_id: str, *, show_input: bool = True
) -> dict[str, Any] | None:
    return _status_dict(await client.get_status(instance_id, show_input=show_input))


def _conflict(solution_id: str, operation: dict[str, Any]) -> func.HttpResponse:
    kind = (operation.get("input") or {}).get("operation", "deploy")
    return error_response(
        409,
        "Conflict",
        f"A {kind} of platform {solution_id} is running (instance {operation['instanceId']}); "
        "wait for it to finish or cancel it.",
    )


class ArmUnavailableError(RuntimeError):
    """ARM did not answer a read the request needs (transient): the answer is a 503."""


def _arm_unavailable(spec_id: str, error: Exception) -> func.HttpResponse:
    log.warning("pre-flight checks of %s: %s", spec_id[:40], error)
    envelope = {
        "error": {
            "code": "ArmUnavailable",
            "message": "Azure Resource Manager did not answer the checks of the spec; "
            "nothing was started. Try again shortly.",
        }
    }
    return json_response(envelope, 503, {"Retry-After": "30"})


def preflight(spec: PlatformSpec, settings: AppSettings) -> func.HttpResponse | None:
    """The 400 of a spec that what exists in Azure rules out (`outsystems.preflight`), a 503
    when ARM cannot be asked right now, None to go ahead. Blocking: ARM reads."""
    from arm.preflight import TransientArmError, preflight_problems
    from outsystems.preflight import PreflightError

    try:
        problems = preflight_problems(spec, settings.allowed_vnet_ids)
    except TransientArmError as error:
        return _arm_unavailable(spec.solution_id, error)
    if problems:
        return api_error_response(
            PreflightError("The platform spec cannot be deployed as it stands.", problems)
        )
    return None


def _version_changes(previous: dict[str, Any] | None, spec: dict[str, Any]) -> list[FieldError]:
    """In-place upgrades are not supported: the versions of a deployed platform are fixed."""
    if not previous or previous.get("operation") != "deploy":
        return []
    before = previous.get("spec") or {}
    return [
        FieldError(
            field,
            f"cannot change {field} of a deployed platform from {before[field]} to "
            f"{spec[field]}: in-place upgrades are not supported",
        )
        for field in ("platformVersion", "lifetimeVersion")
        if before.get(field) and before.get(field) != spec.get(field)
    ]


@bp.route(route="platforms/{solutionId}", methods=["PUT"])
@bp.durable_client_input(client_name="client")
async def put_platform(
    req: func.HttpRequest, client: df.DurableOrchestrationClient
) -> func.HttpResponse:
    """Create or update a platform to match the spec; starts the deployment orchestration."""
    if oversized := too_large(req):
        return oversized
    solution_id = route_param(req, "solutionId")
    settings = AppSettings.load()
    instance_id = platform_instance_id(solution_id)
    current = await _operation(client, instance_id) if _nameable(solution_id) else None
    try:
        spec = await asyncio.to_thread(_spec_of, req, settings, (current or {}).get("input"))
    except ApiError as error:
        return api_error_response(error)
    except ArmUnavailableError as error:
        return _arm_unavailable(solution_id, error)
    if current and current["runtimeStatus"] in RUNNING_STATES:
        return _conflict(solution_id, current)
    spec_json = spec.to_json_dict()
    changes = _version_changes(current["input"] if current else None, spec_json)
    if changes:
        return api_error_response(ApiError("The platform spec is invalid.", changes))
    refusal = await asyncio.to_thread(preflight, spec, settings)
    if refusal is not None:
        return refusal
    operation_id = new_operation_id()
    request = {
        "operation": "deploy",
        "operationId": operation_id,
        "spec": spec_json,
        "tuning": deployment_tuning(settings),
    }
    try:
        await client.start_new("deploy_platform", instance_id, request)
    except Exception as error:
        # Lost the check-then-start race: the instance started in between. The client raises a
        # plain Exception for any refusal, so look again before answering.
        current = await _operation(client, instance_id)
        if current and current["runtimeStatus"] in RUNNING_STATES:
            return _conflict(solution_id, current)
        raise error
    log.info("deployment of %s started (operation %s)", solution_id, operation_id)
    return _accepted(req, solution_id, operation_id, "deploy", settings)


async def _last_operation(
    client: df.DurableOrchestrationClient, solution_id: str
) -> tuple[str, dict[str, Any]] | None:
    """The instance id and status of a platform's last operation; None for an unknown one."""
    if not _nameable(solution_id):
        return None
    instance_id = platform_instance_id(solution_id)
    operation = await _operation(client, instance_id)
    return (instance_id, operation) if operation is not None else None


def _torn_down(operation: dict[str, Any], environments: Iterable[str]) -> bool:
    """Whether the operation is a teardown that removed every one of `environments`."""
    request = operation.get("input") or {}
    output = json_value(operation.get("output"))
    return (
        request.get("operation") == "teardown"
        and operation["runtimeStatus"] == "Completed"
        and set(environments) <= set(request.get("environments") or ())
        and isinstance(output, dict)
        and output.get("status") == "Succeeded"
    )


async def standing_platform(
    client: df.DurableOrchestrationClient,
    solution_id: str,
    environments: Iterable[str] = ENVIRONMENTS,
) -> tuple[str, dict[str, Any], dict[str, Any]] | None:
    """The instance id, last operation and spec of a platform; None for an unknown one or one
    whose last operation tore all of `environments` down."""
    known = await _last_operation(client, solution_id)
    if known is None:
        return None
    instance_id, operation = known
    spec = (operation["input"] or {}).get("spec")
    if not spec or _torn_down(operation, environments):
        return None
    return instance_id, operation, spec


async def _children(
    client: df.DurableOrchestrationClient, instance_id: str
) -> dict[str, dict[str, Any] | None]:
    from orchestrators.deploy import child_instance_id

    statuses = await asyncio.gather(
        *(
            _operation(client, child_instance_id(instance_id, env), show_input=False)
            for env in ENVIRONMENTS
        )
    )
    return dict(zip(ENVIRONMENTS, statuses, strict=True))


@bp.route(route="platforms/{solutionId}", methods=["GET"])
@bp.durable_client_input(client_name="client")
async def get_platform(
    req: func.HttpRequest, client: df.DurableOrchestrationClient
) -> func.HttpResponse:
    """The platform's state: last operation, per-environment progress, outputs."""
    solution_id = route_param(req, "solutionId")
    known = await _last_operation(client, solution_id)
    if known is None:
        return unknown_platform(solution_id)
    instance_id, operation = known
    children = await _children(client, instance_id)
    return json_response(platform_state(solution_id, operation, children))


@bp.route(route="platforms/{solutionId}/cancel", methods=["POST"])
@bp.durable_client_input(client_name="client")
async def cancel_platform(
    req: func.HttpRequest, client: df.DurableOrchestrationClient
) -> func.HttpResponse:
    """Stop the running deployment or teardown; resources stay as they are."""
    from orchestrators.deploy import child_instance_id

    if oversized := too_large(req):
        return oversized
    solution_id = route_param(req, "solutionId")
    known = await _last_operation(client, solution_id)
    if known is None:
        return unknown_platform(solution_id)
    instance_id, operation = known
    if operation["runtimeStatus"] not in RUNNING_STATES:
        return error_response(
            409, "NothingRunning", f"Nothing is running for platform {solution_id}."
        )
    await client.terminate(instance_id, "canceled by a user")
    # Terminating an orchestration leaves its sub-orchestrations running: stop them too.
    children = await _children(client, instance_id)
    for env, child in children.items():
        if child and child["runtimeStatus"] in RUNNING_STATES:
            await client.terminate(child_instance_id(instance_id, env), "parent canceled")
    log.info("operation %s of %s canceled", instance_id, solution_id)
    headers = {}
    operation_id = (operation.get("input") or {}).get("operationId")
    if operation_id:
        headers["Location"] = operation_url(req, solution_id, operation_id)
    return json_response({"instanceId": instance_id, "runtimeStatus": "Canceled"}, 202, headers)


@bp.route(route="platforms/{solutionId}/operations/{operationId}", methods=["GET"])
@bp.durable_client_input(client_name="client")
async def get_operation(
    req: func.HttpRequest, client: df.DurableOrchestrationClient
) -> func.HttpResponse:
    """One operation of a platform: 202 while it runs, 200 with its result once it ended."""
    solution_id = route_param(req, "solutionId")
    operation_id = route_param(req, "operationId")
    known = None
    if _OPERATION_ID.fullmatch(operation_id):
        known = await _last_operation(client, solution_id)
    if known is None or (known[1].get("input") or {}).get("operationId") != operation_id:
        # Durable keeps the last run of an instance only: an earlier operation is gone.
        return error_response(
            404,
            "OperationNotFound",
            f"No operation {operation_id[:40]} of platform {solution_id[:40]} is known "
            "(a later operation of the platform replaces the record of an earlier one).",
        )
    instance_id, operation = known
    children: dict[str, dict[str, Any] | None] = {}
    if operation["runtimeStatus"] in RUNNING_STATES or operation["runtimeStatus"] == "Terminated":
        children = await _children(client, instance_id)
    document = operation_document(operation_id, platform_state(solution_id, operation, children))
    if document["status"] != "Running":
        return json_response(document)
    url = operation_url(req, solution_id, operation_id)
    return json_response(document, 202, _polling_headers(url, AppSettings.load()))


@bp.route(route="platforms/{solutionId}/plan", methods=["POST"])
def plan_platform(req: func.HttpRequest) -> func.HttpResponse:
    """What a PUT with this body would do, read from the live state, changing nothing."""
    from arm.live import read_live
    from outsystems.deployment import graph_of
    from outsystems.plan import plan

    if oversized := too_large(req):
        return oversized
    settings = AppSettings.load()
    try:
        spec = _spec_of(req, settings)
    except ApiError as error:
        return api_error_response(error)
    except ArmUnavailableError as error:
        return _arm_unavailable(route_param(req, "solutionId"), error)
    refusal = preflight(spec, settings)
    if refusal is not None:
        return refusal
    _, graph = graph_of(spec.to_json_dict())
    live = read_live(spec.subscription_id, graph.resources)
    result = plan(graph, {r.id: body for r, body in zip(graph.resources, live, strict=True)})
    return json_response(result.to_json())


def _shown(names: list[str], limit: int = 80) -> str:
    """Names quoted back to the caller, cut short: the input may be arbitrarily long."""
    text = ", ".join(names)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _environments(req: func.HttpRequest) -> list[str]:
    """The `environments` query parameter (all four when absent); `ApiError` when invalid."""
    raw = req.params.get("environments")
    if raw is None:
        return list(ENVIRONMENTS)
    chosen = [name.strip().lower() for name in raw.split(",") if name.strip()]
    unknown = [name for name in chosen if name not in ENVIRONMENTS]
    if unknown or not chosen:
        raise ApiError(
            "The environments to tear down are invalid.",
            [
                FieldError(
                    "environments",
                    f"must be a comma-separated list of {', '.join(ENVIRONMENTS)}"
                    + (f"; unknown: {_shown(unknown)}" if unknown else ""),
                )
            ],
        )
    return [name for name in ENVIRONMENTS if name in chosen]


@bp.route(route="platforms/{solutionId}", methods=["DELETE"])
@bp.durable_client_input(client_name="client")
async def delete_platform(
    req: func.HttpRequest, client: df.DurableOrchestrationClient
) -> func.HttpResponse:
    """Tear the platform down (all of it, or `?environments=dev,test`)."""
    if oversized := too_large(req):
        return oversized
    solution_id = route_param(req, "solutionId")
    try:
        environments = _environments(req)
    except ApiError as error:
        return api_error_response(error)
    standing = await standing_platform(client, solution_id)
    if standing is None:
        return unknown_platform(solution_id)
    instance_id, operation, spec = standing
    if operation["runtimeStatus"] in RUNNING_STATES:
        return _conflict(solution_id, operation)
    settings = AppSettings.load()
    operation_id = new_operation_id()
    request = {
        "operation": "teardown",
        "operationId": operation_id,
        "spec": spec,
        "environments": environments,
        "tuning": deployment_tuning(settings),
    }
    await client.start_new("teardown_platform", instance_id, request)
    log.info("teardown of %s (%s) started", solution_id, ",".join(environments))
    return _accepted(req, solution_id, operation_id, "teardown", settings)


def _platform_groups(subscriptions: tuple[str, ...]) -> list[dict[str, str]]:
    from arm.live import parallel, resource_groups
    from outsystems.tags import managed_solution

    found = []
    for subscription, groups in zip(
        subscriptions, parallel(resource_groups, subscriptions), strict=True
    ):
        for group in groups:
            solution = managed_solution(group.get("tags"))
            if solution:
                found.append(
                    {
                        "solutionId": solution,
                        "subscriptionId": subscription,
                        "resourceGroup": group["name"],
                    }
                )
    return found


@bp.route(route="platforms", methods=["GET"])
@bp.durable_client_input(client_name="client")
async def list_platforms(
    req: func.HttpRequest, client: df.DurableOrchestrationClient
) -> func.HttpResponse:
    """The platforms this app manages, found by their tags in the managed subscriptions."""
    settings = AppSettings.load()
    platforms = await asyncio.to_thread(_platform_groups, settings.all_subscription_ids)
    operations = await asyncio.gather(
        *(_operation(client, platform_instance_id(p["solutionId"])) for p in platforms)
    )
    listed = [
        {
            **platform,
            "status": operation_outcome(operation) if operation else None,
            "lastOperation": last_operation(operation) if operation else None,
        }
        for platform, operation in zip(platforms, operations, strict=True)
    ]
    return json_response({"platforms": sorted(listed, key=lambda p: p["solutionId"])})

"""HTTP API for platforms: deploy and upgrade, follow, plan, approve an upgrade's next
environment, cancel, tear down, list (`docs/api.md`).

Each route parses the request, asks the platform use cases (`services.platforms`) and maps
their result, or their refusal, to the answer; bad input answers 4xx with the error envelope
and starts nothing.

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

import json
import math
from typing import TYPE_CHECKING
from urllib.parse import quote, urlsplit

import azure.durable_functions as df
import azure.functions as func

from appsettings import AppSettings
from outsystems.errors import ApiError, FieldError
from outsystems.names import ENVIRONMENTS, Environment
from services.azure import AzurePlatformArm
from services.errors import ServiceError
from triggers.http import error_answer, json_response, route_param, too_large

if TYPE_CHECKING:
    from services.platforms import Started

bp = df.Blueprint(http_auth_level=func.AuthLevel.FUNCTION)


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


def _accepted(req: func.HttpRequest, started: Started, settings: AppSettings) -> func.HttpResponse:
    """The 202 of a started operation: where to follow it, and what it is."""
    body = {
        "id": started.operation_id,
        "solutionId": started.solution_id,
        "kind": started.kind,
        "status": "Running",
    }
    if started.resumes:
        body["resumes"] = started.resumes
    url = operation_url(req, started.solution_id, started.operation_id)
    return json_response(body, 202, _polling_headers(url, settings))


@bp.route(route="platforms/{solutionId}", methods=["PUT"])
@bp.durable_client_input(client_name="client")
async def put_platform(
    req: func.HttpRequest, client: df.DurableOrchestrationClient
) -> func.HttpResponse:
    """Create or update a platform to match the spec; starts the deployment orchestration, or
    the upgrade when the spec raises a deployed platform's versions."""
    import services.platforms as platforms

    if oversized := too_large(req):
        return oversized
    settings = AppSettings.load()
    try:
        started = await platforms.deploy(
            client, AzurePlatformArm(), settings, route_param(req, "solutionId"), req.get_body()
        )
    except ServiceError as error:
        return error_answer(error)
    return _accepted(req, started, settings)


@bp.route(route="platforms/{solutionId}", methods=["GET"])
@bp.durable_client_input(client_name="client")
async def get_platform(
    req: func.HttpRequest, client: df.DurableOrchestrationClient
) -> func.HttpResponse:
    """The platform's state: last operation, per-environment progress, outputs."""
    import services.platforms as platforms

    try:
        state = await platforms.state(client, route_param(req, "solutionId"))
    except ServiceError as error:
        return error_answer(error)
    return json_response(state)


@bp.route(route="platforms/{solutionId}/cancel", methods=["POST"])
@bp.durable_client_input(client_name="client")
async def cancel_platform(
    req: func.HttpRequest, client: df.DurableOrchestrationClient
) -> func.HttpResponse:
    """Stop the running deployment or teardown; resources stay as they are."""
    import services.platforms as platforms

    if oversized := too_large(req):
        return oversized
    solution_id = route_param(req, "solutionId")
    try:
        canceled = await platforms.cancel(client, solution_id)
    except ServiceError as error:
        return error_answer(error)
    headers = {}
    if canceled.operation_id:
        headers["Location"] = operation_url(req, solution_id, canceled.operation_id)
    return json_response(
        {"instanceId": canceled.instance_id, "runtimeStatus": "Canceled"}, 202, headers
    )


@bp.route(route="platforms/{solutionId}/operations/{operationId}", methods=["GET"])
@bp.durable_client_input(client_name="client")
async def get_operation(
    req: func.HttpRequest, client: df.DurableOrchestrationClient
) -> func.HttpResponse:
    """One operation of a platform: 202 while it runs, 200 with its result once it ended."""
    import services.platforms as platforms

    solution_id = route_param(req, "solutionId")
    operation_id = route_param(req, "operationId")
    try:
        view = await platforms.operation(client, solution_id, operation_id)
    except ServiceError as error:
        return error_answer(error)
    if not view.running:
        return json_response(view.document)
    url = operation_url(req, solution_id, operation_id)
    return json_response(view.document, 202, _polling_headers(url, AppSettings.load()))


@bp.route(route="platforms/{solutionId}/plan", methods=["POST"])
@bp.durable_client_input(client_name="client")
async def plan_platform(
    req: func.HttpRequest, client: df.DurableOrchestrationClient
) -> func.HttpResponse:
    """What a PUT with this body would do, changing nothing: each resource's change read from
    the live state, or an upgrade's steps in order."""
    import services.platforms as platforms

    if oversized := too_large(req):
        return oversized
    settings = AppSettings.load()
    try:
        result = await platforms.plan_of(
            client, AzurePlatformArm(), settings, route_param(req, "solutionId"), req.get_body()
        )
    except ServiceError as error:
        return error_answer(error)
    return json_response(result.to_json())


class _ApprovalError(ApiError):
    """The body of an approval is not one."""

    code = "InvalidApproval"

    def __init__(self, target: str, message: str) -> None:
        super().__init__("The approval is invalid.", [FieldError(target, message)])


def _approved_environment(req: func.HttpRequest) -> str | None:
    """The environment the body names (`{"environment": "test"}`), None for an empty body or
    `{}`; `_ApprovalError` otherwise."""
    raw = req.get_body()
    if not raw or not raw.strip():
        return None
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError):
        raise _ApprovalError("body", "must be a JSON object") from None
    if not isinstance(body, dict):
        raise _ApprovalError("body", 'must be a JSON object: {"environment": "<env>"}')
    unknown = sorted(set(body) - {"environment"})
    if unknown:
        raise _ApprovalError(_shown(unknown, 40), "unknown field; give environment only")
    environment = body.get("environment")
    if environment is None:
        return None
    if environment not in ENVIRONMENTS:
        raise _ApprovalError("environment", f"must be one of {', '.join(ENVIRONMENTS)}")
    return str(environment)


@bp.route(route="platforms/{solutionId}/upgrade/approve", methods=["POST"])
@bp.durable_client_input(client_name="client")
async def approve_upgrade(
    req: func.HttpRequest, client: df.DurableOrchestrationClient
) -> func.HttpResponse:
    """Let the platform's upgrade go on to the environment it awaits (202); 409 when no
    upgrade awaits an approval, 400 when the body names another environment."""
    import services.platforms as platforms

    if oversized := too_large(req):
        return oversized
    solution_id = route_param(req, "solutionId")
    try:
        environment = _approved_environment(req)
        approved = await platforms.approve_upgrade(client, solution_id, environment)
    except (ServiceError, ApiError) as error:
        return error_answer(error)
    body: dict[str, object] = {
        "solutionId": solution_id,
        "environment": approved.environment,
        "status": "Approved",
    }
    headers = {}
    if approved.operation_id:
        body["operationId"] = approved.operation_id
        url = operation_url(req, solution_id, approved.operation_id)
        headers = _polling_headers(url, AppSettings.load())
    return json_response(body, 202, headers)


def _shown(names: list[str], limit: int = 80) -> str:
    """Names quoted back to the caller, cut short: the input may be arbitrarily long."""
    text = ", ".join(names)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _environments(req: func.HttpRequest) -> list[Environment]:
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
    import services.platforms as platforms

    if oversized := too_large(req):
        return oversized
    try:
        environments = _environments(req)
    except ApiError as error:
        return error_answer(error)
    settings = AppSettings.load()
    try:
        started = await platforms.teardown(
            client, settings, route_param(req, "solutionId"), environments
        )
    except ServiceError as error:
        return error_answer(error)
    return _accepted(req, started, settings)


@bp.route(route="platforms", methods=["GET"])
@bp.durable_client_input(client_name="client")
async def list_platforms(
    req: func.HttpRequest, client: df.DurableOrchestrationClient
) -> func.HttpResponse:
    """The platforms this app manages, found by their tags in the managed subscriptions."""
    import services.platforms as platforms

    listed = await platforms.list_platforms(client, AzurePlatformArm(), AppSettings.load())
    return json_response({"platforms": [platform.to_json() for platform in listed]})

"""HTTP API for platforms: deploy, follow, plan, cancel, tear down, list (`docs/api.md`).

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

import math
from urllib.parse import quote, urlsplit

import azure.durable_functions as df
import azure.functions as func

from appsettings import AppSettings
from outsystems.errors import ApiError, FieldError
from outsystems.names import ENVIRONMENTS, Environment
from services import platforms
from services.azure import AzurePlatformArm
from services.errors import ServiceError
from services.platforms import Started
from triggers.http import error_answer, json_response, route_param, too_large

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
    url = operation_url(req, started.solution_id, started.operation_id)
    return json_response(body, 202, _polling_headers(url, settings))


@bp.route(route="platforms/{solutionId}", methods=["PUT"])
@bp.durable_client_input(client_name="client")
async def put_platform(
    req: func.HttpRequest, client: df.DurableOrchestrationClient
) -> func.HttpResponse:
    """Create or update a platform to match the spec; starts the deployment orchestration."""
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
def plan_platform(req: func.HttpRequest) -> func.HttpResponse:
    """What a PUT with this body would do, read from the live state, changing nothing."""
    if oversized := too_large(req):
        return oversized
    settings = AppSettings.load()
    try:
        result = platforms.plan(
            AzurePlatformArm(), settings, route_param(req, "solutionId"), req.get_body()
        )
    except ServiceError as error:
        return error_answer(error)
    return json_response(result.to_json())


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
    listed = await platforms.list_platforms(client, AzurePlatformArm(), AppSettings.load())
    return json_response({"platforms": [platform.to_json() for platform in listed]})

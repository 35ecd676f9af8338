"""Platform use cases: deploy, plan, tear down, cancel, the platform's state and operations,
and the list of platforms (`docs/api.md`).

Each platform has one orchestration instance id, shared by its deployments and teardowns, so
two operations on one platform never run at once; each operation gets an id of its own, kept
in the orchestration's input. The rules on what may be started (one operation at a time, fixed
versions, what Azure already holds) live here; the HTTP triggers parse the request and map the
results and `ServiceError`s to answers.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from appsettings import AppSettings
from orchestrators.deploy import child_instance_id
from outsystems.errors import ApiError, FieldError, SpecError
from outsystems.messages import (
    DEPLOY_PLATFORM,
    TEARDOWN_PLATFORM,
    DeployRequest,
    SpecDocument,
    TeardownRequest,
    Tuning,
)
from outsystems.names import ENVIRONMENTS, Environment, is_valid_solution_id
from outsystems.tags import managed_solution
from services.errors import ServiceError, arm_unavailable, unknown_platform
from services.platform_state import (
    OperationStatus,
    Outcome,
    PlatformRequest,
    last_operation,
    operation_document,
    operation_outcome,
    platform_state,
)
from services.ports import ArmUnavailableError, DurableClient, PlatformArm

if TYPE_CHECKING:
    from outsystems.plan import Plan
    from outsystems.spec import PlatformSpec

log = logging.getLogger(__name__)

OperationKind = Literal["deploy", "teardown"]


def platform_instance_id(solution_id: str) -> str:
    """The orchestration instance id of a platform's deployments and teardowns."""
    return f"platform-{solution_id}"


#: An operation id: a GUID in its canonical, lower-case form (what `uuid4()` writes).
_OPERATION_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def new_operation_id() -> str:
    """The id of a new operation of a platform (its URL is the app's operation route)."""
    return str(uuid.uuid4())


def _nameable(solution_id: str) -> bool:
    """Only a valid solution id can name a platform. Any other must not reach the durable
    client, which puts instance ids into its URLs as they are (`?`, `#`, `/` would address
    another instance or endpoint)."""
    return is_valid_solution_id(solution_id)


async def read_operation(
    client: DurableClient, instance_id: str, *, show_input: bool = True
) -> OperationStatus | None:
    return OperationStatus.of(await client.get_status(instance_id, show_input=show_input))


async def last_platform_operation(
    client: DurableClient, solution_id: str
) -> OperationStatus | None:
    """The status of a platform's last operation; None for an unknown platform."""
    if not _nameable(solution_id):
        return None
    return await read_operation(client, platform_instance_id(solution_id))


def torn_down(operation: OperationStatus, environments: Iterable[str]) -> bool:
    """Whether the operation is a teardown that removed every one of `environments`."""
    request, result = operation.request, operation.result
    return (
        isinstance(request, TeardownRequest)
        and operation.runtime_status == "Completed"
        and set(environments) <= set(request.environments)
        and result is not None
        and result.status == "Succeeded"
    )


def version_changes(previous: PlatformRequest | None, spec: Mapping[str, Any]) -> list[FieldError]:
    """In-place upgrades are not supported: the versions of a deployed platform are fixed.

    `previous` is the request of the platform's last operation, `spec` the new spec's JSON.
    """
    if not isinstance(previous, DeployRequest):
        return []
    before = previous.spec.document
    return [
        FieldError(
            field,
            f"cannot change {field} of a deployed platform from {before[field]} to "
            f"{spec[field]}: in-place upgrades are not supported",
        )
        for field in ("platformVersion", "lifetimeVersion")
        if before.get(field) and before.get(field) != spec.get(field)
    ]


@dataclass(frozen=True)
class StandingPlatform:
    """A platform that stands: its last operation and the spec that operation was about."""

    instance_id: str
    operation: OperationStatus
    spec: SpecDocument


async def standing_platform(
    client: DurableClient,
    solution_id: str,
    environments: Iterable[str] = ENVIRONMENTS,
) -> StandingPlatform | None:
    """The platform; None for an unknown one or one whose last operation tore all of
    `environments` down."""
    operation = await last_platform_operation(client, solution_id)
    if operation is None:
        return None
    request = operation.request
    if request is None or not request.spec.document or torn_down(operation, environments):
        return None
    return StandingPlatform(operation.instance_id, operation, request.spec)


def deployment_tuning(settings: AppSettings) -> Tuning:
    """Polling and wait limits of deployments and teardowns, from settings (kept in the
    orchestration's input)."""
    return Tuning.from_settings(settings.operation_poll_seconds, settings.operation_timeout_scale)


@dataclass(frozen=True)
class Started:
    """An operation that was started: follow it at its operation route."""

    solution_id: str
    operation_id: str
    kind: OperationKind


@dataclass(frozen=True)
class Canceled:
    """A running operation that was stopped."""

    instance_id: str
    operation_id: str | None


@dataclass(frozen=True)
class OperationView:
    """One operation of a platform as the operation route shows it."""

    document: Mapping[str, Any]

    @property
    def running(self) -> bool:
        return bool(self.document["status"] == "Running")


@dataclass(frozen=True)
class ListedPlatform:
    """A platform found by its tags, with the outcome of its last operation (if any)."""

    solution_id: str
    subscription_id: str
    resource_group: str
    status: Outcome | None
    last_operation: Mapping[str, Any] | None

    def to_json(self) -> dict[str, Any]:
        return {
            "solutionId": self.solution_id,
            "subscriptionId": self.subscription_id,
            "resourceGroup": self.resource_group,
            "status": self.status,
            "lastOperation": self.last_operation,
        }


def _conflict(solution_id: str, operation: OperationStatus) -> ServiceError:
    return ServiceError(
        "conflict",
        "Conflict",
        f"A {operation.kind} of platform {solution_id} is running (instance "
        f"{operation.instance_id}); wait for it to finish or cancel it.",
    )


# --- checks before anything starts -------------------------------------------------------------


def spec_of(
    arm: PlatformArm,
    settings: AppSettings,
    solution_id: str,
    body: bytes,
    previous: PlatformRequest | None = None,
) -> PlatformSpec:
    """The validated spec in the request (path solution id + body), named by the scheme the
    platform already has; `ApiError` if invalid, `ArmUnavailableError` if ARM cannot say.
    `previous` is the platform's last operation's request, when the task hub still has it.
    Blocking: it may read the platform's resource group."""
    from outsystems.spec import naming_change, parse_spec, resolve_naming

    def parse(value: object) -> PlatformSpec:
        return parse_spec(
            solution_id,
            value,
            default_subscription_id=settings.subscription_id,
            managed_subscription_ids=settings.managed_subscription_ids,
        )

    spec = parse(body)
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
    previous_spec = previous.spec.document if previous is not None else None
    document = json.loads(body)
    scheme = resolve_naming(document, previous_spec, None)
    if previous_spec is None and not (isinstance(document, dict) and "naming" in document):
        # The task hub knows nothing of the platform (a new one, or a purged hub): Azure does.
        scheme = arm.deployed_naming(spec) or "marketplace"
    if scheme is not None and scheme != spec.naming:
        spec = parse({**document, "naming": scheme})
    change = naming_change(previous_spec, spec)
    if change is not None:
        raise SpecError("The platform spec is invalid.", [change])
    return spec


def _checked_spec(
    arm: PlatformArm,
    settings: AppSettings,
    solution_id: str,
    body: bytes,
    previous: PlatformRequest | None,
) -> PlatformSpec:
    """`spec_of`, its errors as refusals."""
    try:
        return spec_of(arm, settings, solution_id, body, previous)
    except ApiError as error:
        raise ServiceError.invalid(error) from error
    except ArmUnavailableError as error:
        log.warning("pre-flight checks of %s: %s", solution_id[:40], error)
        raise arm_unavailable() from error


def preflight(arm: PlatformArm, settings: AppSettings, spec: PlatformSpec) -> None:
    """Refuses a spec that what exists in Azure rules out (`outsystems.preflight`), or that
    cannot be checked because ARM does not answer. Blocking: ARM reads."""
    from outsystems.preflight import PreflightError

    try:
        problems = arm.preflight_problems(spec, settings.allowed_vnet_ids)
    except ArmUnavailableError as error:
        log.warning("pre-flight checks of %s: %s", spec.solution_id[:40], error)
        raise arm_unavailable() from error
    if problems:
        raise ServiceError.invalid(
            PreflightError("The platform spec cannot be deployed as it stands.", problems)
        )


# --- use cases -----------------------------------------------------------------------------------


async def deploy(
    client: DurableClient, arm: PlatformArm, settings: AppSettings, solution_id: str, body: bytes
) -> Started:
    """Create or update a platform to match the spec in `body`: starts its deployment."""
    instance_id = platform_instance_id(solution_id)
    current = await read_operation(client, instance_id) if _nameable(solution_id) else None
    previous = current.request if current else None
    spec = await asyncio.to_thread(_checked_spec, arm, settings, solution_id, body, previous)
    if current and current.running:
        raise _conflict(solution_id, current)
    spec_json = spec.to_json_dict()
    changes = version_changes(previous, spec_json)
    if changes:
        raise ServiceError.invalid(ApiError("The platform spec is invalid.", changes))
    await asyncio.to_thread(preflight, arm, settings, spec)
    operation_id = new_operation_id()
    request = DeployRequest(operation_id, SpecDocument(spec_json), deployment_tuning(settings))
    try:
        await client.start_new(DEPLOY_PLATFORM.name, instance_id, request.to_json())
    except Exception as error:
        # Lost the check-then-start race: the instance started in between. The client raises a
        # plain Exception for any refusal, so look again before answering.
        current = await read_operation(client, instance_id)
        if current and current.running:
            raise _conflict(solution_id, current) from error
        raise
    log.info("deployment of %s started (operation %s)", solution_id, operation_id)
    return Started(solution_id, operation_id, "deploy")


def plan(arm: PlatformArm, settings: AppSettings, solution_id: str, body: bytes) -> Plan:
    """What a deployment of `body` would do, read from the live state, changing nothing.
    Blocking: ARM reads."""
    from outsystems.deployment import graph_of
    from outsystems.plan import plan as plan_graph

    spec = _checked_spec(arm, settings, solution_id, body, None)
    preflight(arm, settings, spec)
    _, graph = graph_of(spec.to_json_dict())
    live = arm.read_live(spec.subscription_id, graph.resources)
    return plan_graph(graph, {r.id: body for r, body in zip(graph.resources, live, strict=True)})


async def teardown(
    client: DurableClient,
    settings: AppSettings,
    solution_id: str,
    environments: Sequence[Environment],
) -> Started:
    """Tear down `environments` of a platform: starts its teardown."""
    standing = await standing_platform(client, solution_id)
    if standing is None:
        raise unknown_platform(solution_id)
    if standing.operation.running:
        raise _conflict(solution_id, standing.operation)
    operation_id = new_operation_id()
    request = TeardownRequest(
        operation_id, standing.spec, tuple(environments), deployment_tuning(settings)
    )
    await client.start_new(TEARDOWN_PLATFORM.name, standing.instance_id, request.to_json())
    log.info("teardown of %s (%s) started", solution_id, ",".join(environments))
    return Started(solution_id, operation_id, "teardown")


async def _children(client: DurableClient, instance_id: str) -> dict[str, OperationStatus | None]:
    statuses = await asyncio.gather(
        *(
            read_operation(client, child_instance_id(instance_id, env), show_input=False)
            for env in ENVIRONMENTS
        )
    )
    return dict(zip(ENVIRONMENTS, statuses, strict=True))


async def state(client: DurableClient, solution_id: str) -> dict[str, Any]:
    """The platform's state document: last operation, per-environment progress, outputs."""
    operation = await last_platform_operation(client, solution_id)
    if operation is None:
        raise unknown_platform(solution_id)
    children = await _children(client, operation.instance_id)
    return platform_state(solution_id, operation, children)


async def cancel(client: DurableClient, solution_id: str) -> Canceled:
    """Stop the running deployment or teardown; resources stay as they are."""
    operation = await last_platform_operation(client, solution_id)
    if operation is None:
        raise unknown_platform(solution_id)
    if not operation.running:
        raise ServiceError(
            "conflict", "NothingRunning", f"Nothing is running for platform {solution_id}."
        )
    instance_id = operation.instance_id
    await client.terminate(instance_id, "canceled by a user")
    # Terminating an orchestration leaves its sub-orchestrations running: stop them too.
    children = await _children(client, instance_id)
    for env, child in children.items():
        if child and child.running:
            await client.terminate(child_instance_id(instance_id, env), "parent canceled")
    log.info("operation %s of %s canceled", instance_id, solution_id)
    return Canceled(instance_id, operation.operation_id)


async def operation(client: DurableClient, solution_id: str, operation_id: str) -> OperationView:
    """One operation of a platform."""
    last = None
    if _OPERATION_ID.fullmatch(operation_id):
        last = await last_platform_operation(client, solution_id)
    if last is None or last.operation_id != operation_id:
        # Durable keeps the last run of an instance only: an earlier operation is gone.
        raise ServiceError(
            "not_found",
            "OperationNotFound",
            f"No operation {operation_id[:40]} of platform {solution_id[:40]} is known "
            "(a later operation of the platform replaces the record of an earlier one).",
        )
    children: dict[str, OperationStatus | None] = {}
    if last.running or last.runtime_status == "Terminated":
        children = await _children(client, last.instance_id)
    document = operation_document(operation_id, platform_state(solution_id, last, children))
    return OperationView(document)


async def list_platforms(
    client: DurableClient, arm: PlatformArm, settings: AppSettings
) -> list[ListedPlatform]:
    """The platforms this app manages, found by their tags in the managed subscriptions."""
    found = await asyncio.to_thread(_platform_groups, arm, settings.all_subscription_ids)
    operations = await asyncio.gather(
        *(read_operation(client, platform_instance_id(solution_id)) for solution_id, _, _ in found)
    )
    listed = [
        ListedPlatform(
            solution_id,
            subscription,
            group,
            operation_outcome(operation) if operation else None,
            last_operation(operation) if operation else None,
        )
        for (solution_id, subscription, group), operation in zip(found, operations, strict=True)
    ]
    return sorted(listed, key=lambda platform: platform.solution_id)


def _platform_groups(arm: PlatformArm, subscriptions: Sequence[str]) -> list[tuple[str, str, str]]:
    """(solution id, subscription, resource group) of every group the app's tags mark."""
    found = []
    for subscription, groups in zip(subscriptions, arm.resource_groups(subscriptions), strict=True):
        for group in groups:
            solution_id = managed_solution(group.get("tags"))
            if solution_id:
                found.append((solution_id, subscription, str(group["name"])))
    return found

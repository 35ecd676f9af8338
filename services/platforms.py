"""Platform use cases: deploy, upgrade, plan, tear down, cancel, the platform's state and
operations, and the list of platforms (`docs/api.md`).

Each platform has one orchestration instance id, shared by its deployments and teardowns, so
two operations on one platform never run at once; each operation gets an id of its own, kept
in the orchestration's input. The rules on what may be started (one operation at a time, fixed
versions, what Azure already holds) live here; the HTTP triggers parse the request and map the
results and `ServiceError`s to answers.

A PUT of a deployed platform's spec with a higher `platformVersion` and/or `lifetimeVersion`,
and otherwise the same spec, starts its upgrade (`upgrade_platform`, issue 17) instead of a
deployment; a lower version is refused (OutSystems does not downgrade: a rollback is a restore
from the restore points), and so is any other change made together with the upgrade. After an
upgrade that stopped (failed, or canceled), a PUT of the same spec resumes it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from appsettings import AppSettings
from orchestrators.deploy import child_instance_id, walk_instance_id
from orchestrators.scale_requests import scale_set_entity
from outsystems.errors import ApiError, FieldError, SpecError
from outsystems.messages import (
    DEPLOY_PLATFORM,
    TEARDOWN_PLATFORM,
    UPGRADE_APPROVED_EVENT,
    UPGRADE_PLATFORM,
    DeployRequest,
    EnvironmentOutputs,
    HoldScaleSet,
    SpecDocument,
    TeardownRequest,
    Tuning,
    UpgradeApproval,
    UpgradeProgress,
    UpgradeRequest,
)
from outsystems.names import ENVIRONMENTS, Environment, is_valid_solution_id
from outsystems.tags import managed_solution
from services.errors import ServiceError, arm_unavailable, unknown_platform
from services.platform_state import (
    OperationKind,
    OperationStatus,
    Outcome,
    PlatformRequest,
    ended_upgrade,
    last_operation,
    operation_document,
    operation_outcome,
    operation_status,
    platform_state,
    upgrade_outcome,
)
from services.ports import ArmUnavailableError, DurableClient, PlatformArm

if TYPE_CHECKING:
    from outsystems.plan import Plan
    from outsystems.spec import PlatformSpec
    from outsystems.upgrade import PlannedUpgradeStep

log = logging.getLogger(__name__)


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


VERSION_FIELDS: tuple[str, ...] = ("platformVersion", "lifetimeVersion")
#: What may differ between the deployed spec and the spec of its upgrade.
_UPGRADE_FIELDS = frozenset((*VERSION_FIELDS, "upgrade"))
#: The most differences an upgrade's refusal lists.
_MAX_DIFFERENCES = 10


def version_changes(previous: PlatformRequest | None, spec: Mapping[str, Any]) -> list[FieldError]:
    """A lower version than the deployed one, per field: OutSystems does not downgrade.

    `previous` is the request of the platform's last operation, `spec` the new spec's JSON.
    A higher version is an upgrade (`upgrade_of`); nothing deployed yet (or the last operation
    a teardown), any version goes.
    """
    from outsystems.spec.versions import compare_versions

    if not isinstance(previous, DeployRequest | UpgradeRequest):
        return []
    before = previous.spec.document
    return [
        FieldError(
            field,
            f"cannot lower {field} of a deployed platform from {before[field]} to "
            f"{spec[field]}: OutSystems does not downgrade; a rollback is a restore of each "
            "environment's database from its restore point (docs/upgrades.md)",
        )
        for field in VERSION_FIELDS
        if before.get(field)
        and spec.get(field)
        and compare_versions(str(before[field]), str(spec[field])) < 0
    ]


def _higher(before: Mapping[str, Any], spec: Mapping[str, Any]) -> list[str]:
    from outsystems.spec.versions import compare_versions

    return [
        field
        for field in VERSION_FIELDS
        if before.get(field)
        and spec.get(field)
        and compare_versions(str(before[field]), str(spec[field])) > 0
    ]


def _differences(before: Any, after: Any, path: str = "") -> list[str]:
    """The JSON paths where two documents differ (a list is compared whole)."""
    if isinstance(before, Mapping) and isinstance(after, Mapping):
        found: list[str] = []
        for key in sorted(set(before) | set(after)):
            found.extend(
                _differences(before.get(key), after.get(key), f"{path}.{key}" if path else key)
            )
        return found
    return [] if before == after else [path]


def _normalized(document: Mapping[str, Any]) -> Mapping[str, Any]:
    """A spec document as today's parser normalizes it (an older one may lack a default)."""
    from outsystems.spec import PlatformSpec

    try:
        return PlatformSpec.from_json_dict(document).to_json_dict()
    except SpecError:
        return document


def other_changes(before: Mapping[str, Any], spec: Mapping[str, Any]) -> list[FieldError]:
    """What differs besides the versions (and the `upgrade` block) between the deployed spec
    and the spec of an upgrade: refused, since an upgrade changes versions only."""
    paths = [
        path
        for path in _differences(_normalized(before), spec)
        if path.split(".", 1)[0] not in _UPGRADE_FIELDS
    ]
    return [
        FieldError(
            path,
            "cannot change together with an upgrade of the versions: upgrade with the deployed "
            "spec and only the versions raised, then PUT this change",
        )
        for path in paths[:_MAX_DIFFERENCES]
    ]


@dataclass(frozen=True)
class UpgradeStart:
    """What an upgrade starts from: the deployed spec, the outputs its environments offer,
    and the progress of the stopped attempt it resumes (None for a new upgrade)."""

    previous: SpecDocument
    outputs: Mapping[str, EnvironmentOutputs]
    resumed: UpgradeProgress | None = None


def _invalid(*errors: FieldError) -> ServiceError:
    return ServiceError.invalid(ApiError("The platform spec is invalid.", list(errors)))


def upgrade_of(current: OperationStatus | None, spec: Mapping[str, Any]) -> UpgradeStart | None:
    """Whether `spec` (the new spec's JSON) upgrades the platform whose last operation is
    `current` (not running): None for a deployment; `ServiceError` for what is refused."""
    request = current.request if current is not None else None
    if isinstance(request, TeardownRequest) and current is not None:
        _check_after_teardown(current, request, spec)
        return None
    if current is None or not isinstance(request, DeployRequest | UpgradeRequest):
        return None
    if isinstance(request, UpgradeRequest) and upgrade_outcome(current) != "Succeeded":
        return _resumed(current, request, spec)
    before = request.spec.document
    lower = version_changes(request, spec)
    if lower:
        raise _invalid(*lower)
    higher = _higher(before, spec)
    if not higher:
        return None
    outcome = operation_outcome(current)
    if isinstance(request, DeployRequest) and outcome != "Succeeded":
        raise _invalid(
            *(
                FieldError(
                    field,
                    f"cannot upgrade: the platform's last deployment did not succeed ({outcome}); "
                    f"PUT the spec at {field} {before[field]} to finish it first",
                )
                for field in higher
            )
        )
    others = other_changes(before, spec)
    if others:
        raise _invalid(*others)
    if isinstance(request, UpgradeRequest):
        outputs = request.outputs
    else:
        outputs = current.result.outputs if current.result else {}
    return UpgradeStart(request.spec, outputs)


def _check_after_teardown(
    current: OperationStatus, request: TeardownRequest, spec: Mapping[str, Any]
) -> None:
    """After a teardown of part of a platform, the environments left keep their versions: a
    redeployment does not upgrade them (only an upgrade does, once all four stand again)."""
    if torn_down(current, ENVIRONMENTS):
        return  # nothing is left: any version goes
    before = request.spec.document
    lower = version_changes(DeployRequest(request.operation_id, request.spec), spec)
    higher = [
        FieldError(
            field,
            f"cannot upgrade part of a platform: after the teardown of "
            f"{', '.join(request.environments)}, PUT the spec at {field} {before[field]} to "
            "deploy them again, then upgrade",
        )
        for field in _higher(before, spec)
    ]
    if lower or higher:
        raise _invalid(*lower, *higher)


def _resumed(
    current: OperationStatus, request: UpgradeRequest, spec: Mapping[str, Any]
) -> UpgradeStart:
    """After an upgrade that stopped, only its own spec (and upgrade block) resumes it."""
    target = request.spec.document
    stopped = ended_upgrade(current)
    state = stopped.state if stopped is not None else operation_outcome(current)
    problems = [
        FieldError(
            field,
            f"the upgrade to {field} {target[field]} stopped ({state}): PUT its spec again to "
            f"resume it, not {field} {spec.get(field)}; a rollback is a restore from the "
            "restore points (docs/upgrades.md)",
        )
        for field in VERSION_FIELDS
        if target.get(field) != spec.get(field)
    ]
    problems = problems or other_changes(target, spec)
    if problems:
        raise _invalid(*problems)
    return UpgradeStart(request.previous, request.outputs, stopped)


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
    #: The operation id of the stopped upgrade this one resumes.
    resumes: str | None = None


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
        f"{'An' if operation.kind == 'upgrade' else 'A'} {operation.kind} of platform "
        f"{solution_id} is running (instance "
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
    upgrade = upgrade_of(current, spec_json)
    await asyncio.to_thread(preflight, arm, settings, spec)
    operation_id = new_operation_id()
    started: Started
    if upgrade is not None:
        settings_of = spec.upgrade_settings
        upgrade_request = UpgradeRequest(
            operation_id,
            SpecDocument(spec_json),
            upgrade.previous,
            tuple(settings_of.order),
            settings_of.soak_seconds,
            deployment_tuning(settings),
            upgrade.resumed,
            upgrade.outputs,
        )
        name, document = UPGRADE_PLATFORM.name, upgrade_request.to_json()
        resumes = upgrade.resumed.operation_id or None if upgrade.resumed else None
        started = Started(solution_id, operation_id, "upgrade", resumes)
    else:
        request = DeployRequest(operation_id, SpecDocument(spec_json), deployment_tuning(settings))
        name, document = DEPLOY_PLATFORM.name, request.to_json()
        started = Started(solution_id, operation_id, "deploy")
    try:
        await client.start_new(name, instance_id, document)
    except Exception as error:
        # Lost the check-then-start race: the instance started in between. The client raises a
        # plain Exception for any refusal, so look again before answering.
        current = await read_operation(client, instance_id)
        if current and current.running:
            raise _conflict(solution_id, current) from error
        raise
    log.info("%s of %s started (operation %s)", started.kind, solution_id, operation_id)
    return started


def plan(arm: PlatformArm, settings: AppSettings, solution_id: str, body: bytes) -> Plan:
    """What a deployment of `body` would do, read from the live state, changing nothing.
    Blocking: ARM reads."""
    return _resource_plan(arm, settings, _checked_spec(arm, settings, solution_id, body, None))


def _resource_plan(arm: PlatformArm, settings: AppSettings, spec: PlatformSpec) -> Plan:
    from outsystems.deployment import graph_of
    from outsystems.plan import plan as plan_graph

    preflight(arm, settings, spec)
    _, graph = graph_of(spec.to_json_dict())
    live = arm.read_live(spec.subscription_id, graph.resources)
    return plan_graph(graph, {r.id: body for r, body in zip(graph.resources, live, strict=True)})


@dataclass(frozen=True)
class UpgradePlan:
    """What a PUT of an upgrade would do: its steps in order (`outsystems.upgrade`)."""

    previous: SpecDocument
    spec: SpecDocument
    order: tuple[str, ...]
    soak_minutes: int | None
    steps: tuple[PlannedUpgradeStep, ...]
    #: The stopped upgrade a PUT would resume (its operation id), and the environments that
    #: attempt upgraded (kept as they are: their steps are not shown).
    resumes: str | None = None
    kept: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        def versions(document: SpecDocument) -> dict[str, Any]:
            return {field: document.document.get(field) for field in VERSION_FIELDS}

        return {
            "operation": "upgrade",
            "from": versions(self.previous),
            "to": versions(self.spec),
            "order": ["life", *self.order],
            "soakMinutes": self.soak_minutes,
            "resumes": self.resumes,
            "kept": list(self.kept),
            "steps": [step.to_json() for step in self.steps],
        }


def upgrade_plan(spec: PlatformSpec, upgrade: UpgradeStart) -> UpgradePlan:
    """The steps of the upgrade `upgrade_of` found, without those of environments the stopped
    attempt it resumes already upgraded."""
    from outsystems.spec import PlatformSpec as Spec
    from outsystems.upgrade import plan_upgrade

    settings_of = spec.upgrade_settings
    previous = Spec.from_json_dict(upgrade.previous.document)
    resumed = upgrade.resumed
    kept = tuple(
        env.environment
        for env in (resumed.environments if resumed else ())
        if env.state in ("Succeeded", "Skipped")
    )
    steps = tuple(
        step
        for step in plan_upgrade(previous, spec, tuple(settings_of.order))
        if step.environment not in kept
    )
    return UpgradePlan(
        upgrade.previous,
        SpecDocument(spec.to_json_dict()),
        tuple(settings_of.order),
        settings_of.soak_minutes,
        steps,
        (resumed.operation_id or None) if resumed else None,
        kept,
    )


async def plan_of(
    client: DurableClient, arm: PlatformArm, settings: AppSettings, solution_id: str, body: bytes
) -> Plan | UpgradePlan:
    """What a PUT of `body` would do, changing nothing: the steps of an upgrade when it raises
    the deployed platform's versions, else what a deployment would do to each resource (read
    from the live state)."""
    instance_id = platform_instance_id(solution_id)
    current = await read_operation(client, instance_id) if _nameable(solution_id) else None
    previous = current.request if current else None
    spec = await asyncio.to_thread(_checked_spec, arm, settings, solution_id, body, previous)
    upgrade = upgrade_of(current, spec.to_json_dict())
    if upgrade is not None:
        return upgrade_plan(spec, upgrade)
    return await asyncio.to_thread(_resource_plan, arm, settings, spec)


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


@dataclass(frozen=True)
class Approved:
    """An approval sent to the upgrade that awaited it."""

    solution_id: str
    operation_id: str | None
    environment: str


def _nothing_awaits(solution_id: str, why: str) -> ServiceError:
    return ServiceError(
        "conflict",
        "NoUpgradeAwaitingApproval",
        f"No upgrade of platform {solution_id[:40]} awaits an approval: {why}.",
    )


async def approve_upgrade(
    client: DurableClient, solution_id: str, environment: str | None = None
) -> Approved:
    """Approve the next environment of the platform's upgrade, paused before it: raises the
    `UpgradeApproved` event on the upgrade's instance. `environment`, when given, must be the
    one the upgrade awaits (an approval of the wrong environment approves nothing)."""
    operation = await last_platform_operation(client, solution_id)
    if operation is None:
        raise unknown_platform(solution_id)
    progress = operation.upgrade
    if operation.kind != "upgrade":
        raise _nothing_awaits(solution_id, f"its last operation is a {operation.kind}")
    if not operation.running:
        raise _nothing_awaits(
            solution_id, f"its upgrade ended ({operation_status(operation.runtime_status)})"
        )
    if progress is None or progress.state != "AwaitingApproval" or not progress.awaiting:
        state = progress.state if progress is not None else "Pending"
        raise _nothing_awaits(solution_id, f"its upgrade is {state}")
    awaiting = progress.awaiting
    if environment is not None and environment != awaiting:
        raise ServiceError(
            "invalid",
            "WrongEnvironment",
            f"The upgrade of platform {solution_id} awaits the approval of {awaiting}.",
            [FieldError("environment", f"must be {awaiting}, the environment the upgrade awaits")],
        )
    approval = UpgradeApproval(awaiting)
    try:
        await client.raise_event(operation.instance_id, UPGRADE_APPROVED_EVENT, approval.to_json())
    except Exception as error:
        # The upgrade ended (or was canceled) between the read and the event: say so.
        again = await read_operation(client, operation.instance_id, show_input=False)
        if again is None or not again.running:
            raise _nothing_awaits(solution_id, "its upgrade ended") from error
        raise
    log.info("upgrade of %s: %s approved", solution_id, awaiting)
    return Approved(solution_id, operation.operation_id, awaiting)


def _child_ids(instance_id: str) -> list[str]:
    """The sub-orchestrations a deployment may run: one per environment (walk versions 1-4),
    or one walk of them all (5)."""
    return [
        *(child_instance_id(instance_id, env) for env in ENVIRONMENTS),
        walk_instance_id(instance_id),
    ]


async def _children(client: DurableClient, instance_id: str) -> dict[str, OperationStatus | None]:
    """Each environment's live progress, as its sub-orchestration shows it: its own (walk
    versions 1-4) or its entry in the one walk of all environments (5)."""
    statuses = await asyncio.gather(
        *(
            read_operation(client, child_id, show_input=False)
            for child_id in _child_ids(instance_id)
        )
    )
    children: dict[str, OperationStatus | None] = dict(zip(ENVIRONMENTS, statuses, strict=False))
    walk = statuses[-1]
    if walk is not None:
        shown = walk.result or walk.progress
        for env, progress in (shown.environments if shown else {}).items():
            if env in children:
                children[env] = replace(walk, environment=progress)
    return children


async def state(client: DurableClient, solution_id: str) -> dict[str, Any]:
    """The platform's state document: last operation, per-environment progress, outputs."""
    operation = await last_platform_operation(client, solution_id)
    if operation is None:
        raise unknown_platform(solution_id)
    children = await _children(client, operation.instance_id)
    return platform_state(solution_id, operation, children)


#: The steps of an upgrade that run `deploy_environment` as a sub-orchestration
#: (`outsystems.upgrade`: SETUP, CONTROLLER, SCALE_SET_MODEL).
_UPGRADE_CHILD_STEPS = ("setup", "controller", "scaleSetModel")


def upgrade_child_instance_id(
    instance_id: str, operation_id: str, environment: str, step: str
) -> str:
    """The instance id `upgrade_platform` gives a step's `deploy_environment` (one per attempt;
    `orchestrators.upgrade`)."""
    return f"{instance_id}:upgrade:{operation_id}:{environment}:{step}"


def upgrade_children(operation: OperationStatus) -> list[str]:
    """The sub-orchestrations an upgrade may be running: those of its running environments."""
    progress = operation.upgrade
    if operation.kind != "upgrade" or progress is None or not operation.operation_id:
        return []
    return [
        upgrade_child_instance_id(
            operation.instance_id, operation.operation_id, env.environment, step
        )
        for env in progress.environments
        if env.state == "Running"
        for step in _UPGRADE_CHILD_STEPS
    ]


async def _release_upgrade_hold(client: DurableClient, operation: OperationStatus) -> None:
    """A terminated upgrade cannot release the scaler's hold on the farm's scale set itself:
    release it here, at once (the scaling timer would, at its next run). The entity ignores a
    release from another holder than the upgrade, so this is safe when none was taken."""
    from outsystems.upgrade import UpgradeTargets

    request = operation.request
    if not isinstance(request, UpgradeRequest):
        return
    spec, _ = request.spec.parsed()
    if not spec.is_farm:
        return
    scale_set = UpgradeTargets.of(spec, "prod").scale_set
    if scale_set is None:
        return
    release = HoldScaleSet(request.operation_id, "upgrade canceled")
    await client.signal_entity(scale_set_entity(scale_set), "release", release.to_json())


async def cancel(client: DurableClient, solution_id: str) -> Canceled:
    """Stop the running deployment, upgrade or teardown; resources stay as they are."""
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
    for child_id in [*_child_ids(instance_id), *upgrade_children(operation)]:
        child = await read_operation(client, child_id, show_input=False)
        if child and child.running:
            await client.terminate(child_id, "parent canceled")
    await _release_upgrade_hold(client, operation)
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

"""The upgrade of a platform's OutSystems versions (issue 17), as pure decisions.

What `upgrade_platform` (`orchestrators/upgrade.py`) does, and what `POST .../plan` shows of it,
step by step: which environments, in which order, which steps on which resource. No I/O: the
orchestration reads live state through activities and hands it here.

It follows OutSystems' own pages (OutSystems/docs-product; `docs/upgrades.md` says which fact
comes from which page):

- `src/setup-infra-platform/upgrade/upgrade-platform.md`: LifeTime first, then the environments
  in their staging order, with time between them to test; each environment's databases backed
  up before its upgrade (a rollback is a restore, never attempted by the app).
- `src/setup-infra-platform/upgrade/balanced-upgrade-highly-loaded-farms.md`: the production
  farm in two sets of front-ends, "updating" (with the controller) and "loaded", each able to
  carry the load alone; the load balancer sends traffic to one set at a time.
- `src/setup-infra-platform/setup/azure/additional-configurations.md`, "Update Azure Scale Sets
  to a Newer Platform Version": the controller before the scale set's version.
- `src/deploying-apps/balanced-app-deploy.md`: deployments held on the loaded set while the
  controller is upgraded.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final, NamedTuple, cast

from outsystems.messages import (
    ActionOutcome,
    EnvironmentUpgrade,
    Operation,
    ScaleSetInstance,
    ServerUpgrade,
    UpgradeProgress,
    UpgradeRequest,
)
from outsystems.names import SETUP_EXTENSION, Environment, PlatformNames
from outsystems.resource_types import APP_GATEWAY, SCALE_SET, SQL_DATABASE, VM, VM_EXTENSION
from outsystems.spec.versions import compare_versions

if TYPE_CHECKING:
    from outsystems.spec import PlatformSpec

#: LifeTime is always upgraded first (upgrade-platform.md: "When upgrading your infrastructure,
#: make sure that LifeTime is the most up-to-date environment").
LIFETIME: Final = "life"
#: The order of the other environments when the spec gives none (Development, Test, Production).
DEFAULT_ORDER: Final[tuple[str, ...]] = ("dev", "test", "prod")

# --- Step names (the progress's `step`, the events' `step`, the plan's `step`) ------------------

#: The wait for the approval (or the soak) before an environment.
APPROVAL: Final = "approval"
#: A copy of the environment's platform database, before anything changes.
RESTORE_POINT: Final = "restorePoint"
#: A standalone (or LifeTime) server's setup extension run again with the new versions.
SETUP: Final = "setup"
# The production farm, balanced (balanced-upgrade-highly-loaded-farms.md, steps 1 to 9).
HOLD: Final = "holdScaler"
SPLIT: Final = "split"
GATEWAY_TO_LOADED: Final = "gatewayToLoaded"
DRAIN_UPDATING: Final = "drainUpdating"
HOLD_LOADED: Final = "holdDeploymentsLoaded"
CONTROLLER: Final = "controller"
SCALE_SET_MODEL: Final = "scaleSetModel"
UPGRADE_UPDATING: Final = "upgradeUpdating"
SERVE_UPDATING: Final = "serveUpdating"
GATEWAY_TO_UPDATING: Final = "gatewayToUpdating"
CHECK_UPDATING: Final = "backendHealthUpdating"
DRAIN_LOADED: Final = "drainLoaded"
UPGRADE_LOADED: Final = "upgradeLoaded"
SERVE_LOADED: Final = "serveLoaded"
GATEWAY_TO_ALL: Final = "gatewayToAll"
CHECK_ALL: Final = "backendHealthAll"
REMOVE_TEMPORARY: Final = "removeTemporary"
RELEASE: Final = "releaseScaler"

STANDALONE_STEPS: Final[tuple[str, ...]] = (RESTORE_POINT, SETUP)
FARM_STEPS: Final[tuple[str, ...]] = (
    RESTORE_POINT,
    HOLD,
    SPLIT,
    GATEWAY_TO_LOADED,
    DRAIN_UPDATING,
    HOLD_LOADED,
    CONTROLLER,
    SCALE_SET_MODEL,
    UPGRADE_UPDATING,
    SERVE_UPDATING,
    GATEWAY_TO_UPDATING,
    CHECK_UPDATING,
    DRAIN_LOADED,
    UPGRADE_LOADED,
    SERVE_LOADED,
    GATEWAY_TO_ALL,
    CHECK_ALL,
    REMOVE_TEMPORARY,
    RELEASE,
)


class PlannedUpgradeStep(NamedTuple):
    """One step of an upgrade as the plan shows it: in which environment, what, on which
    resource (an ARM id; empty for an approval), and in words."""

    environment: str
    step: str
    target: str
    detail: str

    def to_json(self) -> dict[str, Any]:
        return {
            "environment": self.environment,
            "step": self.step,
            "target": self.target,
            "detail": self.detail,
        }


# --- What an environment's upgrade works on ----------------------------------------------------


@dataclass(frozen=True)
class UpgradeTargets:
    """The ARM ids an environment's upgrade works on, named as the topology names them."""

    environment: Environment
    vm: str
    setup_extension: str
    platform_database: str
    #: The production farm's scale set and gateway (None for a standalone server).
    scale_set: str | None = None
    gateway: str | None = None

    @staticmethod
    def of(spec: PlatformSpec, environment: str) -> UpgradeTargets:
        env = _environment(environment)
        names = PlatformNames.of(
            spec.solution_id, spec.subscription_id, spec.resource_group, spec.naming
        )
        group = f"/subscriptions/{spec.subscription_id}/resourceGroups/{spec.resource_group}"

        def arm_id(resource_type: str, *parts: str) -> str:
            namespace, *types = resource_type.split("/")
            path = "/".join(f"{t}/{n}" for t, n in zip(types, parts, strict=True))
            return f"{group}/providers/{namespace}/{path}"

        farm = env == "prod" and spec.is_farm
        return UpgradeTargets(
            environment=env,
            vm=arm_id(VM, names.vm(env)),
            setup_extension=arm_id(VM_EXTENSION, names.vm(env), SETUP_EXTENSION),
            platform_database=arm_id(
                SQL_DATABASE, names.sql_server(env), names.database(env, "platform")
            ),
            scale_set=arm_id(SCALE_SET, names.scale_set) if farm else None,
            gateway=arm_id(APP_GATEWAY, names.app_gateway(env)) if farm else None,
        )


def _environment(name: str) -> Environment:
    if name not in ("dev", "test", "prod", "life"):
        raise ValueError(f"unknown environment {name!r}")
    return cast(Environment, name)


def restore_point_name(database_name: str, target_platform_version: str) -> str:
    """The name of the copy made before an environment's upgrade:
    `<database>-pre-<target version, dots as dashes>` (e.g. `acme-dev-db-pre-11-33-0`)."""
    return f"{database_name}-pre-{target_platform_version.replace('.', '-')}"


def database_name(database_id: str) -> str:
    """The last segment of a database's ARM id."""
    return database_id.rstrip("/").rsplit("/", 1)[-1]


# --- Which environments, in which order --------------------------------------------------------


def upgrade_order(order: Iterable[str]) -> tuple[str, ...]:
    """LifeTime first, then `order` (each environment once; `life` in `order` is ignored)."""
    seen: list[str] = [LIFETIME]
    for env in order:
        if env not in seen:
            seen.append(env)
    return tuple(seen)


def environment_changes(previous: PlatformSpec, spec: PlatformSpec, environment: str) -> bool:
    """Whether the environment's servers get new versions.

    LifeTime's server runs LifeTime with its bundled Platform Server, so it changes with either
    version; the other environments run Platform Server only, so they change with it only.
    """
    platform = compare_versions(previous.platform_version, spec.platform_version) > 0
    if environment == LIFETIME:
        return platform or compare_versions(previous.lifetime_version, spec.lifetime_version) > 0
    return platform


def environments_to_upgrade(
    previous: PlatformSpec, spec: PlatformSpec, order: Iterable[str]
) -> tuple[str, ...]:
    """The environments whose servers change, LifeTime first, then in `order`."""
    return tuple(e for e in upgrade_order(order) if environment_changes(previous, spec, e))


def environment_steps(spec: PlatformSpec, environment: str) -> tuple[str, ...]:
    """The steps of one environment's upgrade (a farm's production, or a standalone server)."""
    return FARM_STEPS if environment == "prod" and spec.is_farm else STANDALONE_STEPS


# --- The plan ----------------------------------------------------------------------------------


def _role(spec: PlatformSpec, environment: str) -> str:
    if environment == LIFETIME:
        return "lifetime"
    if environment == "prod" and spec.is_farm:
        return "controller"
    return "standalone"


def _versions_text(previous: PlatformSpec, spec: PlatformSpec, environment: str) -> str:
    platform = f"Platform Server {previous.platform_version} to {spec.platform_version}"
    if environment != LIFETIME:
        return platform
    return f"LifeTime {previous.lifetime_version} to {spec.lifetime_version} ({platform})"


def plan_upgrade(
    previous: PlatformSpec, spec: PlatformSpec, order: Sequence[str] = DEFAULT_ORDER
) -> tuple[PlannedUpgradeStep, ...]:
    """What upgrading the deployed `previous` to `spec` does, step by step, in order.

    LifeTime first, then the environments of `order` whose servers change; an approval (or the
    soak) between two environments. Empty when no version rises.
    """
    steps: list[PlannedUpgradeStep] = []
    environments = environments_to_upgrade(previous, spec, order)
    for index, env in enumerate(environments):
        if index:
            steps.append(
                PlannedUpgradeStep(
                    env,
                    APPROVAL,
                    "",
                    f"pause until the upgrade of {env} is approved (or the soak time ends); "
                    "test the environments upgraded so far first",
                )
            )
        steps.extend(_environment_plan(previous, spec, env))
    return tuple(steps)


def _environment_plan(
    previous: PlatformSpec, spec: PlatformSpec, env: str
) -> list[PlannedUpgradeStep]:
    targets = UpgradeTargets.of(spec, env)
    versions = _versions_text(previous, spec, env)
    copy = restore_point_name(database_name(targets.platform_database), spec.platform_version)
    steps = [
        PlannedUpgradeStep(
            env,
            RESTORE_POINT,
            targets.platform_database,
            f"restore point: copy the platform database to {copy} (a rollback is a restore "
            "from it, never automatic)",
        )
    ]
    if targets.scale_set is None or targets.gateway is None:
        steps.append(
            PlannedUpgradeStep(
                env,
                SETUP,
                targets.setup_extension,
                f"{versions} on the {_role(spec, env)} server: its setup extension runs again "
                "with the new versions (the server is down meanwhile) and its health gate "
                "must pass",
            )
        )
        return steps
    frontends = spec.frontends
    minimum = frontends.min_capacity if frontends is not None else 1
    floors = sorted({w.min_capacity for w in frontends.schedules}) if frontends else []
    during = (
        f" ({floors[-1]} during its schedule windows)" if floors and floors[-1] > minimum else ""
    )
    vmss, gateway = targets.scale_set, targets.gateway
    farm = [
        (HOLD, vmss, "hold the scaler's capacity changes on the scale set (requests stay pending)"),
        (
            SPLIT,
            vmss,
            f"split the front-ends in two sets, updating and loaded, of at least {minimum} each "
            f"(the scale set's minimum{during}); when there are too few, add temporary "
            f"instances at {previous.platform_version} first",
        ),
        (GATEWAY_TO_LOADED, gateway, "the gateway sends traffic to the loaded set only"),
        (DRAIN_UPDATING, vmss, "Run Command Drain on each updating front-end"),
        (HOLD_LOADED, vmss, "Run Command HoldDeployments on each loaded front-end"),
        (
            CONTROLLER,
            targets.setup_extension,
            f"{versions} on the deployment controller: its setup extension runs again "
            "with the new version (-UpgradeEnvironment) and its health gate must pass",
        ),
        (
            SCALE_SET_MODEL,
            vmss,
            f"the scale set's model gets Platform Server {spec.platform_version} "
            "(capacity kept as it is)",
        ),
        (
            UPGRADE_UPDATING,
            vmss,
            "manual upgrade of the updating front-ends: each takes the new model, upgrades and "
            "passes its health gate",
        ),
        (SERVE_UPDATING, vmss, "Run Command Serve on each updating front-end"),
        (GATEWAY_TO_UPDATING, gateway, "the gateway sends traffic to the updating set only"),
        (
            CHECK_UPDATING,
            gateway,
            "the gateway's backend health: every updating front-end Up (else traffic back "
            "to the loaded set and stop)",
        ),
        (DRAIN_LOADED, vmss, "Run Command Drain on each loaded front-end"),
        (
            UPGRADE_LOADED,
            vmss,
            "manual upgrade of the loaded front-ends; each upgrades and passes its health gate",
        ),
        (SERVE_LOADED, vmss, "Run Command Serve on each loaded front-end"),
        (GATEWAY_TO_ALL, gateway, "the gateway sends traffic to the scale set's own pool again"),
        (CHECK_ALL, gateway, "the gateway's backend health: every front-end Up"),
        (REMOVE_TEMPORARY, vmss, "delete the temporary instances added for the split, if any"),
        (RELEASE, vmss, "release the scaler's hold; pending capacity requests apply"),
    ]
    steps.extend(PlannedUpgradeStep(env, step, target, detail) for step, target, detail in farm)
    return steps


# --- The production farm's two sets (balanced-upgrade-highly-loaded-farms.md) -------------------


class Split(NamedTuple):
    """The front-ends in two sets: `updating` (upgraded first, with the controller) and
    `loaded` (serving meanwhile), and how many temporary instances to add first so that each
    set holds at least the scale set's minimum."""

    updating: tuple[str, ...]
    loaded: tuple[str, ...]
    add: int = 0


def instance_order(instance_id: str) -> tuple[int, str]:
    """Scale set instance ids are numbers in Uniform mode: order them as numbers."""
    return (int(instance_id), "") if instance_id.isdigit() else (1 << 62, instance_id)


def split_sets(
    instance_ids: Iterable[str],
    minimum: int,
    *,
    temporary: Iterable[str] = (),
    known: Mapping[str, str] | None = None,
) -> Split:
    """Split the instances in two sets of at least `minimum` each (balanced-upgrade: "each set
    must be able to handle the full load"; the scale set's minimum is that load's floor).

    The instances the upgrade added (`temporary`) come last, so they fill the loaded set first
    (they carry the old model: docs/upgrades.md, "Capacity"). `known`: the sets of a resumed
    attempt (instance id -> group), kept for the instances that still exist, so that a resumed
    upgrade continues with the same sets. When there are fewer than twice the minimum, `add`
    says how many to add (then split again with them).
    """
    minimum = max(minimum, 1)
    temporaries = set(temporary)
    ids = sorted(set(instance_ids), key=lambda i: (i in temporaries, instance_order(i)))
    if known:
        updating = tuple(i for i in ids if known.get(i) == "updating")
        loaded = tuple(i for i in ids if known.get(i) == "loaded")
        others = [i for i in ids if i not in known]
        if others:
            loaded = (*loaded, *others)
        if len(updating) >= minimum and len(loaded) >= minimum:
            return Split(updating, loaded)
    if len(ids) < 2 * minimum:
        half = max(minimum, len(ids) // 2)
        return Split(tuple(ids[:half]), tuple(ids[half:]), 2 * minimum - len(ids))
    half = len(ids) // 2
    return Split(tuple(ids[:half]), tuple(ids[half:]))


# --- What the setup script says (docs/upgrades.md, "What the script reports") --------------------

_SETUP_SUCCEEDED = re.compile(
    r"OutSystems setup succeeded: (?:upgraded (?:Platform Server|LifeTime) \S+ to"
    r"|installed (?:Platform Server|LifeTime)|already at (?:Platform Server|LifeTime)) "
    r"(?P<version>[0-9]+(?:\.[0-9]+)+) \(role (?P<role>[a-z]+)\)"
)
#: The last line of a front-end mode's run (`OutSystems front-end {state}`).
FRONTEND_LINES: Final[Mapping[str, str]] = {
    "Drain": "OutSystems front-end drained",
    "HoldDeployments": "OutSystems front-end holding deployments",
    "Serve": "OutSystems front-end serving",
}


def last_line(message: str | None) -> str:
    """The last non-empty line of a script's output (Run Command and the extension's instance
    view keep the last 4,096 bytes: the script's verdict is its last line)."""
    lines = [line.strip() for line in (message or "").splitlines() if line.strip()]
    return lines[-1] if lines else ""


def setup_version(message: str | None) -> str | None:
    """The version a successful setup run reports (`upgraded ... to <new>`, `installed <new>`,
    `already at <new>`), None for any other line."""
    match = _SETUP_SUCCEEDED.fullmatch(last_line(message))
    return match.group("version") if match else None


def is_at(version: str | None, target: str) -> bool:
    """Whether a server's reported version meets the target (a three-part target is met by any
    build of it, as the script decides: `compare_versions`)."""
    return version is not None and compare_versions(target, version) >= 0


class InstanceVerdict(NamedTuple):
    """Whether a scale-set instance runs the target version with the scale set's latest model."""

    upgraded: bool
    version: str | None
    problem: str


def instance_verdict(instance: ScaleSetInstance, target: str) -> InstanceVerdict:
    """An instance is upgraded when it has the latest model, its setup extension succeeded and
    the script's last line reports the target version (`docs/upgrades.md`)."""
    version = setup_version(instance.setup_message)
    if not instance.latest_model_applied:
        return InstanceVerdict(False, version, "does not have the scale set's latest model")
    if instance.setup_status != "Succeeded":
        said = last_line(instance.setup_message) or "no message"
        return InstanceVerdict(
            False, version, f"setup {instance.setup_status or 'did not report'}: {said}"
        )
    if not is_at(version, target):
        said = last_line(instance.setup_message) or "no message"
        return InstanceVerdict(False, version, f"setup did not report {target}: {said}")
    return InstanceVerdict(True, version, "")


#: ARM's code when Run Command is asked for a script while another runs on the VM: 409
#: `Conflict`, "Run command extension execution is in progress. Please wait for completion
#: before invoking a run command." (ARM's answer as Azure CLI users quote it:
#: Azure/azure-cli#32305, 2025-10-22; MicrosoftDocs/azure-docs#43356, 2019-11-22; the REST
#: spec does not list it). Run Command lets a script run 90 minutes (run-command.md).
RUN_COMMAND_BUSY_CODE: Final = "Conflict"


def run_command_busy(operation: Operation) -> bool:
    """Whether a Run Command was refused because another script still runs on the instance."""
    error = operation.error
    return (
        operation.status == "Failed"
        and error is not None
        and error.code.lower() == RUN_COMMAND_BUSY_CODE.lower()
    )


def run_command_problem(outcome: ActionOutcome, mode: str) -> str | None:
    """Why a front-end mode's Run Command did not do its job (None when it did): the script's
    last line must be the mode's own (`OutSystems front-end drained`, ...). A front-end with
    an older script prints no such line (docs/upgrades.md)."""
    expected = FRONTEND_LINES[mode]
    said = last_line(outcome.message)
    if outcome.succeeded and said == expected:
        return None
    return f"{mode} did not end with {expected!r}: {said or 'no output'}"


#: A server the gateway sends traffic to: ARM's `ApplicationGatewayBackendHealthServer.health`
#: is one of `Unknown`, `Up`, `Down`, `Partial`, `Draining` (Azure/azure-rest-api-specs,
#: specification/network/resource-manager/Microsoft.Network/stable/2024-05-01/
#: applicationGateway.json); only `Up` serves.
HEALTHY: Final = "Up"


def unhealthy(health: Mapping[str, str], addresses: Iterable[str]) -> dict[str, str]:
    """The addresses whose backend health is not `Up` (absent: `Unknown`)."""
    return {a: health.get(a, "Unknown") for a in addresses if health.get(a) != HEALTHY}


# --- The progress (the upgrade's custom status and output) --------------------------------------


def start_progress(
    request: UpgradeRequest, previous: PlatformSpec, spec: PlatformSpec
) -> UpgradeProgress:
    """The progress an upgrade starts from: every environment of the order, LifeTime first,
    `Skipped` when its servers do not change, `Pending` otherwise; a resumed attempt's
    environments that ended `Succeeded` are kept as they were, and the others keep their
    restore point and servers (the same restore point, the same sets of front-ends)."""
    resumed = request.resumed
    environments: list[EnvironmentUpgrade] = []
    for env in upgrade_order(request.order):
        if not environment_changes(previous, spec, env):
            environments.append(EnvironmentUpgrade(env, "Skipped"))
            continue
        total = len(environment_steps(spec, env))
        before = resumed.environment(env) if resumed is not None else None
        if before is not None and before.state == "Succeeded":
            environments.append(before)
        elif before is not None:
            environments.append(
                EnvironmentUpgrade(
                    env,
                    "Pending",
                    steps_total=total,
                    restore_point=before.restore_point,
                    servers=tuple(s._replace(state="Pending", error=None) for s in before.servers),
                )
            )
        else:
            environments.append(EnvironmentUpgrade(env, "Pending", steps_total=total))
    return UpgradeProgress(
        request.operation_id, request.source, request.target, "Running", tuple(environments)
    )


def needs_approval(
    progress: UpgradeProgress, environment: str, resumed: UpgradeProgress | None
) -> bool:
    """Whether the upgrade pauses before `environment`: after an environment that was upgraded
    (now or by the resumed attempt), unless the resumed attempt had already started it (it was
    approved then)."""
    names = [e.environment for e in progress.environments if e.state != "Skipped"]
    if environment not in names or names.index(environment) == 0:
        return False
    before = resumed.environment(environment) if resumed is not None else None
    return before is None or before.state in ("Pending", "AwaitingApproval", "Skipped")


def previous_environment(progress: UpgradeProgress, environment: str) -> EnvironmentUpgrade | None:
    """The environment upgraded just before `environment` (the one a soak runs after)."""
    upgraded = [e for e in progress.environments if e.state != "Skipped"]
    names = [e.environment for e in upgraded]
    index = names.index(environment) if environment in names else 0
    return upgraded[index - 1] if index > 0 else None


def with_environment(progress: UpgradeProgress, update: EnvironmentUpgrade) -> UpgradeProgress:
    """The progress with one environment's entry replaced."""
    return progress._replace(
        environments=tuple(
            update if e.environment == update.environment else e for e in progress.environments
        )
    )


def with_server(environment: EnvironmentUpgrade, server: ServerUpgrade) -> EnvironmentUpgrade:
    """The environment with one server's entry replaced (by instance id, else by name) or
    added."""

    def same(other: ServerUpgrade) -> bool:
        if server.instance_id is not None or other.instance_id is not None:
            return other.instance_id == server.instance_id
        return other.name == server.name

    servers = list(environment.servers)
    index = next((n for n, other in enumerate(servers) if same(other)), None)
    if index is None:
        servers.append(server)
    else:
        servers[index] = server
    return environment._replace(servers=tuple(servers))


def farm_minimum(spec: PlatformSpec, now: datetime) -> int:
    """The fewest front-ends each set must hold: the scale set's minimum in force at `now`
    (its `minCapacity`, or a schedule window's higher floor), as the scaler would keep it."""
    from outsystems.scaling import schedule_floor

    frontends = spec.frontends
    if frontends is None:
        return 1
    policy = frontends.policy()
    return max(policy.min_capacity, schedule_floor(policy, now) or 0, 1)

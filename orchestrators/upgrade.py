"""The upgrade orchestration (issue 17): a platform's OutSystems versions, one environment at a
time.

`upgrade_platform` runs on the platform's instance id, like its deployments. LifeTime first,
then the spec's order, pausing after each environment until the next one is approved (the
`UpgradeApproved` event) or its soak time ends. It follows OutSystems' pages, as
`outsystems/upgrade.py` and `docs/upgrades.md` name them (OutSystems/docs-product):

- `src/setup-infra-platform/upgrade/upgrade-platform.md`: LifeTime first, the staging order,
  a backup before each environment (here a copy of its platform database: the restore point;
  a rollback is a restore from it, never attempted by the app).
- standalone servers (and LifeTime): the setup extension run again with the new versions (the
  script upgrades in place and passes its health gate: `docs/upgrades.md`), through
  `deploy_environment`, whose walk reruns an extension that asked for a reboot.
- `src/setup-infra-platform/upgrade/balanced-upgrade-highly-loaded-farms.md` for the production
  farm: two sets of front-ends, the gateway sending traffic to one set at a time (never to both
  versions, never to fewer than the scale set's minimum), the controller upgraded with the
  updating set, deployments held on the loaded set (`src/deploying-apps/balanced-app-deploy.md`),
  and `src/setup-infra-platform/setup/azure/additional-configurations.md` ("Update Azure Scale
  Sets to a Newer Platform Version": the controller before the scale set's version). Scale-set
  instances take the new model through the manual-upgrade action (Azure's Manual upgrade
  policy), and their progress is read from `latestModelApplied`, their setup extension's status
  and the gateway's backend health.

A failed step stops the upgrade (nothing rolled back); each step is idempotent, so a second PUT
resumes it (`UpgradeRequest.resumed`). Deterministic: time comes from the context.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Final, TypeVar

import azure.durable_functions as df

from orchestrators.calls import Calls, Steps, first_line, orchestration
from orchestrators.scale_requests import scale_set_entity
from outsystems.events import EventType
from outsystems.messages import (
    BEGIN_BACKEND_HEALTH,
    BEGIN_DATABASE_COPY,
    BEGIN_DELETE_INSTANCES,
    BEGIN_MANUAL_UPGRADE,
    BEGIN_RUN_COMMAND,
    BEGIN_SWITCH_GATEWAY,
    DEPLOY_ENVIRONMENT,
    READ_ACTION_RESULT,
    READ_SCALE_SET_INSTANCES,
    SET_SCALE_SET_CAPACITY,
    UPGRADE_APPROVED_EVENT,
    UPGRADE_PLATFORM,
    ArmError,
    CapacityRequest,
    Contract,
    DatabaseCopyRequest,
    EnvironmentRequest,
    EnvironmentUpgrade,
    ErrorInfo,
    FrontEndMode,
    GatewayRef,
    GatewaySwitch,
    HoldScaleSet,
    InstancesRequest,
    Operation,
    RestorePoint,
    RunCommandRequest,
    ScaleSetInstance,
    ScaleSetRef,
    ServerUpgrade,
    UpgradeApproval,
    UpgradeProgress,
    UpgradeRequest,
    UpgradeState,
)

# Function-local imports: see `docs/architecture.md`, "Cold start".

if TYPE_CHECKING:
    from outsystems.spec import PlatformSpec
    from outsystems.upgrade import UpgradeTargets

bp = df.Blueprint()
log = logging.getLogger(__name__)

Request = TypeVar("Request")
Answer = TypeVar("Answer")

# Wait limits of the upgrade's operations (times `Tuning.timeout_scale`).
#: A copy of an OutSystems platform database.
COPY_LIMIT: Final = timedelta(hours=6)
#: Run Command runs a script for at most 90 minutes (MicrosoftDocs/azure-docs,
#: articles/virtual-machines/windows/run-command.md, "Restrictions").
RUN_COMMAND_LIMIT: Final = timedelta(minutes=90)
#: A manual upgrade reruns the setup extension (itself limited to 90 minutes per run) on each
#: instance, with reboots.
MANUAL_UPGRADE_LIMIT: Final = timedelta(hours=3)
#: How many times a manual upgrade is run again on instances whose setup asked for a reboot.
REBOOT_RERUNS: Final = 3
#: Gateway updates, capacity changes, instance deletions, backend health.
ARM_LIMIT: Final = timedelta(minutes=60)
#: How long a front-end may take to turn Up behind the gateway after a switch: the probe
#: runs every 30 s and admits a server after one success, drops it after 3 failures
#: (`outsystems/topology.py`'s probe); four probe rounds.
ADMISSION_LIMIT: Final = timedelta(minutes=2)


class StepError(Exception):
    """A step of an environment's upgrade failed: the upgrade stops there."""

    def __init__(self, error: ErrorInfo) -> None:
        super().__init__(error.message)
        self.error = error


def _instance_id(parent: str, operation_id: str, environment: str, step: str) -> str:
    """The deterministic instance id of a step's `deploy_environment` (one per attempt)."""
    return f"{parent}:upgrade:{operation_id}:{environment}:{step}"


def _event_data(result: Any) -> Any:
    """An external event's data as the SDK hands it (JSON text or already decoded)."""
    if isinstance(result, str):
        try:
            return json.loads(result)
        except ValueError:
            return {"environment": result}
    return result


class _Upgrade:
    """One run of `upgrade_platform`: its calls, its progress, its steps."""

    def __init__(
        self,
        context: df.DurableOrchestrationContext,
        request: UpgradeRequest,
        previous: PlatformSpec,
        spec: PlatformSpec,
    ) -> None:
        from outsystems.upgrade import start_progress

        self.context = context
        self.request = request
        self.previous = previous
        self.spec = spec
        self.calls = Calls(context, request.tuning)
        self.progress = start_progress(request, previous, spec)
        self.solution = spec.solution_id
        self.subscription = spec.subscription_id
        self.target = spec.platform_version
        #: Step events not yet published (`step_done`).
        self.queued: list[Any] = []

    # --- progress and events ------------------------------------------------------------

    def report(self) -> None:
        self.context.set_custom_status(self.progress.to_json())

    def environment(self, name: str) -> EnvironmentUpgrade:
        found = self.progress.environment(name)
        assert found is not None
        return found

    def update(self, environment: EnvironmentUpgrade) -> None:
        from outsystems.upgrade import with_environment

        self.progress = with_environment(self.progress, environment)
        self.report()

    def server(self, environment: str, server: ServerUpgrade) -> None:
        from outsystems.upgrade import with_server

        self.update(with_server(self.environment(environment), server))

    def begin_step(self, environment: str, step: str) -> None:
        self.update(self.environment(environment)._replace(state="Running", step=step))

    def step_done(self, environment: str, step: str, server: str | None = None) -> None:
        """Count a step done; its `step` event goes out with the upgrade's next call (one
        episode less per step)."""
        current = self.environment(environment)
        self.update(current._replace(steps_done=min(current.steps_done + 1, current.steps_total)))
        self.queued.append(
            self.event(
                EventType.UPGRADE_STEP,
                environment,
                {"step": step, "server": server, "error": None},
            )
        )

    def together(self, task: Any) -> Steps[Any]:
        """Yield a task with the events waiting to go out; the task's own result."""
        (result,) = yield from self.alongside([task])
        return result

    def alongside(self, tasks: Sequence[Any]) -> Steps[list[Any]]:
        """Yield tasks (in parallel) with the events waiting to go out, in one flat `task_all`;
        the tasks' own results, in order."""
        if not self.queued and len(tasks) == 1:
            return [(yield tasks[0])]
        queued, self.queued = self.queued, []
        results = yield self.context.task_all([*queued, *tasks])
        return list(results[len(queued) :])

    def publish(self, event: Any) -> Steps[None]:
        """Publish an event now (with those waiting)."""
        yield from self.together(event)

    def one(self, contract: Contract[Request, Answer], request: Request) -> Steps[Answer]:
        """`Calls.one`, with the events waiting to go out."""
        answer = yield from self.together(self.calls.task(contract, request))
        return contract.read_answer(answer)

    def all(
        self, contract: Contract[Request, Answer], requests: Sequence[Request]
    ) -> Steps[list[Answer]]:
        """`Calls.all`, with the events waiting to go out."""
        tasks = [self.calls.task(contract, r) for r in requests]
        answers = yield from self.alongside(tasks)
        return [contract.read_answer(answer) for answer in answers]

    def event(self, event_type: str, environment: str | None, data: dict[str, Any]) -> Any:
        subject = self.solution if environment is None else f"{self.solution}/{environment}"
        document = {"operationId": self.request.operation_id, "environment": environment, **data}
        return self.calls.event(event_type, subject, document)

    @property
    def now(self) -> datetime:
        moment: datetime = self.context.current_utc_datetime
        return moment

    def limit(self, base: timedelta) -> timedelta:
        return base * self.request.tuning.timeout_scale

    # --- waits --------------------------------------------------------------------------

    def wait_all(
        self, operations: Sequence[Operation], limit: timedelta, what: str
    ) -> Steps[list[Operation]]:
        """Poll operations (`Calls.poll`, durable timers) until every one ended; past the limit
        the ones still running end as failed with `OperationTimedOut`.

        Polls come when one of them can have changed (`outsystems.polling`, as the deployment's
        walks and `Calls.wait_for_operation` poll): after the shortest `Retry-After` ARM gave
        the running ones, else after the backoff's next interval. Histories written when every
        poll came after `Tuning.poll` replay: the steps are the same, only the timers' times
        differ."""
        from outsystems.polling import poll_interval, poll_wait

        operations = list(operations)
        deadline = self.now + self.limit(limit)
        shortest = self.calls.tuning.poll_seconds
        interval: float | None = None
        while True:
            running = [n for n, operation in enumerate(operations) if not operation.done]
            if not running:
                return operations
            if self.now > deadline:
                for n in running:
                    late = operations[n]
                    error = ArmError("OperationTimedOut", f"{what} did not end", late.resource_id)
                    operations[n] = late._replace(status="Failed", error=error)
                return operations
            interval = poll_interval(shortest, interval)
            hints = [hint for n in running if (hint := operations[n].retry_after) is not None]
            wait = poll_wait(shortest, interval, min(hints) if hints else None)
            checked = yield from self.calls.poll(
                self.subscription,
                self.solution,
                [operations[n] for n in running],
                timedelta(seconds=wait),
            )
            for n, operation in zip(running, checked, strict=True):
                operations[n] = operation

    def wait_one(self, operation: Operation, limit: timedelta, what: str) -> Steps[Operation]:
        (done,) = yield from self.wait_all([operation], limit, what)
        return done

    # --- the approval between environments ---------------------------------------------

    def await_approval(self, environment: str, resumes_at: datetime | None) -> Steps[str | None]:
        """Pause until `environment` is approved or the soak ends; who approved (None: the
        soak). An approval naming another environment is ignored and the wait goes on."""
        context = self.context
        self.progress = self.progress._replace(
            state="AwaitingApproval", awaiting=environment, resumes_at=resumes_at
        )
        self.report()
        yield from self.publish(
            self.event(
                EventType.UPGRADE_PAUSED,
                environment,
                {
                    "awaiting": environment,
                    "resumesAt": None if resumes_at is None else resumes_at.isoformat(),
                },
            )
        )
        approved_by: str | None = None
        while True:
            approval = context.wait_for_external_event(UPGRADE_APPROVED_EVENT)
            if resumes_at is None:
                yield approval
            else:
                timer = context.create_timer(resumes_at)
                winner = yield context.task_any([approval, timer])
                if winner is not approval:
                    break
                timer.cancel()
            given = UpgradeApproval.from_json(_event_data(approval.result))
            if given.environment in ("", environment):
                approved_by = given.by or "approval"
                break
            if not context.is_replaying:
                log.warning(
                    "upgrade %s awaits %s: an approval of %s is ignored",
                    self.request.operation_id,
                    environment,
                    given.environment,
                )
        self.progress = self.progress._replace(state="Running", awaiting=None, resumes_at=None)
        self.report()
        yield from self.publish(
            self.event(
                EventType.UPGRADE_APPROVED,
                environment,
                {"by": approved_by, "soakEnded": approved_by is None},
            )
        )
        return approved_by

    # --- steps shared by every environment -----------------------------------------------

    def restore_point(self, environment: str, targets: UpgradeTargets) -> Steps[None]:
        """A copy of the environment's platform database before anything changes; a resumed
        attempt keeps the restore point it made (a copy made after a partial upgrade would be
        no restore point)."""
        from outsystems.upgrade import RESTORE_POINT, database_name, restore_point_name

        self.begin_step(environment, RESTORE_POINT)
        if self.environment(environment).restore_point is None:
            source = targets.platform_database
            copy = restore_point_name(database_name(source), self.target)
            copy_id = f"{source.rsplit('/', 1)[0]}/{copy}"
            operation = yield from self.one(
                BEGIN_DATABASE_COPY,
                DatabaseCopyRequest(self.subscription, self.solution, source, copy),
            )
            operation = yield from self.wait_one(operation, COPY_LIMIT, f"the copy {copy}")
            if not operation.succeeded:
                raise StepError(_operation_error("RestorePointFailed", operation, copy))
            point = RestorePoint("copy", source, copy_id)
            self.update(self.environment(environment)._replace(restore_point=point))
        self.step_done(environment, RESTORE_POINT)

    def setup_extension(
        self, environment: str, step: str, extension_id: str, server: str
    ) -> Steps[None]:
        """Apply a server's setup extension (or the scale set's model) with the new spec: the
        walk of `deploy_environment` PUTs it and reruns it after a reboot it asked for."""
        self.begin_step(environment, step)
        request = EnvironmentRequest(
            self.request.spec,
            environment,
            (extension_id,),
            self.request.tuning,
            self.request.operation_id,
        )
        child = _instance_id(self.context.instance_id, self.request.operation_id, environment, step)
        try:
            answer = yield from self.together(
                self.calls.sub_task(DEPLOY_ENVIRONMENT, request, child)
            )
        except Exception as error:  # the SDK surfaces a failed sub-orchestration so
            raise StepError(ErrorInfo("SetupFailed", first_line(error), server)) from None
        result = DEPLOY_ENVIRONMENT.read_answer(answer)
        if not result.succeeded:
            failure = result.error or ErrorInfo("SetupFailed", "the setup did not succeed")
            raise StepError(ErrorInfo(failure.code or "SetupFailed", failure.message, server))
        self.step_done(environment, step, server)

    # --- a standalone server (dev, test, life, a standalone prod) ------------------------

    def upgrade_server(self, environment: str) -> Steps[None]:
        from outsystems.names import PlatformNames
        from outsystems.upgrade import LIFETIME, SETUP, UpgradeTargets

        targets = UpgradeTargets.of(self.spec, environment)
        names = PlatformNames.of(
            self.solution, self.subscription, self.spec.resource_group, self.spec.naming
        )
        vm = names.vm(targets.environment)
        version = (
            self.spec.lifetime_version if environment == LIFETIME else self.spec.platform_version
        )
        self.server(environment, ServerUpgrade(vm, "Pending"))
        yield from self.restore_point(environment, targets)
        self.server(environment, ServerUpgrade(vm, "Running", step=SETUP))
        yield from self.setup_extension(environment, SETUP, targets.setup_extension, vm)
        self.server(environment, ServerUpgrade(vm, "Succeeded", version=version))

    # --- the production farm, balanced --------------------------------------------------

    def upgrade_farm(self, environment: str) -> Steps[None]:
        """balanced-upgrade-highly-loaded-farms.md, steps 1 to 9, with the scaler held."""
        from outsystems.upgrade import HOLD, RELEASE, UpgradeTargets

        targets = UpgradeTargets.of(self.spec, environment)
        assert targets.scale_set is not None
        assert targets.gateway is not None
        yield from self.restore_point(environment, targets)
        entity = scale_set_entity(targets.scale_set)
        self.begin_step(environment, HOLD)
        hold = HoldScaleSet(self.request.operation_id, f"upgrade to {self.spec.platform_version}")
        self.context.signal_entity(entity, "hold", hold.to_json())
        self.step_done(environment, HOLD)
        try:
            yield from _Farm(self, environment, targets).run()
        # Any failure (a step's, or an activity that failed all its retries): the scaler goes
        # on at once; the upgrade stops where it failed (resumable).
        except Exception:
            self.context.signal_entity(entity, "release", hold.to_json())
            raise
        self.begin_step(environment, RELEASE)
        self.context.signal_entity(entity, "release", hold.to_json())
        self.step_done(environment, RELEASE)

    # --- the whole upgrade --------------------------------------------------------------

    @property
    def continued(self) -> bool:
        """Whether this generation continues the same upgrade (`continue_as_new` after an
        environment: `resumed` is its own progress), not a second attempt."""
        resumed = self.request.resumed
        return resumed is not None and resumed.operation_id == self.request.operation_id

    def run(self) -> Steps[UpgradeProgress | None]:
        self.report()
        if self.continued:
            return (yield from self.environments())
        yield from self.publish(
            self.event(
                EventType.UPGRADE_STARTED,
                None,
                {
                    "from": self.request.source.to_json(),
                    "to": self.request.target.to_json(),
                    "environments": [
                        e.environment for e in self.progress.environments if e.state != "Skipped"
                    ],
                    "resumed": self.request.resumed is not None,
                },
            )
        )
        return (yield from self.environments())

    def environments(self) -> Steps[UpgradeProgress | None]:
        """The environments still to upgrade, each after its approval; after each but the
        last, a new generation of the instance (`continue_as_new` with the progress so far), so
        that no episode replays the history of the environments before."""
        from outsystems.upgrade import needs_approval, previous_environment

        for entry in self.progress.environments:
            environment = entry.environment
            if entry.state in ("Skipped", "Succeeded"):
                continue
            if needs_approval(self.progress, environment, self.request.resumed):
                resumes_at = None
                soak = self.request.soak_seconds
                if soak is not None:
                    before = previous_environment(self.progress, environment)
                    ended = before.ended_at if before is not None else None
                    resumes_at = (ended or self.now) + timedelta(seconds=soak)
                yield from self.await_approval(environment, resumes_at)
            self.update(self.environment(environment)._replace(state="Running", error=None))
            try:
                if environment == "prod" and self.spec.is_farm:
                    yield from self.upgrade_farm(environment)
                else:
                    yield from self.upgrade_server(environment)
            except StepError as failure:
                yield from self.fail(environment, failure.error)
                return self.progress
            # Activities that failed all their retries surface as plain exceptions.
            except Exception as error:
                cause = ErrorInfo("ActivityFailed", first_line(error))
                yield from self.fail(environment, cause)
                return self.progress
            self.update(
                self.environment(environment)._replace(
                    state="Succeeded", step=None, ended_at=self.now
                )
            )
            yield from self.publish(
                self.event(
                    EventType.UPGRADE_STEP,
                    environment,
                    {"step": "done", "server": None, "error": None},
                )
            )
            if any(e.state not in ("Skipped", "Succeeded") for e in self.progress.environments):
                continued = self.request._replace(resumed=self.progress)
                self.context.continue_as_new(continued.to_json())
                return None
        self.progress = self.progress._replace(state="Succeeded")
        self.report()
        yield from self.publish(
            self.event(EventType.UPGRADE_SUCCEEDED, None, {"to": self.request.target.to_json()})
        )
        return self.progress

    def fail(self, environment: str, error: ErrorInfo) -> Steps[None]:
        current = self.environment(environment)
        step = current.step
        self.update(current._replace(state="Failed", error=error, ended_at=self.now))
        self.progress = self.progress._replace(state="Failed")
        self.report()
        yield from self.publish(
            self.event(
                EventType.UPGRADE_FAILED,
                environment,
                {"step": step, "server": error.resource or None, "error": error.to_json()},
            )
        )


def _operation_error(code: str, operation: Operation, what: str) -> ErrorInfo:
    error = operation.error
    message = f"{what}: {error.code}: {error.message}" if error else f"{what} {operation.status}"
    return ErrorInfo(error.code if error and error.code else code, message, what)


class _Farm:
    """The balanced upgrade of the production farm (balanced-upgrade-highly-loaded-farms.md):
    the updating set (with the controller) is upgraded while the loaded set serves, then the
    gateway switches to it at once and the loaded set follows."""

    def __init__(self, upgrade: _Upgrade, environment: str, targets: UpgradeTargets) -> None:
        from outsystems.names import PlatformNames
        from outsystems.upgrade import farm_minimum

        assert targets.scale_set is not None
        assert targets.gateway is not None
        self.upgrade = upgrade
        self.calls = upgrade.calls
        self.environment = environment
        self.targets = targets
        self.scale_set: str = targets.scale_set
        self.gateway: str = targets.gateway
        spec = upgrade.spec
        names = PlatformNames.of(
            spec.solution_id, spec.subscription_id, spec.resource_group, spec.naming
        )
        self.controller = names.vm("prod")
        frontends = spec.frontends
        self.minimum = farm_minimum(spec, upgrade.now)
        self.maximum = frontends.max_capacity if frontends is not None else self.minimum
        self.instances: dict[str, ScaleSetInstance] = {}
        self.updating: tuple[str, ...] = ()
        self.loaded: tuple[str, ...] = ()
        self.temporary: set[str] = set()
        self.failed_health = ErrorInfo("BackendUnhealthy", "")

    # --- plumbing ----------------------------------------------------------------------

    def step(self, step: str) -> None:
        self.upgrade.begin_step(self.environment, step)

    def done(self, step: str, server: str | None = None) -> None:
        self.upgrade.step_done(self.environment, step, server)

    def read(self) -> Steps[dict[str, ScaleSetInstance]]:
        found = yield from self.upgrade.one(READ_SCALE_SET_INSTANCES, ScaleSetRef(self.scale_set))
        self.instances = {i.instance_id: i for i in found}
        return self.instances

    def names(self, ids: Sequence[str]) -> list[str]:
        return [self.instances[i].name if i in self.instances else i for i in ids]

    def record(self, ids: Sequence[str], state: UpgradeState, step: str | None = None) -> None:
        from outsystems.upgrade import instance_verdict

        for instance_id in ids:
            instance = self.instances.get(instance_id)
            if instance is None:
                continue
            verdict = instance_verdict(instance, self.upgrade.target)
            self.upgrade.server(
                self.environment,
                ServerUpgrade(
                    instance.name,
                    state,
                    instance_id=instance_id,
                    group="updating" if instance_id in self.updating else "loaded",
                    version=verdict.version,
                    step=step,
                    temporary=instance_id in self.temporary,
                ),
            )

    def addresses(self, ids: Sequence[str]) -> tuple[str, ...]:
        found: list[str] = []
        for instance_id in ids:
            instance = self.instances.get(instance_id)
            if instance is None or not instance.private_ip:
                name = instance.name if instance is not None else instance_id
                raise StepError(
                    ErrorInfo("NoPrivateAddress", f"{name} has no private IP address", name)
                )
            found.append(instance.private_ip)
        return tuple(found)

    def unfinished(self, instance_id: str) -> bool:
        """Whether the instance's setup run ended 3010 (`OutSystems setup not finished`)."""
        from outsystems.upgrade import last_line

        message = last_line(self.instances[instance_id].setup_message)
        return message.startswith("OutSystems setup not finished")

    def upgraded(self, ids: Sequence[str]) -> bool:
        from outsystems.upgrade import instance_verdict

        return all(
            i in self.instances
            and instance_verdict(self.instances[i], self.upgrade.target).upgraded
            for i in ids
        )

    # --- the steps ---------------------------------------------------------------------

    def split(self) -> Steps[None]:
        """Two sets of at least the scale set's minimum each; temporary instances (at the old
        version: the model has not changed yet) added to the loaded set when there are too
        few (docs/upgrades.md, "Capacity")."""
        from outsystems.upgrade import SPLIT, instance_order, split_sets

        self.step(SPLIT)
        before = self.upgrade.environment(self.environment)
        known = {s.instance_id: s.group for s in before.servers if s.instance_id and s.group}
        self.temporary = {s.instance_id for s in before.servers if s.instance_id and s.temporary}
        live = yield from self.read()
        self.temporary &= set(live)
        sets = split_sets(live, self.minimum, temporary=self.temporary, known=known)
        if sets.add:
            capacity = len(live) + sets.add
            if capacity > self.maximum:
                raise StepError(
                    ErrorInfo(
                        "CapacityTooLow",
                        f"the balanced upgrade needs two sets of at least {self.minimum} "
                        f"front-ends ({capacity} instances) but the scale set allows at most "
                        f"{self.maximum}: raise maxCapacity or lower minCapacity",
                        self.scale_set.rsplit("/", 1)[-1],
                    )
                )
            operation = yield from self.upgrade.one(
                SET_SCALE_SET_CAPACITY,
                CapacityRequest(self.scale_set, capacity, self.upgrade.solution),
            )
            operation = yield from self.upgrade.wait_one(
                operation, ARM_LIMIT, f"the scale-out to {capacity}"
            )
            if not operation.succeeded:
                raise StepError(_operation_error("ScaleOutFailed", operation, "scale set"))
            before_ids = set(live)
            live = yield from self.read()
            added = set(live) - before_ids
            self.temporary |= added
            # Recorded at once: an attempt that stops here leaves them to the next one to use
            # and delete.
            self.loaded = tuple(sorted(added, key=instance_order))
            self.record(self.loaded, "Pending")
            for instance_id in sorted(added):
                instance = live[instance_id]
                if instance.setup_status != "Succeeded":
                    raise StepError(
                        ErrorInfo(
                            "TemporaryInstanceFailed",
                            f"{instance.name}: setup {instance.setup_status}: "
                            f"{instance.setup_message or 'no message'}",
                            instance.name,
                        )
                    )
            sets = split_sets(live, self.minimum, temporary=self.temporary, known=known)
        self.updating, self.loaded = sets.updating, sets.loaded
        self.upgrade.server(
            self.environment, ServerUpgrade(self.controller, "Pending", group="updating")
        )
        self.record(self.updating, "Pending")
        self.record(self.loaded, "Pending")
        self.done(SPLIT)

    def switch(self, step: str, ids: Sequence[str] | None) -> Steps[None]:
        """One PUT of the gateway: traffic to these instances only, or (None) to the scale
        set's own pool again."""
        addresses = None if ids is None else self.addresses(ids)
        operation = yield from self.upgrade.one(
            BEGIN_SWITCH_GATEWAY,
            GatewaySwitch(
                self.upgrade.subscription, self.upgrade.solution, self.gateway, addresses
            ),
        )
        operation = yield from self.upgrade.wait_one(operation, ARM_LIMIT, "the gateway's update")
        if not operation.succeeded:
            name = self.gateway.rsplit("/", 1)[-1]
            raise StepError(_operation_error("GatewaySwitchFailed", operation, name))

    def run_mode(self, step: str, ids: Sequence[str], mode: FrontEndMode) -> Steps[None]:
        """Run Command of the setup script in a front-end mode on each instance (in parallel:
        one script at a time per VM); each must end with the mode's own line."""
        from outsystems.deployment import BUSY_BACKOFF_SECONDS
        from outsystems.polling import poll_interval
        from outsystems.upgrade import run_command_busy, run_command_problem

        self.step(step)
        ids = list(ids)
        requests = [
            RunCommandRequest(
                self.upgrade.subscription, self.upgrade.solution, self.scale_set, i, mode
            )
            for i in ids
        ]
        deadline = self.upgrade.now + self.upgrade.limit(RUN_COMMAND_LIMIT)
        started = yield from self.upgrade.all(BEGIN_RUN_COMMAND, requests)
        # An instance still running a script (an earlier run of this step, its answer lost)
        # refuses another: wait for it with durable timers and ask again, as long as a script
        # may run; past that, the refusal stands and names the server below.
        busy = [n for n, operation in enumerate(started) if run_command_busy(operation)]
        shortest = BUSY_BACKOFF_SECONDS * self.upgrade.calls.tuning.backoff_scale
        interval: float | None = None
        while busy and self.upgrade.now <= deadline:
            # The backoff of every wait on ARM (`outsystems.polling`), from the busy wait.
            interval = poll_interval(shortest, interval)
            wait = timedelta(seconds=interval)
            yield self.upgrade.context.create_timer(self.upgrade.now + wait)
            again = yield from self.upgrade.all(BEGIN_RUN_COMMAND, [requests[n] for n in busy])
            for n, operation in zip(busy, again, strict=True):
                started[n] = operation
            busy = [n for n in busy if run_command_busy(started[n])]
        ended = yield from self.upgrade.wait_all(started, RUN_COMMAND_LIMIT, f"Run Command {mode}")
        succeeded = [n for n, operation in enumerate(ended) if operation.succeeded]
        outcomes = yield from self.upgrade.all(READ_ACTION_RESULT, [ended[n] for n in succeeded])
        results = dict(zip(succeeded, outcomes, strict=True))
        for n, instance_id in enumerate(ids):
            name = self.names([instance_id])[0]
            outcome = results.get(n)
            if outcome is None:
                raise StepError(_operation_error("RunCommandFailed", ended[n], name))
            problem = run_command_problem(outcome, mode)
            if problem is not None:
                raise StepError(ErrorInfo("RunCommandFailed", f"{name}: {problem}", name))
        self.done(step)

    def upgrade_set(self, step: str, ids: Sequence[str]) -> Steps[None]:
        """The manual upgrade of a set's instances (those not already at the target); then
        each must have the latest model and a setup that reported the target version (its
        health gate passed), else the upgrade stops naming the first that does not."""
        from outsystems.upgrade import instance_verdict

        self.step(step)
        todo = [i for i in ids if not self.upgraded([i])]
        self.record(todo, "Running", step)
        operation: Operation | None = None
        for _ in range(REBOOT_RERUNS + 1):
            if not todo:
                break
            operation = yield from self.upgrade.one(
                BEGIN_MANUAL_UPGRADE,
                InstancesRequest(
                    self.upgrade.subscription, self.upgrade.solution, self.scale_set, tuple(todo)
                ),
            )
            operation = yield from self.upgrade.wait_one(
                operation, MANUAL_UPGRADE_LIMIT, "the manual upgrade"
            )
            yield from self.read()
            # A run that ended 3010 (a reboot, or a step going on in the background) is
            # applied again until it reports 0 or 1 (docs/upgrades.md: "apply the extension
            # again later"); on an instance, applying again is another manual upgrade.
            todo = [i for i in todo if i in self.instances and self.unfinished(i)]
        first: ErrorInfo | None = None
        for instance_id in ids:
            instance = self.instances.get(instance_id)
            if instance is None:
                raise StepError(
                    ErrorInfo(
                        "InstanceGone", f"instance {instance_id} no longer exists", instance_id
                    )
                )
            verdict = instance_verdict(instance, self.upgrade.target)
            error = None
            if not verdict.upgraded:
                error = ErrorInfo(
                    "UpgradeFailed", f"{instance.name}: {verdict.problem}", instance.name
                )
                first = first or error
            # Every instance of the set as it stands, so a failure shows which are done.
            self.upgrade.server(
                self.environment,
                ServerUpgrade(
                    instance.name,
                    "Succeeded" if error is None else "Failed",
                    instance_id=instance_id,
                    group="updating" if instance_id in self.updating else "loaded",
                    version=verdict.version,
                    step=None if error is None else step,
                    error=error,
                    temporary=instance_id in self.temporary,
                ),
            )
        if first is not None:
            raise StepError(first)
        if operation is not None and not operation.succeeded:
            raise StepError(_operation_error("UpgradeFailed", operation, "the manual upgrade"))
        self.done(step)

    def check_health(self, step: str, ids: Sequence[str]) -> Steps[str | None]:
        """The gateway's backend health until every address is Up; the name of the first
        front-end that is not after the admission time (None when all are)."""
        from outsystems.upgrade import unhealthy

        self.step(step)
        wanted = self.addresses(ids)
        by_address = {self.instances[i].private_ip: self.instances[i].name for i in ids}
        deadline = self.upgrade.now + self.upgrade.limit(ADMISSION_LIMIT)
        reference = GatewayRef(self.upgrade.subscription, self.upgrade.solution, self.gateway)
        while True:
            operation = yield from self.upgrade.one(BEGIN_BACKEND_HEALTH, reference)
            operation = yield from self.upgrade.wait_one(operation, ARM_LIMIT, "backend health")
            if not operation.succeeded:
                name = self.gateway.rsplit("/", 1)[-1]
                raise StepError(_operation_error("BackendHealthFailed", operation, name))
            outcome = yield from self.upgrade.one(READ_ACTION_RESULT, operation)
            bad = unhealthy(outcome.health, wanted)
            if not bad:
                self.done(step)
                return None
            if self.upgrade.now >= deadline:
                address, health = next(iter(bad.items()))
                self.failed_health = ErrorInfo(
                    "BackendUnhealthy",
                    f"{by_address.get(address, address)} ({address}) is {health} behind the "
                    "gateway",
                    by_address.get(address, address),
                )
                return by_address.get(address, address)
            # Four looks within the admission time (the probe's pace), not one per poll.
            wait = max(self.calls.tuning.poll, self.upgrade.limit(ADMISSION_LIMIT) / 4)
            yield self.upgrade.context.create_timer(self.upgrade.now + wait)

    def run(self) -> Steps[None]:
        from outsystems.upgrade import (
            CHECK_ALL,
            CHECK_UPDATING,
            CONTROLLER,
            DRAIN_LOADED,
            DRAIN_UPDATING,
            GATEWAY_TO_ALL,
            GATEWAY_TO_LOADED,
            GATEWAY_TO_UPDATING,
            HOLD_LOADED,
            REMOVE_TEMPORARY,
            SCALE_SET_MODEL,
            SERVE_LOADED,
            SERVE_UPDATING,
            UPGRADE_LOADED,
            UPGRADE_UPDATING,
        )

        yield from self.split()
        everyone = (*self.updating, *self.loaded)
        # A resumed attempt whose updating set is already upgraded does not send traffic back
        # to the loaded set (still at the old version) first.
        if not self.upgraded(self.updating):
            self.step(GATEWAY_TO_LOADED)
            yield from self.switch(GATEWAY_TO_LOADED, self.loaded)  # page step 1
            self.done(GATEWAY_TO_LOADED)
            yield from self.run_mode(DRAIN_UPDATING, self.updating, "Drain")
            yield from self.run_mode(HOLD_LOADED, self.loaded, "HoldDeployments")  # step 2
        else:
            for skipped in (GATEWAY_TO_LOADED, DRAIN_UPDATING, HOLD_LOADED):
                self.done(skipped)
        # Page step 3: the controller, then the front-ends of the updating set.
        self.upgrade.server(
            self.environment,
            ServerUpgrade(self.controller, "Running", group="updating", step=CONTROLLER),
        )
        yield from self.upgrade.setup_extension(
            self.environment, CONTROLLER, self.targets.setup_extension, self.controller
        )
        self.upgrade.server(
            self.environment,
            ServerUpgrade(
                self.controller, "Succeeded", group="updating", version=self.upgrade.target
            ),
        )
        yield from self.upgrade.setup_extension(
            self.environment, SCALE_SET_MODEL, self.scale_set, self.scale_set.rsplit("/", 1)[-1]
        )
        yield from self.upgrade_set(UPGRADE_UPDATING, self.updating)
        yield from self.run_mode(SERVE_UPDATING, self.updating, "Serve")
        # Page step 5: the gateway to the updating set at once (one PUT).
        self.step(GATEWAY_TO_UPDATING)
        yield from self.switch(GATEWAY_TO_UPDATING, self.updating)
        self.done(GATEWAY_TO_UPDATING)
        failed = yield from self.check_health(CHECK_UPDATING, self.updating)
        if failed is not None:
            # Traffic back to the loaded set (still serving the old version), then stop.
            yield from self.switch(CHECK_UPDATING, self.loaded)
            raise StepError(self.failed_health)
        # Page steps 6-8: the loaded set upgraded; its runs start its Deployment Service again.
        if not self.upgraded(self.loaded):
            yield from self.run_mode(DRAIN_LOADED, self.loaded, "Drain")
        else:
            self.done(DRAIN_LOADED)
        yield from self.upgrade_set(UPGRADE_LOADED, self.loaded)
        yield from self.run_mode(SERVE_LOADED, self.loaded, "Serve")
        # Page step 9: traffic to all front-ends.
        self.step(GATEWAY_TO_ALL)
        yield from self.switch(GATEWAY_TO_ALL, None)
        self.done(GATEWAY_TO_ALL)
        failed = yield from self.check_health(CHECK_ALL, everyone)
        if failed is not None:
            raise StepError(self.failed_health)
        yield from self.remove_temporary(REMOVE_TEMPORARY)

    def remove_temporary(self, step: str) -> Steps[None]:
        self.step(step)
        temporary = sorted(self.temporary & set(self.instances))
        if temporary:
            operation = yield from self.upgrade.one(
                BEGIN_DELETE_INSTANCES,
                InstancesRequest(
                    self.upgrade.subscription,
                    self.upgrade.solution,
                    self.scale_set,
                    tuple(temporary),
                ),
            )
            operation = yield from self.upgrade.wait_one(
                operation, ARM_LIMIT, "the deletion of the temporary instances"
            )
            if not operation.succeeded:
                raise StepError(
                    _operation_error("DeleteFailed", operation, ", ".join(self.names(temporary)))
                )
            current = self.upgrade.environment(self.environment)
            self.upgrade.update(
                current._replace(
                    servers=tuple(s for s in current.servers if s.instance_id not in temporary)
                )
            )
        self.done(step)


@bp.orchestration_trigger(context_name="context")
@orchestration(UPGRADE_PLATFORM)
def upgrade_platform(
    context: df.DurableOrchestrationContext, request: UpgradeRequest
) -> Steps[UpgradeProgress | None]:
    """Upgrade LifeTime, then each environment of the order, pausing between them."""
    spec, _ = request.spec.parsed()
    previous, _ = request.previous.parsed()
    result: UpgradeProgress | None = yield from _Upgrade(context, request, previous, spec).run()
    return result

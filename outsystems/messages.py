"""The messages between triggers, orchestrations and activities: one typed home per shape.

Durable Functions carries orchestration inputs, outputs, custom status and activity inputs and
outputs as JSON. Each shape has one immutable class here, with `to_json` (what goes on the wire)
and `from_json` (what comes back, including the shapes earlier versions of the app wrote: the
histories of running instances in a task hub outlive a deployment of the app). Everything else
sees fields, so mypy checks every use; the raw JSON stays inside these two methods.

Each durable function has a `Contract` at the end of this module: its name, how its request
reads and how its answer reads. The orchestration that calls it (`orchestrators.calls`) and the
function itself (`activities.typed.serves`, `orchestrators.calls.orchestration`) use the same one.

Pure and light (standard library and the scaling domain only): the worker imports the modules
that use it at every cold start. The classes are `NamedTuple`s, not dataclasses: creating some
forty frozen dataclasses (each generates six methods with `exec`) cost more than ten times as
much at import, a measurable share of a cold start; `_replace` gives a changed copy. For the
same reason this module does without `from __future__ import annotations`: `NamedTuple` would
compile every field's annotation string at import (the methods' annotations are quoted). The
platform spec travels as its normalized JSON (`SpecDocument`), parsed into the pydantic model
and its resource graph only where needed.
"""

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Final, Generic, Literal, NamedTuple, TypeVar, cast

from outsystems.scaling import Fate, ScaleRequest, ScaleSource

if TYPE_CHECKING:
    from outsystems.spec import PlatformSpec
    from outsystems.topology import ResourceGraph

__all__ = [
    "AddScaleRequest",
    "ApplyBatchRequest",
    "ApplyItem",
    "ApplyRequest",
    "ArmError",
    "CapacityRequest",
    "CheckRequest",
    "CloudEvent",
    "DecisionRecord",
    "DeleteRequest",
    "DeployRequest",
    "EnvironmentOutputs",
    "EnvironmentProgress",
    "EnvironmentRequest",
    "ErrorInfo",
    "FoundResource",
    "GroupRequest",
    "ListRequest",
    "Operation",
    "OutputsRequest",
    "PendingRequest",
    "PlanRequest",
    "PlannedAction",
    "PlatformResult",
    "PlatformStatus",
    "RecordFates",
    "ScaleRequest",
    "ScaleRequestsState",
    "ScaleSetInfo",
    "ScaleSetInspection",
    "ScaleSetRef",
    "ScalerRequest",
    "ScalerResult",
    "ScalerStatus",
    "SpecDocument",
    "StepState",
    "TeardownRequest",
    "Tuning",
    "WalkState",
    "WithdrawAlert",
]

JsonObject = dict[str, Any]
#: The default of mapping fields: messages are immutable, so one shared empty mapping.
_EMPTY: Final[Mapping[str, Any]] = MappingProxyType({})
_EMPTY_COUNTS: Final[Mapping[str, int]] = MappingProxyType({})


def _object(data: Any, what: str) -> Mapping[str, Any]:
    if not isinstance(data, Mapping):
        raise ValueError(f"{what} must be a JSON object, not {type(data).__name__}")
    return data


def _optional_str(value: Any) -> str | None:
    return None if value is None else str(value)


def _optional_float(value: Any) -> float | None:
    return None if value is None else float(value)


def _moment(value: Any) -> datetime | None:
    return None if value is None else datetime.fromisoformat(str(value))


def _moment_json(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


# --- Tuning ----------------------------------------------------------------------------------

#: The pace of polling ARM operations in Azure (seconds); tests and demos set it smaller.
DEFAULT_POLL_SECONDS: Final = 15.0
#: Backoff scales follow the polling pace relative to Azure's.
_AZURE_POLL_SECONDS: Final = 15.0


class Tuning(NamedTuple):
    """The pace of an orchestration: polling, retries, wait limits, backoffs, cooldowns.

    Kept in the orchestration's input, so that one instance keeps its pace across replays.
    One set of defaults (`from_json` of a document without a key), one builder from settings
    (`from_settings`).
    """

    poll_seconds: float = DEFAULT_POLL_SECONDS
    #: First retry interval of an activity that failed (Durable's retry).
    retry_seconds: float = DEFAULT_POLL_SECONDS
    #: Multiplies every operation's wait limit (`outsystems.deployment.timeout_for`).
    timeout_scale: float = 1.0
    #: Multiplies the backoffs of resources that failed transiently or are busy.
    backoff_scale: float = 1.0
    #: Multiplies the scaler's cooldowns.
    cooldown_scale: float = 1.0

    @staticmethod
    def from_settings(
        poll_seconds: float, timeout_scale: float = 1.0, cooldown_scale: float = 1.0
    ) -> "Tuning":
        """The tuning a trigger starts an orchestration with (from `AppSettings`)."""
        return Tuning(
            poll_seconds=poll_seconds,
            retry_seconds=max(poll_seconds, 1.0),
            timeout_scale=timeout_scale,
            backoff_scale=max(poll_seconds / _AZURE_POLL_SECONDS, 0.01),
            cooldown_scale=cooldown_scale,
        )

    @property
    def poll(self) -> timedelta:
        return timedelta(seconds=self.poll_seconds)

    @property
    def retry_milliseconds(self) -> int:
        return max(1, int(self.retry_seconds * 1000))

    def to_json(self) -> JsonObject:
        return {
            "pollSeconds": self.poll_seconds,
            "retrySeconds": self.retry_seconds,
            "timeoutScale": self.timeout_scale,
            "backoffScale": self.backoff_scale,
            "cooldownScale": self.cooldown_scale,
        }

    @staticmethod
    def from_json(data: Any) -> "Tuning":
        """Missing keys take the defaults; a missing `retrySeconds` follows `pollSeconds` (the
        scaler's inputs carried no `retrySeconds` before)."""
        document = _object(data or {}, "tuning")
        poll = float(document.get("pollSeconds", DEFAULT_POLL_SECONDS))
        return Tuning(
            poll_seconds=poll,
            retry_seconds=float(document.get("retrySeconds", poll)),
            timeout_scale=float(document.get("timeoutScale", 1.0)),
            backoff_scale=float(document.get("backoffScale", 1.0)),
            cooldown_scale=float(document.get("cooldownScale", 1.0)),
        )


# --- The platform spec as it travels ---------------------------------------------------------


class SpecDocument(NamedTuple):
    """A platform spec's normalized JSON (`PlatformSpec.to_json_dict`), as it travels.

    The few identifiers orchestrations need are read from it directly; `parsed()` gives the
    validated spec and its resource graph (cached by `outsystems.deployment.graph_of`).
    """

    document: Mapping[str, Any]

    @property
    def solution_id(self) -> str:
        return str(self.document["solutionId"])

    @property
    def subscription_id(self) -> str:
        return str(self.document["subscriptionId"])

    @property
    def resource_group(self) -> str:
        return str(self.document["resourceGroup"])

    def parsed(self) -> "tuple[PlatformSpec, ResourceGraph]":
        """The spec and its resource graph (pure, cached; imported here: pydantic is heavy)."""
        from outsystems.deployment import graph_of

        return graph_of(self.document)

    def to_json(self) -> JsonObject:
        return dict(self.document)

    @staticmethod
    def from_json(data: Any) -> "SpecDocument":
        return SpecDocument(dict(_object(data, "spec")))


# --- Orchestration requests ------------------------------------------------------------------


#: How the deployment's and teardown's orchestrations walk their resources. 1: every running
#: operation polled at the fixed interval in one ever-growing history, the environments after
#: all shared resources (what instances started before carry: their histories must replay as
#: they were written, so `from_json` of an input without the key reads 1). 2: polls after
#: `Retry-After` or a backoff per operation, `continue_as_new` every few polls, environments
#: as soon as the shared resources they need are done. 3: `deploy_platform` starts the shared
#: resources once their own plan is read and plans the environments meanwhile (and publishes
#: `deployment.started` alongside the shared plan instead of before it). 4: the resources that
#: become ready together start in one `begin_apply_resources` activity (one answer, one episode)
#: instead of one `begin_apply_resource` each. 5: every scope is planned first, then the shared
#: resources and the four environments walk as one (`deploy_environments`, one sub-orchestration
#: instead of five): what is ready anywhere starts in one batch and what is due anywhere is
#: polled with one timer and one check, so the walks share their episodes. 6: a start batch
#: also carries the pending resources that only wait for some of its own (`ApplyItem.after`),
#: which the activity starts as soon as ARM answers those done: a chain of resources created
#: synchronously (a group, a vault's secrets) costs one batch instead of one each. 7: an
#: operation that nothing still to start waits for is polled up to `LEAF_POLL_CEILING` (10x the
#: shortest interval) while one that something waits for is running or still to start; and a
#: poll already due (after the wait that follows a throttled check) goes out without a timer.
#: 8: a check also carries the pending resources that wait only for some of the operations it
#: polls (or for each other), and the activity starts each as soon as it saw those done
#: (`check_operations_then_start`): a link of a chain of long operations costs one activity and
#: one episode less; a step that both starts and polls asks one activity, not two; and what a
#: resource still to start waits for is polled together (`PlatformWalk.due`). 9: the walks'
#: poll ceiling is 4 times the shortest interval, not 5 (`WALK_POLL_CEILING`), and an operation
#: nothing still to start waits for sets no wake of its own while one that something waits for
#: runs: it is polled at the next wake the others set (`PlatformWalk.next_wake`).
WALK_VERSION: Final = 9


def _walk_version(document: Mapping[str, Any]) -> int:
    return int(document.get("walkVersion") or 1)


class DeployRequest(NamedTuple):
    """The input of `deploy_platform`."""

    operation_id: str
    spec: SpecDocument
    tuning: Tuning = Tuning()
    walk_version: int = WALK_VERSION

    def to_json(self) -> JsonObject:
        return {
            "operation": "deploy",
            "operationId": self.operation_id,
            "spec": self.spec.to_json(),
            "tuning": self.tuning.to_json(),
            "walkVersion": self.walk_version,
        }

    @staticmethod
    def from_json(data: Any) -> "DeployRequest":
        document = _object(data, "deploy request")
        return DeployRequest(
            operation_id=str(document.get("operationId") or ""),
            spec=SpecDocument.from_json(document["spec"]),
            tuning=Tuning.from_json(document.get("tuning")),
            walk_version=_walk_version(document),
        )


class TeardownRequest(NamedTuple):
    """The input of `teardown_platform`: all environments, or some."""

    operation_id: str
    spec: SpecDocument
    environments: tuple[str, ...]
    tuning: Tuning = Tuning()
    walk_version: int = WALK_VERSION
    #: What the listing found and where the walk stands, when an earlier generation of the
    #: instance continued as new.
    found: "tuple[FoundResource, ...] | None" = None
    walk: "WalkState | None" = None

    def to_json(self) -> JsonObject:
        document: JsonObject = {
            "operation": "teardown",
            "operationId": self.operation_id,
            "spec": self.spec.to_json(),
            "environments": list(self.environments),
            "tuning": self.tuning.to_json(),
            "walkVersion": self.walk_version,
        }
        if self.found is not None:
            document["found"] = [f.to_json() for f in self.found]
        if self.walk is not None:
            document["walk"] = self.walk.to_json()
        return document

    @staticmethod
    def from_json(data: Any) -> "TeardownRequest":
        document = _object(data, "teardown request")
        return TeardownRequest(
            operation_id=str(document.get("operationId") or ""),
            spec=SpecDocument.from_json(document["spec"]),
            environments=tuple(str(e) for e in document["environments"]),
            tuning=Tuning.from_json(document.get("tuning")),
            walk_version=_walk_version(document),
            found=None
            if document.get("found") is None
            else tuple(FoundResource.from_json(f) for f in document["found"]),
            walk=None if document.get("walk") is None else WalkState.from_json(document["walk"]),
        )


class EnvironmentRequest(NamedTuple):
    """The input of `deploy_environment`: one environment's (or `shared`) resources to apply."""

    spec: SpecDocument
    environment: str
    apply: tuple[str, ...]
    tuning: Tuning
    #: Secrets created by this deployment derive their values from it.
    nonce: str | None = None
    #: Where the walk stands, when an earlier generation of the instance continued as new.
    walk: "WalkState | None" = None
    walk_version: int = WALK_VERSION

    def to_json(self) -> JsonObject:
        document: JsonObject = {
            "spec": self.spec.to_json(),
            "environment": self.environment,
            "apply": list(self.apply),
            "tuning": self.tuning.to_json(),
            "nonce": self.nonce,
            "walkVersion": self.walk_version,
        }
        if self.walk is not None:
            document["walk"] = self.walk.to_json()
        return document

    @staticmethod
    def from_json(data: Any) -> "EnvironmentRequest":
        document = _object(data, "environment request")
        return EnvironmentRequest(
            spec=SpecDocument.from_json(document["spec"]),
            environment=str(document["environment"]),
            apply=tuple(str(i) for i in document["apply"]),
            tuning=Tuning.from_json(document.get("tuning")),
            nonce=_optional_str(document.get("nonce")) or None,
            walk=None if document.get("walk") is None else WalkState.from_json(document["walk"]),
            walk_version=_walk_version(document),
        )


class EnvironmentsRequest(NamedTuple):
    """The input of `deploy_environments` (walk version 5): the shared resources and every
    environment's, walked as one; what to apply per scope, from the plans."""

    spec: SpecDocument
    apply: Mapping[str, tuple[str, ...]]
    tuning: Tuning
    #: Secrets created by this deployment derive their values from it.
    nonce: str
    #: Where each scope's walk stands, when an earlier generation continued as new.
    walks: "Mapping[str, WalkState] | None" = None
    walk_version: int = WALK_VERSION
    #: The resources the plans found absent (action `create`).
    absent: tuple[str, ...] = ()

    def to_json(self) -> JsonObject:
        document: JsonObject = {
            "spec": self.spec.to_json(),
            "apply": {scope: list(ids) for scope, ids in self.apply.items()},
            "absent": list(self.absent),
            "tuning": self.tuning.to_json(),
            "nonce": self.nonce,
            "walkVersion": self.walk_version,
        }
        if self.walks is not None:
            document["walks"] = {scope: walk.to_json() for scope, walk in self.walks.items()}
        return document

    @staticmethod
    def from_json(data: Any) -> "EnvironmentsRequest":
        document = _object(data, "environments request")
        walks = document.get("walks")
        return EnvironmentsRequest(
            spec=SpecDocument.from_json(document["spec"]),
            apply={
                str(scope): tuple(str(i) for i in ids)
                for scope, ids in _object(document["apply"], "apply").items()
            },
            tuning=Tuning.from_json(document.get("tuning")),
            nonce=str(document["nonce"]),
            walks=None
            if walks is None
            else {
                str(scope): WalkState.from_json(w) for scope, w in _object(walks, "walks").items()
            },
            walk_version=_walk_version(document),
            absent=tuple(str(i) for i in document.get("absent") or ()),
        )


# --- Progress --------------------------------------------------------------------------------

EnvironmentStatus = Literal["Pending", "Running", "Succeeded", "Failed", "Canceled", "Deleted"]
_STATUSES: Final = frozenset(("Pending", "Running", "Succeeded", "Failed", "Canceled", "Deleted"))


class ErrorInfo(NamedTuple):
    """Why an environment (or an operation) failed: ARM's code and message, the resource."""

    code: str
    message: str
    resource: str = ""

    def to_json(self) -> JsonObject:
        return {"code": self.code, "message": self.message, "resource": self.resource}

    @staticmethod
    def from_json(data: Any) -> "ErrorInfo | None":
        if not data:
            return None
        document = _object(data, "error")
        return ErrorInfo(
            code=str(document.get("code") or ""),
            message=str(document.get("message") or ""),
            resource=str(document.get("resource") or ""),
        )


class EnvironmentProgress(NamedTuple):
    """One environment's entry in the platform state (`docs/api.md`): the only builder of it."""

    status: EnvironmentStatus
    resources_done: int = 0
    resources_total: int = 0
    step: str | None = None
    error: ErrorInfo | None = None

    @staticmethod
    def pending(total: int) -> "EnvironmentProgress":
        """An environment that has not started yet."""
        return EnvironmentProgress("Pending", 0, total)

    @staticmethod
    def failed(total: int, error: "ErrorInfo") -> "EnvironmentProgress":
        """An environment that failed before any of its resources started."""
        return EnvironmentProgress("Failed", 0, total, None, error)

    def ended(self, status: EnvironmentStatus, error: "ErrorInfo | None") -> "EnvironmentProgress":
        """The same progress, ended with `status` (no step) — e.g. its orchestration stopped."""
        return self._replace(status=status, step=None, error=error)

    def running(self) -> "EnvironmentProgress":
        return self._replace(status="Running")

    @property
    def succeeded(self) -> bool:
        return self.status == "Succeeded"

    def to_json(self) -> JsonObject:
        return {
            "status": self.status,
            "resourcesDone": self.resources_done,
            "resourcesTotal": self.resources_total,
            "step": self.step,
            "error": None if self.error is None else self.error.to_json(),
        }

    @staticmethod
    def from_json(data: Any) -> "EnvironmentProgress":
        document = _object(data, "environment progress")
        status = str(document.get("status") or "")
        if status not in _STATUSES:
            raise ValueError(f"unknown environment status {status!r}")
        return EnvironmentProgress(
            status=cast(EnvironmentStatus, status),
            resources_done=int(document.get("resourcesDone") or 0),
            resources_total=int(document.get("resourcesTotal") or 0),
            step=_optional_str(document.get("step")),
            error=ErrorInfo.from_json(document.get("error")),
        )


def _progress_map(data: Any) -> "dict[str, EnvironmentProgress]":
    return {
        str(env): EnvironmentProgress.from_json(progress)
        for env, progress in _object(data or {}, "environments").items()
    }


class PlatformStatus(NamedTuple):
    """The custom status of `deploy_platform` and `teardown_platform`."""

    phase: str
    environments: Mapping[str, EnvironmentProgress]

    def to_json(self) -> JsonObject:
        return {
            "phase": self.phase,
            "environments": {env: p.to_json() for env, p in self.environments.items()},
        }

    @staticmethod
    def from_json(data: Any) -> "PlatformStatus":
        document = _object(data, "platform status")
        return PlatformStatus(
            phase=str(document.get("phase") or ""),
            environments=_progress_map(document.get("environments")),
        )


class EnvironmentOutputs(NamedTuple):
    """What a deployed environment offers: its portal's URL and certificate, its servers."""

    private_ips: tuple[str, ...] = ()
    service_center_url: str | None = None
    lifetime_url: str | None = None
    certificate: str | None = None

    def to_json(self) -> JsonObject:
        document: JsonObject = {}
        if self.private_ips:
            document["privateIps"] = list(self.private_ips)
        if self.service_center_url is not None:
            document["serviceCenterUrl"] = self.service_center_url
        if self.lifetime_url is not None:
            document["lifetimeUrl"] = self.lifetime_url
        if self.certificate is not None:
            document["certificate"] = self.certificate
        return document

    @staticmethod
    def from_json(data: Any) -> "EnvironmentOutputs":
        document = _object(data, "environment outputs")
        return EnvironmentOutputs(
            private_ips=tuple(str(ip) for ip in document.get("privateIps") or ()),
            service_center_url=_optional_str(document.get("serviceCenterUrl")),
            lifetime_url=_optional_str(document.get("lifetimeUrl")),
            certificate=_optional_str(document.get("certificate")),
        )


def outputs_to_json(outputs: "Mapping[str, EnvironmentOutputs]") -> JsonObject:
    return {env: entry.to_json() for env, entry in outputs.items()}


def outputs_from_json(data: Any) -> "dict[str, EnvironmentOutputs]":
    return {
        str(env): EnvironmentOutputs.from_json(entry)
        for env, entry in _object(data or {}, "outputs").items()
    }


class PlatformResult(NamedTuple):
    """The output of `deploy_platform` and `teardown_platform` (the latter names its phase)."""

    status: Literal["Succeeded", "Failed"]
    environments: Mapping[str, EnvironmentProgress]
    outputs: Mapping[str, EnvironmentOutputs] = _EMPTY
    phase: str | None = None

    def to_json(self) -> JsonObject:
        document: JsonObject = {"status": self.status}
        if self.phase is not None:
            document["phase"] = self.phase
        document["environments"] = {env: p.to_json() for env, p in self.environments.items()}
        document["outputs"] = outputs_to_json(self.outputs)
        return document

    @staticmethod
    def from_json(data: Any) -> "PlatformResult":
        document = _object(data, "platform result")
        status = document.get("status")
        return PlatformResult(
            status="Succeeded" if status == "Succeeded" else "Failed",
            environments=_progress_map(document.get("environments")),
            outputs=outputs_from_json(document.get("outputs")),
            phase=_optional_str(document.get("phase")),
        )


# --- ARM operations --------------------------------------------------------------------------

OperationStatus = Literal["InProgress", "Succeeded", "Failed", "Canceled"]
PollMode = Literal["async-operation", "location", "resource", "none"]
_OPERATION_STATUSES: Final = frozenset(("InProgress", "Succeeded", "Failed", "Canceled"))
_POLL_MODES: Final = frozenset(("async-operation", "location", "resource", "none"))


class ArmError(NamedTuple):
    """ARM's error, as shown to users: code, message and the resource (or field) it concerns."""

    code: str
    message: str
    target: str | None = None

    def to_json(self) -> JsonObject:
        return {"code": self.code, "message": self.message, "target": self.target}

    @staticmethod
    def from_json(data: Any) -> "ArmError | None":
        if not data:
            return None
        document = _object(data, "ARM error")
        return ArmError(
            code=str(document.get("code") or ""),
            message=str(document.get("message") or ""),
            target=_optional_str(document.get("target")),
        )


class Operation(NamedTuple):
    """A started ARM operation, as plain data an orchestration keeps in its history.

    It carries the ARM polling URL (`Azure-AsyncOperation` or `Location`), never the SDK's
    continuation token (which embeds response bodies, and so could embed secrets). `kept`
    says why a resource group delete did nothing (it succeeded without sending a DELETE).
    """

    resource_id: str
    method: str
    status: OperationStatus
    api_version: str = ""
    poll_mode: PollMode = "none"
    poll_url: str | None = None
    error: ArmError | None = None
    kept: str | None = None
    #: ARM's `Retry-After` (seconds) on the operation's last answer, when it gave one.
    retry_after: float | None = None

    @property
    def done(self) -> bool:
        """True once the operation reached a terminal status."""
        return self.status != "InProgress"

    @property
    def succeeded(self) -> bool:
        return self.status == "Succeeded"

    def to_json(self) -> JsonObject:
        document: JsonObject = {
            "resourceId": self.resource_id,
            "method": self.method,
            "status": self.status,
            "apiVersion": self.api_version,
            "pollMode": self.poll_mode,
            "pollUrl": self.poll_url,
            "error": None if self.error is None else self.error.to_json(),
        }
        if self.kept is not None:
            document["kept"] = self.kept
        if self.retry_after is not None:
            document["retryAfter"] = self.retry_after
        return document

    @staticmethod
    def from_json(data: Any) -> "Operation":
        """Reads camelCase and the snake_case keys that earlier versions wrote."""
        document = _object(data, "operation")

        def get(camel: str, snake: str, default: Any = None) -> Any:
            if camel in document:
                return document[camel]
            return document.get(snake, default)

        status = str(document["status"])
        if status not in _OPERATION_STATUSES:
            raise ValueError(f"unknown operation status {status!r}")
        poll_mode = str(get("pollMode", "poll_mode", "none") or "none")
        if poll_mode not in _POLL_MODES:
            raise ValueError(f"unknown poll mode {poll_mode!r}")
        return Operation(
            resource_id=str(get("resourceId", "resource_id")),
            method=str(document["method"]),
            status=cast(OperationStatus, status),
            api_version=str(get("apiVersion", "api_version", "") or ""),
            poll_mode=cast(PollMode, poll_mode),
            poll_url=_optional_str(get("pollUrl", "poll_url")),
            error=ArmError.from_json(document.get("error")),
            kept=_optional_str(document.get("kept")),
            retry_after=_optional_float(document.get("retryAfter")),
        )


def operations_from_json(data: Any) -> "list[Operation]":
    return [Operation.from_json(item) for item in data]


class StepState(NamedTuple):
    """One resource of a walk that is not done yet (`outsystems.deployment.Walk`), as it
    travels to the walk's next generation (`continue_as_new`)."""

    resource_id: str
    attempts: int = 0
    operation: Operation | None = None
    deadline: datetime | None = None
    not_before: datetime | None = None
    first_started: datetime | None = None
    reruns: int = 0
    waiting_for: str | None = None
    #: When its running operation is polled next, and the interval that led there (seconds).
    next_poll: datetime | None = None
    interval: float = 0.0

    def to_json(self) -> JsonObject:
        return {
            "resourceId": self.resource_id,
            "attempts": self.attempts,
            "operation": None if self.operation is None else self.operation.to_json(),
            "deadline": _moment_json(self.deadline),
            "notBefore": _moment_json(self.not_before),
            "firstStarted": _moment_json(self.first_started),
            "reruns": self.reruns,
            "waitingFor": self.waiting_for,
            "nextPoll": _moment_json(self.next_poll),
            "interval": self.interval,
        }

    @staticmethod
    def from_json(data: Any) -> "StepState":
        document = _object(data, "walk step")
        operation = document.get("operation")
        return StepState(
            resource_id=str(document["resourceId"]),
            attempts=int(document.get("attempts") or 0),
            operation=None if operation is None else Operation.from_json(operation),
            deadline=_moment(document.get("deadline")),
            not_before=_moment(document.get("notBefore")),
            first_started=_moment(document.get("firstStarted")),
            reruns=int(document.get("reruns") or 0),
            waiting_for=_optional_str(document.get("waitingFor")),
            next_poll=_moment(document.get("nextPoll")),
            interval=float(document.get("interval") or 0.0),
        )


class WalkState(NamedTuple):
    """Where a walk stands: what waits, what runs, what is done (resource ids), why it failed.

    An orchestration that walks many resources carries it into its next generation
    (`continue_as_new`), so that no history grows with every poll.
    """

    pending: tuple[StepState, ...]
    running: tuple[StepState, ...]
    done: tuple[str, ...]
    error: ErrorInfo | None = None
    step: str | None = None

    def to_json(self) -> JsonObject:
        return {
            "pending": [s.to_json() for s in self.pending],
            "running": [s.to_json() for s in self.running],
            "done": list(self.done),
            "error": None if self.error is None else self.error.to_json(),
            "step": self.step,
        }

    @staticmethod
    def from_json(data: Any) -> "WalkState":
        document = _object(data, "walk state")
        return WalkState(
            pending=tuple(StepState.from_json(s) for s in document.get("pending") or ()),
            running=tuple(StepState.from_json(s) for s in document.get("running") or ()),
            done=tuple(str(i) for i in document.get("done") or ()),
            error=ErrorInfo.from_json(document.get("error")),
            step=_optional_str(document.get("step")),
        )


# --- Activity requests and answers -----------------------------------------------------------


class PlanRequest(NamedTuple):
    """`plan_environment`: plan one environment (or `shared`) against live state."""

    spec: SpecDocument
    environment: str

    def to_json(self) -> JsonObject:
        return {"spec": self.spec.to_json(), "environment": self.environment}

    @staticmethod
    def from_json(data: Any) -> "PlanRequest":
        document = _object(data, "plan request")
        return PlanRequest(SpecDocument.from_json(document["spec"]), str(document["environment"]))


class PlannedAction(NamedTuple):
    """One resource's action in a plan, as the deployment needs it (not the changes)."""

    id: str
    action: Literal["create", "update", "noop"]

    def to_json(self) -> JsonObject:
        return {"id": self.id, "action": self.action}

    @staticmethod
    def from_json(data: Any) -> "PlannedAction":
        """Also reads the whole `PlannedResource` JSON that earlier versions returned."""
        document = _object(data, "planned resource")
        action = str(document["action"])
        if action not in ("create", "update", "noop"):
            raise ValueError(f"unknown plan action {action!r}")
        return PlannedAction(str(document["id"]), cast(Literal["create", "update", "noop"], action))


class ApplyRequest(NamedTuple):
    """`begin_apply_resource`: PUT one resource of the spec's graph."""

    spec: SpecDocument
    resource_id: str
    nonce: str = ""
    #: How many times the resource is run again after its server rebooted (0: the first run).
    rerun: int = 0
    #: The deployment's plan found no such resource and this is its first attempt (see
    #: `ApplyItem.absent`).
    absent: bool = False

    def to_json(self) -> JsonObject:
        document: JsonObject = {
            "spec": self.spec.to_json(),
            "resourceId": self.resource_id,
            "nonce": self.nonce,
            "rerun": self.rerun,
        }
        if self.absent:
            document["absent"] = True
        return document

    @staticmethod
    def from_json(data: Any) -> "ApplyRequest":
        document = _object(data, "apply request")
        return ApplyRequest(
            spec=SpecDocument.from_json(document["spec"]),
            resource_id=str(document["resourceId"]),
            nonce=str(document.get("nonce") or ""),
            rerun=int(document.get("rerun") or 0),
            absent=document.get("absent") is True,
        )


class ApplyItem(NamedTuple):
    """One resource of an `ApplyBatchRequest`."""

    resource_id: str
    #: How many times the resource is run again after its server rebooted (0: the first run).
    rerun: int = 0
    #: The deployment's plan, read moments before, found no such resource, and this is the
    #: resource's first attempt: a type whose live state only decides what an existing one
    #: keeps need not be read again before its PUT (walk version 5).
    absent: bool = False
    #: Resources of the same batch, earlier in it, that this one depends on (walk version 6): it
    #: starts only once ARM answered each of them done (`Succeeded` with their PUT), and is left
    #: out of the answer, not started, otherwise.
    after: tuple[str, ...] = ()

    def to_json(self) -> JsonObject:
        document: JsonObject = {"resourceId": self.resource_id, "rerun": self.rerun}
        if self.absent:
            document["absent"] = True
        if self.after:
            document["after"] = list(self.after)
        return document

    @staticmethod
    def from_json(data: Any) -> "ApplyItem":
        document = _object(data, "apply item")
        return ApplyItem(
            str(document["resourceId"]),
            int(document.get("rerun") or 0),
            absent=document.get("absent") is True,
            after=tuple(str(i) for i in document.get("after") or ()),
        )


class ApplyBatchRequest(NamedTuple):
    """`begin_apply_resources`: PUT the resources that became ready together (walk version 4);
    the answer has their operations in the same order. An item with `after` (walk version 6)
    starts once those items were answered done, and is left out of the answer when it did not
    start."""

    spec: SpecDocument
    items: tuple[ApplyItem, ...]
    nonce: str = ""

    def to_json(self) -> JsonObject:
        return {
            "spec": self.spec.to_json(),
            "items": [item.to_json() for item in self.items],
            "nonce": self.nonce,
        }

    @staticmethod
    def from_json(data: Any) -> "ApplyBatchRequest":
        document = _object(data, "apply batch request")
        items = document.get("items")
        if not isinstance(items, list) or not items:
            raise ValueError("an apply batch request needs at least one item")
        return ApplyBatchRequest(
            spec=SpecDocument.from_json(document["spec"]),
            items=tuple(ApplyItem.from_json(item) for item in items),
            nonce=str(document.get("nonce") or ""),
        )

    def single(self, item: ApplyItem) -> ApplyRequest:
        """The one-resource request of `item` (what `begin_apply_resource` takes)."""
        return ApplyRequest(self.spec, item.resource_id, self.nonce, item.rerun, item.absent)


class CheckRequest(NamedTuple):
    """`check_operations`: poll running operations once."""

    subscription_id: str
    solution_id: str | None
    operations: tuple[Operation, ...]

    def to_json(self) -> JsonObject:
        return {
            "subscriptionId": self.subscription_id,
            "solutionId": self.solution_id,
            "operations": [operation.to_json() for operation in self.operations],
        }

    @staticmethod
    def from_json(data: Any) -> "CheckRequest":
        document = _object(data, "check request")
        return CheckRequest(
            subscription_id=str(document["subscriptionId"]),
            solution_id=_optional_str(document.get("solutionId")),
            operations=tuple(operations_from_json(document["operations"])),
        )


class CheckThenStartRequest(NamedTuple):
    """`check_operations_then_start` (walk version 8): poll running operations once (`check`),
    then start `then`'s items: an item with `after` naming polled operations' resources (or
    earlier items) starts once each of them was answered done, and is left out of the answer
    otherwise; an item without `after` starts at once."""

    check: CheckRequest
    then: ApplyBatchRequest

    def to_json(self) -> JsonObject:
        return {"check": self.check.to_json(), "then": self.then.to_json()}

    @staticmethod
    def from_json(data: Any) -> "CheckThenStartRequest":
        document = _object(data, "check-then-start request")
        return CheckThenStartRequest(
            CheckRequest.from_json(document["check"]),
            ApplyBatchRequest.from_json(document["then"]),
        )


class CheckThenStartAnswer(NamedTuple):
    """What `check_operations_then_start` answers: the polled operations' new states, in the
    request's order, and the operations of the items it started, in the batch's order."""

    checked: tuple[Operation, ...]
    started: tuple[Operation, ...]

    def to_json(self) -> JsonObject:
        return {
            "checked": [operation.to_json() for operation in self.checked],
            "started": [operation.to_json() for operation in self.started],
        }

    @staticmethod
    def from_json(data: Any) -> "CheckThenStartAnswer":
        document = _object(data, "check-then-start answer")
        return CheckThenStartAnswer(
            tuple(operations_from_json(document["checked"])),
            tuple(operations_from_json(document["started"])),
        )


class OutputsRequest(NamedTuple):
    """`read_outputs`: the deployed platform's URLs and private IPs."""

    spec: SpecDocument

    def to_json(self) -> JsonObject:
        return {"spec": self.spec.to_json()}

    @staticmethod
    def from_json(data: Any) -> "OutputsRequest":
        return OutputsRequest(SpecDocument.from_json(_object(data, "outputs request")["spec"]))


class ListRequest(NamedTuple):
    """`list_platform_resources`: what ARM lists as the platform's in its group."""

    subscription_id: str
    resource_group: str
    solution_id: str
    spec: SpecDocument | None = None

    @staticmethod
    def of(spec: "SpecDocument") -> "ListRequest":
        return ListRequest(spec.subscription_id, spec.resource_group, spec.solution_id, spec)

    def to_json(self) -> JsonObject:
        return {
            "subscriptionId": self.subscription_id,
            "resourceGroup": self.resource_group,
            "solutionId": self.solution_id,
            "spec": None if self.spec is None else self.spec.to_json(),
        }

    @staticmethod
    def from_json(data: Any) -> "ListRequest":
        document = _object(data, "list request")
        spec = document.get("spec")
        return ListRequest(
            subscription_id=str(document["subscriptionId"]),
            resource_group=str(document["resourceGroup"]),
            solution_id=str(document["solutionId"]),
            spec=SpecDocument.from_json(spec) if spec else None,
        )


class FoundResource(NamedTuple):
    """A resource ARM lists as the platform's: id, type and its environment tag."""

    id: str
    type: str
    environment: str

    def to_json(self) -> JsonObject:
        return {"id": self.id, "type": self.type, "environment": self.environment}

    @staticmethod
    def from_json(data: Any) -> "FoundResource":
        document = _object(data, "found resource")
        return FoundResource(
            str(document["id"]), str(document["type"]), str(document.get("environment") or "")
        )


class DeleteRequest(NamedTuple):
    """`begin_delete_resource`: start deleting one resource."""

    subscription_id: str
    resource_id: str
    api_version: str
    solution_id: str | None = None

    def to_json(self) -> JsonObject:
        return {
            "subscriptionId": self.subscription_id,
            "resourceId": self.resource_id,
            "apiVersion": self.api_version,
            "solutionId": self.solution_id,
        }

    @staticmethod
    def from_json(data: Any) -> "DeleteRequest":
        document = _object(data, "delete request")
        return DeleteRequest(
            subscription_id=str(document["subscriptionId"]),
            resource_id=str(document["resourceId"]),
            api_version=str(document["apiVersion"]),
            solution_id=_optional_str(document.get("solutionId")),
        )


class GroupRequest(NamedTuple):
    """`begin_delete_resource_group`: delete the platform's group if the app made it and it is
    empty."""

    subscription_id: str
    resource_group: str
    solution_id: str

    @staticmethod
    def of(spec: "SpecDocument") -> "GroupRequest":
        return GroupRequest(spec.subscription_id, spec.resource_group, spec.solution_id)

    @property
    def group_id(self) -> str:
        return f"/subscriptions/{self.subscription_id}/resourceGroups/{self.resource_group}"

    def to_json(self) -> JsonObject:
        return {
            "subscriptionId": self.subscription_id,
            "resourceGroup": self.resource_group,
            "solutionId": self.solution_id,
        }

    @staticmethod
    def from_json(data: Any) -> "GroupRequest":
        document = _object(data, "group request")
        return GroupRequest(
            str(document["subscriptionId"]),
            str(document["resourceGroup"]),
            str(document["solutionId"]),
        )


class CloudEvent(NamedTuple):
    """`publish_event`: one structured-mode CloudEvent (built by `outsystems.events`)."""

    document: Mapping[str, Any]

    @property
    def id(self) -> str:
        return str(self.document["id"])

    @property
    def type(self) -> str:
        return str(self.document.get("type"))

    @property
    def subject(self) -> str:
        return str(self.document.get("subject"))

    def to_json(self) -> JsonObject:
        return dict(self.document)

    @staticmethod
    def from_json(data: Any) -> "CloudEvent":
        return CloudEvent(dict(_object(data, "event")))


# --- Scaling ---------------------------------------------------------------------------------


class ScalerRequest(NamedTuple):
    """The input of `scale_frontends` (one scaler per scale set).

    `lease_until`: the scaler does not end before this moment (`orchestrators.scaler`), so a
    trigger that read it may store an alert's request without looking at the scaler again.
    """

    scale_set_id: str
    tuning: Tuning = Tuning()
    lease_until: datetime | None = None

    def to_json(self) -> JsonObject:
        document: JsonObject = {"scaleSet": self.scale_set_id, "tuning": self.tuning.to_json()}
        if self.lease_until is not None:
            document["leaseUntil"] = _moment_json(self.lease_until)
        return document

    @staticmethod
    def from_json(data: Any) -> "ScalerRequest":
        document = _object(data, "scaler request")
        return ScalerRequest(
            str(document["scaleSet"]),
            Tuning.from_json(document.get("tuning")),
            _moment(document.get("leaseUntil")),
        )


class ScalerResult(NamedTuple):
    """The output of a scaler that ended: how many requests it left pending."""

    scale_set_id: str
    pending: int

    def to_json(self) -> JsonObject:
        return {"scaleSet": self.scale_set_id, "pending": self.pending}

    @staticmethod
    def from_json(data: Any) -> "ScalerResult":
        document = _object(data, "scaler result")
        return ScalerResult(str(document["scaleSet"]), int(document["pending"]))


class ScalerStatus(NamedTuple):
    """The scaler's custom status: its phase (`orchestrators.scaler`: working, cooldown, ending,
    done, or why it stopped) and, asleep in a cooldown, until when."""

    phase: str
    until: datetime | None = None
    #: The scaler does not end before this moment (see `ScalerRequest.lease_until`).
    lease_until: datetime | None = None

    def to_json(self) -> JsonObject:
        document: JsonObject = {"phase": self.phase}
        if self.phase == "cooldown":
            document["until"] = _moment_json(self.until)
        if self.lease_until is not None:
            document["leaseUntil"] = _moment_json(self.lease_until)
        return document

    @staticmethod
    def from_json(data: Any) -> "ScalerStatus | None":
        """None for no status or one that is not the scaler's (e.g. not yet set)."""
        if not isinstance(data, Mapping) or not isinstance(data.get("phase"), str):
            return None
        return ScalerStatus(
            str(data["phase"]), _moment(data.get("until")), _moment(data.get("leaseUntil"))
        )


class ScaleSetRef(NamedTuple):
    """`inspect_scale_set` and `list_scale_set_servers`: which scale set."""

    scale_set_id: str

    def to_json(self) -> JsonObject:
        return {"scaleSet": self.scale_set_id}

    @staticmethod
    def from_json(data: Any) -> "ScaleSetRef":
        return ScaleSetRef(str(_object(data, "scale set reference")["scaleSet"]))


class ScaleSetInfo(NamedTuple):
    """One scale set as the scaler sees it (plain data, JSON-serialisable with `to_json`).

    `problem` says why a scale set that exists is not the app's to scale when its tags alone
    do not say it (a forged MAC, ARM refusing the id, a foreign subscription).
    """

    id: str
    exists: bool
    managed: bool = False
    solution_id: str | None = None
    capacity: int | None = None
    policy_tags: Mapping[str, str] = _EMPTY
    problem: str | None = None

    def to_json(self) -> JsonObject:
        return {
            "id": self.id,
            "exists": self.exists,
            "managed": self.managed,
            "solutionId": self.solution_id,
            "capacity": self.capacity,
            "policyTags": dict(self.policy_tags),
            "problem": self.problem,
        }

    @staticmethod
    def from_json(data: Mapping[str, Any]) -> "ScaleSetInfo":
        return ScaleSetInfo(
            id=str(data["id"]),
            exists=bool(data["exists"]),
            managed=bool(data.get("managed")),
            solution_id=data.get("solutionId"),
            capacity=data.get("capacity"),
            policy_tags=dict(data.get("policyTags") or {}),
            problem=data.get("problem"),
        )

    @property
    def not_managed_reason(self) -> str | None:
        """Why the app will not scale this scale set (None when it will)."""
        if self.problem is not None:
            return self.problem
        if not self.exists:
            return f"scale set {self.id} does not exist"
        if not self.managed:
            return f"scale set {self.id} is not managed by this app (its tags)"
        return None


class ScaleSetInspection(NamedTuple):
    """`inspect_scale_set`'s answer: the scale set and the `SCALING_MAX_CAPACITY` ceiling.

    On the wire one object: the scale set's fields and `ceiling`.
    """

    info: ScaleSetInfo
    ceiling: int | None = None

    def to_json(self) -> JsonObject:
        return {**self.info.to_json(), "ceiling": self.ceiling}

    @staticmethod
    def from_json(data: Any) -> "ScaleSetInspection":
        document = _object(data, "scale set inspection")
        ceiling = document.get("ceiling")
        usable = isinstance(ceiling, int) and not isinstance(ceiling, bool)
        return ScaleSetInspection(ScaleSetInfo.from_json(document), ceiling if usable else None)


class CapacityRequest(NamedTuple):
    """`set_scale_set_capacity`: PATCH a scale set's `sku.capacity`.

    The solution id lets the activity mask the platform's derived keys in ARM's messages.
    """

    scale_set_id: str
    capacity: int
    solution_id: str | None = None

    def to_json(self) -> JsonObject:
        return {
            "scaleSet": self.scale_set_id,
            "capacity": self.capacity,
            "solutionId": self.solution_id,
        }

    @staticmethod
    def from_json(data: Any) -> "CapacityRequest":
        document = _object(data, "capacity request")
        return CapacityRequest(
            scale_set_id=str(document["scaleSet"]),
            capacity=int(document["capacity"]),
            solution_id=_optional_str(document.get("solutionId")),
        )


# --- A scale set's stored requests (the `track_scale_requests` entity) ----------------------


class PendingRequest(NamedTuple):
    """A stored request the scaler has not decided yet; `deferred` once it was announced as
    waiting for the cooldown, or for the upgrade holding the scale set (a `hold` or `release`
    clears it: the next wait is announced again).

    The alerts of one rule and direction are one pending request (issue 16): `id` is the first
    one's request id, `request` the latest alert with their `count`, `alert_ids` the ids of the
    latest of them (at most `orchestrators.scale_requests.MAX_ALERT_IDS`), so that a Resolved
    can withdraw its own alert's share. States written before keep one entry per alert; each
    reads as an entry of one.
    """

    id: str
    request: ScaleRequest
    deferred: bool = False
    alert_ids: tuple[str, ...] = ()

    def to_json(self) -> JsonObject:
        document: JsonObject = {
            "id": self.id,
            "request": ScaleRequest.to_json(self.request),
            "deferred": self.deferred,
        }
        if self.alert_ids:
            document["alertIds"] = list(self.alert_ids)
        return document

    @staticmethod
    def from_json(data: Any) -> "PendingRequest":
        document = _object(data, "pending request")
        request = ScaleRequest.from_json(_object(document["request"], "request"))
        alert_ids = tuple(str(i) for i in document.get("alertIds") or ())
        if not alert_ids and request.source is ScaleSource.ALERT:
            alert_ids = (request.source_id,)
        return PendingRequest(
            str(document["id"]), request, bool(document.get("deferred")), alert_ids
        )


class DecisionRecord(NamedTuple):
    """One entry of a scale set's `decisions` (`GET .../scaling`, `docs/api.md`): what became
    of one request (`outsystems.scaling.Fate.to_record`), with its id."""

    document: Mapping[str, Any]

    @staticmethod
    def of(fate: Fate, at: datetime, request_id: str) -> "DecisionRecord":
        return DecisionRecord({**fate.to_record(at), "requestId": request_id})

    @property
    def request_id(self) -> str | None:
        return _optional_str(self.document.get("requestId"))

    @property
    def outcome(self) -> str | None:
        return _optional_str(self.document.get("outcome"))

    def naming_servers(self, servers: Sequence[str]) -> "DecisionRecord":
        """The record, naming the servers a scale-in removed (to delete in Service Center)."""
        return DecisionRecord({**self.document, "serversToRemove": list(servers)})

    def to_json(self) -> JsonObject:
        return dict(self.document)

    @staticmethod
    def from_json(data: Any) -> "DecisionRecord":
        return DecisionRecord(dict(_object(data, "decision record")))


class ScaleRequestsState(NamedTuple):
    """A scale set's entity state: its pending requests, cooldown and latest decisions.

    `take` and `record` answer it without the decisions (`to_json(decisions=False)`).
    """

    scale_set_id: str | None = None
    solution_id: str | None = None
    pending: tuple[PendingRequest, ...] = ()
    cooldown_until: datetime | None = None
    decisions: tuple[DecisionRecord, ...] = ()
    #: The ids of the latest requests stored (bounded): a re-delivered one is stored once.
    recent_ids: tuple[str, ...] = ()
    #: The upgrade holding the scaler's capacity changes (`hold` / `release`), None when free.
    held_by: "HoldScaleSet | None" = None

    def to_json(self, *, decisions: bool = True) -> JsonObject:
        document: JsonObject = {
            "scaleSet": self.scale_set_id,
            "solutionId": self.solution_id,
            "pending": [entry.to_json() for entry in self.pending],
            "cooldownUntil": _moment_json(self.cooldown_until),
            "heldBy": None if self.held_by is None else self.held_by.to_json(),
        }
        if decisions:
            document["decisions"] = [record.to_json() for record in self.decisions]
            document["recentIds"] = list(self.recent_ids)
        return document

    @staticmethod
    def from_json(data: Any) -> "ScaleRequestsState":
        """An absent state (None) is the empty one."""
        document = _object(data or {}, "scale requests state")
        return ScaleRequestsState(
            scale_set_id=_optional_str(document.get("scaleSet")),
            solution_id=_optional_str(document.get("solutionId")),
            pending=tuple(PendingRequest.from_json(e) for e in document.get("pending") or ()),
            cooldown_until=_moment(document.get("cooldownUntil")),
            decisions=tuple(DecisionRecord.from_json(r) for r in document.get("decisions") or ()),
            recent_ids=tuple(str(i) for i in document.get("recentIds") or ()),
            held_by=HoldScaleSet.from_json(held) if (held := document.get("heldBy")) else None,
        )


class AddScaleRequest(NamedTuple):
    """The entity's `add` operation: store one request (a trigger signals it)."""

    id: str
    request: ScaleRequest
    scale_set_id: str | None = None
    solution_id: str | None = None

    def to_json(self) -> JsonObject:
        return {
            "id": self.id,
            "scaleSet": self.scale_set_id,
            "solutionId": self.solution_id,
            "request": ScaleRequest.to_json(self.request),
        }

    @staticmethod
    def from_json(data: Any) -> "AddScaleRequest":
        document = _object(data, "add request")
        return AddScaleRequest(
            id=str(document["id"]),
            request=ScaleRequest.from_json(_object(document["request"], "request")),
            scale_set_id=_optional_str(document.get("scaleSet")) or None,
            solution_id=_optional_str(document.get("solutionId")) or None,
        )


class WithdrawAlert(NamedTuple):
    """The entity's `withdraw` operation: an alert resolved (`alertId`; `rule` names it).

    Older versions of the app withdrew by rule, without `alertId`: such a signal withdraws
    nothing.
    """

    alert_id: str | None
    rule: str | None = None

    def to_json(self) -> JsonObject:
        return {"alertId": self.alert_id, "rule": self.rule}

    @staticmethod
    def from_json(data: Any) -> "WithdrawAlert":
        document = _object(data or {}, "withdraw request")
        alert_id = document.get("alertId")
        rule = document.get("rule")
        return WithdrawAlert(
            alert_id if isinstance(alert_id, str) and alert_id else None,
            rule if isinstance(rule, str) and rule else None,
        )


class RecordFates(NamedTuple):
    """The entity's `record` operation: what the scaler decided.

    `settled` requests leave the pending list, `deferred` ones are marked as announced;
    `sets_cooldown` says whether `cooldown_until` replaces the stored cooldown. `counts` says
    how many alerts of a settled request the scaler decided (its count when it took it): the
    alerts that joined it since stay pending (absent: all of them).
    """

    settled: tuple[str, ...] = ()
    deferred: tuple[str, ...] = ()
    records: tuple[DecisionRecord, ...] = ()
    cooldown_until: datetime | None = None
    sets_cooldown: bool = False
    counts: Mapping[str, int] = _EMPTY_COUNTS

    def to_json(self) -> JsonObject:
        document: JsonObject = {
            "settled": list(self.settled),
            "deferred": list(self.deferred),
            "records": [record.to_json() for record in self.records],
        }
        if self.counts:
            document["counts"] = dict(self.counts)
        if self.sets_cooldown:
            document["cooldownUntil"] = _moment_json(self.cooldown_until)
        return document

    @staticmethod
    def from_json(data: Any) -> "RecordFates":
        document = _object(data, "record request")
        return RecordFates(
            settled=tuple(str(i) for i in document.get("settled") or ()),
            deferred=tuple(str(i) for i in document.get("deferred") or ()),
            records=tuple(DecisionRecord.from_json(r) for r in document.get("records") or ()),
            cooldown_until=_moment(document.get("cooldownUntil")),
            sets_cooldown="cooldownUntil" in document,
            counts={str(k): int(v) for k, v in (document.get("counts") or {}).items()},
        )


# --- Upgrades (issue 17) ---------------------------------------------------------------------
#
# `upgrade_platform` runs on the platform's instance id (`platform-<solutionId>`), like its
# deployments and teardowns, so one operation of a platform runs at a time. Its input is an
# `UpgradeRequest`; its custom status and its output an `UpgradeProgress`.

UpgradeState = Literal[
    "Pending", "Running", "AwaitingApproval", "Succeeded", "Failed", "Canceled", "Skipped"
]
_UPGRADE_STATES: Final = frozenset(
    ("Pending", "Running", "AwaitingApproval", "Succeeded", "Failed", "Canceled", "Skipped")
)
#: The external event `POST /api/platforms/{id}/upgrade/approve` raises on the platform's
#: instance; its data is `UpgradeApproval.to_json()`.
UPGRADE_APPROVED_EVENT: Final = "UpgradeApproved"


def _upgrade_state(value: Any) -> UpgradeState:
    state = str(value or "")
    if state not in _UPGRADE_STATES:
        raise ValueError(f"unknown upgrade state {state!r}")
    return cast(UpgradeState, state)


class Versions(NamedTuple):
    """A platform's Platform Server and LifeTime versions."""

    platform: str
    lifetime: str

    def to_json(self) -> JsonObject:
        return {"platformVersion": self.platform, "lifetimeVersion": self.lifetime}

    @staticmethod
    def from_json(data: Any) -> "Versions":
        document = _object(data, "versions")
        return Versions(str(document["platformVersion"]), str(document["lifetimeVersion"]))


class UpgradeRequest(NamedTuple):
    """The input of `upgrade_platform`.

    `spec` is the spec to upgrade to (higher versions), `previous` the deployed one. `order` is
    the environments after LifeTime (which always goes first), as the spec's `upgrade.order`
    gives them; `soak_seconds` how long to wait after an environment before the next one when
    no approval comes (None: wait for the approval). A second PUT after a failed or canceled
    upgrade starts a new one with the same target (`resumed`: the progress of the attempt it
    resumes): environments that attempt finished are kept as they were (no second pause, the
    same restore point), and each step skips what live state says is done.
    """

    operation_id: str
    spec: SpecDocument
    previous: SpecDocument
    order: tuple[str, ...]
    soak_seconds: float | None = None
    tuning: Tuning = Tuning()
    resumed: "UpgradeProgress | None" = None
    #: What the platform's environments offer (the last deployment's outputs), carried so that
    #: the platform's state still shows them while and after the upgrade runs.
    outputs: "Mapping[str, EnvironmentOutputs]" = _EMPTY

    @property
    def source(self) -> Versions:
        return Versions(
            str(self.previous.document["platformVersion"]),
            str(self.previous.document["lifetimeVersion"]),
        )

    @property
    def target(self) -> Versions:
        return Versions(
            str(self.spec.document["platformVersion"]),
            str(self.spec.document["lifetimeVersion"]),
        )

    def to_json(self) -> JsonObject:
        return {
            "operation": "upgrade",
            "operationId": self.operation_id,
            "spec": self.spec.to_json(),
            "previous": self.previous.to_json(),
            "order": list(self.order),
            "soakSeconds": self.soak_seconds,
            "tuning": self.tuning.to_json(),
            "resumed": None if self.resumed is None else self.resumed.to_json(),
            "outputs": outputs_to_json(self.outputs),
        }

    @staticmethod
    def from_json(data: Any) -> "UpgradeRequest":
        document = _object(data, "upgrade request")
        return UpgradeRequest(
            operation_id=str(document.get("operationId") or ""),
            spec=SpecDocument.from_json(document["spec"]),
            previous=SpecDocument.from_json(document["previous"]),
            order=tuple(str(e) for e in document.get("order") or ()),
            soak_seconds=_optional_float(document.get("soakSeconds")),
            tuning=Tuning.from_json(document.get("tuning")),
            resumed=None
            if document.get("resumed") is None
            else UpgradeProgress.from_json(document["resumed"]),
            outputs=outputs_from_json(document.get("outputs")),
        )


class UpgradeApproval(NamedTuple):
    """The data of the `UpgradeApproved` event: which environment's pause it ends, who said so."""

    environment: str
    by: str | None = None

    def to_json(self) -> JsonObject:
        return {"environment": self.environment, "by": self.by}

    @staticmethod
    def from_json(data: Any) -> "UpgradeApproval":
        document = _object(data or {}, "upgrade approval")
        return UpgradeApproval(
            str(document.get("environment") or ""), _optional_str(document.get("by"))
        )


class RestorePoint(NamedTuple):
    """What a rollback of an environment would restore from (never restored by the app).

    `kind` is `copy` (a database copy made before the environment's upgrade: `database_id` is
    the copy) or `pointInTime` (the source database's continuous backup: `restore_to` is the
    moment to restore to).
    """

    kind: Literal["copy", "pointInTime"]
    source_database_id: str
    database_id: str | None = None
    restore_to: datetime | None = None

    def to_json(self) -> JsonObject:
        return {
            "kind": self.kind,
            "sourceDatabaseId": self.source_database_id,
            "databaseId": self.database_id,
            "restoreTo": _moment_json(self.restore_to),
        }

    @staticmethod
    def from_json(data: Any) -> "RestorePoint | None":
        if not data:
            return None
        document = _object(data, "restore point")
        point_in_time = document.get("kind") == "pointInTime"
        return RestorePoint(
            kind="pointInTime" if point_in_time else "copy",
            source_database_id=str(document["sourceDatabaseId"]),
            database_id=_optional_str(document.get("databaseId")),
            restore_to=_moment(document.get("restoreTo")),
        )


class ServerUpgrade(NamedTuple):
    """One server's upgrade: a VM (`instance_id` None) or a scale-set instance.

    `group` is the balanced upgrade's set of a front-end: `updating` (upgraded first, with the
    controller) or `loaded` (serving while the first set is upgraded); None elsewhere.
    `version` is the version the server is known to run.
    """

    name: str
    state: UpgradeState
    instance_id: str | None = None
    group: Literal["updating", "loaded"] | None = None
    version: str | None = None
    step: str | None = None
    error: ErrorInfo | None = None
    #: An instance the upgrade added to make two sets of the minimum size; it deletes it at the
    #: end (a resumed upgrade knows it from here).
    temporary: bool = False

    def to_json(self) -> JsonObject:
        return {
            "name": self.name,
            "instanceId": self.instance_id,
            "group": self.group,
            "state": self.state,
            "version": self.version,
            "step": self.step,
            "error": None if self.error is None else self.error.to_json(),
            "temporary": self.temporary,
        }

    @staticmethod
    def from_json(data: Any) -> "ServerUpgrade":
        document = _object(data, "server upgrade")
        group = document.get("group")
        return ServerUpgrade(
            name=str(document["name"]),
            state=_upgrade_state(document.get("state")),
            instance_id=_optional_str(document.get("instanceId")),
            group=group if group in ("updating", "loaded") else None,
            version=_optional_str(document.get("version")),
            step=_optional_str(document.get("step")),
            error=ErrorInfo.from_json(document.get("error")),
            temporary=bool(document.get("temporary")),
        )


class EnvironmentUpgrade(NamedTuple):
    """One environment's upgrade: where it stands, its restore point, its servers."""

    environment: str
    state: UpgradeState
    step: str | None = None
    steps_done: int = 0
    steps_total: int = 0
    restore_point: RestorePoint | None = None
    servers: tuple[ServerUpgrade, ...] = ()
    error: ErrorInfo | None = None
    #: When the environment's upgrade ended (its soak runs from here).
    ended_at: datetime | None = None

    def to_json(self) -> JsonObject:
        return {
            "environment": self.environment,
            "state": self.state,
            "step": self.step,
            "stepsDone": self.steps_done,
            "stepsTotal": self.steps_total,
            "restorePoint": None if self.restore_point is None else self.restore_point.to_json(),
            "servers": [server.to_json() for server in self.servers],
            "error": None if self.error is None else self.error.to_json(),
            "endedAt": _moment_json(self.ended_at),
        }

    @staticmethod
    def from_json(data: Any) -> "EnvironmentUpgrade":
        document = _object(data, "environment upgrade")
        return EnvironmentUpgrade(
            environment=str(document["environment"]),
            state=_upgrade_state(document.get("state")),
            step=_optional_str(document.get("step")),
            steps_done=int(document.get("stepsDone") or 0),
            steps_total=int(document.get("stepsTotal") or 0),
            restore_point=RestorePoint.from_json(document.get("restorePoint")),
            servers=tuple(ServerUpgrade.from_json(s) for s in document.get("servers") or ()),
            error=ErrorInfo.from_json(document.get("error")),
            ended_at=_moment(document.get("endedAt")),
        )


class UpgradeProgress(NamedTuple):
    """The custom status and the output of `upgrade_platform` (`docs/api.md`, `upgrade`).

    `state` is the upgrade's (Running, AwaitingApproval, Succeeded, Failed, Canceled);
    `awaiting` names the environment whose approval it waits for (None when it waits for none).
    """

    operation_id: str
    source: Versions
    target: Versions
    state: UpgradeState
    environments: tuple[EnvironmentUpgrade, ...]
    awaiting: str | None = None
    #: When the pause ends by itself (the soak time), if it does.
    resumes_at: datetime | None = None

    def environment(self, name: str) -> EnvironmentUpgrade | None:
        return next((e for e in self.environments if e.environment == name), None)

    def to_json(self) -> JsonObject:
        return {
            "operation": "upgrade",
            "operationId": self.operation_id,
            "from": self.source.to_json(),
            "to": self.target.to_json(),
            "state": self.state,
            "awaiting": self.awaiting,
            "resumesAt": _moment_json(self.resumes_at),
            "environments": [e.to_json() for e in self.environments],
        }

    @staticmethod
    def from_json(data: Any) -> "UpgradeProgress":
        document = _object(data, "upgrade progress")
        return UpgradeProgress(
            operation_id=str(document.get("operationId") or ""),
            source=Versions.from_json(document["from"]),
            target=Versions.from_json(document["to"]),
            state=_upgrade_state(document.get("state")),
            environments=tuple(
                EnvironmentUpgrade.from_json(e) for e in document.get("environments") or ()
            ),
            awaiting=_optional_str(document.get("awaiting")),
            resumes_at=_moment(document.get("resumesAt")),
        )


class HoldScaleSet(NamedTuple):
    """The scale set entity's `hold` and `release` operations: an upgrade (its operation id)
    holds the scaler's capacity changes while it runs on the scale set; requests stay pending."""

    holder: str
    reason: str = ""

    def to_json(self) -> JsonObject:
        return {"holder": self.holder, "reason": self.reason}

    @staticmethod
    def from_json(data: Any) -> "HoldScaleSet":
        document = _object(data, "hold request")
        return HoldScaleSet(str(document["holder"]), str(document.get("reason") or ""))


# --- Upgrade activities ----------------------------------------------------------------------


class DatabaseCopyRequest(NamedTuple):
    """`begin_database_copy`: PUT a copy of a database on its server (createMode Copy); an
    existing copy of that name is kept (a rerun answers its state)."""

    subscription_id: str
    solution_id: str
    source_database_id: str
    copy_name: str

    def to_json(self) -> JsonObject:
        return {
            "subscriptionId": self.subscription_id,
            "solutionId": self.solution_id,
            "sourceDatabaseId": self.source_database_id,
            "copyName": self.copy_name,
        }

    @staticmethod
    def from_json(data: Any) -> "DatabaseCopyRequest":
        document = _object(data, "database copy request")
        return DatabaseCopyRequest(
            str(document["subscriptionId"]),
            str(document["solutionId"]),
            str(document["sourceDatabaseId"]),
            str(document["copyName"]),
        )


FrontEndMode = Literal["Drain", "HoldDeployments", "Serve"]


class RunCommandRequest(NamedTuple):
    """`begin_run_command`: run the setup script on one scale-set instance in a front-end mode
    (`docs/upgrades.md`), with the scale set model's C1 arguments."""

    subscription_id: str
    solution_id: str
    scale_set_id: str
    instance_id: str
    mode: FrontEndMode

    def to_json(self) -> JsonObject:
        return {
            "subscriptionId": self.subscription_id,
            "solutionId": self.solution_id,
            "scaleSet": self.scale_set_id,
            "instanceId": self.instance_id,
            "mode": self.mode,
        }

    @staticmethod
    def from_json(data: Any) -> "RunCommandRequest":
        document = _object(data, "run command request")
        mode = str(document["mode"])
        if mode not in ("Drain", "HoldDeployments", "Serve"):
            raise ValueError(f"unknown front-end mode {mode!r}")
        return RunCommandRequest(
            str(document["subscriptionId"]),
            str(document["solutionId"]),
            str(document["scaleSet"]),
            str(document["instanceId"]),
            cast(FrontEndMode, mode),
        )


class InstancesRequest(NamedTuple):
    """`begin_manual_upgrade` and `begin_delete_instances`: some instances of a scale set."""

    subscription_id: str
    solution_id: str
    scale_set_id: str
    instance_ids: tuple[str, ...]

    def to_json(self) -> JsonObject:
        return {
            "subscriptionId": self.subscription_id,
            "solutionId": self.solution_id,
            "scaleSet": self.scale_set_id,
            "instanceIds": list(self.instance_ids),
        }

    @staticmethod
    def from_json(data: Any) -> "InstancesRequest":
        document = _object(data, "instances request")
        return InstancesRequest(
            str(document["subscriptionId"]),
            str(document["solutionId"]),
            str(document["scaleSet"]),
            tuple(str(i) for i in document["instanceIds"]),
        )


class ScaleSetInstance(NamedTuple):
    """`read_scale_set_instances`: one instance, from the instances list and its instance view.

    `setup_status` is the setup extension's status on the instance (`Succeeded`, `Failed`,
    `Transitioning`, or None when it reports none) and `setup_message` its message (the
    script's last line, `docs/upgrades.md`).
    """

    instance_id: str
    name: str
    private_ip: str | None
    latest_model_applied: bool
    provisioning_state: str
    setup_status: str | None = None
    setup_message: str | None = None

    def to_json(self) -> JsonObject:
        return {
            "instanceId": self.instance_id,
            "name": self.name,
            "privateIp": self.private_ip,
            "latestModelApplied": self.latest_model_applied,
            "provisioningState": self.provisioning_state,
            "setupStatus": self.setup_status,
            "setupMessage": self.setup_message,
        }

    @staticmethod
    def from_json(data: Any) -> "ScaleSetInstance":
        document = _object(data, "scale set instance")
        return ScaleSetInstance(
            instance_id=str(document["instanceId"]),
            name=str(document.get("name") or ""),
            private_ip=_optional_str(document.get("privateIp")),
            latest_model_applied=bool(document.get("latestModelApplied")),
            provisioning_state=str(document.get("provisioningState") or ""),
            setup_status=_optional_str(document.get("setupStatus")),
            setup_message=_optional_str(document.get("setupMessage")),
        )


class GatewaySwitch(NamedTuple):
    """`begin_switch_gateway`: send the gateway's front-end traffic to `addresses` only (one
    PUT of the gateway: a second backend pool holding them, the routing rules pointing to it),
    or back to the scale set's own pool when `addresses` is None."""

    subscription_id: str
    solution_id: str
    gateway_id: str
    addresses: tuple[str, ...] | None

    def to_json(self) -> JsonObject:
        return {
            "subscriptionId": self.subscription_id,
            "solutionId": self.solution_id,
            "gatewayId": self.gateway_id,
            "addresses": None if self.addresses is None else list(self.addresses),
        }

    @staticmethod
    def from_json(data: Any) -> "GatewaySwitch":
        document = _object(data, "gateway switch")
        addresses = document.get("addresses")
        return GatewaySwitch(
            str(document["subscriptionId"]),
            str(document["solutionId"]),
            str(document["gatewayId"]),
            None if addresses is None else tuple(str(a) for a in addresses),
        )


class GatewayRef(NamedTuple):
    """`begin_backend_health`: which gateway."""

    subscription_id: str
    solution_id: str
    gateway_id: str

    def to_json(self) -> JsonObject:
        return {
            "subscriptionId": self.subscription_id,
            "solutionId": self.solution_id,
            "gatewayId": self.gateway_id,
        }

    @staticmethod
    def from_json(data: Any) -> "GatewayRef":
        document = _object(data, "gateway reference")
        return GatewayRef(
            str(document["subscriptionId"]), str(document["solutionId"]), str(document["gatewayId"])
        )


class ActionOutcome(NamedTuple):
    """`read_action_result`: what a finished POST action answered, reduced to what the upgrade
    reads: for Run Command the script's last output line (`message`) and whether it reported
    success; for `backendhealth` each backend address's health (`health`)."""

    succeeded: bool
    message: str = ""
    health: Mapping[str, str] = _EMPTY

    def to_json(self) -> JsonObject:
        return {"succeeded": self.succeeded, "message": self.message, "health": dict(self.health)}

    @staticmethod
    def from_json(data: Any) -> "ActionOutcome":
        document = _object(data, "action outcome")
        return ActionOutcome(
            bool(document.get("succeeded")),
            str(document.get("message") or ""),
            {str(k): str(v) for k, v in _object(document.get("health") or {}, "health").items()},
        )


# --- Contracts: which function takes which message and answers which -------------------------

Request = TypeVar("Request")
Answer = TypeVar("Answer")


def to_wire(value: Any) -> Any:
    """The JSON of a message, or of a list or map of messages (plain values as they are)."""
    if hasattr(value, "to_json"):
        return value.to_json()
    if isinstance(value, list | tuple):
        return [to_wire(item) for item in value]
    if isinstance(value, Mapping):
        return {str(key): to_wire(item) for key, item in value.items()}
    return value


def list_of(read: Callable[[Any], Answer]) -> Callable[[Any], list[Answer]]:
    """Reads a JSON list of one message type."""

    def read_list(data: Any) -> list[Answer]:
        if not isinstance(data, list):
            raise ValueError(f"expected a JSON list, not {type(data).__name__}")
        return [read(item) for item in data]

    return read_list


def _text(data: Any) -> str:
    return str(data)


class Contract(Generic[Request, Answer]):
    """A durable function's name, how its request reads and how its answer reads.

    Both sides use the same contract: the orchestration that calls the function
    (`orchestrators.calls`) and the function itself (`activities.typed.serves`).
    """

    __slots__ = ("name", "read_answer", "read_request")

    def __init__(
        self,
        name: str,
        read_request: Callable[[Any], Request],
        read_answer: Callable[[Any], Answer],
    ) -> None:
        self.name = name
        self.read_request = read_request
        self.read_answer = read_answer

    def __repr__(self) -> str:
        return f"Contract({self.name!r})"


PLAN_ENVIRONMENT: Final = Contract(
    "plan_environment", PlanRequest.from_json, list_of(PlannedAction.from_json)
)
BEGIN_APPLY_RESOURCE: Final = Contract(
    "begin_apply_resource", ApplyRequest.from_json, Operation.from_json
)
BEGIN_APPLY_RESOURCES: Final = Contract(
    "begin_apply_resources", ApplyBatchRequest.from_json, list_of(Operation.from_json)
)
CHECK_OPERATIONS: Final = Contract(
    "check_operations", CheckRequest.from_json, list_of(Operation.from_json)
)
#: Walk version 8: a check that starts what waited only for what it polls.
CHECK_THEN_START: Final = Contract(
    "check_operations_then_start", CheckThenStartRequest.from_json, CheckThenStartAnswer.from_json
)
READ_OUTPUTS: Final = Contract("read_outputs", OutputsRequest.from_json, outputs_from_json)
LIST_PLATFORM_RESOURCES: Final = Contract(
    "list_platform_resources", ListRequest.from_json, list_of(FoundResource.from_json)
)
BEGIN_DELETE_RESOURCE: Final = Contract(
    "begin_delete_resource", DeleteRequest.from_json, Operation.from_json
)
BEGIN_DELETE_RESOURCE_GROUP: Final = Contract(
    "begin_delete_resource_group", GroupRequest.from_json, Operation.from_json
)
PUBLISH_EVENT: Final = Contract("publish_event", CloudEvent.from_json, _text)
INSPECT_SCALE_SET: Final = Contract(
    "inspect_scale_set", ScaleSetRef.from_json, ScaleSetInspection.from_json
)
SET_SCALE_SET_CAPACITY: Final = Contract(
    "set_scale_set_capacity", CapacityRequest.from_json, Operation.from_json
)
LIST_SCALE_SET_SERVERS: Final = Contract(
    "list_scale_set_servers", ScaleSetRef.from_json, list_of(_text)
)
#: Orchestrations (their inputs and outputs).
DEPLOY_PLATFORM: Final = Contract(
    "deploy_platform", DeployRequest.from_json, PlatformResult.from_json
)
DEPLOY_ENVIRONMENT: Final = Contract(
    "deploy_environment", EnvironmentRequest.from_json, EnvironmentProgress.from_json
)
#: Walk version 5: its output's `environments` has every scope's outcome, `shared` included.
DEPLOY_ENVIRONMENTS: Final = Contract(
    "deploy_environments", EnvironmentsRequest.from_json, PlatformStatus.from_json
)
TEARDOWN_PLATFORM: Final = Contract(
    "teardown_platform", TeardownRequest.from_json, PlatformResult.from_json
)
SCALE_FRONTENDS: Final = Contract(
    "scale_frontends", ScalerRequest.from_json, ScalerResult.from_json
)

UPGRADE_PLATFORM: Final = Contract(
    "upgrade_platform", UpgradeRequest.from_json, UpgradeProgress.from_json
)
#: The upgrade's activities (issue 17; `activities/upgrade.py`).
BEGIN_DATABASE_COPY: Final = Contract(
    "begin_database_copy", DatabaseCopyRequest.from_json, Operation.from_json
)
BEGIN_RUN_COMMAND: Final = Contract(
    "begin_run_command", RunCommandRequest.from_json, Operation.from_json
)
BEGIN_MANUAL_UPGRADE: Final = Contract(
    "begin_manual_upgrade", InstancesRequest.from_json, Operation.from_json
)
BEGIN_DELETE_INSTANCES: Final = Contract(
    "begin_delete_instances", InstancesRequest.from_json, Operation.from_json
)
READ_SCALE_SET_INSTANCES: Final = Contract(
    "read_scale_set_instances", ScaleSetRef.from_json, list_of(ScaleSetInstance.from_json)
)
BEGIN_SWITCH_GATEWAY: Final = Contract(
    "begin_switch_gateway", GatewaySwitch.from_json, Operation.from_json
)
BEGIN_BACKEND_HEALTH: Final = Contract(
    "begin_backend_health", GatewayRef.from_json, Operation.from_json
)
READ_ACTION_RESULT: Final = Contract(
    "read_action_result", Operation.from_json, ActionOutcome.from_json
)

ACTIVITIES: Final = (
    PLAN_ENVIRONMENT,
    BEGIN_APPLY_RESOURCE,
    BEGIN_APPLY_RESOURCES,
    CHECK_OPERATIONS,
    CHECK_THEN_START,
    READ_OUTPUTS,
    LIST_PLATFORM_RESOURCES,
    BEGIN_DELETE_RESOURCE,
    BEGIN_DELETE_RESOURCE_GROUP,
    PUBLISH_EVENT,
    INSPECT_SCALE_SET,
    SET_SCALE_SET_CAPACITY,
    LIST_SCALE_SET_SERVERS,
    BEGIN_DATABASE_COPY,
    BEGIN_RUN_COMMAND,
    BEGIN_MANUAL_UPGRADE,
    BEGIN_DELETE_INSTANCES,
    READ_SCALE_SET_INSTANCES,
    BEGIN_SWITCH_GATEWAY,
    BEGIN_BACKEND_HEALTH,
    READ_ACTION_RESULT,
)

ORCHESTRATIONS: Final = (
    DEPLOY_PLATFORM,
    DEPLOY_ENVIRONMENT,
    TEARDOWN_PLATFORM,
    SCALE_FRONTENDS,
    UPGRADE_PLATFORM,
)

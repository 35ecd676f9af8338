"""The platform state of `GET /api/platforms/{solutionId}`, from the orchestrations' statuses.

What the task hub says of an orchestration instance is read once into an `OperationStatus`: its
input as the request message it was started with (`DeployRequest`, `TeardownRequest`), its
output as a `PlatformResult` (or an environment's `EnvironmentProgress`), its custom status as
a `PlatformStatus` (`outsystems.messages`). From the platform's last operation and its
environments' sub-orchestrations, `platform_state` says what `api.md` shows users: while a
deployment runs, each environment's progress is its sub-orchestration's custom status; once it
is done, the result the orchestration returned.

Durable's runtime status says whether the orchestration ran to its end, not whether the platform
got what was asked: a deployment whose four environments all failed still `Completed`. The
top-level `status` says that (issue 14.1): `Running`, `Succeeded`, `PartiallySucceeded`,
`Failed` or `Canceled`, from the outcome of each environment the operation was about.

An upgrade (issue 17) is an operation of the platform too: its input an `UpgradeRequest`, its
custom status and output an `UpgradeProgress`, shown as the state's `upgrade`. Once it ended
without finishing (canceled, or the orchestration crashed), what its last custom status said
was running is shown as canceled or failed (`ended_upgrade`), which is also the progress a
second PUT resumes.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from outsystems.messages import (
    DeployRequest,
    EnvironmentProgress,
    ErrorInfo,
    PlatformResult,
    PlatformStatus,
    TeardownRequest,
    UpgradeProgress,
    UpgradeRequest,
    UpgradeState,
    outputs_to_json,
)
from outsystems.names import ENVIRONMENTS
from outsystems.times import utc_z

if TYPE_CHECKING:
    from services.ports import InstanceStatus

RUNNING_STATES = frozenset({"Pending", "Running", "ContinuedAsNew", "Suspended"})
_FINAL_ENVIRONMENT_STATES = frozenset({"Succeeded", "Failed", "Canceled", "Deleted"})

Outcome = Literal["Running", "Succeeded", "PartiallySucceeded", "Failed", "Canceled"]
OUTCOMES: tuple[Outcome, ...] = ("Running", "Succeeded", "PartiallySucceeded", "Failed", "Canceled")

PlatformRequest = DeployRequest | TeardownRequest | UpgradeRequest
OperationKind = Literal["deploy", "teardown", "upgrade"]


def operation_status(runtime_status: str) -> str:
    """The runtime status shown to users. A terminated operation was canceled by a user; an
    orchestration that continued as new is still running (it restarted with a fresh history,
    which is how the upgrade keeps its history short), so it is not shown as a third state
    that flickers between episodes."""
    if runtime_status == "Terminated":
        return "Canceled"
    if runtime_status == "ContinuedAsNew":
        return "Running"
    return runtime_status


def _iso(value: datetime | str | None) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return utc_z(value, seconds=True)


def json_value(value: Any) -> Any:
    """A value the durable client may hand back still JSON-encoded; None if it is unreadable."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return None
    return value


def runtime_status_of(status: InstanceStatus | None) -> str | None:
    """The runtime status's name (`Running`, `Completed`...); None when there is no instance."""
    if status is None or status.runtime_status is None:
        return None
    value: Any = status.runtime_status
    return str(getattr(value, "value", value))


def request_of(value: Any) -> PlatformRequest | None:
    """The request an operation of a platform was started with; None when the task hub did not
    keep a readable one."""
    if not isinstance(value, dict):
        return None
    try:
        if value.get("operation") == "teardown":
            return TeardownRequest.from_json(value)
        if value.get("operation") == "upgrade":
            return UpgradeRequest.from_json(value)
        return DeployRequest.from_json(value)
    except (KeyError, TypeError, ValueError):
        return None


def _read(reader: Any, value: Any) -> Any:
    """`reader(value)` for a JSON object; None for anything else or what does not read."""
    value = json_value(value)
    if not isinstance(value, dict):
        return None
    try:
        return reader(value)
    except (KeyError, TypeError, ValueError):
        return None


@dataclass(frozen=True)
class OperationStatus:
    """What the task hub says of an orchestration instance, read into the message types.

    `request` is its input, `result` its output and `progress` its custom status, each None
    when absent or unreadable; `failure` is the message Durable keeps as the output of an
    orchestration that failed.
    """

    instance_id: str
    runtime_status: str
    created_time: str | None = None
    last_updated_time: str | None = None
    request: PlatformRequest | None = None
    result: PlatformResult | None = None
    progress: PlatformStatus | None = None
    #: A sub-orchestration's own progress: its result once it ended, its custom status before.
    environment: EnvironmentProgress | None = None
    failure: str | None = None
    #: An upgrade's progress: its output once it ended, its custom status before.
    upgrade: UpgradeProgress | None = None

    @staticmethod
    def of(status: InstanceStatus | None) -> OperationStatus | None:
        runtime = runtime_status_of(status)
        if status is None or runtime is None:
            return None
        output = status.output
        custom = status.custom_status
        request = request_of(json_value(status.input_))
        if isinstance(request, UpgradeRequest) or _is_upgrade(custom):
            upgrade = _read(UpgradeProgress.from_json, output)
            return OperationStatus(
                instance_id=str(status.instance_id),
                runtime_status=runtime,
                created_time=_iso(status.created_time),
                last_updated_time=_iso(status.last_updated_time),
                request=request,
                failure=output if isinstance(output, str) else None,
                upgrade=upgrade or _read(UpgradeProgress.from_json, custom),
            )
        result = _read(PlatformResult.from_json, output)
        environment = (
            _read(EnvironmentProgress.from_json, output) if isinstance(output, dict) else None
        )
        if environment is None:
            environment = _read(EnvironmentProgress.from_json, custom)
        return OperationStatus(
            instance_id=str(status.instance_id),
            runtime_status=runtime,
            created_time=_iso(status.created_time),
            last_updated_time=_iso(status.last_updated_time),
            request=request,
            result=result,
            progress=_read(PlatformStatus.from_json, custom),
            environment=environment,
            failure=output if isinstance(output, str) else None,
        )

    @property
    def running(self) -> bool:
        return self.runtime_status in RUNNING_STATES

    @property
    def kind(self) -> OperationKind:
        if isinstance(self.request, TeardownRequest):
            return "teardown"
        if isinstance(self.request, UpgradeRequest) or self.upgrade is not None:
            return "upgrade"
        return "deploy"

    @property
    def operation_id(self) -> str | None:
        return (self.request.operation_id or None) if self.request else None


def _is_upgrade(value: Any) -> bool:
    value = json_value(value)
    return isinstance(value, dict) and value.get("operation") == "upgrade"


_UNFINISHED: frozenset[UpgradeState] = frozenset({"Running", "AwaitingApproval"})


def ended_upgrade(operation: OperationStatus) -> UpgradeProgress | None:
    """An upgrade's progress as the platform's state shows it: once the orchestration ended
    without saying so itself (a cancel terminates it; a crash fails it), what its last custom
    status says runs or awaits approval is `Canceled` (or `Failed`) and nothing awaits."""
    progress = operation.upgrade
    if progress is None or operation.running:
        return progress
    runtime = operation.runtime_status
    if runtime == "Completed" and progress.state not in _UNFINISHED:
        return progress
    ended: UpgradeState = "Canceled" if runtime == "Terminated" else "Failed"
    if runtime == "Completed":
        ended = "Failed"  # an output that still says it runs: the orchestration did not finish
    environments = tuple(
        env._replace(
            state=ended,
            servers=tuple(
                server._replace(state=ended) if server.state in _UNFINISHED else server
                for server in env.servers
            ),
        )
        if env.state in _UNFINISHED
        else env
        for env in progress.environments
    )
    return progress._replace(
        state=ended if progress.state in _UNFINISHED else progress.state,
        environments=environments,
        awaiting=None,
        resumes_at=None,
    )


def upgrade_outcome(operation: OperationStatus) -> Outcome:
    """How an upgrade went: Succeeded when every environment is upgraded; PartiallySucceeded
    when it stopped (failed, or was canceled) after some were."""
    runtime = operation.runtime_status
    if runtime in RUNNING_STATES:
        return "Running"
    progress = ended_upgrade(operation)
    if runtime == "Completed" and progress is not None and progress.state == "Succeeded":
        return "Succeeded"
    stopped: Outcome = "Canceled" if runtime == "Terminated" else "Failed"
    if progress is not None:
        if progress.state == "Canceled":
            stopped = "Canceled"
        if any(env.state == "Succeeded" for env in progress.environments):
            return "PartiallySucceeded"
    return stopped


def last_operation(operation: OperationStatus) -> dict[str, Any]:
    """The `lastOperation` object of the API."""
    shown = {
        "kind": operation.kind,
        "instanceId": operation.instance_id,
        "runtimeStatus": operation_status(operation.runtime_status),
        "startedAt": operation.created_time,
        "updatedAt": operation.last_updated_time,
    }
    if operation.operation_id:
        shown["operationId"] = operation.operation_id
    return shown


def outcome(operation: OperationStatus, environments: Mapping[str, EnvironmentProgress]) -> Outcome:
    """How the operation went: `environments` are the states of those it was about."""
    runtime = operation.runtime_status
    if runtime in RUNNING_STATES:
        return "Running"
    if runtime == "Terminated":
        return "Canceled"
    if runtime != "Completed":
        return "Failed"
    wanted = "Deleted" if operation.kind == "teardown" else "Succeeded"
    states = [progress.status for progress in environments.values()]
    if not states:
        result = operation.result
        return "Succeeded" if result is not None and result.status == "Succeeded" else "Failed"
    done = sum(state == wanted for state in states)
    if done == len(states):
        return "Succeeded"
    if done:
        return "PartiallySucceeded"
    return "Canceled" if set(states) == {"Canceled"} else "Failed"


def operation_outcome(operation: OperationStatus) -> Outcome:
    """The outcome of an operation from its own status alone (its result, once it ended)."""
    if operation.kind == "upgrade":
        return upgrade_outcome(operation)
    return outcome(operation, operation.result.environments if operation.result else {})


def platform_state(
    solution_id: str,
    operation: OperationStatus,
    children: Mapping[str, OperationStatus | None],
) -> dict[str, Any]:
    """The state document: `operation` is the platform's last operation, `children` the
    status of each environment's sub-orchestration (None where there is none)."""
    runtime = operation.runtime_status
    result = operation.result
    environments: dict[str, EnvironmentProgress] = (
        dict(operation.progress.environments) if operation.progress else {}
    )
    if result is not None:
        environments = dict(result.environments)
    elif runtime in RUNNING_STATES or runtime == "Terminated":
        started = operation.created_time or ""
        for env in ENVIRONMENTS:
            child = children.get(env)
            if child is None or (child.created_time or "") < started:
                continue  # a sub-orchestration of an earlier operation
            if child.environment is not None:
                environments[env] = child.environment
    if runtime not in RUNNING_STATES:
        # An operation that ended (canceled, or crashed) leaves no environment running.
        ended: Literal["Canceled", "Failed"] = "Canceled" if runtime == "Terminated" else "Failed"
        error = ErrorInfo("OrchestrationFailed", operation.failure or "", "")
        for name, progress in environments.items():
            if progress.status not in _FINAL_ENVIRONMENT_STATES:
                environments[name] = progress.ended(ended, error if ended == "Failed" else None)
    spec = operation.request.spec.document if operation.request else {}
    request = operation.request
    if operation.kind == "upgrade":
        status = upgrade_outcome(operation)
        outputs = outputs_to_json(request.outputs) if isinstance(request, UpgradeRequest) else {}
    else:
        status = outcome(operation, environments)
        outputs = outputs_to_json(result.outputs) if result else {}
    document: dict[str, Any] = {
        "solutionId": solution_id,
        "subscriptionId": spec.get("subscriptionId"),
        "resourceGroup": spec.get("resourceGroup"),
        "status": status,
        "lastOperation": last_operation(operation),
        "environments": {
            env: environments[env].to_json() for env in ENVIRONMENTS if env in environments
        },
        "outputs": outputs,
    }
    if operation.kind == "upgrade":
        upgrade = ended_upgrade(operation)
        document["upgrade"] = None if upgrade is None else upgrade.to_json()
    return document


def operation_document(operation_id: str, state: Mapping[str, Any]) -> dict[str, Any]:
    """What the operation route shows of the platform's state: the operation and its result."""
    last = state["lastOperation"]
    return {
        "id": operation_id,
        "solutionId": state["solutionId"],
        "kind": last["kind"],
        "status": state["status"],
        "runtimeStatus": last["runtimeStatus"],
        "startedAt": last["startedAt"],
        "updatedAt": last["updatedAt"],
        "environments": state["environments"],
        "outputs": state["outputs"],
        **({"upgrade": state["upgrade"]} if "upgrade" in state else {}),
    }

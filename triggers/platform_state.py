"""The platform state of `GET /api/platforms/{solutionId}`, from the orchestrations' statuses.

Pure: given the status of the platform's last operation and of its environments'
sub-orchestrations (as plain dicts), it says what `api.md` shows users. While a deployment runs,
each environment's progress is its sub-orchestration's custom status; once it is done, the
result the orchestration returned.

Durable's runtime status says whether the orchestration ran to its end, not whether the platform
got what was asked: a deployment whose four environments all failed still `Completed`. The
top-level `status` says that (issue 14.1): `Running`, `Succeeded`, `PartiallySucceeded`,
`Failed` or `Canceled`, from the outcome of each environment the operation was about.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Literal

from outsystems.names import ENVIRONMENTS
from outsystems.times import utc_z

RUNNING_STATES = frozenset({"Pending", "Running", "ContinuedAsNew", "Suspended"})
_FINAL_ENVIRONMENT_STATES = frozenset({"Succeeded", "Failed", "Canceled", "Deleted"})

Outcome = Literal["Running", "Succeeded", "PartiallySucceeded", "Failed", "Canceled"]
OUTCOMES: tuple[Outcome, ...] = ("Running", "Succeeded", "PartiallySucceeded", "Failed", "Canceled")


def operation_status(runtime_status: str) -> str:
    """The runtime status shown to users: a terminated operation was canceled by a user."""
    return "Canceled" if runtime_status == "Terminated" else runtime_status


def _iso(value: datetime | str | None) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return utc_z(value, seconds=True)


def _object(value: Any) -> dict[str, Any] | None:
    """A JSON object, also when the durable client handed it back still encoded."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return None
    return value if isinstance(value, dict) else None


def last_operation(operation: Mapping[str, Any]) -> dict[str, Any]:
    """The `lastOperation` object of the API from an orchestration's status."""
    request = operation.get("input") or {}
    shown = {
        "kind": request.get("operation", "deploy"),
        "instanceId": operation.get("instanceId"),
        "runtimeStatus": operation_status(str(operation.get("runtimeStatus") or "Unknown")),
        "startedAt": _iso(operation.get("createdTime")),
        "updatedAt": _iso(operation.get("lastUpdatedTime")),
    }
    if request.get("operationId"):
        shown["operationId"] = request["operationId"]
    return shown


def outcome(operation: Mapping[str, Any], environments: Mapping[str, Any]) -> Outcome:
    """How the operation went: `environments` are the states of those it was about."""
    runtime = str(operation.get("runtimeStatus") or "Unknown")
    if runtime in RUNNING_STATES:
        return "Running"
    if runtime == "Terminated":
        return "Canceled"
    if runtime != "Completed":
        return "Failed"
    kind = (operation.get("input") or {}).get("operation", "deploy")
    wanted = "Deleted" if kind == "teardown" else "Succeeded"
    states = [
        str(progress.get("status"))
        for progress in environments.values()
        if isinstance(progress, dict)
    ]
    if not states:
        output = _object(operation.get("output")) or {}
        return "Succeeded" if output.get("status") == "Succeeded" else "Failed"
    done = sum(state == wanted for state in states)
    if done == len(states):
        return "Succeeded"
    if done:
        return "PartiallySucceeded"
    return "Canceled" if set(states) == {"Canceled"} else "Failed"


def operation_outcome(operation: Mapping[str, Any]) -> Outcome:
    """The outcome of an operation from its own status alone (its result, once it ended)."""
    output = _object(operation.get("output")) or {}
    environments = output.get("environments")
    return outcome(operation, environments if isinstance(environments, dict) else {})


def platform_state(
    solution_id: str,
    operation: Mapping[str, Any],
    children: Mapping[str, Mapping[str, Any] | None],
) -> dict[str, Any]:
    """The state document.

    `operation`: the last operation's status with keys `instanceId`, `runtimeStatus`, `input`,
    `output`, `customStatus`, `createdTime`, `lastUpdatedTime`. `children`: per environment, the
    status of its sub-orchestration (same keys) or None.
    """
    request = operation.get("input") or {}
    spec = request.get("spec") or {}
    runtime = str(operation.get("runtimeStatus") or "Unknown")
    output = _object(operation.get("output"))
    custom = operation.get("customStatus") or {}
    environments: dict[str, Any] = dict(custom.get("environments") or {})
    if output and isinstance(output.get("environments"), dict):
        environments = dict(output["environments"])
    elif runtime in RUNNING_STATES or runtime == "Terminated":
        started = _iso(operation.get("createdTime")) or ""
        for env in ENVIRONMENTS:
            child = children.get(env)
            if child is None or (_iso(child.get("createdTime")) or "") < started:
                continue  # a sub-orchestration of an earlier operation
            progress = child.get("output") if isinstance(child.get("output"), dict) else None
            progress = progress or child.get("customStatus")
            if isinstance(progress, dict) and progress.get("status"):
                environments[env] = progress
    if runtime not in RUNNING_STATES:
        # An operation that ended (canceled, or crashed) leaves no environment running.
        ended = "Canceled" if runtime == "Terminated" else "Failed"
        message = operation.get("output") if isinstance(operation.get("output"), str) else None
        for name, progress in environments.items():
            if progress.get("status") not in _FINAL_ENVIRONMENT_STATES:
                error = None
                if ended == "Failed":
                    error = {
                        "code": "OrchestrationFailed",
                        "message": message or "",
                        "resource": "",
                    }
                environments[name] = {**progress, "status": ended, "step": None, "error": error}
    return {
        "solutionId": solution_id,
        "subscriptionId": spec.get("subscriptionId"),
        "resourceGroup": spec.get("resourceGroup"),
        "status": outcome(operation, environments),
        "lastOperation": last_operation(operation),
        "environments": {env: environments[env] for env in ENVIRONMENTS if env in environments},
        "outputs": (output or {}).get("outputs") or {},
    }


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
    }

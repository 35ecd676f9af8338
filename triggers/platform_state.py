"""The platform state of `GET /api/platforms/{solutionId}`, from the orchestrations' statuses.

Pure: given the status of the platform's last operation and of its environments'
sub-orchestrations (as plain dicts), it says what `api.md` shows users. While a deployment runs,
each environment's progress is its sub-orchestration's custom status; once it is done, the
result the orchestration returned.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from outsystems.names import ENVIRONMENTS

RUNNING_STATES = frozenset({"Pending", "Running", "ContinuedAsNew", "Suspended"})
_FINAL_ENVIRONMENT_STATES = frozenset({"Succeeded", "Failed", "Canceled", "Deleted"})


def operation_status(runtime_status: str) -> str:
    """The runtime status shown to users: a terminated operation was canceled by a user."""
    return "Canceled" if runtime_status == "Terminated" else runtime_status


def _iso(value: datetime | str | None) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


def last_operation(operation: Mapping[str, Any]) -> dict[str, Any]:
    """The `lastOperation` object of the API from an orchestration's status."""
    request = operation.get("input") or {}
    return {
        "kind": request.get("operation", "deploy"),
        "instanceId": operation.get("instanceId"),
        "runtimeStatus": operation_status(str(operation.get("runtimeStatus") or "Unknown")),
        "startedAt": _iso(operation.get("createdTime")),
        "updatedAt": _iso(operation.get("lastUpdatedTime")),
    }


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
    output = operation.get("output") if isinstance(operation.get("output"), dict) else None
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
        "lastOperation": last_operation(operation),
        "environments": {env: environments[env] for env in ENVIRONMENTS if env in environments},
        "outputs": (output or {}).get("outputs") or {},
    }

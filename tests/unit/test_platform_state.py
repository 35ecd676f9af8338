"""The platform state document built from orchestration statuses."""

from __future__ import annotations

from typing import Any

from triggers.platform_state import platform_state

SPEC = {"subscriptionId": "s", "resourceGroup": "acme-rg"}


def progress(status: str, done: int = 0, total: int = 9, **extra: Any) -> dict[str, Any]:
    return {"status": status, "resourcesDone": done, "resourcesTotal": total, "step": None,
            "error": None, **extra}  # fmt: skip


def operation(runtime: str, **fields: Any) -> dict[str, Any]:
    return {
        "instanceId": "platform-acme",
        "runtimeStatus": runtime,
        "input": {"operation": "deploy", "spec": SPEC},
        "output": None,
        "customStatus": {"environments": {e: progress("Pending") for e in ("dev", "prod")}},
        "createdTime": "2026-11-20T09:00:00Z",
        "lastUpdatedTime": "2026-11-20T09:05:00Z",
        **fields,
    }


def child(status: dict[str, Any], created: str = "2026-11-20T09:00:01Z", **fields: Any) -> Any:
    return {"runtimeStatus": "Running", "customStatus": status, "output": None,
            "createdTime": created, **fields}  # fmt: skip


def test_running_deployment_shows_each_environments_live_progress() -> None:
    state = platform_state(
        "acme",
        operation("Running"),
        {"dev": child(progress("Running", 3, step="creating acme-dev-vm")), "prod": None},
    )
    assert state["lastOperation"] == {
        "kind": "deploy", "instanceId": "platform-acme", "runtimeStatus": "Running",
        "startedAt": "2026-11-20T09:00:00Z", "updatedAt": "2026-11-20T09:05:00Z",
    }  # fmt: skip
    assert state["environments"]["dev"]["resourcesDone"] == 3
    assert state["environments"]["prod"]["status"] == "Pending"
    assert state["resourceGroup"] == "acme-rg"


def test_children_of_an_earlier_operation_are_not_shown() -> None:
    old = child(progress("Failed", 2), created="2026-11-19T09:00:00Z")
    state = platform_state("acme", operation("Running"), {"dev": old})
    assert state["environments"]["dev"]["status"] == "Pending"


def test_completed_deployment_reports_its_result_and_outputs() -> None:
    output = {
        "environments": {"dev": progress("Succeeded", 9), "prod": progress("Failed", 4)},
        "outputs": {"dev": {"serviceCenterUrl": "http://x/ServiceCenter"}},
    }
    state = platform_state("acme", operation("Completed", output=output), {})
    assert state["environments"]["prod"]["status"] == "Failed"
    assert state["outputs"] == output["outputs"]


def test_canceled_operation_leaves_no_environment_running() -> None:
    state = platform_state(
        "acme",
        operation("Terminated"),
        {"dev": child(progress("Running", 3)), "prod": child(progress("Succeeded", 9, 9))},
    )
    assert state["lastOperation"]["runtimeStatus"] == "Canceled"
    assert state["environments"]["dev"]["status"] == "Canceled"
    assert state["environments"]["prod"]["status"] == "Succeeded"


def test_crashed_orchestration_marks_unfinished_environments_failed_with_its_message() -> None:
    state = platform_state("acme", operation("Failed", output="boom"), {})
    assert state["environments"]["dev"]["status"] == "Failed"
    assert state["environments"]["dev"]["error"]["message"] == "boom"

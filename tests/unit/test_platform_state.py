"""The platform state document built from orchestration statuses."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest

from services.platform_state import OperationStatus
from services.platform_state import platform_state as state_of

SPEC = {"subscriptionId": "s", "resourceGroup": "acme-rg"}


@dataclass
class _Status:
    """A status as the durable client hands it back (`DurableOrchestrationStatus`)."""

    instance_id: str | None
    runtime_status: Any
    input_: Any
    output: Any
    custom_status: Any
    created_time: Any
    last_updated_time: Any


def status(fields: dict[str, Any]) -> OperationStatus:
    read = OperationStatus.of(
        _Status(
            fields.get("instanceId"),
            fields["runtimeStatus"],
            fields.get("input"),
            fields.get("output"),
            fields.get("customStatus"),
            fields.get("createdTime"),
            fields.get("lastUpdatedTime"),
        )
    )
    assert read is not None
    return read


def platform_state(
    solution_id: str, operation: dict[str, Any], children: dict[str, Any]
) -> dict[str, Any]:
    """The state document from statuses written as the durable client's JSON."""
    return state_of(
        solution_id,
        status(operation),
        {env: None if child is None else status(child) for env, child in children.items()},
    )


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


# --- the top-level outcome (issue 14.1, contract C4) ---------------------------------------

FOUR = ("dev", "test", "prod", "life")


def ended(runtime: str, statuses: dict[str, str], kind: str = "deploy", **extra: Any) -> Any:
    request: dict[str, Any] = {"operation": kind, "spec": SPEC}
    if kind == "teardown":
        request["environments"] = list(statuses)
    output = {
        "status": "Succeeded" if set(statuses.values()) <= {"Succeeded", "Deleted"} else "Failed",
        "environments": {env: progress(status) for env, status in statuses.items()},
        "outputs": {},
    }
    return operation(runtime, input=request, output=output, **extra)


@pytest.mark.parametrize(
    ("runtime", "statuses", "kind", "expected"),
    [
        ("Completed", dict.fromkeys(FOUR, "Succeeded"), "deploy", "Succeeded"),
        # The case of issue 14.1: the orchestration completed, every environment failed.
        ("Completed", dict.fromkeys(FOUR, "Failed"), "deploy", "Failed"),
        (
            "Completed",
            {"dev": "Succeeded", "test": "Failed", "prod": "Succeeded", "life": "Succeeded"},
            "deploy",
            "PartiallySucceeded",
        ),
        ("Completed", {"dev": "Deleted", "test": "Deleted"}, "teardown", "Succeeded"),
        ("Completed", {"dev": "Deleted", "test": "Failed"}, "teardown", "PartiallySucceeded"),
        ("Completed", {"dev": "Failed"}, "teardown", "Failed"),
    ],
)
def test_status_says_how_the_last_operation_ended(
    runtime: str, statuses: dict[str, str], kind: str, expected: str
) -> None:
    state = platform_state("acme", ended(runtime, statuses, kind), {})
    assert state["status"] == expected
    # The Durable runtime status stays what it is: the orchestration itself did complete.
    assert state["lastOperation"]["runtimeStatus"] == "Completed"


def test_status_of_an_operation_that_runs_is_running() -> None:
    for runtime in ("Pending", "Running", "ContinuedAsNew", "Suspended"):
        state = platform_state("acme", operation(runtime), {"dev": child(progress("Running"))})
        assert state["status"] == "Running", runtime


def test_an_operation_between_two_episodes_is_shown_running() -> None:
    # Durable's OrchestrationRuntimeStatus has ContinuedAsNew (azure-functions-durable 1.7.0,
    # models/OrchestrationRuntimeStatus.py): the instance restarted with a fresh history. Users
    # see it running, not a status that comes and goes between the upgrade's episodes.
    state = platform_state("acme", operation("ContinuedAsNew"), {"dev": child(progress("Running"))})
    assert state["lastOperation"]["runtimeStatus"] == "Running"
    assert (
        platform_state("acme", operation("Terminated"), {})["lastOperation"]["runtimeStatus"]
        == "Canceled"
    )


def test_status_of_a_canceled_or_crashed_operation() -> None:
    assert platform_state("acme", operation("Terminated"), {})["status"] == "Canceled"
    assert platform_state("acme", operation("Failed", output="boom"), {})["status"] == "Failed"


def test_status_reads_an_output_the_durable_client_left_json_encoded() -> None:
    raw = ended("Completed", {"dev": "Succeeded", "test": "Failed"})
    raw["output"] = json.dumps(raw["output"])
    state = platform_state("acme", raw, {})
    assert state["status"] == "PartiallySucceeded"
    assert state["environments"]["test"]["status"] == "Failed"


def test_status_of_a_completed_operation_without_environments_follows_its_output() -> None:
    raw = operation("Completed", output={"status": "Succeeded", "environments": {}, "outputs": {}})
    assert platform_state("acme", raw, {})["status"] == "Succeeded"
    raw = operation("Completed", output={"status": "Failed", "environments": {}, "outputs": {}})
    assert platform_state("acme", raw, {})["status"] == "Failed"

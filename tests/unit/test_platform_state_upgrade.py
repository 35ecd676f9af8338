"""The platform's state while and after an upgrade (issue 17): the `upgrade` view, the
top-level status, the outputs the upgrade carries, and the operation route's document."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import jsonschema  # type: ignore[import-untyped]

from services import platforms
from services.platform_state import OperationStatus, operation_outcome
from tests.unit.durable_fakes import FakeDurableClient, Instance
from tests.unit.upgrade_support import INSTANCE, OUTPUTS, progress, upgrading
from triggers.openapi import document


def state(client: FakeDurableClient) -> dict[str, Any]:
    return asyncio.run(platforms.state(client, "acme"))


def schema(name: str) -> dict[str, Any]:
    """A schema of the OpenAPI document, its references resolvable."""
    components = document()["components"]
    return {**components["schemas"][name], "components": components}


def test_a_running_upgrade_shows_its_progress_outputs_and_status_running() -> None:
    client = upgrading("Running", "AwaitingApproval", awaiting="prod")
    shown = state(client)
    assert shown["status"] == "Running"
    assert shown["lastOperation"]["kind"] == "upgrade"
    assert shown["lastOperation"]["operationId"] == "u1"
    assert shown["upgrade"] == progress("AwaitingApproval", "prod").to_json()
    assert shown["upgrade"]["awaiting"] == "prod"
    assert shown["outputs"] == {env: o.to_json() for env, o in OUTPUTS.items()}
    jsonschema.validate(shown, schema("PlatformState"))
    jsonschema.validate(shown["upgrade"], schema("Upgrade"))


def test_an_upgrade_that_succeeded_is_succeeded() -> None:
    shown = state(upgrading("Completed", "Succeeded", as_output=True))
    assert (shown["status"], shown["upgrade"]["state"]) == ("Succeeded", "Succeeded")


def test_an_upgrade_that_stopped_after_some_environments_is_partially_succeeded() -> None:
    shown = state(upgrading("Completed", "Failed", as_output=True))
    assert (shown["status"], shown["upgrade"]["state"]) == ("PartiallySucceeded", "Failed")
    jsonschema.validate(shown, schema("PlatformState"))


def test_an_upgrade_that_failed_before_any_environment_is_failed() -> None:
    client = upgrading("Completed", "Failed", as_output=True)
    output = client.instances[INSTANCE].output
    for environment in output["environments"]:
        if environment["state"] == "Succeeded":
            environment["state"] = "Pending"
    assert state(client)["status"] == "Failed"


def test_a_canceled_upgrade_shows_what_ran_as_canceled_and_awaits_nothing() -> None:
    shown = state(upgrading("Terminated", "AwaitingApproval", awaiting="prod"))
    assert shown["status"] == "PartiallySucceeded"
    upgrade = shown["upgrade"]
    assert (upgrade["state"], upgrade["awaiting"]) == ("Canceled", None)
    assert [(e["environment"], e["state"]) for e in upgrade["environments"]] == [
        ("life", "Succeeded"),
        ("dev", "Succeeded"),
        ("prod", "Canceled"),
        ("test", "Pending"),
    ]


def test_a_crashed_upgrade_is_failed_from_its_last_custom_status() -> None:
    client = upgrading("Failed", "Running")
    client.instances[INSTANCE].output = "Orchestrator function 'upgrade_platform' failed: boom"
    shown = state(client)
    assert shown["upgrade"]["state"] == "Failed"
    assert shown["status"] == "PartiallySucceeded"


def test_the_operation_route_and_the_list_show_the_upgrade() -> None:
    client = upgrading("Running", "Running")
    guid = "3f2b8c1e-5a4d-4e6f-9a7b-1c2d3e4f5a6b"
    client.instances[INSTANCE].input["operationId"] = guid
    view = asyncio.run(platforms.operation(client, "acme", guid))
    assert view.running
    assert (view.document["kind"], view.document["status"]) == ("upgrade", "Running")
    assert view.document["upgrade"]["state"] == "Running"
    jsonschema.validate(view.document, schema("Operation"))
    read = OperationStatus.of(asyncio.run(client.get_status(INSTANCE, show_input=True)))
    assert read is not None
    assert (read.kind, operation_outcome(read)) == ("upgrade", "Running")


def test_an_upgrade_status_the_hub_hands_back_as_json_text_reads_the_same() -> None:
    client = upgrading("Running", "AwaitingApproval", awaiting="test")
    instance: Instance = client.instances[INSTANCE]
    instance.input = json.dumps(instance.input)
    instance.custom_status = json.dumps(instance.custom_status)
    assert state(client)["upgrade"]["awaiting"] == "test"

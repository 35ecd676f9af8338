"""`POST /api/platforms/{solutionId}/upgrade/approve` and the PUT's 202 of an upgrade, as the
worker runs them (the trigger as written, with the hand-written Durable client)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import azure.functions as func
import pytest

from outsystems.messages import UPGRADE_APPROVED_EVENT
from tests.support.functions import client_function
from tests.unit.durable_fakes import FakeDurableClient
from tests.unit.upgrade_support import INSTANCE, awaiting, deployed, upgrading

BASE = "https://app.example/api/platforms/acme"


@pytest.fixture(autouse=True)
def _settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AZURE_SUBSCRIPTION_ID", "11111111-2222-3333-4444-555555555555")


def approve(client: FakeDurableClient, body: bytes = b"") -> func.HttpResponse:
    request = func.HttpRequest(
        "POST",
        f"{BASE}/upgrade/approve?code=secret-key",
        body=body,
        route_params={"solutionId": "acme"},
    )
    response: func.HttpResponse = asyncio.run(client_function("approve_upgrade")(request, client))
    return response


def answer(response: func.HttpResponse) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(response.get_body())
    return document


@pytest.mark.parametrize("body", [b"", b"{}", b'{"environment": "prod"}', b'{"environment": null}'])
def test_an_approval_of_the_awaited_environment_is_a_202_to_the_operation(body: bytes) -> None:
    client = awaiting("prod")
    response = approve(client, body)
    assert response.status_code == 202
    assert answer(response) == {
        "solutionId": "acme",
        "environment": "prod",
        "status": "Approved",
        "operationId": "u1",
    }
    assert response.headers["Location"] == f"{BASE}/operations/u1"
    assert "secret-key" not in response.headers["Location"]
    assert client.events == [(INSTANCE, UPGRADE_APPROVED_EVENT)]


def test_another_environment_is_a_400_naming_the_field() -> None:
    client = awaiting("prod")
    response = approve(client, b'{"environment": "test"}')
    assert response.status_code == 400
    error = answer(response)["error"]
    assert error["code"] == "WrongEnvironment"
    assert [d["target"] for d in error["details"]] == ["environment"]
    assert client.events == []


@pytest.mark.parametrize(
    ("body", "target"),
    [
        (b"[1]", "body"),
        (b"{not json", "body"),
        (b'{"environment": "qa"}', "environment"),
        (b'{"environment": 3}', "environment"),
        (b'{"env": "prod"}', "env"),
    ],
)
def test_a_body_that_is_no_approval_is_a_400(body: bytes, target: str) -> None:
    client = awaiting("prod")
    response = approve(client, body)
    assert response.status_code == 400
    error = answer(response)["error"]
    assert error["code"] == "InvalidApproval"
    assert [d["target"] for d in error["details"]] == [target]
    assert client.events == []


def test_no_upgrade_awaiting_an_approval_is_a_409_and_an_unknown_platform_a_404() -> None:
    for client in (upgrading("Running", "Running"), deployed()):
        response = approve(client)
        assert response.status_code == 409
        assert answer(response)["error"]["code"] == "NoUpgradeAwaitingApproval"
    assert approve(FakeDurableClient()).status_code == 404


def test_the_put_of_a_resumed_upgrade_says_what_it_resumes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from services import platforms
    from tests.unit.platform_fakes import FakeArm

    monkeypatch.setattr("triggers.platforms.AzurePlatformArm", FakeArm)
    client = upgrading("Completed", "Failed", as_output=True)
    body = json.dumps(
        {"location": "westeurope", "platformVersion": "11.32.0", "lifetimeVersion": "11.25.2"}
    ).encode()
    request = func.HttpRequest("PUT", BASE, body=body, route_params={"solutionId": "acme"})
    response = asyncio.run(client_function("put_platform")(request, client))
    assert response.status_code == 202, response.get_body()
    shown = answer(response)
    assert (shown["kind"], shown["resumes"]) == ("upgrade", "u1")
    assert response.headers["Location"] == f"{BASE}/operations/{shown['id']}"
    assert platforms.platform_instance_id("acme") in client.starts

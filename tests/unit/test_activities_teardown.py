"""The teardown's activities (`activities/teardown.py`) against ARM on the wire.

Each activity runs as the worker runs it (the registered function, JSON in and out) against the
ARM simulator served on loopback, reached through the app's own connection (`arm.client`), so
the requests are real HTTP through the SDK pipeline; nothing of ours is mocked. What ARM does
on a DELETE is the published contract, not the simulator's word: Microsoft's "Azure Resource
Manager resource group and resource deletion"
(https://learn.microsoft.com/azure/azure-resource-manager/management/delete-resource-group,
"Resource deletion"; read in its localized copy bergano65/azure-docs.ru-ru,
`articles/azure-resource-manager/resource-group-delete.md` at 1691b4d): a synchronous DELETE
succeeds with 200, 204 or 404 (a resource already gone counts as deleted), an asynchronous one
answers 202 and is followed through `Location` or `Azure-AsyncOperation`.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from arm.live import RESOURCES_API_VERSION
from localdev.armsim.server import SimulatorServer
from localdev.armsim.testing import running_simulator
from outsystems.messages import FoundResource, Operation
from outsystems.tags import ENVIRONMENT_TAG, MANAGED_BY_TAG, MANAGED_BY_VALUE, SOLUTION_TAG
from tests.support.arm_loopback import SUBSCRIPTION, app_on, get, put
from tests.support.functions import activity

GROUP = "acme-rg"
GROUP_ID = f"/subscriptions/{SUBSCRIPTION}/resourceGroups/{GROUP}"
IDENTITY_API = "2023-01-31"
OURS = {MANAGED_BY_TAG: MANAGED_BY_VALUE, SOLUTION_TAG: "acme"}


@pytest.fixture(scope="module")
def simulator() -> Iterator[SimulatorServer]:
    with running_simulator(throttling=False) as sim:
        yield sim


@pytest.fixture
def sim(simulator: SimulatorServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[SimulatorServer]:
    with app_on(simulator, monkeypatch) as running:
        yield running


def exists(resource_id: str, api_version: str) -> bool:
    return get(resource_id, api_version) is not None


def identity(name: str, tags: dict[str, str]) -> str:
    resource_id = f"{GROUP_ID}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/{name}"
    put(resource_id, IDENTITY_API, {"location": "westeurope", "tags": tags})
    return resource_id


def group_request() -> dict[str, str]:
    return {"subscriptionId": SUBSCRIPTION, "resourceGroup": GROUP, "solutionId": "acme"}


def test_a_group_the_app_did_not_create_is_kept_without_a_delete(sim: SimulatorServer) -> None:
    put(GROUP_ID, RESOURCES_API_VERSION, {"location": "westeurope", "tags": {"owner": "me"}})
    answer = activity("begin_delete_resource_group")(group_request())
    operation = Operation.from_json(answer)
    assert operation.succeeded
    assert operation.kept == "the resource group was not created by this app"
    # The operation is the one shape every activity answers, in one key casing.
    assert "resourceId" in answer
    assert "resource_id" not in answer
    assert exists(GROUP_ID, RESOURCES_API_VERSION)


def test_a_group_still_holding_resources_is_kept(sim: SimulatorServer) -> None:
    put(GROUP_ID, RESOURCES_API_VERSION, {"location": "westeurope", "tags": OURS})
    identity("someone-elses-id", {})
    operation = Operation.from_json(activity("begin_delete_resource_group")(group_request()))
    assert operation.kept == "the resource group still holds 1 resources"
    assert exists(GROUP_ID, RESOURCES_API_VERSION)


def test_an_empty_group_of_ours_is_deleted_and_polled_to_its_end(sim: SimulatorServer) -> None:
    put(GROUP_ID, RESOURCES_API_VERSION, {"location": "westeurope", "tags": OURS})
    started = Operation.from_json(activity("begin_delete_resource_group")(group_request()))
    assert started.kept is None
    assert started.method == "DELETE"
    checked = activity("check_operations")(
        {"subscriptionId": SUBSCRIPTION, "solutionId": "acme", "operations": [started.to_json()]}
    )
    [done] = [Operation.from_json(item) for item in checked]
    assert done.succeeded
    assert not exists(GROUP_ID, RESOURCES_API_VERSION)


def test_a_group_already_gone_counts_as_deleted(sim: SimulatorServer) -> None:
    operation = Operation.from_json(activity("begin_delete_resource_group")(group_request()))
    assert operation.succeeded
    assert operation.kept == "already deleted"


def test_deleting_a_resource_that_is_gone_succeeds(sim: SimulatorServer) -> None:
    put(GROUP_ID, RESOURCES_API_VERSION, {"location": "westeurope"})
    gone = f"{GROUP_ID}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/gone"
    answer = activity("begin_delete_resource")(
        {"subscriptionId": SUBSCRIPTION, "resourceId": gone, "apiVersion": IDENTITY_API}
    )
    assert Operation.from_json(answer).succeeded


def test_only_resources_tagged_as_the_platforms_and_managed_by_the_app_are_listed(
    sim: SimulatorServer,
) -> None:
    put(GROUP_ID, RESOURCES_API_VERSION, {"location": "westeurope"})
    ours = identity("acme-dev-id", {**OURS, ENVIRONMENT_TAG: "dev"})
    # ARM compares tag names case-insensitively: so does the listing.
    shouting = identity("acme-test-id", {"MANAGEDBY": MANAGED_BY_VALUE, "OSSOLUTIONID": "acme"})
    identity("acme-copy-id", {SOLUTION_TAG: "acme"})  # not managed by the app
    identity("other-id", {**OURS, SOLUTION_TAG: "other"})
    answer = activity("list_platform_resources")(
        {"subscriptionId": SUBSCRIPTION, "resourceGroup": GROUP, "solutionId": "acme"}
    )
    found = sorted((FoundResource.from_json(item) for item in answer), key=lambda f: f.id)
    identity_type = "Microsoft.ManagedIdentity/userAssignedIdentities"
    assert [(f.id.lower(), f.type.lower(), f.environment) for f in found] == sorted(
        [
            (ours.lower(), identity_type.lower(), "dev"),
            (shouting.lower(), identity_type.lower(), ""),
        ]
    )


def test_listing_a_group_that_is_gone_lists_nothing(sim: SimulatorServer) -> None:
    answer = activity("list_platform_resources")(
        {"subscriptionId": SUBSCRIPTION, "resourceGroup": GROUP, "solutionId": "acme"}
    )
    assert answer == []

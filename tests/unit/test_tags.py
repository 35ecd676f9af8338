"""Ownership tags: one reading, the same for scaling, listing and teardown.

Oracle: Microsoft Learn, "Use tags to organize your Azure resources and management hierarchy"
(https://learn.microsoft.com/azure/azure-resource-manager/management/tag-resources, the
"Important" note near its top, read 2026-12-03): "Tag names are case-insensitive
for operations. A tag with a tag name, regardless of the casing, is updated or retrieved. [...]
Tag values are case-sensitive." So a scale set or group whose owner tag is spelled `ManagedBy`
carries the same tag as `managedBy`, while a value spelled `OutSystems-Azure-Ops` is not the
app's value.

The wire-level test runs the app's activities and its list route against the ARM simulator
(a fake ARM, not the oracle: the oracle is the page above, and the simulator only stores and
returns the tags as written).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import azure.functions as func
import pytest

from localdev.armsim.server import SimulatorServer
from localdev.armsim.testing import running_simulator
from outsystems.policy import POLICY_MAC_TAG, ScalingPolicy, policy_mac, policy_to_tags
from outsystems.policy import scaling_policy_key as policy_key
from outsystems.tags import (
    ENVIRONMENT_TAG,
    MANAGED_BY_TAG,
    MANAGED_BY_VALUE,
    SOLUTION_TAG,
    keep_foreign_tags,
    managed_solution,
    owned_by,
    tag_value,
)
from tests.support import armsim_bodies as bodies
from tests.support.armsim_clients import SUBSCRIPTION, Clients
from tests.support.functions import activity, client_function

SEED = "unit-test-seed"
GROUP = "acme-rg"
GROUP_ID = f"/subscriptions/{SUBSCRIPTION}/resourceGroups/{GROUP}"
VMSS = f"{GROUP_ID}/providers/Microsoft.Compute/virtualMachineScaleSets/acme-prod-vmss"


def test_tag_names_are_compared_case_insensitively_and_values_exactly() -> None:
    tags = {"ManagedBy": MANAGED_BY_VALUE, "OSSOLUTIONID": "acme", "osEnvironment": "prod"}
    assert tag_value(tags, MANAGED_BY_TAG) == MANAGED_BY_VALUE
    assert tag_value(tags, SOLUTION_TAG) == "acme"
    assert tag_value(tags, "absent") is None
    assert tag_value(None, SOLUTION_TAG) is None
    assert managed_solution(tags) == "acme"
    assert owned_by(tags, "acme")
    assert not owned_by(tags, "other")
    assert not owned_by(tags, "ACME")
    assert not owned_by({**tags, "ManagedBy": "OutSystems-Azure-Ops"}, "acme")
    assert not owned_by({"osSolutionId": "acme"}, "acme")
    assert managed_solution({MANAGED_BY_TAG: MANAGED_BY_VALUE, SOLUTION_TAG: ""}) is None


def test_foreign_tags_are_kept_and_ours_win_whatever_their_spelling() -> None:
    desired = {MANAGED_BY_TAG: MANAGED_BY_VALUE, SOLUTION_TAG: "acme"}
    live = {"costCenter": "42", "OSSOLUTIONID": "old", "managedby": "someone"}
    assert keep_foreign_tags(desired, live) == {"costCenter": "42", **desired}
    assert keep_foreign_tags(desired, None) == desired


@pytest.fixture(scope="module")
def simulator() -> Iterator[SimulatorServer]:
    with running_simulator() as sim:
        yield sim


@pytest.fixture
def arm(simulator: SimulatorServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[Clients]:
    """The simulator, emptied, as the app's ARM (`ARM_ENDPOINT`), and SDK clients to seed it."""
    from arm.client import connection, reset_connection

    simulator.reset()
    settings = {
        "AZURE_SUBSCRIPTION_ID": SUBSCRIPTION,
        "MANAGED_SUBSCRIPTION_IDS": "",
        "PLATFORM_KEY_SEED": SEED,
        "ARM_ENDPOINT": simulator.url,
    }
    for name, value in settings.items():
        monkeypatch.setenv(name, value)
    reset_connection()
    try:
        yield Clients(connection())
    finally:
        reset_connection()


class _NoOperations:
    """A Durable client that knows no instance (no platform has a last operation)."""

    async def get_status(self, instance_id: str, *args: Any, **kwargs: Any) -> None:
        return None


def _seed(clients: Clients, owner_name: str, owner_value: str) -> None:
    """A platform's group and its production scale set, tagged with this owner tag."""
    owner = {owner_name: owner_value, SOLUTION_TAG: "acme"}
    clients.resource.resource_groups.create_or_update(
        GROUP, {"location": bodies.LOCATION, "tags": owner}
    )
    vnet = clients.network.virtual_networks.begin_create_or_update(
        GROUP, "acme-vnet", bodies.vnet({"prod": "10.0.2.0/24"})
    ).result()
    tags = {
        **owner,
        ENVIRONMENT_TAG: "prod",
        **policy_to_tags(ScalingPolicy(min_capacity=2, max_capacity=8)),
    }
    # Signed as the app signs the tags it writes: the MAC itself is valid in every case.
    tags[POLICY_MAC_TAG] = policy_mac(policy_key(SEED), VMSS, tags)
    body = {**bodies.scale_set(vnet.subnets[0].id, 2), "tags": tags}
    clients.compute.virtual_machine_scale_sets.begin_create_or_update(
        GROUP, "acme-prod-vmss", body
    ).result()


def _listed_platforms() -> list[str]:
    request = func.HttpRequest("GET", "http://localhost/api/platforms", body=b"")
    response = asyncio.run(client_function("list_platforms")(request, _NoOperations()))
    assert response.status_code == 200
    return [p["solutionId"] for p in json.loads(response.get_body())["platforms"]]


@pytest.mark.parametrize(
    ("owner_name", "owner_value", "owned"),
    [
        (MANAGED_BY_TAG, MANAGED_BY_VALUE, True),
        ("ManagedBy", MANAGED_BY_VALUE, True),
        ("MANAGEDBY", MANAGED_BY_VALUE, True),
        # Another value is someone else's mark: the scaler used to accept it (it lower-cased
        # the value) while teardown and the list refused it.
        (MANAGED_BY_TAG, "OutSystems-Azure-Ops", False),
    ],
)
def test_scaling_listing_and_teardown_agree_on_ownership(
    arm: Clients, owner_name: str, owner_value: str, owned: bool
) -> None:
    _seed(arm, owner_name, owner_value)
    where = {"subscriptionId": SUBSCRIPTION, "resourceGroup": GROUP, "solutionId": "acme"}

    inspected = activity("inspect_scale_set")({"scaleSet": VMSS})
    listed = _listed_platforms()
    resources = activity("list_platform_resources")(where)
    group = activity("begin_delete_resource_group")(where)

    assert inspected["managed"] is owned
    assert ("acme" in listed) is owned
    assert (VMSS.lower() in {r["id"].lower() for r in resources}) is owned
    if owned:
        # Ours, so only what is still in it keeps it.
        assert group["kept"] == "the resource group still holds 2 resources"
    else:
        assert group["kept"] == "the resource group was not created by this app"

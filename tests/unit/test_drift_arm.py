"""The drift check's ARM adapter (`services.azure.AzurePlatformArm.platform_resources`) against
the ARM simulator on loopback, through the app's own connection, then the domain's choice of the
platform's resources among them.

Oracle: Resources - List By Resource Group as azure-mgmt-resource 26.0.0 (pinned in
requirements.txt) documents it from the REST specs (`azure/mgmt/resource/resources/operations/
_operations.py`, `ResourcesOperations.list_by_resource_group`): its `$filter` "When you filter by
a tag name and value, the tags for each resource are not returned in the results", so the adapter
lists the group unfiltered, with tags, and the app's tags decide; and a group that does not
exist is a 404 (`ResourceGroupNotFound`, Microsoft's "Resource Manager error codes"), which the
adapter reads as an empty group.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from localdev.armsim.server import SimulatorServer
from localdev.armsim.testing import running_simulator
from outsystems.drift import EXISTS, unknown_resources
from outsystems.resource_types import PUBLIC_IP, RESOURCE_GROUP, api_version
from outsystems.topology import ResourceGraph
from services.azure import AzurePlatformArm
from tests.support.arm_loopback import SUBSCRIPTION, app_on, put

GROUP = f"/subscriptions/{SUBSCRIPTION}/resourceGroups/acme-rg"
OURS = {"managedBy": "outsystems-azure-ops", "osSolutionId": "acme", "osEnvironment": "dev"}


@pytest.fixture(scope="module")
def simulator() -> Iterator[SimulatorServer]:
    with running_simulator(throttling=False) as sim:
        yield sim


@pytest.fixture
def sim(simulator: SimulatorServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[SimulatorServer]:
    with app_on(simulator, monkeypatch) as running:
        yield running


def _public_ip(name: str, tags: dict[str, str]) -> str:
    resource_id = f"{GROUP}/providers/Microsoft.Network/publicIPAddresses/{name}"
    put(
        resource_id,
        api_version(PUBLIC_IP),
        {
            "location": "westeurope",
            "tags": tags,
            "sku": {"name": "Standard"},
            "properties": {"publicIPAllocationMethod": "Static"},
        },
    )
    return resource_id


def test_only_the_resources_carrying_the_platforms_tags_count_as_its_own(
    sim: SimulatorServer,
) -> None:
    put(GROUP, api_version(RESOURCE_GROUP), {"location": "westeurope", "tags": OURS})
    ours = _public_ip("acme-pip", OURS)
    _public_ip("other-pip", {**OURS, "osSolutionId": "other"})
    _public_ip("plain-pip", {})
    listed = AzurePlatformArm().platform_resources(SUBSCRIPTION, "acme-rg", "acme")
    assert all("tags" in r for r in listed)
    graph = ResourceGraph.of([])
    stray = unknown_resources(graph, listed, "acme")
    assert [(d.resource_id.lower(), d.path, d.expected, d.actual) for d in stray] == [
        (ours.lower(), "", None, EXISTS)
    ]


def test_a_group_that_is_gone_holds_nothing(sim: SimulatorServer) -> None:
    assert AzurePlatformArm().platform_resources(SUBSCRIPTION, "no-such-rg", "acme") == []

"""A spec is checked against what already exists in Azure before anything is created (13.5, 12).

`resourceGroup` may not name a group that is not this platform's; `network.existingSubnetIds`
must name subnets that exist, inside `ALLOWED_VNET_IDS` when that is set, and the environments'
subnets need the `Microsoft.Sql` service endpoint (a SQL virtual network rule on a subnet
without it is refused by Azure: https://learn.microsoft.com/azure/azure-sql/database/vnet-service-endpoint-rule-overview)
and an outbound path (a private subnet, `defaultOutboundAccess: false`, has none without a NAT
gateway or a route through a firewall:
https://learn.microsoft.com/azure/virtual-network/ip-services/default-outbound-access).
Refusals are 400s naming the field, at PUT and at plan time, and nothing is written to ARM. A
group the platform may use keeps the tags its owner put on it.

The user's network is written into the ARM simulator the way a user would create it (ARM's
bodies: a NAT gateway, a route table, a VNet with inline subnets).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests

from localdev.armsim.server import SimulatorServer
from outsystems.names import ENVIRONMENTS
from tests.support.azurite import Azurite
from tests.support.examples import sample
from tests.support.stack import SUBSCRIPTION, Stack, running_stack

NET_RG = f"/subscriptions/{SUBSCRIPTION}/resourceGroups/net-rg"
NET = f"{NET_RG}/providers/Microsoft.Network"
VNET = f"{NET}/virtualNetworks/spoke"
OTHER_VNET = f"{NET}/virtualNetworks/hub"
NAT = f"{NET}/natGateways/spoke-nat"
FIREWALL_ROUTES = f"{NET}/routeTables/to-firewall"
NETWORK_API = "2026-03-01"
GROUP_API = "2025-04-01"
KEYS = (*ENVIRONMENTS, "gateway")


def arm_put(resource_id: str, body: dict[str, Any], api_version: str = NETWORK_API) -> None:
    from azure.core.rest import HttpRequest

    from arm.client import sender

    request = HttpRequest("PUT", f"{resource_id}?api-version={api_version}", json=body)
    response = sender(SUBSCRIPTION).send_request(request)
    assert response.status_code in {200, 201}, response.text()


def user_subnet(name: str, prefix: str, **properties: Any) -> dict[str, Any]:
    return {"name": name, "properties": {"addressPrefix": prefix, **properties}}


SQL = {"serviceEndpoints": [{"service": "Microsoft.Sql", "locations": ["westeurope"]}]}
PRIVATE = {"defaultOutboundAccess": False}


def user_network(subnets: list[dict[str, Any]]) -> None:
    """The user's own network in net-rg: a NAT gateway, a route table to a firewall, a VNet."""
    arm_put(NET_RG, {"location": "westeurope"}, GROUP_API)
    arm_put(NAT, {"location": "westeurope", "sku": {"name": "Standard"}})
    route = {"addressPrefix": "0.0.0.0/0", "nextHopType": "VirtualAppliance"}
    arm_put(
        FIREWALL_ROUTES,
        {
            "location": "westeurope",
            "properties": {
                "routes": [
                    {"name": "default", "properties": {**route, "nextHopIpAddress": "10.9.0.4"}}
                ]
            },
        },
    )
    arm_put(
        VNET,
        {
            "location": "westeurope",
            "properties": {
                "addressSpace": {"addressPrefixes": ["10.1.0.0/16"]},
                "subnets": subnets,
            },
        },
    )


def good_subnets() -> list[dict[str, Any]]:
    """Fit for OutSystems: each environment subnet has the SQL endpoint and a way out."""
    return [
        user_subnet("dev", "10.1.1.0/24", **SQL, **PRIVATE, natGateway={"id": NAT}),
        user_subnet("test", "10.1.2.0/24", **SQL, **PRIVATE, natGateway={"id": NAT}),
        user_subnet("prod", "10.1.3.0/24", **SQL, **PRIVATE, routeTable={"id": FIREWALL_ROUTES}),
        user_subnet("life", "10.1.4.0/24", **SQL),  # default outbound access
        user_subnet("gateway", "10.1.5.0/24"),
    ]


def byo_spec() -> dict[str, Any]:
    spec = sample("spec-standalone.json")
    spec["network"] = {"existingSubnetIds": {key: f"{VNET}/subnets/{key}" for key in KEYS}}
    return spec


def arm_writes(sim: SimulatorServer, since: int) -> list[str]:
    return [r["path"] for r in sim.requests()[since:] if r["method"] in {"PUT", "PATCH", "DELETE"}]


def refused(response: requests.Response) -> dict[str, str]:
    """The 400's details by target."""
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == "PreflightFailed"
    return {d["target"]: d["message"] for d in error["details"]}


def assert_nothing_started(stack: Stack, since: int, solution_id: str = "acme") -> None:
    assert arm_writes(stack.sim, since) == []
    assert stack.api("GET", f"platforms/{solution_id}").status_code == 404


def put_and_plan(stack: Stack, spec: dict[str, Any]) -> list[requests.Response]:
    return [
        stack.api("PUT", "platforms/acme", json=spec),
        stack.api("POST", "platforms/acme/plan", json=spec),
    ]


def test_subnets_fit_for_outsystems_are_accepted(stack: Stack) -> None:
    user_network(good_subnets())
    plan = stack.api("POST", "platforms/acme/plan", json=byo_spec())
    assert plan.status_code == 200, plan.text
    assert not any("/virtualnetworks/" in r["id"].lower() for r in plan.json()["resources"])


def test_subnets_without_endpoint_or_way_out_or_existence_are_refused(stack: Stack) -> None:
    subnets = good_subnets()
    subnets[0] = user_subnet("dev", "10.1.1.0/24", **PRIVATE, natGateway={"id": NAT})
    subnets[1] = user_subnet("test", "10.1.2.0/24", **SQL, **PRIVATE)
    del subnets[3]  # life
    user_network(subnets)
    since = len(stack.sim.requests())

    for response in put_and_plan(stack, byo_spec()):
        details = refused(response)
        assert set(details) == {
            "network.existingSubnetIds.dev",
            "network.existingSubnetIds.test",
            "network.existingSubnetIds.life",
        }
        assert "Microsoft.Sql service endpoint" in details["network.existingSubnetIds.dev"]
        assert "no outbound path" in details["network.existingSubnetIds.test"]
        assert "does not exist" in details["network.existingSubnetIds.life"]
    assert_nothing_started(stack, since)


@pytest.fixture
def fenced(sim: SimulatorServer, azurite: Azurite) -> Iterator[Stack]:
    """The app with an allow-list naming another VNet than the user's subnets are in."""
    azurite.drain("platform-events")
    with running_stack(sim, azurite, ALLOWED_VNET_IDS=f" {OTHER_VNET} , ") as stack:
        yield stack


def test_subnets_outside_the_allowed_vnets_are_refused_unread(fenced: Stack) -> None:
    user_network(good_subnets())
    since = len(fenced.sim.requests())

    for response in put_and_plan(fenced, byo_spec()):
        details = refused(response)
        assert set(details) == {f"network.existingSubnetIds.{key}" for key in KEYS}
        assert all("ALLOWED_VNET_IDS" in message for message in details.values())
    assert not any("/subnets/" in r["path"] for r in fenced.sim.requests()[since:])
    assert_nothing_started(fenced, since)


def test_subnets_inside_the_allowed_vnets_pass(sim: SimulatorServer, azurite: Azurite) -> None:
    with running_stack(sim, azurite, ALLOWED_VNET_IDS=f"{OTHER_VNET},{VNET.upper()}") as stack:
        user_network(good_subnets())
        plan = stack.api("POST", "platforms/acme/plan", json=byo_spec())
        assert plan.status_code == 200, plan.text


@pytest.mark.parametrize(
    "tags",
    [
        None,
        {"owner": "network team"},
        {"managedBy": "outsystems-azure-ops", "osSolutionId": "beta"},
    ],
)
def test_a_group_that_is_not_this_platforms_is_refused(
    stack: Stack, tags: dict[str, str] | None
) -> None:
    group = f"/subscriptions/{SUBSCRIPTION}/resourceGroups/shared-rg"
    arm_put(group, {"location": "westeurope", **({"tags": tags} if tags else {})}, GROUP_API)
    since = len(stack.sim.requests())
    spec = {**sample("spec-standalone.json"), "resourceGroup": "shared-rg"}

    for response in put_and_plan(stack, spec):
        details = refused(response)
        assert list(details) == ["resourceGroup"]
        assert "shared-rg exists and is not this platform's" in details["resourceGroup"]
    assert_nothing_started(stack, since)
    (live,) = [r for r in stack.sim.resources() if r["id"].lower() == group.lower()]
    assert live["body"].get("tags") in (None, {}, tags)


def test_a_group_its_owner_tagged_for_the_platform_keeps_their_tags(stack: Stack) -> None:
    group = f"/subscriptions/{SUBSCRIPTION}/resourceGroups/acme-rg"
    owners = {"managedBy": "outsystems-azure-ops", "osSolutionId": "acme", "CostCenter": "4711"}
    spec = sample("spec-standalone.json")
    arm_put(group, {"location": spec["location"], "tags": owners}, GROUP_API)

    assert stack.deploy("acme", spec).status_code == 202
    state = stack.wait("acme")

    assert state["status"] == "Succeeded", state
    (live,) = [r for r in stack.sim.resources() if r["id"].lower() == group.lower()]
    tags = live["body"]["tags"]
    assert tags["CostCenter"] == "4711", "a tag the app did not write is never overwritten"
    assert tags["osSolutionId"] == "acme"


def test_a_group_in_another_region_than_the_spec_says_is_refused(stack: Stack) -> None:
    """ARM refuses to PUT an existing group with another location (InvalidResourceGroupLocation):
    said at once, naming the field, rather than as every environment's failure."""
    group = f"/subscriptions/{SUBSCRIPTION}/resourceGroups/acme-rg"
    owners = {"managedBy": "outsystems-azure-ops", "osSolutionId": "acme"}
    arm_put(group, {"location": "westeurope", "tags": owners}, GROUP_API)
    since = len(stack.sim.requests())
    spec = {**sample("spec-standalone.json"), "location": "northeurope"}

    for response in put_and_plan(stack, spec):
        details = refused(response)
        assert list(details) == ["location"]
        assert "westeurope" in details["location"]
    assert_nothing_started(stack, since)

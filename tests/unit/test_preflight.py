"""The rules that compare a spec with what already exists in Azure (issue 13.5), pure.

Subnet and route table bodies are built with the published Azure SDK's models
(azure-mgmt-network 33.1.0, generated from Microsoft.Network's REST specification) and
serialized as ARM sends them, so the field names and shapes the rules read are ARM's, not ours.
What the rules decide follows Microsoft's docs: a private subnet (`defaultOutboundAccess`
false) gives its VMs no outbound access unless something explicit does (a NAT gateway, or a
firewall the traffic is routed through): "Default outbound access in Azure",
https://learn.microsoft.com/azure/virtual-network/ip-services/default-outbound-access; a SQL
virtual network rule needs the `Microsoft.Sql` service endpoint on its subnet:
https://learn.microsoft.com/azure/azure-sql/database/vnet-service-endpoint-rule-overview.
"""

from __future__ import annotations

from typing import Any

import pytest
from azure.mgmt.network import models as network

from outsystems.preflight import (
    PreflightError,
    Read,
    allowed_vnet_problems,
    raise_problems,
    resource_group_problems,
    route_table_ids,
    subnet_problems,
    vnet_of,
)
from outsystems.spec import parse_spec
from outsystems.tags import keep_foreign_tags

SUB = "11111111-2222-3333-4444-555555555555"
NET = f"/subscriptions/{SUB}/resourceGroups/net-rg/providers/Microsoft.Network"
VNET = f"{NET}/virtualNetworks/spoke"
NAT = f"{NET}/natGateways/spoke-nat"
TABLE = f"{NET}/routeTables/to-firewall"
KEYS = ("dev", "test", "prod", "life", "gateway")


def spec_with_subnets(**overrides: Any) -> Any:
    subnets = {key: f"{VNET}/subnets/{key}" for key in KEYS}
    body = {"location": "westeurope", "network": {"existingSubnetIds": subnets}, **overrides}
    return parse_spec("acme", body, default_subscription_id=SUB)


def subnet(
    *,
    sql: bool = True,
    nat: bool = True,
    default_outbound: bool | None = False,
    route_table: str | None = None,
) -> Read:
    """A subnet as ARM answers a GET of it (SDK model, serialized)."""
    properties = network.SubnetPropertiesFormat(
        address_prefix="10.1.0.0/24",
        service_endpoints=(
            [network.ServiceEndpointPropertiesFormat(service="Microsoft.Sql", locations=["*"])]
            if sql
            else [network.ServiceEndpointPropertiesFormat(service="Microsoft.Storage")]
        ),
        nat_gateway=network.SubResource(id=NAT) if nat else None,
        default_outbound_access=default_outbound,
        route_table=network.RouteTable(id=route_table) if route_table else None,
    )
    return Read(network.Subnet(name="x", properties=properties).as_dict())


def route_table(next_hop: str, prefix: str = "0.0.0.0/0") -> Read:
    route = network.Route(
        name="default",
        properties=network.RoutePropertiesFormat(
            address_prefix=prefix, next_hop_type=next_hop, next_hop_ip_address="10.9.0.4"
        ),
    )
    body = network.RouteTable(
        location="westeurope", properties=network.RouteTablePropertiesFormat(routes=[route])
    )
    return Read(body.as_dict())


def all_good(**changed: Read) -> dict[str, Read]:
    return {**{key: subnet() for key in KEYS}, **changed}


def targets(problems: list[Any]) -> list[str]:
    return [problem.target for problem in problems]


# --- subnets ---------------------------------------------------------------------------------


def test_subnets_with_the_endpoint_and_a_nat_gateway_pass() -> None:
    assert subnet_problems(spec_with_subnets(), all_good(), {}) == []


def test_a_subnet_without_the_sql_endpoint_is_named() -> None:
    problems = subnet_problems(spec_with_subnets(), all_good(dev=subnet(sql=False)), {})
    assert targets(problems) == ["network.existingSubnetIds.dev"]
    assert "Microsoft.Sql service endpoint" in problems[0].message


def test_a_private_subnet_without_nat_gateway_has_no_outbound_path() -> None:
    problems = subnet_problems(
        spec_with_subnets(), all_good(test=subnet(nat=False, default_outbound=False)), {}
    )
    assert targets(problems) == ["network.existingSubnetIds.test"]
    assert "no outbound path" in problems[0].message
    assert "defaultOutboundAccess is false" in problems[0].message


@pytest.mark.parametrize("default_outbound", [True, None])
def test_a_subnet_that_keeps_default_outbound_access_has_a_path(
    default_outbound: bool | None,
) -> None:
    """Default outbound access is what a subnet has unless it is private (the property false)."""
    reads = all_good(prod=subnet(nat=False, default_outbound=default_outbound))
    assert subnet_problems(spec_with_subnets(), reads, {}) == []


@pytest.mark.parametrize(
    ("next_hop", "prefix", "ok"),
    [
        ("VirtualAppliance", "0.0.0.0/0", True),
        ("VirtualNetworkGateway", "0.0.0.0/0", True),
        ("Internet", "0.0.0.0/0", False),
        ("None", "0.0.0.0/0", False),
        ("VirtualAppliance", "10.0.0.0/8", False),
    ],
)
def test_a_private_subnet_routed_through_a_firewall_has_a_path(
    next_hop: str, prefix: str, ok: bool
) -> None:
    reads = all_good(life=subnet(nat=False, route_table=TABLE))
    assert route_table_ids(reads) == [TABLE]
    problems = subnet_problems(spec_with_subnets(), reads, {TABLE: route_table(next_hop, prefix)})
    assert (problems == []) is ok, problems


def test_a_route_table_the_app_cannot_read_is_said_so() -> None:
    reads = all_good(life=subnet(nat=False, route_table=TABLE))
    problems = subnet_problems(
        spec_with_subnets(), reads, {TABLE: Read(error="AuthorizationFailed: no read access")}
    )
    assert targets(problems) == ["network.existingSubnetIds.life"]
    assert "AuthorizationFailed" in problems[0].message


def test_missing_and_unreadable_subnets_are_named() -> None:
    reads = all_good(life=Read(), gateway=Read(error="AuthorizationFailed: denied"))
    problems = subnet_problems(spec_with_subnets(), reads, {})
    assert targets(problems) == [
        "network.existingSubnetIds.life",
        "network.existingSubnetIds.gateway",
    ]
    assert "does not exist" in problems[0].message
    assert "cannot read" in problems[1].message


def test_the_gateway_subnet_needs_neither_endpoint_nor_outbound_path() -> None:
    reads = all_good(gateway=subnet(sql=False, nat=False, default_outbound=False))
    assert subnet_problems(spec_with_subnets(), reads, {}) == []


def test_a_new_vnet_has_no_subnets_to_check() -> None:
    spec = parse_spec("acme", {"location": "westeurope"}, default_subscription_id=SUB)
    assert subnet_problems(spec, {}, {}) == []
    assert allowed_vnet_problems(spec, [f"{NET}/virtualNetworks/other"]) == []


# --- allowed VNets ---------------------------------------------------------------------------


def test_subnets_outside_the_allowed_vnets_are_named() -> None:
    spec = spec_with_subnets()
    assert vnet_of(f"{VNET}/subnets/dev") == VNET
    assert allowed_vnet_problems(spec, []) == []
    assert allowed_vnet_problems(spec, [VNET.upper() + "/"]) == []
    problems = allowed_vnet_problems(spec, [f"{NET}/virtualNetworks/other"])
    assert targets(problems) == [f"network.existingSubnetIds.{key}" for key in KEYS]
    assert "ALLOWED_VNET_IDS" in problems[0].message


# --- the resource group ----------------------------------------------------------------------


def group(tags: dict[str, str] | None) -> Read:
    return Read({"name": "acme-rg", "location": "westeurope", "tags": tags})


@pytest.mark.parametrize(
    ("read", "ok"),
    [
        (Read(), True),  # created by the app
        (group({"managedBy": "outsystems-azure-ops", "osSolutionId": "acme"}), True),
        (group({"MANAGEDBY": "outsystems-azure-ops", "ossolutionid": "acme", "cost": "1"}), True),
        (group(None), False),
        (group({"owner": "network team"}), False),
        (group({"managedBy": "outsystems-azure-ops", "osSolutionId": "beta"}), False),
        (group({"managedBy": "someone-else", "osSolutionId": "acme"}), False),
        (group({"osSolutionId": "acme"}), False),
        (Read(error="AuthorizationFailed: denied"), False),
    ],
)
def test_an_existing_group_must_be_tagged_for_this_platform(read: Read, ok: bool) -> None:
    spec = parse_spec("acme", {"location": "westeurope"}, default_subscription_id=SUB)
    problems = resource_group_problems(spec, read)
    assert (problems == []) is ok, problems
    assert all(p.target == "resourceGroup" for p in problems)


def test_problems_become_one_400_with_every_field() -> None:
    raise_problems([])
    with pytest.raises(PreflightError) as caught:
        raise_problems(subnet_problems(spec_with_subnets(), all_good(dev=Read(), test=Read()), {}))
    envelope = caught.value.to_envelope()["error"]
    assert isinstance(envelope, dict)
    assert envelope["code"] == "PreflightFailed"
    assert [d["target"] for d in envelope["details"]] == [
        "network.existingSubnetIds.dev",
        "network.existingSubnetIds.test",
    ]


# --- tags of a shared group ------------------------------------------------------------------


def test_foreign_tags_are_kept_and_ours_win() -> None:
    desired = {"managedBy": "outsystems-azure-ops", "osSolutionId": "acme", "team": "apps"}
    live = {"CostCenter": "42", "TEAM": "old", "managedby": "outsystems-azure-ops"}
    assert keep_foreign_tags(desired, live) == {"CostCenter": "42", **desired}
    assert keep_foreign_tags(desired, None) == desired


def test_a_group_of_the_platform_in_another_region_is_named_by_location() -> None:
    """ARM refuses a PUT of an existing group with another location."""
    spec = parse_spec("acme", {"location": "northeurope"}, default_subscription_id=SUB)
    ours = {"managedBy": "outsystems-azure-ops", "osSolutionId": "acme"}
    problems = resource_group_problems(spec, group(ours))
    assert targets(problems) == ["location"]
    assert "westeurope" in problems[0].message
    # ARM writes locations its own way ("West Europe" is westeurope).
    live = Read({"name": "acme-rg", "location": "North Europe", "tags": ours})
    assert resource_group_problems(spec, live) == []

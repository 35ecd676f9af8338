"""Outbound access: the spec's `network.outbound` and the NAT gateway the topology builds for it.

Oracles (MicrosoftDocs/azure-docs):
- `articles/virtual-network/ip-services/default-outbound-access.md` @
  76cb79f7ce67946149da36b069ebec8e87325d95 (ms.date 01/30/2026): subnets of VNets created with
  API version 2025-07-01 or later are private (`defaultOutboundAccess: false`); a NAT gateway
  on the subnet is the recommended explicit outbound method.
- `articles/nat-gateway/nat-overview.md` @ 012ad308577ca7a4bcf96132a0e71b2819fa4a98: a NAT
  gateway is attached per subnet, "is compatible with standard SKU public IP addresses", and
  takes precedence over instance-level public IPs.
- `articles/application-gateway/configuration-infrastructure.md` @
  40e1d77530b5902e75e9deff6b764ccd37bbde57: the gateway's subnet is dedicated to it, its
  management traffic must go "directly to the internet", and it has its own public frontend;
  so the NAT gateway stays off that subnet.
"""

from __future__ import annotations

from typing import Any

import pytest

from outsystems.errors import SpecError
from outsystems.names import ENVIRONMENTS
from outsystems.resource_types import (
    APP_GATEWAY,
    BASTION_HOST,
    NAT_GATEWAY,
    NIC,
    PUBLIC_IP,
    SCALE_SET,
    VNET,
)
from outsystems.spec import PlatformSpec, parse_spec
from outsystems.teardown import rank
from outsystems.topology import build_topology

SUB = "11111111-2222-3333-4444-555555555555"
EXISTING = {
    key: f"/subscriptions/{SUB}/resourceGroups/net-rg/providers/Microsoft.Network/"
    f"virtualNetworks/corp-vnet/subnets/{key}"
    for key in ("dev", "test", "prod", "life", "gateway")
}


def spec_of(body: dict[str, Any]) -> PlatformSpec:
    return parse_spec("acme", {"location": "westeurope", **body}, default_subscription_id=SUB)


def problems(body: dict[str, Any]) -> dict[str, str]:
    with pytest.raises(SpecError) as caught:
        spec_of(body)
    return {d.target: d.message for d in caught.value.details}


# --- the spec -----------------------------------------------------------------------------------


def test_a_new_vnet_gets_a_nat_gateway_by_default() -> None:
    spec = spec_of({})
    assert spec.to_json_dict()["network"] == {
        "addressSpace": "10.0.0.0/16",
        "outbound": "natGateway",
    }


def test_existing_subnets_bring_their_own_outbound_by_default() -> None:
    network = spec_of({"network": {"existingSubnetIds": EXISTING}}).to_json_dict()["network"]
    assert network["outbound"] == "existing"


def test_a_nat_gateway_cannot_be_added_to_subnets_the_app_does_not_own() -> None:
    found = problems({"network": {"existingSubnetIds": EXISTING, "outbound": "natGateway"}})
    assert "NAT gateway" in found["network.outbound"]
    assert "'existing'" in found["network.outbound"]


def test_a_new_vnet_has_no_outbound_of_its_own() -> None:
    # Its subnets are private: without the NAT gateway the setup's downloads cannot work.
    found = problems({"network": {"addressSpace": "10.0.0.0/16", "outbound": "existing"}})
    assert "natGateway" in found["network.outbound"]


def test_an_unknown_outbound_is_refused() -> None:
    found = problems({"network": {"outbound": "firewall"}})
    assert "natGateway" in found["network.outbound"]


# --- the topology -------------------------------------------------------------------------------


def test_the_nat_gateway_and_its_public_ip() -> None:
    graph = build_topology(spec_of({}))
    gateway = graph.get(
        f"/subscriptions/{SUB}/resourceGroups/acme-rg/providers/{NAT_GATEWAY}/acme-natgw"
    )
    assert gateway.environment == "shared"
    assert gateway.body["sku"] == {"name": "Standard"}
    (address,) = gateway.body["properties"]["publicIpAddresses"]
    public_ip = graph.get(address["id"])
    assert public_ip.type == PUBLIC_IP
    assert public_ip.name == "acme-natgw-pip"
    assert public_ip.body["sku"]["name"] == "Standard"
    assert public_ip.body["properties"]["publicIPAllocationMethod"] == "Static"
    assert public_ip.id in gateway.depends_on


def test_the_environment_subnets_use_the_nat_gateway_and_are_private() -> None:
    graph = build_topology(spec_of({"bastion": True}))
    (vnet,) = [r for r in graph if r.type == VNET]
    subnets = {s["name"]: s["properties"] for s in vnet.body["properties"]["subnets"]}
    nat = next(r for r in graph if r.type == NAT_GATEWAY)
    assert nat.id in vnet.depends_on
    for env in ENVIRONMENTS:
        assert subnets[f"acme-{env}-subnet"]["natGateway"] == {"id": nat.id}
        assert subnets[f"acme-{env}-subnet"]["defaultOutboundAccess"] is False
    # The gateway's and Bastion's subnets leave through their own public frontends.
    assert "natGateway" not in subnets["acme-appgw-subnet"]
    assert "natGateway" not in subnets["AzureBastionSubnet"]


def test_no_nat_gateway_in_the_users_subnets() -> None:
    graph = build_topology(spec_of({"network": {"existingSubnetIds": EXISTING}}))
    assert not [r for r in graph if r.type == NAT_GATEWAY]


@pytest.mark.parametrize("body", [{}, {"environments": {"prod": {"mode": "standalone"}}}])
def test_servers_keep_no_public_ip(body: dict[str, Any]) -> None:
    graph = build_topology(spec_of(body))
    for nic in (r for r in graph if r.type == NIC):
        for config in nic.body["properties"]["ipConfigurations"]:
            assert "publicIPAddress" not in config["properties"]
    for scale_set in (r for r in graph if r.type == SCALE_SET):
        profile = scale_set.body["properties"]["virtualMachineProfile"]["networkProfile"]
        for nic_config in profile["networkInterfaceConfigurations"]:
            for config in nic_config["properties"]["ipConfigurations"]:
                assert "publicIPAddressConfiguration" not in config["properties"]


def test_teardown_deletes_the_nat_gateway_after_its_subnets_and_before_its_public_ip() -> None:
    # ARM refuses to delete a resource another still references (the simulator does too).
    assert rank(VNET) < rank(NAT_GATEWAY) < rank(PUBLIC_IP)
    assert rank(APP_GATEWAY) < rank(PUBLIC_IP)
    assert rank(BASTION_HOST) < rank(PUBLIC_IP)

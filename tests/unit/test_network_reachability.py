"""The network view against Microsoft's documented behaviour of NSGs, outbound access and SQL.

Oracles (MicrosoftDocs/azure-docs unless said otherwise):
- HOW = `articles/virtual-network/network-security-group-how-it-works.md` @
  0b167e76f7dc8ae9663b3da7293949e31f6c95a3 (its VM1-VM4 example, port 80 from the Internet)
- DOA = `articles/virtual-network/ip-services/default-outbound-access.md` @
  76cb79f7ce67946149da36b069ebec8e87325d95 (ms.date 01/30/2026)
- NAT = `articles/nat-gateway/nat-overview.md` @ 012ad308577ca7a4bcf96132a0e71b2819fa4a98
- SQLFW = MicrosoftDocs/sql-docs `azure-sql/database/firewall-configure.md` @
  0b3427f737634bddce2d9c99ea1799526db547ae
- SQLVNET = MicrosoftDocs/sql-docs `azure-sql/database/vnet-service-endpoint-rule-overview.md` @
  07cabaeab86d38dcb28d3b57be15ab3a22a3f84e
"""

from __future__ import annotations

from typing import Any

import pytest

from outsystems.network.reachability import Endpoint, NetworkView

RG = "/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/rg/providers"
VNET_ID = f"{RG}/Microsoft.Network/virtualNetworks/vnet1"


def nsg(name: str, *rules: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": f"{RG}/Microsoft.Network/networkSecurityGroups/{name}",
        "type": "Microsoft.Network/networkSecurityGroups",
        "name": name,
        "properties": {"securityRules": list(rules)},
    }


def allow(name: str, priority: int, port: str, *, source: str = "*", direction: str = "Inbound",
          destination: str = "*", access: str = "Allow") -> dict[str, Any]:  # fmt: skip
    return {
        "name": name,
        "properties": {
            "priority": priority,
            "direction": direction,
            "access": access,
            "protocol": "Tcp",
            "sourceAddressPrefix": source,
            "sourcePortRange": "*",
            "destinationAddressPrefix": destination,
            "destinationPortRange": port,
        },
    }


def ref(kind: str, name: str) -> dict[str, str]:
    return {"id": f"{RG}/Microsoft.Network/{kind}/{name}"}


def subnet(name: str, prefix: str, **properties: Any) -> dict[str, Any]:
    return {"name": name, "properties": {"addressPrefix": prefix, **properties}}


def vnet(*subnets: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": VNET_ID,
        "type": "Microsoft.Network/virtualNetworks",
        "properties": {
            "addressSpace": {"addressPrefixes": ["10.0.0.0/16"]},
            "subnets": list(subnets),
        },
    }


def nic(name: str, subnet_name: str, ip: str, **properties: Any) -> dict[str, Any]:
    config: dict[str, Any] = {
        "subnet": {"id": f"{VNET_ID}/subnets/{subnet_name}"},
        "privateIPAddress": ip,
    }
    if "publicIPAddress" in properties:
        config["publicIPAddress"] = properties.pop("publicIPAddress")
    return {
        "id": f"{RG}/Microsoft.Network/networkInterfaces/{name}",
        "type": "Microsoft.Network/networkInterfaces",
        "properties": {"ipConfigurations": [{"name": "ip", "properties": config}], **properties},
    }


# --- HOW: subnet and NIC NSGs -----------------------------------------------------------------


@pytest.fixture
def how_it_works() -> NetworkView:
    """HOW's picture: NSG1 on Subnet1, NSG2 on VM1's and VM3's NICs, nothing on Subnet3/VM4."""
    http = allow("allow-http", 100, "80", source="Internet")
    nsg1, nsg2 = ref("networkSecurityGroups", "NSG1"), ref("networkSecurityGroups", "NSG2")
    return NetworkView.from_bodies(
        [
            vnet(
                subnet("Subnet1", "10.0.1.0/24", networkSecurityGroup=nsg1),
                subnet("Subnet2", "10.0.2.0/24"),
                subnet("Subnet3", "10.0.3.0/24"),
            ),
            nsg("NSG1", http),
            nsg("NSG2"),
            nic("vm1", "Subnet1", "10.0.1.4", networkSecurityGroup=nsg2,
                publicIPAddress=ref("publicIPAddresses", "vm1-ip")),
            nic("vm2", "Subnet1", "10.0.1.5", publicIPAddress=ref("publicIPAddresses", "vm2-ip")),
            nic("vm3", "Subnet2", "10.0.2.4", networkSecurityGroup=nsg2,
                publicIPAddress=ref("publicIPAddresses", "vm3-ip")),
            nic("vm4", "Subnet3", "10.0.3.4", publicIPAddress=ref("publicIPAddresses", "vm4-ip")),
        ]
    )  # fmt: skip


def test_inbound_the_subnet_nsg_then_the_nic_nsg(how_it_works: NetworkView) -> None:
    internet = Endpoint.internet()
    # "VM1: ... If NSG1 has a security rule that allows port 80, the traffic is then processed
    # by NSG2. To allow port 80 to the virtual machine, both NSG1 and NSG2 must have a rule".
    vm1 = how_it_works.flow(internet, Endpoint.address("10.0.1.4"), 80)
    assert (vm1.allowed, vm1.rule, vm1.nsg) == (False, "DenyAllInbound", "NSG2")
    # "VM2: ... it receives all traffic allowed through NSG1".
    vm2 = how_it_works.flow(internet, Endpoint.address("10.0.1.5"), 80)
    assert (vm2.allowed, vm2.rule, vm2.nsg) == (True, "allow-http", "NSG1")
    assert not how_it_works.flow(internet, Endpoint.address("10.0.1.5"), 81).allowed
    # "VM3: Since there's no NSG associated to Subnet2, traffic is allowed into the subnet and
    # processed by NSG2".
    vm3 = how_it_works.flow(internet, Endpoint.address("10.0.2.4"), 80)
    assert (vm3.allowed, vm3.nsg) == (False, "NSG2")
    # "VM4: Traffic is allowed ... because a network security group isn't associated to Subnet3,
    # or the network interface".
    assert how_it_works.flow(internet, Endpoint.address("10.0.3.4"), 80).allowed


def test_outbound_the_nic_nsg_then_the_subnet_nsg(how_it_works: NetworkView) -> None:
    # "VM1: ... the traffic is allowed by the AllowInternetOutbound default security rule in
    # both NSG1 and NSG2"; "VM4: All network traffic is allowed from VM4".
    # (Each VM has its own public IP, its explicit outbound method.)
    web = Endpoint.internet("www.example.com")
    vm1 = how_it_works.flow(Endpoint.address("10.0.1.4"), web, 80)
    assert (vm1.allowed, vm1.rule, vm1.nsg) == (True, "AllowInternetOutBound", "NSG1")
    assert how_it_works.flow(Endpoint.address("10.0.3.4"), web, 80).allowed


def test_intra_subnet_traffic_is_filtered_too(how_it_works: NetworkView) -> None:
    # HOW: "This includes intra-subnet traffic as well."; "By default, virtual machines in the
    # same subnet can communicate based on a default NSG rule".
    verdict = how_it_works.flow(Endpoint.address("10.0.1.5"), Endpoint.address("10.0.1.4"), 12000)
    assert (verdict.allowed, verdict.rule) == (True, "AllowVNetInBound")


def test_without_a_public_address_nothing_comes_in_from_the_internet() -> None:
    # A private VM is reached from the Internet only through something public (NSG overview:
    # "For inbound traffic, NSGs process traffic after Azure translates public IP addresses").
    view = NetworkView.from_bodies([vnet(subnet("s", "10.0.1.0/24")), nic("vm", "s", "10.0.1.4")])
    verdict = view.flow(Endpoint.internet(), Endpoint.address("10.0.1.4"), 3389)
    assert (verdict.allowed, verdict.rule) == (False, "NoPublicAddress")


# --- DOA and NAT: outbound Internet -----------------------------------------------------------


def outbound(subnet_properties: dict[str, Any], *extra: dict[str, Any], **options: Any) -> Any:
    view = NetworkView.from_bodies(
        [vnet(subnet("s", "10.0.1.0/24", **subnet_properties)), *extra], **options
    )
    return view.outbound_internet(f"{VNET_ID}/subnets/s")


def nat_gateway(*public_ips: str) -> dict[str, Any]:
    return {
        "id": f"{RG}/Microsoft.Network/natGateways/nat",
        "type": "Microsoft.Network/natGateways",
        "sku": {"name": "Standard"},
        "properties": {"publicIpAddresses": [ref("publicIPAddresses", p) for p in public_ips]},
    }


def test_a_private_subnet_has_no_outbound_access() -> None:
    # DOA: "subnets ... private by default"; "an explicit outbound method must be enabled in order
    # to reach public endpoints on the internet and within Microsoft".
    verdict = outbound({"defaultOutboundAccess": False})
    assert (verdict.allowed, verdict.rule) == (False, "NoOutboundPath")
    # New VNets (API version 2025-07-01 and later) have it by default: an unset property too.
    assert outbound({}).rule == "NoOutboundPath"


def test_default_outbound_access_where_the_subnet_still_has_it() -> None:
    verdict = outbound({"defaultOutboundAccess": True})
    assert (verdict.allowed, verdict.detail.endswith("default outbound access")) == (True, True)
    # A VNet that predates the change: the property is unset and the access is there.
    assert outbound({}, unset_default_outbound=True).allowed


def test_a_nat_gateway_with_a_public_ip_gives_outbound_access() -> None:
    # NAT: "Attach NAT gateway to a subnet and public IP address and start connecting outbound";
    # it needs a public IP address or prefix.
    properties = {"defaultOutboundAccess": False, "natGateway": ref("natGateways", "nat")}
    verdict = outbound(properties, nat_gateway("nat-ip"))
    assert verdict.allowed
    assert "NAT gateway nat" in verdict.detail
    assert outbound(properties, nat_gateway()).rule == "NatGatewayWithoutPublicIp"


def test_a_route_to_an_appliance_comes_before_the_nat_gateway() -> None:
    # NAT: "Virtual appliance UDR / VPN Gateway / ExpressRoute >> NAT gateway >> Instance-level
    # public IP address on a virtual machine >> Load balancer outbound rules >> default system
    # route to the internet".
    table = {
        "id": f"{RG}/Microsoft.Network/routeTables/rt",
        "type": "Microsoft.Network/routeTables",
        "properties": {"routes": [{"name": "to-firewall", "properties": {
            "addressPrefix": "0.0.0.0/0", "nextHopType": "VirtualAppliance",
            "nextHopIpAddress": "10.9.0.4"}}]},
    }  # fmt: skip
    properties = {"routeTable": ref("routeTables", "rt"), "natGateway": ref("natGateways", "nat")}
    verdict = outbound(properties, table, nat_gateway("nat-ip"))
    assert (verdict.allowed, "to-firewall" in verdict.detail) == (True, True)


def test_the_outbound_nsg_still_decides() -> None:
    deny = allow("deny-internet", 100, "*", direction="Outbound", destination="Internet",
                 access="Deny")  # fmt: skip
    properties = {
        "natGateway": ref("natGateways", "nat"),
        "networkSecurityGroup": ref("networkSecurityGroups", "n"),
    }
    verdict = outbound(properties, nat_gateway("nat-ip"), nsg("n", deny))
    assert (verdict.allowed, verdict.rule, verdict.nsg) == (False, "deny-internet", "n")


def test_a_service_endpoint_carries_its_service_without_internet_access() -> None:
    # service-tags-overview.md: with a service endpoint "Azure adds a route to a virtual network
    # subnet for the service" with the prefixes of the service tag.
    view = NetworkView.from_bodies(
        [vnet(subnet("s", "10.0.1.0/24", defaultOutboundAccess=False,
                     serviceEndpoints=[{"service": "Microsoft.Sql"}]))]
    )  # fmt: skip
    sql = view.flow(f"{VNET_ID}/subnets/s", Endpoint.service("Sql", "westeurope"), 1433)
    assert (sql.allowed, sql.rule) == (True, "ServiceEndpoint")
    vault = view.flow(f"{VNET_ID}/subnets/s", Endpoint.service("AzureKeyVault", "westeurope"), 443)
    assert (vault.allowed, vault.rule) == (False, "NoOutboundPath")


def test_different_virtual_networks_have_no_route_without_peering() -> None:
    other = {
        "id": f"{RG}/Microsoft.Network/virtualNetworks/vnet2",
        "type": "Microsoft.Network/virtualNetworks",
        "properties": {"addressSpace": {"addressPrefixes": ["10.1.0.0/16"]},
                       "subnets": [subnet("t", "10.1.0.0/24")]},
    }  # fmt: skip
    view = NetworkView.from_bodies([vnet(subnet("s", "10.0.1.0/24")), other])
    verdict = view.flow(f"{VNET_ID}/subnets/s", Endpoint.address("10.1.0.4"), 443)
    assert (verdict.allowed, verdict.rule) == (False, "NoRoute")


# --- SQLFW and SQLVNET: the SQL server's own firewall ----------------------------------------


def sql_bodies(*rules: dict[str, Any], endpoint: bool = True) -> list[dict[str, Any]]:
    server = f"{RG}/Microsoft.Sql/servers/sql1"
    endpoints = [{"service": "Microsoft.Sql"}] if endpoint else []
    return [
        vnet(subnet("s", "10.0.1.0/24", serviceEndpoints=endpoints)),
        {"id": server, "type": "Microsoft.Sql/servers",
         "properties": {"publicNetworkAccess": "Enabled"}},
        *({**r, "id": f"{server}/{r['id']}"} for r in rules),
    ]  # fmt: skip


VNET_RULE = {
    "id": "virtualNetworkRules/from-s",
    "type": "Microsoft.Sql/servers/virtualNetworkRules",
    "properties": {"virtualNetworkSubnetId": f"{VNET_ID}/subnets/s"},
}
AZURE_SERVICES = {
    "id": "firewallRules/AllowAllWindowsAzureIps",
    "type": "Microsoft.Sql/servers/firewallRules",
    "properties": {"startIpAddress": "0.0.0.0", "endIpAddress": "0.0.0.0"},
}
SERVER = f"{RG}/Microsoft.Sql/servers/sql1"


def test_a_new_sql_server_admits_nobody() -> None:
    # SQLFW: "a server-level firewall blocks all access to the public endpoint for the server".
    view = NetworkView.from_bodies(sql_bodies())
    assert not view.sql_access(SERVER, f"{VNET_ID}/subnets/s").allowed
    assert not view.sql_access(SERVER, Endpoint.internet()).allowed


def test_a_virtual_network_rule_admits_its_subnet_only_with_the_endpoint() -> None:
    # SQLVNET: "Merely setting a firewall rule doesn't help secure the server. You must also turn
    # on virtual network service endpoints for the security to take effect."
    view = NetworkView.from_bodies(sql_bodies(VNET_RULE))
    assert view.sql_access(SERVER, f"{VNET_ID}/subnets/s").rule == "from-s"
    assert not view.sql_access(SERVER, Endpoint.internet()).allowed
    without = NetworkView.from_bodies(sql_bodies(VNET_RULE, endpoint=False))
    assert not without.sql_access(SERVER, f"{VNET_ID}/subnets/s").allowed


def test_allow_azure_services_admits_every_azure_client() -> None:
    # SQLFW: 0.0.0.0-0.0.0.0 "configures the firewall to allow all connections from Azure,
    # including connections from the subscriptions of other customers".
    view = NetworkView.from_bodies(sql_bodies(AZURE_SERVICES))
    assert view.sql_access(SERVER, f"{VNET_ID}/subnets/s").allowed
    assert view.sql_access(SERVER, Endpoint.internet()).allowed


def test_ipv6_prefixes_of_a_dual_stack_network_are_left_out() -> None:
    body = vnet(subnet("s", "10.0.1.0/24"))
    body["properties"]["addressSpace"]["addressPrefixes"].append("fd00:db8::/48")
    body["properties"]["subnets"][0]["properties"]["addressPrefixes"] = ["fd00:db8::/64"]
    view = NetworkView.from_bodies([body])
    assert [str(p) for p in view.subnet(f"{VNET_ID}/subnets/s").prefixes] == ["10.0.1.0/24"]

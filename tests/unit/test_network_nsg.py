"""The NSG evaluator against Microsoft's own statements and examples.

Oracles (MicrosoftDocs/azure-docs):
- OVERVIEW = `articles/virtual-network/network-security-groups-overview.md` @
  0088bfa77543e07f8a41771de8db977ddfc62e1d (ms.date 07/15/2025)
- TAGS = `articles/virtual-network/service-tags-overview.md` @
  17341f4516c69aa9aa882cac74a208108e3967fd
Each test quotes the sentence or table it checks.
"""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest

from outsystems.network.nsg import (
    DEFAULT_RULES,
    Address,
    Verdict,
    evaluate,
    evaluate_nsg,
    parse_port_range,
    rule_problems,
)

VNET = {"VirtualNetwork": [ipaddress.IPv4Network("10.0.0.0/16")]}
VM1 = Address.of("10.0.1.4", ["VirtualNetwork"])
VM2 = Address.of("10.0.2.4", ["VirtualNetwork"])
INTERNET = Address.of("203.0.113.7", ["Internet"])


def rule(
    name: str,
    priority: int,
    *,
    direction: str = "Inbound",
    access: str = "Allow",
    protocol: str = "Tcp",
    source: str | list[str] = "*",
    destination: str | list[str] = "*",
    ports: str | list[str] = "*",
) -> dict[str, Any]:
    properties: dict[str, Any] = {
        "priority": priority,
        "direction": direction,
        "access": access,
        "protocol": protocol,
        "sourcePortRange": "*",
    }
    for field, value in (
        ("sourceAddressPrefix", source),
        ("destinationAddressPrefix", destination),
        ("destinationPortRange", ports),
    ):
        if isinstance(value, list):
            properties[field + "es" if field.endswith("Prefix") else field + "s"] = value
        else:
            properties[field] = value
    return {"name": name, "properties": properties}


# --- default rules (OVERVIEW, "Default security rules") -------------------------------------


def test_default_rules_are_the_documented_six() -> None:
    # OVERVIEW's tables: name, priority, source, destination, access for each direction.
    table = {
        (r["name"], r["properties"]["direction"]): (
            r["properties"]["priority"],
            r["properties"]["sourceAddressPrefix"],
            r["properties"]["destinationAddressPrefix"],
            r["properties"]["access"],
        )
        for r in DEFAULT_RULES
    }
    assert table == {
        ("AllowVNetInBound", "Inbound"): (65000, "VirtualNetwork", "VirtualNetwork", "Allow"),
        ("AllowAzureLoadBalancerInBound", "Inbound"): (65001, "AzureLoadBalancer", "*", "Allow"),
        ("DenyAllInbound", "Inbound"): (65500, "*", "*", "Deny"),
        ("AllowVnetOutBound", "Outbound"): (65000, "VirtualNetwork", "VirtualNetwork", "Allow"),
        ("AllowInternetOutBound", "Outbound"): (65001, "*", "Internet", "Allow"),
        ("DenyAllOutBound", "Outbound"): (65500, "*", "*", "Deny"),
    }


@pytest.mark.parametrize(
    ("direction", "source", "destination", "port", "protocol", "expected"),
    [
        # AllowVNetInBound: VirtualNetwork -> VirtualNetwork, any port, Any protocol.
        ("Inbound", VM1, VM2, 12000, "Tcp", Verdict(True, "AllowVNetInBound")),
        ("Inbound", VM1, VM2, 53, "Udp", Verdict(True, "AllowVNetInBound")),
        # AllowAzureLoadBalancerInBound: AzureLoadBalancer -> 0.0.0.0/0.
        (
            "Inbound",
            Address.of("168.63.129.16", ["AzureLoadBalancer"]),
            VM2,
            80,
            "Tcp",
            Verdict(True, "AllowAzureLoadBalancerInBound"),
        ),
        # DenyAllInbound: the Internet is in neither tag.
        ("Inbound", INTERNET, VM2, 80, "Tcp", Verdict(False, "DenyAllInbound")),
        # AllowVnetOutBound and AllowInternetOutBound.
        ("Outbound", VM1, VM2, 1433, "Tcp", Verdict(True, "AllowVnetOutBound")),
        ("Outbound", VM1, INTERNET, 443, "Tcp", Verdict(True, "AllowInternetOutBound")),
        # DenyAllOutBound: an address outside the VNet that is not on the Internet (TAGS:
        # Internet is "The IP address space that's outside the virtual network and reachable by
        # the public internet").
        ("Outbound", VM1, Address.of("192.168.7.7"), 443, "Tcp", Verdict(False, "DenyAllOutBound")),
    ],
)
def test_an_nsg_without_rules_applies_the_defaults(
    direction: Any, source: Address, destination: Address, port: int, protocol: str, expected: Any
) -> None:
    verdict = evaluate([], direction, source, destination, port, protocol, VNET, nsg="nsg1")
    assert (verdict.allowed, verdict.rule, verdict.nsg) == (expected.allowed, expected.rule, "nsg1")


def test_the_defaults_take_their_tags_from_the_address_space() -> None:
    # TAGS: VirtualNetwork is "The virtual network address space"; a plain address inside the
    # space given for the tag is in it, one outside is not.
    assert evaluate([], "Inbound", "10.0.9.9", "10.0.1.4", 22, tags=VNET).rule == (
        "AllowVNetInBound"
    )
    assert evaluate([], "Inbound", "10.1.9.9", "10.0.1.4", 22, tags=VNET).rule == ("DenyAllInbound")


# --- priorities and first match (OVERVIEW, "Security rules") ---------------------------------


def test_lower_numbers_are_processed_first_and_processing_stops_at_the_first_match() -> None:
    # "Rules are processed in priority order, with lower numbers processed before higher
    # numbers ... Once traffic matches a rule, processing stops."
    deny_first = [
        rule("allow-80", 200, ports="80"),
        rule("deny-80", 100, ports="80", access="Deny"),
    ]
    verdict = evaluate(deny_first, "Inbound", INTERNET, VM1, 80, tags=VNET)
    assert verdict == Verdict(False, "deny-80", None, "denied by rule deny-80")
    allow_first = [
        rule("allow-80", 100, ports="80"),
        rule("deny-80", 200, ports="80", access="Deny"),
    ]
    assert evaluate(allow_first, "Inbound", INTERNET, VM1, 80, tags=VNET).rule == "allow-80"


def test_custom_rules_override_the_defaults() -> None:
    # "You can't remove the default rules, but you can override them by creating rules with
    # higher priorities."
    deny_vnet = [rule("deny-vnet", 4000, access="Deny", protocol="*", source="VirtualNetwork")]
    verdict = evaluate(deny_vnet, "Inbound", VM1, VM2, 12000, tags=VNET)
    assert (verdict.allowed, verdict.rule) == (False, "deny-vnet")
    # A rule for the other direction does not apply.
    assert evaluate(deny_vnet, "Outbound", VM1, VM2, 12000, tags=VNET).rule == "AllowVnetOutBound"


def test_the_how_it_works_example_internet_port_80() -> None:
    # network-security-group-how-it-works.md (0b167e76): "Unless you've created a rule that
    # allows port 80 inbound, the traffic is denied by the DenyAllInbound default security
    # rule"; with such a rule it is allowed; outbound to the Internet over 80 is allowed by
    # AllowInternetOutbound unless a rule denies it.
    assert not evaluate([], "Inbound", INTERNET, VM1, 80).allowed
    allow = [rule("allow-http", 100, source="Internet", ports="80")]
    assert evaluate(allow, "Inbound", INTERNET, VM1, 80).allowed
    assert not evaluate(allow, "Inbound", INTERNET, VM1, 81).allowed
    deny_out = [
        rule("deny-http-out", 100, direction="Outbound", access="Deny", destination="Internet",
             ports="80")
    ]  # fmt: skip
    assert not evaluate(deny_out, "Outbound", VM1, INTERNET, 80).allowed
    assert evaluate(deny_out, "Outbound", VM1, INTERNET, 443).allowed


# --- addresses, ports and protocols ---------------------------------------------------------


@pytest.mark.parametrize("any_prefix", ["*", "Any", "0.0.0.0/0"])
def test_any_is_star_or_all_addresses(any_prefix: str) -> None:
    # "0.0.0.0/0 in the Source and Destination columns represents all IP addresses. Clients ...
    # can use * or Any for this expression."
    rules = [rule("all", 100, source=any_prefix, destination=any_prefix, ports="3389")]
    for source in (INTERNET, VM1, Address.of(None, ["Sql"])):
        assert evaluate(rules, "Inbound", source, VM2, 3389).rule == "all"


def test_an_individual_address_and_a_cidr_block() -> None:
    # "You can specify Any, an individual IP address, a CIDR block (for example, 10.0.0.0/24)"
    rules = [
        rule("one-address", 100, source="10.0.1.4", ports="22"),
        rule("a-block", 110, source="10.0.2.0/24", ports="22"),
    ]
    assert evaluate(rules, "Inbound", "10.0.1.4", "10.0.3.4", 22).rule == "one-address"
    assert evaluate(rules, "Inbound", "10.0.2.200", "10.0.3.4", 22).rule == "a-block"
    assert evaluate(rules, "Inbound", "10.0.1.5", "10.0.3.4", 22).rule == "DenyAllInbound"


def test_augmented_rules_combine_addresses_ranges_and_ports() -> None:
    # "You can combine multiple ports and multiple explicit IP addresses and ranges into a
    # single ... security rule"; "you could specify 80 or 10000-10005; or for a mix of individual
    # ports and ranges, you can separate them with commas, such as 80, 10000-10005".
    rules = [
        rule("augmented", 100, source=["10.0.1.4", "10.0.2.0/24"], ports=["80", "10000-10005"]),
        rule("comma", 110, source="10.0.3.0/24", ports="80, 10000-10005"),
    ]
    for source, name in (
        ("10.0.1.4", "augmented"),
        ("10.0.2.9", "augmented"),
        ("10.0.3.9", "comma"),
    ):
        for port in (80, 10000, 10003, 10005):
            assert evaluate(rules, "Inbound", source, "10.0.9.4", port).rule == name
        for port in (81, 9999, 10006):
            assert evaluate(rules, "Inbound", source, "10.0.9.4", port).rule == "DenyAllInbound"
    assert evaluate(rules, "Inbound", "10.0.1.5", "10.0.9.4", 80).rule == "DenyAllInbound"


def test_any_protocol_encompasses_tcp_udp_and_icmp() -> None:
    # "In the Protocol column, Any encompasses TCP, UDP, and ICMP."
    rules = [rule("any", 100, protocol="*", ports="53"), rule("tcp", 110, ports="54")]
    for protocol in ("Tcp", "Udp", "Icmp"):
        assert evaluate(rules, "Inbound", INTERNET, VM1, 53, protocol).rule == "any"
    assert evaluate(rules, "Inbound", INTERNET, VM1, 54, "Tcp").rule == "tcp"
    assert evaluate(rules, "Inbound", INTERNET, VM1, 54, "Udp").rule == "DenyAllInbound"


def test_an_unknown_source_port_matches_only_rules_open_to_every_source_port() -> None:
    # The five-tuple includes the source port; a client's is ephemeral, so a rule pinned to one
    # source port cannot be relied on for it.
    pinned = rule("pinned", 100, ports="443")
    pinned["properties"]["sourcePortRange"] = "50000"
    assert evaluate([pinned], "Inbound", INTERNET, VM1, 443).rule == "DenyAllInbound"
    assert evaluate([pinned], "Inbound", INTERNET, VM1, 443, source_port=50000).rule == "pinned"


@pytest.mark.parametrize(
    ("text", "expected"),
    [("80", (80, 80)), ("10000-10005", (10000, 10005)), ("*", (0, 65535)), ("0-65535", (0, 65535))],
)
def test_port_ranges(text: str, expected: tuple[int, int]) -> None:
    assert parse_port_range(text) == expected


# --- service tags (TAGS) ---------------------------------------------------------------------


def test_service_tags_and_their_regional_forms() -> None:
    # TAGS: "the service tag Storage represents Azure Storage for the entire cloud, but
    # Storage.WestUS narrows the range to only the storage IP address ranges from the WestUS
    # region."
    rules = [
        rule("storage-westus", 100, direction="Outbound", destination="Storage.WestUS",
             ports="443"),
        rule("no-storage", 110, direction="Outbound", access="Deny", destination="Storage",
             ports="443"),
    ]  # fmt: skip
    west = Address.of(None, ["Storage", "Storage.westus", "Internet"])
    east = Address.of(None, ["Storage", "Storage.eastus", "Internet"])
    assert evaluate(rules, "Outbound", VM1, west, 443).rule == "storage-westus"
    assert evaluate(rules, "Outbound", VM1, east, 443).rule == "no-storage"
    assert evaluate(rules, "Outbound", VM1, INTERNET, 443).rule == "AllowInternetOutBound"


def test_gateway_manager_and_azure_load_balancer_are_tags_of_their_sources() -> None:
    # TAGS: GatewayManager, "Management traffic for deployments dedicated to Azure VPN Gateway
    # and Application Gateway"; AzureLoadBalancer "translates to the virtual IP address of the
    # host (168.63.129.16)".
    rules = [
        rule("manager", 100, source="GatewayManager", ports="65200-65535"),
        rule("deny-lb", 110, access="Deny", protocol="*", source="AzureLoadBalancer"),
    ]
    manager = Address.of(None, ["GatewayManager", "Internet", "AzureCloud"])
    assert evaluate(rules, "Inbound", manager, VM1, 65200).rule == "manager"
    assert evaluate(rules, "Inbound", INTERNET, VM1, 65200).rule == "DenyAllInbound"
    probe = Address.of("168.63.129.16", ["AzureLoadBalancer", "VirtualNetwork"])
    assert evaluate(rules, "Inbound", probe, VM1, 80).rule == "deny-lb"


def test_application_security_groups() -> None:
    # OVERVIEW: a source or destination may be an application security group.
    web = (
        "/subscriptions/s/resourceGroups/g/providers/Microsoft.Network/applicationSecurityGroups/w"
    )
    allow = rule("from-web", 100, ports="1433")
    del allow["properties"]["sourceAddressPrefix"]
    allow["properties"]["sourceApplicationSecurityGroups"] = [{"id": web.upper()}]
    member = Address.of("10.0.1.4", ["VirtualNetwork"], [web])
    assert evaluate([allow], "Inbound", member, VM2, 1433).rule == "from-web"
    assert evaluate([allow], "Inbound", VM1, VM2, 1433, tags=VNET).rule == "AllowVNetInBound"


def test_an_nsg_body_is_evaluated_with_its_name() -> None:
    body = {
        "id": "/subscriptions/s/resourceGroups/g/providers/Microsoft.Network/"
        "networkSecurityGroups/n1",
        "properties": {
            "securityRules": [rule("allow-rdp", 100, source="10.0.5.0/26", ports="3389")]
        },
    }
    verdict = evaluate_nsg(body, "Inbound", "10.0.5.4", "10.0.1.4", 3389)
    assert verdict == Verdict(True, "allow-rdp", "n1", "allowed by rule allow-rdp of n1")


# --- what ARM refuses (OVERVIEW) -------------------------------------------------------------


def test_a_valid_rule_set_has_no_problems() -> None:
    rules = [
        rule("allow-gateway", 100, source="10.0.4.0/24", destination="10.0.0.4", ports="80"),
        rule(
            "allow-sql", 100, direction="Outbound", destination="Sql", ports=["1433", "11000-11999"]
        ),
        rule("deny_vnet_", 4096, access="Deny", protocol="*", source="VirtualNetwork"),
    ]
    assert rule_problems(rules) == []


@pytest.mark.parametrize(
    ("bad", "problem"),
    [
        # "A number between 100 and 4096."
        (rule("low", 99), "priority"),
        (rule("high", 4097), "priority"),
        # "It must begin with a word character, and it must end with a word character or with _"
        (rule("-dash", 100), "name"),
        (rule("dash-", 100), "name"),
        (rule("x" * 81, 100), "name"),
        # "you can't specify multiple service tags or application groups in a single rule"
        (rule("tags", 100, source=["Sql", "Storage"]), "service tag"),
        (rule("tag-and-ip", 100, source=["Internet", "10.0.0.0/24"]), "service tag"),
        (rule("protocol", 100, protocol="Http"), "protocol"),
        (rule("port", 100, ports="70000"), "port"),
    ],
)
def test_what_arm_refuses(bad: dict[str, Any], problem: str) -> None:
    assert any(problem in p for p in rule_problems([bad])), rule_problems([bad])


def test_two_rules_with_the_same_priority_and_direction_are_refused() -> None:
    # "You can't create two security rules with the same priority and direction."
    same = [rule("a", 100), rule("b", 100)]
    assert any("same priority" in p for p in rule_problems(same))
    assert rule_problems([rule("a", 100), rule("b", 100, direction="Outbound")]) == []

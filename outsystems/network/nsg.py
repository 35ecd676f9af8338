"""Azure network security group (NSG) rule evaluation, as Microsoft documents it.

Oracle (MicrosoftDocs/azure-docs):
- `articles/virtual-network/network-security-groups-overview.md` @
  0088bfa77543e07f8a41771de8db977ddfc62e1d (ms.date 07/15/2025): rule properties (name, priority
  100-4096, source/destination as Any, an IP, a CIDR block, a service tag or an application
  security group, protocol, direction, port or ranges, Allow/Deny), "Rules are processed in
  priority order, with lower numbers processed before higher numbers ... Once traffic matches a
  rule, processing stops", the default rules AllowVNetInBound (65000),
  AllowAzureLoadBalancerInBound (65001), DenyAllInbound (65500), AllowVnetOutBound (65000),
  AllowInternetOutBound (65001), DenyAllOutBound (65500), "*Any* encompasses TCP, UDP, and ICMP",
  "0.0.0.0/0 ... represents all IP addresses. Clients ... can use * or Any", augmented rules
  (several ports, IPs and ranges in one rule) but "you can't specify multiple service tags or
  application groups in a single rule", "You can't create two security rules with the same
  priority and direction".
- `articles/virtual-network/service-tags-overview.md` @ 17341f4516c69aa9aa882cac74a208108e3967fd:
  what each tag stands for (VirtualNetwork = the VNet's address space, peered and connected
  networks and the host's virtual IP 168.63.129.16; Internet = the address space outside the
  VNet reachable by the public internet, Azure-owned public addresses included;
  AzureLoadBalancer = 168.63.129.16; regional forms such as Storage.WestUS).

The evaluator works on ARM JSON rule bodies (`{"name", "properties": {...}}`, or the flattened
properties). Where a flow's end has no fixed address (the Internet, a service), it is described
by the service tags it belongs to; `reachability` builds those ends for real networks.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

Direction = Literal["Inbound", "Outbound"]
IPv4 = ipaddress.IPv4Address
Network = ipaddress.IPv4Network

#: The host's virtual IP, where Azure's health probes come from (service-tags-overview.md).
AZURE_HOST_ADDRESS: Final = IPv4("168.63.129.16")

VIRTUAL_NETWORK: Final = "VirtualNetwork"
INTERNET: Final = "Internet"
AZURE_LOAD_BALANCER: Final = "AzureLoadBalancer"


@dataclass(frozen=True)
class Verdict:
    """Whether a flow gets through, the rule (or reason) that decided, and its NSG.

    `rule` is an NSG rule name when an NSG decided; otherwise a reason of `reachability`
    (e.g. `NoOutboundPath`). `detail` says it in words, for logs and error messages.
    """

    allowed: bool
    rule: str
    nsg: str | None = None
    detail: str = ""


@dataclass(frozen=True)
class Address:
    """One end of a flow: its IPv4 address when it has a fixed one, and its service tags.

    Tags are compared case-insensitively; a regional tag (`Sql.WestEurope`) is listed beside
    its global one (`Sql`). `groups` are the ids of application security groups the address's
    network interface belongs to.
    """

    ip: IPv4 | None = None
    tags: frozenset[str] = frozenset()
    groups: frozenset[str] = frozenset()

    @classmethod
    def of(
        cls, ip: str | IPv4 | None = None, tags: Iterable[str] = (), groups: Iterable[str] = ()
    ) -> Address:
        return cls(
            ip=IPv4(ip) if isinstance(ip, str) else ip,
            tags=frozenset(t.lower() for t in tags),
            groups=frozenset(g.lower() for g in groups),
        )


def _rule(
    name: str, priority: int, direction: Direction, source: str, destination: str, access: str
) -> dict[str, Any]:
    return {
        "name": name,
        "properties": {
            "priority": priority,
            "direction": direction,
            "access": access,
            "protocol": "*",
            "sourceAddressPrefix": source,
            "sourcePortRange": "*",
            "destinationAddressPrefix": destination,
            "destinationPortRange": "*",
        },
    }


#: Azure's default rules, with the names, priorities and fields of the overview's tables.
DEFAULT_RULES: Final[tuple[dict[str, Any], ...]] = (
    _rule("AllowVNetInBound", 65000, "Inbound", VIRTUAL_NETWORK, VIRTUAL_NETWORK, "Allow"),
    _rule("AllowAzureLoadBalancerInBound", 65001, "Inbound", AZURE_LOAD_BALANCER, "*", "Allow"),
    _rule("DenyAllInbound", 65500, "Inbound", "*", "*", "Deny"),
    _rule("AllowVnetOutBound", 65000, "Outbound", VIRTUAL_NETWORK, VIRTUAL_NETWORK, "Allow"),
    _rule("AllowInternetOutBound", 65001, "Outbound", "*", INTERNET, "Allow"),
    _rule("DenyAllOutBound", 65500, "Outbound", "*", "*", "Deny"),
)

_ANY: Final = frozenset({"*", "any", "0.0.0.0/0"})
_ALL_PORTS: Final = frozenset({"*", "0-65535", "any"})
_PORT_RANGE_RE: Final = re.compile(r"(\d{1,5})(?:-(\d{1,5}))?")
_NAME_RE: Final = re.compile(r"\w[\w.-]{0,78}[\w_]|\w")
MIN_PRIORITY: Final = 100
MAX_PRIORITY: Final = 4096
PROTOCOLS: Final = frozenset({"tcp", "udp", "icmp", "esp", "ah", "*"})


def _properties(rule: Mapping[str, Any]) -> Mapping[str, Any]:
    properties = rule.get("properties")
    return properties if isinstance(properties, Mapping) else rule


def _values(properties: Mapping[str, Any], singular: str, plural: str) -> list[str]:
    found: list[str] = []
    one = properties.get(singular)
    if isinstance(one, str) and one:
        found.append(one)
    many = properties.get(plural)
    if isinstance(many, list):
        found.extend(str(item) for item in many if str(item))
    return found


def _groups(properties: Mapping[str, Any], key: str) -> list[str]:
    groups = properties.get(key)
    if not isinstance(groups, list):
        return []
    return [str(g.get("id", "")).lower() for g in groups if isinstance(g, Mapping)]


def parse_port_range(text: str) -> tuple[int, int]:
    """`80` -> (80, 80), `10000-10005` -> (10000, 10005), `*` -> (0, 65535)."""
    text = text.strip()
    if text.lower() in _ALL_PORTS:
        return (0, 65535)
    match = _PORT_RANGE_RE.fullmatch(text)
    if match is None:
        raise ValueError(f"not a port or port range: {text!r}")
    low = int(match.group(1))
    high = int(match.group(2) or low)
    if not 0 <= low <= high <= 65535:
        raise ValueError(f"not a port or port range: {text!r}")
    return (low, high)


def _port_matches(ranges: Sequence[str], port: int | None) -> bool:
    for text in ranges:
        # The overview allows comma-separated mixes ("80, 10000-10005") in one field.
        for part in text.split(","):
            if part.strip().lower() in _ALL_PORTS:
                return True
            if port is None:
                continue
            low, high = parse_port_range(part)
            if low <= port <= high:
                return True
    return False


def _network(text: str) -> Network | None:
    try:
        return ipaddress.IPv4Network(text.strip(), strict=False)
    except ValueError:
        return None


def _prefix_matches(
    prefix: str, address: Address, tag_prefixes: Mapping[str, Sequence[Network]]
) -> bool:
    lowered = prefix.strip().lower()
    if lowered in _ANY:
        return True
    network = _network(prefix)
    if network is not None:
        return address.ip is not None and address.ip in network
    # A service tag, maybe regional: the address's own tags, then the prefixes the view
    # resolved for prefix-defined tags (VirtualNetwork is the VNet's address space).
    if lowered in address.tags:
        return True
    resolved = tag_prefixes.get(lowered, ())
    return address.ip is not None and any(address.ip in net for net in resolved)


def _end_matches(
    properties: Mapping[str, Any],
    end: Literal["source", "destination"],
    address: Address,
    tag_prefixes: Mapping[str, Sequence[Network]],
) -> bool:
    prefixes = _values(properties, f"{end}AddressPrefix", f"{end}AddressPrefixes")
    if any(_prefix_matches(p, address, tag_prefixes) for p in prefixes):
        return True
    groups = _groups(properties, f"{end}ApplicationSecurityGroups")
    return any(group in address.groups for group in groups)


def _protocol_matches(rule_protocol: str, protocol: str) -> bool:
    lowered = rule_protocol.lower()
    return lowered in {"*", "any"} or lowered == protocol.lower()


def _ordered(rules: Iterable[Mapping[str, Any]], direction: Direction) -> list[Mapping[str, Any]]:
    chosen = [
        rule
        for rule in (*rules, *DEFAULT_RULES)
        if str(_properties(rule).get("direction", "")).lower() == direction.lower()
    ]
    # sorted() is stable: among equal priorities (which ARM refuses) the first given wins.
    return sorted(chosen, key=lambda rule: int(_properties(rule).get("priority", MAX_PRIORITY)))


def _lower_keys(tags: Mapping[str, Sequence[Network]] | None) -> dict[str, Sequence[Network]]:
    return {key.lower(): value for key, value in (tags or {}).items()}


def evaluate(
    rules: Iterable[Mapping[str, Any]],
    direction: Direction,
    source: Address | str,
    destination: Address | str,
    port: int,
    protocol: str = "Tcp",
    tags: Mapping[str, Sequence[Network]] | None = None,
    *,
    source_port: int | None = None,
    nsg: str | None = None,
) -> Verdict:
    """The verdict of one NSG (its custom `rules` plus Azure's defaults) on one flow.

    `source`/`destination` are `Address`es or plain IPv4 strings. `tags` resolves
    prefix-defined service tags by address, e.g. `{"VirtualNetwork": [10.0.0.0/16]}`.
    `source_port` None stands for an unknown (ephemeral) port: only rules open to every
    source port match it. `nsg` names the group in the verdict.
    """
    src = source if isinstance(source, Address) else Address.of(source)
    dst = destination if isinstance(destination, Address) else Address.of(destination)
    resolved = _lower_keys(tags)
    for rule in _ordered(rules, direction):
        properties = _properties(rule)
        if not _protocol_matches(str(properties.get("protocol", "*")), protocol):
            continue
        if not _port_matches(
            _values(properties, "sourcePortRange", "sourcePortRanges"), source_port
        ):
            continue
        if not _port_matches(
            _values(properties, "destinationPortRange", "destinationPortRanges"), port
        ):
            continue
        if not _end_matches(properties, "source", src, resolved):
            continue
        if not _end_matches(properties, "destination", dst, resolved):
            continue
        allowed = str(properties.get("access", "")).lower() == "allow"
        name = str(rule.get("name", "?"))
        where = f" of {nsg}" if nsg else ""
        detail = f"{'allowed' if allowed else 'denied'} by rule {name}{where}"
        return Verdict(allowed, name, nsg, detail)
    # Unreachable: DenyAllInbound/DenyAllOutBound match every flow.
    raise AssertionError("the default deny rule must match")  # pragma: no cover


def security_rules(body: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The custom rules of an NSG body (`properties.securityRules`)."""
    properties = body.get("properties")
    rules = properties.get("securityRules") if isinstance(properties, Mapping) else None
    return list(rules) if isinstance(rules, list) else []


def evaluate_nsg(
    body: Mapping[str, Any],
    direction: Direction,
    source: Address | str,
    destination: Address | str,
    port: int,
    protocol: str = "Tcp",
    tags: Mapping[str, Sequence[Network]] | None = None,
    *,
    source_port: int | None = None,
) -> Verdict:
    """`evaluate` with the rules and the name of an NSG body."""
    name = body.get("name") or str(body.get("id", "")).rsplit("/", 1)[-1] or None
    return evaluate(
        security_rules(body),
        direction,
        source,
        destination,
        port,
        protocol,
        tags,
        source_port=source_port,
        nsg=name,
    )


# --- What ARM refuses in a rule set (the overview's constraints) ----------------------------


def _is_tag(prefix: str) -> bool:
    return prefix.strip().lower() not in _ANY and _network(prefix) is None


def _rule_problems(rule: Mapping[str, Any]) -> Iterator[str]:
    name = str(rule.get("name", ""))
    properties = _properties(rule)
    if not _NAME_RE.fullmatch(name):
        yield (
            f"rule {name!r}: a name is 1-80 word characters, '.', '-' or '_', starting with a "
            "word character and ending with one or '_'"
        )
    priority = properties.get("priority")
    if not isinstance(priority, int) or not MIN_PRIORITY <= priority <= MAX_PRIORITY:
        yield f"rule {name}: priority must be a number between 100 and 4096"
    if str(properties.get("direction", "")) not in ("Inbound", "Outbound"):
        yield f"rule {name}: direction must be Inbound or Outbound"
    if str(properties.get("access", "")) not in ("Allow", "Deny"):
        yield f"rule {name}: access must be Allow or Deny"
    if str(properties.get("protocol", "")).lower() not in PROTOCOLS:
        yield f"rule {name}: protocol must be Tcp, Udp, Icmp, Esp, Ah or *"
    for end in ("source", "destination"):
        singular, plural = f"{end}AddressPrefix", f"{end}AddressPrefixes"
        prefixes = _values(properties, singular, plural)
        groups = _groups(properties, f"{end}ApplicationSecurityGroups")
        if properties.get(singular) and properties.get(plural):
            yield f"rule {name}: give {singular} or {plural}, not both"
        if not prefixes and not groups:
            yield f"rule {name}: no {end} address"
        if len(prefixes) > 1 and any(_is_tag(p) for p in prefixes):
            yield f"rule {name}: several {end} prefixes may not include a service tag"
        singular_ports, plural_ports = f"{end}PortRange", f"{end}PortRanges"
        if properties.get(singular_ports) and properties.get(plural_ports):
            yield f"rule {name}: give {singular_ports} or {plural_ports}, not both"
        for text in _values(properties, singular_ports, plural_ports):
            for part in text.split(","):
                try:
                    parse_port_range(part)
                except ValueError as error:
                    yield f"rule {name}: {error}"


def rule_problems(rules: Iterable[Mapping[str, Any]]) -> list[str]:
    """What ARM would refuse in these custom rules; empty when the set is valid."""
    problems: list[str] = []
    seen: dict[tuple[str, object], str] = {}
    names: set[str] = set()
    for rule in rules:
        problems.extend(_rule_problems(rule))
        properties = _properties(rule)
        name = str(rule.get("name", ""))
        if name.lower() in names:
            problems.append(f"rule {name}: names are unique within an NSG")
        names.add(name.lower())
        key = (str(properties.get("direction", "")).lower(), properties.get("priority"))
        if key in seen:
            problems.append(
                f"rule {name}: same priority and direction as rule {seen[key]} (ARM refuses it)"
            )
        seen.setdefault(key, name)
    return problems

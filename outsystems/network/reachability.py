"""Whether a flow gets through a network described by plain ARM bodies.

`NetworkView.from_bodies(...)` reads virtual networks (with inline subnets), subnets, NSGs,
NAT gateways, route tables, public IPs, NICs, scale sets, application gateways, Bastion hosts
and SQL servers with their firewall and virtual network rules — each a JSON body with its `id`
and `type`, as ARM returns them or as the desired graph holds them — and answers:

- `flow(source, destination, port)`: the source's outbound NSGs (NIC, then subnet), the path
  (same VNet; for a service, its service endpoint on the subnet or outbound Internet; for a
  public endpoint, outbound Internet back in through the public frontend), and the
  destination's inbound NSGs (subnet, then NIC) must all let it through.
- `outbound_internet(subnet_id)`: an explicit outbound path (a route to an appliance, a NAT
  gateway with a public IP, the NIC's public IP) or default outbound access where the subnet
  still has it, and the outbound NSG allowing it.
- `sql_access(server_id, source)`: the SQL server's own firewall: public network access, its
  virtual network rules (effective only with the subnet's `Microsoft.Sql` endpoint) and IP rules.

`setup_blockers(view, subnet_id, role, ...)` lists what keeps a server's setup from what it
needs (`requirements.setup_needs`), for the ARM simulator to fail a setup the way a real server
would.

Sources (MicrosoftDocs/azure-docs unless said otherwise):
- `articles/virtual-network/network-security-group-how-it-works.md` @
  0b167e76f7dc8ae9663b3da7293949e31f6c95a3: inbound, the subnet's NSG then the NIC's; outbound,
  the NIC's then the subnet's; with no NSG on either, all traffic passes.
- `articles/virtual-network/ip-services/default-outbound-access.md` @
  76cb79f7ce67946149da36b069ebec8e87325d95 (ms.date 01/30/2026) and Microsoft's announcement
  "Private subnets by default in Azure virtual networks" (techcommunity, 2026): from API version
  2025-07-01, subnets of new VNets are private (`defaultOutboundAccess: false`); VMs in them
  reach public endpoints only through an explicit method: a NAT gateway on the subnet, a
  public IP on the NIC, load balancer outbound rules, or a route to a firewall/appliance.
- `articles/nat-gateway/nat-overview.md` @ 012ad308577ca7a4bcf96132a0e71b2819fa4a98: a NAT gateway
  is attached per subnet and needs a Standard public IP or prefix; precedence "Virtual
  appliance UDR / VPN Gateway / ExpressRoute >> NAT gateway >> Instance-level public IP >>
  Load balancer outbound rules >> default system route to the internet".
- `articles/virtual-network/network-security-groups-overview.md` (see `nsg`): the host's
  infrastructure services (168.63.129.16, IMDS 169.254.169.254) are not subject to NSGs.
- MicrosoftDocs/sql-docs `azure-sql/database/firewall-configure.md` @
  0b3427f737634bddce2d9c99ea1799526db547ae (a new server's firewall blocks all access to its
  public endpoint; 0.0.0.0-0.0.0.0 `AllowAllWindowsAzureIps` lets any Azure client in) and
  `azure-sql/database/vnet-service-endpoint-rule-overview.md` @
  07cabaeab86d38dcb28d3b57be15ab3a22a3f84e (a virtual network rule takes effect only with the
  subnet's service endpoint; "Outbound to Azure SQL Database public IPs is required. NSGs must be
  opened to SQL Database IPs").

Not modelled: VNet peering and gateways between networks (a flow across VNets has no route),
load balancers, private endpoints, security admin rules of Virtual Network Manager, NSGs on a
scale set's network interface configurations, IPv6.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from outsystems import resource_types as types
from outsystems.network.nsg import (
    AZURE_HOST_ADDRESS,
    INTERNET,
    VIRTUAL_NETWORK,
    Address,
    Direction,
    Network,
    Verdict,
    evaluate,
    security_rules,
)
from outsystems.network.requirements import Flow, Party, setup_needs

# Bodies are looked up by their type in lower case (ARM compares types case-insensitively).
VNET_TYPE: Final = types.VNET.lower()
SUBNET_TYPE: Final = types.SUBNET.lower()
NSG_TYPE: Final = types.NSG.lower()
NAT_TYPE: Final = types.NAT_GATEWAY.lower()
ROUTE_TABLE_TYPE: Final = types.ROUTE_TABLE.lower()
PUBLIC_IP_TYPE: Final = types.PUBLIC_IP.lower()
NIC_TYPE: Final = types.NIC.lower()
SCALE_SET_TYPE: Final = types.SCALE_SET.lower()
APP_GATEWAY_TYPE: Final = types.APP_GATEWAY.lower()
BASTION_TYPE: Final = types.BASTION_HOST.lower()
SQL_SERVER_TYPE: Final = types.SQL_SERVER.lower()
SQL_VNET_RULE_TYPE: Final = types.SQL_VNET_RULE.lower()
SQL_FIREWALL_RULE_TYPE: Final = types.SQL_FIREWALL_RULE.lower()

#: Service tags whose traffic a subnet's service endpoint carries (service-tags-overview.md:
#: "the address prefixes in the route are the same ... as those of the corresponding tag").
SERVICE_ENDPOINTS: Final = {
    "sql": "microsoft.sql",
    "storage": "microsoft.storage",
    "azurekeyvault": "microsoft.keyvault",
}
#: A public address standing for "somewhere on the Internet" (TEST-NET-3, RFC 5737).
_SOME_INTERNET_ADDRESS: Final = ipaddress.IPv4Address("203.0.113.10")


def _key(resource_id: str) -> str:
    return resource_id.strip().rstrip("/").lower()


def _properties(body: Mapping[str, Any]) -> Mapping[str, Any]:
    properties = body.get("properties")
    return properties if isinstance(properties, Mapping) else {}


def _ref(value: object) -> str | None:
    if isinstance(value, Mapping) and isinstance(value.get("id"), str):
        return _key(value["id"])
    return None


def _refs(value: object) -> list[str]:
    if not isinstance(value, list):
        return []
    return [ref for item in value if (ref := _ref(item)) is not None]


def _ipv4(prefixes: Iterable[object]) -> tuple[Network, ...]:
    # IPv6 prefixes of dual-stack networks are left out: every flow judged here is IPv4.
    networks = (ipaddress.ip_network(str(p), strict=False) for p in prefixes)
    return tuple(n for n in networks if isinstance(n, ipaddress.IPv4Network))


def _prefixes(properties: Mapping[str, Any]) -> tuple[Network, ...]:
    found: list[object] = []
    if isinstance(properties.get("addressPrefix"), str):
        found.append(properties["addressPrefix"])
    if isinstance(properties.get("addressPrefixes"), list):
        found.extend(properties["addressPrefixes"])
    return _ipv4(found)


@dataclass(frozen=True)
class Endpoint:
    """One end of a flow.

    Build it with the class methods: `address(ip)` (a private IP in a subnet of the view),
    `in_subnet(id)` (some address of that subnet: a scale set instance, say), `service(tag,
    region)` (an Azure service by its service tag: `Sql`, `Storage`, `AzureKeyVault`,
    `GatewayManager`, `AzureLoadBalancer`...), `internet(host)` (anywhere on the Internet),
    `public(resource_id)` (an application gateway's or a public IP's public frontend).
    """

    kind: Literal["address", "subnet", "service", "internet", "public"]
    value: str = ""
    region: str | None = None

    @classmethod
    def address(cls, ip: str) -> Endpoint:
        return cls("address", str(ipaddress.IPv4Address(ip)))

    @classmethod
    def in_subnet(cls, subnet_id: str) -> Endpoint:
        return cls("subnet", subnet_id)

    @classmethod
    def service(cls, tag: str, region: str | None = None) -> Endpoint:
        return cls("service", tag, region)

    @classmethod
    def internet(cls, host: str = "") -> Endpoint:
        return cls("internet", host)

    @classmethod
    def public(cls, resource_id: str) -> Endpoint:
        return cls("public", resource_id)

    def __str__(self) -> str:
        if self.kind == "service":
            return f"{self.value}{f' ({self.region})' if self.region else ''}"
        if self.kind == "internet":
            return self.value or "the Internet"
        if self.kind == "subnet":
            return f"an address of {self.value.rsplit('/', 1)[-1]}"
        if self.kind == "public":
            return f"the public frontend of {self.value.rsplit('/', 1)[-1]}"
        return self.value


@dataclass(frozen=True)
class Subnet:
    id: str
    name: str
    vnet: str
    prefixes: tuple[Network, ...]
    nsg: str | None = None
    nat_gateway: str | None = None
    route_table: str | None = None
    default_outbound_access: bool | None = None
    service_endpoints: frozenset[str] = frozenset()

    def contains(self, ip: ipaddress.IPv4Address) -> bool:
        return any(ip in prefix for prefix in self.prefixes)

    def some_address(self) -> ipaddress.IPv4Address:
        """A usable address that Azure hands out last (so not a VM's static first one)."""
        prefix = self.prefixes[0]
        return prefix.broadcast_address - 1 if prefix.num_addresses > 4 else prefix[0]


@dataclass(frozen=True)
class _Interface:
    """A NIC's IP configuration: its subnet, NSG, public IP and security groups."""

    subnet: str
    nsg: str | None
    public: bool
    groups: frozenset[str]


@dataclass(frozen=True)
class _End:
    """A resolved end: its subnet (None outside the networks), address and NIC details."""

    subnet: Subnet | None
    address: Address
    interface: _Interface | None = None
    public_path: bool = False


@dataclass
class NetworkView:
    """The networks of a set of ARM bodies, ready to judge flows. Build with `from_bodies`."""

    subnets: dict[str, Subnet] = field(default_factory=dict)
    vnets: dict[str, tuple[Network, ...]] = field(default_factory=dict)
    nsgs: dict[str, tuple[str, list[Mapping[str, Any]]]] = field(default_factory=dict)
    nat_gateways: dict[str, Mapping[str, Any]] = field(default_factory=dict)
    route_tables: dict[str, list[Mapping[str, Any]]] = field(default_factory=dict)
    interfaces: dict[ipaddress.IPv4Address, _Interface] = field(default_factory=dict)
    public_subnets: set[str] = field(default_factory=set)
    public_frontends: dict[str, str] = field(default_factory=dict)
    sql_servers: dict[str, Mapping[str, Any]] = field(default_factory=dict)
    sql_vnet_rules: dict[str, list[tuple[str, str, bool]]] = field(default_factory=dict)
    sql_firewall_rules: dict[str, list[tuple[str, str, str]]] = field(default_factory=dict)
    unset_default_outbound: bool = False

    # --- building ---------------------------------------------------------------------------
    @classmethod
    def from_bodies(
        cls, bodies: Iterable[Mapping[str, Any]], *, unset_default_outbound: bool = False
    ) -> NetworkView:
        """The view of `bodies` (each with `id` and `type`).

        `unset_default_outbound` is what a subnet without `defaultOutboundAccess` has: False,
        as for every subnet of a VNet created with API version 2025-07-01 or later; True for a
        VNet known to predate the change.
        """
        view = cls(unset_default_outbound=unset_default_outbound)
        items = [
            b for b in bodies if isinstance(b.get("id"), str) and isinstance(b.get("type"), str)
        ]
        by_type: dict[str, list[Mapping[str, Any]]] = {}
        for body in items:
            by_type.setdefault(str(body["type"]).lower(), []).append(body)
        for body in by_type.get(VNET_TYPE, []):
            view._add_vnet(body)
        for body in by_type.get(SUBNET_TYPE, []):
            vnet = _key(body["id"]).rsplit("/subnets/", 1)[0]
            view._add_subnet(vnet, body)
        for body in by_type.get(NSG_TYPE, []):
            name = str(body.get("name") or body["id"].rsplit("/", 1)[-1])
            view.nsgs[_key(body["id"])] = (name, security_rules(body))
        for body in by_type.get(NAT_TYPE, []):
            view.nat_gateways[_key(body["id"])] = body
        for body in by_type.get(ROUTE_TABLE_TYPE, []):
            routes = _properties(body).get("routes")
            view.route_tables[_key(body["id"])] = list(routes) if isinstance(routes, list) else []
        for body in by_type.get(NIC_TYPE, []):
            view._add_nic(body)
        for body in by_type.get(SCALE_SET_TYPE, []):
            view._add_scale_set(body)
        for body in by_type.get(APP_GATEWAY_TYPE, []):
            view._add_frontends(
                body,
                _properties(body).get("gatewayIPConfigurations"),
                _properties(body).get("frontendIPConfigurations"),
            )
        for body in by_type.get(BASTION_TYPE, []):
            configs = _properties(body).get("ipConfigurations")
            view._add_frontends(body, configs, configs)
        for body in by_type.get(SQL_SERVER_TYPE, []):
            view.sql_servers[_key(body["id"])] = body
        for body in by_type.get(SQL_VNET_RULE_TYPE, []):
            properties = _properties(body)
            subnet = properties.get("virtualNetworkSubnetId")
            if isinstance(subnet, str):
                server = _key(body["id"]).rsplit("/virtualnetworkrules/", 1)[0]
                view.sql_vnet_rules.setdefault(server, []).append(
                    (
                        str(body["id"]).rsplit("/", 1)[-1],
                        _key(subnet),
                        bool(properties.get("ignoreMissingVnetServiceEndpoint", False)),
                    )
                )
        for body in by_type.get(SQL_FIREWALL_RULE_TYPE, []):
            properties = _properties(body)
            server = _key(body["id"]).rsplit("/firewallrules/", 1)[0]
            view.sql_firewall_rules.setdefault(server, []).append(
                (
                    str(body["id"]).rsplit("/", 1)[-1],
                    str(properties.get("startIpAddress", "")),
                    str(properties.get("endIpAddress", "")),
                )
            )
        return view

    def _add_vnet(self, body: Mapping[str, Any]) -> None:
        vnet = _key(body["id"])
        space = _properties(body).get("addressSpace")
        prefixes = space.get("addressPrefixes") if isinstance(space, Mapping) else None
        self.vnets[vnet] = _ipv4(prefixes if isinstance(prefixes, list) else [])
        subnets = _properties(body).get("subnets")
        for subnet in subnets if isinstance(subnets, list) else []:
            if isinstance(subnet, Mapping):
                self._add_subnet(vnet, subnet, inline=True)

    def _add_subnet(self, vnet: str, body: Mapping[str, Any], *, inline: bool = False) -> None:
        name = str(body.get("name") or str(body.get("id", "")).rsplit("/", 1)[-1])
        subnet_id = _key(str(body.get("id") or f"{vnet}/subnets/{name}"))
        if inline and subnet_id in self.subnets:
            return  # a subnet's own body is more precise than its copy inside the VNet's
        properties = _properties(body)
        endpoints = properties.get("serviceEndpoints")
        outbound = properties.get("defaultOutboundAccess")
        self.subnets[subnet_id] = Subnet(
            id=subnet_id,
            name=name,
            vnet=vnet,
            prefixes=_prefixes(properties),
            nsg=_ref(properties.get("networkSecurityGroup")),
            nat_gateway=_ref(properties.get("natGateway")),
            route_table=_ref(properties.get("routeTable")),
            default_outbound_access=outbound if isinstance(outbound, bool) else None,
            service_endpoints=frozenset(
                str(e.get("service", "")).lower()
                for e in (endpoints if isinstance(endpoints, list) else [])
                if isinstance(e, Mapping)
            ),
        )
        self.vnets.setdefault(vnet, ())

    def _add_nic(self, body: Mapping[str, Any]) -> None:
        properties = _properties(body)
        nsg = _ref(properties.get("networkSecurityGroup"))
        configs = properties.get("ipConfigurations")
        for config in configs if isinstance(configs, list) else []:
            config_properties = _properties(config) if isinstance(config, Mapping) else {}
            subnet = _ref(config_properties.get("subnet"))
            ip = config_properties.get("privateIPAddress")
            if subnet is None or not isinstance(ip, str) or not ip:
                continue
            self.interfaces[ipaddress.IPv4Address(ip)] = _Interface(
                subnet=subnet,
                nsg=nsg,
                public=_ref(config_properties.get("publicIPAddress")) is not None,
                groups=frozenset(_refs(config_properties.get("applicationSecurityGroups"))),
            )

    def _add_scale_set(self, body: Mapping[str, Any]) -> None:
        # Instances' addresses are dynamic; what matters here is whether they face the Internet.
        profile = _properties(body).get("virtualMachineProfile")
        network = profile.get("networkProfile") if isinstance(profile, Mapping) else None
        configs = (
            network.get("networkInterfaceConfigurations") if isinstance(network, Mapping) else None
        )
        for nic in configs if isinstance(configs, list) else []:
            ip_configs = (
                _properties(nic).get("ipConfigurations") if isinstance(nic, Mapping) else None
            )
            for config in ip_configs if isinstance(ip_configs, list) else []:
                config_properties = _properties(config) if isinstance(config, Mapping) else {}
                subnet = _ref(config_properties.get("subnet"))
                if subnet is not None and config_properties.get("publicIPAddressConfiguration"):
                    self.public_subnets.add(subnet)

    def _add_frontends(self, body: Mapping[str, Any], subnets: object, frontends: object) -> None:
        gateway_subnets = [
            ref
            for config in (subnets if isinstance(subnets, list) else [])
            if isinstance(config, Mapping)
            and (ref := _ref(_properties(config).get("subnet"))) is not None
        ]
        public = any(
            _ref(_properties(config).get("publicIPAddress")) is not None
            for config in (frontends if isinstance(frontends, list) else [])
            if isinstance(config, Mapping)
        )
        if public and gateway_subnets:
            self.public_subnets.update(gateway_subnets)
            self.public_frontends[_key(body["id"])] = gateway_subnets[0]

    # --- resolving the ends of a flow -------------------------------------------------------
    def subnet(self, subnet_id: str) -> Subnet:
        try:
            return self.subnets[_key(subnet_id)]
        except KeyError:
            raise KeyError(f"no subnet {subnet_id} in the view") from None

    def subnet_of(self, ip: str | ipaddress.IPv4Address) -> Subnet | None:
        """The subnet holding `ip` (its NIC's, else the first whose prefix contains it)."""
        address = ipaddress.IPv4Address(ip)
        interface = self.interfaces.get(address)
        if interface is not None and interface.subnet in self.subnets:
            return self.subnets[interface.subnet]
        return next((s for s in self.subnets.values() if s.contains(address)), None)

    def _virtual_network_tags(self, subnet: Subnet | None) -> dict[str, tuple[Network, ...]]:
        if subnet is None:
            return {}
        return {VIRTUAL_NETWORK: self.vnets.get(subnet.vnet) or subnet.prefixes}

    def _private(self, subnet: Subnet, ip: ipaddress.IPv4Address) -> _End:
        interface = self.interfaces.get(ip)
        groups = interface.groups if interface is not None else frozenset()
        return _End(
            subnet,
            Address(ip=ip, tags=frozenset({VIRTUAL_NETWORK.lower()}), groups=groups),
            interface,
            public_path=(interface is not None and interface.public)
            or subnet.id in self.public_subnets,
        )

    def _resolve(self, endpoint: Endpoint | str) -> _End:
        if isinstance(endpoint, str):
            endpoint = Endpoint.in_subnet(endpoint)
        if endpoint.kind == "subnet":
            subnet = self.subnet(endpoint.value)
            return self._private(subnet, subnet.some_address())
        if endpoint.kind == "address":
            ip = ipaddress.IPv4Address(endpoint.value)
            found = self.subnet_of(ip)
            if found is None:
                raise KeyError(f"{ip} is in no subnet of the view")
            return self._private(found, ip)
        if endpoint.kind == "public":
            gateway_subnet = self.public_frontends.get(_key(endpoint.value))
            if gateway_subnet is None or gateway_subnet not in self.subnets:
                raise KeyError(f"{endpoint.value} has no public frontend in the view")
            subnet = self.subnets[gateway_subnet]
            return _End(subnet, self._private(subnet, subnet.some_address()).address, None, True)
        return _End(None, _outside_address(endpoint))

    # --- judging ----------------------------------------------------------------------------
    def _nsg(
        self,
        nsg_id: str | None,
        direction: Direction,
        source: Address,
        destination: Address,
        port: int,
        protocol: str,
        tags: Mapping[str, tuple[Network, ...]],
    ) -> Verdict | None:
        if nsg_id is None:
            return None
        if nsg_id not in self.nsgs:
            raise KeyError(f"the NSG {nsg_id} is referenced but not in the view")
        name, rules = self.nsgs[nsg_id]
        return evaluate(rules, direction, source, destination, port, protocol, tags, nsg=name)

    def _filter(
        self,
        end: _End,
        direction: Direction,
        source: Address,
        destination: Address,
        port: int,
        protocol: str,
    ) -> list[Verdict]:
        """The NSG verdicts at one end: outbound NIC then subnet; inbound subnet then NIC."""
        assert end.subnet is not None
        tags = self._virtual_network_tags(end.subnet)
        nic = end.interface.nsg if end.interface is not None else None
        order = (nic, end.subnet.nsg) if direction == "Outbound" else (end.subnet.nsg, nic)
        verdicts = []
        for nsg_id in order:
            verdict = self._nsg(nsg_id, direction, source, destination, port, protocol, tags)
            if verdict is not None:
                verdicts.append(verdict)
                if not verdict.allowed:
                    break
        return verdicts

    def flow(
        self, source: Endpoint | str, destination: Endpoint, port: int, protocol: str = "Tcp"
    ) -> Verdict:
        """Whether `source` (a subnet id or an endpoint) reaches `destination` on `port`.

        Allowed verdicts name the rule that let the flow into its destination (or out of its
        source, for a destination outside the networks); denied ones the first obstacle.
        """
        src = self._resolve(source)
        dst = self._resolve(destination)
        leaves = dst.subnet is None or destination.kind == "public"
        if src.subnet is None and dst.subnet is None:
            raise ValueError("a flow needs at least one end inside the view's networks")
        decided: list[Verdict] = []
        if src.subnet is not None:
            # Outbound, the destination is seen before any translation: a public frontend is
            # an Internet address.
            seen = (
                _outside_address(Endpoint.internet())
                if destination.kind == "public"
                else dst.address
            )
            decided += self._filter(src, "Outbound", src.address, seen, port, protocol)
            if decided and not decided[-1].allowed:
                return decided[-1]
            path = self._path(src, dst, destination, port, protocol)
            if not path.allowed:
                return path
            if leaves and dst.subnet is None:
                return decided[-1] if decided else path
        # Inbound at the destination, after public addresses are translated.
        assert dst.subnet is not None
        arriving = src.address
        if src.subnet is None or destination.kind == "public":
            if src.subnet is None and not dst.public_path and not _is_platform(src.address):
                return Verdict(
                    False,
                    "NoPublicAddress",
                    None,
                    f"nothing public leads to {destination}: no public IP or public frontend",
                )
            if src.subnet is not None:
                arriving = _outside_address(Endpoint.internet())
        inbound = self._filter(dst, "Inbound", arriving, dst.address, port, protocol)
        if inbound:
            return inbound[-1] if not inbound[-1].allowed else inbound[0]
        return Verdict(True, "NoSecurityGroup", None, f"no NSG filters {destination}")

    def _path(
        self, src: _End, dst: _End, destination: Endpoint, port: int, protocol: str
    ) -> Verdict:
        assert src.subnet is not None
        if destination.kind in ("address", "subnet"):
            assert dst.subnet is not None
            if dst.subnet.vnet != src.subnet.vnet:
                return Verdict(
                    False,
                    "NoRoute",
                    None,
                    f"{src.subnet.name} and {dst.subnet.name} are in different virtual networks",
                )
            return Verdict(True, "VirtualNetwork", None, "within the virtual network")
        if destination.kind == "service":
            endpoint = SERVICE_ENDPOINTS.get(destination.value.split(".", 1)[0].lower())
            if endpoint is not None and endpoint in src.subnet.service_endpoints:
                return Verdict(True, "ServiceEndpoint", None, f"through the {endpoint} endpoint")
        return self._internet_path(src, port)

    def _internet_path(self, src: _End, port: int) -> Verdict:
        subnet = src.subnet
        assert subnet is not None
        if subnet.route_table is not None:
            for route in self.route_tables.get(subnet.route_table, []):
                properties = _properties(route)
                if str(properties.get("addressPrefix", "")) not in ("0.0.0.0/0", "Internet"):
                    continue
                hop = str(properties.get("nextHopType", ""))
                name = str(route.get("name", "default route"))
                if hop == "None":
                    return Verdict(False, "RouteDropsTraffic", None, f"route {name} drops it")
                if hop in ("VirtualAppliance", "VirtualNetworkGateway"):
                    return Verdict(True, "Route", None, f"route {name} to a {hop}")
        if subnet.nat_gateway is not None:
            nat = self.nat_gateways.get(subnet.nat_gateway)
            properties = _properties(nat) if nat is not None else {}
            addresses = _refs(properties.get("publicIpAddresses")) + _refs(
                properties.get("publicIpPrefixes")
            )
            name = subnet.nat_gateway.rsplit("/", 1)[-1]
            if nat is None or addresses:
                return Verdict(True, "NatGateway", None, f"through the NAT gateway {name}")
            return Verdict(
                False, "NatGatewayWithoutPublicIp", None, f"the NAT gateway {name} has no public IP"
            )
        if src.interface is not None and src.interface.public:
            return Verdict(True, "InstancePublicIp", None, "through the NIC's public IP")
        if subnet.id in self.public_subnets and src.interface is None:
            # An application gateway's or Bastion's instances (or a scale set's with public
            # IPs) leave through their own public addresses.
            return Verdict(True, "InstancePublicIp", None, "through the instances' public IPs")
        default = subnet.default_outbound_access
        if default is None:
            default = self.unset_default_outbound
        if default:
            return Verdict(True, "DefaultOutboundAccess", None, "through default outbound access")
        return Verdict(
            False,
            "NoOutboundPath",
            None,
            f"the subnet {subnet.name} is private (no default outbound access) and has no NAT "
            "gateway, public IP or route to a firewall: nothing reaches the Internet",
        )

    def outbound_internet(
        self, subnet_id: str, port: int = 443, *, address: str | None = None
    ) -> Verdict:
        """Whether servers of the subnet (or the one at `address`) reach the Internet."""
        source = Endpoint.address(address) if address else Endpoint.in_subnet(subnet_id)
        src = self._resolve(source)
        assert src.subnet is not None
        outside = _outside_address(Endpoint.internet())
        nsgs = self._filter(src, "Outbound", src.address, outside, port, "Tcp")
        if nsgs and not nsgs[-1].allowed:
            return nsgs[-1]
        path = self._internet_path(src, port)
        if not path.allowed or not nsgs:
            return path
        return Verdict(True, nsgs[-1].rule, nsgs[-1].nsg, f"{nsgs[-1].detail}, {path.detail}")

    def sql_access(self, server_id: str, source: Endpoint | str) -> Verdict:
        """Whether the SQL server's own firewall admits `source` (a subnet or the Internet)."""
        key = _key(server_id)
        server = self.sql_servers.get(key)
        if server is None:
            raise KeyError(f"no SQL server {server_id} in the view")
        if str(_properties(server).get("publicNetworkAccess", "Enabled")) == "Disabled":
            return Verdict(False, "PublicNetworkAccessDisabled", None, "public access is off")
        end = self._resolve(source)
        if end.subnet is not None:
            for name, subnet, _ in self.sql_vnet_rules.get(key, []):
                if subnet == end.subnet.id and "microsoft.sql" in end.subnet.service_endpoints:
                    return Verdict(True, name, None, f"virtual network rule {name}")
        for name, start, end_ip in self.sql_firewall_rules.get(key, []):
            if start == end_ip == "0.0.0.0":
                if end.subnet is not None:
                    return Verdict(True, name, None, "Azure services may connect")
                return Verdict(True, name, None, "any Azure customer's resources may connect")
            if end.subnet is None:
                return Verdict(True, name, None, f"IP firewall rule {name} ({start}-{end_ip})")
        return Verdict(
            False,
            "SqlFirewall",
            None,
            f"no virtual network rule or IP firewall rule of the server admits {source}",
        )


def _is_platform(address: Address) -> bool:
    # Azure's infrastructure reaches into subnets without public addresses.
    return bool(address.tags & {"azureloadbalancer", "gatewaymanager"})


def _outside_address(endpoint: Endpoint) -> Address:
    """An address outside the networks, with the tags it belongs to."""
    if endpoint.kind == "service":
        tag = endpoint.value
        if tag.lower() == "azureloadbalancer":
            # service-tags-overview.md: the host's virtual IP, also part of VirtualNetwork.
            return Address.of(AZURE_HOST_ADDRESS, [tag, VIRTUAL_NETWORK])
        tags = [tag, INTERNET, "AzureCloud"]
        if endpoint.region:
            region = endpoint.region.replace(" ", "")
            tags += [f"{tag.split('.', 1)[0]}.{region}", f"AzureCloud.{region}"]
        # Azure services' public addresses are Internet addresses (the Internet tag "includes
        # the Azure-owned public IP address space").
        return Address.of(_SOME_INTERNET_ADDRESS, tags)
    return Address.of(_SOME_INTERNET_ADDRESS, [INTERNET])


# --- what a server's setup can reach ------------------------------------------------------------

#: A host of the setup's downloads, standing for every one of them (all HTTPS on the Internet).
DOWNLOAD_HOST: Final = "www.powershellgallery.com"


@dataclass(frozen=True)
class Blocked:
    """A flow the setup needs that the network does not let through."""

    flow: Flow
    destination: Endpoint
    port: int
    verdict: Verdict

    @property
    def message(self) -> str:
        return (
            f"{self.flow.purpose}: TCP {self.port} to {self.destination} is blocked "
            f"({self.verdict.detail or self.verdict.rule})"
        )


def setup_blockers(
    view: NetworkView,
    subnet_id: str,
    role: str,
    *,
    region: str,
    address: str | None = None,
    controller_address: str | None = None,
    sql_server_id: str | None = None,
) -> list[Blocked]:
    """What keeps a server of `role` (a setup role: frontend, controller, standalone, lifetime)
    in `subnet_id` (at `address`, if known) from reaching what its setup needs.

    The needs are `requirements.setup_needs(role)`: the database (and, with `sql_server_id`,
    that server's own firewall), the downloads, Key Vault, the file share and, for a front-end,
    its controller at `controller_address` (an IP address). Empty when nothing is blocked.
    """
    source: Endpoint = Endpoint.address(address) if address else Endpoint.in_subnet(subnet_id)
    destinations: dict[Party, Endpoint] = {
        Party.SQL: Endpoint.service("Sql", region),
        Party.KEY_VAULT: Endpoint.service("AzureKeyVault", region),
        Party.STORAGE: Endpoint.service("Storage", region),
        Party.DOWNLOADS: Endpoint.internet(DOWNLOAD_HOST),
    }
    blocked: list[Blocked] = []
    for flow in setup_needs(role):
        if flow.destination is Party.CONTROLLER:
            if controller_address is None:
                raise ValueError(f"a {role} needs the controller's address")
            destination = Endpoint.address(controller_address)
        else:
            destination = destinations[flow.destination]
        if flow.destination is Party.SQL and sql_server_id is not None:
            access = view.sql_access(sql_server_id, source)
            if not access.allowed:
                blocked.append(Blocked(flow, destination, flow.ports[0].low, access))
                continue
        for port_range in flow.ports:
            for port in port_range.edges:
                verdict = view.flow(source, destination, port)
                if not verdict.allowed:
                    blocked.append(Blocked(flow, destination, port, verdict))
    return blocked

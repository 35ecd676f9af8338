"""OutSystems' flow matrix against the platform's network, for every layout the spec allows.

The matrix (`outsystems.network.requirements`) comes from OutSystems' network requirements page
(OutSystems/docs-product `src/setup/network-requirements.md` @ 0770a9ca1a5d...), Microsoft's
Azure SQL, Application Gateway and Bastion docs and what the setup needs; the verdicts come from
`outsystems.network.reachability`, whose oracle is Microsoft's NSG, service tag and outbound
access documentation (see its tests). The network is the desired graph of
`outsystems.topology.build_topology` for the example specs in `examples/`.

Layouts: a production farm, a standalone production, a farm with Bastion (all in a new VNet,
with this app's NSGs and NAT gateway) and the user's own subnets, modelled here as a sample
network that meets the documented prerequisites (a `Microsoft.Sql` endpoint on the environment
subnets, the user's own NAT gateway) and carries no NSG: what the app guarantees there is only
what its own resources decide (no public address on any server, SQL reachable only through the
virtual network rules); filtering between the user's subnets is the user's.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from outsystems.names import ENVIRONMENTS
from outsystems.network.nsg import Address, Verdict, evaluate, rule_problems, security_rules
from outsystems.network.reachability import Endpoint, NetworkView
from outsystems.network.requirements import FORBIDDEN, REQUIRED, Flow, Party
from outsystems.resource_types import APP_GATEWAY, BASTION_HOST, NIC, NSG, SCALE_SET, SQL_SERVER
from outsystems.spec import PlatformSpec, parse_spec
from outsystems.topology import ResourceGraph, build_topology

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
SUB = "11111111-2222-3333-4444-555555555555"
CORP = f"/subscriptions/{SUB}/resourceGroups/net-rg/providers/Microsoft.Network"
CORP_VNET = f"{CORP}/virtualNetworks/corp-vnet"
CORP_SUBNETS = {key: index for index, key in enumerate(("dev", "test", "prod", "life", "gateway"))}


def example(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((EXAMPLES / f"{name}.json").read_text())
    return loaded


LAYOUTS: dict[str, dict[str, Any]] = {
    "farm": example("spec-farm"),
    "standalone": example("spec-standalone"),
    "farm-bastion": {**example("spec-farm"), "bastion": True},
    "existing-subnets": {
        **example("spec-farm"),
        "network": {"existingSubnetIds": {k: f"{CORP_VNET}/subnets/{k}" for k in CORP_SUBNETS}},
    },
}
NEW_VNET_LAYOUTS = ("farm", "standalone", "farm-bastion")


def sample_user_network() -> list[dict[str, Any]]:
    """The user's VNet: their subnets, Microsoft.Sql endpoints, their NAT gateway, no NSG."""
    nat = {"id": f"{CORP}/natGateways/corp-nat"}
    subnets = []
    for key, index in CORP_SUBNETS.items():
        properties: dict[str, Any] = {"addressPrefix": f"10.50.{index}.0/24"}
        if key != "gateway":
            properties |= {
                "serviceEndpoints": [{"service": "Microsoft.Sql"}],
                "natGateway": nat,
                "defaultOutboundAccess": False,
            }
        subnets.append({"name": key, "properties": properties})
    return [
        {
            "id": CORP_VNET,
            "type": "Microsoft.Network/virtualNetworks",
            "properties": {
                "addressSpace": {"addressPrefixes": ["10.50.0.0/16"]},
                "subnets": subnets,
            },
        },
        {
            "id": nat["id"],
            "type": "Microsoft.Network/natGateways",
            "sku": {"name": "Standard"},
            "properties": {"publicIpAddresses": [{"id": f"{CORP}/publicIPAddresses/corp-nat-ip"}]},
        },
    ]


def bodies(graph: ResourceGraph) -> list[dict[str, Any]]:
    return [{**r.body, "id": r.id, "type": r.type} for r in graph]


# --- the platform's parties as endpoints ------------------------------------------------------


@dataclass
class Platform:
    """Where each party of the matrix is in one built platform."""

    spec: PlatformSpec
    graph: ResourceGraph
    view: NetworkView
    subnets: dict[str, str] = field(default_factory=dict)
    servers: dict[str, str] = field(default_factory=dict)
    gateways: dict[str, str] = field(default_factory=dict)
    sql_servers: dict[str, str] = field(default_factory=dict)
    gateway_subnet: str = ""
    bastion_subnet: str | None = None

    @classmethod
    def build(cls, layout: str) -> Platform:
        spec = parse_spec("acme", LAYOUTS[layout], default_subscription_id=SUB)
        graph = build_topology(spec)
        extra = sample_user_network() if layout == "existing-subnets" else []
        platform = cls(spec, graph, NetworkView.from_bodies([*bodies(graph), *extra]))
        for env in ENVIRONMENTS:
            nic = next(r for r in graph.for_environment(env) if r.type == NIC)
            config = nic.body["properties"]["ipConfigurations"][0]["properties"]
            platform.subnets[env] = config["subnet"]["id"]
            # A static address in a new VNet; in the user's subnets, the first one Azure hands
            # out (x.x.x.4), as it would to the environment's only VM.
            address = config.get("privateIPAddress") or str(
                platform.view.subnet(config["subnet"]["id"]).prefixes[0].network_address + 4
            )
            platform.servers[env] = address
            platform.gateways[env] = next(
                r.id for r in graph.for_environment(env) if r.type == APP_GATEWAY
            )
            platform.sql_servers[env] = next(
                r.id for r in graph.for_environment(env) if r.type == SQL_SERVER
            )
        gateway = graph.get(platform.gateways["dev"]).body["properties"]
        platform.gateway_subnet = gateway["gatewayIPConfigurations"][0]["properties"]["subnet"][
            "id"
        ]
        for host in (r for r in graph if r.type == BASTION_HOST):
            config = host.body["properties"]["ipConfigurations"][0]["properties"]
            platform.bastion_subnet = config["subnet"]["id"]
        return platform

    @property
    def farm(self) -> bool:
        return any(r.type == SCALE_SET for r in self.graph)

    def frontends(self, env: str) -> list[Endpoint]:
        if env == "prod" and self.farm:
            # Two scale-set instances at addresses Azure could hand out (not the controller's).
            prefix = self.view.subnet(self.subnets["prod"]).prefixes[0]
            return [
                Endpoint.address(str(prefix.broadcast_address - 1)),
                Endpoint.address(str(prefix.broadcast_address - 2)),
            ]
        return [Endpoint.address(self.servers[env])]

    def controller(self, env: str) -> list[Endpoint]:
        return [Endpoint.address(self.servers[env])]

    def environment_servers(self, env: str) -> list[Endpoint]:
        return list(dict.fromkeys([*self.controller(env), *self.frontends(env)]))

    def party(self, party: Party, env: str) -> list[Endpoint]:
        """Where `party` is in environment `env` (or platform-wide for shared parties)."""
        region = self.spec.location
        match party:
            case Party.FRONTEND:
                return self.frontends(env)
            case Party.CONTROLLER:
                return self.controller(env)
            case Party.ENVIRONMENT_SERVERS | Party.SERVERS:
                return self.environment_servers(env)
            case Party.LIFETIME:
                return self.frontends("life")
            case Party.GATEWAY:
                return [Endpoint.public(self.gateways[env])]
            case Party.SQL:
                return [Endpoint.service("Sql", region)]
            case Party.KEY_VAULT:
                return [Endpoint.service("AzureKeyVault", region)]
            case Party.STORAGE:
                return [Endpoint.service("Storage", region)]
            case Party.NATIVE_BUILDER:
                return [Endpoint.internet("nativebuilder.api.outsystems.com")]
            case Party.DOWNLOADS:
                return [Endpoint.internet("www.powershellgallery.com")]
            case Party.GATEWAY_MANAGER:
                return [Endpoint.service("GatewayManager")]
            case Party.AZURE_LOAD_BALANCER:
                return [Endpoint.service("AzureLoadBalancer")]
            case Party.BASTION:
                return [Endpoint.in_subnet(self.bastion_subnet)] if self.bastion_subnet else []
            case Party.END_USERS | Party.DEVELOPMENT_TOOLS | Party.INTERNET:
                return [Endpoint.internet()]
        raise AssertionError(party)

    def gateway_inside(self, env: str) -> Endpoint:
        """The gateway as a source or an infrastructure destination: its instances' subnet."""
        return Endpoint.in_subnet(self.gateway_subnet)


@dataclass(frozen=True)
class Check:
    flow: Flow
    source: Endpoint
    destination: Endpoint
    port: int
    environment: str
    sql_server: str | None = None

    def __str__(self) -> str:
        return f"[{self.environment}] {self.flow}: {self.source} -> {self.destination}:{self.port}"


def _pairs(platform: Platform, flow: Flow) -> Iterator[tuple[str, Endpoint, Endpoint]]:
    source, destination = flow.source, flow.destination
    if Party.LIFETIME in (source, destination):
        # LifeTime and every server of each other environment, both ways.
        for env in ("dev", "test", "prod"):
            for a in platform.party(source, env):
                for b in platform.party(destination, env):
                    yield env, a, b
        return
    for env in ENVIRONMENTS:
        if source is Party.GATEWAY:
            sources = [platform.gateway_inside(env)]
        else:
            sources = platform.party(source, env)
        if destination is Party.GATEWAY and source in (
            Party.GATEWAY_MANAGER,
            Party.AZURE_LOAD_BALANCER,
        ):
            destinations = [platform.gateway_inside(env)]
        else:
            destinations = platform.party(destination, env)
        for a in sources:
            for b in destinations:
                if a != b:  # a server that is its own controller talks to itself locally
                    yield env, a, b


def checks(platform: Platform, flows: tuple[Flow, ...]) -> list[Check]:
    found: list[Check] = []
    for flow in flows:
        for env, source, destination in _pairs(platform, flow):
            sql = platform.sql_servers[env] if flow.destination is Party.SQL else None
            for port_range in flow.ports:
                for port in port_range.edges:
                    found.append(Check(flow, source, destination, port, env, sql))
    return list(dict.fromkeys(found))


def judge(platform: Platform, check: Check) -> Verdict:
    if check.sql_server is not None:
        access = platform.view.sql_access(check.sql_server, check.source)
        if not access.allowed or check.source.kind == "internet":
            return access
    return platform.view.flow(check.source, check.destination, check.port)


@pytest.fixture(params=sorted(LAYOUTS), scope="module")
def platform(request: pytest.FixtureRequest) -> Platform:
    return Platform.build(request.param)


# --- the matrix ---------------------------------------------------------------------------------


def test_every_required_flow_is_allowed(platform: Platform) -> None:
    found = checks(platform, REQUIRED)
    assert len(found) > 50
    blocked = [f"{c}: {v.detail or v.rule}" for c in found if not (v := judge(platform, c)).allowed]
    assert blocked == [], "\n".join(blocked)


def test_every_forbidden_flow_is_denied(platform: Platform) -> None:
    found = checks(platform, FORBIDDEN)
    assert len(found) > 20
    open_ = [f"{c}: {v.detail or v.rule}" for c in found if (v := judge(platform, c)).allowed]
    assert open_ == [], "\n".join(open_)


@pytest.mark.parametrize("layout", NEW_VNET_LAYOUTS)
def test_our_nsgs_deny_the_internet_even_if_a_server_had_a_public_ip(layout: str) -> None:
    # Defence in depth: the environment NSGs themselves keep the Internet out, whatever
    # address a server ends up with (NSG verdict alone, as if the packet had arrived).
    platform = Platform.build(layout)
    for env in ENVIRONMENTS:
        nsg = platform.view.subnet(platform.subnets[env]).nsg
        assert nsg is not None
        name, rules = platform.view.nsgs[nsg]
        for flow in FORBIDDEN:
            if flow.destination is not Party.SERVERS:
                continue
            for port_range in flow.ports:
                for port in port_range.edges:
                    verdict = evaluate(
                        rules, "Inbound", Address.of("203.0.113.9", ["Internet"]),
                        platform.servers[env], port, nsg=name,
                    )  # fmt: skip
                    assert not verdict.allowed, (env, port, verdict)


@pytest.mark.parametrize("layout", NEW_VNET_LAYOUTS)
def test_environments_are_isolated_except_for_lifetime(layout: str) -> None:
    # Only LifeTime's 80/443 cross environments; dev cannot reach production's services.
    platform = Platform.build(layout)
    view = platform.view
    for source_env, target_env in (("dev", "prod"), ("test", "dev"), ("prod", "test")):
        source = Endpoint.address(platform.servers[source_env])
        for target in platform.environment_servers(target_env):
            for port in (80, 443, 3389, 5672, 12000, 12001, 12002, 1433):
                verdict = view.flow(source, target, port)
                assert not verdict.allowed, (source_env, target_env, port, verdict)
    life = Endpoint.address(platform.servers["life"])
    for target in platform.environment_servers("prod"):
        for port in (3389, 5672, 12000, 12001, 12002):
            assert not view.flow(life, target, port).allowed
    # Nothing but the gateway's backend port comes from the gateway subnet.
    gateway = Endpoint.in_subnet(platform.gateway_subnet)
    for target in platform.environment_servers("prod"):
        for port in (443, 3389, 12000, 5672):
            assert not view.flow(gateway, target, port).allowed


@pytest.mark.parametrize("layout", NEW_VNET_LAYOUTS)
def test_lifetime_also_reaches_the_environments_through_their_gateways(layout: str) -> None:
    # The page: "When the environments have load balancers, you can establish the connectivity
    # between LifeTime and the load balancers of the environments it manages."
    platform = Platform.build(layout)
    life = Endpoint.address(platform.servers["life"])
    for env in ("dev", "test", "prod"):
        to_env = platform.view.flow(life, Endpoint.public(platform.gateways[env]), 443)
        assert to_env.allowed, to_env
        back = platform.view.flow(
            Endpoint.address(platform.servers[env]), Endpoint.public(platform.gateways["life"]), 443
        )
        assert back.allowed, back


@pytest.mark.parametrize("layout", NEW_VNET_LAYOUTS)
def test_our_nsgs_hold_exactly_the_matrix(layout: str) -> None:
    # No less: every required flow is allowed (above). No more: every Allow rule of our NSGs is
    # the rule that lets some required flow through, and ARM would accept every rule set.
    platform = Platform.build(layout)
    deciding = {
        (v.nsg, v.rule)
        for c in checks(platform, REQUIRED)
        if (v := judge(platform, c)).allowed and v.nsg is not None
    }
    for resource in (r for r in platform.graph if r.type == NSG):
        rules = security_rules(resource.body)
        assert rule_problems(rules) == [], resource.name
        for rule in rules:
            properties = rule["properties"]
            assert properties.get("description"), f"{resource.name}/{rule['name']} undescribed"
            if properties["access"] == "Allow":
                assert (resource.name, rule["name"]) in deciding, (
                    f"{resource.name}/{rule['name']} lets nothing of the matrix through"
                )


def test_in_the_users_subnets_the_app_guarantees_only_its_own_resources() -> None:
    platform = Platform.build("existing-subnets")
    view = platform.view
    # Guaranteed by the app: no server has a public address, SQL admits only the subnets'
    # virtual network rules.
    for env in ENVIRONMENTS:
        server = Endpoint.address(platform.servers[env])
        assert view.flow(Endpoint.internet(), server, 3389).rule == "NoPublicAddress"
        assert not view.sql_access(platform.sql_servers[env], Endpoint.internet()).allowed
        other = "test" if env == "dev" else "dev"
        assert not view.sql_access(platform.sql_servers[env], platform.subnets[other]).allowed
    # Not the app's: with no NSG of the user's, their subnets do not keep environments apart.
    dev = Endpoint.address(platform.servers["dev"])
    assert view.flow(dev, Endpoint.address(platform.servers["prod"]), 12000).allowed


def test_the_matrix_ports_are_checked_at_both_ends_of_each_range() -> None:
    platform = Platform.build("farm")
    ports = {c.port for c in checks(platform, REQUIRED) if c.flow.destination is Party.SQL}
    assert ports == {1433, 11000, 11999}

"""OutSystems' flow matrix against the network the app really built, for every layout.

Each layout is deployed end to end on the local host and the ARM simulator (with the app's role
and the OutSystems server model, so every server's setup also meets the network it needs); then
the live resources, as ARM returns them (virtual networks and subnets, NSGs, the NAT gateway,
NICs and the scale set's instances' NICs with the addresses they got, gateways, Bastion, SQL
servers and their rules), are read into `outsystems.network.reachability.NetworkView`, and every
required flow of `outsystems.network.requirements.REQUIRED` must be allowed and every
`FORBIDDEN` one denied.

Oracles: the matrix is OutSystems' network requirements page (OutSystems/docs-product
`src/setup/network-requirements.md` @ 0770a9ca...) with Microsoft's Azure SQL, Application
Gateway and Bastion pages, as `requirements.py` cites them; the verdicts follow Microsoft's NSG,
service tag and default outbound access documentation (see `reachability.py` and its tests).

Layouts: a production farm, a standalone production and a farm with Bastion, each in a new VNet
of the app's; and a farm in the user's own subnets, which the user created first, as the
deployment guide asks: the environment subnets with the `Microsoft.Sql` service endpoint and
their own NAT gateway (no default outbound access), a subnet for the gateways, no NSG of theirs.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from outsystems.names import ENVIRONMENTS
from outsystems.network.nsg import Verdict
from outsystems.network.reachability import Endpoint, NetworkView
from outsystems.network.requirements import FORBIDDEN, REQUIRED, Flow, Party
from outsystems.resource_types import APP_GATEWAY, BASTION_HOST, SCALE_SET, SQL_SERVER, VM
from outsystems.spec import parse_spec
from outsystems.topology import build_topology
from tests.e2e.test_deploy import sample
from tests.e2e.test_setup_outcomes import apps_role
from tests.support.stack import SUBSCRIPTION, Stack

CORP_GROUP = f"/subscriptions/{SUBSCRIPTION}/resourceGroups/corp-network"
CORP = f"{CORP_GROUP}/providers/Microsoft.Network"
CORP_VNET = f"{CORP}/virtualNetworks/corp-vnet"
CORP_SUBNETS = {key: n for n, key in enumerate(("dev", "test", "prod", "life", "gateway"))}


def layout_spec(layout: str) -> dict[str, Any]:
    farm = sample("spec-farm.json")
    if layout == "farm":
        return farm
    if layout == "standalone":
        return sample("spec-standalone.json")
    if layout == "farm-bastion":
        return {**farm, "bastion": True}
    assert layout == "existing-subnets"
    subnets = {key: f"{CORP_VNET}/subnets/{key}" for key in CORP_SUBNETS}
    return {**farm, "network": {"existingSubnetIds": subnets}}


LAYOUTS = ("farm", "standalone", "farm-bastion", "existing-subnets")


def ok(answer: Any) -> Any:
    assert answer.status < 400, (answer.status, answer.body)
    return answer.body


def create_the_users_network(stack: Stack, location: str) -> None:
    """What the user has before bringing their subnets: a VNet whose environment subnets have
    the Microsoft.Sql endpoint and a NAT gateway, and a subnet for the gateways."""
    sim = stack.sim
    ok(sim.call("PUT", CORP_GROUP, {"location": location}))
    address = f"{CORP}/publicIPAddresses/corp-nat-ip"
    public_ip = {
        "location": location,
        "sku": {"name": "Standard"},
        "properties": {"publicIPAllocationMethod": "Static"},
    }
    ok(sim.call("PUT", address, public_ip))
    nat = f"{CORP}/natGateways/corp-nat"
    nat_body = {
        "location": location,
        "sku": {"name": "Standard"},
        "properties": {"publicIpAddresses": [{"id": address}]},
    }
    ok(sim.call("PUT", nat, nat_body))
    subnets = []
    for key, index in CORP_SUBNETS.items():
        properties: dict[str, Any] = {"addressPrefix": f"10.50.{index}.0/24"}
        if key != "gateway":
            properties |= {
                "serviceEndpoints": [{"service": "Microsoft.Sql", "locations": [location]}],
                "natGateway": {"id": nat},
                "defaultOutboundAccess": False,
            }
        subnets.append({"name": key, "properties": properties})
    vnet = {
        "location": location,
        "properties": {"addressSpace": {"addressPrefixes": ["10.50.0.0/16"]}, "subnets": subnets},
    }
    ok(sim.call("PUT", CORP_VNET, vnet))
    sim.fast_forward(0)


# --- the live platform's parties ----------------------------------------------------------------


@dataclass
class LivePlatform:
    """Where each party of the matrix is in a deployed platform, read from the simulator."""

    location: str
    view: NetworkView
    servers: dict[str, str] = field(default_factory=dict)
    frontend_addresses: list[str] = field(default_factory=list)
    gateways: dict[str, str] = field(default_factory=dict)
    sql_servers: dict[str, str] = field(default_factory=dict)
    gateway_subnet: str = ""
    bastion_subnet: str | None = None

    @classmethod
    def read(cls, stack: Stack, spec: dict[str, Any]) -> LivePlatform:
        sim = stack.sim
        parsed = parse_spec("acme", spec, default_subscription_id=SUBSCRIPTION)
        graph = build_topology(parsed)
        live = {r["id"].lower(): r["body"] for r in sim.resources()}
        bodies = list(live.values())
        for scale_set in (r for r in graph if r.type == SCALE_SET):
            nics = ok(sim.call("GET", f"{scale_set.id}/networkInterfaces"))["value"]
            bodies += nics
        platform = cls(parsed.location, NetworkView.from_bodies(bodies))
        for nic in bodies[len(live) :]:
            configuration = nic["properties"]["ipConfigurations"][0]["properties"]
            platform.frontend_addresses.append(configuration["privateIPAddress"])
        for env in ENVIRONMENTS:
            vm = live[next(r.id for r in graph.for_environment(env) if r.type == VM).lower()]
            nic = live[vm["properties"]["networkProfile"]["networkInterfaces"][0]["id"].lower()]
            configuration = nic["properties"]["ipConfigurations"][0]["properties"]
            platform.servers[env] = configuration["privateIPAddress"]
            platform.gateways[env] = next(
                r.id for r in graph.for_environment(env) if r.type == APP_GATEWAY
            )
            platform.sql_servers[env] = next(
                r.id for r in graph.for_environment(env) if r.type == SQL_SERVER
            )
        gateway = live[platform.gateways["dev"].lower()]["properties"]
        platform.gateway_subnet = gateway["gatewayIPConfigurations"][0]["properties"]["subnet"][
            "id"
        ]
        for host in (r for r in graph if r.type == BASTION_HOST):
            config = live[host.id.lower()]["properties"]["ipConfigurations"][0]["properties"]
            platform.bastion_subnet = config["subnet"]["id"]
        return platform

    def frontends(self, env: str) -> list[Endpoint]:
        if env == "prod" and self.frontend_addresses:
            return [Endpoint.address(a) for a in self.frontend_addresses]
        return [Endpoint.address(self.servers[env])]

    def controller(self, env: str) -> list[Endpoint]:
        return [Endpoint.address(self.servers[env])]

    def environment_servers(self, env: str) -> list[Endpoint]:
        return list(dict.fromkeys([*self.controller(env), *self.frontends(env)]))

    def party(self, party: Party, env: str) -> list[Endpoint]:
        region = self.location
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


def pairs(platform: LivePlatform, flow: Flow) -> Iterator[tuple[str, Endpoint, Endpoint]]:
    """Who talks to whom for one row of the matrix, environment by environment."""
    source, destination = flow.source, flow.destination
    if Party.LIFETIME in (source, destination):
        # LifeTime and every server of each other environment, both ways.
        for env in ("dev", "test", "prod"):
            for a in platform.party(source, env):
                for b in platform.party(destination, env):
                    yield env, a, b
        return
    inside_gateway = Endpoint.in_subnet(platform.gateway_subnet)
    for env in ENVIRONMENTS:
        sources = [inside_gateway] if source is Party.GATEWAY else platform.party(source, env)
        infrastructure = source in (Party.GATEWAY_MANAGER, Party.AZURE_LOAD_BALANCER)
        if destination is Party.GATEWAY and infrastructure:
            destinations = [inside_gateway]
        else:
            destinations = platform.party(destination, env)
        for a in sources:
            for b in destinations:
                if a != b:  # a server that is its own controller talks to itself
                    yield env, a, b


def checks(platform: LivePlatform, flows: tuple[Flow, ...]) -> list[Check]:
    found: list[Check] = []
    for flow in flows:
        for env, source, destination in pairs(platform, flow):
            sql = platform.sql_servers[env] if flow.destination is Party.SQL else None
            for port_range in flow.ports:
                for port in port_range.edges:
                    found.append(Check(flow, source, destination, port, env, sql))
    return list(dict.fromkeys(found))


def judge(platform: LivePlatform, check: Check) -> Verdict:
    if check.sql_server is not None:
        # The server's own firewall first; from the Internet it is the whole answer.
        access = platform.view.sql_access(check.sql_server, check.source)
        if not access.allowed or check.source.kind == "internet":
            return access
    return platform.view.flow(check.source, check.destination, check.port)


@pytest.fixture(params=LAYOUTS)
def live(request: pytest.FixtureRequest, stack: Stack) -> LivePlatform:
    layout = str(request.param)
    spec = layout_spec(layout)
    if layout == "existing-subnets":
        create_the_users_network(stack, spec["location"])
    stack.sim.set_permissions(apps_role())
    assert stack.deploy("acme", spec).status_code == 202
    state = stack.wait("acme")
    statuses = {env: state["environments"][env]["status"] for env in ENVIRONMENTS}
    errors = {env: state["environments"][env].get("error") for env in ENVIRONMENTS}
    assert statuses == dict.fromkeys(ENVIRONMENTS, "Succeeded"), errors
    stack.sim.set_permissions(None)  # the test reads as an administrator would
    return LivePlatform.read(stack, spec)


def test_the_live_network_holds_the_flow_matrix(live: LivePlatform) -> None:
    required = checks(live, REQUIRED)
    assert len(required) > 50
    blocked = [f"{c}: {v.detail or v.rule}" for c in required if not (v := judge(live, c)).allowed]
    assert blocked == [], "\n".join(blocked)

    forbidden = checks(live, FORBIDDEN)
    assert len(forbidden) > 20
    open_ = [f"{c}: {v.detail or v.rule}" for c in forbidden if (v := judge(live, c)).allowed]
    assert open_ == [], "\n".join(open_)
    # A farm's front-ends are the scale set's instances, at the addresses they really got.
    if live.frontend_addresses:
        assert len(live.frontend_addresses) >= 2
        assert not set(live.frontend_addresses) & set(live.servers.values())

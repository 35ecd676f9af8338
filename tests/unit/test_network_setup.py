"""What a server's setup can reach, on the platform's network and on broken variants of it.

The needs are `outsystems.network.requirements.setup_needs` (sources cited there); the verdicts
come from `outsystems.network.reachability` (oracles cited in its tests).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from outsystems.network.reachability import NetworkView, setup_blockers
from outsystems.resource_types import NIC, NSG, SQL_SERVER, VNET
from outsystems.spec import parse_spec
from outsystems.topology import ResourceGraph, build_topology

SUB = "11111111-2222-3333-4444-555555555555"
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def farm() -> ResourceGraph:
    body = json.loads((EXAMPLES / "spec-farm.json").read_text())
    return build_topology(parse_spec("acme", body, default_subscription_id=SUB))


def bodies(graph: ResourceGraph) -> list[dict[str, Any]]:
    return [copy.deepcopy({**r.body, "id": r.id, "type": r.type}) for r in graph]


def server(graph: ResourceGraph, env: str) -> tuple[str, str, str]:
    nic = next(r for r in graph.for_environment(env) if r.type == NIC)
    config = nic.body["properties"]["ipConfigurations"][0]["properties"]
    sql = next(r for r in graph.for_environment(env) if r.type == SQL_SERVER)
    return config["subnet"]["id"], config["privateIPAddress"], sql.id


@pytest.mark.parametrize(
    ("env", "role"),
    [("dev", "standalone"), ("prod", "controller"), ("prod", "frontend"), ("life", "lifetime")],
)
def test_nothing_blocks_the_setup_on_the_platforms_network(env: str, role: str) -> None:
    graph = farm()
    subnet, address, sql = server(graph, env)
    view = NetworkView.from_bodies(bodies(graph))
    found = setup_blockers(
        view, subnet, role, region="westeurope", controller_address=address, sql_server_id=sql,
        address=None if role == "frontend" else address,
    )  # fmt: skip
    assert found == []


def test_without_the_nat_gateway_the_downloads_key_vault_and_storage_are_blocked() -> None:
    graph = farm()
    changed = bodies(graph)
    for body in changed:
        if body["type"] == VNET:
            for subnet in body["properties"]["subnets"]:
                subnet["properties"].pop("natGateway", None)
    subnet, _, sql = server(graph, "dev")
    view = NetworkView.from_bodies(changed)
    found = setup_blockers(view, subnet, "standalone", region="westeurope", sql_server_id=sql)
    assert {(b.destination.value, b.port) for b in found} == {
        ("www.powershellgallery.com", 443),
        ("AzureKeyVault", 443),
        ("Storage", 443),
    }
    # SQL still works: the subnet's Microsoft.Sql endpoint carries it.
    assert all("nothing reaches the Internet" in b.message for b in found)


def test_a_front_end_cut_off_from_its_controller_is_blocked() -> None:
    graph = farm()
    changed = bodies(graph)
    for body in changed:
        if body["type"] == NSG and body["id"].endswith("/acme-prod-nsg"):
            rules = body["properties"]["securityRules"]
            body["properties"]["securityRules"] = [
                r for r in rules if r["name"] not in ("allow-frontends-to-controller",
                                                       "allow-platform-servers")
            ]  # fmt: skip
    subnet, controller, sql = server(graph, "prod")
    view = NetworkView.from_bodies(changed)
    found = setup_blockers(
        view, subnet, "frontend", region="westeurope", controller_address=controller,
        sql_server_id=sql,
    )  # fmt: skip
    assert sorted(b.port for b in found) == [80, 5672, 12000]
    assert all(b.verdict.rule == "deny-vnet-inbound" for b in found)


def test_a_sql_server_without_the_subnets_rule_blocks_the_database() -> None:
    graph = farm()
    changed = [b for b in bodies(graph) if b["type"] != "Microsoft.Sql/servers/virtualNetworkRules"]
    subnet, _, sql = server(graph, "test")
    found = setup_blockers(
        NetworkView.from_bodies(changed), subnet, "standalone", region="westeurope",
        sql_server_id=sql,
    )  # fmt: skip
    assert [(b.flow.destination.value, b.verdict.rule) for b in found] == [
        ("Azure SQL Database", "SqlFirewall"),
        ("Azure SQL Database", "SqlFirewall"),
    ]


def test_a_front_end_needs_its_controllers_address() -> None:
    graph = farm()
    subnet, _, _ = server(graph, "prod")
    with pytest.raises(ValueError, match="controller"):
        setup_blockers(NetworkView.from_bodies(bodies(graph)), subnet, "frontend", region="x")

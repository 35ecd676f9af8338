"""The flow matrix against the tables of OutSystems' network requirements page.

Oracle: OutSystems/docs-product `src/setup/network-requirements.md` at commit
0770a9ca1a5d5042595c47e621d7ec085b10a2ef. The tables below are its rows (source, destination,
port) as published; the page's Oracle rows (1521) and SSH (22) do not apply to Windows servers
on Azure SQL.
"""

from __future__ import annotations

import pytest

from outsystems.network.requirements import (
    FORBIDDEN,
    REQUIRED,
    SETUP_ROLES,
    Party,
    inbound_ports,
    setup_needs,
)

RUNTIME_TABLE = [
    ("SysOps", "Server", 3389),
    ("End Users", "Front-End", 80),
    ("End Users", "Front-End", 443),
    ("Development Tools", "Front-End", 80),
    ("Development Tools", "Front-End", 443),
    ("Front-End", "nativebuilder.api.outsystems.com", 443),
    ("Front-End", "Controller", 5672),
    ("Front-End", "Controller", 12000),
    ("Front-End", "SQL Server", 1433),
    ("Controller", "Front-End", 12001),
    ("Controller", "SQL Server", 1433),
]
MONITORING_TABLE = [
    ("Front-End", "Front-End", 80),
    ("Front-End", "Controller", 12000),
    ("Front-End", "Front-End", 12001),
    ("Front-End", "Front-End", 12002),
    ("Controller", "Front-End", 80),
    ("Controller", "Front-End", 12001),
    ("Controller", "Front-End", 12002),
]
LIFETIME_TABLE = [
    ("LifeTime Front-End", "Environment Front-End", 80),
    ("LifeTime Front-End", "Environment Front-End", 443),
    ("Environment Front-End", "LifeTime Front-End", 80),
    ("Environment Front-End", "LifeTime Front-End", 443),
]

# How the page's parties are placed on Azure. Users and development tools reach the front-ends
# through the environment's Application Gateway, its only public entry point (the gateway then
# talks to the front-ends, a row of its own); administrators reach servers through Bastion;
# the LifeTime section covers "all other servers (front-ends and deployment controllers)".
PARTIES = {
    "SysOps": {Party.BASTION},
    "End Users": {Party.END_USERS},
    "Development Tools": {Party.DEVELOPMENT_TOOLS},
    "Front-End": {Party.FRONTEND},
    "Controller": {Party.CONTROLLER},
    "Server": {Party.SERVERS},
    "SQL Server": {Party.SQL, Party.SERVERS},
    "nativebuilder.api.outsystems.com": {Party.NATIVE_BUILDER},
    "LifeTime Front-End": {Party.LIFETIME},
    "Environment Front-End": {Party.ENVIRONMENT_SERVERS},
}
REACHED_THROUGH_GATEWAY = {"End Users", "Development Tools"}


def rows_for(source: str, destination: str, port: int) -> list[str]:
    sources = PARTIES[source]
    destinations = {Party.GATEWAY} if source in REACHED_THROUGH_GATEWAY else PARTIES[destination]
    if destination == "SQL Server":
        sources, destinations = {Party.SERVERS}, {Party.SQL}
    return [
        str(flow)
        for flow in REQUIRED
        if flow.source in sources
        and flow.destination in destinations
        and any(port in r for r in flow.ports)
    ]


@pytest.mark.parametrize(
    ("source", "destination", "port"), RUNTIME_TABLE + MONITORING_TABLE + LIFETIME_TABLE
)
def test_every_row_of_the_page_is_in_the_matrix(source: str, destination: str, port: int) -> None:
    assert rows_for(source, destination, port), (source, destination, port)


def test_users_reach_front_ends_through_the_gateway_on_its_backend_port() -> None:
    gateway_to_frontend = [
        f for f in REQUIRED if f.source is Party.GATEWAY and f.destination is Party.FRONTEND
    ]
    assert [str(p) for f in gateway_to_frontend for p in f.ports] == ["80"]


def test_the_matrix_adds_to_the_page_only_what_azure_and_the_setup_need() -> None:
    added = {f.category for f in REQUIRED if "network-requirements.md" not in f.reference.path}
    assert added == {"database", "setup", "gateway", "administration"}
    for flow in REQUIRED + FORBIDDEN:
        assert flow.reference.commit, flow
        assert flow.protocol == "Tcp"


def test_the_services_ports_of_the_page_are_open_on_servers_playing_both_roles() -> None:
    # "12000 - OutSystems Deployment Controller Service, 12001 - OutSystems Deployment Service,
    # 12002 - OutSystems Scheduler Service"; "If a server has both roles (Controller and
    # Front-End), then consider the ports for both profiles on that server."
    assert {12000, 12001, 12002, 5672, 80, 443} <= inbound_ports("standalone")
    assert inbound_ports("frontend") == {80, 443, 12001, 12002}
    assert inbound_ports("controller") == {80, 443, 5672, 12000}
    assert 3389 in inbound_ports("controller", ("administration",))


def test_what_stays_closed_never_overlaps_what_the_internet_may_open() -> None:
    internet_opens = {
        port
        for flow in REQUIRED
        if flow.source in (Party.END_USERS, Party.DEVELOPMENT_TOOLS, Party.INTERNET)
        for r in flow.ports
        for port in range(r.low, r.high + 1)
    }
    assert internet_opens == {80, 443}
    closed = {
        port
        for flow in FORBIDDEN
        for r in flow.ports
        for port in range(r.low, r.high + 1)
        if flow.destination is Party.SERVERS
    }
    assert {3389, 5985, 5986, 12000, 12001, 12002, 12003, 12004, 5672} <= closed
    # The Internet's 80/443 land on the gateway, never on a server.
    assert not [
        f for f in REQUIRED if f.source is Party.END_USERS and f.destination is not Party.GATEWAY
    ]


@pytest.mark.parametrize("role", sorted(SETUP_ROLES))
def test_setup_needs_the_database_the_downloads_key_vault_and_storage(role: str) -> None:
    needed = {(f.destination, str(p)) for f in setup_needs(role) for p in f.ports}
    assert {
        (Party.SQL, "1433"),
        (Party.SQL, "11000-11999"),
        (Party.DOWNLOADS, "443"),
        (Party.KEY_VAULT, "443"),
        (Party.STORAGE, "443"),
    } <= needed
    controller = {port for destination, port in needed if destination is Party.CONTROLLER}
    # Only a front-end of a farm talks to a controller other than itself.
    assert controller == ({"80", "5672", "12000"} if role == "frontend" else set())


def test_an_unknown_role_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown setup role"):
        setup_needs("webserver")

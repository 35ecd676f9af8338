"""Naming schemes end to end: new platforms get the Marketplace's names, deployed ones keep
theirs across redeploys, a purged task hub, and a group that predates the naming tag."""

from __future__ import annotations

from typing import Any

from arm.connection import ArmConnection
from localdev.armsim.server import SimulatorServer
from tests.support.azurite import Azurite
from tests.support.examples import sample
from tests.support.stack import SUBSCRIPTION, Stack, running_stack

GROUP = f"/subscriptions/{SUBSCRIPTION}/resourceGroups/acme-rg"


def sql_servers(sim: SimulatorServer) -> dict[str, dict[str, Any]]:
    return {r["id"].rsplit("/", 1)[-1]: r["body"] for r in sim.resources("Microsoft.Sql/servers")}


def deploy(stack: Stack, spec: dict[str, Any]) -> dict[str, Any]:
    response = stack.deploy("acme", spec)
    assert response.status_code == 202, response.text
    state = stack.wait("acme")
    assert state["status"] == "Succeeded", state
    return state


def test_a_new_platform_gets_the_marketplace_names(stack: Stack) -> None:
    deploy(stack, sample("spec-standalone.json"))
    servers = sql_servers(stack.sim)
    assert {name.split("-srv")[0] for name in servers} == {
        "acme-dev", "acme-test", "acme-prod", "acme-life"
    }  # fmt: skip
    assert {b["properties"]["administratorLogin"] for b in servers.values()} == {"osadmin-sql"}
    group = next(r for r in stack.sim.resources() if r["id"].lower() == GROUP.lower())
    assert group["body"]["tags"]["osNaming"] == "marketplace"


def test_a_platform_deployed_with_the_old_names_keeps_them(
    sim: SimulatorServer, azurite: Azurite
) -> None:
    legacy = {**sample("spec-standalone.json"), "naming": "legacy"}
    with running_stack(sim, azurite) as stack:
        deploy(stack, legacy)
        before = set(sql_servers(sim))
        assert all("-sql" in name for name in before)
        # A redeploy that does not say: the recorded spec decides.
        deploy(stack, sample("spec-standalone.json"))
        refused = stack.deploy("acme", {**sample("spec-standalone.json"), "naming": "marketplace"})
        assert refused.status_code == 400
        assert refused.json()["error"]["details"][0]["target"] == "naming"
    # The task hub is gone (a new host with an empty hub), and the group's tag predates
    # naming schemes: the group still holds the platform's resources, so the names stay.
    connection = ArmConnection(sim.url, polling_interval=0)
    try:
        from azure.mgmt.resource.resources import ResourceManagementClient

        client = connection.client(ResourceManagementClient, SUBSCRIPTION)
        group = client.resource_groups.get("acme-rg")
        tags = {k: v for k, v in (group.tags or {}).items() if k != "osNaming"}
        client.resource_groups.create_or_update(
            "acme-rg", {"location": group.location, "tags": tags}
        )
    finally:
        connection.close()
    with running_stack(sim, azurite) as fresh:
        plan = fresh.api("POST", "platforms/acme/plan", json=sample("spec-standalone.json"))
        assert plan.status_code == 200, plan.text
        assert plan.json()["totals"]["create"] == 0
        deploy(fresh, sample("spec-standalone.json"))
    assert set(sql_servers(sim)) == before

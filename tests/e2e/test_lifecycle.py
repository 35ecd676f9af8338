"""Teardown, cancel and listing of platforms, end to end."""

from __future__ import annotations

import time

from outsystems.deployment import MAX_ATTEMPTS
from outsystems.names import ENVIRONMENTS
from tests.support.examples import sample
from tests.support.quiet import nothing_running, quiet_point
from tests.support.stack import SUBSCRIPTION, Stack


def live_ids(stack: Stack) -> set[str]:
    """The platform's resources that exist (a soft-deleted vault does not)."""
    return {
        r["id"].lower()
        for r in stack.sim.resources()
        if r["type"].lower() != "microsoft.keyvault/deletedvaults"
    }


def deployed(stack: Stack, solution_id: str = "acme", spec_file: str = "spec-demo.json") -> None:
    assert stack.deploy(solution_id, sample(spec_file)).status_code == 202
    assert stack.wait(solution_id)["lastOperation"]["runtimeStatus"] == "Completed"


def test_teardown_of_one_environment_then_the_whole_platform(stack: Stack) -> None:
    deployed(stack)
    dev_ids = {
        r["id"].lower()
        for r in stack.sim.resources()
        if (r["body"].get("tags") or {}).get("osEnvironment") == "dev"
    }
    assert dev_ids

    response = stack.api("DELETE", "platforms/acme", params={"environments": "dev"})
    assert response.status_code == 202, response.text
    state = stack.wait("acme")
    assert state["lastOperation"]["kind"] == "teardown"
    assert state["lastOperation"]["runtimeStatus"] == "Completed"
    assert state["environments"]["dev"]["status"] == "Deleted"
    assert set(state["environments"]) == {"dev"}
    remaining = live_ids(stack)
    assert not any(i.startswith(tuple(dev_ids)) for i in remaining)
    assert any("/acme-test-vm" in i for i in remaining)
    assert any(i.endswith("/virtualnetworks/acme-vnet") for i in remaining)

    response = stack.api("DELETE", "platforms/acme")
    assert response.status_code == 202
    state = stack.wait("acme")
    assert {e["status"] for e in state["environments"].values()} == {"Deleted"}
    assert set(state["environments"]) == set(ENVIRONMENTS)
    assert live_ids(stack) == set()
    # Gone: a second teardown finds nothing.
    assert stack.api("DELETE", "platforms/acme").status_code == 404
    types = [e["type"] for e in stack.events()]
    assert types.count("outsystems.teardown.succeeded") == 2


def test_a_platform_torn_down_comes_back_with_its_vault_recovered(stack: Stack) -> None:
    """Key Vault soft-deletes the platform's vault (purge protection forbids purging it): a
    redeploy of the same solution id recovers it, with its secrets, instead of failing on the
    name (Azure/azure-rest-api-specs, Microsoft.KeyVault Vault.tsp: `createMode: recover`)."""

    def secrets() -> dict[str, str | None]:
        return {
            r["id"].rsplit("/", 1)[-1]: stack.sim.write_only_digest(r["id"], "properties.value")
            for r in stack.sim.resources("Microsoft.KeyVault/vaults/secrets")
        }

    deployed(stack)
    before = secrets()
    assert {"dev-sql-admin-password", "outsystems-admin-password"} <= set(before)
    assert all(before.values())
    assert stack.api("DELETE", "platforms/acme").status_code == 202
    assert stack.wait("acme")["lastOperation"]["runtimeStatus"] == "Completed"
    assert live_ids(stack) == set()
    assert len(stack.sim.resources("Microsoft.KeyVault/deletedVaults")) == 1

    deployed(stack)
    state = stack.state("acme")
    assert {e["status"] for e in state["environments"].values()} == {"Succeeded"}
    assert stack.sim.resources("Microsoft.KeyVault/deletedVaults") == []
    # The same secrets, with the same values: the new servers got the passwords the vault keeps.
    assert secrets() == before


def test_teardown_leaves_what_is_not_the_platforms(stack: Stack) -> None:
    deployed(stack)
    # Someone else's resource in the same group: never deleted, and the group stays.
    foreign = (
        f"/subscriptions/{SUBSCRIPTION}/resourceGroups/acme-rg/providers/"
        "Microsoft.Network/networkSecurityGroups/not-ours"
    )
    from arm.client import sender

    client = sender(SUBSCRIPTION)
    from azure.core.rest import HttpRequest

    put = HttpRequest("PUT", f"{foreign}?api-version=2026-03-01", json={"location": "westeurope"})
    assert client.send_request(put).status_code in {200, 201}

    assert stack.api("DELETE", "platforms/acme").status_code == 202
    state = stack.wait("acme")
    assert state["lastOperation"]["runtimeStatus"] == "Completed"
    remaining = live_ids(stack)
    assert remaining == {foreign.lower(), f"/subscriptions/{SUBSCRIPTION}/resourcegroups/acme-rg"}


def test_invalid_or_impossible_teardowns_start_nothing(stack: Stack) -> None:
    assert stack.api("DELETE", "platforms/nope").status_code == 404
    deployed(stack)
    bad = stack.api("DELETE", "platforms/acme", params={"environments": "dev,staging"})
    assert bad.status_code == 400
    assert bad.json()["error"]["details"][0]["target"] == "environments"
    assert stack.state("acme")["lastOperation"]["kind"] == "deploy"


def test_cancel_stops_a_running_deployment(stack: Stack) -> None:
    stack.sim.configure({"latencyScale": 0.01})
    assert stack.deploy("acme", sample("spec-demo.json")).status_code == 202
    time.sleep(1.0)
    assert stack.state("acme")["status"] == "Running"
    response = stack.api("POST", "platforms/acme/cancel")
    assert response.status_code == 202
    state = stack.state("acme")
    assert state["lastOperation"]["runtimeStatus"] == "Canceled"
    assert state["status"] == "Canceled"
    assert all(e["status"] in {"Canceled", "Succeeded"} for e in state["environments"].values())
    assert stack.api("POST", "platforms/acme/cancel").status_code == 409
    assert stack.api("POST", "platforms/other/cancel").status_code == 404
    # Nothing keeps writing after the cancel (the environments' orchestrations stopped too).
    quiet_point(stack, nothing_running)
    writes = [r for r in stack.sim.requests() if r["method"] == "PUT"]
    quiet_point(stack, nothing_running)
    assert [r for r in stack.sim.requests() if r["method"] == "PUT"] == writes


def test_list_shows_the_managed_platforms(stack: Stack) -> None:
    assert stack.api("GET", "platforms").json() == {"platforms": []}
    deployed(stack, "acme")
    deployed(stack, "beta", "spec-standalone.json")
    listed = stack.api("GET", "platforms").json()["platforms"]
    assert [(p["solutionId"], p["resourceGroup"]) for p in listed] == [
        ("acme", "acme-rg"),
        ("beta", "beta-rg"),
    ]
    assert all(p["lastOperation"]["runtimeStatus"] == "Completed" for p in listed)
    assert all(p["status"] == "Succeeded" for p in listed)
    assert all(p["subscriptionId"] == SUBSCRIPTION for p in listed)


def test_outcome_at_a_glance_when_one_environment_fails(stack: Stack) -> None:
    """Issue 14.1: an orchestration that completed is no success when an environment failed."""
    stack.sim.add_fault_rule(
        "PUT", "/acme-dev-vm/extensions/outsystems-setup", "operation-failed", MAX_ATTEMPTS
    )
    assert stack.deploy("acme", sample("spec-demo.json")).status_code == 202
    state = stack.wait("acme")
    assert state["lastOperation"]["runtimeStatus"] == "Completed"
    assert state["environments"]["dev"]["status"] == "Failed"
    assert state["status"] == "PartiallySucceeded"
    (listed,) = stack.api("GET", "platforms").json()["platforms"]
    assert listed["status"] == "PartiallySucceeded"

    # The same spec again repairs dev: the platform as a whole succeeded.
    assert stack.deploy("acme", sample("spec-demo.json")).status_code == 202
    assert stack.wait("acme")["status"] == "Succeeded"
    # A teardown of one environment that worked is a success of its own.
    assert stack.api("DELETE", "platforms/acme", params={"environments": "dev"}).status_code == 202
    assert stack.wait("acme")["status"] == "Succeeded"

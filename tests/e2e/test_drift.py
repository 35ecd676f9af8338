"""Drift of a deployed farm: hand changes made straight to ARM are found, announced and repaired.

The whole app runs on the local host against the ARM simulator and Azurite. The hand changes
are what someone does by hand: a rule added to an NSG the app owns (a PUT of the NSG with one
more rule) and a VM resized (PATCH of `hardwareProfile.vmSize`); the capacity is moved by the
scaler (a manual scale request); the drift timer runs as the host runs it when it is due.
"""

from __future__ import annotations

from typing import Any

from outsystems.resource_types import NSG, PUBLIC_IP, RESOURCE_GROUP, VM, api_version
from tests.e2e.scaling_support import (
    SCALE_SET_ID,
    SOLUTION,
    arm,
    capacity,
    deploy_farm,
    example,
    farm_spec,
    wait_for,
)
from tests.support.deployment import topology
from tests.support.quiet import quiet_point, run_timer
from tests.support.stack import Stack

DRIFTED = "outsystems.platform.drifted"
HAND_RULE = {
    "properties": {
        "protocol": "Tcp",
        "sourcePortRange": "*",
        "destinationPortRange": "3389",
        "sourceAddressPrefix": "203.0.113.7/32",
        "destinationAddressPrefix": "*",
        "access": "Allow",
        "priority": 150,
        "direction": "Inbound",
    }
}


def drift(stack: Stack) -> dict[str, Any]:
    response = stack.api("GET", f"platforms/{SOLUTION}/drift")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def check(stack: Stack) -> dict[str, Any]:
    """Run the drift timer and return the check it recorded."""
    before = drift(stack)["checkedAt"]
    run_timer(stack, "check_platform_drift")
    quiet_point(stack)
    return wait_for(
        lambda: (found := drift(stack))["checkedAt"] != before and found, what="a drift check"
    )


def paths(found: dict[str, Any]) -> set[tuple[str, str]]:
    return {(d["resourceId"].lower(), d["path"]) for d in found["differences"]}


def test_hand_changes_are_drift_announced_and_a_put_of_the_same_spec_repairs_them(
    stack: Stack,
) -> None:
    spec = farm_spec()
    deploy_farm(stack, spec)
    stack.events()
    resources = topology(spec)
    nsg = next(r for r in resources if r.type == NSG and r.name.endswith("-prod-nsg"))
    vm = next(r for r in resources if r.type == VM and r.environment == "prod")
    sim = stack.sim

    never = drift(stack)
    assert (never["status"], never["checkedAt"], never["differences"]) == (
        "NeverChecked",
        None,
        [],
    )
    assert stack.api("GET", "platforms/nosuch/drift").status_code == 404

    first = check(stack)
    assert (first["status"], first["differences"]) == ("InSync", [])
    assert [e["type"] for e in stack.events() if e["type"] == DRIFTED] == []

    # By hand, straight to ARM: a rule on the prod NSG, a smaller VM; and the scaler scales.
    # (The whole NSG with one more rule, as ARM templates and inline rules write it: the
    # simulator does not fold `.../securityRules/{name}` children into their NSG.)
    nsg_url = f"{sim.url}{nsg.id}?api-version={api_version(NSG)}"
    live_nsg = arm("GET", nsg_url).json()
    live_nsg["properties"]["securityRules"].append({"name": "rdp-from-home", **HAND_RULE})
    rule = arm("PUT", nsg_url, json=live_nsg)
    assert rule.status_code in (200, 201), rule.text
    resized = arm(
        "PATCH",
        f"{sim.url}{vm.id}?api-version={api_version(VM)}",
        json={"properties": {"hardwareProfile": {"vmSize": "Standard_D2s_v5"}}},
    )
    assert resized.status_code in (200, 202), resized.text
    target = capacity(sim) + 1
    scaled = stack.api("POST", f"platforms/{SOLUTION}/scale", json={"capacity": target})
    assert scaled.status_code == 202, scaled.text
    wait_for(lambda: capacity(sim) == target, what=f"the scaler to reach {target}")
    quiet_point(stack)

    found = check(stack)
    rule_path = (nsg.id.lower(), "properties.securityRules[rdp-from-home]")
    size_path = (vm.id.lower(), "properties.hardwareProfile.vmSize")
    assert found["status"] == "Drifted"
    assert paths(found) == {rule_path, size_path}
    by_path = {(d["resourceId"].lower(), d["path"]): d for d in found["differences"]}
    assert by_path[size_path]["actual"] == "Standard_D2s_v5"
    assert by_path[size_path]["expected"] == vm.body["properties"]["hardwareProfile"]["vmSize"]
    assert by_path[rule_path]["expected"] is None
    assert by_path[rule_path]["actual"]["properties"]["destinationPortRange"] == "3389"
    assert not any(SCALE_SET_ID.lower() == rid for rid, _ in paths(found))
    [event] = [e for e in stack.events() if e["type"] == DRIFTED]
    assert event["subject"] == SOLUTION
    assert {(d["resourceId"].lower(), d["path"]) for d in event["data"]["differences"]} == {
        rule_path,
        size_path,
    }

    # Checked again with nothing new: recorded, not announced again.
    again = check(stack)
    assert paths(again) == paths(found)
    assert [e for e in stack.events() if e["type"] == DRIFTED] == []

    # The plan shows the repairs; a PUT of the same spec makes them.
    plan = stack.api("POST", f"platforms/{SOLUTION}/plan", json=spec)
    assert plan.status_code == 200, plan.text
    updates = {
        p["id"].lower(): [c["path"] for c in p["changes"]]
        for p in plan.json()["resources"]
        if p["action"] != "noop"
    }
    assert updates == {
        nsg.id.lower(): ["properties.securityRules[rdp-from-home]"],
        vm.id.lower(): ["properties.hardwareProfile.vmSize"],
    }
    deploy_farm(stack, spec)
    repaired = check(stack)
    assert (repaired["status"], repaired["differences"]) == ("InSync", [])
    repaired_nsg = arm("GET", nsg_url).json()
    names = [r["name"] for r in repaired_nsg["properties"]["securityRules"]]
    assert "rdp-from-home" not in names


def test_a_resource_carrying_the_platforms_tags_outside_its_spec_is_drift(stack: Stack) -> None:
    """Found by the group's resource list filtered on the platform's tag, as ARM lists it; a
    resource of another platform, or nobody's, is not this platform's drift."""
    spec = example("spec-standalone.json")
    response = stack.deploy(SOLUTION, spec)
    assert response.status_code == 202, response.text
    assert stack.wait(SOLUTION)["lastOperation"]["runtimeStatus"] == "Completed"
    group = next(r for r in topology(spec) if r.type == RESOURCE_GROUP)
    location = group.body["location"]
    ours = {"managedBy": "outsystems-azure-ops", "osSolutionId": SOLUTION, "osEnvironment": "dev"}
    for name, tags in (("acme-hand-pip", ours), ("someone-elses-pip", {"owner": "net-team"})):
        created = arm(
            "PUT",
            f"{stack.sim.url}{group.id}/providers/Microsoft.Network/publicIPAddresses/{name}"
            f"?api-version={api_version(PUBLIC_IP)}",
            json={
                "location": location,
                "tags": tags,
                "sku": {"name": "Standard"},
                "properties": {"publicIPAllocationMethod": "Static"},
            },
        )
        assert created.status_code in (200, 201), created.text
    quiet_point(stack)

    found = check(stack)
    stray = f"{group.id}/providers/Microsoft.Network/publicIPAddresses/acme-hand-pip".lower()
    assert [
        (d["resourceId"].lower(), d["path"], d["expected"], d["actual"])
        for d in found["differences"]
    ] == [(stray, "", None, "exists")]

"""Drift: the live bodies of a platform against its desired graph, over all the app owns.

The live bodies are what ARM returns for the desired ones: ARM adds its read-only and
server-filled properties and never returns write-only values. Their shape is the published
one: Azure/azure-rest-api-specs,
specification/network/resource-manager/Microsoft.Network/stable/2023-09-01/
examples/NetworkSecurityGroupGet.json (commit b8d93149913bfd224f1e1046994976eb1cd7f9e6: the
NSG's `provisioningState`, `securityRules` members with `id` and their own
`provisioningState`, the six `defaultSecurityRules`) and networkSecurityGroup.json (commit
114077a23cb1edc9c5604cfb9a957570203dc706: `etag`, `resourceGuid`, `provisioningState`,
`subnets`, `networkInterfaces` are `"readOnly": true`).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from outsystems.drift import EXISTS, Difference, Drift, platform_drift, resource_drift
from outsystems.plan import plan
from outsystems.policy import POLICY_MAC_TAG
from outsystems.resource_types import KEY_VAULT_SECRET_TYPE, NSG, SCALE_SET, VM
from outsystems.spec import parse_spec
from outsystems.topology import Resource, ResourceGraph, build_topology
from tests.support.drift_bodies import HAND_RULE, as_arm_returns

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
SUB = "11111111-2222-3333-4444-555555555555"


@pytest.fixture(scope="module")
def farm() -> ResourceGraph:
    body = json.loads((EXAMPLES / "spec-farm.json").read_text())
    return build_topology(parse_spec("acme", body, default_subscription_id=SUB))


def _live(graph: ResourceGraph) -> dict[str, dict[str, Any]]:
    # ARM ids come back in any case.
    return {r.id.upper(): as_arm_returns(r) for r in graph}


def _nsg(graph: ResourceGraph) -> Resource:
    return next(r for r in graph if r.type == NSG and r.body["properties"].get("securityRules"))


def test_a_platform_as_arm_returns_it_has_no_drift(farm: ResourceGraph) -> None:
    drift = platform_drift(farm, _live(farm), [], "acme")
    assert drift.differences == ()
    assert drift.to_json() == {"drifted": False, "differences": []}


def test_a_rule_added_by_hand_to_an_nsg_is_drift_shown_without_arm_read_only_fields(
    farm: ResourceGraph,
) -> None:
    live = _live(farm)
    nsg = _nsg(farm)
    body = live[nsg.id.upper()]
    body["properties"]["securityRules"].append(
        {
            **copy.deepcopy(HAND_RULE),
            "id": f"{nsg.id}/securityRules/rule1",
            "etag": 'W/"77"',
            "type": "Microsoft.Network/networkSecurityGroups/securityRules",
        }
    )
    body["properties"]["securityRules"][-1]["properties"]["provisioningState"] = "Succeeded"
    drift = platform_drift(farm, live, [], "acme")
    assert [d.to_json() for d in drift.differences] == [
        {
            "resourceId": nsg.id,
            "path": "properties.securityRules[rule1]",
            "expected": None,
            "actual": HAND_RULE,
        }
    ]


def test_a_changed_rule_and_a_changed_vm_size_are_drift_with_their_paths(
    farm: ResourceGraph,
) -> None:
    live = _live(farm)
    nsg = _nsg(farm)
    rule = live[nsg.id.upper()]["properties"]["securityRules"][0]
    desired_access = rule["properties"]["access"]
    rule["properties"]["access"] = "Deny" if desired_access == "Allow" else "Allow"
    vm = next(r for r in farm if r.type == VM and r.environment == "life")
    desired_size = vm.body["properties"]["hardwareProfile"]["vmSize"]
    live[vm.id.upper()]["properties"]["hardwareProfile"]["vmSize"] = "Standard_D2s_v5"
    drift = platform_drift(farm, live, [], "acme")
    assert sorted((d.resource_id, d.path, d.expected, d.actual) for d in drift.differences) == (
        sorted(
            [
                (
                    nsg.id,
                    f"properties.securityRules[{rule['name']}].properties.access",
                    desired_access,
                    rule["properties"]["access"],
                ),
                (vm.id, "properties.hardwareProfile.vmSize", desired_size, "Standard_D2s_v5"),
            ]
        )
    )


def test_scale_set_capacity_provisioning_state_etags_and_the_mac_are_never_drift(
    farm: ResourceGraph,
) -> None:
    live = _live(farm)
    scale_set = next(r for r in farm if r.type == SCALE_SET)
    body = live[scale_set.id.upper()]
    body["sku"]["capacity"] = 50  # outside the policy: still the scaler's business
    body["properties"]["provisioningState"] = "Updating"
    body["etag"] = 'W/"99"'
    body["tags"][POLICY_MAC_TAG] = "00" * 32
    body["properties"]["uniqueId"] = "f00d"
    assert resource_drift(scale_set, body) == []


def test_a_secret_whose_value_arm_never_returns_is_not_drift(farm: ResourceGraph) -> None:
    secret = next(r for r in farm if r.type == KEY_VAULT_SECRET_TYPE)
    live = as_arm_returns(secret)
    assert "value" not in live["properties"]
    assert resource_drift(secret, live) == []


def test_a_foreign_tag_is_not_drift_but_a_changed_own_tag_is(farm: ResourceGraph) -> None:
    vm = next(r for r in farm if r.type == VM)
    live = as_arm_returns(vm)
    live["tags"]["addedByPolicy"] = "1234"
    assert resource_drift(vm, live) == []
    live["tags"]["osEnvironment"] = "test"
    assert [(d.path, d.expected, d.actual) for d in resource_drift(vm, live)] == [
        ("tags.osEnvironment", vm.body["tags"]["osEnvironment"], "test")
    ]


def test_a_deleted_resource_and_an_owned_resource_outside_the_graph_are_drift(
    farm: ResourceGraph,
) -> None:
    live = _live(farm)
    vm = next(r for r in farm if r.type == VM and r.environment == "dev")
    live[vm.id.upper()] = None  # type: ignore[assignment]
    group = vm.id.split("/providers/")[0]
    stray = f"{group}/providers/Microsoft.Network/publicIPAddresses/acme-extra-pip"
    listed = [
        {"id": stray, "type": "Microsoft.Network/publicIPAddresses", "tags": vm.body["tags"]},
        # Another platform's, or nobody's: not this platform's business.
        {"id": f"{group}/providers/Microsoft.Network/publicIPAddresses/other", "tags": {}},
        {"id": vm.id.upper(), "tags": vm.body["tags"]},
    ]
    drift = platform_drift(farm, live, listed, "acme")
    assert [(d.resource_id, d.path, d.expected, d.actual) for d in drift.differences] == sorted(
        [(vm.id, "", EXISTS, None), (stray, "", None, EXISTS)], key=lambda d: d[0].lower()
    )


def test_the_fingerprint_is_the_set_of_differences() -> None:
    one = Difference("/subscriptions/s/x", "a", 1, 2)
    two = Difference("/subscriptions/s/y", "b", "x", None)
    assert Drift((one, two)).fingerprint == Drift((two, one)).fingerprint
    upper = Difference("/SUBSCRIPTIONS/S/X", "a", 1, 2)
    assert Drift((upper, two)).fingerprint == Drift((one, two)).fingerprint
    assert Drift((one,)).fingerprint != Drift((one, two)).fingerprint
    assert Drift((Difference(one.resource_id, "a", 1, 3),)).fingerprint != (
        Drift((one,)).fingerprint
    )
    assert Drift.from_json(Drift((one, two)).to_json()) == Drift((one, two))


def test_the_plan_updates_what_drifted_with_the_drifted_paths(farm: ResourceGraph) -> None:
    """A PUT of the same spec repairs drift: the plan shows each drifted resource as an update,
    its reason the drifted paths, and the deployment then PUTs the desired body (whose
    `securityRules` list has no hand-added rule)."""
    live = _live(farm)
    nsg = _nsg(farm)
    live[nsg.id.upper()]["properties"]["securityRules"].append(copy.deepcopy(HAND_RULE))
    vm = next(r for r in farm if r.type == VM and r.environment == "life")
    live[vm.id.upper()]["properties"]["hardwareProfile"]["vmSize"] = "Standard_D2s_v5"
    drift = platform_drift(farm, live, [], "acme")
    planned = plan(farm, live)
    updates = {p.resource.id: [c.path for c in p.changes] for p in planned.resources}
    updates = {rid: paths for rid, paths in updates.items() if paths}
    assert updates == {d.resource_id: [d.path] for d in drift.differences}
    assert "rule1" not in json.dumps(nsg.body)

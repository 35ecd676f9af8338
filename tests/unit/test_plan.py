"""The plan: desired bodies compared with live ARM state, with ARM's write-only fields ignored."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from outsystems.placeholders import placeholders_in
from outsystems.plan import compare, plan, plan_resource
from outsystems.resource_types import SCALE_SET, VM
from outsystems.spec import PlatformSpec, parse_spec
from outsystems.topology import ResourceGraph, build_topology

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
SUB = "11111111-2222-3333-4444-555555555555"


def _spec(name: str) -> PlatformSpec:
    body = json.loads((EXAMPLES / name).read_text())
    return parse_spec("acme", body, default_subscription_id=SUB)


def _as_arm_returns(body: Any) -> Any:
    """The body as ARM would return it: write-only values gone, read-only values added, tags
    (which ARM returns) with what was rendered into them."""
    if isinstance(body, dict):
        out = {
            k: _as_arm_returns(v)
            for k, v in body.items()
            if k.lower() not in {"protectedsettings", "adminpassword", "userdata"}
            and not (isinstance(v, str) and placeholders_in(v))
        }
        tags = body.get("tags")
        if isinstance(tags, dict):
            out["tags"] = {k: "rendered" if placeholders_in(v) else v for k, v in tags.items()}
        out.setdefault("etag", 'W/"1"')
        if isinstance(out.get("properties"), dict):
            out["properties"]["provisioningState"] = "Succeeded"
        return out
    if isinstance(body, list):
        return [_as_arm_returns(item) for item in body]
    return body


def _live(graph: ResourceGraph) -> dict[str, Any]:
    return {r.id.upper(): _as_arm_returns(copy.deepcopy(dict(r.body))) for r in graph}


@pytest.fixture(scope="module")
def farm() -> ResourceGraph:
    return build_topology(_spec("spec-farm.json"))


def test_unknown_platform_plans_all_create(farm: ResourceGraph) -> None:
    result = plan(farm, {})
    assert result.totals == {"create": len(farm), "update": 0, "noop": 0}
    assert [(p.resource.id, p.action) for p in result.resources] == [(r.id, "create") for r in farm]


def test_deployed_platform_plans_all_noop_despite_arm_extras_and_id_case(
    farm: ResourceGraph,
) -> None:
    result = plan(farm, _live(farm))
    updates = [p.to_json() for p in result.resources if p.action != "noop"]
    assert updates == []
    assert result.totals["noop"] == len(farm)


def test_changed_vm_size_updates_exactly_that_vm(farm: ResourceGraph) -> None:
    live = _live(farm)
    vm = next(r for r in farm if r.type == VM and r.environment == "life")
    live[vm.id.upper()]["properties"]["hardwareProfile"]["vmSize"] = "Standard_D4s_v5"
    result = plan(farm, live)
    changed = [p for p in result.resources if p.action != "noop"]
    assert [p.resource.id for p in changed] == [vm.id]
    assert [c.to_json() for c in changed[0].changes] == [
        {
            "path": "properties.hardwareProfile.vmSize",
            "from": "Standard_D4s_v5",
            "to": "Standard_F4s_v2",
        }
    ]


def test_live_capacity_inside_bounds_is_not_a_difference(farm: ResourceGraph) -> None:
    scale_set = next(r for r in farm if r.type == SCALE_SET)
    live = _as_arm_returns(copy.deepcopy(dict(scale_set.body)))
    live["sku"]["capacity"] = 7  # the sample's bounds are 2..8
    assert plan_resource(scale_set, live).action == "noop"
    live["sku"]["capacity"] = 12
    planned = plan_resource(scale_set, live)
    assert planned.action == "update"
    assert [c.to_json() for c in planned.changes] == [{"path": "sku.capacity", "from": 12, "to": 8}]


@pytest.mark.parametrize(
    ("desired", "live", "paths"),
    [
        ({"a": 1}, {"a": 1, "b": 2}, []),
        ({"a": 1}, {"a": 2}, ["a"]),
        ({"a": {"b": "x"}}, {"a": None}, ["a"]),
        ({"location": "westeurope"}, {"location": "West Europe"}, []),
        ({"id": "/subscriptions/X/rg"}, {"id": "/SUBSCRIPTIONS/x/RG"}, []),
        ({"xs": [1, 2]}, {"xs": [1, 2, 3]}, ["xs"]),
        ({"xs": [{"name": "a", "v": 1}]}, {"xs": [{"name": "b"}, {"name": "A", "v": 1}]}, []),
        ({"xs": [{"name": "a", "v": 1}]}, {"xs": [{"name": "a", "v": 2}]}, ["xs[a].v"]),
        ({"xs": [{"name": "c"}]}, {"xs": [{"name": "a"}]}, ["xs[c]"]),
        ({"p": {"adminPassword": "{{VM_ADMIN_PASSWORD}}"}}, {"p": {}}, []),
        ({"protectedSettings": {"x": 1}}, {}, []),
        ({"flag": True}, {"flag": 1}, ["flag"]),
        ({"n": 2}, {"n": 2.0}, []),
        ({"Name": "v"}, {"name": "v"}, []),
    ],
)
def test_compare_rules(desired: Any, live: Any, paths: list[str]) -> None:
    assert [c.path for c in compare(desired, live)] == paths


def test_a_scale_set_without_its_policy_mac_is_signed_again() -> None:
    """A farm deployed before scale sets were signed has no MAC tag: its redeploy must write the
    scale set, or the scaler would never trust it again. A MAC that is there is not compared
    (its value is only known when the body is sent)."""
    spec = parse_spec("acme", {"location": "westeurope"}, default_subscription_id=SUB)
    (scale_set,) = [r for r in build_topology(spec) if r.type == SCALE_SET]
    live = json.loads(json.dumps(scale_set.body))
    live["tags"]["osScalingPolicyMac"] = "a" * 64
    assert plan_resource(scale_set, live).action == "noop"
    del live["tags"]["osScalingPolicyMac"]
    planned = plan_resource(scale_set, live)
    assert planned.action == "update"
    assert [c.path for c in planned.changes] == ["tags.osScalingPolicyMac"]

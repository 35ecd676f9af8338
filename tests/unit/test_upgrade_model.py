"""The upgrade's pure decisions (`outsystems/upgrade.py`): the plan, the order, the targets.

The oracle of the order and of the balanced steps is what OutSystems publishes, as recorded in
`tests/oracles/outsystems-upgrade.json` (each page with its repository, path and commit):
upgrade-platform.md (LifeTime first, then the staging order) and
balanced-upgrade-highly-loaded-farms.md (steps 1 to 9, the controller in the updating set).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from outsystems.messages import (
    ActionOutcome,
    RestorePoint,
    SpecDocument,
    UpgradeProgress,
    UpgradeRequest,
)
from outsystems.spec import PlatformSpec, parse_spec
from outsystems.topology import build_topology
from outsystems.upgrade import (
    APPROVAL,
    CHECK_UPDATING,
    CONTROLLER,
    DRAIN_LOADED,
    FARM_STEPS,
    GATEWAY_TO_ALL,
    GATEWAY_TO_LOADED,
    GATEWAY_TO_UPDATING,
    HOLD_LOADED,
    RESTORE_POINT,
    SCALE_SET_MODEL,
    SETUP,
    STANDALONE_STEPS,
    UPGRADE_LOADED,
    UPGRADE_UPDATING,
    PlannedUpgradeStep,
    Split,
    UpgradeTargets,
    environments_to_upgrade,
    farm_minimum,
    is_at,
    needs_approval,
    plan_upgrade,
    previous_environment,
    restore_point_name,
    run_command_problem,
    setup_version,
    split_sets,
    start_progress,
    unhealthy,
    upgrade_order,
)

ROOT = Path(__file__).resolve().parents[2]
ORACLE = json.loads((ROOT / "tests" / "oracles" / "outsystems-upgrade.json").read_text())
SUBSCRIPTION = "11111111-2222-3333-4444-555555555555"


def spec(**changes: Any) -> PlatformSpec:
    body: dict[str, Any] = json.loads((ROOT / "examples" / "spec-demo.json").read_text())
    body.update(changes)
    return parse_spec("acme", body, default_subscription_id=SUBSCRIPTION)


OLD = spec(platformVersion="11.32.0", lifetimeVersion="11.26.0")
NEW = spec(platformVersion="11.33.0", lifetimeVersion="11.27.0")


def test_lifetime_goes_first_then_the_given_order() -> None:
    # upgrade-platform.md: "make sure that LifeTime is the most up-to-date environment", then
    # the staging lifecycle "Development > Testing > ... > Production".
    assert (
        "LifeTime is the most up-to-date" in ORACLE["pages"]["upgrade-platform"]["lifetime_first"]
    )
    assert upgrade_order(("dev", "test", "prod")) == ("life", "dev", "test", "prod")
    assert upgrade_order(("test", "life", "dev", "prod")) == ("life", "test", "dev", "prod")
    plan = plan_upgrade(OLD, NEW, ("dev", "test", "prod"))
    environments = list(dict.fromkeys(step.environment for step in plan))
    assert environments == ["life", "dev", "test", "prod"]


def test_an_approval_before_each_environment_but_the_first() -> None:
    plan = plan_upgrade(OLD, NEW, ("dev", "test", "prod"))
    approvals = [step.environment for step in plan if step.step == APPROVAL]
    assert approvals == ["dev", "test", "prod"]
    assert plan[0].step != APPROVAL
    # The approval comes before anything of its environment happens.
    for env in approvals:
        first = next(step for step in plan if step.environment == env)
        assert first.step == APPROVAL


def test_each_environment_starts_with_a_restore_point_of_its_platform_database() -> None:
    plan = plan_upgrade(OLD, NEW, ("dev", "test", "prod"))
    graph = build_topology(NEW)
    for env in ("life", "dev", "test", "prod"):
        steps = [s for s in plan if s.environment == env and s.step != APPROVAL]
        assert steps[0].step == RESTORE_POINT
        assert steps[0].target in graph
        assert graph.get(steps[0].target).type == "Microsoft.Sql/servers/databases"
        assert "acme-" + env + "-db-pre-11-33-0" in steps[0].detail


def test_standalone_environments_rerun_their_setup_extension() -> None:
    plan = plan_upgrade(OLD, NEW, ("dev", "test", "prod"))
    graph = build_topology(NEW)
    for env in ("life", "dev", "test"):
        steps = [s for s in plan if s.environment == env and s.step != APPROVAL]
        assert tuple(s.step for s in steps) == STANDALONE_STEPS
        setup = steps[1]
        assert setup.step == SETUP
        assert graph.get(setup.target).type == "Microsoft.Compute/virtualMachines/extensions"
        assert graph.get(setup.target).environment == env
    life = next(s for s in plan if s.environment == "life" and s.step == SETUP)
    assert "LifeTime 11.26.0 to 11.27.0" in life.detail


def test_a_standalone_production_is_one_server() -> None:
    old = spec(platformVersion="11.32.0", environments={"prod": {"mode": "standalone"}})
    new = spec(platformVersion="11.33.0", environments={"prod": {"mode": "standalone"}})
    steps = [
        s.step for s in plan_upgrade(old, new, ("dev", "test", "prod")) if s.environment == "prod"
    ]
    assert steps == [APPROVAL, *STANDALONE_STEPS]


def test_the_farm_follows_the_balanced_upgrade() -> None:
    # balanced-upgrade-highly-loaded-farms.md, steps 1 to 9 (oracle): traffic to the loaded set
    # (1), deployments disabled on it (2), the controller and the updating set upgraded (3),
    # traffic to the updating set (5), the loaded set upgraded (6), traffic to all (9).
    pages = ORACLE["pages"]["balanced-upgrade"]
    assert [s["server"] for s in pages["steps"]][:3] == [
        "Load Balancer",
        "Loaded Front-ends",
        "Any Updating Front-end",
    ]
    assert "initial **updating** set" in pages["controller_in_updating_set"]
    prod = [s for s in plan_upgrade(OLD, NEW, ("dev", "test", "prod")) if s.environment == "prod"]
    order = [s.step for s in prod]
    assert order == [APPROVAL, *FARM_STEPS]

    def at(step: str) -> int:
        return order.index(step)

    assert at(GATEWAY_TO_LOADED) < at(CONTROLLER)  # 1 before 3
    assert at(HOLD_LOADED) < at(CONTROLLER)  # 2 before 3
    # additional-configurations.md: the controller before the scale set's version.
    assert at(CONTROLLER) < at(SCALE_SET_MODEL) < at(UPGRADE_UPDATING)
    assert at(UPGRADE_UPDATING) < at(GATEWAY_TO_UPDATING) < at(CHECK_UPDATING)  # 3, 5
    assert at(CHECK_UPDATING) < at(DRAIN_LOADED) < at(UPGRADE_LOADED) < at(GATEWAY_TO_ALL)
    graph = build_topology(NEW)
    for step in prod[1:]:
        assert step.target in graph, step
    controller = next(s for s in prod if s.step == CONTROLLER)
    assert graph.get(controller.target).type == "Microsoft.Compute/virtualMachines/extensions"
    assert graph.get(controller.target).environment == "prod"
    types = {graph.get(s.target).type for s in prod[1:]}
    assert types == {
        "Microsoft.Sql/servers/databases",
        "Microsoft.Compute/virtualMachineScaleSets",
        "Microsoft.Network/applicationGateways",
        "Microsoft.Compute/virtualMachines/extensions",
    }


def test_only_lifetime_changes_when_only_its_version_rises() -> None:
    old = spec(platformVersion="11.32.0", lifetimeVersion="11.26.0")
    new = spec(platformVersion="11.32.0", lifetimeVersion="11.27.0")
    assert environments_to_upgrade(old, new, ("dev", "test", "prod")) == ("life",)
    plan = plan_upgrade(old, new, ("dev", "test", "prod"))
    assert {s.environment for s in plan} == {"life"}
    assert plan_upgrade(old, old, ("dev", "test", "prod")) == ()


def test_targets_are_the_topology_s_ids_under_both_naming_schemes() -> None:
    for naming in ("marketplace", "legacy"):
        new = spec(platformVersion="11.33.0", naming=naming)
        graph = build_topology(new)
        for env in ("dev", "test", "prod", "life"):
            targets = UpgradeTargets.of(new, env)
            for resource_id in (targets.vm, targets.setup_extension, targets.platform_database):
                assert resource_id in graph
                assert graph.get(resource_id).id == resource_id
            if env == "prod":
                assert targets.scale_set in graph
                assert targets.gateway in graph
            else:
                assert targets.scale_set is None
                assert targets.gateway is None


def test_restore_point_name() -> None:
    assert restore_point_name("acme-dev-db", "11.33.0") == "acme-dev-db-pre-11-33-0"


def test_planned_step_json() -> None:
    step = PlannedUpgradeStep("dev", SETUP, "/x", "why")
    assert step.to_json() == {"environment": "dev", "step": SETUP, "target": "/x", "detail": "why"}


@pytest.mark.parametrize("env", ["nope", "shared"])
def test_unknown_environment(env: str) -> None:
    with pytest.raises(ValueError, match="unknown environment"):
        UpgradeTargets.of(NEW, env)


def test_the_sets_hold_at_least_the_minimum_and_temporaries_fill_the_loaded_set() -> None:
    assert split_sets(["0", "1"], 2) == Split(("0", "1"), (), 2)
    assert split_sets(["0", "1", "2", "3"], 2, temporary=["2", "3"]) == Split(
        ("0", "1"), ("2", "3")
    )
    assert split_sets(["0", "1", "2"], 2) == Split(("0", "1"), ("2",), 1)
    # Numbers, not text: instance 10 comes after 9.
    assert split_sets(["10", "9", "8", "11"], 2) == Split(("8", "9"), ("10", "11"))
    assert split_sets([str(n) for n in range(5)], 2) == Split(("0", "1"), ("2", "3", "4"))
    # A resumed attempt keeps its sets.
    known = {"0": "loaded", "1": "loaded", "2": "updating", "3": "updating"}
    assert split_sets(["0", "1", "2", "3"], 2, known=known) == Split(("2", "3"), ("0", "1"))


def test_the_minimum_is_the_one_in_force_then() -> None:
    body = json.loads((ROOT / "examples" / "spec-farm.json").read_text())
    farm = parse_spec("acme", body, default_subscription_id=SUBSCRIPTION)
    # spec-farm.json: minCapacity 2, and 4 on weekdays 08:00-19:00 Europe/Lisbon.
    friday_morning = datetime(2026, 11, 20, 9, 14, tzinfo=UTC)
    sunday = datetime(2026, 11, 22, 9, 14, tzinfo=UTC)
    assert farm_minimum(farm, friday_morning) == 4
    assert farm_minimum(farm, sunday) == 2
    split = next(
        s
        for s in plan_upgrade(farm, farm.model_copy(update={"platform_version": "11.40.0"}))
        if s.step == "split"
    )
    assert (
        "at least 2 each (the scale set's minimum (4 during its schedule windows))" in split.detail
    )


def test_what_the_script_reports() -> None:
    # docs/upgrades.md, "What the script reports".
    line = (
        "OutSystems setup succeeded: upgraded Platform Server 11.31.0.3 to 11.32.0.9 "
        "(role frontend)"
    )
    assert setup_version("noise\n" + line + "\n") == "11.32.0.9"
    assert (
        setup_version("OutSystems setup succeeded: installed LifeTime 11.27.0.1 (role lifetime)")
        == "11.27.0.1"
    )
    assert (
        setup_version(
            "OutSystems setup succeeded: already at Platform Server 11.32.0.9 (role controller)"
        )
        == "11.32.0.9"
    )
    assert (
        setup_version(
            "OutSystems setup failed: downgrade refused: Platform Server 11.33.0.1 is "
            "installed, 11.32.0 was requested (line 90)"
        )
        is None
    )
    assert (
        setup_version(
            "OutSystems setup not finished: reboot pending (hosting bundle); apply the "
            "extension again later"
        )
        is None
    )
    assert is_at("11.32.0.9", "11.32.0")
    assert not is_at("11.31.0.3", "11.32.0")
    assert (
        run_command_problem(ActionOutcome(True, "x\nOutSystems front-end drained"), "Drain") is None
    )
    problem = run_command_problem(ActionOutcome(True, "OutSystems front-end serving"), "Drain")
    assert problem is not None
    assert "OutSystems front-end drained" in problem
    assert unhealthy(
        {"10.0.2.5": "Up", "10.0.2.6": "Draining"}, ["10.0.2.5", "10.0.2.6", "10.0.2.7"]
    ) == {
        "10.0.2.6": "Draining",
        "10.0.2.7": "Unknown",
    }


def _request(resumed: UpgradeProgress | None = None) -> UpgradeRequest:
    return UpgradeRequest(
        "op-2",
        SpecDocument(NEW.to_json_dict()),
        SpecDocument(OLD.to_json_dict()),
        ("dev", "test", "prod"),
        resumed=resumed,
    )


def test_a_resumed_upgrade_keeps_what_succeeded_and_pauses_only_before_what_never_started() -> None:
    fresh = start_progress(_request(), OLD, NEW)
    assert [(e.environment, e.state) for e in fresh.environments] == [
        ("life", "Pending"),
        ("dev", "Pending"),
        ("test", "Pending"),
        ("prod", "Pending"),
    ]
    assert [needs_approval(fresh, e, None) for e in ("life", "dev", "test", "prod")] == [
        False,
        True,
        True,
        True,
    ]
    point = RestorePoint("copy", "/db", "/db-pre")
    before = fresh._replace(
        operation_id="op-1",
        state="Failed",
        environments=(
            fresh.environments[0]._replace(state="Succeeded", steps_done=2),
            fresh.environments[1]._replace(state="Failed", restore_point=point),
            fresh.environments[2],
            fresh.environments[3],
        ),
    )
    resumed = start_progress(_request(before), OLD, NEW)
    assert resumed.environments[0] == before.environments[0]
    dev = resumed.environments[1]
    assert (dev.state, dev.restore_point, dev.steps_done) == ("Pending", point, 0)
    # dev was approved in the first attempt: no second pause; test never started: a pause.
    assert not needs_approval(resumed, "dev", before)
    assert needs_approval(resumed, "test", before)
    assert previous_environment(resumed, "test") == dev

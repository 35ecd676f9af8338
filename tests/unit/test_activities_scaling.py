"""The scaler's activities (`activities/scaling.py`) against ARM on the wire.

Each activity runs as the worker runs it (the registered function, JSON in and out) against the
ARM simulator on loopback, reached through the app's own connection; nothing of ours is mocked.
The ARM facts relied on, from Microsoft's pages rather than the simulator's word:
- "Understand names and instance IDs for Azure Virtual Machine Scale Set VMs"
  (https://learn.microsoft.com/azure/virtual-machine-scale-sets/virtual-machine-scale-sets-instance-ids):
  listing a scale set's instances (`.../virtualMachines`) gives each VM of a Uniform scale set,
  with its instance id; their computer names come from the scale set's `computerNamePrefix`
  (Compute's `VirtualMachineScaleSetOSProfile.computerNamePrefix`: "the computer name prefix for
  all of the virtual machines in the scale set", 1 to 15 characters).
- "Resolve resource not found errors"
  (https://learn.microsoft.com/azure/azure-resource-manager/troubleshooting/error-not-found):
  a request for a resource that does not exist fails with code `ResourceNotFound`.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from arm.scale_sets import SCALE_SET_API_VERSION
from localdev.armsim.server import SimulatorServer
from localdev.armsim.testing import running_simulator
from outsystems.messages import Operation, ScaleSetInspection
from outsystems.policy import (
    POLICY_MAC_TAG,
    ScalingPolicy,
    policy_mac,
    policy_to_tags,
    scaling_policy_key,
)
from outsystems.tags import ENVIRONMENT_TAG, MANAGED_BY_TAG, MANAGED_BY_VALUE, SOLUTION_TAG
from tests.support import armsim_bodies as bodies
from tests.support.arm_loopback import SUBSCRIPTION, app_on, get, put
from tests.support.functions import activity

SEED = "activity-test-seed"
GROUP_ID = f"/subscriptions/{SUBSCRIPTION}/resourceGroups/acme-rg"
VNET_ID = f"{GROUP_ID}/providers/Microsoft.Network/virtualNetworks/acme-vnet"
VMSS = f"{GROUP_ID}/providers/Microsoft.Compute/virtualMachineScaleSets/acme-prod-vmss"
RESOURCES_API = "2025-04-01"
NETWORK_API = "2024-05-01"


@pytest.fixture(scope="module")
def simulator() -> Iterator[SimulatorServer]:
    with running_simulator(throttling=False) as sim:
        yield sim


@pytest.fixture
def sim(simulator: SimulatorServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[SimulatorServer]:
    with app_on(simulator, monkeypatch, PLATFORM_KEY_SEED=SEED) as running:
        yield running


def signed(tags: dict[str, str], seed: str = SEED) -> dict[str, str]:
    return {**tags, POLICY_MAC_TAG: policy_mac(scaling_policy_key(seed), VMSS, tags)}


OWNER = {MANAGED_BY_TAG: MANAGED_BY_VALUE, SOLUTION_TAG: "acme", ENVIRONMENT_TAG: "prod"}
POLICY = policy_to_tags(ScalingPolicy(min_capacity=2, max_capacity=6))


def scale_set(capacity: int, tags: dict[str, str]) -> None:
    put(GROUP_ID, RESOURCES_API, {"location": bodies.LOCATION})
    put(VNET_ID, NETWORK_API, bodies.vnet({"prod": "10.0.2.0/24"}))
    body = {**bodies.scale_set(f"{VNET_ID}/subnets/prod", capacity, prefix="acmefe"), "tags": tags}
    put(VMSS, SCALE_SET_API_VERSION, body)


def inspect() -> ScaleSetInspection:
    return ScaleSetInspection.from_json(activity("inspect_scale_set")({"scaleSet": VMSS}))


def test_a_scale_set_the_app_signed_is_managed_with_its_capacity_and_policy(
    sim: SimulatorServer,
) -> None:
    scale_set(2, signed({**OWNER, **POLICY}))
    inspection = inspect()
    assert inspection.info.not_managed_reason is None
    assert (inspection.info.solution_id, inspection.info.capacity) == ("acme", 2)
    assert dict(inspection.info.policy_tags) == POLICY
    assert inspection.ceiling == 100  # SCALING_MAX_CAPACITY's default


def test_copied_owner_tags_signed_with_another_key_do_not_make_it_managed(
    sim: SimulatorServer,
) -> None:
    scale_set(2, signed({**OWNER, **POLICY}, seed="someone-else"))
    inspection = inspect()
    assert not inspection.info.managed
    assert inspection.info.not_managed_reason is not None


def test_a_capacity_change_is_started_polled_to_its_end_and_the_servers_follow(
    sim: SimulatorServer,
) -> None:
    scale_set(2, signed({**OWNER, **POLICY}))
    before = activity("list_scale_set_servers")({"scaleSet": VMSS})
    assert len(before) == 2
    assert before == sorted(before)
    assert all(name.startswith("acmefe") for name in before)

    answer = activity("set_scale_set_capacity")(
        {"scaleSet": VMSS, "capacity": 3, "solutionId": "acme"}
    )
    operation = Operation.from_json(answer)
    assert (operation.method, operation.resource_id) == ("PATCH", VMSS)
    for _ in range(10):
        if operation.done:
            break
        checked = activity("check_operations")(
            {"subscriptionId": SUBSCRIPTION, "solutionId": "acme", "operations": [answer]}
        )
        answer = checked[0]
        operation = Operation.from_json(answer)
    assert operation.succeeded
    live = get(VMSS, SCALE_SET_API_VERSION)
    assert live is not None
    assert live["sku"]["capacity"] == 3
    after = activity("list_scale_set_servers")({"scaleSet": VMSS})
    assert len(after) == 3
    assert set(before) < set(after)


def test_a_capacity_change_of_a_missing_scale_set_fails_with_arms_code(
    sim: SimulatorServer,
) -> None:
    put(GROUP_ID, RESOURCES_API, {"location": bodies.LOCATION})
    answer = activity("set_scale_set_capacity")(
        {"scaleSet": VMSS, "capacity": 3, "solutionId": "acme"}
    )
    operation = Operation.from_json(answer)
    assert operation.status == "Failed"
    assert operation.error is not None
    assert operation.error.code == "ResourceNotFound"

"""A scale set's instances, their models and the instance actions, through azure-mgmt-compute.

Oracle: Azure/azure-rest-api-specs, specification/compute/resource-manager/Microsoft.Compute/
ComputeRP/stable/2024-11-01/virtualMachineScaleSet.json (commit 04be2f1c): `VirtualMachine
ScaleSetVMs_Get` (`$expand=instanceView`), `_GetInstanceView`, `_List` (`$filter=properties/
latestModelApplied eq true|false`, `$expand=instanceView`), `_Reimage`; `VirtualMachineScale
Sets_UpdateInstances` (POST `.../manualupgrade`, `instanceIds` required, long-running),
`_Reimage` (POST `.../reimage`, optional `instanceIds`), `_DeleteInstances` (POST `.../delete`,
`instanceIds` required); `VirtualMachineScaleSetVMProperties.latestModelApplied`,
`provisioningState`, `instanceView`. The app (and these clients) call Compute 2026-04-01.
MicrosoftDocs/azure-docs articles/virtual-machine-scale-sets/virtual-machine-scale-sets-upgrade-
scale-set.md (commit 00982c44): with upgrade policy Manual an updated model does nothing to the
existing VMs (`latestModelApplied` false) until each is manually upgraded; new VMs get the new
model. A reimage rebuilds an instance from its own model: it does not apply a newer one (issue
17's reading of the same page).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError

from localdev.armsim import extensions
from localdev.armsim.extensions import ScriptResult
from localdev.armsim.hooks import ArmSim
from localdev.armsim.server import SimulatorServer
from localdev.armsim.store import Resource
from tests.support import armsim_bodies as bodies
from tests.support.armsim_clients import SUBSCRIPTION, Clients, Raw, error_of, message_of

G = bodies.GROUP
GROUP_ID = f"/subscriptions/{SUBSCRIPTION}/resourceGroups/{G}"
VMSS = f"{GROUP_ID}/providers/Microsoft.Compute/virtualMachineScaleSets/fe"
COMPUTE_API = "2026-04-01"


def _scale_set(version: str = "1.0.0", command: str = "install 11.31") -> dict[str, Any]:
    body = bodies.scale_set("placeholder", 3)
    profile = body["properties"]["virtualMachineProfile"]
    profile["storageProfile"]["imageReference"]["version"] = version
    setup = profile["extensionProfile"]["extensions"][0]["properties"]
    setup.pop("protectedSettings", None)
    setup["settings"] = {"commandToExecute": command}
    return body


@pytest.fixture
def commands() -> Iterator[list[str]]:
    """The commands the scale set's Custom Script Extension runs, one entry per run."""
    ran: list[str] = []

    def decide(engine: ArmSim, host: Resource, extension: Mapping[str, Any]) -> ScriptResult:
        command = str(extension["properties"]["settings"]["commandToExecute"])
        ran.append(command)
        if "broken" in command:
            return ScriptResult(1, "the new version does not start")
        return ScriptResult(0)

    extensions.register_outcome_decider("CustomScriptExtension", decide)
    yield ran
    extensions.unregister_outcome_decider("CustomScriptExtension")


def _deploy(clients: Clients, body: dict[str, Any]) -> None:
    clients.resource.resource_groups.create_or_update(G, {"location": bodies.LOCATION})
    vnet = clients.network.virtual_networks.begin_create_or_update(
        G, "vnet", bodies.vnet({"fe": "10.0.2.0/24"})
    ).result()
    nic = body["properties"]["virtualMachineProfile"]["networkProfile"]
    nic["networkInterfaceConfigurations"][0]["properties"]["ipConfigurations"][0]["properties"][
        "subnet"
    ]["id"] = vnet.subnets[0].id
    clients.compute.virtual_machine_scale_sets.begin_create_or_update(G, "fe", body).result()


def _new_model(clients: Clients, command: str = "install 11.32") -> None:
    """PATCH the scale set's model: a newer image and a new setup command."""
    clients.compute.virtual_machine_scale_sets.begin_update(
        G,
        "fe",
        {
            "properties": {
                "virtualMachineProfile": {
                    "storageProfile": {"imageReference": {"version": "2.0.0"}},
                    "extensionProfile": {
                        "extensions": [
                            {
                                "name": "setup",
                                "properties": {
                                    "publisher": "Microsoft.Compute",
                                    "type": "CustomScriptExtension",
                                    "typeHandlerVersion": "1.10",
                                    "settings": {"commandToExecute": command},
                                },
                            }
                        ]
                    },
                }
            }
        },
    ).result()


def _ids(clients: Clients) -> list[str]:
    return [vm.instance_id for vm in clients.compute.virtual_machine_scale_set_vms.list(G, "fe")]


def _latest(clients: Clients) -> dict[str, bool]:
    return {
        vm.instance_id: vm.latest_model_applied
        for vm in clients.compute.virtual_machine_scale_set_vms.list(G, "fe")
    }


def test_instances_get_and_list_with_instance_view(clients: Clients, raw: Raw) -> None:
    _deploy(clients, _scale_set())
    vms = clients.compute.virtual_machine_scale_set_vms
    listed = list(vms.list(G, "fe", expand="instanceView"))
    assert [vm.instance_id for vm in listed] == ["0", "1", "2"]
    assert all(vm.latest_model_applied is True for vm in listed)
    assert all(vm.provisioning_state == "Succeeded" for vm in listed)
    assert all(vm.instance_view is not None for vm in listed)

    one = vms.get(G, "fe", "1", expand="instanceView")
    assert one.id == f"{VMSS}/virtualMachines/1"
    assert one.storage_profile.image_reference.version == "1.0.0"
    codes = [s.code for s in one.instance_view.statuses]
    assert codes == ["ProvisioningState/succeeded", "PowerState/running"]
    assert vms.get(G, "fe", "1").instance_view is None  # only with $expand=instanceView

    view = vms.get_instance_view(G, "fe", "1")
    assert view.computer_name == "simfe000001"
    assert [s.code for s in view.statuses] == codes
    assert raw.send("GET", f"{VMSS}/virtualMachines/7", api=COMPUTE_API).status == 404


def test_an_instance_is_named_scale_set_underscore_instance_id(clients: Clients, raw: Raw) -> None:
    # Oracle: Azure/azure-rest-api-specs, specification/compute/resource-manager/Microsoft.Compute/
    # ComputeRP/stable/2024-11-01/examples/virtualMachineScaleSetExamples/
    # VirtualMachineScaleSetVM_List_WithResiliencyView.json (commit 3ab2b9e9): each listed VM has
    # `"name": "{vmss-vm-name}_1"`, `"instanceId": "1"` and an id ending `/virtualMachineScaleSets/
    # {vmss-name}/virtualMachines/1`; VirtualMachineScaleSetVM_Get_WithVMSizeProperties.json
    # (commit 6ac15e8a) names instance 0's OS disk `vmss3176_vmss3176_0_OsDisk_...`, the scale
    # set's name before `_0`.
    _deploy(clients, _scale_set())
    vms = clients.compute.virtual_machine_scale_set_vms
    listed = list(vms.list(G, "fe"))
    assert [(vm.name, vm.instance_id) for vm in listed] == [
        ("fe_0", "0"),
        ("fe_1", "1"),
        ("fe_2", "2"),
    ]
    assert [vm.id for vm in listed] == [f"{VMSS}/virtualMachines/{i}" for i in ("0", "1", "2")]
    one = raw.send("GET", f"{VMSS}/virtualMachines/1", api=COMPUTE_API).body
    assert (one["name"], one["instanceId"], one["id"]) == ("fe_1", "1", f"{VMSS}/virtualMachines/1")


def test_model_change_leaves_manual_instances_behind_until_manual_upgrade(
    clients: Clients, commands: list[str], raw: Raw
) -> None:
    _deploy(clients, _scale_set())
    assert commands == ["install 11.31"]  # the create ran the profile's script
    commands.clear()
    _new_model(clients)
    # Manual policy: nothing happens to the existing instances.
    assert _latest(clients) == {"0": False, "1": False, "2": False}
    assert commands == []
    vms = clients.compute.virtual_machine_scale_set_vms
    assert vms.get(G, "fe", "0").storage_profile.image_reference.version == "1.0.0"
    stale = raw.send(
        "GET",
        f"{VMSS}/virtualMachines?$filter=properties/latestModelApplied eq false",
        api=COMPUTE_API,
    )
    assert [v["instanceId"] for v in stale.body["value"]] == ["0", "1", "2"]

    poller = clients.compute.virtual_machine_scale_sets.begin_update_instances(
        G, "fe", {"instanceIds": ["0", "2"]}
    )
    assert poller.result() is None
    assert _latest(clients) == {"0": True, "1": False, "2": True}
    assert commands == ["install 11.32"]  # the new model's script, on the upgraded ones
    assert vms.get(G, "fe", "2").storage_profile.image_reference.version == "2.0.0"
    assert vms.get(G, "fe", "1").storage_profile.image_reference.version == "1.0.0"
    current = raw.send(
        "GET",
        f"{VMSS}/virtualMachines?$filter=properties/latestModelApplied eq true",
        api=COMPUTE_API,
    )
    assert [v["instanceId"] for v in current.body["value"]] == ["0", "2"]


def test_capacity_increase_builds_new_instances_from_the_latest_model(
    clients: Clients, commands: list[str]
) -> None:
    _deploy(clients, _scale_set())
    _new_model(clients)
    clients.compute.virtual_machine_scale_sets.begin_update(
        G, "fe", {"sku": {"capacity": 4}}
    ).result()
    assert _latest(clients) == {"0": False, "1": False, "2": False, "3": True}
    vm = clients.compute.virtual_machine_scale_set_vms.get(G, "fe", "3")
    assert vm.storage_profile.image_reference.version == "2.0.0"


def test_reimage_restores_the_instance_model_and_does_not_upgrade(
    clients: Clients, commands: list[str]
) -> None:
    _deploy(clients, _scale_set())
    _new_model(clients)
    commands.clear()
    vms = clients.compute.virtual_machine_scale_set_vms
    vms.begin_reimage(G, "fe", "1").result()
    assert commands == ["install 11.31"]  # its own (old) model's script ran again
    assert _latest(clients) == {"0": False, "1": False, "2": False}
    assert vms.get(G, "fe", "1").storage_profile.image_reference.version == "1.0.0"

    commands.clear()
    clients.compute.virtual_machine_scale_sets.begin_reimage(
        G, "fe", {"instanceIds": ["2"]}
    ).result()
    assert commands == ["install 11.31"]
    assert _latest(clients)["2"] is False


def test_upgrade_whose_script_fails_leaves_the_instance_failed(
    clients: Clients, commands: list[str]
) -> None:
    _deploy(clients, _scale_set())
    _new_model(clients, command="install broken")
    poller = clients.compute.virtual_machine_scale_sets.begin_update_instances(
        G, "fe", {"instanceIds": ["1"]}
    )
    with pytest.raises(HttpResponseError) as raised:
        poller.result()
    assert error_of(raised.value)[1] == "VMExtensionProvisioningError"
    vms = clients.compute.virtual_machine_scale_set_vms
    assert vms.get(G, "fe", "1").provisioning_state == "Failed"
    assert vms.get(G, "fe", "0").provisioning_state == "Succeeded"
    # The scale set itself is usable again.
    assert clients.compute.virtual_machine_scale_sets.get(G, "fe").provisioning_state == (
        "Succeeded"
    )


def test_delete_instances_removes_them_and_lowers_capacity(
    clients: Clients, sim: SimulatorServer
) -> None:
    _deploy(clients, _scale_set())
    scale_sets = clients.compute.virtual_machine_scale_sets
    scale_sets.begin_delete_instances(G, "fe", {"instanceIds": ["0", "2"]}).result()
    assert _ids(clients) == ["1"]
    assert scale_sets.get(G, "fe").sku.capacity == 1
    # A later scale-out adds new instance ids.
    scale_sets.begin_update(G, "fe", {"sku": {"capacity": 2}}).result()
    assert _ids(clients) == ["1", "3"]


def test_actions_answer_as_long_running_operations(clients: Clients, raw: Raw) -> None:
    _deploy(clients, _scale_set())
    answer = raw.send("POST", f"{VMSS}/manualupgrade", {"instanceIds": ["0"]}, api=COMPUTE_API)
    assert answer.status == 202
    assert (
        "/providers/Microsoft.Compute/locations/westeurope/operations/"
        in (answer.headers["Azure-AsyncOperation"])
    )
    # Compute's Location is its operation URL with `monitor=true` (see localdev/armsim/
    # operations.py, `result_url`), polled with `Microsoft.Compute/locations/operations/read`.
    assert (
        "/providers/Microsoft.Compute/locations/westeurope/operations/"
        in (answer.headers["Location"])
    )
    assert "monitor=true" in answer.headers["Location"]
    assert raw.wait(answer).body["status"] == "Succeeded"
    result = raw.send("GET", answer.headers["Location"])
    assert (result.status, result.body) == (200, None)


def test_busy_instances_and_bad_instance_ids_are_refused(
    clients: Clients, raw: Raw, sim: SimulatorServer
) -> None:
    _deploy(clients, _scale_set())
    sim.configure({"latencyScale": 1.0})
    started = raw.send("POST", f"{VMSS}/virtualMachines/0/reimage", {}, api=COMPUTE_API)
    assert started.status == 202
    vm = clients.compute.virtual_machine_scale_set_vms.get(G, "fe", "0")
    assert vm.provisioning_state == "Updating"
    again = raw.send("POST", f"{VMSS}/manualupgrade", {"instanceIds": ["0"]}, api=COMPUTE_API)
    assert (again.status, again.code) == (409, "AnotherOperationInProgress")

    missing = raw.send("POST", f"{VMSS}/manualupgrade", {}, api=COMPUTE_API)
    assert (missing.status, missing.code, missing.error.get("target")) == (
        400,
        "InvalidParameter",
        "instanceIds",
    )
    unknown = raw.send("POST", f"{VMSS}/delete", {"instanceIds": ["9"]}, api=COMPUTE_API)
    assert (unknown.status, unknown.code) == (400, "InvalidParameter")
    assert "instanceId 9" in unknown.message
    with pytest.raises(HttpResponseError) as raised:
        clients.compute.virtual_machine_scale_sets.begin_delete_instances(
            G, "fe", {"instanceIds": ["9"]}
        ).result()
    assert error_of(raised.value)[:2] == (400, "InvalidParameter")


def test_faults_on_the_instance_actions(clients: Clients, sim: SimulatorServer) -> None:
    _deploy(clients, _scale_set())
    scale_sets = clients.compute.virtual_machine_scale_sets
    sim.add_fault_rule("POST", "/virtualmachinescalesets/fe/manualupgrade", "operation-failed")
    with pytest.raises(HttpResponseError) as raised:
        scale_sets.begin_update_instances(G, "fe", {"instanceIds": ["1"]}).result()
    assert error_of(raised.value)[1] == "RetryableError"
    vm = clients.compute.virtual_machine_scale_set_vms.get(G, "fe", "1")
    assert vm.provisioning_state == "Failed"
    # A retry succeeds.
    scale_sets.begin_update_instances(G, "fe", {"instanceIds": ["1"]}).result()
    assert clients.compute.virtual_machine_scale_set_vms.get(G, "fe", "1").provisioning_state == (
        "Succeeded"
    )

    sim.add_fault_rule("POST", "/virtualmachinescalesets/fe/delete", "operation-failed")
    with pytest.raises(HttpResponseError):
        scale_sets.begin_delete_instances(G, "fe", {"instanceIds": ["0"]}).result()
    assert scale_sets.get(G, "fe").sku.capacity == 3  # nothing was deleted
    assert len(list(clients.compute.virtual_machine_scale_set_vms.list(G, "fe"))) == 3

    # Transient answers (500/503/429) are retried by azure-core's policy.
    sim.add_fault_rule("POST", "/virtualmachines/2/reimage", "503")
    clients.compute.virtual_machine_scale_set_vms.begin_reimage(G, "fe", "2").result()
    faults = [r["fault"] for r in sim.requests() if r["path"].endswith("/reimage")]
    assert faults == ["503", None]


def test_a_scale_out_during_an_instance_reimage_leaves_that_reimage_running(
    clients: Clients, raw: Raw, sim: SimulatorServer
) -> None:
    _deploy(clients, _scale_set())
    sim.configure({"latencyScale": 1.0})
    assert raw.send("POST", f"{VMSS}/virtualMachines/0/reimage", api=COMPUTE_API).status == 202
    grown = raw.send("PATCH", VMSS, {"sku": {"capacity": 4}}, api=COMPUTE_API)
    assert grown.status == 200
    sim.fast_forward(150 + 1200)  # the scale-out ends; the reimage (180 + 1200 s) does not
    vms = clients.compute.virtual_machine_scale_set_vms
    assert vms.get(G, "fe", "3").provisioning_state == "Succeeded"
    assert vms.get(G, "fe", "0").provisioning_state == "Updating"
    sim.fast_forward(60)
    assert vms.get(G, "fe", "0").provisioning_state == "Succeeded"


def test_reimage_of_the_whole_set_without_a_body(clients: Clients, commands: list[str]) -> None:
    _deploy(clients, _scale_set())
    commands.clear()
    clients.compute.virtual_machine_scale_sets.begin_reimage(G, "fe").result()
    assert commands == ["install 11.31"]  # one run of the script, on every instance
    vms = clients.compute.virtual_machine_scale_set_vms
    assert vms.get(G, "fe", "2").sku.capacity is None  # an instance's sku is its size only
    assert vms.get(G, "fe", "2").sku.name == "Standard_F4s_v2"


def test_the_reboot_fault_on_an_upgrade_leaves_the_instance_on_the_new_model_to_rerun(
    clients: Clients, sim: SimulatorServer, commands: list[str]
) -> None:
    """The `extension-exit-3010` fault on a manual upgrade: the instance took the new model and
    its script asked for a reboot (exit 3010, reported as VMExtensionProvisioningError); a
    second manual upgrade runs the script again and collects the outcome."""
    _deploy(clients, _scale_set())
    _new_model(clients)
    scale_sets = clients.compute.virtual_machine_scale_sets
    sim.add_fault_rule("POST", "/virtualmachinescalesets/fe/", "extension-exit-3010")
    # A delete runs no script: the rule does not match it.
    scale_sets.begin_delete_instances(G, "fe", {"instanceIds": ["2"]}).result()
    commands.clear()
    with pytest.raises(HttpResponseError) as raised:
        scale_sets.begin_update_instances(G, "fe", {"instanceIds": ["1"]}).result()
    assert error_of(raised.value)[1] == "VMExtensionProvisioningError"
    assert "non-zero exit code of: '3010'" in message_of(raised.value)
    assert commands == []  # the fault decided the run
    vm = clients.compute.virtual_machine_scale_set_vms.get(G, "fe", "1")
    assert (vm.provisioning_state, vm.latest_model_applied) == ("Failed", True)
    scale_sets.begin_update_instances(G, "fe", {"instanceIds": ["1"]}).result()
    assert commands == ["install 11.32"]
    vm = clients.compute.virtual_machine_scale_set_vms.get(G, "fe", "1")
    assert (vm.provisioning_state, vm.latest_model_applied) == ("Succeeded", True)

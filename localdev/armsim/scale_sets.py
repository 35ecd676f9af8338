"""A scale set's model and its instances' models: `latestModelApplied` and the instance actions.

Facts (Azure/azure-rest-api-specs, specification/compute/resource-manager/Microsoft.Compute/
ComputeRP/stable/2024-11-01/virtualMachineScaleSet.json, commit 04be2f1c; the app calls
Compute 2026-04-01 through azure-mgmt-compute, which has the same operations):

- `VirtualMachineScaleSetVMProperties.latestModelApplied` (read-only): "Specifies whether the
  latest model has been applied to the virtual machine." MicrosoftDocs/azure-docs
  articles/virtual-machine-scale-sets/virtual-machine-scale-sets-upgrade-scale-set.md (commit
  00982c44): once the scale set model is updated the new configuration applies to new VMs;
  existing VMs must be brought up to date, and with upgrade policy **Manual** "when you update
  the scale set model, nothing happens to existing VMs" until a manual upgrade of each.
  (Automatic and Rolling bring them up to date by themselves: the simulator applies the model at
  once, without re-running extensions.)
- `POST .../virtualMachineScaleSets/{vmss}/manualupgrade` (`VirtualMachineScaleSets_
  UpdateInstances`, body `VirtualMachineScaleSetVMInstanceRequiredIDs`: `instanceIds`
  required), "Upgrades one or more virtual machines to the latest SKU set in the VM scale set
  model": 200/202, long-running.
- `POST .../virtualMachineScaleSets/{vmss}/reimage` (`VirtualMachineScaleSets_Reimage`, body
  optional `VirtualMachineScaleSetReimageParameters`: `instanceIds`, all instances when
  omitted) and `POST .../virtualMachines/{instanceId}/reimage` (`VirtualMachineScaleSetVMs_
  Reimage`): "Reimages (upgrade the operating system)": the instance is rebuilt from its own
  model, so a newer scale set model is NOT applied (the issue's reading; the page above: only
  changes of the OS profile, such as the admin password, reach existing VMs by a reimage - the
  simulator keeps no password, so there is nothing of it to apply). Its extensions run again.
- `POST .../virtualMachineScaleSets/{vmss}/delete` (`VirtualMachineScaleSets_DeleteInstances`,
  `instanceIds` required, `forceDeletion` query): the instances go and the capacity drops by
  as many.

Refusals (codes ours where the specs publish none; compute's "Required parameter ... is missing
(null)." wording): no `instanceIds` 400 `InvalidParameter` (target `instanceIds`); an id that is
not an instance of the set 400 `InvalidParameter` "The provided instanceId {id} is not an active
Virtual Machine Scale Set VM instanceId." (as ARM is commonly quoted answering it).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from typing import Any

from localdev.armsim import extensions
from localdev.armsim.bodies import json_body
from localdev.armsim.errors import ArmError, missing_property
from localdev.armsim.hooks import ArmSim
from localdev.armsim.latency import action_seconds
from localdev.armsim.messages import SimRequest, SimResponse
from localdev.armsim.store import Operation, Resource
from localdev.armsim.validation import get_path

VMSS_VM_TYPE = "Microsoft.Compute/virtualMachineScaleSets/virtualMachines"
#: Actions on a scale set (lower case) and on one of its instances.
SCALE_SET_ACTIONS = frozenset({"manualupgrade", "reimage", "delete"})
INSTANCE_ACTIONS = frozenset({"reimage"})


# ================================================================ the model


def model_of(body: Mapping[str, Any]) -> dict[str, Any]:
    """What a scale set's instances are built from: the VM profile and the size (not the
    capacity, the tags or the policies)."""
    return {
        "profile": copy.deepcopy(get_path(body, "properties.virtualMachineProfile") or {}),
        "size": get_path(body, "sku.name"),
    }


def _same(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


def model_version(scale_set: Resource) -> int:
    """The number of the scale set's current model (0 until its model first changes)."""
    return int(scale_set.extra.get("modelVersion", 0))


def upgrade_mode(scale_set: Resource) -> str:
    """The upgrade policy's mode (Manual when absent, as Compute defaults it)."""
    return str(get_path(scale_set.body, "properties.upgradePolicy.mode") or "Manual")


def track_model(engine: ArmSim, scale_set: Resource, previous: dict[str, Any] | None) -> None:
    """After a write: a changed model gets a new number; with an Automatic or Rolling upgrade
    policy the live instances take it, with Manual they keep theirs (`latestModelApplied`
    false) until a manual upgrade."""
    if previous is None or _same(model_of(previous), model_of(scale_set.body)):
        return
    scale_set.extra["modelVersion"] = model_version(scale_set) + 1
    if upgrade_mode(scale_set).lower() == "manual":
        return
    for instance in live_instances(engine, scale_set):
        apply_model(scale_set, instance)


def apply_model(scale_set: Resource, instance: Resource) -> None:
    """Give an instance the scale set's current model."""
    model = model_of(scale_set.body)
    instance.extra["model"] = model
    instance.extra["modelVersion"] = model_version(scale_set)
    properties = instance.body.setdefault("properties", {})
    properties["hardwareProfile"] = {"vmSize": model["size"]}
    properties["storageProfile"] = copy.deepcopy(model["profile"].get("storageProfile", {}))
    # An instance's sku is the size (VirtualMachineScaleSetVM.sku), not the set's capacity.
    sku = scale_set.body.get("sku") or {}
    instance.body["sku"] = {k: v for k, v in sku.items() if k in {"name", "tier"}}


def instance_model(scale_set: Resource, instance: Resource) -> dict[str, Any]:
    """The model an instance runs (an instance created before models were tracked: the
    scale set's)."""
    model = instance.extra.get("model")
    return model if isinstance(model, dict) else model_of(scale_set.body)


def latest_model_applied(scale_set: Resource | None, instance: Resource) -> bool:
    """`latestModelApplied`: the instance runs the scale set's current model."""
    if scale_set is None:
        return True
    return int(instance.extra.get("modelVersion", 0)) == model_version(scale_set)


def live_instances(engine: ArmSim, scale_set: Resource) -> list[Resource]:
    """The scale set's instances not being deleted, by instance id."""
    found = [c for c in engine.store.children(scale_set.id, VMSS_VM_TYPE) if c.state != "Deleting"]
    return sorted(found, key=lambda c: int(c.name) if c.name.isdigit() else 0)


# ================================================================ the actions


def _requested_ids(
    engine: ArmSim, scale_set: Resource, request: SimRequest, *, required: bool
) -> list[str]:
    """The `instanceIds` of an action's body, each an instance of the set (all when optional
    and absent)."""
    body = json_body(request)
    ids = body.get("instanceIds")
    live = {i.name: i for i in live_instances(engine, scale_set)}
    if ids is None or ids == []:
        if required:
            raise missing_property("instanceIds")
        return list(live)
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
        raise ArmError(
            400,
            "InvalidParameter",
            "The value of parameter instanceIds is invalid.",
            target="instanceIds",
        )
    for instance_id in ids:
        if instance_id not in live:
            raise ArmError(
                400,
                "InvalidParameter",
                f"The provided instanceId {instance_id} is not an active Virtual Machine Scale "
                "Set VM instanceId.",
                target="instanceIds",
            )
    return list(dict.fromkeys(ids))


def scale_set_action(
    engine: ArmSim, scale_set: Resource, name: str, request: SimRequest
) -> SimResponse | None:
    """`manualupgrade`, `reimage` and `delete` (of instances) on a scale set."""
    action = name.lower()
    if action not in SCALE_SET_ACTIONS:
        return None
    ids = _requested_ids(engine, scale_set, request, required=action != "reimage")
    instances = [engine.store.get(f"{scale_set.id}/virtualMachines/{i}") for i in ids]
    for instance in instances:
        if instance is not None:
            engine.require_idle(instance, request)
    seconds = action_seconds(scale_set.type, action, model_of(scale_set.body)["profile"])
    response = engine.start_action(scale_set, action, request, seconds, targets=ids)
    for instance in instances:
        if instance is None:
            continue
        if action == "delete":
            instance.state = "Deleting"
        else:
            instance.state = "Updating"
    if action == "delete":
        sku = scale_set.body.setdefault("sku", {})
        sku["capacity"] = max(0, int(sku.get("capacity", 0)) - len(ids))
    engine.store.dirty = True
    return response


def instance_action(
    engine: ArmSim, instance: Resource, name: str, request: SimRequest
) -> SimResponse | None:
    """`reimage` of one instance."""
    if name.lower() not in INSTANCE_ACTIONS:
        return None
    scale_set = engine.store.get(instance.id.rsplit("/", 2)[0])
    if scale_set is None:
        return None
    engine.require_idle(scale_set, request)
    profile = instance_model(scale_set, instance)["profile"]
    seconds = action_seconds(scale_set.type, "reimage", profile)
    return engine.start_action(instance, "reimage", request, seconds, targets=[instance.name])


def _scale_set_of(engine: ArmSim, resource: Resource) -> Resource | None:
    if resource.type.lower() == VMSS_VM_TYPE.lower():
        return engine.store.get(resource.id.rsplit("/", 2)[0])
    return resource


def rebuilds_with_scripts(engine: ArmSim, resource: Resource, action: str) -> bool:
    """Whether an action on a scale set or an instance runs script extensions (an upgrade or a
    reimage of a model that has some): the reboot fault applies to it."""
    if action.lower() not in {"manualupgrade", "reimage"}:
        return False
    scale_set = _scale_set_of(engine, resource)
    if scale_set is None or scale_set.type.lower() != "microsoft.compute/virtualmachinescalesets":
        return False
    return bool(extensions.profile_scripts(scale_set.body))


def reboot_error(engine: ArmSim, resource: Resource) -> dict[str, Any] | None:
    """The reboot fault's error on an upgrade or reimage: the (first) script exits with 3010."""
    scale_set = _scale_set_of(engine, resource)
    if scale_set is None:
        return None
    reboot = extensions.ScriptResult(extensions.REBOOT_EXIT_CODE)
    for name, script in extensions.profile_scripts(scale_set.body):
        return extensions.script_failure(name, script, reboot)
    return None


def _targets(engine: ArmSim, scale_set: Resource, op: Operation) -> list[Resource]:
    found = []
    for instance_id in op.targets:
        instance = engine.store.get(f"{scale_set.id}/virtualMachines/{instance_id}")
        if instance is not None:
            found.append(instance)
    return found


def run_scripts(
    engine: ArmSim, scale_set: Resource, instances: list[Resource], model: Mapping[str, Any]
) -> dict[str, Any] | None:
    """Run the script extensions of `model`'s profile on `instances` (their outcome deciders
    see the scale set with that profile); the first failure, or None. Each instance's run is
    recorded for its instance view by the decider; an instance whose own run failed (or, when
    the decider records none, any failure) ends `Failed`."""
    if not instances:
        return None
    body = copy.deepcopy(scale_set.body)
    body.setdefault("properties", {})["virtualMachineProfile"] = copy.deepcopy(model["profile"])
    host = Resource(
        id=scale_set.id,
        type=scale_set.type,
        body=body,
        state=scale_set.state,
        created=scale_set.created,
        changed=scale_set.changed,
        etag=scale_set.etag,
        extra={**scale_set.extra, "targetInstances": [i.name for i in instances]},
    )
    first: dict[str, Any] | None = None
    for name, properties in extensions.profile_scripts(host.body):
        for instance in instances:
            (instance.extra.get("extensions") or {}).pop(name, None)
        error = extensions.decide(engine, host, name, properties)
        for instance in instances:
            run = (instance.extra.get("extensions") or {}).get(name)
            failed = run.get("exitCode") != 0 if run is not None else error is not None
            if failed:
                instance.extra["failed"] = True
        first = first or error
    return first


def action_outcome(engine: ArmSim, scale_set: Resource, op: Operation) -> dict[str, Any] | None:
    """How a scale set's (or an instance's) action ends: upgrades and reimages run the
    instances' extensions (of the latest model, or of the model each instance has)."""
    instances = _targets(engine, scale_set, op)
    if op.action == "delete":
        return None
    for instance in instances:
        instance.extra.pop("failed", None)
    if op.action == "manualupgrade":
        return run_scripts(engine, scale_set, instances, model_of(scale_set.body))
    groups: dict[str, tuple[dict[str, Any], list[Resource]]] = {}
    for instance in instances:
        model = instance_model(scale_set, instance)
        group = groups.setdefault(json.dumps(model, sort_keys=True), (model, []))
        group[1].append(instance)
    first: dict[str, Any] | None = None
    for model, members in groups.values():
        first = first or run_scripts(engine, scale_set, members, model)
    return first


def action_ended(engine: ArmSim, scale_set: Resource, op: Operation) -> None:
    """The instances after their action: deleted, upgraded or reimaged (`Failed` where their
    extension failed, or all of them when the operation failed for another reason)."""
    instances = _targets(engine, scale_set, op)
    if op.action == "delete":
        if op.status == "Succeeded":
            for instance in instances:
                engine.store.remove(instance.id)
        else:
            for instance in instances:
                instance.state = "Succeeded"
            sku = scale_set.body.setdefault("sku", {})
            sku["capacity"] = int(sku.get("capacity", 0)) + len(instances)
        return
    # A script's failure (its own run, or the reboot fault's exit 3010) happened on instances
    # that took their model; any other failure (fault injection's RetryableError) changed none.
    script_failure = bool(op.error) and (op.error or {}).get("code") == (
        "VMExtensionProvisioningError"
    )
    flagged = any(i.extra.get("failed") for i in instances)
    platform_failure = op.status != "Succeeded" and not script_failure
    for instance in instances:
        failed = bool(instance.extra.pop("failed", False)) or (
            op.status != "Succeeded" and not flagged
        )
        if op.action == "manualupgrade" and not platform_failure:
            apply_model(scale_set, instance)
            if not failed:
                # The setup script's upgrade ends by starting the Deployment Service again
                # (docs/upgrades.md, health gate); a Drain stays (its firewall rule is kept).
                instance.extra.pop("holdingDeployments", None)
        if op.action == "reimage" and not platform_failure:
            # A new OS disk: no Drain rule, no stopped service.
            instance.extra.pop("drained", None)
            instance.extra.pop("holdingDeployments", None)
        instance.state = "Failed" if failed else "Succeeded"
        instance.changed = engine.now
    engine.store.dirty = True

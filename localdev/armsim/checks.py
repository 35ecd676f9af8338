"""What ARM checks before it accepts a request: scope, busy resources, validity, references.

Each check raises the `ArmError` ARM answers with: the group or the parent missing (404), the
group being deleted or a resource (or its parent) busy with another operation (409), a body
that fails its type's validation or names a resource that does not exist or is not provisioned
(400), a global name already taken (409), a resource still referred to by another (400 on
delete).
"""

from __future__ import annotations

from typing import Any

from localdev.armsim import operations, registry
from localdev.armsim.bodies import has_sub_element, references_of
from localdev.armsim.catalog import TypeSpec, canonical_type, spec_for
from localdev.armsim.errors import (
    ArmError,
    invalid_reference,
    parent_not_found,
    reference_not_provisioned,
    resource_group_not_found,
    resource_not_found,
)
from localdev.armsim.hooks import ArmSim
from localdev.armsim.messages import SimRequest
from localdev.armsim.paths import ResourcePath, key, parse_resource_id
from localdev.armsim.store import Operation, Resource
from localdev.armsim.validation import VALIDATORS, require_location

# ---------------------------------------------------------------- scope


def group(sim: ArmSim, subscription: str, name: str) -> Resource | None:
    """The resource group, when it exists."""
    return sim.store.get(f"/subscriptions/{subscription}/resourceGroups/{name}")


def require_group(sim: ArmSim, subscription: str, name: str, *, writing: bool) -> Resource:
    """The resource group; 404 when absent, 409 to write into one being deleted."""
    found = group(sim, subscription, name)
    if found is None:
        raise resource_group_not_found(name)
    if writing and found.state == "Deleting":
        raise ArmError(
            409,
            "ResourceGroupBeingDeleted",
            f"The resource group '{found.name}' is in deprovisioning state and cannot "
            "perform this operation.",
        )
    return found


def require_scope(sim: ArmSim, path: ResourcePath, *, writing: bool) -> None:
    """The group holding a resource exists (not being deleted, to write), and so does the
    resource an extension resource extends."""
    if path.resource_group:
        require_group(sim, path.subscription, path.resource_group, writing=writing)
    if path.extends and sim.store.get(path.extends) is None:
        scope = parse_resource_id(path.extends)
        if scope is None:
            raise ArmError(400, "InvalidScope", f"The scope '{path.extends}' is not valid.")
        raise not_found(sim, scope)


def not_found(sim: ArmSim, path: ResourcePath) -> ArmError:
    """ARM's 404 for a missing resource (naming the parent when that is what is missing)."""
    parent = path.parent
    if parent is not None and sim.store.get(parent.id) is None:
        return parent_not_found(parent.name)
    return resource_not_found(
        canonical_type(path.full_type), "/".join(path.names), path.resource_group
    )


def check_write_target(sim: ArmSim, path: ResourcePath, request: SimRequest) -> Resource | None:
    """Shared preconditions of PUT/PATCH/DELETE: group, parent, busy resource; the resource
    as it is stored (None when new)."""
    require_scope(sim, path, writing=True)
    parent_path = path.parent
    if parent_path is not None:
        parent = sim.store.get(parent_path.id)
        if parent is None:
            raise parent_not_found(parent_path.name)
        parent_op = _parent_busy(sim, parent, path)
        if parent_op is not None:
            raise operations.busy_error(request, parent_op)
    existing = sim.store.get(path.id)
    if existing is not None:
        op = operations.busy(sim, existing)
        if op is not None:
            raise operations.busy_error(request, op)
    return existing


def _parent_busy(sim: ArmSim, parent: Resource, path: ResourcePath) -> Operation | None:
    if spec_for(path.full_type).locks_parent:
        return operations.busy(sim, parent)
    return operations.running(sim, parent)


# ---------------------------------------------------------------- validity


def validate(
    sim: ArmSim,
    path: ResourcePath,
    spec: TypeSpec,
    body: dict[str, Any],
    existing: Resource | None,
) -> None:
    """A write's body: name, location, the type's validator, global names, references, and
    the type's own `check` hook."""
    if spec.fixed_name is not None and path.name.lower() != spec.fixed_name:
        raise ArmError(
            400,
            "InvalidResourceName",
            f"The name of {spec.type} must be '{spec.fixed_name}'.",
        )
    if spec.name_rule is not None and existing is None:
        spec.name_rule.check(path.name, spec.type)
    if spec.tracked:
        require_location(body)
        if existing is not None:
            old = str(existing.body.get("location", "")).replace(" ", "").lower()
            new = str(body.get("location", "")).replace(" ", "").lower()
            if old and new and old != new:
                raise ArmError(
                    400,
                    "InvalidResourceLocation",
                    f"The resource '{path.name}' already exists in location '{old}' in "
                    f"resource group '{path.resource_group}'. A resource with the same name "
                    f"cannot be created in location '{new}'. Please select a new resource "
                    "name.",
                )
    validator = VALIDATORS.get(spec.type.lower())
    if validator is not None:
        validator(path.name, body, existing.body if existing else None)
    if spec.global_name and existing is None:
        _check_global_name(sim, path, spec)
    _check_references(sim, path, spec, body)
    registry.for_type(spec.type).check(sim, path, body, existing)


def _check_global_name(sim: ArmSim, path: ResourcePath, spec: TypeSpec) -> None:
    for resource in sim.store.resources.values():
        if resource.type == spec.type and resource.name.lower() == path.name.lower():
            if spec.type.lower() == "microsoft.storage/storageaccounts":
                raise ArmError(
                    409,
                    "StorageAccountAlreadyTaken",
                    f"The storage account named {path.name} is already taken.",
                )
            raise ArmError(
                409,
                "NameAlreadyExists",
                f"The name '{path.name}' already exists. Choose a different name.",
            )


def _check_references(
    sim: ArmSim, path: ResourcePath, spec: TypeSpec, body: dict[str, Any]
) -> None:
    own = key(path.id)
    for reference in references_of(spec, body):
        if parse_resource_id(reference) is None:
            raise invalid_reference(reference, path.id)
        ref_key = key(reference)
        if ref_key == own:
            continue
        if ref_key.startswith(own + "/"):
            if not has_sub_element(body, reference[len(own) + 1 :]):
                raise invalid_reference(reference, path.id)
            continue
        _resolve_reference(sim, reference, path.id)


def _resolve_reference(sim: ArmSim, reference: str, referencing: str) -> Resource:
    """The stored resource a reference points at (or whose sub-element it names)."""
    target = sim.store.get(reference)
    if target is None:
        parsed = parse_resource_id(reference)
        if parsed is not None and len(parsed.types) >= 2:
            owner = sim.store.get(parsed.parent.id) if parsed.parent else None
            relative = f"{parsed.types[-1]}/{parsed.names[-1]}"
            if owner is not None and has_sub_element(owner.body, relative):
                target = owner
    if target is None:
        raise invalid_reference(reference, referencing)
    if target.state != "Succeeded":
        raise reference_not_provisioned(reference, referencing, target.state)
    return target


def check_not_in_use(sim: ArmSim, resource: Resource, spec: TypeSpec) -> None:
    """A resource to delete is not referred to by any other (outside what it takes along)."""
    doomed = key(resource.id)
    for other_key, other in sim.store.resources.items():
        if other_key == doomed or other_key.startswith(doomed + "/") or other.state == "Deleting":
            continue
        other_spec = spec_for(other.type)
        if not other_spec.creatable:
            continue
        for reference in references_of(other_spec, other.body):
            ref_key = key(reference)
            if ref_key == doomed or ref_key.startswith(doomed + "/"):
                raise ArmError(
                    400,
                    spec.in_use_code,
                    f"Resource {resource.id} is in use by {other.id} and cannot be deleted. "
                    "Remove the reference first.",
                )

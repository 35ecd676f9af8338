"""Principals, built-in roles and role assignments (`Microsoft.Authorization/roleAssignments`).

The simulator's directory holds the principals of the user-assigned identities it created (and
the caller); a role assignment names one of them, a built-in role and a scope (its extension
resource's scope: subscription, group, resource or child resource). What ARM checks, with its
codes (Azure/azure-rest-api-specs authorization 2022-04-01; MicrosoftDocs/azure-docs
articles/role-based-access-control/troubleshooting.md at 012ad308):

- the name is a GUID (400 `InvalidRoleAssignmentId`);
- `roleDefinitionId` is `/subscriptions/{sub}/providers/Microsoft.Authorization/roleDefinitions/
  {guid}` or `/providers/Microsoft.Authorization/roleDefinitions/{guid}` (400
  `InvalidRoleDefinitionId`) of a role that exists (400 `RoleDefinitionDoesNotExist` "The
  specified role definition with ID '{guid}' does not exist.");
- the principal exists (400 `PrincipalNotFound`, the troubleshooting page's message);
- an assignment never changes principal, role or scope, and its name is unique everywhere (400
  `RoleAssignmentUpdateNotPermitted` "Tenant ID, application ID, principal ID, and scope are not
  allowed to be updated.");
- one principal gets one role once per scope (409 `RoleAssignmentExists` "The role assignment
  already exists.").

Lists "apply to a scope": assignments at the scope, above it and below it; `$filter=atScope()`
keeps those at or above, `principalId eq '{id}'` one principal's. Data-plane checks (may this
identity read this secret?) use the roles' `dataActions`.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from localdev.armsim.authorization import matches
from localdev.armsim.errors import ArmError
from localdev.armsim.hooks import ArmSim, Behaviour, properties_of
from localdev.armsim.messages import SimRequest
from localdev.armsim.paths import ResourcePath, key, parse_resource_id
from localdev.armsim.store import Resource, iso

ROLE_ASSIGNMENT_TYPE = "Microsoft.Authorization/roleAssignments"
IDENTITY_TYPE = "Microsoft.ManagedIdentity/userAssignedIdentities"
_GUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_ROLE_DEFINITION_ID = re.compile(
    r"(/subscriptions/[^/]+)?/providers/Microsoft\.Authorization/roleDefinitions/([^/]+)",
    re.IGNORECASE,
)
_PRINCIPAL_FILTER = re.compile(r"principalId\s+eq\s+'([^']+)'", re.IGNORECASE)
_PRINCIPAL_TYPES = frozenset({"User", "Group", "ServicePrincipal", "ForeignGroup", "Device"})


@dataclass(frozen=True)
class RoleDefinition:
    """A built-in role: its GUID, name, actions and data actions."""

    id: str
    name: str
    actions: tuple[str, ...] = ()
    not_actions: tuple[str, ...] = ()
    data_actions: tuple[str, ...] = ()
    not_data_actions: tuple[str, ...] = ()

    def grants_data_action(self, action: str) -> bool:
        """Whether the role's data actions cover `action`."""
        return matches(self.data_actions, action) and not matches(self.not_data_actions, action)


#: Built-in roles the platform uses or that tests compare with. Ids and permissions from
#: MicrosoftDocs/azure-docs, articles/role-based-access-control/built-in-roles/ (general.md,
#: identity.md, privileged.md, security.md, storage.md, networking.md); the same in every
#: tenant.
BUILT_IN_ROLES: Mapping[str, RoleDefinition] = {
    role.id: role
    for role in (
        RoleDefinition("8e3af657-a8ff-443c-a75c-2fe8c4bcb635", "Owner", ("*",)),
        RoleDefinition(
            "b24988ac-6180-42a0-ab88-20f7382dd24c",
            "Contributor",
            ("*",),
            (
                "Microsoft.Authorization/*/Delete",
                "Microsoft.Authorization/*/Write",
                "Microsoft.Authorization/elevateAccess/Action",
            ),
        ),
        RoleDefinition("acdd72a7-3385-48ef-bd42-f606fba81ae7", "Reader", ("*/read",)),
        RoleDefinition(
            "18d7d88d-d35e-4fb5-a5c3-7773c20a72d9",
            "User Access Administrator",
            ("*/read", "Microsoft.Authorization/*", "Microsoft.Support/*"),
        ),
        RoleDefinition(
            "f58310d9-a9f6-439a-9e8d-f62e7b41a168",
            "Role Based Access Control Administrator",
            (
                "Microsoft.Authorization/roleAssignments/write",
                "Microsoft.Authorization/roleAssignments/delete",
                "*/read",
                "Microsoft.Support/*",
            ),
        ),
        RoleDefinition(
            "f1a07417-d97a-45cb-824c-7a7467783830",
            "Managed Identity Operator",
            (
                "Microsoft.ManagedIdentity/userAssignedIdentities/*/read",
                "Microsoft.ManagedIdentity/userAssignedIdentities/*/assign/action",
                "Microsoft.Authorization/*/read",
                "Microsoft.Insights/alertRules/*",
                "Microsoft.Resources/subscriptions/resourceGroups/read",
                "Microsoft.Resources/deployments/*",
                "Microsoft.Support/*",
            ),
        ),
        RoleDefinition(
            "4d97b98b-1d4f-4787-a291-c67834d212e7",
            "Network Contributor",
            ("Microsoft.Network/*", "Microsoft.Authorization/*/read"),
        ),
        RoleDefinition(
            "00482a5a-887f-4fb3-b363-3b7fe8e74483",
            "Key Vault Administrator",
            ("Microsoft.Authorization/*/read", "Microsoft.KeyVault/vaults/*/read"),
            data_actions=("Microsoft.KeyVault/vaults/*",),
        ),
        RoleDefinition(
            "b86a8fe4-44ce-4948-aee5-eccb2c155cd7",
            "Key Vault Secrets Officer",
            ("Microsoft.Authorization/*/read", "Microsoft.KeyVault/vaults/*/read"),
            data_actions=("Microsoft.KeyVault/vaults/secrets/*",),
        ),
        RoleDefinition(
            "4633458b-17de-408a-b874-0445c86b69e6",
            "Key Vault Secrets User",
            data_actions=(
                "Microsoft.KeyVault/vaults/secrets/getSecret/action",
                "Microsoft.KeyVault/vaults/secrets/readMetadata/action",
            ),
        ),
        RoleDefinition(
            "21090545-7ca7-4776-b22c-e363652d74d2",
            "Key Vault Reader",
            ("Microsoft.Authorization/*/read", "Microsoft.KeyVault/vaults/*/read"),
            data_actions=(
                "Microsoft.KeyVault/vaults/*/read",
                "Microsoft.KeyVault/vaults/secrets/readMetadata/action",
            ),
        ),
        RoleDefinition(
            "69566ab7-960f-475b-8e7c-b3118f30c6bd",
            "Storage File Data Privileged Contributor",
            data_actions=(
                "Microsoft.Storage/storageAccounts/fileServices/fileshares/files/read",
                "Microsoft.Storage/storageAccounts/fileServices/fileshares/files/write",
                "Microsoft.Storage/storageAccounts/fileServices/fileshares/files/delete",
                "Microsoft.Storage/storageAccounts/fileServices/fileshares/files/"
                "modifypermissions/action",
                "Microsoft.Storage/storageAccounts/fileServices/readFileBackupSemantics/action",
                "Microsoft.Storage/storageAccounts/fileServices/writeFileBackupSemantics/action",
            ),
        ),
        # Read, write and delete on files over SMB, without the backup semantics that OAuth
        # over REST needs (storage/files/authorize-oauth-rest.md): the setup's probe of the
        # share gets 403 with it.
        RoleDefinition(
            "0c867c2a-1d8c-454a-a3db-ab2ea1bdc8bb",
            "Storage File Data SMB Share Contributor",
            data_actions=(
                "Microsoft.Storage/storageAccounts/fileServices/fileshares/files/read",
                "Microsoft.Storage/storageAccounts/fileServices/fileshares/files/write",
                "Microsoft.Storage/storageAccounts/fileServices/fileshares/files/delete",
            ),
        ),
        RoleDefinition(
            "b8eda974-7b85-4f76-af95-65846b26df6d",
            "Storage File Data Privileged Reader",
            data_actions=(
                "Microsoft.Storage/storageAccounts/fileServices/fileshares/files/read",
                "Microsoft.Storage/storageAccounts/fileServices/readFileBackupSemantics/action",
            ),
        ),
    )
}


def role_of(role_definition_id: str) -> RoleDefinition | None:
    """The built-in role a role definition id names (None when malformed or unknown)."""
    match = _ROLE_DEFINITION_ID.fullmatch(role_definition_id.strip())
    return BUILT_IN_ROLES.get(match.group(2).lower()) if match else None


# ---------------------------------------------------------------- principals


def _derived(resource: Resource, engine: ArmSim, what: str) -> str:
    # From the id and how often it was created: a re-PUT keeps the ids, a deleted and
    # recreated identity is a new principal (as in Entra ID), a new run repeats them.
    count = engine.store.creation_count(resource.id)
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"{key(resource.id)}#{count}#{what}"))


def identity_ids(engine: ArmSim, identity: Resource) -> dict[str, str]:
    """`principalId`, `clientId`, `tenantId` of a user-assigned identity."""
    return {
        "tenantId": engine.config.tenant_id,
        "principalId": str(identity.extra.get("principalId", "")),
        "clientId": str(identity.extra.get("clientId", "")),
    }


def principals(engine: ArmSim) -> dict[str, Resource | None]:
    """Principal ids the directory knows (lower case) -> their identity (None: the caller)."""
    known: dict[str, Resource | None] = {engine.config.caller_object_id.lower(): None}
    for resource in engine.store.resources.values():
        if resource.type == IDENTITY_TYPE and resource.state != "Deleting":
            principal = str(resource.extra.get("principalId", "")).lower()
            if principal:
                known[principal] = resource
    return known


class ManagedIdentity(Behaviour):
    """User-assigned identities: read-only principal, client and tenant ids."""

    def applied(self, engine: ArmSim, resource: Resource, previous: dict[str, Any] | None) -> None:
        resource.extra.setdefault("principalId", _derived(resource, engine, "principal"))
        resource.extra.setdefault("clientId", _derived(resource, engine, "client"))

    def decorate(
        self, engine: ArmSim, resource: Resource, view: dict[str, Any], expand: str
    ) -> None:
        properties_of(view).update(identity_ids(engine, resource))


# ---------------------------------------------------------------- role assignments


def _assignments(engine: ArmSim) -> Iterable[Resource]:
    return (r for r in engine.store.resources.values() if r.type == ROLE_ASSIGNMENT_TYPE)


def scope_of(assignment_id: str) -> str:
    """The scope of a role assignment, from its id."""
    path = parse_resource_id(assignment_id)
    return path.scope if path is not None else ""


def covers(scope: str, target: str) -> bool:
    """Whether an assignment at `scope` applies to `target` (same id or an ancestor of it)."""
    return key(target) == key(scope) or key(target).startswith(key(scope) + "/")


def grants_data_action(engine: ArmSim, principal: str, target: str, action: str) -> bool:
    """Whether a principal holds a role whose data actions cover `action` on `target`."""
    for assignment in _assignments(engine):
        properties = assignment.body.get("properties") or {}
        if str(properties.get("principalId", "")).lower() != principal.lower():
            continue
        if assignment.state == "Deleting" or not covers(scope_of(assignment.id), target):
            continue
        role = role_of(str(properties.get("roleDefinitionId", "")))
        if role is not None and role.grants_data_action(action):
            return True
    return False


def _bad_request(code: str, message: str) -> ArmError:
    return ArmError(400, code, message)


class RoleAssignment(Behaviour):
    """Role assignments: validated as ARM does, listed as "all that apply to a scope"."""

    def check(
        self, engine: ArmSim, path: ResourcePath, body: dict[str, Any], existing: Resource | None
    ) -> None:
        if not _GUID.fullmatch(path.name):
            raise _bad_request(
                "InvalidRoleAssignmentId",
                f"The role assignment ID '{path.name}' is not valid. The role assignment ID "
                "must be a GUID.",
            )
        properties = body.get("properties") or {}
        role_id = str(properties.get("roleDefinitionId", ""))
        match = _ROLE_DEFINITION_ID.fullmatch(role_id)
        if match is None or not _GUID.fullmatch(match.group(2)):
            raise _bad_request(
                "InvalidRoleDefinitionId", f"The role definition ID '{role_id}' is not valid."
            )
        if role_of(role_id) is None:
            raise _bad_request(
                "RoleDefinitionDoesNotExist",
                f"The specified role definition with ID '{match.group(2)}' does not exist.",
            )
        principal = str(properties.get("principalId", ""))
        principal_type = properties.get("principalType")
        if principal_type is not None and principal_type not in _PRINCIPAL_TYPES:
            raise _bad_request(
                "InvalidPrincipalType", f"The principal type '{principal_type}' is not valid."
            )
        self._check_unchanged(engine, path, principal, role_id)
        if principal.lower() not in principals(engine):
            raise _bad_request(
                "PrincipalNotFound",
                f"Principal {principal} does not exist in the directory "
                f"{engine.config.tenant_id}. Check that you have the correct principal ID. If "
                "you are creating this principal and then immediately assigning a role, this "
                "error might be related to a replication delay. In this case, set the role "
                "assignment principalType property to a value, such as ServicePrincipal, User, "
                "or Group.  See https://aka.ms/docs-principaltype",
            )
        for other in _assignments(engine):
            if key(other.id) == key(path.id) or key(scope_of(other.id)) != key(path.scope):
                continue
            theirs = other.body.get("properties") or {}
            if str(theirs.get("principalId", "")).lower() == principal.lower() and _same_role(
                str(theirs.get("roleDefinitionId", "")), role_id
            ):
                raise ArmError(409, "RoleAssignmentExists", "The role assignment already exists.")

    @staticmethod
    def _check_unchanged(engine: ArmSim, path: ResourcePath, principal: str, role_id: str) -> None:
        suffix = "/roleassignments/" + path.name.lower()
        for other in _assignments(engine):
            if not key(other.id).endswith(suffix):
                continue
            theirs = other.body.get("properties") or {}
            if (
                key(other.id) != key(path.id)
                or str(theirs.get("principalId", "")).lower() != principal.lower()
                or not _same_role(str(theirs.get("roleDefinitionId", "")), role_id)
            ):
                raise _bad_request(
                    "RoleAssignmentUpdateNotPermitted",
                    "Tenant ID, application ID, principal ID, and scope are not allowed to be "
                    "updated.",
                )

    def applied(self, engine: ArmSim, resource: Resource, previous: dict[str, Any] | None) -> None:
        properties = resource.body.setdefault("properties", {})
        principal = str(properties.get("principalId", "")).lower()
        if not properties.get("principalType"):
            holder = principals(engine).get(principal)
            properties["principalType"] = "ServicePrincipal" if holder is not None else "User"
        resource.extra.setdefault("createdBy", engine.config.caller_object_id)

    def decorate(
        self, engine: ArmSim, resource: Resource, view: dict[str, Any], expand: str
    ) -> None:
        properties = properties_of(view)
        properties.pop("provisioningState", None)
        properties["scope"] = scope_of(resource.id)
        properties.setdefault("condition", None)
        properties.setdefault("conditionVersion", None)
        properties["createdOn"] = iso(resource.created)
        properties["updatedOn"] = iso(resource.changed)
        properties["createdBy"] = resource.extra.get("createdBy")
        properties["updatedBy"] = resource.extra.get("createdBy")

    def list_at(
        self, engine: ArmSim, scope: str, request: SimRequest
    ) -> list[dict[str, Any]] | None:
        expression = request.param("$filter") or ""
        at_scope = "atscope()" in expression.replace(" ", "").lower()
        wanted = _PRINCIPAL_FILTER.search(expression)
        found = []
        for assignment in _assignments(engine):
            if assignment.state == "Deleting":
                continue
            theirs = scope_of(assignment.id)
            if not covers(theirs, scope) and (at_scope or not covers(scope, theirs)):
                continue
            properties = assignment.body.get("properties") or {}
            principal = str(properties.get("principalId", "")).lower()
            if wanted and principal != wanted.group(1).lower():
                continue
            found.append(engine.view(assignment))
        return found


def _same_role(a: str, b: str) -> bool:
    return a.rstrip("/").rsplit("/", 1)[-1].lower() == b.rstrip("/").rsplit("/", 1)[-1].lower()

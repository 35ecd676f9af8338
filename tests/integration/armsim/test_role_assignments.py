"""Role assignments as extension resources at any scope, validated as ARM validates them.

Oracles:
- Azure/azure-rest-api-specs, specification/authorization/resource-manager/
  Microsoft.Authorization/stable/2022-04-01/authorization-RoleAssignmentsCalls.json (commit
  007a51db): `/{scope}/providers/Microsoft.Authorization/roleAssignments/{roleAssignmentName}`
  PUT answers 201/200, GET 200, DELETE 200 (the deleted assignment) or 204 (already gone);
  `/{scope}/providers/Microsoft.Authorization/roleAssignments` lists "all role assignments that
  apply to a scope", `$filter=atScope()` and `principalId eq '{id}'`; the example
  RoleAssignments_CreateForResource.json returns `properties.scope`.
- MicrosoftDocs/azure-docs, articles/role-based-access-control/troubleshooting.md (commit
  012ad308): `PrincipalNotFound` "Principal {principalId} does not exist in the directory
  {tenantId}. Check that you have the correct principal ID. If you are creating this principal
  and then immediately assigning a role, this error might be related to a replication delay. In
  this case, set the role assignment principalType property to a value, such as
  ServicePrincipal, User, or Group.  See https://aka.ms/docs-principaltype";
  `RoleAssignmentUpdateNotPermitted` "Tenant ID, application ID, principal ID, and scope are not
  allowed to be updated." (an existing name with another principal; names are unique "even in
  different Azure subscriptions").
- The same assignment PUT again (same name, principal, role and scope) succeeds, as a
  redeployment does: MicrosoftDocs/azure-docs,
  articles/azure-resource-manager/bicep/scenarios-rbac.md (ms.date 06/23/2023), "Name": "For your
  Bicep deployment to be repeatable, it's important for the name to be deterministic - in other
  words, to use the same name every time you deploy"; and "Resource deletion behavior": "If you
  try to reuse a role assignment's name for another role assignment, the deployment will fail."
  The repeat's status is 200, the spec's answer besides 201 for the PUT.
- `RoleAssignmentExists` is a 409 (clients treat "Azure answers 409 RoleAssignmentExists" as
  already granted, e.g. public Azure RBAC helpers); `RoleDefinitionDoesNotExist` "The specified
  role definition with ID '{id}' does not exist." (as ARM returned it to Enterprise-Scale users).
"""

from __future__ import annotations

from typing import Any

import pytest

from localdev.armsim.server import SimulatorServer
from tests.support import armsim_bodies as bodies
from tests.support.armsim_clients import (
    AUTHORIZATION_API,
    IDENTITY_API,
    KEY_VAULT_API,
    STORAGE_API,
    SUBSCRIPTION,
    Raw,
)

G = bodies.GROUP
SUB_ID = f"/subscriptions/{SUBSCRIPTION}"
GROUP_ID = f"{SUB_ID}/resourceGroups/{G}"
IDENTITY = f"{GROUP_ID}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/dev-id"
VAULT = f"{GROUP_ID}/providers/Microsoft.KeyVault/vaults/sim-kv-rbac"
SECRET = f"{VAULT}/secrets/dev-sql-admin-password"
STORAGE = f"{GROUP_ID}/providers/Microsoft.Storage/storageAccounts/simshare"
RA = "/providers/Microsoft.Authorization/roleAssignments"
NAMES = [
    "0b5fe924-9a61-425c-96af-cfe6e287ca2d",
    "1c6f0a35-8b72-436d-a7b0-d0f7f398db3e",
    "2d7a1b46-9c83-447e-b8c1-e108049aec4f",
    "3e8b2c57-ad94-458f-89d2-f219150bfd50",
]


def _platform(raw: Raw, sim: SimulatorServer) -> str:
    """A group, an identity, a vault with a secret and a storage account; the principal id."""
    raw.send("PUT", GROUP_ID, {"location": bodies.LOCATION})
    identity = raw.put(IDENTITY, bodies.identity(), api=IDENTITY_API)
    assert identity.status == 200, identity.body
    tenant = sim.config.tenant_id
    assert raw.put(VAULT, bodies.key_vault(tenant), api=KEY_VAULT_API).status == 200
    assert raw.put(SECRET, bodies.secret("S3cret-value!"), api=KEY_VAULT_API).status == 200
    assert raw.put(STORAGE, bodies.storage_account(), api=STORAGE_API).status == 200
    return str(identity.body["properties"]["principalId"])


def _assign(
    raw: Raw, scope: str, name: str, principal: str, role: str = bodies.KEY_VAULT_SECRETS_USER
) -> Any:
    body = bodies.role_assignment(SUBSCRIPTION, role, principal)
    return raw.send("PUT", f"{scope}{RA}/{name}", body, api=AUTHORIZATION_API)


@pytest.mark.parametrize("scope", [SUB_ID, GROUP_ID, VAULT, SECRET, STORAGE])
def test_assignment_at_any_scope_put_get_list_delete(raw: Raw, sim: SimulatorServer, scope: str):
    principal = _platform(raw, sim)
    assignment = f"{scope}{RA}/{NAMES[0]}"
    created = _assign(raw, scope, NAMES[0], principal)
    assert created.status == 201, created.body
    assert created.body["id"] == assignment
    assert created.body["name"] == NAMES[0]
    assert created.body["type"] == "Microsoft.Authorization/roleAssignments"
    properties = created.body["properties"]
    assert properties["scope"] == scope
    assert properties["principalId"] == principal
    assert properties["principalType"] == "ServicePrincipal"
    assert properties["roleDefinitionId"].endswith(
        f"/roleDefinitions/{bodies.KEY_VAULT_SECRETS_USER}"
    )
    assert "value" not in str(created.body)

    # A redeployment PUTs the same assignment again: it succeeds (scenarios-rbac.md, "Name").
    again = _assign(raw, scope, NAMES[0], principal)
    assert again.status == 200, "the same assignment again is idempotent"
    fetched = raw.send("GET", assignment, api=AUTHORIZATION_API)
    assert (fetched.status, fetched.body["properties"]["scope"]) == (200, scope)

    listed = raw.send("GET", f"{scope}{RA}", api=AUTHORIZATION_API)
    assert [item["id"] for item in listed.body["value"]] == [assignment]
    filtered = raw.send(
        "GET",
        f"{scope}{RA}?$filter=principalId eq '{principal}'&api-version={AUTHORIZATION_API}",
    )
    assert [item["id"] for item in filtered.body["value"]] == [assignment]
    nobody = raw.send(
        "GET",
        f"{scope}{RA}?$filter=principalId eq '{NAMES[3]}'&api-version={AUTHORIZATION_API}",
    )
    assert nobody.body["value"] == []

    deleted = raw.send("DELETE", assignment, api=AUTHORIZATION_API)
    assert deleted.status == 200
    assert deleted.body["id"] == assignment
    assert raw.send("GET", assignment, api=AUTHORIZATION_API).status == 404
    assert raw.send("DELETE", assignment, api=AUTHORIZATION_API).status == 204


def test_lists_include_what_applies_from_above_and_at_scope_filters_below(
    raw: Raw, sim: SimulatorServer
):
    principal = _platform(raw, sim)
    on_sub = _assign(raw, SUB_ID, NAMES[0], principal).body["id"]
    on_group = _assign(raw, GROUP_ID, NAMES[1], principal).body["id"]
    on_secret = _assign(raw, SECRET, NAMES[2], principal).body["id"]
    at_secret = raw.send("GET", f"{SECRET}{RA}", api=AUTHORIZATION_API).body["value"]
    assert sorted(item["id"] for item in at_secret) == sorted([on_sub, on_group, on_secret])
    at_group = raw.send(
        "GET", f"{GROUP_ID}{RA}?$filter=atScope()&api-version={AUTHORIZATION_API}"
    ).body["value"]
    assert sorted(item["id"] for item in at_group) == sorted([on_sub, on_group])
    everything_in_group = raw.send("GET", f"{GROUP_ID}{RA}", api=AUTHORIZATION_API).body["value"]
    assert sorted(item["id"] for item in everything_in_group) == sorted(
        [on_sub, on_group, on_secret]
    )


def test_assignments_are_not_resources_of_the_group(raw: Raw, sim: SimulatorServer):
    principal = _platform(raw, sim)
    _assign(raw, GROUP_ID, NAMES[0], principal)
    _assign(raw, VAULT, NAMES[1], principal)
    listed = raw.send("GET", f"{GROUP_ID}/resources").body["value"]
    assert not [item for item in listed if "roleAssignments" in item["type"]]


@pytest.mark.parametrize(
    ("role_definition_id", "code"),
    [
        ("4633458b-17de-408a-b874-0445c86b69e6", "InvalidRoleDefinitionId"),
        ("/subscriptions/x/roleDefinitions/4633458b", "InvalidRoleDefinitionId"),
        (
            f"/subscriptions/{SUBSCRIPTION}/providers/Microsoft.Authorization/roleDefinitions/"
            "11111111-2222-3333-4444-555555555555",
            "RoleDefinitionDoesNotExist",
        ),
    ],
)
def test_role_definition_id_must_name_a_role(
    raw: Raw, sim: SimulatorServer, role_definition_id: str, code: str
):
    principal = _platform(raw, sim)
    body = {"properties": {"roleDefinitionId": role_definition_id, "principalId": principal}}
    answer = raw.send("PUT", f"{GROUP_ID}{RA}/{NAMES[0]}", body, api=AUTHORIZATION_API)
    assert (answer.status, answer.code) == (400, code)
    if code == "RoleDefinitionDoesNotExist":
        assert answer.message == (
            "The specified role definition with ID '11111111-2222-3333-4444-555555555555' does "
            "not exist."
        )


def test_the_name_must_be_a_guid(raw: Raw, sim: SimulatorServer):
    principal = _platform(raw, sim)
    answer = _assign(raw, GROUP_ID, "not-a-guid", principal)
    assert (answer.status, answer.code) == (400, "InvalidRoleAssignmentId")


def test_an_unknown_principal_is_principal_not_found(raw: Raw, sim: SimulatorServer):
    _platform(raw, sim)
    stranger = "9f8e7d6c-5b4a-4392-8171-605f4e3d2c1b"
    answer = _assign(raw, GROUP_ID, NAMES[0], stranger)
    assert (answer.status, answer.code) == (400, "PrincipalNotFound")
    assert answer.message == (
        f"Principal {stranger} does not exist in the directory "
        f"{sim.config.tenant_id}. Check that you have the correct principal ID. If you are "
        "creating this principal and then immediately assigning a role, this error might be "
        "related to a replication delay. In this case, set the role assignment principalType "
        "property to a value, such as ServicePrincipal, User, or Group.  See "
        "https://aka.ms/docs-principaltype"
    )


def test_a_deleted_identitys_principal_is_gone(raw: Raw, sim: SimulatorServer):
    principal = _platform(raw, sim)
    raw.send("DELETE", IDENTITY, api=IDENTITY_API)
    answer = _assign(raw, GROUP_ID, NAMES[0], principal)
    assert (answer.status, answer.code) == (400, "PrincipalNotFound")


def test_an_assignment_cannot_change_principal_role_or_scope(raw: Raw, sim: SimulatorServer):
    principal = _platform(raw, sim)
    assert _assign(raw, GROUP_ID, NAMES[0], principal).status == 201
    other = raw.put(f"{IDENTITY}-2", bodies.identity(), api=IDENTITY_API).body
    message = "Tenant ID, application ID, principal ID, and scope are not allowed to be updated."
    for answer in (
        _assign(raw, GROUP_ID, NAMES[0], other["properties"]["principalId"]),
        _assign(
            raw, GROUP_ID, NAMES[0], principal, bodies.STORAGE_FILE_DATA_PRIVILEGED_CONTRIBUTOR
        ),
        _assign(raw, VAULT, NAMES[0], principal),
    ):
        assert (answer.status, answer.code, answer.message) == (
            400,
            "RoleAssignmentUpdateNotPermitted",
            message,
        )


def test_the_same_grant_under_another_name_is_role_assignment_exists(
    raw: Raw, sim: SimulatorServer
):
    principal = _platform(raw, sim)
    assert _assign(raw, SECRET, NAMES[0], principal).status == 201
    answer = _assign(raw, SECRET, NAMES[1], principal)
    assert (answer.status, answer.code) == (409, "RoleAssignmentExists")
    assert answer.message == "The role assignment already exists."


def test_deleting_a_scope_deletes_its_assignments(raw: Raw, sim: SimulatorServer):
    principal = _platform(raw, sim)
    on_storage = _assign(raw, STORAGE, NAMES[0], principal).body["id"]
    on_group = _assign(raw, GROUP_ID, NAMES[1], principal).body["id"]
    on_sub = _assign(raw, SUB_ID, NAMES[2], principal).body["id"]
    raw.delete(STORAGE, api=STORAGE_API)
    assert raw.send("GET", on_storage, api=AUTHORIZATION_API).status == 404
    assert raw.send("GET", on_group, api=AUTHORIZATION_API).status == 200
    raw.delete(GROUP_ID, api="2025-04-01")
    sim.fast_forward(120)
    assert raw.send("GET", on_group, api=AUTHORIZATION_API).status == 404
    assert raw.send("GET", on_sub, api=AUTHORIZATION_API).status == 200


def test_an_assignment_on_a_missing_resource_is_refused(raw: Raw, sim: SimulatorServer):
    principal = _platform(raw, sim)
    missing = f"{GROUP_ID}/providers/Microsoft.KeyVault/vaults/sim-kv-rbac/secrets/nope"
    answer = _assign(raw, missing, NAMES[0], principal)
    assert answer.status == 404

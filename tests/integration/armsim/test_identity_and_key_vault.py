"""Managed identities, the subscription, Key Vault with soft delete, and management-plane secrets.

Oracles:
- Azure/azure-rest-api-specs, specification/msi/resource-manager/Microsoft.ManagedIdentity/
  stable/2023-01-31/ManagedIdentity.json: `tenantId`, `principalId`, `clientId` are read-only
  properties of a user-assigned identity; Create Or Update answers 200/201.
- Azure/azure-rest-api-specs, specification/resources/resource-manager/Microsoft.Resources/
  stable/2022-12-01/subscriptions.json: `GET /subscriptions/{subscriptionId}` returns
  `id`, `subscriptionId`, `displayName`, `tenantId`, `state` (Enabled, ...).
- Azure/azure-rest-api-specs, specification/keyvault/resource-manager/Microsoft.KeyVault/
  KeyVault: Vault.tsp (vault names `^[a-zA-Z0-9-]{3,24}$`; create is an LRO answering 200/201
  with `Location`; delete is synchronous), DeletedVault.tsp
  (`/subscriptions/{sub}/providers/Microsoft.KeyVault/locations/{location}/deletedVaults/{name}`
  GET, POST `.../purge` answering 200 or 202 with `Location`), Secret.tsp ("NOTE: This API is
  intended for internal use in ARM deployments"; create answers 200/201 synchronously),
  examples/2025-05-01/createVault.json (`properties.tenantId` and `properties.sku` in every
  request, `vaultUri` in the answer), examples/2026-02-01/listDeletedVaults.json (`deletionDate`,
  `location`, `purgeProtectionEnabled`, `scheduledPurgeDate`, `tags`, `vaultId`),
  examples/2026-04-01-preview/createSecret.json (`attributes`, `secretUri`,
  `secretUriWithVersion`; no `value` in the answer).
- microsoft/finops-toolkit, docs-mslearn/toolkit/help/errors.md ("ConflictError"): Key Vault
  answers "A vault with the same name already exists in deleted state. You need to either
  recover or purge existing key vault. Follow this link https://go.microsoft.com/fwlink/?linkid=
  2149745 for more information on soft delete." (409, code ConflictError, as ARM returns it).
- Azure/azure-powershell issue #15115: `VaultAlreadyExists` "The vault name '{name}' is already
  in use. Vault names are globaly unique so it is possible that the name is already taken. ..."
- microsoft/AzureTRE issue #1446: purging a vault with purge protection answers
  "(MethodNotAllowed) Operation 'DeletedVaultPurge' is not allowed."
- hashicorp/terraform-provider-azurerm issue #12972: recovering a vault that is not soft
  deleted fails with Code="SoftDeletedVaultDoesNotExist".
"""

from __future__ import annotations

import hashlib
import re
import time
from pathlib import Path

from arm.connection import ArmConnection
from localdev.armsim.server import SimulatorServer
from localdev.armsim.testing import running_simulator
from tests.support import armsim_bodies as bodies
from tests.support.armsim_clients import (
    COMPUTE_API,
    IDENTITY_API,
    KEY_VAULT_API,
    SUBSCRIPTION,
    SUBSCRIPTIONS_API,
    Clients,
    Raw,
)

G = bodies.GROUP
GROUP_ID = f"/subscriptions/{SUBSCRIPTION}/resourceGroups/{G}"
IDENTITY = f"{GROUP_ID}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/dev-id"
VAULT_NAME = "sim-kv-a1b2c3"
VAULT = f"{GROUP_ID}/providers/Microsoft.KeyVault/vaults/{VAULT_NAME}"
DELETED = (
    f"/subscriptions/{SUBSCRIPTION}/providers/Microsoft.KeyVault/locations/{bodies.LOCATION}/"
    f"deletedVaults/{VAULT_NAME}"
)
GUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
SECRET_VALUE = "Very-S3cret-Password!42"


def _group(raw: Raw) -> None:
    raw.send("PUT", GROUP_ID, {"location": bodies.LOCATION})


# ---------------------------------------------------------------- identities and subscription


def test_identity_has_read_only_deterministic_ids(raw: Raw, sim: SimulatorServer):
    _group(raw)
    created = raw.send("PUT", IDENTITY, bodies.identity(), api=IDENTITY_API)
    assert created.status == 201
    properties = created.body["properties"]
    assert all(GUID.fullmatch(properties[k]) for k in ("principalId", "clientId", "tenantId"))
    assert properties["principalId"] != properties["clientId"]
    assert properties["tenantId"] == sim.config.tenant_id
    forged_id = "11111111-1111-4111-8111-111111111111"
    forged = {"location": bodies.LOCATION, "properties": {"principalId": forged_id}}
    again = raw.send("PUT", IDENTITY, forged, api=IDENTITY_API)
    assert again.status == 200
    assert again.body["properties"]["principalId"] == properties["principalId"]
    raw.send("DELETE", IDENTITY, api=IDENTITY_API)
    recreated = raw.send("PUT", IDENTITY, bodies.identity(), api=IDENTITY_API).body["properties"]
    assert recreated["principalId"] != properties["principalId"], "a new identity, a new principal"

    sim.reset()
    _group(raw)
    replay = raw.send("PUT", IDENTITY, bodies.identity(), api=IDENTITY_API).body["properties"]
    assert replay["principalId"] == properties["principalId"], "ids derive from the resource id"


def test_subscription_get(raw: Raw, sim: SimulatorServer):
    answer = raw.send("GET", f"/subscriptions/{SUBSCRIPTION}", api=SUBSCRIPTIONS_API)
    assert answer.status == 200
    assert answer.body["id"] == f"/subscriptions/{SUBSCRIPTION}"
    assert answer.body["subscriptionId"] == SUBSCRIPTION
    assert answer.body["tenantId"] == sim.config.tenant_id
    assert answer.body["state"] == "Enabled"
    assert answer.body["displayName"]


def test_a_vm_shows_its_identitys_principal(clients: Clients, raw: Raw):
    clients.resource.resource_groups.create_or_update(G, {"location": bodies.LOCATION})
    identity = raw.put(IDENTITY, bodies.identity(), api=IDENTITY_API).body["properties"]
    clients.network.virtual_networks.begin_create_or_update(
        G, "vnet", bodies.vnet({"dev": "10.0.0.0/24"})
    ).result()
    subnet = bodies.rid(SUBSCRIPTION, G, "Microsoft.Network/virtualNetworks/vnet/subnets/dev")
    nic = clients.network.network_interfaces.begin_create_or_update(
        G, "nic1", bodies.nic(subnet)
    ).result()
    vm = bodies.vm(nic.id)
    vm["identity"] = {"type": "UserAssigned", "userAssignedIdentities": {IDENTITY: {}}}
    vm_id = f"{GROUP_ID}/providers/Microsoft.Compute/virtualMachines/vm1"
    shown = raw.put(vm_id, vm, api=COMPUTE_API).body["identity"]["userAssignedIdentities"]
    assert shown[IDENTITY] == {
        "principalId": identity["principalId"],
        "clientId": identity["clientId"],
    }


# ---------------------------------------------------------------- Key Vault


def test_vault_needs_tenant_and_sku_and_gets_its_uri(raw: Raw, sim: SimulatorServer):
    _group(raw)
    for missing in ("tenantId", "sku"):
        body = bodies.key_vault(sim.config.tenant_id)
        del body["properties"][missing]
        answer = raw.send("PUT", VAULT, body, api=KEY_VAULT_API)
        assert answer.status == 400, missing
        assert missing in answer.message
    bad_name = f"{GROUP_ID}/providers/Microsoft.KeyVault/vaults/kv_under_score"
    assert (
        raw.send("PUT", bad_name, bodies.key_vault(sim.config.tenant_id), api=KEY_VAULT_API).status
        == 400
    )
    created = raw.send("PUT", VAULT, bodies.key_vault(sim.config.tenant_id), api=KEY_VAULT_API)
    assert created.status == 201
    assert "Location" in created.headers
    vault = raw.put(VAULT, bodies.key_vault(sim.config.tenant_id), api=KEY_VAULT_API).body
    assert vault["properties"]["vaultUri"] == f"https://{VAULT_NAME}.vault.azure.net/"
    assert vault["properties"]["provisioningState"] == "Succeeded"
    assert vault["properties"]["enableRbacAuthorization"] is True


def test_vault_names_are_global(raw: Raw, sim: SimulatorServer, connection: ArmConnection):
    _group(raw)
    assert raw.put(VAULT, bodies.key_vault(sim.config.tenant_id), api=KEY_VAULT_API).status == 200
    other_sub = "00000000-0000-0000-0000-000000000002"
    other = Raw(connection, other_sub)
    other.send(
        "PUT", f"/subscriptions/{other_sub}/resourceGroups/{G}", {"location": bodies.LOCATION}
    )
    answer = other.send(
        "PUT",
        f"/subscriptions/{other_sub}/resourceGroups/{G}/providers/Microsoft.KeyVault/vaults/"
        f"{VAULT_NAME.upper()}",
        bodies.key_vault(sim.config.tenant_id),
        api=KEY_VAULT_API,
    )
    assert (answer.status, answer.code) == (409, "VaultAlreadyExists")
    assert answer.message.startswith(
        f"The vault name '{VAULT_NAME.upper()}' is already in use. Vault names are globaly unique"
    )


def _vault_with_secret(raw: Raw, sim: SimulatorServer, **options: bool) -> None:
    _group(raw)
    assert (
        raw.put(VAULT, bodies.key_vault(sim.config.tenant_id, **options), api=KEY_VAULT_API).status
        == 200
    )
    secret = raw.send(
        "PUT",
        f"{VAULT}/secrets/dev-sql-admin-password",
        bodies.secret(SECRET_VALUE),
        api=KEY_VAULT_API,
    )
    assert secret.status == 201


def test_secrets_never_show_or_keep_their_value(raw: Raw, sim: SimulatorServer, tmp_path: Path):
    _vault_with_secret(raw, sim)
    secret_id = f"{VAULT}/secrets/dev-sql-admin-password"
    answer = raw.send("GET", secret_id, api=KEY_VAULT_API)
    assert answer.status == 200
    properties = answer.body["properties"]
    assert "value" not in properties
    assert SECRET_VALUE not in str(answer.body)
    assert properties["secretUri"] == (
        f"https://{VAULT_NAME}.vault.azure.net/secrets/dev-sql-admin-password"
    )
    assert properties["secretUriWithVersion"].startswith(properties["secretUri"] + "/")
    assert properties["attributes"]["enabled"] is True
    assert answer.body["location"] == bodies.LOCATION
    listed = raw.send("GET", f"{VAULT}/secrets", api=KEY_VAULT_API).body["value"]
    assert [item["name"] for item in listed] == ["dev-sql-admin-password"]
    pfx = raw.send(
        "PUT",
        f"{VAULT}/secrets/dev-gateway-certificate",
        bodies.secret("TUlJQ2VqQ0NB", "application/x-pkcs12"),
        api=KEY_VAULT_API,
    ).body
    assert pfx["properties"]["contentType"] == "application/x-pkcs12"
    expected = hashlib.sha256(SECRET_VALUE.encode()).hexdigest()
    assert sim.write_only_digest(secret_id, "properties.value") == expected
    assert SECRET_VALUE not in str(sim.resources())
    assert SECRET_VALUE not in str(sim.requests())
    state = tmp_path / "state.json"
    sim.engine.store.save(state)
    assert SECRET_VALUE not in state.read_text(encoding="utf-8")


def test_secret_values_never_reach_the_state_file(tmp_path: Path):
    state = tmp_path / "armsim.json"
    with running_simulator(state_file=state) as sim:
        connection = ArmConnection(sim.url, polling_interval=0)
        raw = Raw(connection)
        _vault_with_secret(raw, sim)
        deadline = time.monotonic() + 5
        while not (state.exists() and "dev-sql-admin-password" in state.read_text()):
            assert time.monotonic() < deadline
            time.sleep(0.05)
        connection.close()
    assert SECRET_VALUE not in state.read_text(encoding="utf-8")


def test_delete_soft_deletes_and_a_new_vault_of_that_name_conflicts(raw: Raw, sim: SimulatorServer):
    _vault_with_secret(raw, sim)
    assert raw.send("DELETE", VAULT, api=KEY_VAULT_API).status == 200
    assert raw.send("GET", VAULT, api=KEY_VAULT_API).status == 404
    deleted = raw.send("GET", DELETED, api=KEY_VAULT_API)
    assert deleted.status == 200
    assert deleted.body["type"] == "Microsoft.KeyVault/deletedVaults"
    assert deleted.body["id"] == DELETED
    properties = deleted.body["properties"]
    assert properties["vaultId"] == VAULT
    assert properties["location"] == bodies.LOCATION
    assert properties["purgeProtectionEnabled"] is True
    assert properties["scheduledPurgeDate"] > properties["deletionDate"]
    listed = raw.send(
        "GET",
        f"/subscriptions/{SUBSCRIPTION}/providers/Microsoft.KeyVault/deletedVaults",
        api=KEY_VAULT_API,
    )
    assert [item["id"] for item in listed.body["value"]] == [DELETED]

    answer = raw.send("PUT", VAULT, bodies.key_vault(sim.config.tenant_id), api=KEY_VAULT_API)
    assert (answer.status, answer.code) == (409, "ConflictError")
    assert answer.message == (
        "A vault with the same name already exists in deleted state. You need to either recover "
        "or purge existing key vault. Follow this link https://go.microsoft.com/fwlink/?linkid="
        "2149745 for more information on soft delete."
    )


def test_recover_brings_the_vault_back_with_its_secrets(raw: Raw, sim: SimulatorServer):
    _vault_with_secret(raw, sim)
    secret_id = f"{VAULT}/secrets/dev-sql-admin-password"
    digest = sim.write_only_digest(secret_id, "properties.value")
    raw.send("DELETE", VAULT, api=KEY_VAULT_API)
    body = bodies.key_vault(sim.config.tenant_id)
    body["properties"]["createMode"] = "recover"
    recovered = raw.put(VAULT, body, api=KEY_VAULT_API)
    assert recovered.status == 200, recovered.body
    assert recovered.body["properties"]["vaultUri"] == f"https://{VAULT_NAME}.vault.azure.net/"
    assert raw.send("GET", secret_id, api=KEY_VAULT_API).status == 200
    assert sim.write_only_digest(secret_id, "properties.value") == digest
    assert raw.send("GET", DELETED, api=KEY_VAULT_API).status == 404

    again = raw.send("PUT", VAULT.replace(VAULT_NAME, "sim-kv-never"), body, api=KEY_VAULT_API)
    assert (again.status, again.code) == (400, "SoftDeletedVaultDoesNotExist")


def test_purge_is_refused_under_purge_protection(raw: Raw, sim: SimulatorServer):
    _vault_with_secret(raw, sim)
    raw.send("DELETE", VAULT, api=KEY_VAULT_API)
    answer = raw.send("POST", f"{DELETED}/purge", api=KEY_VAULT_API)
    assert (answer.status, answer.code) == (405, "MethodNotAllowed")
    assert answer.message == "Operation 'DeletedVaultPurge' is not allowed."
    assert raw.send("GET", DELETED, api=KEY_VAULT_API).status == 200


def test_purge_frees_the_name_without_purge_protection(raw: Raw, sim: SimulatorServer):
    _vault_with_secret(raw, sim, purge_protection=False)
    raw.send("DELETE", VAULT, api=KEY_VAULT_API)
    answer = raw.send("POST", f"{DELETED}/purge", api=KEY_VAULT_API)
    assert answer.status == 202
    assert raw.wait(answer).status in {200, 204}
    assert raw.send("GET", DELETED, api=KEY_VAULT_API).status == 404
    fresh = raw.put(VAULT, bodies.key_vault(sim.config.tenant_id), api=KEY_VAULT_API)
    assert fresh.status == 200
    assert (
        raw.send("GET", f"{VAULT}/secrets/dev-sql-admin-password", api=KEY_VAULT_API).status == 404
    )


def test_deleted_vaults_are_purged_after_their_retention(raw: Raw, sim: SimulatorServer):
    _vault_with_secret(raw, sim)
    raw.send("DELETE", VAULT, api=KEY_VAULT_API)
    sim.fast_forward(7 * 86400 + 1)
    assert raw.send("GET", DELETED, api=KEY_VAULT_API).status == 404
    assert raw.put(VAULT, bodies.key_vault(sim.config.tenant_id), api=KEY_VAULT_API).status == 200


def test_deleting_the_group_soft_deletes_its_vault(raw: Raw, sim: SimulatorServer):
    _vault_with_secret(raw, sim)
    raw.delete(GROUP_ID, api="2025-04-01")
    sim.fast_forward(120)
    assert raw.send("GET", DELETED, api=KEY_VAULT_API).status == 200

"""Key Vault's management plane: vaults with soft delete, and write-only secrets.

Facts (Azure/azure-rest-api-specs, specification/keyvault/resource-manager/Microsoft.KeyVault/
KeyVault: Vault.tsp, DeletedVault.tsp, Secret.tsp and their examples for 2023-07-01 and later):

- a vault needs `properties.tenantId` and `properties.sku`; its `vaultUri` is
  `https://{name}.vault.azure.net/`; vault names are unique across Azure;
- DELETE moves a vault (soft delete is always on) to
  `/subscriptions/{sub}/providers/Microsoft.KeyVault/locations/{location}/deletedVaults/{name}`
  (`vaultId`, `location`, `deletionDate`, `scheduledPurgeDate`, `tags`,
  `purgeProtectionEnabled`), listed by `/subscriptions/{sub}/providers/Microsoft.KeyVault/
  deletedVaults`, purged by POST `.../purge` (202 + `Location`) or when its retention
  (`softDeleteRetentionInDays`, default 90) has passed;
- a PUT of a soft-deleted name fails with 409 `ConflictError` "A vault with the same name
  already exists in deleted state. You need to either recover or purge existing key vault.
  Follow this link https://go.microsoft.com/fwlink/?linkid=2149745 for more information on soft
  delete." (microsoft/finops-toolkit, docs-mslearn/toolkit/help/errors.md) unless
  `properties.createMode` is `recover`, which brings the vault back with its secrets; `recover`
  without a deleted vault fails with `SoftDeletedVaultDoesNotExist` (code as ARM returned it in
  hashicorp/terraform-provider-azurerm issue #12972; the wording here is ours);
- a name in use elsewhere (another subscription, live or deleted) is 409 `VaultAlreadyExists`
  (Azure/azure-powershell issue #15115 quotes the message);
- purging under purge protection: "(MethodNotAllowed) Operation 'DeletedVaultPurge' is not
  allowed." (microsoft/AzureTRE issue #1446; the HTTP status 405 goes with the code);
- secrets: PUT `{"properties": {"value", "contentType"?}}` answers 201/200 synchronously and
  never returns `value` (Secret.tsp: the API is "intended for internal use in ARM
  deployments"); the answer carries `secretUri`, `secretUriWithVersion` and `attributes`.
  The simulator never stores the value either, only a SHA-256 of it (the catalog's
  `write_only`).
"""

from __future__ import annotations

import copy
import uuid
from typing import Any

from localdev.armsim import rbac
from localdev.armsim.errors import ArmError, missing_property
from localdev.armsim.hooks import ArmSim, Behaviour, properties_of
from localdev.armsim.messages import SimRequest, SimResponse
from localdev.armsim.paths import ResourcePath, key
from localdev.armsim.store import Resource, iso

VAULT_TYPE = "Microsoft.KeyVault/vaults"
SECRET_TYPE = "Microsoft.KeyVault/vaults/secrets"
DELETED_VAULT_TYPE = "Microsoft.KeyVault/deletedVaults"
GET_SECRET = "Microsoft.KeyVault/vaults/secrets/getSecret/action"
DEFAULT_RETENTION_DAYS = 90
_SKUS = frozenset({"standard", "premium"})


def vault_uri(name: str) -> str:
    """The data-plane URI of a vault."""
    return f"https://{name.lower()}.vault.azure.net/"


def deleted_vault_id(subscription: str, location: str, name: str) -> str:
    """Where a soft-deleted vault lives."""
    return (
        f"/subscriptions/{subscription}/providers/Microsoft.KeyVault/locations/"
        f"{location.replace(' ', '').lower()}/deletedVaults/{name}"
    )


def live_vault(engine: ArmSim, name: str) -> Resource | None:
    """The vault of that name anywhere in the simulator (names are global)."""
    for resource in engine.store.resources.values():
        if resource.type == VAULT_TYPE and resource.name.lower() == name.lower():
            return resource
    return None


def deleted_vaults(engine: ArmSim, name: str) -> list[Resource]:
    """Soft-deleted vaults of one name (the clock removes those past their retention)."""
    return [
        resource
        for resource in engine.store.resources.values()
        if resource.type == DELETED_VAULT_TYPE and resource.name.lower() == name.lower()
    ]


def _conflict(name: str) -> ArmError:
    return ArmError(
        409,
        "VaultAlreadyExists",
        f"The vault name '{name}' is already in use. Vault names are globaly unique so it is "
        "possible that the name is already taken. If you are sure that the vault name was not "
        "taken then it is possible that a vault with the same name was recently deleted but not "
        "purged after being placed in a recoverable state. If the vault is in a recoverable "
        "state then the vault will need to be purged before reusing the name. For more "
        "information on soft delete and purging a vault follow this link "
        "https://go.microsoft.com/fwlink/?linkid=2147740.",
    )


def _recovering(body: dict[str, Any]) -> bool:
    return str((body.get("properties") or {}).get("createMode", "")).lower() == "recover"


class KeyVault(Behaviour):
    """Vaults: required properties, global names, soft delete, recovery and purge."""

    def check(
        self, engine: ArmSim, path: ResourcePath, body: dict[str, Any], existing: Resource | None
    ) -> None:
        properties = body.get("properties") or {}
        for required in ("tenantId", "sku"):
            if not properties.get(required):
                raise missing_property(f"properties.{required}")
        sku = properties["sku"]
        if not isinstance(sku, dict) or str(sku.get("name", "")).lower() not in _SKUS:
            raise ArmError(
                400,
                "InvalidParameter",
                f"The value of parameter 'properties.sku.name' is not valid: {sku!r}.",
                target="properties.sku.name",
            )
        if existing is not None:
            return
        same = live_vault(engine, path.name)
        if same is not None:
            raise _conflict(path.name)
        deleted = deleted_vaults(engine, path.name)
        ours = [d for d in deleted if key(d.extra.get("vault", {}).get("id", "")) == key(path.id)]
        if deleted and not ours:
            raise _conflict(path.name)
        if _recovering(body):
            if not ours:
                raise ArmError(
                    400,
                    "SoftDeletedVaultDoesNotExist",
                    f"A soft deleted vault with the name '{path.name}' does not exist in "
                    f"resource group '{path.resource_group}'.",
                )
        elif ours:
            raise ArmError(
                409,
                "ConflictError",
                "A vault with the same name already exists in deleted state. You need to either "
                "recover or purge existing key vault. Follow this link "
                "https://go.microsoft.com/fwlink/?linkid=2149745 for more information on soft "
                "delete.",
            )

    def prepare(
        self, engine: ArmSim, path: ResourcePath, body: dict[str, Any], existing: Resource | None
    ) -> dict[str, Any] | None:
        if existing is not None or not _recovering(body):
            return None
        (record,) = [
            d
            for d in deleted_vaults(engine, path.name)
            if key(d.extra["vault"]["id"]) == key(path.id)
        ]
        vault = record.extra["vault"]
        recovered: dict[str, Any] = copy.deepcopy(vault["body"])
        recovered.setdefault("properties", {}).pop("createMode", None)
        for saved in record.extra.get("secrets", []):
            secret = Resource(**copy.deepcopy(saved))
            engine.store.put(secret)
        engine.store.remove(record.id)
        return recovered

    def applied(self, engine: ArmSim, resource: Resource, previous: dict[str, Any] | None) -> None:
        resource.body.setdefault("properties", {}).pop("createMode", None)

    def removed(self, engine: ArmSim, resource: Resource) -> None:
        properties = resource.body.get("properties") or {}
        location = engine.store.location_of(resource)
        days = int(properties.get("softDeleteRetentionInDays") or DEFAULT_RETENTION_DAYS)
        secrets = [
            {
                "id": s.id,
                "type": s.type,
                "body": copy.deepcopy(s.body),
                "state": "Succeeded",
                "created": s.created,
                "changed": s.changed,
                "etag": s.etag,
                "extra": copy.deepcopy(s.extra),
            }
            for s in engine.store.descendants(resource.id)
            if s.type == SECRET_TYPE
        ]
        subscription = resource.id.split("/")[2]
        record = Resource(
            id=deleted_vault_id(subscription, location, resource.name),
            type=DELETED_VAULT_TYPE,
            body={
                "properties": {
                    "vaultId": resource.id,
                    "location": location,
                    "deletionDate": iso(engine.now),
                    "scheduledPurgeDate": iso(engine.now + days * 86400),
                    "tags": copy.deepcopy(resource.body.get("tags") or {}),
                    "purgeProtectionEnabled": bool(properties.get("enablePurgeProtection")),
                }
            },
            state="Succeeded",
            created=engine.now,
            changed=engine.now,
            etag=resource.etag,
            extra={
                "expiresAt": engine.now + days * 86400,
                "vault": {"id": resource.id, "body": copy.deepcopy(resource.body)},
                "secrets": secrets,
            },
        )
        engine.store.put(record)

    def decorate(
        self, engine: ArmSim, resource: Resource, view: dict[str, Any], expand: str
    ) -> None:
        properties = properties_of(view)
        properties["vaultUri"] = vault_uri(resource.name)
        properties.setdefault("enableSoftDelete", True)
        properties.setdefault("softDeleteRetentionInDays", DEFAULT_RETENTION_DAYS)


class DeletedVault(Behaviour):
    """Soft-deleted vaults: expire after their retention; purge unless purge-protected."""

    def action(
        self, engine: ArmSim, resource: Resource, name: str, request: SimRequest
    ) -> SimResponse | None:
        if name.lower() != "purge":
            return None
        if resource.body["properties"].get("purgeProtectionEnabled"):
            raise ArmError(405, "MethodNotAllowed", "Operation 'DeletedVaultPurge' is not allowed.")
        return engine.start_removal(resource, request)

    def decorate(
        self, engine: ArmSim, resource: Resource, view: dict[str, Any], expand: str
    ) -> None:
        properties_of(view).pop("provisioningState", None)


class KeyVaultSecret(Behaviour):
    """Secrets: a value on create, never shown; URIs and attributes as the provider returns."""

    def check(
        self, engine: ArmSim, path: ResourcePath, body: dict[str, Any], existing: Resource | None
    ) -> None:
        value = (body.get("properties") or {}).get("value")
        if existing is None and not isinstance(value, str):
            raise missing_property("properties.value")

    def applied(self, engine: ArmSim, resource: Resource, previous: dict[str, Any] | None) -> None:
        resource.body.pop("tags", None)
        resource.body.pop("location", None)
        if previous is None or resource.extra.get("writeOnlyChanged"):
            versions = int(resource.extra.get("versions", 0)) + 1
            resource.extra["versions"] = versions
        resource.extra.pop("writeOnlyChanged", None)

    def decorate(
        self, engine: ArmSim, resource: Resource, view: dict[str, Any], expand: str
    ) -> None:
        vault_name = resource.id.split("/")[-3]
        vault = engine.store.get(resource.id.rsplit("/", 2)[0])
        if vault is not None:
            view["location"] = vault.body.get("location")
            view["tags"] = vault.body.get("tags") or {}
        properties = properties_of(view)
        properties.pop("provisioningState", None)
        uri = f"{vault_uri(vault_name)}secrets/{resource.name}"
        version = uuid.uuid5(
            uuid.NAMESPACE_URL, f"{key(resource.id)}#{resource.extra.get('versions', 1)}"
        ).hex
        properties["secretUri"] = uri
        properties["secretUriWithVersion"] = f"{uri}/{version}"
        attributes = properties.setdefault("attributes", {})
        attributes.setdefault("enabled", True)
        attributes["created"] = int(resource.created)
        attributes["updated"] = int(resource.changed)


def secret_readable(engine: ArmSim, principal: str, secret: Resource) -> bool:
    """Whether a principal may read a secret's value (RBAC role or access policy with Get)."""
    vault = engine.store.get(secret.id.rsplit("/", 2)[0])
    return vault is not None and may_get_secret(engine, principal, vault, secret.id)


def may_get_secret(engine: ArmSim, principal: str, vault: Resource, secret_id: str) -> bool:
    """Whether a principal may get the secret `secret_id` of `vault`, whether it exists or not:
    a role covering it whose data actions include getSecret (RBAC vaults), else an access
    policy with Get."""
    properties = vault.body.get("properties") or {}
    if properties.get("enableRbacAuthorization"):
        return rbac.grants_data_action(engine, principal, secret_id, GET_SECRET)
    for policy in properties.get("accessPolicies") or []:
        if str(policy.get("objectId", "")).lower() != principal.lower():
            continue
        allowed = {str(p).lower() for p in (policy.get("permissions") or {}).get("secrets", [])}
        if {"get", "all"} & allowed:
            return True
    return False

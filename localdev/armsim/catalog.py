"""The per-type table: how ARM answers writes for each resource type, and its name rules.

Everything generic (PUT/PATCH/GET/DELETE/list, references, busy resources, latency) is driven by
this table; adding a type is one entry here (plus, optionally, a validator in `validation.py`
and a behaviour registered in `registry.py`). Types absent from the table are accepted generically:
synchronous writes, no validation beyond ARM's own (location for tracked resources).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from localdev.armsim.errors import ArmError

#: How a PUT/PATCH is answered.
#: - `async201`: 201 (create) / 200 (update) with the body and `Azure-AsyncOperation`.
#: - `async200`: 200 with the body and `Azure-AsyncOperation` (compute PATCH).
#: - `async202`: 202, no body, `Azure-AsyncOperation` and `Location` (SQL).
#: - `location202`: create answers 202 with `Location` only; an update is synchronous (Storage).
#: - `location201`: 201 (create) / 200 (update) with the body and `Location` (Key Vault's vaults:
#:   `ArmResourceCreatedResponse` with `ArmLroLocationHeader` in Vault.tsp).
#: - `sync`: 201/200 with the final body, no operation.
WriteMode = Literal["async201", "async200", "async202", "location202", "location201", "sync"]
#: How a DELETE is answered: `async202` (202 with both headers), `location202` (202 with
#: `Location` only, resource groups) or `sync` (200, 204 when absent).
DeleteMode = Literal["async202", "location202", "sync"]


@dataclass(frozen=True)
class NameRule:
    """Azure's naming rule for a type: length, allowed characters, error code and wording."""

    min_length: int
    max_length: int
    pattern: str
    code: str = "InvalidResourceName"
    description: str = (
        "The name can be up to {max} characters long. It must begin with a word character, and "
        "it must end with a word character or with '_'. The name may contain word characters or "
        "'.', '-', '_'."
    )

    #: The message; `{name}`, `{type}` and `{detail}` (the description) are filled in.
    template: str = "Resource name {name} is invalid for {type}. {detail}"

    def check(self, name: str, type_name: str) -> None:
        """Raise ARM's 400 when `name` breaks the rule."""
        if self.min_length <= len(name) <= self.max_length and re.fullmatch(self.pattern, name):
            return
        detail = self.description.format(min=self.min_length, max=self.max_length)
        message = self.template.format(name=name, type=type_name, detail=detail)
        raise ArmError(400, self.code, message)


_WORD_NAME = r"[A-Za-z0-9_]([A-Za-z0-9_.-]*[A-Za-z0-9_])?"
NETWORK_NAME = NameRule(1, 80, _WORD_NAME)
COMPUTE_NAME = NameRule(1, 64, _WORD_NAME)
EXTENSION_NAME = NameRule(1, 64, r"[A-Za-z0-9_.-]+")
RESOURCE_GROUP_NAME = NameRule(
    1,
    90,
    r"[-\w._()]*[-\w_()]",
    code="InvalidResourceGroupName",
    description=(
        "Resource group names can be {min} to {max} characters: letters, digits, underscores, "
        "periods, hyphens and parentheses, not ending in a period."
    ),
)
SQL_SERVER_NAME = NameRule(
    1,
    63,
    r"[a-z0-9]([a-z0-9-]*[a-z0-9])?",
    description=(
        "Server names must be {min} to {max} characters of lowercase letters, digits and "
        "hyphens, and cannot start or end with a hyphen."
    ),
)
SQL_DATABASE_NAME = NameRule(
    1,
    128,
    r"[^<>*%&:\\/?]*[^<>*%&:\\/?. ]",
    description="Database names are {min} to {max} characters and cannot contain <>*%&:\\/?.",
)
#: Vault names (Vault.tsp: `^[a-zA-Z0-9-]{3,24}$`; Microsoft's naming rules: begin with a
#: letter, end with a letter or digit, no consecutive hyphens). The code and wording are ARM's
#: as commonly reported; the specs publish neither.
KEY_VAULT_NAME = NameRule(
    3,
    24,
    r"[A-Za-z](?!.*--)[A-Za-z0-9-]*[A-Za-z0-9]",
    code="VaultNameNotValid",
    description=(
        "A vault's name must be between {min}-{max} alpha-numeric characters. The name must "
        "begin with a letter, end with a letter or digit, and not contain consecutive hyphens."
    ),
    template="The vault name '{name}' is invalid. {detail}",
)
#: Secret names (Secret.tsp pattern `^[a-zA-Z0-9-]{1,127}$`).
KEY_VAULT_SECRET_NAME = NameRule(
    1,
    127,
    r"[A-Za-z0-9-]+",
    description="Secret names are {min} to {max} letters, digits and hyphens.",
)
#: User-assigned identity names (ManagedIdentity.json 2023-01-31:
#: `^[a-zA-Z0-9][a-zA-Z0-9_-]{2,127}$`).
IDENTITY_NAME = NameRule(
    3,
    128,
    r"[A-Za-z0-9][A-Za-z0-9_-]*",
    description=(
        "Identity names are {min} to {max} letters, digits, hyphens and underscores, starting "
        "with a letter or digit."
    ),
)
STORAGE_ACCOUNT_NAME = NameRule(
    3,
    24,
    r"[a-z0-9]+",
    code="AccountNameInvalid",
    description=(
        "Storage account name must be between {min} and {max} characters in length and use "
        "numbers and lower-case letters only."
    ),
)


@dataclass(frozen=True)
class TypeSpec:
    """How ARM treats one resource type."""

    type: str
    put: WriteMode = "sync"
    patch: WriteMode = "sync"
    delete: DeleteMode = "sync"
    #: Tracked resources carry `location` (required) and `tags`.
    tracked: bool = True
    name_rule: NameRule | None = None
    #: Names unique across all of Azure (they become DNS names).
    global_name: bool = False
    #: Dotted paths of reference properties that are not `{"id": ...}` objects.
    reference_paths: tuple[str, ...] = ()
    #: Code when deleting a resource that others still reference.
    in_use_code: str = "InUseResourceCannotBeDeleted"
    #: Writing this child also makes its parent busy (network's subnets lock their VNet).
    locks_parent: bool = False
    #: Network-style sub-resources: items of lists under `properties` get their own ids.
    sub_resource_ids: bool = False
    #: ARM refuses PUT on this type (e.g. scale-set instances are created by the scale set).
    creatable: bool = True
    #: Some child types require their name to be fixed (Storage's `fileServices/default`).
    fixed_name: str | None = None
    #: Status of a synchronous create (Azure Monitor's metric alerts answer 200, not 201).
    sync_create_status: int = 201
    #: Extension resource (`<scope>/providers/{ns}/{type}/{name}`, role assignments): it lives
    #: on its scope, goes with it, and is not one of a group's resources.
    extension: bool = False
    #: Dotted body paths that are written but never stored or returned (Key Vault secret
    #: values): the simulator keeps only a SHA-256 of them, for tests.
    write_only: tuple[str, ...] = ()
    #: A synchronous DELETE answers 200 with the deleted resource (role assignments).
    delete_body: bool = False
    #: POST actions (lower case) answered with a long-running operation: fault injection may
    #: make their operation fail (`operation-failed`).
    lro_actions: frozenset[str] = frozenset()


def _network(type_name: str, **overrides: object) -> TypeSpec:
    values: dict[str, object] = {
        "put": "async201",
        "patch": "sync",
        "delete": "async202",
        "name_rule": NETWORK_NAME,
        "sub_resource_ids": True,
    }
    values.update(overrides)
    return TypeSpec(type_name, **values)  # type: ignore[arg-type]


def _compute(type_name: str, **overrides: object) -> TypeSpec:
    values: dict[str, object] = {
        "put": "async201",
        "patch": "async200",
        "delete": "async202",
        "name_rule": COMPUTE_NAME,
    }
    values.update(overrides)
    return TypeSpec(type_name, **values)  # type: ignore[arg-type]


def _sql(type_name: str, **overrides: object) -> TypeSpec:
    values: dict[str, object] = {"put": "async202", "patch": "async202", "delete": "async202"}
    values.update(overrides)
    return TypeSpec(type_name, **values)  # type: ignore[arg-type]


_SPECS: tuple[TypeSpec, ...] = (
    TypeSpec(
        "Microsoft.Resources/resourceGroups",
        delete="location202",
        name_rule=RESOURCE_GROUP_NAME,
    ),
    _network("Microsoft.Network/virtualNetworks"),
    _network(
        "Microsoft.Network/virtualNetworks/subnets",
        tracked=False,
        locks_parent=True,
        in_use_code="InUseSubnetCannotBeDeleted",
    ),
    _network(
        "Microsoft.Network/networkSecurityGroups",
        in_use_code="InUseNetworkSecurityGroupCannotBeDeleted",
    ),
    _network("Microsoft.Network/publicIPAddresses", in_use_code="PublicIPAddressInUse"),
    _network("Microsoft.Network/networkInterfaces", in_use_code="NicInUse"),
    _network("Microsoft.Network/loadBalancers"),
    _network("Microsoft.Network/applicationGateways", lro_actions=frozenset({"backendhealth"})),
    _network("Microsoft.Network/bastionHosts"),
    _compute("Microsoft.Compute/virtualMachines", lro_actions=frozenset({"runcommand"})),
    _compute("Microsoft.Compute/virtualMachines/extensions", name_rule=EXTENSION_NAME),
    _compute(
        "Microsoft.Compute/virtualMachineScaleSets",
        lro_actions=frozenset({"manualupgrade", "reimage", "delete"}),
    ),
    _compute(
        "Microsoft.Compute/virtualMachineScaleSets/extensions",
        tracked=False,
        name_rule=EXTENSION_NAME,
    ),
    _compute(
        "Microsoft.Compute/virtualMachineScaleSets/virtualMachines",
        tracked=False,
        creatable=False,
        name_rule=None,
        lro_actions=frozenset({"reimage", "runcommand"}),
    ),
    _sql("Microsoft.Sql/servers", name_rule=SQL_SERVER_NAME, global_name=True),
    _sql(
        "Microsoft.Sql/servers/databases",
        name_rule=SQL_DATABASE_NAME,
        lro_actions=frozenset({"restorepoints"}),
    ),
    # Restore points are made by POST on the database's collection (RestorePoints.json);
    # their DELETE answers 200.
    TypeSpec("Microsoft.Sql/servers/databases/restorePoints", tracked=False, creatable=False),
    _sql(
        "Microsoft.Sql/servers/virtualNetworkRules",
        tracked=False,
        name_rule=NETWORK_NAME,
        reference_paths=("properties.virtualNetworkSubnetId",),
    ),
    TypeSpec(
        "Microsoft.Storage/storageAccounts",
        put="location202",
        name_rule=STORAGE_ACCOUNT_NAME,
        global_name=True,
    ),
    TypeSpec("Microsoft.Storage/storageAccounts/fileServices", tracked=False, fixed_name="default"),
    TypeSpec(
        "Microsoft.Storage/storageAccounts/fileServices/shares",
        tracked=False,
        name_rule=NameRule(3, 63, r"[a-z0-9]([a-z0-9]|-(?=[a-z0-9]))*"),
    ),
    _network("Microsoft.Network/natGateways"),
    _network(
        "Microsoft.Network/ApplicationGatewayWebApplicationFirewallPolicies",
        name_rule=NameRule(1, 128, _WORD_NAME),
    ),
    TypeSpec("Microsoft.ManagedIdentity/userAssignedIdentities", name_rule=IDENTITY_NAME),
    TypeSpec("Microsoft.KeyVault/vaults", put="location201", name_rule=KEY_VAULT_NAME),
    TypeSpec(
        "Microsoft.KeyVault/vaults/secrets",
        tracked=False,
        name_rule=KEY_VAULT_SECRET_NAME,
        write_only=("properties.value",),
    ),
    # Soft-deleted vaults live at subscription scope (DeletedVault.tsp); the provider moves a
    # vault there on delete, nobody PUTs one. Their purge is their (asynchronous) delete.
    TypeSpec("Microsoft.KeyVault/deletedVaults", tracked=False, creatable=False),
    TypeSpec("Microsoft.KeyVault/locations/deletedVaults", tracked=False, creatable=False),
    TypeSpec(
        "Microsoft.Authorization/roleAssignments",
        tracked=False,
        extension=True,
        delete_body=True,
    ),
    TypeSpec("Microsoft.Insights/actionGroups"),
    TypeSpec("Microsoft.Insights/metricAlerts", sync_create_status=200),
)

CATALOG: Mapping[str, TypeSpec] = {spec.type.lower(): spec for spec in _SPECS}


def spec_for(type_name: str) -> TypeSpec:
    """The spec of a type (case-insensitive); unknown types get the generic synchronous spec."""
    known = CATALOG.get(type_name.lower())
    if known is not None:
        return known
    return TypeSpec(type_name, tracked="/" not in type_name.split("/", 1)[1])


def canonical_type(type_name: str) -> str:
    """The type with ARM's casing when the type is known, else as given."""
    known = CATALOG.get(type_name.lower())
    return known.type if known else type_name

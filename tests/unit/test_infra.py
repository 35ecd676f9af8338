"""The infrastructure as code of the function app: Bicep parses, checkov passes, settings agree.

The settings-sync test reads the three places that name the app settings (the Bicep app settings,
`local.settings.sample.json` and the README's configuration table) and requires the same names,
except for the one-sided settings listed, with their reason, in `LOCAL_ONLY` and `AZURE_ONLY`.
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
import subprocess
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any, cast

import pytest
from pycep import BicepParser

from appsettings import SECRET_SETTINGS

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra"
BICEP_FILES = sorted(INFRA.rglob("*.bicep"))

# Settings that only make sense locally (in local.settings.sample.json, not in the Bicep).
LOCAL_ONLY = {
    # A loopback URL points the app at the ARM simulator; in Azure the default applies.
    "ARM_ENDPOINT",
    # Flex Consumption takes the runtime from functionAppConfig.runtime and rejects this setting.
    "FUNCTIONS_WORKER_RUNTIME",
}
# Settings that only make sense in Azure (in the Bicep, not in the sample or the README table).
AZURE_ONLY = {
    # Selects the user-assigned identity for DefaultAzureCredential; locally `az login` is used.
    "AZURE_CLIENT_ID",
    # Platform settings of the Functions host's telemetry, read by the host, not by the app.
    "APPLICATIONINSIGHTS_CONNECTION_STRING",
    "APPLICATIONINSIGHTS_AUTHENTICATION_STRING",
}
# In Azure, `AzureWebJobsStorage` is spelled as identity-based `AzureWebJobsStorage__*` settings;
# they count as that one setting.
IDENTITY_BASED_PREFIX = "AzureWebJobsStorage__"

# Roles the app identity must never hold on a managed subscription.
TOO_BROAD_ROLES = {
    "8e3af657-a8ff-443c-a75c-2fe8c4bcb635": "Owner",
    "b24988ac-6180-42a0-ab88-20f7382dd24c": "Contributor",
    "18d7d88d-d35e-4fb5-a5c3-7773c20a72d9": "User Access Administrator",
}


@cache
def parse_bicep(path: Path) -> dict[str, Any]:
    return cast(dict[str, Any], BicepParser().parse(text=path.read_text(encoding="utf-8")))


def unquote(key: str) -> str:
    return key.strip("'")


def resource_bodies(parsed: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """(symbolic name, type, body) of every resource, looking through loops and conditions."""
    for name, resource in parsed.get("resources", {}).items():
        config = resource["config"]
        body = config["config"] if "loop_type" in config or "condition" in config else config
        yield name, resource["type"], body


def resources_by_name(path: Path) -> dict[str, dict[str, Any]]:
    return {name: body for name, _, body in resource_bodies(parse_bicep(path))}


def bicep_app_settings() -> dict[str, Any]:
    parsed = parse_bicep(INFRA / "app" / "api.bicep")
    return {unquote(k): v for k, v in parsed["variables"]["appSettings"]["value"].items()}


def sample_settings() -> set[str]:
    values = json.loads((ROOT / "local.settings.sample.json").read_text(encoding="utf-8"))
    return set(values["Values"])


def readme_settings() -> set[str]:
    """First-column names of the README's configuration table."""
    row = re.compile(r"^\|\s*`([A-Za-z_][A-Za-z0-9_]*)`\s*\|")
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    match = re.search(r"^## Configuration$(.*?)(?=^## )", text, re.M | re.S)
    assert match is not None, "no '## Configuration' section in README.md"
    names = {m.group(1) for line in match.group(1).splitlines() if (m := row.match(line))}
    assert names, "no settings table in README.md's configuration section"
    return names


# --- Bicep parses ---------------------------------------------------------------------------


def test_infra_has_the_azd_layout() -> None:
    assert (INFRA / "main.bicep").is_file()
    assert (INFRA / "main.parameters.json").is_file()
    assert (INFRA / "abbreviations.json").is_file()
    assert len(BICEP_FILES) >= 5


@pytest.mark.parametrize("path", BICEP_FILES, ids=lambda p: str(p.relative_to(INFRA)))
def test_bicep_file_parses(path: Path) -> None:
    parsed = parse_bicep(path)
    assert parsed.get("resources") or parsed.get("modules"), f"{path} declares nothing"


def test_bicep_parser_rejects_broken_bicep() -> None:
    """The parse check above can fail: a dropped closing brace is a parse error."""
    text = (INFRA / "app" / "identity.bicep").read_text(encoding="utf-8")
    broken = text.replace("  tags: tags\n}", "  tags: tags\n", 1)
    assert broken != text
    with pytest.raises(Exception, match=r"(?i)unexpected|expected"):
        BicepParser().parse(text=broken)


@pytest.mark.parametrize("path", BICEP_FILES, ids=lambda p: str(p.relative_to(INFRA)))
def test_only_bicep_directives_start_with_a_hash(path: Path) -> None:
    """Bicep comments are `//`; a `#checkov` line would not compile, whatever checkov reads."""
    directives = ("#disable-next-line", "#disable-diagnostics", "#restore-diagnostics")
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        stripped = line.strip()
        assert not stripped.startswith("#") or stripped.startswith(directives), (
            f"{path.name}:{number}: {stripped[:60]}"
        )


def test_every_module_path_exists() -> None:
    for path in BICEP_FILES:
        for name, module in parse_bicep(path).get("modules", {}).items():
            target = path.parent / module["detail"]["path"]
            assert target.is_file(), f"{path.name}: module {name} points at missing {target}"


def test_parameters_file_names_only_declared_non_secret_parameters() -> None:
    main = parse_bicep(INFRA / "main.bicep")["parameters"]
    declared = json.loads((INFRA / "main.parameters.json").read_text(encoding="utf-8"))
    for name in declared["parameters"]:
        assert name in main, f"main.parameters.json sets undeclared parameter {name}"
        decorators = {d["type"] for d in main[name]["decorators"]}
        assert "secure" not in decorators, f"secret {name} must not come from a plain env var"


# --- checkov --------------------------------------------------------------------------------


def checkov_executable() -> Path:
    configured = os.environ.get("CHECKOV_BIN")
    candidate = Path(configured) if configured else ROOT / ".venv" / "iac" / "bin" / "checkov"
    assert candidate.is_file(), (
        f"checkov not found at {candidate}: install requirements-iac.txt into .venv/iac "
        "(make test does) or set CHECKOV_BIN"
    )
    return candidate


def test_checkov_finds_no_failed_check_and_every_skip_is_justified() -> None:
    completed = subprocess.run(
        [
            str(checkov_executable()),
            "--directory",
            str(INFRA),
            "--framework",
            "bicep",
            "secrets",
            "--skip-download",
            "--output",
            "json",
        ],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
        env={**os.environ, "ANSI_COLORS_DISABLED": "1", "LOG_LEVEL": "ERROR"},
    )
    assert completed.stdout, completed.stderr[-2000:]
    report = json.loads(completed.stdout)
    reports = report if isinstance(report, list) else [report]
    bicep = [r for r in reports if r.get("check_type") == "bicep"]
    assert bicep, "checkov did not scan the Bicep files"
    assert bicep[0]["summary"]["passed"] > 20
    failed: list[str] = []
    unjustified: list[str] = []
    for result in reports:
        assert not result["summary"].get("parsing_errors"), result["results"].get("parsing_errors")
        for check in result["results"]["failed_checks"]:
            failed.append(f"{check['check_id']} {check['resource']} ({check['file_path']})")
        for check in result["results"]["skipped_checks"]:
            reason = check["check_result"].get("suppress_comment", "")
            if len(reason.strip()) < 20:
                unjustified.append(f"{check['check_id']} {check['resource']}")
    assert failed == []
    assert unjustified == []


# --- app settings in step -------------------------------------------------------------------


def test_app_settings_name_the_same_settings_everywhere() -> None:
    bicep = {
        IDENTITY_BASED_PREFIX.rstrip("_") if name.startswith(IDENTITY_BASED_PREFIX) else name
        for name in bicep_app_settings()
    }
    sample = sample_settings()
    readme = readme_settings()

    assert readme == sample, "README configuration table and local.settings.sample.json differ"
    assert bicep - AZURE_ONLY == sample - LOCAL_ONLY, (
        f"only in Bicep: {sorted(bicep - AZURE_ONLY - sample)}; "
        f"only in the sample: {sorted(sample - LOCAL_ONLY - bicep)}"
    )


def test_one_sided_exceptions_are_really_one_sided() -> None:
    """An exception that stops being one-sided must leave its list, not hide a mismatch."""
    bicep = set(bicep_app_settings())
    sample = sample_settings()
    assert sample >= LOCAL_ONLY
    assert not bicep & LOCAL_ONLY
    assert bicep >= AZURE_ONLY
    assert not sample & AZURE_ONLY


def test_storage_connection_is_identity_based_with_the_app_identity() -> None:
    settings = bicep_app_settings()
    assert "AzureWebJobsStorage" not in settings, "no connection string (with a key) in Azure"
    for suffix in (
        "accountName",
        "blobServiceUri",
        "queueServiceUri",
        "tableServiceUri",
        "credential",
        "clientId",
    ):
        assert f"{IDENTITY_BASED_PREFIX}{suffix}" in settings
    assert settings[f"{IDENTITY_BASED_PREFIX}credential"] == "managedidentity"
    assert settings[f"{IDENTITY_BASED_PREFIX}clientId"] == "identityClientId"
    assert settings["AZURE_CLIENT_ID"] == "identityClientId"


def test_secret_settings_are_key_vault_references_to_secrets_the_vault_holds() -> None:
    parsed = parse_bicep(INFRA / "app" / "api.bicep")
    prefix = parsed["variables"]["keyVaultReference"]["value"]
    settings = bicep_app_settings()
    vault = parse_bicep(INFRA / "app" / "keyvault.bicep")
    secret_names = {
        body["name"]
        for _, kind, body in resource_bodies(vault)
        if kind == "Microsoft.KeyVault/vaults/secrets"
    }
    for name in SECRET_SETTINGS:
        value = settings[name]
        if isinstance(value, dict):  # an optional secret: a reference when given, else empty
            operands = value["operator"]["operands"]
            assert value["operator"]["type"] == "conditional"
            assert operands["false_value"] == ""
            value = operands["true_value"]
        value = value.replace("${keyVaultReference}", prefix)
        match = re.fullmatch(
            r"@Microsoft\.KeyVault\(SecretUri=\$\{keyVaultUri\}secrets/(.+)\)", value
        )
        assert match, f"{name} is not a Key Vault reference: {value}"
        assert match.group(1) == name.replace("_", "-")
        assert match.group(1) in secret_names, f"the vault defines no secret {match.group(1)}"


def test_secrets_are_secure_parameters_and_never_output() -> None:
    main = parse_bicep(INFRA / "main.bicep")
    secure = {
        name
        for name, param in main["parameters"].items()
        if any(d["type"] == "secure" for d in param["decorators"])
    }
    assert {"vmAdminPassword", "sqlAdminPassword", "platformKeySeed", "alertWebhookUrl"} <= secure
    for path in BICEP_FILES:
        parsed = parse_bicep(path)
        file_secure = {
            name
            for name, param in parsed.get("parameters", {}).items()
            if any(d["type"] == "secure" for d in param["decorators"])
        }
        for output_name, output in parsed.get("outputs", {}).items():
            text = json.dumps(output["value"])
            leaked = [name for name in file_secure if re.search(rf"\b{name}\b", text)]
            assert not leaked, f"{path.name} output {output_name} exposes {leaked}"


def test_main_outputs_are_upper_snake() -> None:
    outputs = parse_bicep(INFRA / "main.bicep")["outputs"]
    assert outputs
    assert all(re.fullmatch(r"[A-Z][A-Z0-9_]*", name) for name in outputs)
    # The post-deploy hook reads these.
    assert {"AZURE_RESOURCE_GROUP", "AZURE_FUNCTION_APP_NAME", "AZURE_KEY_VAULT_NAME"} <= set(
        outputs
    )


# --- hosting, storage, vault ----------------------------------------------------------------


def test_function_app_is_linux_python_311_on_flex_consumption() -> None:
    resources = {
        name: (kind, body)
        for name, kind, body in resource_bodies(parse_bicep(INFRA / "app" / "api.bicep"))
    }
    plan_kind, plan = resources["plan"]
    assert plan_kind == "Microsoft.Web/serverfarms"
    assert plan["sku"] == {"tier": "FlexConsumption", "name": "FC1"}
    assert plan["properties"]["reserved"] is True
    _, app = resources["functionApp"]
    assert app["kind"] == "functionapp,linux"
    assert app["identity"]["type"] == "UserAssigned"
    assert app["properties"]["httpsOnly"] is True
    assert app["properties"]["keyVaultReferenceIdentity"] == "identityId"
    runtime = app["properties"]["functionAppConfig"]["runtime"]
    assert runtime == {"name": "python", "version": "3.11"}
    deployment = app["properties"]["functionAppConfig"]["deployment"]["storage"]
    assert deployment["authentication"]["type"] == "UserAssignedIdentity"


def test_storage_accepts_no_shared_keys() -> None:
    resources = resources_by_name(INFRA / "app" / "storage.bicep")
    properties = resources["storage"]["properties"]
    assert properties["allowSharedKeyAccess"] is False
    assert properties["allowBlobPublicAccess"] is False
    assert properties["minimumTlsVersion"] == "TLS1_2"


def test_key_vault_uses_rbac_and_keeps_deleted_secrets() -> None:
    vault = resources_by_name(INFRA / "app" / "keyvault.bicep")["vault"]
    assert vault["properties"]["enableRbacAuthorization"] is True
    assert vault["properties"]["enablePurgeProtection"] is True


def role_assignments(path: Path) -> list[dict[str, Any]]:
    return [
        body
        for _, kind, body in resource_bodies(parse_bicep(path))
        if kind == "Microsoft.Authorization/roleAssignments"
    ]


@pytest.mark.parametrize("name", ["rbac.bicep", "management-roles.bicep"])
def test_role_assignments_are_named_from_scope_principal_and_role(name: str) -> None:
    assignments = role_assignments(INFRA / "app" / name)
    assert assignments
    for body in assignments:
        function = body["name"]["function"]
        assert function["type"] == "guid"
        assert len([v for v in function["parameters"].values() if v is not None]) == 3


def test_app_identity_reads_only_secrets_from_its_vault() -> None:
    parsed = parse_bicep(INFRA / "app" / "rbac.bicep")
    roles = parsed["variables"]["roles"]["value"]
    on_vault = [
        body for body in role_assignments(INFRA / "app" / "rbac.bicep") if body["scope"] == "vault"
    ]
    identity_roles = {
        json.dumps(b["properties"]["roleDefinitionId"])
        for b in on_vault
        if b["properties"]["principalId"] == "identityPrincipalId"
    }
    assert len(identity_roles) == 1
    (only,) = identity_roles
    assert "keyVaultSecretsUser" in only
    assert roles["keyVaultSecretsUser"] == "4633458b-17de-408a-b874-0445c86b69e6"


def test_storage_roles_cover_what_durable_functions_needs() -> None:
    roles = parse_bicep(INFRA / "app" / "rbac.bicep")["variables"]["roles"]["value"]
    assert roles["storageBlobDataOwner"] == "b7e6dc6d-f1e8-4753-8033-0f276bb0955b"
    assert roles["storageQueueDataContributor"] == "974c5e8b-45b9-4653-ba55-5f855dd0fb88"
    assert roles["storageTableDataContributor"] == "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3"
    storage_roles = parse_bicep(INFRA / "app" / "rbac.bicep")["variables"]["storageRoles"]
    assert len(storage_roles["value"]) == 3


# --- the platform operator role on managed subscriptions ------------------------------------

ROLE_JSON = INFRA / "app" / "platform-operator-role.json"
# The shape the simulator reads too (contract C2 of the design brief); do not change it.
ROLE_KEYS = {"roleName", "description", "actions", "notActions", "assignableRoleIds"}
# Built-in role ids, the same in every tenant
# (https://learn.microsoft.com/azure/role-based-access-control/built-in-roles: "Key Vault
# Secrets User" under Security, "Storage File Data Privileged Contributor" under Storage).
KEY_VAULT_SECRETS_USER = "4633458b-17de-408a-b874-0445c86b69e6"
STORAGE_FILE_DATA_PRIVILEGED_CONTRIBUTOR = "69566ab7-960f-475b-8e7c-b3118f30c6bd"
# Wildcard actions allowed in the role, each explained in docs/deploy-to-azure.md.
ALLOWED_WILDCARDS = {
    # SQL names an operation-status resource per sub-resource type (serverAzureAsyncOperation,
    # databaseOperationResults, virtualNetworkRulesAzureAsyncOperation, ...): polling them is
    # read-only. SQL Server Contributor grants the same wildcard.
    "Microsoft.Sql/locations/*/read",
}
# Patterns no action may match (issue 13, point 8). Run Command on a scale set's instances is
# the one exception (issue 17: the balanced upgrade runs the setup script's front-end modes
# there, docs/upgrades.md); on the VMs it stays forbidden.
FORBIDDEN_ACTION_PATTERNS = (
    "*/listKeys/*",
    "Microsoft.Compute/virtualMachines/runCommand/*",
    "*/runCommands/*",
    "Microsoft.KeyVault/locations/deletedVaults/purge/action",
)
# Operations no action may cover, wildcards included. Names from Azure's resource provider
# operations (https://learn.microsoft.com/azure/role-based-access-control/resource-provider-operations,
# MicrosoftDocs/azure-docs articles/role-based-access-control/permissions/*.md).
FORBIDDEN_OPERATIONS = (
    "Microsoft.Storage/storageAccounts/listKeys/action",
    "Microsoft.Storage/storageAccounts/regenerateKey/action",
    "Microsoft.Storage/storageAccounts/ListAccountSas/action",
    "Microsoft.Storage/storageAccounts/listServiceSas/action",
    "Microsoft.Compute/virtualMachines/runCommand/action",
    "Microsoft.Compute/virtualMachines/runCommands/write",
    "Microsoft.KeyVault/locations/deletedVaults/purge/action",
    "Microsoft.KeyVault/vaults/accessPolicies/write",
    "Microsoft.Authorization/roleDefinitions/write",
    "Microsoft.Authorization/elevateAccess/action",
    "Microsoft.Sql/servers/firewallRules/write",
)
# Data actions of the two roles the app assigns to others (built-in roles page above): the app
# itself must hold none of them, nor any other data action.
DATA_ACTIONS = (
    "Microsoft.KeyVault/vaults/secrets/getSecret/action",
    "Microsoft.KeyVault/vaults/secrets/readMetadata/action",
    "Microsoft.Storage/storageAccounts/fileServices/fileshares/files/read",
    "Microsoft.Storage/storageAccounts/fileServices/fileshares/files/write",
    "Microsoft.Storage/storageAccounts/fileServices/fileshares/files/delete",
    "Microsoft.Storage/storageAccounts/fileServices/fileshares/files/modifypermissions/action",
)

# The condition grammar Microsoft documents for delegating role assignment management
# (MicrosoftDocs/azure-docs at 0b8729eaf7eb0aabc6390cb17348d19761285f12,
# articles/role-based-access-control/delegate-role-assignments-examples.md, and
# conditions-authorization-actions-attributes.md: roleAssignments/write has request attributes,
# roleAssignments/delete resource attributes; RoleDefinitionId, PrincipalId, PrincipalType).
_CLAUSE = re.compile(
    r"\(\(!\(ActionMatches\{'(?P<action>Microsoft\.Authorization/roleAssignments/(?:write|delete))'\}\)\)"
    r" OR \((?P<body>[^()]*)\)\)"
)
_EXPRESSION = re.compile(
    r"@(?P<source>Request|Resource)\[Microsoft\.Authorization/roleAssignments:"
    r"(?P<attribute>RoleDefinitionId|PrincipalId|PrincipalType)\] "
    r"(?P<operator>ForAnyOfAnyValues:GuidEquals|ForAnyOfAnyValues:StringEqualsIgnoreCase"
    r"|ForAnyOfAllValues:GuidNotEquals) \{(?P<values>[^{}]*)\}"
)
_SOURCE_OF_ACTION = {
    "Microsoft.Authorization/roleAssignments/write": "Request",
    "Microsoft.Authorization/roleAssignments/delete": "Resource",
}


def operator_role() -> dict[str, Any]:
    return cast(dict[str, Any], json.loads(ROLE_JSON.read_text(encoding="utf-8")))


def covers(action: str, operation: str) -> bool:
    """Whether a role action grants an operation: case-insensitive, `*` matches any text."""
    return fnmatch.fnmatchcase(operation.lower(), action.lower())


def property_of_role(key: str) -> dict[str, Any]:
    """How pycep spells `role.<key>` (role = the loaded JSON)."""
    return {
        "operator": {
            "type": "property_accessor",
            "operands": {"operand_1": "role", "operand_2": key},
        }
    }


def module_config(module: dict[str, Any]) -> dict[str, Any]:
    config = module["config"]
    return cast(
        dict[str, Any],
        config["config"] if "loop_type" in config or "condition" in config else config,
    )


def condition_clauses(condition: str) -> dict[str, dict[str, tuple[str, str, set[str]]]]:
    """action -> attribute -> (source, operator, values) of a role-assignment condition.

    Raises AssertionError when the condition is not one write clause AND one delete clause of
    the documented form.
    """
    clauses = list(_CLAUSE.finditer(condition))
    rebuilt = " AND ".join(m.group(0) for m in clauses)
    assert rebuilt == condition, f"not two documented clauses joined by AND: {condition}"
    result: dict[str, dict[str, tuple[str, str, set[str]]]] = {}
    for clause in clauses:
        action = clause.group("action")
        assert action not in result, f"{action} constrained twice"
        expressions = clause.group("body").split(" AND ")
        attributes: dict[str, tuple[str, str, set[str]]] = {}
        for text in expressions:
            match = _EXPRESSION.fullmatch(text)
            assert match, f"not a documented expression: {text}"
            values = {v.strip().strip("'") for v in match.group("values").split(",")}
            attributes[match.group("attribute")] = (
                match.group("source"),
                match.group("operator"),
                values,
            )
        result[action] = attributes
    assert set(result) == set(_SOURCE_OF_ACTION), f"clauses for {sorted(result)}"
    return result


def rendered_condition(principal_id: str) -> str:
    """The condition management-roles.bicep sends, its interpolations filled in from the JSON."""
    parsed = parse_bicep(INFRA / "app" / "management-roles.bicep")
    variables = parsed["variables"]
    assert parsed["variables"]["role"]["value"]["function"] == {
        "type": "load_json_content",
        "parameters": {
            "file_path": "platform-operator-role.json",
            "json_path": None,
            "encoding": None,
        },
    }
    # The only computed variable the condition uses: the JSON's own list, nothing typed in.
    assert variables["assignableRoles"]["value"] == {
        "function": {
            "type": "join",
            "parameters": {"input_array": property_of_role("assignableRoleIds"), "delimiter": ", "},
        }
    }
    values = {
        "assignableRoles": ", ".join(operator_role()["assignableRoleIds"]),
        "identityPrincipalId": principal_id,
    }

    def render(text: str) -> str:
        def fill(match: re.Match[str]) -> str:
            name = match.group(1)
            return values[name] if name in values else render(variables[name]["value"])

        return re.sub(r"\$\{(\w+)\}", fill, text)

    (assignment,) = role_assignments(INFRA / "app" / "management-roles.bicep")
    assert assignment["properties"]["condition"] == "roleAssignmentCondition"
    # Bicep's escaped quote \' is a plain quote in the deployed string.
    return render(variables["roleAssignmentCondition"]["value"]).replace("\\'", "'")


def test_operator_role_json_keeps_the_shared_shape_and_assigns_only_two_roles() -> None:
    role = operator_role()
    assert set(role) == ROLE_KEYS, "the simulator reads this shape; dataActions must stay absent"
    assert role["notActions"] == []
    assert len(role["actions"]) == len(set(role["actions"])), "duplicate actions"
    assert set(role["assignableRoleIds"]) == {
        KEY_VAULT_SECRETS_USER,
        STORAGE_FILE_DATA_PRIVILEGED_CONTRIBUTOR,
    }
    assert not set(role["assignableRoleIds"]) & set(TOO_BROAD_ROLES)
    wildcards = {a for a in role["actions"] if "*" in a}
    assert wildcards <= ALLOWED_WILDCARDS, f"unexplained wildcards: {sorted(wildcards)}"


def test_operator_role_grants_no_keys_no_run_command_no_purge_and_no_data_plane() -> None:
    actions = operator_role()["actions"]
    matched = [
        (action, pattern)
        for action in actions
        for pattern in FORBIDDEN_ACTION_PATTERNS
        if fnmatch.fnmatchcase(action.lower(), pattern.lower())
    ]
    assert matched == []
    covered = [
        (a, op) for a in actions for op in (*FORBIDDEN_OPERATIONS, *DATA_ACTIONS) if covers(a, op)
    ]
    assert covered == []
    # The check itself can fail: a provider-wide wildcard would cover listKeys.
    assert covers("Microsoft.Storage/*", "Microsoft.Storage/storageAccounts/listKeys/action")
    assert covers("microsoft.compute/virtualMachines/*", FORBIDDEN_OPERATIONS[4])


def test_platform_operator_role_is_built_from_the_json() -> None:
    parsed = parse_bicep(INFRA / "app" / "platform-operator-role.bicep")
    assert parsed["variables"]["role"]["value"]["function"] == {
        "type": "load_json_content",
        "parameters": {
            "file_path": "platform-operator-role.json",
            "json_path": None,
            "encoding": None,
        },
    }
    (definition,) = [
        body
        for _, kind, body in resource_bodies(parsed)
        if kind == "Microsoft.Authorization/roleDefinitions"
    ]
    properties = definition["properties"]
    assert properties["type"] == "customRole"
    assert properties["roleName"].startswith("${role.roleName}")
    assert properties["description"] == property_of_role("description")
    (permissions,) = properties["permissions"]
    assert permissions["actions"] == property_of_role("actions")
    assert permissions["notActions"] == property_of_role("notActions")
    assert permissions["dataActions"] == []
    assert permissions["notDataActions"] == []
    # Assignable on each managed subscription, nowhere else.
    scopes = properties["assignableScopes"]
    assert scopes["loop_type"]["detail"]["array_name"] == "subscriptionIds"
    assert scopes["config"] == "/subscriptions/${id}"

    # No other file defines a role, and main wires this one to the managed subscriptions.
    others = [
        path.name
        for path in BICEP_FILES
        if path.name != "platform-operator-role.bicep"
        and any(
            kind == "Microsoft.Authorization/roleDefinitions"
            for _, kind, _ in resource_bodies(parse_bicep(path))
        )
    ]
    assert others == []
    modules = parse_bicep(INFRA / "main.bicep")["modules"]
    definition_params = module_config(modules["platformOperatorRole"])["params"]
    assert definition_params["subscriptionIds"] == "managementSubscriptionIds"
    assignment = modules["managementRoles"]["config"]
    assert assignment["loop_type"]["detail"]["array_name"] == "managementSubscriptionIds"
    assert (
        module_config(modules["managementRoles"])["params"]["roleDefinitionName"]
        == definition_params["roleDefinitionName"]
    )


def test_app_identity_gets_only_the_operator_role_with_a_condition() -> None:
    path = INFRA / "app" / "management-roles.bicep"
    (assignment,) = role_assignments(path)
    properties = assignment["properties"]
    assert properties["principalId"] == "identityPrincipalId"
    assert properties["principalType"] == "ServicePrincipal"
    assert properties["roleDefinitionId"] == "roleDefinitionId"
    assert properties["conditionVersion"] == "2.0"
    role_definition = parse_bicep(path)["variables"]["roleDefinitionId"]["value"]["function"]
    assert role_definition["type"] == "subscription_resource_id"
    assert (
        role_definition["parameters"]["resource_type"] == "Microsoft.Authorization/roleDefinitions"
    )
    assert role_definition["parameters"]["resource_name_1"] == "roleDefinitionName"
    text = path.read_text(encoding="utf-8")
    assert not [role for role in TOO_BROAD_ROLES if role in text]


def test_role_assignment_condition_names_exactly_the_assignable_roles() -> None:
    app = "0f0f0f0f-1111-2222-3333-444444444444"
    clauses = condition_clauses(rendered_condition(app))
    expected = set(operator_role()["assignableRoleIds"])
    for action, attributes in clauses.items():
        source = _SOURCE_OF_ACTION[action]
        assert attributes["RoleDefinitionId"] == (source, "ForAnyOfAnyValues:GuidEquals", expected)
        # Managed identities only (no user or group gets a secret), and never the app itself.
        assert attributes["PrincipalType"] == (
            source,
            "ForAnyOfAnyValues:StringEqualsIgnoreCase",
            {"ServicePrincipal"},
        )
        assert attributes["PrincipalId"] == (source, "ForAnyOfAllValues:GuidNotEquals", {app})


def test_condition_check_refuses_what_the_documentation_does_not_allow() -> None:
    good = rendered_condition("0f0f0f0f-1111-2222-3333-444444444444")
    only_write = good.split(") AND ((!(ActionMatches")[0] + ")"
    with pytest.raises(AssertionError, match="clauses for"):
        condition_clauses(only_write)
    with pytest.raises(AssertionError, match="not a documented expression"):
        condition_clauses(good.replace("GuidEquals", "StringEquals", 1))
    with pytest.raises(AssertionError):
        condition_clauses(good.replace(" AND ((!", " OR ((!", 1))


def test_every_action_of_the_role_is_explained_to_users() -> None:
    guide = (ROOT / "docs" / "deploy-to-azure.md").read_text(encoding="utf-8")
    missing = [a for a in operator_role()["actions"] if f"`{a}`" not in guide]
    assert missing == [], "docs/deploy-to-azure.md does not explain these actions"
    for role_id in operator_role()["assignableRoleIds"]:
        assert role_id in guide


def test_global_passwords_are_optional_fallbacks_and_the_seed_is_still_generated() -> None:
    parameters = parse_bicep(INFRA / "main.bicep")["parameters"]

    def generated(name: str) -> bool:
        return any(
            d["type"] == "metadata" and "generate" in json.dumps(d)
            for d in parameters[name]["decorators"]
        )

    for name in ("vmAdminPassword", "sqlAdminPassword"):
        assert parameters[name].get("default") == "", f"{name} must be optional"
        assert not generated(name), f"azd must no longer generate {name}"
    assert generated("platformKeySeed")
    assert parameters["platformKeySeed"].get("default") is None

    vault = resources_by_name(INFRA / "app" / "keyvault.bicep")
    settings = bicep_app_settings()
    for setting, flag in (
        ("VM_ADMIN_PASSWORD", "hasVmAdminPassword"),
        ("SQL_ADMIN_PASSWORD", "hasSqlAdminPassword"),
    ):
        value = settings[setting]["operator"]
        assert value["type"] == "conditional"
        assert value["operands"]["condition"] == flag
        assert value["operands"]["false_value"] == "", "no reference to a secret that may not exist"
    conditions = {
        name: resource["config"].get("condition")
        for name, resource in parse_bicep(INFRA / "app" / "keyvault.bicep")["resources"].items()
    }
    assert conditions["vmAdminPasswordSecret"] is not None
    assert conditions["sqlAdminPasswordSecret"] is not None
    assert conditions["platformKeySeedSecret"] is None
    assert vault["platformKeySeedSecret"]["name"] == "PLATFORM-KEY-SEED"


def test_scaling_ceiling_alert_age_and_vnet_allow_list_reach_the_app() -> None:
    main = parse_bicep(INFRA / "main.bicep")["parameters"]
    assert main["scalingMaxCapacity"]["default"] == 100
    assert main["alertMaxAgeMinutes"]["default"] == 60
    assert main["allowedVnetIds"]["default"] == ""
    settings = bicep_app_settings()
    assert (
        settings["SCALING_MAX_CAPACITY"]["function"]["parameters"]["value_to_convert"]
        == "scalingMaxCapacity"
    )
    assert (
        settings["ALERT_MAX_AGE_MINUTES"]["function"]["parameters"]["value_to_convert"]
        == "alertMaxAgeMinutes"
    )
    assert settings["ALLOWED_VNET_IDS"] == "allowedVnetIds"
    values = json.loads((INFRA / "main.parameters.json").read_text(encoding="utf-8"))["parameters"]
    assert values["scalingMaxCapacity"]["value"] == "${SCALING_MAX_CAPACITY=100}"
    assert values["alertMaxAgeMinutes"]["value"] == "${ALERT_MAX_AGE_MINUTES=60}"
    assert values["allowedVnetIds"]["value"] == "${ALLOWED_VNET_IDS=}"


def test_azure_yaml_deploys_the_repository_as_a_python_function_app() -> None:
    text = (ROOT / "azure.yaml").read_text(encoding="utf-8")
    assert re.search(
        r"^services:\n  api:\n    project: \.\n    language: python\n    host: function$",
        text,
        re.M,
    )
    assert re.search(r"^infra:\n  provider: bicep\n  path: infra\n  module: main$", text, re.M)
    for hook in re.findall(r"run: \./(\S+)", text):
        assert (ROOT / hook).is_file(), f"azure.yaml runs missing {hook}"


def test_alert_webhook_hook_is_valid_shell_and_keeps_the_key_off_the_command_line() -> None:
    script = INFRA / "scripts" / "set-alert-webhook.sh"
    subprocess.run(["sh", "-n", str(script)], check=True, timeout=30)
    text = script.read_text(encoding="utf-8")
    assert "--file" in text
    assert not re.search(r"secret set[^\n]*--value", text)


def test_funcignore_ships_the_setup_script_and_no_dev_tooling() -> None:
    """`arm/secrets.py` reads the setup script at run time; dev tooling is never deployed."""
    lines = {
        line.strip()
        for line in (ROOT / ".funcignore").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert {"infra/*", "!infra/scripts/", "!infra/scripts/Install-OutSystems.ps1"} <= lines
    assert {"localdev/", "osctl/", "tests/", "bench/", ".venv/", "node_modules/"} <= lines
    from arm.secrets import SETUP_SCRIPT

    assert SETUP_SCRIPT.relative_to(ROOT).as_posix() == "infra/scripts/Install-OutSystems.ps1"

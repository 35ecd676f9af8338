"""The infrastructure as code of the function app: Bicep parses, checkov passes, settings agree.

The settings-sync test reads the three places that name the app settings (the Bicep app settings,
`local.settings.sample.json` and the README's configuration table) and requires the same names,
except for the one-sided settings listed, with their reason, in `LOCAL_ONLY` and `AZURE_ONLY`.
"""

from __future__ import annotations

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
        value = settings[name].replace("${keyVaultReference}", prefix)
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


def test_management_roles_are_least_privilege_and_documented() -> None:
    path = INFRA / "app" / "management-roles.bicep"
    parsed = parse_bicep(path)
    role_ids = set(parsed["variables"]["builtInRoles"]["value"])
    assert role_ids == {
        "9980e02c-c2be-4d73-94e8-173b1dc7cf3c",  # Virtual Machine Contributor
        "4d97b98b-1d4f-4787-a291-c67834d212e7",  # Network Contributor
        "6d8ee4ec-f05a-4a1d-8b00-a9b17e38b437",  # SQL Server Contributor
        "17d1049b-9a84-46fb-8f53-869881c3d3ab",  # Storage Account Contributor
        "749f88d5-cbae-40b8-bcfc-e573ddc772fa",  # Monitoring Contributor
    }
    assert not role_ids & set(TOO_BROAD_ROLES)
    definitions = [
        body
        for _, kind, body in resource_bodies(parsed)
        if kind == "Microsoft.Authorization/roleDefinitions"
    ]
    assert len(definitions) == 1
    actions = definitions[0]["properties"]["permissions"][0]["actions"]
    assert "Microsoft.Resources/subscriptions/resourceGroups/write" in actions
    assert not [a for a in actions if "*" in a], "the custom role must not use wildcards"

    # Every role named in the module is explained to users.
    guide = (ROOT / "docs" / "deploy-to-azure.md").read_text(encoding="utf-8")
    named = re.findall(r"// ([A-Z][A-Za-z ]+Contributor)$", path.read_text(encoding="utf-8"), re.M)
    assert len(named) == 5
    for role in named:
        assert role in guide, f"docs/deploy-to-azure.md does not explain {role}"


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

"""The OutSystems setup script, read with a real PowerShell grammar (tree-sitter-powershell).

PowerShell itself is not available here, so these tests check what a parse tree can show, against
published facts: every command and parameter exists (SetupTools 4.0.3.0 and Microsoft's
reference, tests/oracles/), the command line is contract C1, the firewall opens what OutSystems'
network requirements page lists per role, the reboot and time rules of the Custom Script
Extension hold, and no secret is a parameter or reaches the output.
"""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, get_args

import pytest
import tree_sitter

from outsystems.topology import SETUP_SCRIPT_PARAMETERS, Role
from tests.support.powershell import parse, text, walk

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "infra" / "scripts" / "Install-OutSystems.ps1"
POWERSHELL_FILES = sorted((ROOT / "infra").rglob("*.ps1"))

# The variables that hold secrets read from Key Vault, and what derives from them.
SECRET_VARIABLES = ("DatabaseAdminPassword", "PrivateKey", "AdminPassword")
# The command-line contract between the topology and the script: its parameters, in this order
# (written out here, independently of `outsystems.topology.SETUP_SCRIPT_PARAMETERS`).
C1_PARAMETERS = (
    "Role",
    "PlatformVersion",
    "LifetimeVersion",
    "DatabaseServer",
    "PlatformCatalog",
    "SessionCatalog",
    "LoggingCatalog",
    "DatabaseAdminUser",
    "ControllerAddress",
    "KeyVaultUri",
    "DatabaseAdminPasswordSecret",
    "PrivateKeySecret",
    "AdminPasswordSecret",
    "IdentityResourceId",
    "StorageAccount",
    "FileShare",
    "TrustedProxyAddresses",
)
# The Custom Script Extension hands the script over through the VM's userData: 64 KiB of base64.
USER_DATA_LIMIT = 64 * 1024


@cache
def script_source() -> bytes:
    return SCRIPT.read_bytes()


def syntax_problems(tree: tree_sitter.Tree) -> list[str]:
    return [
        f"{'ERROR' if n.is_error else 'MISSING'} at line {n.start_point[0] + 1}: {text(n)[:60]!r}"
        for n in walk(tree.root_node)
        if n.is_error or n.is_missing
    ]


def script_parameters() -> dict[str, bool]:
    """Name -> mandatory, for every parameter of the script's top-level param() block."""
    root = parse(script_source()).root_node
    blocks = [c for c in root.children if c.type == "param_block"]
    assert len(blocks) == 1, "the script must start with one param() block"
    parameters: dict[str, bool] = {}
    for node in walk(blocks[0]):
        if node.type != "script_parameter":
            continue
        variables = [c for c in node.children if c.type == "variable"]
        assert len(variables) == 1
        name = text(variables[0]).lstrip("$")
        attributes = " ".join(text(c) for c in node.children if c.type == "attribute_list")
        # `Mandatory` alone means `Mandatory = $true` (about_Functions_Advanced_Parameters).
        parameters[name] = bool(re.search(r"Mandatory\s*(=\s*\$true\s*)?[,)]", attributes, re.I))
    return parameters


@pytest.mark.parametrize("path", POWERSHELL_FILES, ids=lambda p: p.name)
def test_powershell_parses_without_errors(path: Path) -> None:
    tree = parse(path.read_bytes())
    assert syntax_problems(tree) == []
    assert not tree.root_node.has_error


def test_grammar_reports_a_broken_script() -> None:
    """The parse check can fail: an unclosed block is reported."""
    broken = script_source().replace(
        b"function Write-Step([string]$Message) {", b"function Write-Step([string]$Message) { (", 1
    )
    assert broken != script_source()
    assert syntax_problems(parse(broken))


# --- Commands and parameters against published facts ------------------------------------------
#
# Oracles (never our own reading of the script):
# - tests/oracles/setuptools-4.0.3.0.json: Outsystems.SetupTools 4.0.3.0's exported cmdlets (the
#   PowerShell Gallery page of 4.0.3.0) and each one's parameters, dynamic ones included, each with
#   the module source it comes from (repository OutSystems/OutSystems.SetupTools; see its header).
# - tests/oracles/setuptools-powershell-builtins.json: the PowerShell commands the script may use,
#   with their parameters from Microsoft's reference pages (Windows PowerShell 5.1 and the
#   Windows Server modules), and the common parameters (about_CommonParameters).

ORACLES = ROOT / "tests" / "oracles"
SETUPTOOLS_CATALOGUE = ORACLES / "setuptools-4.0.3.0.json"
BUILTINS_CATALOGUE = ORACLES / "setuptools-powershell-builtins.json"


@cache
def setuptools_catalogue() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(SETUPTOOLS_CATALOGUE.read_text(encoding="utf-8"))
    return data


@cache
def builtins_catalogue() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(BUILTINS_CATALOGUE.read_text(encoding="utf-8"))
    return data


@dataclass(frozen=True)
class Call:
    """One command invocation: its name, the parameters it names and the keys it splats."""

    name: str
    parameters: tuple[str, ...]
    splats: tuple[str, ...]
    line: int
    scope: tree_sitter.Node


@dataclass(frozen=True)
class Signature:
    parameters: frozenset[str]
    advanced: bool
    source: str


def enclosing_scope(node: tree_sitter.Node) -> tree_sitter.Node:
    """The function a node is in, or the whole script."""
    current: tree_sitter.Node | None = node.parent
    while current is not None:
        if current.type == "function_statement":
            return current
        if current.parent is None:
            return current
        current = current.parent
    return node


def parameter_name(node: tree_sitter.Node) -> str:
    return text(node).lstrip("-").rstrip(":")


def script_calls(source: bytes) -> list[Call]:
    found = []
    for node in walk(parse(source).root_node):
        if node.type != "command":
            continue
        name = node.child_by_field_name("command_name")
        if name is None or text(name).startswith("$"):
            # `& $tool ...` invokes a program held in a variable: nothing static to check.
            continue
        parameters: list[str] = []
        splats: list[str] = []
        for elements in (c for c in node.children if c.type == "command_elements"):
            for element in walk(elements):
                if element.type == "command_parameter" and element.parent == elements:
                    parameters.append(parameter_name(element))
                elif element.type == "variable" and text(element).startswith("@"):
                    splats.append(text(element)[1:])
        found.append(
            Call(
                text(name),
                tuple(parameters),
                tuple(splats),
                node.start_point[0] + 1,
                enclosing_scope(node),
            )
        )
    return found


def own_functions(source: bytes) -> dict[str, Signature]:
    functions = {}
    for node in walk(parse(source).root_node):
        if node.type != "function_statement":
            continue
        name = next(c for c in node.children if c.type == "function_name")
        declared = [c for c in node.children if c.type == "function_parameter_declaration"]
        body = next(c for c in node.children if c.type == "script_block")
        blocks = [c for c in body.children if c.type == "param_block"]
        parameters = set()
        for holder in declared + blocks:
            for item in walk(holder):
                if item.type == "script_parameter":
                    variable = next(c for c in item.children if c.type == "variable")
                    parameters.add(text(variable).lstrip("$").lower())
        advanced = any("cmdletbinding" in text(b).lower() for b in blocks)
        functions[text(name).lower()] = Signature(
            frozenset(parameters), advanced, f"the script's own function {text(name)}"
        )
    return functions


def hash_keys(node: tree_sitter.Node) -> set[str]:
    keys = set()
    body = next((c for c in node.children if c.type == "hash_literal_body"), None)
    for entry in body.children if body is not None else []:
        if entry.type == "hash_entry":
            key = next(c for c in entry.children if c.type == "key_expression")
            keys.add(text(key).strip("'\"").lower())
    return keys


def splat_keys(scope: tree_sitter.Node, variable: str) -> set[str] | None:
    """Keys a splatted hashtable can hold, from its literal and the keys assigned later in the
    same function; None when the hashtable comes from elsewhere (not statically knowable)."""
    keys: set[str] = set()
    assigned = False
    target = "$" + variable.lower()
    for node in walk(scope):
        if node.type != "assignment_expression":
            continue
        left = node.children[0]
        value = node.children[-1]
        accesses = [n for n in walk(left) if n.type in ("element_access", "member_access")]
        if accesses:
            access = accesses[0]
            if text(access.children[0]).lower() != target:
                continue
            if access.type == "element_access":
                keys.add(text(access.children[2]).strip("'\"").lower())
            else:
                keys.add(text(access.children[-1]).lower())
        elif text(left).strip().lower() == target:
            literal = next((n for n in walk(value) if n.type == "hash_literal_expression"), None)
            if literal is None or not text(value).lstrip().startswith("@{"):
                return None
            keys |= hash_keys(literal)
            assigned = True
    return keys if assigned else None


def known_signature(name: str, own: dict[str, Signature]) -> Signature | None:
    key = name.lower()
    if key in own:
        return own[key]
    catalogue = setuptools_catalogue()
    for cmdlet, entry in catalogue["cmdlets"].items():
        if cmdlet.lower() == key:
            if entry["parameters"] is None:
                return Signature(
                    frozenset(), True, f"SetupTools {catalogue['version']} (parameters unknown)"
                )
            names = set(entry["parameters"]) | set(entry.get("dynamic_parameters", {}))
            for aliases in entry.get("aliases", {}).values():
                names |= set(aliases)
            return Signature(
                frozenset(n.lower() for n in names),
                True,
                f"SetupTools {catalogue['version']} ({entry['parameters_from']})",
            )
    for command, entry in builtins_catalogue()["commands"].items():
        if command.lower() == key:
            return Signature(
                frozenset(p.lower() for p in entry["parameters"]), True, entry["source"]
            )
    return None


def command_problems(source: bytes) -> list[str]:
    own = own_functions(source)
    common = {p.lower() for p in builtins_catalogue()["common_parameters"]["parameters"]}
    version = setuptools_catalogue()["version"]
    problems = []
    for call in script_calls(source):
        signature = known_signature(call.name, own)
        if signature is None:
            problems.append(
                f"line {call.line}: {call.name} is not a PowerShell built-in, one of the script's "
                f"functions, nor exported by Outsystems.SetupTools {version}"
            )
            continue
        allowed = signature.parameters | (common if signature.advanced else set())
        named = [(p, "") for p in call.parameters]
        for variable in call.splats:
            keys = splat_keys(call.scope, variable)
            named += [(k, f" (splatted from ${variable})") for k in sorted(keys or ())]
        for parameter, how in named:
            if parameter.lower() not in allowed:
                problems.append(
                    f"line {call.line}: {call.name} has no parameter -{parameter}{how} "
                    f"according to {signature.source}"
                )
    return problems


def test_catalogue_lists_the_gallery_exports_and_cites_a_source_for_each_cmdlet() -> None:
    catalogue = setuptools_catalogue()
    assert catalogue["module"] == "Outsystems.SetupTools"
    cmdlets = catalogue["cmdlets"]
    # The PowerShell Gallery page of 4.0.3.0 lists 43 functions; Install-OSRabbitMQ was removed in
    # 2.2.0.0 (CHANGELOG: "This cmdLet was removed").
    assert len(cmdlets) == 43
    assert "Install-OSRabbitMQ" not in cmdlets
    for name, entry in cmdlets.items():
        assert entry["parameters_from"].split(" ")[0] in catalogue["facts_and_sources"], name
    dynamic = cmdlets["Set-OSServerConfig"]["dynamic_parameters"]
    assert {
        "ConfigureCacheInvalidationService",
        "LogDBCredential",
        "UpgradeEnvironment",
        "InstallServiceCenter",
    } <= set(dynamic)


def test_script_pins_the_catalogued_setuptools_version() -> None:
    version = setuptools_catalogue()["version"]
    assert re.search(rf"\$SetupToolsVersion = '{re.escape(version)}'", script_source().decode()), (
        f"the script must install the SetupTools version the catalogue describes ({version})"
    )


def test_every_command_and_parameter_the_script_uses_exists() -> None:
    assert command_problems(script_source()) == []


def test_command_check_reports_an_unknown_cmdlet_and_parameter() -> None:
    """The check can fail: a removed cmdlet, a missing parameter and a splatted key are caught."""
    snippet = b"""
function Install-Thing {
    $apply = @{ Apply = $true }
    $apply['NoSuchSwitch'] = $true
    Set-OSServerConfig @apply
    Install-OSRabbitMQ -VirtualHosts '/OutSystems'
    Install-OSServer -Version '11.32.0.1' -InstallRabbitMQ
}
"""
    problems = "\n".join(command_problems(snippet))
    assert "Install-OSRabbitMQ is not" in problems
    assert "Set-OSServerConfig has no parameter -nosuchswitch (splatted from $apply)" in problems
    assert "Install-OSServer has no parameter -InstallRabbitMQ" in problems
    assert "-apply" not in problems.lower().replace("$apply", "")


# --- The command line (contract C1) -----------------------------------------------------------


def test_parameters_are_contract_c1_in_order_and_none_is_a_secret() -> None:
    declared = script_parameters()
    assert tuple(name for name in declared if name != "Mode") == C1_PARAMETERS
    assert all(declared[name] for name in C1_PARAMETERS), "every C1 parameter is mandatory"
    assert declared["Mode"] is False
    # A mandatory parameter refuses an empty string unless it says [AllowEmptyString()]
    # (learn.microsoft.com/powershell/module/microsoft.powershell.core/about/
    # about_functions_advanced_parameters, "AllowEmptyString validation attribute").
    assert "AllowEmptyString" not in script_source().decode()
    assert not [n for n in declared if re.search(r"Password$|PrivateKey$", n)], "secrets are names"


def test_topology_passes_contract_c1() -> None:
    assert tuple(SETUP_SCRIPT_PARAMETERS) == C1_PARAMETERS


def test_roles_are_the_four_the_topology_uses() -> None:
    match = re.search(rb"\[ValidateSet\(([^)]*)\)\]\s*\[string\]\$Role", script_source())
    assert match
    roles = set(re.findall(r"'([a-z]+)'", match.group(1).decode()))
    assert roles == set(get_args(Role))


def test_script_fits_in_vm_user_data() -> None:
    # The script travels in VM userData: at most 64 KiB once base64-encoded.
    assert len(base64.b64encode(script_source())) <= USER_DATA_LIMIT


def function_source(name: str) -> str:
    source = script_source().decode()
    for node in walk(parse(script_source()).root_node):
        if node.type != "function_statement":
            continue
        if text(next(c for c in node.children if c.type == "function_name")) == name:
            return text(node)
    raise AssertionError(f"the script has no function {name}; {len(source)} bytes read")


def calls_in(function: str) -> list[Call]:
    body = function_source(function).encode()
    return script_calls(body)


def test_secrets_come_from_key_vault_through_the_managed_identity() -> None:
    token = function_source("Get-AccessToken")
    # IMDS token for a user-assigned identity: mi_res_id=<ARM id> (Azure IMDS identity endpoint).
    assert "identity/oauth2/token?api-version=2018-02-01&resource={0}&mi_res_id={1}" in token
    vault = function_source("Get-VaultSecret")
    assert '"$($KeyVaultUri)secrets/$($Name)?api-version=7.4"' in vault
    assert "Bearer $Token" in vault
    preflight = function_source("Invoke-Preflight")
    for name in ("DatabaseAdminPasswordSecret", "PrivateKeySecret", "AdminPasswordSecret"):
        assert f"${name}" in preflight
    assert "Get-AccessToken 'https://vault.azure.net'" in preflight
    assert "Get-AccessToken 'https://storage.azure.com/'" in function_source("Get-ShareHeaders")


def test_secrets_never_reach_output_logging_or_verbose_streams() -> None:
    secret_refs = re.compile(
        r"\$(?:script:)?(" + "|".join(SECRET_VARIABLES) + r")\b|Get-DerivedSecret|\$secret\b", re.I
    )
    writers = {
        "write-output",
        "write-host",
        "write-step",
        "write-verbose",
        "write-warning",
        "write-information",
        "write-error",
        "out-file",
        "add-content",
        "set-osserverconfig",
    }
    for node in walk(parse(script_source()).root_node):
        if node.type != "command":
            continue
        name = node.child_by_field_name("command_name")
        full = text(node)
        if name is not None and text(name).lower() in writers:
            assert not secret_refs.search(full), f"a secret reaches {text(name)}: {full[:80]}"
        assert not re.search(r"(?i)\s-Verbose\b", full), f"-Verbose would log values: {full[:80]}"
    source = script_source().decode()
    assert "$VerbosePreference = 'SilentlyContinue'" in source
    assert "$InformationPreference = 'SilentlyContinue'" in source
    # Set-OSServerConfig writes the values it sets to the module log: secrets bypass it.
    for call in script_calls(script_source()):
        if call.name == "Set-OSServerConfig" and "Value" in call.parameters:
            assert "PlatformDBCredential" not in call.parameters


def test_the_transcript_and_every_copied_file_are_scrubbed() -> None:
    main = script_source().decode()[script_source().decode().rindex("Start-Transcript") :]
    assert main.index("Stop-Transcript") < main.index("Protect-LogFile $transcript")
    assert main.index("Protect-LogFile $transcript") < main.index("Copy-SetupArtifacts $transcript")
    copy = function_source("Copy-SetupArtifacts")
    # Every file goes through Protect-Text; server.hsconf loses every *Password element first.
    assert copy.count("Send-ShareFile") == 2
    assert "Protect-Text ([IO.File]::ReadAllText" in copy
    assert "Get-ProtectedHsconf $hsconf" in copy
    assert 'contains(local-name(), "Password")' in function_source("Get-ProtectedHsconf")
    # Azure Files with OAuth: x-ms-file-request-intent: backup (Files REST API, Microsoft docs).
    assert "'x-ms-file-request-intent' = 'backup'" in function_source("Get-ShareHeaders")
    # The Marketplace layout: <computer>/server.hsconf and <computer>/logs/ (docs-product
    # src/setup-infra-platform/setup/azure/getting-setup-logs.md), with the Configuration Tool log
    # at C:\Windows\Temp\ConfigurationTool.log (config-tool-ref.md, "Logging").
    assert '"$computer/server.hsconf"' in copy
    assert (
        "'logs/ConfigurationTool.log' = (Join-Path $env:SystemRoot 'Temp\\ConfigurationTool.log')"
        in copy
    )


def test_failure_message_shows_only_the_exception_message() -> None:
    """An error record's full text can echo bound parameters; only its message is printed."""
    source = script_source().decode()
    handler = source[source.rindex("catch {") :]
    assert "Protect-Text $_.Exception.Message" in handler
    assert "OutSystems setup failed: " in handler
    assert not re.search(r"\$_\s*\)|\"\$_\"|\$\(\$_\)", handler)
    # The extension keeps the last 4,096 bytes of output: the outcome is printed last.
    assert source.rstrip().endswith(
        "if ($lastLine) { Write-Host $lastLine; [Console]::Error.WriteLine($lastLine) }"
        "\nexit $exitCode"
    )


# --- Preflight: the messages the simulator mimics ----------------------------------------------

#: What a real server logs when something the setup needs is missing (the text after
#: "OutSystems setup failed: Preflight: "; several are joined with "; ").
PREFLIGHT_MESSAGES = (
    "no managed identity token from IMDS for {resource} (identity {identity}): {reason}",
    "Key Vault secret '{name}' is not readable in {vault} (HTTP {status})",
    "Key Vault secret '{name}' is not the base64 text of 16 bytes",
    "file share {account}/{share} is not writable with the managed identity ({detail})",
    "SQL server {server} is not reachable on TCP 1433",
    "SQL login {user} to {server}/{catalog} failed: {reason}",
    "the PowerShell Gallery (www.powershellgallery.com:443) is not reachable",
    "the OutSystems repository lists no {application} build of {version} "
    "(Get-OSRepoAvailableVersions); is outbound Internet access open?",
)


def test_preflight_messages_are_the_documented_ones() -> None:
    source = script_source().decode()
    for message in PREFLIGHT_MESSAGES:
        pattern = re.escape(message)
        pattern = re.sub(r"\\\{[a-z]+\\\}", r"[^\"]+?", pattern)
        assert re.search(pattern, source), message
    assert "throw \"Preflight: $($missing -join '; ')\"" in source


# --- Setup steps as the chosen SetupTools version does them ------------------------------------


def test_cache_invalidation_is_set_up_by_the_configuration_tool_not_the_installer() -> None:
    # SetupTools 3.19.0.0: Install-OSServer no longer installs RabbitMQ; Set-OSServerConfig -Apply
    # -ConfigureCacheInvalidationService does it (Configuration Tool
    # /CreateUpgradeCacheInvalidationService).
    for call in script_calls(script_source()):
        if call.name == "Install-OSServer":
            assert "SkipRabbitMQ" not in call.parameters
    configuration = function_source("Invoke-ServerConfiguration")
    assert re.search(
        r"if \(\$IsFrontend\) \{\s*#[^\n]*\n\s*\$apply\['SkipSessionRebuild'\] = \$true\s*\}"
        r"\s*else \{\s*#[^\n]*\n\s*\$apply\['ConfigureCacheInvalidationService'\] = \$true",
        configuration,
    )
    assert "Set-OSServerConfig @apply" in configuration
    assert "LogDBCredential = $credential" in configuration


def step_order() -> list[str]:
    setup = function_source("Invoke-Setup")
    return re.findall(
        r"\b(Install-Prerequisites|Install-PlatformServer|Invoke-ServerConfiguration|"
        r"Set-AdminPassword|Set-TlsOffloading|Publish-SystemComponents|Set-ServerTuning|"
        r"Set-FirewallRules|Register-ScaleInWatcher|Invoke-Preflight|Import-SetupTools|"
        r"Confirm-TargetVersion|Complete-Upgrade)\b",
        setup,
    )


def test_steps_run_in_the_order_the_platform_needs() -> None:
    order = step_order()
    assert order == [
        "Invoke-Preflight",
        # A downgrade is refused before anything changes on the server.
        "Confirm-TargetVersion",
        "Import-SetupTools",
        "Install-Prerequisites",
        "Install-PlatformServer",
        # Set-OSServerConfig's dynamic parameters exist only once Platform Server is installed.
        "Invoke-ServerConfiguration",
        "Set-AdminPassword",
        "Set-TlsOffloading",
        "Publish-SystemComponents",
        "Set-ServerTuning",
        "Set-FirewallRules",
        "Register-ScaleInWatcher",
        # The health gate of an upgrade comes last.
        "Complete-Upgrade",
    ]
    body = function_source("Invoke-ServerConfiguration")
    assert body.index("Set-PrivateKeyFile $osInstallDir") < body.index("Set-OSServerConfig @apply")


def test_admin_password_is_set_and_used_by_every_step_that_logs_in() -> None:
    # docs-product src/setup-infra-platform/setup/unattended-install/config-tool-ref.md:
    # "/SetPlatformServerAdminPassword <platform_server_admin_password>" and
    # "/UploadLicense <license_file> <platform_server_admin_user> <platform_server_admin_password>".
    assert "@('/SetPlatformServerAdminPassword', $AdminPassword)" in function_source(
        "Set-AdminPassword"
    )
    assert "@('/UploadLicense', $file, 'admin', $AdminPassword)" in function_source(
        "Install-TrialLicense"
    )
    # SetupTools' publish cmdlets default to admin/admin (-Credential = $OSSCCred): always pass it.
    for call in script_calls(script_source()):
        if call.name in ("Publish-OSPlatformSystemComponents", "Publish-OSPlatformLifetime"):
            assert "Credential" in call.parameters, call
    assert "$credential = Get-AdminCredential" in function_source("Publish-SystemComponents")
    assert "'admin'" in function_source("Get-AdminCredential")


def test_tls_offloading_sets_the_documented_platform_parameter() -> None:
    # docs-howtos src/infrastructure/reverse-proxy/reverse-proxy-config.md, "C - End-to-end SSL and
    # SSL Offloading": OSSYS_PARAMETER 'OutSystems.HubEdition.HTTPtoHTTPSproxyHeader' =
    # 'X-Forwarded-Proto: https', then restart the OutSystems services.
    body = function_source("Set-TlsOffloading")
    assert "$name = 'OutSystems.HubEdition.HTTPtoHTTPSproxyHeader'" in body
    assert "$value = 'X-Forwarded-Proto: https'" in body
    assert "INSERT INTO OSSYS_PARAMETER (Name, Val) VALUES (@name, @value)" in body
    assert "Restart-OSServerServices" in body


def test_front_ends_keep_only_the_front_end_role() -> None:
    assert "$HostsServiceCenter = -not $IsFrontend" in script_source().decode()
    for function in ("Publish-SystemComponents", "Set-AdminPassword", "Set-TlsOffloading"):
        assert "if (-not $HostsServiceCenter) { return }" in function_source(function)
    assert "if ($IsFrontend) { Wait-Controller }" in function_source("Invoke-ServerConfiguration")
    assert "'OutSystems Deployment Controller Service'" in function_source(
        "Disable-DeploymentControllerOnFrontend"
    )


# --- Reboots and the extension's limits --------------------------------------------------------


def script_number(name: str) -> int:
    match = re.search(rf"^\${name} = (\d+)$", script_source().decode(), re.M)
    assert match, name
    return int(match.group(1))


def test_the_script_never_restarts_the_vm_itself_and_fits_the_90_minutes() -> None:
    # learn.microsoft.com/azure/virtual-machines/extensions/custom-script-windows (Tips): "The
    # script is allowed 90 minutes to run"; "Don't put restarts inside the script"; "schedule the
    # restart by using a Windows Scheduled Task".
    names = {call.name.lower() for call in script_calls(script_source())}
    assert "restart-computer" not in names
    assert "shutdown.exe" not in names
    continuation = function_source("Request-Continuation")
    assert "New-ScheduledTaskTrigger -AtStartup" in continuation
    assert "Register-SystemTask $RebootTask" in continuation
    assert "shutdown.exe /r" in continuation
    assert "return 3010" in continuation
    # A run of the extension: the wait for a background run and the steps count against one
    # budget, with 10 minutes left for the log copy; a step that may not fit goes to the background.
    assert script_number("LockWaitMinutes") <= 60
    assert script_number("RunBudgetMinutes") <= 80
    assert (
        "((Get-Date) - $Started).TotalMinutes + $Minutes -gt $RunBudgetMinutes"
        in function_source("Test-RunBudget")
    )
    # The brief: the controller exists before the scale set, so a short wait.
    assert script_number("ControllerWaitMinutes") <= 20


def test_reboot_and_time_budget_lead_to_3010_never_to_0() -> None:
    prerequisites = function_source("Install-Prerequisites")
    assert "if ($result.RebootNeeded) { return (Request-Continuation $State" in prerequisites
    assert "-Reboot" in prerequisites
    assert "if ($result.RebootNeeded) { return (Request-Continuation" in function_source(
        "Install-PlatformServer"
    )
    setup = function_source("Invoke-Setup")
    # Every step's non-zero code ends the run; 0 is returned only after the last step.
    assert "if ($code -ne 0) { return $code }" in setup
    assert setup.rstrip().endswith("return 0\n}") or setup.rstrip().endswith("return 0\r\n}")
    assert setup.count("return 0") == 1
    assert "Test-RunBudget $State $step $steps[$step]" in setup


def test_the_continuation_runs_the_same_script_with_the_same_arguments() -> None:
    arguments = function_source("Get-ScriptArguments")
    assert "foreach ($name in $ScriptArguments.Keys)" in arguments
    assert "-Mode $NextMode" in arguments
    assert "New-ScheduledTaskPrincipal -UserId 'SYSTEM'" in function_source("Register-SystemTask")
    # One run at a time; the extension waits for a running continuation and then re-checks.
    assert "'Global\\OutSystemsSetup'" in function_source("Enter-SetupLock")


# --- Windows firewall against OutSystems' network requirements --------------------------------

# docs-product src/setup/network-requirements.md (commit 0770a9ca1a5d5042595c47e621d7ec085b10a2ef),
# rows by destination: runtime (End Users/Dev Tools -> Front-End 80, 443; Front-End -> Controller
# 5672, 12000; Controller -> Front-End 12001), monitoring (Front-End -> Front-End 80, 12001, 12002;
# Front-End -> Controller 12000; Controller -> Front-End 80, 12001, 12002) and LifeTime (LifeTime
# Front-End <-> "all other servers (front-ends and deployment controllers)" 80, 443).
# SysOps 22/3389 is left to Windows and the NSG.
REQUIRED_INBOUND = {
    "front-end": {80, 443, 12001, 12002},
    "controller": {5672, 12000, 80, 443},
}
ROLE_PROFILES = {
    "frontend": ("front-end",),
    "controller": ("controller",),
    # "If a server has both roles (Controller and Front-End), then consider the ports for both".
    "standalone": ("front-end", "controller"),
    "lifetime": ("front-end", "controller"),
}


def firewall_rules() -> list[dict[str, Any]]:
    rules = []
    for node in walk(parse(function_source("Get-FirewallRules").encode()).root_node):
        if node.type != "hash_literal_expression":
            continue
        entries: dict[str, Any] = {}
        body = next(c for c in node.children if c.type == "hash_literal_body")
        for entry in (c for c in body.children if c.type == "hash_entry"):
            key = text(next(c for c in entry.children if c.type == "key_expression"))
            value = text(next(c for c in entry.children if c.type == "pipeline")).strip()
            entries[key] = (
                int(value) if value.isdigit() else re.findall(r"'([^']*)'", value) or value
            )
        rules.append(entries)
    return rules


@pytest.mark.parametrize("role", sorted(ROLE_PROFILES))
def test_firewall_opens_what_the_network_requirements_list_for_the_role(role: str) -> None:
    from outsystems.network.requirements import inbound_ports

    expected = set().union(*(REQUIRED_INBOUND[p] for p in ROLE_PROFILES[role]))
    opened = {rule["Port"] for rule in firewall_rules() if role in rule["Roles"]}
    assert opened == expected
    # The same flow matrix the NSGs are proven against (outsystems/network/requirements.py).
    assert opened == inbound_ports(role)


def test_firewall_keeps_platform_ports_inside_the_subnet() -> None:
    for rule in firewall_rules():
        if rule["Port"] in (5672, 12000, 12001, 12002):
            assert rule["Remote"] == ["LocalSubnet"], rule


# --- Scale-in ----------------------------------------------------------------------------------


def test_front_ends_watch_for_their_terminate_notification_and_leave_gracefully() -> None:
    # learn.microsoft.com/azure/virtual-machines/windows/scheduled-events and
    # .../virtual-machine-scale-sets/virtual-machine-scale-sets-terminate-notification: GET
    # scheduledevents (Metadata: true), act on EventType Terminate listing this VM's name
    # ({scale-set}_{instance}), approve with POST {"StartRequests": [{"EventId": ...}]}.
    watch = function_source("Watch-TerminateNotification")
    assert "Invoke-Imds 'instance/compute/name?api-version=2021-02-01&format=text'" in watch
    assert "Invoke-Imds 'scheduledevents?api-version=2020-07-01'" in watch
    assert "$scheduled.EventType -ne 'Terminate'" in watch
    assert "@($scheduled.Resources) -notcontains $name" in watch
    assert "StartRequests = @(@{ EventId = $scheduled.EventId })" in watch
    assert "Stop-TakingTraffic" in watch
    assert "Block-GatewayTraffic" in function_source("Stop-TakingTraffic")
    block = function_source("Block-GatewayTraffic")
    assert "-Action Block" in block
    assert "-RemoteAddress ($TrustedProxyAddresses.Split(','))" in block
    assert "if (-not $IsFrontend) { return }" in function_source("Register-ScaleInWatcher")
    assert "Metadata = 'true'" in function_source("Invoke-Imds")
    source = script_source().decode()
    assert "if ($Mode -eq 'WatchTermination') {\n    Watch-TerminateNotification" in source


# --- Upgrades ------------------------------------------------------------------------------------
#
# Oracles: tests/oracles/outsystems-upgrade.json (OutSystems' upgrade pages, the Configuration Tool
# reference, the Azure scale-set page, Microsoft's Run Command page, each with its commit) and the
# `upgrade`, `registry` and `services` facts of tests/oracles/setuptools-4.0.3.0.json (SetupTools'
# own source). docs/upgrades.md describes the same contract for the orchestration.

UPGRADE_ORACLE = ORACLES / "outsystems-upgrade.json"
UPGRADES_DOC = ROOT / "docs" / "upgrades.md"
#: Every -Mode value, and what runs it (docs/upgrades.md).
MODES = ("Setup", "Upgrade", "Resume", "WatchTermination", "Drain", "HoldDeployments", "Serve")
FRONT_END_MODES = ("Drain", "HoldDeployments", "Serve")
#: The last line the orchestration reads, per outcome (docs/upgrades.md, "What the script reports").
LAST_LINES = {
    "upgraded": "OutSystems setup succeeded: upgraded {product} {old} to {new} (role {role})",
    "installed": "OutSystems setup succeeded: installed {product} {new} (role {role})",
    "already": "OutSystems setup succeeded: already at {product} {new} (role {role})",
    "downgrade": "OutSystems setup failed: downgrade refused: {product} {old} is installed, "
    "{requested} was requested (line {line})",
    "nothing": "OutSystems setup failed: nothing to upgrade: {product} is not installed "
    "(line {line})",
    "reboot": "OutSystems setup not finished: reboot pending ({reason}); apply the extension "
    "again later",
    "background": "OutSystems setup not finished: continuing in the background ({reason}); "
    "apply the extension again later",
    "front-end": "OutSystems front-end {state}",
}
FRONT_END_STATES = {
    "Drain": "drained",
    "HoldDeployments": "holding deployments",
    "Serve": "serving",
}


@cache
def upgrade_pages() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(UPGRADE_ORACLE.read_text(encoding="utf-8"))["pages"]
    return data


def mode_values() -> list[str]:
    match = re.search(rb"\[ValidateSet\(([^)]*)\)\]\[string\]\$Mode = 'Setup'", script_source())
    assert match, "-Mode is a ValidateSet defaulting to Setup"
    return re.findall(r"'(\w+)'", match.group(1).decode())


def test_the_upgrade_oracle_names_a_source_for_every_page() -> None:
    for name, page in upgrade_pages().items():
        assert re.match(r"^[\w-]+/[\w.-]+ \S+ @ [0-9a-f]{40}", page["source"]), name


def test_modes_extend_contract_c1_without_changing_it() -> None:
    # Contract C1 (the brief) keeps every parameter and its meaning; -Mode stays optional, Setup.
    assert mode_values() == list(MODES)
    assert tuple(n for n in script_parameters() if n != "Mode") == C1_PARAMETERS
    # The continuation keeps the arguments and replaces only the mode.
    assert "if ($name -ne 'Mode')" in function_source("Get-ScriptArguments")
    # Upgrade is an extension run like Setup: the same lock wait and time budget.
    assert "$wait = if ($Mode -ne 'Resume')" in function_source("Enter-SetupLock")
    assert "$Mode -ne 'Resume' -and ((Get-Date) - $Started)" in function_source("Test-RunBudget")


def test_the_installed_version_is_read_where_install_osserver_reads_it() -> None:
    registry = setuptools_catalogue()["registry"]
    body = function_source("Get-InstalledVersion")
    key = registry["key"].replace("HKLM:", "HKLM:\\")
    assert f"-LiteralPath '{key}'" in body
    assert "'LifeTime'" in body
    assert "'Server'" in body
    assert {"Server", "LifeTime"} <= set(registry["values"])
    # Get-OSServerInfo would write the private key's last characters to the module's log.
    assert "MaskKey" in setuptools_catalogue()["cmdlets"]["Get-OSServerInfo"]["note"]
    assert "Get-OSServerInfo" not in {c.name for c in script_calls(script_source())}
    # LifeTime's installer bundles its Platform Server: the lifetime role compares LifeTime.
    assert (
        "$Product, $TargetVersion = if ($Role -eq 'lifetime') { 'LifeTime', $LifetimeVersion } "
        "else { 'Platform Server', $PlatformVersion }" in script_source().decode()
    )


def test_a_three_part_version_is_met_by_any_of_its_builds_a_four_part_one_by_that_build() -> None:
    # The installed version is cut to as many parts as the request before the comparison, so
    # '11.32.0' is met by 11.32.0.45 and a newer build of it is not pulled in by a re-run.
    body = function_source("Compare-InstalledVersion")
    assert "Select-Object -First ($TargetVersion.Split('.').Count)" in body
    assert ".CompareTo([version]$TargetVersion)" in body


def test_a_downgrade_is_refused_before_anything_is_installed() -> None:
    # Install-OSServer itself refuses a newer installed version (SetupTools source, `upgrade`
    # facts); OutSystems documents no downgrade, a rollback is a restore (upgrade-platform.md).
    facts = " ".join(setuptools_catalogue()["cmdlets"]["Install-OSServer"]["upgrade"]["facts"])
    assert "already installed with an higher version" in facts
    assert "rollback" in upgrade_pages()["upgrade-platform"]["rollback"]
    confirm = function_source("Confirm-TargetVersion")
    assert re.search(
        r"elseif \(\$order -gt 0\) \{ throw \"downgrade refused: \$Product "
        r"\$\(Get-InstalledVersion\) is installed, \$TargetVersion was requested\" \}",
        confirm,
    )
    setup = function_source("Invoke-Setup")
    # Before the data disk, the module, the prerequisites and the installer.
    assert setup.index("Confirm-TargetVersion $State") < setup.index("Initialize-DataDisk")
    assert setup.index("Confirm-TargetVersion $State") < setup.index("foreach ($step in")
    # A throw ends the run with exit 1 and the failure line of contract C1.
    main = script_source().decode()[script_source().decode().rindex("catch {") :]
    assert "$exitCode = 1" in main
    assert "OutSystems setup failed: $(Protect-Text $_.Exception.Message)" in main


def test_upgrade_mode_refuses_a_server_with_nothing_installed_and_setup_installs_it() -> None:
    confirm = function_source("Confirm-TargetVersion")
    assert re.search(
        r"if \(\$null -eq \$order\) \{\s*if \(\$Mode -eq 'Upgrade'\) \{ throw "
        r"\"nothing to upgrade: \$Product is not installed\" \}\s*\$State\['freshInstall'\] = '1'",
        confirm,
    )


def test_the_same_version_installs_nothing_and_reapplies_nothing() -> None:
    # Install-OSServer installs nothing for the same version (SetupTools `upgrade` facts); the
    # script does not even resolve or download it.
    facts = setuptools_catalogue()["cmdlets"]["Install-OSServer"]["upgrade"]["facts"]
    assert "same version: installs nothing unless -Force" in facts
    install = function_source("Install-PlatformServer")
    assert install.index("if ((Compare-InstalledVersion) -eq 0) { return 0 }") < install.index(
        "Resolve-OSVersion"
    )
    assert "-Force" not in [p for c in calls_in("Install-PlatformServer") for p in c.parameters]
    # The configuration, tuning and publications are keyed on the installed server version.
    configuration = function_source("Invoke-ServerConfiguration")
    assert "$inputs = @($Role, $serverVersion," in configuration
    assert "if ($State['configuration'] -eq $fingerprint" in configuration
    assert "if ($State['tuning'] -eq $serverVersion) { return }" in function_source(
        "Set-ServerTuning"
    )
    assert "if ($State['systemComponents'] -ne $serverVersion)" in function_source(
        "Publish-SystemComponents"
    )


def test_an_upgrade_is_the_new_installer_over_the_old_one() -> None:
    # upgrade-platform.md (self-managed): run the new installer's checklist, upgrade option;
    # upgrade-lifetime.md: run the LifeTime installer. Install-OSServer updates an older version
    # in place and ignores -InstallDir (SetupTools `upgrade` facts).
    assert "upgrade option" in upgrade_pages()["upgrade-platform"]["self_managed"]
    assert "installation binary" in upgrade_pages()["upgrade-lifetime"]["self_managed"]
    facts = " ".join(setuptools_catalogue()["cmdlets"]["Install-OSServer"]["upgrade"]["facts"])
    assert "older installed: runs the new installer over it" in facts
    installs = [c for c in calls_in("Install-PlatformServer") if c.name == "Install-OSServer"]
    assert len(installs) == 1
    assert {"InstallDir", "Version", "WithLifetime:"} <= {
        p + (":" if p == "WithLifetime" else "") for p in installs[0].parameters
    } | {"WithLifetime:"}
    assert "-WithLifetime:($Role -eq 'lifetime')" in function_source("Install-PlatformServer")
    # Where the upgrade started is saved before the installer runs, so a reboot or a failure
    # later still knows the run is an upgrade.
    confirm = function_source("Confirm-TargetVersion")
    assert "$State['upgradeFrom'] = Get-InstalledVersion" in confirm
    assert confirm.rstrip().endswith("Save-SetupState $State\n}")


def test_service_center_roles_run_the_environment_upgrade_of_the_configuration_tool() -> None:
    tool = upgrade_pages()["config-tool-ref"]
    # /UpgradeEnvironment: Service Center, System Components, module preparation, and it skips
    # what was done: what "Apply and Exit" confirms on an upgrade (upgrade-platform.md).
    assert "Service Center and the System Components" in tool["UpgradeEnvironment"]
    assert "Skips any of these steps if they were previously executed" in tool["UpgradeEnvironment"]
    assert "/UpgradeEnvironment" in tool["upgrade_from_11"]
    assert len(upgrade_pages()["upgrade-platform"]["apply_and_exit_confirms"]) == 3
    # SetupTools sends /SetupInstall, which the reference says "creates or upgrades" the models.
    assert "Creates or upgrades" in tool["SetupInstall"]
    upgrade = " ".join(setuptools_catalogue()["cmdlets"]["Set-OSServerConfig"]["upgrade"]["facts"])
    assert "/setupinstall (never /UpgradeInstall)" in upgrade
    assert (
        "UpgradeEnvironment"
        in setuptools_catalogue()["cmdlets"]["Set-OSServerConfig"]["dynamic_parameters"]
    )
    configuration = function_source("Invoke-ServerConfiguration")
    assert (
        "$upgrade = $HostsServiceCenter -and ($State['upgradeFrom'] -or ($State['systemComponents']"
        " -and $State['systemComponents'] -ne $serverVersion))" in configuration
    )
    assert "if ($upgrade) { $apply['UpgradeEnvironment'] = $true }" in configuration
    assert configuration.index("$apply['UpgradeEnvironment']") < configuration.index(
        "Set-OSServerConfig @apply"
    )
    # Front-ends only take the new Platform Server: their session rebuild stays skipped.
    assert "$apply['SkipSessionRebuild'] = $true" in configuration


def test_the_environment_upgrade_replaces_the_publication_and_keeps_lifetime_publishable() -> None:
    # Publish-OSPlatformLifetime needs Service Center flagged for the installed version; only
    # some SetupTools versions flag it after -UpgradeEnvironment, Install-OSPlatformServiceCenter
    # flags it and skips when it is (SetupTools `upgrade` facts).
    cmdlets = setuptools_catalogue()["cmdlets"]
    assert "Service Center version mismatch" in " ".join(
        cmdlets["Publish-OSPlatformLifetime"]["upgrade"]["facts"]
    )
    assert "flags it for -InstallServiceCenter only" in " ".join(
        cmdlets["Set-OSServerConfig"]["upgrade"]["facts"]
    )
    assert (
        "skips when Service Center is flagged"
        in cmdlets["Install-OSPlatformServiceCenter"]["upgrade"]["facts"][0]
    )
    configuration = function_source("Invoke-ServerConfiguration")
    after = configuration[configuration.index("Set-OSServerConfig @apply") :]
    assert re.search(
        r"if \(\$upgrade\) \{\s*#[^\n]*\n\s*Install-OSPlatformServiceCenter -ErrorAction Stop \| "
        r"Out-Null\s*\$State\['systemComponents'\] = \$serverVersion\s*\}",
        after,
    )
    # The System Components are not published twice: the publication step sees them done.
    assert after.index("$State['systemComponents'] = $serverVersion") < after.index(
        "Save-SetupState $State"
    )


def test_lifetime_is_republished_after_a_lifetime_upgrade() -> None:
    # Publish-OSPlatformLifetime publishes Lifetime.osp when the published LifeTime version is
    # lower than the installed one (SetupTools `upgrade` facts); the script asks whenever the
    # requested LifeTime version changed.
    facts = setuptools_catalogue()["cmdlets"]["Publish-OSPlatformLifetime"]["upgrade"]["facts"]
    assert any("Lifetime.osp only when the published LifeTime version" in f for f in facts)
    publish = function_source("Publish-Lifetime")
    assert "$Role -eq 'lifetime' -and $State['lifetimePublished'] -ne $LifetimeVersion" in publish
    assert step_order().index("Invoke-ServerConfiguration") < step_order().index(
        "Publish-SystemComponents"
    )
    assert "'LifeTime' { Publish-Lifetime $State; 0 }" in function_source("Invoke-Setup")


def test_an_upgrade_resumes_after_a_reboot_and_is_reported_by_the_extension_run() -> None:
    # The installer's 3010/3011 is RebootNeeded (SetupTools `upgrade` facts) and becomes the
    # continuation of contract C1; `upgradeFrom` survives it and is dropped only when an
    # extension run (not the continuation task) reports the outcome.
    facts = setuptools_catalogue()["cmdlets"]["Install-OSServer"]["upgrade"]["facts"]
    assert any("3010 or 3011" in f and "RebootNeeded true" in f for f in facts)
    assert "if ($result.RebootNeeded) { return (Request-Continuation $State" in function_source(
        "Install-PlatformServer"
    )
    setup = function_source("Invoke-Setup")
    assert (
        "if ($Mode -ne 'Resume') { $State.Remove('upgradeFrom'); $State.Remove('freshInstall') }"
        in setup
    )
    # The environment upgrade may take longer than a first configuration: a larger budget.
    assert "'configuration' = $(if ($State['upgradeFrom']) { 45 } else { 30 })" in setup
    assert "'LifeTime' = 30; 'tuning' = $HealthWaitMinutes + 5 }" in setup


def test_an_upgraded_front_end_runs_its_deployment_service_and_answers_its_probe() -> None:
    # balanced-upgrade-highly-loaded-farms.md step 7: the loaded front-ends' Deployment Service is
    # Automatic and started after their upgrade; the service name is SetupTools' ($OSServices).
    step7 = next(s for s in upgrade_pages()["balanced-upgrade"]["steps"] if s["step"] == 7)
    assert "Automatic" in step7["detail"]
    assert "OutSystems Deployment Service" in setuptools_catalogue()["services"]["names"]
    assert "$DeploymentService = 'OutSystems Deployment Service'" in script_source().decode()
    complete = function_source("Complete-Upgrade")
    assert "if (-not $State['upgradeFrom']) { return }" in complete
    assert "if ($IsFrontend) { Enable-OSService $DeploymentService }" in complete
    # The health gate is the gateways' probe path, asked on the server itself: the gateway does
    # not probe a drained server (the Drain rule refuses its subnet, not localhost).
    from outsystems.topology import HEALTH_PROBE_PATH

    assert f"$HealthPath = '{HEALTH_PROBE_PATH}'" in script_source().decode()
    assert 'Invoke-RestMethod -Uri "http://localhost$HealthPath"' in complete
    assert 'throw "health check: $HealthPath failed' in complete
    assert "Complete-Upgrade $State; 0 }" in function_source("Invoke-Setup")


def test_a_service_is_made_automatic_before_it_is_started() -> None:
    # Microsoft's Start-Service reference (tests/oracles/setuptools-powershell-builtins.json):
    # "You cannot start the services that have a start type of Disabled".
    assert "start type of Disabled" in builtins_catalogue()["commands"]["Start-Service"]["source"]
    body = function_source("Enable-OSService")
    assert body.index("Set-Service -Name $Name -StartupType Automatic") < body.index(
        "Start-Service -Name $Name"
    )


def test_front_end_modes_do_the_servers_part_of_the_balanced_upgrade() -> None:
    pages = upgrade_pages()
    service = function_source("Set-FrontendService")
    assert "if (-not $IsFrontend) { throw" in service
    # Drain: what the scale-in watcher does to leave the gateway (its probe fails).
    assert "'Drain' { Block-GatewayTraffic; 'drained' }" in service
    # Hold: balanced-upgrade step 2 (Service Center's Disable, which has no unattended form) as
    # balanced-app-deploy.md step 3 does it on the server.
    assert (
        "Stop and disable the **OutSystems Deployment Service**"
        in pages["balanced-app-deploy"]["disable_deployment_on_loaded"]
    )
    hold = service[service.index("'HoldDeployments'") : service.index("'Serve'")]
    assert "Stop-Service -Name $DeploymentService -Force" in hold
    assert "Set-Service -Name $DeploymentService -StartupType Disabled" in hold
    # Serve: traffic back, deployments back (balanced-app-deploy.md step 8).
    assert (
        "Start the OutSystems Deployment Services"
        in pages["balanced-app-deploy"]["start_deployment_on_loaded"]
    )
    serve = service[service.index("'Serve'") :]
    assert "Get-NetFirewallRule -Name $DrainRule -ErrorAction SilentlyContinue | " in serve
    assert "Remove-NetFirewallRule" in serve
    assert "Enable-OSService $DeploymentService" in serve
    # Each case ends with the state its last line names.
    starts = [service.index(f"'{mode}' {{") for mode in FRONT_END_STATES] + [len(service)]
    for (mode, state), start, end in zip(
        FRONT_END_STATES.items(), starts[:-1], starts[1:], strict=True
    ):
        assert re.sub(r"[\s}]+$", "", service[start:end]).endswith(f"'{state}'"), mode
    # The setup keeps the drain rule (only Serve removes it).
    assert "$_.Name -ne $DrainRule" in function_source("Set-FirewallRules")


def test_front_end_modes_are_quick_secret_free_and_end_with_their_line() -> None:
    # Run Command returns the last 4,096 bytes of output and runs one script at a time for at
    # most 90 minutes (Microsoft's Run Command page): no lock wait, no preflight, one line.
    assert "Output is limited to last 4096 bytes" in upgrade_pages()["run-command"]["restrictions"]
    source = script_source().decode()
    branch = source[source.index("if ($Mode -in 'Drain', 'HoldDeployments', 'Serve') {") :]
    branch = branch[: branch.index("\n}\n") + 2]
    assert source.index(branch) < source.index("$lock = Enter-SetupLock")
    assert "Invoke-Preflight" not in branch
    assert '"OutSystems front-end $(@(Set-FrontendService)[-1])", 0' in branch
    assert '"OutSystems setup failed: $($_.Exception.Message) (line ' in branch
    assert "Write-Host $line; [Console]::Error.WriteLine($line); exit $code" in branch
    # No secret is read in these modes: nothing to redact.
    for name in SECRET_VARIABLES:
        assert f"${name}" not in function_source("Set-FrontendService")


def test_the_outcome_is_the_last_line_for_every_result() -> None:
    setup = function_source("Invoke-Setup")
    assert (
        '$script:Outcome = "$(if ($from -and $from -ne $now) { "upgraded $Product $from to" } '
        'elseif ($State[\'freshInstall\']) { "installed $Product" } else { "already at $Product" '
        '}) $now (role $Role)"' in setup
    )
    source = script_source().decode()
    assert (
        '$lastLine = if ($exitCode -eq 3010) { "OutSystems setup not finished: $Pending; apply the '
        'extension again later" } else { "OutSystems setup succeeded: $Outcome" }' in source
    )
    continuation = function_source("Request-Continuation")
    assert (
        "$script:Pending = \"$(if ($Reboot) { 'reboot pending' } else { 'continuing in the "
        "background' }) ($Reason)\"" in continuation
    )
    assert "$script:Pending = 'reboot pending (requested, not yet done)'" in setup


@pytest.mark.parametrize("outcome", sorted(LAST_LINES))
def test_docs_upgrades_gives_the_orchestration_the_same_last_lines(outcome: str) -> None:
    assert LAST_LINES[outcome] in UPGRADES_DOC.read_text(encoding="utf-8")


def test_docs_upgrades_lists_every_mode_and_the_sources() -> None:
    doc = UPGRADES_DOC.read_text(encoding="utf-8")
    for mode in MODES:
        assert f"`{mode}`" in doc, mode
    for page in upgrade_pages().values():
        assert page["source"].split(" @ ")[0].split(" ")[-1] in doc

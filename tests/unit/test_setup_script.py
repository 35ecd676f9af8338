"""The OutSystems setup script, read with a real PowerShell grammar (tree-sitter-powershell).

PowerShell itself is not available here, so these tests check what a parse tree can show: the
script is valid PowerShell, its param() block is exactly what the topology passes, each role's
steps and ports are there, and no secret is written to the transcript or sent to a logging cmdlet.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, get_args

import pytest
import tree_sitter
import tree_sitter_powershell

from outsystems.topology import SETUP_SCRIPT_PARAMETERS, Role

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "infra" / "scripts" / "Install-OutSystems.ps1"
POWERSHELL_FILES = sorted((ROOT / "infra").rglob("*.ps1"))

SECRET_PARAMETERS = ("DatabaseAdminPassword", "PrivateKey")
# The Custom Script Extension hands the script over through the VM's userData: 64 KiB of base64.
USER_DATA_LIMIT = 64 * 1024


@cache
def parser() -> tree_sitter.Parser:
    return tree_sitter.Parser(tree_sitter.Language(tree_sitter_powershell.language()))


def parse(source: bytes) -> tree_sitter.Tree:
    return parser().parse(source)


@cache
def script_source() -> bytes:
    return SCRIPT.read_bytes()


def text(node: tree_sitter.Node) -> str:
    return node.text.decode("utf-8") if node.text is not None else ""


def walk(node: tree_sitter.Node) -> Iterator[tree_sitter.Node]:
    yield node
    for child in node.children:
        yield from walk(child)


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
        parameters[name] = bool(re.search(r"Mandatory\s*=\s*\$true", attributes, re.I))
    return parameters


def commands() -> list[tuple[str, str]]:
    """(command name, full text) of every command invocation in the script."""
    found = []
    for node in walk(parse(script_source()).root_node):
        if node.type == "command":
            name = node.child_by_field_name("command_name")
            if name is not None:
                found.append((text(name), text(node)))
    return found


def command_names() -> set[str]:
    return {name.lower() for name, _ in commands()}


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


def test_every_topology_parameter_is_declared_and_every_mandatory_one_is_passed() -> None:
    declared = script_parameters()
    passed = set(SETUP_SCRIPT_PARAMETERS)
    assert passed - set(declared) == set(), "the topology passes parameters the script lacks"
    mandatory = {name for name, required in declared.items() if required}
    assert mandatory - passed == set(), "the script requires parameters the topology never passes"
    # The topology lists them in the order of the param() block.
    assert tuple(name for name in declared if name in passed) == SETUP_SCRIPT_PARAMETERS


def test_roles_are_the_four_the_topology_uses() -> None:
    match = re.search(rb"\[ValidateSet\(([^)]*)\)\]\s*\[string\]\$Role", script_source())
    assert match
    roles = set(re.findall(r"'([a-z]+)'", match.group(1).decode()))
    assert roles == set(get_args(Role))


def test_script_fits_in_vm_user_data() -> None:
    assert len(base64.b64encode(script_source())) <= USER_DATA_LIMIT


def test_uses_the_setup_tools_module_for_every_step() -> None:
    names = command_names()
    for cmdlet in (
        "Install-Module",
        "Import-Module",
        "Install-OSServerPreReqs",
        "Install-OSServer",
        "Install-OSRabbitMQ",
        "New-OSServerConfig",
        "Set-OSServerConfig",
        "Install-OSPlatformServiceCenter",
        "Publish-OSPlatformSystemComponents",
        "Publish-OSPlatformLifetime",
        "Set-OSServerPerformanceTunning",
        "Get-OSServerVersion",
        "New-NetFirewallRule",
        "Start-Transcript",
        "Stop-Transcript",
    ):
        assert cmdlet.lower() in names, f"the script never runs {cmdlet}"


def test_front_ends_skip_rabbitmq_system_components_and_session_rebuild() -> None:
    source = script_source().decode()
    assert re.search(
        r"function Install-CacheInvalidationService \{\s*if \(\$IsFrontend\) \{ return \}", source
    )
    assert re.search(
        r"function Publish-SystemComponents\(.*?\) \{\s*"
        r"if \(-not \$HostsServiceCenter\) \{ return \}",
        source,
    )
    assert "$HostsServiceCenter = -not $IsFrontend" in source
    assert re.search(
        r"if \(\$IsFrontend\) \{\s*# .*\n\s*\$apply\['SkipSessionRebuild'\] = \$true", source
    )
    assert "$arguments['WithLifetime'] = $true" in source


def test_firewall_opens_the_platform_ports() -> None:
    ports = {int(p) for p in re.findall(rb"Port = (\d+);", script_source())}
    assert ports == {80, 443, 12000, 12001, 5672}


def test_private_key_is_written_before_the_configuration_is_applied() -> None:
    source = script_source().decode()
    body = source[source.index("function Invoke-ServerConfiguration") :]
    assert body.index("Set-PrivateKeyFile $osInstallDir") < body.index("Set-OSServerConfig @apply")


def test_secrets_never_reach_output_logging_or_verbose_streams() -> None:
    secret_refs = re.compile(
        r"\$(" + "|".join(SECRET_PARAMETERS) + r")\b|Get-DerivedSecret|\$secret\b", re.I
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
    }
    for name, full in commands():
        if name.lower() in writers:
            assert not secret_refs.search(full), f"secret reaches {name}: {full[:80]}"
        assert not re.search(r"(?i)\s-Verbose\b", full), f"-Verbose would log values: {full[:80]}"
        if name.lower() == "set-osserverconfig":
            # Set-OSServerConfig logs the values it sets; secret settings bypass it.
            assert not secret_refs.search(full), full
            assert "Password" not in full, full
    source = script_source().decode()
    assert "$VerbosePreference = 'SilentlyContinue'" in source
    assert "Protect-LogFile $logPath" in source
    assert source.index("Stop-Transcript") < source.index("Protect-LogFile $logPath")
    assert source.index("Protect-LogFile $logPath") < source.index("Copy-LogToFileShare $logPath")


def test_failure_message_shows_only_the_exception_message() -> None:
    """An error record's full text can echo bound parameters; only its message is printed."""
    source = script_source().decode()
    handler = source[source.rindex("catch {") :]
    assert "$_.Exception.Message" in handler
    assert not re.search(r"\$_\s*\)|\"\$_\"|\$\(\$_\)", handler)


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

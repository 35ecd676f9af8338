"""The OutSystems setup script, read with a real PowerShell grammar (tree-sitter-powershell).

PowerShell itself is not available here, so these tests check what a parse tree can show: the
script is valid PowerShell, its param() block is exactly what the topology passes, each role's
steps and ports are there, and no secret is written to the transcript or sent to a logging cmdlet.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import get_args

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

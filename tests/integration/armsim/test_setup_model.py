"""The OutSystems server model: how a Custom Script Extension running the setup script ends.

Oracles:
- the setup script itself, `infra/scripts/Install-OutSystems.ps1` (the one the servers run, sent
  as their `userData`): every message, its order, the line it is thrown from and the controller
  wait are read out of it here, so the model cannot drift from it;
- the Custom Script Extension's failure as ARM relays it, quoting the script's standard error
  only (Microsoft Learn, AKS troubleshooting article "CniDownloadTimeoutVMExtensionError",
  MicrosoftDocs/azure-docs-related; see `localdev/armsim/extensions.py`);
- IMDS answers 400 for an identity not assigned to the VM (Azure/azure-sdk-for-net,
  sdk/identity/Azure.Identity/src/ImdsManagedIdentitySource.cs @ 01d3e1be);
- Azure Files over OAuth needs `writeFileBackupSemantics` besides the files' data actions
  (MicrosoftDocs/azure-docs, articles/storage/files/authorize-oauth-rest.md @ 033b92aa): Storage
  File Data Privileged Contributor has it, SMB Share Contributor does not;
- Azure SQL errors 40914 and 40615 (MicrosoftDocs/sql-docs,
  azure-sql/database/vnet-service-endpoint-rule-overview.md @ 07cabaea);
- what is reachable: `outsystems.network.reachability`, whose own tests use Microsoft's NSG,
  service endpoint and default outbound access documentation as oracles.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from localdev.armsim import setup_model
from localdev.armsim.server import SimulatorServer
from tests.support import armsim_bodies as bodies
from tests.support.armsim_clients import (
    AUTHORIZATION_API,
    COMPUTE_API,
    IDENTITY_API,
    KEY_VAULT_API,
    NETWORK_API,
    SQL_API,
    STORAGE_API,
    SUBSCRIPTION,
    Answer,
    Raw,
)

SCRIPT_PATH = Path(__file__).resolve().parents[3] / "infra" / "scripts" / "Install-OutSystems.ps1"
SCRIPT = SCRIPT_PATH.read_text(encoding="utf-8-sig")
G = bodies.GROUP
GROUP_ID = f"/subscriptions/{SUBSCRIPTION}/resourceGroups/{G}"
NET = f"{GROUP_ID}/providers/Microsoft.Network"
VNET = f"{NET}/virtualNetworks/vnet"
SUBNET = f"{VNET}/subnets/env"
NSG = f"{NET}/networkSecurityGroups/env-nsg"
NAT = f"{NET}/natGateways/natgw"
NAT_IP = f"{NET}/publicIPAddresses/natgw-pip"
IDENTITY = f"{GROUP_ID}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/env-id"
VAULT_NAME = "sim-kv-setup"
VAULT = f"{GROUP_ID}/providers/Microsoft.KeyVault/vaults/{VAULT_NAME}"
VAULT_URI = f"https://{VAULT_NAME}.vault.azure.net/"
SECRETS = {"db": "env-sql-admin-password", "key": "env-private-key", "admin": "os-admin-password"}
STORAGE_NAME = "simsetuplogs"
STORAGE = f"{GROUP_ID}/providers/Microsoft.Storage/storageAccounts/{STORAGE_NAME}"
SHARE = f"{STORAGE}/fileServices/default/shares/setup"
SQL_NAME = "sim-env-sql"
SQL = f"{GROUP_ID}/providers/Microsoft.Sql/servers/{SQL_NAME}"
SQL_FQDN = f"{SQL_NAME}.database.windows.net"
COMPUTE = f"{GROUP_ID}/providers/Microsoft.Compute"
RA = "/providers/Microsoft.Authorization/roleAssignments"
SMB_SHARE_CONTRIBUTOR = "0c867c2a-1d8c-454a-a3db-ab2ea1bdc8bb"
CONTROLLER_IP = "10.0.0.4"


# --- the script's own texts ---------------------------------------------------------------------


def _literal_at(text: str, start: int) -> str:
    """The PowerShell string literal opening at `start` (a double-quoted one may hold `$(...)`
    subexpressions with quotes of their own; a single-quoted one doubles its quotes)."""
    quote = text[start]
    depth, i = 0, start + 1
    while True:
        if quote == '"' and text.startswith("$(", i):
            depth, i = depth + 1, i + 2
            continue
        char = text[i]
        if depth and char == "(":
            depth += 1
        elif depth and char == ")":
            depth -= 1
        elif not depth and char == quote:
            if quote == "'" and text.startswith("''", i):
                i += 2
                continue
            return text[start + 1 : i]
        i += 1


def script_string(fragment: str) -> str:
    """The script's string literal containing `fragment` (the first literal of its line that
    does)."""
    at = SCRIPT.index(fragment)
    line_start = SCRIPT.rfind("\n", 0, at) + 1
    for candidate in range(line_start, at):
        if SCRIPT[candidate] in "\"'":
            literal = _literal_at(SCRIPT, candidate)
            if fragment in literal:
                return literal
    raise AssertionError(f"no string literal holds {fragment!r}")


_SUBEXPRESSION = re.compile(r"\$\((?:[^()]|\((?:[^()]|\([^()]*\))*\))*\)")
_VARIABLE = re.compile(r"\$\w+")


def shape_of_script(literal: str) -> str:
    """A script string with every interpolation replaced by `{}`."""
    return _VARIABLE.sub("{}", _SUBEXPRESSION.sub("{}", literal))


def shape_of_model(template: str) -> str:
    return re.sub(r"\{\w+\}", "{}", template)


def line_of(fragment: str) -> int:
    return SCRIPT[: SCRIPT.index(fragment)].count("\n") + 1


@pytest.mark.parametrize(
    ("template", "fragment"),
    [
        (setup_model.FAILED, "OutSystems setup failed: $("),
        (setup_model.PREFLIGHT, "Preflight: $($missing"),
        (setup_model.NO_TOKEN, "no managed identity token from IMDS for "),
        (setup_model.SECRET_NOT_READABLE, "is not readable in $KeyVaultUri"),
        (setup_model.SHARE_NOT_WRITABLE, "is not writable with the managed identity"),
        (setup_model.SQL_UNREACHABLE, "is not reachable on TCP 1433"),
        (setup_model.SQL_LOGIN_FAILED, "SQL login $DatabaseAdminUser"),
        (setup_model.GALLERY_UNREACHABLE, "the PowerShell Gallery (www.powershellgallery"),
        (setup_model.CONTROLLER_SILENT, "did not answer on TCP 12000 and 5672"),
        (setup_model.SUCCEEDED, "OutSystems setup succeeded: $Outcome"),
        (setup_model.DOWNGRADE_REFUSED, "downgrade refused: $Product"),
        (setup_model.HEALTH_GATE_FAILED, "health check: $HealthPath"),
    ],
)
def test_the_models_messages_are_the_scripts(template: str, fragment: str) -> None:
    assert shape_of_model(template) == shape_of_script(script_string(fragment))


def test_the_models_details_are_the_scripts() -> None:
    # The preflight's findings are joined with "; "; the share's detail is the HTTP status or
    # the token failure; the wait lasts $ControllerWaitMinutes; tokens are for these resources.
    assert "$($missing -join '; ')" in script_string("Preflight: $($missing")
    assert setup_model.PREFLIGHT_SEPARATOR == "; "
    assert "'no managed identity token*') { $_.Exception.Message } else { \"HTTP $(" in SCRIPT
    minutes = re.search(r"^\$ControllerWaitMinutes = (\d+)$", SCRIPT, re.MULTILINE)
    assert minutes is not None
    assert int(minutes.group(1)) == setup_model.CONTROLLER_WAIT_MINUTES
    assert f"Get-AccessToken '{setup_model.VAULT_RESOURCE}'" in SCRIPT
    assert f"Get-AccessToken '{setup_model.STORAGE_RESOURCE}'" in SCRIPT
    # Front-ends never read the admin password.
    assert "$HostsServiceCenter = -not $IsFrontend" in SCRIPT
    assert "if ($HostsServiceCenter) { $names += , @('admin', $AdminPasswordSecret) }" in SCRIPT
    # The last line goes to standard output (the host) and to standard error, which ARM quotes.
    last = "if ($lastLine) { Write-Host $lastLine; [Console]::Error.WriteLine($lastLine) }"
    assert re.search(f"^{re.escape(last)}$", SCRIPT, re.MULTILINE)


def test_the_preflight_checks_in_the_order_the_model_reports() -> None:
    body = SCRIPT[SCRIPT.index("function Invoke-Preflight") : SCRIPT.index("function Initialize")]
    steps = [
        "Get-AccessToken 'https://vault.azure.net'",
        "('db', $DatabaseAdminPasswordSecret), ('key', $PrivateKeySecret)",
        "@('admin', $AdminPasswordSecret)",
        "$headers = Get-ShareHeaders",
        "Test-TcpPort $DatabaseServer 1433",
        "Invoke-SqlScalar $PlatformCatalog",
        "Test-TcpPort 'www.powershellgallery.com' 443",
        'throw "Preflight:',
    ]
    positions = [body.index(step) for step in steps]
    assert positions == sorted(positions)


def test_the_delivered_script_says_where_it_throws() -> None:
    parsed = setup_model.Script.parse(SCRIPT)
    assert parsed.preflight_line == line_of('throw "Preflight: $($missing')
    assert parsed.controller_line == line_of('throw "the controller $ControllerAddress')
    assert parsed.preflight_line > 0
    assert parsed.controller_line > 0


def test_only_calls_of_the_setup_script_are_recognised() -> None:
    assert setup_model.parse_command(command()) == arguments()
    assert setup_model.parse_command("powershell -File setup.ps1 -Role 'frontend'") is None
    assert setup_model.parse_command(command(Role="webserver")) is None
    assert setup_model.parse_command(command().replace(" -FileShare 'setup'", "")) is None
    quoted = setup_model.parse_command(command(DatabaseAdminUser="o'brien"))
    assert quoted is not None
    assert quoted["DatabaseAdminUser"] == "o'brien"


# --- a server and everything its setup needs ----------------------------------------------------


def arguments(**overrides: str) -> dict[str, str]:
    values = {
        "Role": "standalone",
        "PlatformVersion": "11.32.0",
        "LifetimeVersion": "11.24.0",
        "DatabaseServer": SQL_FQDN,
        "PlatformCatalog": "outsystems",
        "SessionCatalog": "session",
        "LoggingCatalog": "logging",
        "DatabaseAdminUser": "sqladmin",
        "ControllerAddress": CONTROLLER_IP,
        "KeyVaultUri": VAULT_URI,
        "DatabaseAdminPasswordSecret": SECRETS["db"],
        "PrivateKeySecret": SECRETS["key"],
        "AdminPasswordSecret": SECRETS["admin"],
        "IdentityResourceId": IDENTITY,
        "StorageAccount": STORAGE_NAME,
        "FileShare": "setup",
        "TrustedProxyAddresses": "10.0.9.0/24",
    }
    return values | overrides


def command(**overrides: str) -> str:
    """The command contract C1 describes (what the topology sends)."""
    invocation = " ".join(
        f"-{name} '{value.replace(chr(39), chr(39) * 2)}'"
        for name, value in arguments(**overrides).items()
    )
    return (
        'powershell.exe -NoProfile -NonInteractive -ExecutionPolicy Bypass -Command "'
        "$ErrorActionPreference = 'Stop'; $userData = Invoke-RestMethod -Headers "
        "@{Metadata = 'true'} -Uri 'http://169.254.169.254/metadata/instance/compute/userData"
        "?api-version=2021-01-01&format=text'; [IO.File]::WriteAllBytes('C:\\OutSystems\\"
        "Install-OutSystems.ps1', [Convert]::FromBase64String($userData)); & 'C:\\OutSystems\\"
        f"Install-OutSystems.ps1' {invocation}; exit $LASTEXITCODE\""
    )


def setup_extension(run: int = 1, **overrides: str) -> dict[str, Any]:
    return {
        "location": bodies.LOCATION,
        "properties": {
            "publisher": "Microsoft.Compute",
            "type": "CustomScriptExtension",
            "typeHandlerVersion": "1.10",
            "settings": {"commandToExecute": command(**overrides), "timestamp": run},
        },
    }


def user_data(script: str = SCRIPT) -> str:
    return base64.b64encode(script.encode("utf-8")).decode("ascii")


@dataclass
class World:
    """A group with what one server's setup needs; tests take pieces away."""

    raw: Raw
    sim: SimulatorServer
    principal: str = ""
    grants: dict[str, str] = field(default_factory=dict)
    runs: int = 0

    def build(self) -> World:
        raw = self.raw
        raw.send("PUT", GROUP_ID, {"location": bodies.LOCATION})
        ok(raw.put(NAT_IP, bodies.public_ip(), api=NETWORK_API))
        ok(raw.put(NAT, bodies.nat_gateway([NAT_IP]), api=NETWORK_API))
        ok(raw.put(NSG, {"location": bodies.LOCATION}, api=NETWORK_API))
        vnet = bodies.vnet({"env": "10.0.0.0/24", "other": "10.0.1.0/24"})
        for subnet in vnet["properties"]["subnets"]:
            subnet["properties"] |= {
                "natGateway": {"id": NAT},
                "networkSecurityGroup": {"id": NSG},
                "defaultOutboundAccess": False,
            }
        ok(raw.put(VNET, vnet, api=NETWORK_API))
        identity = ok(raw.put(IDENTITY, bodies.identity(), api=IDENTITY_API))
        self.principal = identity.body["properties"]["principalId"]
        ok(raw.put(VAULT, bodies.key_vault(self.sim.config.tenant_id), api=KEY_VAULT_API))
        for secret in SECRETS.values():
            ok(raw.put(f"{VAULT}/secrets/{secret}", bodies.secret("x"), api=KEY_VAULT_API))
            self.grants[secret] = self.grant(
                f"{VAULT}/secrets/{secret}", bodies.KEY_VAULT_SECRETS_USER
            )
        ok(raw.put(STORAGE, bodies.storage_account(), api=STORAGE_API))
        ok(raw.put(SHARE, {"properties": {"shareQuota": 100}}, api=STORAGE_API))
        self.grants["share"] = self.grant(STORAGE, bodies.STORAGE_FILE_DATA_PRIVILEGED_CONTRIBUTOR)
        ok(raw.put(SQL, bodies.sql_server(), api=SQL_API))
        rule = {"properties": {"virtualNetworkSubnetId": SUBNET}}
        ok(raw.put(f"{SQL}/virtualNetworkRules/env", rule, api=SQL_API))
        return self

    def grant(self, scope: str, role: str, principal: str | None = None) -> str:
        name = f"{scope}{RA}/{_guid(scope, role, principal or self.principal)}"
        body = bodies.role_assignment(SUBSCRIPTION, role, principal or self.principal)
        assert self.raw.send("PUT", name, body, api=AUTHORIZATION_API).status == 201
        return name

    def revoke(self, what: str) -> None:
        assert self.raw.send("DELETE", self.grants[what], api=AUTHORIZATION_API).status == 200

    def vm(self, name: str = "vm1", ip: str = CONTROLLER_IP, script: str = SCRIPT) -> str:
        nic = f"{NET}/networkInterfaces/{name}-nic"
        ok(self.raw.put(nic, bodies.nic(SUBNET, ip), api=NETWORK_API))
        body = bodies.vm(nic, computer_name=name)
        body["identity"] = {"type": "UserAssigned", "userAssignedIdentities": {IDENTITY: {}}}
        body["properties"]["userData"] = user_data(script)
        vm = f"{COMPUTE}/virtualMachines/{name}"
        ok(self.raw.put(vm, body, api=COMPUTE_API))
        return vm

    def setup(self, vm: str = f"{COMPUTE}/virtualMachines/vm1", **overrides: str) -> Answer:
        """Run the setup extension (again: a new timestamp) and return its end."""
        self.runs += 1
        extension = f"{vm}/extensions/setup"
        return self.raw.put(extension, setup_extension(self.runs, **overrides), api=COMPUTE_API)

    def nsg_rule(self, name: str, priority: int, direction: str, **rule: Any) -> None:
        nsg = ok(self.raw.send("GET", NSG, api=NETWORK_API))
        rules = nsg.body["properties"].get("securityRules") or []
        properties = {
            "priority": priority,
            "direction": direction,
            "access": "Deny",
            "protocol": "Tcp",
            "sourceAddressPrefix": "*",
            "sourcePortRange": "*",
            "destinationAddressPrefix": "*",
            "destinationPortRange": "*",
        } | rule
        rules = [*rules, {"name": name, "properties": properties}]
        body = {"location": bodies.LOCATION, "properties": {"securityRules": rules}}
        ok(self.raw.put(NSG, body, api=NETWORK_API))

    def subnet(self, change: dict[str, Any]) -> None:
        subnet = ok(self.raw.send("GET", SUBNET, api=NETWORK_API)).body
        properties = {
            k: v
            for k, v in subnet["properties"].items()
            if k not in {"provisioningState", "ipConfigurations"}
        }
        for name, value in change.items():
            if value is None:
                properties.pop(name, None)
            else:
                properties[name] = value
        ok(self.raw.put(SUBNET, {"properties": properties}, api=NETWORK_API))


def _guid(*parts: str) -> str:
    import uuid

    return str(uuid.uuid5(uuid.NAMESPACE_URL, "#".join(parts)))


def ok(answer: Answer) -> Answer:
    assert answer.status < 400, (answer.status, answer.body)
    return answer


@pytest.fixture
def world(raw: Raw, sim: SimulatorServer) -> World:
    return World(raw, sim).build()


def last_line(message: str) -> str:
    return setup_model.FAILED.format(message=message, line=line_of('throw "Preflight: $($'))


def preflight(*findings: str) -> str:
    return last_line("Preflight: " + "; ".join(findings))


def stdout_of(raw: Raw, extension: str) -> str:
    view = ok(raw.send("GET", f"{extension}?$expand=instanceView&api-version={COMPUTE_API}"))
    substatuses = view.body["properties"]["instanceView"]["substatuses"]
    found = [s for s in substatuses if s["code"].startswith("ComponentStatus/StdOut/")]
    return str(found[0]["message"])


def failure(name: str, code: int, stderr: str = "") -> str:
    """ARM's VMExtensionProvisioningError message for a failed Windows script."""
    output = f" The command had an error output of: '{stderr}'" if stderr else ""
    return (
        f"VM has reported a failure when processing extension '{name}' (publisher "
        "'Microsoft.Compute' and type 'CustomScriptExtension'). Error message: 'Command "
        f"execution finished, but failed because it returned a non-zero exit code of: '{code}'."
        f"{output} For more information, check the instance view by executing Get-AzVmssVm or "
        "Get-AzVm (https://aka.ms/GetAzVm). These commands can be executed using CloudShell "
        "(https://aka.ms/CloudShell)'. More information on troubleshooting is available at "
        "https://aka.ms/VMExtensionCSEWindowsTroubleshoot."
    )


VM1 = f"{COMPUTE}/virtualMachines/vm1"
EXTENSION = f"{VM1}/extensions/setup"


def secret_finding(what: str, status: int) -> str:
    return f"Key Vault secret '{SECRETS[what]}' is not readable in {VAULT_URI} (HTTP {status})"


def share_finding(detail: str) -> str:
    return f"file share {STORAGE_NAME}/setup is not writable with the managed identity ({detail})"


def token_finding(resource: str) -> str:
    return (
        f"no managed identity token from IMDS for {resource} (identity {IDENTITY}): "
        "The remote server returned an error: (400) Bad Request."
    )


GALLERY = "the PowerShell Gallery (www.powershellgallery.com:443) is not reachable"


# --- the outcomes -------------------------------------------------------------------------------


def test_a_server_with_everything_it_needs_is_set_up(world: World, raw: Raw) -> None:
    world.vm()
    done = world.setup()
    assert done.status == 200, done.body
    assert done.body["properties"]["provisioningState"] == "Succeeded"
    assert stdout_of(raw, EXTENSION) == (
        "OutSystems setup succeeded: installed Platform Server 11.32.0 (role standalone)"
    )


# --- versions: the upgrade path (the script's Confirm-TargetVersion and Complete-Upgrade) -------


def test_the_outcome_lines_are_the_scripts() -> None:
    # `$script:Outcome = "$(if (...) { "upgraded $Product $from to" } elseif (...) { "installed
    # $Product" } else { "already at $Product" }) $now (role $Role)"`, and the health gate's path
    # and wait.
    outcome = script_string('"upgraded $Product $from to"')
    assert "upgraded $Product $from to" in outcome
    assert '"installed $Product"' in outcome
    assert '"already at $Product"' in outcome
    assert outcome.endswith(" $now (role $Role)")
    assert setup_model.UPGRADED == "upgraded {product} {old} to {new} (role {role})"
    assert setup_model.INSTALLED == "installed {product} {version} (role {role})"
    assert setup_model.ALREADY_AT == "already at {product} {version} (role {role})"
    # (A literal the line's earlier 'Upgrade' hides from `script_string`.)
    assert 'throw "nothing to upgrade: $Product is not installed"' in SCRIPT
    assert setup_model.NOTHING_TO_UPGRADE == "nothing to upgrade: {product} is not installed"
    assert f"$HealthPath = '{setup_model.HEALTH_PATH}'" in SCRIPT
    assert f"$HealthWaitMinutes = {setup_model.HEALTH_WAIT_MINUTES}" in SCRIPT


def test_a_server_is_upgraded_in_place_never_downgraded(world: World, raw: Raw) -> None:
    world.vm()
    ok(world.setup())
    ok(world.setup())
    assert stdout_of(raw, EXTENSION) == (
        "OutSystems setup succeeded: already at Platform Server 11.32.0 (role standalone)"
    )
    ok(world.setup(PlatformVersion="11.33.0"))
    assert stdout_of(raw, EXTENSION) == (
        "OutSystems setup succeeded: upgraded Platform Server 11.32.0 to 11.33.0 (role standalone)"
    )
    refused = world.setup(PlatformVersion="11.32.0")
    assert refused.status == 400
    line = line_of('throw "downgrade refused: ')
    last = (
        "OutSystems setup failed: downgrade refused: Platform Server 11.33.0 is installed, "
        f"11.32.0 was requested (line {line})"
    )
    assert stdout_of(raw, EXTENSION) == last
    assert refused.message == failure("setup", 1, last)


def test_installed_version_reads_the_version_the_script_last_installed(
    world: World, sim: SimulatorServer
) -> None:
    vm = world.vm()

    def installed() -> str | None:
        machine = sim.engine.store.get(vm)
        assert machine is not None
        return setup_model.installed_version(machine)

    assert installed() is None
    ok(world.setup())
    assert installed() == "11.32.0"
    ok(world.setup(PlatformVersion="11.33.0"))
    assert installed() == "11.33.0"
    assert world.setup(PlatformVersion="11.32.0").status == 400  # the downgrade refused
    assert installed() == "11.33.0"


def test_lifetime_is_versioned_by_its_own_parameter(world: World, raw: Raw) -> None:
    world.vm()
    ok(world.setup(Role="lifetime"))
    ok(world.setup(Role="lifetime", LifetimeVersion="11.25.0"))
    assert stdout_of(raw, EXTENSION) == (
        "OutSystems setup succeeded: upgraded LifeTime 11.24.0 to 11.25.0 (role lifetime)"
    )


def test_mode_upgrade_refuses_an_empty_server(world: World, raw: Raw) -> None:
    world.vm()
    refused = world.setup(Mode="Upgrade")
    assert refused.status == 400
    line = line_of('throw "nothing to upgrade: ')
    assert stdout_of(raw, EXTENSION) == (
        "OutSystems setup failed: nothing to upgrade: Platform Server is not installed "
        f"(line {line})"
    )


def test_a_failing_health_gate_fails_the_upgrade_of_that_server(
    world: World, raw: Raw, sim: SimulatorServer
) -> None:
    world.vm()
    ok(world.setup())
    sim.fail_health_gate(CONTROLLER_IP)
    failed = world.setup(PlatformVersion="11.33.0")
    assert failed.status == 400
    line = line_of('throw "health check: ')
    assert stdout_of(raw, EXTENSION) == (
        "OutSystems setup failed: health check: /servicecenter/_ping.aspx failed for 10 minutes "
        "after the upgrade (The remote server returned an error: (503) Server Unavailable.) "
        f"(line {line})"
    )
    sim.fail_health_gate(CONTROLLER_IP, None)
    ok(world.setup(PlatformVersion="11.33.0"))  # installed already; the gate passes now
    assert stdout_of(raw, EXTENSION) == (
        "OutSystems setup succeeded: already at Platform Server 11.33.0 (role standalone)"
    )


def test_a_failure_is_the_scripts_last_line_on_both_outputs(world: World, raw: Raw) -> None:
    world.vm()
    world.revoke(SECRETS["db"])
    failed = world.setup()
    # ARM quotes standard error; the script writes its last line there and to standard output.
    assert failed.code == "VMExtensionProvisioningError"
    assert failed.message == failure("setup", 1, preflight(secret_finding("db", 403)))
    assert stdout_of(raw, EXTENSION) == preflight(secret_finding("db", 403))
    extension = ok(raw.send("GET", EXTENSION, api=COMPUTE_API))
    assert extension.body["properties"]["provisioningState"] == "Failed"


def test_a_script_that_writes_its_last_line_to_stdout_only_is_not_quoted(world: World) -> None:
    variant = SCRIPT.replace(
        "if ($lastLine) { Write-Host $lastLine; [Console]::Error.WriteLine($lastLine) }",
        "if ($lastLine) { Write-Host $lastLine }",
    )
    assert variant != SCRIPT
    world.vm(script=variant)
    world.revoke(SECRETS["db"])
    failed = world.setup()
    assert failed.message == failure("setup", 1)


def test_an_identity_not_on_the_vm_gets_no_token(world: World, raw: Raw) -> None:
    vm = world.vm()
    body = ok(raw.send("GET", f"{vm}?$expand=userData&api-version={COMPUTE_API}")).body
    other = f"{GROUP_ID}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/other-id"
    ok(raw.put(other, bodies.identity(), api=IDENTITY_API))
    body["identity"] = {"type": "UserAssigned", "userAssignedIdentities": {other: {}}}
    ok(raw.put(vm, body, api=COMPUTE_API))
    world.setup()
    assert stdout_of(raw, EXTENSION) == preflight(
        token_finding("https://vault.azure.net"),
        share_finding(token_finding("https://storage.azure.com/")),
    )


def test_each_secret_needs_its_role_and_to_exist(world: World, raw: Raw) -> None:
    world.vm()
    world.revoke(SECRETS["key"])
    world.setup(AdminPasswordSecret="not-there")
    missing = f"Key Vault secret 'not-there' is not readable in {VAULT_URI}"
    # Without a role covering it, whether it exists is not for the server to know: 403.
    assert stdout_of(raw, EXTENSION) == preflight(
        secret_finding("key", 403), f"{missing} (HTTP 403)"
    )
    # A role on the whole vault covers every secret, the missing one too: 404.
    world.grant(VAULT, bodies.KEY_VAULT_SECRETS_USER)
    world.setup(AdminPasswordSecret="not-there")
    assert stdout_of(raw, EXTENSION) == preflight(f"{missing} (HTTP 404)")


def test_a_front_end_never_reads_the_admin_password(world: World, raw: Raw) -> None:
    world.vm()
    assert world.setup().status == 200  # the controller
    world.revoke(SECRETS["admin"])
    world.vm("fe1", "10.0.0.10")
    done = world.setup(f"{COMPUTE}/virtualMachines/fe1", Role="frontend")
    assert done.status == 200, done.body


def test_the_share_needs_the_privileged_role_and_the_share(world: World, raw: Raw) -> None:
    world.vm()
    world.revoke("share")
    # SMB Share Contributor writes files over SMB, not over REST with OAuth.
    world.grant(STORAGE, SMB_SHARE_CONTRIBUTOR)
    world.setup()
    assert stdout_of(raw, EXTENSION) == preflight(share_finding("HTTP 403"))
    # The role on the share itself is enough.
    world.grant(SHARE, bodies.STORAGE_FILE_DATA_PRIVILEGED_CONTRIBUTOR)
    assert world.setup().status == 200
    # Deleting the share takes that assignment along; with the role on the account, a
    # missing share is 404.
    world.grant(STORAGE, bodies.STORAGE_FILE_DATA_PRIVILEGED_CONTRIBUTOR)
    raw.delete(SHARE, api=STORAGE_API)
    world.setup()
    assert stdout_of(raw, EXTENSION) == preflight(share_finding("HTTP 404"))


def test_sql_1433_denied_by_an_nsg_rule(world: World, raw: Raw) -> None:
    world.vm()
    world.nsg_rule("deny-sql", 100, "Outbound", destinationPortRange="1433")
    world.setup()
    assert stdout_of(raw, EXTENSION) == preflight(
        f"SQL server {SQL_FQDN} is not reachable on TCP 1433"
    )


def test_sql_without_a_virtual_network_rule_refuses_the_login(world: World, raw: Raw) -> None:
    world.vm()
    raw.delete(f"{SQL}/virtualNetworkRules/env", api=SQL_API)
    world.setup()
    error = f"Cannot open server '{SQL_NAME}' requested by the login. Client is not allowed to "
    assert stdout_of(raw, EXTENSION) == preflight(
        f"SQL login sqladmin to {SQL_FQDN}/outsystems failed: {error}access the server."
    )
    # Without the service endpoint the server sees the NAT gateway's address (error 40615).
    world.subnet({"serviceEndpoints": []})
    world.setup()
    nat_ip = ok(raw.send("GET", NAT_IP, api=NETWORK_API)).body["properties"]["ipAddress"]
    assert stdout_of(raw, EXTENSION) == preflight(
        f"SQL login sqladmin to {SQL_FQDN}/outsystems failed: Cannot open server '{SQL_NAME}' "
        f"requested by the login. Client with IP address '{nat_ip}' is not allowed to access "
        "the server."
    )


def test_another_platforms_network_with_the_same_addresses_is_not_this_servers(
    raw: Raw, sim: SimulatorServer
) -> None:
    """Private address spaces repeat across virtual networks (every platform of the app uses
    the same plan), and a private address means something only inside its own virtual network:
    "Azure assigns resources in a virtual network a private IP address from the address space
    that you assign" (MicrosoftDocs/azure-docs, articles/virtual-network/
    virtual-networks-overview.md). Another group's network with this one's addresses, created
    first, must not stand in for the server's own subnet (its SQL rule, its controller)."""
    foreign_group = f"/subscriptions/{SUBSCRIPTION}/resourceGroups/other-platform"
    raw.send("PUT", foreign_group, {"location": bodies.LOCATION})
    foreign_vnet = f"{foreign_group}/providers/Microsoft.Network/virtualNetworks/vnet"
    ok(raw.put(foreign_vnet, bodies.vnet({"env": "10.0.0.0/24"}), api=NETWORK_API))
    world = World(raw, sim).build()
    world.vm()
    foreign_nic = f"{foreign_group}/providers/Microsoft.Network/networkInterfaces/vm1-nic"
    ok(
        raw.put(
            foreign_nic, bodies.nic(f"{foreign_vnet}/subnets/env", CONTROLLER_IP), api=NETWORK_API
        )
    )
    done = world.setup()
    assert done.status == 200, done.body
    assert stdout_of(raw, EXTENSION).startswith("OutSystems setup succeeded"), stdout_of(
        raw, EXTENSION
    )


def test_sql_redirect_ports_denied(world: World, raw: Raw) -> None:
    world.vm()
    world.nsg_rule("deny-redirect", 100, "Outbound", destinationPortRange="11000-11999")
    world.setup()
    assert stdout_of(raw, EXTENSION) == preflight(
        f"SQL login sqladmin to {SQL_FQDN}/outsystems failed: {setup_model.SQL_NODE_UNREACHABLE}"
    )


def test_without_outbound_access_nothing_on_the_internet_answers(world: World, raw: Raw) -> None:
    world.vm()
    world.subnet({"natGateway": None})
    world.setup()
    # Key Vault and Storage are reached over the Internet (no endpoint for them); SQL through
    # its service endpoint, but without the password there is no login to try.
    assert stdout_of(raw, EXTENSION) == preflight(
        secret_finding("db", 0),
        secret_finding("key", 0),
        secret_finding("admin", 0),
        share_finding("HTTP 0"),
        GALLERY,
    )


def test_a_server_set_up_once_has_its_module_and_skips_the_gallery(world: World, raw: Raw) -> None:
    world.vm()
    assert world.setup().status == 200
    world.nsg_rule(
        "deny-https",
        100,
        "Outbound",
        destinationAddressPrefix="Internet",
        destinationPortRange="443",
    )
    world.setup()
    assert stdout_of(raw, EXTENSION) == preflight(
        secret_finding("db", 0),
        secret_finding("key", 0),
        secret_finding("admin", 0),
        share_finding("HTTP 0"),
    )


def test_everything_missing_at_once_is_reported_in_the_scripts_order(
    world: World, raw: Raw
) -> None:
    vm = world.vm()
    body = ok(raw.send("GET", f"{vm}?$expand=userData&api-version={COMPUTE_API}")).body
    del body["identity"]
    ok(raw.put(vm, body, api=COMPUTE_API))
    world.nsg_rule("deny-sql", 100, "Outbound", destinationPortRange="1433")
    world.nsg_rule(
        "deny-https",
        110,
        "Outbound",
        destinationAddressPrefix="Internet",
        destinationPortRange="443",
    )
    world.setup()
    assert stdout_of(raw, EXTENSION) == preflight(
        token_finding("https://vault.azure.net"),
        share_finding(token_finding("https://storage.azure.com/")),
        f"SQL server {SQL_FQDN} is not reachable on TCP 1433",
        GALLERY,
    )


# --- front-ends and their controller ------------------------------------------------------------


def controller_silent(address: str = CONTROLLER_IP) -> str:
    return setup_model.FAILED.format(
        message=(
            f"the controller {address} did not answer on TCP 12000 and 5672 within 20 minutes"
        ),
        line=line_of('throw "the controller $ControllerAddress'),
    )


def test_a_front_end_waits_for_a_controller_that_is_set_up(world: World, raw: Raw) -> None:
    controller = world.vm()
    world.revoke(SECRETS["admin"])
    assert world.setup(controller).code == "VMExtensionProvisioningError"
    fe = world.vm("fe1", "10.0.0.10")
    world.setup(fe, Role="frontend")
    assert stdout_of(raw, f"{fe}/extensions/setup") == controller_silent()
    # By name, as in a network the user brought (Azure DNS answers the computer name).
    world.setup(fe, Role="frontend", ControllerAddress="nobody")
    assert stdout_of(raw, f"{fe}/extensions/setup") == controller_silent("nobody")


def test_a_front_end_blocked_from_the_controllers_port_12000(world: World, raw: Raw) -> None:
    world.vm()
    assert world.setup().status == 200
    world.nsg_rule(
        "deny-12000",
        100,
        "Inbound",
        sourceAddressPrefix="10.0.0.0/24",
        destinationAddressPrefix=CONTROLLER_IP,
        destinationPortRange="12000",
    )
    fe = world.vm("fe1", "10.0.0.10")
    world.setup(fe, Role="frontend")
    assert stdout_of(raw, f"{fe}/extensions/setup") == controller_silent()
    done = world.setup(fe, Role="frontend", ControllerAddress="vm1")
    assert done.code == "VMExtensionProvisioningError"


def scale_set_body(script: str = SCRIPT, **overrides: str) -> dict[str, Any]:
    body = bodies.scale_set(SUBNET, 2)
    profile = body["properties"]["virtualMachineProfile"]
    profile["extensionProfile"]["extensions"][0]["properties"] = setup_extension(
        1, Role="frontend", **overrides
    )["properties"]
    profile["userData"] = user_data(script)
    body["identity"] = {"type": "UserAssigned", "userAssignedIdentities": {IDENTITY: {}}}
    return body


def test_scale_set_instances_run_the_setup_and_show_its_output(world: World, raw: Raw) -> None:
    world.vm()
    assert world.setup().status == 200
    scale_set = f"{COMPUTE}/virtualMachineScaleSets/fe"
    world.nsg_rule(
        "deny-5672",
        100,
        "Inbound",
        sourceAddressPrefix="10.0.0.0/24",
        destinationAddressPrefix=CONTROLLER_IP,
        destinationPortRange="5672",
    )
    failed = raw.put(scale_set, scale_set_body(), api=COMPUTE_API)
    assert failed.code == "VMExtensionProvisioningError"
    assert failed.message == failure("setup", 1, controller_silent())
    instance = ok(
        raw.send(
            "GET", f"{scale_set}/virtualMachines/0?$expand=instanceView&api-version={COMPUTE_API}"
        )
    )
    (extension,) = instance.body["properties"]["instanceView"]["extensions"]
    stdout = [s for s in extension["substatuses"] if "StdOut" in s["code"]]
    assert stdout[0]["code"] == "ComponentStatus/StdOut/failed"
    assert stdout[0]["message"] == controller_silent()


def test_a_command_that_is_not_the_setup_script_just_succeeds(world: World, raw: Raw) -> None:
    world.vm()
    world.revoke(SECRETS["db"])
    done = raw.put(EXTENSION, bodies.extension(), api=COMPUTE_API)
    assert done.status == 200
    assert done.body["properties"]["provisioningState"] == "Succeeded"


def _instance_stdout(raw: Raw, scale_set: str, instance: str) -> tuple[str, str]:
    view = ok(
        raw.send(
            "GET",
            f"{scale_set}/virtualMachines/{instance}?$expand=instanceView&api-version={COMPUTE_API}",
        )
    )
    (extension,) = view.body["properties"]["instanceView"]["extensions"]
    (stdout,) = [s for s in extension["substatuses"] if "StdOut" in s["code"]]
    return view.body["properties"]["provisioningState"], str(stdout["message"])


def test_a_manual_upgrade_runs_the_new_version_on_the_instances_named(
    world: World, raw: Raw, sim: SimulatorServer
) -> None:
    """The scale set's model gets the new version; `manualupgrade` runs it on the instances
    named, each one's outcome in its instance view; a health gate failing on one instance fails
    the operation with its line and leaves that instance Failed (Compute's manualupgrade,
    virtualMachineScaleSet.json 2024-11-01; the script's lines, docs/upgrades.md)."""
    world.vm()
    assert world.setup().status == 200
    scale_set = f"{COMPUTE}/virtualMachineScaleSets/fe"
    ok(raw.put(scale_set, scale_set_body(), api=COMPUTE_API))
    installed = "OutSystems setup succeeded: installed Platform Server 11.32.0 (role frontend)"
    assert _instance_stdout(raw, scale_set, "1") == ("Succeeded", installed)
    ok(raw.put(scale_set, scale_set_body(PlatformVersion="11.33.0"), api=COMPUTE_API))
    nics = ok(raw.send("GET", f"{scale_set}/virtualMachines/1/networkInterfaces", api=NETWORK_API))
    address = nics.body["value"][0]["properties"]["ipConfigurations"][0]["properties"][
        "privateIPAddress"
    ]
    sim.fail_health_gate(address)
    started = raw.send(
        "POST", f"{scale_set}/manualupgrade", {"instanceIds": ["0", "1"]}, api=COMPUTE_API
    )
    assert started.status == 202
    done = raw.wait(started)
    line = line_of('throw "health check: ')
    gate = (
        "OutSystems setup failed: health check: /servicecenter/_ping.aspx failed for 10 minutes "
        "after the upgrade (The remote server returned an error: (503) Server Unavailable.) "
        f"(line {line})"
    )
    assert done.body["status"] == "Failed"
    assert done.body["error"]["message"] == failure("setup", 1, gate)
    assert _instance_stdout(raw, scale_set, "0") == (
        "Succeeded",
        "OutSystems setup succeeded: upgraded Platform Server 11.32.0 to 11.33.0 (role frontend)",
    )
    assert _instance_stdout(raw, scale_set, "1") == ("Failed", gate)

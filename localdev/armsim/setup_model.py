"""An OutSystems server running `Install-OutSystems.ps1`: how its Custom Script Extension ends.

The simulator has no VM. This model stands in for the server: when a Custom Script Extension
whose public `settings.commandToExecute` runs `Install-OutSystems.ps1` (the setup
script's command line: `& '...\\Install-OutSystems.ps1' -Role 'frontend' ...`)
completes on a VM or on new scale-set instances, it decides the script's exit code from the
live resources, in the order the script checks them, and prints what the script prints. The
script is the one the server really got: the VM's (or the scale set's) `userData`, which the
command writes to disk and runs. A command that does not run that script keeps the default
outcome (success).

What the server can reach is judged by the same evaluator the app's tests use,
`outsystems.network.reachability` (`NetworkView.from_bodies` over the simulator's own network
resources, then `setup_blockers`); what its identity may do by the simulator's role
assignments and Key Vault (`rbac.py`, `keyvault.py`). The script's checks
(infra/scripts/Install-OutSystems.ps1, `Invoke-Preflight`, then `Wait-Controller` on a
front-end), and what each one meets on Azure:

1. A token from IMDS for `https://vault.azure.net` with `mi_res_id=<IdentityResourceId>`.
   IMDS is not filtered by NSGs (MicrosoftDocs/azure-docs, articles/virtual-network/
   network-security-groups-overview.md: the host's 169.254.169.254 is exempt). An identity that
   is not assigned to the VM (or scale set) gets 400 (Azure/azure-sdk-for-net, sdk/identity/
   Azure.Identity/src/ImdsManagedIdentitySource.cs @ 01d3e1be: a 400 means "The requested
   identity has not been assigned to this resource."); the script does not retry a 400, and
   Windows PowerShell's `Invoke-RestMethod` reports it as .NET's WebException does: "The remote
   server returned an error: (400) Bad Request.".
2. The secrets `DatabaseAdminPasswordSecret`, `PrivateKeySecret` and, except on a front-end,
   `AdminPasswordSecret`, one GET each: no network path to AzureKeyVault 443 or no such vault
   (no DNS answer) gives no HTTP status ("HTTP 0" in the script's words); a vault closed to
   the subnet (`publicNetworkAccess: Disabled`, `networkAcls.defaultAction: Deny` without a
   virtual network rule for it) or an identity without `getSecret` on the secret (Key Vault
   Secrets User, RBAC vaults) gives 403; a secret that does not exist 404.
   The private key's format is not checked: the simulator keeps no secret value.
3. The share: with a token for `https://storage.azure.com/`, create a directory and a file,
   write it and delete it over the Files REST API with `x-ms-file-request-intent: backup`. With
   OAuth that needs a role whose data actions include the files' write and delete and
   `writeFileBackupSemantics` (MicrosoftDocs/azure-docs, articles/storage/files/
   authorize-oauth-rest.md @ 033b92aa: Storage File Data Privileged Contributor,
   69566ab7-960f-475b-8e7c-b3118f30c6bd; built-in roles: articles/role-based-access-control/
   built-in-roles/storage.md). Unreachable: HTTP 0; closed account or no such role: 403; no
   such share: 404.
4. SQL: a TCP connection to `DatabaseServer`:1433 (no such server or a blocked path: the
   script's "not reachable"), then, with the SQL password read, a login: the server's own
   firewall (MicrosoftDocs/sql-docs, azure-sql/database/vnet-service-endpoint-rule-overview.md
   @ 07cabaea, errors 40914 and 40615, whose texts are used here) and the Redirect ports
   11000-11999.
5. The PowerShell Gallery on 443, only while Outsystems.SetupTools is not installed (a server
   whose setup got past the preflight once has it).
6. A front-end waits at most `$ControllerWaitMinutes` for its controller at
   `ControllerAddress` to answer on TCP 12000 and 5672: the controller must be a server whose
   own setup succeeded, and the path must be open.

All the preflight's findings end up on one line, joined with "; ". The script's last output
line is then `OutSystems setup failed: <message> (line N)` with N the line of the `throw` in the
delivered script. That line goes to standard output (`Write-Host`), which the Custom Script
Extension shows in its instance view (`ComponentStatus/StdOut`); ARM's
`VMExtensionProvisioningError` quotes only standard error (see `extensions.py`), which carries
the line too only when the script writes it there (`[Console]::Error.WriteLine($lastLine)`).

Not modelled: the SQL login's password, the private key's format, the later steps' downloads
(installers and prerequisites, after the preflight), a front-end's port 80 to the controller
(the script's wait probes 12000 and 5672 only), the reboot-and-resume (exit 3010: see the
`extension-exit-3010` fault) and the script's run-time budget.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import json
import logging
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from localdev.armsim import extensions, keyvault, rbac
from localdev.armsim.extensions import ScriptResult
from localdev.armsim.hooks import ArmSim
from localdev.armsim.paths import key
from localdev.armsim.store import Resource
from localdev.armsim.validation import get_path
from outsystems.network.reachability import Blocked, Endpoint, NetworkView, setup_blockers
from outsystems.network.requirements import Party

logger = logging.getLogger(__name__)

SCRIPT_NAME: Final = "Install-OutSystems.ps1"
ROLES: Final = frozenset({"controller", "frontend", "standalone", "lifetime"})
#: The script's parameters (contract C1), all mandatory.
PARAMETERS: Final = (
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

# --- What the script prints (infra/scripts/Install-OutSystems.ps1; a test compares these with
# the script's own strings, so they cannot drift) ------------------------------------------------

FAILED: Final = "OutSystems setup failed: {message} (line {line})"
SUCCEEDED: Final = "OutSystems setup succeeded: {outcome}"
#: The version step's and the health gate's throws, and the outcomes (`$script:Outcome`).
DOWNGRADE_REFUSED: Final = (
    "downgrade refused: {product} {installed} is installed, {target} was requested"
)
NOTHING_TO_UPGRADE: Final = "nothing to upgrade: {product} is not installed"
HEALTH_GATE_FAILED: Final = (
    "health check: {path} failed for {minutes} minutes after the upgrade ({reason})"
)
INSTALLED: Final = "installed {product} {version} (role {role})"
ALREADY_AT: Final = "already at {product} {version} (role {role})"
UPGRADED: Final = "upgraded {product} {old} to {new} (role {role})"
#: The script's health gate after an upgrade (`$HealthPath`, `$HealthWaitMinutes`).
HEALTH_PATH: Final = "/servicecenter/_ping.aspx"
HEALTH_WAIT_MINUTES: Final = 10
PREFLIGHT: Final = "Preflight: {findings}"
PREFLIGHT_SEPARATOR: Final = "; "
NO_TOKEN: Final = (
    "no managed identity token from IMDS for {resource} (identity {identity}): {reason}"
)
SECRET_NOT_READABLE: Final = (
    "Key Vault secret '{name}' is not readable in {vault_uri} (HTTP {status})"
)
SHARE_NOT_WRITABLE: Final = (
    "file share {account}/{share} is not writable with the managed identity ({detail})"
)
SQL_UNREACHABLE: Final = "SQL server {server} is not reachable on TCP 1433"
SQL_LOGIN_FAILED: Final = "SQL login {user} to {server}/{catalog} failed: {reason}"
GALLERY_UNREACHABLE: Final = (
    "the PowerShell Gallery (www.powershellgallery.com:443) is not reachable"
)
CONTROLLER_SILENT: Final = (
    "the controller {address} did not answer on TCP 12000 and 5672 within {minutes} minutes"
)
#: `$ControllerWaitMinutes` in the script.
CONTROLLER_WAIT_MINUTES: Final = 20
#: The resources the script asks IMDS for tokens for.
VAULT_RESOURCE: Final = "https://vault.azure.net"
STORAGE_RESOURCE: Final = "https://storage.azure.com/"
#: Where a machine keeps the version its setup last installed (in its `extra`).
_VERSION_KEY: Final = "outsystemsVersion"
#: The statements whose line the script reports, found in the delivered script.
_PREFLIGHT_THROW: Final = re.compile(r'^\s*if \(\$missing\.Count -gt 0\) \{ throw "Preflight:')
_CONTROLLER_THROW: Final = re.compile(r'^\s*throw "the controller \$ControllerAddress ')
#: The upgrade path's throws (docs/upgrades.md; a script without them knows no versions).
_DOWNGRADE_THROW: Final = re.compile(r'throw "downgrade refused: ')
_NOTHING_THROW: Final = re.compile(r'throw "nothing to upgrade: ')
_HEALTH_THROW: Final = re.compile(r'throw "health check: ')
#: A script that also writes its last line to standard error.
_LAST_LINE_TO_STDERR: Final = re.compile(
    r"\[Console\]::Error\.WriteLine\(\s*\$lastLine\s*\)", re.IGNORECASE
)

# --- What Azure answers (the sources are in the module's docstring) ---------------------------

#: .NET's WebException text for an HTTP 400, as Windows PowerShell's Invoke-RestMethod shows it.
IMDS_IDENTITY_NOT_ASSIGNED: Final = "The remote server returned an error: (400) Bad Request."
#: Azure SQL error 40914 (vnet-service-endpoint-rule-overview.md).
SQL_VNET_RULE_MISSING: Final = (
    "Cannot open server '{server}' requested by the login. Client is not allowed to access the "
    "server."
)
#: Azure SQL error 40615 (same page).
SQL_IP_NOT_ALLOWED: Final = (
    "Cannot open server '{server}' requested by the login. Client with IP address '{ip}' is not "
    "allowed to access the server."
)
#: Azure SQL error 47073, as Microsoft Learn's error table and public logs quote it.
SQL_PUBLIC_ACCESS_DENIED: Final = (
    "Reason: An instance-specific error occurred while establishing a connection to SQL Server. "
    "Connection was denied because Deny Public Network Access is set to Yes."
)
#: System.Data.SqlClient's text for a connection that times out (here: the Redirect policy's
#: 11000-11999 blocked); the classic wording, with Windows' WSAETIMEDOUT text.
SQL_NODE_UNREACHABLE: Final = (
    "A network-related or instance-specific error occurred while establishing a connection to "
    "SQL Server. The server was not found or was not accessible. Verify that the instance name "
    "is correct and that SQL Server is configured to allow remote connections. (provider: TCP "
    "Provider, error: 0 - A connection attempt failed because the connected party did not "
    "properly respond after a period of time, or established connection failed because "
    "connected host has failed to respond.)"
)
FILE_DATA_ACTIONS: Final = (
    "Microsoft.Storage/storageAccounts/fileServices/fileshares/files/write",
    "Microsoft.Storage/storageAccounts/fileServices/fileshares/files/delete",
    "Microsoft.Storage/storageAccounts/fileServices/writeFileBackupSemantics/action",
)

VM_TYPE: Final = "Microsoft.Compute/virtualMachines"
VMSS_TYPE: Final = "Microsoft.Compute/virtualMachineScaleSets"
VMSS_VM_TYPE: Final = "Microsoft.Compute/virtualMachineScaleSets/virtualMachines"
VM_EXTENSION_TYPE: Final = "Microsoft.Compute/virtualMachines/extensions"
IDENTITY_TYPE: Final = "Microsoft.ManagedIdentity/userAssignedIdentities"
SQL_SERVER_TYPE: Final = "Microsoft.Sql/servers"
STORAGE_TYPE: Final = "Microsoft.Storage/storageAccounts"
NIC_TYPE: Final = "Microsoft.Network/networkInterfaces"
#: The types `NetworkView.from_bodies` reads.
NETWORK_TYPES: Final = frozenset(
    t.lower()
    for t in (
        "Microsoft.Network/virtualNetworks",
        "Microsoft.Network/virtualNetworks/subnets",
        "Microsoft.Network/networkSecurityGroups",
        "Microsoft.Network/natGateways",
        "Microsoft.Network/routeTables",
        "Microsoft.Network/publicIPAddresses",
        NIC_TYPE,
        VMSS_TYPE,
        "Microsoft.Network/applicationGateways",
        "Microsoft.Network/bastionHosts",
        SQL_SERVER_TYPE,
        "Microsoft.Sql/servers/virtualNetworkRules",
        "Microsoft.Sql/servers/firewallRules",
    )
)

_INVOCATION = re.compile(r"&\s*'(?:[^']|'')*" + re.escape(SCRIPT_NAME) + "'", re.IGNORECASE)
_ARGUMENT = re.compile(r"\s+-(?P<name>[A-Za-z]+)\s+'(?P<value>(?:[^']|'')*)'")


# --- the command and the script ----------------------------------------------------------------


def parse_command(command: str) -> dict[str, str] | None:
    """The `-Name 'value'` arguments of the command's call of the setup script (None when the
    command does not call it, or leaves out one of its mandatory parameters)."""
    invocation = _INVOCATION.search(command)
    if invocation is None:
        return None
    arguments: dict[str, str] = {}
    position = invocation.end()
    while (match := _ARGUMENT.match(command, position)) is not None:
        arguments[match.group("name")] = match.group("value").replace("''", "'")
        position = match.end()
    known = {name.lower(): name for name in PARAMETERS}
    normalized = {known.get(name.lower(), name): value for name, value in arguments.items()}
    if any(name not in normalized for name in PARAMETERS) or normalized["Role"] not in ROLES:
        return None
    return normalized


@dataclass(frozen=True)
class Script:
    """The delivered script: where its failures are thrown, and where its last line goes."""

    preflight_line: int
    controller_line: int
    last_line_to_stderr: bool
    #: The upgrade path's throws (0: the script predates it and reports no version).
    downgrade_line: int = 0
    nothing_line: int = 0
    health_line: int = 0

    @classmethod
    def parse(cls, text: str) -> Script:
        lines = text.splitlines()

        def line_of(pattern: re.Pattern[str]) -> int:
            # 0 when the statement is missing: the test of the messages says so loudly.
            return next((n for n, line in enumerate(lines, 1) if pattern.search(line)), 0)

        return cls(
            preflight_line=line_of(_PREFLIGHT_THROW),
            controller_line=line_of(_CONTROLLER_THROW),
            last_line_to_stderr=_LAST_LINE_TO_STDERR.search(text) is not None,
            downgrade_line=line_of(_DOWNGRADE_THROW),
            nothing_line=line_of(_NOTHING_THROW),
            health_line=line_of(_HEALTH_THROW),
        )


def delivered_script(host: Resource) -> Script | None:
    """The script in a VM's or scale set's `userData` (None when there is none)."""
    if host.type == VMSS_TYPE:
        encoded = get_path(host.body, "properties.virtualMachineProfile.userData")
    else:
        encoded = get_path(host.body, "properties.userData")
    if not isinstance(encoded, str) or not encoded:
        return None
    try:
        text = base64.b64decode(encoded, validate=True).decode("utf-8-sig")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return Script.parse(text)


# --- the server ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Server:
    """One server running the script: where it is and what it is."""

    host: Resource
    #: The resource whose state the server keeps (the VM, or the scale-set instance).
    machine: Resource
    subnet_id: str
    address: str | None
    region: str


def _vm_server(engine: ArmSim, vm: Resource) -> Server | None:
    nics = get_path(vm.body, "properties.networkProfile.networkInterfaces") or []
    nics = sorted(nics, key=lambda n: not get_path(n, "properties.primary"))
    for reference in nics:
        nic = engine.store.get(str(reference.get("id", "")))
        if nic is None:
            continue
        configurations = get_path(engine.view(nic), "properties.ipConfigurations") or []
        for configuration in configurations:
            subnet = get_path(configuration, "properties.subnet.id")
            if subnet:
                address = get_path(configuration, "properties.privateIPAddress")
                return Server(
                    vm,
                    vm,
                    str(subnet),
                    str(address) if address else None,
                    engine.store.location_of(vm),
                )
    return None


def _scale_set_servers(engine: ArmSim, scale_set: Resource) -> list[Server]:
    profile = get_path(scale_set.body, "properties.virtualMachineProfile") or {}
    subnet = None
    for nic in get_path(profile, "networkProfile.networkInterfaceConfigurations") or []:
        for configuration in get_path(nic, "properties.ipConfigurations") or []:
            subnet = subnet or get_path(configuration, "properties.subnet.id")
    if not subnet:
        return []
    instances = [
        c for c in engine.store.children(scale_set.id, VMSS_VM_TYPE) if c.state != "Deleting"
    ]
    targets = scale_set.extra.get("targetInstances")
    if isinstance(targets, list):
        # An upgrade or reimage of some instances (`scale_sets.run_scripts`): those only.
        starting = [i for i in instances if i.name in targets]
    else:
        # New instances run the profile's extensions; with none new, it runs on all.
        starting = [i for i in instances if i.state == "Creating"] or instances
    return [
        Server(
            scale_set,
            instance,
            str(subnet),
            instance.extra.get("privateIPAddress"),
            engine.store.location_of(scale_set),
        )
        for instance in sorted(starting, key=lambda i: int(i.name) if i.name.isdigit() else 0)
    ]


_VNET_ID_RE: Final = re.compile(
    r"/subscriptions/[^/\"]+/resourcegroups/[^/\"]+/providers/microsoft\.network/"
    r"virtualnetworks/[^/\"]+"
)


def vnet_of(subnet_id: str) -> str:
    """The (lower-cased) id of the virtual network a subnet belongs to."""
    return key(subnet_id).rsplit("/subnets/", 1)[0]


def network_view(engine: ArmSim, vnet_id: str | None = None) -> NetworkView:
    """The simulator's networks as the evaluator reads them; with `vnet_id`, as a server of
    that virtual network sees them: nothing of another virtual network (private addresses
    repeat across virtual networks and mean something only inside their own)."""
    bodies = []
    for resource in engine.store.resources.values():
        if resource.type.lower() not in NETWORK_TYPES:
            continue
        body = engine.view(resource)
        if vnet_id is not None:
            referenced = set(_VNET_ID_RE.findall(json.dumps(body).lower()))
            if referenced - {vnet_id}:
                continue
        bodies.append(body)
    return NetworkView.from_bodies(bodies)


def _find(engine: ArmSim, type_name: str, name: str) -> Resource | None:
    for resource in engine.store.resources.values():
        if (
            resource.type == type_name
            and resource.name.lower() == name.lower()
            and resource.state != "Deleting"
        ):
            return resource
    return None


def _setup_extensions(engine: ArmSim, vm: Resource) -> list[Resource]:
    return [
        e
        for e in engine.store.children(vm.id, VM_EXTENSION_TYPE)
        if parse_command(str(get_path(e.body, "properties.settings.commandToExecute") or ""))
    ]


@dataclass
class Run:
    """One run of the script on one server: its findings, in the script's order."""

    engine: ArmSim
    server: Server
    arguments: Mapping[str, str]
    view: NetworkView
    blocked: list[Blocked]
    state: dict[str, Any]

    # --- what the server meets ----------------------------------------------------------------
    def blocked_to(self, party: Party, ports: Iterable[int] | None = None) -> bool:
        wanted = set(ports) if ports is not None else None
        return any(
            b.flow.destination is party and (wanted is None or b.port in wanted)
            for b in self.blocked
        )

    def identity(self) -> Resource | None:
        """The identity IMDS gives tokens for: assigned to the VM or scale set, and alive."""
        wanted = key(self.arguments["IdentityResourceId"])
        assigned = get_path(self.server.host.body, "identity.userAssignedIdentities") or {}
        if not any(key(identity_id) == wanted for identity_id in assigned):
            return None
        identity = self.engine.store.get(wanted)
        if identity is None or identity.type != IDENTITY_TYPE or identity.state == "Deleting":
            return None
        return identity

    def _service_closed(self, properties: Mapping[str, Any], endpoint: str) -> bool:
        """Whether a vault's or storage account's own firewall keeps this subnet out."""
        if str(properties.get("publicNetworkAccess", "Enabled")).lower() == "disabled":
            return True
        acls = properties.get("networkAcls") or {}
        if str(acls.get("defaultAction", "Allow")).lower() != "deny":
            return False
        subnet = self.view.subnet(self.server.subnet_id)
        rules = acls.get("virtualNetworkRules") or []
        return not (
            endpoint in subnet.service_endpoints
            and any(key(str(r.get("id", ""))) == subnet.id for r in rules)
        )

    def secret_status(self, principal: str, name: str) -> int:
        """The HTTP status of the GET of one secret (0: no answer)."""
        if self.blocked_to(Party.KEY_VAULT):
            return 0
        host = self.arguments["KeyVaultUri"].split("//", 1)[-1].split("/", 1)[0]
        vault = keyvault.live_vault(self.engine, host.split(".", 1)[0])
        if vault is None or vault.state == "Deleting":
            return 0
        if self._service_closed(vault.body.get("properties") or {}, "microsoft.keyvault"):
            return 403
        secret_id = f"{vault.id}/secrets/{name}"
        if not keyvault.may_get_secret(self.engine, principal, vault, secret_id):
            return 403
        secret = self.engine.store.get(secret_id)
        return 200 if secret is not None and secret.state != "Deleting" else 404

    def share_status(self, principal: str) -> int:
        """The HTTP status of the probe's writes to the share (0: no answer)."""
        if self.blocked_to(Party.STORAGE):
            return 0
        account = _find(self.engine, STORAGE_TYPE, self.arguments["StorageAccount"])
        if account is None:
            return 0
        if self._service_closed(account.body.get("properties") or {}, "microsoft.storage"):
            return 403
        share_id = f"{account.id}/fileServices/default/shares/{self.arguments['FileShare']}"
        if not all(
            rbac.grants_data_action(self.engine, principal, share_id, action)
            for action in FILE_DATA_ACTIONS
        ):
            return 403
        return 201 if self.engine.store.get(share_id) is not None else 404

    def sql_server(self) -> Resource | None:
        fqdn = self.arguments["DatabaseServer"].lower()
        if not fqdn.endswith(".database.windows.net"):
            return None
        return _find(self.engine, SQL_SERVER_TYPE, fqdn.split(".", 1)[0])

    def sql_login_error(self, server: Resource) -> str | None:
        """Why the SQL login fails, as SqlClient reports it (None: it works)."""
        address = self.server.address
        source = Endpoint.address(address) if address else Endpoint.in_subnet(self.server.subnet_id)
        access = self.view.sql_access(server.id, source)
        if not access.allowed:
            if access.rule == "PublicNetworkAccessDisabled":
                return SQL_PUBLIC_ACCESS_DENIED
            subnet = self.view.subnet(self.server.subnet_id)
            if "microsoft.sql" in subnet.service_endpoints:
                return SQL_VNET_RULE_MISSING.format(server=server.name)
            return SQL_IP_NOT_ALLOWED.format(server=server.name, ip=self.public_address())
        if self.blocked_to(Party.SQL, (11000, 11999)):
            return SQL_NODE_UNREACHABLE
        return None

    def public_address(self) -> str:
        """The address the subnet's traffic leaves Azure with (its NAT gateway's)."""
        nat_id = self.view.subnet(self.server.subnet_id).nat_gateway
        nat = self.engine.store.get(nat_id) if nat_id else None
        references = (get_path(nat.body, "properties.publicIpAddresses") or []) if nat else []
        for reference in references:
            address = self.engine.store.get(str(reference.get("id", "")))
            if address is not None and address.extra.get("ipAddress"):
                return str(address.extra["ipAddress"])
        return "0.0.0.0"

    def controller_answers(self, address: str | None) -> bool:
        """Whether the controller at `address` answers on 12000 and 5672."""
        if address is None or self.blocked_to(Party.CONTROLLER, (12000, 5672)):
            return False
        vm = _vm_at(self.engine, address, vnet_of(self.server.subnet_id))
        if vm is None:
            return False
        if vm.extra.get("outsystems", {}).get("setupSucceeded"):
            return True
        return any(e.state == "Succeeded" for e in _setup_extensions(self.engine, vm))

    # --- the script ---------------------------------------------------------------------------
    def preflight(self) -> list[str]:
        """`Invoke-Preflight`'s findings, in its order."""
        args = self.arguments
        missing: list[str] = []
        identity = self.identity()
        principal = str(identity.extra.get("principalId", "")) if identity else ""
        read: set[str] = set()
        if identity is None:
            missing.append(self.no_token(VAULT_RESOURCE))
        else:
            names = [args["DatabaseAdminPasswordSecret"], args["PrivateKeySecret"]]
            # Front-ends never use the admin password.
            if args["Role"] != "frontend":
                names.append(args["AdminPasswordSecret"])
            for name in names:
                status = self.secret_status(principal, name)
                if status == 200:
                    read.add(name)
                else:
                    missing.append(
                        SECRET_NOT_READABLE.format(
                            name=name, vault_uri=args["KeyVaultUri"], status=status
                        )
                    )
        if identity is None:
            detail = self.no_token(STORAGE_RESOURCE)
        else:
            status = self.share_status(principal)
            detail = "" if status == 201 else f"HTTP {status}"
        if detail:
            missing.append(
                SHARE_NOT_WRITABLE.format(
                    account=args["StorageAccount"], share=args["FileShare"], detail=detail
                )
            )
        server = self.sql_server()
        if server is None or self.blocked_to(Party.SQL, (1433,)):
            missing.append(SQL_UNREACHABLE.format(server=args["DatabaseServer"]))
        elif args["DatabaseAdminPasswordSecret"] in read:
            reason = self.sql_login_error(server)
            if reason is not None:
                missing.append(
                    SQL_LOGIN_FAILED.format(
                        user=args["DatabaseAdminUser"],
                        server=args["DatabaseServer"],
                        catalog=args["PlatformCatalog"],
                        reason=reason,
                    )
                )
        if not self.state.get("setupToolsInstalled") and self.blocked_to(Party.DOWNLOADS):
            missing.append(GALLERY_UNREACHABLE)
        return missing

    def no_token(self, resource: str) -> str:
        return NO_TOKEN.format(
            resource=resource,
            identity=self.arguments["IdentityResourceId"],
            reason=IMDS_IDENTITY_NOT_ASSIGNED,
        )


def _vm_at(engine: ArmSim, address: str, vnet_id: str) -> Resource | None:
    """The VM whose NIC holds `address` in the virtual network `vnet_id`."""
    for nic in engine.store.resources.values():
        if nic.type != NIC_TYPE:
            continue
        subnets = _VNET_ID_RE.findall(json.dumps(engine.view(nic)).lower())
        if subnets and vnet_id not in subnets:
            continue
        held = nic.extra.get("ips", {})
        if any(str(a.get("ip")) == address for a in held.values()):
            vm_id = get_path(engine.view(nic), "properties.virtualMachine.id")
            return engine.store.get(str(vm_id)) if vm_id else None
    return None


def _controller_ip(engine: ArmSim, server: Server, name: str) -> str | None:
    """`ControllerAddress` as the server resolves it: an address, or a VM's computer name
    (Azure DNS answers a VM's name with its private address within its virtual network)."""
    try:
        return str(ipaddress.IPv4Address(name))
    except ValueError:
        pass
    vnet = vnet_of(server.subnet_id)
    for vm in engine.store.resources.values():
        if vm.type != VM_TYPE or vm.state == "Deleting":
            continue
        computer = get_path(vm.body, "properties.osProfile.computerName") or vm.name
        if str(computer).lower() != name.lower():
            continue
        found = _vm_server(engine, vm)
        if found is not None and key(found.subnet_id).rsplit("/subnets/", 1)[0] == vnet:
            return found.address
    return None


def _run_on(
    engine: ArmSim, server: Server, arguments: Mapping[str, str], script: Script
) -> ScriptResult:
    view = network_view(engine, vnet_of(server.subnet_id))
    controller = _controller_ip(engine, server, arguments["ControllerAddress"])
    role = arguments["Role"]
    if role == "frontend" and controller is None:
        # Nobody answers at that name: the waits fail whatever the network. The other needs
        # of a front-end are a controller's (neither has a flow of its own to check).
        role = "controller"
    blocked = setup_blockers(
        view,
        server.subnet_id,
        role,
        region=server.region,
        address=server.address,
        controller_address=controller,
    )
    state: dict[str, Any] = server.machine.extra.setdefault("outsystems", {})
    run = Run(engine, server, arguments, view, blocked, state)
    message, line = None, 0
    findings = run.preflight()
    if findings:
        message = PREFLIGHT.format(findings=PREFLIGHT_SEPARATOR.join(findings))
        line = script.preflight_line
    else:
        state["setupToolsInstalled"] = True
        if arguments["Role"] == "frontend" and not run.controller_answers(controller):
            message = CONTROLLER_SILENT.format(
                address=arguments["ControllerAddress"], minutes=CONTROLLER_WAIT_MINUTES
            )
            line = script.controller_line
    outcome = None
    if message is None and script.downgrade_line:
        outcome, message, line = _versions(engine, server, arguments, script)
    state["setupSucceeded"] = message is None
    engine.store.dirty = True
    if message is None:
        if outcome is None:
            return ScriptResult(0)
        done = SUCCEEDED.format(outcome=outcome)
        return ScriptResult(0, done if script.last_line_to_stderr else "", done)
    last = FAILED.format(message=message, line=line)
    return ScriptResult(1, last if script.last_line_to_stderr else "", last)


def installed_version(machine: Resource) -> str | None:
    """The OutSystems version the setup script last installed on a VM or scale-set instance
    (None: never set up), as the version step below keeps it."""
    version = machine.extra.get(_VERSION_KEY)
    return None if version is None else str(version)


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split("."))


def _versions(
    engine: ArmSim,
    server: Server,
    arguments: Mapping[str, str],
    script: Script,
) -> tuple[str | None, str | None, int]:
    """The script's version step (`Confirm-TargetVersion`) and, after an upgrade, its health
    gate (`Complete-Upgrade`): (outcome, failure message, failure line). The simulator has no
    repository of builds: a server is at the version it was asked for, as written (kept in the
    machine's `extra`, `installed_version` reads it)."""
    extra = server.machine.extra
    role = arguments["Role"]
    product = "LifeTime" if role == "lifetime" else "Platform Server"
    target = arguments["LifetimeVersion" if role == "lifetime" else "PlatformVersion"]
    installed = extra.get(_VERSION_KEY)
    if installed is None:
        if arguments.get("Mode", "Setup").lower() == "upgrade":
            return None, NOTHING_TO_UPGRADE.format(product=product), script.nothing_line
        extra[_VERSION_KEY] = target
        return INSTALLED.format(product=product, version=target, role=role), None, 0
    wanted = _version(target)
    have = _version(str(installed))[: len(wanted)]
    if have > wanted:
        refused = DOWNGRADE_REFUSED.format(product=product, installed=installed, target=target)
        return None, refused, script.downgrade_line
    if have == wanted:
        return ALREADY_AT.format(product=product, version=installed, role=role), None, 0
    # The new version is installed; then the health gate asks the probe path on the server.
    extra[_VERSION_KEY] = target
    reason = engine.store.health_gate_failures.get(str(server.address or "").lower())
    if reason is not None:
        failed = HEALTH_GATE_FAILED.format(
            path=HEALTH_PATH, minutes=HEALTH_WAIT_MINUTES, reason=reason
        )
        return None, failed, script.health_line
    upgraded = UPGRADED.format(product=product, old=installed, new=target, role=role)
    return upgraded, None, 0


def decide(engine: ArmSim, host: Resource, extension: Mapping[str, Any]) -> ScriptResult | None:
    """The outcome decider of `CustomScriptExtension` (see `extensions.py`)."""
    properties = extension.get("properties") or {}
    command = get_path(properties, "settings.commandToExecute")
    arguments = parse_command(command) if isinstance(command, str) else None
    script = delivered_script(host)
    if arguments is None or script is None:
        return None
    if host.type == VMSS_TYPE:
        servers = _scale_set_servers(engine, host)
    else:
        found = _vm_server(engine, host)
        servers = [found] if found is not None else []
    name = str(extension.get("name", ""))
    outcome: ScriptResult | None = None
    for server in servers:
        try:
            result = _run_on(engine, server, arguments, script)
        except (KeyError, ValueError) as error:
            # The networks are not what the evaluator can read (a reference to something
            # missing): say so where the script's output would be.
            logger.warning("setup model: cannot evaluate %s: %s", server.machine.id, error)
            text = f"simulator: the server's network cannot be evaluated: {error}"
            result = ScriptResult(1, text, text)
        if server.machine is not host:
            runs = server.machine.extra.setdefault("extensions", {})
            runs[name] = {
                **result.to_json(),
                "error": extensions.failure_of(name, properties, result),
            }
        if outcome is None or (outcome.exit_code == 0 and result.exit_code != 0):
            outcome = result
    return outcome

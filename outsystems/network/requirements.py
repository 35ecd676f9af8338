"""OutSystems' network requirements on Azure as data: the flows that must be open, and closed.

Each row names its parties by role, its ports, its protocol, why it exists and where that fact
is published. The sources:

- OutSystems' network requirements page, repository OutSystems/docs-product, path
  `src/setup/network-requirements.md`, commit 0770a9ca1a5d5042595c47e621d7ec085b10a2ef
  (tables "publication and runtime connectivity", "monitor", "LifeTime").
- Azure SQL Database connectivity architecture, MicrosoftDocs/sql-docs
  `azure-sql/database/connectivity-architecture.md` @ 0a7540e6678b1cb3e2f816253a3f1539f5d31a33:
  inside Azure the default connection policy is Redirect, which needs outbound 1433 to the
  gateway and 11000-11999 to the database nodes ("Use the Service Tags for SQL").
- Outsystems.SetupTools 3.13.1.0, OutSystems/Outsystems.SetupTools @
  074b1eb49c4428981a2c78b9aa320524f8f1eb65: `Get-OSPlatformVersion` (the setup's wait for the
  controller) calls Service Center over `http://<host>/ServiceCenter/...`
  (`src/Outsystems.SetupTools/Lib/ServiceCenterWebServices.ps1`); installers and prerequisites
  come over HTTPS (`src/Outsystems.SetupTools/Lib/Constants.ps1`);
  `src/Outsystems.SetupTools/Functions/Set-OSServerWindowsFirewall.ps1` opens 12000-12004 and
  5672.
- Application Gateway infrastructure, MicrosoftDocs/azure-docs
  `articles/application-gateway/configuration-infrastructure.md` @
  40e1d77530b5902e75e9deff6b764ccd37bbde57, "Network security groups".
- Azure Bastion and NSGs, MicrosoftDocs/azure-docs `articles/bastion/bastion-nsg.md` @
  00ae202d3387da443c7ff4ac508408876ac2d8c1, "Target VM subnet".

The setup's own needs (Key Vault and the file share over HTTPS with the server's managed
identity) are the setup script's own (`infra/scripts/Install-OutSystems.ps1`); the closed
ports are issue 12's list.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Final, Literal


class Party(StrEnum):
    """Who talks: OutSystems roles, Azure services and the outside world."""

    END_USERS = "end users"
    DEVELOPMENT_TOOLS = "Service Studio and Integration Studio"
    FRONTEND = "front-end"
    CONTROLLER = "deployment controller"
    #: Every Platform Server of an environment other than LifeTime: front-ends and controller.
    ENVIRONMENT_SERVERS = "environment servers"
    LIFETIME = "LifeTime front-end"
    #: The environment's Application Gateway: its load balancer, the only public entry point.
    GATEWAY = "application gateway"
    SQL = "Azure SQL Database"
    NATIVE_BUILDER = "nativebuilder.api.outsystems.com"
    DOWNLOADS = "download sources"
    KEY_VAULT = "Azure Key Vault"
    STORAGE = "Azure Storage"
    BASTION = "Azure Bastion"
    GATEWAY_MANAGER = "GatewayManager"
    AZURE_LOAD_BALANCER = "AzureLoadBalancer"
    INTERNET = "Internet"
    #: Every Platform Server of the platform (LifeTime's included).
    SERVERS = "every server"


Category = Literal[
    "runtime", "monitoring", "lifetime", "database", "setup", "gateway", "administration"
]


@dataclass(frozen=True, order=True)
class PortRange:
    """An inclusive TCP/UDP port range; a single port has low == high."""

    low: int
    high: int

    @classmethod
    def parse(cls, text: str) -> PortRange:
        low, _, high = text.partition("-")
        return cls(int(low), int(high or low))

    def __contains__(self, port: object) -> bool:
        return isinstance(port, int) and self.low <= port <= self.high

    def __str__(self) -> str:
        return str(self.low) if self.low == self.high else f"{self.low}-{self.high}"

    @property
    def edges(self) -> tuple[int, ...]:
        """The ports to probe to prove the whole range: both ends (one for a single port)."""
        return (self.low,) if self.low == self.high else (self.low, self.high)


def ports(*texts: str) -> tuple[PortRange, ...]:
    return tuple(PortRange.parse(text) for text in texts)


@dataclass(frozen=True)
class Reference:
    """Where a fact is published: repository, path, commit and the section that says it."""

    repository: str
    path: str
    commit: str
    section: str

    def __str__(self) -> str:
        return f"{self.repository}:{self.path}@{self.commit[:12]} ({self.section})"


_OS_NETWORK_PAGE = ("OutSystems/docs-product", "src/setup/network-requirements.md")
_OS_NETWORK_COMMIT = "0770a9ca1a5d5042595c47e621d7ec085b10a2ef"
_SETUPTOOLS = "OutSystems/Outsystems.SetupTools"
_SETUPTOOLS_COMMIT = "074b1eb49c4428981a2c78b9aa320524f8f1eb65"

OS_RUNTIME: Final = Reference(*_OS_NETWORK_PAGE, _OS_NETWORK_COMMIT, "publication and runtime")
OS_MONITORING: Final = Reference(*_OS_NETWORK_PAGE, _OS_NETWORK_COMMIT, "monitor OutSystems")
OS_LIFETIME: Final = Reference(*_OS_NETWORK_PAGE, _OS_NETWORK_COMMIT, "LifeTime")
OS_PORTS: Final = Reference(*_OS_NETWORK_PAGE, _OS_NETWORK_COMMIT, "Open ports")
SQL_CONNECTIVITY: Final = Reference(
    "MicrosoftDocs/sql-docs",
    "azure-sql/database/connectivity-architecture.md",
    "0a7540e6678b1cb3e2f816253a3f1539f5d31a33",
    "Connection policy: Redirect",
)
SETUPTOOLS_SERVICE_CENTER: Final = Reference(
    _SETUPTOOLS,
    "src/Outsystems.SetupTools/Lib/ServiceCenterWebServices.ps1",
    _SETUPTOOLS_COMMIT,
    "SCWS_GetPlatformServicesProxy: http://<host>/ServiceCenter",
)
SETUPTOOLS_DOWNLOADS: Final = Reference(
    _SETUPTOOLS,
    "src/Outsystems.SetupTools/Lib/Constants.ps1",
    _SETUPTOOLS_COMMIT,
    "Sources download URLs (https)",
)
SETUPTOOLS_FIREWALL: Final = Reference(
    _SETUPTOOLS,
    "src/Outsystems.SetupTools/Functions/Set-OSServerWindowsFirewall.ps1",
    _SETUPTOOLS_COMMIT,
    "TCP 12000-12004, 5672",
)
APP_GATEWAY_NSG: Final = Reference(
    "MicrosoftDocs/azure-docs",
    "articles/application-gateway/configuration-infrastructure.md",
    "40e1d77530b5902e75e9deff6b764ccd37bbde57",
    "Network security groups: required security rules",
)
BASTION_NSG: Final = Reference(
    "MicrosoftDocs/azure-docs",
    "articles/bastion/bastion-nsg.md",
    "00ae202d3387da443c7ff4ac508408876ac2d8c1",
    "Target VM subnet",
)
SETUP_CONTRACT: Final = Reference(
    "this project",
    "infra/scripts/Install-OutSystems.ps1",
    "-",
    "the setup reads Key Vault and writes the file share",
)
CLOSED_PORTS: Final = Reference(
    "project issues", "issue 12", "-", "Internet -> 3389/5985/5986/12000-12004/5672, -> SQL"
)


@dataclass(frozen=True)
class Flow:
    """One row: `source` opens TCP connections to `destination` on `ports` (or must not)."""

    source: Party
    destination: Party
    ports: tuple[PortRange, ...]
    purpose: str
    reference: Reference
    category: Category
    protocol: str = "Tcp"

    def __str__(self) -> str:
        listed = ", ".join(str(p) for p in self.ports)
        return f"{self.source} -> {self.destination} {self.protocol} {listed} ({self.purpose})"


def _flow(
    source: Party,
    destination: Party,
    port_list: Iterable[str],
    purpose: str,
    reference: Reference,
    category: Category,
) -> Flow:
    return Flow(source, destination, ports(*port_list), purpose, reference, category)


P = Party

#: What must be open for OutSystems to run, be monitored, deploy through LifeTime and be set up.
REQUIRED: Final[tuple[Flow, ...]] = (
    # --- publication and runtime ---------------------------------------------------------
    _flow(P.END_USERS, P.GATEWAY, ["80", "443"], "applications over HTTP(S)", OS_RUNTIME,
          "runtime"),
    _flow(P.DEVELOPMENT_TOOLS, P.GATEWAY, ["80", "443"], "deploy applications", OS_RUNTIME,
          "runtime"),
    # The gateway offloads TLS: it reaches the front-ends on HTTP 80 (backend settings, probe).
    _flow(P.GATEWAY, P.FRONTEND, ["80"], "users' requests and health probes", OS_RUNTIME,
          "runtime"),
    _flow(P.FRONTEND, P.NATIVE_BUILDER, ["443"], "generate mobile apps", OS_RUNTIME, "runtime"),
    _flow(P.FRONTEND, P.CONTROLLER, ["5672"], "cache invalidation service (RabbitMQ)",
          OS_RUNTIME, "runtime"),
    _flow(P.FRONTEND, P.CONTROLLER, ["12000"], "deployment controller service", OS_RUNTIME,
          "runtime"),
    _flow(P.CONTROLLER, P.FRONTEND, ["12001"], "deployment service", OS_RUNTIME, "runtime"),
    _flow(P.SERVERS, P.SQL, ["1433"], "database connection", OS_RUNTIME, "database"),
    _flow(P.SERVERS, P.SQL, ["11000-11999"], "database nodes (Redirect policy inside Azure)",
          SQL_CONNECTIVITY, "database"),
    # --- monitoring ----------------------------------------------------------------------
    _flow(P.FRONTEND, P.FRONTEND, ["80"], "IIS monitoring", OS_MONITORING, "monitoring"),
    _flow(P.FRONTEND, P.CONTROLLER, ["12000"], "deployment controller service monitoring",
          OS_MONITORING, "monitoring"),
    _flow(P.FRONTEND, P.FRONTEND, ["12001"], "deployment service monitoring", OS_MONITORING,
          "monitoring"),
    _flow(P.FRONTEND, P.FRONTEND, ["12002"], "scheduler service monitoring", OS_MONITORING,
          "monitoring"),
    _flow(P.CONTROLLER, P.FRONTEND, ["80"], "IIS monitoring", OS_MONITORING, "monitoring"),
    _flow(P.CONTROLLER, P.FRONTEND, ["12001"], "deployment service monitoring", OS_MONITORING,
          "monitoring"),
    _flow(P.CONTROLLER, P.FRONTEND, ["12002"], "scheduler service monitoring", OS_MONITORING,
          "monitoring"),
    # --- LifeTime: both ways, with every server of the other environments ----------------
    _flow(P.LIFETIME, P.ENVIRONMENT_SERVERS, ["80", "443"], "LifeTime manages the environment",
          OS_LIFETIME, "lifetime"),
    _flow(P.ENVIRONMENT_SERVERS, P.LIFETIME, ["80", "443"], "the environment answers LifeTime",
          OS_LIFETIME, "lifetime"),
    # --- what the setup itself needs -----------------------------------------------------
    _flow(P.SERVERS, P.DOWNLOADS, ["443"],
          "PowerShell Gallery, OutSystems installers and prerequisites",
          SETUPTOOLS_DOWNLOADS, "setup"),
    _flow(P.FRONTEND, P.CONTROLLER, ["80"], "the front-end's setup waits for Service Center",
          SETUPTOOLS_SERVICE_CENTER, "setup"),
    _flow(P.SERVERS, P.KEY_VAULT, ["443"], "secrets, with the server's managed identity",
          SETUP_CONTRACT, "setup"),
    _flow(P.SERVERS, P.STORAGE, ["443"], "setup logs and configuration to the file share",
          SETUP_CONTRACT, "setup"),
    # --- Azure's own needs ----------------------------------------------------------------
    _flow(P.GATEWAY_MANAGER, P.GATEWAY, ["65200-65535"], "Application Gateway v2 infrastructure",
          APP_GATEWAY_NSG, "gateway"),
    _flow(P.AZURE_LOAD_BALANCER, P.GATEWAY, ["0-65535"], "Azure Load Balancer probes",
          APP_GATEWAY_NSG, "gateway"),
    _flow(P.GATEWAY, P.INTERNET, ["0-65535"], "outbound Internet must not be blocked",
          APP_GATEWAY_NSG, "gateway"),
    _flow(P.BASTION, P.SERVERS, ["3389"], "administrators' RDP through Bastion", BASTION_NSG,
          "administration"),
)  # fmt: skip

#: What must stay closed: nothing of a server but its gateway faces the Internet.
FORBIDDEN: Final[tuple[Flow, ...]] = (
    _flow(P.INTERNET, P.SERVERS, ["3389"], "Remote Desktop", CLOSED_PORTS, "administration"),
    _flow(P.INTERNET, P.SERVERS, ["5985", "5986"], "WinRM (PowerShell remoting)", CLOSED_PORTS,
          "administration"),
    _flow(P.INTERNET, P.SERVERS, ["12000-12004"], "OutSystems services", SETUPTOOLS_FIREWALL,
          "runtime"),
    _flow(P.INTERNET, P.SERVERS, ["5672"], "RabbitMQ", SETUPTOOLS_FIREWALL, "runtime"),
    _flow(P.INTERNET, P.SERVERS, ["80", "443"], "servers are reached only through the gateway",
          CLOSED_PORTS, "runtime"),
    _flow(P.INTERNET, P.SQL, ["1433"], "the databases are reachable from the platform only",
          CLOSED_PORTS, "database"),
)  # fmt: skip

#: The roles of `Install-OutSystems.ps1` and the parties a server of that role plays.
SETUP_ROLES: Final[dict[str, frozenset[Party]]] = {
    "frontend": frozenset({P.FRONTEND, P.ENVIRONMENT_SERVERS, P.SERVERS}),
    "controller": frozenset({P.CONTROLLER, P.ENVIRONMENT_SERVERS, P.SERVERS}),
    "standalone": frozenset({P.FRONTEND, P.CONTROLLER, P.ENVIRONMENT_SERVERS, P.SERVERS}),
    # LifeTime's environment has its own controller and front-end on the one server.
    "lifetime": frozenset({P.LIFETIME, P.FRONTEND, P.CONTROLLER, P.SERVERS}),
}


def _parties(role: str) -> frozenset[Party]:
    try:
        return SETUP_ROLES[role]
    except KeyError:
        raise ValueError(f"unknown setup role {role!r}; one of {', '.join(SETUP_ROLES)}") from None


def inbound_ports(
    role: str, categories: Iterable[Category] = ("runtime", "monitoring", "lifetime", "setup")
) -> frozenset[int]:
    """The TCP ports a server of `role` must accept (e.g. for its Windows firewall).

    By default OutSystems' own flows; add "administration" for RDP from Bastion.
    """
    wanted = set(categories)
    played = _parties(role)
    found: set[int] = set()
    for flow in REQUIRED:
        if flow.category in wanted and flow.destination in played:
            for port_range in flow.ports:
                found.update(range(port_range.low, port_range.high + 1))
    return frozenset(found)


def setup_needs(role: str) -> tuple[Flow, ...]:
    """The flows a server of `role` opens itself while it is set up: the database, the
    downloads, Key Vault, the file share and, for a front-end, its controller."""
    played = _parties(role)
    needed: list[Flow] = []
    for flow in REQUIRED:
        if flow.source not in played:
            continue
        if flow.source is P.FRONTEND and flow.destination is P.CONTROLLER:
            # A front-end waits for its controller, registers with it (12000) and joins its
            # cache invalidation (5672); on a server that is its own controller this is local.
            if P.CONTROLLER not in played and flow.category in ("runtime", "setup"):
                needed.append(flow)
        elif flow.category in ("setup", "database"):
            needed.append(flow)
    return tuple(needed)

"""Every Azure resource name of a platform, derived from its solution id and environment.

Names are deterministic (the same spec always yields the same names, so a redeploy updates in
place) and valid under Azure's rules for every valid solution id: the worst case is a 6-character
id with the `life` environment. Globally unique names (SQL servers, storage accounts, public IP
DNS labels) carry a suffix derived from the subscription and resource group, in the spirit of
ARM templates' `uniqueString(subscription().id, resourceGroup().id)`.
"""

from __future__ import annotations

import base64
import hashlib
import re
from dataclasses import dataclass
from typing import Final, Literal

Environment = Literal["dev", "test", "prod", "life"]
#: The four environments of every platform, in the order they are presented.
ENVIRONMENTS: Final[tuple[Environment, ...]] = ("dev", "test", "prod", "life")
#: The pseudo-environment of resources every environment shares (group, network, storage).
SHARED: Final = "shared"

SOLUTION_ID_MAX_LENGTH: Final = 6
SOLUTION_ID_RE: Final = re.compile(r"[a-z][a-z0-9]{0,5}")
SUFFIX_LENGTH: Final = 13

#: Name of the Custom Script Extension that sets OutSystems up (on VMs and in the scale set).
SETUP_EXTENSION: Final = "outsystems-setup"
#: Azure requires this exact name for the subnet of a Bastion host.
BASTION_SUBNET: Final = "AzureBastionSubnet"
#: The SQL admin login of platforms named by the `legacy` scheme (see `NamingScheme`).
LEGACY_SQL_ADMIN_LOGIN: Final = "sqladmin"

#: The content type of a password the app generated: `text/plain; nonce=<nonce>` records the
#: nonce its value was derived from (`arm.secrets`). The content type, not a tag: ARM's
#: management plane answers a secret's GET with its vault's tags (Azure/azure-rest-api-specs,
#: specification/keyvault/resource-manager/Microsoft.KeyVault/KeyVault/Secret.tsp: "Tags
#: assigned to the key vault resource", read-only), but with the secret's own `contentType`.
PASSWORD_CONTENT_TYPE: Final = "text/plain"
NONCE_PARAMETER: Final = "nonce"

#: How a platform's resources are named. `marketplace` follows the OutSystems Azure Marketplace
#: template's quick reference (OutSystems/docs-product,
#: src/setup-infra-platform/setup/azure/quick-reference.md, "Resources Mapping", read at commit
#: 298be4ea): SQL server `<sol>-<env>-srv<suffix>`, databases `<sol>-<env>-db`,
#: `<sol>-<env>session-db`, `<sol>-<env>log-db`, gateway public IP `<sol>-<env>-appgw-PIP`, SQL
#: admin login `<VM admin user>-sql`. `legacy` is how this app named them before: platforms
#: deployed with it keep it, because renaming a SQL server, a database or its admin login means
#: a new resource (ARM cannot rename; `administratorLogin` cannot change).
NamingScheme = Literal["marketplace", "legacy"]
NAMING_SCHEMES: Final[tuple[NamingScheme, ...]] = ("marketplace", "legacy")

Catalog = Literal["platform", "session", "logging"]
CATALOGS: Final[tuple[Catalog, ...]] = ("platform", "session", "logging")


def is_valid_solution_id(solution_id: str) -> bool:
    """Lowercase letters and digits, starting with a letter, at most 6 characters."""
    return SOLUTION_ID_RE.fullmatch(solution_id) is not None


def default_resource_group(solution_id: str) -> str:
    """The resource group a platform goes to when its spec names none."""
    return f"{solution_id}-rg"


def unique_suffix(subscription_id: str, resource_group: str) -> str:
    """13 lowercase base32 characters, stable for one subscription and resource group.

    ARM compares both case-insensitively, so they are lowercased first: the same platform
    written with a different case must not get new global names.
    """
    seed = f"/subscriptions/{subscription_id}/resourceGroups/{resource_group}".lower()
    digest = hashlib.sha256(seed.encode("utf-8")).digest()
    return base64.b32encode(digest).decode("ascii")[:SUFFIX_LENGTH].lower()


@dataclass(frozen=True)
class PlatformNames:
    """The names of one platform's resources.

    Build it with `PlatformNames.of(...)`; methods taking `env` name per-environment resources.
    """

    solution_id: str
    suffix: str
    scheme: NamingScheme = "marketplace"

    @classmethod
    def of(
        cls,
        solution_id: str,
        subscription_id: str,
        resource_group: str,
        scheme: NamingScheme = "marketplace",
    ) -> PlatformNames:
        """Names for a platform; raises `ValueError` for an invalid solution id."""
        if not is_valid_solution_id(solution_id):
            raise ValueError(
                f"invalid solution id {solution_id!r}: use 1-{SOLUTION_ID_MAX_LENGTH} lowercase "
                "letters and digits, starting with a letter"
            )
        return cls(solution_id, unique_suffix(subscription_id, resource_group), scheme)

    @property
    def legacy(self) -> bool:
        return self.scheme == "legacy"

    # --- shared ---------------------------------------------------------------------------
    @property
    def vnet(self) -> str:
        return f"{self.solution_id}-vnet"

    @property
    def gateway_subnet(self) -> str:
        # Not "GatewaySubnet": Azure reserves that name for VPN/ExpressRoute gateways.
        return f"{self.solution_id}-appgw-subnet"

    @property
    def gateway_nsg(self) -> str:
        return f"{self.solution_id}-appgw-nsg"

    @property
    def storage_account(self) -> str:
        return f"{self.solution_id}{self.suffix}"

    @property
    def file_share(self) -> str:
        return f"{self.solution_id}-config"

    @property
    def bastion(self) -> str:
        return f"{self.solution_id}-bastion"

    @property
    def bastion_public_ip(self) -> str:
        return f"{self.solution_id}-bastion-pip"

    @property
    def nat_gateway(self) -> str:
        """The NAT gateway that gives the environment subnets their outbound Internet access."""
        return f"{self.solution_id}-natgw"

    @property
    def nat_gateway_public_ip(self) -> str:
        return f"{self.solution_id}-natgw-pip"

    @property
    def gateway_identity(self) -> str:
        """The managed identity the gateways read the TLS certificate from Key Vault with."""
        return f"{self.solution_id}-appgw-id"

    @property
    def key_vault(self) -> str:
        """The platform's Key Vault: globally unique, 3-24 letters, digits and single hyphens.

        The worst case (a 6-character id) is 23 characters.
        """
        return f"{self.solution_id}-kv-{self.suffix}"

    def key_vault_uri(self, vault_dns_suffix: str = "vault.azure.net") -> str:
        """The vault's data-plane URI, as ARM reports it in `properties.vaultUri`."""
        return f"https://{self.key_vault}.{vault_dns_suffix}/"

    # --- per environment ------------------------------------------------------------------
    def prefix(self, env: Environment) -> str:
        return f"{self.solution_id}-{env}"

    def subnet(self, env: Environment) -> str:
        return f"{self.prefix(env)}-subnet"

    def identity(self, env: Environment) -> str:
        """The user-assigned identity of the environment's servers (VM and scale set)."""
        return f"{self.prefix(env)}-id"

    def waf_policy(self, env: Environment) -> str:
        return f"{self.prefix(env)}-waf"

    def nsg(self, env: Environment) -> str:
        return f"{self.prefix(env)}-nsg"

    def vm(self, env: Environment) -> str:
        """The Platform Server VM (the Deployment Controller in a production farm)."""
        return f"{self.prefix(env)}-vm"

    def computer_name(self, env: Environment) -> str:
        # Windows computer names hold at most 15 characters; the VM name fits (worst case 14).
        return self.vm(env)

    def nic(self, env: Environment) -> str:
        return f"{self.prefix(env)}-nic"

    def os_disk(self, env: Environment) -> str:
        return f"{self.vm(env)}-osdisk"

    def data_disk(self, env: Environment) -> str:
        return f"{self.vm(env)}-datadisk"

    def sql_server(self, env: Environment) -> str:
        kind = "sql" if self.legacy else "srv"
        return f"{self.prefix(env)}-{kind}{self.suffix}"

    def sql_admin_login(self, vm_admin_username: str) -> str:
        """The SQL admin login: `<VM admin user>-sql` as in the Marketplace template."""
        return LEGACY_SQL_ADMIN_LOGIN if self.legacy else f"{vm_admin_username}-sql"

    def sql_server_fqdn(self, env: Environment) -> str:
        return f"{self.sql_server(env)}.database.windows.net"

    def database(self, env: Environment, catalog: Catalog) -> str:
        if self.legacy:
            return f"{self.solution_id}_{env}_{catalog}"
        infix = {"platform": "-", "session": "session-", "logging": "log-"}[catalog]
        return f"{self.prefix(env)}{infix}db"

    def sql_vnet_rule(self, env: Environment) -> str:
        return f"{self.prefix(env)}-subnet-rule"

    def public_ip(self, env: Environment) -> str:
        """The gateway's public IP."""
        return f"{self.prefix(env)}-pip" if self.legacy else f"{self.prefix(env)}-appgw-PIP"

    def dns_label(self, env: Environment) -> str:
        """The gateway's public DNS label: unique per region, so it carries the suffix."""
        return f"{self.prefix(env)}-{self.suffix}"

    def app_gateway(self, env: Environment) -> str:
        return f"{self.prefix(env)}-appgw"

    # --- production farm ------------------------------------------------------------------
    @property
    def scale_set(self) -> str:
        return f"{self.solution_id}-prod-vmss"

    @property
    def scale_set_computer_name_prefix(self) -> str:
        # Windows scale sets append 6 characters to a prefix of at most 9.
        return f"{self.solution_id}-fe"

    @property
    def scale_set_nic(self) -> str:
        return f"{self.scale_set}-nic"

    @property
    def scaling_action_group(self) -> str:
        return f"{self.solution_id}-prod-scale-ag"

    @property
    def scaling_action_group_short_name(self) -> str:
        # Action groups need a short name of at most 12 characters (SMS/email sender).
        return f"{self.solution_id}-scale"

    @property
    def cpu_high_alert(self) -> str:
        return f"{self.solution_id}-prod-frontends-cpu-high"

    @property
    def cpu_low_alert(self) -> str:
        return f"{self.solution_id}-prod-frontends-cpu-low"


# --- Secrets in the platform's Key Vault -------------------------------------------------------
#
# Names of Key Vault secrets: 1-127 letters, digits and hyphens.

SecretKind = Literal["password", "private-key", "certificate"]


@dataclass(frozen=True)
class SecretName:
    """One secret of the platform's vault: its name and what it holds."""

    name: str
    kind: SecretKind
    environment: str


def sql_admin_secret(env: Environment) -> SecretName:
    return SecretName(f"{env}-sql-admin-password", "password", env)


def vm_admin_secret(env: Environment) -> SecretName:
    return SecretName(f"{env}-vm-admin-password", "password", env)


def frontends_admin_secret() -> SecretName:
    return SecretName("prod-frontends-admin-password", "password", "prod")


def private_key_secret(env: Environment) -> SecretName:
    return SecretName(f"{env}-private-key", "private-key", env)


def outsystems_admin_secret() -> SecretName:
    """The Service Center and LifeTime `admin` password: one for the whole platform, because
    every environment's admin password must equal LifeTime's or LifeTime cannot synchronize
    (OutSystems' "No default credentials in Platform Server" page)."""
    return SecretName("outsystems-admin-password", "password", "shared")


def gateway_certificate_secret(env: Environment) -> SecretName:
    """The self-signed certificate of an environment's gateway (base64 PFX)."""
    return SecretName(f"{env}-gateway-certificate", "certificate", env)

"""The desired resource graph of a platform, as plain data.

`build_topology(spec)` lists every ARM resource of the four environments with its full REST body
and its dependencies, the way the OutSystems Marketplace template lays a platform out (see the
design's `outsystems-topology.md`). It is pure and deterministic: the orchestration recomputes
it from the spec, the plan compares it with the live state, and activities PUT its bodies.

Secrets and the setup script are `{{PLACEHOLDER}}` tokens (`outsystems.placeholders`) that the
`arm/` adapter fills when it sends a body, so the graph never holds a secret.
"""

from __future__ import annotations

import hashlib
import heapq
import uuid
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from outsystems.names import (
    BASTION_SUBNET,
    CATALOGS,
    ENVIRONMENTS,
    NONCE_PARAMETER,
    PASSWORD_CONTENT_TYPE,
    SETUP_EXTENSION,
    SHARED,
    Environment,
    PlatformNames,
    SecretName,
    frontends_admin_secret,
    gateway_certificate_secret,
    outsystems_admin_secret,
    private_key_secret,
    sql_admin_secret,
    vm_admin_secret,
)
from outsystems.placeholders import (
    ALERT_WEBHOOK_URL,
    KEY_VAULT_SECRET,
    SCALING_POLICY_MAC,
    SECRET_NONCE,
    SECRET_VALUE,
    SETUP_SCRIPT_B64,
    TENANT_ID,
    reference,
    token,
)
from outsystems.policy import POLICY_MAC_TAG, policy_to_tags
from outsystems.resource_types import (
    ACTION_GROUP,
    APP_GATEWAY,
    BASTION_HOST,
    FILE_SHARE,
    IDENTITY,
    KEY_VAULT,
    KEY_VAULT_SECRET_TYPE,
    METRIC_ALERT,
    NAT_GATEWAY,
    NIC,
    NSG,
    PUBLIC_IP,
    RESOURCE_GROUP,
    ROLE_ASSIGNMENT,
    SCALE_SET,
    SQL_DATABASE,
    SQL_SERVER,
    SQL_VNET_RULE,
    STORAGE_ACCOUNT,
    VM,
    VM_EXTENSION,
    VNET,
    WAF_POLICY,
    api_version,
)
from outsystems.spec import BASTION, GATEWAY, AddressPlan, FrontendsSpec, PlatformSpec
from outsystems.tags import (
    ENVIRONMENT_TAG,
    MANAGED_BY_TAG,
    MANAGED_BY_VALUE,
    NAMING_TAG,
    SOLUTION_TAG,
)

# --- Built-in Azure roles the platform's identities get (ids are the same in every tenant; from
# Microsoft's "Azure built-in roles" reference, MicrosoftDocs/azure-docs
# articles/role-based-access-control/built-in-roles) ------------------------------------------

#: Read the value of a secret (Key Vault RBAC data action `secrets/getSecret/action`).
KEY_VAULT_SECRETS_USER: Final = "4633458b-17de-408a-b874-0445c86b69e6"
#: Read and write files over OAuth REST with `x-ms-file-request-intent: backup`.
STORAGE_FILE_DATA_PRIVILEGED_CONTRIBUTOR: Final = "69566ab7-960f-475b-8e7c-b3118f30c6bd"
_ROLE_NAMESPACE: Final = uuid.UUID("0c8d7f1e-3c55-4d6a-9a0f-7b1f2a4c9e21")

#: Key Vault's soft delete keeps a deleted vault (and its secrets) this many days; with purge
#: protection nobody can shorten it, so a redeploy after a teardown recovers the vault.
KEY_VAULT_RETENTION_DAYS: Final = 90


# --- Scaling alerts ---------------------------------------------------------------------------

CPU_METRIC: Final = "Percentage CPU"
CPU_HIGH_THRESHOLD: Final = 70
CPU_HIGH_WINDOW: Final = "PT5M"
CPU_LOW_THRESHOLD: Final = 25
CPU_LOW_WINDOW: Final = "PT15M"
ALERT_EVALUATION_FREQUENCY: Final = "PT1M"

# --- Platform Server sizing and images --------------------------------------------------------

DATA_DISK_GB: Final = 256
DISK_SKU: Final = "Premium_LRS"
SQL_SKU: Final = {"name": "S3", "tier": "Standard"}
SQL_COLLATION: Final = "SQL_Latin1_General_CP1_CI_AI"
FILE_SHARE_QUOTA_GB: Final = 100
WINDOWS_SERVER_IMAGE: Final = {
    "publisher": "MicrosoftWindowsServer",
    "offer": "WindowsServer",
    "sku": "2022-datacenter",
}
OUTSYSTEMS_IMAGE_PUBLISHER: Final = "outsystems"
OUTSYSTEMS_IMAGE_OFFER: Final = "os11-vm-baseimage"
HEALTH_PROBE_PATH: Final = "/servicecenter/_ping.aspx"
DRAIN_TIMEOUT_SECONDS: Final = 300
# Gateway instances: production takes the load, the others only developers and LifeTime.
_GATEWAY_CAPACITY: Final = {"prod": (2, 10), "other": (1, 2)}
#: TLS 1.2+ with strong ciphers only (Microsoft's Application Gateway TLS policy overview: the
#: predefined policy AppGwSslPolicy20220101S, minimum protocol TLSv1_2).
GATEWAY_TLS_POLICY: Final = {"policyType": "Predefined", "policyName": "AppGwSslPolicy20220101S"}
#: Microsoft's Default Rule Set, which Microsoft recommends over the OWASP CRS on WAF_v2
#: (MicrosoftDocs azure-docs, articles/web-application-firewall/ag/
#: application-gateway-crs-rulegroups-rules.md).
WAF_RULE_SET: Final = {"ruleSetType": "Microsoft_DefaultRuleSet", "ruleSetVersion": "2.1"}
#: Request limits of the WAF (articles/web-application-firewall/ag/
#: application-gateway-waf-request-size-limits.md): with request body enforcement off, bodies
#: larger than the inspection limit pass after their first 128 KB are inspected, so Service
#: Studio publishes and LifeTime deployments (modules of tens of MB) get through; file uploads
#: are allowed up to the WAF_v2 maximum.
WAF_POLICY_SETTINGS: Final = {
    "requestBodyCheck": True,
    "requestBodyEnforcement": False,
    "requestBodyInspectLimitInKB": 128,
    "maxRequestBodySizeInKb": 2000,
    "fileUploadEnforcement": True,
    "fileUploadLimitInMb": 4000,
}
#: How long a front-end instance gets between the scale set's terminate notification and its
#: deletion (Scheduled Events `notBeforeTimeout`, 5-15 minutes): time to leave the gateway's
#: pool and let connection draining end.
TERMINATE_NOTICE: Final = "PT10M"

# --- The setup script on every server ---------------------------------------------------------

Role = Literal["controller", "frontend", "standalone", "lifetime"]
#: The parameters of `Install-OutSystems.ps1`, in the order of its `param()` block.
SETUP_SCRIPT_PARAMETERS: Final = (
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
SETUP_SCRIPT_PATH: Final = r"C:\OutSystems\Install-OutSystems.ps1"
IMDS_USER_DATA_URL: Final = (
    "http://169.254.169.254/metadata/instance/compute/userData?api-version=2021-01-01&format=text"
)
CUSTOM_SCRIPT_EXTENSION: Final = {
    "publisher": "Microsoft.Compute",
    "type": "CustomScriptExtension",
    "typeHandlerVersion": "1.10",
    "autoUpgradeMinorVersion": True,
}


# --- The graph --------------------------------------------------------------------------------


class GraphError(ValueError):
    """The resources do not form a valid graph (duplicate ids, unknown dependencies, a cycle)."""


@dataclass(frozen=True)
class Resource:
    """One ARM resource: its id, type, API version, full PUT body and direct dependencies."""

    id: str
    type: str
    name: str
    api_version: str
    environment: str
    body: Mapping[str, Any]
    depends_on: tuple[str, ...] = ()

    def __hash__(self) -> int:
        # The body is a dict (what the SDKs take), so hash by the id, which equal resources share.
        return hash(_key(self.id))


def _key(resource_id: str) -> str:
    # ARM ids compare case-insensitively.
    return resource_id.lower()


@dataclass(frozen=True)
class ResourceGraph:
    """Resources in dependency order (each after everything it depends on).

    Build it with `ResourceGraph.of(...)`, which checks the graph and sorts it.
    """

    resources: tuple[Resource, ...]
    _index: Mapping[str, Resource] = field(repr=False, compare=False)

    @classmethod
    def of(cls, resources: Iterable[Resource]) -> ResourceGraph:
        """The sorted graph; raises `GraphError` for duplicates, unknown ids or a cycle.

        Among resources whose dependencies are met, the given order is kept, so the result
        is deterministic.
        """
        given = list(resources)
        index: dict[str, Resource] = {}
        for resource in given:
            if _key(resource.id) in index:
                raise GraphError(f"duplicate resource id {resource.id}")
            index[_key(resource.id)] = resource
        for resource in given:
            for dependency in resource.depends_on:
                if _key(dependency) not in index:
                    raise GraphError(f"{resource.id} depends on unknown resource {dependency}")
        return cls(_topological_order(given), index)

    def __iter__(self) -> Iterator[Resource]:
        return iter(self.resources)

    def __len__(self) -> int:
        return len(self.resources)

    def __contains__(self, resource_id: object) -> bool:
        return isinstance(resource_id, str) and _key(resource_id) in self._index

    def get(self, resource_id: str) -> Resource:
        """The resource with this id (compared case-insensitively); `KeyError` if absent."""
        try:
            return self._index[_key(resource_id)]
        except KeyError:
            raise KeyError(resource_id) from None

    def for_environment(self, environment: str) -> tuple[Resource, ...]:
        """The resources of one environment (or `shared`), in dependency order."""
        return tuple(r for r in self.resources if r.environment == environment)


def _topological_order(resources: list[Resource]) -> tuple[Resource, ...]:
    position = {_key(r.id): i for i, r in enumerate(resources)}
    missing = {_key(r.id): {_key(d) for d in r.depends_on} for r in resources}
    dependents: dict[str, list[str]] = {}
    for resource in resources:
        for dependency in missing[_key(resource.id)]:
            dependents.setdefault(dependency, []).append(_key(resource.id))
    ready = [position[k] for k, deps in missing.items() if not deps]
    heapq.heapify(ready)
    ordered: list[Resource] = []
    while ready:
        resource = resources[heapq.heappop(ready)]
        ordered.append(resource)
        for dependent in dependents.get(_key(resource.id), ()):
            missing[dependent].discard(_key(resource.id))
            if not missing[dependent]:
                heapq.heappush(ready, position[dependent])
    if len(ordered) != len(resources):
        stuck = sorted(r.id for r in resources if missing[_key(r.id)])
        raise GraphError(f"dependency cycle among {', '.join(stuck)}")
    return tuple(ordered)


# --- Building the platform's graph ------------------------------------------------------------


def build_topology(spec: PlatformSpec) -> ResourceGraph:
    """The desired resources of the whole platform described by `spec`."""
    return ResourceGraph.of(_Builder(spec).resources())


def setup_role(spec: PlatformSpec, env: Environment) -> Role:
    """The role the setup script gives the environment's VM."""
    if env == "life":
        return "lifetime"
    if env == "prod" and spec.is_farm:
        return "controller"
    return "standalone"


def _ps_quote(value: str) -> str:
    """A PowerShell single-quoted literal."""
    return "'" + value.replace("'", "''") + "'"


def role_assignment_name(scope: str, principal: str, role: str) -> str:
    """The assignment's name: a GUID of (scope, principal, role), like Bicep's `guid()` idiom,
    so that applying it again never creates a second assignment."""
    return str(uuid.uuid5(_ROLE_NAMESPACE, f"{scope.lower()}|{principal.lower()}|{role}"))


def role_definition_id(subscription_id: str, role: str) -> str:
    return (
        f"/subscriptions/{subscription_id}/providers/Microsoft.Authorization/roleDefinitions/{role}"
    )


def _ref(resource_id: str) -> dict[str, str]:
    return {"id": resource_id}


class _Builder:
    """Builds the resources of one spec; one method per resource kind."""

    def __init__(self, spec: PlatformSpec) -> None:
        self.spec = spec
        self.names = PlatformNames.of(
            spec.solution_id, spec.subscription_id, spec.resource_group, spec.naming
        )
        self.plan: AddressPlan | None = spec.address_plan()
        self.group_id = (
            f"/subscriptions/{spec.subscription_id}/resourceGroups/{spec.resource_group}"
        )
        self.location = spec.location
        self.built: list[Resource] = []

    # --- plumbing ---------------------------------------------------------------------------
    def id(self, resource_type: str, *names: str) -> str:
        if resource_type == RESOURCE_GROUP:
            return self.group_id
        namespace, *types = resource_type.split("/")
        if len(types) != len(names):
            raise ValueError(f"{resource_type} needs {len(types)} names, got {names}")
        path = "/".join(f"{t}/{n}" for t, n in zip(types, names, strict=True))
        return f"{self.group_id}/providers/{namespace}/{path}"

    def tags(self, environment: str) -> dict[str, str]:
        return {
            **self.spec.tags,
            MANAGED_BY_TAG: MANAGED_BY_VALUE,
            SOLUTION_TAG: self.spec.solution_id,
            ENVIRONMENT_TAG: environment,
        }

    def add(
        self,
        resource_type: str,
        names: tuple[str, ...],
        environment: str,
        body: dict[str, Any],
        depends_on: Iterable[str],
        *,
        resource_id: str | None = None,
    ) -> str:
        """Add a resource; `resource_id` for extension resources (ids below another resource)."""
        resource_id = resource_id or self.id(resource_type, *names)
        self.built.append(
            Resource(
                id=resource_id,
                type=resource_type,
                name=names[-1] if names else self.spec.resource_group,
                api_version=api_version(resource_type),
                environment=environment,
                body=body,
                depends_on=tuple(dict.fromkeys(depends_on)),
            )
        )
        return resource_id

    def located(self, environment: str, **rest: Any) -> dict[str, Any]:
        """A body with the platform's location and tags."""
        return {"location": self.location, "tags": self.tags(environment), **rest}

    @property
    def new_network(self) -> bool:
        return self.plan is not None

    def subnet_id(self, key: str) -> str:
        """The id of an environment's, the gateway's or Bastion's subnet."""
        existing = self.spec.network.existing_subnet_ids
        if existing is not None:
            return existing.subnet_id(key)
        return f"{self.id(VNET, self.names.vnet)}/subnets/{self.subnet_name(key)}"

    def subnet_name(self, key: str) -> str:
        if key == GATEWAY:
            return self.names.gateway_subnet
        if key == BASTION:
            return BASTION_SUBNET
        return self.names.subnet(_environment(key))

    def network_dependencies(self) -> tuple[str, ...]:
        """What a reference to one of our subnets depends on (nothing for the user's own)."""
        return (self.id(VNET, self.names.vnet),) if self.new_network else ()

    def joins_pool_through_nic(self) -> bool:
        # In a new VNet the gateway lists the VMs' static addresses, so gateways and VMs are
        # built in parallel. In the user's subnets the addresses are unknown until the NICs
        # exist, so the NICs join the gateway's backend pool themselves.
        return not self.new_network

    def static_address(self, env: Environment) -> str | None:
        return self.plan.static_address(env) if self.plan is not None else None

    def controller_address(self, env: Environment) -> str:
        """How the environment's servers reach its controller: static IP, else host name."""
        return self.static_address(env) or self.names.computer_name(env)

    # --- the platform -----------------------------------------------------------------------
    def resources(self) -> list[Resource]:
        self.resource_group()
        if self.new_network:
            self.network()
        share = self.storage()
        self.vault = self.key_vault()
        self.admin_secret = self.secret(outsystems_admin_secret())
        if self.spec.bastion:
            self.bastion()
        tls = self.spec.tls
        gateway_identity = (
            tls.identity_id if tls is not None and tls.identity_id else self.gateway_identity()
        )
        for env in ENVIRONMENTS:
            self.environment(env, share, gateway_identity)
        return self.built

    def resource_group(self) -> None:
        tags = {**self.tags(SHARED), NAMING_TAG: self.spec.naming}
        self.add(RESOURCE_GROUP, (), SHARED, {"location": self.location, "tags": tags}, ())

    def network(self) -> None:
        assert self.plan is not None
        plan = self.plan
        nsgs = {env: self.environment_nsg(env, plan) for env in ENVIRONMENTS}
        # A new VNet's subnets are private (no default outbound access, the default of the
        # API version used here and set explicitly below): the environment subnets reach the
        # Internet (setup downloads, the mobile app builder, LifeTime through the gateways)
        # through the NAT gateway. The spec refuses any other outbound for a new VNet.
        nat = self.nat_gateway()
        gateway_nsg = self.add(
            NSG,
            (self.names.gateway_nsg,),
            SHARED,
            self.located(SHARED, properties={"securityRules": _gateway_rules()}),
            (self.group_id,),
        )
        subnets: list[dict[str, Any]] = [
            {
                "name": self.subnet_name(env),
                "properties": {
                    "addressPrefix": str(plan.subnet(env)),
                    "networkSecurityGroup": _ref(nsgs[env]),
                    "serviceEndpoints": [
                        {"service": "Microsoft.Sql", "locations": [self.location]}
                    ],
                    "natGateway": _ref(nat),
                    "defaultOutboundAccess": False,
                },
            }
            for env in ENVIRONMENTS
        ]
        # The gateway's subnet gets no NAT gateway: it is dedicated to the Application
        # Gateway, whose own public frontend carries its traffic, and a NAT gateway would take
        # precedence over it for outbound (Application Gateway infrastructure configuration;
        # NAT gateway overview: "NAT gateway >> Instance-level public IP").
        subnets.append(
            {
                "name": self.subnet_name(GATEWAY),
                "properties": {
                    "addressPrefix": str(plan.subnet(GATEWAY)),
                    "networkSecurityGroup": _ref(gateway_nsg),
                },
            }
        )
        if self.spec.bastion:
            subnets.append(
                {
                    "name": BASTION_SUBNET,
                    "properties": {"addressPrefix": str(plan.subnet(BASTION))},
                }
            )
        # Subnets are inline: a VNet PUT without them would delete them.
        body = self.located(
            SHARED,
            properties={
                "addressSpace": {"addressPrefixes": [str(plan.address_space)]},
                "subnets": subnets,
            },
        )
        self.add(
            VNET,
            (self.names.vnet,),
            SHARED,
            body,
            (self.group_id, *nsgs.values(), gateway_nsg, nat),
        )

    def nat_gateway(self) -> str:
        """The NAT gateway of the environment subnets, with its Standard static public IP."""
        address = self.public_ip(SHARED, self.names.nat_gateway_public_ip, dns_label=None)
        body = self.located(
            SHARED, sku={"name": "Standard"}, properties={"publicIpAddresses": [_ref(address)]}
        )
        return self.add(
            NAT_GATEWAY, (self.names.nat_gateway,), SHARED, body, (self.group_id, address)
        )

    def environment_nsg(self, env: Environment, plan: AddressPlan) -> str:
        """The environment subnet's NSG: exactly the flows of `outsystems.network.requirements`.

        Inbound, each rule lets in one group of the matrix' flows; everything else from the
        VNet is denied (Azure's default AllowVNetInBound would let it in), and the Internet is
        kept out by Azure's DenyAllInbound. Outbound, the flows that leave the VNet are named;
        Azure's default outbound rules stay (Windows Update and activation need them too).
        """
        own = str(plan.subnet(env))
        servers = self.nsg_servers(env, plan)
        rules = [
            _rule(
                "allow-gateway-to-frontends",
                100,
                "Inbound",
                str(plan.subnet(GATEWAY)),
                servers,
                ["80"],
                description="Application Gateway to the front-ends: requests and health probes "
                "on the backend port (TLS ends at the gateway)",
            )
        ]
        if env == "prod" and self.spec.is_farm:
            controller = plan.static_address(env)
            rules += [
                _rule(
                    "allow-frontends-to-controller",
                    110,
                    "Inbound",
                    own,
                    controller,
                    ["12000", "5672"],
                    description="Front-ends to the Deployment Controller service (12000) and "
                    "the cache invalidation service (5672)",
                ),
                _rule(
                    "allow-platform-servers",
                    120,
                    "Inbound",
                    own,
                    own,
                    ["80", "12001", "12002"],
                    description="Controller and front-ends: deployment service (12001), IIS "
                    "and scheduler monitoring (80, 12002), setup's wait for Service Center (80)",
                ),
            ]
        if env == "life":
            others = [self.nsg_servers(other, plan) for other in ENVIRONMENTS if other != "life"]
            rules.append(
                _rule(
                    "allow-environments-to-lifetime",
                    130,
                    "Inbound",
                    others,
                    plan.static_address("life"),
                    ["80", "443"],
                    description="Servers of dev, test and prod to LifeTime (HTTP and HTTPS)",
                )
            )
        else:
            rules.append(
                _rule(
                    "allow-lifetime",
                    130,
                    "Inbound",
                    plan.static_address("life"),
                    servers,
                    ["80", "443"],
                    description="LifeTime to this environment's servers (HTTP and HTTPS)",
                )
            )
        if self.spec.bastion:
            rules.append(
                _rule(
                    "allow-rdp-from-bastion",
                    140,
                    "Inbound",
                    str(plan.subnet(BASTION)),
                    servers,
                    ["3389"],
                    description="Remote Desktop from Azure Bastion only",
                )
            )
        rules += [
            # Azure's default rules let the whole VNet in; only the rules above may.
            _rule(
                "deny-vnet-inbound",
                4000,
                "Inbound",
                "VirtualNetwork",
                "*",
                ["*"],
                access="Deny",
                protocol="*",
                description="Nothing else from the virtual network (environments stay apart)",
            ),
            _rule(
                "allow-sql-outbound",
                100,
                "Outbound",
                own,
                "Sql",
                ["1433", "11000-11999"],
                description="Azure SQL: 1433, and 11000-11999 for the Redirect connection "
                "policy used inside Azure",
            ),
            _rule(
                "allow-keyvault-outbound",
                110,
                "Outbound",
                own,
                "AzureKeyVault",
                ["443"],
                description="Key Vault: the setup reads its secrets with the managed identity",
            ),
            _rule(
                "allow-storage-outbound",
                120,
                "Outbound",
                own,
                "Storage",
                ["443"],
                description="Storage: the setup copies its logs and configuration to the share",
            ),
            _rule(
                "allow-https-outbound",
                130,
                "Outbound",
                own,
                "Internet",
                ["443"],
                description="Setup downloads, the mobile app builder, LifeTime through the "
                "environments' gateways",
            ),
        ]
        body = self.located(SHARED, properties={"securityRules": rules})
        return self.add(NSG, (self.names.nsg(env),), SHARED, body, (self.group_id,))

    def nsg_servers(self, env: Environment, plan: AddressPlan) -> str:
        """The environment's servers as an NSG prefix: the VM's static address, or the whole
        subnet where the production front-ends of a farm get dynamic addresses."""
        if env == "prod" and self.spec.is_farm:
            return str(plan.subnet(env))
        return plan.static_address(env)

    def storage(self) -> str:
        account = self.names.storage_account
        body = self.located(
            SHARED,
            sku={"name": "Standard_LRS"},
            kind="StorageV2",
            properties={
                "minimumTlsVersion": "TLS1_2",
                "supportsHttpsTrafficOnly": True,
                "allowBlobPublicAccess": False,
                # The servers write their logs with their managed identity (OAuth); nobody
                # needs the account keys.
                "allowSharedKeyAccess": False,
            },
        )
        self.storage_id = self.add(STORAGE_ACCOUNT, (account,), SHARED, body, (self.group_id,))
        share_body = {"properties": {"shareQuota": FILE_SHARE_QUOTA_GB, "enabledProtocols": "SMB"}}
        return self.add(
            FILE_SHARE,
            (account, "default", self.names.file_share),
            SHARED,
            share_body,
            (self.storage_id,),
        )

    def key_vault(self) -> str:
        """The platform's vault: every environment's passwords, private key and certificate."""
        body = self.located(
            SHARED,
            properties={
                "tenantId": token(TENANT_ID),
                "sku": {"family": "A", "name": "standard"},
                # Access by Azure roles, granted per secret to the identity that needs it.
                "enableRbacAuthorization": True,
                "enableSoftDelete": True,
                "softDeleteRetentionInDays": KEY_VAULT_RETENTION_DAYS,
                "enablePurgeProtection": True,
                "publicNetworkAccess": "Enabled",
                "networkAcls": {"defaultAction": "Allow", "bypass": "AzureServices"},
            },
        )
        return self.add(KEY_VAULT, (self.names.key_vault,), SHARED, body, (self.group_id,))

    def secret(self, secret: SecretName, depends_on: Iterable[str] = ()) -> str:
        """A secret of the platform's vault, created once with a value the app generates.

        ARM never returns a secret's value, so applying the resource again never rewrites it
        (see `activities.resources`): a redeploy does not rotate passwords behind the servers'
        back. A password's content type records the nonce its value is derived from, so the app
        can compute it again without reading it.
        """
        content_type = {
            "password": f"{PASSWORD_CONTENT_TYPE}; {NONCE_PARAMETER}={token(SECRET_NONCE)}",
            "private-key": "text/plain",
            "certificate": "application/x-pkcs12",
        }[secret.kind]
        body = {"properties": {"value": token(SECRET_VALUE), "contentType": content_type}}
        return self.add(
            KEY_VAULT_SECRET_TYPE,
            (self.names.key_vault, secret.name),
            secret.environment,
            body,
            (self.vault, *depends_on),
        )

    def secret_id(self, secret: SecretName) -> str:
        return self.id(KEY_VAULT_SECRET_TYPE, self.names.key_vault, secret.name)

    def secret_uri(self, secret: SecretName) -> str:
        """The secret's versionless data-plane URL (gateways follow its latest version)."""
        return f"{self.names.key_vault_uri()}secrets/{secret.name}"

    def identity(self, env: Environment) -> str:
        """The environment's servers' managed identity (Key Vault secrets, the log share)."""
        return self.add(
            IDENTITY, (self.names.identity(env),), env, self.located(env), (self.group_id,)
        )

    def role_assignment(
        self, environment: str, scope: str, identity: str, role: str, depends_on: Iterable[str]
    ) -> str:
        """Grant `identity` the built-in `role` on `scope` (an extension resource of it)."""
        name = role_assignment_name(scope, identity, role)
        body = {
            "properties": {
                "roleDefinitionId": role_definition_id(self.spec.subscription_id, role),
                "principalId": reference(identity, "properties.principalId"),
                "principalType": "ServicePrincipal",
            }
        }
        resource_id = f"{scope}/providers/{ROLE_ASSIGNMENT}/{name}"
        depends = [self.group_id, *depends_on]
        # The identity is ours unless the user brought it (`tls.identityId`).
        if identity in self:
            depends.append(identity)
        return self.add(
            ROLE_ASSIGNMENT, (name,), environment, body, depends, resource_id=resource_id
        )

    def __contains__(self, resource_id: str) -> bool:
        return any(r.id.lower() == resource_id.lower() for r in self.built)

    def bastion(self) -> str:
        address = self.public_ip(SHARED, self.names.bastion_public_ip, dns_label=None)
        body = self.located(
            SHARED,
            sku={"name": "Basic"},
            properties={
                "ipConfigurations": [
                    {
                        "name": "bastion",
                        "properties": {
                            "subnet": _ref(self.subnet_id(BASTION)),
                            "publicIPAddress": _ref(address),
                        },
                    }
                ]
            },
        )
        return self.add(
            BASTION_HOST,
            (self.names.bastion,),
            SHARED,
            body,
            (self.group_id, address, *self.network_dependencies()),
        )

    def gateway_identity(self) -> str:
        # Application Gateway reads a Key Vault certificate only through a user-assigned
        # identity.
        body = self.located(SHARED)
        return self.add(IDENTITY, (self.names.gateway_identity,), SHARED, body, (self.group_id,))

    def public_ip(self, environment: str, name: str, dns_label: str | None) -> str:
        properties: dict[str, Any] = {
            "publicIPAllocationMethod": "Static",
            "publicIPAddressVersion": "IPv4",
        }
        if dns_label is not None:
            properties["dnsSettings"] = {"domainNameLabel": dns_label}
        body = self.located(
            environment, sku={"name": "Standard", "tier": "Regional"}, properties=properties
        )
        return self.add(PUBLIC_IP, (name,), environment, body, (self.group_id,))

    # --- one environment --------------------------------------------------------------------
    def environment(self, env: Environment, share: str, gateway_identity: str) -> None:
        farm = env == "prod" and self.spec.is_farm
        identity = self.identity(env)
        secrets = {
            "sql": self.secret(sql_admin_secret(env)),
            "key": self.secret(private_key_secret(env)),
            "admin": self.admin_secret,
        }
        # What the environment's servers read while they set themselves up: their own
        # secrets (never another environment's) and the share their logs go to.
        grants = [
            self.role_assignment(env, secret, identity, KEY_VAULT_SECRETS_USER, (secret,))
            for secret in secrets.values()
        ]
        grants.append(
            self.role_assignment(
                env,
                self.storage_id,
                identity,
                STORAGE_FILE_DATA_PRIVILEGED_CONTRIBUTOR,
                (self.storage_id,),
            )
        )
        database = self.sql(env, secrets["sql"])
        gateway = self.app_gateway(env, gateway_identity, backend=not farm)
        pool = f"{gateway}/backendAddressPools/{_POOL}"
        in_pool = not farm and self.joins_pool_through_nic()
        nic = self.nic(env, pool if in_pool else None, gateway if in_pool else None)
        vm = self.vm(env, nic, identity)
        setup = self.vm_setup(env, vm, (*database, share, *grants))
        frontends = self.spec.frontends
        if farm and frontends is not None:
            scale_set = self.scale_set(
                frontends, identity, gateway, pool, (setup, *database, share, *grants)
            )
            self.scaling_alerts(scale_set)

    def sql(self, env: Environment, admin_secret: str) -> tuple[str, ...]:
        """The environment's SQL server, databases and VNet rule; returns what setup needs."""
        server = self.names.sql_server(env)
        properties: dict[str, Any] = {
            "administratorLogin": self.names.sql_admin_login(self.spec.admin_username),
            "administratorLoginPassword": token(
                KEY_VAULT_SECRET, argument=sql_admin_secret(env).name
            ),
            "version": "12.0",
            "minimalTlsVersion": "1.2",
            # Reachable only through the VNet rule below: no firewall rule opens it.
            "publicNetworkAccess": "Enabled",
        }
        admin = self.spec.sql_entra_admin
        if admin is not None:
            properties["administrators"] = {
                "administratorType": "ActiveDirectory",
                "principalType": "Group",
                "login": admin.login,
                "sid": admin.object_id,
                "tenantId": token(TENANT_ID),
                # The servers sign in with the SQL login: Entra-only would lock them out.
                "azureADOnlyAuthentication": False,
            }
        body = self.located(env, properties=properties)
        server_id = self.add(SQL_SERVER, (server,), env, body, (self.group_id, admin_secret))
        databases = [
            self.add(
                SQL_DATABASE,
                (server, self.names.database(env, catalog)),
                env,
                self.located(env, sku=dict(SQL_SKU), properties={"collation": SQL_COLLATION}),
                (server_id,),
            )
            for catalog in CATALOGS
        ]
        rule_body = {
            "properties": {
                "virtualNetworkSubnetId": self.subnet_id(env),
                "ignoreMissingVnetServiceEndpoint": False,
            }
        }
        rule = self.add(
            SQL_VNET_RULE,
            (server, self.names.sql_vnet_rule(env)),
            env,
            rule_body,
            (server_id, *self.network_dependencies()),
        )
        return (*databases, rule)

    def nic(self, env: Environment, pool: str | None, gateway: str | None) -> str:
        address = self.static_address(env)
        ip_configuration: dict[str, Any] = {"subnet": _ref(self.subnet_id(env)), "primary": True}
        if address is not None:
            # Static, so gateways and front-ends can be told the address before the VM exists.
            ip_configuration["privateIPAllocationMethod"] = "Static"
            ip_configuration["privateIPAddress"] = address
        else:
            ip_configuration["privateIPAllocationMethod"] = "Dynamic"
        if pool is not None:
            ip_configuration["applicationGatewayBackendAddressPools"] = [_ref(pool)]
        body = self.located(
            env,
            properties={
                "ipConfigurations": [{"name": "ipconfig1", "properties": ip_configuration}]
            },
        )
        depends = (self.group_id, *self.network_dependencies(), *([gateway] if gateway else []))
        return self.add(NIC, (self.names.nic(env),), env, body, depends)

    def image(self, sku: str) -> tuple[dict[str, str], dict[str, str] | None]:
        """The image reference (a pinned version) and, for the Marketplace image, its plan."""
        version = self.spec.image_version_of(sku)
        if self.spec.image == "windows-server":
            return {**WINDOWS_SERVER_IMAGE, "version": version}, None
        reference = {
            "publisher": OUTSYSTEMS_IMAGE_PUBLISHER,
            "offer": OUTSYSTEMS_IMAGE_OFFER,
            "sku": sku,
            "version": version,
        }
        plan = {
            "name": sku,
            "publisher": OUTSYSTEMS_IMAGE_PUBLISHER,
            "product": OUTSYSTEMS_IMAGE_OFFER,
        }
        return reference, plan

    def storage_profile(self, sku: str, env: Environment | None) -> dict[str, Any]:
        reference, _ = self.image(sku)
        os_disk: dict[str, Any] = {
            "createOption": "FromImage",
            "caching": "ReadWrite",
            "managedDisk": {"storageAccountType": DISK_SKU},
        }
        data_disk: dict[str, Any] = {
            "lun": 0,
            "createOption": "Empty",
            "diskSizeGB": DATA_DISK_GB,
            "caching": "ReadOnly",
            "managedDisk": {"storageAccountType": DISK_SKU},
        }
        if env is not None:
            os_disk |= {"name": self.names.os_disk(env), "deleteOption": "Delete"}
            data_disk |= {"name": self.names.data_disk(env), "deleteOption": "Delete"}
        return {"imageReference": reference, "osDisk": os_disk, "dataDisks": [data_disk]}

    def windows_os_profile(self, password: SecretName) -> dict[str, Any]:
        return {
            "adminUsername": self.spec.admin_username,
            "adminPassword": token(KEY_VAULT_SECRET, argument=password.name),
            "windowsConfiguration": {"provisionVMAgent": True, "enableAutomaticUpdates": True},
        }

    @staticmethod
    def user_identity(identity: str) -> dict[str, Any]:
        return {"type": "UserAssigned", "userAssignedIdentities": {identity: {}}}

    def vm(self, env: Environment, nic: str, identity: str) -> str:
        sku = "lifetime" if env == "life" else "platformserver"
        _, plan = self.image(sku)
        password = vm_admin_secret(env)
        admin_secret = self.secret(password)
        body = self.located(
            env,
            identity=self.user_identity(identity),
            properties={
                "hardwareProfile": {"vmSize": self.spec.environments.vm_size(env)},
                "storageProfile": self.storage_profile(sku, env),
                "osProfile": {
                    "computerName": self.names.computer_name(env),
                    **self.windows_os_profile(password),
                },
                "networkProfile": {
                    "networkInterfaces": [{"id": nic, "properties": {"primary": True}}]
                },
                "diagnosticsProfile": {"bootDiagnostics": {"enabled": True}},
                # The setup script travels in userData: instances never fetch it from a repository.
                "userData": token(SETUP_SCRIPT_B64),
            },
        )
        if plan is not None:
            body["plan"] = plan
        depends = (self.group_id, nic, identity, admin_secret)
        return self.add(VM, (self.names.vm(env),), env, body, depends)

    def trusted_proxies(self) -> str:
        """The gateway subnet's prefix: the proxy whose X-Forwarded-* headers OutSystems trusts."""
        if self.plan is not None:
            return str(self.plan.subnet(GATEWAY))
        # The user's subnet: ARM knows its prefix once the body is sent.
        return reference(self.subnet_id(GATEWAY), "properties.addressPrefix")

    def setup_extension_properties(self, env: Environment, role: Role) -> dict[str, Any]:
        names = self.names
        arguments = {
            "Role": role,
            "PlatformVersion": self.spec.platform_version,
            "LifetimeVersion": self.spec.lifetime_version,
            "DatabaseServer": names.sql_server_fqdn(env),
            "PlatformCatalog": names.database(env, "platform"),
            "SessionCatalog": names.database(env, "session"),
            "LoggingCatalog": names.database(env, "logging"),
            "DatabaseAdminUser": names.sql_admin_login(self.spec.admin_username),
            "ControllerAddress": self.controller_address(env),
            "KeyVaultUri": names.key_vault_uri(),
            "DatabaseAdminPasswordSecret": sql_admin_secret(env).name,
            "PrivateKeySecret": private_key_secret(env).name,
            "AdminPasswordSecret": outsystems_admin_secret().name,
            "IdentityResourceId": self.id(IDENTITY, names.identity(env)),
            "StorageAccount": names.storage_account,
            "FileShare": names.file_share,
            "TrustedProxyAddresses": self.trusted_proxies(),
        }
        assert tuple(arguments) == SETUP_SCRIPT_PARAMETERS
        script = _ps_quote(SETUP_SCRIPT_PATH)
        invocation = " ".join(f"-{name} {_ps_quote(value)}" for name, value in arguments.items())
        # No secret is on this command line: the script reads them from Key Vault with the
        # server's managed identity, so the command can be a public setting (visible to
        # whoever can read the VM, and to us in the plan).
        command = (
            'powershell.exe -NoProfile -NonInteractive -ExecutionPolicy Bypass -Command "'
            "$ErrorActionPreference = 'Stop'; "
            "New-Item -ItemType Directory -Force -Path 'C:\\OutSystems' | Out-Null; "
            "$userData = Invoke-RestMethod -Headers @{Metadata = 'true'} "
            f"-Uri {_ps_quote(IMDS_USER_DATA_URL)}; "
            f"[IO.File]::WriteAllBytes({script}, [Convert]::FromBase64String($userData)); "
            f'& {script} {invocation}; exit $LASTEXITCODE"'
        )
        # The extension reruns when its public settings change; tying `timestamp` to the
        # command reruns setup exactly when the configuration changes.
        timestamp = int.from_bytes(hashlib.sha256(command.encode()).digest()[:4], "big") >> 1
        return {
            **CUSTOM_SCRIPT_EXTENSION,
            "settings": {"commandToExecute": command, "timestamp": timestamp},
        }

    def vm_setup(self, env: Environment, vm: str, needs: tuple[str, ...]) -> str:
        properties = self.setup_extension_properties(env, setup_role(self.spec, env))
        body = self.located(env, properties=properties)
        return self.add(
            VM_EXTENSION, (self.names.vm(env), SETUP_EXTENSION), env, body, (vm, *needs)
        )

    def waf_policy(self, env: Environment) -> str | None:
        """The gateway's WAF policy (Microsoft's Default Rule Set), None when the WAF is off."""
        mode = self.spec.environments.waf(env)
        if mode == "Off":
            return None
        body = self.located(
            env,
            properties={
                "policySettings": {"state": "Enabled", "mode": mode, **WAF_POLICY_SETTINGS},
                "managedRules": {"managedRuleSets": [dict(WAF_RULE_SET)]},
            },
        )
        return self.add(WAF_POLICY, (self.names.waf_policy(env),), env, body, (self.group_id,))

    def gateway_certificate(self, env: Environment, identity: str) -> tuple[str, tuple[str, ...]]:
        """The certificate's Key Vault URL and what the gateway must wait for to read it."""
        tls = self.spec.tls
        if tls is not None:
            # The user's certificate: its vault is theirs, and so is granting the identity.
            return tls.certificate_secret_id, ()
        secret = gateway_certificate_secret(env)
        secret_id = self.secret(secret)
        grant = self.role_assignment(env, secret_id, identity, KEY_VAULT_SECRETS_USER, (secret_id,))
        return self.secret_uri(secret), (secret_id, grant)

    def app_gateway(self, env: Environment, identity: str, *, backend: bool) -> str:
        address = self.public_ip(env, self.names.public_ip(env), self.names.dns_label(env))
        name = self.names.app_gateway(env)
        own = self.id(APP_GATEWAY, name)
        low, high = _GATEWAY_CAPACITY["prod" if env == "prod" else "other"]
        backend_address = self.static_address(env)
        addresses = (
            [{"ipAddress": backend_address}] if backend and backend_address is not None else []
        )
        certificate, certificate_needs = self.gateway_certificate(env, identity)
        waf = self.waf_policy(env)
        sku = "WAF_v2" if waf is not None else "Standard_v2"
        properties: dict[str, Any] = {
            "sku": {"name": sku, "tier": sku},
            "autoscaleConfiguration": {"minCapacity": low, "maxCapacity": high},
            "gatewayIPConfigurations": [
                {"name": "gateway", "properties": {"subnet": _ref(self.subnet_id(GATEWAY))}}
            ],
            "frontendIPConfigurations": [
                {"name": "public", "properties": {"publicIPAddress": _ref(address)}}
            ],
            "frontendPorts": [
                {"name": "http", "properties": {"port": 80}},
                {"name": "https", "properties": {"port": 443}},
            ],
            # TLS ends here (SSL offloading, as the Marketplace template does it): the servers
            # are told so by the setup (TrustedProxyAddresses) and see X-Forwarded-Proto.
            "sslCertificates": [{"name": "tls", "properties": {"keyVaultSecretId": certificate}}],
            "sslPolicy": dict(GATEWAY_TLS_POLICY),
            "backendAddressPools": [{"name": _POOL, "properties": {"backendAddresses": addresses}}],
            "backendHttpSettingsCollection": [
                {
                    "name": "http",
                    "properties": {
                        "port": 80,
                        "protocol": "Http",
                        "cookieBasedAffinity": "Disabled",
                        "requestTimeout": 120,
                        "pickHostNameFromBackendAddress": True,
                        # Scale-in and maintenance must not cut users off mid-request.
                        "connectionDraining": {
                            "enabled": True,
                            "drainTimeoutInSec": DRAIN_TIMEOUT_SECONDS,
                        },
                        "probe": _ref(f"{own}/probes/servicecenter"),
                    },
                }
            ],
            "httpListeners": [_listener(own, "http", None), _listener(own, "https", "tls")],
            "redirectConfigurations": [
                {
                    "name": "http-to-https",
                    "properties": {
                        "redirectType": "Permanent",
                        "targetListener": _ref(f"{own}/httpListeners/https"),
                        "includePath": True,
                        "includeQueryString": True,
                    },
                }
            ],
            "requestRoutingRules": [
                {
                    "name": "http",
                    "properties": {
                        "ruleType": "Basic",
                        "priority": 100,
                        "httpListener": _ref(f"{own}/httpListeners/http"),
                        "redirectConfiguration": _ref(
                            f"{own}/redirectConfigurations/http-to-https"
                        ),
                    },
                },
                {
                    "name": "https",
                    "properties": {
                        "ruleType": "Basic",
                        "priority": 110,
                        "httpListener": _ref(f"{own}/httpListeners/https"),
                        "backendAddressPool": _ref(f"{own}/backendAddressPools/{_POOL}"),
                        "backendHttpSettings": _ref(f"{own}/backendHttpSettingsCollection/http"),
                    },
                },
            ],
            "probes": [
                {
                    "name": "servicecenter",
                    "properties": {
                        "protocol": "Http",
                        "path": HEALTH_PROBE_PATH,
                        "interval": 30,
                        "timeout": 30,
                        "unhealthyThreshold": 3,
                        "pickHostNameFromBackendHttpSettings": True,
                        "match": {"statusCodes": ["200-399"]},
                    },
                }
            ],
        }
        if waf is not None:
            properties["firewallPolicy"] = _ref(waf)
        body = self.located(env, identity=self.user_identity(identity), properties=properties)
        depends = [self.group_id, address, *self.network_dependencies(), *certificate_needs]
        if identity in self:
            depends.append(identity)
        if waf is not None:
            depends.append(waf)
        return self.add(APP_GATEWAY, (name,), env, body, depends)

    # --- the production farm ----------------------------------------------------------------
    def scale_set(
        self,
        frontends: FrontendsSpec,
        identity: str,
        gateway: str,
        pool: str,
        needs: tuple[str, ...],
    ) -> str:
        names = self.names
        _, plan = self.image("platformserver")
        password = frontends_admin_secret()
        admin_secret = self.secret(password)
        profile = {
            "osProfile": {
                "computerNamePrefix": names.scale_set_computer_name_prefix,
                **self.windows_os_profile(password),
            },
            "storageProfile": self.storage_profile("platformserver", None),
            "networkProfile": {
                "networkInterfaceConfigurations": [
                    {
                        "name": names.scale_set_nic,
                        "properties": {
                            "primary": True,
                            "ipConfigurations": [
                                {
                                    "name": "ipconfig1",
                                    "properties": {
                                        "subnet": _ref(self.subnet_id("prod")),
                                        "applicationGatewayBackendAddressPools": [_ref(pool)],
                                    },
                                }
                            ],
                        },
                    }
                ]
            },
            "extensionProfile": {
                "extensions": [
                    {
                        "name": SETUP_EXTENSION,
                        "properties": self.setup_extension_properties("prod", "frontend"),
                    }
                ]
            },
            # A front-end about to be deleted by a scale-in is told so (Scheduled Events) and
            # leaves the gateway's pool before it goes (the setup script acts on the notice).
            "scheduledEventsProfile": {
                "terminateNotificationProfile": {
                    "enable": True,
                    "notBeforeTimeout": TERMINATE_NOTICE,
                }
            },
            "diagnosticsProfile": {"bootDiagnostics": {"enabled": True}},
            "userData": token(SETUP_SCRIPT_B64),
        }
        body = self.located(
            "prod",
            identity=self.user_identity(identity),
            sku={"name": frontends.vm_size, "tier": "Standard", "capacity": frontends.capacity},
            properties={
                "orchestrationMode": "Uniform",
                # Every instance registers with the controller; overprovisioned extras would
                # register and then vanish.
                "overprovision": False,
                "singlePlacementGroup": False,
                # New instances always get the latest model; existing ones are never reimaged
                # behind the users' backs.
                "upgradePolicy": {"mode": "Manual"},
                "scaleInPolicy": {"rules": ["OldestVM"], "forceDeletion": False},
                "virtualMachineProfile": profile,
            },
        )
        # Only the app can compute the MAC that makes these tags a trusted policy.
        body["tags"] |= {
            **policy_to_tags(frontends.policy()),
            POLICY_MAC_TAG: token(SCALING_POLICY_MAC),
        }
        if plan is not None:
            body["plan"] = plan
        depends = (
            self.group_id,
            gateway,
            identity,
            admin_secret,
            *self.network_dependencies(),
            *needs,
        )
        return self.add(SCALE_SET, (names.scale_set,), "prod", body, depends)

    def scaling_alerts(self, scale_set: str) -> None:
        names = self.names
        group_body = {
            "location": "Global",
            "tags": self.tags("prod"),
            "properties": {
                "groupShortName": names.scaling_action_group_short_name,
                "enabled": True,
                "webhookReceivers": [
                    {
                        "name": "scaler",
                        "serviceUri": token(ALERT_WEBHOOK_URL),
                        "useCommonAlertSchema": True,
                    }
                ],
            },
        }
        group = self.add(
            ACTION_GROUP, (names.scaling_action_group,), "prod", group_body, (self.group_id,)
        )
        for name, operator, threshold, window, description in (
            (
                names.cpu_high_alert,
                "GreaterThan",
                CPU_HIGH_THRESHOLD,
                CPU_HIGH_WINDOW,
                f"Front-end CPU above {CPU_HIGH_THRESHOLD}%: scale out",
            ),
            (
                names.cpu_low_alert,
                "LessThan",
                CPU_LOW_THRESHOLD,
                CPU_LOW_WINDOW,
                f"Front-end CPU below {CPU_LOW_THRESHOLD}%: scale in",
            ),
        ):
            body = {
                "location": "global",
                "tags": self.tags("prod"),
                "properties": {
                    "description": description,
                    "severity": 2,
                    "enabled": True,
                    "scopes": [scale_set],
                    "evaluationFrequency": ALERT_EVALUATION_FREQUENCY,
                    "windowSize": window,
                    "targetResourceType": SCALE_SET,
                    "criteria": {
                        "odata.type": _SINGLE_RESOURCE_CRITERIA,
                        "allOf": [
                            {
                                "criterionType": "StaticThresholdCriterion",
                                "name": "cpu",
                                "metricName": CPU_METRIC,
                                "metricNamespace": SCALE_SET,
                                "operator": operator,
                                "threshold": threshold,
                                "timeAggregation": "Average",
                            }
                        ],
                    },
                    # Resolved notifications let the scaler withdraw a pending request.
                    "autoMitigate": True,
                    "actions": [{"actionGroupId": group}],
                },
            }
            self.add(METRIC_ALERT, (name,), "prod", body, (scale_set, group))


_POOL: Final = "platform-servers"
_SINGLE_RESOURCE_CRITERIA: Final = "Microsoft.Azure.Monitor.SingleResourceMultipleMetricCriteria"


def _environment(key: str) -> Environment:
    for env in ENVIRONMENTS:
        if env == key:
            return env
    raise KeyError(key)


def _listener(
    gateway: str, protocol: Literal["http", "https"], certificate: str | None
) -> dict[str, Any]:
    properties: dict[str, Any] = {
        "frontendIPConfiguration": _ref(f"{gateway}/frontendIPConfigurations/public"),
        "frontendPort": _ref(f"{gateway}/frontendPorts/{protocol}"),
        "protocol": "Https" if protocol == "https" else "Http",
    }
    if certificate is not None:
        properties["sslCertificate"] = _ref(f"{gateway}/sslCertificates/{certificate}")
    return {"name": protocol, "properties": properties}


def _rule(
    name: str,
    priority: int,
    direction: Literal["Inbound", "Outbound"],
    source: str | list[str],
    destination: str,
    ports: list[str],
    *,
    access: Literal["Allow", "Deny"] = "Allow",
    protocol: str = "Tcp",
    description: str = "",
) -> dict[str, Any]:
    properties: dict[str, Any] = {
        "priority": priority,
        "direction": direction,
        "access": access,
        "protocol": protocol,
        # ARM takes one value (or "*") in the singular fields, several only in the plural.
        **(
            {"sourceAddressPrefixes": source}
            if isinstance(source, list)
            else {"sourceAddressPrefix": source}
        ),
        "sourcePortRange": "*",
        "destinationAddressPrefix": destination,
        **(
            {"destinationPortRange": ports[0]}
            if len(ports) == 1
            else {"destinationPortRanges": ports}
        ),
    }
    if description:
        properties["description"] = description
    return {"name": name, "properties": properties}


def _gateway_rules() -> list[dict[str, Any]]:
    # Application Gateway infrastructure configuration (MicrosoftDocs/azure-docs
    # articles/application-gateway/configuration-infrastructure.md): the v2 SKU needs
    # GatewayManager on 65200-65535 and AzureLoadBalancer allowed, the listeners' ports open to
    # the clients, and outbound Internet never denied (Azure's default outbound rules stay).
    return [
        _rule(
            "allow-gateway-manager",
            100,
            "Inbound",
            "GatewayManager",
            "*",
            ["65200-65535"],
            description="Application Gateway v2 infrastructure (required by Azure)",
        ),
        _rule(
            "allow-http-from-internet",
            110,
            "Inbound",
            "Internet",
            "*",
            ["80", "443"],
            description="Users, Service Studio and LifeTime to the listeners (HTTP, HTTPS)",
        ),
        _rule(
            "allow-load-balancer",
            120,
            "Inbound",
            "AzureLoadBalancer",
            "*",
            ["*"],
            protocol="*",
            description="Azure Load Balancer probes (required by Azure)",
        ),
    ]

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
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Final, Literal

from outsystems.names import (
    BASTION_SUBNET,
    CATALOGS,
    ENVIRONMENT_TAG,
    ENVIRONMENTS,
    MANAGED_BY_TAG,
    MANAGED_BY_VALUE,
    SETUP_EXTENSION,
    SHARED,
    SOLUTION_TAG,
    SQL_ADMIN_LOGIN,
    Environment,
    PlatformNames,
)
from outsystems.placeholders import (
    ALERT_WEBHOOK_URL,
    BASE64,
    PRIVATE_KEY,
    SCALING_POLICY_MAC,
    SETUP_SCRIPT_B64,
    SQL_ADMIN_PASSWORD,
    VM_ADMIN_PASSWORD,
    token,
)
from outsystems.policy import POLICY_MAC_TAG, policy_to_tags
from outsystems.spec import BASTION, GATEWAY, AddressPlan, FrontendsSpec, PlatformSpec

# --- Resource types and API versions (those of the SDKs the arm/ adapter uses) ------------------

RESOURCE_GROUP: Final = "Microsoft.Resources/resourceGroups"
NSG: Final = "Microsoft.Network/networkSecurityGroups"
VNET: Final = "Microsoft.Network/virtualNetworks"
SUBNET: Final = "Microsoft.Network/virtualNetworks/subnets"
PUBLIC_IP: Final = "Microsoft.Network/publicIPAddresses"
NIC: Final = "Microsoft.Network/networkInterfaces"
APP_GATEWAY: Final = "Microsoft.Network/applicationGateways"
BASTION_HOST: Final = "Microsoft.Network/bastionHosts"
STORAGE_ACCOUNT: Final = "Microsoft.Storage/storageAccounts"
FILE_SHARE: Final = "Microsoft.Storage/storageAccounts/fileServices/shares"
SQL_SERVER: Final = "Microsoft.Sql/servers"
SQL_DATABASE: Final = "Microsoft.Sql/servers/databases"
SQL_VNET_RULE: Final = "Microsoft.Sql/servers/virtualNetworkRules"
VM: Final = "Microsoft.Compute/virtualMachines"
VM_EXTENSION: Final = "Microsoft.Compute/virtualMachines/extensions"
SCALE_SET: Final = "Microsoft.Compute/virtualMachineScaleSets"
IDENTITY: Final = "Microsoft.ManagedIdentity/userAssignedIdentities"
ACTION_GROUP: Final = "Microsoft.Insights/actionGroups"
METRIC_ALERT: Final = "Microsoft.Insights/metricAlerts"

_API_VERSIONS: Final = {
    "Microsoft.Resources": "2025-04-01",
    "Microsoft.Network": "2026-03-01",
    "Microsoft.Compute": "2026-04-01",
    "Microsoft.Sql": "2025-01-01",
    "Microsoft.Storage": "2025-06-01",
    "Microsoft.ManagedIdentity": "2023-01-31",
}
_TYPE_API_VERSIONS: Final = {ACTION_GROUP: "2023-01-01", METRIC_ALERT: "2018-03-01"}

#: Types that carry no ARM tags (file shares have metadata; SQL VNet rules nothing).
UNTAGGED_TYPES: Final = frozenset({FILE_SHARE, SQL_VNET_RULE})


def api_version(resource_type: str) -> str:
    """The API version the graph uses for `resource_type`."""
    if resource_type in _TYPE_API_VERSIONS:
        return _TYPE_API_VERSIONS[resource_type]
    return _API_VERSIONS[resource_type.split("/", 1)[0]]


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
    "version": "latest",
}
OUTSYSTEMS_IMAGE_PUBLISHER: Final = "outsystems"
OUTSYSTEMS_IMAGE_OFFER: Final = "os11-vm-baseimage"
HEALTH_PROBE_PATH: Final = "/servicecenter/_ping.aspx"
DRAIN_TIMEOUT_SECONDS: Final = 300
# Gateway instances: production takes the load, the others only developers and LifeTime.
_GATEWAY_CAPACITY: Final = {"prod": (2, 10), "other": (1, 2)}

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
    "DatabaseAdminPassword",
    "ControllerAddress",
    "PrivateKey",
    "StorageAccount",
    "FileShare",
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

    def to_json_dict(self) -> dict[str, Any]:
        """The resource as JSON (camelCase), e.g. for an activity's input."""
        return {
            "id": self.id,
            "type": self.type,
            "name": self.name,
            "apiVersion": self.api_version,
            "environment": self.environment,
            "body": self.body,
            "dependsOn": list(self.depends_on),
        }

    @classmethod
    def from_json_dict(cls, data: Mapping[str, Any]) -> Resource:
        return cls(
            id=data["id"],
            type=data["type"],
            name=data["name"],
            api_version=data["apiVersion"],
            environment=data["environment"],
            body=data["body"],
            depends_on=tuple(data["dependsOn"]),
        )


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

    @cached_property
    def by_id(self) -> Mapping[str, Resource]:
        """Resources by their id as written in the graph."""
        return {resource.id: resource for resource in self.resources}

    def get(self, resource_id: str) -> Resource:
        """The resource with this id (compared case-insensitively); `KeyError` if absent."""
        try:
            return self._index[_key(resource_id)]
        except KeyError:
            raise KeyError(resource_id) from None

    def for_environment(self, environment: str) -> tuple[Resource, ...]:
        """The resources of one environment (or `shared`), in dependency order."""
        return tuple(r for r in self.resources if r.environment == environment)

    def ancestors(self, resource_id: str) -> tuple[Resource, ...]:
        """Everything the resource depends on, directly or not, in dependency order."""
        found = self._closure(resource_id, lambda r: r.depends_on)
        return tuple(r for r in self.resources if _key(r.id) in found)

    def descendants(self, resource_id: str) -> tuple[Resource, ...]:
        """Everything that depends on the resource, directly or not, in dependency order."""
        found = self._closure(resource_id, lambda r: self._dependents.get(_key(r.id), ()))
        return tuple(r for r in self.resources if _key(r.id) in found)

    def owner_of(self, resource_id: str) -> Resource | None:
        """The graph resource that is `resource_id` or holds it as a sub-resource.

        E.g. a gateway's backend pool id is owned by the gateway, an inline subnet's id by
        its VNet. None when no resource of the graph owns the id.
        """
        candidate = _key(resource_id).rstrip("/")
        while candidate:
            if candidate in self._index:
                return self._index[candidate]
            candidate = candidate.rpartition("/")[0]
        return None

    @cached_property
    def _dependents(self) -> Mapping[str, tuple[str, ...]]:
        dependents: dict[str, list[str]] = {}
        for resource in self.resources:
            for dependency in resource.depends_on:
                dependents.setdefault(_key(dependency), []).append(resource.id)
        return {key: tuple(ids) for key, ids in dependents.items()}

    def _closure(self, resource_id: str, step: Any) -> set[str]:
        start = self.get(resource_id)
        seen: set[str] = set()
        pending = list(step(start))
        while pending:
            current = _key(pending.pop())
            if current not in seen:
                seen.add(current)
                pending.extend(step(self._index[current]))
        return seen


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


def _ps_from_base64(placeholder: str) -> str:
    # Secrets travel base64-encoded: no character of theirs can break cmd.exe or PowerShell
    # quoting on the extension's command line.
    literal = _ps_quote(token(placeholder, BASE64))
    return f"([Text.Encoding]::UTF8.GetString([Convert]::FromBase64String({literal})))"


def _ref(resource_id: str) -> dict[str, str]:
    return {"id": resource_id}


class _Builder:
    """Builds the resources of one spec; one method per resource kind."""

    def __init__(self, spec: PlatformSpec) -> None:
        self.spec = spec
        self.names = PlatformNames.of(spec.solution_id, spec.subscription_id, spec.resource_group)
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
    ) -> str:
        resource_id = self.id(resource_type, *names)
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
        if self.spec.bastion:
            self.bastion()
        identity = self.gateway_identity() if self.spec.tls is not None else None
        for env in ENVIRONMENTS:
            self.environment(env, share, identity)
        return self.built

    def resource_group(self) -> None:
        body = {"location": self.location, "tags": self.tags(SHARED)}
        self.add(RESOURCE_GROUP, (), SHARED, body, ())

    def network(self) -> None:
        assert self.plan is not None
        plan = self.plan
        nsgs = {env: self.environment_nsg(env, plan) for env in ENVIRONMENTS}
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
                },
            }
            for env in ENVIRONMENTS
        ]
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
            VNET, (self.names.vnet,), SHARED, body, (self.group_id, *nsgs.values(), gateway_nsg)
        )

    def environment_nsg(self, env: Environment, plan: AddressPlan) -> str:
        own = str(plan.subnet(env))
        rules = [
            _rule(
                "allow-http-from-gateway",
                100,
                "Inbound",
                str(plan.subnet(GATEWAY)),
                own,
                ["80", "443"],
            ),
            _rule("allow-platform-servers", 110, "Inbound", own, own, ["12000", "12001", "5672"]),
        ]
        if self.spec.bastion:
            rules.append(
                _rule(
                    "allow-rdp-from-bastion",
                    120,
                    "Inbound",
                    str(plan.subnet(BASTION)),
                    own,
                    ["3389"],
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
            ),
            # 1433, and 11000-11999 for the redirect connection policy used inside Azure.
            _rule("allow-sql-outbound", 100, "Outbound", own, "Sql", ["1433", "11000-11999"]),
        ]
        body = self.located(SHARED, properties={"securityRules": rules})
        return self.add(NSG, (self.names.nsg(env),), SHARED, body, (self.group_id,))

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
            },
        )
        account_id = self.add(STORAGE_ACCOUNT, (account,), SHARED, body, (self.group_id,))
        share_body = {"properties": {"shareQuota": FILE_SHARE_QUOTA_GB, "enabledProtocols": "SMB"}}
        return self.add(
            FILE_SHARE,
            (account, "default", self.names.file_share),
            SHARED,
            share_body,
            (account_id,),
        )

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
        # identity; granting it access to the vault is the vault owner's step.
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
    def environment(self, env: Environment, share: str, identity: str | None) -> None:
        farm = env == "prod" and self.spec.is_farm
        database = self.sql(env)
        gateway = self.app_gateway(env, identity, backend=not farm)
        pool = f"{gateway}/backendAddressPools/{_POOL}"
        in_pool = not farm and self.joins_pool_through_nic()
        nic = self.nic(env, pool if in_pool else None, gateway if in_pool else None)
        vm = self.vm(env, nic)
        setup = self.vm_setup(env, vm, (*database, share))
        frontends = self.spec.frontends
        if farm and frontends is not None:
            scale_set = self.scale_set(frontends, gateway, pool, (setup, *database, share))
            self.scaling_alerts(scale_set)

    def sql(self, env: Environment) -> tuple[str, ...]:
        """The environment's SQL server, databases and VNet rule; returns what setup needs."""
        server = self.names.sql_server(env)
        body = self.located(
            env,
            properties={
                "administratorLogin": SQL_ADMIN_LOGIN,
                "administratorLoginPassword": token(SQL_ADMIN_PASSWORD),
                "version": "12.0",
                "minimalTlsVersion": "1.2",
                # Reachable only through the VNet rule below: no firewall rule opens it.
                "publicNetworkAccess": "Enabled",
            },
        )
        server_id = self.add(SQL_SERVER, (server,), env, body, (self.group_id,))
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
        """The image reference and, for the Marketplace image, its purchase plan."""
        if self.spec.image == "windows-server":
            return dict(WINDOWS_SERVER_IMAGE), None
        reference = {
            "publisher": OUTSYSTEMS_IMAGE_PUBLISHER,
            "offer": OUTSYSTEMS_IMAGE_OFFER,
            "sku": sku,
            "version": "latest",
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

    def windows_os_profile(self) -> dict[str, Any]:
        return {
            "adminUsername": self.spec.admin_username,
            "adminPassword": token(VM_ADMIN_PASSWORD),
            "windowsConfiguration": {"provisionVMAgent": True, "enableAutomaticUpdates": True},
        }

    def vm(self, env: Environment, nic: str) -> str:
        sku = "lifetime" if env == "life" else "platformserver"
        _, plan = self.image(sku)
        body = self.located(
            env,
            properties={
                "hardwareProfile": {"vmSize": self.spec.environments.vm_size(env)},
                "storageProfile": self.storage_profile(sku, env),
                "osProfile": {
                    "computerName": self.names.computer_name(env),
                    **self.windows_os_profile(),
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
        return self.add(VM, (self.names.vm(env),), env, body, (self.group_id, nic))

    def setup_extension_properties(self, env: Environment, role: Role) -> dict[str, Any]:
        names = self.names
        arguments = {
            "Role": _ps_quote(role),
            "PlatformVersion": _ps_quote(self.spec.platform_version),
            "LifetimeVersion": _ps_quote(self.spec.lifetime_version),
            "DatabaseServer": _ps_quote(names.sql_server_fqdn(env)),
            "PlatformCatalog": _ps_quote(names.database(env, "platform")),
            "SessionCatalog": _ps_quote(names.database(env, "session")),
            "LoggingCatalog": _ps_quote(names.database(env, "logging")),
            "DatabaseAdminUser": _ps_quote(SQL_ADMIN_LOGIN),
            "DatabaseAdminPassword": _ps_from_base64(SQL_ADMIN_PASSWORD),
            "ControllerAddress": _ps_quote(self.controller_address(env)),
            "PrivateKey": _ps_from_base64(PRIVATE_KEY),
            "StorageAccount": _ps_quote(names.storage_account),
            "FileShare": _ps_quote(names.file_share),
        }
        assert tuple(arguments) == SETUP_SCRIPT_PARAMETERS
        script = _ps_quote(SETUP_SCRIPT_PATH)
        invocation = " ".join(f"-{name} {value}" for name, value in arguments.items())
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
        # (placeholder-only) command reruns setup exactly when the configuration changes.
        timestamp = int.from_bytes(hashlib.sha256(command.encode()).digest()[:4], "big") >> 1
        return {
            **CUSTOM_SCRIPT_EXTENSION,
            "settings": {"timestamp": timestamp},
            "protectedSettings": {"commandToExecute": command},
        }

    def vm_setup(self, env: Environment, vm: str, needs: tuple[str, ...]) -> str:
        properties = self.setup_extension_properties(env, setup_role(self.spec, env))
        body = self.located(env, properties=properties)
        return self.add(
            VM_EXTENSION, (self.names.vm(env), SETUP_EXTENSION), env, body, (vm, *needs)
        )

    def app_gateway(self, env: Environment, identity: str | None, *, backend: bool) -> str:
        address = self.public_ip(env, self.names.public_ip(env), self.names.dns_label(env))
        name = self.names.app_gateway(env)
        own = self.id(APP_GATEWAY, name)
        low, high = _GATEWAY_CAPACITY["prod" if env == "prod" else "other"]
        backend_address = self.static_address(env)
        addresses = (
            [{"ipAddress": backend_address}] if backend and backend_address is not None else []
        )
        listeners = [_listener(own, "http", None)]
        ports = [{"name": "http", "properties": {"port": 80}}]
        properties: dict[str, Any] = {
            "sku": {"name": "Standard_v2", "tier": "Standard_v2"},
            "autoscaleConfiguration": {"minCapacity": low, "maxCapacity": high},
            "gatewayIPConfigurations": [
                {"name": "gateway", "properties": {"subnet": _ref(self.subnet_id(GATEWAY))}}
            ],
            "frontendIPConfigurations": [
                {"name": "public", "properties": {"publicIPAddress": _ref(address)}}
            ],
            "frontendPorts": ports,
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
            "httpListeners": listeners,
            "requestRoutingRules": [],
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
        body = self.located(env, properties=properties)
        depends = [self.group_id, address, *self.network_dependencies()]
        tls = self.spec.tls
        if tls is not None and identity is not None:
            ports.append({"name": "https", "properties": {"port": 443}})
            listeners.append(_listener(own, "https", "tls"))
            properties["sslCertificates"] = [
                {"name": "tls", "properties": {"keyVaultSecretId": tls.certificate_secret_id}}
            ]
            body["identity"] = {"type": "UserAssigned", "userAssignedIdentities": {identity: {}}}
            depends.append(identity)
        properties["requestRoutingRules"] = [
            {
                "name": listener["name"],
                "properties": {
                    "ruleType": "Basic",
                    "priority": 100 + 10 * index,
                    "httpListener": _ref(f"{own}/httpListeners/{listener['name']}"),
                    "backendAddressPool": _ref(f"{own}/backendAddressPools/{_POOL}"),
                    "backendHttpSettings": _ref(f"{own}/backendHttpSettingsCollection/http"),
                },
            }
            for index, listener in enumerate(listeners)
        ]
        return self.add(APP_GATEWAY, (name,), env, body, depends)

    # --- the production farm ----------------------------------------------------------------
    def scale_set(
        self, frontends: FrontendsSpec, gateway: str, pool: str, needs: tuple[str, ...]
    ) -> str:
        names = self.names
        _, plan = self.image("platformserver")
        profile = {
            "osProfile": {
                "computerNamePrefix": names.scale_set_computer_name_prefix,
                **self.windows_os_profile(),
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
            "diagnosticsProfile": {"bootDiagnostics": {"enabled": True}},
            "userData": token(SETUP_SCRIPT_B64),
        }
        body = self.located(
            "prod",
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
        body["tags"] |= policy_to_tags(frontends.policy())
        body["tags"][POLICY_MAC_TAG] = token(SCALING_POLICY_MAC)
        if plan is not None:
            body["plan"] = plan
        depends = (self.group_id, gateway, *self.network_dependencies(), *needs)
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
    source: str,
    destination: str,
    ports: list[str],
    *,
    access: Literal["Allow", "Deny"] = "Allow",
    protocol: str = "Tcp",
) -> dict[str, Any]:
    return {
        "name": name,
        "properties": {
            "priority": priority,
            "direction": direction,
            "access": access,
            "protocol": protocol,
            "sourceAddressPrefix": source,
            "sourcePortRange": "*",
            "destinationAddressPrefix": destination,
            # ARM takes one port (or "*") in the singular field, several only in the plural.
            **(
                {"destinationPortRange": ports[0]}
                if len(ports) == 1
                else {"destinationPortRanges": ports}
            ),
        },
    }


def _gateway_rules() -> list[dict[str, Any]]:
    return [
        # Application Gateway v2 does not start unless its manager can reach these ports.
        _rule("allow-gateway-manager", 100, "Inbound", "GatewayManager", "*", ["65200-65535"]),
        _rule("allow-http-from-internet", 110, "Inbound", "Internet", "*", ["80", "443"]),
        _rule("allow-load-balancer", 120, "Inbound", "AzureLoadBalancer", "*", ["*"], protocol="*"),
    ]

"""The desired resource graph: complete, consistent, secret-free and deterministic."""

from __future__ import annotations

import base64
import dataclasses
import ipaddress
import json
import re
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from outsystems.names import ENVIRONMENTS, PlatformNames
from outsystems.placeholders import (
    ALERT_WEBHOOK_URL,
    KEY_VAULT_SECRET,
    PLACEHOLDERS,
    SECRET_VALUE,
    SETUP_SCRIPT_B64,
    placeholders_in,
    render,
    token,
    tokens_in,
)
from outsystems.policy import policy_from_tags
from outsystems.resource_types import (
    ACTION_GROUP,
    APP_GATEWAY,
    BASTION_HOST,
    FILE_SHARE,
    IDENTITY,
    KEY_VAULT,
    KEY_VAULT_SECRET_TYPE,
    METRIC_ALERT,
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
)
from outsystems.spec import PlatformSpec, parse_spec
from outsystems.topology import (
    CPU_HIGH_THRESHOLD,
    CPU_LOW_THRESHOLD,
    KEY_VAULT_SECRETS_USER,
    SETUP_SCRIPT_PARAMETERS,
    GraphError,
    Resource,
    ResourceGraph,
    build_topology,
)
from tests.support.graphs import ancestors, owner_of

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
#: Types that carry no ARM tags (file shares have metadata; SQL VNet rules and role
#: assignments nothing; a vault secret's GET shows its vault's tags).
UNTAGGED_TYPES = frozenset({FILE_SHARE, SQL_VNET_RULE, ROLE_ASSIGNMENT, KEY_VAULT_SECRET_TYPE})
SUB = "11111111-2222-3333-4444-555555555555"
CERT = "https://acme-kv.vault.azure.net/secrets/tls"


def subnet_id(name: str) -> str:
    return (
        f"/subscriptions/{SUB}/resourceGroups/net-rg/providers/Microsoft.Network/"
        f"virtualNetworks/corp-vnet/subnets/{name}"
    )


EXISTING = {key: subnet_id(key) for key in ("dev", "test", "prod", "life", "gateway")}


def spec_of(body: dict[str, Any] | str, solution_id: str = "acme") -> PlatformSpec:
    return parse_spec(solution_id, body, default_subscription_id=SUB)


def example(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((EXAMPLES / f"{name}.json").read_text())
    return loaded


SCENARIOS: dict[str, dict[str, Any]] = {
    "farm": example("spec-farm"),
    "standalone": example("spec-standalone"),
    "demo": example("spec-demo"),
    "farm-bastion-tls": {
        **example("spec-farm"),
        "bastion": True,
        "tls": {"certificateSecretId": CERT},
    },
    "farm-existing-subnets": {"location": "westeurope", "network": {"existingSubnetIds": EXISTING}},
    "standalone-existing-bastion-tls": {
        "location": "westeurope",
        "bastion": True,
        "tls": {"certificateSecretId": CERT},
        "image": "outsystems-base",
        "network": {"existingSubnetIds": {**EXISTING, "bastion": subnet_id("AzureBastionSubnet")}},
        "environments": {"prod": {"mode": "standalone"}},
    },
    "farm-base-image": {"location": "westeurope", "image": "outsystems-base"},
}


@pytest.fixture(params=sorted(SCENARIOS))
def scenario(request: pytest.FixtureRequest) -> tuple[PlatformSpec, ResourceGraph]:
    spec = spec_of(SCENARIOS[request.param])
    return spec, build_topology(spec)


def strings(value: object) -> Iterator[str]:
    """Every string in a body: values and dict keys (identities are referenced by key)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from strings(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from strings(item)


# An id ends at a quote, a space or the end of a reference token (`#path}}`).
ARM_ID = re.compile(r"/subscriptions/[^\s'\"#}]+", re.IGNORECASE)
ROLE_DEFINITION = re.compile(
    r"/subscriptions/[^/]+/providers/Microsoft\.Authorization/roleDefinitions/"
)


def referenced_ids(body: object) -> set[str]:
    """Ids of resources a body refers to (built-in role definitions exist in every tenant)."""
    return {
        m.group(0)
        for text in strings(body)
        for m in ARM_ID.finditer(text)
        if not ROLE_DEFINITION.match(m.group(0))
    }


def existing_subnets(spec: PlatformSpec) -> set[str]:
    existing = spec.network.existing_subnet_ids
    if existing is None:
        return set()
    return {v.lower() for v in existing.model_dump().values() if v}


def find(
    graph: ResourceGraph, resource_type: str, environment: str | None = None
) -> list[Resource]:
    return [
        r
        for r in graph
        if r.type == resource_type and (environment is None or r.environment == environment)
    ]


def one(graph: ResourceGraph, resource_type: str, environment: str | None = None) -> Resource:
    found = find(graph, resource_type, environment)
    assert len(found) == 1, [r.id for r in found]
    return found[0]


def setup_arguments(extension: dict[str, Any]) -> dict[str, str]:
    """The `-Name 'value'` pairs after the script path in the extension's public command."""
    command = extension["settings"]["commandToExecute"]
    invocation = command.split("Install-OutSystems.ps1' ", 2)[-1]
    pattern = re.compile(r"-(\w+) '((?:[^']|'')*)'")
    return {m.group(1): m.group(2).replace("''", "'") for m in pattern.finditer(invocation)}


# --- invariants of every graph ----------------------------------------------------------------


def test_ids_are_unique_and_dependencies_come_first(
    scenario: tuple[PlatformSpec, ResourceGraph],
) -> None:
    _, graph = scenario
    ids = [r.id.lower() for r in graph]
    assert len(ids) == len(set(ids))
    position = {r.id.lower(): i for i, r in enumerate(graph)}
    for resource in graph:
        for dependency in resource.depends_on:
            assert position[dependency.lower()] < position[resource.id.lower()]
    assert graph.resources[0].type == RESOURCE_GROUP


def test_every_reference_is_built_first(scenario: tuple[PlatformSpec, ResourceGraph]) -> None:
    spec, graph = scenario
    user_subnets = existing_subnets(spec)
    for resource in graph:
        built_before = {a.id for a in ancestors(graph, resource.id)}
        for ref in referenced_ids(resource.body):
            if ref.lower() in user_subnets:
                continue
            owner = owner_of(graph, ref)
            assert owner is not None, f"{resource.id} references {ref}, not in the graph"
            if owner.id != resource.id:
                assert owner.id in built_before, f"{resource.id} uses {ref} before it exists"
            # A sub-resource id (subnet, backend pool, probe...) must name an inline item.
            rest = ref[len(owner.id) :].strip("/").split("/")
            if rest != [""] and owner.type != FILE_SHARE:
                collection, name = rest
                items = owner.body["properties"][collection]
                assert name in {item["name"] for item in items}, ref


def test_every_id_belongs_to_the_platform_group(
    scenario: tuple[PlatformSpec, ResourceGraph],
) -> None:
    spec, graph = scenario
    group = f"/subscriptions/{spec.subscription_id}/resourceGroups/{spec.resource_group}"
    for resource in graph:
        assert resource.id == group or resource.id.startswith(group + "/providers/")
        assert resource.id.split("/")[-1] == resource.name


def test_every_taggable_resource_carries_the_platform_tags(
    scenario: tuple[PlatformSpec, ResourceGraph],
) -> None:
    spec, graph = scenario
    for resource in graph:
        if resource.type in UNTAGGED_TYPES:
            assert "tags" not in resource.body
            continue
        tags = resource.body["tags"]
        assert tags["managedBy"] == "outsystems-azure-ops"
        assert tags["osSolutionId"] == spec.solution_id
        assert tags["osEnvironment"] == resource.environment
        assert spec.tags.items() <= tags.items()
        assert len(tags) <= 50


def test_no_secret_is_ever_in_a_body(scenario: tuple[PlatformSpec, ResourceGraph]) -> None:
    _, graph = scenario

    def check(value: object, key: str = "") -> None:
        if isinstance(value, dict):
            for name, item in value.items():
                check(item, name)
        elif isinstance(value, list):
            for item in value:
                check(item, key)
        elif isinstance(value, str) and re.search("password|secret(?!id)|key$|^value$", key, re.I):
            assert placeholders_in(value), f"{key} holds a literal"
            assert re.fullmatch(r"\{\{[A-Z_]+(:[a-z0-9-]+)?\}\}", value), (
                f"{key} is not only a placeholder"
            )

    for resource in graph:
        check(resource.body)
        assert placeholders_in(resource.body) <= PLACEHOLDERS
    dumped = json.dumps([dataclasses.asdict(r) for r in graph])
    assert token(KEY_VAULT_SECRET, argument="dev-vm-admin-password") in dumped
    assert token(KEY_VAULT_SECRET, argument="dev-sql-admin-password") in dumped
    # No secret goes on a command line any more, not even as a placeholder.
    for extension in find(graph, VM_EXTENSION):
        assert placeholders_in(extension.body["properties"]["settings"]) <= {"REFERENCE"}
        assert "protectedSettings" not in extension.body["properties"]


def test_secrets_are_placeholders_where_azure_takes_them(
    scenario: tuple[PlatformSpec, ResourceGraph],
) -> None:
    spec, graph = scenario
    secrets = {r.name: r for r in find(graph, KEY_VAULT_SECRET_TYPE)}
    for vm in find(graph, VM):
        password = vm.body["properties"]["osProfile"]["adminPassword"]
        assert password == token(KEY_VAULT_SECRET, argument=f"{vm.environment}-vm-admin-password")
        assert secrets[f"{vm.environment}-vm-admin-password"].id in vm.depends_on
        assert vm.body["properties"]["userData"] == token(SETUP_SCRIPT_B64)
    for server in find(graph, SQL_SERVER):
        props = server.body["properties"]
        assert props["administratorLogin"] == f"{spec.admin_username}-sql"
        name = f"{server.environment}-sql-admin-password"
        assert props["administratorLoginPassword"] == token(KEY_VAULT_SECRET, argument=name)
        assert secrets[name].id in server.depends_on
    for secret in secrets.values():
        assert secret.body["properties"]["value"] == token(SECRET_VALUE)
    for extension in find(graph, VM_EXTENSION):
        arguments = setup_arguments(extension.body["properties"])
        env = extension.environment
        assert arguments["DatabaseAdminPasswordSecret"] == f"{env}-sql-admin-password"
        assert arguments["PrivateKeySecret"] == f"{env}-private-key"
        assert arguments["AdminPasswordSecret"] == "outsystems-admin-password"


def test_names_obey_azure_limits(scenario: tuple[PlatformSpec, ResourceGraph]) -> None:
    _, graph = scenario
    for resource in graph:
        assert 1 <= len(resource.name) <= 80
        assert re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.()-]*[A-Za-z0-9_()]", resource.name)
    for vm in find(graph, VM):
        assert len(vm.body["properties"]["osProfile"]["computerName"]) <= 15
    for scale_set in find(graph, SCALE_SET):
        prefix = scale_set.body["properties"]["virtualMachineProfile"]["osProfile"]
        assert len(prefix["computerNamePrefix"]) <= 9
    for server in find(graph, SQL_SERVER):
        assert re.fullmatch(r"[a-z0-9][a-z0-9-]{1,61}[a-z0-9]", server.name)
    assert re.fullmatch(r"[a-z0-9]{3,24}", one(graph, STORAGE_ACCOUNT).name)


def test_api_versions_are_those_of_the_sdks(scenario: tuple[PlatformSpec, ResourceGraph]) -> None:
    _, graph = scenario
    expected = {
        "Microsoft.Resources": "2025-04-01",
        "Microsoft.Network": "2026-03-01",
        "Microsoft.Compute": "2026-04-01",
        "Microsoft.Sql": "2025-01-01",
        "Microsoft.Storage": "2025-06-01",
        "Microsoft.ManagedIdentity": "2023-01-31",
        "Microsoft.KeyVault": "2024-11-01",
        "Microsoft.Authorization": "2022-04-01",
    }
    for resource in graph:
        if resource.type == ACTION_GROUP:
            assert resource.api_version == "2023-01-01"
        elif resource.type == METRIC_ALERT:
            assert resource.api_version == "2018-03-01"
        else:
            assert resource.api_version == expected[resource.type.split("/")[0]]


def test_build_is_deterministic(scenario: tuple[PlatformSpec, ResourceGraph]) -> None:
    spec, graph = scenario
    again = build_topology(PlatformSpec.from_json_dict(spec.to_json_dict()))
    assert again == graph
    assert json.dumps([dataclasses.asdict(r) for r in again]) == json.dumps(
        [dataclasses.asdict(r) for r in graph]
    )


def test_rendering_fills_every_placeholder(scenario: tuple[PlatformSpec, ResourceGraph]) -> None:
    _, graph = scenario
    for resource in graph:
        values = {found.key: f"value-of-{found.key}" for found in tokens_in(resource.body)}
        values[SETUP_SCRIPT_B64] = base64.b64encode(b"param()").decode()
        rendered = render(resource.body, values)
        assert placeholders_in(rendered) == set()


# --- counts and shapes per scenario -----------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "counts"),
    [
        # Per environment 20: identity, 4 secrets, 5 role assignments, SQL server, 3
        # databases, VNet rule, public IP, gateway, NIC, VM, setup; + a WAF policy in prod,
        # + the farm's scale set, its admin password, action group and two alerts. A user's
        # certificate spares the self-signed one and its role assignment. Shared: the group,
        # network (VNet, 5 NSGs, NAT gateway and its IP), storage and share, vault, the
        # platform's admin password, the gateways' identity.
        ("farm", {"shared": 14, "dev": 20, "test": 20, "prod": 26, "life": 20}),
        ("standalone", {"shared": 14, "dev": 20, "test": 20, "prod": 21, "life": 20}),
        ("farm-bastion-tls", {"shared": 16, "dev": 18, "test": 18, "prod": 24, "life": 18}),
        ("farm-existing-subnets", {"shared": 6, "dev": 20, "test": 20, "prod": 26, "life": 20}),
        (
            "standalone-existing-bastion-tls",
            {"shared": 8, "dev": 18, "test": 18, "prod": 19, "life": 18},
        ),
    ],
)
def test_resource_counts_per_environment(name: str, counts: dict[str, int]) -> None:
    graph = build_topology(spec_of(SCENARIOS[name]))
    assert Counter(r.environment for r in graph) == counts
    for env in ENVIRONMENTS:
        per_env = Counter(r.type for r in graph.for_environment(env))
        assert per_env[SQL_SERVER] == 1
        assert per_env[SQL_DATABASE] == 3
        assert per_env[SQL_VNET_RULE] == 1
        assert per_env[VM] == per_env[NIC] == per_env[VM_EXTENSION] == 1
        assert per_env[APP_GATEWAY] == per_env[PUBLIC_IP] == 1


def test_new_network_has_environment_subnets_with_sql_endpoints_and_nsgs() -> None:
    spec = spec_of(SCENARIOS["farm-bastion-tls"])
    graph = build_topology(spec)
    vnet = one(graph, VNET)
    subnets = {s["name"]: s["properties"] for s in vnet.body["properties"]["subnets"]}
    assert vnet.body["properties"]["addressSpace"] == {"addressPrefixes": ["10.0.0.0/16"]}
    for index, env in enumerate(ENVIRONMENTS):
        props = subnets[f"acme-{env}-subnet"]
        assert props["addressPrefix"] == f"10.0.{index}.0/24"
        assert props["serviceEndpoints"][0]["service"] == "Microsoft.Sql"
        assert props["networkSecurityGroup"]["id"].endswith(f"/acme-{env}-nsg")
    assert subnets["acme-appgw-subnet"]["addressPrefix"] == "10.0.4.0/24"
    assert subnets["AzureBastionSubnet"] == {"addressPrefix": "10.0.5.0/26"}
    nsgs = {r.name: r for r in find(graph, NSG)}
    assert set(nsgs) == {f"acme-{e}-nsg" for e in ENVIRONMENTS} | {"acme-appgw-nsg"}
    gateway_rules = nsgs["acme-appgw-nsg"].body["properties"]["securityRules"]
    manager = next(r["properties"] for r in gateway_rules if "gateway-manager" in r["name"])
    assert manager["sourceAddressPrefix"] == "GatewayManager"
    assert manager["destinationPortRange"] == "65200-65535"
    assert manager["access"] == "Allow"
    prod_rules = {
        r["name"]: r["properties"]
        for r in nsgs["acme-prod-nsg"].body["properties"]["securityRules"]
    }
    # The flows themselves are proven against OutSystems' matrix in test_network_flows.py.
    assert prod_rules["allow-frontends-to-controller"]["destinationAddressPrefix"] == "10.0.2.4"
    assert prod_rules["allow-frontends-to-controller"]["destinationPortRanges"] == [
        "12000",
        "5672",
    ]
    assert prod_rules["allow-platform-servers"]["destinationPortRanges"] == [
        "80",
        "12001",
        "12002",
    ]
    assert prod_rules["allow-gateway-to-frontends"]["sourceAddressPrefix"] == "10.0.4.0/24"
    assert prod_rules["allow-gateway-to-frontends"]["destinationPortRange"] == "80"
    assert prod_rules["allow-lifetime"]["sourceAddressPrefix"] == "10.0.3.4"
    assert prod_rules["allow-rdp-from-bastion"]["sourceAddressPrefix"] == "10.0.5.0/26"
    assert prod_rules["deny-vnet-inbound"]["access"] == "Deny"
    priorities = [
        (r["properties"]["direction"], r["properties"]["priority"])
        for r in nsgs["acme-prod-nsg"].body["properties"]["securityRules"]
    ]
    assert len(priorities) == len(set(priorities))


def test_vms_have_static_addresses_that_the_gateways_use() -> None:
    graph = build_topology(spec_of(SCENARIOS["standalone"]))
    for index, env in enumerate(ENVIRONMENTS):
        nic = one(graph, NIC, env)
        config = nic.body["properties"]["ipConfigurations"][0]["properties"]
        assert config["privateIPAllocationMethod"] == "Static"
        assert config["privateIPAddress"] == f"10.0.{index}.4"
        assert ipaddress.ip_address(config["privateIPAddress"]) in ipaddress.ip_network(
            f"10.0.{index}.0/24"
        )
        assert "publicIPAddress" not in config
        pool = one(graph, APP_GATEWAY, env).body["properties"]["backendAddressPools"][0]
        assert pool["properties"]["backendAddresses"] == [{"ipAddress": f"10.0.{index}.4"}]
        # In a new network the gateway does not wait for the VM, and vice versa.
        gateway = one(graph, APP_GATEWAY, env)
        assert gateway.id not in {a.id for a in ancestors(graph, one(graph, VM, env).id)}


def test_vm_shape() -> None:
    graph = build_topology(spec_of(SCENARIOS["farm"]))
    vm = one(graph, VM, "life")
    props = vm.body["properties"]
    assert props["hardwareProfile"]["vmSize"] == "Standard_F4s_v2"
    storage = props["storageProfile"]
    assert storage["imageReference"]["offer"] == "WindowsServer"
    assert storage["imageReference"]["sku"] == "2022-datacenter"
    # Pinned: a server added later gets the same build.
    assert storage["imageReference"]["version"] == "20348.2762.241006"
    assert storage["osDisk"]["managedDisk"]["storageAccountType"] == "Premium_LRS"
    assert storage["dataDisks"][0]["diskSizeGB"] == 256
    assert storage["dataDisks"][0]["managedDisk"]["storageAccountType"] == "Premium_LRS"
    assert props["osProfile"]["computerName"] == "acme-life-vm"
    assert props["osProfile"]["adminUsername"] == "osadmin"
    assert "plan" not in vm.body


def test_base_image_carries_its_marketplace_plan() -> None:
    graph = build_topology(spec_of(SCENARIOS["farm-base-image"]))
    for env, sku in (("dev", "platformserver"), ("life", "lifetime"), ("prod", "platformserver")):
        vm = one(graph, VM, env)
        assert vm.body["plan"] == {
            "name": sku,
            "publisher": "outsystems",
            "product": "os11-vm-baseimage",
        }
        reference = vm.body["properties"]["storageProfile"]["imageReference"]
        assert reference["sku"] == sku
        # OutSystems/AzureARMTemplates environmentAzSQL.json (commit 71b88ea): base image
        # 2.28.0 carries Platform Server 11.32.0 and LifeTime 11.25.2.
        assert reference["version"] == "2.28.0"
    scale_set = one(graph, SCALE_SET)
    assert scale_set.body["plan"]["name"] == "platformserver"


def test_sql_databases_and_vnet_rule() -> None:
    graph = build_topology(spec_of(SCENARIOS["farm"]))
    databases = find(graph, SQL_DATABASE, "test")
    # The Marketplace template's names (OutSystems/docs-product,
    # src/setup-infra-platform/setup/azure/quick-reference.md, "Resources Mapping").
    assert sorted(d.name for d in databases) == [
        "acme-test-db",
        "acme-testlog-db",
        "acme-testsession-db",
    ]
    for database in databases:
        assert database.body["sku"] == {"name": "S3", "tier": "Standard"}
        assert database.body["properties"]["collation"] == "SQL_Latin1_General_CP1_CI_AI"
    rule = one(graph, SQL_VNET_RULE, "test")
    assert rule.body["properties"]["virtualNetworkSubnetId"].endswith("/subnets/acme-test-subnet")


def test_setup_roles_and_parameters() -> None:
    spec = spec_of(SCENARIOS["farm"])
    graph = build_topology(spec)
    names = PlatformNames.of("acme", SUB, "acme-rg")
    roles = {}
    for extension in find(graph, VM_EXTENSION):
        props = extension.body["properties"]
        assert props["type"] == "CustomScriptExtension"
        assert props["publisher"] == "Microsoft.Compute"
        assert props["typeHandlerVersion"] == "1.10"
        command = props["settings"]["commandToExecute"]
        assert "169.254.169.254/metadata/instance/compute/userData" in command
        assert "C:\\OutSystems\\Install-OutSystems.ps1" in command
        arguments = setup_arguments(props)
        assert tuple(arguments) == SETUP_SCRIPT_PARAMETERS
        env = extension.environment
        roles[env] = arguments["Role"]
        assert arguments["DatabaseServer"] == f"{names.sql_server(env)}.database.windows.net"  # type: ignore[arg-type]
        assert arguments["PlatformCatalog"] == f"acme-{env}-db"
        assert arguments["SessionCatalog"] == f"acme-{env}session-db"
        assert arguments["LoggingCatalog"] == f"acme-{env}log-db"
        assert arguments["PlatformVersion"] == "11.32.0"
        assert arguments["LifetimeVersion"] == "11.25.2"
        assert arguments["DatabaseAdminUser"] == "osadmin-sql"
        ip = one(graph, NIC, env).body["properties"]["ipConfigurations"][0]["properties"]
        assert arguments["ControllerAddress"] == ip["privateIPAddress"]
        assert arguments["StorageAccount"] == names.storage_account
        assert arguments["FileShare"] == "acme-config"
        assert arguments["KeyVaultUri"] == f"https://{one(graph, KEY_VAULT).name}.vault.azure.net/"
        assert arguments["IdentityResourceId"] == one(graph, IDENTITY, env).id
        assert arguments["TrustedProxyAddresses"] == "10.0.4.0/24"
    assert roles == {
        "dev": "standalone",
        "test": "standalone",
        "prod": "controller",
        "life": "lifetime",
    }
    standalone = build_topology(spec_of(SCENARIOS["standalone"]))
    prod_setup = one(standalone, VM_EXTENSION, "prod")
    assert setup_arguments(prod_setup.body["properties"])["Role"] == "standalone"


def test_setup_waits_for_databases_vnet_rule_and_share() -> None:
    graph = build_topology(spec_of(SCENARIOS["farm"]))
    for env in ENVIRONMENTS:
        setup = one(graph, VM_EXTENSION, env)
        needed = {a.type for a in ancestors(graph, setup.id)}
        assert {VM, NIC, SQL_DATABASE, SQL_VNET_RULE, FILE_SHARE, SQL_SERVER} <= needed
        # The server reads its secrets and writes its logs with its identity: the grants
        # exist before the setup runs, and cover exactly its own environment's secrets.
        grants = [a for a in ancestors(graph, setup.id) if a.type == ROLE_ASSIGNMENT]
        identity = one(graph, IDENTITY, env).id
        scopes = {
            g.id.split("/providers/Microsoft.Authorization/")[0].rsplit("/", 1)[-1]
            for g in grants
            if identity in g.depends_on
        }
        storage = one(graph, STORAGE_ACCOUNT).name
        assert scopes == {
            f"{env}-sql-admin-password", f"{env}-private-key", "outsystems-admin-password",
            storage,
        }  # fmt: skip


def test_setup_reruns_when_its_configuration_changes() -> None:
    first = build_topology(spec_of(SCENARIOS["farm"]))
    second = build_topology(spec_of({**SCENARIOS["farm"], "platformVersion": "11.33.0"}))
    stamp = [one(g, VM_EXTENSION, "dev").body["properties"]["settings"] for g in (first, second)]
    assert stamp[0] != stamp[1]


def test_farm_scale_set() -> None:
    spec = spec_of(SCENARIOS["farm"])
    graph = build_topology(spec)
    scale_set = one(graph, SCALE_SET)
    assert scale_set.name == "acme-prod-vmss"
    assert scale_set.body["sku"] == {"name": "Standard_F8s_v2", "tier": "Standard", "capacity": 2}
    props = scale_set.body["properties"]
    assert props["upgradePolicy"]["mode"] in {"Manual", "Automatic", "Rolling"}
    assert props["scaleInPolicy"]["rules"]
    assert props["overprovision"] is False
    profile = props["virtualMachineProfile"]
    assert profile["osProfile"]["computerNamePrefix"] == "acme-fe"
    assert profile["osProfile"]["adminPassword"] == token(
        KEY_VAULT_SECRET, argument="prod-frontends-admin-password"
    )
    # Scale-in tells an instance first (Scheduled Events) so it can leave the pool.
    notice = profile["scheduledEventsProfile"]["terminateNotificationProfile"]
    assert notice == {"enable": True, "notBeforeTimeout": "PT10M"}
    assert scale_set.body["identity"]["userAssignedIdentities"] == {
        one(graph, IDENTITY, "prod").id: {}
    }
    assert profile["userData"] == token(SETUP_SCRIPT_B64)
    ip_config = profile["networkProfile"]["networkInterfaceConfigurations"][0]["properties"][
        "ipConfigurations"
    ][0]["properties"]
    gateway = one(graph, APP_GATEWAY, "prod")
    assert ip_config["subnet"]["id"].endswith("/subnets/acme-prod-subnet")
    assert ip_config["applicationGatewayBackendAddressPools"] == [
        {"id": f"{gateway.id}/backendAddressPools/platform-servers"}
    ]
    # The scale set joins the pool; the controller stays out of the HTTP workload.
    pool = gateway.body["properties"]["backendAddressPools"][0]["properties"]
    assert pool["backendAddresses"] == []
    extension = profile["extensionProfile"]["extensions"][0]["properties"]
    arguments = setup_arguments(extension)
    assert arguments["Role"] == "frontend"
    assert arguments["ControllerAddress"] == "10.0.2.4"
    # The controller's setup runs first: its address and key feed the front-ends.
    controller_setup = one(graph, VM_EXTENSION, "prod")
    assert controller_setup.id in {a.id for a in ancestors(graph, scale_set.id)}
    assert spec.frontends is not None
    assert policy_from_tags(scale_set.body["tags"]) == spec.frontends.policy()
    assert scale_set.body["tags"]["osScalingPolicyMac"] == "{{SCALING_POLICY_MAC}}"


def test_farm_scaling_alerts() -> None:
    graph = build_topology(spec_of(SCENARIOS["farm"]))
    scale_set = one(graph, SCALE_SET)
    group = one(graph, ACTION_GROUP)
    assert group.name == "acme-prod-scale-ag"
    receiver = group.body["properties"]["webhookReceivers"][0]
    assert receiver["serviceUri"] == token(ALERT_WEBHOOK_URL)
    assert receiver["useCommonAlertSchema"] is True
    alerts = {a.name: a.body["properties"] for a in find(graph, METRIC_ALERT)}
    assert set(alerts) == {"acme-prod-frontends-cpu-high", "acme-prod-frontends-cpu-low"}
    for name, operator, threshold, window in (
        ("acme-prod-frontends-cpu-high", "GreaterThan", CPU_HIGH_THRESHOLD, "PT5M"),
        ("acme-prod-frontends-cpu-low", "LessThan", CPU_LOW_THRESHOLD, "PT15M"),
    ):
        props = alerts[name]
        assert props["scopes"] == [scale_set.id]
        assert props["windowSize"] == window
        criterion = props["criteria"]["allOf"][0]
        assert criterion["metricName"] == "Percentage CPU"
        assert (criterion["operator"], criterion["threshold"]) == (operator, threshold)
        assert props["actions"] == [{"actionGroupId": group.id}]
    assert (CPU_HIGH_THRESHOLD, CPU_LOW_THRESHOLD) == (70, 25)


def test_standalone_has_no_scale_set_or_alerts() -> None:
    graph = build_topology(spec_of(SCENARIOS["standalone"]))
    assert find(graph, SCALE_SET) == find(graph, ACTION_GROUP) == find(graph, METRIC_ALERT) == []


def test_every_gateway_serves_https_and_redirects_http() -> None:
    graph = build_topology(spec_of(SCENARIOS["farm"]))
    identity = one(graph, IDENTITY, "shared")
    vault = one(graph, KEY_VAULT)
    for env in ENVIRONMENTS:
        gateway = one(graph, APP_GATEWAY, env)
        props = gateway.body["properties"]
        assert [p["properties"]["port"] for p in props["frontendPorts"]] == [80, 443]
        # Without a certificate of the user's, a self-signed one from the platform's vault,
        # readable by the gateways' identity alone.
        certificate = props["sslCertificates"][0]["properties"]["keyVaultSecretId"]
        assert certificate == (
            f"https://{vault.name}.vault.azure.net/secrets/{env}-gateway-certificate"
        )
        secret = one_named(graph, f"{env}-gateway-certificate")
        grant = next(
            r for r in find(graph, ROLE_ASSIGNMENT) if r.id.startswith(secret.id + "/providers/")
        )
        assert grant.body["properties"]["roleDefinitionId"].endswith(KEY_VAULT_SECRETS_USER)
        assert identity.id in grant.depends_on
        assert {secret.id, grant.id, identity.id} <= set(gateway.depends_on)
        assert list(gateway.body["identity"]["userAssignedIdentities"]) == [identity.id]
        # TLS 1.2+ (Microsoft's predefined AppGwSslPolicy20220101S).
        assert props["sslPolicy"] == {
            "policyType": "Predefined",
            "policyName": "AppGwSslPolicy20220101S",
        }
        rules = {r["name"]: r["properties"] for r in props["requestRoutingRules"]}
        assert rules["http"]["redirectConfiguration"]["id"].endswith("/http-to-https")
        assert "backendAddressPool" not in rules["http"]
        assert rules["https"]["httpListener"]["id"].endswith("/httpListeners/https")
        redirect = props["redirectConfigurations"][0]["properties"]
        assert redirect["targetListener"]["id"].endswith("/httpListeners/https")
        assert redirect["redirectType"] == "Permanent"
        assert len({r["priority"] for r in rules.values()}) == 2
        assert props["probes"][0]["properties"]["path"] == "/servicecenter/_ping.aspx"
        draining = props["backendHttpSettingsCollection"][0]["properties"]["connectionDraining"]
        assert draining["enabled"] is True


def test_production_gets_a_waf_with_microsofts_default_rule_set() -> None:
    graph = build_topology(spec_of(SCENARIOS["farm"]))
    policy = one(graph, WAF_POLICY)
    assert policy.environment == "prod"
    settings = policy.body["properties"]["policySettings"]
    assert (settings["state"], settings["mode"]) == ("Enabled", "Prevention")
    # Large publishes pass: bodies over the inspection limit are not refused.
    assert settings["requestBodyEnforcement"] is False
    assert policy.body["properties"]["managedRules"]["managedRuleSets"] == [
        {"ruleSetType": "Microsoft_DefaultRuleSet", "ruleSetVersion": "2.1"}
    ]
    prod = one(graph, APP_GATEWAY, "prod").body["properties"]
    assert prod["sku"]["name"] == "WAF_v2"
    assert prod["firewallPolicy"]["id"] == policy.id
    dev = one(graph, APP_GATEWAY, "dev").body["properties"]
    assert dev["sku"]["name"] == "Standard_v2"
    assert "firewallPolicy" not in dev
    detecting = build_topology(
        spec_of({**SCENARIOS["farm"], "environments": {"dev": {"waf": "Detection"}}})
    )
    assert one(detecting, WAF_POLICY, "dev").body["properties"]["policySettings"]["mode"] == (
        "Detection"
    )


def test_a_users_certificate_replaces_the_self_signed_ones() -> None:
    graph = build_topology(spec_of(SCENARIOS["farm-bastion-tls"]))
    secure = one(graph, APP_GATEWAY, "life")
    props = secure.body["properties"]
    assert props["sslCertificates"][0]["properties"]["keyVaultSecretId"] == CERT
    assert not [r for r in find(graph, KEY_VAULT_SECRET_TYPE) if "gateway" in r.name]
    identity = one(graph, IDENTITY, "shared")
    assert list(secure.body["identity"]["userAssignedIdentities"]) == [identity.id]
    theirs = (
        "/subscriptions/"
        + SUB
        + ("/resourceGroups/sec/providers/Microsoft.ManagedIdentity/userAssignedIdentities/appgw")
    )
    own = build_topology(
        spec_of({**SCENARIOS["farm"], "tls": {"certificateSecretId": CERT, "identityId": theirs}})
    )
    assert find(own, IDENTITY, "shared") == []
    gateway = one(own, APP_GATEWAY, "dev")
    assert list(gateway.body["identity"]["userAssignedIdentities"]) == [theirs]
    assert theirs not in gateway.depends_on


def one_named(graph: ResourceGraph, name: str) -> Resource:
    (found,) = [r for r in graph if r.name == name]
    return found


def test_gateway_public_ip_is_standard_static_with_a_dns_label() -> None:
    graph = build_topology(spec_of(SCENARIOS["farm"]))
    address = one(graph, PUBLIC_IP, "prod")
    assert address.body["sku"]["name"] == "Standard"
    assert address.body["properties"]["publicIPAllocationMethod"] == "Static"
    label = address.body["properties"]["dnsSettings"]["domainNameLabel"]
    assert label.startswith("acme-prod-")


def test_bastion() -> None:
    graph = build_topology(spec_of(SCENARIOS["farm-bastion-tls"]))
    host = one(graph, BASTION_HOST)
    config = host.body["properties"]["ipConfigurations"][0]["properties"]
    assert config["subnet"]["id"].endswith("/subnets/AzureBastionSubnet")
    assert graph.get(config["publicIPAddress"]["id"]).name == "acme-bastion-pip"
    assert find(build_topology(spec_of(SCENARIOS["farm"])), BASTION_HOST) == []


def test_existing_subnets_are_used_as_given() -> None:
    spec = spec_of(SCENARIOS["standalone-existing-bastion-tls"])
    graph = build_topology(spec)
    assert find(graph, VNET) == find(graph, NSG) == []
    for env in ENVIRONMENTS:
        nic = one(graph, NIC, env)
        config = nic.body["properties"]["ipConfigurations"][0]["properties"]
        assert config["subnet"]["id"] == EXISTING[env]
        assert config["privateIPAllocationMethod"] == "Dynamic"
        gateway = one(graph, APP_GATEWAY, env)
        # Addresses are unknown before the NICs exist: the NICs join the gateway's pool.
        assert config["applicationGatewayBackendAddressPools"] == [
            {"id": f"{gateway.id}/backendAddressPools/platform-servers"}
        ]
        assert gateway.id in nic.depends_on
        rule = one(graph, SQL_VNET_RULE, env)
        assert rule.body["properties"]["virtualNetworkSubnetId"] == EXISTING[env]
        setup = one(graph, VM_EXTENSION, env)
        arguments = setup_arguments(setup.body["properties"])
        assert arguments["ControllerAddress"] == f"acme-{env}-vm"
        # The user's gateway subnet: its prefix is read from ARM when the body is sent.
        assert arguments["TrustedProxyAddresses"] == (
            "{{REFERENCE:" + EXISTING["gateway"] + "#properties.addressPrefix}}"
        )
    gateway_config = one(graph, APP_GATEWAY, "dev").body["properties"]["gatewayIPConfigurations"]
    assert gateway_config[0]["properties"]["subnet"]["id"] == EXISTING["gateway"]
    bastion = one(graph, BASTION_HOST).body["properties"]["ipConfigurations"][0]["properties"]
    assert bastion["subnet"]["id"] == subnet_id("AzureBastionSubnet")


def test_farm_in_existing_subnets_keeps_the_controller_out_of_the_pool() -> None:
    graph = build_topology(spec_of(SCENARIOS["farm-existing-subnets"]))
    controller = one(graph, NIC, "prod").body["properties"]["ipConfigurations"][0]["properties"]
    assert "applicationGatewayBackendAddressPools" not in controller
    scale_set = one(graph, SCALE_SET)
    config = scale_set.body["properties"]["virtualMachineProfile"]["networkProfile"]
    ip = config["networkInterfaceConfigurations"][0]["properties"]["ipConfigurations"][0]
    assert ip["properties"]["subnet"]["id"] == EXISTING["prod"]


# --- the graph structure ----------------------------------------------------------------------


def node(name: str, *depends_on: str) -> Resource:
    return Resource(
        id=f"/x/{name}",
        type="T",
        name=name,
        api_version="1",
        environment="shared",
        body={},
        depends_on=tuple(f"/x/{d}" for d in depends_on),
    )


def test_graph_sorts_dependencies_first_keeping_the_given_order_otherwise() -> None:
    graph = ResourceGraph.of([node("c", "a"), node("b"), node("a"), node("d", "c", "b")])
    assert [r.name for r in graph] == ["b", "a", "c", "d"]
    assert [r.name for r in ancestors(graph, "/x/d")] == ["b", "a", "c"]
    assert graph.get("/X/C").name == "c"
    assert "/x/b" in graph
    assert owner_of(graph, "/x/c/sub/1") == graph.get("/x/c")
    assert owner_of(graph, "/y/c") is None
    assert len(graph) == 4


@pytest.mark.parametrize(
    ("resources", "message"),
    [
        ([node("a"), node("A")], "duplicate"),
        ([node("a", "missing")], "unknown"),
        ([node("a", "c"), node("b", "a"), node("c", "b"), node("d")], "cycle"),
        ([node("a", "a")], "cycle"),
    ],
)
def test_invalid_graphs_are_refused(resources: list[Resource], message: str) -> None:
    with pytest.raises(GraphError, match=message):
        ResourceGraph.of(resources)


# --- every valid spec builds a consistent graph -----------------------------------------------


@st.composite
def specs(draw: st.DrawFn) -> PlatformSpec:
    body: dict[str, Any] = {
        "location": draw(st.sampled_from(["westeurope", "eastus2"])),
        "license": "own",
    }
    body["bastion"] = draw(st.booleans())
    if draw(st.booleans()):
        body["tls"] = {"certificateSecretId": CERT}
    if draw(st.booleans()):
        subnets = dict(EXISTING)
        if body["bastion"]:
            subnets["bastion"] = subnet_id("AzureBastionSubnet")
        body["network"] = {"existingSubnetIds": subnets}
    else:
        prefix = draw(st.integers(min_value=12, max_value=23 if body["bastion"] else 24))
        body["network"] = {"addressSpace": f"172.16.0.0/{prefix}"}
    if draw(st.booleans()):
        body["environments"] = {"prod": {"mode": "standalone"}}
    else:
        high = draw(st.integers(min_value=1, max_value=20))
        body["environments"] = {"prod": {"frontends": {"minCapacity": 1, "maxCapacity": high}}}
    body["tags"] = draw(
        st.dictionaries(
            st.from_regex(r"[a-z]{1,8}", fullmatch=True), st.text(max_size=5), max_size=3
        )
    )
    solution = draw(st.from_regex(r"[a-z][a-z0-9]{0,5}", fullmatch=True))
    return spec_of(body, solution)


@given(specs())
@settings(max_examples=40, deadline=None)
def test_any_valid_spec_builds_a_consistent_graph(spec: PlatformSpec) -> None:
    graph = build_topology(spec)
    user_subnets = existing_subnets(spec)
    for resource in graph:
        built_before = {a.id for a in ancestors(graph, resource.id)}
        for ref in referenced_ids(resource.body):
            owner = owner_of(graph, ref)
            assert ref.lower() in user_subnets or owner is not None, ref
            if owner is not None and owner.id != resource.id:
                assert owner.id in built_before
        if resource.type not in UNTAGGED_TYPES:
            assert resource.body["tags"]["osSolutionId"] == spec.solution_id
    plan = spec.address_plan()
    if plan is not None:
        for env in ENVIRONMENTS:
            config = one(graph, NIC, env).body["properties"]["ipConfigurations"][0]["properties"]
            assert ipaddress.ip_address(config["privateIPAddress"]) in plan.subnet(env)
    assert (len(find(graph, SCALE_SET)) == 1) == spec.is_farm


def test_resources_are_hashable_by_id() -> None:
    graph = build_topology(spec_of(SCENARIOS["farm"]))
    assert len(set(graph.resources)) == len(graph)
    assert graph.get(graph.resources[3].id.upper()) in set(graph.resources)

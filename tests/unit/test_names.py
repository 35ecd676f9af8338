"""Resource names: deterministic and valid under Azure's rules for every valid solution id."""

from __future__ import annotations

import re
import uuid

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from outsystems.names import (
    CATALOGS,
    ENVIRONMENTS,
    NAMING_SCHEMES,
    SETUP_EXTENSION,
    Environment,
    NamingScheme,
    PlatformNames,
    default_resource_group,
    frontends_admin_secret,
    gateway_certificate_secret,
    is_valid_solution_id,
    outsystems_admin_secret,
    private_key_secret,
    sql_admin_secret,
    unique_suffix,
    vm_admin_secret,
)

solution_ids = st.from_regex(r"[a-z][a-z0-9]{0,5}", fullmatch=True)
environments = st.sampled_from(ENVIRONMENTS)
subscriptions = st.uuids().map(str)
groups = st.from_regex(r"[A-Za-z0-9_().-]{0,89}[A-Za-z0-9_()-]", fullmatch=True)

# Azure's naming rules (Microsoft's "Naming rules and restrictions for Azure resources",
# MicrosoftDocs azure-docs articles/azure-resource-manager/management/resource-name-rules.md),
# written out here independently of the code under test.
GENERIC_80 = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,78}[A-Za-z0-9_]")  # network resources
VM_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}[A-Za-z0-9_]")  # VMs, scale sets (64)
WINDOWS_COMPUTER = re.compile(r"(?!^[0-9]+$)[A-Za-z0-9][A-Za-z0-9-]{0,13}[A-Za-z0-9]")
SQL_SERVER = re.compile(r"[a-z0-9][a-z0-9-]{1,61}[a-z0-9]")
SQL_IDENTIFIER = re.compile(r"[a-z][a-z0-9_]{0,127}")
# servers/databases: 1-128, none of <>*%&:\/? or control characters, not ending with . or space.
SQL_DATABASE = re.compile(r"[^<>*%&:\\/?\x00-\x1f]{0,127}[^<>*%&:\\/?\x00-\x1f. ]")
# vaults: 3-24 alphanumerics and hyphens, start with a letter, end with a letter or digit,
# no consecutive hyphens.
KEY_VAULT = re.compile(r"(?!.*--)[a-zA-Z][a-zA-Z0-9-]{1,22}[a-zA-Z0-9]")
VAULT_SECRET = re.compile(r"[a-zA-Z0-9-]{1,127}")
IDENTITY = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_-]{2,127}")
STORAGE = re.compile(r"[a-z0-9]{3,24}")
SHARE = re.compile(r"(?!.*--)[a-z0-9][a-z0-9-]{1,61}[a-z0-9]")
DNS_LABEL = re.compile(r"[a-z][a-z0-9-]{1,61}[a-z0-9]")
ALERT = re.compile(r"[^*#&+:<>?@%{}\\/]{1,260}")
RESOURCE_GROUP = re.compile(r"[-\w.()]{0,89}[-\w()]")


@given(solution_ids, environments, subscriptions, groups, st.sampled_from(NAMING_SCHEMES))
@settings(max_examples=300)
def test_every_name_obeys_azure_rules(
    sol: str, env: Environment, sub: str, rg: str, scheme: NamingScheme
) -> None:
    names = PlatformNames.of(sol, sub, rg, scheme)
    for name in (
        names.vnet, names.gateway_subnet, names.gateway_nsg, names.bastion,
        names.bastion_public_ip, names.subnet(env), names.nsg(env), names.nic(env),
        names.public_ip(env), names.app_gateway(env), names.os_disk(env), names.data_disk(env),
        names.sql_vnet_rule(env), names.scale_set_nic, names.waf_policy(env),
    ):  # fmt: skip
        assert GENERIC_80.fullmatch(name), name
    for name in (names.vm(env), names.scale_set, SETUP_EXTENSION):
        assert VM_NAME.fullmatch(name), name
    assert WINDOWS_COMPUTER.fullmatch(names.computer_name(env))
    assert len(names.computer_name(env)) <= 15
    prefix = names.scale_set_computer_name_prefix
    assert len(prefix) <= 9
    assert re.fullmatch(r"[a-z][a-z0-9-]*", prefix)
    assert SQL_SERVER.fullmatch(names.sql_server(env))
    assert names.sql_server_fqdn(env) == f"{names.sql_server(env)}.database.windows.net"
    for catalog in CATALOGS:
        assert SQL_DATABASE.fullmatch(names.database(env, catalog))
        if scheme == "legacy":
            assert SQL_IDENTIFIER.fullmatch(names.database(env, catalog))
    assert KEY_VAULT.fullmatch(names.key_vault), names.key_vault
    assert IDENTITY.fullmatch(names.identity(env))
    for secret in (
        sql_admin_secret(env), vm_admin_secret(env), private_key_secret(env),
        outsystems_admin_secret(), gateway_certificate_secret(env), frontends_admin_secret(),
    ):  # fmt: skip
        assert VAULT_SECRET.fullmatch(secret.name)
    assert STORAGE.fullmatch(names.storage_account)
    assert SHARE.fullmatch(names.file_share)
    assert DNS_LABEL.fullmatch(names.dns_label(env))
    assert re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_-]{2,127}", names.gateway_identity)
    assert len(names.scaling_action_group_short_name) <= 12
    for name in (names.scaling_action_group, names.cpu_high_alert, names.cpu_low_alert):
        assert ALERT.fullmatch(name)
    assert RESOURCE_GROUP.fullmatch(default_resource_group(sol))


@given(solution_ids, subscriptions, groups)
@settings(max_examples=100)
def test_names_of_different_environments_never_collide(sol: str, sub: str, rg: str) -> None:
    names = PlatformNames.of(sol, sub, rg)
    per_env = [
        (names.vm(e), names.nic(e), names.sql_server(e), names.app_gateway(e), names.dns_label(e))
        for e in ENVIRONMENTS
    ]
    flat = [name for group in per_env for name in group]
    assert len(flat) == len(set(flat))
    assert names.scale_set not in flat


@given(subscriptions, groups)
def test_suffix_is_13_lowercase_base32_chars_and_case_insensitive(sub: str, rg: str) -> None:
    suffix = unique_suffix(sub, rg)
    assert re.fullmatch(r"[a-z2-7]{13}", suffix)
    assert unique_suffix(sub.upper(), rg.upper()) == suffix


def test_suffix_differs_between_subscriptions_and_groups() -> None:
    sub, other = str(uuid.UUID(int=1)), str(uuid.UUID(int=2))
    suffixes = {
        unique_suffix(sub, "acme-rg"),
        unique_suffix(other, "acme-rg"),
        unique_suffix(sub, "acme-rg2"),
    }
    assert len(suffixes) == 3


def test_worst_case_solution_id_and_environment() -> None:
    names = PlatformNames.of("abcdef", str(uuid.UUID(int=7)), "abcdef-rg")
    assert names.computer_name("life") == "abcdef-life-vm"
    assert len(names.computer_name("life")) == 14
    assert names.scale_set_computer_name_prefix == "abcdef-fe"
    assert names.scale_set == "abcdef-prod-vmss"
    assert names.vm("life") == "abcdef-life-vm"
    assert names.app_gateway("life") == "abcdef-life-appgw"
    # The Marketplace template's names (OutSystems/docs-product,
    # src/setup-infra-platform/setup/azure/quick-reference.md, "Resources Mapping").
    assert names.public_ip("life") == "abcdef-life-appgw-PIP"
    assert names.sql_server("life") == f"abcdef-life-srv{names.suffix}"
    assert len(names.sql_server("life")) == 28
    assert names.database("life", "platform") == "abcdef-life-db"
    assert names.database("life", "session") == "abcdef-lifesession-db"
    assert names.database("life", "logging") == "abcdef-lifelog-db"
    assert names.sql_admin_login("osadmin") == "osadmin-sql"
    assert names.key_vault == f"abcdef-kv-{names.suffix}"
    assert len(names.key_vault) == 23
    assert names.storage_account == f"abcdef{names.suffix}"
    assert len(names.storage_account) == 19
    assert names.scaling_action_group == "abcdef-prod-scale-ag"
    assert names.scaling_action_group_short_name == "abcdef-scale"
    assert (names.cpu_high_alert, names.cpu_low_alert) == (
        "abcdef-prod-frontends-cpu-high",
        "abcdef-prod-frontends-cpu-low",
    )
    assert names.vnet == "abcdef-vnet"
    assert default_resource_group("abcdef") == "abcdef-rg"


def test_a_platform_deployed_before_keeps_its_names() -> None:
    names = PlatformNames.of("acme", str(uuid.UUID(int=7)), "acme-rg", "legacy")
    assert names.public_ip("dev") == "acme-dev-pip"
    assert names.sql_server("dev") == f"acme-dev-sql{names.suffix}"
    assert names.database("dev", "session") == "acme_dev_session"
    assert names.sql_admin_login("osadmin") == "sqladmin"
    assert names.vm("dev") == PlatformNames.of("acme", str(uuid.UUID(int=7)), "acme-rg").vm("dev")


def test_names_are_deterministic() -> None:
    sub = str(uuid.UUID(int=9))
    assert PlatformNames.of("acme", sub, "acme-rg") == PlatformNames.of("acme", sub, "acme-rg")


@pytest.mark.parametrize("bad", ["", "Acme", "1abc", "abcdefg", "ab-c", "ab_c", "ábc"])
def test_invalid_solution_ids_are_refused(bad: str) -> None:
    assert not is_valid_solution_id(bad)
    with pytest.raises(ValueError, match="solution id"):
        PlatformNames.of(bad, str(uuid.UUID(int=1)), "rg")


@pytest.mark.parametrize("good", ["a", "acme", "abc123", "z9"])
def test_valid_solution_ids_are_accepted(good: str) -> None:
    assert is_valid_solution_id(good)

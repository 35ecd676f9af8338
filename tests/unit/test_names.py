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
    SETUP_EXTENSION,
    Environment,
    PlatformNames,
    default_resource_group,
    is_valid_solution_id,
    unique_suffix,
)

solution_ids = st.from_regex(r"[a-z][a-z0-9]{0,5}", fullmatch=True)
environments = st.sampled_from(ENVIRONMENTS)
subscriptions = st.uuids().map(str)
groups = st.from_regex(r"[A-Za-z0-9_().-]{0,89}[A-Za-z0-9_()-]", fullmatch=True)

# Azure's naming rules, written out here independently of the code under test.
GENERIC_80 = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,78}[A-Za-z0-9_]")  # network resources
VM_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}[A-Za-z0-9_]")  # VMs, scale sets (64)
WINDOWS_COMPUTER = re.compile(r"(?!^[0-9]+$)[A-Za-z0-9][A-Za-z0-9-]{0,13}[A-Za-z0-9]")
SQL_SERVER = re.compile(r"[a-z0-9][a-z0-9-]{1,61}[a-z0-9]")
SQL_IDENTIFIER = re.compile(r"[a-z][a-z0-9_]{0,127}")
STORAGE = re.compile(r"[a-z0-9]{3,24}")
SHARE = re.compile(r"(?!.*--)[a-z0-9][a-z0-9-]{1,61}[a-z0-9]")
DNS_LABEL = re.compile(r"[a-z][a-z0-9-]{1,61}[a-z0-9]")
ALERT = re.compile(r"[^*#&+:<>?@%{}\\/]{1,260}")
RESOURCE_GROUP = re.compile(r"[-\w.()]{0,89}[-\w()]")


@given(solution_ids, environments, subscriptions, groups)
@settings(max_examples=300)
def test_every_name_obeys_azure_rules(sol: str, env: Environment, sub: str, rg: str) -> None:
    names = PlatformNames.of(sol, sub, rg)
    for name in (
        names.vnet, names.gateway_subnet, names.gateway_nsg, names.bastion,
        names.bastion_public_ip, names.subnet(env), names.nsg(env), names.nic(env),
        names.public_ip(env), names.app_gateway(env), names.os_disk(env), names.data_disk(env),
        names.sql_vnet_rule(env), names.scale_set_nic,
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
        assert SQL_IDENTIFIER.fullmatch(names.database(env, catalog))
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
    assert names.public_ip("life") == "abcdef-life-pip"
    assert names.sql_server("life") == f"abcdef-life-sql{names.suffix}"
    assert len(names.sql_server("life")) == 28
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

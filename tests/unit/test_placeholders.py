"""Placeholders: found anywhere in a body, rendered into a copy, never rendered half-way."""

from __future__ import annotations

import base64
import copy
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from outsystems.placeholders import (
    ALERT_WEBHOOK_URL,
    BASE64,
    KEY_VAULT_SECRET,
    PLACEHOLDERS,
    SCALING_POLICY_MAC,
    SECRET_VALUE,
    SETUP_SCRIPT_B64,
    TENANT_ID,
    MissingPlaceholderError,
    Token,
    placeholders_in,
    reference,
    render,
    split_reference,
    token,
    tokens_in,
)

VM_PASSWORD = token(KEY_VAULT_SECRET, argument="dev-vm-admin-password")
IDENTITY = (
    "/subscriptions/s/resourceGroups/g/providers/Microsoft.ManagedIdentity/"
    "userAssignedIdentities/acme-dev-id"
)
PRINCIPAL = reference(IDENTITY, "properties.principalId")
BODY: dict[str, Any] = {
    "properties": {
        "osProfile": {"adminPassword": VM_PASSWORD, "computerName": "acme-dev-vm"},
        "userData": token(SETUP_SCRIPT_B64),
        "list": [1, True, None, {"uri": token(ALERT_WEBHOOK_URL)}],
        "command": f"run -p {token(SECRET_VALUE, BASE64)} -t {token(TENANT_ID)}",
        "principalId": PRINCIPAL,
        token("NOT_A_VALUE_KEYS_ARE_LEFT_ALONE"): 3,
    },
    "tags": {"osScalingPolicyMac": token(SCALING_POLICY_MAC)},
}
VALUES = {
    f"{KEY_VAULT_SECRET}:dev-vm-admin-password": "vm-pass",
    SETUP_SCRIPT_B64: "c2NyaXB0",
    ALERT_WEBHOOK_URL: "https://app/api/alerts?code=k",
    SECRET_VALUE: "a'b\"c%d^e&f|g",
    TENANT_ID: "0000-tenant",
    f"REFERENCE:{IDENTITY}#properties.principalId": "principal-1",
    SCALING_POLICY_MAC: "0" * 64,
}


def test_token_text() -> None:
    assert token(TENANT_ID) == "{{TENANT_ID}}"
    assert token(SECRET_VALUE, BASE64) == "{{SECRET_VALUE|base64}}"
    assert VM_PASSWORD == "{{KEY_VAULT_SECRET:dev-vm-admin-password}}"
    with pytest.raises(ValueError, match="filter"):
        token(SECRET_VALUE, "rot13")
    for bad in ("", "a}b", "a|b", "{"):
        with pytest.raises(ValueError, match="argument"):
            token(KEY_VAULT_SECRET, argument=bad)


def test_placeholders_are_found_in_nested_string_values_only() -> None:
    assert placeholders_in(BODY) == {
        KEY_VAULT_SECRET, SETUP_SCRIPT_B64, ALERT_WEBHOOK_URL, SECRET_VALUE, TENANT_ID,
        "REFERENCE", SCALING_POLICY_MAC,
    }  # fmt: skip
    assert placeholders_in(BODY) <= PLACEHOLDERS
    assert placeholders_in({"a": "no tokens {here}", "b": 3}) == set()
    assert placeholders_in(("x{{A}}y", ["{{B|base64}}"])) == {"A", "B"}
    assert Token(KEY_VAULT_SECRET, "dev-vm-admin-password") in tokens_in(BODY)


def test_a_reference_names_a_resource_and_a_property() -> None:
    (found,) = tokens_in({"p": PRINCIPAL})
    assert found.argument is not None
    assert split_reference(found.argument) == (IDENTITY, "properties.principalId")
    with pytest.raises(ValueError, match="reference"):
        split_reference(IDENTITY)


def test_render_fills_every_placeholder_in_a_copy() -> None:
    original = copy.deepcopy(BODY)
    rendered = render(BODY, VALUES)
    assert original == BODY
    assert placeholders_in(rendered) == set()
    props = rendered["properties"]
    assert props["osProfile"] == {"adminPassword": "vm-pass", "computerName": "acme-dev-vm"}
    assert props["userData"] == "c2NyaXB0"
    assert props["list"] == [1, True, None, {"uri": "https://app/api/alerts?code=k"}]
    assert props["principalId"] == "principal-1"
    assert token("NOT_A_VALUE_KEYS_ARE_LEFT_ALONE") in props


def test_base64_filter_makes_any_secret_safe_for_a_command_line() -> None:
    command = render(BODY, VALUES)["properties"]["command"]
    assert isinstance(command, str)
    encoded = command.split()[2]
    assert base64.b64decode(encoded).decode() == VALUES[SECRET_VALUE]
    assert set(encoded) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=")
    assert command.endswith(f"-t {VALUES[TENANT_ID]}")


def test_missing_value_is_named_and_no_value_leaks() -> None:
    values = {k: v for k, v in VALUES.items() if k != TENANT_ID}
    with pytest.raises(MissingPlaceholderError) as raised:
        render(BODY, values)
    assert raised.value.name == TENANT_ID
    assert TENANT_ID in str(raised.value)
    assert not any(value in str(raised.value) for value in values.values())


def test_unknown_filter_is_refused_at_render() -> None:
    with pytest.raises(ValueError, match="rot13"):
        render({"a": "{{X|rot13}}"}, {"X": "secret-value"})


def test_tuples_stay_tuples() -> None:
    assert render(("{{X}}", ["{{X}}"]), {"X": "1"}) == ("1", ["1"])


@given(st.text(), st.text(alphabet=st.characters(blacklist_characters="{}")))
def test_render_replaces_exactly_the_token(prefix: str, value: str) -> None:
    body = {"s": prefix.replace("{", "") + token("NAME") + "!"}
    assert render(body, {"NAME": value}) == {"s": prefix.replace("{", "") + value + "!"}

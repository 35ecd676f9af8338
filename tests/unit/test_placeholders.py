"""Placeholders: found anywhere in a body, rendered into a copy, never rendered half-way."""

from __future__ import annotations

import base64
import copy

import pytest
from hypothesis import given
from hypothesis import strategies as st

from outsystems.placeholders import (
    ALERT_WEBHOOK_URL,
    BASE64,
    PLACEHOLDERS,
    PRIVATE_KEY,
    SCALING_POLICY_MAC,
    SETUP_SCRIPT_B64,
    SQL_ADMIN_PASSWORD,
    VM_ADMIN_PASSWORD,
    MissingPlaceholderError,
    placeholders_in,
    render,
    token,
)

BODY = {
    "properties": {
        "osProfile": {"adminPassword": token(VM_ADMIN_PASSWORD), "computerName": "acme-dev-vm"},
        "userData": token(SETUP_SCRIPT_B64),
        "list": [1, True, None, {"uri": token(ALERT_WEBHOOK_URL)}],
        "command": f"run -p {token(SQL_ADMIN_PASSWORD, BASE64)} -k {token(PRIVATE_KEY)}",
        token("NOT_A_VALUE_KEYS_ARE_LEFT_ALONE"): 3,
    },
    "tags": {"osScalingPolicyMac": token(SCALING_POLICY_MAC)},
}
VALUES = {
    VM_ADMIN_PASSWORD: "vm-pass",
    SETUP_SCRIPT_B64: "c2NyaXB0",
    ALERT_WEBHOOK_URL: "https://app/api/alerts?code=k",
    SQL_ADMIN_PASSWORD: "a'b\"c%d^e&f|g",
    PRIVATE_KEY: "a2V5a2V5a2V5a2V5a2V5aw==",
    SCALING_POLICY_MAC: "0" * 64,
}


def test_token_text() -> None:
    assert token(VM_ADMIN_PASSWORD) == "{{VM_ADMIN_PASSWORD}}"
    assert token(PRIVATE_KEY, BASE64) == "{{PRIVATE_KEY|base64}}"
    with pytest.raises(ValueError, match="filter"):
        token(PRIVATE_KEY, "rot13")


def test_placeholders_are_found_in_nested_string_values_only() -> None:
    assert placeholders_in(BODY) == PLACEHOLDERS
    assert placeholders_in({"a": "no tokens {here}", "b": 3}) == set()
    assert placeholders_in(("x{{A}}y", ["{{B|base64}}"])) == {"A", "B"}


def test_render_fills_every_placeholder_in_a_copy() -> None:
    original = copy.deepcopy(BODY)
    rendered = render(BODY, VALUES)
    assert original == BODY
    assert placeholders_in(rendered) == set()
    props = rendered["properties"]
    assert props["osProfile"] == {"adminPassword": "vm-pass", "computerName": "acme-dev-vm"}
    assert props["userData"] == "c2NyaXB0"
    assert props["list"] == [1, True, None, {"uri": "https://app/api/alerts?code=k"}]
    assert token("NOT_A_VALUE_KEYS_ARE_LEFT_ALONE") in props


def test_base64_filter_makes_any_secret_safe_for_a_command_line() -> None:
    command = render(BODY, VALUES)["properties"]["command"]
    assert isinstance(command, str)
    encoded = command.split()[2]
    assert base64.b64decode(encoded).decode() == VALUES[SQL_ADMIN_PASSWORD]
    assert set(encoded) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=")
    assert command.endswith(f"-k {VALUES[PRIVATE_KEY]}")


def test_missing_value_is_named_and_no_value_leaks() -> None:
    values = {k: v for k, v in VALUES.items() if k != PRIVATE_KEY}
    with pytest.raises(MissingPlaceholderError) as raised:
        render(BODY, values)
    assert raised.value.name == PRIVATE_KEY
    assert PRIVATE_KEY in str(raised.value)
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

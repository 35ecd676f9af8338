"""The per-environment private key: deterministic, 16 bytes, independent per environment."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest

from outsystems.keys import derive_private_key
from outsystems.names import ENVIRONMENTS


def test_key_is_base64_of_16_bytes() -> None:
    key = derive_private_key("seed", "acme", "prod")
    assert len(key) == 24
    assert len(base64.b64decode(key, validate=True)) == 16


def test_key_follows_the_documented_hmac_derivation() -> None:
    expected = hmac.new(
        b"s3cr3t", b"outsystems-azure-ops/private-key/v1/acme/dev", hashlib.sha256
    ).digest()[:16]
    assert base64.b64decode(derive_private_key("s3cr3t", "acme", "dev")) == expected


def test_key_is_deterministic() -> None:
    assert derive_private_key("seed", "acme", "life") == derive_private_key("seed", "acme", "life")


def test_keys_differ_per_environment_solution_and_seed() -> None:
    keys = {derive_private_key("seed", "acme", env) for env in ENVIRONMENTS}
    keys |= {
        derive_private_key("seed", "other", "prod"),
        derive_private_key("seed2", "acme", "prod"),
    }
    assert len(keys) == len(ENVIRONMENTS) + 2


@pytest.mark.parametrize(
    ("seed", "solution", "env", "message"),
    [
        ("", "acme", "prod", "PLATFORM_KEY_SEED"),
        ("TOP-SECRET-SEED", "Acme", "prod", "solution id"),
        ("TOP-SECRET-SEED", "acme", "staging", "environment"),
    ],
)
def test_bad_input_is_refused_without_echoing_the_seed(
    seed: str, solution: str, env: str, message: str
) -> None:
    with pytest.raises(ValueError, match=message) as raised:
        derive_private_key(seed, solution, env)
    assert seed == "" or seed not in str(raised.value)

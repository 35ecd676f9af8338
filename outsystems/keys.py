"""The OutSystems private key of each environment, derived from a secret seed.

OutSystems servers of one environment must share the same `private.key` (base64 of 16 random
bytes). Rather than reading it back from the controller, as OutSystems' own templates do, the
activities derive it from the `PLATFORM_KEY_SEED` app setting: deterministic, identical for the
controller and every front-end, and never written to orchestration history.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Final

from outsystems.names import ENVIRONMENTS, is_valid_solution_id

PRIVATE_KEY_BYTES: Final = 16
# Versioned so that a future change of derivation can never silently reuse the old keys.
_CONTEXT: Final = "outsystems-azure-ops/private-key/v1"


def derive_private_key(seed: str, solution_id: str, environment: str) -> str:
    """The environment's private key: base64 of 16 bytes of HMAC-SHA256(seed, context).

    Raises `ValueError` for an empty seed, an invalid solution id or an unknown environment;
    the message never contains the seed.
    """
    if not seed:
        raise ValueError("the private key seed (PLATFORM_KEY_SEED) is empty")
    if not is_valid_solution_id(solution_id):
        raise ValueError(f"invalid solution id {solution_id!r}")
    if environment not in ENVIRONMENTS:
        raise ValueError(f"unknown environment {environment!r}; use one of {ENVIRONMENTS}")
    message = f"{_CONTEXT}/{solution_id}/{environment}".encode()
    digest = hmac.new(seed.encode("utf-8"), message, hashlib.sha256).digest()
    return base64.b64encode(digest[:PRIVATE_KEY_BYTES]).decode("ascii")


# --- Passwords of a platform's servers ---------------------------------------------------------
#
# Each password is derived from the seed, the Key Vault secret that keeps it and a nonce chosen
# when that secret was created (kept in the secret's tags). So each environment and each server
# kind gets its own password, knowing one reveals nothing of the others, and the app can compute
# a password again when it must create a server, without reading the vault's data plane.

PASSWORD_LENGTH: Final = 28
_PASSWORD_CONTEXT: Final = "outsystems-azure-ops/password/v1"
_UPPER: Final = "ABCDEFGHJKLMNPQRSTUVWXYZ"
_LOWER: Final = "abcdefghijkmnopqrstuvwxyz"
_DIGITS: Final = "23456789"
# Symbols that need no quoting in PowerShell, cmd.exe, T-SQL or a connection string.
_SYMBOLS: Final = "-_.+=~"
_ALPHABET: Final = _UPPER + _LOWER + _DIGITS + _SYMBOLS


def derive_password(seed: str, secret_id: str, nonce: str) -> str:
    """A 28-character password with upper and lower case letters, digits and symbols.

    It satisfies both Azure VM (3 of 4 classes, 12-123 characters) and Azure SQL (3 of 4
    classes, 8-128) complexity rules. Raises `ValueError` for an empty seed or nonce; the
    message never contains the seed.
    """
    if not seed:
        raise ValueError("the secret seed (PLATFORM_KEY_SEED) is empty")
    if not nonce:
        raise ValueError(f"no nonce for the secret {secret_id}")
    message = f"{_PASSWORD_CONTEXT}|{secret_id.lower()}|{nonce}".encode()
    stream = b""
    counter = 0
    while len(stream) < PASSWORD_LENGTH * 2:
        block = hmac.new(seed.encode("utf-8"), message + bytes([counter]), hashlib.sha256)
        stream += block.digest()
        counter += 1
    # Two bytes per character keep the modulo bias below 0.2 %.
    characters = [
        _ALPHABET[int.from_bytes(stream[2 * i : 2 * i + 2], "big") % len(_ALPHABET)]
        for i in range(PASSWORD_LENGTH)
    ]
    # One character of each class at fixed, digest-chosen places.
    for index, klass in enumerate((_UPPER, _LOWER, _DIGITS, _SYMBOLS)):
        characters[index * 7] = klass[stream[index] % len(klass)]
    return "".join(characters)

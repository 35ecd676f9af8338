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

"""Values for the placeholders of a resource body, read at the moment the body is sent.

The resource graph carries `{{NAME}}` tokens instead of secrets (`outsystems.placeholders`);
this module supplies their values from app settings (Key Vault references in Azure) and the
packaged setup script. Only the values a body actually uses are read, so a standalone platform
never needs `ALERT_WEBHOOK_URL`. Nothing here is logged or returned to an orchestration.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

from appsettings import SECRET_SETTINGS, required
from outsystems import placeholders
from outsystems.keys import derive_private_key
from outsystems.names import ENVIRONMENTS

SETUP_SCRIPT = Path(__file__).resolve().parents[1] / "infra" / "scripts" / "Install-OutSystems.ps1"


@lru_cache(maxsize=1)
def setup_script_b64() -> str:
    """The OutSystems setup script, base64-encoded as VM `userData` takes it."""
    return base64.b64encode(SETUP_SCRIPT.read_bytes()).decode("ascii")


def placeholder_values(
    body: Any,
    *,
    solution_id: str,
    environment: str,
    environ: Mapping[str, str] | None = None,
    resource_id: str | None = None,
) -> dict[str, str]:
    """The value of every placeholder used in `body`, for a resource of `environment`."""
    values: dict[str, str] = {}
    for name in placeholders.placeholders_in(body):
        if name == placeholders.PRIVATE_KEY:
            seed = required("PLATFORM_KEY_SEED", environ)
            values[name] = derive_private_key(seed, solution_id, environment)
        elif name == placeholders.SCALING_POLICY_MAC:
            values[name] = _policy_mac(body, resource_id, environ)
        elif name == placeholders.SETUP_SCRIPT_B64:
            values[name] = setup_script_b64()
        elif name in placeholders.PLACEHOLDERS:
            values[name] = required(name, environ)
        else:
            raise KeyError(f"unknown placeholder {{{{{name}}}}} in a resource body")
    return values


def render_body(
    body: Any,
    *,
    solution_id: str,
    environment: str,
    environ: Mapping[str, str] | None = None,
    resource_id: str | None = None,
) -> Any:
    """The body with every placeholder filled in, ready to send (never log or return it)."""
    values = placeholder_values(
        body,
        solution_id=solution_id,
        environment=environment,
        environ=environ,
        resource_id=resource_id,
    )
    return placeholders.render(body, values)


def _policy_mac(body: Any, resource_id: str | None, environ: Mapping[str, str] | None) -> str:
    """The MAC of the tags `body` carries (itself excluded), bound to the resource's id."""
    from outsystems.policy import POLICY_MAC_TAG, policy_mac, scaling_policy_key

    if resource_id is None:
        raise KeyError("the scaling policy MAC needs the resource id of the body")
    tags = {
        str(k): str(v)
        for k, v in ((body or {}).get("tags") or {}).items()
        if str(k).lower() != POLICY_MAC_TAG.lower()
    }
    key = scaling_policy_key(required("PLATFORM_KEY_SEED", environ))
    return policy_mac(key, resource_id, tags)


def redact(
    text: str, *, solution_id: str | None = None, environ: Mapping[str, str] | None = None
) -> str:
    """`text` (e.g. an ARM error message echoing a script's output) with our secrets masked.

    ARM never echoes the secrets we send, but an extension's error message carries whatever
    the script printed: this keeps such text out of orchestration history and events.
    """
    import os

    env = environ if environ is not None else os.environ
    secrets = [env.get(name, "").strip() for name in SECRET_SETTINGS]
    seed = env.get("PLATFORM_KEY_SEED", "").strip()
    if seed and solution_id:
        secrets.extend(derive_private_key(seed, solution_id, e) for e in ENVIRONMENTS)
    for secret in sorted((s for s in secrets if len(s) >= 4), key=len, reverse=True):
        for form in {secret, base64.b64encode(secret.encode()).decode("ascii")}:
            text = text.replace(form, "***")
    return text

"""Secrets are never part of the spec: password-like fields are refused, never echoed.

The app's settings (Key Vault references in Azure) hold the passwords and the key seed; a body
carrying one is refused at the field's path, naming the setting, and the value is dropped
before anything else reads the body.
"""

from __future__ import annotations

import re
from typing import Final

from outsystems.errors import FieldError
from outsystems.spec.fields import Path
from outsystems.spec.reporting import target

_SECRET_SETTINGS: Final = "VM_ADMIN_PASSWORD, SQL_ADMIN_PASSWORD or PLATFORM_KEY_SEED"


def _secret_setting(key: str, path: Path) -> str | None:
    """The app setting that holds what `key` looks like, or None if it does not look secret."""
    normalized = re.sub(r"[^a-z0-9]", "", key.lower())
    context = "".join(str(part) for part in path).lower() + normalized
    if "privatekey" in normalized:
        return "PLATFORM_KEY_SEED"
    if "password" in normalized or "passwd" in normalized or normalized.endswith("pwd"):
        return "SQL_ADMIN_PASSWORD" if "sql" in context else "VM_ADMIN_PASSWORD"
    # A `...SecretId` is a reference (a Key Vault URL), not a secret.
    if normalized.endswith("secret") or normalized.endswith("secretvalue"):
        return _SECRET_SETTINGS
    return None


# A spec is 6 levels deep; anything much deeper is hostile or broken, and recursing into it
# would end in RecursionError (a 500) instead of a 400.
MAX_DEPTH: Final = 32


def strip_secrets(value: object, path: Path = ()) -> tuple[object, list[FieldError]]:
    """`value` without password-like keys, and an error for each (never echoing the value)."""
    if len(path) > MAX_DEPTH and isinstance(value, dict | list):
        return None, [FieldError(target(path), f"nested deeper than {MAX_DEPTH} levels")]
    if isinstance(value, dict):
        kept: dict[str, object] = {}
        errors: list[FieldError] = []
        for key, item in value.items():
            setting = _secret_setting(key, path) if isinstance(key, str) else None
            if setting is not None:
                errors.append(
                    FieldError(
                        target((*path, key)),
                        f"secrets are never part of the spec: the app setting {setting} "
                        "holds it; remove this field",
                    )
                )
                continue
            kept[key], nested = strip_secrets(item, (*path, key))
            errors.extend(nested)
        return kept, errors
    if isinstance(value, list):
        items: list[object] = []
        errors = []
        for index, item in enumerate(value):
            cleaned, nested = strip_secrets(item, (*path, index))
            items.append(cleaned)
            errors.extend(nested)
        return items, errors
    return value, []

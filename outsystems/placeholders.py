"""Placeholders for secrets, live references and large assets inside ARM bodies.

The resource graph holds `{{NAME}}` tokens where a secret, a value only known once another
resource exists, or the setup script goes, so the graph (and with it orchestration input and
history) never holds a secret. The `arm/` adapter fills the tokens with `render()` at the moment
it sends a body.

A token may carry an argument, `{{NAME:argument}}` (e.g. the vault secret whose value goes there,
or the resource and property a reference reads), and a filter, `{{NAME|base64}}`, for values
embedded in command lines: base64 text needs no quoting in cmd.exe or PowerShell.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Final, TypeVar

ALERT_WEBHOOK_URL: Final = "ALERT_WEBHOOK_URL"
SETUP_SCRIPT_B64: Final = "SETUP_SCRIPT_B64"
#: The value of a Key Vault secret resource of the graph (generated when the secret is created).
SECRET_VALUE: Final = "SECRET_VALUE"
#: The nonce a password's value is derived from, kept in its content type (see `arm.secrets`).
SECRET_NONCE: Final = "SECRET_NONCE"
#: `{{KEY_VAULT_SECRET:<secret name>}}`: the value of a secret of the platform's vault.
KEY_VAULT_SECRET: Final = "KEY_VAULT_SECRET"
#: `{{REFERENCE:<resource id>#<dotted path>}}`: a property ARM computes (e.g. a principal id).
REFERENCE: Final = "REFERENCE"
#: The Entra tenant of the platform's subscription.
TENANT_ID: Final = "TENANT_ID"
#: The MAC that makes a scale set's scaling policy tags trusted (`outsystems.policy`).
SCALING_POLICY_MAC: Final = "SCALING_POLICY_MAC"

#: Every placeholder the topology writes.
PLACEHOLDERS: Final = frozenset(
    {
        ALERT_WEBHOOK_URL,
        SETUP_SCRIPT_B64,
        SECRET_VALUE,
        SECRET_NONCE,
        KEY_VAULT_SECRET,
        REFERENCE,
        TENANT_ID,
        SCALING_POLICY_MAC,
    }
)
#: Placeholders whose values are secrets (never logged, masked in error text).
SECRET_PLACEHOLDERS: Final = frozenset({ALERT_WEBHOOK_URL, SECRET_VALUE, KEY_VAULT_SECRET})

BASE64: Final = "base64"
_FILTERS: Final[Mapping[str, Callable[[str], str]]] = {
    BASE64: lambda value: base64.b64encode(value.encode("utf-8")).decode("ascii"),
}
_TOKEN_RE: Final = re.compile(r"\{\{([A-Z][A-Z0-9_]*)(?::([^{}|]+))?(?:\|([a-z0-9]+))?\}\}")

T = TypeVar("T")


@dataclass(frozen=True)
class Token:
    """One placeholder: its name and argument (the filter does not change the value needed)."""

    name: str
    argument: str | None = None

    @property
    def key(self) -> str:
        """The key of the token's value in the mapping `render()` takes."""
        return self.name if self.argument is None else f"{self.name}:{self.argument}"


class MissingPlaceholderError(KeyError):
    """A body holds a placeholder for which no value was given."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name

    def __str__(self) -> str:
        return f"no value for placeholder {{{{{self.name}}}}}"


def token(name: str, filter_name: str | None = None, *, argument: str | None = None) -> str:
    """The token text, e.g. `{{TENANT_ID}}`, `{{KEY_VAULT_SECRET:dev-sql-admin-password}}`."""
    if filter_name is not None and filter_name not in _FILTERS:
        raise ValueError(f"unknown placeholder filter {filter_name!r}")
    if argument is not None and (not argument or set(argument) & set("{}|")):
        raise ValueError(f"invalid placeholder argument {argument!r}")
    middle = f":{argument}" if argument is not None else ""
    suffix = f"|{filter_name}" if filter_name else ""
    return f"{{{{{name}{middle}{suffix}}}}}"


def reference(resource_id: str, path: str) -> str:
    """A token for a property of another resource, read when the body is sent."""
    return token(REFERENCE, argument=f"{resource_id}#{path}")


def split_reference(argument: str) -> tuple[str, str]:
    """The resource id and dotted path of a `REFERENCE` token's argument."""
    resource_id, _, path = argument.partition("#")
    if not resource_id or not path:
        raise ValueError(f"invalid reference {argument!r}: use <resource id>#<path>")
    return resource_id, path


def tokens_in(body: object) -> set[Token]:
    """Every placeholder in the string values of a JSON-like body."""
    found: set[Token] = set()
    for text in _strings(body):
        found.update(Token(m.group(1), m.group(2)) for m in _TOKEN_RE.finditer(text))
    return found


def placeholders_in(body: object) -> set[str]:
    """The names of every placeholder in the string values of a JSON-like body."""
    return {found.name for found in tokens_in(body)}


def render(body: T, values: Mapping[str, str]) -> T:
    """A copy of `body` with every placeholder replaced by its value (keyed by `Token.key`).

    Dict keys are left alone; only string values are rendered. Raises
    `MissingPlaceholderError` for a placeholder without a value and `ValueError` for an unknown
    filter; neither message contains any value.
    """

    def substitute(match: re.Match[str]) -> str:
        found = Token(match.group(1), match.group(2))
        filter_name = match.group(3)
        if found.key not in values:
            raise MissingPlaceholderError(found.key)
        if filter_name is None:
            return values[found.key]
        apply = _FILTERS.get(filter_name)
        if apply is None:
            raise ValueError(f"unknown filter {filter_name!r} in placeholder {found.name}")
        return apply(values[found.key])

    def walk(value: object) -> object:
        if isinstance(value, str):
            return _TOKEN_RE.sub(substitute, value)
        if isinstance(value, Mapping):
            return {key: walk(item) for key, item in value.items()}
        if isinstance(value, list):
            return [walk(item) for item in value]
        if isinstance(value, tuple):
            return tuple(walk(item) for item in value)
        return value

    # The walk preserves the JSON shape, so the result has the type of the input.
    return walk(body)  # type: ignore[return-value]


def _strings(value: object) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, Mapping):
        return [text for item in value.values() for text in _strings(item)]
    if isinstance(value, list | tuple):
        return [text for item in value for text in _strings(item)]
    return []

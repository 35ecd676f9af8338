"""Placeholders for secrets and large assets inside ARM bodies.

The resource graph holds `{{NAME}}` tokens where a secret or the setup script goes, so the graph
(and with it orchestration input and history) never holds a secret. The `arm/` adapter fills the
tokens with `render()` at the moment it sends a body.

A token may name a filter, `{{NAME|base64}}`, for values embedded in command lines: base64 text
needs no quoting in cmd.exe or PowerShell whatever characters the secret contains.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable, Mapping
from typing import Final, TypeVar

VM_ADMIN_PASSWORD: Final = "VM_ADMIN_PASSWORD"
SQL_ADMIN_PASSWORD: Final = "SQL_ADMIN_PASSWORD"
PRIVATE_KEY: Final = "PRIVATE_KEY"
ALERT_WEBHOOK_URL: Final = "ALERT_WEBHOOK_URL"
SETUP_SCRIPT_B64: Final = "SETUP_SCRIPT_B64"
#: The MAC of a scale set's owner and policy tags (brief C5), computed from the body sent.
SCALING_POLICY_MAC: Final = "SCALING_POLICY_MAC"

#: Every placeholder the topology writes.
PLACEHOLDERS: Final = frozenset(
    {
        VM_ADMIN_PASSWORD,
        SQL_ADMIN_PASSWORD,
        PRIVATE_KEY,
        ALERT_WEBHOOK_URL,
        SETUP_SCRIPT_B64,
        SCALING_POLICY_MAC,
    }
)

BASE64: Final = "base64"
_FILTERS: Final[Mapping[str, Callable[[str], str]]] = {
    BASE64: lambda value: base64.b64encode(value.encode("utf-8")).decode("ascii"),
}
_TOKEN_RE: Final = re.compile(r"\{\{([A-Z][A-Z0-9_]*)(?:\|([a-z0-9]+))?\}\}")

T = TypeVar("T")


class MissingPlaceholderError(KeyError):
    """A body holds a placeholder for which no value was given."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name

    def __str__(self) -> str:
        return f"no value for placeholder {{{{{self.name}}}}}"


def token(name: str, filter_name: str | None = None) -> str:
    """The token text for `name`, e.g. `{{VM_ADMIN_PASSWORD}}` or `{{PRIVATE_KEY|base64}}`."""
    if filter_name is not None and filter_name not in _FILTERS:
        raise ValueError(f"unknown placeholder filter {filter_name!r}")
    suffix = f"|{filter_name}" if filter_name else ""
    return f"{{{{{name}{suffix}}}}}"


def placeholders_in(body: object) -> set[str]:
    """The names of every placeholder in the string values of a JSON-like body."""
    found: set[str] = set()
    for text in _strings(body):
        found.update(match.group(1) for match in _TOKEN_RE.finditer(text))
    return found


def render(body: T, values: Mapping[str, str]) -> T:
    """A copy of `body` with every placeholder replaced by its value.

    Dict keys are left alone; only string values are rendered. Raises
    `MissingPlaceholderError` for a placeholder without a value and `ValueError` for an unknown
    filter; neither message contains any value.
    """

    def substitute(match: re.Match[str]) -> str:
        name, filter_name = match.group(1), match.group(2)
        if name not in values:
            raise MissingPlaceholderError(name)
        if filter_name is None:
            return values[name]
        apply = _FILTERS.get(filter_name)
        if apply is None:
            raise ValueError(f"unknown filter {filter_name!r} in placeholder {name}")
        return apply(values[name])

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

"""Access keys with the scopes Azure Functions gives them (enforced with ``--require-keys``).

As "Work with access keys in Azure Functions" describes them
(https://learn.microsoft.com/azure/azure-functions/function-keys-how-to) and the Functions host
checks them (Azure/azure-functions-host, ``SecretManager.GetAuthorizationLevelAsync`` and
``AuthUtility.PrincipalHasAuthLevelClaim``):

- the master key (``_master``) has the admin level: it opens everything, including the admin
  API (``/admin/...``), admin-level functions and the extensions' webhooks;
- a host key opens every function-level function;
- a function key opens its own function only;
- a system key opens its extension's webhooks only: ``durabletask_extension`` for
  ``/runtime/webhooks/durabletask/...``, the key the durable management URLs carry.

A request carries its key in the ``x-functions-key`` header or, when there is no such header, in
the ``code`` query parameter.

Configuration: the master key is ``LOCALDEV_FUNCTION_KEY`` (generated when absent); the other
keys come from ``LOCALDEV_KEYS``, a JSON object in the shape of the keys Azure lists
(``az functionapp keys list`` gives ``functionKeys`` and ``systemKeys``; ``az functionapp
function keys list`` a function's keys), each a map of key name to value::

    {"functionKeys": {"default": "<host key>"},
     "systemKeys": {"durabletask_extension": "<system key>"},
     "functions": {"receive_alert": {"default": "<key of receive_alert>"}}}

The ``durabletask_extension`` system key is generated when not given, as Azure creates it.
"""

from __future__ import annotations

import hmac
import json
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

from aiohttp import web

MASTER_KEY_NAME = "_master"
DURABLE_SYSTEM_KEY = "durabletask_extension"
KEYS_SETTING = "LOCALDEV_KEYS"
KEY_HEADER = "x-functions-key"
_FIELDS = ("functionKeys", "systemKeys", "functions")


class KeysError(ValueError):
    """``LOCALDEV_KEYS`` cannot be used."""


class AuthLevel(IntEnum):
    """The Functions host's authorization levels (the values of its own enum)."""

    ANONYMOUS = 0
    FUNCTION = 2
    SYSTEM = 3
    ADMIN = 4


def supplied_key(request: web.Request) -> str:
    """The key a request carries: the header wins over ``code``, as in the Functions host."""
    if KEY_HEADER in request.headers:
        return request.headers[KEY_HEADER]
    return request.query.get("code", "")


def _matching(keys: Mapping[str, str], supplied: bytes) -> str | None:
    for name, value in keys.items():
        if hmac.compare_digest(value.encode(), supplied):
            return name
    return None


@dataclass(frozen=True)
class AccessKeys:
    """Every key of the host, by scope; ``allows`` decides a request as Azure does."""

    master: str = field(repr=False)
    host: Mapping[str, str] = field(default_factory=dict, repr=False)
    system: Mapping[str, str] = field(default_factory=dict, repr=False)
    functions: Mapping[str, Mapping[str, str]] = field(default_factory=dict, repr=False)
    """Keys of each function, by the function's lower-cased name."""

    @property
    def durable_system_key(self) -> str:
        return self.system[DURABLE_SYSTEM_KEY]

    def grant(self, supplied: str, function: str | None = None) -> tuple[str | None, AuthLevel]:
        """The name and level of the key ``supplied`` for a call to ``function``."""
        if not supplied:
            return None, AuthLevel.ANONYMOUS
        raw = supplied.encode()
        if self.master and hmac.compare_digest(self.master.encode(), raw):
            return MASTER_KEY_NAME, AuthLevel.ADMIN
        if (name := _matching(self.system, raw)) is not None:
            return name, AuthLevel.SYSTEM
        if (name := _matching(self.host, raw)) is not None:
            return name, AuthLevel.FUNCTION
        own = self.functions.get(function.lower(), {}) if function else {}
        if (name := _matching(own, raw)) is not None:
            return name, AuthLevel.FUNCTION
        return None, AuthLevel.ANONYMOUS

    def allows(
        self,
        request: web.Request,
        required: AuthLevel,
        *,
        function: str | None = None,
        key_name: str | None = None,
    ) -> bool:
        """Whether the request's key opens what wants ``required`` (and ``key_name``)."""
        if required == AuthLevel.ANONYMOUS:
            return True
        name, level = self.grant(supplied_key(request), function)
        if level == AuthLevel.ADMIN:
            return True
        return level == required and (key_name is None or (name or "").lower() == key_name)


def _key_map(value: Any, where: str) -> dict[str, str]:
    if not isinstance(value, dict):
        raise KeysError(f"{where} must be an object of key name to key value")
    for name, key in value.items():
        if not name or not isinstance(key, str) or not key:
            raise KeysError(f"{where}: key '{name}' must have a non-empty string value")
    return dict(value)


def load_access_keys(master: str, text: str | None) -> AccessKeys:
    """The master key plus the keys of ``LOCALDEV_KEYS`` (``text``, JSON; may be empty)."""
    document: Any = {}
    if text and text.strip():
        try:
            document = json.loads(text)
        except json.JSONDecodeError as error:
            raise KeysError(f"{KEYS_SETTING} is not valid JSON: {error}") from error
    if not isinstance(document, dict):
        raise KeysError(f"{KEYS_SETTING} must be a JSON object")
    unknown = sorted(set(document) - set(_FIELDS))
    if unknown:
        raise KeysError(
            f"{KEYS_SETTING}: unknown field(s) {', '.join(unknown)}; expected "
            f"{', '.join(_FIELDS)} (the master key is LOCALDEV_FUNCTION_KEY)"
        )
    host = _key_map(document.get("functionKeys", {}), f"{KEYS_SETTING} functionKeys")
    system = _key_map(document.get("systemKeys", {}), f"{KEYS_SETTING} systemKeys")
    system.setdefault(DURABLE_SYSTEM_KEY, secrets.token_urlsafe(32))
    functions_doc = document.get("functions", {})
    if not isinstance(functions_doc, dict):
        raise KeysError(f"{KEYS_SETTING} functions must be an object of function name to keys")
    functions = {
        str(name).lower(): _key_map(keys, f"{KEYS_SETTING} functions.{name}")
        for name, keys in functions_doc.items()
    }
    return AccessKeys(master=master, host=host, system=system, functions=functions)

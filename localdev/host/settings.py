"""Host configuration: ``local.settings.json``, ``host.json`` and ``%SETTING%`` references.

Core Tools copies the ``Values`` of ``local.settings.json`` into the worker's environment, but a
variable already set in the environment wins (it logs "Skipping ... already defined"). Binding
properties may name app settings as ``%NAME%``; the Functions host fails at start-up, naming the
setting, when one does not resolve. This module does the same, and nothing at import time.
"""

from __future__ import annotations

import json
import logging
import os
import re
import secrets
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from localdev.host.durable.versioning import FAILURE_STRATEGIES, MATCH_STRATEGIES, VersionPolicy
from localdev.host.keys import KEYS_SETTING, AccessKeys, KeysError, load_access_keys

logger = logging.getLogger(__name__)

DEFAULT_HUB_NAME = "TestHubName"
FUNCTION_KEY_SETTING = "LOCALDEV_FUNCTION_KEY"
_SETTING_REF = re.compile(r"%([^%\s]+)%")


class SettingsError(Exception):
    """The settings or host.json cannot be used (missing setting, malformed file)."""


@dataclass(frozen=True)
class HostConfig:
    """Everything the host needs to know before it imports the app."""

    app_dir: Path
    settings_path: Path | None
    values: dict[str, str]
    host_json: dict[str, Any]
    hub_name: str
    hub_path: str
    """SQLite file of the task hub, or ``":memory:"``."""
    max_concurrent_activities: int
    max_concurrent_orchestrators: int
    require_keys: bool = False
    function_key: str = field(default="", repr=False)
    """The master key (``LOCALDEV_FUNCTION_KEY``)."""
    function_key_generated: bool = False
    keys: AccessKeys = field(default_factory=lambda: AccessKeys(master=""), repr=False)
    """Every key by scope (see ``localdev.host.keys``)."""
    versioning: VersionPolicy = field(default_factory=VersionPolicy)


def _read_json_object(path: Path) -> dict[str, Any]:
    try:
        document = json.loads(path.read_text(encoding="utf-8-sig"))
    except json.JSONDecodeError as error:
        raise SettingsError(f"{path} is not valid JSON: {error}") from error
    if not isinstance(document, dict):
        raise SettingsError(f"{path} must contain a JSON object")
    return document


def load_local_settings(path: Path) -> dict[str, str]:
    """Read the ``Values`` of a ``local.settings.json`` file (all values as strings)."""
    document = _read_json_object(path)
    if document.get("IsEncrypted"):
        raise SettingsError(f"{path} is encrypted; the local host reads only plain settings")
    values = document.get("Values") or {}
    if not isinstance(values, dict):
        raise SettingsError(f"{path}: 'Values' must be an object")
    return {str(k): "" if v is None else str(v) for k, v in values.items()}


def apply_settings(values: Mapping[str, str], environ: MutableMapping[str, str]) -> list[str]:
    """Copy settings into the environment unless already defined there; return the skipped."""
    skipped: list[str] = []
    for name, value in values.items():
        if name in environ:
            skipped.append(name)
            continue
        environ[name] = value
    return skipped


def load_host_json(app_dir: Path) -> dict[str, Any]:
    path = app_dir / "host.json"
    if not path.is_file():
        return {"version": "2.0"}
    return _read_json_object(path)


def resolve_references(value: str, lookup: Mapping[str, str]) -> str:
    """Replace every ``%NAME%`` by the setting's value; fail naming the first missing one."""

    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in lookup:
            raise SettingsError(
                f"The binding value '{value}' refers to the app setting '{name}', "
                "which is not defined (local.settings.json 'Values' or the environment)"
            )
        return lookup[name]

    return _SETTING_REF.sub(replace, value)


def resolve_binding(binding: Mapping[str, Any], lookup: Mapping[str, str]) -> dict[str, Any]:
    """Resolve ``%NAME%`` in every string property of a binding, as the Functions host does."""
    resolved: dict[str, Any] = {}
    for key, item in binding.items():
        if isinstance(item, str) and key not in ("name", "type", "direction"):
            resolved[key] = resolve_references(item, lookup)
        else:
            resolved[key] = item
    return resolved


def _positive_int(raw: Any, default: int, what: str) -> int:
    if raw is None:
        return default
    try:
        number = int(raw)
    except (TypeError, ValueError) as error:
        raise SettingsError(f"host.json {what} must be an integer, got {raw!r}") from error
    if number < 1:
        raise SettingsError(f"host.json {what} must be at least 1, got {number}")
    return number


def _choice(raw: Any, choices: tuple[str, ...], default: str, what: str) -> str:
    """A host.json enum value, case-insensitive as .NET binds them, spelled canonically."""
    if raw is None:
        return default
    for choice in choices:
        if str(raw).lower() == choice.lower():
            return choice
    raise SettingsError(f"host.json {what} must be one of {', '.join(choices)}, got {raw!r}")


def version_policy(durable: dict[str, Any]) -> VersionPolicy:
    """``defaultVersion``, ``versionMatchStrategy`` and ``versionFailureStrategy``."""
    default = durable.get("defaultVersion")
    return VersionPolicy(
        default_version=None if default in (None, "") else str(default),
        match_strategy=_choice(
            durable.get("versionMatchStrategy"),
            MATCH_STRATEGIES,
            "CurrentOrOlder",
            "extensions.durableTask.versionMatchStrategy",
        ),
        failure_strategy=_choice(
            durable.get("versionFailureStrategy"),
            FAILURE_STRATEGIES,
            "Reject",
            "extensions.durableTask.versionFailureStrategy",
        ),
    )


def build_config(
    app_dir: Path,
    settings_path: Path | None = None,
    *,
    environ: MutableMapping[str, str] | None = None,
    extra_values: Mapping[str, str] | None = None,
    hub_path: str | None = None,
    require_keys: bool = False,
) -> HostConfig:
    """Load the settings into ``environ`` (default ``os.environ``) and read ``host.json``.

    ``settings_path`` defaults to ``<app_dir>/local.settings.json`` when that file exists.
    ``hub_path`` defaults to ``<folder of the settings file>/.localdev/<hub name>.sqlite``.
    """
    env = os.environ if environ is None else environ
    app_dir = app_dir.resolve()
    if settings_path is None and (app_dir / "local.settings.json").is_file():
        settings_path = app_dir / "local.settings.json"
    values: dict[str, str] = {}
    if settings_path is not None:
        settings_path = settings_path.resolve()
        if not settings_path.is_file():
            raise SettingsError(f"settings file {settings_path} does not exist")
        values = load_local_settings(settings_path)
    if extra_values:
        values.update(extra_values)
    skipped = apply_settings(values, env)
    for name in skipped:
        logger.info(
            "Skipping '%s' from local settings as it's already defined in the environment", name
        )

    host_json = load_host_json(app_dir)
    extensions = host_json.get("extensions") or {}
    durable = extensions.get("durableTask") or {} if isinstance(extensions, dict) else {}
    hub_name = str(durable.get("hubName") or DEFAULT_HUB_NAME)
    hub_name = resolve_references(hub_name, env)
    # Azure's defaults: ten times the processor count for both throttles.
    default_limit = 10 * (os.cpu_count() or 1)
    max_activities = _positive_int(
        durable.get("maxConcurrentActivityFunctions"),
        default_limit,
        "extensions.durableTask.maxConcurrentActivityFunctions",
    )
    max_orchestrators = _positive_int(
        durable.get("maxConcurrentOrchestratorFunctions"),
        default_limit,
        "extensions.durableTask.maxConcurrentOrchestratorFunctions",
    )
    if hub_path is None:
        base = settings_path.parent if settings_path is not None else app_dir
        hub_path = str(base / ".localdev" / f"{hub_name}.sqlite")

    key = env.get(FUNCTION_KEY_SETTING, "")
    generated = False
    if not key:
        key = secrets.token_urlsafe(32)
        generated = True
    try:
        keys = load_access_keys(key, env.get(KEYS_SETTING))
    except KeysError as error:
        raise SettingsError(str(error)) from error
    return HostConfig(
        app_dir=app_dir,
        settings_path=settings_path,
        values=values,
        host_json=host_json,
        hub_name=hub_name,
        hub_path=hub_path,
        max_concurrent_activities=max_activities,
        max_concurrent_orchestrators=max_orchestrators,
        require_keys=require_keys,
        function_key=key,
        function_key_generated=generated,
        keys=keys,
        versioning=version_policy(durable),
    )

"""Import a v2-model function app and index it as the Python worker does.

The worker imports the script (``function_app.py`` unless ``PYTHON_SCRIPT_FILE_NAME`` says
otherwise), requires exactly one top-level ``FunctionApp``/``DFApp`` instance, calls its
``get_functions()`` once and reports each function's ``get_raw_bindings()`` to the host. The host
then resolves ``%SETTING%`` references in binding properties. This module does the same and keeps,
for each function, what the local host needs to invoke it.
"""

from __future__ import annotations

import importlib.util
import inspect
import json
import logging
import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from localdev.host.settings import SettingsError, resolve_binding

logger = logging.getLogger(__name__)

DEFAULT_SCRIPT_FILE = "function_app.py"
SCRIPT_FILE_SETTING = "PYTHON_SCRIPT_FILE_NAME"


class AppLoadError(Exception):
    """The function app cannot be imported or indexed."""


class UnsupportedBindingError(Exception):
    """A function has a binding the local host cannot provide, so it cannot run here."""


@dataclass
class FunctionSpec:
    """One indexed function: its metadata as the worker reports it and how to call it."""

    name: str
    trigger_type: str
    trigger: dict[str, Any]
    """The trigger binding with ``%SETTING%`` references resolved."""
    bindings: list[dict[str, Any]]
    raw_bindings: list[str]
    """Exactly what ``Function.get_raw_bindings()`` returned (unresolved)."""
    func: Callable[..., Any]
    is_async: bool
    wants_context: bool
    unsupported_bindings: tuple[str, ...] = ()
    """The bindings the local host cannot provide, described ("queue output binding 'msg'")."""

    @property
    def trigger_name(self) -> str:
        return str(self.trigger["name"])

    def check_bindings(self) -> None:
        """Raise ``UnsupportedBindingError`` when a binding of this function cannot be served.

        The host does not stand in for other services (queues, blobs, Twilio...): a function
        that writes to one fails saying so, rather than with the TypeError of a missing argument
        or, worse, appearing to succeed without its output.
        """
        if self.unsupported_bindings:
            raise UnsupportedBindingError(
                f"Function '{self.name}': its {', '.join(self.unsupported_bindings)} "
                "is not supported by the local host (it provides the trigger, the durable "
                "client and the HTTP output only)"
            )


@dataclass
class IndexedApp:
    """The app's functions, by kind; names are case-insensitive as in the Functions host."""

    module: ModuleType
    functions: list[FunctionSpec]
    _by_name: dict[str, FunctionSpec] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._by_name = {f.name.lower(): f for f in self.functions}

    def get(self, name: str) -> FunctionSpec | None:
        return self._by_name.get(name.lower())

    def of_trigger(self, trigger_type: str) -> list[FunctionSpec]:
        return [f for f in self.functions if f.trigger_type == trigger_type]

    def entity(self, name: str) -> FunctionSpec | None:
        """Entities are addressed by their lower-cased name (``@name@key``)."""
        for spec in self.of_trigger("entityTrigger"):
            entity_name = spec.trigger.get("entityName") or spec.name
            if str(entity_name).lower() == name.lower():
                return spec
        return None

    def orchestrator(self, name: str) -> FunctionSpec | None:
        spec = self.get(name)
        return spec if spec is not None and spec.trigger_type == "orchestrationTrigger" else None

    def activity(self, name: str) -> FunctionSpec | None:
        spec = self.get(name)
        return spec if spec is not None and spec.trigger_type == "activityTrigger" else None


def import_app_module(app_dir: Path, script_file: str | None = None) -> ModuleType:
    """Import the app's script as the module ``function_app`` with the app folder on sys.path."""
    script = script_file or os.environ.get(SCRIPT_FILE_SETTING) or DEFAULT_SCRIPT_FILE
    path = (app_dir / script).resolve()
    if not path.is_file():
        raise AppLoadError(f"{path} not found: the app folder must contain {script}")
    folder = str(path.parent)
    if folder not in sys.path:
        sys.path.insert(0, folder)
    module_name = path.stem
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise AppLoadError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    # Registered under its plain name, as the worker's import does, so that custom objects
    # serialised with "__module__": "function_app" can be found again in sys.modules.
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(module_name, None)
        raise
    return module


def find_app_instance(module: ModuleType) -> Any:
    """The single top-level ``FunctionRegister`` (FunctionApp, DFApp...) of the module."""
    from azure.functions import FunctionRegister

    found: list[tuple[str, Any]] = [
        (name, value) for name, value in vars(module).items() if isinstance(value, FunctionRegister)
    ]
    if not found:
        raise AppLoadError(f"Could not find top level function app instances in {module.__file__}")
    if len(found) > 1:
        names = ", ".join(name for name, _ in found)
        raise AppLoadError(f"More than one top level function app instance is defined: {names}")
    return found[0][1]


def _unsupported(bindings: list[dict[str, Any]], trigger: dict[str, Any]) -> tuple[str, ...]:
    """The bindings other than the trigger, the durable client and an HTTP output."""
    found: list[str] = []
    for binding in bindings:
        kind = str(binding.get("type"))
        direction = str(binding.get("direction") or "").lower()
        if binding is trigger or kind == "durableClient":
            continue
        if direction == "out" and kind.lower() == "http":
            continue
        role = {"out": "output", "inout": "input/output"}.get(direction, "input")
        found.append(f"{kind} {role} binding '{binding.get('name')}'")
    return tuple(found)


def _describe(function: Any, lookup: Mapping[str, str]) -> FunctionSpec:
    name = str(function.get_function_name())
    raw_bindings = [str(raw) for raw in function.get_raw_bindings()]
    parsed = [json.loads(raw) for raw in raw_bindings]
    trigger_raw = function.get_trigger()
    trigger_dict = trigger_raw.get_dict_repr() if trigger_raw is not None else None
    try:
        bindings = [resolve_binding(b, lookup) for b in parsed]
    except SettingsError as error:
        raise SettingsError(f"Function '{name}': {error}") from error
    if trigger_dict is None:
        raise AppLoadError(f"Function '{name}' has no trigger")
    trigger = next(
        (
            b
            for b in bindings
            if b.get("type") == trigger_dict.get("type")
            and b.get("name") == trigger_dict.get("name")
        ),
        None,
    )
    if trigger is None:
        raise AppLoadError(f"Function '{name}': its trigger is missing from its bindings")
    func = function.get_user_function()
    try:
        signature = inspect.signature(func)
        parameters = list(signature.parameters)
    except (TypeError, ValueError):
        parameters = []
    binding_names = {str(b.get("name")) for b in bindings}
    return FunctionSpec(
        name=name,
        trigger_type=str(trigger["type"]),
        trigger=trigger,
        bindings=bindings,
        raw_bindings=raw_bindings,
        func=func,
        is_async=inspect.iscoroutinefunction(func),
        wants_context="context" in parameters and "context" not in binding_names,
        unsupported_bindings=_unsupported(bindings, trigger),
    )


def index_app(
    app_dir: Path, lookup: Mapping[str, str] | None = None, script_file: str | None = None
) -> IndexedApp:
    """Import and index the app; ``%SETTING%`` references resolve against ``lookup``."""
    settings = os.environ if lookup is None else lookup
    module = import_app_module(app_dir, script_file)
    app = find_app_instance(module)
    functions = app.get_functions()
    specs = [_describe(function, settings) for function in functions]
    logger.info("Indexed function app and found %d functions", len(specs))
    return IndexedApp(module=module, functions=specs)

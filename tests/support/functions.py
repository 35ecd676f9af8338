"""The app's functions as the Python worker indexes them, through the library's public API.

`function_app.app.get_functions()` is what the worker calls at start-up; each `Function` hands
back the code it runs (`get_user_function()`), and the Durable SDK's wrappers expose the code
they wrap as `orchestrator_function`, `entity_function` and `client_function` (the names the
local host uses too: design `durable-host-protocol.md`, "Indexing"). Tests take functions from
here rather than from the SDK's private attributes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import cache
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


@cache
def _functions() -> Mapping[str, Any]:
    """This repository's app, imported afresh and indexed once per process.

    Not `import function_app`: the local host registers each app it loads as `function_app`
    (as the worker does), so after the integration tests have run the Durable samples in this
    process that name is a sample's app, already indexed (a second `get_functions` refuses
    its names). The host's own loader gives this repository's module, as the worker loads it.
    """
    from localdev.host.app_loader import find_app_instance, import_app_module

    app = find_app_instance(import_app_module(ROOT, "function_app.py"))
    return {f.get_function_name(): f for f in app.get_functions()}


def indexed(name: str) -> Any:
    """The worker's `Function` of `name` (its bindings: `get_bindings()`)."""
    return _functions()[name]


def user_function(name: str) -> Any:
    """The callable the worker invokes for the function `name`."""
    return _functions()[name].get_user_function()


def orchestrator(name: str) -> Callable[[Any], Any]:
    """The generator function of an orchestration."""
    function: Callable[[Any], Any] = user_function(name).orchestrator_function
    return function


def entity(name: str) -> Callable[[Any], Any]:
    """The function of an entity, as written."""
    function: Callable[[Any], Any] = user_function(name).entity_function
    return function


def activity(name: str) -> Callable[[Any], Any]:
    """An activity as the worker calls it (with every decorator of ours applied)."""
    function: Callable[[Any], Any] = user_function(name)
    return function


def client_function(name: str) -> Callable[..., Any]:
    """A trigger taking a Durable client, as written (the caller passes the client)."""
    function: Callable[..., Any] = user_function(name).client_function
    return function

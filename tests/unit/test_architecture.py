"""The import rules of `docs/architecture.md`, read from the code with `ast`.

Layers, inside out: the domain `outsystems/`; the ARM adapter `arm/`; the use cases
`services/`; the entrypoints `triggers/` (HTTP and timers), `orchestrators/` and `activities/`,
composed by `function_app.py`; `localdev/` and `osctl/` outside the app. An import pointing
outwards, or across entrypoints, fails here with the file and the module it names.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

APP = ("outsystems", "arm", "services", "triggers", "orchestrators", "activities")

#: What each package must never import (top-level names, or dotted prefixes).
FORBIDDEN: dict[str, tuple[str, ...]] = {
    # The domain is pure: no Azure, no settings, nothing of the layers around it.
    "outsystems": (
        "azure",
        "appsettings",
        "arm",
        "services",
        "triggers",
        "orchestrators",
        "activities",
        "function_app",
        "localdev",
        "osctl",
    ),
    "arm": ("services", "triggers", "orchestrators", "activities", "function_app", "localdev"),
    # The use cases know nothing of HTTP, timers or the worker.
    "services": (
        "azure.functions",
        "azure.durable_functions",
        "triggers",
        "activities",
        "function_app",
        "localdev",
    ),
    # Triggers parse input and map results: they reach the app through the services only.
    "triggers": ("arm", "orchestrators", "activities", "function_app", "localdev"),
    "orchestrators": ("triggers", "services", "activities", "function_app", "localdev"),
    "activities": ("triggers", "services", "orchestrators", "function_app", "localdev"),
    "osctl": ("arm", "services", "triggers", "orchestrators", "activities", "function_app"),
}

#: The only module of `services/` that reaches `arm/`: the production adapters of the ports.
SERVICES_ARM_ADAPTER = "services/azure.py"
SERVICES_ARM_ALLOWED: tuple[str, ...] = ()


def _python_files(package: str) -> Iterator[Path]:
    yield from sorted((ROOT / package).rglob("*.py"))


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


class _Imports(ast.NodeVisitor):
    """Every absolute import of a module: where it is (module level, in a function, or only
    for type checking) and what it names."""

    def __init__(self) -> None:
        self.found: list[tuple[str, str, int]] = []  # (module, where, line)
        self._where = ["module"]

    def _visit_scope(self, node: ast.AST, where: str) -> None:
        self._where.append(where)
        self.generic_visit(node)
        self._where.pop()

    def visit_FunctionDef(self, node: ast.FunctionDef) -> None:
        self._visit_scope(node, "function")

    def visit_AsyncFunctionDef(self, node: ast.AsyncFunctionDef) -> None:
        self._visit_scope(node, "function")

    def visit_If(self, node: ast.If) -> None:
        if _is_type_checking(node):
            self._visit_scope(node, "typing")
        else:
            self.generic_visit(node)

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self.found.append((alias.name, self._where[-1], node.lineno))

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.module and node.level == 0:
            self.found.append((node.module, self._where[-1], node.lineno))
            # `from triggers import alerts` names the module `triggers.alerts`.
            for alias in node.names:
                self.found.append((f"{node.module}.{alias.name}", self._where[-1], node.lineno))


def imports(path: Path) -> list[tuple[str, str, int]]:
    visitor = _Imports()
    visitor.visit(ast.parse(path.read_text(encoding="utf-8"), filename=str(path)))
    return visitor.found


def _matches(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def test_each_layer_imports_only_inwards() -> None:
    offenders = []
    for package, forbidden in FORBIDDEN.items():
        for path in _python_files(package):
            name = str(path.relative_to(ROOT))
            for module, _, line in imports(path):
                if any(_matches(module, prefix) for prefix in forbidden):
                    offenders.append(f"{name}:{line} imports {module}")
    assert sorted(set(offenders)) == []


def test_services_reach_arm_through_their_adapters_only() -> None:
    offenders = []
    for path in _python_files("services"):
        name = str(path.relative_to(ROOT))
        if name == SERVICES_ARM_ADAPTER:
            continue
        for module, where, line in imports(path):
            if where == "typing" or not _matches(module, "arm"):
                continue
            if not any(_matches(module, allowed) for allowed in SERVICES_ARM_ALLOWED):
                offenders.append(f"{name}:{line} imports {module}")
    assert offenders == []


def test_services_use_only_the_public_names_of_orchestrators() -> None:
    """Instance ids, entity ids, event names and inputs: never an orchestrator's privates."""
    offenders = []
    for path in _python_files("services"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                if not _matches(node.module, "orchestrators"):
                    continue
                private = [alias.name for alias in node.names if alias.name.startswith("_")]
                if private:
                    offenders.append(f"{path.relative_to(ROOT)}:{node.lineno} {private}")
    assert offenders == []


def test_no_trigger_imports_another_trigger() -> None:
    """Shared HTTP helpers live in `triggers/http.py`; anything else a trigger needs from
    another one belongs in `services/`."""
    offenders = []
    for path in _python_files("triggers"):
        allowed = ("triggers.http", "triggers." + path.stem)
        for module, _, line in imports(path):
            if module == "triggers" or any(_matches(module, ok) for ok in allowed):
                continue
            if _matches(module, "triggers"):
                offenders.append(f"{path.relative_to(ROOT)}:{line} imports {module}")
    assert offenders == []


_COLD_START = """
import json, sys
import function_app
print(json.dumps(sorted(sys.modules)))
"""


def test_function_local_imports_are_only_of_what_cold_start_does_not_load() -> None:
    """An import inside a function defers a module the worker would otherwise load at cold
    start (`docs/architecture.md`, "Cold start"); deferring one `function_app` loads anyway
    saves nothing and only hides the dependency."""
    result = subprocess.run(
        [sys.executable, "-c", _COLD_START], cwd=ROOT, capture_output=True, text=True, check=True
    )
    loaded = set(json.loads(result.stdout.strip().splitlines()[-1]))
    offenders = []
    for package in ("services", "triggers"):
        for path in _python_files(package):
            for module, where, line in imports(path):
                if where == "function" and module in loaded:
                    offenders.append(f"{path.relative_to(ROOT)}:{line} imports {module}")
    assert offenders == []


def test_the_rules_see_imports_in_every_form() -> None:
    """The parser the rules rely on finds module-level, function-local, type-only and
    `from package import module` imports."""
    source = (
        "import arm.live\n"
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from outsystems.spec import PlatformSpec\n"
        "def f():\n    from triggers import platforms\n"
    )
    visitor = _Imports()
    visitor.visit(ast.parse(source))
    found = {(module, where) for module, where, _ in visitor.found}
    assert ("arm.live", "module") in found
    assert ("outsystems.spec", "typing") in found
    assert ("triggers.platforms", "function") in found

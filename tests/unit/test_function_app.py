"""The composition root indexes cleanly and cheaply; the domain stays free of Azure imports."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

_INDEX_SCRIPT = """
import json, sys
import function_app
functions = function_app.app.get_functions()
heavy = ("azure.mgmt", "azure.identity", "azure.storage", "pydantic", "outsystems.spec")
loaded = sorted(m for m in sys.modules if m.startswith(heavy))
print(json.dumps({"functions": [f.get_function_name() for f in functions], "heavy": loaded}))
"""


def test_function_app_indexes_without_importing_heavy_modules() -> None:
    """The worker imports the app at every cold start: SDKs and pydantic models load later."""
    result = subprocess.run(
        [sys.executable, "-c", _INDEX_SCRIPT],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["heavy"] == []
    names = report["functions"]
    assert len(names) == len(set(names)), "function names must be unique across the app"


def _imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    modules: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            modules.add(node.module)
    return modules


def test_domain_imports_nothing_from_azure() -> None:
    offenders = {
        str(path.relative_to(ROOT)): sorted(
            m for m in _imported_modules(path) if m == "azure" or m.startswith("azure.")
        )
        for path in (ROOT / "outsystems").rglob("*.py")
    }
    assert {k: v for k, v in offenders.items() if v} == {}


def test_app_packages_never_import_local_dev_tooling() -> None:
    offenders = []
    for package in ("triggers", "services", "orchestrators", "activities", "arm", "outsystems"):
        for path in (ROOT / package).rglob("*.py"):
            if any(m.split(".")[0] == "localdev" for m in _imported_modules(path)):
                offenders.append(str(path.relative_to(ROOT)))
    assert offenders == []

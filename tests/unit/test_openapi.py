"""The OpenAPI document: valid, and describing exactly the routes the app registers."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from openapi_spec_validator import validate

from triggers.openapi import document

ROOT = Path(__file__).resolve().parents[2]

_ROUTES_SCRIPT = """
import json
import function_app
routes = []
for function in function_app.app.get_functions():
    for raw in function.get_raw_bindings():
        binding = json.loads(raw)
        if binding.get("type") == "httpTrigger":
            routes.append([binding["route"], [m.lower() for m in binding["methods"]],
                           binding["authLevel"]])
print(json.dumps(routes))
"""


def _registered_routes() -> list[tuple[str, str, str]]:
    result = subprocess.run(
        [sys.executable, "-c", _ROUTES_SCRIPT], cwd=ROOT, capture_output=True, text=True, check=True
    )
    return [
        (route, method, auth)
        for route, methods, auth in json.loads(result.stdout.splitlines()[-1])
        for method in methods
    ]


def test_document_is_valid_openapi_3_1() -> None:
    doc = document()
    validate(doc)
    assert doc["openapi"] == "3.1.0"
    text = json.dumps(doc)
    assert "#/$defs/" not in text, "pydantic's refs must point into components"


def test_every_registered_route_is_documented_with_its_methods() -> None:
    paths = document()["paths"]
    for route, method, auth in _registered_routes():
        path = "/" + re.sub(r"\{(\w+)[^}]*\}", r"{\1}", route)
        assert path in paths, f"{path} is not documented"
        assert method in paths[path], f"{method.upper()} {path} is not documented"
        secured = paths[path][method]["security"] != []
        assert secured == (auth != "ANONYMOUS"), f"{method.upper()} {path}: auth mismatch"


def test_spec_body_schema_is_the_validating_model() -> None:
    schemas = document()["components"]["schemas"]
    spec = schemas["PlatformSpec"]
    assert spec["additionalProperties"] is False
    assert spec["required"] == ["location"]
    assert "FrontendsSpec" in schemas
    assert "solutionId" not in spec["properties"]

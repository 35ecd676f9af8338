"""Schemathesis against `GET /api/openapi.json` on the local host: no 5xx, answers match the schema.

The schema is loaded from the running app (the document users get), and schemathesis generates
valid and invalid requests for every operation (bounded examples per operation, so the suite
runs in a couple of minutes). Each answer must not be a server error, must use a documented
status code and content type, and its body must match the documented schema. The app runs as
in the other e2e tests: local host, ARM simulator at latency 0, Azurite; a generated spec that
is valid really deploys.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from localdev.armsim.server import SimulatorServer
from tests.support.azurite import Azurite
from tests.support.stack import Stack, running_stack
from triggers.openapi import document

#: Generated requests per operation and mode: enough to reach the edges of every body schema,
#: few enough for the suite to stay in a couple of minutes on a shared two-core machine.
EXAMPLES = 40
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
# The operations are listed from the app's own document at collection time (cheap, no app
# running); each test then takes its operation from the document the running app serves.
POSITIVE = schemathesis.GenerationMode.POSITIVE
NEGATIVE = schemathesis.GenerationMode.NEGATIVE


def _cases() -> list[Any]:
    """(method, path, mode) for every operation; invalid requests only where there is an
    input to get wrong (a parameter or a body)."""
    cases = []
    for path, item in document()["paths"].items():
        for method, operation in item.items():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            has_input = bool(operation.get("parameters") or operation.get("requestBody"))
            for mode in (POSITIVE, NEGATIVE) if has_input else (POSITIVE,):
                cases.append(pytest.param(method.upper(), path, mode, id=f"{method} {path} {mode}"))
    return cases


@pytest.fixture(scope="module")
def app(_simulator: SimulatorServer, azurite: Azurite) -> Iterator[Stack]:
    """One app for the module: generated PUTs that are valid deploy, and keep deploying."""
    _simulator.reset()
    _simulator.configure({"latencyScale": 0.0, "faultRate": 0.0, "seed": 0, "throttling": True})
    with running_stack(_simulator, azurite) as running:
        yield running


@pytest.fixture(scope="module")
def api_schema(app: Stack) -> schemathesis.BaseSchema:
    """The OpenAPI document as the running app serves it."""
    return schemathesis.openapi.from_url(f"{app.base}/api/openapi.json")


@pytest.mark.parametrize(("method", "path", "mode"), _cases())
def test_operation_answers_generated_requests_as_documented(
    app: Stack,
    api_schema: schemathesis.BaseSchema,
    method: str,
    path: str,
    mode: schemathesis.GenerationMode,
) -> None:
    operation = api_schema[path][method]

    @given(data=st.data())
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        phases=[Phase.explicit, Phase.generate, Phase.shrink],
        # The app is shared by every example; its answers are slower than a unit's.
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        database=None,
    )
    def run(data: st.DataObject) -> None:
        case = data.draw(operation.as_strategy(generation_mode=mode))
        case.call_and_validate(base_url=f"{app.base}/api", session=app.session, checks=CHECKS)

    run()

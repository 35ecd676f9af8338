"""ARM on loopback for activity tests: the simulator served in-process, the app pointed at it.

Activities reach ARM through the app's own connection (`arm.client`, built from `ARM_ENDPOINT`),
so a test sets the settings, forgets the cached connection, and sends its own requests (to set
up or read back state) through the very same pipeline. Real HTTP on both sides; nothing of the
app is replaced.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from azure.core.rest import HttpRequest

from arm.client import reset_connection, sender
from localdev.armsim.server import SimulatorServer

SUBSCRIPTION = "00000000-0000-0000-0000-000000000001"


@contextmanager
def app_on(
    simulator: SimulatorServer, monkeypatch: pytest.MonkeyPatch, **settings: str
) -> Iterator[SimulatorServer]:
    """The simulator, reset, with the app's settings pointing at it for the block."""
    simulator.reset()
    monkeypatch.setenv("AZURE_SUBSCRIPTION_ID", SUBSCRIPTION)
    monkeypatch.setenv("ARM_ENDPOINT", simulator.url)
    for name, value in settings.items():
        monkeypatch.setenv(name, value)
    reset_connection()
    try:
        yield simulator
    finally:
        reset_connection()


def send(method: str, resource_id: str, api_version: str, body: Any = None) -> Any:
    """One ARM request through the app's pipeline; the response."""
    request = HttpRequest(method, f"{resource_id}?api-version={api_version}", json=body)
    return sender(SUBSCRIPTION).send_request(request)


def put(resource_id: str, api_version: str, body: dict[str, Any]) -> None:
    """Create or replace a resource (set-up: it must be accepted)."""
    response = send("PUT", resource_id, api_version, body)
    assert response.status_code in (200, 201, 202), response.text()


def get(resource_id: str, api_version: str) -> dict[str, Any] | None:
    """A resource's body, or None when ARM says 404."""
    response = send("GET", resource_id, api_version)
    if response.status_code == 404:
        return None
    assert response.status_code == 200, response.text()
    body: dict[str, Any] = response.json()
    return body

"""The alert webhook as the host calls it, against a fake ARM and the fake Durable client.

A fake at the boundary: `Arm` answers the scale-set reads behind the real `ManagedScaleSets`
(a `ScaleSetInfo`, an exception, or 404), the `arm` fixture puts it behind the webhook, and
`post` calls `receive_alert` as the host does, with `durable_fakes`' client.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from typing import Any

import azure.functions as func
import pytest

from arm.scale_sets import ManagedScaleSets
from outsystems.messages import ScaleSetInfo
from services import azure as adapters
from tests.support.functions import client_function
from tests.unit.durable_fakes import FakeDurableClient
from triggers import alerts as webhook

SUBSCRIPTION = "11111111-2222-3333-4444-555555555555"
VMSS = (
    f"/subscriptions/{SUBSCRIPTION}/resourcegroups/acme-rg/providers/"
    "microsoft.compute/virtualmachinescalesets/acme-prod-vmss"
)
ENDPOINT = "http://127.0.0.1:9"


def vmss(name: str) -> str:
    return VMSS.replace("acme-prod-vmss", name)


class Arm:
    """What ARM says about each scale set: a `ScaleSetInfo`, an exception, or (absent) 404."""

    def __init__(self, delay: float = 0.0) -> None:
        self.answers: dict[str, ScaleSetInfo | Exception] = {}
        self.reads: list[str] = []
        self.delay = delay
        #: When set, every read waits at it: a proof that reads run side by side.
        self.barrier: threading.Barrier | None = None

    def managed(self, *ids: str) -> None:
        for resource_id in ids:
            self.answers[resource_id.lower()] = ScaleSetInfo(resource_id, True, True, "acme", 2)

    def __call__(self, resource_id: str) -> ScaleSetInfo:
        self.reads.append(resource_id)
        time.sleep(self.delay)
        if self.barrier is not None:
            self.barrier.wait()
        answer = self.answers.get(resource_id.lower())
        if isinstance(answer, Exception):
            raise answer
        return answer or ScaleSetInfo(resource_id, exists=False)


@pytest.fixture
def arm(monkeypatch: pytest.MonkeyPatch) -> Arm:
    for name, value in {
        "AZURE_SUBSCRIPTION_ID": SUBSCRIPTION,
        "MANAGED_SUBSCRIPTION_IDS": "",
        "ARM_ENDPOINT": ENDPOINT,
        "PLATFORM_KEY_SEED": "unit-test-seed",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("ALERT_MAX_AGE_MINUTES", raising=False)
    fake = Arm()
    directory = ManagedScaleSets(
        fake,
        ttl=adapters.MANAGED_TTL_SECONDS,
        negative_ttl=adapters.UNMANAGED_TTL_SECONDS,
        deadline=adapters.LOOKUP_DEADLINE_SECONDS,
    )
    monkeypatch.setattr(webhook, "managed_scale_sets", lambda endpoint: directory)
    return fake


def post(body: Any, client: FakeDurableClient) -> func.HttpResponse:
    request = func.HttpRequest(
        "POST",
        "http://localhost/api/alerts",
        body=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )
    # The function as written, under the Durable client decorator (the host passes the client).
    handler = client_function("receive_alert")
    response: func.HttpResponse = asyncio.run(handler(request, client))
    return response


def answer(response: func.HttpResponse) -> Any:
    return json.loads(response.get_body())

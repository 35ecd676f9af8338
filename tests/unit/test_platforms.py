"""The look-up of a platform's last operation shared by the platform and scaling routes."""

from __future__ import annotations

import json
from typing import Any

from azure.durable_functions.models.DurableOrchestrationStatus import DurableOrchestrationStatus

from triggers.platforms import standing_platform

SPEC = {"solutionId": "acme", "subscriptionId": "s"}


class FakeClient:
    def __init__(self, **status: Any) -> None:
        self.status = DurableOrchestrationStatus(**status) if status else None
        self.asked: list[str] = []

    async def get_status(self, instance_id: str, show_input: bool = False) -> Any:
        self.asked.append(instance_id)
        return self.status or DurableOrchestrationStatus()


def teardown(environments: list[str], status: str = "Succeeded", *, encoded: bool = False) -> Any:
    request = {"operation": "teardown", "spec": SPEC, "environments": environments}
    output = {"status": status}
    return FakeClient(
        instanceId="platform-acme",
        createdTime="2026-11-20T09:00:00Z",
        runtimeStatus="Completed",
        input=json.dumps(request) if encoded else request,
        output=json.dumps(output) if encoded else output,
    )


async def test_a_deployed_platform_stands_with_its_spec() -> None:
    client = FakeClient(
        instanceId="platform-acme",
        createdTime="2026-11-20T09:00:00Z",
        runtimeStatus="Running",
        input=json.dumps({"operation": "deploy", "spec": SPEC}),
    )
    standing = await standing_platform(client, "acme")
    assert standing is not None
    instance_id, operation, spec = standing
    assert (instance_id, operation["runtimeStatus"], spec) == ("platform-acme", "Running", SPEC)


async def test_unknown_and_unnameable_platforms_are_none() -> None:
    assert await standing_platform(FakeClient(), "nope") is None
    client = FakeClient()
    assert await standing_platform(client, "a/../b") is None
    assert client.asked == [], "an id that cannot name a platform never reaches the client"


async def test_a_platform_is_gone_once_its_environments_are_torn_down() -> None:
    everything = ["dev", "test", "prod", "life"]
    for encoded in (False, True):
        assert await standing_platform(teardown(everything, encoded=encoded), "acme") is None
        assert (
            await standing_platform(teardown(["prod"], encoded=encoded), "acme", ("prod",)) is None
        )
    # Part of it torn down, or a teardown that failed: still there.
    assert await standing_platform(teardown(["prod"]), "acme") is not None
    assert await standing_platform(teardown(["dev"]), "acme", ("prod",)) is not None
    assert await standing_platform(teardown(everything, "Failed"), "acme") is not None

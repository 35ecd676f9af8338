"""What the webhook and the scaler learn about a scale set from ARM, and how fast.

`ManagedScaleSets` is driven with plain reader functions (a fake at the boundary); the quick
connection's socket timeout is checked against a real HTTP server that answers too slowly.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from azure.core.exceptions import AzureError

from arm.scale_sets import (
    SCALE_SET_API_VERSION,
    ManagedScaleSets,
    ScaleSetInfo,
    quick_connection,
    read_scale_set,
    scale_set_info,
    subscription_of,
)
from outsystems.policy import ScalingPolicy, policy_to_tags
from outsystems.topology import SCALE_SET, api_version

VMSS = (
    "/subscriptions/11111111-2222-3333-4444-555555555555/resourceGroups/acme-rg/providers/"
    "Microsoft.Compute/virtualMachineScaleSets/acme-prod-vmss"
)
POLICY_TAGS = policy_to_tags(ScalingPolicy(min_capacity=2, max_capacity=8))


def body(**tags: str) -> dict[str, Any]:
    return {"id": VMSS, "sku": {"name": "Standard_F8s_v2", "capacity": 3}, "tags": tags}


def test_the_api_version_is_the_topologys() -> None:
    assert api_version(SCALE_SET) == SCALE_SET_API_VERSION


def test_a_farm_scale_set_is_managed() -> None:
    info = scale_set_info(
        VMSS.lower(),
        body(
            managedBy="outsystems-azure-ops",
            osSolutionId="acme",
            osEnvironment="prod",
            **POLICY_TAGS,
        ),
    )
    assert info == ScaleSetInfo(VMSS, True, True, "acme", 3, POLICY_TAGS)
    assert info.not_managed_reason is None
    assert ScaleSetInfo.from_json(info.to_json()) == info


@pytest.mark.parametrize(
    "tags",
    [
        {},
        {"managedBy": "someone-else", "osSolutionId": "acme", "osEnvironment": "prod"},
        {"managedBy": "outsystems-azure-ops", "osEnvironment": "prod"},
        {"managedBy": "outsystems-azure-ops", "osSolutionId": "acme", "osEnvironment": "dev"},
    ],
)
def test_scale_sets_the_app_did_not_make_for_a_farm_are_not_managed(tags: dict[str, str]) -> None:
    info = scale_set_info(VMSS, body(**tags))
    assert not info.managed
    assert info.solution_id is None
    assert info.not_managed_reason == f"scale set {VMSS} is not managed by this app (its tags)"


def test_tag_names_compare_case_insensitively_and_only_policy_tags_are_kept() -> None:
    info = scale_set_info(
        VMSS,
        body(MANAGEDBY="Outsystems-Azure-Ops", ossolutionid="Acme", OSENVIRONMENT="Prod", x="1"),
    )
    assert (info.managed, info.solution_id, dict(info.policy_tags)) == (True, "acme", {})


def test_missing_and_odd_bodies() -> None:
    assert scale_set_info(VMSS, None) == ScaleSetInfo(VMSS, False)
    assert scale_set_info(VMSS, None).not_managed_reason == f"scale set {VMSS} does not exist"
    odd = scale_set_info(VMSS, {"sku": {"capacity": True}, "tags": None})
    assert (odd.exists, odd.capacity, odd.managed, odd.id) == (True, None, False, VMSS)


def test_subscription_of() -> None:
    assert subscription_of(VMSS) == "11111111-2222-3333-4444-555555555555"
    with pytest.raises(ValueError, match="not an ARM resource id"):
        subscription_of("acme-prod-vmss")


class Reader:
    """A reader that counts its calls and can be slow or fail."""

    def __init__(self, *, delay: float = 0.0, managed: bool = True, fail: bool = False) -> None:
        self.delay = delay
        self.managed = managed
        self.fail = fail
        self.calls = 0

    def __call__(self, resource_id: str) -> ScaleSetInfo:
        self.calls += 1
        time.sleep(self.delay)
        if self.fail:
            raise AzureError("connection refused")
        return ScaleSetInfo(resource_id, True, self.managed, "acme" if self.managed else None, 2)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def directory(
    reader: Reader, clock: Clock | None = None, deadline: float = 1.0
) -> ManagedScaleSets:
    return ManagedScaleSets(
        reader, ttl=60, negative_ttl=10, deadline=deadline, clock=clock or time.monotonic
    )


async def test_concurrent_questions_about_one_scale_set_share_one_read() -> None:
    reader = Reader(delay=0.05)
    cache = directory(reader)
    answers = await asyncio.gather(
        *(cache.lookup(VMSS if i % 2 else VMSS.upper()) for i in range(50))
    )
    assert reader.calls == 1
    assert all(a is not None and a.managed for a in answers)


async def test_answers_expire_managed_later_than_the_rest() -> None:
    clock = Clock()
    managed, unmanaged = Reader(), Reader(managed=False)
    cache, other = directory(managed, clock), directory(unmanaged, clock)
    for _ in range(3):
        await cache.lookup(VMSS)
        await other.lookup(VMSS)
    assert (managed.calls, unmanaged.calls) == (1, 1)
    clock.now += 11
    await cache.lookup(VMSS)
    await other.lookup(VMSS)
    assert (managed.calls, unmanaged.calls) == (1, 2)
    clock.now += 50
    await cache.lookup(VMSS)
    assert managed.calls == 2


async def test_a_slow_arm_does_not_hold_the_caller_past_the_deadline() -> None:
    reader = Reader(delay=0.5)
    cache = directory(reader, deadline=0.1)
    started = time.monotonic()
    assert await cache.lookup(VMSS) is None
    assert time.monotonic() - started < 0.3
    # The read goes on for the callers after this one, and fills the cache when it ends.
    await asyncio.sleep(0.6)
    answer = await cache.lookup(VMSS)
    assert answer is not None
    assert answer.managed
    assert reader.calls == 1


async def test_a_failed_read_is_unknown_and_not_cached() -> None:
    reader = Reader(fail=True)
    cache = directory(reader)
    assert await cache.lookup(VMSS) is None
    assert await cache.lookup(VMSS) is None
    assert reader.calls == 2


class _SlowHandler(BaseHTTPRequestHandler):
    delay = 2.0

    def do_GET(self) -> None:
        time.sleep(self.delay)
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def slow_arm() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _SlowHandler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_the_quick_connection_gives_up_on_a_slow_arm_without_retrying(slow_arm: str) -> None:
    from azure.mgmt.resource.resources import ResourceManagementClient

    connection = quick_connection(slow_arm)
    assert quick_connection(slow_arm + "/") is connection
    client = connection.client(ResourceManagementClient, subscription_of(VMSS))
    started = time.monotonic()
    with pytest.raises(AzureError):
        read_scale_set(client, VMSS, connection_timeout=0.3, read_timeout=0.3)
    # One attempt of 0.3 s; a retry would double it, the server's 2 s answer would triple it.
    assert time.monotonic() - started < 1.0

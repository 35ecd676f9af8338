"""What the webhook and the scaler learn about a scale set from ARM, and how fast.

`ManagedScaleSets` is driven with plain reader functions (a fake at the boundary); the quick
connection's socket timeout is checked against a real HTTP server that answers too slowly.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from azure.core.exceptions import AzureError

from arm.scale_sets import (
    SCALE_SET_API_VERSION,
    ManagedScaleSets,
    ScaleSetReadError,
    quick_connection,
    read_scale_set,
    scale_set_info,
)
from outsystems.messages import ScaleSetInfo
from outsystems.policy import (
    POLICY_MAC_TAG,
    ScalingPolicy,
    policy_mac,
    policy_to_tags,
    scaling_policy_key,
)
from outsystems.resource_types import SCALE_SET, api_version, subscription_of
from outsystems.scale_set_lookup import Unchecked, foreign_reason

VMSS = (
    "/subscriptions/11111111-2222-3333-4444-555555555555/resourceGroups/acme-rg/providers/"
    "Microsoft.Compute/virtualMachineScaleSets/acme-prod-vmss"
)
POLICY_TAGS = policy_to_tags(ScalingPolicy(min_capacity=2, max_capacity=8))
KEY = scaling_policy_key("unit-test-seed")
OWNER = {"managedBy": "outsystems-azure-ops", "osSolutionId": "acme", "osEnvironment": "prod"}


def body(**tags: str) -> dict[str, Any]:
    return {"id": VMSS, "sku": {"name": "Standard_F8s_v2", "capacity": 3}, "tags": tags}


def signed(**tags: str) -> dict[str, str]:
    """Tags as the app writes them: with the MAC over the owner and policy tags."""
    return {**tags, POLICY_MAC_TAG: policy_mac(KEY, VMSS, tags)}


def test_the_api_version_is_the_topologys() -> None:
    assert api_version(SCALE_SET) == SCALE_SET_API_VERSION


def test_a_farm_scale_set_is_managed() -> None:
    info = scale_set_info(VMSS.lower(), body(**signed(**OWNER, **POLICY_TAGS)), KEY)
    assert info == ScaleSetInfo(VMSS, True, True, "acme", 3, POLICY_TAGS)
    assert info.not_managed_reason is None
    assert ScaleSetInfo.from_json(info.to_json()) == info


@pytest.mark.parametrize(
    "tags",
    [
        # The probe: the right tags, a forged policy, no MAC.
        {**OWNER, **policy_to_tags(ScalingPolicy(min_capacity=2, max_capacity=5000))},
        {**OWNER, **POLICY_TAGS, POLICY_MAC_TAG: "0" * 64},
        {**OWNER, **POLICY_TAGS, POLICY_MAC_TAG: policy_mac(scaling_policy_key("x"), VMSS, {})},
    ],
)
def test_owner_tags_without_the_apps_mac_do_not_make_a_scale_set_managed(
    tags: dict[str, str],
) -> None:
    info = scale_set_info(VMSS, body(**tags), KEY)
    assert (info.exists, info.managed, info.solution_id) == (True, False, None)
    # A policy is read only from tags the app signed.
    assert dict(info.policy_tags) == {}
    assert info.not_managed_reason == (
        f"scale set {VMSS} is not managed by this app (its tags carry no valid "
        f"{POLICY_MAC_TAG} of this app)"
    )


def test_a_mac_for_another_scale_set_is_refused() -> None:
    other = VMSS.replace("acme-prod-vmss", "copy-vmss")
    tags = {**OWNER, **POLICY_TAGS}
    copied = {**tags, POLICY_MAC_TAG: policy_mac(KEY, VMSS, tags)}
    assert not scale_set_info(other, {**body(**copied), "id": other}, KEY).managed


def test_scale_sets_outside_the_managed_subscriptions_are_foreign() -> None:
    mine = ("11111111-2222-3333-4444-555555555555", "AAAAAAAA-0000-0000-0000-000000000000")
    assert foreign_reason(VMSS, mine) is None
    assert foreign_reason(VMSS.upper(), mine) is None
    other = VMSS.replace("11111111-2222-3333-4444-555555555555", "99999999-0000-0000-0000-0")
    assert foreign_reason(other, mine) == (
        f"scale set {other} is in subscription 99999999-0000-0000-0000-0, which this app "
        "does not manage (AZURE_SUBSCRIPTION_ID, MANAGED_SUBSCRIPTION_IDS)"
    )
    assert foreign_reason(other.replace("99999999", "aaaaaaaa"), mine) is not None


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
    info = scale_set_info(VMSS, body(**signed(**tags)), KEY)
    assert not info.managed
    assert info.solution_id is None
    assert info.not_managed_reason == f"scale set {VMSS} is not managed by this app (its tags)"


def test_tag_names_compare_case_insensitively_and_only_policy_tags_are_kept() -> None:
    # ARM: "Tag names are case-insensitive for operations. [...] Tag values are case-sensitive."
    # (https://learn.microsoft.com/azure/azure-resource-manager/management/tag-resources)
    tags = signed(MANAGEDBY="outsystems-azure-ops", ossolutionid="acme", OSENVIRONMENT="prod")
    info = scale_set_info(VMSS, body(**tags, x="1"), KEY)
    assert (info.managed, info.solution_id, dict(info.policy_tags)) == (True, "acme", {})
    # Another value is not the app's mark, even signed: teardown and the list agree.
    other = signed(managedBy="Outsystems-Azure-Ops", osSolutionId="acme", osEnvironment="prod")
    assert not scale_set_info(VMSS, body(**other), KEY).managed


def test_missing_and_odd_bodies() -> None:
    assert scale_set_info(VMSS, None, KEY) == ScaleSetInfo(VMSS, False)
    assert scale_set_info(VMSS, None, KEY).not_managed_reason == f"scale set {VMSS} does not exist"
    odd = scale_set_info(VMSS, {"sku": {"capacity": True}, "tags": None}, KEY)
    assert (odd.exists, odd.capacity, odd.managed, odd.id) == (True, None, False, VMSS)


def test_subscription_of() -> None:
    assert subscription_of(VMSS) == "11111111-2222-3333-4444-555555555555"
    with pytest.raises(ValueError, match="not an ARM resource id"):
        subscription_of("acme-prod-vmss")


class Reader:
    """A reader that counts its calls and can be slow, held (until `gate` is set) or fail."""

    def __init__(
        self,
        *,
        delay: float = 0.0,
        managed: bool = True,
        fail: bool = False,
        gate: threading.Event | None = None,
    ) -> None:
        self.delay = delay
        self.managed = managed
        self.fail = fail
        self.gate = gate
        self.calls = 0

    def __call__(self, resource_id: str) -> ScaleSetInfo:
        self.calls += 1
        time.sleep(self.delay)
        if self.gate is not None:
            self.gate.wait()
        if self.fail:
            raise AzureError("connection refused")
        return ScaleSetInfo(resource_id, True, self.managed, "acme" if self.managed else None, 2)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


#: How long a test lets a call that must not wait for a held read run before failing (it
#: returns after its 0.1 s deadline; this only turns a hang into a failure).
HELD_READ_GUARD_SECONDS = 10.0


async def until(condition: Callable[[], bool], seconds: float = 10.0) -> None:
    """Wait (yielding to the loop and the read's thread) until `condition` holds."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "the condition never held"
        await asyncio.sleep(0.01)


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
    assert all(isinstance(a, ScaleSetInfo) and a.managed for a in answers)


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
    # ARM answers only when the test says so: the caller can only have been answered by
    # giving up at the deadline, whatever the machine's speed (no timing margin).
    arm_answers = threading.Event()
    reader = Reader(gate=arm_answers)
    cache = directory(reader, deadline=0.1)
    try:
        answer = await asyncio.wait_for(cache.lookup(VMSS), HELD_READ_GUARD_SECONDS)
    finally:
        arm_answers.set()
    assert isinstance(answer, Unchecked)
    assert "no answer from ARM within 0.10s" in answer.reason
    # The read goes on for the callers after this one, and fills the cache when it ends.
    await until(lambda: cache.cached(VMSS) is not None)
    answer = await cache.lookup(VMSS)
    assert isinstance(answer, ScaleSetInfo)
    assert answer.managed
    assert reader.calls == 1


async def test_a_failed_read_is_unknown_and_not_cached() -> None:
    reader = Reader(fail=True)
    cache = directory(reader)
    assert isinstance(await cache.lookup(VMSS), Unchecked)
    assert isinstance(await cache.lookup(VMSS), Unchecked)
    assert reader.calls == 2


class _SlowHandler(BaseHTTPRequestHandler):
    """Counts the GETs it gets and answers each only once `answer` is set."""

    answer = threading.Event()
    gets = 0

    def do_GET(self) -> None:
        type(self).gets += 1
        self.answer.wait(30)
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def slow_arm() -> Iterator[tuple[str, type[_SlowHandler]]]:
    class Handler(_SlowHandler):
        answer = threading.Event()
        gets = 0

    handler = Handler
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", handler
    finally:
        handler.answer.set()
        server.shutdown()
        server.server_close()


def test_the_quick_connection_gives_up_on_a_slow_arm_without_retrying(
    slow_arm: tuple[str, type[_SlowHandler]],
) -> None:
    from azure.mgmt.resource.resources import ResourceManagementClient

    url, handler = slow_arm
    connection = quick_connection(url)
    assert quick_connection(url + "/") is connection
    client = connection.client(ResourceManagementClient, subscription_of(VMSS))
    # The server answers nothing until the test is over: the read can only end by giving up.
    with pytest.raises(AzureError):
        read_scale_set(client, VMSS, KEY, connection_timeout=0.3, read_timeout=0.3)
    # One attempt: a retry would have sent the GET again.
    assert handler.gets == 1


class _ArmHandler(BaseHTTPRequestHandler):
    """Answers every GET with the status and body of the class attributes."""

    status = 200
    content_type = "application/json"
    payload = b"{}"

    def do_GET(self) -> None:
        self.send_response(self.status)
        self.send_header("Content-Type", self.content_type)
        self.send_header("Content-Length", str(len(self.payload)))
        self.end_headers()
        self.wfile.write(self.payload)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def arm() -> Iterator[tuple[str, type[_ArmHandler]]]:
    handler = type("Handler", (_ArmHandler,), {})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", handler
    finally:
        server.shutdown()
        server.server_close()


def _error(code: str) -> bytes:
    return json.dumps({"error": {"code": code, "message": "refused"}}).encode()


@pytest.mark.parametrize(
    ("status", "content_type", "payload"),
    [
        (429, "application/json", _error("TooManyRequests")),
        # Role assignments take minutes to propagate: a new app is refused for a while.
        (401, "application/json", _error("InvalidAuthenticationToken")),
        (403, "application/json", _error("AuthorizationFailed")),
        (500, "application/json", _error("InternalServerError")),
        (503, "text/plain", b"Service Unavailable"),
        # A proxy's page instead of ARM's JSON (issue 14.2: this was a JSONDecodeError, a 500).
        (200, "text/html", b"<html><body>Please sign in</body></html>"),
        (200, "application/json", b"[1, 2, 3]"),
    ],
)
def test_answers_that_say_nothing_about_the_scale_set_are_read_errors(
    arm: tuple[str, type[_ArmHandler]], status: int, content_type: str, payload: bytes
) -> None:
    """Not a verdict: the webhook must ask Azure Monitor to retry, not decide."""
    from azure.mgmt.resource.resources import ResourceManagementClient

    url, handler = arm
    handler.status, handler.content_type, handler.payload = status, content_type, payload
    client = quick_connection(url).client(ResourceManagementClient, subscription_of(VMSS))
    with pytest.raises(ScaleSetReadError):
        read_scale_set(client, VMSS, KEY, read_timeout=2)


@pytest.mark.parametrize(
    ("status", "payload", "reason"),
    [
        (404, _error("ResourceNotFound"), "does not exist"),
        (404, _error("ResourceGroupNotFound"), "does not exist"),
        (400, _error("InvalidResourceName"), "ARM refused to read it (400 InvalidResourceName)"),
    ],
)
def test_a_400_or_404_means_not_managed(
    arm: tuple[str, type[_ArmHandler]], status: int, payload: bytes, reason: str
) -> None:
    from azure.mgmt.resource.resources import ResourceManagementClient

    url, handler = arm
    handler.status, handler.payload = status, payload
    client = quick_connection(url).client(ResourceManagementClient, subscription_of(VMSS))
    info = read_scale_set(client, VMSS, KEY, read_timeout=2)
    assert not info.managed
    assert info.not_managed_reason is not None
    assert reason in info.not_managed_reason

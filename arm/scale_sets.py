"""What the scaler needs to know about a scale set, read from ARM: ownership, capacity, policy.

A scale set is *managed* when its tags say this app made it for a farm's production front-ends
(`managedBy: outsystems-azure-ops`, `osSolutionId`, `osEnvironment: prod`) and carry the MAC
that only this app can compute over those tags, the scale set's id and its scaling policy
(`outsystems.policy.policy_mac`, keyed from `PLATFORM_KEY_SEED`). Anyone who may write the tags
could copy the owner tags and write any policy; nobody but the app can sign them. The policy
travels in its `osScalingPolicy*` tags (ARM is the source of truth: the app keeps no database),
and is read only from tags the app signed.

`ManagedScaleSets` answers the webhook's question "is this a scale set we manage?" within a
deadline: results are cached for a short time, concurrent questions about one id share one ARM
read, and the read uses a connection with no retries and short socket timeouts, so an alert
storm makes one request to ARM and a slow ARM never holds the webhook past its deadline. What
ARM did not say in time (or refused to say: throttling, role assignments still propagating, a
proxy's page) is `Unchecked`, never a verdict.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from outsystems.messages import ScaleSetInfo
from outsystems.policy import POLICY_MAC_TAG, has_valid_mac, is_policy_tag
from outsystems.resource_types import SCALE_SET, api_version
from outsystems.scale_set_lookup import Unchecked
from outsystems.tags import ENVIRONMENT_TAG, managed_solution, tag_value

if TYPE_CHECKING:
    from arm.connection import ArmConnection
    from arm.operations import Sender

log = logging.getLogger(__name__)

#: The Compute API version the topology uses for scale sets.
SCALE_SET_API_VERSION = api_version(SCALE_SET)
SCALE_SET_TYPE = SCALE_SET


def scale_set_info(resource_id: str, body: Mapping[str, Any] | None, key: bytes) -> ScaleSetInfo:
    """What a scale set's GET body says (`body` None: it does not exist).

    `key` is the scaling policy key (`outsystems.policy.scaling_policy_key`): the owner tags
    count, and the policy tags are kept, only when the tags carry the app's MAC.
    """
    if body is None:
        return ScaleSetInfo(id=resource_id, exists=False)
    raw_tags = body.get("tags")
    tags: dict[str, str] = (
        {str(k): str(v) for k, v in raw_tags.items()} if isinstance(raw_tags, dict) else {}
    )
    scale_set_id = str(body.get("id") or resource_id)
    solution = managed_solution(tags)
    owned = solution is not None and tag_value(tags, ENVIRONMENT_TAG) == "prod"
    signed = has_valid_mac(key, scale_set_id, tags)
    managed = owned and signed
    problem = None
    if owned and not signed:
        problem = (
            f"scale set {scale_set_id} is not managed by this app (its tags carry no valid "
            f"{POLICY_MAC_TAG} of this app)"
        )
    sku = body.get("sku")
    capacity = sku.get("capacity") if isinstance(sku, dict) else None
    return ScaleSetInfo(
        id=scale_set_id,
        exists=True,
        managed=managed,
        solution_id=solution.lower() if solution and managed else None,
        capacity=capacity if isinstance(capacity, int) and not isinstance(capacity, bool) else None,
        policy_tags={k: v for k, v in tags.items() if is_policy_tag(k)} if managed else {},
        problem=problem,
    )


def scaling_key(environ: Mapping[str, str] | None = None) -> bytes:
    """The key of scaling policy MACs, from the `PLATFORM_KEY_SEED` setting (never logged)."""
    from appsettings import required
    from outsystems.policy import scaling_policy_key

    return scaling_policy_key(required("PLATFORM_KEY_SEED", environ))


def read_scale_set(sender: Sender, resource_id: str, key: bytes, **options: Any) -> ScaleSetInfo:
    """GET one scale set; `options` go to the pipeline (e.g. `read_timeout`).

    404 (no such scale set or group) and 400 (ARM refuses the id) are verdicts: not managed.
    Anything else that is not a JSON object raises `ScaleSetReadError`: throttling (429), the
    app's role assignments still propagating (401/403), ARM failing (5xx), or a proxy's page
    where ARM's answer should be.
    """
    from azure.core.rest import HttpRequest

    from arm.operations import error_of

    request = HttpRequest("GET", f"{resource_id}?api-version={SCALE_SET_API_VERSION}")
    response = sender.send_request(request, **options)
    if response.status_code == 404:
        return scale_set_info(resource_id, None, key)
    if response.status_code == 400:
        error = error_of(response, resource_id)
        return ScaleSetInfo(
            id=resource_id,
            exists=False,
            problem=(
                f"scale set {resource_id} is not managed by this app: ARM refused to read it "
                f"(400 {error.code})"
            ),
        )
    if response.status_code >= 300:
        error = error_of(response, resource_id)
        raise ScaleSetReadError(
            f"reading {resource_id}: ARM answered {response.status_code} {error.code}: "
            f"{error.message}"
        )
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        kind = response.headers.get("Content-Type") or "no content type"
        raise ScaleSetReadError(
            f"reading {resource_id}: ARM answered {response.status_code} with a body that is "
            f"not a JSON object ({kind})"
        )
    return scale_set_info(resource_id, body, key)


def list_scale_sets(sender: Sender, subscription_id: str, key: bytes) -> Iterator[ScaleSetInfo]:
    """Every scale set of a subscription (following `nextLink`), managed or not."""
    from azure.core.rest import HttpRequest

    from arm.operations import error_of

    url: str | None = (
        f"/subscriptions/{subscription_id}/providers/{SCALE_SET_TYPE}"
        f"?api-version={SCALE_SET_API_VERSION}"
    )
    while url:
        response = sender.send_request(HttpRequest("GET", url))
        if response.status_code >= 400:
            error = error_of(response, subscription_id)
            raise ScaleSetReadError(
                f"listing scale sets of {subscription_id}: {error.code}: {error.message}"
            )
        page = response.json()
        for body in page.get("value") or ():
            if isinstance(body, dict) and body.get("id"):
                yield scale_set_info(str(body["id"]), body, key)
        url = page.get("nextLink") or None


class ScaleSetReadError(RuntimeError):
    """ARM did not tell us about a scale set (an answer that is not a verdict)."""


# --- The webhook's quick look-up -----------------------------------------------------------


_quick_lock = threading.Lock()
_quick: dict[str, ArmConnection] = {}


def quick_connection(endpoint: str) -> ArmConnection:
    """A connection for reads that must answer fast: no retries, short socket timeouts.

    The webhook gives up on ARM after its deadline anyway; retrying behind its back would only
    add load to an ARM that is already slow or throttling.
    """
    from arm.connection import ArmConnection

    key = endpoint.rstrip("/").lower()
    with _quick_lock:
        connection = _quick.get(key)
        if connection is None:
            connection = ArmConnection(endpoint, retry_total=0, polling_interval=1.0)
            _quick[key] = connection
        return connection


Reader = Callable[[str], ScaleSetInfo]


@dataclass
class _Entry:
    info: ScaleSetInfo
    expires: float


class ManagedScaleSets:
    """A short-lived cache of `ScaleSetInfo` by scale set id, read with a deadline.

    `lookup` returns `Unchecked` when ARM did not answer in time (or did not answer with a
    verdict): the caller cannot tell, and must treat that neither as "managed" nor as "not
    managed". Positive answers are kept `ttl` seconds, negative ones `negative_ttl` (a scale
    set being deployed becomes managed soon).
    """

    def __init__(
        self,
        reader: Reader,
        *,
        ttl: float,
        negative_ttl: float,
        deadline: float,
        clock: Callable[[], float] = time.monotonic,
        max_reads: int = 20,
    ) -> None:
        self._reader = reader
        self.ttl = ttl
        self.negative_ttl = negative_ttl
        self.deadline = deadline
        self._clock = clock
        self._entries: dict[str, _Entry] = {}
        self._inflight: dict[str, asyncio.Task[ScaleSetInfo]] = {}
        # Reads of different scale sets run side by side (an alert may name several): on
        # threads of their own, not the loop's default executor, which a small machine sizes
        # to a handful of threads.
        self._executor = ThreadPoolExecutor(max_workers=max_reads, thread_name_prefix="vmss-read")
        self.reads = 0

    def clear(self) -> None:
        self._entries.clear()

    def cached(self, resource_id: str) -> ScaleSetInfo | None:
        entry = self._entries.get(resource_id.lower())
        if entry is None or entry.expires <= self._clock():
            return None
        return entry.info

    async def lookup(self, resource_id: str) -> ScaleSetInfo | Unchecked:
        key = resource_id.lower()
        cached = self.cached(key)
        if cached is not None:
            return cached
        loop = asyncio.get_running_loop()
        task = self._inflight.get(key)
        if task is None or task.get_loop() is not loop:
            task = loop.create_task(self._read(key, resource_id))
            self._inflight[key] = task
            task.add_done_callback(lambda done: self._finished(key, done))
        try:
            # shield: one caller giving up must not cancel the read the others wait for.
            return await asyncio.wait_for(asyncio.shield(task), self.deadline)
        except TimeoutError:
            reason = f"no answer from ARM within {self.deadline:.2f}s about {resource_id}"
            log.warning("%s", reason)
            return Unchecked(reason)
        except ScaleSetReadError as error:
            log.warning("could not read %s: %s", resource_id, error)
            return Unchecked(str(error))

    async def _read(self, key: str, resource_id: str) -> ScaleSetInfo:
        from azure.core.exceptions import AzureError

        self.reads += 1
        try:
            loop = asyncio.get_running_loop()
            info = await loop.run_in_executor(self._executor, self._reader, resource_id)
        except (AzureError, OSError) as error:
            raise ScaleSetReadError(str(error).split("\n", 1)[0]) from error
        ttl = self.ttl if info.managed else self.negative_ttl
        self._entries[key] = _Entry(info, self._clock() + ttl)
        return info

    def _finished(self, key: str, task: asyncio.Task[ScaleSetInfo]) -> None:
        if self._inflight.get(key) is task:
            del self._inflight[key]
        # Everyone may have stopped waiting (deadline): retrieve the error so it is not logged
        # as never retrieved; the waiters, if any, have logged it.
        if not task.cancelled():
            task.exception()

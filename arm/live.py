"""Reading the live state of many resources at once, in parallel (ARM latency overlaps)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import TYPE_CHECKING, Any, TypeVar

from outsystems.resource_types import RESOURCE_GROUP, api_version
from outsystems.topology import Resource

if TYPE_CHECKING:
    from arm.operations import Sender

T = TypeVar("T")
R = TypeVar("R")

RESOURCES_API_VERSION = api_version(RESOURCE_GROUP)
#: Parallel requests per call: enough to overlap ARM latency, well below its read budget.
PARALLELISM = 8


def parallel(function: Callable[[T], R], items: Iterable[T]) -> list[R]:
    """`function` over `items` on a small thread pool, results in order."""
    listed = list(items)
    if len(listed) <= 1:
        return [function(item) for item in listed]
    with ThreadPoolExecutor(max_workers=min(PARALLELISM, len(listed))) as pool:
        return list(pool.map(function, listed))


def parallel_after(
    function: Callable[[T], R],
    items: Sequence[T],
    after: Callable[[T], Sequence[int]],
    proceed: Callable[[R], bool],
    first: Callable[[T], bool] | None = None,
) -> list[R | None]:
    """`function` over `items` on a small thread pool, results in order, where an item runs only
    once the items it comes `after` (their indexes in `items`) ran and `proceed` said yes to
    each of their results; an item that does not run is answered None.

    No thread waits for another: an item is handed to a thread when the last of its
    predecessors returned. A free thread takes the first item that may run, in the order of
    `items` (the order of priority: one that others wait for, first), except that the items
    `first` picks come before the others (those that take the CPU a while: their work then
    overlaps the others' network round trips instead of starting after them)."""
    results: list[R | None] = [None] * len(items)
    order: Sequence[int] = range(len(items))
    if first is not None:
        picked = [first(item) for item in items]
        order = sorted(order, key=lambda index: not picked[index])  # stable
    waiting = {index: list(after(items[index])) for index in order}
    resolved: dict[int, bool] = {}
    workers = max(1, min(PARALLELISM, len(items)))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        running: dict[Future[R], int] = {}

        def submit_next() -> None:
            for index, predecessors in list(waiting.items()):  # in order: first is first
                if len(running) >= workers:
                    return
                if any(resolved.get(p) is False for p in predecessors):
                    del waiting[index]
                    resolved[index] = False  # a predecessor did not succeed: not run
                elif all(resolved.get(p) for p in predecessors):
                    del waiting[index]
                    running[pool.submit(function, items[index])] = index

        submit_next()
        while running:
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in finished:
                index = running.pop(future)
                results[index] = result = future.result()
                resolved[index] = proceed(result)
            submit_next()
    return results


def read_live(subscription_id: str, resources: Sequence[Resource]) -> list[dict[str, Any] | None]:
    """The live body of each resource (None where it does not exist), in order."""
    from arm.client import sender
    from arm.operations import get_resource

    client = sender(subscription_id)
    return parallel(lambda r: get_resource(client, r.id, r.api_version), resources)


def list_all(subscription_id: str, url: str) -> list[dict[str, Any]]:
    """Every item of an ARM list, following `nextLink` pages."""
    from arm.client import sender

    return list_pages(sender(subscription_id), url)


def list_pages(client: Sender, url: str) -> list[dict[str, Any]]:
    """Every item of an ARM list read through `client`, following `nextLink` pages."""
    from azure.core.rest import HttpRequest

    from arm.operations import raise_for_status

    items: list[dict[str, Any]] = []
    next_url: str | None = url
    while next_url:
        response = client.send_request(HttpRequest("GET", next_url))
        raise_for_status(response, url)
        page = response.json()
        items.extend(page.get("value") or [])
        next_url = page.get("nextLink")
    return items


def resources_in_group(
    subscription_id: str, resource_group: str, tag: tuple[str, str] | None = None
) -> list[dict[str, Any]]:
    """The top-level resources of a resource group (optionally those with one tag value)."""
    from urllib.parse import quote

    url = (
        f"/subscriptions/{subscription_id}/resourceGroups/{resource_group}/resources"
        f"?api-version={RESOURCES_API_VERSION}"
    )
    if tag is not None:
        url += "&$filter=" + quote(f"tagName eq '{tag[0]}' and tagValue eq '{tag[1]}'")
    return list_all(subscription_id, url)


def resource_groups(subscription_id: str) -> list[dict[str, Any]]:
    """Every resource group of a subscription."""
    return list_all(
        subscription_id,
        f"/subscriptions/{subscription_id}/resourcegroups?api-version={RESOURCES_API_VERSION}",
    )

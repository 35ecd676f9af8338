"""Reading the live state of many resources at once, in parallel (ARM latency overlaps)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from outsystems.topology import Resource

T = TypeVar("T")
R = TypeVar("R")

#: Parallel requests per call: enough to overlap ARM latency, well below its read budget.
PARALLELISM = 8


def parallel(function: Callable[[T], R], items: Iterable[T]) -> list[R]:
    """`function` over `items` on a small thread pool, results in order."""
    listed = list(items)
    if len(listed) <= 1:
        return [function(item) for item in listed]
    with ThreadPoolExecutor(max_workers=min(PARALLELISM, len(listed))) as pool:
        return list(pool.map(function, listed))


def read_live(subscription_id: str, resources: Sequence[Resource]) -> list[dict[str, Any] | None]:
    """The live body of each resource (None where it does not exist), in order."""
    from arm.client import sender
    from arm.operations import get_resource

    client = sender(subscription_id)
    return parallel(lambda r: get_resource(client, r.id, r.api_version), resources)

"""ARM's request throttling: token buckets per subscription for reads, writes and deletes.

Each request takes a token from its subscription's bucket for its category; an empty bucket
answers 429 `SubscriptionRequestsThrottled` with `Retry-After` (the seconds until a token is
back). Every answer carries `x-ms-ratelimit-remaining-subscription-<category>`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from localdev.armsim.config import BucketSettings, SimConfig

Category = Literal["reads", "writes", "deletes"]


def category_of(method: str) -> Category:
    """The bucket a request method draws from."""
    upper = method.upper()
    if upper in {"GET", "HEAD"}:
        return "reads"
    if upper == "DELETE":
        return "deletes"
    return "writes"


def header_name(category: Category) -> str:
    """The response header reporting what is left in the bucket."""
    return f"x-ms-ratelimit-remaining-subscription-{category}"


@dataclass
class _Bucket:
    tokens: float
    updated: float


@dataclass(frozen=True)
class Decision:
    """The outcome of taking a token: allowed or not, tokens left, seconds to wait if not."""

    allowed: bool
    remaining: int
    retry_after: int


class Throttler:
    """Token buckets keyed by (subscription, category), refilled lazily from a clock."""

    def __init__(self, config: SimConfig, clock: Callable[[], float]) -> None:
        self._config = config
        self._clock = clock
        self._buckets: dict[tuple[str, Category], _Bucket] = {}

    def _settings(self, category: Category) -> BucketSettings:
        return {
            "reads": self._config.reads,
            "writes": self._config.writes,
            "deletes": self._config.deletes,
        }[category]

    def take(self, subscription: str, category: Category) -> Decision:
        """Take one token for a request; when disabled, always allowed with a full bucket."""
        settings = self._settings(category)
        if not self._config.throttling:
            return Decision(True, int(settings.capacity), 0)
        now = self._clock()
        bucket = self._buckets.setdefault(
            (subscription.lower(), category), _Bucket(settings.capacity, now)
        )
        elapsed = max(0.0, now - bucket.updated)
        bucket.tokens = min(settings.capacity, bucket.tokens + elapsed * settings.refill_per_second)
        bucket.updated = now
        if bucket.tokens >= 1:
            bucket.tokens -= 1
            return Decision(True, int(bucket.tokens), 0)
        missing = 1 - bucket.tokens
        rate = settings.refill_per_second
        wait = math.ceil(missing / rate) if rate > 0 else 3600
        return Decision(False, 0, max(1, wait))

    def reset(self) -> None:
        """Refill every bucket (buckets are recreated full on next use)."""
        self._buckets.clear()

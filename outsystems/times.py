"""Moments as the app writes them: RFC 3339 in UTC with a `Z` (`2024-06-05T03:05:00Z`).

The one formatter of the app's own texts (events, decisions, statuses, messages). A naive
datetime is taken as UTC: the Durable client hands back naive UTC times.
"""

from __future__ import annotations

from datetime import UTC, datetime


def utc_z(moment: datetime, *, seconds: bool = False) -> str:
    """`moment` in UTC, ending in `Z`; fractions of a second shown when there are any, unless
    `seconds` (then cut to the whole second)."""
    utc = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    if seconds:
        utc = utc.replace(microsecond=0)
    return utc.isoformat().replace("+00:00", "Z")

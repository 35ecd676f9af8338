"""What the app can say of a scale set it is asked to scale before it reads it: whether it lies
in a subscription the app manages, and the answer "no verdict" when ARM said nothing in time.

Pure (no I/O): the ARM adapter (`arm.scale_sets`) and the use cases (`services/`) share them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from outsystems.resource_types import subscription_of


@dataclass(frozen=True)
class Unchecked:
    """ARM said nothing about a scale set in time: not a verdict (ask the sender to retry)."""

    reason: str


def foreign_reason(resource_id: str, subscription_ids: Iterable[str]) -> str | None:
    """Why a scale set is none of the app's business when it is outside `subscription_ids`
    (`AppSettings.all_subscription_ids`); None when it is inside."""
    try:
        subscription = subscription_of(resource_id)
    except ValueError:
        return f"{resource_id} is not an ARM resource id"
    if subscription.lower() in {s.lower() for s in subscription_ids}:
        return None
    return (
        f"scale set {resource_id} is in subscription {subscription}, which this app does not "
        "manage (AZURE_SUBSCRIPTION_ID, MANAGED_SUBSCRIPTION_IDS)"
    )

"""Scaling use cases: scaling by hand, the scaling view, and the scaling timer's enforcement.

Everywhere the policy is the one the scale set's tags carry under the app's MAC, capped by the
`SCALING_MAX_CAPACITY` ceiling, and scale sets outside the managed subscriptions are ignored.
Every request goes to the scale set's scaler the same way (`services.scaler_client`).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from appsettings import AppSettings
from orchestrators.scale_requests import scale_set_entity
from orchestrators.scaler import scaler_instance_id
from outsystems.messages import (
    DecisionRecord,
    HoldScaleSet,
    PendingRequest,
    ScaleRequestsState,
    ScaleSetInfo,
)
from outsystems.policy import WEEKDAYS, PolicyTagError, ScalingPolicy, capped, policy_from_tags
from outsystems.resource_types import SCALE_SET
from outsystems.scale_set_lookup import foreign_reason
from outsystems.scaling import ScaleKind, ScaleRequest, ScaleSource, timer_request
from outsystems.times import utc_z
from services.errors import ServiceError, unknown_platform
from services.platform_state import RUNNING_STATES, json_value
from services.platforms import last_platform_operation, standing_platform
from services.ports import DurableClient, ScaleSetArm
from services.scaler_client import ensure_scaler, runtime_status, submit

log = logging.getLogger(__name__)

_TIMER_NAMESPACE = uuid.UUID("0c5f3f0e-8a4b-4f59-a0a4-6f1d1c8e2b77")

ManualField = Literal["capacity", "delta"]
TimerAction = Literal["requested", "kicked", "released", "nothing"]


@dataclass(frozen=True)
class Farm:
    """A deployed farm: its solution, its production scale set and the policy of its spec."""

    solution_id: str
    scale_set_id: str
    spec_policy: ScalingPolicy


def live_policy(
    info: ScaleSetInfo, fallback: ScalingPolicy, ceiling: int
) -> tuple[ScalingPolicy, str | None]:
    """The policy in the scale set's signed tags (the truth), or the spec's with the reason why
    not; capped by the capacity ceiling either way."""
    try:
        policy = policy_from_tags(info.policy_tags) if info.managed else None
    except PolicyTagError as error:
        return capped(fallback, ceiling), str(error)
    if policy is None:
        reason = info.not_managed_reason or "the scale set carries no policy tags"
        return capped(fallback, ceiling), f"{reason}; showing the spec's policy"
    return capped(policy, ceiling), None


def enforced_policy(info: ScaleSetInfo, ceiling: int) -> ScalingPolicy | None:
    """The policy the timer enforces on a managed scale set: its signed tags' (capped), None
    when they say none or cannot be read."""
    try:
        policy = policy_from_tags(info.policy_tags)
    except PolicyTagError as error:
        log.warning("scale set %s: unreadable policy tags: %s", info.id, error)
        return None
    return capped(policy, ceiling) if policy is not None else None


def timer_request_id(scale_set_id: str, request: ScaleRequest) -> str:
    """The id of a timer request: the same for one scale set and one decision of the timer,
    so a timer that runs twice stores it once."""
    return str(uuid.uuid5(_TIMER_NAMESPACE, f"{scale_set_id.lower()}|{request.source_id}"))


def _zulu(moment: datetime | None) -> str | None:
    return None if moment is None else utc_z(moment)


def policy_json(policy: ScalingPolicy) -> dict[str, Any]:
    """The policy in the API's shape (that of the spec's `frontends`)."""
    return {
        "minCapacity": policy.min_capacity,
        "maxCapacity": policy.max_capacity,
        "scaleOutStep": policy.scale_out_step,
        "scaleInStep": policy.scale_in_step,
        "cooldownMinutes": policy.cooldown_minutes,
        "schedules": [
            {
                "days": [day for day in WEEKDAYS if day in window.days],
                "start": window.start.strftime("%H:%M"),
                "end": window.end.strftime("%H:%M"),
                "timeZone": window.time_zone,
                "minCapacity": window.min_capacity,
            }
            for window in policy.schedules
        ],
    }


def _pending_json(entry: PendingRequest) -> dict[str, Any]:
    request = entry.request
    return {
        "requestId": entry.id,
        "source": request.source.value,
        "sourceId": request.source_id,
        "kind": request.kind.value,
        "amount": request.amount,
        "receivedAt": _zulu(request.received_at),
        "reason": request.reason,
        "count": request.count,
    } | ({"alertIds": list(entry.alert_ids)} if entry.alert_ids else {})


@dataclass(frozen=True)
class ScaleAccepted:
    """A manual request handed to the scale set's scaler."""

    request_id: str
    scale_set: str
    target: int

    def to_json(self) -> dict[str, Any]:
        return {"requestId": self.request_id, "scaleSet": self.scale_set, "target": self.target}


@dataclass(frozen=True)
class ScalingView:
    """What `GET .../scaling` shows: policy, live capacity, cooldown, requests, decisions, and
    the upgrade holding the scale set."""

    scale_set: str
    capacity: int | None
    policy: ScalingPolicy
    cooldown_until: datetime | None
    decisions: Sequence[DecisionRecord]
    pending: Sequence[PendingRequest]
    scaler: str | None
    note: str | None = None
    #: The upgrade holding the scaler's capacity changes (issue 17), None when nothing does.
    held_by: HoldScaleSet | None = None

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "scaleSet": self.scale_set,
            "capacity": self.capacity,
            "policy": policy_json(self.policy),
            "cooldownUntil": _zulu(self.cooldown_until),
            "decisions": [record.to_json() for record in self.decisions],
            "pending": [_pending_json(entry) for entry in self.pending],
            "heldBy": None if self.held_by is None else self.held_by.to_json(),
            "scaler": self.scaler,
        }
        if self.note:
            body["note"] = self.note
        return body


@dataclass(frozen=True)
class TimerReport:
    """What one run of the scaling timer did."""

    scale_sets: int
    actions: Sequence[TimerAction] = field(default_factory=tuple)

    @property
    def requested(self) -> int:
        return self.actions.count("requested")

    @property
    def kicked(self) -> int:
        return self.actions.count("kicked")

    @property
    def released(self) -> int:
        return self.actions.count("released")


async def farm(client: DurableClient, solution_id: str) -> Farm:
    """The farm of a platform, from the spec of its last operation."""
    # Unknown too once the last operation removed production (the farm is gone).
    standing = await standing_platform(client, solution_id, ("prod",))
    if standing is None:
        raise unknown_platform(solution_id)
    spec, graph = standing.spec.parsed()
    frontends = spec.environments.prod.frontends
    scale_sets = [r.id for r in graph if r.type == SCALE_SET]
    if spec.environments.prod.mode != "farm" or frontends is None or not scale_sets:
        raise ServiceError(
            "invalid",
            "NotAFarm",
            f"Platform {solution_id} runs production standalone (one VM): there is no "
            "front-end scale set to scale. Deploy it with prod.mode 'farm' to scale.",
        )
    return Farm(solution_id, scale_sets[0], frontends.policy())


def read_live(arm: ScaleSetArm, settings: AppSettings, scale_set_id: str) -> ScaleSetInfo:
    """The scale set as ARM has it; never read outside the managed subscriptions.
    Blocking: an ARM read."""
    foreign = foreign_reason(scale_set_id, settings.all_subscription_ids)
    if foreign is not None:
        return ScaleSetInfo(scale_set_id, exists=False, problem=foreign)
    return arm.read_scale_set(scale_set_id)


async def scale(
    client: DurableClient,
    arm: ScaleSetArm,
    settings: AppSettings,
    solution_id: str,
    field: ManualField,
    amount: int,
) -> ScaleAccepted:
    """Set the production front-end capacity by hand (`capacity` N, or a `delta` N), checked
    against the live policy, through the scale set's scaler."""
    found = await farm(client, solution_id)
    info = await asyncio.to_thread(read_live, arm, settings, found.scale_set_id)
    if not info.exists or not info.managed or info.capacity is None:
        raise ServiceError(
            "conflict",
            "ScaleSetNotReady",
            f"{info.not_managed_reason or 'the scale set reports no capacity'}; "
            "deploy the platform (or wait for its deployment) first.",
        )
    ceiling = settings.scaling_max_capacity
    policy, _ = live_policy(info, found.spec_policy, ceiling)
    target = amount if field == "capacity" else info.capacity + amount
    if not policy.min_capacity <= target <= policy.max_capacity:
        capped_by = (
            f"; the SCALING_MAX_CAPACITY setting caps it at {ceiling}"
            if policy.max_capacity == ceiling
            else ""
        )
        raise ServiceError(
            "invalid",
            "CapacityOutOfRange",
            f"Capacity {target} is outside the allowed range {policy.min_capacity}-"
            f"{policy.max_capacity} (minCapacity {policy.min_capacity}, maxCapacity "
            f"{policy.max_capacity}{capped_by}; live capacity {info.capacity}).",
        )
    request_id = str(uuid.uuid4())
    request = ScaleRequest(
        kind=ScaleKind.EXACT if field == "capacity" else ScaleKind.DELTA,
        amount=amount,
        source=ScaleSource.MANUAL,
        source_id=request_id,
        received_at=datetime.now(UTC),
        rule=None,
        reason=f"manual request: {field} {amount:+d}"
        if field == "delta"
        else f"manual request: capacity {amount}",
    )
    await submit(client, info.id, solution_id, request, request_id, settings)
    log.info("manual %s %d for %s accepted (%s)", field, amount, info.id, request_id)
    return ScaleAccepted(request_id, info.id, target)


async def view(
    client: DurableClient, arm: ScaleSetArm, settings: AppSettings, solution_id: str
) -> ScalingView:
    """The scaling policy, live capacity, cooldown, pending requests and recent decisions."""
    found = await farm(client, solution_id)
    info, entity, scaler = await asyncio.gather(
        asyncio.to_thread(read_live, arm, settings, found.scale_set_id),
        client.read_entity_state(scale_set_entity(found.scale_set_id)),
        runtime_status(client, scaler_instance_id(found.scale_set_id)),
    )
    state = ScaleRequestsState.from_json(json_value(entity.entity_state))
    policy, policy_note = live_policy(info, found.spec_policy, settings.scaling_max_capacity)
    return ScalingView(
        scale_set=info.id,
        capacity=info.capacity,
        policy=policy,
        cooldown_until=state.cooldown_until,
        decisions=state.decisions,
        pending=state.pending,
        scaler=scaler,
        note="the scale set does not exist (yet)" if not info.exists else policy_note,
        held_by=state.held_by,
    )


def managed_scale_sets(arm: ScaleSetArm, settings: AppSettings) -> list[ScaleSetInfo]:
    """The managed scale sets of every managed subscription. Blocking: ARM reads."""
    found: list[ScaleSetInfo] = []
    for subscription in settings.all_subscription_ids:
        found.extend(s for s in arm.list_scale_sets(subscription) if s.managed)
    return found


async def stale_hold(
    client: DurableClient, info: ScaleSetInfo, state: ScaleRequestsState
) -> HoldScaleSet | None:
    """The hold of an upgrade that no longer runs (canceled: a terminated orchestration
    releases nothing; or gone): the scaler would otherwise stay held for good. None when the
    scale set is free or its holder is the platform's running operation."""
    hold = state.held_by
    solution_id = state.solution_id or info.solution_id
    if hold is None or solution_id is None:
        return None
    current = await last_platform_operation(client, solution_id)
    if current is not None and current.running and current.operation_id == hold.holder:
        return None
    return hold


async def enforce(
    client: DurableClient, settings: AppSettings, info: ScaleSetInfo, now: datetime
) -> TimerAction:
    """What the timer does for one scale set: release the hold of an upgrade that no longer
    runs (`released`), ask for the schedule floor or a drift repair (`requested`), start the
    scaler of requests that wait without one (`kicked`), or `nothing`."""
    foreign = foreign_reason(info.id, settings.all_subscription_ids)
    if foreign is not None or not info.managed:
        log.warning("timer: %s", foreign or info.not_managed_reason)
        return "nothing"
    entity = await client.read_entity_state(scale_set_entity(info.id))
    state = ScaleRequestsState.from_json(json_value(entity.entity_state))
    stale = await stale_hold(client, info, state)
    if stale is not None:
        # Only this holder's hold ends: an upgrade that took the hold since keeps it.
        await client.signal_entity(scale_set_entity(info.id), "release", stale.to_json())
        log.warning("timer: released %s from upgrade %s, which no longer runs", info.id, stale)
        if state.pending:
            await ensure_scaler(client, info.id, settings)
        return "released"
    policy = enforced_policy(info, settings.scaling_max_capacity)
    request = (
        timer_request(info.capacity, policy, now)
        if policy is not None and info.capacity is not None
        else None
    )
    if request is not None:
        request_id = timer_request_id(info.id, request)
        await submit(client, info.id, info.solution_id, request, request_id, settings)
        log.info("timer: %s for %s (%s)", request.reason, info.id, request_id)
        return "requested"
    if not entity.entity_exists or not state.pending:
        return "nothing"
    if await runtime_status(client, scaler_instance_id(info.id)) in RUNNING_STATES:
        return "nothing"
    await ensure_scaler(client, info.id, settings)
    log.info("timer: started the scaler of %s for %d waiting requests", info.id, len(state.pending))
    return "kicked"


async def enforce_all(
    client: DurableClient, arm: ScaleSetArm, settings: AppSettings, now: datetime
) -> TimerReport:
    """Schedule floors and drift repair for every managed farm; restart idle scalers."""
    scale_sets = await asyncio.to_thread(managed_scale_sets, arm, settings)
    actions = [await enforce(client, settings, info, now) for info in scale_sets]
    return TimerReport(len(scale_sets), tuple(actions))

"""Scaling by hand, what the scaler did, and the scaling timer.

- `POST /api/platforms/{solutionId}/scale` (`{"capacity": N}` or `{"delta": N}`): checked
  against the live policy (the scale set's tags), then handed to the scale set's scaler like
  any other request. 202 `{"requestId", "scaleSet", "target"}`; 400 outside the bounds or not a
  farm; 404 unknown platform; 409 the scale set does not exist (yet) or is not the app's.
- `GET /api/platforms/{solutionId}/scaling`: policy, live capacity, cooldown, pending requests
  and the recent decisions with their source and reason.
- `enforce_scaling_schedules` (`%SCALING_TIMER_SCHEDULE%`): for every managed farm's scale set
  in the managed subscriptions, asks for the schedule floor or a drift repair when the live
  capacity is outside the bounds in force, and starts the scaler of any scale set whose
  requests wait without one (a request stored while its scaler was ending).

Everywhere the policy is the one the scale set's tags carry under the app's MAC, capped by the
`SCALING_MAX_CAPACITY` ceiling, and scale sets outside the managed subscriptions are ignored.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import azure.durable_functions as df
import azure.functions as func

from appsettings import AppSettings
from outsystems.times import utc_z
from triggers.http import error_response, json_response, route_param, too_large
from triggers.platforms import json_value, standing_platform, unknown_platform

if TYPE_CHECKING:
    from arm.scale_sets import ScaleSetInfo
    from outsystems.policy import ScalingPolicy

bp = df.Blueprint(http_auth_level=func.AuthLevel.FUNCTION)
log = logging.getLogger(__name__)

_TIMER_NAMESPACE = uuid.UUID("0c5f3f0e-8a4b-4f59-a0a4-6f1d1c8e2b77")


@dataclass(frozen=True)
class Farm:
    """A deployed farm: its solution, its production scale set and the policy of its spec."""

    solution_id: str
    scale_set_id: str
    spec_policy: ScalingPolicy


class _RefusedError(Exception):
    """An answer other than success, carried out of the helpers."""

    def __init__(self, response: func.HttpResponse) -> None:
        super().__init__(response.status_code)
        self.response = response


async def _farm(client: df.DurableOrchestrationClient, solution_id: str) -> Farm:
    """The farm of a platform, from the spec of its last operation (`_RefusedError` if none)."""
    from outsystems.deployment import graph_of
    from outsystems.resource_types import SCALE_SET

    # Unknown too once the last operation removed production (the farm is gone).
    standing = await standing_platform(client, solution_id, ("prod",))
    if standing is None:
        raise _RefusedError(unknown_platform(solution_id))
    spec, graph = graph_of(standing[2])
    frontends = spec.environments.prod.frontends
    scale_sets = [r.id for r in graph if r.type == SCALE_SET]
    if spec.environments.prod.mode != "farm" or frontends is None or not scale_sets:
        raise _RefusedError(
            error_response(
                400,
                "NotAFarm",
                f"Platform {solution_id} runs production standalone (one VM): there is no "
                "front-end scale set to scale. Deploy it with prod.mode 'farm' to scale.",
            )
        )
    return Farm(solution_id, scale_sets[0], frontends.policy())


def _read_live(scale_set_id: str, settings: AppSettings) -> ScaleSetInfo:
    from arm.client import sender
    from arm.scale_sets import (
        ScaleSetInfo,
        foreign_reason,
        read_scale_set,
        scaling_key,
        subscription_of,
    )

    foreign = foreign_reason(scale_set_id, settings.all_subscription_ids)
    if foreign is not None:
        return ScaleSetInfo(scale_set_id, exists=False, problem=foreign)
    return read_scale_set(sender(subscription_of(scale_set_id)), scale_set_id, scaling_key())


def _live_policy(
    info: ScaleSetInfo, fallback: ScalingPolicy, ceiling: int
) -> tuple[ScalingPolicy, str | None]:
    """The policy in the scale set's signed tags (the truth), or the spec's with the reason why
    not; capped by the capacity ceiling either way."""
    from outsystems.policy import PolicyTagError, capped, policy_from_tags

    try:
        policy = policy_from_tags(info.policy_tags) if info.managed else None
    except PolicyTagError as error:
        return capped(fallback, ceiling), str(error)
    if policy is None:
        reason = info.not_managed_reason or "the scale set carries no policy tags"
        return capped(fallback, ceiling), f"{reason}; showing the spec's policy"
    return capped(policy, ceiling), None


def _zulu(value: str | None) -> str | None:
    if not value:
        return None
    return utc_z(datetime.fromisoformat(value))


# --- POST /api/platforms/{solutionId}/scale ---------------------------------------------------


def _manual_body(req: func.HttpRequest) -> tuple[str, int]:
    """`("capacity", N)` or `("delta", N)` from the body, or `_RefusedError` with a 400."""
    from outsystems.errors import ApiError, FieldError
    from triggers.http import api_error_response

    def refuse(target: str, message: str) -> _RefusedError:
        error = ApiError("The scale request is invalid.", [FieldError(target, message)])
        error.code = "InvalidScaleRequest"
        return _RefusedError(api_error_response(error))

    try:
        body = json.loads(req.get_body() or b"null")
    except (ValueError, RecursionError):
        raise refuse("body", "must be a JSON object") from None
    if not isinstance(body, dict):
        raise refuse("body", 'must be a JSON object: {"capacity": N} or {"delta": N}')
    unknown = sorted(set(body) - {"capacity", "delta"})
    if unknown:
        raise refuse(unknown[0], "unknown field; give capacity or delta")
    if len(body) != 1:
        raise refuse("body", "give exactly one of capacity and delta")
    ((field, value),) = body.items()
    if not isinstance(value, int) or isinstance(value, bool):
        raise refuse(field, "must be an integer")
    return field, value


@bp.route(route="platforms/{solutionId}/scale", methods=["POST"])
@bp.durable_client_input(client_name="client")
async def scale_platform(
    req: func.HttpRequest, client: df.DurableOrchestrationClient
) -> func.HttpResponse:
    """Set the production front-end capacity by hand, through the scale set's scaler."""
    from outsystems.scaling import ScaleKind, ScaleRequest, ScaleSource
    from triggers.scaler_client import submit

    if oversized := too_large(req):
        return oversized
    solution_id = route_param(req, "solutionId")
    try:
        field, amount = _manual_body(req)
        farm = await _farm(client, solution_id)
    except _RefusedError as refused:
        return refused.response
    settings = AppSettings.load()
    info = await asyncio.to_thread(_read_live, farm.scale_set_id, settings)
    if not info.exists or not info.managed or info.capacity is None:
        return error_response(
            409,
            "ScaleSetNotReady",
            f"{info.not_managed_reason or 'the scale set reports no capacity'}; "
            "deploy the platform (or wait for its deployment) first.",
        )
    ceiling = settings.scaling_max_capacity
    policy, _ = _live_policy(info, farm.spec_policy, ceiling)
    target = amount if field == "capacity" else info.capacity + amount
    if not policy.min_capacity <= target <= policy.max_capacity:
        capped_by = (
            f"; the SCALING_MAX_CAPACITY setting caps it at {ceiling}"
            if policy.max_capacity == ceiling
            else ""
        )
        return error_response(
            400,
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
    return json_response({"requestId": request_id, "scaleSet": info.id, "target": target}, 202)


# --- GET /api/platforms/{solutionId}/scaling --------------------------------------------------


def policy_json(policy: ScalingPolicy) -> dict[str, Any]:
    """The policy in the API's shape (that of the spec's `frontends`)."""
    from outsystems.policy import WEEKDAYS

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


def _pending_json(entry: dict[str, Any]) -> dict[str, Any]:
    request = entry["request"]
    return {
        "requestId": entry["id"],
        "source": request["source"],
        "sourceId": request["sourceId"],
        "kind": request["kind"],
        "amount": request["amount"],
        "receivedAt": _zulu(request["receivedAt"]),
        "reason": request["reason"],
    }


@bp.route(route="platforms/{solutionId}/scaling", methods=["GET"])
@bp.durable_client_input(client_name="client")
async def get_scaling(
    req: func.HttpRequest, client: df.DurableOrchestrationClient
) -> func.HttpResponse:
    """The scaling policy, live capacity, cooldown, pending requests and recent decisions."""
    from orchestrators.scale_requests import empty_state, scale_set_entity
    from orchestrators.scaler import scaler_instance_id
    from triggers.scaler_client import runtime_status

    solution_id = route_param(req, "solutionId")
    try:
        farm = await _farm(client, solution_id)
    except _RefusedError as refused:
        return refused.response
    settings = AppSettings.load()
    info, entity, scaler = await asyncio.gather(
        asyncio.to_thread(_read_live, farm.scale_set_id, settings),
        client.read_entity_state(scale_set_entity(farm.scale_set_id)),
        runtime_status(client, scaler_instance_id(farm.scale_set_id)),
    )
    state = {**empty_state(), **(json_value(entity.entity_state) or {})}
    policy, policy_note = _live_policy(info, farm.spec_policy, settings.scaling_max_capacity)
    body: dict[str, Any] = {
        "scaleSet": info.id,
        "capacity": info.capacity,
        "policy": policy_json(policy),
        "cooldownUntil": _zulu(state["cooldownUntil"]),
        "decisions": state["decisions"],
        "pending": [_pending_json(entry) for entry in state["pending"]],
        "scaler": scaler,
    }
    if not info.exists:
        body["note"] = "the scale set does not exist (yet)"
    elif policy_note:
        body["note"] = policy_note
    return json_response(body)


# --- The scaling timer ------------------------------------------------------------------------


def _managed_scale_sets(subscriptions: tuple[str, ...]) -> list[ScaleSetInfo]:
    from arm.client import sender
    from arm.scale_sets import list_scale_sets, scaling_key

    key = scaling_key()
    found: list[ScaleSetInfo] = []
    for subscription in subscriptions:
        listed = list_scale_sets(sender(subscription), subscription, key)
        found.extend(s for s in listed if s.managed)
    return found


async def _enforce(
    client: df.DurableOrchestrationClient,
    info: ScaleSetInfo,
    now: datetime,
    settings: AppSettings,
) -> str:
    """What the timer did for one scale set: `requested`, `kicked` or `nothing`."""
    from arm.scale_sets import foreign_reason
    from orchestrators.scale_requests import scale_set_entity
    from orchestrators.scaler import scaler_instance_id
    from outsystems.policy import PolicyTagError, capped, policy_from_tags
    from outsystems.scaling import timer_request
    from triggers.platform_state import RUNNING_STATES
    from triggers.scaler_client import ensure_scaler, runtime_status, submit

    foreign = foreign_reason(info.id, settings.all_subscription_ids)
    if foreign is not None or not info.managed:
        log.warning("timer: %s", foreign or info.not_managed_reason)
        return "nothing"
    try:
        policy = policy_from_tags(info.policy_tags)
    except PolicyTagError as error:
        log.warning("scale set %s: unreadable policy tags: %s", info.id, error)
        policy = None
    if policy is not None:
        policy = capped(policy, settings.scaling_max_capacity)
    request = (
        timer_request(info.capacity, policy, now)
        if policy is not None and info.capacity is not None
        else None
    )
    if request is not None:
        request_id = str(uuid.uuid5(_TIMER_NAMESPACE, f"{info.id.lower()}|{request.source_id}"))
        await submit(client, info.id, info.solution_id, request, request_id, settings)
        log.info("timer: %s for %s (%s)", request.reason, info.id, request_id)
        return "requested"
    entity = await client.read_entity_state(scale_set_entity(info.id))
    state = json_value(entity.entity_state) if entity.entity_exists else None
    if not isinstance(state, dict) or not state.get("pending"):
        return "nothing"
    if await runtime_status(client, scaler_instance_id(info.id)) in RUNNING_STATES:
        return "nothing"
    await ensure_scaler(client, info.id, settings)
    log.info(
        "timer: started the scaler of %s for %d waiting requests", info.id, len(state["pending"])
    )
    return "kicked"


@bp.timer_trigger(schedule="%SCALING_TIMER_SCHEDULE%", arg_name="timer", use_monitor=True)
@bp.durable_client_input(client_name="client")
async def enforce_scaling_schedules(
    timer: func.TimerRequest, client: df.DurableOrchestrationClient
) -> None:
    """Schedule floors and drift repair for every managed farm; restart idle scalers."""
    settings = AppSettings.load()
    now = datetime.now(UTC)
    scale_sets = await asyncio.to_thread(_managed_scale_sets, settings.all_subscription_ids)
    outcomes = [await _enforce(client, info, now, settings) for info in scale_sets]
    log.info(
        "scaling timer%s: %d managed scale sets, %d requests, %d scalers restarted",
        " (past due)" if timer.past_due else "",
        len(scale_sets),
        outcomes.count("requested"),
        outcomes.count("kicked"),
    )

"""The scaling arithmetic of the production front-end scale set: pure functions over plain data.

The scaler (a durable entity/orchestration) drains the stored requests of one scale set and runs
them through this module, one change per round:

    batch = coalesce(pending, now, cooldown_until)       # one request to decide now
    decision = decide(current, policy, batch.request, now, cooldown_until)
    ...patch the capacity to decision.target when it is not None...
    record fates(batch, decision); the requests without a fate wait for the next round

Time is always passed in as an aware datetime; nothing here reads the clock, the network or a
file (time zones come from the `tzdata` database through `zoneinfo`).
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

from outsystems.policy import WEEKDAYS, ScalingPolicy, ScheduleWindow
from outsystems.times import utc_z

logger = logging.getLogger(__name__)


class ScaleKind(StrEnum):
    """What a request asks for: a policy step out or in, an exact capacity, or a difference."""

    OUT = "out"
    IN = "in"
    EXACT = "exact"
    DELTA = "delta"


class ScaleSource(StrEnum):
    """Who asked: an Azure Monitor alert, the scaling timer, or an administrator."""

    ALERT = "alert"
    TIMER = "timer"
    MANUAL = "manual"


class Outcome(StrEnum):
    """The fate of a request: `coalesced` means another request was decided in its place."""

    APPLIED = "applied"
    SKIPPED = "skipped"
    COALESCED = "coalesced"


@dataclass(frozen=True)
class ScaleRequest:
    """One stored request to change the capacity.

    `amount` is the capacity for `exact` and the difference for `delta`, None for `out`/`in`
    (the policy's steps apply). `rule` names the alert rule so that its `Resolved` notification
    can withdraw the request. `merged_from` is set only on the request `coalesce` builds: the
    original requests it stands for. `count` is how many alerts one stored request stands for:
    the scale set's entity keeps the alerts of one rule and direction as one pending request,
    the latest of them with their count (issue 16).
    """

    kind: ScaleKind
    amount: int | None
    source: ScaleSource
    source_id: str
    received_at: datetime
    rule: str | None
    reason: str
    merged_from: tuple[ScaleRequest, ...] = ()
    count: int = 1

    def __post_init__(self) -> None:
        if self.count < 1:
            raise ValueError(f"a request stands for one request or more, not {self.count}")
        if self.kind in (ScaleKind.EXACT, ScaleKind.DELTA) and self.amount is None:
            raise ValueError(f"a {self.kind} request needs an amount")
        if self.kind in (ScaleKind.OUT, ScaleKind.IN) and self.amount is not None:
            raise ValueError(f"a {self.kind} request takes its step from the policy, not amount")
        if self.source is ScaleSource.ALERT and self.kind not in (ScaleKind.OUT, ScaleKind.IN):
            raise ValueError("an alert request is a scale out or a scale in")
        if self.source is ScaleSource.MANUAL and self.kind not in (
            ScaleKind.EXACT,
            ScaleKind.DELTA,
        ):
            raise ValueError("a manual request sets a capacity (exact) or a difference (delta)")
        _require_aware(self.received_at, "received_at")

    @property
    def covers(self) -> tuple[ScaleRequest, ...]:
        """The original requests this one stands for (itself when it was not merged)."""
        return self.merged_from or (self,)

    @property
    def requests(self) -> int:
        """How many requests this one answers (the counts of those it stands for)."""
        return sum(request.count for request in self.covers)

    # Durable Functions serializes objects through static `to_json`/`from_json`: requests can
    # be activity/entity inputs and entity state as they are.
    @staticmethod
    def to_json(obj: ScaleRequest) -> dict[str, Any]:
        document: dict[str, Any] = {
            "kind": obj.kind.value,
            "amount": obj.amount,
            "source": obj.source.value,
            "sourceId": obj.source_id,
            "receivedAt": obj.received_at.isoformat(),
            "rule": obj.rule,
            "reason": obj.reason,
        }
        if obj.merged_from:
            document["mergedFrom"] = [ScaleRequest.to_json(r) for r in obj.merged_from]
        if obj.count != 1:
            document["count"] = obj.count
        return document

    @staticmethod
    def from_json(data: Mapping[str, Any]) -> ScaleRequest:
        """The inverse of `to_json`; raises ValueError (or KeyError) on a malformed document."""
        amount = data["amount"]
        if amount is not None and (not isinstance(amount, int) or isinstance(amount, bool)):
            raise ValueError(f"request amount must be an integer, not {amount!r}")
        rule = data["rule"]
        if rule is not None and not isinstance(rule, str):
            raise ValueError(f"request rule must be a string, not {rule!r}")
        return ScaleRequest(
            kind=ScaleKind(data["kind"]),
            amount=amount,
            source=ScaleSource(data["source"]),
            source_id=_text(data, "sourceId"),
            received_at=datetime.fromisoformat(data["receivedAt"]),
            rule=rule,
            reason=_text(data, "reason"),
            merged_from=tuple(ScaleRequest.from_json(r) for r in data.get("mergedFrom", ())),
            count=_count_of(data.get("count", 1)),
        )


@dataclass(frozen=True)
class Decision:
    """What to do about one request: the capacity to set (None: no change) and why."""

    target: int | None
    from_capacity: int
    outcome: Outcome
    reason: str
    starts_cooldown: bool
    # The cooldown in force after this decision: a new one when it starts one, else unchanged.
    cooldown_until: datetime | None
    request: ScaleRequest
    #: Servers a scale-in removed: their registrations stay in Service Center, where only an
    #: administrator can delete them (OutSystems documents no API for it).
    removed_servers: tuple[str, ...] = ()

    @property
    def covers(self) -> tuple[ScaleRequest, ...]:
        """The original requests this decision answers."""
        return self.request.covers

    @property
    def to_capacity(self) -> int:
        return self.from_capacity if self.target is None else self.target

    @property
    def direction(self) -> str:
        """`out`, `in`, or, for a request that changed nothing, what it asked for."""
        return _direction(self.request, self.from_capacity, self.to_capacity)

    @staticmethod
    def to_json(obj: Decision) -> dict[str, Any]:
        return {
            "target": obj.target,
            "from": obj.from_capacity,
            "outcome": obj.outcome.value,
            "reason": obj.reason,
            "startsCooldown": obj.starts_cooldown,
            "cooldownUntil": None if obj.cooldown_until is None else obj.cooldown_until.isoformat(),
            "request": ScaleRequest.to_json(obj.request),
            "removedServers": list(obj.removed_servers),
        }

    @staticmethod
    def from_json(data: Mapping[str, Any]) -> Decision:
        """The inverse of `to_json`; raises ValueError (or KeyError) on a malformed document."""
        until = data["cooldownUntil"]
        return Decision(
            target=None if data["target"] is None else int(data["target"]),
            from_capacity=int(data["from"]),
            outcome=Outcome(data["outcome"]),
            reason=str(data["reason"]),
            starts_cooldown=bool(data["startsCooldown"]),
            cooldown_until=None if until is None else datetime.fromisoformat(until),
            request=ScaleRequest.from_json(data["request"]),
            removed_servers=tuple(str(name) for name in data.get("removedServers") or ()),
        )


def _count_of(value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValueError(f"request count must be an integer, not {value!r}")
    return value


def _text(data: Mapping[str, Any], key: str) -> str:
    value = data[key]
    if not isinstance(value, str):
        raise ValueError(f"request {key} must be a string, not {value!r}")
    return value


def _direction(request: ScaleRequest, before: int | None, after: int | None) -> str:
    if before is not None and after is not None and after != before:
        return "out" if after > before else "in"
    return request.kind.value


@dataclass(frozen=True)
class Coalesced:
    """One round of the scaler: the request to decide now and the requests it supersedes.

    `dropped` requests are superseded (their fate is `coalesced`, with the reason). The others
    that neither `request` covers nor `dropped` holds wait for a later round: they stay in the
    scale set's stored requests until a fate is recorded for them.
    """

    request: ScaleRequest | None
    dropped: tuple[tuple[ScaleRequest, str], ...]


@dataclass(frozen=True)
class Fate:
    """What became of one original request: the record the scaler keeps and publishes."""

    request: ScaleRequest
    outcome: Outcome
    reason: str
    from_capacity: int | None
    to_capacity: int | None

    def to_record(self, at: datetime) -> dict[str, Any]:
        """The entry of the API's `decisions` list (`GET .../scaling`) for this fate."""
        return {
            "at": _iso(at),
            "source": self.request.source.value,
            "sourceId": self.request.source_id,
            "direction": _direction(self.request, self.from_capacity, self.to_capacity),
            "from": self.from_capacity,
            "to": self.to_capacity,
            "outcome": self.outcome.value,
            "reason": self.reason,
        } | ({"requests": self.request.count} if self.request.count != 1 else {})


# --- Schedules -------------------------------------------------------------------------------


def describe_window(window: ScheduleWindow) -> str:
    """A short human description, e.g. `Mon-Fri 08:00-19:00 Europe/Lisbon`."""
    return (
        f"{_describe_days(window.days)} {_clock(window.start)}-{_clock(window.end)} "
        f"{window.time_zone}"
    )


def _describe_days(days: frozenset[str]) -> str:
    runs: list[list[str]] = []
    previous = -2
    for index, day in enumerate(WEEKDAYS):
        if day not in days:
            continue
        if index == previous + 1:
            runs[-1].append(day)
        else:
            runs.append([day])
        previous = index
    return ",".join(run[0] if len(run) == 1 else f"{run[0]}-{run[-1]}" for run in runs) or "never"


def _clock(value: time) -> str:
    return value.strftime("%H:%M" if value.second == 0 else "%H:%M:%S")


def active_windows(policy: ScalingPolicy, now: datetime) -> tuple[ScheduleWindow, ...]:
    """The schedule windows in force at `now`.

    A window runs from the first instant the local clock of its zone shows `start` on one of its
    `days` to the last instant it shows `end` (the next day when `end <= start`). On a
    spring-forward day a time that does not exist is reached when the clocks jump; on a
    fall-back day a start that occurs twice counts from its first occurrence and an end that
    occurs twice from its second: a window stays one interval and runs through the repeated
    hour rather than lose it.
    """
    _require_aware(now, "now")
    return tuple(window for window in policy.schedules if _is_active(window, now))


def _is_active(window: ScheduleWindow, now: datetime) -> bool:
    zone = ZoneInfo(window.time_zone)
    today = now.astimezone(zone).date()
    for start_day in (today - timedelta(days=1), today):
        if WEEKDAYS[start_day.weekday()] not in window.days:
            continue
        end_day = start_day if window.end > window.start else start_day + timedelta(days=1)
        begins = _instant(start_day, window.start, zone, latest=False)
        ends = _instant(end_day, window.end, zone, latest=True)
        if begins <= now < ends:
            return True
    return False


def _instant(day: date, clock: time, zone: ZoneInfo, *, latest: bool) -> datetime:
    """The UTC instant at which the local clock of `zone` shows `clock` on `day`.

    For a time the clocks repeat, the first or (`latest`) the second occurrence; for a time they
    skip, the instant of the jump, when the clock first shows a later time.
    """
    wall = datetime.combine(day, clock.replace(tzinfo=None))
    first = wall.replace(tzinfo=zone, fold=0)
    second = wall.replace(tzinfo=zone, fold=1)
    if first.utcoffset() == second.utcoffset():
        return first.astimezone(UTC)
    if first.astimezone(UTC).astimezone(zone).replace(tzinfo=None) == wall:
        return (second if latest else first).astimezone(UTC)
    # In a gap, fold=1 reads the time with the later offset (an instant before the jump) and
    # fold=0 with the earlier one (after it). zoneinfo does not expose its transitions, so find
    # the jump by bisection over whole seconds: the first second whose clock is at or past wall.
    low = math.floor(second.timestamp())
    high = math.ceil(first.timestamp())
    while high - low > 1:
        middle = (low + high) // 2
        if datetime.fromtimestamp(middle, zone).replace(tzinfo=None) >= wall:
            high = middle
        else:
            low = middle
    return datetime.fromtimestamp(high, UTC)


def schedule_floor(policy: ScalingPolicy, now: datetime) -> int | None:
    """The highest `min_capacity` of the windows in force at `now`; None when none is."""
    window = _floor_window(policy, now)
    return None if window is None else window.min_capacity


def _floor_window(policy: ScalingPolicy, now: datetime) -> ScheduleWindow | None:
    active = active_windows(policy, now)
    return max(active, key=lambda window: window.min_capacity, default=None)


class _Bounds:
    """The capacity range in force at one instant, and how reasons name its lower end."""

    def __init__(self, policy: ScalingPolicy, now: datetime) -> None:
        window = _floor_window(policy, now)
        self.high = policy.max_capacity
        # Only a window above the policy's minimum is the floor worth naming.
        self.window = window if window and window.min_capacity > policy.min_capacity else None
        floor = self.window.min_capacity if self.window else policy.min_capacity
        # A schedule floor above the maximum is refused when the policy is written; should one
        # arrive anyway, the maximum wins: never above max is the harder promise.
        self.low = min(floor, self.high)

    def clamp(self, capacity: int) -> int:
        return min(max(capacity, self.low), self.high)

    def low_name(self) -> str:
        """`minimum 2` or `schedule floor 4 (Mon-Fri 08:00-19:00 Europe/Lisbon)`."""
        if self.window is None:
            return f"minimum {self.low}"
        return f"schedule floor {self.low} ({describe_window(self.window)})"

    def at_low(self) -> str:
        """`minimum (2)` or `schedule floor (4, Mon-Fri 08:00-19:00 Europe/Lisbon)`."""
        if self.window is None:
            return f"minimum ({self.low})"
        return f"schedule floor ({self.low}, {describe_window(self.window)})"


# --- Decisions -------------------------------------------------------------------------------


def decide(
    current: int,
    policy: ScalingPolicy,
    request: ScaleRequest,
    now: datetime,
    cooldown_until: datetime | None,
) -> Decision:
    """Decide one request against the live capacity `current`.

    `out`/`in` move one policy step and never against their direction; `exact` sets and `delta`
    shifts the capacity, and a manual one that lands outside [min, max] is refused. Alert
    requests wait for the cooldown and start one when they change the capacity. Timer requests
    repair the capacity into the bounds in force at `now` (schedule floor, drift), whatever
    capacity they were computed from. Manual and timer requests neither wait for nor start the
    cooldown. No result is below the floor in force or above the maximum.
    """
    _require_aware(now, "now")
    bounds = _Bounds(policy, now)

    def skipped(reason: str) -> Decision:
        return Decision(None, current, Outcome.SKIPPED, reason, False, cooldown_until, request)

    def applied(target: int, reason: str) -> Decision:
        starts = request.source is ScaleSource.ALERT and policy.cooldown_minutes > 0
        until = now + timedelta(minutes=policy.cooldown_minutes) if starts else cooldown_until
        return Decision(target, current, Outcome.APPLIED, reason, starts, until, request)

    if request.source is ScaleSource.TIMER:
        target = bounds.clamp(current)
        if target == current:
            return skipped(f"capacity {current} already within {bounds.low}-{bounds.high}")
        return applied(target, _repair_reason(current, bounds))

    if request.source is ScaleSource.ALERT and cooldown_until is not None and now < cooldown_until:
        return skipped(f"cooldown until {_iso(cooldown_until)}")

    if request.kind is ScaleKind.OUT:
        if current >= bounds.high:
            where = "at" if current == bounds.high else f"{current}, above"
            return skipped(f"already {where} maximum ({bounds.high})")
        wanted = current + policy.scale_out_step
    elif request.kind is ScaleKind.IN:
        if current <= bounds.low:
            where = "at" if current == bounds.low else f"{current}, below"
            return skipped(f"already {where} {bounds.at_low()}")
        wanted = current - policy.scale_in_step
    else:
        amount = request.amount or 0
        wanted = amount if request.kind is ScaleKind.EXACT else current + amount
        if request.source is ScaleSource.MANUAL and not (
            policy.min_capacity <= wanted <= policy.max_capacity
        ):
            return skipped(
                f"capacity {wanted} is outside the allowed range "
                f"{policy.min_capacity}-{policy.max_capacity}"
            )

    target = bounds.clamp(wanted)
    if target == current:
        if target != wanted:
            return skipped(f"already at {bounds.at_low()}")
        return skipped(f"capacity already {current}")
    note = ""
    if target < wanted:
        note = f"limited to maximum {bounds.high}"
    elif target > wanted:
        verb = "limited" if request.kind is ScaleKind.IN else "raised"
        note = f"{verb} to {bounds.low_name()}"
    return applied(target, "; ".join(part for part in (request.reason, note) if part))


def _repair_reason(current: int, bounds: _Bounds) -> str:
    if current > bounds.high:
        return f"drift: {current} above maximum {bounds.high}"
    if bounds.window is None:
        return f"drift: {current} below minimum {bounds.low}"
    return bounds.low_name()


def timer_request(current: int, policy: ScalingPolicy, now: datetime) -> ScaleRequest | None:
    """What the scaling timer asks for: a schedule-floor raise or a drift repair, or nothing.

    The reason says which, e.g. `schedule floor 4 (Mon-Fri 08:00-19:00 Europe/Lisbon)` or
    `drift: 12 above maximum 10`.
    """
    _require_aware(now, "now")
    bounds = _Bounds(policy, now)
    target = bounds.clamp(current)
    if target == current:
        return None
    return ScaleRequest(
        kind=ScaleKind.EXACT,
        amount=target,
        source=ScaleSource.TIMER,
        source_id=f"timer:{_iso(now)}",
        received_at=now,
        rule=None,
        reason=_repair_reason(current, bounds),
    )


def clamp_for_redeploy(live_capacity: int | None, policy: ScalingPolicy, initial: int) -> int:
    """The capacity to write when a spec is applied: the live one clamped into the new bounds,
    so a redeploy never undoes scaling, or `initial` for a new scale set."""
    capacity = initial if live_capacity is None else live_capacity
    return min(max(capacity, policy.min_capacity), policy.max_capacity)


# --- Coalescing ------------------------------------------------------------------------------


def withdraw(pending: Sequence[ScaleRequest], alert_id: str) -> tuple[ScaleRequest, ...]:
    """The pending requests left once the `Resolved` notification of alert `alert_id` withdraws
    the requests of that alert (Fired and Resolved share `alertId`); other alerts of the same
    rule keep theirs. Ids are compared case-insensitively, as ARM compares resource ids.
    """
    key = alert_id.casefold()
    return tuple(
        request
        for request in pending
        if not (request.source is ScaleSource.ALERT and request.source_id.casefold() == key)
    )


def coalesce(
    pending: Sequence[ScaleRequest], now: datetime, cooldown_until: datetime | None
) -> Coalesced:
    """Pick the one request to decide now from `pending` (in arrival order).

    Manual requests come first, composed in arrival order (a later exact capacity replaces the
    earlier requests, deltas add up); alerts that arrived before the latest manual request are
    superseded by it. Otherwise a timer request (the latest: a repair, the earlier ones say the
    same). Otherwise the alerts merge into one step, as Azure autoscale does: any scale out wins
    over the scale ins. During the cooldown alerts are never decided: they stay pending, and so
    do requests of a lower rank than the one decided now.
    """
    _require_aware(now, "now")
    in_cooldown = cooldown_until is not None and now < cooldown_until
    last_manual = max(
        (i for i, r in enumerate(pending) if r.source is ScaleSource.MANUAL), default=-1
    )
    manual = [r for r in pending if r.source is ScaleSource.MANUAL]
    timers = [r for r in pending if r.source is ScaleSource.TIMER]
    alerts = [(i, r) for i, r in enumerate(pending) if r.source is ScaleSource.ALERT]

    request: ScaleRequest | None
    dropped: list[tuple[ScaleRequest, str]] = []
    if manual:
        request, dropped = _compose_manual(manual)
        superseded = f"superseded by manual request {manual[-1].source_id}"
        dropped += [(r, superseded) for i, r in alerts if i < last_manual]
    elif timers:
        request = timers[-1]
        dropped = [(r, f"superseded by timer request {request.source_id}") for r in timers[:-1]]
    elif in_cooldown:
        request = None
    else:
        outs = [r for _, r in alerts if r.kind is ScaleKind.OUT]
        if outs:
            wins = f"scale-out alert {outs[-1].source_id} wins over scale in"
            dropped = [(r, wins) for _, r in alerts if r.kind is ScaleKind.IN]
        request = _merge(outs or [r for _, r in alerts]) if alerts else None

    if dropped or len(pending) > 1:
        settled = len(dropped) + (len(request.covers) if request else 0)
        logger.debug(
            "coalesced %d requests: %s decided now, %d dropped, %d pending",
            len(pending),
            request.source_id if request else "none",
            len(dropped),
            len(pending) - settled,
        )
    return Coalesced(request, tuple(dropped))


def _compose_manual(
    manual: list[ScaleRequest],
) -> tuple[ScaleRequest, list[tuple[ScaleRequest, str]]]:
    latest = manual[-1]
    # Requests before the latest exact capacity are replaced by it; deltas after it add up.
    start = max((i for i, r in enumerate(manual) if r.kind is ScaleKind.EXACT), default=0)
    dropped = [
        (r, f"superseded by manual request {manual[start].source_id}") for r in manual[:start]
    ]
    kept = manual[start:]
    if len(kept) == 1:
        return kept[0], dropped
    exact = kept[0].kind is ScaleKind.EXACT
    amount = sum(r.amount or 0 for r in kept)
    merged = dataclasses.replace(
        latest,
        kind=ScaleKind.EXACT if exact else ScaleKind.DELTA,
        amount=amount,
        reason=f"{latest.reason} (with {_count(len(kept) - 1, 'earlier manual request')})",
        merged_from=tuple(kept),
    )
    return merged, dropped


def _merge(alerts: list[ScaleRequest]) -> ScaleRequest:
    latest = alerts[-1]
    total = sum(request.count for request in alerts)
    if total == 1:
        return latest
    return dataclasses.replace(
        latest,
        reason=f"{latest.reason} (and {_count(total - 1, 'more alert')})",
        merged_from=tuple(alerts),
        count=1,
    )


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"


def fates(batch: Coalesced, decision: Decision | None) -> tuple[Fate, ...]:
    """The record of every request `batch` settled (not its pending ones).

    The decided request's latest original gets the decision's outcome; the others it stands
    for, and the superseded ones, are `coalesced`.
    """
    records = [Fate(request, Outcome.COALESCED, why, None, None) for request, why in batch.dropped]
    if decision is None:
        return tuple(records)
    *others, representative = decision.covers
    records.extend(
        Fate(
            request,
            Outcome.COALESCED,
            f"coalesced into {representative.source} request {representative.source_id}",
            decision.from_capacity,
            decision.to_capacity,
        )
        for request in others
    )
    records.append(
        Fate(
            representative,
            decision.outcome,
            decision.reason,
            decision.from_capacity,
            decision.to_capacity,
        )
    )
    return tuple(records)


def _iso(moment: datetime) -> str:
    return utc_z(moment)


def _require_aware(moment: datetime, what: str) -> None:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{what} must be an aware datetime, not {moment!r}")

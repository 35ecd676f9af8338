"""The scaling arithmetic: schedules (DST included), decisions, coalescing, withdrawal."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from outsystems.policy import WEEKDAYS, ScalingPolicy, ScheduleWindow
from outsystems.scaling import (
    Coalesced,
    Decision,
    Outcome,
    ScaleKind,
    ScaleRequest,
    ScaleSource,
    active_windows,
    clamp_for_redeploy,
    coalesce,
    decide,
    describe_window,
    fates,
    schedule_floor,
    timer_request,
    withdraw,
)

WORKDAYS = frozenset({"Mon", "Tue", "Wed", "Thu", "Fri"})
BUSINESS = ScheduleWindow(WORKDAYS, time(8), time(19), "Europe/Lisbon", 4)
BUSINESS_TEXT = "Mon-Fri 08:00-19:00 Europe/Lisbon"
POLICY = ScalingPolicy(2, 10, scale_out_step=2, scale_in_step=1, cooldown_minutes=10)
SCHEDULED = dataclasses.replace(POLICY, schedules=(BUSINESS,))
STEP_1 = dataclasses.replace(SCHEDULED, scale_out_step=1)
STEP_IN_2 = dataclasses.replace(SCHEDULED, scale_in_step=2)
NO_COOLDOWN = dataclasses.replace(POLICY, cooldown_minutes=0)
# Refused by policy_errors, so only a corrupted path could bring it; the maximum still wins.
FLOOR_ABOVE_MAX = dataclasses.replace(
    POLICY, schedules=(dataclasses.replace(BUSINESS, min_capacity=12),)
)

NIGHT = datetime(2024, 6, 5, 3, 0, tzinfo=UTC)  # Wed 04:00 in Lisbon: no window
DAY = datetime(2024, 6, 5, 10, 0, tzinfo=UTC)  # Wed 11:00 in Lisbon: business hours
SOON = NIGHT + timedelta(minutes=5)
PAST = NIGHT - timedelta(minutes=1)


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def alert(kind: str, n: int = 0, rule: str | None = "cpu-high", at: datetime = NIGHT):
    return ScaleRequest(
        ScaleKind(kind), None, ScaleSource.ALERT, f"a{n}", at, rule, f"CPU {kind} {n}"
    )


def manual(kind: str, amount: int, n: int = 0, at: datetime = NIGHT) -> ScaleRequest:
    return ScaleRequest(
        ScaleKind(kind), amount, ScaleSource.MANUAL, f"m{n}", at, None, f"by admin {n}"
    )


def timer(amount: int = 4, n: int = 0, at: datetime = NIGHT) -> ScaleRequest:
    return ScaleRequest(ScaleKind.EXACT, amount, ScaleSource.TIMER, f"t{n}", at, None, "tick")


# --- schedules -------------------------------------------------------------------------------


def window(days: str, start: str, end: str, zone: str, floor: int = 4) -> ScheduleWindow:
    return ScheduleWindow(
        frozenset(days.split(",")), time.fromisoformat(start), time.fromisoformat(end), zone, floor
    )


FRI_NIGHT = window("Fri", "22:00", "02:00", "UTC")
LISBON_SPRING = window("Sun", "01:30", "03:00", "Europe/Lisbon")
LISBON_FALL_END = window("Sun", "00:00", "01:30", "Europe/Lisbon")
LISBON_FALL_START = window("Sun", "01:30", "03:00", "Europe/Lisbon")
NY_SPRING = window("Sun", "02:30", "04:00", "America/New_York")
NY_SPRING_END = window("Sat", "22:00", "02:30", "America/New_York")
NY_FALL_END = window("Sat", "20:00", "01:30", "America/New_York")
NY_FALL_START = window("Sun", "01:30", "03:00", "America/New_York")
ALL_DAY = window("Wed", "06:00", "06:00", "UTC")
TOKYO = window("Mon", "08:00", "09:00", "Asia/Tokyo")


@pytest.mark.parametrize(
    ("win", "now", "active"),
    [
        pytest.param(BUSINESS, DAY, True, id="business-hours"),
        pytest.param(BUSINESS, NIGHT, False, id="business-night"),
        pytest.param(BUSINESS, utc("2024-06-05 07:00"), True, id="start-inclusive"),
        pytest.param(BUSINESS, utc("2024-06-05 06:59:59"), False, id="before-start"),
        pytest.param(BUSINESS, utc("2024-06-05 18:00"), False, id="end-exclusive"),
        pytest.param(BUSINESS, utc("2024-06-08 10:00"), False, id="saturday"),
        pytest.param(BUSINESS, utc("2024-01-10 08:30"), True, id="winter-offset"),
        pytest.param(BUSINESS, utc("2024-01-10 07:30"), False, id="winter-before"),
        pytest.param(FRI_NIGHT, utc("2024-06-08 01:00"), True, id="midnight-sat-0100"),
        pytest.param(FRI_NIGHT, utc("2024-06-07 23:00"), True, id="midnight-fri-2300"),
        pytest.param(FRI_NIGHT, utc("2024-06-08 02:00"), False, id="midnight-end"),
        pytest.param(FRI_NIGHT, utc("2024-06-07 01:00"), False, id="midnight-fri-0100"),
        pytest.param(FRI_NIGHT, utc("2024-06-06 23:00"), False, id="midnight-thu"),
        pytest.param(ALL_DAY, utc("2024-06-06 05:59"), True, id="24h-next-morning"),
        pytest.param(ALL_DAY, utc("2024-06-06 06:00"), False, id="24h-end"),
        pytest.param(ALL_DAY, utc("2024-06-05 05:59"), False, id="24h-before"),
        pytest.param(TOKYO, utc("2024-06-02 23:30"), True, id="zone-day-not-utc-day"),
        pytest.param(TOKYO, utc("2024-06-03 23:30"), False, id="zone-next-day"),
        # Lisbon springs forward on 2024-03-31 at 01:00 UTC: 01:00 WET -> 02:00 WEST.
        pytest.param(LISBON_SPRING, utc("2024-03-31 00:59"), False, id="lis-spring-before"),
        pytest.param(LISBON_SPRING, utc("2024-03-31 01:00"), True, id="lis-spring-jump"),
        pytest.param(LISBON_SPRING, utc("2024-03-31 01:59"), True, id="lis-spring-0259"),
        pytest.param(LISBON_SPRING, utc("2024-03-31 02:00"), False, id="lis-spring-end"),
        # Lisbon falls back on 2024-10-27 at 01:00 UTC: 02:00 WEST -> 01:00 WET.
        pytest.param(LISBON_FALL_END, utc("2024-10-27 00:45"), True, id="lis-fall-first-0145"),
        pytest.param(LISBON_FALL_END, utc("2024-10-27 01:15"), True, id="lis-fall-second-0115"),
        pytest.param(LISBON_FALL_END, utc("2024-10-27 01:30"), False, id="lis-fall-end-twice"),
        pytest.param(LISBON_FALL_START, utc("2024-10-27 00:29"), False, id="lis-fall-pre"),
        pytest.param(LISBON_FALL_START, utc("2024-10-27 00:30"), True, id="lis-fall-start-1st"),
        pytest.param(LISBON_FALL_START, utc("2024-10-27 02:59"), True, id="lis-fall-0259"),
        pytest.param(LISBON_FALL_START, utc("2024-10-27 03:00"), False, id="lis-fall-0300"),
        # New York springs forward on 2024-03-10 at 07:00 UTC: 02:00 EST -> 03:00 EDT.
        pytest.param(NY_SPRING, utc("2024-03-10 06:59"), False, id="ny-spring-before"),
        pytest.param(NY_SPRING, utc("2024-03-10 07:00"), True, id="ny-spring-jump"),
        pytest.param(NY_SPRING, utc("2024-03-10 07:59"), True, id="ny-spring-0359"),
        pytest.param(NY_SPRING, utc("2024-03-10 08:00"), False, id="ny-spring-end"),
        pytest.param(NY_SPRING_END, utc("2024-03-10 06:59"), True, id="ny-end-in-gap-before"),
        pytest.param(NY_SPRING_END, utc("2024-03-10 07:00"), False, id="ny-end-in-gap-jump"),
        # New York falls back on 2024-11-03 at 06:00 UTC: 02:00 EDT -> 01:00 EST.
        pytest.param(NY_FALL_END, utc("2024-11-03 05:45"), True, id="ny-fall-0145-edt"),
        pytest.param(NY_FALL_END, utc("2024-11-03 06:29"), True, id="ny-fall-0129-est"),
        pytest.param(NY_FALL_END, utc("2024-11-03 06:30"), False, id="ny-fall-end-second"),
        pytest.param(NY_FALL_START, utc("2024-11-03 05:29"), False, id="ny-fall-pre"),
        pytest.param(NY_FALL_START, utc("2024-11-03 05:30"), True, id="ny-fall-start-first"),
        pytest.param(NY_FALL_START, utc("2024-11-03 07:59"), True, id="ny-fall-0259-est"),
        pytest.param(NY_FALL_START, utc("2024-11-03 08:00"), False, id="ny-fall-0300-est"),
    ],
)
def test_window_activity(win: ScheduleWindow, now: datetime, active: bool) -> None:
    policy = dataclasses.replace(POLICY, schedules=(win,))

    assert schedule_floor(policy, now) == (win.min_capacity if active else None)
    assert (active_windows(policy, now) == (win,)) is active


# Away from the hours the clocks change (01:00-03:00 in these zones), a window is the plain
# wall-clock rule in its zone.
CALM = st.times(time(4), time(23, 59, 59))


@settings(max_examples=300, deadline=None)
@given(
    st.sets(st.sampled_from(WEEKDAYS)),
    CALM,
    CALM,
    st.datetimes(datetime(2020, 1, 1), datetime(2030, 1, 1), timezones=st.just(UTC)),
    st.sampled_from(["UTC", "Europe/Lisbon", "America/New_York"]),
)
def test_away_from_dst_hours_a_window_is_the_plain_wall_clock_rule(
    days: set[str], start: time, end: time, now: datetime, zone: str
) -> None:
    win = ScheduleWindow(frozenset(days), start, end, zone, 3)
    local = now.astimezone(ZoneInfo(zone))
    clock, today = local.time(), WEEKDAYS[local.weekday()]
    yesterday = WEEKDAYS[(local.weekday() - 1) % 7]
    if end > start:
        expected = today in days and start <= clock < end
    else:
        expected = (today in days and clock >= start) or (yesterday in days and clock < end)

    policy = dataclasses.replace(POLICY, schedules=(win,))
    assert (schedule_floor(policy, now) == 3) is expected


def test_the_highest_of_several_active_windows_is_the_floor() -> None:
    evening = window("Wed", "10:00", "12:00", "UTC", floor=7)
    weekend = window("Sat,Sun", "00:00", "00:00", "UTC", floor=9)
    policy = dataclasses.replace(POLICY, schedules=(BUSINESS, evening, weekend))

    assert schedule_floor(policy, DAY) == 7
    assert active_windows(policy, DAY) == (BUSINESS, evening)
    assert schedule_floor(policy, utc("2024-06-05 12:30")) == 4
    assert schedule_floor(policy, utc("2024-06-09 12:30")) == 9
    assert schedule_floor(policy, NIGHT) is None


@pytest.mark.parametrize(
    ("days", "text"),
    [
        ("Mon,Tue,Wed,Thu,Fri", "Mon-Fri"),
        ("Mon,Wed,Fri", "Mon,Wed,Fri"),
        ("Sat,Sun", "Sat-Sun"),
        (",".join(WEEKDAYS), "Mon-Sun"),
        ("Mon,Tue,Thu", "Mon-Tue,Thu"),
        ("", "never"),
    ],
)
def test_describe_window(days: str, text: str) -> None:
    win = ScheduleWindow(
        frozenset(filter(None, days.split(","))), time(8), time(19, 0, 30), "UTC", 1
    )
    assert describe_window(win) == f"{text} 08:00-19:00:30 UTC"


def test_naive_times_are_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        schedule_floor(SCHEDULED, datetime(2024, 6, 5, 10))
    with pytest.raises(ValueError, match="aware"):
        alert("out", at=datetime(2024, 6, 5, 10))


# --- decide ----------------------------------------------------------------------------------

COOLING = NIGHT + timedelta(minutes=10)


@pytest.mark.parametrize(
    ("current", "policy", "request_", "now", "cooldown", "target", "reason", "cools"),
    [
        # alerts: steps, bounds, cooldown
        pytest.param(4, POLICY, alert("out"), NIGHT, None, 6, "CPU out 0", True, id="out"),
        pytest.param(4, POLICY, alert("in"), NIGHT, None, 3, "CPU in 0", True, id="in"),
        pytest.param(
            9,
            POLICY,
            alert("out"),
            NIGHT,
            None,
            10,
            "CPU out 0; limited to maximum 10",
            True,
            id="out-limited",
        ),
        pytest.param(
            10,
            POLICY,
            alert("out"),
            NIGHT,
            None,
            None,
            "already at maximum (10)",
            False,
            id="out-at-max",
        ),
        pytest.param(
            12,
            POLICY,
            alert("out"),
            NIGHT,
            None,
            None,
            "already 12, above maximum (10)",
            False,
            id="out-above-max",
        ),
        pytest.param(
            2,
            POLICY,
            alert("in"),
            NIGHT,
            None,
            None,
            "already at minimum (2)",
            False,
            id="in-at-min",
        ),
        pytest.param(
            1,
            POLICY,
            alert("in"),
            NIGHT,
            None,
            None,
            "already 1, below minimum (2)",
            False,
            id="in-below-min",
        ),
        pytest.param(
            12,
            POLICY,
            alert("in"),
            NIGHT,
            None,
            10,
            "CPU in 0; limited to maximum 10",
            True,
            id="in-from-above-max",
        ),
        pytest.param(
            4,
            SCHEDULED,
            alert("in"),
            DAY,
            None,
            None,
            f"already at schedule floor (4, {BUSINESS_TEXT})",
            False,
            id="in-at-schedule-floor",
        ),
        pytest.param(
            5,
            STEP_IN_2,
            alert("in"),
            DAY,
            None,
            4,
            f"CPU in 0; limited to schedule floor 4 ({BUSINESS_TEXT})",
            True,
            id="in-limited-by-schedule",
        ),
        pytest.param(
            2,
            STEP_1,
            alert("out"),
            DAY,
            None,
            4,
            f"CPU out 0; raised to schedule floor 4 ({BUSINESS_TEXT})",
            True,
            id="out-below-schedule-floor",
        ),
        pytest.param(4, SCHEDULED, alert("in"), NIGHT, None, 3, "CPU in 0", True, id="in-night"),
        pytest.param(
            4,
            POLICY,
            alert("out"),
            NIGHT,
            SOON,
            None,
            "cooldown until 2024-06-05T03:05:00Z",
            False,
            id="cooldown-active",
        ),
        pytest.param(
            4,
            POLICY,
            alert("in"),
            NIGHT,
            SOON,
            None,
            "cooldown until 2024-06-05T03:05:00Z",
            False,
            id="cooldown-active-in",
        ),
        pytest.param(4, POLICY, alert("out"), NIGHT, NIGHT, 6, "CPU out 0", True, id="cd-ends"),
        pytest.param(4, POLICY, alert("out"), NIGHT, PAST, 6, "CPU out 0", True, id="cd-past"),
        pytest.param(
            4, NO_COOLDOWN, alert("out"), NIGHT, None, 6, "CPU out 0", False, id="no-cooldown"
        ),
        # manual: exact and delta, bounds refused, floors raise, cooldown ignored
        pytest.param(4, POLICY, manual("exact", 7), NIGHT, None, 7, "by admin 0", False, id="m-7"),
        pytest.param(
            4, POLICY, manual("exact", 7), NIGHT, SOON, 7, "by admin 0", False, id="m-in-cooldown"
        ),
        pytest.param(
            4, POLICY, manual("exact", 10), NIGHT, None, 10, "by admin 0", False, id="m-max"
        ),
        pytest.param(
            4, POLICY, manual("exact", 2), NIGHT, None, 2, "by admin 0", False, id="m-min"
        ),
        pytest.param(
            4,
            POLICY,
            manual("exact", 11),
            NIGHT,
            None,
            None,
            "capacity 11 is outside the allowed range 2-10",
            False,
            id="m-above",
        ),
        pytest.param(
            4,
            POLICY,
            manual("exact", 1),
            NIGHT,
            None,
            None,
            "capacity 1 is outside the allowed range 2-10",
            False,
            id="m-below",
        ),
        pytest.param(
            4, POLICY, manual("delta", 3), NIGHT, None, 7, "by admin 0", False, id="m-delta"
        ),
        pytest.param(
            4, POLICY, manual("delta", -2), NIGHT, None, 2, "by admin 0", False, id="m-delta-down"
        ),
        pytest.param(
            4,
            POLICY,
            manual("delta", -3),
            NIGHT,
            None,
            None,
            "capacity 1 is outside the allowed range 2-10",
            False,
            id="m-delta-below",
        ),
        pytest.param(
            9,
            POLICY,
            manual("delta", 2),
            NIGHT,
            None,
            None,
            "capacity 11 is outside the allowed range 2-10",
            False,
            id="m-delta-above",
        ),
        pytest.param(
            4,
            POLICY,
            manual("delta", 0),
            NIGHT,
            None,
            None,
            "capacity already 4",
            False,
            id="m-delta-zero",
        ),
        pytest.param(
            4,
            POLICY,
            manual("exact", 4),
            NIGHT,
            None,
            None,
            "capacity already 4",
            False,
            id="m-same",
        ),
        pytest.param(
            2,
            SCHEDULED,
            manual("exact", 3),
            DAY,
            None,
            4,
            f"by admin 0; raised to schedule floor 4 ({BUSINESS_TEXT})",
            False,
            id="m-raised-to-floor",
        ),
        pytest.param(
            4,
            SCHEDULED,
            manual("exact", 3),
            DAY,
            None,
            None,
            f"already at schedule floor (4, {BUSINESS_TEXT})",
            False,
            id="m-held-by-floor",
        ),
        pytest.param(
            4, SCHEDULED, manual("exact", 3), NIGHT, None, 3, "by admin 0", False, id="m-night"
        ),
        # timer: schedule floors and drift, whatever amount it was computed with
        pytest.param(
            2,
            SCHEDULED,
            timer(),
            DAY,
            SOON,
            4,
            f"schedule floor 4 ({BUSINESS_TEXT})",
            False,
            id="t-floor-in-cooldown",
        ),
        pytest.param(
            12,
            POLICY,
            timer(10),
            NIGHT,
            None,
            10,
            "drift: 12 above maximum 10",
            False,
            id="t-drift-above",
        ),
        pytest.param(
            1,
            POLICY,
            timer(2),
            NIGHT,
            None,
            2,
            "drift: 1 below minimum 2",
            False,
            id="t-drift-below",
        ),
        pytest.param(
            1,
            SCHEDULED,
            timer(2),
            DAY,
            None,
            4,
            f"schedule floor 4 ({BUSINESS_TEXT})",
            False,
            id="t-below-both",
        ),
        pytest.param(
            6,
            SCHEDULED,
            timer(4),
            DAY,
            None,
            None,
            "capacity 6 already within 4-10",
            False,
            id="t-stale-never-scales-in",
        ),
        pytest.param(
            3,
            SCHEDULED,
            timer(4),
            NIGHT,
            None,
            None,
            "capacity 3 already within 2-10",
            False,
            id="t-window-over",
        ),
        pytest.param(
            5,
            FLOOR_ABOVE_MAX,
            timer(10),
            DAY,
            None,
            10,
            "schedule floor 10",
            False,
            id="t-floor-capped-by-max",
        ),
    ],
)
def test_decide(
    current: int,
    policy: ScalingPolicy,
    request_: ScaleRequest,
    now: datetime,
    cooldown: datetime | None,
    target: int | None,
    reason: str,
    cools: bool,
) -> None:
    decision = decide(current, policy, request_, now, cooldown)

    assert decision.target == target
    assert decision.outcome is (Outcome.SKIPPED if target is None else Outcome.APPLIED)
    assert decision.reason.startswith(reason)
    assert decision.from_capacity == current
    assert decision.starts_cooldown is cools
    expected_until = now + timedelta(minutes=policy.cooldown_minutes) if cools else cooldown
    assert decision.cooldown_until == expected_until
    assert decision.covers == (request_,)


def test_decision_direction() -> None:
    assert decide(4, POLICY, alert("out"), NIGHT, None).direction == "out"
    assert decide(4, POLICY, manual("exact", 2), NIGHT, None).direction == "in"
    assert decide(10, POLICY, alert("out"), NIGHT, None).direction == "out"
    assert decide(4, POLICY, manual("exact", 4), NIGHT, None).direction == "exact"


@st.composite
def situations(draw: st.DrawFn) -> tuple[int, ScalingPolicy, ScaleRequest, datetime]:
    low = draw(st.integers(0, 20))
    high = draw(st.integers(low, 30))
    floor = draw(st.integers(0, high))
    policy = ScalingPolicy(
        low,
        high,
        scale_out_step=draw(st.integers(1, 5)),
        scale_in_step=draw(st.integers(1, 5)),
        schedules=(dataclasses.replace(BUSINESS, min_capacity=floor),),
    )
    now = draw(st.sampled_from([DAY, NIGHT]))
    source = draw(st.sampled_from(ScaleSource))
    kinds = {
        ScaleSource.ALERT: [ScaleKind.OUT, ScaleKind.IN],
        ScaleSource.MANUAL: [ScaleKind.EXACT, ScaleKind.DELTA],
        ScaleSource.TIMER: [ScaleKind.EXACT],
    }[source]
    kind = draw(st.sampled_from(kinds))
    amount = None if kind in (ScaleKind.OUT, ScaleKind.IN) else draw(st.integers(-40, 40))
    request = ScaleRequest(kind, amount, source, "r", NIGHT, None, "")
    return draw(st.integers(0, 40)), policy, request, now


@settings(max_examples=400, deadline=None)
@given(situations())
def test_an_applied_decision_always_lands_inside_the_bounds(
    situation: tuple[int, ScalingPolicy, ScaleRequest, datetime],
) -> None:
    current, policy, request, now = situation
    decision = decide(current, policy, request, now, None)

    if decision.target is None:
        assert decision.outcome is Outcome.SKIPPED
        return
    assert decision.target != current
    floor = max(policy.min_capacity, schedule_floor(policy, now) or 0)
    assert floor <= decision.target <= policy.max_capacity
    if request.kind is ScaleKind.OUT:
        assert decision.target > current
    if request.kind is ScaleKind.IN:
        assert decision.target < current
    if request.source is ScaleSource.MANUAL:
        assert request.amount is not None
        wanted = request.amount if request.kind is ScaleKind.EXACT else current + request.amount
        assert policy.min_capacity <= wanted <= policy.max_capacity


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (
            lambda: ScaleRequest(ScaleKind.EXACT, None, ScaleSource.MANUAL, "m", NIGHT, None, ""),
            "needs an amount",
        ),
        (
            lambda: ScaleRequest(ScaleKind.OUT, 2, ScaleSource.ALERT, "a", NIGHT, None, ""),
            "step from the policy",
        ),
        (
            lambda: ScaleRequest(ScaleKind.EXACT, 2, ScaleSource.ALERT, "a", NIGHT, None, ""),
            "alert request is a scale out",
        ),
        (
            lambda: ScaleRequest(ScaleKind.OUT, None, ScaleSource.MANUAL, "m", NIGHT, None, ""),
            "manual request sets",
        ),
    ],
)
def test_malformed_requests_are_refused(build, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build()


# --- timer requests and redeploys ------------------------------------------------------------


@pytest.mark.parametrize(
    ("current", "policy", "now", "amount", "reason"),
    [
        (2, SCHEDULED, DAY, 4, f"schedule floor 4 ({BUSINESS_TEXT})"),
        (1, SCHEDULED, DAY, 4, f"schedule floor 4 ({BUSINESS_TEXT})"),
        (1, SCHEDULED, NIGHT, 2, "drift: 1 below minimum 2"),
        (12, SCHEDULED, DAY, 10, "drift: 12 above maximum 10"),
        (12, POLICY, NIGHT, 10, "drift: 12 above maximum 10"),
        (4, SCHEDULED, DAY, None, None),
        (2, SCHEDULED, NIGHT, None, None),
        (10, POLICY, NIGHT, None, None),
    ],
)
def test_timer_request(
    current: int, policy: ScalingPolicy, now: datetime, amount: int | None, reason: str | None
) -> None:
    request = timer_request(current, policy, now)

    if amount is None:
        assert request is None
        return
    assert request == ScaleRequest(
        ScaleKind.EXACT,
        amount,
        ScaleSource.TIMER,
        f"timer:{now.isoformat().replace('+00:00', 'Z')}",
        now,
        None,
        reason or "",
    )
    assert decide(current, policy, request, now, None).target == amount


@pytest.mark.parametrize(
    ("live", "policy", "initial", "expected"),
    [
        (None, POLICY, 3, 3),
        (None, POLICY, 20, 10),
        (None, POLICY, 0, 2),
        (7, POLICY, 3, 7),
        (12, POLICY, 3, 10),
        (1, POLICY, 3, 2),
        (0, ScalingPolicy(0, 5), 2, 0),
    ],
)
def test_clamp_for_redeploy(
    live: int | None, policy: ScalingPolicy, initial: int, expected: int
) -> None:
    assert clamp_for_redeploy(live, policy, initial) == expected


# --- coalescing ------------------------------------------------------------------------------


def left_pending(batch: Coalesced, pending: Sequence[ScaleRequest]) -> tuple[ScaleRequest, ...]:
    """The requests of `pending` the batch neither decides now nor supersedes: those the scaler
    leaves stored (no fate recorded) for a later round."""
    settled = [r for r, _ in batch.dropped] + list(batch.request.covers if batch.request else ())
    return tuple(r for r in pending if not any(r is s for s in settled))


def test_an_alert_storm_makes_one_step() -> None:
    storm = [alert("out", n) for n in range(1000)]

    batch = coalesce(storm, NIGHT, None)
    assert batch.request is not None
    assert batch.request.kind is ScaleKind.OUT
    assert batch.request.covers == tuple(storm)
    assert batch.request.reason == "CPU out 999 (and 999 more alerts)"
    assert batch.dropped == ()
    assert left_pending(batch, storm) == ()

    decision = decide(4, POLICY, batch.request, NIGHT, None)
    assert (decision.target, decision.starts_cooldown) == (6, True)

    records = fates(batch, decision)
    assert len(records) == 1000
    assert [r.outcome for r in records].count(Outcome.COALESCED) == 999
    assert records[-1].request == storm[-1]
    assert records[-1].outcome is Outcome.APPLIED
    assert records[0].reason == "coalesced into alert request a999"
    assert {(r.from_capacity, r.to_capacity) for r in records} == {(4, 6)}


def test_any_scale_out_wins_over_scale_ins() -> None:
    pending = [alert("in", 0), alert("out", 1), alert("in", 2), alert("in", 3)]

    batch = coalesce(pending, NIGHT, None)

    assert batch.request == pending[1]
    assert [r for r, _ in batch.dropped] == [pending[0], pending[2], pending[3]]
    assert {why for _, why in batch.dropped} == {"scale-out alert a1 wins over scale in"}
    assert left_pending(batch, pending) == ()


def test_scale_ins_merge_into_one_step_in() -> None:
    pending = [alert("in", n) for n in range(3)]

    batch = coalesce(pending, NIGHT, None)

    assert batch.request is not None
    assert batch.request.kind is ScaleKind.IN
    assert batch.request.covers == tuple(pending)
    assert decide(6, POLICY, batch.request, NIGHT, None).target == 5


@pytest.mark.parametrize(
    ("cooldown", "waits"),
    [(SOON, True), (NIGHT, False), (PAST, False), (None, False)],
    ids=["active", "ends-now", "expired", "none"],
)
def test_alerts_wait_for_the_cooldown(cooldown: datetime | None, waits: bool) -> None:
    pending = [alert("out", n) for n in range(5)]

    batch = coalesce(pending, NIGHT, cooldown)

    if waits:
        assert batch == Coalesced(None, ())
        assert left_pending(batch, pending) == tuple(pending)
        assert fates(batch, None) == ()
    else:
        assert batch.request is not None
        assert batch.request.covers == tuple(pending)
        assert left_pending(batch, pending) == ()


def test_nothing_pending_decides_nothing() -> None:
    assert coalesce([], NIGHT, SOON) == Coalesced(None, ())


def test_manual_supersedes_older_alerts_and_leaves_newer_ones_pending() -> None:
    old, admin, new = alert("out", 0), manual("exact", 7, 1), alert("in", 2)

    batch = coalesce([old, admin, new], NIGHT, None)

    assert batch.request == admin
    assert batch.dropped == ((old, "superseded by manual request m1"),)
    assert left_pending(batch, [old, admin, new]) == (new,)


def test_manual_is_decided_during_the_cooldown_while_alerts_wait() -> None:
    admin, new = manual("exact", 7, 1), alert("out", 2)

    batch = coalesce([admin, new], NIGHT, SOON)

    assert batch.request == admin
    assert left_pending(batch, [admin, new]) == (new,)


@pytest.mark.parametrize(
    ("requests", "kind", "amount", "dropped", "covered"),
    [
        pytest.param(
            [manual("exact", 6, 0), manual("exact", 8, 1)],
            "exact",
            8,
            ["m0"],
            ["m1"],
            id="latest-exact-wins",
        ),
        pytest.param(
            [manual("exact", 6, 0), manual("delta", 1, 1)],
            "exact",
            7,
            [],
            ["m0", "m1"],
            id="exact-then-delta",
        ),
        pytest.param(
            [manual("delta", 1, 0), manual("delta", 2, 1)],
            "delta",
            3,
            [],
            ["m0", "m1"],
            id="deltas-add-up",
        ),
        pytest.param(
            [manual("delta", 1, 0), manual("exact", 5, 1), manual("delta", -1, 2)],
            "exact",
            4,
            ["m0"],
            ["m1", "m2"],
            id="delta-exact-delta",
        ),
    ],
)
def test_manual_requests_apply_in_arrival_order(
    requests: list[ScaleRequest], kind: str, amount: int, dropped: list[str], covered: list[str]
) -> None:
    batch = coalesce(requests, NIGHT, None)

    assert batch.request is not None
    assert (batch.request.kind, batch.request.amount) == (ScaleKind(kind), amount)
    assert [r.source_id for r, _ in batch.dropped] == dropped
    assert [r.source_id for r in batch.request.covers] == covered
    assert batch.request.source_id == requests[-1].source_id


def test_timer_is_decided_before_alerts_which_stay_pending() -> None:
    early, late, storm = timer(n=0), timer(n=1), [alert("out", n) for n in range(3)]

    batch = coalesce([early, *storm, late], DAY, None)

    assert batch.request == late
    assert batch.dropped == ((early, "superseded by timer request t1"),)
    assert left_pending(batch, [early, *storm, late]) == tuple(storm)


def test_manual_goes_before_a_timer_which_stays_pending() -> None:
    tick, admin = timer(), manual("exact", 3, 1)

    batch = coalesce([tick, admin], DAY, None)

    assert batch.request == admin
    assert left_pending(batch, [tick, admin]) == (tick,)


def test_withdraw_removes_only_the_requests_of_the_resolved_alert() -> None:
    """Issue 13.3: a Resolved withdraws the requests of the alert it resolves (Fired and
    Resolved share alertId), not every pending request of its rule."""
    cpu = [alert("out", n, rule="cpu-high") for n in range(3)]
    other = alert("out", 9, rule="memory")
    admin = manual("exact", 5)
    pending = [cpu[0], other, admin, cpu[1], cpu[2]]

    assert withdraw(pending, cpu[1].source_id.upper()) == (cpu[0], other, admin, cpu[2])
    assert withdraw(pending, "cpu-high") == tuple(pending)
    assert withdraw([admin, other], admin.source_id) == (admin, other)


def run_scaler(
    pending: Sequence[ScaleRequest],
    current: int,
    policy: ScalingPolicy,
    now: datetime,
    cooldown_until: datetime | None,
) -> tuple[int, datetime | None, list[Decision], tuple[ScaleRequest, ...], int]:
    """The loop a scaler runs over this module: drain, coalesce, decide, apply, record."""
    decisions: list[Decision] = []
    recorded = 0
    remaining: tuple[ScaleRequest, ...] = tuple(pending)
    while True:
        batch = coalesce(remaining, now, cooldown_until)
        decision = (
            None
            if batch.request is None
            else decide(current, policy, batch.request, now, cooldown_until)
        )
        recorded += len(fates(batch, decision))
        remaining = left_pending(batch, remaining)
        if decision is None:
            return current, cooldown_until, decisions, remaining, recorded
        decisions.append(decision)
        current = decision.to_capacity
        cooldown_until = decision.cooldown_until


def test_the_scaler_loop_settles_every_request_once() -> None:
    storm = [alert("out", n) for n in range(200)]
    admin = manual("exact", 3, 500, at=NIGHT)
    late = [alert("in", n) for n in range(600, 650)]
    pending = [*storm, admin, timer(n=700), *late]

    current, until, decisions, remaining, recorded = run_scaler(pending, 2, SCHEDULED, DAY, None)

    # manual 3 (raised to the floor 4), then the timer finds nothing to repair, then the 50
    # scale ins are one step that the schedule floor refuses.
    assert [(d.request.source, d.target) for d in decisions] == [
        (ScaleSource.MANUAL, 4),
        (ScaleSource.TIMER, None),
        (ScaleSource.ALERT, None),
    ]
    assert (current, until, remaining) == (4, None, ())
    assert recorded == len(pending)


def test_the_scaler_loop_keeps_alerts_for_after_the_cooldown() -> None:
    first = [alert("out", n) for n in range(100)]

    current, until, decisions, remaining, _ = run_scaler(first, 4, POLICY, NIGHT, None)
    assert (current, until, len(decisions), remaining) == (6, COOLING, 1, ())

    second = [alert("out", n) for n in range(100, 300)]
    later = NIGHT + timedelta(minutes=3)
    current, until, decisions, remaining, recorded = run_scaler(second, 6, POLICY, later, until)
    assert (current, decisions, remaining, recorded) == (6, [], tuple(second), 0)

    after = COOLING + timedelta(seconds=1)
    current, until, decisions, remaining, recorded = run_scaler(remaining, 6, POLICY, after, until)
    assert current == 8
    assert until == after + timedelta(minutes=10)
    assert len(decisions) == 1
    assert recorded == 200


# --- serialization ---------------------------------------------------------------------------


def test_requests_and_decisions_survive_json() -> None:
    storm = [alert("out", n, rule=None if n % 2 else "cpu") for n in range(5)]
    batch = coalesce(storm, NIGHT, None)
    assert batch.request is not None
    decision = decide(4, POLICY, batch.request, NIGHT, None)

    request_json = json.loads(json.dumps(ScaleRequest.to_json(batch.request)))
    decision_json = json.loads(json.dumps(Decision.to_json(decision)))

    assert ScaleRequest.from_json(request_json) == batch.request
    assert ScaleRequest.from_json(request_json).covers == tuple(storm)
    assert Decision.from_json(decision_json) == decision
    assert "mergedFrom" not in ScaleRequest.to_json(storm[0])
    skipped = decide(10, POLICY, manual("delta", 0), NIGHT, SOON)
    assert Decision.from_json(json.loads(json.dumps(Decision.to_json(skipped)))) == skipped


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        ({"amount": "3"}, ValueError),
        ({"amount": True}, ValueError),
        ({"rule": 5}, ValueError),
        ({"kind": "sideways"}, ValueError),
        ({"receivedAt": "2024-06-05T03:00:00"}, ValueError),
        ({"source": "robot"}, ValueError),
        ({"sourceId": None}, ValueError),
        ({"reason": 3}, ValueError),
    ],
)
def test_malformed_request_documents_are_refused(changes: dict[str, object], error: type) -> None:
    document = {**ScaleRequest.to_json(alert("out")), **changes}
    with pytest.raises(error):
        ScaleRequest.from_json(document)


def test_fates_become_the_apis_decision_records() -> None:
    pending = [alert("in", 0), alert("out", 1), alert("out", 2)]
    batch = coalesce(pending, NIGHT, None)
    assert batch.request is not None
    decision = decide(4, POLICY, batch.request, NIGHT, None)

    records = [fate.to_record(NIGHT) for fate in fates(batch, decision)]

    assert records == [
        {
            "at": "2024-06-05T03:00:00Z",
            "source": "alert",
            "sourceId": "a0",
            "direction": "in",
            "from": None,
            "to": None,
            "outcome": "coalesced",
            "reason": "scale-out alert a2 wins over scale in",
        },
        {
            "at": "2024-06-05T03:00:00Z",
            "source": "alert",
            "sourceId": "a1",
            "direction": "out",
            "from": 4,
            "to": 6,
            "outcome": "coalesced",
            "reason": "coalesced into alert request a2",
        },
        {
            "at": "2024-06-05T03:00:00Z",
            "source": "alert",
            "sourceId": "a2",
            "direction": "out",
            "from": 4,
            "to": 6,
            "outcome": "applied",
            "reason": "CPU out 2 (and 1 more alert)",
        },
    ]


def test_composed_manual_requests_say_so() -> None:
    one = coalesce([manual("exact", 6, 0), manual("delta", 1, 1)], NIGHT, None).request
    two = coalesce([manual("delta", 1, n) for n in range(3)], NIGHT, None).request

    assert one is not None
    assert two is not None
    assert one.reason == "by admin 1 (with 1 earlier manual request)"
    assert two.reason == "by admin 2 (with 2 earlier manual requests)"

"""Timer triggers: six-field NCRONTAB schedules (or ``hh:mm:ss`` intervals), as the host runs them.

A schedule has six fields, ``second minute hour day month day-of-week``, each ``*``, a number, a
name (``Jan``, ``Mon``), a range ``a-b``, a step ``*/n`` or ``a-b/n``, or a comma list of those.
As in cron, when both day fields are restricted a time matches either. Times are UTC unless
``WEBSITE_TIME_ZONE`` names an IANA zone. With ``useMonitor`` (the default) the last and next
occurrences are kept in the task hub; an occurrence missed while the host was down fires at
start with ``IsPastDue``. ``runOnStartup`` fires once at start.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from azure.functions import meta
from azure.functions.timer import TimerRequestConverter

from localdev.host.app_loader import FunctionSpec
from localdev.host.durable.history import format_timestamp, parse_time, utcnow
from localdev.host.durable.store import TaskHubStore
from localdev.host.invoke import Invoker

logger = logging.getLogger(__name__)

_MONTH_NAMES = "jan feb mar apr may jun jul aug sep oct nov dec"
_MONTHS = {m: i + 1 for i, m in enumerate(_MONTH_NAMES.split())}
_DAYS = {d: i for i, d in enumerate(["sun", "mon", "tue", "wed", "thu", "fri", "sat"])}
_TIMESPAN = re.compile(r"^(?:(\d+)\.)?(\d{1,2}):(\d{2}):(\d{2})$")


class ScheduleError(ValueError):
    """A schedule expression that cannot be parsed."""


def _parse_value(text: str, names: dict[str, int], low: int, high: int, expression: str) -> int:
    lowered = text.lower()
    if lowered in names:
        return names[lowered]
    if not text.isdigit():
        raise ScheduleError(f"schedule '{expression}': '{text}' is not a number")
    value = int(text)
    if value == 7 and high == 6:
        value = 0  # Sunday may be written 7
    if not low <= value <= high:
        raise ScheduleError(f"schedule '{expression}': {value} outside {low}-{high}")
    return value


def _parse_field(
    text: str, low: int, high: int, names: dict[str, int], expression: str
) -> frozenset[int]:
    values: set[int] = set()
    for part in text.split(","):
        if not part:
            raise ScheduleError(f"schedule '{expression}': empty list item")
        step = 1
        if "/" in part:
            part, step_text = part.split("/", 1)
            if not step_text.isdigit() or int(step_text) == 0:
                raise ScheduleError(f"schedule '{expression}': bad step '{step_text}'")
            step = int(step_text)
        if part in ("*", "?"):
            start, end = low, high
        elif "-" in part:
            first, last = part.split("-", 1)
            start = _parse_value(first, names, low, high, expression)
            end = _parse_value(last, names, low, high, expression)
        else:
            start = _parse_value(part, names, low, high, expression)
            end = high if step > 1 else start
        if end < start:
            raise ScheduleError(f"schedule '{expression}': range {part} is reversed")
        values.update(range(start, end + 1, step))
    return frozenset(values)


@dataclass(frozen=True)
class CronSchedule:
    """A parsed six-field NCRONTAB expression."""

    expression: str
    seconds: frozenset[int]
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]
    day_any: bool
    weekday_any: bool

    @classmethod
    def parse(cls, expression: str) -> CronSchedule:
        fields = expression.split()
        if len(fields) != 6:
            raise ScheduleError(
                f"schedule '{expression}' must have six fields: "
                "second minute hour day month day-of-week"
            )
        return cls(
            expression=expression,
            seconds=_parse_field(fields[0], 0, 59, {}, expression),
            minutes=_parse_field(fields[1], 0, 59, {}, expression),
            hours=_parse_field(fields[2], 0, 23, {}, expression),
            days=_parse_field(fields[3], 1, 31, {}, expression),
            months=_parse_field(fields[4], 1, 12, _MONTHS, expression),
            weekdays=_parse_field(fields[5], 0, 6, _DAYS, expression),
            day_any=fields[3] in ("*", "?"),
            weekday_any=fields[5] in ("*", "?"),
        )

    def _day_matches(self, moment: datetime) -> bool:
        in_days = moment.day in self.days
        in_weekdays = (moment.isoweekday() % 7) in self.weekdays
        if self.day_any and self.weekday_any:
            return True
        if self.day_any:
            return in_weekdays
        if self.weekday_any:
            return in_days
        return in_days or in_weekdays

    def next_after(self, moment: datetime) -> datetime:
        """The first matching time strictly after ``moment`` (same time zone as ``moment``)."""
        candidate = moment.replace(microsecond=0) + timedelta(seconds=1)
        limit = candidate + timedelta(days=366 * 5)
        while candidate < limit:
            if candidate.month not in self.months:
                year = candidate.year + (candidate.month == 12)
                month = candidate.month % 12 + 1
                candidate = candidate.replace(
                    year=year, month=month, day=1, hour=0, minute=0, second=0
                )
                continue
            if not self._day_matches(candidate):
                candidate = (candidate + timedelta(days=1)).replace(hour=0, minute=0, second=0)
                continue
            if candidate.hour not in self.hours:
                candidate = (candidate + timedelta(hours=1)).replace(minute=0, second=0)
                continue
            if candidate.minute not in self.minutes:
                candidate = (candidate + timedelta(minutes=1)).replace(second=0)
                continue
            if candidate.second not in self.seconds:
                candidate += timedelta(seconds=1)
                continue
            return candidate
        raise ScheduleError(f"schedule '{self.expression}' never fires")


@dataclass(frozen=True)
class IntervalSchedule:
    """A ``[d.]hh:mm:ss`` TimeSpan schedule (App Service plans)."""

    expression: str
    interval: timedelta

    def next_after(self, moment: datetime) -> datetime:
        return moment + self.interval


def parse_schedule(expression: str) -> CronSchedule | IntervalSchedule:
    match = _TIMESPAN.match(expression.strip())
    if match:
        days, hours, minutes, seconds = (int(g) if g else 0 for g in match.groups())
        interval = timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)
        if interval <= timedelta(0):
            raise ScheduleError(f"schedule '{expression}' must be a positive interval")
        return IntervalSchedule(expression, interval)
    return CronSchedule.parse(expression)


def _zone() -> ZoneInfo | None:
    name = os.environ.get("WEBSITE_TIME_ZONE") or ""
    if not name or name.upper() == "UTC":
        return None
    try:
        return ZoneInfo(name)
    except (KeyError, ValueError):
        logger.warning("WEBSITE_TIME_ZONE '%s' is not an IANA zone; timers use UTC", name)
        return None


class TimerTriggers:
    """Fires the app's timer-triggered functions on their schedules."""

    def __init__(
        self,
        functions: list[FunctionSpec],
        invoker: Invoker,
        store: TaskHubStore,
        client_binding: Callable[[], str],
    ) -> None:
        self._invoker = invoker
        self._store = store
        self._client_binding = client_binding
        self._entries: list[tuple[FunctionSpec, CronSchedule | IntervalSchedule]] = []
        for spec in functions:
            self._entries.append((spec, parse_schedule(str(spec.trigger.get("schedule", "")))))
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        for spec, schedule in self._entries:
            self._tasks.append(loop.create_task(self._run(spec, schedule)))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()

    def _now(self) -> datetime:
        zone = _zone()
        now = utcnow()
        return now.astimezone(zone) if zone else now

    async def fire(self, spec: FunctionSpec, past_due: bool, last: str | None, next_: str) -> None:
        now = format_timestamp(utcnow())
        data = {
            "Schedule": {"AdjustForDST": True},
            "ScheduleStatus": {"Last": last, "Next": next_, "LastUpdated": now},
            "IsPastDue": past_due,
        }
        request = TimerRequestConverter.decode(
            meta.Datum(type="json", value=json.dumps(data)), trigger_metadata=None
        )
        arguments: dict[str, Any] = {spec.trigger_name: request}
        for binding in spec.bindings:
            if binding.get("type") == "durableClient":
                arguments[str(binding["name"])] = self._client_binding()
        try:
            await self._invoker.invoke(spec, arguments, reason=f"Timer fired at {now}")
        # A failing timer function is logged by the invoker and the schedule goes on, as in Azure.
        except Exception:
            logger.exception("Timer function '%s' failed", spec.name)

    async def _run(self, spec: FunctionSpec, schedule: CronSchedule | IntervalSchedule) -> None:
        use_monitor = self._uses_monitor(spec, schedule)
        last, stored_next = self._store.timer_status(spec.name) if use_monitor else (None, None)
        last = last or None
        now = self._now()
        next_due = schedule.next_after(now)
        if use_monitor and stored_next is not None and parse_time(stored_next) < utcnow():
            logger.info(
                "Timer '%s' missed %s while the host was down: past due", spec.name, stored_next
            )
            await self._fire_and_record(spec, schedule, True, last, use_monitor)
        elif spec.trigger.get("runOnStartup"):
            await self._fire_and_record(spec, schedule, False, last, use_monitor)
        elif use_monitor:
            self._record(spec, last, next_due)
        while True:
            now = self._now()
            next_due = schedule.next_after(now)
            await asyncio.sleep(max(0.0, (next_due - self._now()).total_seconds()))
            last_status, _ = self._store.timer_status(spec.name) if use_monitor else (None, None)
            late = (self._now() - next_due) > timedelta(seconds=60)
            await self._fire_and_record(spec, schedule, late, last_status, use_monitor)

    def _uses_monitor(self, spec: FunctionSpec, schedule: CronSchedule | IntervalSchedule) -> bool:
        """``useMonitor`` defaults to true, except for schedules firing more than once a minute."""
        configured = spec.trigger.get("useMonitor")
        if configured is not None:
            return bool(configured)
        first = schedule.next_after(self._now())
        return (schedule.next_after(first) - first) >= timedelta(minutes=1)

    async def _fire_and_record(
        self,
        spec: FunctionSpec,
        schedule: CronSchedule | IntervalSchedule,
        past_due: bool,
        last: str | None,
        use_monitor: bool,
    ) -> None:
        now = self._now()
        next_due = schedule.next_after(now)
        await self.fire(spec, past_due, last, format_timestamp(next_due))
        if use_monitor:
            self._record(spec, format_timestamp(now), next_due)

    def _record(self, spec: FunctionSpec, last: str | None, next_due: datetime) -> None:
        self._store.put_timer_status(
            spec.name,
            last or "",
            format_timestamp(next_due.astimezone(UTC)),
            format_timestamp(utcnow()),
        )

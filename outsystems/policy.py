"""The production front-end scaling policy as plain, immutable data.

The spec produces it, the topology writes it into the scale set's tags, and the scaler reads it
back from those tags; the decision arithmetic lives in `outsystems.scaling`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import time

WEEKDAYS: tuple[str, ...] = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


@dataclass(frozen=True)
class ScheduleWindow:
    """Inside the window (local time of `time_zone`) capacity never goes below `min_capacity`.

    `days` are the days on which the window *starts* (names from `WEEKDAYS`); a window whose
    `end` is not after its `start` spans midnight and ends on the following day.
    """

    days: frozenset[str]
    start: time
    end: time
    time_zone: str
    min_capacity: int


@dataclass(frozen=True)
class ScalingPolicy:
    """Bounds, steps, cooldown and schedule floors of one scale set."""

    min_capacity: int
    max_capacity: int
    scale_out_step: int = 1
    scale_in_step: int = 1
    cooldown_minutes: int = 10
    schedules: tuple[ScheduleWindow, ...] = ()

"""The app's one formatter of moments: RFC 3339 in UTC with `Z`.

Oracle: RFC 3339, section 5.6 (https://www.rfc-editor.org/rfc/rfc3339#section-5.6):
`date-time = full-date "T" full-time`, `time-secfrac = "." 1*DIGIT`, `time-offset = "Z" /
time-numoffset`; section 2: "Z" is the UTC offset.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from outsystems.times import utc_z

MOMENT = datetime(2024, 6, 5, 3, 5, 0, tzinfo=UTC)


def test_a_utc_moment_ends_in_z_with_fractions_only_when_there_are_any() -> None:
    assert utc_z(MOMENT) == "2024-06-05T03:05:00Z"
    assert utc_z(MOMENT.replace(microsecond=250000)) == "2024-06-05T03:05:00.250000Z"


def test_other_offsets_are_converted_to_utc() -> None:
    lisbon_summer = timezone(timedelta(hours=1))
    assert utc_z(datetime(2024, 6, 5, 4, 5, tzinfo=lisbon_summer)) == "2024-06-05T03:05:00Z"


def test_whole_seconds_on_request() -> None:
    moment = MOMENT.replace(microsecond=999999)
    assert utc_z(moment, seconds=True) == "2024-06-05T03:05:00Z"


def test_a_naive_moment_is_taken_as_utc() -> None:
    assert utc_z(datetime(2024, 6, 5, 3, 5)) == "2024-06-05T03:05:00Z"

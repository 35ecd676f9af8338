"""Pure pieces of the host: NCRONTAB schedules, route templates, settings, time formats."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from localdev.host.durable.history import format_status_time, format_timestamp, parse_time
from localdev.host.http import redact_url
from localdev.host.routes import RouteTemplate, RouteTemplateError
from localdev.host.settings import (
    SettingsError,
    apply_settings,
    build_config,
    resolve_references,
)
from localdev.host.timers import CronSchedule, IntervalSchedule, ScheduleError, parse_schedule

T0 = datetime(2024, 5, 6, 10, 15, 30, tzinfo=UTC)  # a Monday


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("0 */5 * * * *", datetime(2024, 5, 6, 10, 20, 0, tzinfo=UTC)),
        ("*/10 * * * * *", datetime(2024, 5, 6, 10, 15, 40, tzinfo=UTC)),
        ("0 0 9-17 * * Mon-Fri", datetime(2024, 5, 6, 11, 0, 0, tzinfo=UTC)),
        ("0 30 9 * * Sat,Sun", datetime(2024, 5, 11, 9, 30, 0, tzinfo=UTC)),
        ("0 0 0 1 Jan *", datetime(2025, 1, 1, 0, 0, 0, tzinfo=UTC)),
        ("0 0 12 29 2 *", datetime(2028, 2, 29, 12, 0, 0, tzinfo=UTC)),
        ("15,45 15 10 * * *", datetime(2024, 5, 6, 10, 15, 45, tzinfo=UTC)),
        ("0 0 0 * * 0", datetime(2024, 5, 12, 0, 0, 0, tzinfo=UTC)),
        ("0 0 0 * * 7", datetime(2024, 5, 12, 0, 0, 0, tzinfo=UTC)),
        ("0 0 0 13 * 5", datetime(2024, 5, 10, 0, 0, 0, tzinfo=UTC)),
    ],
)
def test_cron_next_occurrence(expression: str, expected: datetime) -> None:
    assert CronSchedule.parse(expression).next_after(T0) == expected


@pytest.mark.parametrize(
    "expression",
    ["* * * * *", "61 * * * * *", "0 0 25 * * *", "0 0 0 0 * *", "*/0 * * * * *", "a b c d e f"],
)
def test_bad_cron_expressions_are_refused(expression: str) -> None:
    with pytest.raises(ScheduleError):
        parse_schedule(expression)


def test_timespan_schedules() -> None:
    schedule = parse_schedule("00:05:00")
    assert isinstance(schedule, IntervalSchedule)
    assert schedule.next_after(T0) == T0 + timedelta(minutes=5)
    assert parse_schedule("1.02:00:00").next_after(T0) == T0 + timedelta(days=1, hours=2)


@given(
    st.datetimes(
        min_value=datetime(2000, 1, 1), max_value=datetime(2090, 1, 1), timezones=st.just(UTC)
    ),
    st.sampled_from(["*/7 * * * * *", "0 */13 * * * *", "30 15 */5 * * *", "0 0 0 */3 * *"]),
)
def test_cron_next_is_strictly_later_and_matches(moment: datetime, expression: str) -> None:
    schedule = CronSchedule.parse(expression)
    after = schedule.next_after(moment)
    assert after > moment
    assert after.second in schedule.seconds
    assert after.minute in schedule.minutes
    assert after.hour in schedule.hours
    assert after.day in schedule.days
    # Nothing in between matches: the second before the answer is not an occurrence.
    assert schedule.next_after(after - timedelta(seconds=1)) == after


@pytest.mark.parametrize(
    ("template", "path", "values"),
    [
        ("platforms/{solution_id}", "platforms/abc", {"solution_id": "abc"}),
        ("platforms/{solution_id}", "Platforms/abc", {"solution_id": "abc"}),
        ("platforms/{solution_id}", "platforms/abc/x", None),
        ("platforms/{solution_id}", "platforms", None),
        ("items/{id:int}", "items/12", {"id": "12"}),
        ("items/{id:int}", "items/x", None),
        (
            "items/{id:guid}",
            "items/6f9619ff-8b86-d011-b42d-00c04fc964ff",
            {"id": "6f9619ff-8b86-d011-b42d-00c04fc964ff"},
        ),
        ("opt/{value?}", "opt", {}),
        ("opt/{value=def}", "opt", {"value": "def"}),
        ("files/{*rest}", "files/a/b", {"rest": "a/b"}),
        ("files/{*rest}", "files", {}),
        ("a/{b}/c", "a/x%20y/c", {"b": "x y"}),
        ("codes/{code:regex(^[a-z]{{2}}$)}", "codes/ab", {"code": "ab"}),
    ],
)
def test_route_templates(template: str, path: str, values: dict[str, str] | None) -> None:
    assert RouteTemplate.parse(template).match(path) == values


def test_literal_routes_take_precedence() -> None:
    literal = RouteTemplate.parse("items/special")
    param = RouteTemplate.parse("items/{id}")
    catch_all = RouteTemplate.parse("items/{*rest}")
    ordered = sorted([catch_all, param, literal], key=lambda r: r.precedence)
    assert ordered == [literal, param, catch_all]


def test_bad_route_templates() -> None:
    with pytest.raises(RouteTemplateError):
        RouteTemplate.parse("a/{*rest}/b")
    with pytest.raises(RouteTemplateError):
        RouteTemplate.parse("a/pre{x}")


def test_setting_references() -> None:
    lookup = {"A": "1", "B": "two"}
    assert resolve_references("%A%-%B%", lookup) == "1-two"
    assert resolve_references("no refs", lookup) == "no refs"
    with pytest.raises(SettingsError, match="'MISSING'"):
        resolve_references("x %MISSING% y", lookup)


def test_environment_wins_over_local_settings() -> None:
    environ = {"KEEP": "from-env"}
    skipped = apply_settings({"KEEP": "from-file", "NEW": "v"}, environ)
    assert skipped == ["KEEP"]
    assert environ == {"KEEP": "from-env", "NEW": "v"}


def test_config_defaults(tmp_path: Path) -> None:
    app = tmp_path / "app"
    app.mkdir()
    (app / "host.json").write_text(
        '{"version": "2.0", "extensions": {"durableTask": {"hubName": "MyHub", '
        '"maxConcurrentActivityFunctions": 3}}}'
    )
    settings = tmp_path / "conf" / "local.settings.json"
    settings.parent.mkdir()
    settings.write_text('{"IsEncrypted": false, "Values": {"X": "1"}}')
    environ: dict[str, str] = {}
    config = build_config(app, settings, environ=environ)
    assert config.hub_name == "MyHub"
    assert config.hub_path == str(settings.parent / ".localdev" / "MyHub.sqlite")
    assert config.max_concurrent_activities == 3
    assert environ["X"] == "1"
    bare = tmp_path / "bare"
    bare.mkdir()
    default = build_config(bare, environ={})
    assert default.hub_name == "TestHubName"
    assert default.hub_path == str(bare / ".localdev" / "TestHubName.sqlite")


def test_time_formats() -> None:
    moment = datetime(2024, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
    assert format_timestamp(moment) == "2024-01-02T03:04:05.678901Z"
    assert format_status_time(moment) == "2024-01-02T03:04:05Z"
    assert parse_time("2024-01-02T03:04:05.6789012Z") == moment.replace(microsecond=678901)
    assert parse_time("2024-01-02T03:04:05Z") == moment.replace(microsecond=0)


def test_redaction() -> None:
    assert redact_url("/api/x?code=abc&y=1") == "/api/x?code=***&y=1"
    assert redact_url("/api/x?y=1&CODE=abc") == "/api/x?y=1&CODE=***"
    assert redact_url("/api/x?decode=keep") == "/api/x?decode=keep"

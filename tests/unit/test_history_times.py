"""The history's timestamps read by the standard library (`orchestrators/history_times.py`).

The oracle is the SDK's own parser, `dateutil.parser.parse`, which azure-functions-durable
1.7.0 (the version `requirements.txt` pins) calls on every history event's `Timestamp`
(`azure/durable_functions/models/history/HistoryEvent.py`). The timestamps are in the forms the
extension writes: .NET's round-trip form, seven fraction digits and `Z`, as in the history the
extension's users print (Azure/azure-functions-durable-extension issue #3177:
`"Timestamp": "2025-08-08T11:29:27.8766843Z"`), and Json.NET's (its default
`DateFormatString` is `yyyy'-'MM'-'dd'T'HH':'mm':'ss.FFFFFFFK`: trailing zeros of the fraction
dropped, and the fraction with them when it is zero; its documentation's ISO example is
`"2012-03-21T05:40Z"`, Newtonsoft.Json `JsonSerializer.DateFormatString` and
`DateFormatHandling`).
"""

from __future__ import annotations

import importlib
import random
from collections.abc import Generator, Iterator
from datetime import datetime, timedelta
from typing import Any

import azure.durable_functions as df
import pytest
from azure.durable_functions.constants import DATETIME_STRING_FORMAT
from dateutil.parser import parse

from orchestrators import history_times
from tests.support.replay import (
    CREATE_TIMER,
    EXECUTION_STARTED,
    ORCHESTRATOR_STARTED,
    START,
    History,
    run_episode,
)

#: From the extension's history, as printed in issue #3177 above.
EXTENSION_FORM = "2025-08-08T11:29:27.8766843Z"
#: Json.NET's documented example of its ISO 8601 dates (above).
JSON_NET_EXAMPLE = "2012-03-21T05:40Z"


def extension_forms(count: int, seed: int = 16) -> Iterator[str]:
    """Timestamps as the extension writes them: seven fraction digits and `Z`, or fewer
    digits (Json.NET drops trailing zeros), or none."""
    generator = random.Random(seed)
    for _ in range(count):
        moment = datetime(2020, 1, 1) + timedelta(seconds=generator.uniform(0, 20 * 365 * 86400))
        ticks = "".join(generator.choice("0123456789") for _ in range(7)).rstrip("0")
        fraction = f".{ticks[: generator.randint(1, len(ticks))]}" if ticks else ""
        yield f"{moment:%Y-%m-%dT%H:%M:%S}{fraction}Z"


def sdk_module() -> Any:
    return importlib.import_module(history_times.SDK_MODULE)


def test_the_pinned_sdk_reads_history_timestamps_with_ours() -> None:
    # Fails when an SDK upgrade renames or replaces its parser: read the new SDK again.
    assert history_times.install()
    assert getattr(sdk_module().dt_parse, "reads_history_timestamps", False)


def assert_read_as_the_sdk_reads(value: str) -> None:
    ours, sdk = history_times.read_timestamp(value, parse), parse(value)
    assert ours == sdk, value
    assert ours.utcoffset() == sdk.utcoffset(), value
    # The SDK writes timer fire times and the names of `new_uuid` with this format.
    assert ours.strftime(DATETIME_STRING_FORMAT) == sdk.strftime(DATETIME_STRING_FORMAT), value


@pytest.mark.parametrize(
    "value",
    [
        EXTENSION_FORM,
        JSON_NET_EXAMPLE,
        "2026-12-04T14:10:47.9999999Z",  # a fraction that must not round into the next second
        "2026-12-04T14:10:47.0000005Z",
        "2026-12-04T14:10:47.1Z",
        "2026-12-04T14:10:47Z",
        "2026-12-04T14:10:47.1234567+01:00",
        "2026-12-04T14:10:47.123",  # no zone: naive for both
    ],
)
def test_a_timestamp_reads_as_the_sdk_reads_it(value: str) -> None:
    assert_read_as_the_sdk_reads(value)


def test_two_thousand_timestamps_in_the_extension_forms_read_as_the_sdk_reads_them() -> None:
    for value in extension_forms(2_000):
        assert_read_as_the_sdk_reads(value)


def test_what_the_standard_library_refuses_goes_to_the_sdk_parser() -> None:
    seen: list[str] = []

    def fallback(value: str) -> datetime:
        seen.append(value)
        return parse(value)

    assert history_times.read_timestamp("Fri, 04 Dec 2026 14:10:47 GMT", fallback) == parse(
        "Fri, 04 Dec 2026 14:10:47 GMT"
    )
    assert history_times.read_timestamp(EXTENSION_FORM, fallback) == parse(EXTENSION_FORM)
    assert seen == ["Fri, 04 Dec 2026 14:10:47 GMT"]


def test_an_sdk_that_parses_otherwise_is_left_as_it_is(monkeypatch: pytest.MonkeyPatch) -> None:
    def other(value: str) -> datetime:
        return parse(value)

    monkeypatch.setattr(sdk_module(), history_times.PARSER_NAME, other)
    assert not history_times.install()
    assert sdk_module().dt_parse is other


def clock_orchestrator(context: df.DurableOrchestrationContext) -> Generator[Any, Any, Any]:
    """What an orchestration takes from the history's timestamps: its clock, a timer due a
    while after it, and a deterministic id."""
    now = context.current_utc_datetime
    context.set_custom_status({"now": now.isoformat(), "id": str(context.new_uuid())})
    yield context.create_timer(now + timedelta(seconds=7.5))


def episode(parser: Any, monkeypatch: pytest.MonkeyPatch, stamps: list[str]) -> dict[str, Any]:
    """One episode of `clock_orchestrator` with `parser` as the SDK's, its history stamped in
    the extension's form (`History` writes the SDK's six-digit form; the two episode starts
    take `stamps`)."""
    monkeypatch.setattr(sdk_module(), history_times.PARSER_NAME, parser)
    history = History("clock", None, "history-times", START)
    history.started(START)
    first, execution, second = history.events
    assert (first["EventType"], execution["EventType"]) == (ORCHESTRATOR_STARTED, EXECUTION_STARTED)
    first["Timestamp"] = execution["Timestamp"] = stamps[0]
    second["Timestamp"] = stamps[1]
    return run_episode(clock_orchestrator, history)


def test_an_episode_decides_the_same_with_either_parser(monkeypatch: pytest.MonkeyPatch) -> None:
    # An instance in flight when this landed replays its history with the new parser: its
    # clock, its timers and its ids must come out as the SDK's own parser made them.
    stamps = ["2026-12-04T14:10:49.9999999Z", "2026-12-04T14:10:52.1234567Z"]
    assert history_times.install()
    ours = episode(sdk_module().dt_parse, monkeypatch, stamps)
    theirs = episode(parse, monkeypatch, stamps)
    assert ours["customStatus"] == theirs["customStatus"]
    assert ours["actions"] == theirs["actions"]
    (timer,) = [action for group in ours["actions"] for action in group]
    assert timer["actionType"] == CREATE_TIMER
    assert timer["fireAt"] == "2026-12-04T14:10:57.499999Z"

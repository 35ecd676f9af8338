"""The orchestration history's timestamps, read by the standard library.

At every episode the Durable SDK builds its history anew from the JSON the extension sends, and
reads each event's `Timestamp` with `dateutil.parser.parse` (azure-functions-durable 1.7.0,
`azure/durable_functions/models/history/HistoryEvent.py`, its module-level `dt_parse`). That
generic parser takes about 35 µs a timestamp on the benchmark machine: a third of a
`deploy_environments` episode's time, whose history holds up to 160 events
(`docs/performance.md`, "Round 11").

The extension writes these timestamps in ISO 8601, as .NET's round-trip form
(`2025-08-08T11:29:27.8766843Z`: seven fraction digits, `Z`; Json.NET drops trailing zeros).
Python 3.11's `datetime.fromisoformat` reads that form, in well under a microsecond, to the
instant dateutil reads (both keep six digits of the fraction). What it refuses goes to dateutil,
as before. `tests/unit/test_history_times.py` holds the two parsers to the same answers.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable
from datetime import datetime
from typing import Final

from dateutil.parser import parse

log = logging.getLogger(__name__)

#: The SDK module that parses the history's timestamps, and the name it calls its parser by.
SDK_MODULE: Final = "azure.durable_functions.models.history.HistoryEvent"
PARSER_NAME: Final = "dt_parse"


def read_timestamp(value: str, fallback: Callable[[str], datetime]) -> datetime:
    """A history timestamp: ISO 8601 by the standard library, anything else by `fallback`."""
    try:
        return datetime.fromisoformat(value)
    except (TypeError, ValueError):
        return fallback(value)


def install() -> bool:
    """Make the SDK read its history's timestamps with `read_timestamp`, dateutil behind it.
    Idempotent. False, and the SDK left as it is, where it no longer parses them with dateutil's
    `parse` under that name (another SDK version: its own parser stays)."""
    module = importlib.import_module(SDK_MODULE)
    current = getattr(module, PARSER_NAME, None)
    if getattr(current, "reads_history_timestamps", False):
        return True
    if current is not parse:
        log.warning("the Durable SDK does not parse history timestamps as expected; left as is")
        return False

    def parse_timestamp(value: str) -> datetime:
        return read_timestamp(value, parse)

    parse_timestamp.reads_history_timestamps = True  # type: ignore[attr-defined]
    setattr(module, PARSER_NAME, parse_timestamp)
    return True

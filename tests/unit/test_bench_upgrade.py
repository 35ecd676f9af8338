"""The upgrade benchmark's arithmetic (`bench/upgrade.py`): the production part of the request
log, and the sum of its steps as the union of its operations."""

from __future__ import annotations

from typing import Any

from bench.upgrade import measure, production_part, union


def record(
    seq: int, path: str, start: float, end: float, op: tuple[float, float] | None = None
) -> dict[str, Any]:
    entry: dict[str, Any] = {"seq": seq, "method": "GET", "path": path, "start": start, "end": end}
    if op is not None:
        entry["operation"] = {"start": op[0], "end": op[1]}
    return entry


def test_union_merges_overlapping_and_touching_intervals() -> None:
    assert union([(5.0, 6.0), (0.0, 2.0), (1.0, 3.0), (3.0, 4.0)]) == [(0.0, 4.0), (5.0, 6.0)]
    assert union([]) == []


def test_the_production_part_starts_after_the_last_request_on_test() -> None:
    records = [
        record(1, "/x/acme-test-vm/extensions/setup", 0, 1),
        record(2, "/x/acme-rg/providers/microsoft.sql/servers/s", 1, 2),
        record(3, "/x/acme-prod-vmss", 2, 3),
        record(4, "/x/acme-prod-appgw", 3, 4),
    ]
    assert [r["seq"] for r in production_part(records)] == [3, 4]


def test_parallel_operations_of_one_step_count_once_and_gaps_do_not_count() -> None:
    records = [
        record(1, "/p", 0.0, 0.1, (0.0, 2.0)),
        # Two Run Commands side by side: one step of 1.5 s.
        record(2, "/p", 2.5, 2.6, (2.5, 4.0)),
        record(3, "/p", 2.6, 2.7, (2.6, 3.5)),
        record(4, "/p", 4.5, 5.0),
    ]
    wall, steps_sum, steps, operations = measure(records)
    assert (wall, steps_sum, steps, operations) == (5.0, 3.5, 2, 3)
    assert measure([]) == (0.0, 0.0, 0, 0)

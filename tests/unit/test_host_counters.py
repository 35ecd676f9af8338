"""The local host's work counters (`localdev/host/durable/counters.py`): pure arithmetic."""

from __future__ import annotations

import threading

from localdev.host.durable.counters import EpisodeFigures, WorkCounters


def test_episodes_sum_their_replayed_history_and_keep_the_longest() -> None:
    counters = WorkCounters()
    for replayed in (0, 4, 12, 8):
        counters.episode("deploy_environment", replayed)
    counters.episode("deploy_platform", 30)

    snapshot = counters.snapshot()

    assert snapshot.orchestrators["deploy_environment"] == EpisodeFigures(4, 24, 12)
    assert snapshot.orchestrators["deploy_platform"] == EpisodeFigures(1, 30, 30)
    assert (snapshot.episodes, snapshot.replayed, snapshot.max_replayed) == (5, 54, 30)


def test_activities_are_counted_per_function() -> None:
    counters = WorkCounters()
    for name in ("check_operations", "begin_apply_resource", "check_operations"):
        counters.activity(name)

    snapshot = counters.snapshot()

    assert snapshot.activities == {"check_operations": 2, "begin_apply_resource": 1}
    assert snapshot.activity_executions == 3


def test_a_snapshot_does_not_change_with_later_work() -> None:
    counters = WorkCounters()
    counters.episode("o", 1)
    before = counters.snapshot()
    counters.episode("o", 2)
    counters.activity("a")

    assert before.orchestrators == {"o": EpisodeFigures(1, 1, 1)}
    assert before.activities == {}
    assert counters.snapshot().orchestrators["o"] == EpisodeFigures(2, 3, 2)


def test_empty_counters_are_zero() -> None:
    snapshot = WorkCounters().snapshot()
    assert (snapshot.episodes, snapshot.replayed, snapshot.max_replayed) == (0, 0, 0)
    assert snapshot.activity_executions == 0


def test_counts_from_many_threads_are_not_lost() -> None:
    counters = WorkCounters()

    def work() -> None:
        for _ in range(1000):
            counters.episode("o", 1)
            counters.activity("a")

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    snapshot = counters.snapshot()
    assert snapshot.orchestrators["o"] == EpisodeFigures(8000, 8000, 1)
    assert snapshot.activities == {"a": 8000}

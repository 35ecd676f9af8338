"""`arm.live.parallel_after`: the start batch's scheduling (walk version 6's `after`)."""

from __future__ import annotations

import threading
import time

from arm.live import PARALLELISM, parallel_after


def test_an_item_runs_after_its_predecessors_succeeded_and_not_at_all_otherwise() -> None:
    ran: list[str] = []
    lock = threading.Lock()

    def run(name: str) -> str:
        with lock:
            ran.append(name)
        return "fail" if name.startswith("bad") else "ok"

    items = ["a", "bad", "after-a", "after-bad", "after-after-bad", "after-a-and-bad"]
    after = {
        "after-a": [0],
        "after-bad": [1],
        "after-after-bad": [3],
        "after-a-and-bad": [0, 1],
    }
    results = parallel_after(run, items, lambda i: after.get(i, []), lambda r: r == "ok")
    assert results == ["ok", "fail", "ok", None, None, None]
    assert ran.index("after-a") > ran.index("a")
    assert sorted(ran) == ["a", "after-a", "bad"]


def test_an_item_starts_as_soon_as_its_own_predecessor_returned_not_the_whole_batch() -> None:
    # A slow item (the batch's CPU-bound certificates) does not hold up what comes after a
    # quick one.
    started: dict[str, float] = {}

    def run(name: str) -> str:
        started[name] = time.monotonic()
        if name == "slow":
            time.sleep(0.3)
        return "ok"

    t0 = time.monotonic()
    parallel_after(run, ["slow", "quick", "next"], lambda i: [1] if i == "next" else [], bool)
    assert started["next"] - t0 < 0.2


def test_more_items_than_threads_all_run_each_after_its_predecessor() -> None:
    # No thread waits for another, so more waiting items than threads cannot deadlock the pool.
    count = PARALLELISM * 3
    order: list[int] = []
    lock = threading.Lock()

    def run(index: int) -> int:
        with lock:
            order.append(index)
        return index

    chain = lambda i: [i - 1] if i % 2 else []  # noqa: E731 - odd items after the one before
    results = parallel_after(run, list(range(count)), chain, lambda r: True)
    assert results == list(range(count))
    assert sorted(order) == list(range(count))
    for index in range(1, count, 2):
        assert order.index(index) > order.index(index - 1)


def test_the_items_first_picks_are_handed_out_before_the_others_results_stay_in_order() -> None:
    # The gateways' certificates (CPU for their keys) start with the batch, not at its end.
    started: list[str] = []
    lock = threading.Lock()

    def run(name: str) -> str:
        with lock:
            started.append(name)
        if name != "item-0":
            time.sleep(0.05)
        return name

    items = [f"item-{i}" for i in range(PARALLELISM * 2)] + ["cert-a", "cert-b"]
    after = {"cert-b": [0]}  # still after its predecessor (which returns at once)
    results = parallel_after(
        run, items, lambda i: after.get(i, []), lambda r: True, first=lambda i: i[:4] == "cert"
    )
    assert results == items
    # In the first wave (without `first`, cert-a would wait for two waves of sleeping items);
    # which thread records first within a wave is up to the scheduler.
    assert "cert-a" in started[: PARALLELISM + 1]
    assert "cert-b" in started[: PARALLELISM + 1]
    assert started.index("cert-b") > started.index("item-0")

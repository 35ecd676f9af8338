"""The benchmarks' pure arithmetic: `bench/common.py`, `bench/alert_storm.py`, `bench/fanout.py`."""

from __future__ import annotations

from itertools import pairwise
from typing import Any

import pytest

from bench.alert_storm import (
    SCALE_SET_PATH,
    Answer,
    LatencyResult,
    capacity_writes,
    first_write_after,
    sustained_rate,
)
from bench.common import percentile, reads_and_writes
from bench.fanout import FanoutResult


def record(method: str, start: float = 0.0, path: str = "/x", status: int = 200) -> dict[str, Any]:
    return {"method": method, "path": path, "status": status, "start": start}


@pytest.mark.parametrize(
    ("fraction", "expected"),
    [(0.5, 50), (0.95, 95), (0.99, 99), (1.0, 100), (0.0, 1), (0.01, 1), (0.07, 7), (0.951, 96)],
)
def test_percentile_is_the_nearest_rank(fraction: float, expected: float) -> None:
    values = [float(v) for v in range(100, 0, -1)]  # unsorted on purpose
    assert percentile(values, fraction) == expected


def test_percentile_of_few_values_and_of_none() -> None:
    assert percentile([3.0], 0.99) == 3.0
    assert percentile([1.0, 2.0], 0.5) == 1.0
    assert percentile([1.0, 2.0], 0.95) == 2.0
    assert percentile([], 0.5) == 0.0


def test_reads_are_gets_and_everything_else_is_a_write() -> None:
    log = [record(m) for m in ("GET", "GET", "PUT", "PATCH", "DELETE", "POST", "get", "HEAD")]
    assert reads_and_writes(log) == (4, 4)
    assert reads_and_writes([]) == (0, 0)


def test_sustained_rate_spans_first_sent_to_last_answered() -> None:
    answers = [
        Answer(202, sent_at=10.0, elapsed=0.5, accepted=True),
        Answer(202, sent_at=10.2, elapsed=1.8, accepted=True),  # answered last, at 12.0
        Answer(500, sent_at=11.0, elapsed=0.1, accepted=False),
        Answer(202, sent_at=11.5, elapsed=0.1, accepted=True),
    ]
    assert sustained_rate(answers) == pytest.approx(4 / 2.0)
    assert sustained_rate([]) == 0.0


def test_capacity_writes_are_successful_patches_and_puts_of_the_scale_set() -> None:
    log = [
        record("PATCH", 1.0, SCALE_SET_PATH),
        record("GET", 2.0, SCALE_SET_PATH),
        record("PATCH", 3.0, SCALE_SET_PATH, status=429),
        record("PATCH", 4.0, "/subscriptions/s/other"),
        record("PUT", 5.0, SCALE_SET_PATH, status=201),
    ]
    assert [r["start"] for r in capacity_writes(log)] == [1.0, 5.0]


def test_first_write_after_ignores_writes_before_the_burst() -> None:
    log = [
        record("PATCH", 1.0, SCALE_SET_PATH),
        record("PATCH", 3.0, SCALE_SET_PATH, status=429),
        record("PATCH", 3.4, SCALE_SET_PATH),
        record("PATCH", 5.0, SCALE_SET_PATH),
    ]
    assert first_write_after(log, 2.0) == pytest.approx(1.4)
    assert first_write_after(log, 6.0) is None


def test_latency_figures_leave_out_bursts_without_a_patch() -> None:
    result = LatencyResult(4, 64, (0.4, None, 0.2, 0.9), (1, 0, 1, 2))
    assert result.measured == [0.4, 0.2, 0.9]
    assert (result.p50, result.p95, result.max) == (0.4, 0.9, 0.9)
    assert result.to_json()["p95"] == 0.9


def test_fanout_totals_and_ratios() -> None:
    result = FanoutResult(
        latency_scale=0.005,
        poll_seconds=0.05,
        throttling=True,
        resources=100,
        critical_path=10.0,
        phased_critical_path=10.0,
        sequential_estimate=50.0,
        ours=12.5,
        arm_span=12.0,
        sequential=50.0,
        throttled=0,
        arm_requests=500,
        chain=("a", "b"),
        arm_reads=420,
        arm_writes=80,
        orchestrators=(("deploy_environment", 240, 33000, 400), ("deploy_platform", 13, 360, 55)),
        activities=(("begin_apply_resource", 100), ("check_operations", 90)),
        durable_busy=3.0,
        durable_summed=7.5,
    )
    assert (result.episodes, result.replayed, result.max_replayed) == (253, 33360, 400)
    assert result.activity_executions == 190
    assert result.reads_per_resource == pytest.approx(4.2)
    assert result.ours_over_critical == pytest.approx(1.25)
    assert result.sequential_over_ours == pytest.approx(4.0)
    assert result.memory_gb_seconds == pytest.approx(6.0)  # 3 s busy at 2 GB
    data = result.to_json()
    assert (data["episodes"], data["max_replayed"], data["reads_per_resource"]) == (253, 400, 4.2)


def test_cpu_model_is_read_from_cpuinfo() -> None:
    from bench.__main__ import cpu_model

    text = "processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC 7763 64-Core\n"
    assert cpu_model(text) == "AMD EPYC 7763 64-Core"
    assert cpu_model("processor : 0\n") == ""


def test_busy_seconds_is_the_length_of_the_union() -> None:
    from bench.common import busy_seconds

    intervals = [(5.0, 6.0), (0.0, 1.0), (0.5, 2.0), (1.5, 1.8), (2.0, 2.5), (10.0, 10.0)]
    assert busy_seconds(intervals) == pytest.approx(2.5 + 1.0)
    assert busy_seconds([]) == 0.0


def test_function_timings_keep_each_invocation_interval() -> None:
    import logging

    from bench.common import FunctionTimings

    logger = logging.getLogger(FunctionTimings.LOGGER)
    with FunctionTimings() as timings:
        logger.info(
            "Executed 'Functions.%s' (%s, Id=%s, Duration=%dms)", "check", "Succeeded", "1", 250
        )
    ((name, start, end),) = timings.intervals
    assert name == "check"
    assert end - start == pytest.approx(0.25)
    assert timings.durations == {"check": [0.25]}


class _Answer:
    def __init__(self, status_code: int) -> None:
        self.status_code = status_code
        self.headers = {"Retry-After": "0"}
        self.text = "{}"


class _App:
    def __init__(self, *statuses: int) -> None:
        self.statuses = list(statuses)
        self.puts = 0

    def deploy(self, solution_id: str, spec: dict[str, Any]) -> _Answer:
        self.puts += 1
        return _Answer(self.statuses.pop(0))


def test_fleet_retries_a_put_refused_with_503_and_counts_it() -> None:
    from bench.fleet import put_platform

    app = _App(503, 503, 202)
    assert put_platform(app, "f01", {}) == 2
    assert app.puts == 3


def test_fleet_does_not_retry_other_refusals() -> None:
    from bench.fleet import put_platform

    with pytest.raises(RuntimeError, match="PUT f01: 400"):
        put_platform(_App(400), "f01", {})


class _StateApp:
    """Answers a platform's state from a list of runtime statuses; records when each read came;
    stands for the local host's record of the orchestration's end."""

    def __init__(self, *statuses: str, ended: str = "2026-12-04T04:11:55.123456Z") -> None:
        self.statuses = list(statuses)
        self.reads: list[float] = []
        row = type("Row", (), {"last_updated_time": ended})()
        store = type("Store", (), {"get_instance": lambda _self, instance_id: row})()
        engine = type("Engine", (), {"store": store})()
        self.host = type("Host", (), {"host": type("Inner", (), {"engine": engine})()})()

    def state(self, solution_id: str) -> dict[str, Any]:
        import time

        self.reads.append(time.monotonic())
        return {"lastOperation": {"runtimeStatus": self.statuses.pop(0)}}


def test_the_client_reads_the_state_at_its_poll_interval_until_the_operation_ended() -> None:
    from bench.common import wait_all

    app = _StateApp("Running", "Running", "Completed")
    states = wait_all(app, ["acme"], timeout=10, poll=0.05)  # type: ignore[arg-type]
    assert states["acme"]["lastOperation"]["runtimeStatus"] == "Completed"
    gaps = [b - a for a, b in pairwise(app.reads)]
    assert len(app.reads) == 3
    assert all(gap >= 0.05 for gap in gaps)


def test_the_end_of_an_operation_is_the_hosts_record_to_the_microsecond() -> None:
    from datetime import UTC, datetime

    from bench.common import completed_at

    app = _StateApp(ended="2026-12-04T04:11:55.123456Z")
    expected = datetime(2026, 12, 4, 4, 11, 55, 123456, tzinfo=UTC).timestamp()
    assert completed_at(app, "acme") == pytest.approx(expected, abs=1e-6)  # type: ignore[arg-type]

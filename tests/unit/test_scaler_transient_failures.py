"""The scaler sends a capacity change again when ARM fails its operation transiently.

A scale-set PATCH whose operation ends `Failed` with a retryable code (`RetryableError`, ...)
leaves the new capacity in the scale set's model: deciding again would read that capacity and
take the change as done. The scaler must send the same PATCH again instead (found by
`tests/e2e/test_resilience_faults.py` under injected faults). Driven with the hand-written
context of `test_alerts_scaler`.
"""

from __future__ import annotations

from datetime import timedelta

from tests.unit.test_alerts_scaler import START, Run, alert, info, operation

RETRYABLE = {"code": "RetryableError", "message": "A retryable error occurred."}


def test_a_transiently_failed_change_is_sent_again_with_the_same_target() -> None:
    failed = operation("Failed", RETRYABLE)
    run = Run(info(), patch_results=[failed, failed, operation("Succeeded")])
    run.add("r1", alert())
    run.drive()
    patches = [t.payload for t in run.log if t.name == "set_scale_set_capacity"]
    assert [p["capacity"] for p in patches] == [4, 4, 4]
    # Decided once: the live capacity is not read again between the attempts.
    assert run.names("activity").count("inspect_scale_set") == 1
    assert [t.payload - START for t in run.log if t.kind == "timer"] == [
        timedelta(seconds=5),
        timedelta(seconds=15),
    ]
    [record] = run.state["decisions"]
    assert (record["outcome"], record["from"], record["to"]) == ("applied", 2, 4)
    assert run.events[0]["type"] == "outsystems.scale.applied"


def test_a_change_that_keeps_failing_is_recorded_as_skipped_after_the_attempts() -> None:
    failed = operation("Failed", RETRYABLE)
    run = Run(info(), patch_results=[failed] * 4)
    run.add("r1", alert())
    run.drive()
    assert run.names("activity").count("set_scale_set_capacity") == 4
    [record] = run.state["decisions"]
    assert record["outcome"] == "skipped"
    assert record["reason"].endswith(
        "the capacity change failed: RetryableError: A retryable error occurred."
    )
    assert run.state["pending"] == []

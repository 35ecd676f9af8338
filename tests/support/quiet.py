"""Quiet points: where an end-to-end test may check that nothing happened.

A fixed sleep before a "nothing happened" check passes on a slow machine without proving
anything. `quiet_point` waits instead for a state that proves the app has nothing left to do
that could change the answer:

1. what the test knows the orchestrations must reach (`settled`): the scaler ended
   (`scaler_finished`), the scaler asleep in its cooldown (`scaler_asleep`), every
   orchestration ended (`nothing_running`);
2. then the local host idle, by its engine's own signal (`DurableEngine.wait_until_idle`: no
   episode, activity or entity batch running or waiting, no timer due), twice, with the ARM
   simulator's request counter the same at both: nothing was still on its way to ARM.

The idle signal alone is not enough: it is also true between two polls of a long-running
operation, or two attempts of an activity retried later (their timers are not due yet). Only
orchestrations that ended, or sleep on purpose, make an idle host a quiet one.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from orchestrators.scaler import COOLDOWN, scaler_instance_id
from tests.support.stack import Stack

#: The Durable extension's HTTP API, as the local host serves it.
DURABLE_API = "/runtime/webhooks/durabletask"
#: Runtime statuses of an orchestration that may still act.
ACTIVE = frozenset({"Running", "Pending", "ContinuedAsNew"})

Settled = Callable[[Stack], bool]


def orchestration(stack: Stack, instance_id: str) -> dict[str, Any] | None:
    """An orchestration's status from the Durable HTTP API (None if the hub has no such one)."""
    response = stack.session.get(f"{stack.base}{DURABLE_API}/instances/{instance_id}", timeout=30)
    if response.status_code == 404:
        return None
    assert response.status_code in (200, 202), response.text
    status: dict[str, Any] = response.json()
    return status


def nothing_running(stack: Stack) -> bool:
    """Every orchestration in the task hub has ended."""
    response = stack.session.get(f"{stack.base}{DURABLE_API}/instances", timeout=30)
    assert response.status_code == 200, response.text
    return all(i["runtimeStatus"] not in ACTIVE for i in response.json())


def scaler_finished(scale_set_id: str) -> Settled:
    """The scale set's scaler ended (or never started)."""

    def settled(stack: Stack) -> bool:
        status = orchestration(stack, scaler_instance_id(scale_set_id))
        return status is None or status["runtimeStatus"] not in ACTIVE

    return settled


def scaler_asleep(scale_set_id: str) -> Settled:
    """The scale set's scaler sleeps in its cooldown: it looks at its requests again only when
    the cooldown ends (or, without reading ARM, at its next notice)."""

    def settled(stack: Stack) -> bool:
        status = orchestration(stack, scaler_instance_id(scale_set_id))
        custom = (status or {}).get("customStatus")
        return (
            status is not None
            and status["runtimeStatus"] == "Running"
            and isinstance(custom, dict)
            and custom.get("phase") == COOLDOWN
        )

    return settled


def host_idle(stack: Stack, seconds: float) -> None:
    """Wait for the host's own idle signal."""
    engine = stack.host.host.engine if stack.host.host is not None else None
    assert engine is not None, "the host is not running"
    idle = stack.host.call(engine.wait_until_idle(seconds), timeout=seconds + 10)
    assert idle, f"the host was not idle within {seconds:.0f}s"


def quiet_point(stack: Stack, settled: Settled | None = None, *, seconds: float = 60) -> int:
    """Wait for a quiet point (see the module docstring); the simulator's request count there."""
    deadline = time.monotonic() + seconds
    if settled is not None:
        while not settled(stack):
            assert time.monotonic() < deadline, f"not settled within {seconds:.0f}s"
            time.sleep(0.05)
    while True:
        host_idle(stack, max(1.0, deadline - time.monotonic()))
        before = stack.sim.counters().get("requests", 0)
        host_idle(stack, max(1.0, deadline - time.monotonic()))
        after = stack.sim.counters().get("requests", 0)
        if after == before:
            return int(after)
        assert time.monotonic() < deadline, f"ARM still being called after {seconds:.0f}s"


def run_timer(stack: Stack, name: str) -> None:
    """Run the timer function `name` as the host does when it is due (or when
    `POST /admin/functions/{name}` asks for it), and return once it has run: what it started
    is then in the task hub, where `quiet_point` sees it."""
    host = stack.host.host
    assert host is not None, "the host is not running"
    assert host.app is not None
    assert host.timers is not None
    spec = host.app.get(name)
    assert spec is not None, f"no function {name}"
    stack.host.call(host.timers.fire(spec, False, None, ""))

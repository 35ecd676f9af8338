"""How triggers hand a request to a scale set's scaler (issue 14.11).

Every request used to raise a `wake` event on a running scaler, whether or not it waited for
one; the Durable SDK keeps such events and warns "Potential duplicate Task completion for
TaskId: wake" at every replay. A scaler now says in its custom status what it does: `working`
(it looks at its requests again before it sleeps or ends), `cooldown` (asleep: only a request
that must not wait for the cooldown wakes it; alerts are noticed on its next look), `ending`
(it will not look again: the trigger waits for it to end and starts a new one). Driven against
the hand-written Durable client of `durable_fakes`.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest

from appsettings import AppSettings
from orchestrators.scaler import WAKE_EVENT, scaler_instance_id, scaler_linger
from outsystems.messages import ScalerRequest
from outsystems.scaling import ScaleKind, ScaleRequest, ScaleSource
from services import scaler_client
from services.scaler_client import (
    ENDING_WAIT_SECONDS,
    IDLE_LOOK_SECONDS,
    LEASE_MARGIN,
    ensure_scaler,
    forget_leases,
    scaler_tuning,
    submit,
)
from tests.unit.durable_fakes import FakeDurableClient, Instance

VMSS = (
    "/subscriptions/11111111-2222-3333-4444-555555555555/resourceGroups/acme-rg/providers/"
    "Microsoft.Compute/virtualMachineScaleSets/acme-prod-vmss"
)
SCALER = scaler_instance_id(VMSS)
SETTINGS = AppSettings.load({"AZURE_SUBSCRIPTION_ID": "11111111-2222-3333-4444-555555555555"})
NOW = datetime(2026, 11, 20, 9, 14, tzinfo=UTC)


def scaler(phase: str | None, status: str = "Running") -> FakeDurableClient:
    custom = None if phase is None else {"phase": phase}
    return FakeDurableClient(instances={SCALER: Instance(status, custom)})


def ensure(client: FakeDurableClient, *, urgent: bool) -> str:
    return asyncio.run(ensure_scaler(client, VMSS, SETTINGS, urgent=urgent))


def test_a_stopped_scaler_is_started() -> None:
    for client in (FakeDurableClient(), scaler("done", "Completed")):
        forget_leases()
        assert ensure(client, urgent=False) == "started"
        assert (client.starts, client.events) == ([SCALER], [])


def test_a_working_scaler_is_left_alone_it_looks_again() -> None:
    for phase in ("working", None):
        for urgent in (False, True):
            client = scaler(phase)
            assert ensure(client, urgent=urgent) == "running"
            assert (client.starts, client.events) == ([], [])


def test_a_sleeping_scaler_is_woken_for_urgent_requests_only() -> None:
    client = scaler("cooldown")
    assert ensure(client, urgent=False) == "running"
    assert client.events == []
    assert ensure(client, urgent=True) == "woken"
    assert client.events == [(SCALER, WAKE_EVENT)]


class EndingScaler(FakeDurableClient):
    """A scaler that ends after the trigger has looked at it `looks` times."""

    def __init__(self, looks: int) -> None:
        super().__init__(instances={SCALER: Instance("Running", {"phase": "ending"})})
        self.looks = looks

    async def get_status(self, instance_id: str, *args: Any, **kwargs: Any) -> Any:
        self.looks -= 1
        if self.looks == 0:
            self.instances[SCALER].runtime_status = "Completed"
        return await super().get_status(instance_id)


def test_an_ending_scaler_is_waited_for_then_started_again() -> None:
    client = EndingScaler(looks=3)
    assert ensure(client, urgent=False) == "started"
    assert (client.starts, client.events) == ([SCALER], [])


def test_a_scaler_that_does_not_end_in_time_is_left_to_the_timer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The trigger's clock is injected (not a margin on wall time): each look at the ending
    # scaler takes a quarter of the wait, so the trigger gives up after four looks, at the
    # deadline, and leaves the requests to the scaling timer.
    client = EndingScaler(looks=10_000)

    def monotonic() -> float:
        return (10_000 - client.looks) * ENDING_WAIT_SECONDS / 4

    monkeypatch.setattr(scaler_client, "time", SimpleNamespace(monotonic=monotonic))
    assert ensure(client, urgent=False) == "deferred"
    assert client.looks == 10_000 - 4
    assert (client.starts, client.events) == ([], [])


def test_an_alert_storm_raises_no_event_on_a_sleeping_scaler() -> None:
    client = scaler("cooldown")

    async def storm() -> None:
        await asyncio.gather(
            *(
                submit(
                    client,
                    VMSS,
                    "acme",
                    ScaleRequest(ScaleKind.OUT, None, ScaleSource.ALERT, f"a{n}", NOW, "r", "x"),
                    f"request-{n}",
                    SETTINGS,
                )
                for n in range(50)
            )
        )

    asyncio.run(storm())
    assert len(client.signalled("add")) == 50
    assert (client.starts, client.events) == ([], [])
    manual = ScaleRequest(ScaleKind.EXACT, 4, ScaleSource.MANUAL, "m", NOW, None, "by hand")
    asyncio.run(submit(client, VMSS, "acme", manual, "m", SETTINGS))
    assert client.events == [(SCALER, WAKE_EVENT)]


# --- Issue 16: one durable call per alert while the scaler's lease holds -------------------------


class CountingClient(FakeDurableClient):
    """Counts the status reads (each one a durable call)."""

    looks = 0

    async def get_status(self, instance_id: str, *args: Any, **kwargs: Any) -> Any:
        self.looks += 1
        return await super().get_status(instance_id, *args, **kwargs)


def alert_request(n: int) -> ScaleRequest:
    return ScaleRequest(ScaleKind.OUT, None, ScaleSource.ALERT, f"a{n}", NOW, "r", "x")


def test_a_started_scaler_holds_a_lease_and_alerts_meanwhile_make_one_call_each() -> None:
    client = CountingClient()
    before = datetime.now(UTC)
    asyncio.run(submit(client, VMSS, "acme", alert_request(0), "request-0", SETTINGS))
    assert client.starts == [SCALER]
    given = ScalerRequest.from_json(client.instances[SCALER].input)
    linger = scaler_linger(scaler_tuning(SETTINGS))
    assert given.lease_until is not None
    assert before + linger <= given.lease_until <= datetime.now(UTC) + linger
    looks = client.looks

    async def storm() -> None:
        await asyncio.gather(
            *(
                submit(client, VMSS, "acme", alert_request(n), f"request-{n}", SETTINGS)
                for n in range(1, 50)
            )
        )

    asyncio.run(storm())
    # Each alert: its signal only; no status read, no start, no event.
    assert len(client.signalled("add")) == 50
    assert (client.looks, client.starts, client.events) == (looks, [SCALER], [])


def test_an_urgent_request_looks_at_the_scaler_whatever_its_lease() -> None:
    client = CountingClient()
    asyncio.run(submit(client, VMSS, "acme", alert_request(0), "request-0", SETTINGS))
    client.instances[SCALER].custom_status = {"phase": "idle"}
    looks = client.looks
    manual = ScaleRequest(ScaleKind.EXACT, 4, ScaleSource.MANUAL, "m", NOW, None, "by hand")
    asyncio.run(submit(client, VMSS, "acme", manual, "m", SETTINGS))
    assert client.looks == looks + 1
    # Idle (lingering in its lease) is asleep: woken like a cooldown.
    assert client.events == [(SCALER, WAKE_EVENT)]


def test_a_lease_read_from_a_running_scaler_is_kept_until_it_is_about_to_end() -> None:
    soon = datetime.now(UTC) + LEASE_MARGIN / 2
    later = datetime.now(UTC) + timedelta(minutes=5)
    for phase, lease, kept in (
        ("cooldown", later, True),
        ("working", later, True),
        ("cooldown", soon, False),
        ("ending", later, False),
    ):
        forget_leases()
        client = CountingClient(
            instances={
                SCALER: Instance("Running", {"phase": phase, "leaseUntil": lease.isoformat()})
            }
        )
        assert ensure(client, urgent=False) in ("running", "deferred")
        looks = client.looks
        client.instances[SCALER].runtime_status = "Completed"
        # With the lease kept, the next alert does not look (the scaler cannot have ended).
        outcome = ensure(client, urgent=False)
        assert (outcome, client.looks == looks) == (
            ("running", True) if kept else ("started", False)
        )


def test_concurrent_requests_share_status_reads_that_began_after_they_were_stored() -> None:
    """A read that began before a request was stored proves nothing for it (the scaler may
    have ended since); one that began after is as good as its own: requests arriving while
    a read runs share the next one."""
    client = CountingClient(instances={SCALER: Instance("Running", {"phase": "working"})})
    client.delay = 0.05

    async def storm() -> list[str]:
        first = asyncio.ensure_future(ensure_scaler(client, VMSS, SETTINGS))
        await asyncio.sleep(0.01)  # the first read is under way
        rest = [ensure_scaler(client, VMSS, SETTINGS) for _ in range(40)]
        return [await first, *await asyncio.gather(*rest)]

    assert asyncio.run(storm()) == ["running"] * 41
    # The first request's read, then one read for the 40 that came while it ran.
    assert (client.looks, client.starts, client.events) == (2, [], [])


def test_requests_that_joined_a_read_given_up_read_alone() -> None:
    """The first request's trigger gives up (its deadline) while others wait to share its
    read: they read the status themselves, none waits forever."""
    client = CountingClient(instances={SCALER: Instance("Running", {"phase": "working"})})
    client.delay = 0.05

    async def storm() -> list[str]:
        first = asyncio.ensure_future(ensure_scaler(client, VMSS, SETTINGS))
        await asyncio.sleep(0)  # its read is announced, about to begin
        first.cancel()
        rest = asyncio.gather(*(ensure_scaler(client, VMSS, SETTINGS) for _ in range(3)))
        return list(await asyncio.wait_for(rest, 2))

    assert asyncio.run(storm()) == ["running"] * 3


class Clock:
    """The trigger's clock (`services.scaler_client.time`), moved by the test: what happens
    "within" an interval does not depend on how fast a loaded machine runs the test."""

    def __init__(self) -> None:
        self.now = 1_000.0

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    clock = Clock()
    monkeypatch.setattr(scaler_client, "time", clock)
    return clock


def test_an_alert_wakes_a_scaler_idle_in_its_lease_looking_a_few_times_a_second_at_most(
    clock: Clock,
) -> None:
    """Issue 16: a scaler lingering `idle` in its lease (nothing pending) waited for the lease
    to end before it saw an alert that came after a quiet moment (up to two seconds). An alert
    looks at it again once no look began within `IDLE_LOOK_SECONDS`, and wakes it when idle;
    the alerts of a storm within that time make no further read."""
    client = CountingClient()
    asyncio.run(submit(client, VMSS, "acme", alert_request(0), "request-0", SETTINGS))
    client.instances[SCALER].custom_status = {"phase": "idle"}
    looks = client.looks

    async def storm(first: int) -> None:
        await asyncio.gather(
            *(
                submit(client, VMSS, "acme", alert_request(n), f"request-{n}", SETTINGS)
                for n in range(first, first + 30)
            )
        )

    asyncio.run(storm(1))
    # Within the interval of the start: the lease holds, nothing is read.
    assert (client.looks, client.events) == (looks, [])
    clock.sleep(IDLE_LOOK_SECONDS)
    asyncio.run(storm(31))
    # One read for the storm, which finds it idle: one wake-up.
    assert (client.looks, client.events) == (looks + 1, [(SCALER, WAKE_EVENT)])
    assert client.starts == [SCALER]


def test_an_alert_looking_under_a_lease_leaves_a_scaler_in_cooldown_asleep(clock: Clock) -> None:
    later = datetime.now(UTC) + timedelta(minutes=5)
    forget_leases()
    client = CountingClient(
        instances={
            SCALER: Instance("Running", {"phase": "cooldown", "leaseUntil": later.isoformat()})
        }
    )
    for _ in range(2):
        assert ensure(client, urgent=False) == "running"
        clock.sleep(IDLE_LOOK_SECONDS)
    assert (client.looks, client.starts, client.events) == (2, [], [])

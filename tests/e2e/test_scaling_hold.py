"""An upgrade holds the farm's scale set (issue 17): the scaler decides nothing until released.

The hold is signalled the way the upgrade orchestration's entity signals reach the task hub:
through the Durable client (`signal_entity`, the extension's HTTP API of the local host), to
the scale set's entity `track_scale_requests`, with the contract `HoldScaleSet`.
"""

from __future__ import annotations

from typing import Any

import azure.durable_functions as df

from orchestrators.scale_requests import scale_set_entity
from orchestrators.scaler import HELD, scaler_instance_id
from outsystems.messages import HoldScaleSet
from tests.e2e.scaling_support import (
    SCALE_SET_ID,
    alert,
    capacity,
    capacity_writes,
    deploy_farm,
    farm_spec,
    post_alert,
    scale_events,
    scaling,
    wait_for,
)
from tests.support.quiet import orchestration, quiet_point, scaler_finished
from tests.support.stack import Stack

HOLD = HoldScaleSet("platform-acme:upgrade-e2e", "upgrade to 11.33.0")


def signal(stack: Stack, operation: str, hold: HoldScaleSet) -> None:
    """Signal the scale set's entity through the Durable client, as a function does."""
    host = stack.host.host
    assert host is not None
    client = df.DurableOrchestrationClient(host.client_binding())

    async def send() -> None:
        await client.signal_entity(scale_set_entity(SCALE_SET_ID), operation, hold.to_json())

    # On the host's event loop, where the app's own functions call the client.
    stack.host.call(send())


def scaler_held(stack: Stack) -> bool:
    """The scaler sleeps because of the hold: it looks again by itself after its notice."""
    status = orchestration(stack, scaler_instance_id(SCALE_SET_ID))
    custom = (status or {}).get("customStatus")
    return isinstance(custom, dict) and custom.get("phase") == HELD


def test_an_alert_during_a_hold_stays_pending_and_is_applied_after_the_release(
    stack: Stack,
) -> None:
    deploy_farm(stack, farm_spec(cooldownMinutes=0))
    stack.events()
    signal(stack, "hold", HOLD)
    wait_for(lambda: scaling(stack)["heldBy"] == HOLD.to_json(), what="the hold in the view")

    high = post_alert(stack, alert("high"))
    assert high.status_code == 202, high.text

    def announced() -> dict[str, Any] | None:
        view = scaling(stack)
        return view if view["decisions"] else None

    view = wait_for(announced, what="the hold notice")
    assert view is not None
    [notice] = view["decisions"]
    assert notice["outcome"] == "skipped"
    assert notice["reason"].startswith(f"held by upgrade {HOLD.holder}")
    assert [p["source"] for p in view["pending"]] == ["alert"]
    # A quiet point: the scaler sleeps on the hold, the host is idle, ARM is not being called.
    quiet_point(stack, scaler_held)
    assert capacity(stack.sim) == 2
    assert capacity_writes(stack.sim) == []
    after = scaling(stack)
    assert after["decisions"] == [notice], "announced once"
    assert len(after["pending"]) == 1

    # Another operation's release does not end the hold.
    signal(stack, "release", HoldScaleSet("platform-acme:someone-else"))
    quiet_point(stack, scaler_held)
    assert scaling(stack)["heldBy"] == HOLD.to_json()
    assert capacity(stack.sim) == 2

    signal(stack, "release", HOLD)
    wait_for(lambda: capacity(stack.sim) == 4, what="the kept alert applied after the release")
    quiet_point(stack, scaler_finished(SCALE_SET_ID))
    final = scaling(stack)
    assert final["heldBy"] is None
    assert final["pending"] == []
    assert [(d["outcome"], d["from"], d["to"]) for d in final["decisions"]] == [
        ("skipped", 2, 2),
        ("applied", 2, 4),
    ]
    assert len(capacity_writes(stack.sim)) == 1
    assert [(e["type"], e["data"]["to"]) for e in scale_events(stack)] == [
        ("outsystems.scale.skipped", 2),
        ("outsystems.scale.applied", 4),
    ]

"""Every history the host produced replays through the real SDK, in a fresh process, to the
same actions; and every action the SDK asked for is in the history, in order, with its id."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.support.host_apps import DURABLE_APP, HostClient

REPLAY_SCRIPT = Path(__file__).with_name("replay_check.py")
SCHEDULING = {4, 7, 10, 14}


async def _run_scenarios(client: HostClient, tmp_path: Path) -> list[str]:
    """Run one instance of every sample orchestration; return the ids of all instances."""
    ids = [
        await client.start("chaining"),
        await client.start("fan_out", 4),
        await client.start("retrying", {"dir": str(tmp_path), "key": "a", "failures": 2}),
        await client.start("retrying_exhausted", {"dir": str(tmp_path), "key": "b", "failures": 5}),
        await client.start("timer_then_activity"),
        await client.start("event_or_timeout", 30),
        await client.start("parent", instance_id="replay-parent"),
        await client.start("custom_status"),
        await client.start("failing_activity"),
        await client.start("failing_orchestrator"),
        await client.start("entity_user", "replay-counter"),
        await client.start(
            "retrying_child",
            {"dir": str(tmp_path), "key": "c", "failures": 1},
            instance_id="replay-sub-retry",
        ),
    ]
    approval = await client.start("approval")
    await client.raise_event(approval, "Second", "early")
    await client.wait_for(approval, lambda s: s["customStatus"] == "waiting")
    await client.raise_event(approval, "Approval", "late")
    waiting = await client.start("event_or_timeout", 10_000)
    await client.wait_for(waiting, lambda s: s["runtimeStatus"] == "Running")
    await client.raise_event(waiting, "Go", [1, 2])
    looping = await client.start("counter_loop")
    for item in ("x", "y", "z"):
        await client.wait_for(looping, lambda s: s["runtimeStatus"] == "Running")
        await client.raise_event(looping, "Item", item)
        await asyncio.sleep(0.05)
    ids += [approval, waiting, looping]
    statuses = await asyncio.gather(*(client.wait(i) for i in ids))
    assert {s["runtimeStatus"] for s in statuses} <= {"Completed", "Failed"}
    for child in ("replay-parent:0", "replay-parent-child", "replay-sub-retry:2"):
        await client.wait(child)
    return [
        *ids,
        "replay-parent:0",
        "replay-parent-child",
        "replay-sub-retry:0",
        "replay-sub-retry:2",
    ]


def _flatten(actions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    flat: list[dict[str, Any]] = []
    for action in actions:
        if action["actionType"] in (11, 12):
            flat.extend(_flatten(action["compoundActions"]))
        elif action["actionType"] not in (4, 6):
            flat.append(action)
    return flat


def _expected_event(action: dict[str, Any]) -> tuple[int, str]:
    kind = action["actionType"]
    if kind in (0, 1):
        return 4, f"{action['functionName']}:{action['input']}"
    if kind in (2, 3):
        return 7, f"{action['functionName']}:{action['input']}"
    if kind == 5:
        return 10, str(action["fireAt"])
    return 14, f"{action['instanceId']}:{action['operation']}"


def _scheduled_event(event: dict[str, Any]) -> tuple[int, str]:
    kind = event["EventType"]
    if kind in (4, 7):
        return kind, f"{event['Name']}:{event['Input']}"
    if kind == 10:
        return kind, str(event["FireAt"])
    return kind, f"{event['InstanceId']}:{json.loads(event['Input'])['op']}"


async def test_histories_replay_to_the_same_actions(
    durable_client: HostClient, tmp_path: Path
) -> None:
    instance_ids = await _run_scenarios(durable_client, tmp_path)
    engine = durable_client.host.engine
    assert engine is not None
    assert engine.recorded_episodes is not None
    cases: list[dict[str, Any]] = []
    for instance_id in instance_ids:
        episodes = engine.recorded_episodes[instance_id]
        history = durable_client.history(instance_id)
        _, status = await durable_client.status(instance_id)
        last = episodes[-1]["payload"]
        # What the SDK was given is exactly the stored history (flags aside).
        given = [{k: v for k, v in e.items() if k != "IsPlayed"} for e in last["history"]]
        assert given == history[: len(given)], instance_id
        full = dict(last, history=[dict(e, IsPlayed=True) for e in history])
        cases.append(
            {"id": instance_id, "name": status["name"], "episodes": episodes, "full": full}
        )
        retried = any(a["actionType"] in (1, 3) for a in _flatten_all(episodes))
        if not retried:
            actions = _flatten(_actions(episodes[-1]["state"]))
            scheduled = [_scheduled_event(e) for e in history if e["EventType"] in SCHEDULING]
            assert scheduled == [_expected_event(a) for a in actions], instance_id
            ids = [e["EventId"] for e in history if e["EventType"] in SCHEDULING]
            assert ids == sorted(ids), instance_id

    document = json.dumps({"app_dir": str(DURABLE_APP), "cases": cases})
    # A fresh interpreter: nothing of the host's process state can help the replay.
    result = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, str(REPLAY_SCRIPT)],
        input=document,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["mismatches"] == []
    assert report["checked"] == sum(len(c["episodes"]) + 1 for c in cases)


def _actions(state: dict[str, Any]) -> list[dict[str, Any]]:
    actions = state.get("actions") or []
    return list(actions[0]) if actions else []


def _flatten_all(episodes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [a for e in episodes for a in _flatten(_actions(e["state"]))]

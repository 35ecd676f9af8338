"""The engine's work counters agree with the task hub's history (what the SDK was given)."""

from __future__ import annotations

from typing import Any

from tests.support.host_apps import HostClient

EPISODE_START = 12


def replayed_per_episode(history: list[dict[str, Any]]) -> list[int]:
    """How many stored events each episode replayed: those before its OrchestratorStarted."""
    return [i for i, event in enumerate(history) if event["EventType"] == EPISODE_START]


async def test_counters_match_the_history_of_a_chain(durable_client: HostClient) -> None:
    engine = durable_client.host.engine
    assert engine is not None
    instance_id = await durable_client.start("chaining")
    await durable_client.wait(instance_id)

    replayed = replayed_per_episode(durable_client.history(instance_id))
    figures = engine.counters.snapshot()

    assert replayed == [0, 4, 8, 12]  # three activities: four episodes
    chaining = figures.orchestrators["chaining"]
    assert (chaining.episodes, chaining.replayed, chaining.max_replayed) == (4, 24, 12)
    assert figures.activities["hello"] == 3


async def test_every_execution_of_a_continued_instance_is_counted(
    durable_client: HostClient,
) -> None:
    engine = durable_client.host.engine
    assert engine is not None
    instance_id = await durable_client.start("counter_loop")
    for taken, item in enumerate(("x", "y", "z")):

        def waiting(status: dict[str, Any], taken: int = taken) -> bool:
            input_ = status["input"] or {}
            return bool(status["runtimeStatus"] == "Running" and input_.get("n", 0) == taken)

        await durable_client.wait_for(instance_id, waiting)
        await durable_client.raise_event(instance_id, "Item", item)
    status = await durable_client.wait(instance_id)
    assert status["output"]["seen"] == ["x", "y", "z"]

    loop = engine.counters.snapshot().orchestrators["counter_loop"]
    # Each of the three executions waits (one episode, nothing replayed), then takes its item
    # and continues as new (a second, replaying the first: OrchestratorStarted, ExecutionStarted,
    # OrchestratorCompleted); the fourth returns at once. The hub keeps only the last execution.
    assert len(replayed_per_episode(durable_client.history(instance_id))) == 1
    assert (loop.episodes, loop.replayed, loop.max_replayed) == (7, 9, 3)

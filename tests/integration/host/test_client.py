"""The SDK's DurableOrchestrationClient against the host's RPC endpoint, and durable entities."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta

import azure.durable_functions as df
import azure.functions as func
import pytest
from azure.durable_functions.models.OrchestrationRuntimeStatus import OrchestrationRuntimeStatus

from localdev.host.durable.engine import DurableEngine
from localdev.host.durable.store import TaskHubStore
from tests.support.host_apps import HostClient


def sdk_client(client: HostClient) -> df.DurableOrchestrationClient:
    return df.DurableOrchestrationClient(client.host.client_binding())


def _engine(client: HostClient) -> DurableEngine:
    assert client.host.engine is not None
    return client.host.engine


def _store(client: HostClient) -> TaskHubStore:
    assert client.host.store is not None
    return client.host.store


async def test_binding_points_the_sdk_at_the_host(durable_client: HostClient) -> None:
    binding = json.loads(durable_client.host.client_binding())

    assert binding["rpcBaseUrl"] == f"{durable_client.base}/durabletask/"
    assert binding["taskHubName"] == "TestHubName"
    assert binding["managementUrls"]["id"] == "INSTANCEID"
    assert binding["baseUrl"] == f"{durable_client.base}/runtime/webhooks/durabletask"


async def test_start_with_id_twice_fails_while_running(durable_client: HostClient) -> None:
    client = sdk_client(durable_client)
    instance_id = await client.start_new("approval", "singleton", {"a": 1})
    assert instance_id == "singleton"

    with pytest.raises(Exception, match=r"status (Pending|Running) already exists"):
        await client.start_new("approval", "singleton")

    status = await client.get_status("singleton")
    assert status.input_ == {"a": 1}
    await client.terminate("singleton", "done testing")
    await durable_client.wait("singleton")
    # A finished instance id can be reused: the new instance replaces it.
    assert await client.start_new("chaining", "singleton") == "singleton"
    assert (await durable_client.wait("singleton"))["output"][0] == "Hello Tokyo!"


async def test_start_unknown_orchestrator_fails(durable_client: HostClient) -> None:
    with pytest.raises(Exception, match="doesn't exist"):
        await sdk_client(durable_client).start_new("no_such_orchestrator")


async def test_status_queries(durable_client: HostClient) -> None:
    client = sdk_client(durable_client)
    before = datetime.now(UTC) - timedelta(seconds=2)
    done = await client.start_new("chaining", "query-done")
    waiting = await client.start_new("approval", "query-waiting")
    await durable_client.wait(done)
    await durable_client.wait_for(waiting, lambda s: s["runtimeStatus"] == "Running")

    everything = await client.get_status_all()
    assert {s.instance_id for s in everything} >= {done, waiting}
    running = await client.get_status_by(runtime_status=[OrchestrationRuntimeStatus.Running])
    assert [s.instance_id for s in running] == [waiting]
    by_prefix = await client.get_status_by(instance_id_prefix="query-d")
    assert [s.instance_id for s in by_prefix] == [done]
    in_range = await client.get_status_by(
        created_time_from=before, created_time_to=datetime.now(UTC) + timedelta(seconds=2)
    )
    assert {s.instance_id for s in in_range} == {done, waiting}
    too_early = await client.get_status_by(created_time_to=before)
    assert too_early == []

    status = await client.get_status(done, show_history=True, show_history_output=True)
    assert status.runtime_status == OrchestrationRuntimeStatus.Completed
    assert status.output == ["Hello Tokyo!", "Hello Seattle!", "Hello London!"]
    # The extension names the field "historyEvents"; the SDK keeps it under that name.
    history = status.historyEvents
    assert history[0]["EventType"] == "ExecutionStarted"
    assert any(e.get("Result") == "Hello Seattle!" for e in history)
    missing = await client.get_status("nobody")
    assert not missing


async def test_raise_terminate_purge(durable_client: HostClient) -> None:
    client = sdk_client(durable_client)
    with pytest.raises(Exception, match="No instance with ID nobody found"):
        await client.raise_event("nobody", "Approval", 1)

    instance_id = await client.start_new("approval")
    await durable_client.wait_for(instance_id, lambda s: s["runtimeStatus"] == "Running")
    await client.terminate(instance_id, "operator said so")
    status = await durable_client.wait(instance_id)
    assert status["runtimeStatus"] == "Terminated"
    assert status["output"] == "operator said so"
    with pytest.raises(Exception, match="is gone"):
        await client.raise_event(instance_id, "Approval", 1)

    assert (await client.purge_instance_history(instance_id)).instances_deleted == 1
    assert (await client.purge_instance_history(instance_id)).instances_deleted == 0
    assert not await client.get_status(instance_id)


async def test_purge_never_deletes_running_instances(durable_client: HostClient) -> None:
    client = sdk_client(durable_client)
    running = await client.start_new("approval")
    finished = await client.start_new("chaining")
    await durable_client.wait(finished)
    await durable_client.wait_for(running, lambda s: s["runtimeStatus"] == "Running")

    result = await client.purge_instance_history_by(
        created_time_from=datetime.now(UTC) - timedelta(minutes=1)
    )

    assert result.instances_deleted == 1
    assert await client.get_status(running)
    assert not await client.get_status(finished)


async def test_suspend_holds_events_until_resume(durable_client: HostClient) -> None:
    client = sdk_client(durable_client)
    instance_id = await client.start_new("approval")
    await durable_client.wait_for(instance_id, lambda s: s["customStatus"] == "waiting")
    await client.suspend(instance_id, "hold")
    await durable_client.wait_for(instance_id, lambda s: s["runtimeStatus"] == "Suspended")
    await client.raise_event(instance_id, "Approval", "held")
    # A quiet point, not a pause: the engine has taken the event up and had nothing to do.
    assert await _engine(durable_client).wait_until_idle()
    assert (await client.get_status(instance_id)).custom_status == "waiting"
    held = [m.payload for m in _store(durable_client).messages(instance_id)]
    assert [(e["EventType"], e["Name"], e["Input"]) for e in held] == [(15, "Approval", '"held"')]

    await client.resume(instance_id, "go")
    await durable_client.wait_for(
        instance_id, lambda s: s["customStatus"] == {"approved_by": "held"}
    )
    await client.raise_event(instance_id, "Second", "x")
    assert (await durable_client.wait(instance_id))["output"] == ["held", "x"]


async def test_restart_with_the_same_input(durable_client: HostClient) -> None:
    client = sdk_client(durable_client)
    first = await client.start_new("fan_out", None, 2)
    await durable_client.wait(first)

    again = await client.restart(first)

    assert again != first
    assert (await durable_client.wait(again))["output"] == ["Hello 0!", "Hello 1!"]


async def test_check_status_response_uses_the_request_origin(durable_client: HostClient) -> None:
    client = sdk_client(durable_client)
    request = func.HttpRequest("POST", "http://example.test:8080/api/x", body=b"")

    response = client.create_check_status_response(request, "abc")

    body = json.loads(response.get_body())
    assert response.status_code == 202
    assert body["id"] == "abc"
    assert body["statusQueryGetUri"].startswith(
        "http://example.test:8080/runtime/webhooks/durabletask/instances/abc?"
    )
    assert response.headers["Location"] == body["statusQueryGetUri"]


async def test_entity_calls_and_signals_from_an_orchestration(durable_client: HostClient) -> None:
    client = sdk_client(durable_client)
    instance_id = await client.start_new("entity_user", None, "orch-counter")
    status = await durable_client.wait(instance_id)

    assert status["runtimeStatus"] == "Completed"
    assert status["output"]["after_add"] == 7
    assert status["output"]["current"] == 7
    assert "counter refused" in status["output"]["error"]
    state = await client.read_entity_state(df.EntityId("Counter", "orch-counter"))
    assert state.entity_exists
    assert state.entity_state == 7
    sent = [e for e in durable_client.history(instance_id) if e["EventType"] == 14]
    assert [(e["EventId"], e["InstanceId"]) for e in sent][:2] == [
        (0, "@counter@orch-counter"),
        (1, "@counter@orch-counter"),
    ]
    assert json.loads(sent[0]["Input"])["signal"] is True


async def test_signals_from_http_are_persisted_and_applied_in_order(
    durable_client: HostClient,
) -> None:
    client = sdk_client(durable_client)
    entity = df.EntityId("Counter", "http-counter")
    assert not (await client.read_entity_state(entity)).entity_exists

    for amount in range(1, 11):
        await client.signal_entity(entity, "add", amount)
    assert await _engine(durable_client).wait_until_idle()
    assert (await client.read_entity_state(entity)).entity_state == 55

    await client.signal_entity(entity, "delete")
    assert await _engine(durable_client).wait_until_idle()
    assert not (await client.read_entity_state(entity)).entity_exists


async def test_signal_to_unknown_entity_is_refused(durable_client: HostClient) -> None:
    with pytest.raises(Exception, match="unexpected status code 400"):
        await sdk_client(durable_client).signal_entity(df.EntityId("Nope", "k"), "add", 1)


async def test_http_triggers_reach_the_entity(durable_client: HostClient) -> None:
    url = f"{durable_client.base}/api/counters/via-http"
    async with durable_client.session.post(f"{url}/add", data="4") as response:
        assert response.status == 202
    assert await _engine(durable_client).wait_until_idle()
    async with durable_client.session.get(url) as response:
        assert response.status == 200
        assert await response.json() == 4


async def test_timer_with_a_durable_client_starts_an_orchestration(
    durable_client: HostClient,
) -> None:
    url = f"{durable_client.base}/admin/functions/timer_starter"
    async with durable_client.session.post(url, json={}) as response:
        assert response.status == 202
    await durable_client.wait_for("from-timer", lambda s: s["runtimeStatus"] == "Completed")


async def test_activity_concurrency_follows_host_json() -> None:
    from localdev.host.testing import running_host
    from tests.support.host_apps import APPS

    async with running_host(APPS / "throttled_app") as host:
        assert host.config.hub_name == "ThrottledHub"
        assert host.engine is not None
        client = df.DurableOrchestrationClient(host.client_binding())
        instance_id = await client.start_new("naps")
        instance = await host.engine.wait_for_instance(instance_id, 20)
    assert instance is not None
    assert instance.runtime_status == "Completed"
    assert instance.output == "2"


async def test_concurrent_signals_from_clients_run_a_few_per_batch(
    durable_client: HostClient,
) -> None:
    """Issue 16: a client's signal waits `entity_signal_window` for more to join its batch, so
    a storm of signals costs a few entity executions (state loaded and saved once each), not
    one per signal; their order and effect stay the same."""
    client = sdk_client(durable_client)
    engine = _engine(durable_client)
    runner = engine._entities
    batches: list[int] = []
    run_batch = runner.run_batch

    async def counted(entity_id: str) -> set[str] | None:
        waiting = len(runner.store.entity_ops(entity_id, 1000))
        woken = await run_batch(entity_id)
        if waiting:
            batches.append(waiting)
        return woken

    runner.run_batch = counted  # type: ignore[method-assign]
    entity = df.EntityId("Counter", "storm-counter")
    for n in range(1, 21):  # one after the other, as a storm's triggers store them
        await client.signal_entity(entity, "add", n)
    assert await engine.wait_until_idle()
    assert (await client.read_entity_state(entity)).entity_state == 210
    assert sum(batches) == 20
    assert len(batches) <= 5, batches


async def test_an_orchestrations_entity_calls_do_not_wait_for_the_signal_window(
    durable_client: HostClient,
) -> None:
    engine = _engine(durable_client)
    engine._entity_signal_window = 60.0
    client = sdk_client(durable_client)
    instance_id = await client.start_new("entity_user", None, "windowless-counter")
    status = await asyncio.wait_for(durable_client.wait(instance_id), 20)
    assert status["output"]["current"] == 7

"""The drift use cases (`services.drift`), driven through their ports with hand-written fakes:
the Durable client of `durable_fakes` and an ARM that answers with bodies as ARM returns them
(`tests.support.drift_bodies`)."""

from __future__ import annotations

import asyncio
import copy
import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from appsettings import AppSettings
from orchestrators.drift import drift_instance_id
from outsystems.deployment import graph_of
from outsystems.drift import RECORD_DRIFT, DriftCheck
from outsystems.resource_types import NSG, SCALE_SET
from outsystems.spec import parse_spec
from outsystems.topology import Resource
from services import drift
from services.errors import ServiceError
from tests.support.drift_bodies import HAND_RULE, as_arm_returns
from tests.unit.durable_fakes import FakeDurableClient, Instance

SUB = "11111111-2222-3333-4444-555555555555"
SETTINGS = AppSettings.load({"AZURE_SUBSCRIPTION_ID": SUB})
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
SPEC = parse_spec(
    "acme", json.loads((EXAMPLES / "spec-farm.json").read_text()), default_subscription_id=SUB
).to_json_dict()
GRAPH = graph_of(SPEC)[1]
NOW = datetime(2026, 12, 3, 6, 0, tzinfo=UTC)


class FakeReader:
    """`services.ports.DriftReader` over a dict of live bodies (what the fake ARM holds)."""

    def __init__(self) -> None:
        self.bodies: dict[str, dict[str, Any]] = {r.id.lower(): as_arm_returns(r) for r in GRAPH}
        self.listed: list[Mapping[str, Any]] = []
        self.asked: list[tuple[str, str, str]] = []

    def read_live(
        self, subscription_id: str, resources: Sequence[Resource]
    ) -> list[Mapping[str, Any] | None]:
        return [copy.deepcopy(self.bodies.get(r.id.lower())) for r in resources]

    def platform_resources(
        self, subscription_id: str, resource_group: str, solution_id: str
    ) -> list[Mapping[str, Any]]:
        self.asked.append((subscription_id, resource_group, solution_id))
        return self.listed


def deployed(runtime: str = "Completed") -> FakeDurableClient:
    request = {"operation": "deploy", "operationId": "op-1", "spec": SPEC}
    return FakeDurableClient(
        instances={"platform-acme": Instance(runtime, None, request, {"status": "Succeeded"})}
    )


def complete(client: FakeDurableClient) -> None:
    """What `record_platform_drift` does once it ran: its output is its input."""
    instance = client.instances[drift_instance_id("acme")]
    instance.runtime_status = "Completed"
    instance.output = instance.input


def add_hand_rule(reader: FakeReader) -> str:
    nsg = next(r for r in GRAPH if r.type == NSG and r.body["properties"].get("securityRules"))
    reader.bodies[nsg.id.lower()]["properties"]["securityRules"].append(copy.deepcopy(HAND_RULE))
    return nsg.id


async def test_a_platform_never_checked_says_so_and_an_unknown_one_is_404() -> None:
    client = deployed()
    view = await drift.view(client, "acme")
    assert view.to_json() == {
        "solutionId": "acme",
        "status": "NeverChecked",
        "checkedAt": None,
        "drifted": None,
        "differences": [],
    }
    with pytest.raises(ServiceError) as raised:
        await drift.view(client, "other")
    assert raised.value.kind == "not_found"


async def test_a_check_records_the_result_with_its_time_and_announces_only_changes() -> None:
    client, reader = deployed(), FakeReader()
    first = await drift.check(client, reader, SETTINGS, "acme", NOW)
    assert first is not None
    assert (first.drift.drifted, first.changed, first.announce) == (False, False, False)
    assert client.starts == [drift_instance_id("acme")]
    assert reader.asked == [(SUB, "acme-rg", "acme")]
    complete(client)

    nsg_id = add_hand_rule(reader)
    second = await drift.check(client, reader, SETTINGS, "acme", NOW)
    assert second is not None
    assert second.announce
    assert [(d.resource_id, d.path) for d in second.drift.differences] == [
        (nsg_id, "properties.securityRules[rule1]")
    ]
    assert second.event_data()["differences"] == [
        {"resourceId": nsg_id, "path": "properties.securityRules[rule1]"}
    ]
    started = client.instances[drift_instance_id("acme")].input
    assert RECORD_DRIFT.read_request(started) == second
    complete(client)
    view = (await drift.view(client, "acme")).to_json()
    assert (view["status"], view["checkedAt"]) == ("Drifted", "2026-12-03T06:00:00Z")

    # The same drift again: recorded, not announced again.
    third = await drift.check(client, reader, SETTINGS, "acme", NOW)
    assert third is not None
    assert (third.drift, third.changed) == (second.drift, False)


async def test_the_scalers_capacity_is_not_drift() -> None:
    client, reader = deployed(), FakeReader()
    scale_set = next(r for r in GRAPH if r.type == SCALE_SET)
    reader.bodies[scale_set.id.lower()]["sku"]["capacity"] = 7
    result = await drift.check(client, reader, SETTINGS, "acme", NOW)
    assert result is not None
    assert result.drift.differences == ()


async def test_nothing_is_checked_while_an_operation_or_the_last_record_runs() -> None:
    client = deployed("Running")
    assert await drift.check(client, FakeReader(), SETTINGS, "acme", NOW) is None
    assert client.starts == []
    client = deployed()
    client.instances[drift_instance_id("acme")] = Instance("Running", None, {})
    assert await drift.check(client, FakeReader(), SETTINGS, "acme", NOW) is None
    assert client.starts == []


async def test_environments_torn_down_are_not_missing_resources() -> None:
    request = {
        "operation": "teardown",
        "operationId": "op-2",
        "spec": SPEC,
        "environments": ["dev"],
    }
    client = FakeDurableClient(
        instances={"platform-acme": Instance("Completed", None, request, {"status": "Succeeded"})}
    )
    reader = FakeReader()
    for resource in GRAPH:
        if resource.environment == "dev":
            del reader.bodies[resource.id.lower()]
    result = await drift.check(client, reader, SETTINGS, "acme", NOW)
    assert result is not None
    assert result.drift.differences == ()


def test_a_check_reads_back_from_its_json() -> None:
    reader = FakeReader()
    add_hand_rule(reader)
    client = deployed()
    result = asyncio.run(drift.check(client, reader, SETTINGS, "acme", NOW))
    assert result is not None
    assert DriftCheck.from_json(json.loads(json.dumps(result.to_json()))) == result

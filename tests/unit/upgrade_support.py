"""Platforms with an upgrade behind or in front of them, as the hand-written Durable client of
`durable_fakes` holds them: the upgrade tests of the services, the state and the triggers."""

from __future__ import annotations

import json
from typing import Any

from outsystems.messages import (
    EnvironmentOutputs,
    EnvironmentUpgrade,
    ServerUpgrade,
    SpecDocument,
    UpgradeProgress,
    UpgradeRequest,
    Versions,
)
from outsystems.spec import parse_spec
from tests.unit.durable_fakes import FakeDurableClient, Instance
from tests.unit.platform_fakes import SUB

INSTANCE = "platform-acme"
OLD = {"platformVersion": "11.31.0", "lifetimeVersion": "11.24.0"}
NEW = {"platformVersion": "11.32.0", "lifetimeVersion": "11.25.2"}
OUTPUTS = {"dev": EnvironmentOutputs(("10.0.1.4",), "https://dev.example/ServiceCenter")}


def spec(**fields: Any) -> dict[str, Any]:
    """A normalized spec document, as a deployment's input holds it."""
    body = {"location": "westeurope", **fields}
    return parse_spec("acme", body, default_subscription_id=SUB).to_json_dict()


def body(**fields: Any) -> bytes:
    return json.dumps({"location": "westeurope", **fields}).encode()


def deployed(status: str = "Succeeded", **fields: Any) -> FakeDurableClient:
    """A platform whose last operation is a deployment of a spec at the old versions."""
    request = {"operation": "deploy", "operationId": "d0", "spec": spec(**OLD, **fields)}
    output = {
        "status": status,
        "environments": {
            env: {"status": status, "resourcesDone": 1, "resourcesTotal": 1}
            for env in ("dev", "test", "prod", "life")
        },
        "outputs": {env: o.to_json() for env, o in OUTPUTS.items()},
    }
    instance = Instance("Completed", None, request, output, "2026-12-03T09:00:00Z")
    return FakeDurableClient(instances={INSTANCE: instance})


def progress(
    state: str = "Failed", awaiting: str | None = None, operation_id: str = "u1"
) -> UpgradeProgress:
    return UpgradeProgress(
        operation_id,
        Versions(OLD["platformVersion"], OLD["lifetimeVersion"]),
        Versions(NEW["platformVersion"], NEW["lifetimeVersion"]),
        state,  # type: ignore[arg-type]
        (
            EnvironmentUpgrade("life", "Succeeded", steps_done=2, steps_total=2),
            EnvironmentUpgrade("dev", "Succeeded", steps_done=2, steps_total=2),
            EnvironmentUpgrade(
                "prod",
                "Running" if state in ("Running", "AwaitingApproval") else state,  # type: ignore[arg-type]
                step="upgradeUpdating",
                servers=(
                    ServerUpgrade("acme-prod-fe_0", "Succeeded", "0", "updating", "11.32.0"),
                    ServerUpgrade("acme-prod-fe_1", "Running", "1", "updating"),
                ),
            ),
            EnvironmentUpgrade("test", "Pending"),
        ),
        awaiting,
    )


def upgrading(
    runtime: str, state: str, *, awaiting: str | None = None, as_output: bool = False
) -> FakeDurableClient:
    """A platform whose last operation is an upgrade from OLD to NEW."""
    request = UpgradeRequest(
        "u1",
        SpecDocument(spec(**NEW)),
        SpecDocument(spec(**OLD)),
        ("dev", "prod", "test"),
        outputs=OUTPUTS,
    ).to_json()
    shown = progress(state, awaiting).to_json()
    instance = Instance(
        runtime,
        None if as_output else shown,
        request,
        shown if as_output else None,
        "2026-12-03T10:00:00Z",
    )
    return FakeDurableClient(instances={INSTANCE: instance})


class RecordingClient(FakeDurableClient):
    """Keeps each event's data as well."""

    def __init__(self, instances: dict[str, Instance]) -> None:
        super().__init__(instances=instances)
        self.event_data: list[Any] = []

    async def raise_event(self, instance_id: str, event_name: str, event_data: Any = None) -> None:
        await super().raise_event(instance_id, event_name, event_data)
        self.event_data.append(event_data)


def awaiting(environment: str = "prod", runtime: str = "Running") -> RecordingClient:
    source = upgrading(runtime, "AwaitingApproval", awaiting=environment)
    return RecordingClient(source.instances)

"""Drift use cases: check a platform (or every managed one) against its live state, and show
the last check.

A check reads the platform's live resources (`services.ports.DriftReader`), compares them with
the graph of the spec of its last operation (`outsystems.drift`), changes nothing, and hands
the result to the platform's `record_platform_drift` instance (`orchestrators.drift`), which
keeps it in the task hub and publishes `outsystems.platform.drifted` when the set of
differences changed since the check before. Why there: the task hub is where the app already
keeps each platform's last operation, durable across restarts and read with the same client;
the orchestration publishes the event as every other event is published (an activity, with a
deterministic id and time). A platform whose operation is running is not checked (a deployment
half done is not drift).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from appsettings import AppSettings
from orchestrators.drift import drift_instance_id
from outsystems.drift import RECORD_DRIFT, Drift, DriftCheck, platform_drift
from outsystems.messages import TeardownRequest
from outsystems.times import utc_z
from services.errors import ServiceError, unknown_platform
from services.platform_state import RUNNING_STATES, json_value, runtime_status_of
from services.platforms import (
    deployment_tuning,
    last_platform_operation,
    list_platforms,
    standing_platform,
)
from services.ports import DriftReader, DurableClient, InstanceStatus, PlatformArm

log = logging.getLogger(__name__)

DriftStatus = Literal["NeverChecked", "InSync", "Drifted"]


@dataclass(frozen=True)
class DriftView:
    """A platform's last drift check as the drift route shows it (None: never checked)."""

    solution_id: str
    check: DriftCheck | None

    @property
    def status(self) -> DriftStatus:
        if self.check is None:
            return "NeverChecked"
        return "Drifted" if self.check.drift.drifted else "InSync"

    def to_json(self) -> dict[str, Any]:
        check = self.check
        return {
            "solutionId": self.solution_id,
            "status": self.status,
            "checkedAt": check.checked_at if check else None,
            "drifted": check.drift.drifted if check else None,
            "differences": (
                [d.to_json() for d in check.drift.differences] if check is not None else []
            ),
        }


def _check_of(status: InstanceStatus | None) -> DriftCheck | None:
    """The check a `record_platform_drift` instance holds: its output once it ended, its input
    while it publishes."""
    if runtime_status_of(status) is None or status is None:
        return None
    for value in (json_value(status.output), json_value(status.input_)):
        if isinstance(value, Mapping):
            try:
                return DriftCheck.from_json(value)
            except (KeyError, TypeError, ValueError):
                continue
    return None


async def last_check(client: DurableClient, solution_id: str) -> DriftCheck | None:
    """The platform's last drift check; None when it was never checked."""
    return _check_of(await client.get_status(drift_instance_id(solution_id), show_input=True))


async def view(client: DurableClient, solution_id: str) -> DriftView:
    """The last drift check of a known platform."""
    if await last_platform_operation(client, solution_id) is None:
        raise unknown_platform(solution_id)
    return DriftView(solution_id, await last_check(client, solution_id))


def _read_drift(arm: DriftReader, spec_json: Mapping[str, Any], gone: Sequence[str]) -> Drift:
    """Blocking: reads the live state and compares. `gone` are environments torn down."""
    from outsystems.deployment import graph_of
    from outsystems.topology import ResourceGraph

    spec, graph = graph_of(spec_json)
    if gone:
        graph = ResourceGraph.of(r for r in graph if r.environment not in gone)
    live = arm.read_live(spec.subscription_id, graph.resources)
    owned = arm.platform_resources(spec.subscription_id, spec.resource_group, spec.solution_id)
    bodies = {r.id: body for r, body in zip(graph.resources, live, strict=True)}
    return platform_drift(graph, bodies, owned, spec.solution_id)


async def check(
    client: DurableClient,
    arm: DriftReader,
    settings: AppSettings,
    solution_id: str,
    now: datetime,
) -> DriftCheck | None:
    """Check one platform and record the result; None when it was not checked (an operation
    of the platform is running, or its record is being written)."""
    standing = await standing_platform(client, solution_id)
    if standing is None:
        raise unknown_platform(solution_id)
    if standing.operation.running:
        log.info("drift of %s not checked: an operation is running", solution_id)
        return None
    instance_id = drift_instance_id(solution_id)
    previous = await client.get_status(instance_id, show_input=True)
    if runtime_status_of(previous) in RUNNING_STATES:
        log.info("drift of %s not checked: the last check is being recorded", solution_id)
        return None
    request = standing.operation.request
    gone = request.environments if isinstance(request, TeardownRequest) else ()
    drift = await asyncio.to_thread(_read_drift, arm, standing.spec.document, gone)
    before = _check_of(previous)
    changed = drift.fingerprint != (before.drift if before else Drift(())).fingerprint
    result = DriftCheck(solution_id, utc_z(now), drift, changed, deployment_tuning(settings))
    await client.start_new(RECORD_DRIFT.name, instance_id, result.to_json())
    log.info(
        "drift of %s: %d differences%s",
        solution_id,
        len(drift.differences),
        " (changed)" if changed else "",
    )
    return result


@dataclass(frozen=True)
class DriftReport:
    """What the drift timer did."""

    platforms: int
    checked: int
    drifted: int
    failed: int


async def check_all(
    client: DurableClient,
    arm: PlatformArm,
    reader: DriftReader,
    settings: AppSettings,
    now: datetime,
) -> DriftReport:
    """Check every platform the app manages (found by its tags in the managed subscriptions);
    one that fails to be checked is logged and does not stop the others."""
    listed = await list_platforms(client, arm, settings)
    checked = drifted = failed = 0
    for platform in listed:
        try:
            result = await check(client, reader, settings, platform.solution_id, now)
        except ServiceError:
            continue  # a platform the task hub does not know (or one torn down)
        except Exception:
            log.exception("drift check of %s failed", platform.solution_id)
            failed += 1
            continue
        if result is not None:
            checked += 1
            drifted += result.drift.drifted
    return DriftReport(len(listed), checked, drifted, failed)

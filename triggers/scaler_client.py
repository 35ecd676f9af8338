"""Handing a scale request to a scale set's scaler, the same way from every trigger.

`submit` stores the request in the scale set's entity (the durable client's `signal_entity`
returns once the host has stored the signal: from then on the request cannot be lost), then
`ensure_scaler` makes sure the scaler runs: a running one is woken (a hint: it re-reads the
entity), a stopped one is started. Two triggers may race to start it; the loser sees it running
and wakes it instead.
"""

from __future__ import annotations

import logging
from typing import Any

import azure.durable_functions as df

from appsettings import AppSettings
from orchestrators.scale_requests import scale_set_entity
from orchestrators.scaler import WAKE_EVENT, scaler_input, scaler_instance_id
from outsystems.scaling import ScaleRequest
from triggers.platform_state import RUNNING_STATES

log = logging.getLogger(__name__)


def scaler_tuning(settings: AppSettings) -> dict[str, float]:
    """Polling pace and cooldown scale of the scaler, from settings (kept in its input)."""
    return {
        "pollSeconds": settings.operation_poll_seconds,
        "cooldownScale": settings.scaling_cooldown_scale,
    }


async def submit(
    client: df.DurableOrchestrationClient,
    scale_set_id: str,
    solution_id: str | None,
    request: ScaleRequest,
    request_id: str,
    settings: AppSettings,
) -> None:
    """Store one request durably and make sure the scale set's scaler will decide it."""
    await client.signal_entity(
        scale_set_entity(scale_set_id),
        "add",
        {
            "id": request_id,
            "scaleSet": scale_set_id,
            "solutionId": solution_id,
            "request": ScaleRequest.to_json(request),
        },
    )
    await ensure_scaler(client, scale_set_id, settings)


async def runtime_status(client: df.DurableOrchestrationClient, instance_id: str) -> str | None:
    """The runtime status of an orchestration instance; None when there is none."""
    status = await client.get_status(instance_id)
    if status is None or status.runtime_status is None:
        return None
    value: Any = status.runtime_status
    return str(getattr(value, "value", value))


async def ensure_scaler(
    client: df.DurableOrchestrationClient, scale_set_id: str, settings: AppSettings
) -> str:
    """Wake the scale set's scaler, or start it; returns `woken`, `started` or `deferred`.

    `deferred`: the status kept changing under us; the request is stored, and the scaling
    timer starts the scaler of any scale set with pending requests.
    """
    instance_id = scaler_instance_id(scale_set_id)
    for _ in range(3):
        # A running scaler looks at its entity again without being started.
        if await runtime_status(client, instance_id) in RUNNING_STATES:
            try:
                await client.raise_event(instance_id, WAKE_EVENT, None)
            # The client raises a plain Exception for every refusal; here the scaler finished
            # between the status and the event (410/404): start a new one.
            except Exception as error:
                log.info("scaler %s could not be woken (%s); starting it", instance_id, error)
            else:
                return "woken"
        try:
            await client.start_new(
                "scale_frontends", instance_id, scaler_input(scale_set_id, scaler_tuning(settings))
            )
        # Refused because another trigger started it in between: wake that one instead.
        except Exception as error:
            log.info("scaler %s not started (%s); looking again", instance_id, error)
            continue
        log.info("scaler %s started", instance_id)
        return "started"
    log.warning("scaler %s neither woken nor started; the scaling timer will", instance_id)
    return "deferred"

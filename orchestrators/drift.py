"""A platform's last drift check, kept in the task hub, and its `outsystems.platform.drifted`.

`services.drift` compares the platform with its live state and starts `record_platform_drift`
with what it found (`outsystems.drift.DriftCheck`). The instance (one per platform,
`drift_instance_id`) is where the last check lives: its input and output are the check, durable
in the task hub like the platform's operations, and read back by the drift route. Starting it
again replaces the previous check. It publishes the event (deterministic id and time, through
the `publish_event` activity like every other event) when the set of differences changed.
"""

from __future__ import annotations

import azure.durable_functions as df

from orchestrators.calls import Calls, Steps, orchestration
from outsystems.drift import RECORD_DRIFT, DriftCheck
from outsystems.events import EventType

bp = df.Blueprint()


def drift_instance_id(solution_id: str) -> str:
    """The orchestration instance that holds a platform's last drift check."""
    return f"drift-{solution_id}"


@bp.orchestration_trigger(context_name="context")
@orchestration(RECORD_DRIFT)
def record_platform_drift(
    context: df.DurableOrchestrationContext, request: DriftCheck
) -> Steps[DriftCheck]:
    """Keep the check; announce drift that is new or different since the last check."""
    if request.announce:
        calls = Calls(context, request.tuning)
        yield calls.event(EventType.PLATFORM_DRIFTED, request.solution_id, request.event_data())
    return request

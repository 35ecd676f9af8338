"""Activities of the scaler: read a scale set (ownership, capacity, policy tags), set its capacity.

Thin and idempotent: setting a capacity twice sets it once. `set_scale_set_capacity` starts the
PATCH and returns the operation at once; the scaler polls it (`check_operations`) after durable
timers. Transient ARM failures raise so that Durable's retry applies.
"""

from __future__ import annotations

import logging

import azure.durable_functions as df

from activities.redaction import redacting
from activities.typed import serves
from outsystems.messages import (
    INSPECT_SCALE_SET,
    LIST_SCALE_SET_SERVERS,
    SET_SCALE_SET_CAPACITY,
    CapacityRequest,
    Operation,
    ScaleSetInfo,
    ScaleSetInspection,
    ScaleSetRef,
)
from outsystems.resource_types import subscription_of

bp = df.Blueprint()
log = logging.getLogger(__name__)


@bp.activity_trigger(input_name="request")
@redacting
@serves(INSPECT_SCALE_SET)
def inspect_scale_set(request: ScaleSetRef) -> ScaleSetInspection:
    """The scale set as the scaler sees it: exists, managed (its tags signed by this app),
    solution, capacity, policy tags, and `ceiling`, the `SCALING_MAX_CAPACITY` setting.

    A scale set outside the managed subscriptions is not read at all.
    """
    from appsettings import AppSettings
    from arm.client import sender
    from arm.operations import TransientArmError
    from arm.scale_sets import ScaleSetReadError, read_scale_set, scaling_key
    from outsystems.scale_set_lookup import foreign_reason

    settings = AppSettings.load()
    scale_set_id = request.scale_set_id
    foreign = foreign_reason(scale_set_id, settings.all_subscription_ids)
    if foreign is not None:
        info = ScaleSetInfo(scale_set_id, exists=False, problem=foreign)
    else:
        try:
            info = read_scale_set(
                sender(subscription_of(scale_set_id)), scale_set_id, scaling_key()
            )
        except ScaleSetReadError as error:
            # Durable retries the activity; the message says what ARM answered.
            raise TransientArmError(str(error)) from error
    return ScaleSetInspection(info, settings.scaling_max_capacity)


@bp.activity_trigger(input_name="request")
@redacting
@serves(SET_SCALE_SET_CAPACITY)
def set_scale_set_capacity(request: CapacityRequest) -> Operation:
    """Start the PATCH of `sku.capacity`; returns the operation (see `arm.operations`)."""
    from activities.resources import redacted_operation
    from arm.client import sender
    from arm.operations import begin_patch
    from arm.scale_sets import SCALE_SET_API_VERSION

    scale_set_id = request.scale_set_id
    capacity = request.capacity
    operation = begin_patch(
        sender(subscription_of(scale_set_id)),
        scale_set_id,
        SCALE_SET_API_VERSION,
        {"sku": {"capacity": capacity}},
    )
    log.info("PATCH capacity %d of %s: %s", capacity, scale_set_id, operation.status)
    return redacted_operation(operation, request.solution_id)


@bp.activity_trigger(input_name="request")
@redacting
@serves(LIST_SCALE_SET_SERVERS)
def list_scale_set_servers(request: ScaleSetRef) -> list[str]:
    """The computer names of the scale set's instances (sorted), which name them as servers in
    Service Center; the scaler compares them across a scale-in."""
    from arm.live import list_all
    from arm.scale_sets import SCALE_SET_API_VERSION

    scale_set_id = request.scale_set_id
    instances = list_all(
        subscription_of(scale_set_id),
        f"{scale_set_id}/virtualMachines?api-version={SCALE_SET_API_VERSION}",
    )
    names = {
        str(((i.get("properties") or {}).get("osProfile") or {}).get("computerName") or i["name"])
        for i in instances
    }
    return sorted(names)

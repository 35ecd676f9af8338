"""Activities of a platform upgrade (issue 17): thin, idempotent adapters over `arm.upgrade`.

None waits on a long operation: each starts at most one and returns it; the upgrade
orchestration polls it with `check_operations` after durable timers and, for Run Command and
backend health, reads the result with `read_action_result`. Each may run twice (Durable
retries, a resumed upgrade): what is done already is not done again. Transient ARM failures,
and a target still busy with the first run's operation, raise so that Durable's retry applies.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import azure.durable_functions as df

from activities.redaction import redacting
from activities.typed import serves
from outsystems.messages import (
    BEGIN_BACKEND_HEALTH,
    BEGIN_DATABASE_COPY,
    BEGIN_DELETE_INSTANCES,
    BEGIN_MANUAL_UPGRADE,
    BEGIN_RUN_COMMAND,
    BEGIN_SWITCH_GATEWAY,
    READ_ACTION_RESULT,
    READ_SCALE_SET_INSTANCES,
    ActionOutcome,
    DatabaseCopyRequest,
    GatewayRef,
    GatewaySwitch,
    InstancesRequest,
    Operation,
    RunCommandRequest,
    ScaleSetInstance,
    ScaleSetRef,
)
from outsystems.resource_types import subscription_of

if TYPE_CHECKING:
    from arm.operations import Sender

# Function-local imports: see `docs/architecture.md`, "Cold start".

bp = df.Blueprint()
log = logging.getLogger(__name__)


@bp.activity_trigger(input_name="request")
@redacting
@serves(BEGIN_DATABASE_COPY)
def begin_database_copy(request: DatabaseCopyRequest) -> Operation:
    """Start the copy of a database (the upgrade's restore point); an existing copy is kept."""
    from activities.resources import redacted_operation
    from arm.client import sender
    from arm.upgrade import begin_database_copy as begin

    operation = begin(
        sender(request.subscription_id), request.source_database_id, request.copy_name
    )
    log.info("copy %s of %s: %s", request.copy_name, request.source_database_id, operation.status)
    return redacted_operation(operation, request.solution_id)


@bp.activity_trigger(input_name="request")
@redacting
@serves(BEGIN_RUN_COMMAND)
def begin_run_command(request: RunCommandRequest) -> Operation:
    """Start the setup script in a front-end mode on one instance (Run Command)."""
    from activities.resources import redacted_operation
    from arm.client import sender
    from arm.upgrade import begin_run_command as begin

    operation = begin(
        sender(request.subscription_id), request.scale_set_id, request.instance_id, request.mode
    )
    log.info(
        "run -Mode %s on instance %s of %s: %s",
        request.mode,
        request.instance_id,
        request.scale_set_id,
        operation.status,
    )
    return redacted_operation(operation, request.solution_id)


@bp.activity_trigger(input_name="request")
@redacting
@serves(BEGIN_MANUAL_UPGRADE)
def begin_manual_upgrade(request: InstancesRequest) -> Operation:
    """Start the upgrade of instances to the scale set's latest model (those not on it yet)."""
    from arm.upgrade import begin_manual_upgrade as begin

    return _instances_action("upgrade", begin, request)


@bp.activity_trigger(input_name="request")
@redacting
@serves(BEGIN_DELETE_INSTANCES)
def begin_delete_instances(request: InstancesRequest) -> Operation:
    """Start deleting instances (the upgrade's temporary ones); those gone count as deleted."""
    from arm.upgrade import begin_delete_instances as begin

    return _instances_action("delete", begin, request)


def _instances_action(
    what: str, begin: Callable[[Sender, str, Sequence[str]], Operation], request: InstancesRequest
) -> Operation:
    from activities.resources import redacted_operation
    from arm.client import sender

    operation = begin(sender(request.subscription_id), request.scale_set_id, request.instance_ids)
    log.info(
        "%s instances %s of %s: %s",
        what,
        ",".join(request.instance_ids),
        request.scale_set_id,
        operation.status,
    )
    return redacted_operation(operation, request.solution_id)


@bp.activity_trigger(input_name="request")
@redacting
@serves(READ_SCALE_SET_INSTANCES)
def read_scale_set_instances(request: ScaleSetRef) -> list[ScaleSetInstance]:
    """The scale set's instances: address, model, state and the setup script's last outcome."""
    from arm.client import sender
    from arm.secrets import redact
    from arm.upgrade import read_instances

    instances = read_instances(sender(subscription_of(request.scale_set_id)), request.scale_set_id)
    # The script's last line may quote what it read: never let a secret into history.
    return [
        i._replace(setup_message=redact(i.setup_message)) if i.setup_message else i
        for i in instances
    ]


@bp.activity_trigger(input_name="request")
@redacting
@serves(BEGIN_SWITCH_GATEWAY)
def begin_switch_gateway(request: GatewaySwitch) -> Operation:
    """Start the one PUT that sends the gateway's traffic to these addresses only (or back to
    the scale set's own pool); nothing to do when it routes so already."""
    from activities.resources import redacted_operation
    from arm.client import sender
    from arm.upgrade import begin_switch_gateway as begin

    operation = begin(sender(request.subscription_id), request.gateway_id, request.addresses)
    log.info(
        "gateway %s to %s: %s",
        request.gateway_id,
        "its own pool" if request.addresses is None else ",".join(request.addresses),
        operation.status,
    )
    return redacted_operation(operation, request.solution_id)


@bp.activity_trigger(input_name="request")
@redacting
@serves(BEGIN_BACKEND_HEALTH)
def begin_backend_health(request: GatewayRef) -> Operation:
    """Start the gateway's backend-health action (read with `read_action_result`)."""
    from activities.resources import redacted_operation
    from arm.client import sender
    from arm.upgrade import begin_backend_health as begin

    operation = begin(sender(request.subscription_id), request.gateway_id)
    return redacted_operation(operation, request.solution_id)


@bp.activity_trigger(input_name="request")
@redacting
@serves(READ_ACTION_RESULT)
def read_action_result(request: Operation) -> ActionOutcome:
    """What a finished Run Command or backend-health action answered: the script's last line
    (and whether it reported success), or each backend address's health in ARM's own words
    (`ApplicationGatewayBackendHealthServer.health`: Unknown, Up, Down, Partial, Draining)."""
    from arm.client import connection, sender
    from arm.secrets import redact
    from arm.upgrade import read_action_result as read

    outcome = read(sender(subscription_of(request.resource_id)), request, connection().endpoint)
    return outcome._replace(message=redact(outcome.message)) if outcome.message else outcome

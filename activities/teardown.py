"""Activities of a teardown: find what ARM lists as the platform's, delete, drop the group."""

from __future__ import annotations

import logging
from typing import Any

import azure.durable_functions as df

from arm.secrets import redacting
from outsystems.tags import ENVIRONMENT_TAG, SOLUTION_TAG, owned_by, tag_value

bp = df.Blueprint()
log = logging.getLogger(__name__)


def _role_assignments(spec: dict[str, Any] | None) -> list[dict[str, str]]:
    """The role assignments the platform's graph grants (ARM lists them with no tags).

    Deleting one that is already gone succeeds, so they are listed without reading them.
    """
    if not spec:
        return []
    from outsystems.deployment import graph_of
    from outsystems.resource_types import ROLE_ASSIGNMENT

    _, graph = graph_of(spec)
    return [
        {"id": r.id, "type": r.type, "environment": r.environment}
        for r in graph
        if r.type == ROLE_ASSIGNMENT
    ]


@bp.activity_trigger(input_name="request")
@redacting
def list_platform_resources(request: dict[str, Any]) -> list[dict[str, str]]:
    """The top-level resources tagged as this platform's, managed by this app."""
    from azure.core.exceptions import HttpResponseError

    from arm.live import resources_in_group

    solution = request["solutionId"]
    try:
        listed = resources_in_group(
            request["subscriptionId"], request["resourceGroup"], (SOLUTION_TAG, solution)
        )
    except HttpResponseError as error:
        if error.status_code == 404:
            return []  # the resource group is gone: nothing left to delete
        raise
    found = _role_assignments(request.get("spec"))
    for item in listed:
        tags = item.get("tags")
        if not owned_by(tags, solution):
            continue
        found.append(
            {
                "id": item["id"],
                "type": item["type"],
                "environment": tag_value(tags, ENVIRONMENT_TAG) or "",
            }
        )
    return found


@bp.activity_trigger(input_name="request")
@redacting
def begin_delete_resource(request: dict[str, Any]) -> dict[str, Any]:
    """Start deleting one resource; an absent resource counts as deleted."""
    from arm.client import sender
    from arm.operations import begin_delete

    operation = begin_delete(
        sender(request["subscriptionId"]), request["resourceId"], request["apiVersion"]
    )
    log.info("DELETE %s: %s", request["resourceId"], operation.status)
    return operation.to_dict()


@bp.activity_trigger(input_name="request")
@redacting
def begin_delete_resource_group(request: dict[str, Any]) -> dict[str, Any]:
    """Delete the platform's resource group if this app created it and it is now empty.

    Returns the delete operation, or a succeeded no-op with `kept` saying why it stays.
    """
    from arm.client import sender
    from arm.live import RESOURCES_API_VERSION, resources_in_group
    from arm.operations import begin_delete, get_resource

    subscription, group = request["subscriptionId"], request["resourceGroup"]
    client = sender(subscription)
    group_id = f"/subscriptions/{subscription}/resourceGroups/{group}"
    live = get_resource(client, group_id, RESOURCES_API_VERSION)
    kept = {"resource_id": group_id, "method": "DELETE", "status": "Succeeded"}
    if live is None:
        return {**kept, "kept": "already deleted"}
    if not owned_by(live.get("tags"), request["solutionId"]):
        return {**kept, "kept": "the resource group was not created by this app"}
    remaining = resources_in_group(subscription, group)
    if remaining:
        return {**kept, "kept": f"the resource group still holds {len(remaining)} resources"}
    return begin_delete(client, group_id, RESOURCES_API_VERSION).to_dict()

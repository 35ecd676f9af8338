"""Activities of a teardown: find what ARM lists as the platform's, delete, drop the group."""

from __future__ import annotations

import logging

import azure.durable_functions as df

from activities.redaction import redacting
from activities.typed import serves
from outsystems.messages import (
    BEGIN_DELETE_RESOURCE,
    BEGIN_DELETE_RESOURCE_GROUP,
    LIST_PLATFORM_RESOURCES,
    DeleteRequest,
    FoundResource,
    GroupRequest,
    ListRequest,
    Operation,
    SpecDocument,
)
from outsystems.tags import ENVIRONMENT_TAG, owned_by, tag_value

bp = df.Blueprint()
log = logging.getLogger(__name__)


def _role_assignments(spec: SpecDocument | None) -> list[FoundResource]:
    """The role assignments the platform's graph grants (ARM lists them with no tags).

    Deleting one that is already gone succeeds, so they are listed without reading them.
    """
    if spec is None:
        return []
    from outsystems.resource_types import ROLE_ASSIGNMENT

    _, graph = spec.parsed()
    return [FoundResource(r.id, r.type, r.environment) for r in graph if r.type == ROLE_ASSIGNMENT]


@bp.activity_trigger(input_name="request")
@redacting
@serves(LIST_PLATFORM_RESOURCES)
def list_platform_resources(request: ListRequest) -> list[FoundResource]:
    """The top-level resources tagged as this platform's, managed by this app."""
    from azure.core.exceptions import HttpResponseError

    from arm.live import resources_in_group

    solution = request.solution_id
    try:
        # Not filtered on the solution tag: ARM leaves the tags out of a tag-filtered list
        # (Resources - List By Resource Group, `$filter`, resources.json 2021-04-01), and the
        # tags are what proves a resource is the platform's and the app's.
        listed = resources_in_group(request.subscription_id, request.resource_group)
    except HttpResponseError as error:
        if error.status_code == 404:
            return []  # the resource group is gone: nothing left to delete
        raise
    found = _role_assignments(request.spec)
    for item in listed:
        tags = item.get("tags")
        if not owned_by(tags, solution):
            continue
        found.append(
            FoundResource(item["id"], item["type"], tag_value(tags, ENVIRONMENT_TAG) or "")
        )
    return found


@bp.activity_trigger(input_name="request")
@redacting
@serves(BEGIN_DELETE_RESOURCE)
def begin_delete_resource(request: DeleteRequest) -> Operation:
    """Start deleting one resource; an absent resource counts as deleted."""
    from arm.client import sender
    from arm.operations import begin_delete

    operation = begin_delete(
        sender(request.subscription_id), request.resource_id, request.api_version
    )
    log.info("DELETE %s: %s", request.resource_id, operation.status)
    return operation


@bp.activity_trigger(input_name="request")
@redacting
@serves(BEGIN_DELETE_RESOURCE_GROUP)
def begin_delete_resource_group(request: GroupRequest) -> Operation:
    """Delete the platform's resource group if this app created it and it is now empty.

    Returns the delete operation, or a succeeded one that sent nothing, `kept` saying why the
    group stays.
    """
    from arm.client import sender
    from arm.live import RESOURCES_API_VERSION, resources_in_group
    from arm.operations import begin_delete, get_resource

    client = sender(request.subscription_id)
    group_id = request.group_id

    def kept(why: str) -> Operation:
        return Operation(group_id, "DELETE", "Succeeded", RESOURCES_API_VERSION, kept=why)

    live = get_resource(client, group_id, RESOURCES_API_VERSION)
    if live is None:
        return kept("already deleted")
    if not owned_by(live.get("tags"), request.solution_id):
        return kept("the resource group was not created by this app")
    remaining = resources_in_group(request.subscription_id, request.resource_group)
    if remaining:
        return kept(f"the resource group still holds {len(remaining)} resources")
    return begin_delete(client, group_id, RESOURCES_API_VERSION)

"""The ARM reads behind the pre-flight checks of a spec (rules: `outsystems.preflight`).

Reads the platform's resource group, the user's subnets (`network.existingSubnetIds`) and the
route tables on the environments' subnets, in parallel, and hands them to the pure rules.
Subnets outside the allowed VNets are refused before anything is read. A 404 is "missing", a
refusal (403, ...) an error the rules name; transient failures (408, 429, 5xx after the
pipeline's retries) raise `TransientArmError`, for the caller to answer 503.
"""

from __future__ import annotations

from collections.abc import Sequence

from azure.core.rest import HttpRequest

from arm.live import parallel
from arm.operations import Sender, TransientArmError, error_of, raise_for_status
from outsystems.errors import FieldError
from outsystems.names import NamingScheme
from outsystems.preflight import (
    Read,
    allowed_vnet_problems,
    existing_subnets,
    resource_group_problems,
    route_table_ids,
    subnet_problems,
)
from outsystems.resource_types import RESOURCE_GROUP, SUBNET, api_version
from outsystems.spec import PlatformSpec
from outsystems.tags import NAMING_TAG, SOLUTION_TAG, tag_value

NETWORK_API_VERSION = api_version(SUBNET)
GROUP_API_VERSION = api_version(RESOURCE_GROUP)
#: Retried later rather than judged now.
_TRANSIENT = frozenset({408, 429})

__all__ = ["TransientArmError", "preflight_problems", "read"]


def read(sender: Sender, resource_id: str, version: str) -> Read:
    """One GET: the body, missing (404), or ARM's refusal as text."""
    response = sender.send_request(HttpRequest("GET", f"{resource_id}?api-version={version}"))
    status = response.status_code
    if status == 404:
        return Read()
    if 400 <= status < 500 and status not in _TRANSIENT:
        error = error_of(response, resource_id)
        return Read(error=f"{error.code}: {error.message[:300]}")
    raise_for_status(response, resource_id)  # TransientArmError for 408, 429 and 5xx
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise TransientArmError(f"{resource_id}: ARM answered {status} without a JSON body")
    return Read(body)


def preflight_problems(spec: PlatformSpec, allowed_vnet_ids: Sequence[str]) -> list[FieldError]:
    """Every problem of the spec against what exists in its subscription (empty: go ahead)."""
    from arm.client import sender

    fenced = allowed_vnet_problems(spec, allowed_vnet_ids)
    if fenced:
        return fenced  # never read what the app may not use
    client = sender(spec.subscription_id)
    subnets = existing_subnets(spec)
    group_id = f"/subscriptions/{spec.subscription_id}/resourceGroups/{spec.resource_group}"
    targets = [(group_id, GROUP_API_VERSION)] + [
        (subnet_id, NETWORK_API_VERSION) for subnet_id in subnets.values()
    ]
    reads = parallel(lambda target: read(client, *target), targets)
    group, subnet_reads = reads[0], dict(zip(subnets, reads[1:], strict=True))
    tables = route_table_ids(subnet_reads)
    table_reads = parallel(lambda table: read(client, table, NETWORK_API_VERSION), tables)
    return [
        *resource_group_problems(spec, group),
        *subnet_problems(spec, subnet_reads, dict(zip(tables, table_reads, strict=True))),
    ]


def deployed_naming(spec: PlatformSpec) -> NamingScheme | None:
    """The naming scheme the platform's resources in Azure were created with; None when none
    of them exist (a new platform).

    The resource group's `osNaming` tag says it; a group without the tag that holds resources
    of the platform was deployed before naming schemes existed (`legacy`).
    """
    from arm.client import sender
    from arm.live import resources_in_group

    group_id = f"/subscriptions/{spec.subscription_id}/resourceGroups/{spec.resource_group}"
    group = read(sender(spec.subscription_id), group_id, GROUP_API_VERSION)
    if group.body is None:
        return None
    recorded = tag_value(group.body.get("tags"), NAMING_TAG)
    if recorded in ("marketplace", "legacy"):
        return "legacy" if recorded == "legacy" else "marketplace"
    ours = resources_in_group(
        spec.subscription_id, spec.resource_group, (SOLUTION_TAG, spec.solution_id)
    )
    return "legacy" if ours else None

"""The production adapters of the services' ARM ports, over `arm/`.

The triggers hand these to the services; the unit tests hand fakes. The `arm` modules behind
them load the Azure SDKs, so they are imported where they are used (`docs/architecture.md`,
"Cold start").
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from outsystems.messages import ScaleSetInfo
from outsystems.resource_types import subscription_of
from services.ports import ArmUnavailableError

if TYPE_CHECKING:
    from arm.scale_sets import ManagedScaleSets
    from outsystems.errors import FieldError
    from outsystems.names import NamingScheme
    from outsystems.spec import PlatformSpec
    from outsystems.topology import Resource


class AzurePlatformArm:
    """`services.ports.PlatformArm` on ARM (the app's identity, cached clients)."""

    def deployed_naming(self, spec: PlatformSpec) -> NamingScheme | None:
        from arm.operations import TransientArmError
        from arm.preflight import deployed_naming

        try:
            return deployed_naming(spec)
        except TransientArmError as error:
            raise ArmUnavailableError(str(error)) from error

    def preflight_problems(
        self, spec: PlatformSpec, allowed_vnet_ids: Sequence[str]
    ) -> list[FieldError]:
        from arm.operations import TransientArmError
        from arm.preflight import preflight_problems

        try:
            return preflight_problems(spec, allowed_vnet_ids)
        except TransientArmError as error:
            raise ArmUnavailableError(str(error)) from error

    def read_live(
        self, subscription_id: str, resources: Sequence[Resource]
    ) -> list[Mapping[str, Any] | None]:
        from arm.live import read_live

        return list(read_live(subscription_id, resources))

    def resource_groups(self, subscription_ids: Sequence[str]) -> list[list[Mapping[str, Any]]]:
        from arm.live import parallel, resource_groups

        return [list(groups) for groups in parallel(resource_groups, subscription_ids)]

    def platform_resources(
        self, subscription_id: str, resource_group: str, solution_id: str
    ) -> list[Mapping[str, Any]]:
        """`services.ports.DriftReader.platform_resources`: the whole group, with tags.

        Not filtered on the solution tag by ARM: "When you filter by a tag name and value, the
        tags for each resource are not returned in the results" (the `$filter` of Resources -
        List By Resource Group, as azure-mgmt-resource 26.0.0 documents it from the REST specs:
        `azure/mgmt/resource/resources/operations/_operations.py`,
        `ResourcesOperations.list_by_resource_group`), and the caller needs the tags to tell
        the platform's resources (`outsystems.tags.owned_by`).
        """
        from azure.core.exceptions import HttpResponseError

        from arm.live import resources_in_group
        from arm.operations import TransientArmError

        try:
            return list(resources_in_group(subscription_id, resource_group))
        except TransientArmError as error:
            raise ArmUnavailableError(str(error)) from error
        except HttpResponseError as error:
            if error.status_code == 404:  # the group is gone: it holds nothing
                return []
            raise


class AzureScaleSets:
    """`services.ports.ScaleSetArm` on ARM."""

    def read_scale_set(self, scale_set_id: str) -> ScaleSetInfo:
        from arm.client import sender
        from arm.scale_sets import read_scale_set, scaling_key

        return read_scale_set(sender(subscription_of(scale_set_id)), scale_set_id, scaling_key())

    def list_scale_sets(self, subscription_id: str) -> list[ScaleSetInfo]:
        from arm.client import sender
        from arm.scale_sets import list_scale_sets, scaling_key

        return list(list_scale_sets(sender(subscription_id), subscription_id, scaling_key()))


# --- The webhook's quick look-up ---------------------------------------------------------------

#: How long the webhook waits for ARM about one scale set (the targets are read side by side).
LOOKUP_DEADLINE_SECONDS = 0.6
#: How long it trusts what it learnt: a managed scale set, and anything else.
MANAGED_TTL_SECONDS = 60.0
UNMANAGED_TTL_SECONDS = 10.0

_directories: dict[str, ManagedScaleSets] = {}


def managed_scale_sets(endpoint: str) -> ManagedScaleSets:
    """The process's cache of what ARM at `endpoint` says about scale sets
    (`services.ports.ScaleSetDirectory`)."""
    from arm.scale_sets import ManagedScaleSets
    from outsystems.alerts import MAX_ALERT_TARGETS

    key = endpoint.lower()
    directory = _directories.get(key)
    if directory is None:
        directory = ManagedScaleSets(
            _quick_reader(endpoint),
            ttl=MANAGED_TTL_SECONDS,
            negative_ttl=UNMANAGED_TTL_SECONDS,
            deadline=LOOKUP_DEADLINE_SECONDS,
            max_reads=MAX_ALERT_TARGETS,
        )
        _directories[key] = directory
    return directory


def _quick_reader(endpoint: str) -> Any:
    def read(resource_id: str) -> ScaleSetInfo:
        from azure.mgmt.resource.resources import ResourceManagementClient

        from arm.scale_sets import quick_connection, read_scale_set, scaling_key

        client = quick_connection(endpoint).client(
            ResourceManagementClient, subscription_of(resource_id)
        )
        return read_scale_set(
            client,
            resource_id,
            scaling_key(),
            connection_timeout=LOOKUP_DEADLINE_SECONDS,
            read_timeout=LOOKUP_DEADLINE_SECONDS,
        )

    return read

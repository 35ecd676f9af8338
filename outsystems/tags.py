"""The tags that mark what this app made, and the one way to read them.

Every taggable resource of a platform carries `managedBy: outsystems-azure-ops`, the platform's
`osSolutionId` and its `osEnvironment`; ARM is the source of truth, so ownership is read back
from these tags (a teardown deletes, the timer scales and the list shows only what they mark as
ours), always by `owned_by`/`managed_solution`, so that no caller counts as ours what another
counts as foreign. ARM compares tag names case-insensitively and values exactly ("Use tags to
organize your Azure resources",
https://learn.microsoft.com/azure/azure-resource-manager/management/tag-resources: "Tag names
are case-insensitive for operations. [...] Tag values are case-sensitive."): so do these.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

#: Tags this app puts on every taggable resource it creates; `managedBy` marks ownership.
MANAGED_BY_TAG: Final = "managedBy"
MANAGED_BY_VALUE: Final = "outsystems-azure-ops"
SOLUTION_TAG: Final = "osSolutionId"
ENVIRONMENT_TAG: Final = "osEnvironment"
PLATFORM_TAG_KEYS: Final = (MANAGED_BY_TAG, SOLUTION_TAG, ENVIRONMENT_TAG)
#: On the resource group: the naming scheme the platform's resources were created with.
NAMING_TAG: Final = "osNaming"

#: Azure's limits on tags (same page, "Limitations"): 50 per resource, names of 512 characters
#: at most (128 on storage accounts: the app holds every name to that), values of 256.
MAX_TAGS_PER_RESOURCE: Final = 50
TAG_KEY_MAX: Final = 128
TAG_VALUE_MAX: Final = 256


def tag_value(tags: Mapping[str, object] | None, name: str) -> str | None:
    """The value of the tag `name` (its name compared case-insensitively), None if absent."""
    wanted = name.lower()
    for key, value in (tags or {}).items():
        if str(key).lower() == wanted:
            return None if value is None else str(value)
    return None


def managed_solution(tags: Mapping[str, object] | None) -> str | None:
    """The solution id of a resource this app manages, None for any other."""
    solution = tag_value(tags, SOLUTION_TAG)
    return solution if tag_value(tags, MANAGED_BY_TAG) == MANAGED_BY_VALUE and solution else None


def owned_by(tags: Mapping[str, object] | None, solution_id: str) -> bool:
    """Whether the tags mark a resource this app made for the platform `solution_id`."""
    return managed_solution(tags) == solution_id


def keep_foreign_tags(
    desired: Mapping[str, str], live: Mapping[str, object] | None
) -> dict[str, str]:
    """The tags to PUT on a resource the app shares with others (a resource group whose owner
    tagged it for the platform): the desired ones, plus every live tag the app does not set."""
    ours = {name.lower() for name in desired}
    kept = {
        str(name): str(value)
        for name, value in (live or {}).items()
        if str(name).lower() not in ours
    }
    return {**kept, **desired}

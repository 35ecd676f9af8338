"""Checks of single fields of the spec, and how a model reports problems across fields.

Each check raises `ValueError` with a message a person can act on; pydantic attaches the field's
path. A model validator that finds problems at several paths below it raises `ProblemsError`
(`raise_problems`); `outsystems.spec.reporting` turns both into `FieldError`s.
"""

from __future__ import annotations

import difflib
import re
from functools import lru_cache
from typing import Annotated, Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from pydantic import AfterValidator, BaseModel, ConfigDict, StrictStr
from pydantic.alias_generators import to_camel

from outsystems.names import is_valid_solution_id
from outsystems.policy import POLICY_TAG_PREFIX
from outsystems.tags import NAMING_TAG, PLATFORM_TAG_KEYS, TAG_KEY_MAX, TAG_VALUE_MAX

#: Where a problem is in a spec body: the JSON path, keys and list indexes.
Path = tuple[str | int, ...]


class SpecModel(BaseModel):
    """The base of the spec's models: camelCase JSON, no unknown fields, frozen."""

    model_config = ConfigDict(alias_generator=to_camel, extra="forbid", frozen=True)


class ProblemsError(ValueError):
    """Cross-field problems found by a model validator, each at a path below the model."""

    def __init__(self, problems: list[tuple[Path, str]]) -> None:
        super().__init__("; ".join(message for _, message in problems))
        self.problems = problems


def raise_problems(problems: list[tuple[Path, str]]) -> None:
    if problems:
        raise ProblemsError(problems)


GUID_RE: Final = re.compile(r"[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}")
_LOCATION_RE = re.compile(r"[a-z][a-z0-9]*")
_VM_SIZE_RE = re.compile(r"Standard_[A-Z][A-Za-z0-9_-]*")
_IDENTITY_ID_RE = re.compile(
    r"/subscriptions/[0-9a-fA-F-]{36}/resourceGroups/[-\w.()]{1,90}"
    r"/providers/Microsoft\.ManagedIdentity/userAssignedIdentities/[A-Za-z0-9][-\w]{2,127}",
    re.IGNORECASE,
)
_RESOURCE_GROUP_RE = re.compile(r"[-\w.()]{0,89}[-\w()]")
_CLOCK_RE = re.compile(r"([01][0-9]|2[0-3]):[0-5][0-9]")
_USERNAME_RE = re.compile(r"[A-Za-z0-9._-]{1,20}")
_KEY_VAULT_SECRET_RE = re.compile(
    r"https://[A-Za-z][A-Za-z0-9-]{1,22}[A-Za-z0-9]"
    r"\.vault\.(azure\.net|azure\.cn|usgovcloudapi\.net|microsoftazure\.de)(:443)?"
    r"/secrets/[A-Za-z0-9-]{1,127}(/[0-9a-fA-F]{32})?/?"
)
# Azure rejects these admin user names on Windows VMs (compared case-insensitively).
RESERVED_USERNAMES: Final = frozenset(
    {
        "1", "123", "a", "actuser", "adm", "admin", "admin1", "admin2", "administrator",
        "aspnet", "backup", "console", "david", "guest", "john", "owner", "root", "server",
        "sql", "support", "support_388945a0", "sys", "test", "test1", "test2", "test3",
        "user", "user1", "user2", "user3", "user4", "user5",
    }
)  # fmt: skip
_TAG_KEY_FORBIDDEN = set("<>%&\\?/")
_RESERVED_TAG_PREFIXES = ("microsoft", "azure", "windows")


def _check_solution_id(value: str) -> str:
    if not is_valid_solution_id(value):
        raise ValueError("must be 1-6 lowercase letters and digits, starting with a letter")
    return value


def _check_subscription_id(value: str) -> str:
    if not GUID_RE.fullmatch(value):
        raise ValueError("must be a subscription id (a GUID)")
    return value.lower()


def _check_location(value: str) -> str:
    if not _LOCATION_RE.fullmatch(value):
        hint = re.sub(r"[^a-z0-9]", "", value.lower())
        suggestion = hint if _LOCATION_RE.fullmatch(hint) else "westeurope"
        raise ValueError(
            f"must be an Azure region name in lowercase without spaces, e.g. {suggestion!r}"
        )
    return value


def _check_resource_group(value: str) -> str:
    if not _RESOURCE_GROUP_RE.fullmatch(value):
        raise ValueError(
            "must be 1-90 letters, digits, '_', '-', '.', '(' or ')', not ending with '.'"
        )
    return value


def _check_vm_size(value: str) -> str:
    if not _VM_SIZE_RE.fullmatch(value):
        raise ValueError("must be an Azure VM size such as 'Standard_F4s_v2'")
    return value


def _check_identity_id(value: str) -> str:
    if not _IDENTITY_ID_RE.fullmatch(value):
        raise ValueError(
            "must be the resource id of a user-assigned managed identity: /subscriptions/<id>/"
            "resourceGroups/<group>/providers/Microsoft.ManagedIdentity/"
            "userAssignedIdentities/<name>"
        )
    return value


def _check_guid(value: str) -> str:
    if not GUID_RE.fullmatch(value):
        raise ValueError("must be an object id (a GUID)")
    return value.lower()


def _check_admin_username(value: str) -> str:
    if not _USERNAME_RE.fullmatch(value):
        raise ValueError("must be 1-20 characters: letters, digits, '.', '_' or '-'")
    if value.endswith("."):
        raise ValueError("must not end with '.'")
    if value.lower() in RESERVED_USERNAMES:
        raise ValueError(f"{value!r} is a name Azure reserves on Windows VMs; choose another")
    return value


def _check_clock(value: str) -> str:
    if not _CLOCK_RE.fullmatch(value):
        raise ValueError("must be a 24-hour time HH:MM, e.g. '08:00'")
    return value


@lru_cache(maxsize=1)
def _time_zone_names() -> frozenset[str]:
    return frozenset(available_timezones())


def _check_time_zone(value: str) -> str:
    valid = value in _time_zone_names()
    if valid:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            valid = False
    if not valid:
        close = difflib.get_close_matches(value, sorted(_time_zone_names()), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ", e.g. 'Europe/Lisbon'"
        raise ValueError(f"must be an IANA time zone name{hint}")
    return value


def _check_key_vault_secret_id(value: str) -> str:
    if not _KEY_VAULT_SECRET_RE.fullmatch(value):
        raise ValueError(
            "must be a Key Vault secret URL: https://<vault>.vault.azure.net/secrets/<name>"
            "[/<version>]"
        )
    return value


SolutionId = Annotated[StrictStr, AfterValidator(_check_solution_id)]
SubscriptionId = Annotated[StrictStr, AfterValidator(_check_subscription_id)]
Location = Annotated[StrictStr, AfterValidator(_check_location)]
ResourceGroupName = Annotated[StrictStr, AfterValidator(_check_resource_group)]
VmSize = Annotated[StrictStr, AfterValidator(_check_vm_size)]
AdminUsername = Annotated[StrictStr, AfterValidator(_check_admin_username)]
ClockTime = Annotated[StrictStr, AfterValidator(_check_clock)]
TimeZoneName = Annotated[StrictStr, AfterValidator(_check_time_zone)]
KeyVaultSecretId = Annotated[StrictStr, AfterValidator(_check_key_vault_secret_id)]
IdentityId = Annotated[StrictStr, AfterValidator(_check_identity_id)]
ObjectId = Annotated[StrictStr, AfterValidator(_check_guid)]


def tag_problem(key: str, value: object) -> str | None:
    """What is wrong with a user's tag (None when nothing): Azure's limits, and the names the
    platform sets itself."""
    if not isinstance(value, str):
        return "tag values must be strings"
    if not key:
        return "tag names must not be empty"
    if len(key) > TAG_KEY_MAX:
        return f"tag names hold at most {TAG_KEY_MAX} characters"
    bad = sorted(_TAG_KEY_FORBIDDEN.intersection(key))
    if bad:
        return f"tag names must not contain {' '.join(bad)}"
    lowered = key.lower()
    if lowered.startswith(_RESERVED_TAG_PREFIXES):
        return "tag names starting with 'microsoft', 'azure' or 'windows' are reserved by Azure"
    ours = {k.lower() for k in (*PLATFORM_TAG_KEYS, NAMING_TAG)}
    if lowered in ours or lowered.startswith(POLICY_TAG_PREFIX.lower()):
        return "this tag is set by the platform itself"
    if len(value) > TAG_VALUE_MAX:
        return f"tag values hold at most {TAG_VALUE_MAX} characters"
    return None

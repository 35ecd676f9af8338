"""The naming scheme of a platform: the one it was created with, for as long as it lives."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from outsystems.errors import FieldError
from outsystems.names import NamingScheme
from outsystems.spec.model import PlatformSpec
from outsystems.tags import NAMING_TAG, tag_value


def resolve_naming(
    body: object,
    previous_spec: Mapping[str, Any] | None,
    group_tags: Mapping[str, str] | None,
) -> NamingScheme | None:
    """The naming scheme a PUT or plan must use, or None to keep what the body says.

    New platforms get the Marketplace's names. A platform deployed before keeps the scheme it
    was created with: the one its last spec recorded (none recorded: created before schemes
    existed, so `legacy`), else the one its resource group's tag says (a group of ours without
    the tag: `legacy`). Renaming a SQL server, a database or its admin login would mean new
    ones, so a body asking to change the scheme of a deployed platform is left as it is and
    refused by `naming_change`.
    """
    if isinstance(body, dict) and "naming" in body:
        return None
    if previous_spec is not None:
        return _scheme(previous_spec.get("naming"))
    if group_tags is not None:
        return _scheme(tag_value(group_tags, NAMING_TAG))
    return "marketplace"


def _scheme(recorded: object) -> NamingScheme:
    return "marketplace" if recorded == "marketplace" else "legacy"


def naming_change(previous_spec: Mapping[str, Any] | None, spec: PlatformSpec) -> FieldError | None:
    """An error when a deployed platform's body asks for another naming scheme."""
    if previous_spec is None:
        return None
    before = previous_spec.get("naming") or "legacy"
    if before == spec.naming:
        return None
    return FieldError(
        "naming",
        f"cannot change the naming scheme of a deployed platform from {before} to "
        f"{spec.naming}: its SQL servers, databases and public IPs keep their names",
    )

"""Resource bodies as ARM handles them: parsed, merged, stripped of secrets, searched for ids.

Pure functions over JSON values (no state): what ARM never stores or returns (write-only
secrets, whose SHA-256 alone is kept for tests), JSON merge patch, and the references a body
makes to other resources.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Iterator, Mapping
from typing import Any

from localdev.armsim.catalog import TypeSpec
from localdev.armsim.errors import ArmError
from localdev.armsim.messages import SimRequest
from localdev.armsim.store import Resource

#: Body keys ARM never returns (write-only secrets); matched case-insensitively anywhere.
SECRET_KEYS = frozenset(
    {
        "adminpassword",
        "administratorloginpassword",
        "protectedsettings",
        "protectedsettingsfromkeyvault",
        "customdata",
    }
)


def json_body(request: SimRequest) -> dict[str, Any]:
    """The request's JSON object (an empty body is `{}`); 400 when it is not one."""
    try:
        body = json.loads(request.body or b"{}")
    except ValueError as error:
        raise ArmError(
            400,
            "InvalidRequestContent",
            f"The request content was invalid and could not be deserialized: {error}.",
        ) from None
    if not isinstance(body, dict):
        raise ArmError(400, "InvalidRequestContent", "The request content must be a JSON object.")
    return body


def strip_secrets(value: Any) -> Any:
    """A copy of a JSON value without the write-only secret properties."""
    if isinstance(value, dict):
        return {k: strip_secrets(v) for k, v in value.items() if k.lower() not in SECRET_KEYS}
    if isinstance(value, list):
        return [strip_secrets(v) for v in value]
    return value


def without_key(value: Any, name: str) -> Any:
    """A copy of a JSON value without any property called `name` (lower case), at any depth."""
    if isinstance(value, dict):
        return {k: without_key(v, name) for k, v in value.items() if k.lower() != name}
    if isinstance(value, list):
        return [without_key(v, name) for v in value]
    return value


def merge_patch(target: Any, patch: Any) -> Any:
    """JSON merge patch (RFC 7386), except that `tags` is replaced whole, as ARM does."""
    if not isinstance(patch, dict) or not isinstance(target, dict):
        return copy.deepcopy(patch)
    merged = copy.deepcopy(target)
    for name, value in patch.items():
        if value is None:
            merged.pop(name, None)
        elif name == "tags" or not isinstance(value, dict):
            merged[name] = copy.deepcopy(value)
        else:
            merged[name] = merge_patch(merged.get(name, {}), value)
    return merged


def iter_references(value: Any, *, top: bool = True) -> Iterator[str]:
    """Every `{"id": "/subscriptions/..."}` reference nested in a body (not the top-level id)."""
    if isinstance(value, dict):
        for name, item in value.items():
            if (
                name == "id"
                and not top
                and isinstance(item, str)
                and item.lower().startswith("/subscriptions/")
            ):
                yield item
            else:
                yield from iter_references(item, top=False)
    elif isinstance(value, list):
        for item in value:
            yield from iter_references(item, top=False)


def references_of(spec: TypeSpec, body: Mapping[str, Any]) -> list[str]:
    """The ids a body refers to: nested `id` properties and the type's reference paths."""
    found = list(iter_references(body))
    for dotted in spec.reference_paths:
        current: Any = body
        for part in dotted.split("."):
            current = current.get(part) if isinstance(current, Mapping) else None
        if isinstance(current, str) and current:
            found.append(current)
    return found


def has_sub_element(body: Mapping[str, Any], relative: str) -> bool:
    """Whether `collection/name` names an item in `properties.<collection>` of a body."""
    parts = relative.split("/")
    if len(parts) != 2:
        return False
    collection, name = parts
    properties = body.get("properties") or {}
    for property_name, items in properties.items():
        if property_name.lower() == collection.lower() and isinstance(items, list):
            return any(
                isinstance(item, dict) and str(item.get("name", "")).lower() == name.lower()
                for item in items
            )
    return False


def take_write_only(spec: TypeSpec, body: dict[str, Any]) -> dict[str, str]:
    """Remove the type's write-only values from a body; their SHA-256s, by dotted path."""
    digests = {}
    for dotted in spec.write_only:
        *parents, leaf = dotted.split(".")
        holder: Any = body
        for part in parents:
            holder = holder.get(part) if isinstance(holder, dict) else None
        if isinstance(holder, dict) and leaf in holder:
            value = holder.pop(leaf)
            digests[dotted] = hashlib.sha256(str(value).encode("utf-8")).hexdigest()
    return digests


def keep_digests(resource: Resource, digests: Mapping[str, str]) -> None:
    """Remember the SHA-256s of a write's write-only values on the resource (for tests)."""
    if digests:
        resource.extra.setdefault("writeOnly", {}).update(digests)
        resource.extra["writeOnlyChanged"] = True

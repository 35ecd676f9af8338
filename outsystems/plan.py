"""What applying the desired graph would change: the plan, compared field by field with ARM.

The comparison covers only the fields the desired body sets. Fields ARM never returns
(passwords, extensions' protected settings, user data: everything carrying a placeholder) and
values ARM fills in are not differences; a tag carrying a placeholder is one only when the live
resource lacks the tag. A scale set's live capacity inside its policy bounds is
not a difference either: the scaler owns it, and a redeploy must never undo its work.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

from outsystems.placeholders import placeholders_in
from outsystems.policy import PolicyTagError, ScalingPolicy, policy_from_tags
from outsystems.resource_types import SCALE_SET
from outsystems.topology import Resource, ResourceGraph

Action = Literal["create", "update", "noop"]

#: Keys whose values ARM never returns (write-only), wherever they appear in a body.
WRITE_ONLY_KEYS: Final = frozenset(
    {"protectedsettings", "adminpassword", "administratorloginpassword", "userdata", "customdata"}
)


@dataclass(frozen=True)
class Change:
    """One field that differs: its dotted path in the ARM body, live value, desired value."""

    path: str
    before: Any
    after: Any

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, "from": self.before, "to": self.after}


@dataclass(frozen=True)
class PlannedResource:
    """The action a PUT would take for one resource."""

    resource: Resource
    action: Action
    changes: tuple[Change, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.resource.id,
            "type": self.resource.type,
            "name": self.resource.name,
            "environment": self.resource.environment,
            "action": self.action,
            "changes": [change.to_json() for change in self.changes],
        }


@dataclass(frozen=True)
class Plan:
    """Every resource of the graph, in dependency order, with its action."""

    resources: tuple[PlannedResource, ...]

    @property
    def totals(self) -> dict[str, int]:
        counts = Counter(planned.action for planned in self.resources)
        return {action: counts.get(action, 0) for action in ("create", "update", "noop")}

    def to_json(self) -> dict[str, Any]:
        return {
            "resources": [planned.to_json() for planned in self.resources],
            "totals": self.totals,
        }


def _normalise(key: str, value: Any) -> Any:
    if isinstance(value, str):
        if key.lower() == "location":
            return value.replace(" ", "").lower()
        if key.lower() == "name" or value.lower().startswith("/subscriptions/"):
            return value.lower()
    return value


def _same_scalar(key: str, desired: Any, live: Any) -> bool:
    if isinstance(desired, bool) or isinstance(live, bool):
        return desired is live
    if isinstance(desired, int | float) and isinstance(live, int | float):
        return float(desired) == float(live)
    return bool(_normalise(key, desired) == _normalise(key, live))


def _named(items: Sequence[Any]) -> bool:
    return bool(items) and all(
        isinstance(i, Mapping) and isinstance(i.get("name"), str) for i in items
    )


def compare(desired: Any, live: Any, path: str = "", key: str = "") -> list[Change]:
    """The differences between a desired body (or part) and the live one, desired fields only."""
    if key.lower() in WRITE_ONLY_KEYS:
        return []
    if isinstance(desired, str) and placeholders_in(desired):
        # The value is only known when the body is sent; ARM returns tags, though, so a tag that
        # is missing altogether (a scale set signed before its MAC tag existed) is a change.
        if path.startswith("tags.") and live is None:
            return [Change(path, None, desired)]
        return []
    if isinstance(desired, Mapping):
        if not isinstance(live, Mapping):
            return [Change(path, live, desired)] if path else [Change("", live, desired)]
        live_by_key = {str(k).lower(): v for k, v in live.items()}
        changes: list[Change] = []
        for name, value in desired.items():
            child = f"{path}.{name}" if path else str(name)
            changes.extend(compare(value, live_by_key.get(str(name).lower()), child, str(name)))
        return changes
    if isinstance(desired, list):
        if not isinstance(live, list):
            return [Change(path, live, desired)]
        if _named(desired) and _named(live):
            live_named = {item["name"].lower(): item for item in live}
            changes = []
            for item in desired:
                match = live_named.get(item["name"].lower())
                child = f"{path}[{item['name']}]"
                changes.extend(
                    compare(item, match, child, key) if match else [Change(child, None, item)]
                )
            return changes
        if len(desired) != len(live):
            return [Change(path, live, desired)]
        changes = []
        for index, (want, have) in enumerate(zip(desired, live, strict=True)):
            changes.extend(compare(want, have, f"{path}[{index}]", key))
        return changes
    if live is None or not _same_scalar(key, desired, live):
        return [Change(path, live, desired)]
    return []


def _scale_set_policy(resource: Resource) -> ScalingPolicy | None:
    tags = resource.body.get("tags") or {}
    try:
        return policy_from_tags(tags)
    except PolicyTagError:
        return None


def _capacity_changes(resource: Resource, changes: list[Change]) -> list[Change]:
    """Drop a capacity difference when the live capacity is inside the policy's bounds."""
    policy = _scale_set_policy(resource)
    kept = []
    for change in changes:
        if change.path == "sku.capacity" and policy and isinstance(change.before, int):
            if policy.min_capacity <= change.before <= policy.max_capacity:
                continue
            clamped = min(max(change.before, policy.min_capacity), policy.max_capacity)
            change = Change(change.path, change.before, clamped)
        kept.append(change)
    return kept


def unsettled_state(live: Mapping[str, Any] | None) -> str | None:
    """A live resource's `provisioningState` when it is not `Succeeded`, else None."""
    properties = (live or {}).get("properties")
    state = properties.get("provisioningState") if isinstance(properties, Mapping) else None
    if not isinstance(state, str) or state.lower() == "succeeded":
        return None
    return state


def plan_resource(resource: Resource, live: Mapping[str, Any] | None) -> PlannedResource:
    """The action for one resource given its live state (None when it does not exist).

    Comparing bodies cannot tell that ARM left a resource `Failed` (its operation failed for
    good) or is still creating it (an operation of an earlier, canceled or crashed run): both
    are applied again, or what depends on them would start on a broken or unfinished base.
    Sending the body again is idempotent; while ARM is busy the PUT conflicts and is retried.
    """
    if live is None:
        return PlannedResource(resource, "create")
    changes = compare(dict(resource.body), live)
    if resource.type == SCALE_SET:
        changes = _capacity_changes(resource, changes)
    state = unsettled_state(live)
    if state is not None:
        changes.append(Change("properties.provisioningState", state, "Succeeded"))
    return PlannedResource(resource, "update" if changes else "noop", tuple(changes))


def plan(graph: ResourceGraph, live: Mapping[str, Mapping[str, Any] | None]) -> Plan:
    """The plan of a whole graph; `live` maps resource ids (any case) to live bodies or None."""
    by_key = {resource_id.lower(): body for resource_id, body in live.items()}
    return Plan(tuple(plan_resource(r, by_key.get(r.id.lower())) for r in graph))

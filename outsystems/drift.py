"""Drift: where a platform's live resources differ from what the app would send for its spec.

Each resource of the desired graph (`outsystems.topology`) is compared with its live body over
the whole of what the app owns: every property the app sets (`outsystems.plan.compare`),
including the members of the named lists it sets (a security rule added by hand to an NSG the
app owns is drift), a resource of the graph that is gone, and a resource the app's tags mark as
the platform's that the graph does not have. Each difference is (resource id, property path,
expected, actual); nothing is changed: a PUT of the same spec repairs it (the plan shows the same
paths as updates), except a resource outside the graph, which a deployment never deletes.

Never drift, and why:

- What the app does not set. The walk follows the desired body, so every property ARM fills in
  is out of it by construction: read-only and server-filled properties (`provisioningState`,
  `etag`, `resourceGuid`, ids, `defaultSecurityRules`, the NSG's `subnets`/`networkInterfaces`
  back-references: all `"readOnly": true` in Azure/azure-rest-api-specs,
  specification/network/resource-manager/Microsoft.Network/stable/2023-09-01/
  networkSecurityGroup.json, commit 114077a23cb1edc9c5604cfb9a957570203dc706) and the defaults
  ARM gives properties the body leaves out. A member added to a named list carries its own
  read-only fields (`id`, `etag`, `type`, `properties.provisioningState`): they are left out of
  the value shown.
- A scale set's `sku.capacity`: the scaler owns it (`outsystems.scaling`).
- Values the app only knows when it sends the body (placeholders: secrets' values, which ARM
  never returns — Key Vault secrets through the management plane, admin passwords, protected
  settings —, and its own tags such as the scaling policy's MAC, `outsystems.policy`).
- A resource's `provisioningState` (`outsystems.plan.unsettled_state` makes a redeploy apply an
  unsettled resource again; it is the platform's own state, not a hand change).
- Tags the app does not set on a resource (cost centres, policies' tags): the app keeps them on
  its resource groups and ARM's tag policies add them; only the app's own tags are compared.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

from outsystems.messages import Contract, Tuning
from outsystems.placeholders import placeholders_in
from outsystems.resource_types import SCALE_SET
from outsystems.tags import owned_by

if TYPE_CHECKING:
    from outsystems.plan import Change
    from outsystems.topology import Resource, ResourceGraph

# The comparison (`outsystems.plan`, which needs the topology and the spec's models) is imported
# where it runs: the orchestration that records checks imports this module at cold start.

#: The state of a resource that does not exist, as a difference shows it.
ABSENT: Final = None
#: What a difference says of a resource that should (or should not) exist: path "" and this.
EXISTS: Final = "exists"

#: Properties ARM fills in on every member of a list (read-only in the specs named above).
_MEMBER_READ_ONLY: Final = frozenset({"id", "etag", "type"})


@dataclass(frozen=True)
class Difference:
    """One property of one resource that differs from the desired body.

    `path` is the dotted path in the ARM body (`properties.securityRules[name]` for a list
    member, "" for the resource itself), `expected` the value the app would send (None: the
    app sets no such member or resource), `actual` the live value (None: absent).
    """

    resource_id: str
    path: str
    expected: Any
    actual: Any

    def to_json(self) -> dict[str, Any]:
        return {
            "resourceId": self.resource_id,
            "path": self.path,
            "expected": self.expected,
            "actual": self.actual,
        }

    @staticmethod
    def from_json(data: Mapping[str, Any]) -> Difference:
        return Difference(
            str(data["resourceId"]), str(data["path"]), data.get("expected"), data.get("actual")
        )

    @property
    def key(self) -> tuple[str, str, str, str]:
        """What identifies the difference (ARM ids compare case-insensitively)."""
        return (
            self.resource_id.lower(),
            self.path,
            json.dumps(self.expected, sort_keys=True),
            json.dumps(self.actual, sort_keys=True),
        )


@dataclass(frozen=True)
class Drift:
    """Every difference of a platform, sorted by resource id and path."""

    differences: tuple[Difference, ...]

    @property
    def drifted(self) -> bool:
        return bool(self.differences)

    @property
    def fingerprint(self) -> str:
        """A digest of the set of differences: equal for the same set, in any order."""
        keys = sorted(difference.key for difference in self.differences)
        return hashlib.sha256(json.dumps(keys).encode("utf-8")).hexdigest()

    def to_json(self) -> dict[str, Any]:
        return {
            "drifted": self.drifted,
            "differences": [difference.to_json() for difference in self.differences],
        }

    @staticmethod
    def from_json(data: Mapping[str, Any]) -> Drift:
        return Drift(tuple(Difference.from_json(item) for item in data.get("differences") or ()))


def _shown(value: Any) -> Any:
    """A live list member without the read-only fields ARM fills in on it."""
    if not isinstance(value, Mapping):
        return value
    shown = {k: v for k, v in value.items() if str(k).lower() not in _MEMBER_READ_ONLY}
    properties = shown.get("properties")
    if isinstance(properties, Mapping):
        shown["properties"] = {
            k: v for k, v in properties.items() if str(k).lower() != "provisioningstate"
        }
    return shown


def _is_drift(resource: Resource, change: Change) -> bool:
    if resource.type == SCALE_SET and change.path == "sku.capacity":
        return False  # the scaler's
    if change.path.lower().endswith("provisioningstate"):
        return False
    # A placeholder's value is known only when the body is sent (the MAC tag, a secret).
    return not (isinstance(change.after, str) and placeholders_in(change.after))


def resource_drift(resource: Resource, live: Mapping[str, Any] | None) -> list[Difference]:
    """How one live resource differs from its desired body (None: it does not exist)."""
    from outsystems.plan import compare

    if live is None:
        return [Difference(resource.id, "", EXISTS, ABSENT)]
    return [
        Difference(
            resource.id,
            change.path,
            change.after,
            _shown(change.before) if change.after is None else change.before,
        )
        for change in compare(dict(resource.body), live)
        if _is_drift(resource, change)
    ]


def unknown_resources(
    graph: ResourceGraph, owned: Iterable[Mapping[str, Any]], solution_id: str
) -> list[Difference]:
    """The resources whose tags mark them as the platform's that the graph does not have."""
    known = {resource.id.lower() for resource in graph}
    return [
        Difference(str(body["id"]), "", ABSENT, EXISTS)
        for body in owned
        if isinstance(body.get("id"), str)
        and str(body["id"]).lower() not in known
        and owned_by(body.get("tags"), solution_id)
    ]


def platform_drift(
    graph: ResourceGraph,
    live: Mapping[str, Mapping[str, Any] | None],
    owned: Iterable[Mapping[str, Any]],
    solution_id: str,
) -> Drift:
    """The drift of a platform: `live` maps the graph's resource ids (any case) to their live
    bodies (None: absent); `owned` holds the bodies ARM lists in the platform's resource groups
    (the app's tags say which are the platform's)."""
    by_key = {resource_id.lower(): body for resource_id, body in live.items()}
    differences = [
        difference
        for resource in graph
        for difference in resource_drift(resource, by_key.get(resource.id.lower()))
    ]
    differences.extend(unknown_resources(graph, owned, solution_id))
    differences.sort(key=lambda d: (d.resource_id.lower(), d.path))
    return Drift(tuple(differences))


#: The most differences an event names (a queue message holds 64 KiB); the API shows them all.
MAX_EVENT_DIFFERENCES: Final = 100


@dataclass(frozen=True)
class DriftCheck:
    """One drift check of a platform: when, what differed, and whether that set of differences
    changed since the check before (then, if there is drift, `outsystems.platform.drifted`)."""

    solution_id: str
    checked_at: str
    drift: Drift
    changed: bool
    tuning: Tuning = field(default_factory=Tuning)

    @property
    def announce(self) -> bool:
        """Whether the check publishes `outsystems.platform.drifted`."""
        return self.changed and self.drift.drifted

    def event_data(self) -> dict[str, Any]:
        """The event's data: the drifted resources and paths (values stay in the API)."""
        shown = self.drift.differences[:MAX_EVENT_DIFFERENCES]
        return {
            "checkedAt": self.checked_at,
            "count": len(self.drift.differences),
            "differences": [{"resourceId": d.resource_id, "path": d.path} for d in shown],
        }

    def to_json(self) -> dict[str, Any]:
        return {
            "solutionId": self.solution_id,
            "checkedAt": self.checked_at,
            "changed": self.changed,
            "tuning": self.tuning.to_json(),
            **self.drift.to_json(),
        }

    @staticmethod
    def from_json(data: Any) -> DriftCheck:
        if not isinstance(data, Mapping):
            raise TypeError(f"a drift check is a JSON object, not {type(data).__name__}")
        return DriftCheck(
            solution_id=str(data["solutionId"]),
            checked_at=str(data["checkedAt"]),
            drift=Drift.from_json(data),
            changed=bool(data.get("changed")),
            tuning=Tuning.from_json(data.get("tuning") or {}),
        )


#: The orchestration that keeps a platform's last check (its input and output) and publishes
#: the event: one instance per platform (`orchestrators.drift.drift_instance_id`).
RECORD_DRIFT: Final = Contract("record_platform_drift", DriftCheck.from_json, DriftCheck.from_json)

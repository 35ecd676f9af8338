"""The simulator's state: resources, long-running operations, the request log and counters.

The store is plain data guarded by one re-entrant lock (the HTTP server and in-process test code
run in different threads). It can be written to a JSON snapshot atomically and loaded back
(`--state FILE`); secrets are never stored, so they are never persisted either.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import threading
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from localdev.armsim.paths import key, parse_resource_id

logger = logging.getLogger(__name__)

SNAPSHOT_VERSION = 1


def iso(timestamp: float) -> str:
    """ARM's timestamp format (UTC, ISO 8601)."""
    return datetime.fromtimestamp(timestamp, UTC).isoformat().replace("+00:00", "Z")


@dataclass
class Resource:
    """One resource as ARM holds it (body without secrets, `id`, `name` and `type`)."""

    id: str
    type: str
    body: dict[str, Any]
    state: str
    created: float
    changed: float
    etag: str
    operation_id: str | None = None
    #: Per-type values ARM computes and keeps (vmId, next scale-set instance id, ...).
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        """The resource's own name (last id segment)."""
        return self.id.rsplit("/", 1)[-1]


@dataclass
class Operation:
    """A long-running operation: it completes at `end` (wall-clock seconds)."""

    id: str
    resource_id: str
    kind: str
    method: str
    namespace: str
    location: str
    subscription: str
    start: float
    end: float
    status: str = "InProgress"
    error: dict[str, Any] | None = None
    #: Set by fault injection: the operation will end Failed with this error.
    planned_error: dict[str, Any] | None = None
    #: The POST action this operation runs (`manualupgrade`, `backendhealth`, ...), None for
    #: the operation of a write.
    action: str | None = None
    #: What the action applies to (scale-set instance ids).
    targets: list[str] = field(default_factory=list)
    #: The action's result, what its `Location` answers once it succeeded (None: no body).
    result: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        """The admin API's view (times as epoch seconds)."""
        return {
            "id": self.id,
            "resourceId": self.resource_id,
            "kind": self.kind,
            "method": self.method,
            "action": self.action,
            "targets": list(self.targets),
            "status": self.status,
            "start": self.start,
            "end": self.end,
            "error": self.error,
        }


@dataclass
class RequestRecord:
    """One request received, for tests that assert on what the app sent."""

    seq: int
    method: str
    path: str
    status: int
    start: float
    end: float
    subscription: str | None = None
    operation_id: str | None = None
    fault: str | None = None
    throttled: bool = False
    client_request_id: str | None = None


class Store:
    """All mutable state of one simulator instance."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.resources: dict[str, Resource] = {}
        self.operations: dict[str, Operation] = {}
        self.requests: list[RequestRecord] = []
        #: Times each resource id answered 201 Created (kept across deletes).
        self.creations: dict[str, int] = {}
        #: subnet key -> {private IP -> owner key}
        self.ip_reservations: dict[str, dict[str, str]] = {}
        self.counters: Counter[str] = Counter()
        #: Operations started per resource key (operation ids derive from it).
        self.operation_counts: dict[str, int] = {}
        #: Ids of the operations still in progress (the clock only looks at these).
        self.pending: set[str] = set()
        #: resource key -> time it disappears by itself (`extra["expiresAt"]`: soft-deleted
        #: vaults past their retention); derived from the resources, so not persisted apart.
        self.expiring: dict[str, float] = {}
        self.next_public_ip = 1
        #: Backend health a test set (lower-case server address -> `Up`/`Down`/...), over
        #: what the simulator derives from the servers' state; not persisted.
        self.backend_health: dict[str, str] = {}
        #: Servers (lower-case address) whose setup-script health gate fails after an upgrade,
        #: with the probe's error; set by tests, not persisted.
        self.health_gate_failures: dict[str, str] = {}
        self.dirty = False

    # ---------------------------------------------------------------- resources

    def get(self, resource_id: str) -> Resource | None:
        """The resource with this id (any casing), or None."""
        return self.resources.get(key(resource_id))

    def put(self, resource: Resource) -> None:
        """Insert or replace a resource."""
        self.resources[key(resource.id)] = resource
        if "expiresAt" in resource.extra:
            self.expiring[key(resource.id)] = float(resource.extra["expiresAt"])
        self.dirty = True

    def remove(self, resource_id: str) -> list[Resource]:
        """Remove a resource and everything nested under it; returns what was removed."""
        prefix = key(resource_id)
        removed = [
            r for k, r in self.resources.items() if k == prefix or k.startswith(prefix + "/")
        ]
        for resource in removed:
            del self.resources[key(resource.id)]
            self.expiring.pop(key(resource.id), None)
            self.release_ips(resource.id)
        self.dirty = True
        return removed

    def children(self, resource_id: str, child_type: str | None = None) -> list[Resource]:
        """Direct children of a resource, optionally of one child type (full type name)."""
        prefix = key(resource_id) + "/"
        depth = prefix.count("/") + 1
        found = [
            r for k, r in self.resources.items() if k.startswith(prefix) and k.count("/") == depth
        ]
        if child_type is not None:
            found = [r for r in found if r.type.lower() == child_type.lower()]
        return sorted(found, key=lambda r: key(r.id))

    def descendants(self, resource_id: str) -> list[Resource]:
        """Everything nested under a resource (or inside a resource group)."""
        prefix = key(resource_id) + "/"
        return [r for k, r in self.resources.items() if k.startswith(prefix)]

    def location_of(self, resource: Resource) -> str:
        """A resource's region: its own, else its parent's, else its resource group's."""
        current: Resource | None = resource
        while current is not None:
            location = current.body.get("location")
            if location:
                return str(location).replace(" ", "").lower()
            parsed = parse_resource_id(current.id)
            if parsed is None:
                break
            parent_id = parsed.parent.id if parsed.parent is not None else parsed.group_id
            current = self.get(parent_id)
        return "global"

    def record_creation(self, resource_id: str) -> None:
        """Count one 201 for this id."""
        resource_key = key(resource_id)
        self.creations[resource_key] = self.creations.get(resource_key, 0) + 1
        self.dirty = True

    def creation_count(self, resource_id: str) -> int:
        """How many times this id was created (answered 201)."""
        return self.creations.get(key(resource_id), 0)

    # ---------------------------------------------------------------- private IPs

    def reserve_ip(self, subnet_id: str, address: str, owner_id: str) -> None:
        """Record that `owner_id` holds `address` in a subnet."""
        self.ip_reservations.setdefault(key(subnet_id), {})[address] = key(owner_id)
        self.dirty = True

    def release_ips(self, owner_id: str) -> None:
        """Free every address held by an owner or anything nested under it."""
        owner = key(owner_id)
        for reservations in self.ip_reservations.values():
            for address in [
                a for a, o in reservations.items() if o == owner or o.startswith(owner + "/")
            ]:
                del reservations[address]

    # ---------------------------------------------------------------- persistence

    def snapshot(self) -> dict[str, Any]:
        """The persistent state as JSON-able data (not the request log)."""
        return {
            "version": SNAPSHOT_VERSION,
            "resources": [asdict(r) for r in self.resources.values()],
            "operations": [asdict(o) for o in self.operations.values()],
            "creations": self.creations,
            "ipReservations": self.ip_reservations,
            "nextPublicIp": self.next_public_ip,
        }

    def restore(self, data: dict[str, Any]) -> None:
        """Replace the persistent state with a snapshot's."""
        if data.get("version") != SNAPSHOT_VERSION:
            raise ValueError(f"unsupported state file version {data.get('version')!r}")
        self.resources = {key(r["id"]): Resource(**r) for r in data["resources"]}
        self.expiring = {
            k: float(r.extra["expiresAt"])
            for k, r in self.resources.items()
            if "expiresAt" in r.extra
        }
        self.operations = {o["id"]: Operation(**o) for o in data["operations"]}
        self.creations = dict(data["creations"])
        self.ip_reservations = {k: dict(v) for k, v in data["ipReservations"].items()}
        self.next_public_ip = int(data["nextPublicIp"])
        self.operation_counts = {}
        self.pending = {op.id for op in self.operations.values() if op.status == "InProgress"}
        for op in self.operations.values():
            op_key = key(op.resource_id)
            self.operation_counts[op_key] = self.operation_counts.get(op_key, 0) + 1
        self.dirty = False

    def save(self, path: Path) -> None:
        """Write the snapshot atomically (temporary file in the same folder, then rename)."""
        with self.lock:
            payload = json.dumps(self.snapshot(), indent=1, sort_keys=True)
            self.dirty = False
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor, temporary = tempfile.mkstemp(prefix=path.name, suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
                handle.write(payload)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        logger.debug("state saved to %s", path)

    def load(self, path: Path) -> bool:
        """Load a snapshot if the file exists; returns whether it did."""
        if not path.exists():
            return False
        data = json.loads(path.read_text(encoding="utf-8"))
        with self.lock:
            self.restore(data)
        logger.info("state loaded from %s (%d resources)", path, len(self.resources))
        return True

    def clear(self) -> None:
        """Forget everything (resources, operations, requests, counters)."""
        with self.lock:
            self.resources.clear()
            self.operations.clear()
            self.requests.clear()
            self.creations.clear()
            self.ip_reservations.clear()
            self.counters.clear()
            self.operation_counts.clear()
            self.pending.clear()
            self.expiring.clear()
            self.backend_health.clear()
            self.health_gate_failures.clear()
            self.next_public_ip = 1
            self.dirty = True

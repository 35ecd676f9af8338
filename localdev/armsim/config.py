"""The simulator's run-time settings (CLI flags and `/_sim/config`), in one dataclass."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path

#: Regional vCPU quota per subscription and region: room for several sample platforms.
DEFAULT_VCPU_QUOTA = 350
#: The simulated Microsoft Entra tenant (every subscription belongs to it) and the caller's
#: ids, as ARM names them in its 403s. Fixed GUIDs, so runs are reproducible.
DEFAULT_TENANT_ID = "5e0c7a1d-1f3b-4c2a-9d8e-a1b2c3d4e5f6"
DEFAULT_CALLER_CLIENT_ID = "0d2b5f7e-3c4a-4b6d-8e9f-102132435465"
DEFAULT_CALLER_OBJECT_ID = "7a9c1e3f-5b7d-4f1a-9c3e-5a7c9e1b3d5f"


@dataclass
class BucketSettings:
    """One ARM token bucket: `capacity` requests at once, refilled at `refill_per_second`."""

    capacity: float
    refill_per_second: float


def _reads() -> BucketSettings:
    return BucketSettings(250, 25)


def _writes() -> BucketSettings:
    return BucketSettings(200, 10)


def _deletes() -> BucketSettings:
    return BucketSettings(200, 10)


@dataclass
class SimConfig:
    """Everything that changes how the simulator behaves; mutable through the admin API."""

    latency_scale: float = 1.0
    fault_rate: float = 0.0
    seed: int = 0
    fault_retry_after: int = 1
    throttling: bool = True
    reads: BucketSettings = field(default_factory=_reads)
    writes: BucketSettings = field(default_factory=_writes)
    deletes: BucketSettings = field(default_factory=_deletes)
    vcpu_quota: int = DEFAULT_VCPU_QUOTA
    page_size: int = 100
    #: Cap on `Retry-After` sent with a running operation (ARM sends small values too).
    max_poll_retry_after: int = 10
    #: Oldest request-log entries are dropped past this many (long interactive runs).
    request_log_limit: int = 100_000
    state_file: Path | None = None
    #: The caller's role file (`actions`, `notActions`, `assignableRoleIds`); None = the caller
    #: may do everything (no authorization, as before).
    permissions_file: Path | None = None
    tenant_id: str = DEFAULT_TENANT_ID
    caller_client_id: str = DEFAULT_CALLER_CLIENT_ID
    caller_object_id: str = DEFAULT_CALLER_OBJECT_ID

    def to_json(self) -> dict[str, object]:
        """The admin API's view of the settings."""
        return {
            "latencyScale": self.latency_scale,
            "faultRate": self.fault_rate,
            "seed": self.seed,
            "faultRetryAfter": self.fault_retry_after,
            "throttling": self.throttling,
            "buckets": {
                name: {"capacity": bucket.capacity, "refillPerSecond": bucket.refill_per_second}
                for name, bucket in (
                    ("reads", self.reads),
                    ("writes", self.writes),
                    ("deletes", self.deletes),
                )
            },
            "vcpuQuota": self.vcpu_quota,
            "pageSize": self.page_size,
            "maxPollRetryAfter": self.max_poll_retry_after,
            "stateFile": str(self.state_file) if self.state_file else None,
            "permissionsFile": str(self.permissions_file) if self.permissions_file else None,
            "tenantId": self.tenant_id,
            "callerClientId": self.caller_client_id,
            "callerObjectId": self.caller_object_id,
        }

    def update(self, changes: dict[str, object]) -> None:
        """Apply a partial update in the admin API's JSON shape, all or nothing.

        Unknown keys and out-of-range values raise ValueError and change nothing.
        """
        candidate = copy.deepcopy(self)
        candidate._apply(changes)
        for name in self.__dataclass_fields__:
            setattr(self, name, getattr(candidate, name))

    def _apply(self, changes: dict[str, object]) -> None:
        scalars: dict[str, tuple[str, type]] = {
            "latencyScale": ("latency_scale", float),
            "faultRate": ("fault_rate", float),
            "seed": ("seed", int),
            "faultRetryAfter": ("fault_retry_after", int),
            "throttling": ("throttling", bool),
            "vcpuQuota": ("vcpu_quota", int),
            "pageSize": ("page_size", int),
            "maxPollRetryAfter": ("max_poll_retry_after", int),
        }
        texts = {
            "tenantId": "tenant_id",
            "callerClientId": "caller_client_id",
            "callerObjectId": "caller_object_id",
        }
        for name, value in changes.items():
            if name in texts:
                if not isinstance(value, str) or not value:
                    raise ValueError(f"{name} must be a non-empty string")
                setattr(self, texts[name], value)
            elif name in scalars:
                attribute, kind = scalars[name]
                if kind is bool and not isinstance(value, bool):
                    raise ValueError(f"{name} must be a boolean")
                if kind is not bool and (
                    isinstance(value, bool) or not isinstance(value, int | float)
                ):
                    raise ValueError(f"{name} must be a number")
                setattr(self, attribute, kind(value))
            elif name == "buckets" and isinstance(value, dict):
                self._update_buckets(value)
            else:
                raise ValueError(f"unknown or malformed setting {name!r}")
        if self.latency_scale < 0 or not 0 <= self.fault_rate <= 1 or self.page_size < 1:
            raise ValueError("latencyScale >= 0, 0 <= faultRate <= 1 and pageSize >= 1 required")

    def _update_buckets(self, buckets: dict[str, object]) -> None:
        for name, settings in buckets.items():
            bucket = {"reads": self.reads, "writes": self.writes, "deletes": self.deletes}.get(name)
            if bucket is None or not isinstance(settings, dict):
                raise ValueError(f"unknown bucket {name!r}")
            if "capacity" in settings:
                bucket.capacity = float(settings["capacity"])
            if "refillPerSecond" in settings:
                bucket.refill_per_second = float(settings["refillPerSecond"])

"""Reproducible transient failures: a seeded fraction of requests fail the way Azure's do.

Each decision is a hash of (seed, method, path, attempt number of that method on that path), so
it does not depend on how concurrent callers interleave: the n-th PUT of a given resource fails
or not whatever else is happening. The kinds are 500 `InternalServerError`, 503
`ServiceUnavailable`, 429 `TooManyRequests` with `Retry-After`, and, for writes answered with a
long-running operation, an operation that ends `Failed` with the retryable code `RetryableError`.

Targeted rules have one more kind, `extension-exit-3010`: the write of a script extension (a VM
or scale-set extension, or a scale set whose profile has one) runs and ends with exit code 3010,
the reboot case, as ARM reports it (`extensions.py`). A rule of that kind only matches such
writes.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Literal

from localdev.armsim.config import SimConfig
from localdev.armsim.errors import ArmError

FaultKind = Literal["500", "503", "429", "operation-failed", "extension-exit-3010"]
#: Kinds the seeded random faults choose from (Azure's transient failures).
_KINDS: tuple[FaultKind, ...] = ("500", "503", "429", "operation-failed")
#: Kinds targeted rules accept.
RULE_KINDS: tuple[FaultKind, ...] = (*_KINDS, "extension-exit-3010")
#: A script extension ends with exit code 3010 (needs a reboot) once.
EXTENSION_REBOOT: FaultKind = "extension-exit-3010"

#: Error of an operation failed by fault injection (what the network and compute RPs send).
RETRYABLE_OPERATION_ERROR = {
    "code": "RetryableError",
    "message": "A retryable error occurred. Retry the operation.",
}


@dataclass
class FaultRule:
    """A targeted fault: the next `count` requests of `method` whose path contains `path`."""

    method: str
    path: str
    kind: FaultKind
    count: int = 1

    def matches(self, method: str, path: str) -> bool:
        """Whether a request (lower-case path) is covered by this rule and it has uses left."""
        return (
            self.count > 0
            and self.method.upper() in {"*", method.upper()}
            and self.path.lower() in path
        )

    def to_json(self) -> dict[str, Any]:
        """The admin API's view."""
        return {"method": self.method, "path": self.path, "kind": self.kind, "count": self.count}


def parse_rule(data: dict[str, Any]) -> FaultRule:
    """A rule from the admin API's JSON (`{"method", "path", "kind", "count"}`)."""
    kind = str(data.get("kind", ""))
    if kind not in RULE_KINDS:
        raise ValueError(f"fault kind must be one of {', '.join(RULE_KINDS)}")
    return FaultRule(
        method=str(data.get("method", "*")),
        path=str(data.get("path", "")),
        kind=kind,
        count=int(data.get("count", 1)),
    )


def _fraction(digest: bytes, start: int) -> float:
    return int.from_bytes(digest[start : start + 8], "big") / 2**64


class FaultInjector:
    """Decides, per request, whether and how it fails."""

    def __init__(self, config: SimConfig) -> None:
        self._config = config
        self._attempts: dict[tuple[str, str], int] = {}
        self.rules: list[FaultRule] = []

    def decide(
        self, method: str, path: str, *, operation_capable: bool, script_capable: bool = False
    ) -> FaultKind | None:
        """The fault for this request, or None; counts the attempt either way."""
        attempt_key = (method.upper(), path.lower())
        attempt = self._attempts.get(attempt_key, 0) + 1
        self._attempts[attempt_key] = attempt
        for rule in self.rules:
            if rule.kind == EXTENSION_REBOOT and not script_capable:
                continue
            if rule.matches(method, attempt_key[1]):
                rule.count -= 1
                if rule.kind == "operation-failed" and not operation_capable:
                    return "503"
                return rule.kind
        if self._config.fault_rate <= 0:
            return None
        material = f"{self._config.seed}|{attempt_key[0]}|{attempt_key[1]}|{attempt}"
        digest = hashlib.sha256(material.encode()).digest()
        if _fraction(digest, 0) >= self._config.fault_rate:
            return None
        kind = _KINDS[int(_fraction(digest, 8) * len(_KINDS))]
        if kind == "operation-failed" and not operation_capable:
            return "503"
        return kind

    def error(self, kind: FaultKind) -> ArmError:
        """The immediate error answer for a fault kind (not for the operation kinds)."""
        if kind == "500":
            return ArmError(
                500, "InternalServerError", "Encountered internal server error. Please try again."
            )
        if kind == "503":
            return ArmError(
                503,
                "ServiceUnavailable",
                "The service is temporarily unavailable. Please retry the request.",
            )
        retry_after = str(self._config.fault_retry_after)
        return ArmError(
            429,
            "TooManyRequests",
            "The request is being throttled by the resource provider. Please retry.",
            headers={"Retry-After": retry_after},
        )

    def reset(self) -> None:
        """Forget attempt numbers and rules, so a run with the same seed repeats its faults."""
        self._attempts.clear()
        self.rules.clear()

"""Orchestration versioning as the Durable extension applies it.

host.json's ``extensions.durableTask`` may set ``defaultVersion`` (the version of every new
orchestration and sub-orchestration created without one), ``versionMatchStrategy`` (``None``,
``Strict`` or ``CurrentOrOlder``, the default: which instance versions this worker runs) and
``versionFailureStrategy`` (``Reject``, the default: an instance this worker may not run is left
as it is for a worker that may; ``Fail``: the instance fails). Versions compare by the
documented rules: empty versions are equal and older than any other; two ``System.Version``
strings (two to four numeric components) compare numerically, an undefined component being
less than any defined one; anything else compares as case-insensitive text. Source: "Orchestration
versioning in Durable Functions",
https://learn.microsoft.com/azure/azure-functions/durable/durable-functions-orchestration-versioning
(the failure messages are those of microsoft/durabletask-dotnet's worker,
src/Worker/Grpc/GrpcDurableTaskWorker.Processor.cs). The extension's client stamps new instances
with ``DurableTaskOptions.DefaultVersion`` (Azure/azure-functions-durable-extension,
ContextImplementations/DurableClient.cs, ``StartNewAsync``); the Python SDK (1.7) reads
``context.version`` from the ExecutionStarted event and sends ``version`` on its sub-orchestration
actions and as ``?version=`` when starting. A worker without a ``defaultVersion`` runs every
version (as microsoft/durabletask-js's worker does when it has no version).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

MATCH_STRATEGIES = ("None", "Strict", "CurrentOrOlder")
FAILURE_STRATEGIES = ("Reject", "Fail")

_SYSTEM_VERSION = re.compile(r"\d+(?:\.\d+){1,3}")
_INT32_MAX = 2**31 - 1


def _system_version(text: str) -> tuple[int, ...] | None:
    """``text`` as .NET's ``System.Version`` components (undefined ones as -1), if it is one."""
    if _SYSTEM_VERSION.fullmatch(text) is None:
        return None
    parts = [int(part) for part in text.split(".")]
    if any(part > _INT32_MAX for part in parts):
        return None
    return tuple(parts + [-1] * (4 - len(parts)))


def compare_versions(left: str | None, right: str | None) -> int:
    """-1, 0 or 1 as ``left`` is older than, equal to or newer than ``right``."""
    if not left or not right:
        return (1 if left else 0) - (1 if right else 0)
    numeric_left, numeric_right = _system_version(left), _system_version(right)
    if numeric_left is not None and numeric_right is not None:
        return (numeric_left > numeric_right) - (numeric_left < numeric_right)
    # .NET's OrdinalIgnoreCase compares the upper-cased texts.
    text_left, text_right = left.upper(), right.upper()
    return (text_left > text_right) - (text_left < text_right)


@dataclass(frozen=True)
class VersionPolicy:
    """What host.json says about versions; ``mismatch`` tells whether an instance may run."""

    default_version: str | None = None
    match_strategy: str = "CurrentOrOlder"
    failure_strategy: str = "Reject"

    @property
    def fails_mismatches(self) -> bool:
        return self.failure_strategy == "Fail"

    def version_for_new(self, requested: str | None) -> str | None:
        """The version a new (sub-)orchestration gets: the one asked for, else the default."""
        return self.default_version if requested is None else requested

    def mismatch(self, version: str | None) -> str | None:
        """Why this worker may not run an instance of ``version``; None when it may."""
        worker = self.default_version
        if not worker or self.match_strategy == "None":
            return None
        comparison = compare_versions(version, worker)
        if self.match_strategy == "Strict" and comparison != 0:
            return (
                f"The orchestration version '{version or ''}' does not match the worker "
                f"version '{worker}'."
            )
        if self.match_strategy == "CurrentOrOlder" and comparison > 0:
            return (
                f"The orchestration version '{version}' is greater than the worker "
                f"version '{worker}'."
            )
        return None

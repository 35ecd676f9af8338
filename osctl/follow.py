"""Following a deployment, upgrade or teardown until it ends, and judging how it ended.

After a PUT or DELETE the `Location` of the 202 is polled: the app's operation route, which
answers 202 with the operation's progress while it runs and 200 with its result (Azure's
asynchronous-operation pattern). Without one (`osctl wait`), the platform state
(`GET /api/platforms/{id}`) is polled instead; right after a request it may still describe the
previous, finished operation (the orchestration's instance id is the same for every run of a
platform), so a terminal state equal to the one seen before does not end the wait. Each answer
becomes a `Snapshot` handed to a `ProgressSink` (the live bars or the plain lines). An upgrade's
snapshot carries its progress per environment and per server (`UpgradeView`, the API's
`upgrade`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Protocol

from osctl.client import ApiClient, ApiConnectionError, ApiError, JSONObject
from outsystems.names import ENVIRONMENTS

logger = logging.getLogger(__name__)

TERMINAL_STATUSES = frozenset({"Completed", "Failed", "Terminated", "Canceled"})

# How many polls in a row may fail (connection refused, 5xx) before following gives up: a host
# restarting or a gateway hiccup must not abort an hour-long deployment's progress display.
TRANSIENT_FAILURES = 3
# Without an operation URL, how many polls a finished previous operation (or a 404) is taken
# as "the new one is not visible yet" before it is believed.
STALE_POLLS = 5


@dataclass(frozen=True)
class EnvFailure:
    """An environment's failure: the ARM error code, its message and the resource concerned."""

    code: str
    message: str
    resource: str | None


@dataclass(frozen=True)
class EnvironmentProgress:
    name: str
    status: str
    done: int
    total: int
    step: str | None
    error: EnvFailure | None


@dataclass(frozen=True)
class ServerUpgradeView:
    """One server of an upgrade: a VM, or a scale-set instance in the set `updating` or
    `loaded` of the balanced upgrade."""

    name: str
    state: str
    instance_id: str | None = None
    group: str | None = None
    version: str | None = None
    step: str | None = None
    error: EnvFailure | None = None
    #: Added by the upgrade for the time of the balanced upgrade.
    temporary: bool = False


@dataclass(frozen=True)
class EnvironmentUpgradeView:
    name: str
    state: str
    done: int
    total: int
    step: str | None
    servers: tuple[ServerUpgradeView, ...]
    error: EnvFailure | None
    restore_point: str | None = None


@dataclass(frozen=True)
class UpgradeView:
    """The API's `upgrade` (`docs/api.md`, Upgrades): the upgrade's state, the environment it
    awaits the approval of, its environments in the order they are upgraded."""

    state: str
    source: str
    target: str
    environments: tuple[EnvironmentUpgradeView, ...]
    awaiting: str | None = None
    resumes_at: str | None = None

    @classmethod
    def parse(cls, raw: Any) -> UpgradeView | None:
        if not isinstance(raw, dict):
            return None
        environments = []
        for item in raw.get("environments") or []:
            if not isinstance(item, dict):
                continue
            restore = item.get("restorePoint")
            environments.append(
                EnvironmentUpgradeView(
                    name=str(item.get("environment") or "?"),
                    state=str(item.get("state") or "Pending"),
                    done=_int(item.get("stepsDone")),
                    total=_int(item.get("stepsTotal")),
                    step=_optional_str(item.get("step")),
                    servers=tuple(
                        ServerUpgradeView(
                            name=str(server.get("name") or "?"),
                            state=str(server.get("state") or "Pending"),
                            instance_id=_optional_str(server.get("instanceId")),
                            group=_optional_str(server.get("group")),
                            version=_optional_str(server.get("version")),
                            step=_optional_str(server.get("step")),
                            error=_failure(server.get("error")),
                            temporary=bool(server.get("temporary")),
                        )
                        for server in item.get("servers") or []
                        if isinstance(server, dict)
                    ),
                    error=_failure(item.get("error")),
                    restore_point=_optional_str(
                        (restore.get("databaseId") or restore.get("restoreTo"))
                        if isinstance(restore, dict)
                        else None
                    ),
                )
            )
        return cls(
            state=str(raw.get("state") or "Pending"),
            source=_versions(raw.get("from")),
            target=_versions(raw.get("to")),
            environments=tuple(environments),
            awaiting=_optional_str(raw.get("awaiting")),
            resumes_at=_optional_str(raw.get("resumesAt")),
        )


def _versions(raw: Any) -> str:
    """`11.33.0 (LifeTime 11.26.0)` from `{"platformVersion", "lifetimeVersion"}`."""
    if not isinstance(raw, dict):
        return "?"
    return f"{raw.get('platformVersion', '?')} (LifeTime {raw.get('lifetimeVersion', '?')})"


def _failure(error: Any) -> EnvFailure | None:
    if not isinstance(error, dict):
        return None
    return EnvFailure(
        code=str(error.get("code") or "Error"),
        message=str(error.get("message") or ""),
        resource=_optional_str(error.get("resource")),
    )


@dataclass(frozen=True)
class Operation:
    kind: str
    instance_id: str | None
    runtime_status: str
    started_at: str | None
    updated_at: str | None

    @property
    def terminal(self) -> bool:
        return self.runtime_status in TERMINAL_STATUSES

    @property
    def identity(self) -> tuple[str | None, str | None, str]:
        return (self.instance_id, self.started_at, self.kind)

    @classmethod
    def parse(cls, raw: Any) -> Operation | None:
        if not isinstance(raw, dict) or not raw.get("runtimeStatus"):
            return None
        return cls(
            kind=str(raw.get("kind") or "deploy"),
            instance_id=_optional_str(raw.get("instanceId")),
            runtime_status=str(raw["runtimeStatus"]),
            started_at=_optional_str(raw.get("startedAt")),
            updated_at=_optional_str(raw.get("updatedAt")),
        )


@dataclass(frozen=True)
class Snapshot:
    """What a poll saw: the operation, each environment's progress, and the outputs so far."""

    solution_id: str
    operation: Operation | None
    environments: tuple[EnvironmentProgress, ...]
    outputs: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    raw: JSONObject = field(default_factory=dict)
    #: The API's top-level outcome (`Running`, `Succeeded`, ...); None from an older app.
    status: str | None = None
    #: An upgrade's progress (the API's `upgrade`); None for other operations.
    upgrade: UpgradeView | None = None

    @property
    def terminal(self) -> bool:
        return self.operation is not None and self.operation.terminal

    @classmethod
    def from_platform(cls, solution_id: str, raw: JSONObject) -> Snapshot:
        outputs = raw.get("outputs")
        return cls(
            solution_id=str(raw.get("solutionId") or solution_id),
            operation=Operation.parse(raw.get("lastOperation")),
            environments=parse_environments(raw.get("environments")),
            outputs=outputs if isinstance(outputs, dict) else {},
            raw=raw,
            status=_optional_str(raw.get("status")),
            upgrade=UpgradeView.parse(raw.get("upgrade")),
        )

    @classmethod
    def from_operation(cls, solution_id: str, raw: JSONObject, *, ended: bool) -> Snapshot:
        """A snapshot from the app's operation route (`ended`: it answered 200, not 202)."""
        status = _optional_str(raw.get("status"))
        runtime = _optional_str(raw.get("runtimeStatus"))
        if runtime is None or (ended and runtime not in TERMINAL_STATUSES):
            runtime = "Running" if not ended else _RUNTIME_OF.get(status or "", "Completed")
        outputs = raw.get("outputs") if isinstance(raw.get("outputs"), dict) else {}
        environments = raw.get("environments") if isinstance(raw.get("environments"), dict) else {}
        last = {
            "kind": str(raw.get("kind") or "deploy"),
            "operationId": _optional_str(raw.get("id")),
            "runtimeStatus": runtime,
            "startedAt": _optional_str(raw.get("startedAt")),
            "updatedAt": _optional_str(raw.get("updatedAt")),
        }
        operation = Operation(
            kind=last["kind"] or "deploy",
            instance_id=last["operationId"],
            runtime_status=runtime,
            started_at=last["startedAt"],
            updated_at=last["updatedAt"],
        )
        return cls(
            solution_id=str(raw.get("solutionId") or solution_id),
            operation=operation,
            environments=parse_environments(environments),
            outputs=outputs or {},
            raw={
                "solutionId": str(raw.get("solutionId") or solution_id),
                "status": status,
                "lastOperation": last,
                "environments": environments or {},
                "outputs": outputs or {},
                **({"upgrade": raw["upgrade"]} if "upgrade" in raw else {}),
            },
            status=status,
            upgrade=UpgradeView.parse(raw.get("upgrade")),
        )

    @classmethod
    def from_durable(
        cls, solution_id: str, raw: JSONObject, kind: str, outputs: Mapping[str, Any]
    ) -> Snapshot:
        """A snapshot from the Durable status of the operation's orchestration."""
        custom = raw.get("customStatus")
        # deploy_platform and teardown_platform report {"phase": ..., "environments": {...}}.
        environments = custom.get("environments") if isinstance(custom, dict) else None
        operation = Operation(
            kind=kind,
            instance_id=_optional_str(raw.get("instanceId")),
            runtime_status=str(raw.get("runtimeStatus") or "Pending"),
            started_at=_optional_str(raw.get("createdTime")),
            updated_at=_optional_str(raw.get("lastUpdatedTime")),
        )
        result = raw.get("output")
        merged = dict(outputs)
        if isinstance(result, dict) and isinstance(result.get("outputs"), dict):
            merged.update(result["outputs"])
        return cls(
            solution_id=solution_id,
            operation=operation,
            environments=parse_environments(environments),
            outputs=merged,
            raw={
                "solutionId": solution_id,
                "lastOperation": {
                    "kind": kind,
                    "instanceId": operation.instance_id,
                    "runtimeStatus": operation.runtime_status,
                    "startedAt": operation.started_at,
                    "updatedAt": operation.updated_at,
                },
                "environments": environments if isinstance(environments, dict) else {},
                "outputs": merged,
            },
        )


#: Durable's runtime status of an ended operation, for an answer that does not say it.
_RUNTIME_OF = {"Canceled": "Canceled", "Failed": "Failed"}


def parse_environments(raw: Any) -> tuple[EnvironmentProgress, ...]:
    """The contract's `environments` object, in dev, test, prod, life order (others after)."""
    if not isinstance(raw, dict):
        return ()
    result = []
    for name in platform_order(raw):
        item = raw[name]
        if not isinstance(item, dict):
            continue
        result.append(
            EnvironmentProgress(
                name=name,
                status=str(item.get("status") or "Pending"),
                done=_int(item.get("resourcesDone")),
                total=_int(item.get("resourcesTotal")),
                step=_optional_str(item.get("step")),
                error=_failure(item.get("error")),
            )
        )
    return tuple(result)


def platform_order(names: Iterable[str]) -> list[str]:
    """Environment names as dev, test, prod, life, then any others sorted."""
    present = set(names)
    return [n for n in ENVIRONMENTS if n in present] + sorted(present - set(ENVIRONMENTS))


class Outcome(Enum):
    SUCCEEDED = "succeeded"
    PARTIALLY_SUCCEEDED = "partiallySucceeded"
    FAILED = "failed"
    CANCELED = "canceled"
    RUNNING = "running"
    NONE = "none"  # the platform has no operation to judge


#: The API's top-level `status` values (`docs/api.md`).
STATUS_OUTCOMES = {
    "Succeeded": Outcome.SUCCEEDED,
    "PartiallySucceeded": Outcome.PARTIALLY_SUCCEEDED,
    "Failed": Outcome.FAILED,
    "Canceled": Outcome.CANCELED,
    "Running": Outcome.RUNNING,
}


def outcome(snapshot: Snapshot, targets: Sequence[str] = ()) -> Outcome:
    """How the snapshot's operation ended: the API's `status` when it says.

    Without one (an app from before it), judged here: a deployment succeeded when it is
    `Completed` with every environment `Succeeded`; a teardown succeeded when it is `Completed`
    with its `targets` `Deleted` (targets unknown: no environment `Failed`); the environments
    it left alone keep whatever state they had.
    """
    operation = snapshot.operation
    if operation is None:
        return Outcome.NONE
    if snapshot.status in STATUS_OUTCOMES:
        return STATUS_OUTCOMES[snapshot.status]
    status = operation.runtime_status
    if status in {"Terminated", "Canceled"}:
        return Outcome.CANCELED
    if status == "Failed":
        return Outcome.FAILED
    if status != "Completed":
        return Outcome.RUNNING
    statuses = {env.status for env in involved(snapshot, targets)}
    if operation.kind == "deploy":
        ok = statuses <= {"Succeeded"}
    elif targets:
        ok = statuses <= {"Deleted"}
    else:
        ok = "Failed" not in statuses
    if ok:
        return Outcome.SUCCEEDED
    if "Canceled" in statuses and "Failed" not in statuses:
        return Outcome.CANCELED
    return Outcome.FAILED


def involved(snapshot: Snapshot, targets: Sequence[str] = ()) -> tuple[EnvironmentProgress, ...]:
    """The environments an operation was about: `targets`, or all of them when none given."""
    if not targets:
        return snapshot.environments
    return tuple(env for env in snapshot.environments if env.name in targets)


class ProgressSink(Protocol):
    def update(self, snapshot: Snapshot) -> None: ...


@dataclass
class Follower:
    """Polls one platform until its operation is terminal, feeding every snapshot to a sink.

    `baseline` is the operation seen before the request that started the one to follow;
    `status_url` the `Location` of the 202 (the app's operation route); `kind` what was
    started (`deploy`, `teardown`), None when following whatever runs (`osctl wait`).
    """

    client: ApiClient
    solution_id: str
    interval: float
    baseline: Operation | None = None
    status_url: str | None = None
    kind: str | None = None
    sleep: Callable[[float], None] = time.sleep
    _stale_polls: int = field(default=0, init=False)
    _failures: int = field(default=0, init=False)

    def run(self, sink: ProgressSink) -> Snapshot:
        while True:
            try:
                snapshot = self._poll()
            except (ApiConnectionError, ApiError) as err:
                # 429 is the platform throttling, not an answer about the operation.
                if isinstance(err, ApiError) and err.is_client_error and err.status != 429:
                    raise
                self._failures += 1
                if self._failures > TRANSIENT_FAILURES:
                    raise
                logger.warning("poll failed (%s); trying again", err)
                self.sleep(self.interval)
                continue
            self._failures = 0
            if snapshot is not None:
                sink.update(snapshot)
                if snapshot.terminal:
                    return snapshot
            self.sleep(self.interval)

    def _poll(self) -> Snapshot | None:
        if self.status_url:
            return self._poll_operation(self.status_url)
        not_found: ApiError | None = None
        snapshot: Snapshot | None = None
        try:
            snapshot = Snapshot.from_platform(
                self.solution_id, self.client.get_platform(self.solution_id)
            )
        except ApiError as err:
            if err.status != 404 or self.kind is None:
                raise
            not_found = err
        if snapshot is not None and self._is_current(snapshot):
            self._stale_polls = 0
            return snapshot
        self._stale_polls += 1
        if self._stale_polls <= STALE_POLLS:
            return None
        if not_found is not None:
            if self.kind == "teardown":
                # The whole platform is gone: that is what a full teardown ends with.
                return _gone(self.solution_id)
            raise not_found
        return snapshot

    def _poll_operation(self, url: str) -> Snapshot:
        status, raw = self.client.operation(url)
        if "customStatus" in raw and "kind" not in raw:
            # An app from before the operation route handed out Durable's status URL.
            return Snapshot.from_durable(self.solution_id, raw, self.kind or "deploy", {})
        return Snapshot.from_operation(self.solution_id, raw, ended=status != 202)

    def _is_current(self, snapshot: Snapshot) -> bool:
        operation = snapshot.operation
        if operation is None:
            return self.kind is None
        if not operation.terminal or self.baseline is None:
            return True
        return operation.identity != self.baseline.identity


def _gone(solution_id: str) -> Snapshot:
    operation = Operation("teardown", None, "Completed", None, None)
    return Snapshot(
        solution_id,
        operation,
        (),
        raw={
            "solutionId": solution_id,
            "lastOperation": {"kind": "teardown", "runtimeStatus": "Completed"},
        },
    )


def _optional_str(value: Any) -> str | None:
    return None if value is None else str(value)


def _int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0

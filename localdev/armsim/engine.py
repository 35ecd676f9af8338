"""The ARM semantics, independent of the HTTP framework: request in, response out.

`Engine.handle` is the pipeline every request goes through, as in Azure Resource Manager: the
clock first completes the operations now due (`operations.py`); then the route (ARM paths,
case-insensitive; extension resources on any scope; POST actions), the `api-version`,
throttling, authorization against the caller's role when one is set (`authorization.py`) and
fault injection; then the handler for the route and method: resource groups (`groups.py`),
reads (`reads.py`) and writes (`writes.py`), which check (`checks.py`), store, start
long-running operations and answer with the JSON views ARM returns (`views.py`). Per-type
behaviour comes from `catalog.py`, `validation.py` and the behaviours `registry.py` maps types
to, which see the engine as a `hooks.ArmSim`; durations from `latency.py`. Every request is
recorded in the request log the admin API and tests read.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import re
import time
import uuid
from collections.abc import Callable
from typing import Any

from localdev.armsim import extensions, groups, operations, reads, scale_sets, views, writes
from localdev.armsim.authorization import Caller, Permissions
from localdev.armsim.authorization import check as check_authorization
from localdev.armsim.bodies import merge_patch
from localdev.armsim.catalog import spec_for
from localdev.armsim.config import SimConfig
from localdev.armsim.errors import ArmError
from localdev.armsim.faults import (
    EXTENSION_REBOOT,
    RETRYABLE_OPERATION_ERROR,
    FaultInjector,
    FaultKind,
)
from localdev.armsim.messages import Interjection, SimRequest, SimResponse
from localdev.armsim.paths import Route, key, parse_route
from localdev.armsim.store import RequestRecord, Resource, Store
from localdev.armsim.throttling import Throttler, category_of, header_name

logger = logging.getLogger(__name__)

_API_VERSION = re.compile(r"\d{4}-\d{2}-\d{2}(-[A-Za-z]+)?")


class Engine:
    """One simulated ARM: state, settings and the request pipeline."""

    def __init__(
        self,
        config: SimConfig | None = None,
        store: Store | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config or SimConfig()
        self.store = store or Store()
        self._base_clock = clock
        #: Seconds added to the wall clock: tests and demos can fast-forward operations.
        self.clock_offset = 0.0
        self.throttler = Throttler(self.config, self.clock)
        self.faults = FaultInjector(self.config)
        #: The caller's role (None: everything allowed), from `config.permissions_file`.
        self.permissions: Permissions | None = self._configured_permissions()
        self.now = self.clock()
        #: The fault injection planned for the request being answered (None: none).
        self.fault: FaultKind | None = None
        self._sequence = 0
        #: Changes made by others just before some of the client's requests (tests).
        self.interjections: list[Interjection] = []

    def _configured_permissions(self) -> Permissions | None:
        path = self.config.permissions_file
        return Permissions.load(path) if path is not None else None

    @property
    def caller(self) -> Caller:
        """Who calls: the ids ARM names in its 403s."""
        return Caller(self.config.caller_client_id, self.config.caller_object_id)

    def clock(self) -> float:
        """The simulator's time: the wall clock plus any fast-forward."""
        return self._base_clock() + self.clock_offset

    def fast_forward(self, seconds: float) -> None:
        """Move the simulator's clock forward, completing the operations now due."""
        if seconds < 0:
            raise ValueError("the clock only moves forward")
        with self.store.lock:
            self.clock_offset += seconds
            self.catch_up()

    def catch_up(self) -> float:
        """Bring `now` to the clock and complete the operations due by then (hold the lock)."""
        self.now = self.clock()
        operations.advance(self)
        return self.now

    # ================================================================ what hooks ask of it

    def view(self, resource: Resource, expand: str = "") -> dict[str, Any]:
        """The JSON body ARM returns for a resource."""
        return views.view(self, resource, expand)

    def start_removal(self, resource: Resource, request: SimRequest) -> SimResponse:
        """Begin removing a resource as an action's long-running operation (202 + `Location`)."""
        return operations.start_removal(self, resource, request)

    def start_action(
        self,
        resource: Resource,
        action: str,
        request: SimRequest,
        seconds: float,
        *,
        targets: list[str] | None = None,
        lock: bool = True,
    ) -> SimResponse:
        """Begin a POST action as a long-running operation (see `hooks.ArmSim`)."""
        planned = dict(RETRYABLE_OPERATION_ERROR) if self.fault == "operation-failed" else None
        if self.fault == EXTENSION_REBOOT:
            planned = scale_sets.reboot_error(self, resource)
        return operations.start_action(
            self, resource, action, request, seconds, planned, targets=targets, lock=lock
        )

    def require_idle(self, resource: Resource, request: SimRequest) -> None:
        """409 `AnotherOperationInProgress` while an operation keeps `resource` busy."""
        op = operations.busy(self, resource)
        if op is not None:
            raise operations.busy_error(request, op)

    # ================================================================ the pipeline

    def handle(self, request: SimRequest, *, interject: bool = True) -> SimResponse:
        """Answer one ARM request (thread-safe), after any interjection due before it."""
        if interject:
            for action in self._due_interjections(request):
                action()
        with self.store.lock:
            start = self.catch_up()
            self._sequence += 1
            record = RequestRecord(
                seq=self._sequence,
                method=request.method.upper(),
                path=request.path.rstrip("/").lower() or "/",
                status=0,
                start=start,
                end=start,
                client_request_id=request.headers.get("x-ms-client-request-id"),
            )
            response = self._handle_recorded(request, record)
            response.headers.setdefault("x-ms-request-id", str(uuid.uuid4()))
            record.status = response.status
            record.end = self.clock()
            self.store.requests.append(record)
            overflow = len(self.store.requests) - self.config.request_log_limit
            if overflow > 0:
                del self.store.requests[:overflow]
            counters = self.store.counters
            counters["requests"] += 1
            counters[f"method.{record.method}"] += 1
            counters[f"status.{response.status}"] += 1
            return response

    def _due_interjections(self, request: SimRequest) -> list[Callable[[], None]]:
        with self.store.lock:
            due = [i for i in self.interjections if i.count > 0 and i.matches(request)]
            for interjection in due:
                interjection.count -= 1
            self.interjections = [i for i in self.interjections if i.count > 0]
            return [i.action for i in due]

    def _handle_recorded(self, request: SimRequest, record: RequestRecord) -> SimResponse:
        route = parse_route(request.path)
        if (
            route is not None
            and route.kind == "operation_status"
            and (request.param("monitor") or "").lower() == "true"
        ):
            # A status URL with `monitor=true` is a Location (Compute's): it answers the result.
            route = dataclasses.replace(route, kind="operation_result")
        headers: dict[str, str] = {}
        try:
            if route is None:
                raise ArmError(
                    404, "InvalidRequestUri", f"The request URI '{request.path}' is not valid."
                )
            record.subscription = route.subscription
            _check_api_version(request)
            fault = self.faults.decide(
                request.method,
                record.path,
                operation_capable=self._operation_capable(route, request.method),
                script_capable=self._script_capable(route, request),
            )
            category = category_of(request.method)
            decision = self.throttler.take(route.subscription, category)
            headers[header_name(category)] = str(decision.remaining)
            if not decision.allowed:
                record.throttled = True
                self.store.counters["throttled"] += 1
                raise ArmError(
                    429,
                    "SubscriptionRequestsThrottled",
                    f"Number of '{category[:-1]}' requests for subscription "
                    f"'{route.subscription}' exceeded the limit. Please try after "
                    f"'{decision.retry_after}' seconds.",
                    headers={"Retry-After": str(decision.retry_after)},
                )
            if self.permissions is not None:
                check_authorization(self.permissions, self.caller, route, request)
            if fault is not None:
                record.fault = fault
                self.store.counters[f"fault.{fault}"] += 1
                if fault not in {"operation-failed", EXTENSION_REBOOT}:
                    raise self.faults.error(fault)
            self.fault = fault
            try:
                response = self._dispatch(route, request, fault)
            finally:
                self.fault = None
            if response.headers.get("x-sim-operation-id"):
                record.operation_id = response.headers.pop("x-sim-operation-id")
        except ArmError as error:
            response = SimResponse(error.status, error.envelope(), dict(error.headers))
        response.headers.update(headers)
        return response

    def _operation_capable(self, route: Route, method: str) -> bool:
        if route.kind == "collection" and route.path is not None and method.upper() == "POST":
            # A POST action the provider answers with a long-running operation.
            target = route.path.parent
            action = route.path.types[-1].lower()
            return target is not None and action in spec_for(target.full_type).lro_actions
        if route.kind != "resource" or route.path is None:
            return False
        spec = spec_for(route.path.full_type)
        mode = {"PUT": spec.put, "PATCH": spec.patch, "DELETE": spec.delete}.get(method.upper())
        return mode in {"async201", "async200", "async202"}

    def _script_capable(self, route: Route, request: SimRequest) -> bool:
        """Whether a write runs a script extension (the reboot fault applies to it)."""
        if route.kind == "collection" and route.path is not None:
            # A scale set's manual upgrade or reimage, or an instance's reimage.
            target = route.path.parent
            resource = self.store.get(target.id) if target is not None else None
            if request.method.upper() != "POST" or resource is None:
                return False
            return scale_sets.rebuilds_with_scripts(self, resource, route.path.types[-1])
        if route.kind != "resource" or route.path is None:
            return False
        if request.method.upper() not in {"PUT", "PATCH"}:
            return False
        try:
            body = json.loads(request.body or b"{}")
        except ValueError:
            return False
        if not isinstance(body, dict):
            return False
        type_key = route.path.full_type.lower()
        if type_key.endswith("/extensions"):
            return extensions.is_script(body.get("properties") or {})
        if type_key == "microsoft.compute/virtualmachinescalesets":
            existing = self.store.get(route.path.id)
            if request.method.upper() == "PATCH" and existing is not None:
                body = merge_patch(existing.body, body)
            return bool(extensions.profile_scripts(body))
        return False

    def _dispatch(self, route: Route, request: SimRequest, fault: FaultKind | None) -> SimResponse:
        method = request.method.upper()
        handlers: dict[str, Callable[[], SimResponse]] = {}
        if route.kind == "subscription":
            handlers = {
                "GET": lambda: SimResponse(200, views.subscription_view(self, route.subscription))
            }
        elif route.kind == "group":
            handlers = {
                "PUT": lambda: groups.put(self, route, request),
                "PATCH": lambda: groups.patch(self, route, request),
                "GET": lambda: groups.get(self, route),
                "HEAD": lambda: groups.head(self, route),
                "DELETE": lambda: groups.delete(self, route, request),
            }
        elif route.kind == "resource" and route.path is not None:
            resource_path = route.path
            handlers = {
                "PUT": lambda: writes.put(self, resource_path, request, fault),
                "PATCH": lambda: writes.patch(self, resource_path, request, fault),
                "GET": lambda: reads.get(self, resource_path, request),
                "DELETE": lambda: writes.delete(self, resource_path, request, fault),
            }
        elif method == "POST" and route.kind == "collection" and route.path is not None:
            collection_path = route.path
            handlers = {"POST": lambda: writes.post_action(self, collection_path, request)}
        elif method == "GET":
            handlers = {"GET": lambda: reads.get_other(self, route, request)}
        handler = handlers.get(method)
        if handler is None:
            raise ArmError(
                405,
                "MethodNotAllowed",
                f"The requested method {method} is not supported for this resource.",
            )
        return handler()

    # ================================================================ the admin API

    def resources_json(self, type_name: str | None = None) -> list[dict[str, Any]]:
        """Every resource with its state and how often it was created (admin API)."""
        with self.store.lock:
            self.catch_up()
            out = []
            for resource in sorted(self.store.resources.values(), key=lambda r: key(r.id)):
                if type_name and resource.type.lower() != type_name.lower():
                    continue
                out.append(
                    {
                        "id": resource.id,
                        "type": resource.type,
                        "provisioningState": resource.state,
                        "createdCount": self.store.creation_count(resource.id),
                        "created": resource.created,
                        "changed": resource.changed,
                        "body": views.view(self, resource),
                    }
                )
            return out

    def requests_json(self, since: int = 0) -> list[dict[str, Any]]:
        """The request log after sequence number `since`, with LRO start/end joined in."""
        with self.store.lock:
            out = []
            for record in self.store.requests:
                if record.seq <= since:
                    continue
                entry: dict[str, Any] = {
                    "seq": record.seq,
                    "method": record.method,
                    "path": record.path,
                    "status": record.status,
                    "start": record.start,
                    "end": record.end,
                    "subscription": record.subscription,
                    "throttled": record.throttled,
                    "fault": record.fault,
                    "clientRequestId": record.client_request_id,
                }
                if record.operation_id:
                    op = self.store.operations.get(record.operation_id)
                    entry["operation"] = op.to_json() if op else {"id": record.operation_id}
                out.append(entry)
            return out

    def counters_json(self) -> dict[str, Any]:
        """Request, status, fault, throttling, operation and creation counters."""
        with self.store.lock:
            counts = dict(self.store.counters)
            counts["resources"] = len(self.store.resources)
            counts["operations.inProgress"] = len(self.store.pending)
            return counts

    def reset(self) -> None:
        """Forget all state, the request log, counters, throttling and fault attempts."""
        with self.store.lock:
            self.store.clear()
            self.throttler.reset()
            self.faults.reset()
            self.permissions = self._configured_permissions()
            self._sequence = 0
            self.interjections = []


def _check_api_version(request: SimRequest) -> None:
    """`api-version` is required and looks like `yyyy-MM-dd[-suffix]` (any such is accepted)."""
    version = request.param("api-version")
    if not version:
        raise ArmError(
            400,
            "MissingApiVersionParameter",
            "The api-version query parameter (?api-version=) is required for all requests.",
        )
    if not _API_VERSION.fullmatch(version):
        raise ArmError(
            400,
            "InvalidApiVersionParameter",
            f"The api-version '{version}' is invalid. The supported versions are dates "
            "formatted as yyyy-MM-dd, optionally followed by a suffix such as '-preview'.",
        )

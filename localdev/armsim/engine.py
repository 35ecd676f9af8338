"""The ARM semantics, independent of the HTTP framework: request in, response out.

`Engine.handle` implements what Azure Resource Manager does for a request: routing of ARM paths
(case-insensitive; extension resources on any scope; POST actions), `api-version` checks,
throttling, authorization against the caller's role when one is set (`authorization.py`), fault
injection, validation (per type, names, references, busy resources), the write itself,
long-running operations that complete on a clock (and end as the type's `outcome` hook says),
and the JSON views ARM returns (without secrets or write-only values). Per-type behaviour comes
from `catalog.py`, `validation.py` and the behaviours `registry.py` maps types to; durations
from `latency.py`.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import math
import re
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from localdev.armsim import behaviours, extensions, registry
from localdev.armsim.authorization import Caller, Permissions
from localdev.armsim.authorization import check as check_authorization
from localdev.armsim.catalog import TypeSpec, WriteMode, canonical_type, spec_for
from localdev.armsim.config import SimConfig
from localdev.armsim.errors import (
    ArmError,
    another_operation_in_progress,
    invalid_reference,
    parent_not_found,
    reference_not_provisioned,
    resource_group_not_found,
    resource_not_found,
)
from localdev.armsim.faults import (
    EXTENSION_REBOOT,
    RETRYABLE_OPERATION_ERROR,
    FaultInjector,
    FaultKind,
)
from localdev.armsim.latency import Operation as OperationKind
from localdev.armsim.latency import operation_seconds
from localdev.armsim.paths import (
    RESOURCE_GROUP_TYPE,
    ResourcePath,
    Route,
    key,
    parse_resource_id,
    parse_route,
)
from localdev.armsim.store import Operation, RequestRecord, Resource, Store, iso
from localdev.armsim.throttling import Throttler, category_of, header_name
from localdev.armsim.validation import VALIDATORS, require_location

logger = logging.getLogger(__name__)

_API_VERSION = re.compile(r"\d{4}-\d{2}-\d{2}(-[A-Za-z]+)?")
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
_STATE_FOR_KIND = {"create": "Creating", "update": "Updating", "delete": "Deleting"}


@dataclass
class SimRequest:
    """An HTTP request as the engine sees it."""

    method: str
    path: str
    query: Mapping[str, str]
    body: bytes = b""
    base_url: str = "http://127.0.0.1"
    headers: Mapping[str, str] = field(default_factory=dict)

    def param(self, name: str) -> str | None:
        """A query parameter, matched case-insensitively."""
        lowered = name.lower()
        for query_key, value in self.query.items():
            if query_key.lower() == lowered:
                return value
        return None


@dataclass
class Interjection:
    """Something that happens just before the next `count` requests of `method` (or any, with
    `*`) whose lower-case path contains `path`: another party's change (a person at the portal,
    a policy) landing between two of the client's requests. In-process only (a test's code)."""

    method: str
    path: str
    action: Callable[[], None]
    count: int = 1

    def matches(self, request: SimRequest) -> bool:
        method = self.method.upper()
        return (method in {"*", request.method.upper()}) and (
            self.path.lower() in request.path.lower()
        )


@dataclass
class SimResponse:
    """What the engine answers: status, JSON body (None for no body) and headers."""

    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


def strip_secrets(value: Any) -> Any:
    """A copy of a JSON value without the write-only secret properties."""
    if isinstance(value, dict):
        return {k: strip_secrets(v) for k, v in value.items() if k.lower() not in SECRET_KEYS}
    if isinstance(value, list):
        return [strip_secrets(v) for v in value]
    return value


def _without_key(value: Any, name: str) -> Any:
    if isinstance(value, dict):
        return {k: _without_key(v, name) for k, v in value.items() if k.lower() != name}
    if isinstance(value, list):
        return [_without_key(v, name) for v in value]
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


class Engine:
    """One simulated ARM: state, settings and the request handler."""

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
            self.now = self.clock()
            self.advance()

    # ================================================================ entry point

    def handle(self, request: SimRequest, *, interject: bool = True) -> SimResponse:
        """Answer one ARM request (thread-safe), after any interjection due before it."""
        if interject:
            for action in self._due_interjections(request):
                action()
        with self.store.lock:
            start = self.clock()
            self.now = start
            self.advance()
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
        headers: dict[str, str] = {}
        try:
            if route is None:
                raise ArmError(
                    404, "InvalidRequestUri", f"The request URI '{request.path}' is not valid."
                )
            record.subscription = route.subscription
            self._check_api_version(request)
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
            response = self._dispatch(route, request, fault)
            if response.headers.get("x-sim-operation-id"):
                record.operation_id = response.headers.pop("x-sim-operation-id")
        except ArmError as error:
            response = SimResponse(error.status, error.envelope(), dict(error.headers))
        response.headers.update(headers)
        return response

    def _check_api_version(self, request: SimRequest) -> None:
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

    def _operation_capable(self, route: Route, method: str) -> bool:
        if route.kind != "resource" or route.path is None:
            return False
        spec = spec_for(route.path.full_type)
        mode = {"PUT": spec.put, "PATCH": spec.patch, "DELETE": spec.delete}.get(method.upper())
        return mode in {"async201", "async200", "async202"}

    def _script_capable(self, route: Route, request: SimRequest) -> bool:
        """Whether a write runs a script extension (the reboot fault applies to it)."""
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
            handlers = {"GET": lambda: SimResponse(200, self._subscription_view(route))}
        elif route.kind == "group":
            handlers = {
                "PUT": lambda: self._put_group(route, request),
                "PATCH": lambda: self._patch_group(route, request),
                "GET": lambda: self._get_group(route),
                "HEAD": lambda: self._head_group(route),
                "DELETE": lambda: self._delete_group(route, request),
            }
        elif route.kind == "resource" and route.path is not None:
            resource_path = route.path
            handlers = {
                "PUT": lambda: self._put(resource_path, request, fault),
                "PATCH": lambda: self._patch(resource_path, request, fault),
                "GET": lambda: self._get(resource_path, request),
                "DELETE": lambda: self._delete(resource_path, request, fault),
            }
        elif method == "POST" and route.kind == "collection" and route.path is not None:
            collection_path = route.path
            handlers = {"POST": lambda: self._post_action(collection_path, request)}
        elif method == "GET":
            handlers = {"GET": lambda: self._get_other(route, request)}
        handler = handlers.get(method)
        if handler is None:
            raise ArmError(
                405,
                "MethodNotAllowed",
                f"The requested method {method} is not supported for this resource.",
            )
        return handler()

    # ================================================================ clock and operations

    def advance(self) -> None:
        """Complete every operation whose end time has passed, in end-time order."""
        operations = self.store.operations
        due = sorted(
            (
                operations[op_id]
                for op_id in self.store.pending
                if operations[op_id].end <= self.now
            ),
            key=lambda op: (op.end, op.start),
        )
        for op in due:
            self.store.pending.discard(op.id)
            self._complete(op)
        expired = [k for k, at in self.store.expiring.items() if at <= self.now]
        for resource_key in expired:
            self.store.remove(resource_key)

    def _complete(self, op: Operation) -> None:
        resource = self.store.get(op.resource_id)
        self.store.dirty = True
        if op.planned_error is None and resource is not None and resource.operation_id == op.id:
            op.planned_error = registry.for_type(resource.type).outcome(self, resource, op)
        if op.planned_error is not None:
            op.status, op.error = "Failed", op.planned_error
            self.store.counters["operations.failed"] += 1
            if resource is not None and resource.operation_id == op.id:
                resource.operation_id = None
                resource.state = "Failed"
                if op.kind == "delete":
                    # The delete did not happen: what it would have taken along stays.
                    for descendant in self.store.descendants(resource.id):
                        if descendant.state == "Deleting":
                            descendant.state = "Succeeded"
                registry.for_type(resource.type).failed(self, resource, op)
            return
        op.status = "Succeeded"
        self.store.counters["operations.succeeded"] += 1
        if resource is None:
            return
        resource.operation_id = None
        if op.kind == "delete":
            for removed in sorted(
                [resource, *self.store.descendants(resource.id)], key=lambda r: -len(r.id)
            ):
                registry.for_type(removed.type).removed(self, removed)
            self.store.remove(resource.id)
            return
        resource.state = "Succeeded"
        registry.for_type(resource.type).completed(self, resource, op)

    def start_operation(
        self,
        resource: Resource,
        kind: OperationKind,
        method: str,
        seconds: float,
        planned_error: dict[str, Any] | None = None,
    ) -> Operation:
        """Begin a long-running operation on a resource; it ends after `seconds` x scale."""
        parsed = parse_resource_id(resource.id)
        namespace = parsed.namespace if parsed else "Microsoft.Resources"
        # Ids derive from the resource and its operation count, not randomness, so a rerun
        # polls the same URLs and seeded fault decisions repeat exactly.
        count = self.store.operation_counts.get(key(resource.id), 0) + 1
        self.store.operation_counts[key(resource.id)] = count
        op = Operation(
            id=str(uuid.uuid5(uuid.NAMESPACE_URL, f"{key(resource.id)}#{count}")),
            resource_id=resource.id,
            kind=kind,
            method=method,
            namespace=namespace,
            location=self.location_of(resource),
            subscription=resource.id.split("/")[2],
            start=self.now,
            end=self.now + seconds * self.config.latency_scale,
            planned_error=planned_error,
        )
        self.store.operations[op.id] = op
        self.store.pending.add(op.id)
        resource.operation_id = op.id
        resource.state = _STATE_FOR_KIND[kind]
        self.store.counters["operations.started"] += 1
        self.store.dirty = True
        return op

    def start_removal(self, resource: Resource, request: SimRequest) -> SimResponse:
        """Begin removing a resource as an action's long-running operation (202 + `Location`)."""
        op = self.start_operation(
            resource, "delete", "POST", operation_seconds(resource.type, "delete", resource.body)
        )
        headers = {
            "x-sim-operation-id": op.id,
            "Location": self._result_url(request, op),
            **self._retry_after(op),
        }
        return SimResponse(202, None, headers)

    def location_of(self, resource: Resource) -> str:
        """A resource's region: its own, else its parent's, else its resource group's."""
        current: Resource | None = resource
        while current is not None:
            location = current.body.get("location")
            if location:
                return str(location).replace(" ", "").lower()
            parent_id = self._parent_id(current.id)
            current = self.store.get(parent_id) if parent_id else None
        return "global"

    @staticmethod
    def _parent_id(resource_id: str) -> str | None:
        parsed = parse_resource_id(resource_id)
        if parsed is None:
            return None
        parent = parsed.parent
        return parent.id if parent is not None else parsed.group_id

    def busy_operation(self, resource: Resource) -> Operation | None:
        """The operation keeping a resource busy: its own, or one on a parent-locking child."""
        candidates = [resource]
        candidates += [
            child for child in self.store.children(resource.id) if spec_for(child.type).locks_parent
        ]
        for candidate in candidates:
            if candidate.operation_id:
                op = self.store.operations.get(candidate.operation_id)
                if op is not None and op.status == "InProgress":
                    return op
        return None

    def _status_url(self, request: SimRequest, op: Operation) -> str:
        return (
            f"{request.base_url}/subscriptions/{op.subscription}/providers/{op.namespace}/"
            f"locations/{op.location}/operations/{op.id}?"
            + urlencode({"api-version": request.param("api-version") or ""})
        )

    def _result_url(self, request: SimRequest, op: Operation) -> str:
        version = urlencode({"api-version": request.param("api-version") or ""})
        if op.namespace.lower() == "microsoft.resources":
            base = f"{request.base_url}/subscriptions/{op.subscription}"
            return f"{base}/operationresults/{op.id}?{version}"
        # Storage's Location is `.../locations/{loc}/asyncoperations/{id}` (its poll's action
        # is `Microsoft.Storage/locations/asyncoperations/read`); the others `operationResults`.
        segment = (
            "asyncoperations"
            if op.namespace.lower() == "microsoft.storage"
            else ("operationResults")
        )
        return (
            f"{request.base_url}/subscriptions/{op.subscription}/providers/{op.namespace}/"
            f"locations/{op.location}/{segment}/{op.id}?{version}"
        )

    def _retry_after(self, op: Operation) -> dict[str, str]:
        remaining = op.end - self.now
        if op.status != "InProgress" or remaining < 1:
            # Sub-second waits: let the client's own polling interval decide.
            return {}
        return {"Retry-After": str(min(math.ceil(remaining), self.config.max_poll_retry_after))}

    def _busy_error(self, request: SimRequest, op: Operation) -> ArmError:
        return another_operation_in_progress(self._status_url(request, op))

    # ================================================================ views

    def spec(self, resource: Resource) -> TypeSpec:
        """The catalog entry of a stored resource."""
        return spec_for(resource.type)

    def visible_state(self, resource: Resource) -> str:
        """`provisioningState` as ARM shows it (a VNet updating a subnet shows `Updating`)."""
        if resource.state == "Succeeded" and self.busy_operation(resource) is not None:
            return "Updating"
        return resource.state

    def view(self, resource: Resource, expand: str = "") -> dict[str, Any]:
        """The JSON body ARM returns for a resource."""
        body = copy.deepcopy(resource.body)
        if "userdata" not in expand.lower():
            body = _without_key(body, "userdata")
        out: dict[str, Any] = {"id": resource.id, "name": resource.name, "type": resource.type}
        for name in ("location", "tags", "sku", "kind", "zones", "identity", "plan"):
            if name in body:
                out[name] = body.pop(name)
        properties = body.pop("properties", None)
        properties = properties if isinstance(properties, dict) else {}
        out.update(body)
        spec = self.spec(resource)
        if spec.sub_resource_ids:
            out["etag"] = resource.etag
            for collection, items in properties.items():
                if isinstance(items, list):
                    for item in items:
                        if isinstance(item, dict) and item.get("name"):
                            item.setdefault("id", f"{resource.id}/{collection}/{item['name']}")
                            item.setdefault("etag", resource.etag)
                            item_properties = item.setdefault("properties", {})
                            if isinstance(item_properties, dict):
                                item_properties["provisioningState"] = self.visible_state(resource)
        properties["provisioningState"] = self.visible_state(resource)
        out["properties"] = properties
        self._decorate_identities(out)
        registry.for_type(resource.type).decorate(self, resource, out, expand)
        return out

    def _decorate_identities(self, view: dict[str, Any]) -> None:
        """`identity.userAssignedIdentities[id]` shows each identity's principal and client ids."""
        identity = view.get("identity")
        assigned = identity.get("userAssignedIdentities") if isinstance(identity, dict) else None
        if not isinstance(assigned, dict):
            return
        for identity_id in assigned:
            stored = self.store.get(identity_id)
            if stored is not None and stored.extra.get("principalId"):
                assigned[identity_id] = {
                    "principalId": stored.extra["principalId"],
                    "clientId": stored.extra.get("clientId", ""),
                }

    def _subscription_view(self, route: Route) -> dict[str, Any]:
        """`GET /subscriptions/{id}` (Subscriptions - Get, Microsoft.Resources 2022-12-01)."""
        return {
            "id": f"/subscriptions/{route.subscription}",
            "subscriptionId": route.subscription,
            "tenantId": self.config.tenant_id,
            "displayName": f"Simulated subscription {route.subscription}",
            "state": "Enabled",
            "subscriptionPolicies": {
                "locationPlacementId": "Public_2014-09-01",
                "quotaId": "PayAsYouGo_2014-09-01",
                "spendingLimit": "Off",
            },
            "authorizationSource": "RoleBased",
        }

    def _list(self, request: SimRequest, items: list[dict[str, Any]]) -> SimResponse:
        items = sorted(items, key=lambda item: str(item.get("id", "")).lower())
        try:
            skip = int(request.param("$skiptoken") or 0)
        except ValueError:
            raise ArmError(400, "InvalidSkipToken", "The skip token is not valid.") from None
        size = self.config.page_size
        page: dict[str, Any] = {"value": items[skip : skip + size]}
        if skip + size < len(items):
            query = {k: v for k, v in request.query.items() if k.lower() != "$skiptoken"}
            query["$skiptoken"] = str(skip + size)
            page["nextLink"] = f"{request.base_url}{request.path}?{urlencode(query)}"
        return SimResponse(200, page)

    # ================================================================ resource groups

    def _group(self, subscription: str, name: str) -> Resource | None:
        return self.store.get(f"/subscriptions/{subscription}/resourceGroups/{name}")

    def _require_group(self, subscription: str, name: str, *, writing: bool) -> Resource:
        group = self._group(subscription, name)
        if group is None:
            raise resource_group_not_found(name)
        if writing and group.state == "Deleting":
            raise ArmError(
                409,
                "ResourceGroupBeingDeleted",
                f"The resource group '{group.name}' is in deprovisioning state and cannot "
                "perform this operation.",
            )
        return group

    def _require_scope(self, path: ResourcePath, *, writing: bool) -> None:
        """The group holding a resource exists (not being deleted, to write), and so does the
        resource an extension resource extends."""
        if path.resource_group:
            self._require_group(path.subscription, path.resource_group, writing=writing)
        if path.extends and self.store.get(path.extends) is None:
            scope = parse_resource_id(path.extends)
            if scope is None:
                raise ArmError(400, "InvalidScope", f"The scope '{path.extends}' is not valid.")
            raise self._not_found(scope)

    def _json_body(self, request: SimRequest) -> dict[str, Any]:
        try:
            body = json.loads(request.body or b"{}")
        except ValueError as error:
            raise ArmError(
                400,
                "InvalidRequestContent",
                f"The request content was invalid and could not be deserialized: {error}.",
            ) from None
        if not isinstance(body, dict):
            raise ArmError(
                400, "InvalidRequestContent", "The request content must be a JSON object."
            )
        return body

    def _put_group(self, route: Route, request: SimRequest) -> SimResponse:
        body = self._json_body(request)
        spec = spec_for(RESOURCE_GROUP_TYPE)
        assert spec.name_rule is not None
        spec.name_rule.check(route.resource_group, RESOURCE_GROUP_TYPE)
        require_location(body)
        existing = self._group(route.subscription, route.resource_group)
        if existing is not None:
            if existing.state == "Deleting":
                self._require_group(route.subscription, route.resource_group, writing=True)
            old = str(existing.body.get("location", "")).replace(" ", "").lower()
            new = str(body["location"]).replace(" ", "").lower()
            if old != new:
                raise ArmError(
                    409,
                    "InvalidResourceGroupLocation",
                    f"Invalid resource group location '{body['location']}'. The Resource group "
                    f"already exists in location '{existing.body['location']}'.",
                )
            existing.body = strip_secrets(
                {k: v for k, v in body.items() if k in {"location", "tags", "managedBy"}}
            )
            existing.changed = self.now
            self.store.dirty = True
            return SimResponse(200, self.view(existing))
        group = self._new_resource(
            f"/subscriptions/{route.subscription}/resourceGroups/{route.resource_group}",
            RESOURCE_GROUP_TYPE,
            {k: v for k, v in body.items() if k in {"location", "tags", "managedBy"}},
            "Succeeded",
        )
        self.store.put(group)
        self.store.record_creation(group.id)
        return SimResponse(201, self.view(group))

    def _patch_group(self, route: Route, request: SimRequest) -> SimResponse:
        group = self._require_group(route.subscription, route.resource_group, writing=True)
        patch = self._json_body(request)
        group.body = merge_patch(group.body, {k: v for k, v in patch.items() if k != "location"})
        group.changed = self.now
        self.store.dirty = True
        return SimResponse(200, self.view(group))

    def _get_group(self, route: Route) -> SimResponse:
        group = self._require_group(route.subscription, route.resource_group, writing=False)
        return SimResponse(200, self.view(group))

    def _head_group(self, route: Route) -> SimResponse:
        exists = self._group(route.subscription, route.resource_group) is not None
        return SimResponse(204 if exists else 404)

    def _delete_group(self, route: Route, request: SimRequest) -> SimResponse:
        group = self._require_group(route.subscription, route.resource_group, writing=False)
        if group.state == "Deleting" and group.operation_id:
            op = self.store.operations[group.operation_id]
        else:
            for resource in self.store.descendants(group.id):
                resource.state = "Deleting"
            op = self.start_operation(
                group, "delete", "DELETE", operation_seconds(RESOURCE_GROUP_TYPE, "delete")
            )
        headers = {"Location": self._result_url(request, op), **self._retry_after(op)}
        headers["x-sim-operation-id"] = op.id
        return SimResponse(202, None, headers)

    # ================================================================ resources: reads

    def _get(self, path: ResourcePath, request: SimRequest) -> SimResponse:
        self._require_scope(path, writing=False)
        resource = self.store.get(path.id)
        if resource is None:
            raise self._not_found(path)
        return SimResponse(200, self.view(resource, request.param("$expand") or ""))

    def _not_found(self, path: ResourcePath) -> ArmError:
        parent = path.parent
        if parent is not None and self.store.get(parent.id) is None:
            return parent_not_found(parent.name)
        return resource_not_found(
            canonical_type(path.full_type), "/".join(path.names), path.resource_group
        )

    def _get_other(self, route: Route, request: SimRequest) -> SimResponse:
        if route.kind == "collection" and route.path is not None:
            return self._get_collection(route.path, request)
        if route.kind == "group_list":
            groups = [
                self.view(r)
                for r in self.store.resources.values()
                if r.type == RESOURCE_GROUP_TYPE
                and r.id.split("/")[2].lower() == route.subscription.lower()
            ]
            return self._list(request, groups)
        if route.kind in {"group_resources", "subscription_resources"}:
            if route.kind == "group_resources":
                self._require_group(route.subscription, route.resource_group, writing=False)
            return self._list(request, self._generic_resources(route, request))
        if route.kind == "subscription_type_list":
            wanted = f"{route.namespace}/{route.type_name}".lower()
            if spec_for(wanted).extension:
                scope = f"/subscriptions/{route.subscription}"
                listed = registry.for_type(wanted).list_at(self, scope, request)
                return self._list(request, listed or [])
            prefix = f"/subscriptions/{route.subscription}/".lower()
            found = [
                self.view(r, request.param("$expand") or "")
                for k, r in self.store.resources.items()
                if k.startswith(prefix) and r.type.lower() == wanted
            ]
            return self._list(request, found)
        if route.kind in {"operation_status", "operation_result", "group_operation_result"}:
            return self._get_operation(route, request)
        if route.kind == "usages":
            return SimResponse(200, {"value": behaviours.compute_usages(self, route)})
        raise ArmError(404, "InvalidRequestUri", f"The request URI '{request.path}' is not valid.")

    def _generic_resources(self, route: Route, request: SimRequest) -> list[dict[str, Any]]:
        prefix = f"/subscriptions/{route.subscription}/"
        if route.kind == "group_resources":
            prefix += f"resourcegroups/{route.resource_group}/"
        wanted_type, tag_name, tag_value = _parse_filter(request.param("$filter") or "")
        found = []
        for resource_key, resource in self.store.resources.items():
            parsed = parse_resource_id(resource.id)
            if (
                not resource_key.startswith(prefix.lower())
                or parsed is None
                or len(parsed.types) != 1
                or not parsed.resource_group
                or parsed.extends
                or spec_for(resource.type).extension
            ):
                continue
            if wanted_type and resource.type.lower() != wanted_type.lower():
                continue
            tags = {k.lower(): v for k, v in (resource.body.get("tags") or {}).items()}
            if tag_name and (
                tag_name.lower() not in tags
                or (tag_value is not None and tags[tag_name.lower()] != tag_value)
            ):
                continue
            generic = {
                k: v
                for k, v in self.view(resource).items()
                if k in {"id", "name", "type", "location", "tags", "sku", "kind"}
            }
            found.append(generic)
        return found

    def _get_collection(self, path: ResourcePath, request: SimRequest) -> SimResponse:
        self._require_scope(path, writing=False)
        expand = request.param("$expand") or ""
        parent_path = path.parent
        spec = spec_for(path.full_type)
        if parent_path is None and spec.extension:
            listed = registry.for_type(spec.type).list_at(self, path.scope, request)
            return self._list(request, listed or [])
        if parent_path is None:
            wanted = canonical_type(path.full_type).lower()
            prefix = key(path.group_id) + "/"
            found = [
                self.view(r, expand)
                for k, r in self.store.resources.items()
                if k.startswith(prefix) and r.type.lower() == wanted
            ]
            return self._list(request, found)
        parent = self.store.get(parent_path.id)
        if parent is None:
            raise self._not_found(parent_path)
        if path.types[-1].lower() == "instanceview":
            view = registry.for_type(parent.type).instance_view(self, parent)
            if view is None:
                raise ArmError(
                    404, "InvalidRequestUri", f"The request URI '{request.path}' is not valid."
                )
            return SimResponse(200, view)
        computed = registry.for_type(parent.type).listed(self, parent, path.types[-1])
        if computed is not None:
            return self._list(request, computed)
        children = self.store.children(parent.id, canonical_type(path.full_type))
        return self._list(request, [self.view(child, expand) for child in children])

    def _get_operation(self, route: Route, request: SimRequest) -> SimResponse:
        op = self.store.operations.get(route.operation_id)
        if op is None or op.subscription.lower() != route.subscription.lower():
            raise ArmError(
                404, "OperationNotFound", f"The operation '{route.operation_id}' was not found."
            )
        if route.kind == "operation_status":
            status: dict[str, Any] = {
                "id": request.path,
                "name": op.id,
                "status": op.status,
                "startTime": iso(op.start),
            }
            if op.status != "InProgress":
                status["endTime"] = iso(op.end)
            if op.error is not None:
                status["error"] = op.error
            return SimResponse(200, status, self._retry_after(op))
        if op.status == "InProgress":
            headers = {"Location": self._result_url(request, op), **self._retry_after(op)}
            return SimResponse(202, None, headers)
        if op.status != "Succeeded":
            return SimResponse(400, {"error": op.error})
        resource = self.store.get(op.resource_id)
        if op.kind == "delete" or resource is None:
            return SimResponse(200 if op.kind != "delete" else 204)
        return SimResponse(200, self.view(resource))

    # ================================================================ resources: writes

    def _new_resource(
        self, resource_id: str, type_name: str, body: dict[str, Any], state: str
    ) -> Resource:
        return Resource(
            id=resource_id,
            type=canonical_type(type_name),
            body=strip_secrets(body),
            state=state,
            created=self.now,
            changed=self.now,
            etag=f'W/"{uuid.uuid4()}"',
        )

    def _check_write_target(self, path: ResourcePath, request: SimRequest) -> Resource | None:
        """Shared preconditions of PUT/PATCH/DELETE: group, parent, busy resource."""
        self._require_scope(path, writing=True)
        parent_path = path.parent
        if parent_path is not None:
            parent = self.store.get(parent_path.id)
            if parent is None:
                raise parent_not_found(parent_path.name)
            parent_op = self._parent_busy(parent, path)
            if parent_op is not None:
                raise self._busy_error(request, parent_op)
        existing = self.store.get(path.id)
        if existing is not None:
            op = self.busy_operation(existing)
            if op is not None:
                raise self._busy_error(request, op)
        return existing

    def _parent_busy(self, parent: Resource, path: ResourcePath) -> Operation | None:
        if parent.operation_id:
            op = self.store.operations.get(parent.operation_id)
            if op is not None and op.status == "InProgress":
                return op
        if spec_for(path.full_type).locks_parent:
            return self.busy_operation(parent)
        return None

    def _validate(
        self,
        path: ResourcePath,
        spec: TypeSpec,
        body: dict[str, Any],
        existing: Resource | None,
    ) -> None:
        if spec.fixed_name is not None and path.name.lower() != spec.fixed_name:
            raise ArmError(
                400,
                "InvalidResourceName",
                f"The name of {spec.type} must be '{spec.fixed_name}'.",
            )
        if spec.name_rule is not None and existing is None:
            spec.name_rule.check(path.name, spec.type)
        if spec.tracked:
            require_location(body)
            if existing is not None:
                old = str(existing.body.get("location", "")).replace(" ", "").lower()
                new = str(body.get("location", "")).replace(" ", "").lower()
                if old and new and old != new:
                    raise ArmError(
                        400,
                        "InvalidResourceLocation",
                        f"The resource '{path.name}' already exists in location '{old}' in "
                        f"resource group '{path.resource_group}'. A resource with the same name "
                        f"cannot be created in location '{new}'. Please select a new resource "
                        "name.",
                    )
        validator = VALIDATORS.get(spec.type.lower())
        if validator is not None:
            validator(path.name, body, existing.body if existing else None)
        if spec.global_name and existing is None:
            self._check_global_name(path, spec)
        self._check_references(path, spec, body)
        registry.for_type(spec.type).check(self, path, body, existing)

    def _check_global_name(self, path: ResourcePath, spec: TypeSpec) -> None:
        for resource in self.store.resources.values():
            if resource.type == spec.type and resource.name.lower() == path.name.lower():
                if spec.type.lower() == "microsoft.storage/storageaccounts":
                    raise ArmError(
                        409,
                        "StorageAccountAlreadyTaken",
                        f"The storage account named {path.name} is already taken.",
                    )
                raise ArmError(
                    409,
                    "NameAlreadyExists",
                    f"The name '{path.name}' already exists. Choose a different name.",
                )

    def references_of(self, spec: TypeSpec, body: Mapping[str, Any]) -> list[str]:
        """The ids a body refers to: nested `id` properties and the type's reference paths."""
        found = list(iter_references(body))
        for dotted in spec.reference_paths:
            current: Any = body
            for part in dotted.split("."):
                current = current.get(part) if isinstance(current, Mapping) else None
            if isinstance(current, str) and current:
                found.append(current)
        return found

    def _check_references(self, path: ResourcePath, spec: TypeSpec, body: dict[str, Any]) -> None:
        own = key(path.id)
        for reference in self.references_of(spec, body):
            if parse_resource_id(reference) is None:
                raise invalid_reference(reference, path.id)
            ref_key = key(reference)
            if ref_key == own:
                continue
            if ref_key.startswith(own + "/"):
                if not _has_sub_element(body, reference[len(own) + 1 :]):
                    raise invalid_reference(reference, path.id)
                continue
            self.resolve_reference(reference, path.id)

    def resolve_reference(self, reference: str, referencing: str) -> Resource:
        """The stored resource a reference points at (or whose sub-element it names)."""
        target = self.store.get(reference)
        if target is None:
            parsed = parse_resource_id(reference)
            if parsed is not None and len(parsed.types) >= 2:
                owner = self.store.get(parsed.parent.id) if parsed.parent else None
                relative = f"{parsed.types[-1]}/{parsed.names[-1]}"
                if owner is not None and _has_sub_element(owner.body, relative):
                    target = owner
        if target is None:
            raise invalid_reference(reference, referencing)
        if target.state != "Succeeded":
            raise reference_not_provisioned(reference, referencing, target.state)
        return target

    def _fault_error(self, fault: FaultKind | None) -> dict[str, Any] | None:
        return dict(RETRYABLE_OPERATION_ERROR) if fault == "operation-failed" else None

    def _put(self, path: ResourcePath, request: SimRequest, fault: FaultKind | None) -> SimResponse:
        spec = spec_for(path.full_type)
        if not spec.creatable:
            raise ArmError(
                409,
                "OperationNotAllowed",
                f"Resources of type {spec.type} are created by their parent and cannot be "
                "written directly.",
            )
        body = self._json_body(request)
        for read_only in ("id", "name", "type", "etag"):
            body.pop(read_only, None)
        existing = self._check_write_target(path, request)
        self._validate(path, spec, body, existing)
        body = registry.for_type(spec.type).prepare(self, path, body, existing) or body
        digests = _take_write_only(spec, body)
        kind: OperationKind = "update" if existing is not None else "create"
        previous = copy.deepcopy(existing.body) if existing is not None else None
        if existing is None:
            resource = self._new_resource(path.id, path.full_type, body, "Succeeded")
            self.store.put(resource)
            self.store.record_creation(resource.id)
            self.store.counters[f"created.{resource.type}"] += 1
        else:
            resource = existing
            resource.body = strip_secrets(body)
            resource.changed = self.now
            resource.etag = f'W/"{uuid.uuid4()}"'
            self.store.dirty = True
        _keep_digests(resource, digests)
        mode: WriteMode = spec.put
        if mode == "location202" and existing is not None:
            mode = "sync"
        return self._answer_write(resource, kind, "PUT", mode, previous, request, fault)

    def _patch(
        self, path: ResourcePath, request: SimRequest, fault: FaultKind | None
    ) -> SimResponse:
        spec = spec_for(path.full_type)
        patch = self._json_body(request)
        existing = self._check_write_target(path, request)
        if existing is None:
            raise self._not_found(path)
        merged = merge_patch(existing.body, patch)
        self._validate(path, spec, merged, existing)
        digests = _take_write_only(spec, merged)
        previous = copy.deepcopy(existing.body)
        existing.body = strip_secrets(merged)
        _keep_digests(existing, digests)
        existing.changed = self.now
        existing.etag = f'W/"{uuid.uuid4()}"'
        self.store.dirty = True
        return self._answer_write(existing, "update", "PATCH", spec.patch, previous, request, fault)

    def _answer_write(
        self,
        resource: Resource,
        kind: OperationKind,
        method: str,
        mode: WriteMode,
        previous: dict[str, Any] | None,
        request: SimRequest,
        fault: FaultKind | None,
    ) -> SimResponse:
        behaviour = registry.for_type(resource.type)
        created = kind == "create"
        if mode == "sync":
            resource.state = "Succeeded"
            behaviour.applied(self, resource, previous)
            behaviour.completed(self, resource, None)
            status = self.spec(resource).sync_create_status if created else 200
            return SimResponse(status, self.view(resource))
        seconds = operation_seconds(resource.type, kind, resource.body, previous)
        planned = self._fault_error(fault)
        if fault == EXTENSION_REBOOT:
            planned = _reboot_error(resource)
        op = self.start_operation(resource, kind, method, seconds, planned)
        behaviour.applied(self, resource, previous)
        headers = {"x-sim-operation-id": op.id, **self._retry_after(op)}
        if mode in {"async201", "async200"}:
            headers["Azure-AsyncOperation"] = self._status_url(request, op)
            status = 201 if created and mode == "async201" else 200
            return SimResponse(status, self.view(resource), headers)
        if mode == "location201":
            headers["Location"] = self._result_url(request, op)
            return SimResponse(201 if created else 200, self.view(resource), headers)
        headers["Location"] = self._result_url(request, op)
        if mode == "async202":
            headers["Azure-AsyncOperation"] = self._status_url(request, op)
        return SimResponse(202, None, headers)

    def _delete(
        self, path: ResourcePath, request: SimRequest, fault: FaultKind | None
    ) -> SimResponse:
        spec = spec_for(path.full_type)
        self._require_scope(path, writing=True)
        resource = self.store.get(path.id)
        if resource is None:
            return SimResponse(204)
        existing = self._check_write_target(path, request)
        assert existing is not None
        self._check_not_in_use(resource, spec)
        behaviour = registry.for_type(resource.type)
        behaviour.deleting(self, resource)
        if spec.delete == "sync":
            answer = self.view(resource) if spec.delete_body else None
            for removed in sorted(
                [resource, *self.store.descendants(resource.id)], key=lambda r: -len(r.id)
            ):
                registry.for_type(removed.type).removed(self, removed)
            self.store.remove(resource.id)
            return SimResponse(200, answer)
        for descendant in self.store.descendants(resource.id):
            descendant.state = "Deleting"
        op = self.start_operation(
            resource,
            "delete",
            "DELETE",
            operation_seconds(resource.type, "delete", resource.body),
            self._fault_error(fault),
        )
        headers = {
            "x-sim-operation-id": op.id,
            "Location": self._result_url(request, op),
            "Azure-AsyncOperation": self._status_url(request, op),
            **self._retry_after(op),
        }
        return SimResponse(202, None, headers)

    def _post_action(self, path: ResourcePath, request: SimRequest) -> SimResponse:
        """POST `.../{type}/{name}/{action}`: the type's action (405 when it has none)."""
        target = path.parent
        action = path.types[-1]
        if target is None or target.is_collection:
            raise ArmError(
                405, "MethodNotAllowed", "The requested method POST is not supported here."
            )
        self._require_scope(target, writing=True)
        resource = self.store.get(target.id)
        if resource is None:
            raise self._not_found(target)
        busy = self.busy_operation(resource)
        if busy is not None:
            raise self._busy_error(request, busy)
        response = registry.for_type(resource.type).action(self, resource, action, request)
        if response is None:
            raise ArmError(
                405,
                "MethodNotAllowed",
                f"The action '{action}' is not supported for resources of type {resource.type}.",
            )
        return response

    def _check_not_in_use(self, resource: Resource, spec: TypeSpec) -> None:
        doomed = key(resource.id)
        for other_key, other in self.store.resources.items():
            if (
                other_key == doomed
                or other_key.startswith(doomed + "/")
                or other.state == "Deleting"
            ):
                continue
            other_spec = spec_for(other.type)
            if not other_spec.creatable:
                continue
            for reference in self.references_of(other_spec, other.body):
                ref_key = key(reference)
                if ref_key == doomed or ref_key.startswith(doomed + "/"):
                    raise ArmError(
                        400,
                        spec.in_use_code,
                        f"Resource {resource.id} is in use by {other.id} and cannot be deleted. "
                        "Remove the reference first.",
                    )

    # ================================================================ in-process API

    def resources_json(self, type_name: str | None = None) -> list[dict[str, Any]]:
        """Every resource with its state and how often it was created (admin API)."""
        with self.store.lock:
            self.now = self.clock()
            self.advance()
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
                        "body": self.view(resource),
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


def _take_write_only(spec: TypeSpec, body: dict[str, Any]) -> dict[str, str]:
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


def _keep_digests(resource: Resource, digests: Mapping[str, str]) -> None:
    if digests:
        resource.extra.setdefault("writeOnly", {}).update(digests)
        resource.extra["writeOnlyChanged"] = True


def _reboot_error(resource: Resource) -> dict[str, Any] | None:
    """The reboot fault's error: the write's (first) script extension exits with 3010."""
    reboot = extensions.ScriptResult(extensions.REBOOT_EXIT_CODE)
    properties = resource.body.get("properties") or {}
    if extensions.is_script(properties):
        return extensions.script_failure(resource.name, properties, reboot)
    for name, script in extensions.profile_scripts(resource.body):
        return extensions.script_failure(name, script, reboot)
    return None


def _has_sub_element(body: Mapping[str, Any], relative: str) -> bool:
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


_FILTER_TYPE = re.compile(r"resourceType\s+eq\s+'([^']+)'", re.IGNORECASE)
_FILTER_TAG = re.compile(
    r"tagName\s+eq\s+'([^']+)'(?:\s+and\s+tagValue\s+eq\s+'([^']*)')?", re.IGNORECASE
)


def _parse_filter(expression: str) -> tuple[str | None, str | None, str | None]:
    """The `$filter` forms ARM's generic resource list supports: resourceType, tagName/Value."""
    resource_type = _FILTER_TYPE.search(expression)
    tag = _FILTER_TAG.search(expression)
    return (
        resource_type.group(1) if resource_type else None,
        tag.group(1) if tag else None,
        tag.group(2) if tag else None,
    )

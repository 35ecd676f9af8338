"""Parsing ARM request paths and resource ids (case-insensitively) into routes.

ARM ids look like `/subscriptions/{sub}/resourceGroups/{rg}/providers/{ns}/{type}/{name}` with
any number of `/{childType}/{childName}` pairs; a path with one more type segment than names is a
collection (a list). Keys used for lookups are the lower-cased ids.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

RESOURCE_GROUP_TYPE = "Microsoft.Resources/resourceGroups"


def key(resource_id: str) -> str:
    """The lookup key of an id: ARM ids compare case-insensitively."""
    return resource_id.rstrip("/").lower()


@dataclass(frozen=True)
class ResourcePath:
    """A resource (or, with one name fewer than types, a collection) under a scope.

    The scope is a resource group (`resource_group`), the subscription itself (no group:
    subscription-level resources such as `locations/{loc}/deletedVaults/{name}`), or, for an
    extension resource (`<resource id>/providers/Microsoft.Authorization/roleAssignments/{n}`),
    the id of the resource it extends (`extends`).
    """

    subscription: str
    resource_group: str
    namespace: str
    types: tuple[str, ...]
    names: tuple[str, ...]
    #: Id of the resource an extension resource extends ("" for ordinary resources).
    extends: str = ""

    @property
    def is_collection(self) -> bool:
        """True for `.../{type}` paths (lists), false for `.../{type}/{name}` paths."""
        return len(self.names) < len(self.types)

    @property
    def full_type(self) -> str:
        """`Microsoft.Network/virtualNetworks/subnets` style type, casing as sent."""
        return "/".join((self.namespace, *self.types))

    @property
    def name(self) -> str:
        """The last name segment (the resource's own name)."""
        return self.names[-1]

    @property
    def group_id(self) -> str:
        """The id of the resource group holding this resource (the subscription without one)."""
        if not self.resource_group:
            return f"/subscriptions/{self.subscription}"
        return f"/subscriptions/{self.subscription}/resourceGroups/{self.resource_group}"

    @property
    def scope(self) -> str:
        """The id under which `/providers/...` follows: extended resource, group or subscription."""
        return self.extends or self.group_id

    @property
    def id(self) -> str:
        """The ARM id (for a collection: the id of the collection path)."""
        parts = [self.scope, "providers", self.namespace]
        for index, type_ in enumerate(self.types):
            parts.append(type_)
            if index < len(self.names):
                parts.append(self.names[index])
        return "/".join(parts)

    @property
    def parent(self) -> ResourcePath | None:
        """The enclosing resource for a nested resource or a child collection; None at top."""
        if self.is_collection:
            if len(self.types) == 1:
                return None
            return ResourcePath(
                self.subscription,
                self.resource_group,
                self.namespace,
                self.types[:-1],
                self.names,
                self.extends,
            )
        if len(self.types) == 1:
            return None
        return ResourcePath(
            self.subscription,
            self.resource_group,
            self.namespace,
            self.types[:-1],
            self.names[:-1],
            self.extends,
        )

    def child(self, type_: str, name: str) -> ResourcePath:
        """The path of a child resource of this resource."""
        return ResourcePath(
            self.subscription,
            self.resource_group,
            self.namespace,
            (*self.types, type_),
            (*self.names, name),
            self.extends,
        )


RouteKind = Literal[
    "subscription",
    "resource",
    "collection",
    "group",
    "group_list",
    "group_resources",
    "subscription_resources",
    "subscription_type_list",
    "operation_status",
    "operation_result",
    "group_operation_result",
    "usages",
]


@dataclass(frozen=True)
class Route:
    """What a request path addresses."""

    kind: RouteKind
    subscription: str
    resource_group: str = ""
    path: ResourcePath | None = None
    namespace: str = ""
    type_name: str = ""
    location: str = ""
    operation_id: str = ""


def _segments(path: str) -> list[str]:
    return [segment for segment in path.split("/") if segment]


def parse_resource_id(resource_id: str) -> ResourcePath | None:
    """The resource path of a full ARM resource id, or None when it is not one."""
    route = parse_route(resource_id)
    if route is None or route.kind != "resource" or route.path is None:
        return None
    return route.path


#: Operation-polling segments under `/providers/{ns}/locations/{loc}/`: status documents
#: (`Azure-AsyncOperation`) and result URLs (`Location`), by the names the providers use
#: (Storage answers `.../locations/{loc}/asyncoperations/{id}`).
STATUS_SEGMENTS = frozenset({"operations", "azureasyncoperation"})
RESULT_SEGMENTS = frozenset({"operationresults", "asyncoperations"})


def parse_route(path: str) -> Route | None:
    """The route of a request path, or None when ARM would not recognise it."""
    seg = _segments(path)
    low = [s.lower() for s in seg]
    if len(seg) < 2 or low[0] != "subscriptions":
        return None
    sub = seg[1]
    rest, rest_low = seg[2:], low[2:]
    if not rest:
        return Route("subscription", sub)
    if rest_low == ["resourcegroups"]:
        return Route("group_list", sub)
    if rest_low == ["resources"]:
        return Route("subscription_resources", sub)
    if len(rest) == 2 and rest_low[0] == "operationresults":
        return Route("group_operation_result", sub, operation_id=rest[1])
    if rest_low[0] == "providers":
        return _parse_subscription_provider(sub, rest, rest_low)
    if rest_low[0] != "resourcegroups" or len(rest) < 2:
        return None
    group = rest[1]
    tail, tail_low = rest[2:], rest_low[2:]
    if not tail:
        return Route("group", sub, group)
    if tail_low == ["resources"]:
        return Route("group_resources", sub, group)
    if tail_low[0] != "providers" or len(tail) < 3:
        return None
    resource_path = _provider_path(sub, group, tail[1:])
    if resource_path is None:
        return None
    return Route(
        "collection" if resource_path.is_collection else "resource",
        sub,
        group,
        path=resource_path,
    )


def _provider_path(
    sub: str, group: str, after_providers: list[str], extends: str = ""
) -> ResourcePath | None:
    """`{ns}/{type}/{name}/...` after a `providers` segment, extension resources included.

    A `providers` segment where a type would be starts an extension resource of the resource
    named so far (`.../vaults/kv/providers/Microsoft.Authorization/roleAssignments/{n}`).
    """
    if len(after_providers) < 2:
        return None
    namespace = after_providers[0]
    pairs = after_providers[1:]
    for index in range(2, len(pairs), 2):
        if pairs[index].lower() == "providers":
            base = ResourcePath(
                sub, group, namespace, tuple(pairs[:index:2]), tuple(pairs[1:index:2]), extends
            )
            return _provider_path(sub, group, pairs[index + 1 :], base.id)
    return ResourcePath(sub, group, namespace, tuple(pairs[0::2]), tuple(pairs[1::2]), extends)


def _parse_subscription_provider(sub: str, rest: list[str], rest_low: list[str]) -> Route | None:
    if len(rest) < 3:
        return None
    namespace = rest[1]
    if rest_low[2] == "locations" and len(rest) == 6:
        if rest_low[4] in STATUS_SEGMENTS:
            kind: RouteKind = "operation_status"
        elif rest_low[4] in RESULT_SEGMENTS:
            kind = "operation_result"
        else:
            kind = "resource"
        if kind != "resource":
            # `type_name` keeps the segment: it names the poll's action (`locations/<it>/read`).
            return Route(
                kind,
                sub,
                namespace=namespace,
                type_name=rest[4],
                location=rest[3],
                operation_id=rest[5],
            )
    if rest_low[2] == "locations" and len(rest) == 5 and rest_low[4] == "usages":
        return Route("usages", sub, namespace=namespace, location=rest[3])
    if len(rest) == 3:
        return Route("subscription_type_list", sub, namespace=namespace, type_name=rest[2])
    resource_path = _provider_path(sub, "", rest[1:])
    if resource_path is None:
        return None
    return Route(
        "collection" if resource_path.is_collection else "resource",
        sub,
        path=resource_path,
    )

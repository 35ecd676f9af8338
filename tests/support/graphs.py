"""Questions tests ask of a resource graph that the app itself never asks.

`ancestors` (everything a resource depends on, directly or not) and `owner_of` (the resource
that is an id or holds it as a sub-resource) check the topology's references; they use only the
graph's public API (`get`, `in`, `depends_on`).
"""

from __future__ import annotations

from outsystems.topology import Resource, ResourceGraph


def ancestors(graph: ResourceGraph, resource_id: str) -> tuple[Resource, ...]:
    """Everything the resource depends on, directly or not, in the graph's order."""
    seen: set[str] = set()
    pending = list(graph.get(resource_id).depends_on)
    while pending:
        current = graph.get(pending.pop())
        if current.id.lower() not in seen:
            seen.add(current.id.lower())
            pending.extend(current.depends_on)
    return tuple(r for r in graph if r.id.lower() in seen)


def owner_of(graph: ResourceGraph, resource_id: str) -> Resource | None:
    """The graph resource that is `resource_id` or holds it as a sub-resource (a gateway's
    backend pool id is owned by the gateway, an inline subnet's by its VNet); None if none."""
    candidate = resource_id.rstrip("/")
    while candidate:
        if candidate in graph:
            return graph.get(candidate)
        candidate = candidate.rpartition("/")[0]
    return None

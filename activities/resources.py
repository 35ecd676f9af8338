"""Activities that read and change ARM resources of a platform's graph.

Thin and idempotent: each recomputes the (pure, cached) graph from the normalized spec it is
given, so orchestration history holds resource ids and operation URLs, never bodies or secrets.
Starting an operation returns at once; the orchestration polls with `check_operations` after a
durable timer. Transient ARM failures raise (`TransientArmError`) so that Durable's retry
applies; permanent ARM errors come back as a failed operation carrying ARM's code and message.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import azure.durable_functions as df

if TYPE_CHECKING:
    from outsystems.topology import Resource

# Domain and Azure modules are imported inside the activities: the worker imports this module at
# every cold start, and most invocations need only some of them.

bp = df.Blueprint()
log = logging.getLogger(__name__)


@bp.activity_trigger(input_name="request")
def plan_environment(request: dict[str, Any]) -> list[dict[str, Any]]:
    """The plan of one environment (or `shared`): each resource's action against live state."""
    from arm.live import read_live
    from outsystems.deployment import graph_of
    from outsystems.plan import plan_resource

    spec, graph = graph_of(request["spec"])
    resources = graph.for_environment(request["environment"])
    live = read_live(spec.subscription_id, resources)
    return [plan_resource(r, body).to_json() for r, body in zip(resources, live, strict=True)]


def _desired_body(resource: Resource, subscription_id: str) -> dict[str, Any]:
    from arm.live import read_live
    from outsystems.policy import policy_from_tags
    from outsystems.scaling import clamp_for_redeploy
    from outsystems.topology import SCALE_SET

    body = dict(resource.body)
    if resource.type != SCALE_SET:
        return body
    # A redeploy keeps the scaler's work: the live capacity, clamped into the new bounds.
    (live,) = read_live(subscription_id, [resource])
    policy = policy_from_tags(body.get("tags") or {})
    sku = dict(body["sku"])
    if policy is not None:
        live_capacity = (live or {}).get("sku", {}).get("capacity")
        sku["capacity"] = clamp_for_redeploy(live_capacity, policy, int(sku["capacity"]))
    body["sku"] = sku
    return body


@bp.activity_trigger(input_name="request")
def begin_apply_resource(request: dict[str, Any]) -> dict[str, Any]:
    """PUT one resource's full desired body (secrets filled in here) and return its operation."""
    from arm.client import sender
    from arm.operations import begin_put
    from arm.secrets import render_body
    from outsystems.deployment import graph_of

    spec, graph = graph_of(request["spec"])
    resource = graph.get(request["resourceId"])
    body = render_body(
        _desired_body(resource, spec.subscription_id),
        solution_id=spec.solution_id,
        environment=resource.environment,
        resource_id=resource.id,
    )
    operation = begin_put(sender(spec.subscription_id), resource.id, resource.api_version, body)
    log.info("PUT %s: %s", resource.id, operation.status)
    return redacted_operation(operation.to_dict(), spec.solution_id)


def redacted_operation(operation: dict[str, Any], solution_id: str | None) -> dict[str, Any]:
    """The operation with any secret masked in ARM's error message (it may quote a script)."""
    from arm.secrets import redact

    error = operation.get("error")
    if error and error.get("message"):
        error = {**error, "message": redact(error["message"], solution_id=solution_id)}
        return {**operation, "error": error}
    return operation


@bp.activity_trigger(input_name="request")
def check_operations(request: dict[str, Any]) -> list[dict[str, Any]]:
    """Poll each running operation once (in parallel) and return their new states."""
    from arm.client import connection, sender
    from arm.live import parallel
    from arm.operations import Operation, check

    client = sender(request["subscriptionId"])
    endpoint = connection().endpoint
    operations = [Operation.from_dict(o) for o in request["operations"]]
    checked = parallel(lambda o: check(client, o, endpoint), operations)
    return [redacted_operation(op.to_dict(), request.get("solutionId")) for op in checked]


def _private_ips(nic: dict[str, Any] | None) -> list[str]:
    configs = ((nic or {}).get("properties") or {}).get("ipConfigurations") or []
    addresses = [((c.get("properties") or {}).get("privateIPAddress")) for c in configs]
    return [a for a in addresses if isinstance(a, str)]


@bp.activity_trigger(input_name="request")
def read_outputs(request: dict[str, Any]) -> dict[str, Any]:
    """The platform's outputs: Service Center / LifeTime URLs and the servers' private IPs."""
    from arm.live import read_live
    from outsystems.deployment import graph_of
    from outsystems.topology import NIC, PUBLIC_IP

    spec, graph = graph_of(request["spec"])
    wanted = [r for r in graph if r.type in {PUBLIC_IP, NIC} and r.environment != "shared"]
    live = dict(zip((r.id for r in wanted), read_live(spec.subscription_id, wanted), strict=True))
    outputs: dict[str, Any] = {}
    for resource in wanted:
        entry = outputs.setdefault(resource.environment, {})
        body = live[resource.id]
        if resource.type == NIC:
            entry.setdefault("privateIps", []).extend(_private_ips(body))
            continue
        props = (body or {}).get("properties") or {}
        host = (props.get("dnsSettings") or {}).get("fqdn") or props.get("ipAddress")
        if host:
            key = "lifetimeUrl" if resource.environment == "life" else "serviceCenterUrl"
            path = "LifeTime" if resource.environment == "life" else "ServiceCenter"
            entry[key] = f"http://{host}/{path}"
    return outputs

"""Activities that read and change ARM resources of a platform's graph.

Thin and idempotent: each recomputes the (pure, cached) graph from the normalized spec it is
given, so orchestration history holds resource ids and operation URLs, never bodies or secrets.
Starting an operation returns at once; the orchestration polls with `check_operations` (or,
from walk version 8, `check_operations_then_start`) after a durable timer. Transient ARM
failures raise (`TransientArmError`) so that Durable's retry applies; permanent ARM errors come
back as a failed operation carrying ARM's code and message.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, Final

import azure.durable_functions as df

from activities.redaction import redacting
from activities.typed import serves
from outsystems.messages import (
    BEGIN_APPLY_RESOURCE,
    BEGIN_APPLY_RESOURCES,
    CHECK_OPERATIONS,
    CHECK_THEN_START,
    PLAN_ENVIRONMENT,
    READ_OUTPUTS,
    ApplyBatchRequest,
    ApplyItem,
    ApplyRequest,
    ArmError,
    CheckRequest,
    CheckThenStartAnswer,
    CheckThenStartRequest,
    EnvironmentOutputs,
    Operation,
    OutputsRequest,
    PlannedAction,
    PlanRequest,
)
from outsystems.resource_types import (
    KEY_VAULT,
    KEY_VAULT_SECRET_TYPE,
    RESOURCE_GROUP,
    ROLE_ASSIGNMENT,
    SCALE_SET,
    SQL_SERVER,
    VM,
)

if TYPE_CHECKING:
    from arm.operations import Sender
    from outsystems.spec import PlatformSpec
    from outsystems.topology import Resource, ResourceGraph

# Function-local imports: see `docs/architecture.md`, "Cold start".

bp = df.Blueprint()
log = logging.getLogger(__name__)


@bp.activity_trigger(input_name="request")
@redacting
@serves(PLAN_ENVIRONMENT)
def plan_environment(request: PlanRequest) -> list[PlannedAction]:
    """The plan of one environment (or `shared`): each resource's action against live state.

    Only the actions travel (not the changes, which quote live bodies): the history stays small.
    """
    from outsystems.plan import plan_resource

    spec, graph = request.spec.parsed()
    resources = graph.for_environment(request.environment)
    live = _live_for_plan(spec, resources)
    return [
        PlannedAction(r.id, plan_resource(r, body).action)
        for r, body in zip(resources, live, strict=True)
    ]


def _live_for_plan(
    spec: PlatformSpec, resources: Sequence[Resource]
) -> list[dict[str, Any] | None]:
    """The live body of each resource (None: absent), read with one request when the
    platform's resource group does not exist: a resource whose id is under a group lives in it
    and goes with it ("When you delete a resource group, all of its resources are also
    deleted", Microsoft Learn, "Azure Resource Manager resource group and resource deletion"),
    so a first deployment's plan does not read each of its resources."""
    from arm.client import sender
    from arm.live import RESOURCES_API_VERSION, read_live
    from arm.operations import get_resource

    group_id = f"/subscriptions/{spec.subscription_id}/resourceGroups/{spec.resource_group}"
    inside = f"{group_id.lower()}/"
    if not any(r.id.lower().startswith(inside) for r in resources):
        return read_live(spec.subscription_id, resources)
    group = get_resource(sender(spec.subscription_id), group_id, RESOURCES_API_VERSION)
    if group is not None:
        others = [r for r in resources if r.id.lower() != group_id.lower()]
        bodies = dict(
            zip((r.id for r in others), read_live(spec.subscription_id, others), strict=True)
        )
        return [group if r.id.lower() == group_id.lower() else bodies[r.id] for r in resources]
    outside = [
        r
        for r in resources
        if not r.id.lower().startswith(inside) and r.id.lower() != group_id.lower()
    ]
    read = dict(zip((r.id for r in outside), read_live(spec.subscription_id, outside), strict=True))
    return [read.get(r.id) for r in resources]


#: Write-only fields a PUT must not send again for a resource that exists: ARM does not let an
#: admin password change through the resource (VMs), or would reset it (SQL) — the password was
#: set when the server was created and lives on in the platform's vault.
_CREATE_ONLY_FIELDS: Final = {
    VM: ("properties", "osProfile", "adminPassword"),
    SCALE_SET: (
        "properties",
        "virtualMachineProfile",
        "osProfile",
        "adminPassword",
    ),
    SQL_SERVER: ("properties", "administratorLoginPassword"),
}


def _without(body: dict[str, Any], path: tuple[str, ...]) -> dict[str, Any]:
    """A copy of `body` without the field at `path` (copies only the dicts on the way)."""
    head, *rest = path
    if head not in body:
        return body
    if not rest:
        return {key: value for key, value in body.items() if key != head}
    inner = body[head]
    if not isinstance(inner, dict):
        return body
    return {**body, head: _without(inner, tuple(rest))}


def _desired_body(
    resource: Resource, live: dict[str, Any] | None, deleted_vault: bool
) -> dict[str, Any]:
    """What to send for `resource` given its live state."""
    from outsystems.policy import policy_from_tags
    from outsystems.scaling import clamp_for_redeploy
    from outsystems.tags import keep_foreign_tags

    body = dict(resource.body)
    if live is not None and resource.type in _CREATE_ONLY_FIELDS:
        body = _without(body, _CREATE_ONLY_FIELDS[resource.type])
    if resource.type == RESOURCE_GROUP and live is not None:
        # The group may be its owner's, tagged for the platform: never drop tags we did not set.
        body["tags"] = keep_foreign_tags(body.get("tags") or {}, live.get("tags"))
    if resource.type == KEY_VAULT and live is None and deleted_vault:
        # Soft delete keeps a torn-down platform's vault (and its secrets) for the retention
        # period under its name: recover it instead of failing on the name.
        body["properties"] = {**body["properties"], "createMode": "recover"}
    if resource.type == SCALE_SET:
        # A redeploy keeps the scaler's work: the live capacity, clamped into the new bounds.
        policy = policy_from_tags(body.get("tags") or {})
        sku = dict(body["sku"])
        if policy is not None:
            live_capacity = (live or {}).get("sku", {}).get("capacity")
            sku["capacity"] = clamp_for_redeploy(live_capacity, policy, int(sku["capacity"]))
        body["sku"] = sku
    return body


def _deleted_vault(client: Sender, resource: Resource, location: str) -> bool:
    """Whether Key Vault holds a soft-deleted vault of this name in the platform's region."""
    from arm.operations import get_resource

    subscription = resource.id.split("/")[2]
    deleted = (
        f"/subscriptions/{subscription}/providers/Microsoft.KeyVault/locations/{location}"
        f"/deletedVaults/{resource.name}"
    )
    return get_resource(client, deleted, resource.api_version) is not None


def _replace_stale_assignment(
    client: Sender, resource: Resource, live: dict[str, Any], rendered: dict[str, Any]
) -> None:
    """Delete a role assignment of ours that names an earlier principal.

    ARM cannot change an assignment's principal (RoleAssignmentUpdateNotPermitted). The
    assignment's name is derived from the identity's resource id, so an identity deleted and
    created again (a partial teardown, then a redeploy) meets its predecessor's assignment: it
    grants nothing any more and is replaced. Deleting an assignment is synchronous.
    """
    from arm.operations import begin_delete

    before = str((live.get("properties") or {}).get("principalId") or "").lower()
    after = str(rendered["properties"]["principalId"]).lower()
    if before and before != after:
        log.info("role assignment %s names an earlier principal: replacing it", resource.id)
        deleted = begin_delete(client, resource.id, resource.api_version)
        if deleted.status == "Failed" and deleted.error is not None:
            raise RuntimeError(f"{deleted.error.code}: {deleted.error.message}")


#: Types whose desired body depends on their live state (`_desired_body`, the secrets kept as
#: they are, the stale role assignment): only these are read before their PUT. The body of any
#: other type is the same whether it exists or not, and the plan read it moments before.
_READ_BEFORE_PUT: Final = frozenset(
    t.lower()
    for t in (
        *_CREATE_ONLY_FIELDS,
        SCALE_SET,
        RESOURCE_GROUP,
        KEY_VAULT,
        KEY_VAULT_SECRET_TYPE,
        ROLE_ASSIGNMENT,
    )
)


#: Of those, the types whose live state only decides what an existing one keeps: not read again
#: when the plan, moments before, found the resource absent and this is its first attempt
#: (`ApplyItem.absent`). Their read could only find what an earlier run of the same activity
#: left, and a second run sends the same body (the group's tags are ours; a role assignment
#: names the same principal, which ARM takes as the same assignment; a vault (its soft-deleted
#: check stays) and a SQL server are rendered again from the same nonce and seed). The others
#: keep their read. A vault's secrets above all: a vault recovered from soft delete comes back
#: with its secrets, which the plan, made while it was deleted, found absent; they are kept as
#: they are. A VM's or scale set's body was not reviewed for a second PUT while its first runs.
_NOT_READ_WHEN_ABSENT: Final = frozenset(
    t.lower() for t in (RESOURCE_GROUP, ROLE_ASSIGNMENT, KEY_VAULT, SQL_SERVER)
)


def reads_before_put(resource_type: str, absent: bool = False) -> bool:
    """Whether starting a resource of this type reads its live state first (`absent`: the plan
    found none and this is its first attempt)."""
    kind = resource_type.lower()
    return kind in _READ_BEFORE_PUT and not (absent and kind in _NOT_READ_WHEN_ABSENT)


class _BatchReads:
    """The live bodies that a batch's resources refer to (an identity's principal, a secret's
    nonce, the subscription's tenant), each read once for the whole batch: what a resource
    refers to is done before it starts, so it does not change while the batch starts, except
    what the batch itself writes (`wrote`, for the items that come after it). Shared by the
    batch's threads; the bodies are only read.

    `absent`: the batch's items that the plan found absent (first attempt). Until the batch
    writes one, a read of it answers absent without asking ARM: a password's render looks for
    its server to carry a pre-vault password over (`arm.secrets`), and that server, started
    after its password, is in the same batch."""

    def __init__(self, client: Sender, absent: Iterable[str] = ()) -> None:
        self._client = client
        self._absent = {resource_id.lower() for resource_id in absent}
        self._lock = threading.Lock()
        #: One lock per body: a thread that needs a body another one is reading waits for it.
        self._locks: dict[tuple[str, str], threading.Lock] = {}
        self._bodies: dict[tuple[str, str], dict[str, Any] | None] = {}

    def __call__(self, resource_id: str, api_version: str) -> dict[str, Any] | None:
        from arm.operations import get_resource

        key = (resource_id.lower(), api_version)
        with self._lock:
            if key[0] in self._absent:
                return None
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:
            if key not in self._bodies:
                self._bodies[key] = get_resource(self._client, resource_id, api_version)
            return self._bodies[key]

    def wrote(self, resource: Resource, body: dict[str, Any] | None) -> None:
        """What `resource` is now that the batch has started it (None: not known), for the
        items that come after it: what was read of it is dropped (any API version), and it is
        no longer absent. A vault secret is kept as ARM answers a read of it: without its
        value, which the management plane never returns (its content type carries the nonce a
        server's password is derived from); any other is read again."""
        resource_id = resource.id.lower()
        with self._lock:
            self._absent.discard(resource_id)
            for key in [key for key in self._bodies if key[0] == resource_id]:
                del self._bodies[key]
            if body is not None and resource.type == KEY_VAULT_SECRET_TYPE:
                properties = body.get("properties") or {}
                self._bodies[(resource_id, resource.api_version)] = {
                    **{k: v for k, v in body.items() if k != "properties"},
                    "properties": {k: v for k, v in properties.items() if k != "value"},
                }


def _begin(
    client: Sender,
    spec: PlatformSpec,
    graph: ResourceGraph,
    request: ApplyRequest,
    read: Callable[[str, str], dict[str, Any] | None] | None = None,
    wrote: Callable[[Resource, dict[str, Any] | None], None] | None = None,
) -> Operation:
    """PUT one resource's desired body (secrets filled in here); its operation as ARM started
    it. Raises what the ARM pipeline could not absorb (Durable retries the activity). `read`
    reads what the body refers to (default: straight from ARM); `wrote` is told the body the
    resource has now, as far as this start knows: the one ARM accepted, or a secret's as read
    and kept (None: not known, e.g. ARM refused it)."""
    from arm.operations import begin_put, get_resource
    from arm.secrets import RenderContext, render_body
    from outsystems.resource_types import VM_EXTENSION

    resource = graph.get(request.resource_id)
    live = (
        get_resource(client, resource.id, resource.api_version)
        if reads_before_put(resource.type, request.absent)
        else None
    )
    if resource.type == KEY_VAULT_SECRET_TYPE and live is not None:
        log.info("secret %s exists: kept as it is", resource.name)
        if wrote is not None:
            wrote(resource, live)
        return Operation(resource.id, "PUT", "Succeeded", resource.api_version)
    deleted_vault = (
        resource.type == KEY_VAULT
        and live is None
        and _deleted_vault(client, resource, spec.location)
    )
    body = _desired_body(resource, live, deleted_vault)
    if request.rerun and resource.type == VM_EXTENSION:
        body["properties"] = {**body["properties"], "forceUpdateTag": str(request.rerun)}
    context = RenderContext(
        spec=spec,
        graph=graph,
        resource=resource,
        nonce=request.nonce,
        read=read or (lambda resource_id, version: get_resource(client, resource_id, version)),
    )
    rendered = render_body(body, context)
    if resource.type == ROLE_ASSIGNMENT and live is not None:
        _replace_stale_assignment(client, resource, live, rendered)
    try:
        operation = begin_put(client, resource.id, resource.api_version, rendered)
    except BaseException:
        if wrote is not None:
            wrote(resource, None)
        raise
    if wrote is not None:
        wrote(resource, None if operation.status == "Failed" else rendered)
    log.info("PUT %s: %s", resource.id, operation.status)
    return redacted_operation(operation, spec.solution_id)


@bp.activity_trigger(input_name="request")
@redacting
@serves(BEGIN_APPLY_RESOURCE)
def begin_apply_resource(request: ApplyRequest) -> Operation:
    """PUT one resource's desired body (secrets filled in here) and return its operation.

    A secret of the platform's vault that exists is never written again. A setup extension
    run again because its last run asked for it (the server rebooted in between) gets a new
    `forceUpdateTag`, which makes the Custom Script Extension run the command again. Only the
    types whose body depends on their live state read it first (`reads_before_put`).
    """
    from arm.client import sender
    from arm.secrets import redacted_errors

    spec, graph = request.spec.parsed()
    with redacted_errors(spec.solution_id):
        return _begin(sender(spec.subscription_id), spec, graph, request)


@bp.activity_trigger(input_name="request")
@redacting
@serves(BEGIN_APPLY_RESOURCES)
def begin_apply_resources(request: ApplyBatchRequest) -> list[Operation]:
    """`begin_apply_resource` for each resource of the batch, in parallel; their operations in
    the batch's order.

    An item with `after` (walk version 6) is sent once ARM answered each of those items done
    with its PUT, as soon as the last of them did, and is left out of the answer otherwise (its
    walk starts it later): a chain of resources ARM creates synchronously (a group, a vault's
    secrets, then what refers to them) takes one activity. Nothing waits for an operation that
    runs on: an item after one is simply not sent. The items that generate a key pair (the
    gateways' certificates) are sent first, so that the CPU their keys take overlaps the other
    items' round trips to ARM instead of starting after them.

    Idempotent as each PUT is. A resource whose requests ARM kept throttling (429, past the
    pipeline's own retries: the subscription's request budget is spent) is answered as not
    started, a failed operation with ARM's throttling code, which the walk waits out and sends
    again (`THROTTLED_CODES`), while the rest of the batch goes on: sending the whole batch
    again would spend the budget on what already started. When one of them raises otherwise
    (what the ARM pipeline's own retries could not absorb), the others are still sent and the
    activity raises the first error, so that Durable runs the whole batch again: a PUT sent
    again for a resource whose operation runs answers as ARM does (the walk waits for a busy
    resource, `BUSY_CODES`).
    """
    from arm.client import connection, sender
    from arm.secrets import redacted_errors

    spec, graph = request.spec.parsed()
    with redacted_errors(spec.solution_id):
        client, endpoint = sender(spec.subscription_id), connection().endpoint
        _checked, started = _check_then_start(client, spec, graph, request, (), endpoint)
        return started


@bp.activity_trigger(input_name="request")
@redacting
@serves(CHECK_THEN_START)
def check_operations_then_start(request: CheckThenStartRequest) -> CheckThenStartAnswer:
    """Poll running operations once, then start what waited only for some of them (walk
    version 8): an item `after` a polled operation's resource is sent as soon as that poll
    answered it done (and after the items it comes after, as in `begin_apply_resources`), and
    is left out of the answer otherwise. The end of a long operation then starts what waits for
    it in the activity that saw it end, not in one more activity asked one episode later.

    Idempotent as a check and each PUT are. What a poll or a PUT raised (past the ARM
    pipeline's retries) is raised once everything else was sent, so that Durable runs the whole
    activity again; a PUT ARM kept throttling is answered as not started, as in
    `begin_apply_resources`.
    """
    from arm.client import connection, sender
    from arm.secrets import redacted_errors

    batch = request.then
    spec, graph = batch.spec.parsed()
    check = request.check
    with redacted_errors(spec.solution_id):
        client = sender(spec.subscription_id)
        endpoint = connection().endpoint
        checked, started = _check_then_start(client, spec, graph, batch, check.operations, endpoint)
        solution_id = check.solution_id
        return CheckThenStartAnswer(
            tuple(redacted_operation(operation, solution_id) for operation in checked),
            tuple(started),
        )


def _check_then_start(
    client: Sender,
    spec: PlatformSpec,
    graph: ResourceGraph,
    request: ApplyBatchRequest,
    polls: Sequence[Operation],
    endpoint: str,
) -> tuple[list[Operation], list[Operation]]:
    """Poll `polls` and start `request`'s items on one thread pool, an item once what it comes
    `after` (a polled operation's resource or an earlier item) was answered done; the polled
    operations' states and the started items' operations, each in order. Raises the first error
    once everything that could be sent was. `endpoint`: ARM's, the only origin polled.

    An item left waiting for an operation this batch started, which was still running when ARM
    answered its PUT, gets one more chance: once the rest is sent, those operations are polled
    once more (the batch took a while; a short one may have ended), and what they no longer
    hold back is started. Their latest states are answered as their operations."""
    from arm.live import parallel_after
    from arm.operations import TransientArmError, check
    from arm.secrets import generates_key_pair
    from outsystems.arm_errors import throttled

    reads = _BatchReads(client, (item.resource_id for item in request.items if item.absent))

    def begin(item: ApplyItem) -> Operation | BaseException:
        try:
            # What comes after it in the batch reads it as written now.
            return _begin(client, spec, graph, request.single(item), reads, reads.wrote)
        except TransientArmError as error:
            if throttled(str(error)):
                # Its message quotes ARM: masked like every operation the batch answers.
                not_started = _not_started(graph.get(item.resource_id), error)
                return redacted_operation(not_started, spec.solution_id)
            return error  # raised below, once every PUT was sent
        except Exception as error:  # raised below, once every PUT was sent
            return error

    def poll(operation: Operation) -> Operation | BaseException:
        try:
            return check(client, operation, endpoint)
        except Exception as error:  # raised below, once every PUT was sent
            return error

    def run(w: Operation | ApplyItem) -> Operation | BaseException:
        return poll(w) if isinstance(w, Operation) else begin(w)

    def generates_key(w: Operation | ApplyItem) -> bool:
        return (
            isinstance(w, ApplyItem)
            and w.resource_id in graph
            and generates_key_pair(graph.get(w.resource_id))
        )

    def one_round(
        polled: Sequence[Operation], items: Sequence[ApplyItem]
    ) -> list[Operation | BaseException | None]:
        work: list[Operation | ApplyItem] = [*polled, *items]
        index = {w.resource_id.lower(): i for i, w in enumerate(work)}

        def after(w: Operation | ApplyItem) -> list[int]:
            if isinstance(w, Operation):
                return []
            return [index.get(i.lower(), len(work)) for i in w.after]

        return parallel_after(
            run,
            work,
            after,
            lambda outcome: isinstance(outcome, Operation) and outcome.status == "Succeeded",
            # The polls first (what waits for them goes sooner), then the gateways'
            # certificates: their keys' CPU overlaps the other PUTs.
            first=lambda w: isinstance(w, Operation) or generates_key(w),
        )

    items = request.items
    outcomes = one_round(polls, items)
    for outcome in outcomes:
        if isinstance(outcome, BaseException):
            raise outcome
    checked = [o for o in outcomes[: len(polls)] if isinstance(o, Operation)]
    latest: dict[str, Operation] = {
        item.resource_id.lower(): outcome
        for item, outcome in zip(items, outcomes[len(polls) :], strict=True)
        if isinstance(outcome, Operation)
    }
    done = {key for key, o in latest.items() if o.status == "Succeeded"}
    done |= {o.resource_id.lower() for o in checked if o.status == "Succeeded"}
    waiting = [item for item in items if item.resource_id.lower() not in latest]
    again = [
        latest[key]
        for key in dict.fromkeys(i.lower() for item in waiting for i in item.after)
        if key in latest and latest[key].status == "InProgress"
    ]
    if again:
        rest = [
            item._replace(after=tuple(i for i in item.after if i.lower() not in done))
            for item in waiting
        ]
        more = one_round(again, rest)
        for outcome in more[len(again) :]:
            if isinstance(outcome, BaseException):
                raise outcome
        # A poll that failed here leaves its operation as ARM answered its PUT.
        for outcome in more[: len(again)]:
            if isinstance(outcome, Operation):
                # ARM's message may quote a script: masked as every answered operation.
                latest[outcome.resource_id.lower()] = redacted_operation(outcome, spec.solution_id)
        for outcome in more[len(again) :]:
            if isinstance(outcome, Operation):
                latest[outcome.resource_id.lower()] = outcome
    started = [latest[key] for item in items if (key := item.resource_id.lower()) in latest]
    return checked, started


def _not_started(resource: Resource, error: Exception) -> Operation:
    """A resource of a batch whose PUT ARM throttled: not started, with ARM's throttling code
    (its message names the resource and quotes ARM's words)."""
    return Operation(
        resource.id,
        "PUT",
        "Failed",
        resource.api_version,
        error=ArmError("SubscriptionRequestsThrottled", str(error)[:500], resource.id),
    )


def redacted_operation(operation: Operation, solution_id: str | None) -> Operation:
    """The operation with any secret masked in ARM's error message (it may quote a script)."""
    from arm.secrets import redact

    error = operation.error
    if error is not None and error.message:
        masked = error._replace(message=redact(error.message, solution_id=solution_id))
        return operation._replace(error=masked)
    return operation


@bp.activity_trigger(input_name="request")
@redacting
@serves(CHECK_OPERATIONS)
def check_operations(request: CheckRequest) -> list[Operation]:
    """Poll each running operation once (in parallel) and return their new states."""
    from arm.client import connection, sender
    from arm.live import parallel
    from arm.operations import check

    client = sender(request.subscription_id)
    endpoint = connection().endpoint
    checked = parallel(lambda o: check(client, o, endpoint), list(request.operations))
    return [redacted_operation(op, request.solution_id) for op in checked]


def _private_ips(nic: dict[str, Any] | None) -> list[str]:
    configs = ((nic or {}).get("properties") or {}).get("ipConfigurations") or []
    addresses = [((c.get("properties") or {}).get("privateIPAddress")) for c in configs]
    return [a for a in addresses if isinstance(a, str)]


@bp.activity_trigger(input_name="request")
@redacting
@serves(READ_OUTPUTS)
def read_outputs(request: OutputsRequest) -> dict[str, EnvironmentOutputs]:
    """The platform's outputs: Service Center / LifeTime URLs and the servers' private IPs."""
    from arm.live import read_live
    from outsystems.resource_types import NIC, PUBLIC_IP

    spec, graph = request.spec.parsed()
    wanted = [r for r in graph if r.type in {PUBLIC_IP, NIC} and r.environment != "shared"]
    live = dict(zip((r.id for r in wanted), read_live(spec.subscription_id, wanted), strict=True))
    outputs: dict[str, EnvironmentOutputs] = {}
    for resource in wanted:
        entry = outputs.setdefault(resource.environment, EnvironmentOutputs())
        body = live[resource.id]
        if resource.type == NIC:
            ips = (*entry.private_ips, *_private_ips(body))
            outputs[resource.environment] = entry._replace(private_ips=ips)
            continue
        props = (body or {}).get("properties") or {}
        host = (props.get("dnsSettings") or {}).get("fqdn") or props.get("ipAddress")
        if host:
            certificate = (
                "yours (tls.certificateSecretId)"
                if spec.tls is not None
                else "self-signed: browsers warn, and LifeTime registers this environment only "
                "after a CA-signed certificate replaces it (docs/api.md, tls)"
            )
            # Every gateway serves HTTPS and redirects HTTP to it.
            if resource.environment == "life":
                entry = entry._replace(lifetime_url=f"https://{host}/LifeTime")
            else:
                entry = entry._replace(service_center_url=f"https://{host}/ServiceCenter")
            outputs[resource.environment] = entry._replace(certificate=certificate)
    return outputs

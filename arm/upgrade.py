"""The ARM calls of a platform upgrade (issue 17): database copies, scale-set instance actions,
Run Command, the gateway's switch between front-end sets and its backend health.

Each call starts at most one operation and returns at once with an `Operation`; the
orchestration polls it (`check_operations`). A POST action ARM answers with a result (Run
Command, backend health) is followed by its `Location` (`final-state-via: location` in their
REST specs), which `read_action_result` reads again once the operation is done.

Every function is idempotent: it reads first and does nothing that is done already (an existing
copy is kept, an instance on the latest model is not upgraded again, a gateway already routing
to the wanted servers is not written). A request ARM refuses because the target is busy (409:
our own earlier call of the same step still running) raises `TransientArmError`, so the
activity is retried when that call has ended.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final, Literal

from azure.core.rest import HttpRequest, HttpResponse

from arm.live import list_pages
from arm.operations import (
    DATABASE_UNDER_WAY,
    Sender,
    TransientArmError,
    error_of,
    get_resource,
    retry_after,
)
from outsystems.messages import ActionOutcome, ArmError, Operation, ScaleSetInstance
from outsystems.resource_types import APP_GATEWAY, SCALE_SET, SQL_DATABASE, api_version
from outsystems.topology import SETUP_SCRIPT_PATH

COMPUTE_API: Final = api_version(SCALE_SET)
NETWORK_API: Final = api_version(APP_GATEWAY)
#: The scale-set NIC reads exist at this Network version only: azure-mgmt-network 33.1.0 (which
#: calls Network 2026-03-01 elsewhere) sends it for `NetworkInterfaces_ListVirtualMachineScale
#: SetNetworkInterfaces` and the other scale-set NIC operations, as the REST spec defines them.
VMSS_NIC_API: Final = "2018-10-01"
SQL_API: Final = api_version(SQL_DATABASE)

#: The gateway's second backend pool while an upgrade routes to one set of front-ends.
UPGRADE_POOL: Final = "upgrade-servers"
#: `RunCommandInput.commandId` of a PowerShell script on Windows (runCommand.json).
RUN_POWERSHELL: Final = "RunPowerShellScript"

_BUSY: Final = "AnotherOperationInProgress"
_TRANSIENT = frozenset({408, 429, 500, 502, 503, 504})
FinalState = Literal["location", "azure-async-operation"]


def _raise_if_retryable(response: HttpResponse, what: str, *, busy_too: bool) -> None:
    status = response.status_code
    if status in _TRANSIENT or (busy_too and status == 409):
        error = error_of(response, what)
        raise TransientArmError(f"{what}: ARM answered {status} {error.code}: {error.message}")


def begin_post(
    sender: Sender,
    resource_id: str,
    action: str,
    api: str,
    body: Mapping[str, Any] | None,
    *,
    final_state: FinalState,
    busy_answers: bool = False,
) -> Operation:
    """POST `{resource_id}/{action}` (a long-running action); return its operation at once.

    The operation is polled where its final state is: the `Location` URL for actions whose
    result is read afterwards (`final_state="location"`), else `Azure-AsyncOperation` (which
    carries the error of a failed operation), falling back to the other header. ARM's 409 (the
    resource is busy) raises for a retry, unless `busy_answers`: then it is answered as a failed
    operation with ARM's code, for the orchestration to wait as long as the action may take.
    """
    request = HttpRequest(
        "POST",
        f"{resource_id}/{action}?api-version={api}",
        json=dict(body) if body is not None else None,
    )
    response = sender.send_request(request)
    _raise_if_retryable(response, resource_id, busy_too=not busy_answers)
    if response.status_code >= 400:
        return Operation(resource_id, "POST", "Failed", api, error=error_of(response, resource_id))
    base = Operation(resource_id, "POST", "InProgress", api, retry_after=retry_after(response))
    location = response.headers.get("Location")
    async_url = response.headers.get("Azure-AsyncOperation")
    if response.status_code == 202 or location or async_url:
        if final_state == "location" and location:
            return base._replace(poll_mode="location", poll_url=location)
        if async_url:
            return base._replace(poll_mode="async-operation", poll_url=async_url)
        if location:
            return base._replace(poll_mode="location", poll_url=location)
    # 200 with no poll URL: done at once (a result in this body is not kept: none of the
    # actions below is answered so by ARM's specs without a Location).
    return Operation(resource_id, "POST", "Succeeded", api)


# --- Database copies ---------------------------------------------------------------------


def begin_database_copy(sender: Sender, source_database_id: str, copy_name: str) -> Operation:
    """PUT a copy of a database on its own server (`createMode: Copy`), unless it exists.

    Azure/azure-rest-api-specs, specification/sql/resource-manager/Microsoft.Sql/stable/
    2021-11-01/Databases.json: `createMode` `Copy` with `sourceDatabaseId`; the copy takes the
    source's service objective unless the request names one, so none is named here.
    """
    from arm.operations import begin_put

    server_id = source_database_id.rsplit("/databases/", 1)[0]
    copy_id = f"{server_id}/databases/{copy_name}"
    existing = get_resource(sender, copy_id, SQL_API)
    if existing is not None:
        # A database has no provisioningState: its `status` (Databases.json `DatabaseStatus`:
        # Online, Copying, Creating, ...) says whether the copy is done.
        status = str((existing.get("properties") or {}).get("status") or "Online")
        if status.lower() == "online":
            return Operation(copy_id, "PUT", "Succeeded", SQL_API, kept="the copy exists")
        if status.lower() in DATABASE_UNDER_WAY:
            # An earlier call's copy (the activity ran twice), whose operation URL is lost: it is
            # followed by the database's own `status` until it is Online (`check`, by resource).
            return Operation(copy_id, "PUT", "InProgress", SQL_API, poll_mode="resource")
        error = ArmError("CopyNotOnline", f"the copy exists but is {status}", copy_id)
        return Operation(copy_id, "PUT", "Failed", SQL_API, error=error)
    source = get_resource(sender, source_database_id, SQL_API)
    if source is None:
        error = ArmError(
            "SourceDatabaseNotFound", "The source database does not exist.", source_database_id
        )
        return Operation(copy_id, "PUT", "Failed", SQL_API, error=error)
    body = {
        "location": source.get("location"),
        "properties": {"createMode": "Copy", "sourceDatabaseId": source_database_id},
    }
    return begin_put(sender, copy_id, SQL_API, body)


# --- Scale-set instances -----------------------------------------------------------------


def _instance_id(instance: Mapping[str, Any]) -> str:
    """A listed instance's `instanceId` (its id's last segment): ARM's `name` of an instance is
    `{scale set}_{instanceId}`, not the id the instance actions take."""
    return str(instance.get("instanceId") or str(instance.get("id") or "").rsplit("/", 1)[-1])


def _instance_ids(instances: Iterable[Mapping[str, Any]]) -> dict[str, Mapping[str, Any]]:
    return {_instance_id(i): i for i in instances}


def list_instances(sender: Sender, scale_set_id: str) -> list[dict[str, Any]]:
    """The scale set's instances with their instance views (`$expand=instanceView`)."""
    return list_pages(
        sender, f"{scale_set_id}/virtualMachines?$expand=instanceView&api-version={COMPUTE_API}"
    )


def _private_ips(sender: Sender, scale_set_id: str) -> dict[str, str]:
    """Instance id (lower case) → its primary private address, from the scale set's NICs
    (`NetworkInterfaces_ListVirtualMachineScaleSetNetworkInterfaces`)."""
    nics = list_pages(sender, f"{scale_set_id}/networkInterfaces?api-version={VMSS_NIC_API}")
    found: dict[str, str] = {}
    # The primary NIC's primary IP configuration first.
    for nic in sorted(nics, key=lambda n: not (n.get("properties") or {}).get("primary")):
        properties = nic.get("properties") or {}
        machine = str((properties.get("virtualMachine") or {}).get("id") or "").lower()
        configurations = properties.get("ipConfigurations") or []
        for configuration in sorted(
            configurations, key=lambda c: not (c.get("properties") or {}).get("primary")
        ):
            address = (configuration.get("properties") or {}).get("privateIPAddress")
            if machine and isinstance(address, str) and address:
                found.setdefault(machine, address)
    return found


def _setup_extension_name(scale_set: Mapping[str, Any] | None) -> str | None:
    """The name of the scale set profile's extension that runs the setup script."""
    for name, _command in _script_extensions(scale_set):
        return name
    return None


def _script_extensions(scale_set: Mapping[str, Any] | None) -> Iterable[tuple[str, str]]:
    profile = ((scale_set or {}).get("properties") or {}).get("virtualMachineProfile") or {}
    extensions = (profile.get("extensionProfile") or {}).get("extensions") or []
    for extension in extensions:
        settings = (extension.get("properties") or {}).get("settings") or {}
        command = settings.get("commandToExecute")
        if isinstance(command, str) and SETUP_SCRIPT_PATH.lower() in command.lower():
            yield str(extension.get("name") or ""), command


def _last_line(text: Any) -> str | None:
    if not isinstance(text, str):
        return None
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else None


_STATUS_CODE = re.compile(r"^ProvisioningState/(?P<state>[A-Za-z]+)", re.IGNORECASE)


def _extension_outcome(view: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """(status, last line) of one extension's instance view."""
    status: str | None = None
    message: str | None = None
    for item in view.get("statuses") or ():
        match = _STATUS_CODE.match(str(item.get("code") or ""))
        if match:
            status = match.group("state").capitalize()
            message = _last_line(item.get("message"))
    outputs: dict[str, str | None] = {"stdout": None, "stderr": None}
    for item in view.get("substatuses") or ():
        code = str(item.get("code") or "").lower()
        for stream in outputs:
            if f"/{stream}/" in code:
                outputs[stream] = _last_line(item.get("message"))
    return status, outputs["stdout"] or outputs["stderr"] or message


def read_instances(sender: Sender, scale_set_id: str) -> list[ScaleSetInstance]:
    """Each instance: id, computer name, private address, model, state and the setup
    extension's outcome on it (its status and the script's last line)."""
    scale_set = get_resource(sender, scale_set_id, COMPUTE_API)
    if scale_set is None:
        return []
    setup = (_setup_extension_name(scale_set) or "").lower()
    addresses = _private_ips(sender, scale_set_id)
    found = []
    for instance in list_instances(sender, scale_set_id):
        properties = instance.get("properties") or {}
        view = properties.get("instanceView") or {}
        status: str | None = None
        message: str | None = None
        for extension in view.get("extensions") or ():
            name = str(extension.get("name") or "").lower()
            if setup and name == setup:
                status, message = _extension_outcome(extension)
        computer = view.get("computerName") or (properties.get("osProfile") or {}).get(
            "computerName"
        )
        found.append(
            ScaleSetInstance(
                instance_id=_instance_id(instance),
                name=str(computer or instance.get("name") or ""),
                private_ip=addresses.get(str(instance.get("id") or "").lower()),
                latest_model_applied=bool(properties.get("latestModelApplied")),
                provisioning_state=str(properties.get("provisioningState") or ""),
                setup_status=status,
                setup_message=message,
            )
        )
    return sorted(found, key=lambda i: (len(i.instance_id), i.instance_id))


def _upgraded(instance: Mapping[str, Any]) -> bool:
    """On the latest model, and its last operation succeeded: nothing to do on it again. An
    instance on the latest model whose upgrade failed (its setup script exited 1 or 3010) is
    upgraded again: the script says `already at` where it had finished, and collects the
    outcome of a run that rebooted."""
    properties = instance.get("properties") or {}
    state = str(properties.get("provisioningState") or "")
    return bool(properties.get("latestModelApplied")) and state.lower() == "succeeded"


_SETTLED: Final = frozenset({"succeeded", "failed", "canceled"})


def _busy(
    scale_set_id: str, live: Mapping[str, Mapping[str, Any]], ids: Sequence[str], method: str
) -> Operation | None:
    """An operation following an instance that an action is changing now (`Updating`,
    `Deleting`): the call ran before (a retried activity, a host that stopped before recording
    its answer) and its action still runs; ARM would refuse a second one (409). The action ends
    for all its instances at once, so one instance's state says when. `method` DELETE: the
    instance gone counts as done."""
    for instance_id in ids:
        state = str((live[instance_id].get("properties") or {}).get("provisioningState") or "")
        if state and state.lower() not in _SETTLED:
            instance = f"{scale_set_id}/virtualMachines/{instance_id}"
            return Operation(instance, method, "InProgress", COMPUTE_API, poll_mode="resource")
    return None


def begin_manual_upgrade(sender: Sender, scale_set_id: str, ids: Sequence[str]) -> Operation:
    """`VirtualMachineScaleSets_UpdateInstances` (POST `.../manualupgrade`) of the instances
    not upgraded yet (`_upgraded`); none left: done without a request; one still being
    upgraded by an earlier call: that upgrade followed (`_busy`)."""
    live = _instance_ids(list_instances(sender, scale_set_id))
    missing = [i for i in ids if i not in live]
    if missing:
        error = ArmError(
            "InvalidParameter",
            f"The provided instanceId {missing[0]} is not an active Virtual Machine Scale Set "
            "VM instanceId.",
            scale_set_id,
        )
        return Operation(scale_set_id, "POST", "Failed", COMPUTE_API, error=error)
    pending = [i for i in ids if not _upgraded(live[i])]
    return _instance_action(
        sender, scale_set_id, "manualupgrade", live, pending, "on the latest model already"
    )


def begin_delete_instances(sender: Sender, scale_set_id: str, ids: Sequence[str]) -> Operation:
    """`VirtualMachineScaleSets_DeleteInstances` (POST `.../delete`) of those still there."""
    live = _instance_ids(list_instances(sender, scale_set_id))
    present = [i for i in ids if i in live]
    return _instance_action(sender, scale_set_id, "delete", live, present, "already deleted")


def _instance_action(
    sender: Sender,
    scale_set_id: str,
    action: str,
    live: Mapping[str, Mapping[str, Any]],
    ids: Sequence[str],
    nothing_to_do: str,
) -> Operation:
    """POST a scale set's instance action on `ids`: none, done; one busy, followed."""
    if not ids:
        return Operation(scale_set_id, "POST", "Succeeded", COMPUTE_API, kept=nothing_to_do)
    busy = _busy(scale_set_id, live, ids, "DELETE" if action == "delete" else "POST")
    if busy is not None:
        return busy
    body = {"instanceIds": list(ids)}
    return begin_post(
        sender, scale_set_id, action, COMPUTE_API, body, final_state="azure-async-operation"
    )


# --- Run Command ---------------------------------------------------------------------------

_ARGUMENT = re.compile(r"\s+-(?P<name>[A-Za-z]+)\s+'(?P<value>(?:[^']|'')*)'")


def setup_invocation(command: str) -> list[tuple[str, str]]:
    """The setup script's arguments in an extension's command (name, value as written:
    PowerShell-quoted, `'` doubled), in order; `ValueError` when the command does not run the
    script."""
    call = "& '" + SETUP_SCRIPT_PATH.replace("'", "''") + "'"
    start = command.find(call)
    if start < 0:
        raise ValueError("the setup extension's command does not run the setup script")
    arguments = []
    position = start + len(call)
    while (match := _ARGUMENT.match(command, position)) is not None:
        arguments.append((match.group("name"), match.group("value")))
        position = match.end()
    return arguments


def front_end_script(command: str, mode: str) -> str:
    """The Run Command script of a front-end mode (docs/upgrades.md, "Command lines"): the
    script the extension left on the server, with the model's C1 arguments and `-Mode`."""
    arguments = [(n, v) for n, v in setup_invocation(command) if n.lower() != "mode"]
    quoted = "'" + SETUP_SCRIPT_PATH.replace("'", "''") + "'"
    invocation = " ".join(f"-{name} '{value}'" for name, value in arguments)
    return f"& {quoted} {invocation} -Mode '{mode}'; exit $LASTEXITCODE"


def begin_run_command(sender: Sender, scale_set_id: str, instance_id: str, mode: str) -> Operation:
    """`VirtualMachineScaleSetVMs_RunCommand` of the setup script in a front-end mode."""
    instance = f"{scale_set_id}/virtualMachines/{instance_id}"
    scale_set = get_resource(sender, scale_set_id, COMPUTE_API)
    commands = [c for _name, c in _script_extensions(scale_set)]
    if not commands:
        reason = (
            "ResourceNotFound"
            if scale_set is None
            else "the scale set's model has no setup extension"
        )
        error = ArmError(reason, f"cannot run -Mode {mode} on {instance}: {reason}", instance)
        return Operation(instance, "POST", "Failed", COMPUTE_API, error=error)
    body = {"commandId": RUN_POWERSHELL, "script": [front_end_script(commands[0], mode)]}
    # A script still running on the instance (this activity's first run, its answer lost) is
    # ARM's 409 `Conflict`; Run Command allows a script 90 minutes, longer than Durable's few
    # retries: the orchestration waits for it (`outsystems.upgrade.run_command_busy`).
    return begin_post(
        sender,
        instance,
        "runCommand",
        COMPUTE_API,
        body,
        final_state="location",
        busy_answers=True,
    )


# --- The gateway ---------------------------------------------------------------------------


def _pool_id(gateway_id: str, name: str) -> str:
    return f"{gateway_id}/backendAddressPools/{name}"


#: What a gateway's GET carries that ARM computes: not sent back in the PUT.
_READ_ONLY: Final = frozenset(
    {"etag", "provisioningState", "resourceGuid", "operationalState", "backendIPConfigurations"}
)


def _writable(value: Any) -> Any:
    """A GET body made a PUT body: without what ARM computes (`_READ_ONLY`, the principals of
    user-assigned identities)."""
    if isinstance(value, list):
        return [_writable(item) for item in value]
    if not isinstance(value, dict):
        return value
    body = {k: _writable(v) for k, v in value.items() if k not in _READ_ONLY}
    identities = (body.get("identity") or {}).get("userAssignedIdentities")
    if isinstance(identities, dict):
        body["identity"] = {
            **body["identity"],
            "userAssignedIdentities": {key: {} for key in identities},
        }
        body["identity"].pop("principalId", None)
        body["identity"].pop("tenantId", None)
    return body


def switched_gateway(
    gateway: Mapping[str, Any], gateway_id: str, addresses: Sequence[str] | None
) -> dict[str, Any] | None:
    """The gateway's body routing its rules' traffic to `addresses` only (a pool of its own),
    or back to its own pool (`None`); None when the gateway already routes so."""
    body = _writable(json.loads(json.dumps(gateway)))
    properties = body.setdefault("properties", {})
    pools = [p for p in properties.get("backendAddressPools") or [] if isinstance(p, dict)]
    own = [p for p in pools if str(p.get("name", "")).lower() != UPGRADE_POOL]
    if not own:
        raise ValueError(f"the gateway {gateway_id} has no backend pool of its own")
    own_id = _pool_id(gateway_id, str(own[0]["name"]))
    upgrade_id = _pool_id(gateway_id, UPGRADE_POOL)
    wanted = own_id if addresses is None else upgrade_id
    managed = {own_id.lower(), upgrade_id.lower()}
    changed = False
    for rule in properties.get("requestRoutingRules") or []:
        rule_properties = rule.get("properties") or {}
        pool = rule_properties.get("backendAddressPool") or {}
        current = str(pool.get("id") or "")
        if current.lower() in managed and current.lower() != wanted.lower():
            rule_properties["backendAddressPool"] = {"id": wanted}
            changed = True
    previous = next((p for p in pools if str(p.get("name", "")).lower() == UPGRADE_POOL), None)
    if addresses is None:
        if previous is not None:
            properties["backendAddressPools"] = own
            changed = True
    else:
        members = [{"ipAddress": a} for a in addresses]
        before = ((previous or {}).get("properties") or {}).get("backendAddresses") or []
        if previous is None or sorted(str(b.get("ipAddress")) for b in before) != sorted(addresses):
            pool = {"name": UPGRADE_POOL, "properties": {"backendAddresses": members}}
            properties["backendAddressPools"] = [*own, pool]
            changed = True
    return body if changed else None


def begin_switch_gateway(
    sender: Sender, gateway_id: str, addresses: Sequence[str] | None
) -> Operation:
    """One PUT of the gateway sending its traffic to `addresses` only, or back to its pool."""
    from arm.operations import begin_put

    gateway = get_resource(sender, gateway_id, NETWORK_API)
    if gateway is None:
        error = ArmError("ResourceNotFound", "the gateway does not exist", gateway_id)
        return Operation(gateway_id, "PUT", "Failed", NETWORK_API, error=error)
    state = str((gateway.get("properties") or {}).get("provisioningState") or "Succeeded")
    body = switched_gateway(gateway, gateway_id, addresses)
    if body is None and state.lower() not in {"failed", "canceled"}:
        if state.lower() != "succeeded":
            # An earlier call's PUT of this very routing is still being applied: follow it.
            return Operation(gateway_id, "PUT", "InProgress", NETWORK_API, poll_mode="resource")
        return Operation(gateway_id, "PUT", "Succeeded", NETWORK_API, kept="routes so already")
    if body is None:
        # The last PUT of this routing failed: send it again.
        body = _writable(json.loads(json.dumps(gateway)))
    operation = begin_put(sender, gateway_id, NETWORK_API, body)
    refused = operation.error
    if operation.status == "Failed" and refused is not None and refused.code == _BUSY:
        raise TransientArmError(f"{gateway_id}: {refused.message}")
    return operation


def begin_backend_health(sender: Sender, gateway_id: str) -> Operation:
    """`ApplicationGateways_BackendHealth` (POST `.../backendhealth`, final state at
    `Location`)."""
    return begin_post(
        sender, gateway_id, "backendhealth", NETWORK_API, None, final_state="location"
    )


# --- Results of actions ----------------------------------------------------------------------


def action_outcome(result: Any) -> ActionOutcome:
    """What a finished action's result says: a `RunCommandResult` (its StdOut/StdErr statuses)
    or an `ApplicationGatewayBackendHealth` (each server's health)."""
    if not isinstance(result, dict):
        return ActionOutcome(False, "the action answered no result")
    if "backendAddressPools" in result:
        health: dict[str, str] = {}
        for pool in result.get("backendAddressPools") or ():
            for collection in pool.get("backendHttpSettingsCollection") or ():
                for server in collection.get("servers") or ():
                    address = server.get("address")
                    if isinstance(address, str) and address:
                        value = str(server.get("health") or "Unknown")
                        if health.get(address, "Unknown") == "Unknown":
                            health[address] = value
        return ActionOutcome(True, "", health)
    statuses = [s for s in result.get("value") or () if isinstance(s, dict)]
    streams = {"stdout": "", "stderr": ""}
    succeeded = bool(statuses)
    for status in statuses:
        code = str(status.get("code") or "").lower()
        if not code.endswith("/succeeded"):
            succeeded = False
        for stream in streams:
            if f"/{stream}/" in code:
                streams[stream] = _last_line(status.get("message")) or ""
    message = streams["stdout"] or streams["stderr"]
    if message.startswith("OutSystems setup failed") or not streams["stdout"]:
        # The script's failure line, or only an error (PowerShell refusing a parameter of a
        # script older than the modes, docs/upgrades.md): Run Command reports no exit code.
        succeeded = False
    return ActionOutcome(succeeded, message)


def read_action_result(sender: Sender, operation: Operation, endpoint: str) -> ActionOutcome:
    """The result of a finished action, read at its `Location`."""
    from urllib.parse import urlsplit

    if operation.status != "Succeeded":
        reason = operation.error.message if operation.error else f"it is {operation.status}"
        return ActionOutcome(False, reason)
    if operation.poll_mode != "location" or not operation.poll_url:
        return ActionOutcome(False, "the action's result has no Location to read it at")
    a, b = urlsplit(operation.poll_url), urlsplit(endpoint)
    if (a.scheme.lower(), a.netloc.lower()) != (b.scheme.lower(), b.netloc.lower()):
        raise ValueError(f"refusing to read {operation.poll_url!r}: not on {endpoint}")
    response = sender.send_request(HttpRequest("GET", operation.poll_url))
    _raise_if_retryable(response, operation.resource_id, busy_too=False)
    if response.status_code == 202:
        raise TransientArmError(f"{operation.resource_id}: the action is still running")
    if response.status_code >= 400:
        error = error_of(response, operation.resource_id)
        return ActionOutcome(False, f"{error.code}: {error.message}")
    try:
        result = response.json()
    except ValueError:
        result = None
    return action_outcome(result)

"""Run Command on a VM or a scale-set instance, and what the setup script's front-end modes do.

Facts (Azure/azure-rest-api-specs, specification/compute/resource-manager/Microsoft.Compute/
ComputeRP/stable/2024-11-01/runCommand.json, commit 05b997f6): `VirtualMachines_RunCommand`
(POST `.../virtualMachines/{vm}/runCommand`) and `VirtualMachineScaleSetVMs_RunCommand` (POST
`.../virtualMachineScaleSets/{vmss}/virtualmachines/{instanceId}/runCommand`), body
`RunCommandInput` (`commandId` required, `script` lines, `parameters`), 200 `RunCommandResult`
(`value`: instance view statuses) or 202, long-running with `final-state-via: location`.
MicrosoftDocs/azure-docs articles/virtual-machines/windows/run-command.md (commit 056d350e, in
tests/oracles/outsystems-upgrade.json): output limited to its last 4,096 bytes, one script at a
time, at most 90 minutes. The result's statuses are the StdOut and StdErr components
(`ComponentStatus/StdOut/succeeded`, `ComponentStatus/StdErr/succeeded`, each with the stream as
`message`), as the same page shows them.

What a script does is decided by the run-command decider (`register_decider`); the default one
is the setup script's front-end modes (docs/upgrades.md, infra/scripts/Install-OutSystems.ps1):
`& '...Install-OutSystems.ps1' <C1 arguments> -Mode 'Drain' | 'HoldDeployments' | 'Serve'` on a
`frontend` prints `OutSystems front-end drained | holding deployments | serving` to both streams;
`Drain` blocks the gateway subnet on 80/443, so the gateway's probe fails (its backend health is
`Down`) until `Serve`; `HoldDeployments` stops the Deployment Service until `Serve` or an
upgrade's health gate. On another role the script's failure line (`OutSystems setup failed: -Mode
{mode} is for front-ends, not a {role} (line N)`); a server whose script predates the modes
answers PowerShell's parameter validation error (no `OutSystems front-end` line). Anything else
runs and prints nothing. Refusals: no `commandId` 400 `InvalidParameter`; a second script while
one runs 409 `Conflict` "Run command extension execution is in progress. Please wait for
completion before invoking a run command." (ARM's text as commonly reported; not in the spec).
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from localdev.armsim import scale_sets
from localdev.armsim.bodies import json_body
from localdev.armsim.errors import ArmError, missing_property
from localdev.armsim.extensions import OUTPUT_LIMIT
from localdev.armsim.hooks import ArmSim
from localdev.armsim.latency import action_seconds
from localdev.armsim.messages import SimRequest, SimResponse
from localdev.armsim.store import Operation, Resource
from localdev.armsim.validation import get_path

VMSS_VM_TYPE = "Microsoft.Compute/virtualMachineScaleSets/virtualMachines"
ACTION = "runcommand"
_FRONTEND_MODES = {"drain": "drained", "holddeployments": "holding deployments", "serve": "serving"}
_MODE = re.compile(r"-Mode\s+'(?P<mode>[A-Za-z]+)'", re.IGNORECASE)
_ROLE = re.compile(r"-Role\s+'(?P<role>[A-Za-z]+)'", re.IGNORECASE)
_MODE_THROW = re.compile(r"throw\s+\"-Mode \$Mode is for front-ends")
_MODE_SET = re.compile(r"\[ValidateSet\((?P<values>[^)]*)\)\]\[string\]\$Mode\b", re.IGNORECASE)


@dataclass(frozen=True)
class RunOutput:
    """What a script printed."""

    stdout: str = ""
    stderr: str = ""


RunDecider = Callable[[ArmSim, Resource, str], RunOutput]
_DECIDERS: list[RunDecider] = []


def register_decider(decider: RunDecider) -> None:
    """Let `decider(engine, machine, script)` decide what Run Command scripts print and do."""
    _DECIDERS[:] = [decider]


def unregister_decider() -> None:
    """Back to the default decider (the setup script's front-end modes)."""
    _DECIDERS.clear()


def start(engine: ArmSim, machine: Resource, request: SimRequest) -> SimResponse:
    """Begin a Run Command on a VM or an instance (neither is `Updating` meanwhile)."""
    body = json_body(request)
    if not body.get("commandId"):
        raise missing_property("commandId")
    running = engine.store.operations.get(str(machine.extra.get("runCommand", {}).get("op", "")))
    if running is not None and running.status == "InProgress":
        raise ArmError(
            409,
            "Conflict",
            "Run command extension execution is in progress. Please wait for completion before "
            "invoking a run command.",
        )
    script = "\n".join(str(line) for line in body.get("script") or [])
    seconds = action_seconds(machine.type, ACTION)
    response = engine.start_action(machine, ACTION, request, seconds, lock=False)
    operation_id = response.headers["x-sim-operation-id"]
    machine.extra["runCommand"] = {"op": operation_id, "script": script}
    return response


def finish(engine: ArmSim, machine: Resource, op: Operation) -> None:
    """The script runs when the operation ends; its output is the operation's result."""
    # The script is kept only while it runs (a script may carry what the state file should not).
    script = str((machine.extra.get("runCommand") or {}).pop("script", ""))
    decider = _DECIDERS[0] if _DECIDERS else frontend_modes
    output = decider(engine, machine, script)
    op.result = {
        "value": [
            _status("StdOut", output.stdout[-OUTPUT_LIMIT:]),
            _status("StdErr", output.stderr[-OUTPUT_LIMIT:]),
        ]
    }


def _status(stream: str, message: str) -> dict[str, Any]:
    return {
        "code": f"ComponentStatus/{stream}/succeeded",
        "level": "Info",
        "displayStatus": "Provisioning succeeded",
        "message": message,
    }


def _delivered_script(engine: ArmSim, machine: Resource) -> str:
    """The setup script the machine got (its userData, base64), decoded ('' when none)."""
    if machine.type == VMSS_VM_TYPE:
        scale_set = engine.store.get(machine.id.rsplit("/", 2)[0])
        if scale_set is None:
            return ""
        encoded = scale_sets.instance_model(scale_set, machine)["profile"].get("userData")
    else:
        encoded = get_path(machine.body, "properties.userData")
    if not isinstance(encoded, str):
        return ""
    try:
        return base64.b64decode(encoded, validate=True).decode("utf-8-sig")
    except (binascii.Error, UnicodeDecodeError):
        return ""


def _parameter_error(delivered: str, mode: str) -> str | None:
    """PowerShell's parameter binding error when the delivered script does not know the mode
    (a script older than the front-end modes), None when it does."""
    declared = _MODE_SET.search(delivered)
    if declared is None:
        return "A parameter cannot be found that matches parameter name 'Mode'."
    values = [v.strip().strip("'\"") for v in declared.group("values").split(",")]
    if mode.lower() in (v.lower() for v in values):
        return None
    return (
        f"Cannot validate argument on parameter 'Mode'. The argument \"{mode}\" does not belong "
        f'to the set "{",".join(values)}" specified by the ValidateSet attribute. Supply an '
        "argument that is in the set and then try the command again."
    )


def frontend_modes(engine: ArmSim, machine: Resource, script: str) -> RunOutput:
    """The default decider: the setup script's `-Mode Drain|HoldDeployments|Serve`."""
    mode_match = _MODE.search(script)
    if "Install-OutSystems.ps1" not in script or mode_match is None:
        return RunOutput()
    mode = mode_match.group("mode")
    state = _FRONTEND_MODES.get(mode.lower())
    if state is None:
        return RunOutput()
    delivered = _delivered_script(engine, machine)
    refused = _parameter_error(delivered, mode)
    if refused is not None:
        return RunOutput("", refused)
    role_match = _ROLE.search(script)
    role = role_match.group("role") if role_match else ""
    if role.lower() != "frontend":
        line_number = next(
            (n for n, text in enumerate(delivered.splitlines(), 1) if _MODE_THROW.search(text)),
            0,
        )
        line = (
            f"OutSystems setup failed: -Mode {mode} is for front-ends, not a {role} "
            f"(line {line_number})"
        )
        return RunOutput(line, line)
    if state == "drained":
        machine.extra["drained"] = True
    elif state == "holding deployments":
        machine.extra["holdingDeployments"] = True
    else:
        machine.extra.pop("drained", None)
        machine.extra.pop("holdingDeployments", None)
    engine.store.dirty = True
    line = f"OutSystems front-end {state}"
    return RunOutput(line, line)

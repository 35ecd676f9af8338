"""How a script extension's run ends: the outcome-decider hook and ARM's failure message.

A Custom Script Extension (Windows `CustomScriptExtension`, Linux `CustomScript`) runs a
command on a VM or on each scale-set instance; the simulator has no VM, so by default every run
succeeds. An *outcome decider*, registered per handler type, decides otherwise: given the
engine, the host (VM or scale set) and the extension's body, it returns the script's exit code
and error output, or None to let the run succeed. A later step plugs in one that looks at the
network and identities a server's setup needs.

A non-zero exit code ends the extension's operation with ARM's `VMExtensionProvisioningError`,
worded as the Custom Script Extension handler reports it (Microsoft Learn, AKS troubleshooting
article "CniDownloadTimeoutVMExtensionError", which quotes both the Windows and the Linux
handler's failures):

    VM has reported a failure when processing extension '{name}' (publisher
    'Microsoft.Compute' and type 'CustomScriptExtension'). Error message: 'Command execution
    finished, but failed because it returned a non-zero exit code of: '{code}'. The command had
    an error output of: '{stderr}' For more information, check the instance view by executing
    Get-AzVmssVm or Get-AzVm (https://aka.ms/GetAzVm). These commands can be executed using
    CloudShell (https://aka.ms/CloudShell)'. More information on troubleshooting is available
    at https://aka.ms/VMExtensionCSEWindowsTroubleshoot.

(the error-output sentence only when there was error output). The "error output" is the
script's standard error only: in that article's examples it is PowerShell's error record ("At
line:1 ...") and cmd's "The system cannot find the path specified."; what a script writes to
standard output (PowerShell's `Write-Host`, `Write-Output`) shows only in the extension's
instance view, as the message of its `ComponentStatus/StdOut/...` substatus (stderr in
`ComponentStatus/StdErr/...`). Exit code 3010 is the reboot case: the script scheduled its
continuation and asks for a reboot (Outsystems.SetupTools' examples `exit 3010`); the extension
reports it as a failure and a later run collects the outcome.

The default decider of `CustomScriptExtension` is the OutSystems server model
(`setup_model.py`), which decides only runs of `Install-OutSystems.ps1`; a test may replace it
for a while (`register_outcome_decider`), `unregister_outcome_decider` puts it back.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from localdev.armsim.hooks import ArmSim
from localdev.armsim.store import Resource

#: Handler types (lower case) whose runs are scripts: their exit code is the outcome.
SCRIPT_HANDLERS = frozenset({"customscriptextension", "customscript"})
#: The exit code of a script that needs a reboot and resumes after it.
REBOOT_EXIT_CODE = 3010


#: How much of each stream the handler keeps for the instance view (the last 4,096 bytes, as
#: the setup script's author notes; the simulator counts characters).
OUTPUT_LIMIT = 4096


@dataclass(frozen=True)
class ScriptResult:
    """How a script ended: its exit code, its error output (stderr) and its standard output."""

    exit_code: int
    output: str = ""
    stdout: str = ""

    def to_json(self) -> dict[str, Any]:
        """What the instance view shows of the run."""
        return {
            "exitCode": self.exit_code,
            "stdout": self.stdout[-OUTPUT_LIMIT:],
            "stderr": self.output[-OUTPUT_LIMIT:],
        }


OutcomeDecider = Callable[[ArmSim, Resource, Mapping[str, Any]], ScriptResult | None]

_DECIDERS: dict[str, OutcomeDecider] = {}
_DEFAULT_DECIDERS: dict[str, OutcomeDecider] = {}


def register_outcome_decider(handler_type: str, decider: OutcomeDecider) -> None:
    """Let `decider` decide how runs of `handler_type` extensions end (replaces any other)."""
    _DECIDERS[handler_type.lower()] = decider


def unregister_outcome_decider(handler_type: str) -> None:
    """Back to the default decider of `handler_type` (none: runs that always succeed)."""
    _DECIDERS.pop(handler_type.lower(), None)


def set_default_outcome_decider(handler_type: str, decider: OutcomeDecider) -> None:
    """The decider `handler_type` falls back to when none is registered."""
    _DEFAULT_DECIDERS[handler_type.lower()] = decider


def decider_for(handler_type: str) -> OutcomeDecider | None:
    """The registered decider of a handler type, else its default one."""
    lowered = handler_type.lower()
    return _DECIDERS.get(lowered) or _DEFAULT_DECIDERS.get(lowered)


def is_script(properties: Mapping[str, Any]) -> bool:
    """Whether an extension's properties name a script handler."""
    return str(properties.get("type", "")).lower() in SCRIPT_HANDLERS


def script_failure(
    name: str, properties: Mapping[str, Any], result: ScriptResult
) -> dict[str, Any]:
    """ARM's `VMExtensionProvisioningError` for a script that exited with `result`."""
    publisher = str(properties.get("publisher", ""))
    handler = str(properties.get("type", ""))
    head = (
        f"VM has reported a failure when processing extension '{name}' (publisher "
        f"'{publisher}' and type '{handler}'). Error message: "
    )
    if handler.lower() == "customscript":
        # The Linux handler's wording (same article, Linux case).
        message = (
            f"{head}'Enable failed: failed to execute command: command terminated with exit "
            f"status={result.exit_code}\n[stdout]\n\n[stderr]\n{result.output}'. More "
            "information on troubleshooting is available at "
            "https://aka.ms/VMExtensionCSELinuxTroubleshoot."
        )
    else:
        output = f" The command had an error output of: '{result.output}'" if result.output else ""
        message = (
            f"{head}'Command execution finished, but failed because it returned a non-zero exit "
            f"code of: '{result.exit_code}'.{output} For more information, check the instance "
            "view by executing Get-AzVmssVm or Get-AzVm (https://aka.ms/GetAzVm). These "
            "commands can be executed using CloudShell (https://aka.ms/CloudShell)'. More "
            "information on troubleshooting is available at "
            "https://aka.ms/VMExtensionCSEWindowsTroubleshoot."
        )
    return {"code": "VMExtensionProvisioningError", "message": message}


def run(
    engine: ArmSim, host: Resource, name: str, properties: Mapping[str, Any]
) -> ScriptResult | None:
    """How a script extension's run ends, as its decider says (None: it just succeeds)."""
    decider = decider_for(str(properties.get("type", "")))
    if decider is None:
        return None
    return decider(engine, host, {"name": name, "properties": properties})


def failure_of(
    name: str, properties: Mapping[str, Any], result: ScriptResult | None
) -> dict[str, Any] | None:
    """ARM's error for a run that ended with `result` (None when it succeeded)."""
    if result is None or result.exit_code == 0:
        return None
    return script_failure(name, properties, result)


def decide(
    engine: ArmSim, host: Resource, name: str, properties: Mapping[str, Any]
) -> dict[str, Any] | None:
    """The error a script extension's run ends with (None: success), from its decider."""
    return failure_of(name, properties, run(engine, host, name, properties))


def profile_scripts(body: Mapping[str, Any]) -> list[tuple[str, Mapping[str, Any]]]:
    """(name, properties) of the script extensions in a scale set's extension profile."""
    profile = (body.get("properties") or {}).get("virtualMachineProfile") or {}
    extensions = (profile.get("extensionProfile") or {}).get("extensions") or []
    return [
        (str(e.get("name", "")), e.get("properties") or {})
        for e in extensions
        if isinstance(e, dict) and is_script(e.get("properties") or {})
    ]

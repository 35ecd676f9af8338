"""The latency profile: how long each ARM operation takes, per resource type, at scale 1.

This table is the one place where durations live (documented in README.md). The numbers are
typical of Azure: seconds for network plumbing, minutes for VMs and SQL servers, tens of minutes
for Application Gateways and for a Custom Script Extension that installs server software, so
that a multi-environment platform with gateways and set-up scripts takes about an hour, as the
Azure Marketplace templates do. Every duration is multiplied by the `--latency-scale` factor
(0 = instant, the operation still goes through the long-running-operation protocol).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

Operation = Literal["create", "update", "delete"]


@dataclass(frozen=True)
class Timing:
    """Seconds for create, update (PUT on an existing resource or PATCH) and delete."""

    create: float
    update: float
    delete: float

    def of(self, operation: Operation) -> float:
        """The duration of one kind of operation."""
        return {"create": self.create, "update": self.update, "delete": self.delete}[operation]


#: Seconds at latency scale 1, keyed by lower-case resource type.
LATENCY_SECONDS: Mapping[str, Timing] = {
    "microsoft.resources/resourcegroups": Timing(0, 0, 60),
    "microsoft.network/virtualnetworks": Timing(10, 5, 10),
    "microsoft.network/virtualnetworks/subnets": Timing(5, 5, 5),
    "microsoft.network/networksecuritygroups": Timing(5, 3, 5),
    "microsoft.network/publicipaddresses": Timing(5, 3, 10),
    "microsoft.network/networkinterfaces": Timing(3, 3, 5),
    "microsoft.network/loadbalancers": Timing(10, 10, 10),
    "microsoft.network/applicationgateways": Timing(1200, 420, 600),
    "microsoft.network/bastionhosts": Timing(600, 300, 300),
    "microsoft.compute/virtualmachines": Timing(180, 60, 120),
    "microsoft.compute/virtualmachines/extensions": Timing(90, 90, 60),
    "microsoft.compute/virtualmachinescalesets": Timing(240, 60, 180),
    "microsoft.compute/virtualmachinescalesets/extensions": Timing(30, 30, 30),
    "microsoft.sql/servers": Timing(180, 60, 60),
    "microsoft.sql/servers/databases": Timing(120, 60, 30),
    "microsoft.sql/servers/virtualnetworkrules": Timing(30, 30, 20),
    "microsoft.storage/storageaccounts": Timing(25, 5, 0),
    # Microsoft publishes no durations for these (README: "not published, chosen"): seconds for
    # NAT gateways and WAF policies (network plumbing), a vault's create (its DNS name
    # registers) and a deleted vault's purge (its delete); vault deletes are synchronous.
    "microsoft.network/natgateways": Timing(10, 5, 10),
    "microsoft.network/applicationgatewaywebapplicationfirewallpolicies": Timing(10, 10, 10),
    "microsoft.keyvault/vaults": Timing(10, 5, 0),
    "microsoft.keyvault/deletedvaults": Timing(0, 0, 30),
}

#: Extension handlers whose run time differs from the default extension time, keyed by
#: lower-case handler type: script handlers run arbitrary installers (here: a server install).
EXTENSION_RUN_SECONDS: Mapping[str, float] = {
    "customscriptextension": 1200,
    "customscript": 1200,
}

#: Time to add instances to a scale set, before their extensions run.
SCALE_OUT_SECONDS = 150
#: Time to remove instances from a scale set.
SCALE_IN_SECONDS = 60


#: POST actions answered with a long-running operation: seconds at scale 1, keyed by (lower-case
#: type, lower-case action). Microsoft publishes none of these: chosen. A scale-set instance's
#: upgrade or reimage also runs its profile's extensions (their run time is added).
ACTION_SECONDS: Mapping[tuple[str, str], float] = {
    ("microsoft.compute/virtualmachinescalesets", "manualupgrade"): 120,
    ("microsoft.compute/virtualmachinescalesets", "reimage"): 180,
    ("microsoft.compute/virtualmachinescalesets", "delete"): SCALE_IN_SECONDS,
    ("microsoft.network/applicationgateways", "backendhealth"): 10,
    ("microsoft.compute/virtualmachines", "runcommand"): 30,
    ("microsoft.compute/virtualmachinescalesets/virtualmachines", "runcommand"): 30,
    ("microsoft.sql/servers/databases", "restorepoints"): 60,
}
#: Actions that rebuild instances and so run their extensions again.
_REBUILDING_ACTIONS = frozenset({"manualupgrade", "reimage"})


def action_seconds(
    resource_type: str, action: str, profile: Mapping[str, Any] | None = None
) -> float:
    """Seconds (at scale 1) for a POST action; `profile` is the VM profile instances are
    rebuilt from (its extensions run again on an upgrade or reimage)."""
    seconds = ACTION_SECONDS.get((resource_type.lower(), action.lower()), 0.0)
    if action.lower() in _REBUILDING_ACTIONS and profile is not None:
        seconds += _profile_extensions_seconds({"properties": {"virtualMachineProfile": profile}})
    return seconds


def extension_seconds(properties: Mapping[str, Any]) -> float:
    """Run time of an extension from its handler type."""
    handler = str(properties.get("type", "")).lower()
    return EXTENSION_RUN_SECONDS.get(handler, LATENCY_SECONDS[_VM_EXTENSION].create)


_VM_EXTENSION = "microsoft.compute/virtualmachines/extensions"


def _profile_extensions_seconds(body: Mapping[str, Any]) -> float:
    profile = body.get("properties", {}).get("virtualMachineProfile", {})
    extensions = profile.get("extensionProfile", {}).get("extensions", [])
    times = [extension_seconds(e.get("properties", {})) for e in extensions if isinstance(e, dict)]
    return max(times, default=0.0)


def _capacity(body: Mapping[str, Any] | None) -> int:
    if not body:
        return 0
    return int(body.get("sku", {}).get("capacity", 0) or 0)


def operation_seconds(
    resource_type: str,
    operation: Operation,
    body: Mapping[str, Any] | None = None,
    previous: Mapping[str, Any] | None = None,
) -> float:
    """Seconds (at scale 1) for one operation on a resource of `resource_type`.

    `body` is the desired state, `previous` the state before the operation (None on create).
    Types absent from the table are instant (they are answered synchronously).
    """
    type_key = resource_type.lower()
    timing = LATENCY_SECONDS.get(type_key)
    if timing is None:
        return 0.0
    if type_key.endswith("/extensions") and operation != "delete" and body is not None:
        return extension_seconds(body.get("properties", {}))
    if type_key == "microsoft.compute/virtualmachinescalesets" and body is not None:
        # Instances run the profile's extensions (e.g. an install script) as part of the write.
        if operation == "create":
            return timing.create + _profile_extensions_seconds(body)
        if operation == "update":
            grown = _capacity(body) - _capacity(previous)
            if grown > 0:
                return SCALE_OUT_SECONDS + _profile_extensions_seconds(body)
            if grown < 0:
                return SCALE_IN_SECONDS
    return timing.of(operation)

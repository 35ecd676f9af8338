"""What the upgrade e2e tests and the upgrade benchmark watch in the ARM simulator.

`FarmWatch` looks at the simulator just before every ARM request the app makes (an
interjection: the state every earlier request and operation left), and records what the
production gateway serves then: the servers of the backend pools its routing rules name whose
health is `Up`, with the OutSystems version each runs; and the version of every server.

The oracle of "served": Azure Application Gateway sends a routing rule's requests to the
healthy members of the backend pool the rule names, and stops sending to a member its probe
finds unhealthy (MicrosoftDocs/azure-docs `articles/application-gateway/
application-gateway-probe-overview.md`, "the application gateway ... automatically removes an
unhealthy instance from the pool"; `application-gateway-components.md`, request routing rules).
The simulator's backend health (`localdev/armsim/backend_health.py`, read through its
`routed_servers`) models exactly that; the version a server runs is the one its setup script
last installed (`setup_model.installed_version`, `docs/upgrades.md`).

`ScriptRuns` wraps the simulator's setup-script model to record every run of the setup
extension: on which VM, or on which scale-set instances and why (new instances, or a
manual upgrade/reimage naming them), and the script's last line.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import requests

from localdev.armsim import backend_health, extensions, setup_model
from localdev.armsim.hooks import ArmSim
from localdev.armsim.server import SimulatorServer
from localdev.armsim.store import Resource

GATEWAY_TYPE = "microsoft.network/applicationgateways"
VM_TYPE = "microsoft.compute/virtualmachines"
INSTANCE_TYPE = "Microsoft.Compute/virtualMachineScaleSets/virtualMachines"
SCRIPT_HANDLER = "CustomScriptExtension"


@dataclass(frozen=True)
class Snapshot:
    """The farm just before one ARM request."""

    at: float
    request: str
    #: (address, version) of each server the gateway sends traffic to.
    serving: tuple[tuple[str, str | None], ...]
    #: Every server's version: VMs by name, scale-set instances by instance id.
    versions: Mapping[str, str | None]


@dataclass
class FarmWatch:
    """Snapshots of the production gateway's served servers before every ARM request."""

    sim: SimulatorServer
    gateway_name: str
    scale_set_id: str
    snapshots: list[Snapshot] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _on: bool = False

    def start(self) -> None:
        self._on = True
        # Every request, for as long as the test runs (`reset` forgets it).
        self.sim.before("*", "", self._look, count=10**9)

    def stop(self) -> None:
        self._on = False

    def _look(self, server: SimulatorServer) -> None:
        if not self._on:
            return
        engine = server.engine
        with engine.store.lock:
            snapshot = snapshot_of(engine, self.gateway_name, self.scale_set_id)
        with self._lock:
            if not self.snapshots or (
                self.snapshots[-1].serving != snapshot.serving
                or self.snapshots[-1].versions != snapshot.versions
            ):
                self.snapshots.append(snapshot)

    def taken(self) -> list[Snapshot]:
        with self._lock:
            return list(self.snapshots)

    def now(self) -> Snapshot:
        """The farm as the app's last request left it (recorded too: after the last request of
        a pause, nothing else takes a snapshot)."""
        self._look(self.sim)
        return self.taken()[-1]

    def violations(self, minimum: int) -> list[str]:
        """Every moment the gateway served two versions at once, or fewer than `minimum`."""
        found = []
        for snapshot in self.taken():
            versions = {version for _, version in snapshot.serving}
            if len(versions) > 1:
                found.append(f"two versions served {snapshot.request}: {snapshot.serving}")
            if len(snapshot.serving) < minimum:
                found.append(
                    f"{len(snapshot.serving)} < {minimum} servers served {snapshot.request}: "
                    f"{snapshot.serving}"
                )
        return found

    def first_at(self, server: str, version: str) -> int | None:
        """The index of the first snapshot where `server` runs `version` (now included)."""
        self._look(self.sim)
        for index, snapshot in enumerate(self.taken()):
            if snapshot.versions.get(server) == version:
                return index
        return None


def snapshot_of(engine: ArmSim, gateway_name: str, scale_set_id: str) -> Snapshot:
    """The farm now (the caller holds the store's lock)."""
    store = engine.store
    gateway = next(
        (
            r
            for r in store.resources.values()
            if r.type.lower() == GATEWAY_TYPE and r.name.lower() == gateway_name.lower()
        ),
        None,
    )
    serving: list[tuple[str, str | None]] = []
    if gateway is not None:
        serving = [
            (server.address, server.version)
            for server in backend_health.routed_servers(engine, gateway)
            if server.health == "Up"
        ]
    versions: dict[str, str | None] = {}
    for resource in store.resources.values():
        if resource.type.lower() == VM_TYPE:
            versions[resource.name] = setup_model.installed_version(resource)
    scale_set = store.get(scale_set_id)
    if scale_set is not None:
        for instance in store.children(scale_set.id, INSTANCE_TYPE):
            versions[f"instance {instance.name}"] = setup_model.installed_version(instance)
    last = store.requests[-1] if store.requests else None
    request = f"after {last.method} {last.path}" if last is not None else "at the start"
    return Snapshot(time.monotonic(), request, tuple(sorted(serving)), versions)


@dataclass(frozen=True)
class ScriptRun:
    """One run of the setup extension on some servers, and how it ended."""

    host: str
    #: Scale-set instance ids the run was on (empty for a VM).
    instances: tuple[str, ...]
    #: `rebuild` (a manual upgrade or reimage named them), `new` (a capacity increase), `vm`.
    why: str
    last_line: str


@dataclass
class ScriptRuns:
    """Records every setup-extension run the simulator decides (see the module docstring)."""

    runs: list[ScriptRun] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __enter__(self) -> ScriptRuns:
        extensions.register_outcome_decider(SCRIPT_HANDLER, self._decide)
        return self

    def __exit__(self, *_: object) -> None:
        extensions.unregister_outcome_decider(SCRIPT_HANDLER)

    def _decide(
        self, engine: ArmSim, host: Resource, extension: Mapping[str, Any]
    ) -> extensions.ScriptResult | None:
        targets = host.extra.get("targetInstances")
        if isinstance(targets, list):
            instances, why = tuple(str(t) for t in targets), "rebuild"
        elif host.type.lower() == VM_TYPE:
            instances, why = (), "vm"
        else:
            creating = [
                c.name
                for c in engine.store.children(host.id, INSTANCE_TYPE)
                if c.state == "Creating"
            ]
            instances, why = tuple(creating), "new"
        result = setup_model.decide(engine, host, extension)
        last = ""
        if result is not None:
            lines = (result.stdout or result.output).strip().splitlines()
            last = lines[-1] if lines else ""
        with self._lock:
            self.runs.append(ScriptRun(host.name, instances, why, last))
        return result

    def taken(self) -> list[ScriptRun]:
        with self._lock:
            return list(self.runs)

    def rebuilds(self, instance: str) -> list[ScriptRun]:
        """The manual upgrades (or reimages) that named this instance."""
        return [r for r in self.taken() if r.why == "rebuild" and instance in r.instances]


def platform_state(base: str, solution_id: str) -> dict[str, Any]:
    response = requests.get(f"{base}/api/platforms/{solution_id}", timeout=30)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body

"""The whole app on one machine: local host + ARM simulator + Azurite, driven over HTTP."""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from localdev.armsim.server import SimulatorServer
from localdev.host.testing import ThreadedHost
from tests.support.azurite import Azurite

ROOT = Path(__file__).resolve().parents[2]
SUBSCRIPTION = "11111111-2222-3333-4444-555555555555"
#: Test-only secrets; tests assert they never leak.
SECRETS = {
    "VM_ADMIN_PASSWORD": "E2e-Vm-Passw0rd!x7",
    "SQL_ADMIN_PASSWORD": "E2e-Sql-Passw0rd!k9",
    "PLATFORM_KEY_SEED": "e2e-platform-key-seed-4f1c",
    "ALERT_WEBHOOK_URL": "http://127.0.0.1:7071/api/alerts?code=e2e-function-key-9d2",
}
#: The local host's own function key in these tests (`--require-keys`).
HOST_KEY = "e2e-host-function-key-51c8a"
EVENTS_QUEUE = "platform-events"
TERMINAL = {"Completed", "Failed", "Canceled", "Terminated"}


def app_settings(sim: SimulatorServer, azurite: Azurite, **overrides: str) -> dict[str, str]:
    """Every setting the app reads, pointed at the simulator and Azurite, with fast polling."""
    values = {
        "AzureWebJobsStorage": azurite.connection_string,
        "FUNCTIONS_WORKER_RUNTIME": "python",
        "AZURE_SUBSCRIPTION_ID": SUBSCRIPTION,
        "MANAGED_SUBSCRIPTION_IDS": "",
        "ARM_ENDPOINT": sim.url,
        "PLATFORM_EVENTS_QUEUE": EVENTS_QUEUE,
        "SCALING_TIMER_SCHEDULE": "0 0 0 1 1 *",
        "DRIFT_SCHEDULE": "0 0 0 1 1 *",
        "OPERATION_POLL_SECONDS": "0.05",
        **SECRETS,
    }
    values.update(overrides)
    return values


@dataclass
class Stack:
    """A running app with helpers to call its API."""

    host: ThreadedHost
    sim: SimulatorServer
    azurite: Azurite
    session: requests.Session = field(default_factory=requests.Session)

    @property
    def base(self) -> str:
        return self.host.base_url

    def api(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        return self.session.request(method, f"{self.base}/api/{path}", timeout=60, **kwargs)

    def deploy(self, solution_id: str, spec: Mapping[str, Any]) -> requests.Response:
        return self.api("PUT", f"platforms/{solution_id}", json=spec)

    def state(self, solution_id: str) -> dict[str, Any]:
        response = self.api("GET", f"platforms/{solution_id}")
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    def wait(self, solution_id: str, seconds: float = 120) -> dict[str, Any]:
        """Poll the platform's state until its last operation ends."""
        deadline = time.monotonic() + seconds
        while True:
            state = self.state(solution_id)
            if state["lastOperation"]["runtimeStatus"] in TERMINAL:
                return state
            if time.monotonic() > deadline:
                raise AssertionError(f"operation still running: {state}")
            time.sleep(0.1)

    def history(self, instance_id: str) -> list[dict[str, Any]]:
        assert self.host.host is not None
        assert self.host.host.store is not None
        return self.host.host.store.history(instance_id)

    def events(self) -> list[dict[str, Any]]:
        return self.azurite.drain(EVENTS_QUEUE)


@contextmanager
def running_stack(
    sim: SimulatorServer,
    azurite: Azurite,
    *,
    hub_path: str = ":memory:",
    require_keys: bool = False,
    **settings: str,
) -> Iterator[Stack]:
    """The app (this repository's function_app.py) on the local host, fresh task hub.

    `require_keys` makes the host answer 401 without the key in `LOCALDEV_FUNCTION_KEY`, as
    Azure does.
    """
    from arm.client import reset_connection
    from services.scaler_client import forget_leases

    reset_connection()
    # The scalers' leases this process knew were of another task hub.
    forget_leases()
    try:
        with ThreadedHost(
            ROOT,
            values=app_settings(sim, azurite, **settings),
            hub_path=hub_path,
            require_keys=require_keys,
        ) as host:
            stack = Stack(host, sim, azurite)
            try:
                yield stack
            finally:
                stack.session.close()
    finally:
        reset_connection()


#: What a whole teardown leaves on purpose: the platform's Key Vault, soft-deleted (Key Vault
#: keeps a deleted vault for its retention period; purge protection forbids purging it), which a
#: redeploy of the same solution id recovers with its secrets.
DELETED_VAULT = "microsoft.keyvault/deletedvaults"


def assert_torn_down(sim: SimulatorServer) -> None:
    """Nothing of the platform is left but its soft-deleted vault."""
    left = [r for r in sim.resources() if r["type"].lower() != DELETED_VAULT]
    assert left == [], [r["id"] for r in left]
    vaults = [r for r in sim.resources() if r["type"].lower() == DELETED_VAULT]
    assert len(vaults) <= 1, [r["id"] for r in vaults]


@contextmanager
def keyed_stack(
    sim: SimulatorServer, azurite: Azurite, hub: Path, **settings: str
) -> Iterator[Stack]:
    """The app on the in-process host with function keys enforced and a task hub on disk."""
    with running_stack(
        sim,
        azurite,
        hub_path=str(hub),
        require_keys=True,
        LOCALDEV_FUNCTION_KEY=HOST_KEY,
        **settings,
    ) as stack:
        stack.session.params = {"code": HOST_KEY}
        yield stack

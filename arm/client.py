"""The process's ARM connection, built from the app settings on first use.

One credential and one cached set of management clients per process (the Functions worker
reuses the process across invocations). `azure.mgmt` is imported here only when the first
client is created, never when the function app is indexed.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from appsettings import AppSettings
from arm.connection import ArmConnection

if TYPE_CHECKING:
    from arm.operations import Sender

_lock = threading.Lock()
_connection: ArmConnection | None = None

#: Retries of the SDK pipeline for 429/5xx (it honours `Retry-After`); the orchestration adds
#: its own, slower retries on top of these.
PIPELINE_RETRIES = 6


def connection() -> ArmConnection:
    """The process-wide connection to the endpoint in `ARM_ENDPOINT`."""
    global _connection
    with _lock:
        if _connection is None:
            settings = AppSettings.load()
            _connection = ArmConnection(
                settings.arm_endpoint,
                retry_total=PIPELINE_RETRIES,
                retry_backoff_max=30.0,
                polling_interval=5.0,
            )
        return _connection


def reset_connection() -> None:
    """Forget the connection (settings changed, e.g. between test runs in one process)."""
    global _connection
    with _lock:
        if _connection is not None:
            _connection.close()
        _connection = None


def sender(subscription_id: str) -> Sender:
    """A client whose pipeline sends raw ARM requests for one subscription."""
    from azure.mgmt.resource.resources import ResourceManagementClient

    return connection().client(ResourceManagementClient, subscription_id)

"""Publishing the platform's CloudEvents on the events storage queue.

The queue lives in the host's storage (`AzureWebJobsStorage`): a connection string locally
(Azurite) or identity-based settings in Azure (`AzureWebJobsStorage__queueServiceUri` or
`__accountName`, with `__clientId` for a user-assigned identity). Messages are base64 JSON, as
Azure Functions queue triggers expect by default.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from typing import TYPE_CHECKING

import azure.durable_functions as df

from activities.typed import serves
from appsettings import AppSettings, MissingSettingError
from outsystems.events import encode_queue_message
from outsystems.messages import PUBLISH_EVENT, CloudEvent

if TYPE_CHECKING:
    from azure.storage.queue import QueueClient

bp = df.Blueprint()
log = logging.getLogger(__name__)

_lock = threading.Lock()
_queues: dict[tuple[str, str], QueueClient] = {}


def _queue_client(queue_name: str) -> QueueClient:
    from azure.storage.queue import QueueClient

    connection_string = os.environ.get("AzureWebJobsStorage", "").strip()
    if connection_string:
        return QueueClient.from_connection_string(connection_string, queue_name)
    service_uri = os.environ.get("AzureWebJobsStorage__queueServiceUri", "").strip()
    account = os.environ.get("AzureWebJobsStorage__accountName", "").strip()
    if not service_uri and account:
        service_uri = f"https://{account}.queue.core.windows.net"
    if not service_uri:
        raise MissingSettingError("AzureWebJobsStorage")
    from azure.identity import DefaultAzureCredential

    client_id = os.environ.get("AzureWebJobsStorage__clientId") or None
    credential = DefaultAzureCredential(managed_identity_client_id=client_id)
    return QueueClient(service_uri, queue_name, credential=credential)


def events_queue() -> QueueClient:
    """The process's client of the events queue, created (with the queue) on first use."""
    from azure.core.exceptions import ResourceExistsError

    name = AppSettings.load().events_queue
    key = (os.environ.get("AzureWebJobsStorage", ""), name)
    with _lock:
        client = _queues.get(key)
        if client is None:
            client = _queue_client(name)
            with contextlib.suppress(ResourceExistsError):
                client.create_queue()
            _queues[key] = client
        return client


@bp.activity_trigger(input_name="request")
@serves(PUBLISH_EVENT)
def publish_event(request: CloudEvent) -> str:
    """Send one CloudEvent (built by the orchestration) to the events queue; returns its id."""
    events_queue().send_message(encode_queue_message(request.to_json()))
    log.info("published %s for %s", request.type, request.subject)
    return request.id

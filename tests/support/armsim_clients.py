"""How the simulator's tests talk to it: the real SDK clients, and raw ARM requests.

`Clients` are the installed azure-mgmt clients, made through `ArmConnection` as the app makes
them. There is no azure-mgmt client installed for Key Vault, managed identities or
authorization, so `Raw` sends ARM's JSON as it is documented (Azure REST API specs) through the
same pipeline (`send_request` of a management client made by `ArmConnection`): the same retry
policy, the same headers, the same absence of authentication on loopback.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from arm.connection import ArmConnection

SUBSCRIPTION = "00000000-0000-0000-0000-000000000001"

#: API versions named in the specs the tests follow (Azure/azure-rest-api-specs).
AUTHORIZATION_API = "2022-04-01"
KEY_VAULT_API = "2023-07-01"
IDENTITY_API = "2023-01-31"
NETWORK_API = "2026-03-01"
SUBSCRIPTIONS_API = "2022-12-01"
RESOURCES_API = "2025-04-01"
COMPUTE_API = "2026-04-01"
SQL_API = "2025-01-01"
STORAGE_API = "2025-06-01"


class Clients:
    """The real management clients, created through `ArmConnection`."""

    def __init__(self, connection: ArmConnection, subscription: str = SUBSCRIPTION) -> None:
        from azure.mgmt.compute import ComputeManagementClient
        from azure.mgmt.network import NetworkManagementClient
        from azure.mgmt.resource.resources import ResourceManagementClient
        from azure.mgmt.sql import SqlManagementClient
        from azure.mgmt.storage import StorageManagementClient

        self.resource: Any = connection.client(ResourceManagementClient, subscription)
        self.network: Any = connection.client(NetworkManagementClient, subscription)
        self.compute: Any = connection.client(ComputeManagementClient, subscription)
        self.sql: Any = connection.client(SqlManagementClient, subscription)
        self.storage: Any = connection.client(StorageManagementClient, subscription)


def message_of(exc: Any) -> str:
    """The ARM error message of an azure-core HttpResponseError."""
    return str(exc.error.message)


def error_of(exc: Any) -> tuple[int, str, str | None]:
    """(status, ARM code, target) of an azure-core HttpResponseError."""
    error = exc.error
    return exc.status_code, error.code, getattr(error, "target", None)


@dataclass
class Answer:
    """One HTTP answer: status, JSON body (None when empty) and headers."""

    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def error(self) -> dict[str, Any]:
        """The ARM error object (empty when the answer is not an error)."""
        if isinstance(self.body, dict) and isinstance(self.body.get("error"), dict):
            return dict(self.body["error"])
        return {}

    @property
    def code(self) -> str | None:
        return self.error.get("code")

    @property
    def message(self) -> str:
        return str(self.error.get("message", ""))


class Raw:
    """Sends ARM requests by path (`/subscriptions/...`) and waits for their operations."""

    def __init__(self, connection: ArmConnection, subscription: str = SUBSCRIPTION) -> None:
        from azure.mgmt.resource.resources import ResourceManagementClient

        self._endpoint = connection.endpoint
        self._client: Any = connection.client(ResourceManagementClient, subscription)

    def send(self, method: str, path: str, body: Any = None, *, api: str = RESOURCES_API) -> Answer:
        """One request; `path` may already carry a query (then `api` is not added)."""
        from azure.core.rest import HttpRequest

        url = path if path.startswith("http") else f"{self._endpoint}{path}"
        if "api-version=" not in url:
            url += ("&" if "?" in url else "?") + f"api-version={api}"
        request = HttpRequest(method, url, json=body) if body is not None else None
        request = request or HttpRequest(method, url)
        response = self._client.send_request(request)
        payload = response.json() if response.content else None
        return Answer(response.status_code, payload, dict(response.headers))

    def wait(self, answer: Answer) -> Answer:
        """Follow an answer's `Azure-AsyncOperation` (else `Location`) until it is done.

        Returns the final operation status document (`{"status", "error"?}`) for
        `Azure-AsyncOperation`, or the final `Location` answer; the answer itself when it
        started no operation.
        """
        status_url = answer.headers.get("Azure-AsyncOperation")
        location = answer.headers.get("Location")
        for _ in range(50):
            if status_url:
                polled = self.send("GET", status_url)
                if polled.body.get("status") not in {"InProgress", "Accepted", "Running"}:
                    return polled
            elif location:
                polled = self.send("GET", location)
                if polled.status != 202:
                    return polled
            else:
                return answer
        raise AssertionError("the operation never ended")

    def put(self, path: str, body: Any, *, api: str) -> Answer:
        """PUT and wait; returns the final GET of the resource (or the failure)."""
        answer = self.send("PUT", path, body, api=api)
        if answer.status >= 400:
            return answer
        done = self.wait(answer)
        if done.error or (isinstance(done.body, dict) and done.body.get("status") == "Failed"):
            return Answer(400, {"error": done.error or done.body.get("error")}, done.headers)
        return self.send("GET", path, api=api)

    def delete(self, path: str, *, api: str) -> Answer:
        """DELETE and wait for its operation, if any."""
        answer = self.send("DELETE", path, api=api)
        if answer.status == 202:
            self.wait(answer)
        return answer

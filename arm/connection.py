"""One way to reach Azure Resource Manager, the same for Azure and for the local simulator.

`ArmConnection` holds one credential per process and management clients created lazily and
cached per (client class, subscription). The endpoint is the `ARM_ENDPOINT` app setting:
- `https://...` (Azure, the default): `DefaultAzureCredential` and the SDK's bearer-token policy;
- `http://127.0.0.1:<port>` or `http://localhost:<port>` (the ARM simulator): an offline static
  credential and a no-op authentication policy, because the SDK refuses bearer tokens over
  plain HTTP. Plain HTTP to any other host is refused: auth is never disabled off the machine.

An endpoint must say plainly where it points: userinfo (`user@`), backslashes, whitespace and
control characters are refused, and the host Python's `urlsplit` reads must be the one urllib3
(the parser of the transport that sends the requests) reads. `http://evil.com\\@127.0.0.1:7071`
is 127.0.0.1 to the first and evil.com to the second, as to the WHATWG URL Standard.

`azure.identity`, `azure.core` and `azure.mgmt.*` are imported only when first needed, so
indexing the function app stays cheap.
"""

from __future__ import annotations

import ipaddress
import logging
import threading
import time
from typing import TYPE_CHECKING, Any, TypeVar, cast
from urllib.parse import urlsplit

from appsettings import DEFAULT_ARM_ENDPOINT

if TYPE_CHECKING:
    from azure.core.credentials import AccessToken, TokenCredential

logger = logging.getLogger(__name__)

_Client = TypeVar("_Client")


class InsecureEndpointError(ValueError):
    """A plain-HTTP ARM endpoint that is not on the loopback interface."""


def endpoint_host(endpoint: str) -> str | None:
    """The host an http(s) URL unambiguously points at; None when it does not say it plainly.

    None for userinfo, a backslash, whitespace or a control character anywhere, an invalid
    port, or a host that urllib3 (the transport's parser) reads differently from `urlsplit`.
    """
    if "\\" in endpoint or any(ch.isspace() or ord(ch) < 0x20 or ch == "\x7f" for ch in endpoint):
        return None
    from urllib3.exceptions import LocationParseError
    from urllib3.util import parse_url

    try:
        parts = urlsplit(endpoint)
        parts.port  # noqa: B018 - raises ValueError for a port out of range
        transported = parse_url(endpoint)
    except (ValueError, LocationParseError):
        return None
    host = parts.hostname
    if not host or "@" in parts.netloc or transported.auth is not None:
        return None
    if (transported.host or "").strip("[]").lower() != host.lower():
        return None
    return host.lower()


def is_loopback_endpoint(endpoint: str) -> bool:
    """Whether an endpoint URL points at this machine (127.0.0.0/8, ::1 or localhost), and
    says so unambiguously (see `endpoint_host`)."""
    host = endpoint_host(endpoint)
    if host is None:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class StaticTokenCredential:
    """An offline credential for the local simulator: a fixed token that never expires soon."""

    def __init__(self, token: str = "local-simulator") -> None:
        self._token = token

    def get_token(
        self,
        *scopes: str,
        claims: str | None = None,
        tenant_id: str | None = None,
        enable_cae: bool = False,
        **kwargs: Any,
    ) -> AccessToken:
        """A token valid for an hour from now."""
        from azure.core.credentials import AccessToken

        return AccessToken(self._token, int(time.time()) + 3600)


class ArmConnection:
    """Credential and cached management clients for one ARM endpoint."""

    def __init__(
        self,
        endpoint: str = DEFAULT_ARM_ENDPOINT,
        *,
        credential: TokenCredential | None = None,
        retry_total: int = 3,
        retry_backoff_factor: float = 0.8,
        retry_backoff_max: float = 60.0,
        polling_interval: float = 30.0,
    ) -> None:
        endpoint = (endpoint or DEFAULT_ARM_ENDPOINT).rstrip("/")
        scheme = urlsplit(endpoint).scheme.lower()
        if scheme not in {"http", "https"}:
            raise ValueError(f"ARM endpoint must be an http(s) URL, got {endpoint!r}")
        if endpoint_host(endpoint) is None:
            raise ValueError(
                f"ARM endpoint {endpoint!r} must name its host plainly: no user name, "
                "backslash, whitespace or control character, and a valid port."
            )
        self.local = scheme == "http"
        if self.local and not is_loopback_endpoint(endpoint):
            raise InsecureEndpointError(
                f"Refusing plain-HTTP ARM endpoint {endpoint!r}: authentication can only be "
                "turned off for the local simulator on a loopback address (127.0.0.1, "
                "localhost); use https for any other host."
            )
        self.endpoint = endpoint
        self.retry_total = retry_total
        self.retry_backoff_factor = retry_backoff_factor
        self.retry_backoff_max = retry_backoff_max
        self.polling_interval = polling_interval
        self._credential = credential
        self._clients: dict[tuple[type[Any], str], Any] = {}
        self._lock = threading.Lock()

    @property
    def credential(self) -> TokenCredential:
        """The process's credential, created on first use."""
        with self._lock:
            return self._credential_locked()

    def _credential_locked(self) -> TokenCredential:
        if self._credential is None:
            if self.local:
                self._credential = StaticTokenCredential()
            else:
                from azure.identity import DefaultAzureCredential

                self._credential = DefaultAzureCredential()
        return self._credential

    def client(self, client_cls: type[_Client], subscription_id: str) -> _Client:
        """The cached management client of this class for a subscription (created lazily)."""
        cache_key = (client_cls, subscription_id.lower())
        with self._lock:
            cached = self._clients.get(cache_key)
            if cached is None:
                factory: Any = client_cls
                cached = factory(
                    self._credential_locked(), subscription_id, **self._client_options()
                )
                self._clients[cache_key] = cached
                logger.debug("created %s for subscription %s", client_cls.__name__, subscription_id)
            return cast(_Client, cached)

    def _client_options(self) -> dict[str, Any]:
        options: dict[str, Any] = {
            "base_url": self.endpoint,
            "retry_total": self.retry_total,
            # azure-core caps status retries (429/5xx) at 3 separately; follow retry_total.
            "retry_status": self.retry_total,
            "retry_backoff_factor": self.retry_backoff_factor,
            "retry_backoff_max": self.retry_backoff_max,
            "polling_interval": self.polling_interval,
        }
        if self.local:
            from azure.core.pipeline.policies import SansIOHTTPPolicy

            # The base SansIO policy does nothing: no Authorization header over loopback HTTP.
            options["authentication_policy"] = SansIOHTTPPolicy()
        return options

    def get_json(self, url: str, subscription_id: str) -> tuple[int, dict[str, Any]]:
        """GET an absolute ARM URL (e.g. a saved `Azure-AsyncOperation` URL) through the pipeline.

        Uses the subscription's resource client, so authentication, retries and throttling
        handling are those of every other call. Returns the status and the JSON body ({} if
        empty).
        """
        if urlsplit(url).netloc.lower() != urlsplit(self.endpoint).netloc.lower():
            raise ValueError(f"{url!r} is not on the ARM endpoint {self.endpoint!r}")
        from azure.core.rest import HttpRequest
        from azure.mgmt.resource.resources import ResourceManagementClient

        client = self.client(ResourceManagementClient, subscription_id)
        response = client.send_request(HttpRequest("GET", url))
        body = response.json() if response.content else {}
        return response.status_code, body if isinstance(body, dict) else {"value": body}

    def close(self) -> None:
        """Close every cached client (their HTTP sessions)."""
        with self._lock:
            clients = list(self._clients.values())
            self._clients.clear()
        for client in clients:
            client.close()

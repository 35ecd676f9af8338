"""HTTP client of the function app's API (`/api/platforms...`, the app's HTTP contract).

Synchronous and dependency-free (the standard library's urllib): a CLI makes one request at a
time. Every non-2xx answer becomes an `ApiError` carrying the contract's error envelope (code,
message, details with targets); an unreachable server becomes an `ApiConnectionError` naming the
URL. The function key travels only in the `x-functions-key` header and only to the app's own
origin.
"""

from __future__ import annotations

import http.client
import ipaddress
import json
import logging
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

from osctl import __version__
from osctl.redact import redact_url

logger = logging.getLogger(__name__)

DEFAULT_URL = "http://127.0.0.1:7071"
DEFAULT_TIMEOUT = 30.0
KEY_HEADER = "x-functions-key"

JSONObject = dict[str, Any]

_BODY_SNIPPET = 200


@dataclass(frozen=True)
class ErrorDetail:
    """One entry of the envelope's `details`: which field is wrong and why."""

    target: str | None
    message: str


class ApiError(Exception):
    """The API answered with an error status (4xx, 5xx) or with something that is not JSON."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        details: Sequence[ErrorDetail] = (),
        *,
        enveloped: bool = False,
    ) -> None:
        super().__init__(f"{status} {code}: {message}")
        # True when the app itself answered with the contract's error envelope (rather than a
        # gateway, the Functions host or a route that does not exist in this version).
        self.enveloped = enveloped
        self.status = status
        self.code = code
        self.message = message
        self.details = tuple(details)

    @property
    def is_client_error(self) -> bool:
        return 400 <= self.status < 500


class ApiConnectionError(Exception):
    """The server could not be reached (refused, unresolvable, reset, timed out)."""

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(f"could not reach {redact_url(url)}: {reason}")
        self.url = url
        self.reason = reason


@dataclass(frozen=True)
class Response:
    status: int
    headers: Mapping[str, str]
    body: Any


@dataclass(frozen=True)
class Accepted:
    """A 202: the operation runs on the server; `status_url` (its `Location`) follows it.

    `operation_id` is the app's id of the operation (`instance_id` for a cancel, which names
    the orchestration it stopped).
    """

    body: JSONObject
    operation_id: str | None = None
    status_url: str | None = None
    instance_id: str | None = None

    @classmethod
    def from_response(cls, response: Response) -> Accepted:
        body = response.body if isinstance(response.body, dict) else {}
        headers = {name.lower(): value for name, value in response.headers.items()}
        # An app from before the operation route answered with Durable's check-status body.
        status_url = headers.get("location") or body.get("statusQueryGetUri")
        operation_id = body.get("id")
        instance_id = body.get("instanceId")
        return cls(
            body=body,
            operation_id=str(operation_id) if operation_id else None,
            status_url=str(status_url) if status_url else None,
            instance_id=str(instance_id) if instance_id else None,
        )


class ApiClient:
    """The app's API at `base_url` (e.g. `https://myapp.azurewebsites.net`), with its key."""

    def __init__(
        self, base_url: str = DEFAULT_URL, key: str | None = None, timeout: float = DEFAULT_TIMEOUT
    ) -> None:
        self.base_url = normalize_base_url(base_url)
        self._key = key or None
        self._timeout = timeout
        # Redirects are not followed blindly: a 3xx would replay the key to another place.
        self._opener = urllib.request.build_opener(_NoRedirect())

    # --- the contract's routes -----------------------------------------------------------

    def list_platforms(self) -> JSONObject:
        return self._json("GET", "/api/platforms")

    def get_platform(self, solution_id: str) -> JSONObject:
        return self._json("GET", _platform_path(solution_id))

    def deploy(self, solution_id: str, spec: JSONObject) -> Accepted:
        return self._accepted("PUT", _platform_path(solution_id), spec)

    def plan(self, solution_id: str, spec: JSONObject) -> JSONObject:
        return self._json("POST", _platform_path(solution_id, "plan"), spec)

    def approve_upgrade(self, solution_id: str, environment: str | None = None) -> Accepted:
        """Let the platform's paused upgrade go on (`environment`: the one it must await)."""
        body = {"environment": environment} if environment else {}
        return self._accepted("POST", _platform_path(solution_id, "upgrade/approve"), body)

    def cancel(self, solution_id: str) -> Accepted:
        return self._accepted("POST", _platform_path(solution_id, "cancel"), None)

    def destroy(self, solution_id: str, environments: Sequence[str] | None = None) -> Accepted:
        path = _platform_path(solution_id)
        if environments:
            path += "?" + urlencode({"environments": ",".join(environments)})
        return self._accepted("DELETE", path, None)

    def scale(
        self, solution_id: str, *, capacity: int | None = None, delta: int | None = None
    ) -> JSONObject:
        if (capacity is None) == (delta is None):
            raise ValueError("give exactly one of capacity and delta")
        body = {"capacity": capacity} if capacity is not None else {"delta": delta}
        return self._json("POST", _platform_path(solution_id, "scale"), body)

    def scaling(self, solution_id: str) -> JSONObject:
        return self._json("GET", _platform_path(solution_id, "scaling"))

    def operation(self, url: str) -> tuple[int, JSONObject]:
        """An operation at the `Location` of a 202: (202 while it runs or 200 once it ended,
        the operation)."""
        response = self.request("GET", url)
        return response.status, _as_object(response)

    # --- plumbing --------------------------------------------------------------------------

    def _json(self, method: str, path: str, body: JSONObject | None = None) -> JSONObject:
        return _as_object(self.request(method, self.base_url + path, body))

    def _accepted(self, method: str, path: str, body: JSONObject | None) -> Accepted:
        return Accepted.from_response(self.request(method, self.base_url + path, body))

    def request(self, method: str, url: str, body: JSONObject | None = None) -> Response:
        headers = {"Accept": "application/json", "User-Agent": f"osctl/{__version__}"}
        if self._key and _same_origin(url, self.base_url):
            headers[KEY_HEADER] = self._key
        data = None
        if body is not None or method in {"PUT", "POST"}:
            data = json.dumps(body if body is not None else {}).encode()
            headers["Content-Type"] = "application/json"
        request = urllib.request.Request(url, data=data, headers=headers, method=method)
        shown = redact_url(url)
        started = time.monotonic()
        try:
            with self._opener.open(request, timeout=self._timeout) as answer:
                status = int(answer.status)
                raw = answer.read()
                answer_headers = dict(answer.headers.items())
        except urllib.error.HTTPError as err:
            logger.debug("%s %s -> %d", method, shown, err.code)
            if 300 <= err.code < 400:
                target = redact_url(err.headers.get("Location") or "?")
                raise ApiError(
                    err.code,
                    "UnexpectedRedirect",
                    f"the server redirected to {target}; check the URL",
                ) from None
            raise _error_from_answer(err.code, err.reason, err.read(), method, url) from None
        except urllib.error.URLError as err:
            raise ApiConnectionError(url, _reason(err.reason)) from None
        except TimeoutError:
            raise ApiConnectionError(url, f"no answer within {self._timeout:g}s") from None
        except (http.client.HTTPException, ConnectionError) as err:
            raise ApiConnectionError(url, _reason(err)) from None
        logger.debug(
            "%s %s -> %d in %.0f ms", method, shown, status, (time.monotonic() - started) * 1000
        )
        return Response(status, answer_headers, _decode(status, raw))


def normalize_base_url(url: str) -> str:
    """The app's origin (plus any path prefix), without a trailing `/` or `/api`.

    A URL without a scheme is https, unless its host is this machine (the local host, where
    `func start` and the project's own host serve plain HTTP): a key must not travel in clear.
    """
    url = url.strip()
    if "://" not in url:
        url = ("http://" if _is_loopback(url) else "https://") + url
    url = url.rstrip("/")
    if url.endswith("/api"):
        url = url[: -len("/api")]
    return url


def _is_loopback(address: str) -> bool:
    """Whether a scheme-less `host[:port][/path]` names this machine."""
    host = (urlsplit("//" + address).hostname or "").lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _platform_path(solution_id: str, action: str | None = None) -> str:
    path = "/api/platforms/" + quote(solution_id, safe="")
    return f"{path}/{action}" if action else path


def _same_origin(url: str, base_url: str) -> bool:
    one, other = urlsplit(url), urlsplit(base_url)
    return (one.scheme, one.netloc.lower()) == (other.scheme, other.netloc.lower())


def _reason(reason: object) -> str:
    if isinstance(reason, ConnectionRefusedError):
        return "connection refused"
    if isinstance(reason, TimeoutError):
        return "timed out"
    return str(reason) or type(reason).__name__


def _decode(status: int, raw: bytes) -> Any:
    if not raw.strip():
        return None
    try:
        return json.loads(raw)
    except ValueError:
        raise ApiError(
            status,
            "InvalidResponse",
            f"expected JSON but got: {_snippet(raw)}",
        ) from None


def _as_object(response: Response) -> JSONObject:
    if isinstance(response.body, dict):
        return response.body
    if response.body is None:
        return {}
    raise ApiError(
        response.status,
        "InvalidResponse",
        f"expected a JSON object but got {type(response.body).__name__}",
    )


def _error_from_answer(status: int, reason: str, raw: bytes, method: str, url: str) -> ApiError:
    try:
        body = json.loads(raw) if raw.strip() else None
    except ValueError:
        body = None
    envelope = body.get("error") if isinstance(body, dict) else None
    if isinstance(envelope, dict):
        details = [
            ErrorDetail(
                target=str(item["target"]) if item.get("target") is not None else None,
                message=str(item.get("message", "")),
            )
            for item in envelope.get("details") or []
            if isinstance(item, dict)
        ]
        return ApiError(
            status,
            str(envelope.get("code") or f"Http{status}"),
            str(envelope.get("message") or reason or f"HTTP {status}"),
            details,
            enveloped=True,
        )
    if status == 401:
        message = "unauthorized: the function key is missing or wrong (set --key or OSCTL_KEY)"
    elif status == 404 and not raw.strip():
        message = (
            f"not found: {method} {urlsplit(url).path} (is the URL right, and does this version "
            "of the app have that route?)"
        )
    else:
        message = f"HTTP {status} {reason}".strip()
        if raw.strip():
            message += f": {_snippet(raw)}"
    return ApiError(status, f"Http{status}", message)


def _snippet(raw: bytes) -> str:
    text = " ".join(raw.decode("utf-8", "replace").split())
    return text if len(text) <= _BODY_SNIPPET else text[:_BODY_SNIPPET] + "..."


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None

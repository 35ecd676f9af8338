"""What the engine takes and answers: a request, a response, and another party's interjection.

Plain data, independent of the HTTP framework: `server.py` turns aiohttp requests into
`SimRequest`s and `SimResponse`s back into aiohttp responses; tests build them directly.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass
class SimRequest:
    """An HTTP request as the engine sees it."""

    method: str
    path: str
    query: Mapping[str, str]
    body: bytes = b""
    base_url: str = "http://127.0.0.1"
    headers: Mapping[str, str] = field(default_factory=dict)

    def param(self, name: str) -> str | None:
        """A query parameter, matched case-insensitively."""
        lowered = name.lower()
        for query_key, value in self.query.items():
            if query_key.lower() == lowered:
                return value
        return None


@dataclass
class SimResponse:
    """What the engine answers: status, JSON body (None for no body) and headers."""

    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Interjection:
    """Something that happens just before the next `count` requests of `method` (or any, with
    `*`) whose lower-case path contains `path`: another party's change (a person at the portal,
    a policy) landing between two of the client's requests. In-process only (a test's code)."""

    method: str
    path: str
    action: Callable[[], None]
    count: int = 1

    def matches(self, request: SimRequest) -> bool:
        method = self.method.upper()
        return (method in {"*", request.method.upper()}) and (
            self.path.lower() in request.path.lower()
        )

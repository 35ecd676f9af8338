"""HTTP triggers on aiohttp: routes under the route prefix, ``func.HttpRequest`` in, response out.

Routes are the triggers' ASP.NET-style templates under ``/api/`` (``extensions.http.routePrefix``
in host.json). A route that matches but not for the request's method answers 404, as the
Functions host does. Auth levels are not enforced unless the host was started with
``--require-keys``: then a ``function`` level wants a host key or one of the function's own keys,
``admin`` the master key (see ``localdev.host.keys``). URLs are logged with ``code`` redacted;
bodies are never logged.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import azure.functions as func
from aiohttp import web

from localdev.host.app_loader import FunctionSpec, IndexedApp
from localdev.host.invoke import Invoker
from localdev.host.keys import AccessKeys, AuthLevel
from localdev.host.routes import RouteTemplate

logger = logging.getLogger(__name__)

_CODE_PARAM = re.compile(r"(?i)([?&]code=)[^&#]*")


def redact_url(url: str) -> str:
    """Hide the value of ``code=`` query parameters (function keys) in a URL for logging."""
    return _CODE_PARAM.sub(r"\1***", url)


@dataclass(frozen=True)
class HttpRoute:
    spec: FunctionSpec
    template: RouteTemplate
    methods: frozenset[str] | None
    auth_level: str


def route_prefix(host_json: dict[str, Any]) -> str:
    http = (host_json.get("extensions") or {}).get("http") or {}
    prefix = http.get("routePrefix", "api") if isinstance(http, dict) else "api"
    return str(prefix).strip("/")


def build_routes(app: IndexedApp) -> list[HttpRoute]:
    routes: list[HttpRoute] = []
    for spec in app.of_trigger("httpTrigger"):
        trigger = spec.trigger
        methods = trigger.get("methods")
        routes.append(
            HttpRoute(
                spec=spec,
                template=RouteTemplate.parse(str(trigger.get("route") or spec.name)),
                methods=frozenset(str(m).upper() for m in methods) if methods else None,
                auth_level=str(trigger.get("authLevel") or "function").lower(),
            )
        )
    routes.sort(key=lambda r: r.template.precedence)
    return routes


def to_aiohttp_response(result: Any) -> web.Response:
    """Convert what an HTTP function returned, as the worker's ``$return`` http binding does."""
    if result is None:
        return web.Response(status=204)
    if isinstance(result, func.HttpResponse):
        headers = {str(k): str(v) for k, v in result.headers.items()}
        if not any(k.lower() == "content-type" for k in headers):
            headers["Content-Type"] = f"{result.mimetype}; charset={result.charset}"
        return web.Response(status=result.status_code, body=result.get_body(), headers=headers)
    if isinstance(result, (bytes, bytearray)):
        return web.Response(status=200, body=bytes(result))
    if isinstance(result, str):
        return web.Response(status=200, text=result)
    raise TypeError(f"unsupported HTTP function result of type {type(result).__name__}")


class HttpTriggers:
    """Dispatches ``/<prefix>/...`` requests to the app's HTTP-triggered functions."""

    def __init__(
        self,
        app: IndexedApp,
        invoker: Invoker,
        *,
        prefix: str,
        keys: AccessKeys,
        require_keys: bool,
        client_binding: Callable[[], str],
    ) -> None:
        self._routes = build_routes(app)
        self._invoker = invoker
        self.prefix = prefix
        self._keys = keys
        self._require_keys = require_keys
        self._client_binding = client_binding

    @property
    def routes(self) -> list[HttpRoute]:
        return list(self._routes)

    def add_routes(self, app: web.Application) -> None:
        """Route every path not taken by an earlier route here (register this last).

        The prefix is matched by ``handle``, not by aiohttp, because aiohttp matches literals
        case-sensitively and ASP.NET Core routing, which the Functions host uses, does not.
        ``(?s:.*)``: a decoded CR or LF in the path must reach the routes (and the app) too.
        """
        app.router.add_route("*", "/{tail:(?s:.*)}", self.handle)

    def _tail(self, request: web.Request) -> str | None:
        """The path after the prefix (any case), still percent-encoded; None without the prefix.

        Route templates split it into segments before decoding each one (as ASP.NET Core does):
        aiohttp's `match_info` is decoded already, and decoding that again would turn `%252F`
        into a `/` and `%2F` into a segment break.
        """
        raw = request.rel_url.raw_path
        start = f"/{self.prefix}/" if self.prefix else "/"
        if raw[: len(start)].lower() != start.lower():
            return None
        return raw[len(start) :]

    def _authorized(self, route: HttpRoute, request: web.Request) -> bool:
        if not self._require_keys or route.auth_level == "anonymous":
            return True
        level = AuthLevel.ADMIN if route.auth_level == "admin" else AuthLevel.FUNCTION
        return self._keys.allows(request, level, function=route.spec.name)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        tail = self._tail(request)
        if tail is None:
            return web.Response(status=404)
        method = request.method.upper()
        for route in self._routes:
            values = route.template.match(tail)
            if values is None or (route.methods is not None and method not in route.methods):
                continue
            if not self._authorized(route, request):
                logger.info("401 %s %s", method, redact_url(str(request.rel_url)))
                return web.Response(status=401)
            return await self._invoke(route, request, values)
        return web.Response(status=404)

    async def _invoke(
        self, route: HttpRoute, request: web.Request, route_params: dict[str, str]
    ) -> web.StreamResponse:
        body = await request.read()
        http_request = func.HttpRequest(
            method=request.method.upper(),
            url=str(request.url),
            headers=dict(request.headers.items()),
            params={k: request.query.getone(k) for k in request.query},
            route_params=route_params,
            body=body,
        )
        arguments: dict[str, Any] = {route.spec.trigger_name: http_request}
        for binding in route.spec.bindings:
            if binding.get("type") == "durableClient":
                arguments[str(binding["name"])] = self._client_binding()
        try:
            result = await self._invoker.invoke(
                route.spec,
                arguments,
                reason="This function was programmatically called via the host APIs.",
            )
            response = to_aiohttp_response(result)
        # The Functions host answers 500 when the function raises; the error is logged, not lost.
        except Exception:
            logger.exception(
                "Function '%s' failed for %s %s",
                route.spec.name,
                request.method,
                redact_url(str(request.rel_url)),
            )
            return web.Response(status=500)
        logger.info(
            "%s %s -> %d", request.method, redact_url(str(request.rel_url)), response.status
        )
        return response

"""The simulator's HTTP front: aiohttp serving the ARM engine and the `/_sim` admin API.

`SimulatorServer` runs either on the caller's event loop (`serve`, used by the CLI) or in a
background thread with its own loop (`start`/`stop`, used by tests and benchmarks). It only
binds loopback addresses. With a state file, the store is loaded at start and saved atomically
shortly after every change, and on stop.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
import threading
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from localdev.armsim import backend_health
from localdev.armsim.authorization import Permissions
from localdev.armsim.config import SimConfig
from localdev.armsim.engine import Engine
from localdev.armsim.faults import parse_rule
from localdev.armsim.messages import Interjection, SimRequest, SimResponse

logger = logging.getLogger(__name__)

_SAVE_INTERVAL_SECONDS = 0.5
#: The API version of `call` when none is given (any `yyyy-MM-dd` works).
OPERATOR_API_VERSION = "2024-05-01"


#: .NET's WebException text for an HTTP 503, as Windows PowerShell's Invoke-RestMethod shows it
#: (the health gate's default failure).
UNAVAILABLE = "The remote server returned an error: (503) Server Unavailable."


def is_loopback_host(host: str) -> bool:
    """Whether a host name or address is on this machine's loopback."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _json_response(status: int, body: Any, headers: dict[str, str] | None = None) -> web.Response:
    if body is None:
        return web.Response(status=status, headers=headers)
    return web.Response(
        status=status,
        body=json.dumps(body).encode(),
        content_type="application/json",
        headers=headers,
    )


class SimulatorServer:
    """One ARM simulator bound to a loopback port."""

    def __init__(
        self, config: SimConfig | None = None, *, host: str = "127.0.0.1", port: int = 0
    ) -> None:
        if not is_loopback_host(host):
            raise ValueError(f"the ARM simulator only listens on loopback addresses, not {host!r}")
        self.config = config or SimConfig()
        self.engine = Engine(self.config)
        self.host = host
        self.port = port
        self._runner: web.AppRunner | None = None
        self._saver: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._startup_error: BaseException | None = None

    @property
    def url(self) -> str:
        """The base URL (the `ARM_ENDPOINT` to give clients)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    # ---------------------------------------------------------------- lifecycle

    def _app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/_sim/{action:.*}", self._admin)
        app.router.add_route("*", "/{tail:.*}", self._arm)
        return app

    async def open(self) -> None:
        """Load state, bind the port and start serving on the running loop."""
        if self.config.state_file is not None:
            self.engine.store.load(self.config.state_file)
        self._runner = web.AppRunner(self._app(), access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        server = site._server
        assert server is not None
        sockets = getattr(server, "sockets", None) or []
        self.port = int(sockets[0].getsockname()[1])
        if self.config.state_file is not None:
            self._saver = asyncio.create_task(self._save_periodically())
        logger.info("ARM simulator serving on %s", self.url)

    async def close(self) -> None:
        """Stop serving and write the state file one last time."""
        if self._saver is not None:
            self._saver.cancel()
            await asyncio.gather(self._saver, return_exceptions=True)
            self._saver = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        self.save()

    def save(self) -> None:
        """Write the state file now (no-op without one)."""
        if self.config.state_file is not None:
            self.engine.store.save(self.config.state_file)

    async def _save_periodically(self) -> None:
        while True:
            await asyncio.sleep(_SAVE_INTERVAL_SECONDS)
            if self.engine.store.dirty:
                self.save()

    async def serve(self, on_ready: Callable[[str], None], stop: asyncio.Event) -> None:
        """Serve on the current loop until `stop` is set (the CLI's mode)."""
        await self.open()
        on_ready(self.url)
        try:
            await stop.wait()
        finally:
            await self.close()

    def start(self) -> str:
        """Serve from a background thread; returns the base URL once the port is bound."""
        ready = threading.Event()
        self._thread = threading.Thread(
            target=self._run_in_thread, args=(ready,), name="armsim", daemon=True
        )
        self._thread.start()
        ready.wait(30)
        if self._startup_error is not None:
            raise RuntimeError("the ARM simulator failed to start") from self._startup_error
        return self.url

    def _run_in_thread(self, ready: threading.Event) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self.open())
        except OSError as error:
            self._startup_error = error
            ready.set()
            loop.close()
            return
        ready.set()
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(self.close())
            loop.close()

    def stop(self) -> None:
        """Stop a server started with `start` and wait for its thread."""
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(30)
            self._thread = None
            self._loop = None

    # ---------------------------------------------------------------- handlers

    async def _arm(self, request: web.Request) -> web.Response:
        body = await request.read()
        sim_request = SimRequest(
            method=request.method,
            path=request.path,
            query=dict(request.query),
            body=body,
            base_url=f"{request.scheme}://{request.host}",
            headers={k.lower(): v for k, v in request.headers.items()},
        )
        response = self.engine.handle(sim_request)
        return _json_response(response.status, response.body, response.headers)

    async def _admin(self, request: web.Request) -> web.Response:
        action = request.match_info["action"].strip("/").lower()
        method = request.method.upper()
        handler = self._admin_routes().get((method, action))
        if handler is None:
            return _json_response(
                404,
                {
                    "error": {
                        "code": "NotFound",
                        "message": f"no admin route {method} /_sim/{action}",
                    }
                },
            )
        payload: dict[str, Any] = {}
        if method in {"POST", "PUT", "PATCH"} and request.can_read_body:
            try:
                loaded = await request.json()
            except ValueError:
                return _json_response(
                    400, {"error": {"code": "InvalidJson", "message": "body is not JSON"}}
                )
            payload = loaded if isinstance(loaded, dict) else {}
        try:
            result = await handler(request, payload)
        # A value of the wrong type (`null`, a list, an unknown rule key) is a bad setting too.
        except (ValueError, TypeError) as error:
            return _json_response(400, {"error": {"code": "InvalidSetting", "message": str(error)}})
        return _json_response(200, result)

    def _admin_routes(
        self,
    ) -> dict[tuple[str, str], Callable[[web.Request, dict[str, Any]], Awaitable[Any]]]:
        async def health(request: web.Request, payload: dict[str, Any]) -> Any:
            return {"status": "ok"}

        async def resources(request: web.Request, payload: dict[str, Any]) -> Any:
            return {"value": self.engine.resources_json(request.query.get("type"))}

        async def requests(request: web.Request, payload: dict[str, Any]) -> Any:
            return {"value": self.engine.requests_json(int(request.query.get("since", "0")))}

        async def operations(request: web.Request, payload: dict[str, Any]) -> Any:
            with self.engine.store.lock:
                return {"value": [op.to_json() for op in self.engine.store.operations.values()]}

        async def counters(request: web.Request, payload: dict[str, Any]) -> Any:
            return self.engine.counters_json()

        async def reset(request: web.Request, payload: dict[str, Any]) -> Any:
            self.engine.reset()
            return {"status": "reset"}

        async def get_faults(request: web.Request, payload: dict[str, Any]) -> Any:
            return self._faults_json()

        async def set_faults(request: web.Request, payload: dict[str, Any]) -> Any:
            rate = float(payload.get("rate", self.config.fault_rate))
            self.set_faults(rate, int(payload.get("seed", self.config.seed)))
            for rule in payload.get("rules", []):
                self.add_fault_rule(**rule)
            return self._faults_json()

        async def clock(request: web.Request, payload: dict[str, Any]) -> Any:
            self.engine.fast_forward(float(payload.get("advance", 0)))
            return {"offset": self.engine.clock_offset, "now": self.engine.clock()}

        async def get_config(request: web.Request, payload: dict[str, Any]) -> Any:
            return self.config.to_json()

        async def set_config(request: web.Request, payload: dict[str, Any]) -> Any:
            self.configure(payload)
            return self.config.to_json()

        async def save(request: web.Request, payload: dict[str, Any]) -> Any:
            self.save()
            return {"saved": self.config.state_file is not None}

        async def get_permissions(request: web.Request, payload: dict[str, Any]) -> Any:
            return self._permissions_json()

        async def set_permissions(request: web.Request, payload: dict[str, Any]) -> Any:
            self.set_permissions(Permissions.from_json(payload))
            return self._permissions_json()

        async def clear_permissions(request: web.Request, payload: dict[str, Any]) -> Any:
            self.set_permissions(None)
            return self._permissions_json()

        async def get_backend_health(request: web.Request, payload: dict[str, Any]) -> Any:
            with self.engine.store.lock:
                return {"servers": dict(self.engine.store.backend_health)}

        async def get_health_gate(request: web.Request, payload: dict[str, Any]) -> Any:
            with self.engine.store.lock:
                return {"failing": dict(self.engine.store.health_gate_failures)}

        async def set_health_gate(request: web.Request, payload: dict[str, Any]) -> Any:
            failing = payload.get("failing", True)
            reason = str(payload.get("reason") or UNAVAILABLE) if failing else None
            self.fail_health_gate(str(payload["address"]), reason)
            return await get_health_gate(request, payload)

        async def set_backend_health(request: web.Request, payload: dict[str, Any]) -> Any:
            health = payload.get("health")
            self.set_backend_health(str(payload["address"]), str(health) if health else None)
            return await get_backend_health(request, payload)

        return {
            ("GET", "health"): health,
            ("GET", "resources"): resources,
            ("GET", "requests"): requests,
            ("GET", "operations"): operations,
            ("GET", "counters"): counters,
            ("POST", "reset"): reset,
            ("GET", "faults"): get_faults,
            ("PUT", "faults"): set_faults,
            ("POST", "faults"): set_faults,
            ("GET", "config"): get_config,
            ("PATCH", "config"): set_config,
            ("PUT", "config"): set_config,
            ("POST", "save"): save,
            ("POST", "clock"): clock,
            ("GET", "permissions"): get_permissions,
            ("PUT", "permissions"): set_permissions,
            ("DELETE", "permissions"): clear_permissions,
            ("GET", "backendhealth"): get_backend_health,
            ("PUT", "backendhealth"): set_backend_health,
            ("GET", "healthgate"): get_health_gate,
            ("PUT", "healthgate"): set_health_gate,
        }

    # ---------------------------------------------------------------- in-process API

    def resources(self, type_name: str | None = None) -> list[dict[str, Any]]:
        """Every resource (optionally of one type) with state, body and creation count."""
        return self.engine.resources_json(type_name)

    def requests(self, since: int = 0) -> list[dict[str, Any]]:
        """The request log after sequence number `since`."""
        return self.engine.requests_json(since)

    def counters(self) -> dict[str, Any]:
        """The counters."""
        return self.engine.counters_json()

    def creation_count(self, resource_id: str) -> int:
        """How many times ARM answered 201 Created for this id."""
        with self.engine.store.lock:
            return self.engine.store.creation_count(resource_id)

    def reset(self) -> None:
        """Forget all resources, requests, counters, buckets and fault attempts."""
        self.engine.reset()

    def set_faults(self, rate: float, seed: int | None = None) -> None:
        """Change the fault rate (and seed); attempt numbers restart so runs repeat."""
        changes: dict[str, object] = {"faultRate": rate}
        if seed is not None:
            changes["seed"] = seed
        with self.engine.store.lock:
            self.config.update(changes)
            self.engine.faults.reset()

    def add_fault_rule(
        self, method: str = "*", path: str = "", kind: str = "500", count: int = 1
    ) -> None:
        """Fail the next `count` requests of `method` whose path contains `path` with `kind`."""
        rule = parse_rule({"method": method, "path": path, "kind": kind, "count": count})
        with self.engine.store.lock:
            self.engine.faults.rules.append(rule)

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        api_version: str = OPERATOR_API_VERSION,
        query: dict[str, str] | None = None,
    ) -> SimResponse:
        """An ARM request made in-process by another party (someone at the portal), through
        the same engine: logged, authorized against the current permissions, never interjected.
        """
        request = SimRequest(
            method=method,
            path=path,
            query={"api-version": api_version, **(query or {})},
            body=json.dumps(body).encode() if body is not None else b"",
            base_url=self.url,
            headers={"x-ms-client-request-id": "armsim-operator"},
        )
        return self.engine.handle(request, interject=False)

    def before(
        self,
        method: str,
        path: str,
        action: Callable[[SimulatorServer], None],
        count: int = 1,
    ) -> None:
        """Run `action(self)` just before the next `count` requests of `method` (`*`: any)
        whose path contains `path` (case-insensitive); the request waits for it. For changes
        another party makes between two of the client's requests (`call` makes them)."""
        with self.engine.store.lock:
            self.engine.interjections.append(
                Interjection(method, path, lambda: action(self), count)
            )

    def fast_forward(self, seconds: float) -> None:
        """Move the simulator's clock forward (operations due by then complete)."""
        self.engine.fast_forward(seconds)

    def permissions(self) -> Permissions | None:
        """The caller's role now (None: every action allowed)."""
        with self.engine.store.lock:
            return self.engine.permissions

    def set_permissions(self, permissions: Permissions | None) -> None:
        """Authorize every request against a role from now on (None: allow everything).

        `reset()` goes back to the configured `permissions_file`.
        """
        with self.engine.store.lock:
            self.engine.permissions = permissions

    def set_backend_health(self, address: str, health: str | None) -> None:
        """What the gateways' backend health says of the server at `address` (`Up`, `Down`,
        `Unknown`, `Partial`, `Draining`), over what the simulator derives; None clears it."""
        if health is not None and health not in backend_health.HEALTH_VALUES:
            raise ValueError(f"health must be one of {', '.join(backend_health.HEALTH_VALUES)}")
        with self.engine.store.lock:
            if health is None:
                self.engine.store.backend_health.pop(address.lower(), None)
            else:
                self.engine.store.backend_health[address.lower()] = health

    def fail_health_gate(self, address: str, reason: str | None = UNAVAILABLE) -> None:
        """Make the setup script's health gate fail on the server at `address` after its next
        upgrade (the probe's error as `reason`); None lets it pass again."""
        with self.engine.store.lock:
            if reason is None:
                self.engine.store.health_gate_failures.pop(address.lower(), None)
            else:
                self.engine.store.health_gate_failures[address.lower()] = reason

    def write_only_digest(self, resource_id: str, dotted: str) -> str | None:
        """SHA-256 (hex) of the last write-only value written at `dotted` (tests compare it)."""
        with self.engine.store.lock:
            resource = self.engine.store.get(resource_id)
            digests = resource.extra.get("writeOnly", {}) if resource is not None else {}
            value = digests.get(dotted)
            return str(value) if value is not None else None

    def _permissions_json(self) -> dict[str, Any]:
        current = self.permissions()
        return {"permissions": current.to_json() if current is not None else None}

    def _faults_json(self) -> dict[str, Any]:
        with self.engine.store.lock:
            return {
                "rate": self.config.fault_rate,
                "seed": self.config.seed,
                "rules": [rule.to_json() for rule in self.engine.faults.rules],
            }

    def configure(self, changes: dict[str, object]) -> None:
        """Apply settings in the admin API's JSON shape (`latencyScale`, `vcpuQuota`, ...)."""
        with self.engine.store.lock:
            self.config.update(changes)
            self.engine.throttler.reset()

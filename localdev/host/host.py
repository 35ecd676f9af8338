"""The local host: indexes the app, opens the task hub, serves HTTP and runs the Durable engine."""

from __future__ import annotations

import asyncio
import logging
import os

from aiohttp import web

from localdev.host.app_loader import FunctionSpec, IndexedApp, index_app
from localdev.host.durable.api import DurableHttpApi
from localdev.host.durable.engine import DurableEngine
from localdev.host.durable.store import TaskHubStore
from localdev.host.http import HttpTriggers, redact_url, route_prefix
from localdev.host.invoke import Invoker
from localdev.host.keys import KEYS_SETTING, AuthLevel
from localdev.host.settings import HostConfig, SettingsError
from localdev.host.timers import TimerTriggers

logger = logging.getLogger(__name__)

#: How long a stopping host lets requests still open finish before it closes them.
SHUTDOWN_GRACE_SECONDS = 5.0

_SUPPORTED_TRIGGERS = frozenset(
    {"httpTrigger", "orchestrationTrigger", "activityTrigger", "entityTrigger", "timerTrigger"}
)


def _reset_sdk_client_session() -> None:
    """Drop the Durable SDK's module-level HTTP session if another event loop created it.

    The SDK keeps one ``aiohttp.ClientSession`` (and an ``asyncio.Lock``) per process; a host
    started on a new loop (each test has its own) must not reuse one bound to a closed loop.
    """
    from azure.durable_functions.models.utils import http_utils

    session = http_utils._client_session
    if session is not None and getattr(session, "_loop", None) is not asyncio.get_running_loop():
        http_utils._client_session = None
    http_utils._session_lock = asyncio.Lock()


async def _close_sdk_client_session() -> None:
    from azure.durable_functions.models.utils import http_utils

    session = http_utils._client_session
    if session is not None and getattr(session, "_loop", None) is asyncio.get_running_loop():
        await session.close()
        http_utils._client_session = None


class LocalHost:
    """One running function app. ``await start()``, use ``base_url``, ``await stop()``."""

    def __init__(
        self,
        config: HostConfig,
        *,
        host: str = "127.0.0.1",
        port: int = 7071,
        record_episodes: bool = False,
    ) -> None:
        self.config = config
        self._record_episodes = record_episodes
        self.host = host
        self.port = port
        self.app: IndexedApp | None = None
        self.store: TaskHubStore | None = None
        self.engine: DurableEngine | None = None
        self.api: DurableHttpApi | None = None
        self.http: HttpTriggers | None = None
        self.timers: TimerTriggers | None = None
        self._invoker: Invoker | None = None
        self._runner: web.AppRunner | None = None
        self._background: set[asyncio.Task[None]] = set()

    @property
    def base_url(self) -> str:
        host = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host
        return f"http://{host}:{self.port}"

    def client_binding(self) -> str:
        assert self.api is not None
        return self.api.client_binding()

    async def start(self) -> None:
        config = self.config
        self.app = index_app(config.app_dir, os.environ)
        for spec in self.app.functions:
            if spec.trigger_type not in _SUPPORTED_TRIGGERS:
                logger.warning(
                    "Function '%s' has a %s, which the local host does not run",
                    spec.name,
                    spec.trigger_type,
                )
            for binding in spec.unsupported_bindings:
                logger.warning(
                    "Function '%s' has a %s, which the local host does not support: "
                    "the function fails when it runs",
                    spec.name,
                    binding,
                )
        unknown = sorted(name for name in config.keys.functions if self.app.get(name) is None)
        if unknown:
            raise SettingsError(
                f"{KEYS_SETTING} has keys for {', '.join(unknown)}, which the app does not have"
            )
        timer_specs = self.app.of_trigger("timerTrigger")
        self.store = TaskHubStore(config.hub_path)
        self._invoker = Invoker(str(config.app_dir))
        self.engine = DurableEngine(
            self.store,
            self.app,
            self._invoker,
            max_activities=config.max_concurrent_activities,
            max_orchestrators=config.max_concurrent_orchestrators,
            record_episodes=self._record_episodes,
            versioning=config.versioning,
        )
        self.api = DurableHttpApi(
            self.engine,
            config.hub_name,
            keys=config.keys,
            require_keys=config.require_keys,
            origin=lambda: self.base_url,
        )
        self.http = HttpTriggers(
            self.app,
            self._invoker,
            prefix=route_prefix(config.host_json),
            keys=config.keys,
            require_keys=config.require_keys,
            client_binding=self.client_binding,
        )
        self.timers = TimerTriggers(timer_specs, self._invoker, self.store, self.client_binding)

        web_app = web.Application(client_max_size=100 * 1024 * 1024)
        self.api.add_routes(web_app)
        web_app.router.add_get("/admin/host/status", self._host_status)
        web_app.router.add_get("/admin/functions", self._list_functions)
        web_app.router.add_post("/admin/functions/{name}", self._invoke_function)
        web_app.router.add_get("/", self._home)
        self.http.add_routes(web_app)
        # aiohttp waits 60 s by default for requests still open when the host stops; a
        # request waiting on an orchestration would hold the stop that long.
        self._runner = web.AppRunner(
            web_app, access_log=None, shutdown_timeout=SHUTDOWN_GRACE_SECONDS
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        addresses = self._runner.addresses
        if addresses:
            self.port = int(addresses[0][1])
        _reset_sdk_client_session()
        await self.engine.start()
        await self.timers.start()
        logger.info("Host started on %s (task hub %s)", self.base_url, config.hub_name)

    async def stop(self) -> None:
        if self.timers is not None:
            await self.timers.stop()
        if self.engine is not None:
            await self.engine.stop()
        if self._runner is not None:
            await self._runner.cleanup()
        await _close_sdk_client_session()
        if self._invoker is not None:
            self._invoker.close()
        if self.store is not None:
            self.store.close()

    def describe_functions(self) -> list[str]:
        """Lines like ``func start`` prints: each function with its route or trigger."""
        assert self.app is not None
        assert self.http is not None
        lines: list[str] = []
        routes = {route.spec.name: route for route in self.http.routes}
        for spec in self.app.functions:
            route = routes.get(spec.name)
            if route is not None:
                methods = ",".join(sorted(route.methods)) if route.methods else "*"
                prefix = f"/{self.http.prefix}" if self.http.prefix else ""
                url = f"{self.base_url}{prefix}/{route.template.template.strip('/')}"
                lines.append(f"{spec.name}: [{methods}] {url}")
            elif spec.trigger_type == "timerTrigger":
                lines.append(f"{spec.name}: timerTrigger ({spec.trigger.get('schedule')})")
            else:
                lines.append(f"{spec.name}: {spec.trigger_type}")
        return lines

    # --- admin endpoints -------------------------------------------------------------------

    def _admin_allowed(self, request: web.Request) -> bool:
        if not self.config.require_keys:
            return True
        return self.config.keys.allows(request, AuthLevel.ADMIN)

    async def _home(self, request: web.Request) -> web.Response:
        return web.Response(text="Your Functions host (localdev) is up and running.\n")

    async def _host_status(self, request: web.Request) -> web.Response:
        return web.json_response({"state": "Running", "hubName": self.config.hub_name})

    async def _list_functions(self, request: web.Request) -> web.Response:
        if not self._admin_allowed(request):
            return web.Response(status=401)
        assert self.app is not None
        functions = [
            {
                "name": spec.name,
                "trigger": spec.trigger_type,
                "rawBindings": spec.raw_bindings,
                "config": {"bindings": spec.bindings},
            }
            for spec in self.app.functions
        ]
        return web.json_response(functions)

    async def _invoke_function(self, request: web.Request) -> web.Response:
        """``POST /admin/functions/<name>`` runs a non-HTTP function now, as Core Tools does."""
        if not self._admin_allowed(request):
            return web.Response(status=401)
        assert self.app is not None
        assert self.timers is not None
        spec: FunctionSpec | None = self.app.get(request.match_info["name"])
        if spec is None:
            return web.Response(status=404)
        if spec.trigger_type != "timerTrigger":
            return web.json_response(
                {"error": f"{spec.trigger_type} functions cannot be invoked this way"}, status=400
            )
        logger.info("Admin invocation of '%s' (%s)", spec.name, redact_url(str(request.rel_url)))
        task = asyncio.get_running_loop().create_task(self.timers.fire(spec, False, None, ""))
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return web.Response(status=202)

"""The Durable extension's HTTP API: the SDK client's RPC endpoint and the public webhooks.

Two mounts share the same handlers:

- ``/durabletask/`` is the ``rpcBaseUrl`` the durable client binding hands the SDK. The SDK posts
  bodies as a JSON string literal wrapping the JSON text (``json=df_dumps(value)``), so they are
  decoded once to get the text to store.
- ``/runtime/webhooks/durabletask/`` is the public API behind ``create_check_status_response``'s
  URLs; bodies there are plain JSON. With ``--require-keys`` it wants the ``durabletask_extension``
  system key (or the master key), as in Azure, and the URLs the binding hands out carry it.

Status codes follow the extension: status 202 (with ``Location`` and ``Retry-After``) while an
instance runs, 200 when it is done, 404 when unknown; raise event 202/404/410; start 202, 400 with
``ExceptionMessage`` when the id is taken by a running instance.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any
from urllib.parse import quote

from aiohttp import web

from localdev.host.durable.engine import DurableEngine
from localdev.host.durable.errors import (
    InstanceExistsError,
    InstanceGoneError,
    InstanceNotFoundError,
    UnknownFunctionError,
)
from localdev.host.durable.history import (
    RUNNING_STATUSES,
    TERMINAL_STATUSES,
    event_name,
    format_status_time,
    format_timestamp,
    parse_time,
)
from localdev.host.durable.store import InstanceRow
from localdev.host.keys import DURABLE_SYSTEM_KEY, AccessKeys, AuthLevel

logger = logging.getLogger(__name__)

RPC_PREFIX = "/durabletask"
WEBHOOK_PREFIX = "/runtime/webhooks/durabletask"
_VALID_STATUSES = frozenset(
    {"Pending", "Running", "Completed", "ContinuedAsNew", "Failed", "Terminated", "Suspended"}
)

_LOOPBACK = frozenset({"127.0.0.1", "::1", "::ffff:127.0.0.1"})

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _json_or_text(text: str | None) -> Any:
    if text is None:
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


class DurableHttpApi:
    """Builds the durable client binding and serves the extension's HTTP API."""

    def __init__(
        self,
        engine: DurableEngine,
        hub_name: str,
        *,
        keys: AccessKeys,
        require_keys: bool,
        origin: Callable[[], str],
    ) -> None:
        self.engine = engine
        self.hub_name = hub_name
        self._keys = keys
        self._require_keys = require_keys
        self._origin = origin
        self._bindings: dict[str, str] = {}

    # --- the binding -----------------------------------------------------------------------

    def _query_suffix(self) -> str:
        suffix = f"taskHub={quote(self.hub_name)}&connection=Storage"
        if self._require_keys:
            suffix += f"&code={quote(self._keys.durable_system_key)}"
        return suffix

    def management_urls(self, origin: str | None = None) -> dict[str, str]:
        base = f"{origin or self._origin()}{WEBHOOK_PREFIX}/instances/INSTANCEID"
        query = self._query_suffix()
        return {
            "id": "INSTANCEID",
            "statusQueryGetUri": f"{base}?{query}",
            "sendEventPostUri": f"{base}/raiseEvent/{{eventName}}?{query}",
            "terminatePostUri": f"{base}/terminate?reason={{text}}&{query}",
            "rewindPostUri": f"{base}/rewind?reason={{text}}&{query}",
            "purgeHistoryDeleteUri": f"{base}?{query}",
            "restartPostUri": f"{base}/restart?{query}",
            "suspendPostUri": f"{base}/suspend?reason={{text}}&{query}",
            "resumePostUri": f"{base}/resume?reason={{text}}&{query}",
        }

    def client_binding(self) -> str:
        """The ``durableClient`` binding value the SDK's client is constructed from (built once
        per origin: every HTTP trigger with a durable client asks for it)."""
        origin = self._origin()
        cached = self._bindings.get(origin)
        if cached is None:
            cached = self._bindings[origin] = self._client_binding(origin)
        return cached

    def _client_binding(self, origin: str) -> str:
        code = f"?code={quote(self._keys.durable_system_key)}" if self._require_keys else ""
        creation = f"{origin}{WEBHOOK_PREFIX}/orchestrators/{{functionName}}[/{{instanceId}}]"
        wait_query = "timeout={timeoutInSeconds}&pollingInterval={intervalInSeconds}"
        return json.dumps(
            {
                "taskHubName": self.hub_name,
                "creationUrls": {
                    "createNewInstancePostUri": f"{creation}{code}",
                    "createAndWaitOnNewInstancePostUri": (
                        f"{creation}?{wait_query}{'&' + code[1:] if code else ''}"
                    ),
                },
                "managementUrls": self.management_urls(origin),
                "baseUrl": f"{origin}{WEBHOOK_PREFIX}",
                "requiredQueryStringParameters": self._query_suffix(),
                "rpcBaseUrl": f"{origin}{RPC_PREFIX}/",
                "httpBaseUrl": "",
                "maxGrpcMessageSizeInBytes": 0,
                "grpcHttpClientTimeout": "00:01:40",
            }
        )

    def instance_payload(self, instance_id: str, origin: str | None = None) -> dict[str, str]:
        urls = self.management_urls(origin)
        return {k: v.replace("INSTANCEID", quote(instance_id, safe="")) for k, v in urls.items()}

    # --- routing ---------------------------------------------------------------------------

    def add_routes(self, app: web.Application) -> None:
        for prefix, rpc in ((RPC_PREFIX, True), (WEBHOOK_PREFIX, False)):
            for method, path, handler in self._routes():
                app.router.add_route(method, prefix + path, self._wrap(handler, rpc))

    def _routes(
        self,
    ) -> list[tuple[str, str, Callable[[web.Request, bool], Awaitable[web.Response]]]]:
        # `[^/]+`, not aiohttp's default `[^{}/]+`: the SDK puts instance ids and entity keys in
        # the path as they are, and an id with a brace must reach its handler (a 404 of the
        # extension), not aiohttp's plain-text 404 that the SDK fails to parse as JSON.
        return [
            ("POST", "/orchestrators/{name:[^/]+}", self._start),
            ("POST", "/orchestrators/{name:[^/]+}/{instance_id:[^/]+}", self._start),
            ("GET", "/instances", self._list),
            ("GET", "/instances/", self._list),
            ("DELETE", "/instances", self._purge_by),
            ("DELETE", "/instances/", self._purge_by),
            ("GET", "/instances/{instance_id:[^/]+}", self._status),
            ("DELETE", "/instances/{instance_id:[^/]+}", self._purge),
            ("POST", "/instances/{instance_id:[^/]+}/raiseEvent/{event:[^/]+}", self._raise_event),
            ("POST", "/instances/{instance_id:[^/]+}/terminate", self._terminate),
            ("POST", "/instances/{instance_id:[^/]+}/suspend", self._suspend),
            ("POST", "/instances/{instance_id:[^/]+}/resume", self._resume),
            ("POST", "/instances/{instance_id:[^/]+}/restart", self._restart),
            ("POST", "/instances/{instance_id:[^/]+}/rewind", self._rewind),
            ("GET", "/entities/{name:[^/]+}/{key:[^/]+}", self._read_entity),
            ("POST", "/entities/{name:[^/]+}/{key:[^/]+}", self._signal_entity),
        ]

    def _wrap(
        self, handler: Callable[[web.Request, bool], Awaitable[web.Response]], rpc: bool
    ) -> Handler:
        async def wrapped(request: web.Request) -> web.StreamResponse:
            # The extension's RPC endpoint listens on loopback only and takes no key.
            if rpc and request.remote not in _LOOPBACK:
                return web.Response(status=403)
            if not rpc and self._require_keys and not self._public_allowed(request):
                return web.Response(status=401)
            try:
                return await handler(request, rpc)
            except InstanceNotFoundError as error:
                return web.json_response(str(error), status=404)
            except InstanceGoneError as error:
                return web.json_response(str(error), status=410)
            except (InstanceExistsError, UnknownFunctionError) as error:
                return _error(400, str(error))
            except ValueError as error:
                return _error(400, str(error))

        return wrapped

    def _public_allowed(self, request: web.Request) -> bool:
        return self._keys.allows(request, AuthLevel.SYSTEM, key_name=DURABLE_SYSTEM_KEY)

    @staticmethod
    async def _body_text(request: web.Request, rpc: bool) -> str | None:
        """The JSON text of the body: the SDK wraps it in one more JSON string literal."""
        raw = await request.text()
        if not raw.strip():
            return None
        try:
            value = json.loads(raw)
        except json.JSONDecodeError as error:
            raise ValueError(
                f"Only application/json request content is supported: {error}"
            ) from error
        if rpc:
            if value is None:
                return None
            if isinstance(value, str):
                return value
            return json.dumps(value)
        return json.dumps(value)

    def _origin_of(self, request: web.Request) -> str:
        return f"{request.scheme}://{request.host}"

    # --- orchestrations --------------------------------------------------------------------

    async def _start(self, request: web.Request, rpc: bool) -> web.Response:
        name = request.match_info["name"]
        instance_id = request.match_info.get("instance_id")
        input_text = await self._body_text(request, rpc)
        instance_id = self.engine.start_orchestration(
            name, instance_id, input_text, request.query.get("version")
        )
        payload = self.instance_payload(instance_id, self._origin_of(request))
        timeout = request.query.get("timeout")
        if timeout is not None and not rpc:
            instance = await self.engine.wait_for_instance(instance_id, float(timeout))
            if instance is not None and instance.runtime_status in TERMINAL_STATUSES:
                return self._status_response(instance, True, False, False, request)
        return web.json_response(
            payload,
            status=202,
            headers={"Location": payload["statusQueryGetUri"], "Retry-After": "10"},
        )

    def status_json(
        self,
        instance: InstanceRow,
        show_input: bool = True,
        show_history: bool = False,
        show_history_output: bool = False,
    ) -> dict[str, Any]:
        status: dict[str, Any] = {
            "name": instance.name,
            "instanceId": instance.instance_id,
            "runtimeStatus": instance.runtime_status,
            "input": _json_or_text(instance.input) if show_input else None,
            "customStatus": _json_or_text(instance.custom_status),
            "output": _json_or_text(instance.output),
            "createdTime": format_status_time(parse_time(instance.created_time)),
            "lastUpdatedTime": format_status_time(parse_time(instance.last_updated_time)),
        }
        if show_history:
            status["historyEvents"] = self._history_view(instance.instance_id, show_history_output)
        return status

    def _history_view(self, instance_id: str, with_output: bool) -> list[dict[str, Any]]:
        """The simplified history the status API shows (not the replay history itself)."""
        view: list[dict[str, Any]] = []
        scheduled: dict[int, dict[str, Any]] = {}
        for event in self.engine.store.history(instance_id):
            event_type = event["EventType"]
            if event_type in (12, 13):
                continue
            item: dict[str, Any] = {
                "EventType": event_name(event_type),
                "Timestamp": format_status_time(parse_time(event["Timestamp"])),
            }
            if event_type in (4, 7, 10, 14):
                scheduled[event["EventId"]] = event
                item["EventId"] = event["EventId"]
            if "Name" in event and event_type in (0, 4, 7, 14, 15):
                item["FunctionName" if event_type in (0, 4, 7) else "Name"] = event["Name"]
            task_id = event.get("TaskScheduledId", event.get("TimerId"))
            if task_id is not None and task_id in scheduled:
                origin = scheduled[task_id]
                if "Name" in origin:
                    item["FunctionName"] = origin["Name"]
                item["ScheduledTime"] = format_status_time(parse_time(origin["Timestamp"]))
            if "FireAt" in event:
                item["FireAt"] = event["FireAt"]
            if "Reason" in event:
                item["Reason"] = event["Reason"]
            if with_output:
                if "Result" in event:
                    item["Result"] = _json_or_text(event["Result"])
                if "Input" in event and event_type in (0, 15):
                    item["Input"] = _json_or_text(event["Input"])
            view.append(item)
        return view

    def _status_response(
        self,
        instance: InstanceRow,
        show_input: bool,
        show_history: bool,
        show_history_output: bool,
        request: web.Request,
    ) -> web.Response:
        body = self.status_json(instance, show_input, show_history, show_history_output)
        if instance.runtime_status in RUNNING_STATUSES:
            location = self.instance_payload(instance.instance_id, self._origin_of(request))
            return web.json_response(
                body,
                status=202,
                headers={"Location": location["statusQueryGetUri"], "Retry-After": "10"},
            )
        return web.json_response(body, status=200)

    async def _status(self, request: web.Request, rpc: bool) -> web.Response:
        instance = self.engine.store.get_instance(request.match_info["instance_id"])
        if instance is None:
            return web.Response(status=404)
        return self._status_response(
            instance,
            _flag(request, "showInput", True),
            _flag(request, "showHistory", False),
            _flag(request, "showHistoryOutput", False),
            request,
        )

    def _filtered(self, request: web.Request) -> list[InstanceRow]:
        statuses = [s for s in request.query.get("runtimeStatus", "").split(",") if s]
        unknown = [s for s in statuses if s not in _VALID_STATUSES]
        if unknown:
            raise ValueError(f"unknown runtimeStatus value(s): {', '.join(unknown)}")
        return self.engine.store.query_instances(
            statuses=statuses,
            created_from=_time_query(request, "createdTimeFrom"),
            created_to=_time_query(request, "createdTimeTo"),
            prefix=request.query.get("instanceIdPrefix") or None,
        )

    async def _list(self, request: web.Request, rpc: bool) -> web.Response:
        instances = self._filtered(request)
        show_input = _flag(request, "showInput", True)
        start = int(request.headers.get("x-ms-continuation-token") or 0)
        top = int(request.query.get("top") or 0)
        page = instances[start : start + top] if top > 0 else instances[start:]
        headers: dict[str, str] = {}
        if top > 0 and start + top < len(instances):
            headers["x-ms-continuation-token"] = str(start + top)
        body = [self.status_json(i, show_input) for i in page]
        return web.json_response(body, status=200, headers=headers)

    async def _purge(self, request: web.Request, rpc: bool) -> web.Response:
        deleted = self.engine.purge([request.match_info["instance_id"]])
        if not deleted:
            return web.Response(status=404)
        return web.json_response({"instancesDeleted": deleted})

    async def _purge_by(self, request: web.Request, rpc: bool) -> web.Response:
        deleted = self.engine.purge([i.instance_id for i in self._filtered(request)])
        if not deleted:
            return web.Response(status=404)
        return web.json_response({"instancesDeleted": deleted})

    async def _raise_event(self, request: web.Request, rpc: bool) -> web.Response:
        input_text = await self._body_text(request, rpc)
        self.engine.raise_event(
            request.match_info["instance_id"], request.match_info["event"], input_text
        )
        return web.Response(status=202)

    async def _terminate(self, request: web.Request, rpc: bool) -> web.Response:
        self.engine.terminate(request.match_info["instance_id"], request.query.get("reason", ""))
        return web.Response(status=202)

    async def _suspend(self, request: web.Request, rpc: bool) -> web.Response:
        self.engine.suspend(request.match_info["instance_id"], request.query.get("reason", ""))
        return web.Response(status=202)

    async def _resume(self, request: web.Request, rpc: bool) -> web.Response:
        self.engine.resume(request.match_info["instance_id"], request.query.get("reason", ""))
        return web.Response(status=202)

    async def _restart(self, request: web.Request, rpc: bool) -> web.Response:
        new_id = request.query.get("restartWithNewInstanceId", "true").lower() != "false"
        instance_id = self.engine.restart(request.match_info["instance_id"], new_id)
        return web.json_response(instance_id, status=202)

    async def _rewind(self, request: web.Request, rpc: bool) -> web.Response:
        return web.json_response("Rewind is not supported by the local host.", status=501)

    # --- entities --------------------------------------------------------------------------

    async def _read_entity(self, request: web.Request, rpc: bool) -> web.Response:
        exists, state = self.engine.read_entity(
            request.match_info["name"], request.match_info["key"]
        )
        if not exists:
            return web.Response(status=404)
        return web.Response(
            status=200, text=state if state is not None else "null", content_type="application/json"
        )

    async def _signal_entity(self, request: web.Request, rpc: bool) -> web.Response:
        operation = request.query.get("op")
        if not operation:
            raise ValueError("the 'op' query parameter is required")
        input_text = await self._body_text(request, rpc)
        self.engine.signal_entity(
            request.match_info["name"], request.match_info["key"], operation, input_text
        )
        return web.Response(status=202)


def _error(status: int, message: str) -> web.Response:
    return web.json_response(
        {"Message": message, "ExceptionMessage": message, "ExceptionType": "System.Exception"},
        status=status,
    )


def _flag(request: web.Request, name: str, default: bool) -> bool:
    value = request.query.get(name)
    if value is None:
        return default
    return value.strip().lower() in ("true", "1", "yes")


def _time_query(request: web.Request, name: str) -> str | None:
    value = request.query.get(name)
    if not value:
        return None
    moment: datetime = parse_time(value.replace(" ", "+"))
    return format_timestamp(moment)

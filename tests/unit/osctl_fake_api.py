"""A wire-level fake of the function app's HTTP API, for osctl's tests.

A real aiohttp server on a free loopback port, in a background thread, implementing the
contract's routes (`/api/platforms...`, and the operation route that the `Location` of a 202
points at) over in-memory state.
A deployment or teardown advances by one step on every `GET /api/platforms/{id}`, so a client
that polls sees it progress. Tests script the rest: an environment that fails, a server that
answers with errors, a state that lags behind a PUT, a function key the server requires and
echoes back in the URLs it returns.
"""

from __future__ import annotations

import asyncio
import copy
import json
import re
import threading
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

ENVIRONMENTS = ("dev", "test", "prod", "life")
SUBSCRIPTION_ID = "00000000-0000-4000-8000-000000000001"
SYSTEM_KEY = "fake-durable-system-key-0123456789"
SOLUTION_ID = re.compile(r"^[a-z][a-z0-9]{0,5}$")
SPEC_FIELDS = frozenset(
    {
        "location",
        "subscriptionId",
        "resourceGroup",
        "network",
        "image",
        "bastion",
        "platformVersion",
        "lifetimeVersion",
        "adminUsername",
        "environments",
        "tags",
        "tls",
    }
)
DEFAULT_VM_SIZE = "Standard_F4s_v2"
DEFAULT_FRONTENDS = {"capacity": 2, "minCapacity": 2, "maxCapacity": 10, "cooldownMinutes": 10}
# Resources per environment and how many the fake creates per poll.
TOTALS = {"dev": 9, "test": 9, "prod": 12, "life": 9}
RATES = {"dev": 3, "test": 3, "prod": 4, "life": 3}
STEPS = ("nsg", "nic", "vm", "sql", "sqldb", "agw", "vmss", "setup", "kv", "pip", "lb", "ext")
ENV_TERMINAL = frozenset({"Succeeded", "Failed", "Canceled", "Deleted"})
RUN_TERMINAL = frozenset({"Completed", "Failed", "Terminated", "Canceled"})


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass
class FailPlan:
    """Make `env` fail once `at` of its resources are done, on the next deployment."""

    env: str
    at: int = 3
    code: str = "OperationNotAllowed"
    message: str = "Operation results in exceeding quota limits of Core. Maximum allowed: 10"
    runtime_status: str = "Failed"


@dataclass
class Env:
    status: str = "Pending"
    done: int = 0
    total: int = 0
    step: str | None = None
    error: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "resourcesDone": self.done,
            "resourcesTotal": self.total,
            "step": self.step,
            "error": self.error,
        }


@dataclass
class Op:
    kind: str
    instance_id: str
    targets: list[str]
    runtime_status: str = "Pending"
    started_at: str = field(default_factory=_now)
    updated_at: str = field(default_factory=_now)
    cancel: bool = False
    fail: FailPlan | None = None
    operation_id: str = field(default_factory=lambda: str(uuid.uuid4()))

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "instanceId": self.instance_id,
            "operationId": self.operation_id,
            "runtimeStatus": self.runtime_status,
            "startedAt": self.started_at,
            "updatedAt": self.updated_at,
        }


@dataclass
class Platform:
    solution_id: str
    spec: dict[str, Any]
    envs: dict[str, Env]
    op: Op | None = None
    outputs: dict[str, dict[str, Any]] = field(default_factory=dict)
    capacity: int = 2
    decisions: list[dict[str, Any]] = field(default_factory=list)
    lag: int = 0
    stale_view: dict[str, Any] | None = None

    @property
    def subscription_id(self) -> str:
        return str(self.spec.get("subscriptionId") or SUBSCRIPTION_ID)

    @property
    def resource_group(self) -> str:
        return str(self.spec.get("resourceGroup") or f"{self.solution_id}-rg")

    @property
    def frontends(self) -> dict[str, Any] | None:
        prod = (self.spec.get("environments") or {}).get("prod") or {}
        if prod.get("mode", "farm") != "farm":
            return None
        return {**DEFAULT_FRONTENDS, **(prod.get("frontends") or {})}

    @property
    def scale_set_id(self) -> str:
        return (
            f"/subscriptions/{self.subscription_id}/resourceGroups/{self.resource_group}"
            f"/providers/Microsoft.Compute/virtualMachineScaleSets/{self.solution_id}-prod-vmss"
        )

    def to_json(self) -> dict[str, Any]:
        return {
            **self.summary(),
            "environments": {name: env.to_json() for name, env in self.envs.items()},
            "outputs": copy.deepcopy(self.outputs),
        }

    def summary(self) -> dict[str, Any]:
        return {
            "solutionId": self.solution_id,
            "subscriptionId": self.subscription_id,
            "resourceGroup": self.resource_group,
            "status": self.status(),
            "lastOperation": self.op.to_json() if self.op else None,
        }

    def status(self) -> str | None:
        """The contract's top-level outcome of the last operation (`docs/api.md`)."""
        op = self.op
        if op is None:
            return None
        if op.runtime_status not in RUN_TERMINAL:
            return "Running"
        if op.runtime_status in {"Terminated", "Canceled"}:
            return "Canceled"
        if op.runtime_status == "Failed":
            return "Failed"
        wanted = "Deleted" if op.kind == "teardown" else "Succeeded"
        involved = [self.envs[name].status for name in op.targets if name in self.envs]
        done = sum(status == wanted for status in involved)
        if done == len(involved):
            return "Succeeded"
        return "PartiallySucceeded" if done else "Failed"


def outputs_for(solution_id: str, env: str) -> dict[str, Any]:
    host = f"http://{solution_id}-{env}-agw.westeurope.cloudapp.azure.com"
    ip = f"10.0.{ENVIRONMENTS.index(env) + 1}.4"
    if env == "life":
        return {"lifetimeUrl": f"{host}/LifeTime", "privateIps": [ip]}
    return {"serviceCenterUrl": f"{host}/ServiceCenter", "privateIps": [ip]}


def _envelope(
    code: str, message: str, details: list[dict[str, str]] | None = None
) -> dict[str, Any]:
    envelope: dict[str, Any] = {"code": code, "message": message}
    if details:
        envelope["details"] = details
    return {"error": envelope}


def error_response(
    status: int, code: str, message: str, details: list[dict[str, str]] | None = None
) -> web.Response:
    return web.json_response(_envelope(code, message, details), status=status)


class FakeApi:
    """The fake server. `start()` it, point the client at `url`, `reset()` between tests."""

    def __init__(self, key: str | None = None) -> None:
        self.key = key
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        self.platforms: dict[str, Platform] = {}
        self.forget_destroyed = False
        self._fail: FailPlan | None = None
        self._lag = 0
        self._injected: list[tuple[int, str]] = []
        self._forgotten: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self.port = 0

    # --- lifecycle -------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> FakeApi:
        ready = threading.Event()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._serve, args=(ready,), name="osctl-fake-api", daemon=True
        )
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("the fake API did not start")
        return self

    def stop(self) -> None:
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)

    def reset(self, key: str | None = None) -> None:
        with self._lock:
            self.key = key
            self.requests.clear()
            self.platforms.clear()
            self.forget_destroyed = False
            self._fail = None
            self._lag = 0
            self._injected.clear()
            self._forgotten.clear()

    def _serve(self, ready: threading.Event) -> None:
        assert self._loop is not None
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._start_site())
        ready.set()
        self._loop.run_forever()
        assert self._runner is not None
        self._loop.run_until_complete(self._runner.cleanup())
        self._loop.close()

    async def _start_site(self) -> None:
        app = web.Application(middlewares=[self._middleware])
        app.router.add_get("/api/platforms", self._list)
        app.router.add_put("/api/platforms/{sid}", self._deploy)
        app.router.add_get("/api/platforms/{sid}", self._get)
        app.router.add_delete("/api/platforms/{sid}", self._destroy)
        app.router.add_post("/api/platforms/{sid}/plan", self._plan)
        app.router.add_post("/api/platforms/{sid}/cancel", self._cancel)
        app.router.add_post("/api/platforms/{sid}/scale", self._scale)
        app.router.add_get("/api/platforms/{sid}/scaling", self._scaling)
        app.router.add_get("/api/platforms/{sid}/operations/{oid}", self._operation)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = int(self._runner.addresses[0][1])

    # --- scripting by tests ----------------------------------------------------------------

    def fail_next_deploy(self, plan: FailPlan) -> None:
        with self._lock:
            self._fail = plan

    def lag_next_operation(self, polls: int) -> None:
        """The next operation stays invisible to `polls` platform GETs (the old state shows)."""
        with self._lock:
            self._lag = polls

    def inject(self, status: int, count: int = 1, body: str = "") -> None:
        """Answer the next `count` requests with `status` and `body` instead of the route."""
        with self._lock:
            self._injected.extend([(status, body)] * count)

    def seed(self, solution_id: str, spec: dict[str, Any] | None = None) -> Platform:
        """A platform whose deployment already succeeded."""
        spec = spec or {"location": "westeurope"}
        with self._lock:
            platform = Platform(
                solution_id,
                spec,
                {name: Env("Succeeded", TOTALS[name], TOTALS[name]) for name in ENVIRONMENTS},
                capacity=int((self._frontends(spec) or {}).get("capacity", 2)),
            )
            platform.op = Op("deploy", f"platform-{solution_id}", list(ENVIRONMENTS), "Completed")
            platform.outputs = {name: outputs_for(solution_id, name) for name in ENVIRONMENTS}
            self.platforms[solution_id] = platform
            return platform

    @staticmethod
    def _frontends(spec: dict[str, Any]) -> dict[str, Any] | None:
        return Platform("x", spec, {}).frontends

    # --- middleware: keys, injected failures, request log ---------------------------------

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        with self._lock:
            headers = {name.lower(): value for name, value in request.headers.items()}
            self.requests.append((request.method, request.path, headers))
            injected = self._injected.pop(0) if self._injected else None
        if injected is not None:
            status, body = injected
            return web.Response(status=status, text=body)
        if self.key is not None:
            given = request.headers.get("x-functions-key") or request.query.get("code")
            if given != self.key:
                return web.Response(status=401)
        response: web.StreamResponse = await handler(request)
        return response

    @staticmethod
    def _accepted(request: web.Request, platform: Platform) -> web.Response:
        """The contract's 202: `Location` (and `Retry-After`) to the app's operation route."""
        op = platform.op
        assert op is not None
        location = (
            f"http://{request.host}/api/platforms/{platform.solution_id}/operations/"
            f"{op.operation_id}"
        )
        body = {
            "id": op.operation_id,
            "solutionId": platform.solution_id,
            "kind": op.kind,
            "status": "Running",
        }
        return web.json_response(
            body, status=202, headers={"Location": location, "Retry-After": "1"}
        )

    # --- routes --------------------------------------------------------------------------

    async def _list(self, request: web.Request) -> web.Response:
        with self._lock:
            items = [p.summary() for p in self.platforms.values()]
        return web.json_response({"platforms": items})

    async def _get(self, request: web.Request) -> web.Response:
        sid = request.match_info["sid"]
        with self._lock:
            platform = self.platforms.get(sid)
            if platform is None:
                return _unknown(sid)
            if platform.lag > 0 and platform.stale_view is not None:
                platform.lag -= 1
                return web.json_response(platform.stale_view)
            self._advance(platform)
            if self._forget_if_destroyed(platform):
                return _unknown(sid)
            return web.json_response(platform.to_json())

    def _forget_if_destroyed(self, platform: Platform) -> bool:
        """With `forget_destroyed`, a platform whose teardown removed it all is unknown after."""
        if (
            self.forget_destroyed
            and platform.op is not None
            and platform.op.kind == "teardown"
            and platform.op.runtime_status == "Completed"
            and all(env.status == "Deleted" for env in platform.envs.values())
        ):
            # The operation's result outlives the platform, as the app's route keeps it.
            self._forgotten[platform.op.operation_id] = _operation_document(platform)
            del self.platforms[platform.solution_id]
            return True
        return False

    async def _deploy(self, request: web.Request) -> web.Response:
        sid = request.match_info["sid"]
        spec = await _read_spec(request, sid)
        with self._lock:
            platform = self.platforms.get(sid)
            running = _running(platform) if platform is not None else None
            if running is not None:
                return error_response(
                    409, "OperationInProgress", f"A {running.kind} of {sid} is running."
                )
            if platform is None:
                platform = Platform(sid, spec, {})
                self.platforms[sid] = platform
                frontends = platform.frontends
                platform.capacity = int(frontends["capacity"]) if frontends else 0
            platform.stale_view = platform.to_json()
            platform.lag, self._lag = self._lag, 0
            platform.spec = spec
            platform.envs = {name: Env("Pending", 0, TOTALS[name]) for name in ENVIRONMENTS}
            platform.op = Op("deploy", f"platform-{sid}", list(ENVIRONMENTS), fail=self._fail)
            self._fail = None
        return self._accepted(request, platform)

    async def _destroy(self, request: web.Request) -> web.Response:
        sid = request.match_info["sid"]
        raw = request.query.get("environments")
        targets = list(ENVIRONMENTS)
        if raw is not None:
            targets = [name.strip() for name in raw.split(",") if name.strip()]
            wrong = [name for name in targets if name not in ENVIRONMENTS]
            if wrong or not targets:
                return error_response(
                    400,
                    "InvalidEnvironments",
                    "environments must be some of dev, test, prod, life",
                    [{"target": "environments", "message": f"unknown: {', '.join(wrong)}"}],
                )
        with self._lock:
            platform = self.platforms.get(sid)
            if platform is None:
                return _unknown(sid)
            if _running(platform):
                return error_response(409, "OperationInProgress", f"{sid} is busy.")
            platform.stale_view = platform.to_json()
            platform.lag, self._lag = self._lag, 0
            for name in targets:
                platform.envs[name] = Env("Pending", 0, TOTALS[name])
            platform.op = Op("teardown", f"platform-{sid}", targets)
        return self._accepted(request, platform)

    async def _cancel(self, request: web.Request) -> web.Response:
        sid = request.match_info["sid"]
        with self._lock:
            platform = self.platforms.get(sid)
            if platform is None:
                return _unknown(sid)
            running = _running(platform)
            if running is None:
                return error_response(409, "NothingRunning", f"Nothing is running on {sid}.")
            running.cancel = True
            body = {"instanceId": running.instance_id, "runtimeStatus": "Canceled"}
            location = (
                f"http://{request.host}/api/platforms/{sid}/operations/{running.operation_id}"
            )
        return web.json_response(body, status=202, headers={"Location": location})

    async def _plan(self, request: web.Request) -> web.Response:
        sid = request.match_info["sid"]
        spec = await _read_spec(request, sid)
        with self._lock:
            platform = self.platforms.get(sid)
            live = copy.deepcopy(platform.spec) if platform is not None else None
        return web.json_response(_plan(sid, spec, live))

    async def _scale(self, request: web.Request) -> web.Response:
        sid = request.match_info["sid"]
        try:
            body = await request.json()
        except ValueError:
            return error_response(400, "InvalidBody", "The body is not JSON.")
        with self._lock:
            platform = self.platforms.get(sid)
            if platform is None:
                return _unknown(sid)
            frontends = platform.frontends
            if frontends is None:
                return error_response(
                    400, "NotAFarm", f"{sid}'s production is standalone: nothing to scale."
                )
            if not isinstance(body, dict) or ("capacity" in body) == ("delta" in body):
                return error_response(
                    400,
                    "InvalidScaleRequest",
                    "Give exactly one of capacity and delta.",
                    [{"target": "capacity", "message": "capacity or delta is required"}],
                )
            target = body.get("capacity", platform.capacity + int(body.get("delta") or 0))
            low, high = int(frontends["minCapacity"]), int(frontends["maxCapacity"])
            if not isinstance(target, int) or not low <= target <= high:
                return error_response(
                    400,
                    "CapacityOutOfBounds",
                    f"Capacity {target} is outside the bounds {low}..{high}.",
                    [{"target": "capacity", "message": f"must be between {low} and {high}"}],
                )
            request_id = f"manual-{len(platform.decisions) + 1}"
            platform.decisions.append(
                {
                    "at": _now(),
                    "source": "manual",
                    "sourceId": request_id,
                    "direction": "out" if target >= platform.capacity else "in",
                    "from": platform.capacity,
                    "to": target,
                    "outcome": "applied",
                    "reason": "set by hand",
                }
            )
            platform.capacity = target
            scale_set = platform.scale_set_id
        return web.json_response(
            {"requestId": request_id, "scaleSet": scale_set, "target": target}, status=202
        )

    async def _scaling(self, request: web.Request) -> web.Response:
        sid = request.match_info["sid"]
        with self._lock:
            platform = self.platforms.get(sid)
            if platform is None:
                return _unknown(sid)
            frontends = platform.frontends
            if frontends is None:
                return error_response(
                    400, "NotAFarm", f"{sid}'s production is standalone: it has no scaling."
                )
            body = {
                "scaleSet": platform.scale_set_id,
                "capacity": platform.capacity,
                "policy": {
                    "minCapacity": frontends["minCapacity"],
                    "maxCapacity": frontends["maxCapacity"],
                    "scaleOutStep": frontends.get("scaleOutStep", 1),
                    "scaleInStep": frontends.get("scaleInStep", 1),
                    "cooldownMinutes": frontends["cooldownMinutes"],
                    "schedules": frontends.get("schedules", []),
                },
                "cooldownUntil": None,
                "decisions": copy.deepcopy(platform.decisions),
            }
        return web.json_response(body)

    async def _operation(self, request: web.Request) -> web.Response:
        """202 while the operation runs, 200 with its result, 404 for one it does not know."""
        sid, oid = request.match_info["sid"], request.match_info["oid"]
        with self._lock:
            platform = self.platforms.get(sid)
            body = None
            if platform is not None and platform.op is not None and platform.op.operation_id == oid:
                self._advance(platform)
                body = _operation_document(platform)
                self._forget_if_destroyed(platform)
            if body is None:
                body = self._forgotten.get(oid)
        if body is None:
            return error_response(404, "OperationNotFound", f"No operation {oid[:40]} of {sid}.")
        if body["status"] != "Running":
            return web.json_response(body)
        headers = {"Location": str(request.url), "Retry-After": "1"}
        return web.json_response(body, status=202, headers=headers)

    # --- progress --------------------------------------------------------------------------

    def _advance(self, platform: Platform) -> None:
        op = platform.op
        if op is None or op.runtime_status in RUN_TERMINAL:
            return
        op.updated_at = _now()
        active = [platform.envs[name] for name in op.targets]
        if op.cancel:
            for env in active:
                if env.status not in ENV_TERMINAL:
                    env.status, env.step = "Canceled", None
            op.runtime_status = "Canceled"
            return
        if op.runtime_status == "Pending":
            op.runtime_status = "Running"
            for env in active:
                env.status = "Running"
            return
        sid = platform.solution_id
        for name in op.targets:
            env = platform.envs[name]
            if env.status != "Running":
                continue
            if op.kind == "teardown":
                env.done = min(env.total, env.done + 5)
                env.step = f"deleting {sid}-{name}-{STEPS[env.done % len(STEPS)]}"
                if env.done == env.total:
                    env.status, env.step = "Deleted", None
                    platform.outputs.pop(name, None)
                continue
            env.done = min(env.total, env.done + RATES[name])
            fail = op.fail
            if fail is not None and fail.env == name and env.done >= fail.at:
                env.done, env.status, env.step = fail.at, "Failed", None
                env.error = {
                    "code": fail.code,
                    "message": fail.message,
                    "resource": (
                        f"/subscriptions/{platform.subscription_id}/resourceGroups/"
                        f"{platform.resource_group}/providers/Microsoft.Compute/"
                        f"virtualMachines/{sid}-{name}-vm"
                    ),
                }
            elif env.done == env.total:
                env.status, env.step = "Succeeded", None
                platform.outputs[name] = outputs_for(sid, name)
            else:
                env.step = f"creating {sid}-{name}-{STEPS[env.done % len(STEPS)]}"
        if all(env.status in ENV_TERMINAL for env in active):
            if any(env.status == "Failed" for env in active):
                op.runtime_status = op.fail.runtime_status if op.fail else "Failed"
            else:
                op.runtime_status = "Completed"


def _running(platform: Platform) -> Op | None:
    """The platform's operation while it runs."""
    op = platform.op
    return op if op is not None and op.runtime_status not in RUN_TERMINAL else None


def _operation_document(platform: Platform) -> dict[str, Any]:
    """The operation as the app's operation route shows it (`docs/api.md`)."""
    op = platform.op
    assert op is not None
    return {
        "id": op.operation_id,
        "solutionId": platform.solution_id,
        "kind": op.kind,
        "status": platform.status(),
        "runtimeStatus": op.runtime_status,
        "startedAt": op.started_at,
        "updatedAt": op.updated_at,
        "environments": {name: platform.envs[name].to_json() for name in op.targets},
        "outputs": copy.deepcopy(platform.outputs),
    }


def _unknown(sid: str) -> web.Response:
    return error_response(404, "PlatformNotFound", f"No platform {sid!r} is managed by this app.")


def _invalid(
    code: str, message: str, details: list[dict[str, str]] | None = None
) -> web.HTTPBadRequest:
    """A 400 with the contract's error envelope, raised by a route's helpers."""
    body = json.dumps(_envelope(code, message, details))
    return web.HTTPBadRequest(text=body, content_type="application/json")


async def _read_spec(request: web.Request, sid: str) -> dict[str, Any]:
    """The request's spec, checked as the app checks it; raises a 400 otherwise."""
    if not SOLUTION_ID.match(sid):
        raise _invalid(
            "InvalidSolutionId",
            "The solution id is invalid.",
            [
                {
                    "target": "solutionId",
                    "message": "lowercase letters and digits, starting with a letter, "
                    "at most 6 characters",
                }
            ],
        )
    try:
        spec = json.loads(await request.text())
    except ValueError:
        raise _invalid("InvalidSpec", "The body is not JSON.") from None
    if not isinstance(spec, dict):
        raise _invalid("InvalidSpec", "The spec must be a JSON object.")
    details = []
    if "location" not in spec:
        details.append({"target": "location", "message": "field required"})
    details += [
        {"target": name, "message": "unknown field"}
        for name in sorted(spec)
        if name not in SPEC_FIELDS
    ]
    frontends = Platform(sid, spec, {}).frontends
    if frontends is not None and frontends["maxCapacity"] < frontends["minCapacity"]:
        details.append(
            {
                "target": "environments.prod.frontends.maxCapacity",
                "message": "must be at least minCapacity",
            }
        )
    if details:
        raise _invalid("InvalidSpec", "The platform spec is invalid.", details)
    return spec


def _vm_size(spec: dict[str, Any] | None, env: str) -> str:
    if spec is None:
        return DEFAULT_VM_SIZE
    return str(((spec.get("environments") or {}).get(env) or {}).get("vmSize", DEFAULT_VM_SIZE))


def _plan(sid: str, spec: dict[str, Any], live: dict[str, Any] | None) -> dict[str, Any]:
    rg = str(spec.get("resourceGroup") or f"{sid}-rg")
    prefix = f"/subscriptions/{SUBSCRIPTION_ID}/resourceGroups/{rg}/providers/"
    resources: list[dict[str, Any]] = [
        {
            "id": f"/subscriptions/{SUBSCRIPTION_ID}/resourceGroups/{rg}",
            "type": "Microsoft.Resources/resourceGroups",
            "name": rg,
            "environment": None,
            "action": "noop" if live else "create",
            "changes": [],
        }
    ]
    for env in ENVIRONMENTS:
        wanted, current = _vm_size(spec, env), _vm_size(live, env)
        action = "create" if live is None else ("update" if wanted != current else "noop")
        changes = (
            [{"path": "properties.hardwareProfile.vmSize", "from": current, "to": wanted}]
            if action == "update"
            else []
        )
        resources.append(
            {
                "id": f"{prefix}Microsoft.Compute/virtualMachines/{sid}-{env}-vm",
                "type": "Microsoft.Compute/virtualMachines",
                "name": f"{sid}-{env}-vm",
                "environment": env,
                "action": action,
                "changes": changes,
            }
        )
        resources.append(
            {
                "id": f"{prefix}Microsoft.Network/applicationGateways/{sid}-{env}-agw",
                "type": "Microsoft.Network/applicationGateways",
                "name": f"{sid}-{env}-agw",
                "environment": env,
                "action": "noop" if live else "create",
                "changes": [],
            }
        )
    totals = dict.fromkeys(("create", "update", "noop"), 0)
    for resource in resources:
        totals[str(resource["action"])] += 1
    return {"resources": resources, "totals": totals}

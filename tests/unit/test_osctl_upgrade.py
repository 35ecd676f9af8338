"""osctl and upgrades (issue 17): `osctl upgrade approve`, following an upgrade (plain lines and
live bars per environment and per server), the plan of an upgrade, and `status` of an upgrade.

The API is a small wire-level fake (a real HTTP server on loopback) answering each route from a
script: what the app answers per `docs/api.md`'s Upgrades section."""

from __future__ import annotations

import io
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console
from typer.testing import CliRunner, Result

from osctl.follow import Snapshot
from osctl.main import app
from osctl.redact import Redactor
from osctl.render import LiveView, PlainView

runner = CliRunner()
KEY = "FaKeFuNcTiOnKeY-upgrade-abcdefghijklmnopqrstuvwxyz0123456789=="
# The CLI must not pick up the machine's own settings or colour preferences.
CLEAN_ENV: dict[str, str | None] = {
    "OSCTL_URL": None,
    "OSCTL_KEY": None,
    "FORCE_COLOR": None,
    "TTY_COMPATIBLE": None,
    "TTY_INTERACTIVE": None,
    "COLUMNS": None,
}
OPERATION = "6f1c1f0e-5d1a-4c52-9a7e-2b1d8f0c9e11"
FROM = {"platformVersion": "11.32.0", "lifetimeVersion": "11.25.2"}
TO = {"platformVersion": "11.33.0", "lifetimeVersion": "11.26.0"}


def server(name: str, state: str, group: str | None = None, **more: Any) -> dict[str, Any]:
    return {
        "name": name,
        "instanceId": None,
        "group": group,
        "state": state,
        "version": None,
        "step": None,
        "error": None,
        **more,
    }


def environment(
    name: str, state: str, done: int, total: int, servers: list[dict[str, Any]], **more: Any
) -> dict[str, Any]:
    return {
        "environment": name,
        "state": state,
        "step": None,
        "stepsDone": done,
        "stepsTotal": total,
        "restorePoint": None,
        "servers": servers,
        "error": None,
        "endedAt": None,
        **more,
    }


def upgrade(state: str, environments: list[dict[str, Any]], awaiting: str | None = None) -> Any:
    return {
        "operation": "upgrade",
        "operationId": OPERATION,
        "from": FROM,
        "to": TO,
        "state": state,
        "awaiting": awaiting,
        "resumesAt": None,
        "environments": environments,
    }


def operation(status: str, runtime: str, progress: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": OPERATION,
        "solutionId": "acme",
        "kind": "upgrade",
        "status": status,
        "runtimeStatus": runtime,
        "startedAt": "2026-12-03T10:00:00Z",
        "updatedAt": "2026-12-03T10:42:00Z",
        "environments": {},
        "outputs": {},
        "upgrade": progress,
    }


LIFE_DONE = environment("life", "Succeeded", 2, 2, [server("acme-life-vm", "Succeeded")])
AWAITING = upgrade(
    "AwaitingApproval",
    [LIFE_DONE, environment("dev", "Pending", 0, 2, []), environment("prod", "Pending", 0, 19, [])],
    awaiting="dev",
)
PROD_RUNNING = environment(
    "prod",
    "Running",
    9,
    19,
    [
        server("acme-prod-vmss_0", "Succeeded", "updating", instanceId="0", version="11.33.0"),
        server("acme-prod-vmss_1", "Running", "loaded", instanceId="1", step="upgradeLoaded"),
        server("acme-prod-vmss_2", "Succeeded", "updating", instanceId="2", temporary=True),
    ],
    step="upgradeLoaded",
)
PROD_FAILED = environment(
    "prod",
    "Failed",
    9,
    19,
    [
        server("acme-prod-vmss_0", "Succeeded", "updating", instanceId="0", version="11.33.0"),
        server(
            "acme-prod-vmss_1",
            "Failed",
            "loaded",
            instanceId="1",
            error={
                "code": "HealthGateFailed",
                "message": "Service Center did not answer",
                "resource": "acme-prod-vmss_1",
            },
        ),
    ],
)
DEV_DONE = environment("dev", "Succeeded", 2, 2, [server("acme-dev-vm", "Succeeded")])


class Script:
    """What each route answers, in order (the last answer repeats); what was asked."""

    def __init__(self) -> None:
        self.answers: dict[tuple[str, str], list[tuple[int, Any, dict[str, str]]]] = {}
        self.asked: list[tuple[str, str, Any]] = []

    def on(self, method: str, path: str, status: int, body: Any, **headers: str) -> Script:
        self.answers.setdefault((method, path), []).append((status, body, headers))
        return self

    def answer(self, method: str, path: str) -> tuple[int, Any, dict[str, str]]:
        queue = self.answers.get((method, path))
        if not queue:
            return 404, {"error": {"code": "NotFound", "message": path}}, {}
        return queue.pop(0) if len(queue) > 1 else queue[0]


@pytest.fixture
def api() -> Iterator[tuple[str, Script]]:
    script = Script()

    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            path = self.path.split("?", 1)[0]
            script.asked.append((self.command, path, json.loads(raw) if raw else None))
            status, body, headers = script.answer(self.command, path)
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for name, value in headers.items():
                self.send_header(name, value.replace("{base}", base))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PUT = _serve  # noqa: N815 (http.server's handler names)

        def log_message(self, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    base = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield base, script
    httpd.shutdown()
    httpd.server_close()


def osctl(base: str, *args: str) -> Result:
    result = runner.invoke(app, ["--url", base, "--key", KEY, *args], env=CLEAN_ENV)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    assert KEY not in result.output
    return result


APPROVE = "/api/platforms/acme/upgrade/approve"
DATABASE = (
    "/subscriptions/s/resourceGroups/g/providers/Microsoft.Sql/servers/x/databases/acme-life-db"
)


# --- osctl upgrade approve -------------------------------------------------------------------


def test_approve_sends_the_environment_and_says_what_goes_on(api: tuple[str, Script]) -> None:
    base, script = api
    answer = {
        "solutionId": "acme",
        "environment": "dev",
        "status": "Approved",
        "operationId": OPERATION,
    }
    script.on("POST", APPROVE, 202, answer, Location="{base}/api/platforms/acme/operations/x")
    result = osctl(base, "upgrade", "approve", "acme", "--environment", "dev")
    assert result.exit_code == 0, result.output
    assert "Approved: the upgrade of acme goes on to dev." in result.output
    assert "osctl wait acme" in result.output
    assert script.asked == [("POST", APPROVE, {"environment": "dev"})]
    # Without --environment: an empty object (the app approves the one it awaits).
    osctl(base, "upgrade", "approve", "acme")
    assert script.asked[-1] == ("POST", APPROVE, {})


def test_approve_with_nothing_awaiting_is_409_exit_2_with_a_hint(api: tuple[str, Script]) -> None:
    base, script = api
    error = {
        "error": {
            "code": "NoUpgradeAwaitingApproval",
            "message": "No upgrade of platform acme awaits an approval: ...",
        }
    }
    script.on("POST", APPROVE, 409, error)
    result = osctl(base, "upgrade", "approve", "acme")
    assert result.exit_code == 2
    assert "NoUpgradeAwaitingApproval" in result.output
    assert "osctl status acme" in result.output


def test_approve_of_another_environment_is_400_exit_2_naming_the_field(
    api: tuple[str, Script],
) -> None:
    base, script = api
    error = {
        "error": {
            "code": "WrongEnvironment",
            "message": "The upgrade awaits prod.",
            "details": [
                {
                    "target": "environment",
                    "message": "must be prod, the environment the upgrade awaits",
                }
            ],
        }
    }
    script.on("POST", APPROVE, 400, error)
    result = osctl(base, "upgrade", "approve", "acme", "-e", "test")
    assert result.exit_code == 2
    assert "WrongEnvironment" in result.output
    assert "environment" in result.output
    assert "must be prod" in result.output


# --- following an upgrade --------------------------------------------------------------------


def test_deploy_of_higher_versions_follows_the_upgrade_per_environment_and_server(
    api: tuple[str, Script], tmp_path: Path
) -> None:
    base, script = api
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({"location": "westeurope", **TO}))
    route = f"/api/platforms/acme/operations/{OPERATION}"
    script.on(
        "GET",
        "/api/platforms/acme",
        200,
        {
            "solutionId": "acme",
            "status": "Succeeded",
            "lastOperation": {
                "kind": "deploy",
                "instanceId": "platform-acme",
                "runtimeStatus": "Completed",
            },
            "environments": {},
            "outputs": {},
        },
    )
    accepted = {
        "id": OPERATION,
        "solutionId": "acme",
        "kind": "upgrade",
        "status": "Running",
        "resumes": "0d9e0b5e-0000-4000-8000-000000000001",
    }
    script.on("PUT", "/api/platforms/acme", 202, accepted, Location="{base}" + route)
    script.on("GET", route, 202, operation("Running", "Running", AWAITING))
    script.on(
        "GET",
        route,
        202,
        operation("Running", "Running", upgrade("Running", [LIFE_DONE, DEV_DONE, PROD_RUNNING])),
    )
    script.on(
        "GET",
        route,
        200,
        operation(
            "PartiallySucceeded",
            "Completed",
            upgrade("Failed", [LIFE_DONE, DEV_DONE, PROD_FAILED]),
        ),
    )
    result = osctl(base, "deploy", "acme", "-f", str(spec), "--poll-interval", "0")
    out = result.output
    assert result.exit_code == 1, out
    assert "Resuming the upgrade acme" in out
    assert "The upgrade awaits the approval of dev: osctl upgrade approve acme" in out
    # One line per change of an environment and of a server, the farm's sets named.
    assert "  acme-prod-vmss_0 [U] Succeeded at 11.33.0" in out
    assert "  acme-prod-vmss_1 [L] Running upgradeLoaded" in out
    assert (
        "  acme-prod-vmss_1 [L] Failed HealthGateFailed: Service Center did not answer "
        "(acme-prod-vmss_1)" in out
    )
    assert "✗ upgrade of acme to 11.33.0 (LifeTime 11.26.0) stopped (Failed): 2/3" in out
    assert "acme-prod-vmss_1: HealthGateFailed" in out
    assert "Resume it with the same spec" in out


def test_the_live_bars_of_an_upgrade_have_one_bar_per_server_under_its_environment() -> None:
    stream = io.StringIO()
    console = Console(file=stream, force_terminal=True, width=120, color_system=None)
    view = LiveView(console, Redactor([KEY]))
    first = upgrade("Running", [LIFE_DONE, DEV_DONE, environment("prod", "Running", 1, 19, [])])
    view.update(Snapshot.from_platform("acme", {"upgrade": first}))
    second = upgrade(
        "Running", [LIFE_DONE, DEV_DONE, PROD_RUNNING, environment("test", "Pending", 0, 2, [])]
    )
    view.update(Snapshot.from_platform("acme", {"upgrade": second}))
    descriptions = [task.description.strip() for task in view.progress.tasks]
    assert descriptions == [
        "life",
        "acme-life-vm",
        "dev",
        "acme-dev-vm",
        "prod",
        "acme-prod-vmss_0 [U]",
        "acme-prod-vmss_1 [L]",
        "acme-prod-vmss_2 [U, temporary]",
        "test",
    ]
    done = {t.description.strip(): (t.completed, t.total) for t in view.progress.tasks}
    assert done["prod"] == (9, 19)
    assert done["acme-prod-vmss_0 [U]"] == (1, 1)
    assert done["acme-prod-vmss_1 [L]"] == (0, 1)
    with view.progress:
        pass
    screen = stream.getvalue()
    assert "━" in screen
    assert "acme-prod-vmss_1 [L]" in screen


def test_plain_lines_say_each_change_once() -> None:
    stream = io.StringIO()
    view = PlainView(Console(file=stream, width=200, color_system=None), Redactor([]))
    for _ in range(2):
        view.update(Snapshot.from_platform("acme", {"upgrade": AWAITING}))
    text = stream.getvalue()
    assert text.count("life  Succeeded") == 1
    assert text.count("awaits the approval of dev") == 1
    assert "dev   Pending           0/2  awaiting approval" in text


# --- status and plan -------------------------------------------------------------------------


def test_status_of_an_awaiting_upgrade_shows_it_and_how_to_approve(
    api: tuple[str, Script],
) -> None:
    base, script = api
    state = {
        "solutionId": "acme",
        "status": "Running",
        "lastOperation": {
            "kind": "upgrade",
            "instanceId": "platform-acme",
            "operationId": OPERATION,
            "runtimeStatus": "Running",
        },
        "environments": {},
        "outputs": {},
        "upgrade": AWAITING,
    }
    script.on("GET", "/api/platforms/acme", 200, state)
    result = osctl(base, "status", "acme")
    out = result.output
    assert result.exit_code == 4
    assert "11.32.0 (LifeTime 11.25.2) → 11.33.0 (LifeTime 11.26.0) AwaitingApproval" in out
    assert "acme-life-vm" in out
    assert "awaiting approval" in out
    assert "osctl upgrade approve acme" in out


def test_plan_of_an_upgrade_lists_its_steps_in_order(
    api: tuple[str, Script], tmp_path: Path
) -> None:
    base, script = api
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({"location": "westeurope", **TO}))
    plan = {
        "operation": "upgrade",
        "from": FROM,
        "to": TO,
        "order": ["life", "dev"],
        "soakMinutes": None,
        "resumes": None,
        "kept": [],
        "steps": [
            {
                "environment": "life",
                "step": "restorePoint",
                "target": DATABASE,
                "detail": "restore point: copy the platform database",
            },
            {
                "environment": "dev",
                "step": "approval",
                "target": "",
                "detail": "pause until the upgrade of dev is approved",
            },
        ],
    }
    script.on("POST", "/api/platforms/acme/plan", 200, plan)
    result = osctl(base, "plan", "acme", "-f", str(spec))
    out = result.output
    assert result.exit_code == 0, out
    assert "Upgrade from Platform Server 11.32.0 (LifeTime 11.25.2) to 11.33.0" in out
    assert "acme-life-db" in out
    assert "restorePoint" in out
    assert "approval" in out
    assert "Plan: 2 steps; each pause waits for: osctl upgrade approve" in out

"""HTTP triggers (routes, methods, auth levels, responses), settings and timer triggers."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import pytest

from localdev.host.durable.history import format_timestamp
from localdev.host.durable.store import TaskHubStore
from localdev.host.settings import SettingsError
from localdev.host.testing import running_host
from tests.support.host_apps import APPS, DURABLE_APP, QUIET_VALUES

HTTP_APP = APPS / "http_app"
ROOT = Path(__file__).resolve().parents[3]
NEVER = "0 0 0 1 1 *"


@pytest.fixture
async def http_host(tmp_path: Path) -> AsyncIterator[tuple[str, aiohttp.ClientSession, Path]]:
    log = tmp_path / "timers.log"
    values = {"FAST_SCHEDULE": NEVER, "TIMER_LOG": str(log)}
    async with (
        running_host(HTTP_APP, values=values) as host,
        aiohttp.ClientSession() as session,
    ):
        yield host.base_url, session, log


async def test_routes_methods_and_route_values(
    http_host: tuple[str, aiohttp.ClientSession, Path],
) -> None:
    base, session, _ = http_host

    async def get(path: str, method: str = "GET") -> tuple[int, str]:
        async with session.request(method, f"{base}{path}") as response:
            return response.status, await response.text()

    assert await get("/api/hello/World?greeting=Hi") == (200, "Hi World")
    assert (await get("/api/hello/W0rld"))[0] == 404  # the alpha constraint rejects it
    assert await get("/api/items/42") == (200, '{"id": 42, "method": "GET"}')
    assert await get("/api/items/42", "DELETE") == (200, '{"id": 42, "method": "DELETE"}')
    assert (await get("/api/items/42", "POST"))[0] == 404
    assert await get("/api/items/special") == (200, "special")
    assert await get("/api/ITEMS/special") == (200, "special")
    assert await get("/api/files/a/b/c.txt") == (200, "a/b/c.txt")
    assert await get("/api/optional") == (200, "none")
    assert await get("/api/optional/x") == (200, "x")
    assert await get("/api/ping") == (200, "ping:36")
    assert await get("/api/async") == (200, "from the loop")
    assert (await get("/api/nothing/here"))[0] == 404
    assert (await get("/api/fail"))[0] == 500


async def test_the_route_prefix_matches_in_any_case(
    http_host: tuple[str, aiohttp.ClientSession, Path],
) -> None:
    # Azure's routes are ASP.NET Core route templates, with the prefix as their first literal;
    # "Text matching is case-insensitive and based on the decoded representation of the URL's
    # path" (https://learn.microsoft.com/aspnet/core/fundamentals/routing#route-templates).
    base, session, _ = http_host
    for path, expected in (
        ("/API/items/special", "special"),
        ("/Api/hello/World", "Hello World"),
        ("/aPI/ITEMS/42", '{"id": 42, "method": "GET"}'),
    ):
        async with session.get(f"{base}{path}") as response:
            assert (response.status, await response.text()) == (200, expected), path
    for path in ("/apix/items/special", "/items/special", "/ap/items/special"):
        async with session.get(f"{base}{path}") as response:
            assert response.status == 404, path


async def test_request_and_response_objects(
    http_host: tuple[str, aiohttp.ClientSession, Path],
) -> None:
    base, session, _ = http_host
    async with session.post(
        f"{base}/api/echo?x=1", json={"a": [1, 2]}, headers={"x-test": "header value"}
    ) as response:
        assert response.status == 201
        assert response.headers["X-Echo"] == "yes"
        assert response.headers["Content-Type"].startswith("application/json")
        body = await response.json()
    assert body == {
        "json": {"a": [1, 2]},
        "header": "header value",
        "url": f"{base}/api/echo?x=1",
        "method": "POST",
    }


async def test_keys_are_enforced_only_when_asked(tmp_path: Path) -> None:
    values = {"FAST_SCHEDULE": NEVER, "LOCALDEV_FUNCTION_KEY": "s3cret-key"}
    async with (
        running_host(HTTP_APP, values=values, require_keys=True) as host,
        aiohttp.ClientSession() as session,
    ):
        base = host.base_url
        async with session.get(f"{base}/api/items/1") as response:
            assert response.status == 401
        async with session.get(f"{base}/api/items/1?code=wrong") as response:
            assert response.status == 401
        async with session.get(f"{base}/api/items/1?code=s3cret-key") as response:
            assert response.status == 200
        headers = {"x-functions-key": "s3cret-key"}
        async with session.get(f"{base}/api/admin-only", headers=headers) as response:
            assert response.status == 200
        async with session.get(f"{base}/api/hello/anyone") as response:
            assert response.status == 200


async def test_keys_are_not_enforced_by_default(
    http_host: tuple[str, aiohttp.ClientSession, Path],
) -> None:
    base, session, _ = http_host
    async with session.get(f"{base}/api/admin-only") as response:
        assert response.status == 200


async def test_a_key_is_generated_when_the_setting_is_absent() -> None:
    async with running_host(HTTP_APP, values={"FAST_SCHEDULE": NEVER}, require_keys=True) as host:
        assert host.config.function_key_generated
        assert len(host.config.function_key) >= 32


async def test_unresolved_setting_fails_start_naming_it() -> None:
    with pytest.raises(SettingsError, match="UNDEFINED_SCHEDULE_SETTING"):
        async with running_host(APPS / "missing_setting"):
            pass


def test_cli_refuses_an_unresolved_setting(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "localdev.host",
            "--app-dir",
            str(APPS / "missing_setting"),
            "--port",
            "0",
            "--hub-file",
            ":memory:",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "UNDEFINED_SCHEDULE_SETTING" in result.stderr


async def test_logged_urls_hide_keys(caplog: pytest.LogCaptureFixture) -> None:
    values = {"FAST_SCHEDULE": NEVER, "LOCALDEV_FUNCTION_KEY": "hide-me-please"}
    async with (
        running_host(HTTP_APP, values=values, require_keys=True) as host,
        aiohttp.ClientSession() as session,
    ):
        caplog.set_level("INFO")
        async with session.post(
            f"{host.base_url}/api/echo?code=hide-me-please", json={"secret": "body-secret"}
        ) as response:
            assert response.status == 201
        async with session.get(f"{host.base_url}/api/items/1?code=wrong-key") as response:
            assert response.status == 401
    assert "code=***" in caplog.text
    assert "hide-me-please" not in caplog.text
    assert "wrong-key" not in caplog.text
    assert "body-secret" not in caplog.text


async def test_timer_runs_on_startup_and_on_schedule(tmp_path: Path) -> None:
    log = tmp_path / "timers.log"
    values = {"FAST_SCHEDULE": "*/1 * * * * *", "TIMER_LOG": str(log)}
    async with running_host(HTTP_APP, values=values):
        for _ in range(100):
            if log.exists() and len(log.read_text().splitlines()) >= 3:
                break
            await asyncio.sleep(0.05)
    lines = log.read_text().splitlines()
    assert len(lines) >= 3
    assert set(lines) == {"fast on-time"}


async def test_missed_occurrence_fires_past_due_at_start(tmp_path: Path) -> None:
    log = tmp_path / "timers.log"
    hub = str(tmp_path / "hub.sqlite")
    store = TaskHubStore(hub)
    store.put_timer_status(
        "yearly_timer", "2020-01-01T00:00:00.000000Z", "2021-01-01T00:00:00.000000Z", "now"
    )
    store.close()
    values = {"FAST_SCHEDULE": NEVER, "TIMER_LOG": str(log)}
    async with running_host(HTTP_APP, values=values, hub_path=hub):
        for _ in range(100):
            if log.exists() and "yearly past" in log.read_text():
                break
            await asyncio.sleep(0.05)
    assert "yearly past" in log.read_text()
    store = TaskHubStore(hub)
    last, next_due = store.timer_status("yearly_timer")
    store.close()
    assert next_due is not None
    assert next_due > format_timestamp(datetime.now(UTC))
    assert last is not None


async def test_admin_endpoint_invokes_a_timer_function(tmp_path: Path) -> None:
    log = tmp_path / "timers.log"
    values = {"FAST_SCHEDULE": NEVER, "TIMER_LOG": str(log)}
    async with (
        running_host(HTTP_APP, values=values) as host,
        aiohttp.ClientSession() as session,
    ):
        async with session.post(f"{host.base_url}/admin/functions/yearly_timer", json={}) as r:
            assert r.status == 202
        for _ in range(100):
            if log.exists() and "yearly on-time" in log.read_text():
                break
            await asyncio.sleep(0.05)
    assert "yearly on-time" in log.read_text()


_WORKER_VIEW = """
import json, sys
sys.path.insert(0, sys.argv[1])
import function_app
from azure.functions import FunctionRegister
apps = [v for v in vars(function_app).values() if isinstance(v, FunctionRegister)]
print(json.dumps({f.get_function_name(): f.get_raw_bindings() for f in apps[0].get_functions()}))
"""


@pytest.mark.parametrize("app_dir", [DURABLE_APP, HTTP_APP], ids=["durable", "http"])
async def test_indexing_reports_the_workers_raw_bindings(app_dir: Path) -> None:
    values = {**QUIET_VALUES, "FAST_SCHEDULE": NEVER}
    async with (
        running_host(app_dir, values=values) as host,
        aiohttp.ClientSession() as session,
        session.get(f"{host.base_url}/admin/functions") as response,
    ):
        hosted = {f["name"]: f["rawBindings"] for f in await response.json()}
    # What the Python worker reports: a fresh interpreter running the library's own indexing.
    result = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-c", _WORKER_VIEW, str(app_dir)],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    worker = json.loads(result.stdout.strip().splitlines()[-1])
    assert hosted == worker


async def test_durable_bindings_have_the_expected_shape() -> None:
    async with running_host(DURABLE_APP, values=QUIET_VALUES) as host:
        assert host.app is not None
        by_name = {f.name: [json.loads(b) for b in f.raw_bindings] for f in host.app.functions}
    assert by_name["chaining"] == [
        {"direction": "IN", "type": "orchestrationTrigger", "name": "context"}
    ]
    assert by_name["hello"] == [{"direction": "IN", "type": "activityTrigger", "name": "name"}]
    assert by_name["Counter"] == [{"direction": "IN", "type": "entityTrigger", "name": "context"}]
    start = by_name["http_start"]
    assert [b["type"] for b in start] == ["durableClient", "httpTrigger", "http"]
    assert start[1]["route"] == "orchestrators/{name}/{instance_id?}"
    assert start[1]["methods"] == ["POST"]
    assert start[1]["authLevel"] == "FUNCTION"
    assert start[2] == {"direction": "OUT", "type": "http", "name": "$return"}
    ticker = by_name["ticker"][0]
    assert ticker["type"] == "timerTrigger"
    assert ticker["schedule"] == "%TICK_SCHEDULE%"


def test_threaded_host_serves_synchronous_callers() -> None:
    from urllib.request import urlopen

    from localdev.host.testing import ThreadedHost

    with ThreadedHost(HTTP_APP, values={"FAST_SCHEDULE": NEVER}) as threaded:
        with urlopen(f"{threaded.base_url}/api/hello/Sync", timeout=10) as response:
            assert response.read() == b"Hello Sync"
        assert threaded.host is not None
        assert threaded.host.app is not None
        assert threaded.host.app.get("HELLO") is not None


def test_a_stopping_host_does_not_wait_for_a_request_still_open() -> None:
    """The harness gives a stop 60 s; a request left open must not hold the host that long."""
    import threading
    from urllib.error import URLError
    from urllib.request import urlopen

    from localdev.host.host import SHUTDOWN_GRACE_SECONDS
    from localdev.host.testing import ThreadedHost

    outcome: list[object] = []

    def caller(url: str) -> None:
        try:
            with urlopen(url, timeout=300) as response:
                outcome.append(response.read())
        except (URLError, OSError) as error:
            outcome.append(error)

    with ThreadedHost(HTTP_APP, values={"FAST_SCHEDULE": NEVER}) as threaded:
        assert threaded.host is not None
        # A client that waits longer than the harness's stop timeout (60 s).
        thread = threading.Thread(
            target=caller, args=(f"{threaded.base_url}/api/linger?seconds=240",), daemon=True
        )
        thread.start()
        server = threaded.host._runner.server if threaded.host._runner else None
        assert server is not None
        for _ in range(100):
            if server.connections:
                break
            thread.join(0.05)
        assert server.connections, "the request never reached the host"
    # Leaving the block stopped the host (ThreadedHost.__exit__ raises TimeoutError past 60 s);
    # the request was closed after the grace, not answered.
    thread.join(SHUTDOWN_GRACE_SECONDS + 10)
    assert not thread.is_alive()
    assert len(outcome) == 1
    assert outcome[0] != b"lingered"


def test_a_stop_that_overruns_says_where_the_host_is_stuck(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A host that does not stop within the harness's limit raises, and first writes out what
    its threads and tasks are doing: here an async function that blocks the event loop."""
    import threading
    import time
    from urllib.error import URLError
    from urllib.request import urlopen

    from localdev.host.testing import ThreadedHost

    def caller(url: str) -> None:
        try:
            with urlopen(url, timeout=30) as response:
                response.read()
        except (URLError, OSError):
            pass

    threaded = ThreadedHost(HTTP_APP, values={"FAST_SCHEDULE": NEVER}).__enter__()
    assert threaded.host is not None
    assert threaded.host._runner is not None
    server = threaded.host._runner.server
    assert server is not None
    threaded.stop_timeout = 0.5
    thread = threading.Thread(
        target=caller, args=(f"{threaded.base_url}/api/block?seconds=3",), daemon=True
    )
    thread.start()
    deadline = time.monotonic() + 5
    while not server.connections:
        assert time.monotonic() < deadline, "the request never reached the host"
        time.sleep(0.05)
    time.sleep(0.2)  # the handler is now inside its blocking call
    with pytest.raises(TimeoutError):
        threaded.__exit__(None, None, None)
    report = capsys.readouterr().err
    assert "did not stop within 0.5 s" in report
    assert "(the host's loop)" in report
    assert "block_the_loop" in report  # the loop thread's stack names the blocking function
    # The loop unblocks after 3 s and the stop carries on; end the loop as __exit__ would have.
    thread.join(10)
    threaded.call(asyncio.sleep(0), timeout=10)
    threaded._loop.call_soon_threadsafe(threaded._loop.stop)

"""Access keys with Azure's scopes, on this app's own routes (`--require-keys`).

Oracles:
- "Work with access keys in Azure Functions",
  https://learn.microsoft.com/azure/azure-functions/function-keys-how-to: a function key opens
  only its function's endpoint; a host key opens every function endpoint; the master key
  (`_master`) is a host key that also opens the admin APIs and admin-level functions; system
  keys are for extension endpoints (Durable Functions calls its extension API with one).
- Azure/azure-functions-host: `SecretManager.GetAuthorizationLevelAsync`
  (src/WebJobs.Script.WebHost/Security/KeyManagement/SecretManager.cs at 845194276a69) gives the
  master key the Admin level, a system key the System level with its name, a host key or a key
  of the requested function the Function level, anything else none;
  `AuthUtility.PrincipalHasAuthLevelClaim` (Security/Authorization/AuthUtility.cs at 47209ffb7a50)
  lets Admin through everywhere and otherwise wants the exact level (and key name);
  `HostController.ExtensionWebHookHandler` (Controllers/HostController.cs at 089f0fe5707b) wants
  the System level with the key named `<extension>_extension` (`durabletask_extension`) for
  `/runtime/webhooks/durabletask/...`; `AuthenticationLevelHandler` (Security/Authentication/
  Keys/AuthenticationLevelHandler.cs at 826c0b520c1e) reads `x-functions-key` before `code`.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from localdev.host.host import LocalHost
from localdev.host.settings import SettingsError
from localdev.host.testing import running_host
from tests.support.host_apps import APPS

ROOT = Path(__file__).resolve().parents[3]
MASTER_KEY = "test-master-key-0b7e"
HOST_KEY = "test-host-key-4c2d"
ALERT_KEY = "test-alert-function-key-9a1f"
SYSTEM_KEY = "test-durable-system-key-5e3a"
KEYS = {
    "functionKeys": {"default": HOST_KEY},
    "systemKeys": {"durabletask_extension": SYSTEM_KEY},
    "functions": {"receive_alert": {"azure-monitor": ALERT_KEY}},
}
VALUES = {
    "SCALING_TIMER_SCHEDULE": "0 0 0 1 1 *",
    "DRIFT_SCHEDULE": "0 0 0 1 1 *",
    "LOCALDEV_FUNCTION_KEY": MASTER_KEY,
    "LOCALDEV_KEYS": json.dumps(KEYS),
}
WEBHOOK = "/runtime/webhooks/durabletask/instances/no-such-instance"
UNAUTHORIZED = 401


@pytest.fixture
async def app_host() -> AsyncIterator[tuple[LocalHost, aiohttp.ClientSession]]:
    async with (
        running_host(ROOT, values=VALUES, require_keys=True) as host,
        aiohttp.ClientSession() as session,
    ):
        yield host, session


async def call(
    app_host: tuple[LocalHost, aiohttp.ClientSession],
    method: str,
    path: str,
    key: str | None,
    *,
    header: bool = False,
    body: Any = None,
) -> int:
    host, session = app_host
    params = {"code": key} if key is not None and not header else {}
    headers = {"x-functions-key": key} if key is not None and header else {}
    async with session.request(
        method, f"{host.base_url}{path}", params=params, headers=headers, json=body
    ) as response:
        await response.read()
        return response.status


FUNCTION_ROUTES = [
    ("PUT", "/api/platforms/x"),
    ("GET", "/api/platforms"),
    ("GET", "/api/platforms/x/scaling"),
]


async def test_a_function_key_opens_its_own_function_only(
    app_host: tuple[LocalHost, aiohttp.ClientSession],
) -> None:
    for header in (False, True):
        opened = await call(app_host, "POST", "/api/alerts", ALERT_KEY, header=header, body={})
        assert opened != UNAUTHORIZED
    for method, path in [*FUNCTION_ROUTES, ("GET", WEBHOOK), ("GET", "/admin/functions")]:
        assert await call(app_host, method, path, ALERT_KEY) == UNAUTHORIZED, path
        assert await call(app_host, method, path, ALERT_KEY, header=True) == UNAUTHORIZED, path


async def test_a_host_key_opens_every_function_but_not_the_extension_or_admin(
    app_host: tuple[LocalHost, aiohttp.ClientSession],
) -> None:
    assert await call(app_host, "POST", "/api/alerts", HOST_KEY, body={}) != UNAUTHORIZED
    assert await call(app_host, "GET", "/api/platforms", HOST_KEY) != UNAUTHORIZED
    assert await call(app_host, "GET", WEBHOOK, HOST_KEY) == UNAUTHORIZED
    assert await call(app_host, "GET", "/admin/functions", HOST_KEY) == UNAUTHORIZED
    assert await call(app_host, "POST", "/admin/functions/x", HOST_KEY, body={}) == UNAUTHORIZED


async def test_the_system_key_opens_the_durable_webhooks_only(
    app_host: tuple[LocalHost, aiohttp.ClientSession],
) -> None:
    assert await call(app_host, "GET", WEBHOOK, SYSTEM_KEY) == 404
    assert await call(app_host, "GET", WEBHOOK, SYSTEM_KEY, header=True) == 404
    assert await call(app_host, "POST", "/api/alerts", SYSTEM_KEY, body={}) == UNAUTHORIZED
    assert await call(app_host, "GET", "/api/platforms", SYSTEM_KEY) == UNAUTHORIZED
    assert await call(app_host, "GET", "/admin/functions", SYSTEM_KEY) == UNAUTHORIZED


async def test_the_master_key_opens_everything(
    app_host: tuple[LocalHost, aiohttp.ClientSession],
) -> None:
    assert await call(app_host, "POST", "/api/alerts", MASTER_KEY, body={}) != UNAUTHORIZED
    assert await call(app_host, "GET", "/api/platforms", MASTER_KEY) != UNAUTHORIZED
    assert await call(app_host, "GET", WEBHOOK, MASTER_KEY) == 404
    assert await call(app_host, "GET", "/admin/functions", MASTER_KEY) == 200


async def test_no_key_or_a_wrong_key_is_refused(
    app_host: tuple[LocalHost, aiohttp.ClientSession],
) -> None:
    for key in (None, "wrong", ""):
        for method, path in [("POST", "/api/alerts"), *FUNCTION_ROUTES, ("GET", WEBHOOK)]:
            assert await call(app_host, method, path, key) == UNAUTHORIZED, (key, path)
    # The anonymous OpenAPI document needs no key.
    assert await call(app_host, "GET", "/api/openapi.json", None) == 200


async def test_the_header_is_read_before_the_query_parameter(
    app_host: tuple[LocalHost, aiohttp.ClientSession],
) -> None:
    host, session = app_host
    url = f"{host.base_url}/api/platforms"
    async with session.get(
        url, params={"code": MASTER_KEY}, headers={"x-functions-key": "wrong"}
    ) as response:
        assert response.status == UNAUTHORIZED
    async with session.get(
        url, params={"code": "wrong"}, headers={"x-functions-key": HOST_KEY}
    ) as response:
        assert response.status != UNAUTHORIZED


async def test_management_urls_carry_the_durable_system_key(
    app_host: tuple[LocalHost, aiohttp.ClientSession],
) -> None:
    host, _ = app_host
    binding = json.loads(host.client_binding())
    urls = [*binding["managementUrls"].values(), *binding["creationUrls"].values()]
    for url in urls:
        if url == "INSTANCEID":
            continue
        assert f"code={SYSTEM_KEY}" in url, url
        assert MASTER_KEY not in url
        assert HOST_KEY not in url


async def test_a_system_key_is_generated_when_none_is_configured() -> None:
    values = {**VALUES, "LOCALDEV_KEYS": json.dumps({"functionKeys": {"default": HOST_KEY}})}
    async with (
        running_host(ROOT, values=values, require_keys=True) as host,
        aiohttp.ClientSession() as session,
    ):
        status_url = json.loads(host.client_binding())["managementUrls"]["statusQueryGetUri"]
        generated = status_url.split("code=", 1)[1].split("&", 1)[0]
        assert len(generated) >= 32
        assert generated not in (MASTER_KEY, HOST_KEY)
        url = f"{host.base_url}{WEBHOOK}"
        async with session.get(url, params={"code": generated}) as response:
            assert response.status == 404
        async with session.get(f"{host.base_url}/api/platforms", params={"code": generated}) as r:
            assert r.status == UNAUTHORIZED


async def test_admin_level_functions_want_the_master_key() -> None:
    values = {
        "FAST_SCHEDULE": "0 0 0 1 1 *",
        "LOCALDEV_FUNCTION_KEY": MASTER_KEY,
        "LOCALDEV_KEYS": json.dumps(
            {"functionKeys": {"default": HOST_KEY}, "functions": {"admin_only": {"k": ALERT_KEY}}}
        ),
    }
    async with (
        running_host(APPS / "http_app", values=values, require_keys=True) as host,
        aiohttp.ClientSession() as session,
    ):
        url = f"{host.base_url}/api/admin-only"
        for key, expected in ((ALERT_KEY, 401), (HOST_KEY, 401), (MASTER_KEY, 200)):
            async with session.get(url, params={"code": key}) as response:
                assert response.status == expected, key


@pytest.mark.parametrize(
    ("keys", "message"),
    [
        ("not json", "LOCALDEV_KEYS"),
        (json.dumps({"functions": {"no_such_function": {"k": "v"}}}), "no_such_function"),
        (json.dumps({"functionKeys": {"default": ""}}), "LOCALDEV_KEYS"),
        (json.dumps({"hostKeys": {"default": "x"}}), "hostKeys"),
    ],
)
async def test_a_bad_keys_setting_stops_the_start(keys: str, message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        async with running_host(ROOT, values={**VALUES, "LOCALDEV_KEYS": keys}):
            pass


def test_listening_beyond_loopback_requires_keys() -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "localdev.host",
            "--app-dir",
            str(APPS / "orchestration_versioning"),
            "--host",
            "0.0.0.0",
            "--port",
            "0",
            "--hub-file",
            ":memory:",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 2, result.stdout + result.stderr
    assert "--require-keys" in result.stderr
    assert "0.0.0.0" in result.stderr

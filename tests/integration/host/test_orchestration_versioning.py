"""Orchestration versioning on the local host, with an app shaped like the official sample.

Oracles (published, not ours):
- The sample: Azure/azure-functions-durable-python, samples-v2/orchestration_versioning
  (function_app.py and README.md at 20ceeaaff337bbe8d45337d790ea96148c711f05, host.json at
  62b78c82efade16e8959b2c068010c01dfd3db9e). Its README gives the outputs checked below: with
  `defaultVersion` "1.0" the legacy path ("Hello from A!"); after a redeploy with "2.0" an
  instance started before keeps version 1.0 and its legacy path, while the sub-orchestration
  created after the redeploy gets "2.0"; a version passed explicitly wins over host.json.
- The SDK the sample runs on (azure-functions-durable 1.7.0, installed):
  `DurableOrchestrationContext.version` is the `Version` of the history's ExecutionStarted
  event; `call_sub_orchestrator(..., version=...)` puts `version` on the action ("If not
  specified, the defaultVersion from host.json will be used"); `start_new(..., version=...)`
  sends `?version=` to the extension.
- "Orchestration versioning in Durable Functions",
  https://learn.microsoft.com/azure/azure-functions/durable/durable-functions-orchestration-versioning
  (`versionMatchStrategy` None | Strict | CurrentOrOlder, default CurrentOrOlder;
  `versionFailureStrategy` Reject | Fail, default Reject: a rejected orchestration is not run
  and stays as it is until a compatible worker takes it).
"""

from __future__ import annotations

import asyncio
import json
import logging
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from localdev.host.host import LocalHost
from localdev.host.testing import running_host
from tests.support.host_apps import APPS

SAMPLE = APPS / "orchestration_versioning"
WAITING = "Waiting for Continue event..."
STARTED = 0


def deploy(target: Path, **durable_task: str) -> Path:
    """The sample app in `target` with host.json's `extensions.durableTask` set as given."""
    if not target.exists():
        shutil.copytree(SAMPLE, target)
    host_json = json.loads((SAMPLE / "host.json").read_text(encoding="utf-8"))
    host_json["extensions"]["durableTask"] = durable_task
    (target / "host.json").write_text(json.dumps(host_json), encoding="utf-8")
    return target


class Sample:
    """The sample app on a running host, called over HTTP as a user would.

    Instances are named by id: a host started again listens on another port.
    """

    def __init__(self, host: LocalHost, session: aiohttp.ClientSession) -> None:
        self.host = host
        self.session = session
        self.webhooks = f"{host.base_url}/runtime/webhooks/durabletask/instances"

    async def start(self, version: str | None = None) -> str:
        params = {"version": version} if version else {}
        url = f"{self.host.base_url}/api/orchestrators/my_orchestrator"
        async with self.session.post(url, params=params) as response:
            assert response.status == 202, await response.text()
            body: dict[str, Any] = await response.json()
        assert body["statusQueryGetUri"].startswith(f"{self.webhooks}/{body['id']}")
        return str(body["id"])

    async def status(self, instance_id: str) -> dict[str, Any]:
        async with self.session.get(f"{self.webhooks}/{instance_id}") as response:
            assert response.status in (200, 202), await response.text()
            body: dict[str, Any] = await response.json()
            return body

    async def wait_for_status(self, instance_id: str, custom_status: str) -> None:
        deadline = asyncio.get_running_loop().time() + 15
        while (await self.status(instance_id))["customStatus"] != custom_status:
            assert asyncio.get_running_loop().time() < deadline, await self.status(instance_id)
            await asyncio.sleep(0.02)

    async def continue_(self, instance_id: str) -> None:
        url = f"{self.webhooks}/{instance_id}/raiseEvent/Continue"
        async with self.session.post(url, json=None) as response:
            assert response.status == 202, await response.text()

    async def result(self, instance_id: str) -> dict[str, Any]:
        assert self.host.engine is not None
        await self.host.engine.wait_for_instance(instance_id, 15)
        status = await self.status(instance_id)
        assert status["runtimeStatus"] in ("Completed", "Failed"), status
        return status


@asynccontextmanager
async def serving(app_dir: Path, hub: str = ":memory:") -> AsyncIterator[Sample]:
    async with running_host(app_dir, hub_path=hub) as host, aiohttp.ClientSession() as session:
        yield Sample(host, session)


def outputs(orchestration: str, explicit: str, default: str, greeting: str) -> list[str]:
    return [
        f"Orchestration version: {orchestration}",
        f"Suborchestration version (explicit): {explicit}",
        f"Suborchestration version (default): {default}",
        greeting,
    ]


async def test_default_version_from_host_json_takes_the_legacy_path() -> None:
    async with serving(SAMPLE) as sample:
        instance_id = await sample.start()
        await sample.wait_for_status(instance_id, WAITING)
        await sample.continue_(instance_id)
        status = await sample.result(instance_id)

        assert status["output"] == outputs("1.0", "0.9", "1.0", "Hello from A!")
        assert sample.host.store is not None
        started = sample.host.store.history(instance_id)[1]
        assert (started["EventType"], started["Version"]) == (STARTED, "1.0")


async def test_a_version_given_to_start_new_wins_over_host_json() -> None:
    async with serving(SAMPLE) as sample:
        instance_id = await sample.start(version="0.8")
        await sample.wait_for_status(instance_id, WAITING)
        await sample.continue_(instance_id)
        status = await sample.result(instance_id)

    assert status["output"] == outputs("0.8", "0.9", "1.0", "Hello from B!")


async def test_an_instance_keeps_its_version_across_a_redeploy(tmp_path: Path) -> None:
    app = deploy(tmp_path / "app", defaultVersion="1.0")
    hub = str(tmp_path / "hub.sqlite")
    async with serving(app, hub) as sample:
        instance_id = await sample.start()
        await sample.wait_for_status(instance_id, WAITING)

    deploy(app, defaultVersion="2.0")
    async with serving(app, hub) as sample:
        await sample.continue_(instance_id)
        status = await sample.result(instance_id)
        assert status["output"] == outputs("1.0", "0.9", "2.0", "Hello from A!")

        fresh = await sample.start()
        await sample.wait_for_status(fresh, WAITING)
        await sample.continue_(fresh)
        assert (await sample.result(fresh))["output"] == outputs(
            "2.0", "0.9", "2.0", "Hello from B!"
        )


async def test_a_newer_instance_waits_for_a_worker_of_its_version(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """CurrentOrOlder + Reject (the defaults): an instance newer than the worker is not run."""
    caplog.set_level(logging.INFO)
    app = deploy(tmp_path / "app", defaultVersion="1.0")
    hub = str(tmp_path / "hub.sqlite")
    async with serving(app, hub) as sample:
        instance_id = await sample.start(version="2.0")
        refusal = "The orchestration version '2.0' is greater than the worker version '1.0'."
        deadline = asyncio.get_running_loop().time() + 10
        while not any(
            instance_id in r.getMessage() and refusal in r.getMessage() for r in caplog.records
        ):
            assert asyncio.get_running_loop().time() < deadline, caplog.text
            await asyncio.sleep(0.02)
        status = await sample.status(instance_id)
        assert status["runtimeStatus"] == "Pending"
        assert sample.host.store is not None
        assert sample.host.store.history(instance_id) == []

    deploy(app, defaultVersion="2.0")
    async with serving(app, hub) as sample:
        await sample.wait_for_status(instance_id, WAITING)
        await sample.continue_(instance_id)
        assert (await sample.result(instance_id))["output"] == outputs(
            "2.0", "0.9", "2.0", "Hello from B!"
        )


@pytest.mark.parametrize(
    ("strategy", "version", "message"),
    [
        (
            "CurrentOrOlder",
            "2.0",
            "The orchestration version '2.0' is greater than the worker version '1.0'.",
        ),
        (
            "Strict",
            "0.8",
            "The orchestration version '0.8' does not match the worker version '1.0'.",
        ),
    ],
)
async def test_the_fail_strategy_fails_an_incompatible_instance(
    tmp_path: Path, strategy: str, version: str, message: str
) -> None:
    app = deploy(
        tmp_path / "app",
        defaultVersion="1.0",
        versionMatchStrategy=strategy,
        versionFailureStrategy="Fail",
    )
    async with serving(app) as sample:
        instance_id = await sample.start(version=version)
        status = await sample.result(instance_id)

    assert status["runtimeStatus"] == "Failed"
    assert message in str(status["output"])


async def test_no_match_strategy_runs_every_version(tmp_path: Path) -> None:
    app = deploy(tmp_path / "app", defaultVersion="1.0", versionMatchStrategy="None")
    async with serving(app) as sample:
        instance_id = await sample.start(version="9.9")
        await sample.wait_for_status(instance_id, WAITING)
        await sample.continue_(instance_id)
        assert (await sample.result(instance_id))["output"] == outputs(
            "9.9", "0.9", "1.0", "Hello from B!"
        )


def test_an_unknown_strategy_stops_the_start(tmp_path: Path) -> None:
    from localdev.host.settings import SettingsError, build_config

    app = deploy(tmp_path / "app", defaultVersion="1.0", versionMatchStrategy="Newest")
    with pytest.raises(SettingsError, match="versionMatchStrategy"):
        build_config(app, environ={})


@pytest.mark.parametrize(
    ("left", "right", "expected"),
    [
        # "Version comparison rules" of the versioning article (URL above):
        # 1. empty or null versions are equal;
        (None, "", 0),
        ("", None, 0),
        # 2. an empty or null version is older than any defined version;
        ("", "1.0", -1),
        ("0.1", None, 1),
        # 3. when both parse as System.Version, Version.CompareTo decides: components compare
        #    as numbers, and an undefined component is less than any defined one
        #    (https://learn.microsoft.com/dotnet/api/system.version.compareto);
        ("1.0", "1.0", 0),
        ("1.9", "1.10", -1),
        ("10.0", "9.0.5", 1),
        ("1.0", "1.0.0", -1),
        ("1.2.3.4", "1.2.3.4", 0),
        # 4. otherwise a case-insensitive string comparison ("1" alone is not a System.Version).
        ("v1.0-release", "V1.0-RELEASE", 0),
        ("2025-01-01", "2025-02-01", -1),
        ("1", "2", -1),
        ("9", "10", 1),
        ("1.0", "beta", -1),
    ],
)
def test_version_comparison_follows_the_documented_rules(
    left: str | None, right: str | None, expected: int
) -> None:
    from localdev.host.durable.versioning import compare_versions

    assert compare_versions(left, right) == expected
    assert compare_versions(right, left) == -expected

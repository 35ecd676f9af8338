"""The local host's sample apps, and a client that talks to a running host as a user would."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import aiohttp

from localdev.host.host import LocalHost

#: Function apps written for the local host's tests (`tests/integration/host/apps/`).
APPS = Path(__file__).resolve().parents[1] / "integration" / "host" / "apps"
DURABLE_APP = APPS / "durable_app"
# A schedule that never fires during a test (midnight on January 1st).
QUIET_VALUES = {"TICK_SCHEDULE": "0 0 0 1 1 *"}


class HostClient:
    """Talks to a running host over HTTP, as a user or the SDK would."""

    def __init__(self, host: LocalHost, session: aiohttp.ClientSession) -> None:
        self.host = host
        self.session = session
        self.base = host.base_url

    async def start(self, name: str, payload: Any = None, instance_id: str | None = None) -> str:
        url = f"{self.base}/api/orchestrators/{name}" + (f"/{instance_id}" if instance_id else "")
        data = json.dumps(payload) if payload is not None else None
        async with self.session.post(url, data=data) as response:
            assert response.status == 202, await response.text()
            body = await response.json()
            assert response.headers["Location"] == body["statusQueryGetUri"]
            return str(body["id"])

    async def status(self, instance_id: str, **query: str) -> tuple[int, Any]:
        url = f"{self.base}/runtime/webhooks/durabletask/instances/{instance_id}"
        async with self.session.get(url, params=query) as response:
            text = await response.text()
            return response.status, json.loads(text) if text else None

    async def wait(self, instance_id: str, seconds: float = 15) -> dict[str, Any]:
        assert self.host.engine is not None
        await self.host.engine.wait_for_instance(instance_id, seconds)
        code, body = await self.status(instance_id)
        assert code == 200, f"still running: {body}"
        assert isinstance(body, dict)
        return body

    async def wait_for(self, instance_id: str, predicate: Any, seconds: float = 10) -> Any:
        """Poll the status until ``predicate(status)`` holds."""
        deadline = asyncio.get_running_loop().time() + seconds
        while True:
            _, body = await self.status(instance_id)
            if body is not None and predicate(body):
                return body
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"condition not reached; last status {body}")
            await asyncio.sleep(0.02)

    async def raise_event(self, instance_id: str, name: str, data: Any) -> int:
        url = f"{self.base}/api/events/{instance_id}/{name}"
        async with self.session.post(url, data=json.dumps(data)) as response:
            return response.status

    def history(self, instance_id: str) -> list[dict[str, Any]]:
        assert self.host.store is not None
        return self.host.store.history(instance_id)

"""Fixtures for the local host's tests: sample apps served in-process on a free port."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest

from localdev.host.testing import running_host
from tests.support.host_apps import DURABLE_APP, QUIET_VALUES, HostClient


@pytest.fixture
async def durable_client() -> AsyncIterator[HostClient]:
    async with (
        running_host(DURABLE_APP, values=QUIET_VALUES, record_episodes=True) as host,
        aiohttp.ClientSession() as session,
    ):
        yield HostClient(host, session)

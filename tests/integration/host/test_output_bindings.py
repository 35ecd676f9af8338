"""Output bindings other than HTTP: named at start-up, and a clear failure when the function runs.

The official Durable Python samples give activities output bindings to services the local host
cannot stand in for (a Twilio SMS, see apps/output_bindings), so the host does not pretend to
deliver them: it warns at start naming each function and binding, and such a function fails with
an error that says why, instead of the TypeError of a missing argument. Functions without such
bindings in the same app keep working.
"""

from __future__ import annotations

import logging
from typing import Any

import aiohttp
import pytest

from localdev.host.testing import running_host
from tests.support.host_apps import APPS

APP = APPS / "output_bindings"
VALUES = {"TwilioPhoneNumber": "+15555550100", "AzureWebJobsStorage": "UseDevelopmentStorage=true"}


async def run(name: str, to: str) -> dict[str, Any]:
    async with (
        running_host(APP, values=VALUES) as host,
        aiohttp.ClientSession() as session,
    ):
        url = f"{host.base_url}/api/orchestrators/{name}"
        async with session.post(url, params={"to": to}) as response:
            assert response.status == 202, await response.text()
            urls = await response.json()
        assert host.engine is not None
        await host.engine.wait_for_instance(urls["id"], 15)
        async with session.get(urls["statusQueryGetUri"]) as response:
            status: dict[str, Any] = await response.json()
        assert host.store is not None
        status["history"] = host.store.history(urls["id"])
        return status


async def test_start_up_names_each_function_and_binding_the_host_cannot_run(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING)
    async with running_host(APP, values=VALUES):
        warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    sms = [w for w in warnings if "'send_sms_alert'" in w]
    queue = [w for w in warnings if "'copy_to_queue'" in w]
    assert len(sms) == 1, warnings
    assert "twilioSms output binding 'message'" in sms[0]
    assert len(queue) == 1, warnings
    assert "queue output binding 'copy'" in queue[0]
    assert not [w for w in warnings if "check_repository" in w or "'start'" in w]


@pytest.mark.parametrize(
    ("orchestration", "activity", "binding"),
    [("alert_on_call", "send_sms_alert", "twilioSms"), ("copy_item", "copy_to_queue", "queue")],
)
async def test_the_activity_fails_saying_which_binding_is_not_supported(
    orchestration: str, activity: str, binding: str
) -> None:
    status = await run(orchestration, "+15555550123")

    assert status["runtimeStatus"] == "Failed"
    failed = [e for e in status["history"] if e["EventType"] == 6]  # TaskFailed
    assert len(failed) == 1
    reason = failed[0]["Reason"]
    assert f"Activity function '{activity}' failed" in reason
    assert f"{binding} output binding" in reason
    assert "not supported by the local host" in reason
    assert "TypeError" not in reason
    # The activity without such a binding ran before it.
    completed = [e for e in status["history"] if e["EventType"] == 5]
    if orchestration == "alert_on_call":
        assert completed[0]["Result"] == '"too many open issues"'

"""Secrets audit over a platform's whole life, under ARM faults, with function keys enforced.

One run on the in-process local host (`--require-keys`), against the ARM simulator failing a
seeded 10% of requests: a farm deployment, an alert-driven scale-out, a manual scale, the
scaling timer, a redeploy and a teardown. Then every text the run produced is searched for the
secrets (the admin passwords, `PLATFORM_KEY_SEED`, the private keys derived from it, the key in
`ALERT_WEBHOOK_URL` and the host's function key), in plain, base64, URL-encoded and
JSON-escaped form (`tests/support/leaks.py` builds the forms): every orchestration, entity
and queue row of the task hub, the durable status of every instance with its history, every
API answer, every event, every log record at DEBUG, the host's console output, the simulator's
request log and ARM's answers. The one sanctioned copy is the action group's webhook, which
ARM returns to whoever may read the group (as Azure does).

`test_crash_recovery.py` audits the subprocess host's output and hub after its kills the same
way.
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests

from localdev.armsim.server import SimulatorServer
from outsystems.resource_types import ACTION_GROUP, SCALE_SET, VM
from tests.e2e.scaling_support import SCALE_SET_ID, SOLUTION, alert, arm, farm_spec, wait_for
from tests.support.azurite import Azurite
from tests.support.leaks import assert_no_leak, dump_hub, leaks, secret_values
from tests.support.stack import HOST_KEY, SECRETS, Stack, assert_torn_down, keyed_stack

FAULT_SEED = 41


def live_capacity(sim: SimulatorServer) -> int:
    """Read through the admin API: an ARM read would meet the injected faults."""
    [scale_set] = [r for r in sim.resources(SCALE_SET) if r["id"].lower() == SCALE_SET_ID.lower()]
    return int(scale_set["body"]["sku"]["capacity"])


def settle(stack: Stack) -> dict[str, Any]:
    def idle() -> dict[str, Any] | None:
        view: dict[str, Any] = stack.api("GET", f"platforms/{SOLUTION}/scaling").json()
        busy = view["pending"] or view["scaler"] in ("Running", "Pending", "ContinuedAsNew")
        return None if busy else view

    view = wait_for(idle, what="the scaler to rest", timeout=60)
    assert view is not None
    return view


def durable_statuses(stack: Stack) -> dict[str, str]:
    """The public status of every instance in the hub, with input, history and outputs."""
    assert stack.host.host is not None
    store = stack.host.host.store
    assert store is not None
    texts = {}
    for instance in store.query_instances():
        response = requests.get(
            f"{stack.base}/runtime/webhooks/durabletask/instances/{instance.instance_id}",
            params={
                "code": HOST_KEY,
                "showHistory": "true",
                "showHistoryOutput": "true",
                "showInput": "true",
            },
            timeout=30,
        )
        assert response.status_code in (200, 202), (instance.instance_id, response.text)
        texts[f"durable status of {instance.instance_id}"] = response.text
        texts[f"history of {instance.instance_id}"] = json.dumps(
            store.history(instance.instance_id)
        )
    return texts


def arm_answers(sim: SimulatorServer) -> dict[str, str]:
    """ARM's answer for every live resource (with `userData` expanded) and what the simulator
    stored of it, faults paused."""
    sim.configure({"faultRate": 0.0})
    answers = {}
    try:
        for resource in sim.resources():
            response = arm(
                "GET",
                f"{sim.url}{resource['id']}",
                params={"api-version": "2024-03-01", "$expand": "userData"},
            )
            assert response.status_code == 200, (resource["id"], response.text)
            body, stored = response.json(), resource["body"]
            if resource["type"].lower() == ACTION_GROUP.lower():
                body, stored = without_webhook(body), without_webhook(stored)
            answers[f"ARM GET {resource['id']}"] = json.dumps(body)
            answers[f"ARM stored {resource['id']}"] = json.dumps(stored)
    finally:
        sim.configure({"faultRate": 0.1})
    return answers


def without_webhook(body: dict[str, Any]) -> dict[str, Any]:
    """An action group without its webhook URL (key included): its sanctioned home in ARM."""
    receivers = body["properties"]["webhookReceivers"]
    assert [r["serviceUri"] for r in receivers] == [SECRETS["ALERT_WEBHOOK_URL"]]
    for receiver in receivers:
        receiver["serviceUri"] = "<the webhook>"
    return body


def is_accepted_operation(text: str) -> bool:
    """A 202 of PUT or DELETE: the operation, whose `Location` is the app's own route."""
    try:
        body = json.loads(text)
    except ValueError:
        return False
    return isinstance(body, dict) and set(body) == {"id", "solutionId", "kind", "status"}


def test_no_secret_anywhere_after_deploy_scale_redeploy_and_teardown_under_faults(
    sim: SimulatorServer,
    azurite: Azurite,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.DEBUG)
    azurite.drain("platform-events")
    sim.configure(
        {"faultRate": 0.1, "seed": FAULT_SEED, "faultRetryAfter": 0, "latencyScale": 0.0002}
    )
    hub = tmp_path / "hub.sqlite"
    answers: list[str] = []
    texts: dict[str, str] = {}
    spec = farm_spec(cooldownMinutes=1)
    with keyed_stack(sim, azurite, hub, SCALING_COOLDOWN_SCALE="0.001") as stack:
        stack.session.hooks["response"].append(
            lambda response, *args, **kwargs: answers.append(response.text)
        )
        host_address = urlsplit(stack.base).netloc
        assert requests.get(f"{stack.base}/api/platforms", timeout=30).status_code == 401

        # Deploy, then scale by alert, by hand and by the timer.
        assert stack.deploy(SOLUTION, spec).status_code == 202
        assert stack.wait(SOLUTION, 180)["lastOperation"]["runtimeStatus"] == "Completed"
        assert stack.api("POST", "alerts", json=alert("high")).status_code == 202
        wait_for(lambda: live_capacity(sim) == 4, what="the alert's scale-out", timeout=60)
        settle(stack)
        manual = stack.api("POST", f"platforms/{SOLUTION}/scale", json={"capacity": 6})
        assert manual.status_code == 202, manual.text
        wait_for(lambda: live_capacity(sim) == 6, what="the manual scale", timeout=60)
        timer = stack.session.post(
            f"{stack.base}/admin/functions/enforce_scaling_schedules", timeout=30
        )
        assert timer.status_code == 202, timer.text
        view = settle(stack)
        assert [(d["source"], d["outcome"]) for d in view["decisions"]][:2] == [
            ("alert", "applied"),
            ("manual", "applied"),
        ]

        # Redeploy the same spec: it keeps the live capacity.
        assert stack.deploy(SOLUTION, spec).status_code == 202
        assert stack.wait(SOLUTION, 180)["lastOperation"]["runtimeStatus"] == "Completed"
        assert live_capacity(sim) == 6
        stack.api("POST", f"platforms/{SOLUTION}/plan", json=spec)
        stack.api("GET", "platforms")
        # The secrets really went to ARM: VMs exist (the simulator checks their passwords) and
        # the action group carries the webhook with its key.
        assert all(r["createdCount"] == 1 for r in sim.resources(VM))
        texts |= arm_answers(sim)

        # Tear down.
        assert stack.api("DELETE", f"platforms/{SOLUTION}").status_code == 202
        state = stack.wait(SOLUTION, 180)
        assert (state["lastOperation"]["kind"], state["lastOperation"]["runtimeStatus"]) == (
            "teardown",
            "Completed",
        )
        texts |= durable_statuses(stack)
        events = stack.events()
    assert_torn_down(sim)
    assert sum(1 for r in sim.requests() if r["fault"]) >= 10

    kinds = {e["type"] for e in events}
    assert {
        "outsystems.deployment.succeeded",
        "outsystems.scale.applied",
        "outsystems.teardown.succeeded",
    } <= kinds
    texts["events"] = json.dumps(events)
    # The 202s of PUT and DELETE hand out no management URL (in Azure they would carry the
    # Durable system key): every API answer, as it is, must hold no secret and no key.
    assert sum(1 for a in answers if is_accepted_operation(a)) == 3
    texts["API answers"] = "\n".join(answers)
    texts["task hub"] = dump_hub(hub)
    assert "@" in texts["task hub"], "the entities are in the hub dump"
    texts["ARM request log"] = json.dumps(sim.requests())
    console = capfd.readouterr()
    texts["host console"] = console.out + console.err
    # The test's own HTTP client (urllib3) logs the URLs it calls, key included: not the app's.
    records = [
        r
        for r in caplog.records
        if not (r.name.startswith("urllib3") and host_address in r.getMessage())
    ]
    log_text = "\n".join(
        f"{r.name} {r.levelname} {r.getMessage()} {r.args!r} {r.exc_text or ''}" for r in records
    )
    assert "PUT /subscriptions/" in log_text, "the activities' logs were captured"
    assert "Executed 'Functions.scale_frontends'" in log_text, "the scaler's too"
    texts["logs"] = log_text

    assert len(texts) > 60
    assert_no_leak(texts)
    # Requests that carried the key were logged, with the key redacted.
    codes = re.findall(r"[?&]code=([^\s&#'\")]*)", log_text, flags=re.IGNORECASE)
    assert codes, "a request URL with a key was logged"
    assert set(codes) == {"***"}, set(codes)
    # The search is not blind: a secret slipped into any of these texts would be found.
    for name, secret in secret_values().items():
        assert leaks("probe", texts["task hub"][:1000] + json.dumps({"x": secret})), name

"""Secrets never leak: not into history, status, events, logs, nor ARM's answers (end to end).

The admin passwords, `PLATFORM_KEY_SEED`, the private keys derived from it and the function keys
(the one in `ALERT_WEBHOOK_URL` and the host's own) are looked for in every form they could take
on the way: plain, base64 (at any byte alignment, UTF-8 and UTF-16), URL-encoded and
JSON-escaped. The only place they may travel is the body of an ARM request.
"""

from __future__ import annotations

import base64
import json
import logging
import re
import sqlite3
from pathlib import Path
from urllib.parse import quote, urlsplit

import pytest
import requests

from localdev.armsim.server import SimulatorServer
from orchestrators.deploy import walk_instance_id
from tests.support.azurite import Azurite
from tests.support.examples import sample
from tests.support.host_process import host_process, wait_terminal, write_settings
from tests.support.leaks import (
    GENERATED,
    SOLUTION,
    assert_no_leak,
    dump_hub,
    leaks,
    secret_values,
)
from tests.support.stack import (
    HOST_KEY,
    SECRETS,
    SUBSCRIPTION,
    Stack,
    app_settings,
    keyed_stack,
)


def generated_passwords(sim: SimulatorServer) -> dict[str, str]:
    """The passwords the app put in the platform's vault, computed as the app computes them
    (from the seed and the nonce in each secret's content type), and proven right against the
    digest of the value the simulator received (it never keeps the value)."""
    import hashlib

    from arm.secrets import nonce_of
    from outsystems.keys import derive_password

    found: dict[str, str] = {}
    for secret in sim.resources("Microsoft.KeyVault/vaults/secrets"):
        nonce = nonce_of((secret["body"].get("properties") or {}).get("contentType"))
        if nonce is None:
            continue
        value = derive_password(SECRETS["PLATFORM_KEY_SEED"], secret["id"], nonce)
        digest = sim.write_only_digest(secret["id"], "properties.value")
        assert digest == hashlib.sha256(value.encode()).hexdigest(), secret["id"]
        found[f"vault secret {secret['id'].rsplit('/', 1)[-1]}"] = value
    return found


def assert_codes_redacted(text: str) -> None:
    """Every URL in `text` that carries a `code=` (a function key) shows it redacted."""
    codes = re.findall(r"[?&]code=([^\s&#'\"]*)", text, flags=re.IGNORECASE)
    assert codes, "a request URL with a key was logged"
    assert set(codes) <= {"***", "REDACTED"}, set(codes)


def without_webhook_uri(answer: str) -> str:
    """An action group's answer without its webhook receivers' `serviceUri`.

    ARM returns an action group's webhook URL, key included, to anyone who may read the group
    (Azure does; the simulator follows it): the key's one sanctioned home outside app settings.
    """
    body = json.loads(answer)
    receivers = (body.get("properties") or {}).get("webhookReceivers") or []
    assert receivers
    assert all(r["serviceUri"] == SECRETS["ALERT_WEBHOOK_URL"] for r in receivers)
    for receiver in receivers:
        receiver["serviceUri"] = "<the webhook>"
    return json.dumps(body)


def test_leak_forms_catch_every_encoding() -> None:
    """The detector itself: each encoding of each secret, embedded in other text, is found."""
    for secret in secret_values().values():
        for prefix in ("", "x", "xy"):
            payload = f"{prefix}<{secret}>"
            samples = [
                payload,
                base64.b64encode(payload.encode()).decode(),
                base64.urlsafe_b64encode(payload.encode()).decode(),
                base64.b64encode(payload.encode("utf-16-le")).decode(),
                quote(payload, safe=""),
                json.dumps({"k": payload}),
                f"PREFIX {payload.upper()} SUFFIX",
            ]
            for text in samples:
                assert leaks("sample", text), (secret, text)
    assert not leaks("clean", json.dumps(sample("spec-farm.json")))


# --- the run -------------------------------------------------------------------------------


def _keyed(url: str) -> str:
    return url if "code=" in url else f"{url}{'&' if '?' in url else '?'}code={HOST_KEY}"


def _instance_ids(hub: Path) -> list[str]:
    db = sqlite3.connect(f"file:{hub}?mode=ro", uri=True)
    try:
        return [row[0] for row in db.execute("SELECT instance_id FROM instances")]
    finally:
        db.close()


def _histories(stack: Stack) -> dict[str, str]:
    # The deployment and its one walk of every scope (walk version 5, `deploy_environments`).
    parent = f"platform-{SOLUTION}"
    ids = [parent, walk_instance_id(parent)]
    histories = {}
    for instance_id in ids:
        history = stack.history(instance_id)
        assert history, f"no history for {instance_id}"
        histories[f"history of {instance_id}"] = json.dumps(history)
    return histories


def _arm_answers(stack: Stack) -> dict[str, str]:
    """What ARM answers for every live resource (GET) and for the group's listing."""
    from azure.core.rest import HttpRequest

    from arm.client import sender

    client = sender(SUBSCRIPTION)
    answers = {}
    ids = [r["id"] for r in stack.sim.resources()]
    assert len(ids) > 40
    for resource_id in ids:
        for query in ("", "&$expand=userData"):
            response = client.send_request(
                HttpRequest("GET", f"{resource_id}?api-version=2024-03-01{query}")
            )
            assert response.status_code == 200, (resource_id, response.text())
            text = response.text()
            if "/microsoft.insights/actiongroups/" in resource_id.lower():
                text = without_webhook_uri(text)
            answers[f"ARM GET {resource_id}{query}"] = text
    listing = client.send_request(
        HttpRequest(
            "GET",
            f"/subscriptions/{SUBSCRIPTION}/resourceGroups/{SOLUTION}-rg/resources"
            "?api-version=2024-03-01&$expand=properties",
        )
    )
    answers["ARM list"] = listing.text()
    return answers


def _durable_status(stack: Stack, instance_id: str) -> str:
    # The app no longer hands out Durable's management URLs: ask the extension directly.
    url = _keyed(f"{stack.base}/runtime/webhooks/durabletask/instances/{instance_id}")
    response = requests.get(
        url,
        params={"showHistory": "true", "showHistoryOutput": "true", "showInput": "true"},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    return response.text


def test_no_secret_in_history_status_events_logs_or_arm_answers(
    sim: SimulatorServer, azurite: Azurite, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    azurite.drain("platform-events")
    hub = tmp_path / "hub.sqlite"
    texts: dict[str, str] = {}
    with keyed_stack(sim, azurite, hub) as stack:
        host_address = urlsplit(stack.base).netloc
        unauthorized = requests.get(f"{stack.base}/api/platforms/{SOLUTION}", timeout=30)
        assert unauthorized.status_code == 401

        spec = sample("spec-farm.json")
        started = stack.deploy(SOLUTION, spec)
        assert started.status_code == 202, started.text
        state = stack.wait(SOLUTION)
        assert state["lastOperation"]["runtimeStatus"] == "Completed"
        assert {e["status"] for e in state["environments"].values()} == {"Succeeded"}
        # The secrets really went to ARM (so that finding none elsewhere means something).
        vm = next(r for r in sim.resources() if r["id"].endswith("/acme-prod-vm"))
        assert vm["createdCount"] == 1
        # Each environment's own passwords, and the platform's Service Center one.
        GENERATED.update(generated_passwords(sim))
        assert "vault secret outsystems-admin-password" in GENERATED
        assert "vault secret prod-frontends-admin-password" in GENERATED
        assert len(set(GENERATED.values())) == len(GENERATED) == 10

        texts["deployment state"] = json.dumps(state)
        texts["deployment durable status"] = _durable_status(stack, f"platform-{SOLUTION}")
        texts["deployment operation"] = stack.session.get(
            started.headers["Location"], timeout=30
        ).text
        texts |= {f"deploy {k}": v for k, v in _histories(stack).items()}
        texts["list"] = stack.api("GET", "platforms").text
        texts["plan"] = stack.api("POST", f"platforms/{SOLUTION}/plan", json=spec).text
        texts["scaling"] = stack.api("GET", f"platforms/{SOLUTION}/scaling").text
        texts |= _arm_answers(stack)
        texts["ARM request log"] = json.dumps(sim.requests())

        torn = stack.api("DELETE", f"platforms/{SOLUTION}")
        assert torn.status_code == 202, torn.text
        state = stack.wait(SOLUTION)
        assert state["lastOperation"]["kind"] == "teardown"
        assert state["lastOperation"]["runtimeStatus"] == "Completed"
        texts["teardown state"] = json.dumps(state)
        texts["teardown durable status"] = _durable_status(stack, f"platform-{SOLUTION}")
        texts["teardown operation"] = stack.session.get(torn.headers["Location"], timeout=30).text
        teardown_history = stack.history(f"platform-{SOLUTION}")
        assert teardown_history
        texts["teardown history"] = json.dumps(teardown_history)
        events = stack.events()
        assert {"outsystems.deployment.succeeded", "outsystems.teardown.succeeded"} <= {
            e["type"] for e in events
        }
        texts["events"] = json.dumps(events)
    # The task hub holds the deployment (then the teardown) and the walk of every scope.
    parent = f"platform-{SOLUTION}"
    assert {parent, walk_instance_id(parent)} <= set(_instance_ids(hub))
    texts["task hub"] = dump_hub(hub)
    texts["ARM request log, end"] = json.dumps(sim.requests())

    # The test's own HTTP client (urllib3) logs the URLs it calls, key included: not the app's.
    records = [
        r
        for r in caplog.records
        if not (r.name.startswith("urllib3") and host_address in r.getMessage())
    ]
    assert len(records) < len(caplog.records)
    assert any(r.getMessage().startswith("PUT /subscriptions/") for r in records), (
        "the activities' logs were captured"
    )
    log_text = "\n".join(
        f"{r.name} {r.levelname} {r.getMessage()} {r.args!r} {r.exc_text or ''}" for r in records
    )
    texts["logs"] = log_text
    assert_no_leak(texts)
    # Requests that carried the host's key were logged, with the key redacted.
    assert_codes_redacted(log_text)


# --- the host's console output ---------------------------------------------------------------


def test_host_console_output_holds_no_secret(
    sim: SimulatorServer, azurite: Azurite, tmp_path: Path
) -> None:
    values = {**app_settings(sim, azurite), "LOCALDEV_FUNCTION_KEY": HOST_KEY}
    settings = write_settings(tmp_path, values)
    output = tmp_path / "host.log"
    keyed = {"code": HOST_KEY}
    with host_process(settings, tmp_path / "hub.sqlite", output, "--verbose", "--require-keys") as (
        _,
        base,
    ):
        put = requests.put(
            f"{base}/api/platforms/{SOLUTION}",
            json=sample("spec-farm.json"),
            params=keyed,
            timeout=60,
        )
        assert put.status_code == 202, put.text
        status = requests.get(put.headers["Location"], params=keyed, timeout=30)
        assert status.status_code in {200, 202}
        state = wait_terminal(base, SOLUTION, 120, **keyed)
        assert state["lastOperation"]["runtimeStatus"] == "Completed"
        torn = requests.delete(f"{base}/api/platforms/{SOLUTION}", params=keyed, timeout=60)
        assert torn.status_code == 202
        assert wait_terminal(base, SOLUTION, 120, **keyed)["lastOperation"]["kind"] == "teardown"
    console = output.read_text(errors="replace")
    # The activities' own lines and the host's invocation lines are there (at debug level).
    assert "PUT /subscriptions/" in console
    assert "Executed 'Functions.begin_apply_resources' (Succeeded" in console
    assert_no_leak({"host output": console})
    assert_codes_redacted(console)

"""Secrets quoted in ARM error messages are masked before they reach an orchestration."""

from __future__ import annotations

import base64

from arm.secrets import redact
from outsystems.keys import derive_private_key

ENV = {
    "VM_ADMIN_PASSWORD": "Vm-Passw0rd!x",
    "SQL_ADMIN_PASSWORD": "Sql-Passw0rd!y",
    "PLATFORM_KEY_SEED": "seed-for-tests",
    "ALERT_WEBHOOK_URL": "https://app/api/alerts?code=k3y",
}


def test_every_secret_and_its_base64_is_masked() -> None:
    key = derive_private_key("seed-for-tests", "acme", "prod")
    sql_b64 = base64.b64encode(b"Sql-Passw0rd!y").decode()
    message = (
        f"setup failed: login sqladmin/Sql-Passw0rd!y; -DatabaseAdminPassword {sql_b64} "
        f"-PrivateKey {key}; vm Vm-Passw0rd!x; hook https://app/api/alerts?code=k3y"
    )
    masked = redact(message, solution_id="acme", environ=ENV)
    for secret in ("Sql-Passw0rd!y", sql_b64, key, "Vm-Passw0rd!x", "code=k3y"):
        assert secret not in masked
    assert masked.startswith("setup failed: login sqladmin/***")


def test_text_without_secrets_is_unchanged() -> None:
    text = "OperationNotAllowed: exceeding approved Total Regional Cores quota"
    assert redact(text, solution_id="acme", environ=ENV) == text
    assert redact(text, environ={}) == text

"""Looking for the run's secrets in text, in every form they could take on the way.

The admin passwords, `PLATFORM_KEY_SEED`, the private keys derived from it, the passwords the app
generated in the vault (`GENERATED`, filled by the test that reads them back) and the function
keys: plain, base64 (at any byte alignment, UTF-8 and UTF-16), URL-encoded and JSON-escaped.
"""

from __future__ import annotations

import base64
import json
import sqlite3
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import parse_qs, quote, quote_plus, urlsplit

from outsystems.keys import derive_private_key
from outsystems.names import ENVIRONMENTS
from tests.support.stack import HOST_KEY, SECRETS

SOLUTION = "acme"


#: Passwords the app generated in a platform's vault during the run (`tests/e2e/test_secrets.py`
#: reads them back into it).
GENERATED: dict[str, str] = {}


def secret_values() -> dict[str, str]:
    """Every secret of the run, by a name that says where it comes from."""
    webhook_key = parse_qs(urlsplit(SECRETS["ALERT_WEBHOOK_URL"]).query)["code"][0]
    values = {
        "VM_ADMIN_PASSWORD": SECRETS["VM_ADMIN_PASSWORD"],
        "SQL_ADMIN_PASSWORD": SECRETS["SQL_ADMIN_PASSWORD"],
        "PLATFORM_KEY_SEED": SECRETS["PLATFORM_KEY_SEED"],
        "ALERT_WEBHOOK_URL code": webhook_key,
        "LOCALDEV_FUNCTION_KEY": HOST_KEY,
    }
    for env in ENVIRONMENTS:
        values[f"private key of {env}"] = derive_private_key(
            SECRETS["PLATFORM_KEY_SEED"], SOLUTION, env
        )
    return values | GENERATED


def _aligned_base64(raw: bytes) -> set[str]:
    """Base64 text that any encoding of a text containing `raw` contains, whatever its offset.

    Encoders work in 3-byte groups: for each of the three alignments, the groups made only of
    `raw`'s bytes encode the same way whatever surrounds them.
    """
    forms: set[str] = set()
    for skip in range(3):
        chunk = raw[skip:]
        chunk = chunk[: len(chunk) // 3 * 3]
        if len(chunk) >= 6:
            encoded = base64.b64encode(chunk).decode("ascii")
            forms.update({encoded, encoded.replace("+", "-").replace("/", "_")})
    return forms


def leak_forms(secret: str) -> set[str]:
    """The forms in which `secret` would be recognisable in text."""
    escaped = json.dumps(secret)[1:-1]
    forms = {
        secret,
        quote(secret, safe=""),
        quote_plus(secret),
        escaped,
        escaped.replace("/", "\\/"),
        json.dumps(secret, ensure_ascii=True)[1:-1],
    }
    forms |= _aligned_base64(secret.encode("utf-8"))
    forms |= _aligned_base64(secret.encode("utf-16-le"))
    return {form.lower() for form in forms}


def leaks(where: str, text: str) -> list[str]:
    """Which secrets (and in which form) `text` contains; `where` names the text in messages."""
    haystack = text.lower()
    found = []
    for name, secret in secret_values().items():
        for form in sorted(leak_forms(secret)):
            if form in haystack:
                at = haystack.index(form)
                context = text[max(0, at - 60) : at + len(form) + 20]
                found.append(f"{name} in {where} as {form!r}: ...{context}...")
                break
    return found


def assert_no_leak(texts: Mapping[str, str]) -> None:
    found = [leak for where, text in texts.items() for leak in leaks(where, text)]
    assert not found, "\n".join(found)


def dump_hub(path: Path) -> str:
    """Every row of every table of the task hub (history, inputs, outputs, queues)."""
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return "\n".join(db.iterdump())
    finally:
        db.close()

"""`arm.connection`: one code path for Azure and the simulator; auth is off only on loopback."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from arm.connection import (
    ArmConnection,
    InsecureEndpointError,
    StaticTokenCredential,
    is_loopback_endpoint,
)

ROOT = Path(__file__).resolve().parents[2]


class FakeClient:
    """Stands in for a management client class: records how it was built."""

    def __init__(self, credential: Any, subscription_id: str, **options: Any) -> None:
        self.credential = credential
        self.subscription_id = subscription_id
        self.options = options
        self.closed = False

    def close(self) -> None:
        self.closed = True


@pytest.mark.parametrize(
    "endpoint",
    [
        "http://10.0.0.5:8080",
        "http://example.com",
        "http://management.azure.com",
        "http://192.168.1.2",
    ],
)
def test_plain_http_off_loopback_is_refused(endpoint: str):
    with pytest.raises(InsecureEndpointError, match="Refusing plain-HTTP"):
        ArmConnection(endpoint)


# Issue 13.7: `http://evil.com\\@127.0.0.1:7071` passed the loopback test, and requests then went
# to evil.com in plain HTTP. Python's urlsplit reads the host after the last `@` (127.0.0.1);
# the WHATWG URL Standard (https://url.spec.whatwg.org/#authority-state, "url is special and c
# is U+005C (\\)") ends the authority at a backslash, and so does urllib3, the parser of the
# transport azure-core sends ARM requests with (requests): the host is evil.com. A URL that two
# parsers read differently is no loopback URL.
CONFUSING_ENDPOINTS = [
    "http://evil.com\\@127.0.0.1:7071",
    "http://evil.com\\@localhost:7071",
    "http://127.0.0.1:7071\\@evil.com",
    "http://evil.com@127.0.0.1:7071",
    "http://user:secret@127.0.0.1:7071",
    "http://127.0.0.1@evil.com",
    "http://127.0.0.1:7071@evil.com:7071",
    "http://evil.com\\\\127.0.0.1:7071",
    "http://127.0.0.1\\.evil.com:7071",
    "http://127.0.0.1\t.evil.com:7071",
    "http://127.0.0.1\n@evil.com",
    "http://127.0.0.1%2f@evil.com",
    "http://127.0.0.1:99999",
]


def test_the_transport_reads_the_issue_s_url_as_evil_com():
    """The oracle of the refusals below: where urllib3 would really send the request."""
    from urllib3.util import parse_url

    assert parse_url("http://evil.com\\@127.0.0.1:7071").host == "evil.com"


@pytest.mark.parametrize("endpoint", CONFUSING_ENDPOINTS)
def test_userinfo_backslashes_and_other_confusion_are_no_loopback(endpoint: str):
    assert is_loopback_endpoint(endpoint) is False
    with pytest.raises(ValueError, match="ARM endpoint"):
        ArmConnection(endpoint)


@pytest.mark.parametrize(
    "endpoint",
    ["https://evil.com\\@management.azure.com", "https://user@management.azure.com"],
)
def test_https_endpoints_with_userinfo_or_backslashes_are_refused_too(endpoint: str):
    """A bearer token must not go where the URL only seems to point."""
    with pytest.raises(ValueError, match="ARM endpoint"):
        ArmConnection(endpoint)


def test_non_http_schemes_are_refused():
    with pytest.raises(ValueError, match="http"):
        ArmConnection("ftp://127.0.0.1/")


@pytest.mark.parametrize(
    ("endpoint", "loopback"),
    [
        ("http://127.0.0.1:5000", True),
        ("http://127.8.9.10:5000", True),
        ("http://localhost:5000", True),
        ("http://[::1]:5000", True),
        ("https://management.azure.com", False),
        ("http://localhost.example.com", False),
    ],
)
def test_loopback_detection(endpoint: str, loopback: bool):
    assert is_loopback_endpoint(endpoint) is loopback


def test_loopback_clients_get_a_static_credential_and_no_auth_policy():
    from azure.core.pipeline.policies import SansIOHTTPPolicy

    connection = ArmConnection("http://127.0.0.1:4567/", retry_total=7, polling_interval=0)
    client = connection.client(FakeClient, "Sub-1")
    assert isinstance(client.credential, StaticTokenCredential)
    assert client.subscription_id == "Sub-1"
    assert client.options["base_url"] == "http://127.0.0.1:4567"
    assert (client.options["retry_total"], client.options["retry_status"]) == (7, 7)
    assert client.options["polling_interval"] == 0
    assert type(client.options["authentication_policy"]) is SansIOHTTPPolicy
    token = client.credential.get_token("https://management.azure.com/.default")
    assert token.expires_on > time.time() + 600


def test_clients_are_cached_per_class_and_subscription():
    connection = ArmConnection("http://127.0.0.1:4567")
    first = connection.client(FakeClient, "sub-a")
    assert connection.client(FakeClient, "SUB-A") is first
    other = connection.client(FakeClient, "sub-b")
    assert other is not first
    assert other.credential is first.credential
    connection.close()
    assert first.closed
    assert other.closed
    assert connection.client(FakeClient, "sub-a") is not first


def test_azure_endpoint_uses_default_credential_and_the_bearer_policy():
    from azure.identity import DefaultAzureCredential

    connection = ArmConnection()
    assert connection.endpoint == "https://management.azure.com"
    client = connection.client(FakeClient, "sub")
    assert isinstance(client.credential, DefaultAzureCredential)
    assert "authentication_policy" not in client.options


def test_an_explicit_credential_is_used_as_given():
    credential = StaticTokenCredential("given")
    connection = ArmConnection("https://management.azure.com", credential=credential)
    assert connection.client(FakeClient, "sub").credential is credential


def test_importing_the_module_imports_no_azure_package():
    script = (
        "import json, sys, arm.connection; "
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith('azure'))))"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert json.loads(result.stdout) == []

"""osctl's HTTP client, redaction and progress following, against the wire-level fake API."""

from __future__ import annotations

import io
import socket
from collections.abc import Iterator
from urllib.parse import quote

import pytest
from hypothesis import given
from hypothesis import strategies as st

from osctl.client import ApiClient, ApiConnectionError, ApiError, normalize_base_url
from osctl.follow import (
    STALE_POLLS,
    Follower,
    Outcome,
    Snapshot,
    outcome,
)
from osctl.redact import MASK, RedactingWriter, Redactor, redact_url
from tests.unit.osctl_fake_api import FailPlan, FakeApi

KEY = "ClientTestKey-0123456789abcdefghijklmnopqrstuvwxyz/+=="
SPEC = {"location": "westeurope"}


@pytest.fixture(scope="module")
def server() -> Iterator[FakeApi]:
    fake = FakeApi().start()
    yield fake
    fake.stop()


@pytest.fixture
def fake(server: FakeApi) -> FakeApi:
    server.reset()
    return server


class Recorder:
    def __init__(self) -> None:
        self.snapshots: list[Snapshot] = []

    def update(self, snapshot: Snapshot) -> None:
        self.snapshots.append(snapshot)


def no_sleep(seconds: float) -> None:
    del seconds


# --- redaction -----------------------------------------------------------------------------


def test_redact_url_masks_code_and_sig_and_keeps_the_rest():
    url = "https://app.example.net/runtime/x?taskHub=Hub&code=abc%3D%3D&connection=Storage"
    assert redact_url(url) == (
        "https://app.example.net/runtime/x?taskHub=Hub&code=***&connection=Storage"
    )
    assert redact_url("https://s/c?sv=1&SIG=secret") == "https://s/c?sv=1&SIG=***"
    assert redact_url("https://app/api/platforms?codex=1") == "https://app/api/platforms?codex=1"


@given(
    key=st.text(
        alphabet=st.sampled_from(
            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789/+=-_"
        ),
        min_size=8,
        max_size=64,
    )
)
def test_redactor_never_lets_a_key_through_in_any_form(key: str):
    redactor = Redactor([key])
    text = f"key {key} in text, {quote(key, safe='')} encoded, https://h/p?a=1&code={key}&b=2"

    masked = redactor.text(text)

    assert key not in masked
    assert quote(key, safe="") not in masked
    assert "https://h/p?a=1&code=***" in masked


def test_redactor_ignores_values_too_short_to_be_keys():
    assert Redactor(["ab", None, ""]).text("about a cab") == "about a cab"


def test_redactor_data_masks_strings_at_any_depth_and_keeps_other_values():
    redactor = Redactor([KEY])
    data = {"a": [f"x{KEY}y", {"u": "http://h/?code=1"}], "n": 3, "b": None, KEY: True}

    assert redactor.data(data) == {
        "a": [f"x{MASK}y", {"u": "http://h/?code=***"}],
        "n": 3,
        "b": None,
        MASK: True,
    }


def test_redacting_writer_masks_each_write_and_answers_isatty():
    target = io.StringIO()
    writer = RedactingWriter(target, Redactor([KEY]))

    writer.write(f"key={KEY}\n")
    writer.flush()

    assert target.getvalue() == f"key={MASK}\n"
    assert writer.isatty() is False


# --- the client ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given_url", "expected"),
    [
        ("http://127.0.0.1:7071", "http://127.0.0.1:7071"),
        ("http://127.0.0.1:7071/", "http://127.0.0.1:7071"),
        ("https://app.azurewebsites.net/api", "https://app.azurewebsites.net"),
        ("https://app.azurewebsites.net/api/", "https://app.azurewebsites.net"),
        ("localhost:7071", "http://localhost:7071"),
        # Issue 13.7: a URL without a scheme is https, but for this machine's own host.
        ("127.0.0.1:7071", "http://127.0.0.1:7071"),
        ("[::1]:7071", "http://[::1]:7071"),
        ("myapp.azurewebsites.net", "https://myapp.azurewebsites.net"),
        ("myapp.azurewebsites.net/api", "https://myapp.azurewebsites.net"),
        ("10.1.2.3:7071", "https://10.1.2.3:7071"),
        ("localhost.example.com:7071", "https://localhost.example.com:7071"),
        ("http://myapp.example.com", "http://myapp.example.com"),
    ],
)
def test_normalize_base_url(given_url: str, expected: str):
    assert normalize_base_url(given_url) == expected


def test_the_error_envelope_becomes_an_api_error_with_details(fake: FakeApi):
    client = ApiClient(fake.url)

    with pytest.raises(ApiError) as caught:
        client.deploy("acme", {"bastion": True})

    err = caught.value
    assert (err.status, err.code, err.is_client_error) == (400, "InvalidSpec", True)
    assert [(d.target, d.message) for d in err.details] == [("location", "field required")]


def test_an_unknown_route_without_an_envelope_is_still_an_api_error(fake: FakeApi):
    client = ApiClient(fake.url)

    with pytest.raises(ApiError) as caught:
        client.request("GET", fake.url + "/api/nothing-here")

    assert caught.value.status == 404
    assert caught.value.message == "HTTP 404 Not Found: 404: Not Found"


def test_a_success_that_is_not_json_is_an_invalid_response(fake: FakeApi):
    fake.inject(200, body="<html>sign in</html>")

    with pytest.raises(ApiError) as caught:
        ApiClient(fake.url).list_platforms()

    assert caught.value.code == "InvalidResponse"
    assert not caught.value.is_client_error
    assert "<html>sign in</html>" in caught.value.message


def test_the_key_goes_only_to_the_apps_own_origin(fake: FakeApi):
    fake.seed("acme")
    client = ApiClient(fake.url, KEY)
    fake.key = None  # the fake checks no key: this test looks at what was sent

    state = client.get_platform("acme")
    other_origin = fake.url.replace("127.0.0.1", "localhost")
    path = f"/api/platforms/acme/operations/{state['lastOperation']['operationId']}"
    status, operation = client.operation(other_origin + path)

    assert (status, operation["status"]) == (200, "Succeeded")
    sent = {path: headers for _, path, headers in fake.requests}
    assert sent["/api/platforms/acme"]["x-functions-key"] == KEY
    assert "x-functions-key" not in sent[path]


def test_a_solution_id_cannot_escape_its_path(fake: FakeApi):
    with pytest.raises(ApiError) as caught:
        ApiClient(fake.url).get_platform("../platforms")

    assert caught.value.status == 404
    assert fake.requests[-1][1] == "/api/platforms/../platforms"  # one encoded path segment


def test_connection_refused_names_the_url():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]

    with pytest.raises(ApiConnectionError) as caught:
        ApiClient(f"http://127.0.0.1:{port}").list_platforms()

    assert caught.value.url == f"http://127.0.0.1:{port}/api/platforms"
    assert caught.value.reason == "connection refused"


def test_a_server_that_never_answers_times_out():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(1)  # accepts the connection in the backlog, never answers
        port = sock.getsockname()[1]

        with pytest.raises(ApiConnectionError) as caught:
            ApiClient(f"http://127.0.0.1:{port}", timeout=0.2).list_platforms()

    assert "0.2s" in caught.value.reason or "timed out" in caught.value.reason


def test_scale_needs_exactly_one_of_capacity_and_delta(fake: FakeApi):
    with pytest.raises(ValueError, match="exactly one"):
        ApiClient(fake.url).scale("acme", capacity=2, delta=1)
    assert fake.requests == []


# --- following -----------------------------------------------------------------------------


@pytest.mark.parametrize("status", [429, 500, 503])
def test_follower_rides_out_a_few_failed_polls(fake: FakeApi, status: int):
    client = ApiClient(fake.url)
    accepted = client.deploy("acme", SPEC)
    fake.inject(status, count=3)
    sink = Recorder()

    final = Follower(
        client, "acme", 0, status_url=accepted.status_url, kind="deploy", sleep=no_sleep
    ).run(sink)

    assert outcome(final) is Outcome.SUCCEEDED
    assert next(s.operation.runtime_status for s in sink.snapshots if s.operation) == "Running"


def test_follower_polls_the_operation_url_of_the_202_only(fake: FakeApi):
    client = ApiClient(fake.url)
    fake.seed("acme")
    fake.fail_next_deploy(FailPlan("life", runtime_status="Completed"))
    fake.lag_next_operation(100)  # the platform state would show the old, successful deploy
    accepted = client.deploy("acme", SPEC)
    sink = Recorder()

    final = Follower(
        client, "acme", 0, status_url=accepted.status_url, kind="deploy", sleep=no_sleep
    ).run(sink)

    assert outcome(final) is Outcome.PARTIALLY_SUCCEEDED
    assert final.status == "PartiallySucceeded"
    assert [e.name for e in final.environments if e.status == "Failed"] == ["life"]
    assert final.outputs["dev"]["serviceCenterUrl"].endswith("/ServiceCenter")
    assert len(sink.snapshots) >= 3, "progress was shown from the operation's answers"
    paths = [path for _, path, _ in fake.requests]
    assert paths[0] == "/api/platforms/acme"
    assert all(path.startswith("/api/platforms/acme/operations/") for path in paths[1:])


def test_follower_gives_up_after_too_many_failed_polls(fake: FakeApi):
    client = ApiClient(fake.url)
    client.deploy("acme", SPEC)
    fake.inject(503, count=4)

    with pytest.raises(ApiError) as caught:
        Follower(client, "acme", 0, kind="deploy", sleep=no_sleep).run(Recorder())

    assert caught.value.status == 503


def test_follower_without_a_status_url_waits_out_a_lagging_state(fake: FakeApi):
    client = ApiClient(fake.url)
    fake.seed("acme")
    baseline = Snapshot.from_platform("acme", client.get_platform("acme")).operation
    fake.fail_next_deploy(FailPlan("life"))
    fake.lag_next_operation(STALE_POLLS - 1)
    client.deploy("acme", SPEC)
    sink = Recorder()

    final = Follower(client, "acme", 0, baseline=baseline, kind="deploy", sleep=no_sleep).run(sink)

    assert outcome(final) is Outcome.FAILED
    assert final.operation is not None
    assert baseline is not None
    assert final.operation.started_at != baseline.started_at
    # The stale, successful state was never handed to the display.
    assert all(s.operation and s.operation.identity != baseline.identity for s in sink.snapshots)


def test_follower_treats_a_vanished_platform_as_torn_down_without_a_status_url(fake: FakeApi):
    client = ApiClient(fake.url)
    fake.seed("acme")
    fake.forget_destroyed = True
    baseline = Snapshot.from_platform("acme", client.get_platform("acme")).operation
    client.destroy("acme")

    final = Follower(client, "acme", 0, baseline=baseline, kind="teardown", sleep=no_sleep).run(
        Recorder()
    )

    assert outcome(final) is Outcome.SUCCEEDED
    assert "acme" not in fake.platforms


def test_wait_on_an_unknown_platform_raises_the_404(fake: FakeApi):
    with pytest.raises(ApiError) as caught:
        Follower(ApiClient(fake.url), "nope", 0, sleep=no_sleep).run(Recorder())

    assert caught.value.status == 404


# --- judging the outcome -------------------------------------------------------------------


def snapshot(kind: str, runtime: str, **envs: str) -> Snapshot:
    return Snapshot.from_platform(
        "acme",
        {
            "lastOperation": {"kind": kind, "runtimeStatus": runtime},
            "environments": {name: {"status": status} for name, status in envs.items()},
        },
    )


@pytest.mark.parametrize(
    ("snap", "targets", "expected"),
    [
        (snapshot("deploy", "Completed", dev="Succeeded", prod="Succeeded"), (), Outcome.SUCCEEDED),
        (snapshot("deploy", "Completed", dev="Succeeded", prod="Failed"), (), Outcome.FAILED),
        (snapshot("deploy", "Completed", dev="Canceled"), (), Outcome.CANCELED),
        (snapshot("deploy", "Failed", dev="Succeeded"), (), Outcome.FAILED),
        (snapshot("deploy", "Terminated"), (), Outcome.CANCELED),
        (snapshot("deploy", "Canceled"), (), Outcome.CANCELED),
        (snapshot("deploy", "Running", dev="Running"), (), Outcome.RUNNING),
        (
            snapshot("teardown", "Completed", dev="Deleted", prod="Succeeded"),
            ("dev",),
            Outcome.SUCCEEDED,
        ),
        (
            snapshot("teardown", "Completed", dev="Running", prod="Deleted"),
            ("dev",),
            Outcome.FAILED,
        ),
        (snapshot("teardown", "Completed", dev="Deleted", prod="Canceled"), (), Outcome.SUCCEEDED),
        (snapshot("teardown", "Completed", dev="Deleted", prod="Failed"), (), Outcome.FAILED),
        (Snapshot("acme", None, ()), (), Outcome.NONE),
    ],
)
def test_outcome(snap: Snapshot, targets: tuple[str, ...], expected: Outcome):
    assert outcome(snap, targets) is expected


def test_durable_custom_status_gives_the_environments():
    custom = {
        "phase": "environments",
        "environments": {"prod": {"status": "Running", "resourcesDone": 2, "resourcesTotal": 12}},
    }
    snap = Snapshot.from_durable(
        "acme", {"runtimeStatus": "Running", "customStatus": custom}, "deploy", {}
    )

    assert [(e.name, e.status, e.done, e.total) for e in snap.environments] == [
        ("prod", "Running", 2, 12)
    ]
    assert not snap.terminal


def test_environments_come_in_platform_order_whatever_the_json_order():
    snap = Snapshot.from_platform(
        "acme",
        {"environments": {n: {"status": "Pending"} for n in ("life", "zeta", "prod", "dev")}},
    )

    assert [e.name for e in snap.environments] == ["dev", "prod", "life", "zeta"]

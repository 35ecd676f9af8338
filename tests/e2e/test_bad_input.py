"""Bad input answers 4xx with the error envelope and starts nothing (end to end).

Each invalid request of `api.md` goes through the local host to the app; the test then checks
that no orchestration exists for the platform (`GET` is 404) and that the ARM simulator received
no request at all.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from localdev.armsim.server import SimulatorServer
from tests.support.azurite import Azurite
from tests.support.examples import sample
from tests.support.stack import Stack, running_stack

OTHER_SUBSCRIPTION = "99999999-8888-7777-6666-555555555555"


@pytest.fixture(scope="module")
def app(_simulator: SimulatorServer, azurite: Azurite) -> Iterator[Stack]:
    """One app for the whole module: bad input must leave it exactly as it was."""
    with running_stack(_simulator, azurite) as stack:
        yield stack


@pytest.fixture
def api(app: Stack, sim: SimulatorServer) -> Stack:
    """The module's app, with the simulator emptied (and so its request log)."""
    return app


def farm(**changes: Any) -> dict[str, Any]:
    """The demo farm spec with some top-level fields changed."""
    return {**sample("spec-demo.json"), **changes}


def with_frontends(**changes: Any) -> dict[str, Any]:
    spec = sample("spec-demo.json")
    spec["environments"]["prod"]["frontends"].update(changes)
    return spec


def nested(depth: int) -> str:
    """A spec whose tags hold lists nested `depth` deep."""
    return '{"location": "westeurope", "tags": {"a": ' + "[" * depth + "]" * depth + "}}"


def padded(size: int) -> str:
    """A spec padded with an unknown field to exactly `size` bytes."""
    shell = json.dumps({"location": "westeurope", "padding": ""})
    return json.dumps({"location": "westeurope", "padding": "x" * (size - len(shell))})


#: The documented limit of a request body (`docs/api.md`): 256 KiB, as for alerts.
MAX_BODY_BYTES = 256 * 1024


Case = tuple[str, str | bytes | dict[str, Any] | list[Any] | None, str, str | None]

#: id -> (solution id, body, expected `details[].target`, text the message must contain)
PUT_CASES: dict[str, Case] = {
    "solution id with capitals": ("Acme", farm(), "solutionId", None),
    "solution id too long": ("acmecorp", farm(), "solutionId", None),
    "solution id starting with a digit": ("1acme", farm(), "solutionId", None),
    "solution id with a hyphen": ("ac-me", farm(), "solutionId", None),
    "unknown top-level field": ("acme", farm(lcoation="westeurope"), "lcoation", "location"),
    "unknown nested field": (
        "acme",
        with_frontends(maxCapacty=4),
        "environments.prod.frontends.maxCapacty",
        "maxCapacity",
    ),
    "solution id in the body": ("acme", farm(solutionId="acme"), "solutionId", None),
    "location missing": ("acme", {"environments": {}}, "location", "required"),
    "bad CIDR": (
        "acme",
        farm(network={"addressSpace": "10.0.0.0/33"}),
        "network.addressSpace",
        None,
    ),
    "CIDR that is no address": (
        "acme",
        farm(network={"addressSpace": "ten/16"}),
        "network.addressSpace",
        None,
    ),
    "address space too small": (
        "acme",
        farm(network={"addressSpace": "10.0.0.0/28"}),
        "network.addressSpace",
        None,
    ),
    "min above max": (
        "acme",
        with_frontends(minCapacity=6, maxCapacity=3),
        "environments.prod.frontends.maxCapacity",
        "minCapacity",
    ),
    "capacity outside the bounds": (
        "acme",
        with_frontends(capacity=20, maxCapacity=6),
        "environments.prod.frontends.capacity",
        "maxCapacity",
    ),
    "maximum above the app's ceiling": (
        "acme",
        with_frontends(maxCapacity=200),
        "environments.prod.frontends.maxCapacity",
        "SCALING_MAX_CAPACITY",
    ),
    "more front-ends than the trial license allows": (
        "acme",
        {**with_frontends(maxCapacity=4), "license": "trial"},
        "environments.prod.frontends.maxCapacity",
        "trial license",
    ),
    "an image version that floats": (
        "acme",
        farm(imageVersion="latest"),
        "imageVersion",
        "pinned",
    ),
    "a certificate that is not a Key Vault secret": (
        "acme",
        farm(tls={"certificateSecretId": "https://kv1.vault.azure.net/certificates/c"}),
        "tls.certificateSecretId",
        None,
    ),
    "capacity as a string": (
        "acme",
        with_frontends(capacity="2"),
        "environments.prod.frontends.capacity",
        None,
    ),
    "capacity as a fraction": (
        "acme",
        with_frontends(capacity=2.5),
        "environments.prod.frontends.capacity",
        None,
    ),
    "bad schedule time zone": (
        "acme",
        with_frontends(
            schedules=[
                {
                    "days": ["Mon"],
                    "start": "08:00",
                    "end": "19:00",
                    "timeZone": "Mars/Olympus",
                    "minCapacity": 4,
                }
            ]
        ),
        "environments.prod.frontends.schedules.0.timeZone",
        "IANA",
    ),
    "bad schedule time": (
        "acme",
        with_frontends(
            schedules=[
                {
                    "days": ["Mon"],
                    "start": "25:00",
                    "end": "19:00",
                    "timeZone": "UTC",
                    "minCapacity": 4,
                }
            ]
        ),
        "environments.prod.frontends.schedules.0.start",
        None,
    ),
    "frontends for standalone": (
        "acme",
        farm(
            environments={
                "prod": {"mode": "standalone", "frontends": {"capacity": 2, "minCapacity": 2}}
            }
        ),
        "environments.prod.frontends",
        "farm",
    ),
    "unmanaged subscription": (
        "acme",
        farm(subscriptionId=OTHER_SUBSCRIPTION),
        "subscriptionId",
        "MANAGED_SUBSCRIPTION_IDS",
    ),
    "subscription that is no GUID": ("acme", farm(subscriptionId="mine"), "subscriptionId", None),
    "bad VM size": (
        "acme",
        farm(environments={"dev": {"vmSize": "huge"}}),
        "environments.dev.vmSize",
        None,
    ),
    "unknown environment": (
        "acme",
        farm(environments={"staging": {"vmSize": "Standard_F4s_v2"}}),
        "environments.staging",
        None,
    ),
    "environments as a list": ("acme", farm(environments=[]), "environments", "object"),
    "malformed JSON": ("acme", '{"location": "westeurope",', "body", "malformed JSON"),
    "duplicate keys": ("acme", '{"location": "a", "location": "b"}', "body", "twice"),
    "NaN": ("acme", '{"location": "westeurope", "tags": {"a": NaN}}', "body", "NaN"),
    "not UTF-8": ("acme", b'{"location": "west\xffeurope"}', "body", "UTF-8"),
    "empty body": ("acme", "", "body", None),
    "array body": ("acme", [], "body", "object"),
    "string body": ("acme", '"westeurope"', "body", "object"),
    "number body": ("acme", "42", "body", "object"),
    "null body": ("acme", "null", "body", "object"),
    "body just under the size limit": ("acme", padded(MAX_BODY_BYTES), "padding", "unknown field"),
    "deeply nested body": ("acme", nested(40), "tags.a." + ".".join(["0"] * 31), "deeper"),
    "nested beyond the parser": ("acme", nested(100_000), "body", "nested"),
}

#: Password-like fields: the target, and the app setting the message must name.
SECRET_CASES: dict[str, tuple[dict[str, Any], str, str]] = {
    "admin password": (farm(adminPassword="Sup3r-Secret!42"), "adminPassword", "VM_ADMIN_PASSWORD"),
    "sql password": (
        farm(environments={"dev": {"sqlAdminPassword": "Sup3r-Secret!42"}}),
        "environments.dev.sqlAdminPassword",
        "SQL_ADMIN_PASSWORD",
    ),
    "private key": (farm(privateKey="Sup3r-Secret!42"), "privateKey", "PLATFORM_KEY_SEED"),
    "password among tags": (
        farm(tags={"password": "Sup3r-Secret!42"}),
        "tags.password",
        "VM_ADMIN_PASSWORD",
    ),
}


def send(stack: Stack, method: str, path: str, body: object, **kwargs: Any) -> requests.Response:
    """A request whose body is sent exactly as given (bytes/str) or as JSON (anything else)."""
    if isinstance(body, bytes | str):
        data = body.encode() if isinstance(body, str) else body
        headers = {"Content-Type": "application/json"}
        return stack.api(method, path, data=data, headers=headers, **kwargs)
    return stack.api(method, path, json=body, **kwargs)


def assert_envelope(response: requests.Response, status: int = 400) -> dict[str, Any]:
    """The response is a 4xx with ARM's error envelope; returns its `error`."""
    assert response.status_code == status, response.text[:2000]
    assert response.headers["Content-Type"].startswith("application/json")
    error: dict[str, Any] = response.json()["error"]
    assert isinstance(error["code"], str)
    assert error["code"]
    assert isinstance(error["message"], str)
    assert error["message"]
    for detail in error.get("details", []):
        assert set(detail) == {"target", "message"}
        assert isinstance(detail["target"], str)
        assert isinstance(detail["message"], str)
        assert detail["message"]
    return error


def assert_nothing_started(stack: Stack, solution_id: str) -> None:
    assert stack.sim.requests() == [], "no ARM request"
    state = stack.api("GET", f"platforms/{solution_id}")
    assert state.status_code == 404, state.text
    assert state.json()["error"]["code"] == "PlatformNotFound"
    assert stack.host.host is not None
    assert stack.host.host.store is not None
    assert stack.host.host.store.get_instance(f"platform-{solution_id}") is None


@pytest.mark.parametrize("route", ["put", "plan"])
@pytest.mark.parametrize("case", list(PUT_CASES))
def test_invalid_spec_is_refused(api: Stack, case: str, route: str) -> None:
    solution_id, body, target, text = PUT_CASES[case]
    if route == "put":
        response = send(api, "PUT", f"platforms/{solution_id}", body)
    else:
        response = send(api, "POST", f"platforms/{solution_id}/plan", body)
    error = assert_envelope(response)
    assert error["code"] == "InvalidSpec"
    targets = [d["target"] for d in error["details"]]
    assert target in targets
    if text is not None:
        messages = " ".join(d["message"] for d in error["details"])
        assert text in messages, messages
    # The answer stays small whatever the body was (nothing is echoed back).
    assert len(response.content) < 4096
    assert_nothing_started(api, solution_id)


@pytest.mark.parametrize("case", list(SECRET_CASES))
def test_password_like_field_names_its_setting_never_its_value(api: Stack, case: str) -> None:
    body, target, setting = SECRET_CASES[case]
    for path in ("platforms/acme", "platforms/acme/plan"):
        response = send(api, "PUT" if path == "platforms/acme" else "POST", path, body)
        error = assert_envelope(response)
        details = {d["target"]: d["message"] for d in error["details"]}
        assert setting in details[target]
        assert "Sup3r-Secret!42" not in response.text
    assert_nothing_started(api, "acme")


def test_no_body_no_content_type_and_form_bodies_are_refused(api: Stack) -> None:
    bare = api.session.put(f"{api.base}/api/platforms/acme", timeout=30)
    assert_envelope(bare)
    form = api.session.put(
        f"{api.base}/api/platforms/acme", data={"location": "westeurope"}, timeout=30
    )
    assert_envelope(form)
    assert_nothing_started(api, "acme")


BAD_ENVIRONMENTS = ["dev,staging", "", ",", "prod;test", "DEV,,x", "dev," + "x" * 5000]


def test_invalid_environments_on_delete_are_refused(api: Stack) -> None:
    assert api.deploy("gone", sample("spec-standalone.json")).status_code == 202
    before = api.wait("gone")
    assert before["lastOperation"]["runtimeStatus"] == "Completed"
    requests_before = len(api.sim.requests())

    for environments in BAD_ENVIRONMENTS:
        response = api.api("DELETE", "platforms/gone", params={"environments": environments})

        error = assert_envelope(response)
        assert [d["target"] for d in error["details"]] == ["environments"], environments
        assert len(response.text) < 1000, "a long input is not echoed back in full"
    after = api.state("gone")
    assert after["lastOperation"] == before["lastOperation"]
    assert len(api.sim.requests()) == requests_before


def test_delete_of_an_unknown_platform_is_404_even_with_bad_environments(api: Stack) -> None:
    response = api.api("DELETE", "platforms/nope", params={"environments": "dev"})
    assert assert_envelope(response, 404)["code"] == "PlatformNotFound"
    assert_nothing_started(api, "nope")


def test_lowering_a_version_of_a_deployed_platform_is_refused(api: Stack) -> None:
    # A higher version upgrades the platform (issue 17: tests/e2e/test_upgrade_api.py); a lower
    # one is refused, naming the field, before anything reaches ARM.
    spec = sample("spec-standalone.json")
    assert api.deploy("vers", spec).status_code == 202
    before = api.wait("vers")
    assert before["lastOperation"]["runtimeStatus"] == "Completed"
    requests_before = len(api.sim.requests())

    for field in ("platformVersion", "lifetimeVersion"):
        response = api.deploy("vers", {**spec, field: "11.1.0"})

        error = assert_envelope(response)
        assert [d["target"] for d in error["details"]] == [field]
        assert "11.1.0" in error["details"][0]["message"]
    after = api.state("vers")
    assert after["lastOperation"] == before["lastOperation"]
    assert len(api.sim.requests()) == requests_before
    # The same spec again is fine (and changes nothing).
    assert api.deploy("vers", spec).status_code == 202
    assert api.wait("vers")["lastOperation"]["runtimeStatus"] == "Completed"


#: Every route that reads a body, or could be sent one (PUT, POST, DELETE).
BODY_ROUTES = [
    ("PUT", "platforms/acme"),
    ("POST", "platforms/acme/plan"),
    ("POST", "platforms/acme/scale"),
    ("POST", "platforms/acme/cancel"),
    ("DELETE", "platforms/acme"),
    ("POST", "alerts"),
]


@pytest.mark.parametrize(("method", "path"), BODY_ROUTES)
@pytest.mark.parametrize("size", [MAX_BODY_BYTES + 1, 8 << 20])
def test_a_body_over_the_limit_is_413_with_the_envelope(
    api: Stack, method: str, path: str, size: int
) -> None:
    """Issue 13.7: no body-size limit on PUT, plan and scale; now one limit on every route."""
    response = send(api, method, path, padded(size))
    error = assert_envelope(response, 413)
    assert error["code"] == "RequestTooLarge"
    assert str(MAX_BODY_BYTES) in error["message"]
    assert len(response.content) < 1000, "nothing of the body is echoed back"
    assert_nothing_started(api, "acme")

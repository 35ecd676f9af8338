"""Rendering secrets into bodies: created once per vault secret, derived again for the servers.

A fake ARM reader stands in for live state; the graph is the real one of the farm example.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from arm.secrets import (
    LEGACY_NONCE,
    RedactedError,
    RenderContext,
    SecretUnavailableError,
    generates_key_pair,
    redact,
    redacted_errors,
    render_body,
)
from outsystems.placeholders import placeholders_in
from outsystems.resource_types import (
    IDENTITY,
    KEY_VAULT,
    KEY_VAULT_SECRET_TYPE,
    ROLE_ASSIGNMENT,
    SCALE_SET,
    SQL_SERVER,
    VM,
)
from outsystems.spec import PlatformSpec, parse_spec
from outsystems.topology import Resource, ResourceGraph, build_topology

SUB = "11111111-2222-3333-4444-555555555555"
TENANT = "99999999-8888-7777-6666-555555555555"
SEED = "a-seed-of-the-app-0123456789"
ENVIRON = {"PLATFORM_KEY_SEED": SEED, "AZURE_SUBSCRIPTION_ID": SUB}
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.fixture
def platform() -> tuple[PlatformSpec, ResourceGraph]:
    spec = parse_spec(
        "acme", (EXAMPLES / "spec-farm.json").read_text(), default_subscription_id=SUB
    )
    return spec, build_topology(spec)


class FakeArm:
    """Live bodies by id (lower case), as ARM returns them: never a secret's value."""

    def __init__(self) -> None:
        self.live: dict[str, dict[str, Any]] = {f"/subscriptions/{SUB}": {"tenantId": TENANT}}

    def read(self, resource_id: str, api_version: str) -> Mapping[str, Any] | None:
        assert api_version
        return self.live.get(resource_id.lower())

    def put(self, resource_id: str, body: Mapping[str, Any]) -> None:
        stored = json.loads(json.dumps(body))
        (stored.get("properties") or {}).pop("value", None)
        self.live[resource_id.lower()] = stored


def the(graph: ResourceGraph, resource_type: str, env: str) -> Resource:
    (found,) = [r for r in graph if r.type == resource_type and r.environment == env]
    return found


def named(graph: ResourceGraph, name: str) -> Resource:
    (found,) = [r for r in graph if r.name == name]
    return found


def render(
    spec: PlatformSpec, graph: ResourceGraph, resource: Resource, arm: FakeArm, **kw: Any
) -> Any:
    context = RenderContext(
        spec=spec,
        graph=graph,
        resource=resource,
        nonce=kw.pop("nonce", "deployment-1"),
        read=arm.read,
        environ=kw.pop("environ", ENVIRON),
    )
    return render_body(dict(resource.body), context)


def test_a_server_gets_the_password_its_vault_secret_was_created_with(
    platform: tuple[PlatformSpec, ResourceGraph],
) -> None:
    spec, graph = platform
    arm = FakeArm()
    secret = named(graph, "dev-sql-admin-password")
    created = render(spec, graph, secret, arm)
    password = created["properties"]["value"]
    assert created["properties"]["contentType"] == "text/plain; nonce=deployment-1"
    assert len(password) == 28
    arm.put(secret.id, created)
    # Another deployment (another nonce) creates the server: same password, read from nothing
    # but the nonce in the secret's tags.
    server = render(spec, graph, the(graph, SQL_SERVER, "dev"), arm, nonce="deployment-2")
    assert server["properties"]["administratorLoginPassword"] == password
    assert placeholders_in(server) == set()
    # Each environment and each kind of server has its own password.
    other = render(spec, graph, named(graph, "prod-sql-admin-password"), arm)
    vm = render(spec, graph, named(graph, "dev-vm-admin-password"), arm)
    assert len({password, other["properties"]["value"], vm["properties"]["value"]}) == 3


def test_a_server_created_with_an_app_setting_keeps_that_password(
    platform: tuple[PlatformSpec, ResourceGraph],
) -> None:
    spec, graph = platform
    arm = FakeArm()
    server = the(graph, SQL_SERVER, "test")
    arm.put(server.id, {"properties": {"administratorLogin": "sqladmin"}})
    environ = {**ENVIRON, "SQL_ADMIN_PASSWORD": "The-0ld-Global-Passw0rd"}
    secret = named(graph, "test-sql-admin-password")
    created = render(spec, graph, secret, arm, environ=environ)
    assert created["properties"]["value"] == "The-0ld-Global-Passw0rd"
    assert created["properties"]["contentType"] == f"text/plain; nonce={LEGACY_NONCE}"
    arm.put(secret.id, created)
    # Were the server ever created again, it would get the same password.
    again = render(spec, graph, server, arm, environ=environ)
    assert again["properties"]["administratorLoginPassword"] == "The-0ld-Global-Passw0rd"
    with pytest.raises(SecretUnavailableError, match="SQL_ADMIN_PASSWORD"):
        render(spec, graph, server, arm)


def test_a_secret_set_outside_the_app_is_not_guessed(
    platform: tuple[PlatformSpec, ResourceGraph],
) -> None:
    spec, graph = platform
    arm = FakeArm()
    secret = named(graph, "life-vm-admin-password")
    arm.put(secret.id, {"properties": {"contentType": "text/plain"}})
    with pytest.raises(SecretUnavailableError, match="set outside the app") as raised:
        render(spec, graph, the(graph, VM, "life"), arm)
    assert "delete the secret" in str(raised.value)


def test_the_private_key_is_the_one_derived_before_the_vault(
    platform: tuple[PlatformSpec, ResourceGraph],
) -> None:
    from outsystems.keys import derive_private_key

    spec, graph = platform
    created = render(spec, graph, named(graph, "prod-private-key"), FakeArm())
    assert created["properties"]["value"] == derive_private_key(SEED, "acme", "prod")


def test_a_self_signed_certificate_for_the_gateway(
    platform: tuple[PlatformSpec, ResourceGraph],
) -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import pkcs12

    spec, graph = platform
    created = render(spec, graph, named(graph, "life-gateway-certificate"), FakeArm())
    assert created["properties"]["contentType"] == "application/x-pkcs12"
    key, certificate, _ = pkcs12.load_key_and_certificates(
        base64.b64decode(created["properties"]["value"]), None
    )
    assert key is not None
    assert certificate is not None
    common_name = certificate.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value
    assert common_name == f"acme-life-{build_names(spec).suffix}.westeurope.cloudapp.azure.com"


def test_only_the_gateways_certificates_generate_a_key_pair(
    platform: tuple[PlatformSpec, ResourceGraph],
) -> None:
    # What a start batch sends first (`begin_apply_resources`): the renders that take CPU.
    _, graph = platform
    picked = sorted(r.name for r in graph if generates_key_pair(r))
    assert picked == [f"{env}-gateway-certificate" for env in ("dev", "life", "prod", "test")]
    assert all(r.type == KEY_VAULT_SECRET_TYPE for r in graph if generates_key_pair(r))


def build_names(spec: PlatformSpec) -> Any:
    from outsystems.names import PlatformNames

    return PlatformNames.of(spec.solution_id, spec.subscription_id, spec.resource_group)


def test_references_and_the_tenant_are_read_from_arm(
    platform: tuple[PlatformSpec, ResourceGraph],
) -> None:
    spec, graph = platform
    arm = FakeArm()
    identity = the(graph, IDENTITY, "dev")
    arm.put(identity.id, {"properties": {"principalId": "p-123", "clientId": "c"}})
    grant = next(r for r in graph if r.type == ROLE_ASSIGNMENT and identity.id in r.depends_on)
    assert render(spec, graph, grant, arm)["properties"]["principalId"] == "p-123"
    vault = the(graph, KEY_VAULT, "shared")
    assert render(spec, graph, vault, arm)["properties"]["tenantId"] == TENANT
    with pytest.raises(SecretUnavailableError, match="principalId"):
        render(spec, graph, grant, FakeArm())


def test_the_scale_sets_policy_tags_get_a_mac_only_the_seed_gives(
    platform: tuple[PlatformSpec, ResourceGraph],
) -> None:
    spec, graph = platform
    arm = FakeArm()
    scale_set = the(graph, SCALE_SET, "prod")
    arm.put(
        named(graph, "prod-frontends-admin-password").id,
        {"properties": {"contentType": "text/plain; nonce=n"}},
    )
    tags = render(spec, graph, scale_set, arm)["tags"]
    other = render(spec, graph, scale_set, arm, environ={**ENVIRON, "PLATFORM_KEY_SEED": "x"})
    assert len(tags["osScalingPolicyMac"]) == 64
    assert tags["osScalingPolicyMac"] != other["tags"]["osScalingPolicyMac"]


def test_rendered_secrets_are_masked_in_error_text(
    platform: tuple[PlatformSpec, ResourceGraph],
) -> None:
    spec, graph = platform
    created = render(spec, graph, named(graph, "outsystems-admin-password"), FakeArm())
    password = created["properties"]["value"]
    encoded = base64.b64encode(password.encode()).decode()
    text = f"setup failed: login with {password} ({encoded}) refused"
    assert redact(text) == "setup failed: login with *** (***) refused"
    with pytest.raises(RedactedError) as raised, redacted_errors("acme"):
        raise ValueError(f"the body held {password}")
    assert password not in str(raised.value)
    assert str(raised.value) == "ValueError: the body held ***"
    assert raised.value.__cause__ is None
    assert raised.value.__suppress_context__


def test_every_secret_type_renders_without_placeholders_left(
    platform: tuple[PlatformSpec, ResourceGraph],
) -> None:
    spec, graph = platform
    arm = FakeArm()
    for resource in graph:
        if resource.type == KEY_VAULT_SECRET_TYPE:
            rendered = render(spec, graph, resource, arm)
            assert placeholders_in(rendered) == set()
            arm.put(resource.id, rendered)
    for resource in graph:
        if resource.type != KEY_VAULT_SECRET_TYPE:
            arm.put(resource.id, {"properties": {"principalId": "p"}})
    for resource in graph:
        if resource.type in {SQL_SERVER, VM, SCALE_SET}:
            assert placeholders_in(render(spec, graph, resource, arm)) <= {"ALERT_WEBHOOK_URL"}


def test_an_activity_fails_with_its_secrets_masked_before_history_sees_it() -> None:
    from activities.redaction import redacting

    leaked = "Sup3r-Secret-Passw0rd-x7"
    redact_me = {"PLATFORM_KEY_SEED": "seed", "VM_ADMIN_PASSWORD": leaked}

    @redacting
    def activity(request: dict[str, Any]) -> None:
        raise RuntimeError(f"ARM said: bad password {leaked}")

    import os

    before = os.environ.get("VM_ADMIN_PASSWORD")
    os.environ["VM_ADMIN_PASSWORD"] = redact_me["VM_ADMIN_PASSWORD"]
    try:
        with pytest.raises(RedactedError) as raised:
            activity({"solutionId": "acme"})
    finally:
        if before is None:
            del os.environ["VM_ADMIN_PASSWORD"]
        else:
            os.environ["VM_ADMIN_PASSWORD"] = before
    assert leaked not in str(raised.value)
    assert str(raised.value) == "RuntimeError: ARM said: bad password ***"
    assert activity.__name__ == "activity"

"""Values for the placeholders of a resource body, computed at the moment the body is sent.

The resource graph carries `{{NAME}}` tokens instead of secrets and of values only ARM knows
(`outsystems.placeholders`); this module supplies them:

- a vault secret's value (`SECRET_VALUE`) when the app creates the secret: a password derived
  from `PLATFORM_KEY_SEED`, the secret's id and a nonce (the deployment's id, kept in the
  secret's content type, `text/plain; nonce=<id>`), the environment's OutSystems private key,
  or a new self-signed certificate;
- the value of a secret a body needs (`KEY_VAULT_SECRET:<name>`, a VM's or SQL server's admin
  password), derived again from the nonce in the secret's content type: the app never reads the
  vault's data plane;
- properties ARM computes (`REFERENCE:<id>#<path>`, e.g. an identity's principal id), the
  subscription's tenant, the scale set's policy MAC, the packaged setup script.

Every secret value rendered is remembered (in this process only) so that `redact` can mask it in
error text. Nothing here is logged or returned to an orchestration.
"""

from __future__ import annotations

import base64
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from appsettings import SECRET_SETTINGS, required
from outsystems import placeholders
from outsystems.keys import derive_password, derive_private_key
from outsystems.names import ENVIRONMENTS, NONCE_PARAMETER, Environment, PlatformNames
from outsystems.resource_types import (
    KEY_VAULT_SECRET_TYPE,
    SCALE_SET,
    SQL_SERVER,
    SUBSCRIPTION,
    VM,
    api_version,
    type_of,
)

if TYPE_CHECKING:
    from outsystems.spec import PlatformSpec
    from outsystems.topology import Resource, ResourceGraph

SETUP_SCRIPT = Path(__file__).resolve().parents[1] / "infra" / "scripts" / "Install-OutSystems.ps1"
SUBSCRIPTIONS_API_VERSION = api_version(SUBSCRIPTION)
#: The nonce tag of a secret seeded from a pre-vault app setting (`VM_ADMIN_PASSWORD`,
#: `SQL_ADMIN_PASSWORD`) for a server that was created with it.
LEGACY_NONCE = "app-setting"
#: Which app setting held a kind of server's password before each platform had its own vault.
_LEGACY_SETTINGS = {
    SQL_SERVER: "SQL_ADMIN_PASSWORD",
    VM: "VM_ADMIN_PASSWORD",
    SCALE_SET: "VM_ADMIN_PASSWORD",
}
CERTIFICATE_VALIDITY = timedelta(days=365)

#: Reads one resource's live body (None: it does not exist), given its id and API version.
Reader = Callable[[str, str], Mapping[str, Any] | None]


class SecretUnavailableError(RuntimeError):
    """A body needs a secret the app cannot produce (never carries a secret value)."""


@lru_cache(maxsize=1)
def setup_script_b64() -> str:
    """The OutSystems setup script, base64-encoded as VM `userData` takes it."""
    return base64.b64encode(SETUP_SCRIPT.read_bytes()).decode("ascii")


# --- What was rendered, for redaction ---------------------------------------------------------

_rendered_lock = threading.Lock()
_rendered: set[str] = set()


def _remember(value: str) -> str:
    if len(value) >= 8:
        with _rendered_lock:
            _rendered.add(value)
    return value


def _secret_lengths(values: Iterable[str]) -> list[str]:
    return sorted((v for v in values if len(v) >= 4), key=len, reverse=True)


def redact(
    text: str, *, solution_id: str | None = None, environ: Mapping[str, str] | None = None
) -> str:
    """`text` (e.g. an ARM error message echoing a script's output) with our secrets masked.

    ARM never echoes the secrets we send, but an extension's error message carries whatever
    the script printed: this keeps such text out of orchestration history and events. It masks
    the secret settings, the platform's private keys and every secret value this process
    rendered, also in base64.
    """
    import os

    env = environ if environ is not None else os.environ
    secrets = [env.get(name, "").strip() for name in SECRET_SETTINGS]
    seed = env.get("PLATFORM_KEY_SEED", "").strip()
    if seed and solution_id:
        secrets.extend(derive_private_key(seed, solution_id, e) for e in ENVIRONMENTS)
    with _rendered_lock:
        secrets.extend(_rendered)
    for secret in _secret_lengths(secrets):
        for form in {secret, base64.b64encode(secret.encode()).decode("ascii")}:
            text = text.replace(form, "***")
    return text


# --- Rendering --------------------------------------------------------------------------------


def self_signed_certificate(common_name: str, *, now: datetime | None = None) -> str:
    """A new self-signed server certificate and key, as base64 PKCS#12 without a password
    (what Application Gateway reads from a Key Vault secret)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.hazmat.primitives.serialization import pkcs12
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    start = (now or datetime.now(UTC)) - timedelta(minutes=5)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + CERTIFICATE_VALIDITY)
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(common_name)]), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(key, hashes.SHA256())
    )
    data = pkcs12.serialize_key_and_certificates(
        common_name.encode(), key, certificate, None, serialization.NoEncryption()
    )
    return base64.b64encode(data).decode("ascii")


@dataclass(frozen=True)
class RenderContext:
    """What rendering one resource's body needs besides the body."""

    spec: PlatformSpec
    graph: ResourceGraph
    resource: Resource
    #: The deploying orchestration's id: the nonce of the secrets created now.
    nonce: str
    read: Reader
    environ: Mapping[str, str] | None = None

    @property
    def names(self) -> PlatformNames:
        spec = self.spec
        return PlatformNames.of(
            spec.solution_id, spec.subscription_id, spec.resource_group, spec.naming
        )

    def setting(self, name: str) -> str:
        return required(name, self.environ)

    def optional_setting(self, name: str) -> str:
        import os

        return (self.environ if self.environ is not None else os.environ).get(name, "").strip()


def render_body(body: Any, context: RenderContext) -> Any:
    """The body with every placeholder filled in, ready to send (never log or return it)."""
    created: list[tuple[str, str]] = []

    def new_secret() -> tuple[str, str]:
        # Value and nonce of a secret being created come from one draw (a certificate is new
        # each time).
        if not created:
            created.append(_new_secret(context))
        return created[0]

    values = {
        found.key: _value(found, body, context, new_secret)
        for found in placeholders.tokens_in(body)
    }
    return placeholders.render(body, values)


def _value(
    found: placeholders.Token,
    body: Any,
    context: RenderContext,
    new_secret: Callable[[], tuple[str, str]],
) -> str:
    name = found.name
    if name == placeholders.SETUP_SCRIPT_B64:
        return setup_script_b64()
    if name == placeholders.ALERT_WEBHOOK_URL:
        return _remember(context.setting("ALERT_WEBHOOK_URL"))
    if name == placeholders.TENANT_ID:
        return _tenant_id(context)
    if name == placeholders.REFERENCE and found.argument:
        return _reference(found.argument, context)
    if name == placeholders.SECRET_NONCE:
        return new_secret()[1]
    if name == placeholders.SECRET_VALUE:
        return _remember(new_secret()[0])
    if name == placeholders.KEY_VAULT_SECRET and found.argument:
        return _remember(_existing_secret(found.argument, context))
    if name == placeholders.SCALING_POLICY_MAC:
        return _policy_mac(body, context)
    raise KeyError(f"unknown placeholder {{{{{found.key}}}}} in a resource body")


def _tenant_id(context: RenderContext) -> str:
    subscription = f"/subscriptions/{context.spec.subscription_id}"
    live = context.read(subscription, SUBSCRIPTIONS_API_VERSION)
    tenant = (live or {}).get("tenantId")
    if not isinstance(tenant, str) or not tenant:
        raise SecretUnavailableError(f"ARM did not say the tenant of {subscription}")
    return tenant


def _reference(argument: str, context: RenderContext) -> str:
    resource_id, path = placeholders.split_reference(argument)
    live = context.read(resource_id, api_version(type_of(resource_id)))
    value: Any = live
    for part in path.split("."):
        value = value.get(part) if isinstance(value, Mapping) else None
    if not isinstance(value, str) or not value:
        raise SecretUnavailableError(f"{resource_id} has no {path} yet")
    return value


def _environment(name: str) -> Environment:
    for env in ENVIRONMENTS:
        if env == name:
            return env
    raise ValueError(f"{name!r} is not an environment")


def generates_key_pair(resource: Resource) -> bool:
    """Whether creating this resource generates a key pair: a gateway certificate's secret,
    whose RSA key takes tens of milliseconds of CPU (the one costly body to render)."""
    return resource.type == KEY_VAULT_SECRET_TYPE and _secret_kind(resource.name) == "certificate"


def _secret_kind(secret_name: str) -> str:
    if secret_name.endswith("-private-key"):
        return "private-key"
    if secret_name.endswith("-gateway-certificate"):
        return "certificate"
    return "password"


def _consumers(context: RenderContext) -> list[Resource]:
    secret_id = context.resource.id.lower()
    return [
        r
        for r in context.graph
        if r.type in _LEGACY_SETTINGS and any(d.lower() == secret_id for d in r.depends_on)
    ]


def _new_secret(context: RenderContext) -> tuple[str, str]:
    """The value and nonce of the secret resource being created."""
    resource = context.resource
    secret_name = resource.name
    environment = resource.environment
    seed = context.setting("PLATFORM_KEY_SEED")
    kind = _secret_kind(secret_name)
    if kind == "private-key":
        # Derived from the seed alone, as before the vault: servers set up earlier keep theirs.
        return derive_private_key(seed, context.spec.solution_id, environment), context.nonce
    if kind == "certificate":
        label = context.names.dns_label(_environment(environment))
        fqdn = f"{label}.{context.spec.location}.cloudapp.azure.com"
        return self_signed_certificate(fqdn), context.nonce
    # A server created before the platform had a vault has the password of an app setting: the
    # vault gets that one (migration; docs/deploy-to-azure.md), not a new one it does not have.
    for consumer in _consumers(context):
        legacy = context.optional_setting(_LEGACY_SETTINGS[consumer.type])
        if legacy and context.read(consumer.id, consumer.api_version) is not None:
            return legacy, LEGACY_NONCE
    return derive_password(seed, resource.id, context.nonce), context.nonce


def _existing_secret(secret_name: str, context: RenderContext) -> str:
    """The value of a secret of the platform's vault, computed again from its nonce."""
    vault = context.names.key_vault
    secret_id = (
        f"/subscriptions/{context.spec.subscription_id}/resourceGroups/"
        f"{context.spec.resource_group}/providers/{KEY_VAULT_SECRET_TYPE.rsplit('/', 1)[0]}"
        f"/{vault}/secrets/{secret_name}"
    )
    live = context.read(secret_id, api_version(KEY_VAULT_SECRET_TYPE))
    if live is None:
        raise SecretUnavailableError(f"the secret {secret_name} is missing from the vault {vault}")
    nonce = nonce_of((live.get("properties") or {}).get("contentType"))
    if nonce == LEGACY_NONCE:
        setting = _LEGACY_SETTINGS[context.resource.type]
        if not context.optional_setting(setting):
            raise SecretUnavailableError(
                f"the secret {secret_name} holds the password of the app setting {setting}, "
                "which is no longer set: set it again, or delete the secret so that the app "
                "generates a new password"
            )
        return context.setting(setting)
    if not nonce:
        raise SecretUnavailableError(
            f"the secret {secret_name} of the vault {vault} was set outside the app (its content "
            f"type has no {NONCE_PARAMETER}), so the app cannot create {context.resource.name} "
            "with it: "
            "delete the secret to let the app generate a new one, or create the server yourself"
        )
    return derive_password(context.setting("PLATFORM_KEY_SEED"), secret_id, nonce)


def nonce_of(content_type: object) -> str | None:
    """The nonce a generated password's content type records (`text/plain; nonce=...`)."""
    if not isinstance(content_type, str):
        return None
    for parameter in content_type.split(";")[1:]:
        name, _, value = parameter.partition("=")
        if name.strip().lower() == NONCE_PARAMETER and value.strip():
            return value.strip()
    return None


def _policy_mac(body: Any, context: RenderContext) -> str:
    from outsystems.policy import POLICY_MAC_TAG, policy_mac, scaling_policy_key

    tags = {
        str(k): str(v)
        for k, v in ((body or {}).get("tags") or {}).items()
        if str(k).lower() != POLICY_MAC_TAG.lower()
    }
    key = scaling_policy_key(context.setting("PLATFORM_KEY_SEED"))
    return policy_mac(key, context.resource.id, tags)


class RedactedError(RuntimeError):
    """An activity's failure with every known secret masked in its message.

    The Functions worker turns an activity's exception into the `TaskFailed` event of the
    orchestration's history (message and stack trace): the original exception, whose text may
    quote a script's output or a request body, must not get there.
    """


@contextmanager
def redacted_errors(solution_id: str | None) -> Iterator[None]:
    """Re-raise any exception of the block as `RedactedError` with its message redacted."""
    try:
        yield
    except RedactedError:
        raise
    except Exception as error:
        message = redact(f"{type(error).__name__}: {error}", solution_id=solution_id)
        raise RedactedError(message) from None

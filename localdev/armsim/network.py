"""NAT gateways, WAF policies and Application Gateways (WAF_v2, Key Vault certificates).

Shapes from Azure/azure-rest-api-specs, specification/network/resource-manager/
Microsoft.Network (natGateway.json, webapplicationfirewall.json, applicationGateway.json).
Refusals:

- a public IP serves one resource: 400 `PublicIPAddressInUse` "Resource {nat} is referencing
  public IP address {ip} that is already allocated to resource {other}." (ARM's answer to a NAT
  gateway PUT, quoted in gardener/gardener-extension-provider-azure issue #757);
- NAT gateways take Standard public IPs only (Microsoft's NAT gateway docs: Basic public IPs
  are not compatible); the code for it is not published: `NatGatewayBasicSkuPublicIpNotSupported`
  is ours;
- WAF_v2 without a WAF policy or configuration: 400
  `ApplicationGatewayFirewallNotConfiguredForSelectedSku` "Application Gateway {id} with the
  selected SKU tier WAF_v2 must have a valid WAF policy or configuration" (Azure/azure-cli
  issue #24029); a WAF policy on another tier (only WAF_v2 takes one, MicrosoftDocs/azure-docs
  issue #61654): 400 `ApplicationGatewayFeatureCannotBeEnabledForSelectedSku` in ARM's wording
  for a feature a tier lacks (hashicorp/terraform-provider-azurerm issue #15531; the feature
  word "FirewallPolicy" is ours);
- an `sslPolicy` value outside the spec's enums: 400 `InvalidRequestFormat` "Cannot parse the
  request." with the value in `details` (how the network provider answers a value it cannot
  read; the detail wording is ours);
- an HTTPS listener's Key Vault certificate that the gateway's identity cannot read ends the
  create (or update) operation with `ApplicationGatewayKeyVaultSecretException` "Problem occured
  while accessing and validating KeyVault Secrets associated with Application Gateway '{id}'.
  See details below:" (ARM's text, typo included, as a public Terraform log quotes it; Microsoft's
  Application Gateway troubleshooting lists the code and message). Details: access denied
  (`ApplicationGatewayKeyVaultSecretAccessDenied`, ARM's message from the same log) when no
  role whose data actions include `Microsoft.KeyVault/vaults/secrets/getSecret/action` covers
  the secret (nor, in access-policy vaults, a policy with Get); otherwise the codes of
  MicrosoftDocs/azure-docs articles/application-gateway/application-gateway-key-vault-common-
  errors.md (`SecretDeletedFromKeyVault`, `KeyVaultSoftDeleted`,
  `UserAssignedManagedIdentityNotFound`) with their descriptions, and "Unable to retrieve
  certificate '{name}' from Key Vault '{vault}'." (Microsoft's listener-certificate
  troubleshooting) for a vault that does not exist.
"""

from __future__ import annotations

import re
from typing import Any

from localdev.armsim import backend_health, keyvault
from localdev.armsim.errors import ArmError, missing_property
from localdev.armsim.hooks import ArmSim, Behaviour, properties_of
from localdev.armsim.messages import SimRequest, SimResponse
from localdev.armsim.paths import ResourcePath, key
from localdev.armsim.store import Operation, Resource
from localdev.armsim.validation import get_path

NAT_GATEWAY_TYPE = "Microsoft.Network/natGateways"
SUBNET_TYPE = "Microsoft.Network/virtualNetworks/subnets"
GATEWAY_TYPE = "Microsoft.Network/applicationGateways"
#: Managed rule sets of Application Gateway WAF policies (Microsoft's WAF docs: DRS 2.1, CRS
#: 3.2/3.1/3.0/2.2.9, Bot Manager 0.1/1.0/1.1).
RULE_SETS = frozenset(
    {
        ("microsoft_defaultruleset", "2.1"),
        ("owasp", "3.2"),
        ("owasp", "3.1"),
        ("owasp", "3.0"),
        ("owasp", "2.2.9"),
        ("microsoft_botmanagerruleset", "0.1"),
        ("microsoft_botmanagerruleset", "1.0"),
        ("microsoft_botmanagerruleset", "1.1"),
    }
)
#: applicationGateway.json enums: ApplicationGatewaySslPolicyType, ...PolicyName, ...Protocol.
SSL_POLICY_TYPES = frozenset({"Predefined", "Custom", "CustomV2"})
SSL_POLICY_NAMES = frozenset(
    {
        "AppGwSslPolicy20150501",
        "AppGwSslPolicy20170401",
        "AppGwSslPolicy20170401S",
        "AppGwSslPolicy20220101",
        "AppGwSslPolicy20220101S",
    }
)
SSL_PROTOCOLS = frozenset({"TLSv1_0", "TLSv1_1", "TLSv1_2", "TLSv1_3"})
_SECRET_URI = re.compile(
    r"https://(?P<vault>[A-Za-z0-9-]+)\.vault\.azure\.net(?::443)?/secrets/(?P<name>[A-Za-z0-9-]+)"
    r"(?:/(?P<version>[0-9a-fA-F]*))?/?",
    re.IGNORECASE,
)


def _referencing(engine: ArmSim, type_name: str, collection: str, target: str) -> list[str]:
    """Ids of `type_name` resources whose `properties.<collection>` lists `{"id": target}`."""
    found = []
    for resource in engine.store.resources.values():
        if resource.type.lower() != type_name.lower() or resource.state == "Deleting":
            continue
        items = get_path(resource.body, f"properties.{collection}") or []
        if isinstance(items, dict):
            items = [items]
        if any(isinstance(i, dict) and key(str(i.get("id", ""))) == key(target) for i in items):
            found.append(resource.id)
    return found


class NatGateway(Behaviour):
    """NAT gateways: Standard SKU, Standard public IPs each used once; subnets shown."""

    def check(
        self, engine: ArmSim, path: ResourcePath, body: dict[str, Any], existing: Resource | None
    ) -> None:
        sku = str(get_path(body, "sku.name") or "Standard")
        if sku != "Standard":
            raise ArmError(
                400,
                "InvalidParameter",
                f"The value '{sku}' is not valid for sku.name: NAT gateways are Standard.",
                target="sku.name",
            )
        for item in get_path(body, "properties.publicIpAddresses") or []:
            pip_id = str(item.get("id", ""))
            pip = engine.store.get(pip_id)
            if pip is None:
                continue
            if str(get_path(pip.body, "sku.name") or "Basic").lower() != "standard":
                raise ArmError(
                    400,
                    "NatGatewayBasicSkuPublicIpNotSupported",
                    f"Resource {path.id} is referencing public IP address {pip_id} of SKU "
                    "Basic; NAT gateways take Standard SKU public IP addresses only.",
                )
            for holder in _referencing(engine, NAT_GATEWAY_TYPE, "publicIpAddresses", pip_id):
                if key(holder) != key(path.id):
                    raise ArmError(
                        400,
                        "PublicIPAddressInUse",
                        f"Resource {path.id} is referencing public IP address {pip_id} that is "
                        f"already allocated to resource {holder}.",
                    )

    def decorate(
        self, engine: ArmSim, resource: Resource, view: dict[str, Any], expand: str
    ) -> None:
        properties = properties_of(view)
        properties.setdefault("idleTimeoutInMinutes", 4)
        subnets = _referencing(engine, SUBNET_TYPE, "natGateway", resource.id)
        if subnets:
            properties["subnets"] = [{"id": subnet} for subnet in subnets]


def public_ip_nat_gateway(engine: ArmSim, pip: Resource) -> str | None:
    """The NAT gateway a public IP serves, if any."""
    holders = _referencing(engine, NAT_GATEWAY_TYPE, "publicIpAddresses", pip.id)
    return holders[0] if holders else None


class WafPolicy(Behaviour):
    """WAF policies: managed rule sets Microsoft publishes; the gateways using the policy."""

    def check(
        self, engine: ArmSim, path: ResourcePath, body: dict[str, Any], existing: Resource | None
    ) -> None:
        rule_sets = get_path(body, "properties.managedRules.managedRuleSets")
        if not rule_sets:
            raise missing_property("properties.managedRules")
        for index, rule_set in enumerate(rule_sets):
            kind = str(rule_set.get("ruleSetType", ""))
            version = str(rule_set.get("ruleSetVersion", ""))
            if (kind.lower(), version) not in RULE_SETS:
                raise ArmError(
                    400,
                    "InvalidParameter",
                    f"Managed rule set {kind} {version} is not supported.",
                    target=f"properties.managedRules.managedRuleSets[{index}]",
                )

    def decorate(
        self, engine: ArmSim, resource: Resource, view: dict[str, Any], expand: str
    ) -> None:
        gateways = _referencing(engine, GATEWAY_TYPE, "firewallPolicy", resource.id)
        if gateways:
            properties_of(view)["applicationGateways"] = [{"id": g} for g in gateways]


def _unparsable(value: str, where: str) -> ArmError:
    return ArmError(
        400,
        "InvalidRequestFormat",
        "Cannot parse the request.",
        details=[
            {"code": "InvalidJson", "message": f"The value '{value}' is not valid for {where}."}
        ],
    )


class ApplicationGateway(Behaviour):
    """Gateways: WAF tiers and policies, TLS policies, Key Vault certificates at completion."""

    def check(
        self, engine: ArmSim, path: ResourcePath, body: dict[str, Any], existing: Resource | None
    ) -> None:
        properties = body.get("properties") or {}
        tier = str(get_path(properties, "sku.tier") or "")
        policy = get_path(properties, "firewallPolicy.id")
        inline = properties.get("webApplicationFirewallConfiguration")
        if tier == "WAF_v2" and not policy and not inline:
            raise ArmError(
                400,
                "ApplicationGatewayFirewallNotConfiguredForSelectedSku",
                f"Application Gateway {path.id} with the selected SKU tier WAF_v2 must have a "
                "valid WAF policy or configuration",
            )
        if policy and tier != "WAF_v2":
            raise ArmError(
                400,
                "ApplicationGatewayFeatureCannotBeEnabledForSelectedSku",
                f"Application Gateway {path.id} does not support FirewallPolicy for the selected "
                f"SKU tier {tier}. Supported SKU tiers are WAF_v2.",
            )
        self._check_ssl_policy(properties.get("sslPolicy"))

    @staticmethod
    def _check_ssl_policy(ssl_policy: Any) -> None:
        if not isinstance(ssl_policy, dict):
            return
        policy_type = ssl_policy.get("policyType")
        if policy_type is not None and policy_type not in SSL_POLICY_TYPES:
            raise _unparsable(str(policy_type), "properties.sslPolicy.policyType")
        name = ssl_policy.get("policyName")
        if name is not None and name not in SSL_POLICY_NAMES:
            raise _unparsable(str(name), "properties.sslPolicy.policyName")
        if policy_type == "Predefined" and name is None:
            raise missing_property("properties.sslPolicy.policyName")
        minimum = ssl_policy.get("minProtocolVersion")
        if minimum is not None and minimum not in SSL_PROTOCOLS:
            raise _unparsable(str(minimum), "properties.sslPolicy.minProtocolVersion")

    def action(
        self, engine: ArmSim, resource: Resource, name: str, request: SimRequest
    ) -> SimResponse | None:
        if name.lower() != "backendhealth":
            return None
        return backend_health.start(engine, resource, request)

    def action_outcome(
        self, engine: ArmSim, resource: Resource, op: Operation
    ) -> dict[str, Any] | None:
        backend_health.report(engine, resource, op)
        return None

    def outcome(self, engine: ArmSim, resource: Resource, op: Operation) -> dict[str, Any] | None:
        if op.kind == "delete":
            return None
        details = [
            detail
            for certificate in get_path(resource.body, "properties.sslCertificates") or []
            if (detail := _certificate_problem(engine, resource, certificate)) is not None
        ]
        if not details:
            return None
        return {
            "code": "ApplicationGatewayKeyVaultSecretException",
            "message": (
                "Problem occured while accessing and validating KeyVault Secrets associated "
                f"with Application Gateway '{resource.id}'. See details below:"
            ),
            "details": details,
        }


def _identity_principals(engine: ArmSim, gateway: Resource) -> list[str]:
    identities = get_path(gateway.body, "identity.userAssignedIdentities") or {}
    principals = []
    for identity_id in identities:
        identity = engine.store.get(str(identity_id))
        if identity is not None and identity.extra.get("principalId"):
            principals.append(str(identity.extra["principalId"]))
    return principals


def _certificate_problem(
    engine: ArmSim, gateway: Resource, certificate: dict[str, Any]
) -> dict[str, str] | None:
    uri = get_path(certificate, "properties.keyVaultSecretId")
    if not uri:
        return None
    name = str(certificate.get("name", ""))
    match = _SECRET_URI.fullmatch(str(uri))
    vault_name = match.group("vault") if match else str(uri)
    unable = f"Unable to retrieve certificate '{name}' from Key Vault '{vault_name}'."
    principals = _identity_principals(engine, gateway)
    if not principals:
        return {
            "code": "UserAssignedManagedIdentityNotFound",
            "message": f"{unable} The associated user-assigned managed identity has been deleted.",
        }
    vault = keyvault.live_vault(engine, vault_name) if match else None
    if vault is None:
        if match and keyvault.deleted_vaults(engine, vault_name):
            return {
                "code": "KeyVaultSoftDeleted",
                "message": f"{unable} The associated key vault is in soft-delete state.",
            }
        return {"code": "ApplicationGatewayKeyVaultSecretException", "message": unable}
    assert match is not None
    secret = engine.store.get(f"{vault.id}/secrets/{match.group('name')}")
    if secret is None:
        return {
            "code": "SecretDeletedFromKeyVault",
            "message": f"{unable} The associated certificate has been deleted from Key Vault.",
        }
    if any(keyvault.secret_readable(engine, p, secret) for p in principals):
        return None
    return {
        "code": "ApplicationGatewayKeyVaultSecretAccessDenied",
        "message": (
            f"Access denied for KeyVault Secret '{uri}' for Application Gateway '{gateway.id}'. "
            "Make sure that Identity assigned to Application Gateway has access to the KeyVault "
            "associated with secret."
        ),
    }

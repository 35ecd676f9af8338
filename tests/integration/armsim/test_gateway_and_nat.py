"""NAT gateways, WAF policies and Application Gateways with Key Vault certificates.

Oracles:
- Azure/azure-rest-api-specs, specification/network/resource-manager/Microsoft.Network
  (natGateway.json: `sku.name` Standard, `publicIpAddresses`, read-only `subnets`;
  virtualNetwork.json: a subnet's `natGateway` and `defaultOutboundAccess`;
  webapplicationfirewall.json: `managedRules` required, `policySettings`, read-only
  `applicationGateways`; applicationGateway.json: `firewallPolicy`, `sslCertificates[]
  .keyVaultSecretId`, `redirectConfigurations`, `sslPolicy` with `policyType` Predefined and
  `policyName` such as AppGwSslPolicy20220101).
- `PublicIPAddressInUse` "Resource {nat} is referencing public IP address {ip} that is already
  allocated to resource {other}." (ARM's answer to a NAT gateway PUT, quoted in
  gardener/gardener-extension-provider-azure issue #757).
- `ApplicationGatewayFirewallNotConfiguredForSelectedSku` "Application Gateway {id} with the
  selected SKU tier WAF_v2 must have a valid WAF policy or configuration" (Azure/azure-cli issue
  #24029, hashicorp/terraform-provider-azurerm PR #19304: a 400 at the PUT).
- WAF policies can only be associated with the WAF_v2 SKU (MicrosoftDocs/azure-docs issue
  #61654, answer from Microsoft); the refusal's code follows ARM's pattern for a feature the SKU
  tier lacks, `ApplicationGatewayFeatureCannotBeEnabledForSelectedSku` "Application Gateway {id}
  does not support {feature} for the selected SKU tier {tier}. Supported SKU tiers are {tiers}."
  (hashicorp/terraform-provider-azurerm issue #15531).
- Key Vault certificates: MicrosoftDocs/azure-docs, articles/application-gateway/
  application-gateway-key-vault-common-errors.md (UserAssignedIdentityDoesNotHaveGetPermission
  OnKeyVault, SecretDeletedFromKeyVault, UserAssignedManagedIdentityNotFound, KeyVaultSoftDeleted)
  and Microsoft's Application Gateway troubleshooting ("ApplicationGatewayKeyVaultSecretException
  ... Problem occurred while accessing and validating KeyVault Secrets associated with
  Application Gateway": the identity needs Get on secrets). The full shape as ARM returns it
  when a gateway's create operation fails (a public Terraform log): code
  ApplicationGatewayKeyVaultSecretException, message "Problem occured while accessing and
  validating KeyVault Secrets associated with Application Gateway '{id}'. See details below:",
  details [{"code": "ApplicationGatewayKeyVaultSecretAccessDenied", "message": "Access denied
  for KeyVault Secret '{secret uri}' for Application Gateway '{id}'. Make sure that Identity
  assigned to Application Gateway has access to the KeyVault associated with secret."}].
- Roles: Key Vault Secrets User's dataActions include
  Microsoft.KeyVault/vaults/secrets/getSecret/action; Owner has no dataActions
  (MicrosoftDocs/azure-docs, articles/role-based-access-control/built-in-roles/security.md and
  general.md).
"""

from __future__ import annotations

from typing import Any

import pytest

from localdev.armsim.server import SimulatorServer
from tests.support import armsim_bodies as bodies
from tests.support.armsim_clients import (
    AUTHORIZATION_API,
    IDENTITY_API,
    KEY_VAULT_API,
    NETWORK_API,
    SUBSCRIPTION,
    Raw,
)

G = bodies.GROUP
GROUP_ID = f"/subscriptions/{SUBSCRIPTION}/resourceGroups/{G}"
NET = f"{GROUP_ID}/providers/Microsoft.Network"
VNET = f"{NET}/virtualNetworks/vnet"
DEV = f"{VNET}/subnets/dev"
GW_SUBNET = f"{VNET}/subnets/gw"
GATEWAY = f"{NET}/applicationGateways/gw"
GATEWAY_PIP = f"{NET}/publicIPAddresses/gw-pip"
WAF = f"{NET}/ApplicationGatewayWebApplicationFirewallPolicies/sim-prod-waf"
IDENTITY = f"{GROUP_ID}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/sim-appgw-id"
VAULT_NAME = "sim-kv-gw0001"
VAULT = f"{GROUP_ID}/providers/Microsoft.KeyVault/vaults/{VAULT_NAME}"
CERT = f"{VAULT}/secrets/prod-gateway-certificate"
CERT_URI = f"https://{VAULT_NAME}.vault.azure.net/secrets/prod-gateway-certificate"


def _network(raw: Raw) -> None:
    raw.send("PUT", GROUP_ID, {"location": bodies.LOCATION})
    body = bodies.vnet({"dev": "10.0.0.0/24", "gw": "10.0.4.0/24"})
    assert raw.put(VNET, body, api=NETWORK_API).status == 200


def _public_ip(raw: Raw, name: str, sku: str = "Standard") -> str:
    pip = f"{NET}/publicIPAddresses/{name}"
    body = {
        "location": bodies.LOCATION,
        "sku": {"name": sku},
        "properties": {"publicIPAllocationMethod": "Static" if sku == "Standard" else "Dynamic"},
    }
    assert raw.put(pip, body, api=NETWORK_API).status == 200
    return pip


# ---------------------------------------------------------------- NAT gateways


def test_nat_gateway_on_environment_subnets(raw: Raw):
    _network(raw)
    pip = _public_ip(raw, "sim-natgw-pip")
    nat = f"{NET}/natGateways/sim-natgw"
    created = raw.put(nat, bodies.nat_gateway([pip]), api=NETWORK_API)
    assert created.status == 200, created.body
    assert created.body["sku"] == {"name": "Standard"}
    subnet = {
        "properties": {
            "addressPrefix": "10.0.0.0/24",
            "natGateway": {"id": nat},
            "defaultOutboundAccess": False,
            "serviceEndpoints": [{"service": "Microsoft.Sql"}],
        }
    }
    updated = raw.put(DEV, subnet, api=NETWORK_API)
    assert updated.status == 200, updated.body
    assert updated.body["properties"]["natGateway"] == {"id": nat}
    assert updated.body["properties"]["defaultOutboundAccess"] is False
    shown = raw.send("GET", nat, api=NETWORK_API).body
    assert shown["properties"]["subnets"] == [{"id": DEV}]
    assert shown["properties"]["publicIpAddresses"] == [{"id": pip}]
    ip = raw.send("GET", pip, api=NETWORK_API).body
    assert ip["properties"]["natGateway"] == {"id": nat}
    in_use = raw.send("DELETE", nat, api=NETWORK_API)
    assert in_use.status == 400, "a NAT gateway on a subnet cannot be deleted"


def test_nat_gateway_needs_standard_public_ips(raw: Raw):
    _network(raw)
    basic = _public_ip(raw, "basic-pip", sku="Basic")
    answer = raw.send(
        "PUT", f"{NET}/natGateways/sim-natgw", bodies.nat_gateway([basic]), api=NETWORK_API
    )
    assert answer.status == 400
    assert basic in answer.message


def test_a_public_ip_serves_one_nat_gateway(raw: Raw):
    _network(raw)
    pip = _public_ip(raw, "sim-natgw-pip")
    first = f"{NET}/natGateways/first"
    assert raw.put(first, bodies.nat_gateway([pip]), api=NETWORK_API).status == 200
    second = f"{NET}/natGateways/second"
    answer = raw.send("PUT", second, bodies.nat_gateway([pip]), api=NETWORK_API)
    assert (answer.status, answer.code) == (400, "PublicIPAddressInUse")
    assert answer.message == (
        f"Resource {second} is referencing public IP address {pip} that is already allocated to "
        f"resource {first}."
    )


# ---------------------------------------------------------------- WAF policies and gateways


def test_waf_policy_needs_managed_rules(raw: Raw):
    _network(raw)
    body = bodies.waf_policy()
    del body["properties"]["managedRules"]
    assert raw.send("PUT", WAF, body, api=NETWORK_API).status == 400
    unknown = bodies.waf_policy("Microsoft_DefaultRuleSet", "9.9")
    assert raw.send("PUT", WAF, unknown, api=NETWORK_API).status == 400
    created = raw.put(WAF, bodies.waf_policy(), api=NETWORK_API)
    assert created.status == 200, created.body
    rule_sets = created.body["properties"]["managedRules"]["managedRuleSets"]
    assert rule_sets == [{"ruleSetType": "Microsoft_DefaultRuleSet", "ruleSetVersion": "2.1"}]


def _gateway_prerequisites(raw: Raw, sim: SimulatorServer, *, secret: bool = True) -> str:
    _network(raw)
    _public_ip(raw, "gw-pip")
    assert raw.put(WAF, bodies.waf_policy(), api=NETWORK_API).status == 200
    identity = raw.put(IDENTITY, bodies.identity(), api=IDENTITY_API).body
    assert raw.put(VAULT, bodies.key_vault(sim.config.tenant_id), api=KEY_VAULT_API).status == 200
    if secret:
        pfx = bodies.secret("TUlJS0NBSUJBekNDQ...", "application/x-pkcs12")
        assert raw.put(CERT, pfx, api=KEY_VAULT_API).status == 200
    return str(identity["properties"]["principalId"])


def _grant(raw: Raw, scope: str, principal: str, role: str, name: str) -> None:
    body = bodies.role_assignment(SUBSCRIPTION, role, principal)
    answer = raw.send(
        "PUT",
        f"{scope}/providers/Microsoft.Authorization/roleAssignments/{name}",
        body,
        api=AUTHORIZATION_API,
    )
    assert answer.status == 201, answer.body


def _gateway(*, waf: bool = True, identity: bool = True) -> dict[str, Any]:
    return bodies.https_gateway(
        GATEWAY,
        GW_SUBNET,
        GATEWAY_PIP,
        secret_id=CERT_URI,
        identity_id=IDENTITY if identity else None,
        waf_policy_id=WAF if waf else None,
    )


def test_waf_v2_needs_a_policy_and_standard_v2_cannot_have_one(raw: Raw, sim: SimulatorServer):
    _gateway_prerequisites(raw, sim)
    no_policy = _gateway()
    del no_policy["properties"]["firewallPolicy"]
    answer = raw.send("PUT", GATEWAY, no_policy, api=NETWORK_API)
    assert (answer.status, answer.code) == (
        400,
        "ApplicationGatewayFirewallNotConfiguredForSelectedSku",
    )
    assert answer.message == (
        f"Application Gateway {GATEWAY} with the selected SKU tier WAF_v2 must have a valid WAF "
        "policy or configuration"
    )
    standard = _gateway()
    standard["properties"]["sku"] = {"name": "Standard_v2", "tier": "Standard_v2", "capacity": 2}
    answer = raw.send("PUT", GATEWAY, standard, api=NETWORK_API)
    assert (answer.status, answer.code) == (
        400,
        "ApplicationGatewayFeatureCannotBeEnabledForSelectedSku",
    )
    assert answer.message.startswith(f"Application Gateway {GATEWAY} does not support")
    assert "Standard_v2" in answer.message


def test_unknown_tls_policy_is_refused(raw: Raw, sim: SimulatorServer):
    _gateway_prerequisites(raw, sim)
    body = _gateway()
    body["properties"]["sslPolicy"] = {
        "policyType": "Predefined",
        "policyName": "AppGwSslPolicy1999",
    }
    answer = raw.send("PUT", GATEWAY, body, api=NETWORK_API)
    assert (answer.status, answer.code) == (400, "InvalidRequestFormat")
    assert "AppGwSslPolicy1999" in str(answer.error["details"])


def _failure(raw: Raw, body: dict[str, Any]) -> dict[str, Any]:
    answer = raw.send("PUT", GATEWAY, body, api=NETWORK_API)
    assert answer.status == 201, answer.body
    done = raw.wait(answer)
    assert done.body["status"] == "Failed", done.body
    return dict(done.body["error"])


def _expected_top(error: dict[str, Any]) -> None:
    assert error["code"] == "ApplicationGatewayKeyVaultSecretException"
    assert error["message"] == (
        "Problem occured while accessing and validating KeyVault Secrets associated with "
        f"Application Gateway '{GATEWAY}'. See details below:"
    )


def test_https_listener_whose_identity_cannot_read_the_secret_fails(raw: Raw, sim: SimulatorServer):
    principal = _gateway_prerequisites(raw, sim)
    # Owner on the vault manages it but reads no secret: Owner has no dataActions.
    _grant(raw, VAULT, principal, bodies.OWNER, "6a1d2c3b-4e5f-4061-8293-a4b5c6d7e8f9")
    error = _failure(raw, _gateway())
    _expected_top(error)
    assert error["details"] == [
        {
            "code": "ApplicationGatewayKeyVaultSecretAccessDenied",
            "message": (
                f"Access denied for KeyVault Secret '{CERT_URI}' for Application Gateway "
                f"'{GATEWAY}'. Make sure that Identity assigned to Application Gateway has "
                "access to the KeyVault associated with secret."
            ),
        }
    ]
    shown = raw.send("GET", GATEWAY, api=NETWORK_API).body
    assert shown["properties"]["provisioningState"] == "Failed"

    _grant(
        raw, CERT, principal, bodies.KEY_VAULT_SECRETS_USER, "7b2e3d4c-5f60-4172-93a4-b5c6d7e8f9a0"
    )
    fixed = raw.put(GATEWAY, _gateway(), api=NETWORK_API)
    assert fixed.status == 200, fixed.body
    assert fixed.body["properties"]["provisioningState"] == "Succeeded"
    policy = raw.send("GET", WAF, api=NETWORK_API).body
    assert policy["properties"]["applicationGateways"] == [{"id": GATEWAY}]


def test_a_role_on_the_vault_or_the_group_covers_the_secret(raw: Raw, sim: SimulatorServer):
    principal = _gateway_prerequisites(raw, sim)
    _grant(
        raw,
        GROUP_ID,
        principal,
        bodies.KEY_VAULT_SECRETS_USER,
        "8c3f4e5d-6071-4283-a4b5-c6d7e8f9a0b1",
    )
    assert raw.put(GATEWAY, _gateway(), api=NETWORK_API).status == 200


def test_an_access_policy_with_get_also_covers_the_secret(raw: Raw, sim: SimulatorServer):
    principal = _gateway_prerequisites(raw, sim)
    policy_vault = bodies.key_vault(sim.config.tenant_id, rbac=False)
    policy_vault["properties"]["accessPolicies"] = [
        {
            "tenantId": sim.config.tenant_id,
            "objectId": principal,
            "permissions": {"secrets": ["Get"]},
        }
    ]
    assert raw.put(VAULT, policy_vault, api=KEY_VAULT_API).status == 200
    assert raw.put(GATEWAY, _gateway(), api=NETWORK_API).status == 200


@pytest.mark.parametrize("case", ["secret missing", "vault missing", "vault soft-deleted"])
def test_https_listener_whose_secret_cannot_be_found_fails(
    raw: Raw, sim: SimulatorServer, case: str
):
    principal = _gateway_prerequisites(raw, sim, secret=case != "secret missing")
    _grant(
        raw,
        GROUP_ID,
        principal,
        bodies.KEY_VAULT_SECRETS_USER,
        "9d4a5f6e-7182-4394-b5c6-d7e8f9a0b1c2",
    )
    if case == "vault missing":
        body = _gateway()
        uri = "https://sim-kv-nowhere.vault.azure.net/secrets/prod-gateway-certificate"
        body["properties"]["sslCertificates"][0]["properties"]["keyVaultSecretId"] = uri
    else:
        body = _gateway()
    if case == "vault soft-deleted":
        raw.send("DELETE", VAULT, api=KEY_VAULT_API)
    error = _failure(raw, body)
    _expected_top(error)
    codes = {
        "secret missing": "SecretDeletedFromKeyVault",
        "vault missing": "ApplicationGatewayKeyVaultSecretException",
        "vault soft-deleted": "KeyVaultSoftDeleted",
    }
    assert [detail["code"] for detail in error["details"]] == [codes[case]]


def test_https_listener_without_identity_fails(raw: Raw, sim: SimulatorServer):
    _gateway_prerequisites(raw, sim)
    error = _failure(raw, _gateway(identity=False))
    _expected_top(error)
    assert [detail["code"] for detail in error["details"]] == [
        "UserAssignedManagedIdentityNotFound"
    ]

"""Request bodies in ARM's JSON shape (the SDKs accept plain dicts and send them verbatim)."""

from __future__ import annotations

from typing import Any

LOCATION = "westeurope"
PASSWORD = "Sim-Passw0rd-42!"
GROUP = "rg-sim"


def rid(subscription: str, group: str, provider_path: str) -> str:
    """A resource id under a group: `provider_path` is `Microsoft.X/type/name[/...]`."""
    return f"/subscriptions/{subscription}/resourceGroups/{group}/providers/{provider_path}"


def vnet(subnets: dict[str, str] | None = None, space: str = "10.0.0.0/16") -> dict[str, Any]:
    return {
        "location": LOCATION,
        "properties": {
            "addressSpace": {"addressPrefixes": [space]},
            "subnets": [
                {
                    "name": name,
                    "properties": {
                        "addressPrefix": prefix,
                        "serviceEndpoints": [{"service": "Microsoft.Sql"}],
                    },
                }
                for name, prefix in (subnets or {}).items()
            ],
        },
    }


def nic(subnet_id: str, static_ip: str | None = None) -> dict[str, Any]:
    ip_configuration: dict[str, Any] = {"subnet": {"id": subnet_id}}
    if static_ip:
        ip_configuration.update(privateIPAllocationMethod="Static", privateIPAddress=static_ip)
    return {
        "location": LOCATION,
        "properties": {"ipConfigurations": [{"name": "ipconfig1", "properties": ip_configuration}]},
    }


_IMAGE = {
    "publisher": "MicrosoftWindowsServer",
    "offer": "WindowsServer",
    "sku": "2022-datacenter",
    "version": "latest",
}


def vm(
    nic_id: str,
    *,
    computer_name: str = "simvm01",
    size: str = "Standard_F4s_v2",
    username: str = "osadmin",
    password: str = PASSWORD,
) -> dict[str, Any]:
    return {
        "location": LOCATION,
        "properties": {
            "hardwareProfile": {"vmSize": size},
            "storageProfile": {
                "imageReference": dict(_IMAGE),
                "osDisk": {
                    "createOption": "FromImage",
                    "managedDisk": {"storageAccountType": "Premium_LRS"},
                },
            },
            "osProfile": {
                "computerName": computer_name,
                "adminUsername": username,
                "adminPassword": password,
                "windowsConfiguration": {"provisionVMAgent": True},
            },
            "networkProfile": {"networkInterfaces": [{"id": nic_id}]},
            "userData": "c2V0dXAgZGF0YQ==",
        },
    }


def extension(
    handler: str = "CustomScriptExtension", secret: str = "s3cret-value"
) -> dict[str, Any]:
    return {
        "location": LOCATION,
        "properties": {
            "publisher": "Microsoft.Compute",
            "type": handler,
            "typeHandlerVersion": "1.10",
            "settings": {"fileUris": ["https://example.invalid/setup.ps1"]},
            "protectedSettings": {"commandToExecute": f"powershell -File setup.ps1 -Key {secret}"},
        },
    }


def scale_set(
    subnet_id: str,
    capacity: int,
    *,
    prefix: str = "simfe",
    size: str = "Standard_F4s_v2",
    pool_id: str | None = None,
) -> dict[str, Any]:
    ip_configuration: dict[str, Any] = {"subnet": {"id": subnet_id}}
    if pool_id:
        ip_configuration["applicationGatewayBackendAddressPools"] = [{"id": pool_id}]
    return {
        "location": LOCATION,
        "sku": {"name": size, "tier": "Standard", "capacity": capacity},
        "properties": {
            "upgradePolicy": {"mode": "Manual"},
            "virtualMachineProfile": {
                "osProfile": {
                    "computerNamePrefix": prefix,
                    "adminUsername": "osadmin",
                    "adminPassword": PASSWORD,
                    "windowsConfiguration": {"provisionVMAgent": True},
                },
                "storageProfile": {
                    "imageReference": dict(_IMAGE),
                    "osDisk": {"createOption": "FromImage"},
                },
                "networkProfile": {
                    "networkInterfaceConfigurations": [
                        {
                            "name": "fe-nic",
                            "properties": {
                                "primary": True,
                                "ipConfigurations": [
                                    {"name": "fe-ip", "properties": ip_configuration}
                                ],
                            },
                        }
                    ]
                },
                "extensionProfile": {
                    "extensions": [{"name": "setup", "properties": extension()["properties"]}]
                },
                "userData": "ZnJvbnRlbmQ=",
            },
        },
    }


def sql_server(login: str = "sqladmin", password: str = PASSWORD) -> dict[str, Any]:
    return {
        "location": LOCATION,
        "properties": {
            "administratorLogin": login,
            "administratorLoginPassword": password,
            "version": "12.0",
        },
    }


def sql_database() -> dict[str, Any]:
    return {
        "location": LOCATION,
        "sku": {"name": "S3", "tier": "Standard"},
        "properties": {"collation": "SQL_Latin1_General_CP1_CI_AI"},
    }


def storage_account() -> dict[str, Any]:
    return {"location": LOCATION, "sku": {"name": "Standard_LRS"}, "kind": "StorageV2"}


def public_ip(label: str | None = None) -> dict[str, Any]:
    properties: dict[str, Any] = {"publicIPAllocationMethod": "Static"}
    if label:
        properties["dnsSettings"] = {"domainNameLabel": label}
    return {"location": LOCATION, "sku": {"name": "Standard"}, "properties": properties}


def application_gateway(gateway_id: str, subnet_id: str, public_ip_id: str) -> dict[str, Any]:
    def own(collection: str, name: str) -> dict[str, str]:
        return {"id": f"{gateway_id}/{collection}/{name}"}

    return {
        "location": LOCATION,
        "properties": {
            "sku": {"name": "Standard_v2", "tier": "Standard_v2", "capacity": 2},
            "gatewayIPConfigurations": [
                {"name": "gwip", "properties": {"subnet": {"id": subnet_id}}}
            ],
            "frontendIPConfigurations": [
                {"name": "fe", "properties": {"publicIPAddress": {"id": public_ip_id}}}
            ],
            "frontendPorts": [{"name": "http", "properties": {"port": 80}}],
            "backendAddressPools": [{"name": "frontends", "properties": {}}],
            "backendHttpSettingsCollection": [
                {"name": "settings", "properties": {"port": 80, "protocol": "Http"}}
            ],
            "httpListeners": [
                {
                    "name": "listener",
                    "properties": {
                        "frontendIPConfiguration": own("frontendIPConfigurations", "fe"),
                        "frontendPort": own("frontendPorts", "http"),
                        "protocol": "Http",
                    },
                }
            ],
            "requestRoutingRules": [
                {
                    "name": "rule",
                    "properties": {
                        "ruleType": "Basic",
                        "priority": 100,
                        "httpListener": own("httpListeners", "listener"),
                        "backendAddressPool": own("backendAddressPools", "frontends"),
                        "backendHttpSettings": own("backendHttpSettingsCollection", "settings"),
                    },
                }
            ],
        },
    }


# ---------------------------------------------------------------- identities, RBAC, Key Vault

#: Built-in role ids, the same in every tenant (MicrosoftDocs/azure-docs,
#: articles/role-based-access-control/built-in-roles/security.md and storage.md).
KEY_VAULT_SECRETS_USER = "4633458b-17de-408a-b874-0445c86b69e6"
STORAGE_FILE_DATA_PRIVILEGED_CONTRIBUTOR = "69566ab7-960f-475b-8e7c-b3118f30c6bd"
OWNER = "8e3af657-a8ff-443c-a75c-2fe8c4bcb635"
CONTRIBUTOR = "b24988ac-6180-42a0-ab88-20f7382dd24c"


def identity() -> dict[str, Any]:
    return {"location": LOCATION}


def role_assignment(
    subscription: str, role: str, principal: str, principal_type: str = "ServicePrincipal"
) -> dict[str, Any]:
    """The body of Role Assignments - Create (2022-04-01): role definition id and principal."""
    return {
        "properties": {
            "roleDefinitionId": (
                f"/subscriptions/{subscription}/providers/Microsoft.Authorization/"
                f"roleDefinitions/{role}"
            ),
            "principalId": principal,
            "principalType": principal_type,
        }
    }


def key_vault(
    tenant: str, *, rbac: bool = True, purge_protection: bool = True, retention: int = 7
) -> dict[str, Any]:
    """Vaults - Create Or Update (2023-07-01): `tenantId` and `sku` are required."""
    properties: dict[str, Any] = {
        "tenantId": tenant,
        "sku": {"family": "A", "name": "standard"},
        "enableRbacAuthorization": rbac,
        "enableSoftDelete": True,
        "softDeleteRetentionInDays": retention,
    }
    if purge_protection:
        properties["enablePurgeProtection"] = True
    return {"location": LOCATION, "properties": properties}


def secret(value: str, content_type: str | None = None) -> dict[str, Any]:
    properties: dict[str, Any] = {"value": value}
    if content_type:
        properties["contentType"] = content_type
    return {"properties": properties}


def nat_gateway(public_ip_ids: list[str]) -> dict[str, Any]:
    return {
        "location": LOCATION,
        "sku": {"name": "Standard"},
        "properties": {
            "idleTimeoutInMinutes": 4,
            "publicIpAddresses": [{"id": pip} for pip in public_ip_ids],
        },
    }


def waf_policy(rule_set: str = "Microsoft_DefaultRuleSet", version: str = "2.1") -> dict[str, Any]:
    return {
        "location": LOCATION,
        "properties": {
            "policySettings": {
                "state": "Enabled",
                "mode": "Prevention",
                "requestBodyCheck": True,
                "maxRequestBodySizeInKb": 128,
                "fileUploadLimitInMb": 100,
            },
            "managedRules": {
                "managedRuleSets": [{"ruleSetType": rule_set, "ruleSetVersion": version}]
            },
        },
    }


def https_gateway(
    gateway_id: str,
    subnet_id: str,
    public_ip_id: str,
    *,
    secret_id: str,
    identity_id: str | None,
    waf_policy_id: str | None = None,
) -> dict[str, Any]:
    """A WAF_v2 gateway with an HTTPS listener (Key Vault certificate) and HTTP redirected."""

    def own(collection: str, name: str) -> dict[str, str]:
        return {"id": f"{gateway_id}/{collection}/{name}"}

    body = application_gateway(gateway_id, subnet_id, public_ip_id)
    properties = body["properties"]
    tier = "WAF_v2" if waf_policy_id else "Standard_v2"
    properties["sku"] = {"name": tier, "tier": tier, "capacity": 2}
    if waf_policy_id:
        properties["firewallPolicy"] = {"id": waf_policy_id}
    properties["sslPolicy"] = {"policyType": "Predefined", "policyName": "AppGwSslPolicy20220101"}
    properties["sslCertificates"] = [{"name": "tls", "properties": {"keyVaultSecretId": secret_id}}]
    properties["frontendPorts"].append({"name": "https", "properties": {"port": 443}})
    properties["httpListeners"].append(
        {
            "name": "https",
            "properties": {
                "frontendIPConfiguration": own("frontendIPConfigurations", "fe"),
                "frontendPort": own("frontendPorts", "https"),
                "protocol": "Https",
                "sslCertificate": own("sslCertificates", "tls"),
            },
        }
    )
    properties["redirectConfigurations"] = [
        {
            "name": "to-https",
            "properties": {
                "redirectType": "Permanent",
                "targetListener": own("httpListeners", "https"),
                "includePath": True,
                "includeQueryString": True,
            },
        }
    ]
    properties["requestRoutingRules"] = [
        {
            "name": "https",
            "properties": {
                "ruleType": "Basic",
                "priority": 100,
                "httpListener": own("httpListeners", "https"),
                "backendAddressPool": own("backendAddressPools", "frontends"),
                "backendHttpSettings": own("backendHttpSettingsCollection", "settings"),
            },
        },
        {
            "name": "redirect",
            "properties": {
                "ruleType": "Basic",
                "priority": 200,
                "httpListener": own("httpListeners", "listener"),
                "redirectConfiguration": own("redirectConfigurations", "to-https"),
            },
        },
    ]
    if identity_id:
        body["identity"] = {"type": "UserAssigned", "userAssignedIdentities": {identity_id: {}}}
    return body

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

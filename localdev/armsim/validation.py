"""Server-side validation as ARM does it, per resource type, with ARM's codes and targets.

Validators here are pure: they see the request body (and the stored body on updates) and raise
`ArmError`. Checks that need other resources (references, subnet ranges, IP allocation, quota,
global name uniqueness) live in the engine and `behaviours.py`.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Mapping
from typing import Any

from localdev.armsim.errors import ArmError, invalid_parameter, missing_property

Body = Mapping[str, Any]
Validator = Callable[[str, Body, Body | None], None]

_MISSING = object()


def get_path(body: Any, dotted: str) -> Any:
    """The value at a dotted path (`properties.osProfile.adminUsername`), or None."""
    current = body
    for part in dotted.split("."):
        if not isinstance(current, Mapping):
            return None
        current = current.get(part, _MISSING)
        if current is _MISSING:
            return None
    return current


def _require(body: Body, dotted: str, target: str | None = None) -> Any:
    value = get_path(body, dotted)
    if value is None or value == "" or value == []:
        raise missing_property(target or dotted)
    return value


def require_location(body: Body) -> None:
    """Tracked resources need a location (ARM's own check, before the provider sees it)."""
    if not body.get("location"):
        raise ArmError(
            400, "LocationRequired", "The location property is required for this definition."
        )


# ---------------------------------------------------------------- sizes and quota arithmetic

_SIZE = re.compile(r"(?i)(standard|basic)_([a-z]+)(\d+)")
#: Older sizes whose digits are not their vCPU count.
_LEGACY_VCPUS: Mapping[str, int] = {
    **{
        f"standard_{f}{n}_v2": v
        for f in ("d", "ds")
        for n, v in ((1, 1), (2, 2), (3, 4), (4, 8), (5, 16))
    },
    **{
        f"standard_{f}{n}_v2": v
        for f in ("d", "ds")
        for n, v in ((11, 2), (12, 4), (13, 8), (14, 16), (15, 20))
    },
    **{
        f"standard_a{n}": v
        for n, v in ((0, 1), (1, 1), (2, 2), (3, 4), (4, 8), (5, 2), (6, 4), (7, 8))
    },
}


def vcpus_of(size: str) -> int:
    """vCPUs of a `Standard_*` size name (the number after the family letters)."""
    legacy = _LEGACY_VCPUS.get(size.lower())
    if legacy is not None:
        return legacy
    match = _SIZE.match(size)
    if match is None:
        raise invalid_parameter(
            "vmSize", f"The value {size} provided for the VM size is not valid."
        )
    return max(1, int(match.group(3)))


def check_size(size: Any, target: str = "vmSize") -> None:
    """400 `InvalidParameter` for a size name Azure does not have."""
    if not isinstance(size, str) or _SIZE.match(size) is None:
        raise invalid_parameter(
            target,
            f"The value {size} provided for the VM size is not valid. The valid sizes in the "
            "current region are listed by the resource SKUs API.",
        )


# ---------------------------------------------------------------- credentials and computer names

_RESERVED_USERNAMES = frozenset(
    [
        *("administrator", "admin", "admin1", "admin2", "adm", "actuser", "aspnet", "backup"),
        *("console", "david", "guest", "john", "owner", "root", "server", "sql", "support"),
        *("support_388945a0", "sys", "test", "test1", "test2", "test3", "a", "1", "123"),
        *("user", "user1", "user2", "user3", "user4", "user5"),
    ]
)
_COMMON_PASSWORDS = frozenset(
    [
        "abc@123",
        "p@$$w0rd",
        "p@ssw0rd",
        "p@ssword123",
        "pa$$word",
        "pass@word1",
        "password!",
        "password1",
        "password22",
        "iloveyou!",
    ]
)
_USERNAME_FORBIDDEN = set('\\/"[]:|<>+=;,?*@&')
_WINDOWS_COMPUTER_FORBIDDEN = set("`~!@#$%^&*()=+_[]{}\\|;:.'\",<>/?")


def check_admin_username(username: Any, windows: bool) -> None:
    """Azure's admin user name rules (length, characters, reserved names)."""
    if not isinstance(username, str) or not username:
        raise missing_property("adminUsername")
    limit = 20 if windows else 64
    if (
        len(username) > limit
        or username.endswith(".")
        or any(c in _USERNAME_FORBIDDEN for c in username)
        or username.lower() in _RESERVED_USERNAMES
    ):
        raise invalid_parameter("adminUsername", "The Admin Username specified is not allowed.")


def password_classes(password: str) -> int:
    """How many of the four character classes (lower, upper, digit, special) a password has."""
    return sum(
        (
            any(c.islower() for c in password),
            any(c.isupper() for c in password),
            any(c.isdigit() for c in password),
            any(not c.isalnum() for c in password),
        )
    )


def check_admin_password(password: Any, windows: bool) -> None:
    """Azure's VM password rules: length, 3 of 4 classes, no control characters, not common."""
    low, high = (8, 123) if windows else (6, 72)
    if not isinstance(password, str) or not password:
        raise missing_property("adminPassword")
    if (
        not low <= len(password) <= high
        or password_classes(password) < 3
        or any(ord(c) < 32 for c in password)
        or password.lower() in _COMMON_PASSWORDS
    ):
        raise invalid_parameter(
            "adminPassword",
            f"The supplied password must be between {low}-{high} characters long and must satisfy "
            "at least 3 of password complexity requirements from the following: 1) Contains an "
            "uppercase character 2) Contains a lowercase character 3) Contains a numeric digit "
            "4) Contains a special character 5) Control characters are not allowed",
        )


def check_computer_name(name: str, windows: bool, *, target: str = "computerName") -> None:
    """Windows computer names: at most 15 characters, not all digits, no special characters."""
    if windows:
        if len(name) > 15 or name.isdigit() or any(c in _WINDOWS_COMPUTER_FORBIDDEN for c in name):
            raise invalid_parameter(
                target,
                "Windows computer name cannot be more than 15 characters long, be entirely "
                "numeric, or contain the following characters: ` ~ ! @ # $ % ^ & * ( ) = + _ [ ] "
                "{ } \\ | ; : . ' \" , < > / ?.",
            )
    elif not re.fullmatch(r"[A-Za-z0-9]([A-Za-z0-9.-]{0,62}[A-Za-z0-9])?", name):
        raise invalid_parameter(
            target,
            "Linux host name cannot exceed 64 characters in length or contain the following "
            "characters: ` ~ ! @ # $ % ^ & * ( ) = + _ [ ] { } \\ | ; : ' \" , < > / ?.",
        )


def is_windows(properties: Body) -> bool:
    """Whether a VM (or scale-set profile) is Windows, as Azure infers it."""
    os_profile = properties.get("osProfile") or {}
    if os_profile.get("windowsConfiguration") is not None:
        return True
    if os_profile.get("linuxConfiguration") is not None:
        return False
    storage = properties.get("storageProfile") or {}
    os_type = str((storage.get("osDisk") or {}).get("osType", ""))
    if os_type:
        return os_type.lower() == "windows"
    publisher = str((storage.get("imageReference") or {}).get("publisher", ""))
    return "windows" in publisher.lower()


def _check_os_profile(properties: Body, is_update: bool, *, prefix: bool, vm_name: str) -> None:
    windows = is_windows(properties)
    if (get_path(properties, "storageProfile.osDisk.createOption") or "").lower() == "attach":
        return
    if not is_update:
        os_profile = _require(properties, "osProfile")
        check_admin_username(os_profile.get("adminUsername"), windows)
        has_ssh = bool(get_path(os_profile, "linuxConfiguration.ssh.publicKeys"))
        if windows or not has_ssh or "adminPassword" in os_profile:
            check_admin_password(os_profile.get("adminPassword"), windows)
    os_profile = properties.get("osProfile") or {}
    if prefix:
        name_prefix = os_profile.get("computerNamePrefix") or vm_name
        if windows and len(name_prefix) > 9:
            raise invalid_parameter(
                "computerNamePrefix",
                "Windows computer name prefix cannot be more than 9 characters long, be entirely "
                "numeric, or contain special characters.",
            )
        check_computer_name(
            name_prefix[:9] if windows else name_prefix, windows, target="computerNamePrefix"
        )
    else:
        check_computer_name(os_profile.get("computerName") or vm_name, windows)


def _check_unchanged(properties: Body, existing: Body | None, dotted: str) -> None:
    if existing is None:
        return
    new, old = get_path(properties, dotted), get_path(existing.get("properties", {}), dotted)
    if new is not None and old is not None and new != old:
        raise ArmError(
            409,
            "PropertyChangeNotAllowed",
            f"Changing property '{dotted}' is not allowed.",
            target=dotted,
        )


# ---------------------------------------------------------------- compute


def validate_virtual_machine(name: str, body: Body, existing: Body | None) -> None:
    properties = _require(body, "properties")
    check_size(_require(properties, "hardwareProfile.vmSize", "vmSize"))
    create_option = _require(properties, "storageProfile.osDisk.createOption", "createOption")
    if str(create_option).lower() != "attach":
        image = get_path(properties, "storageProfile.imageReference")
        if not image:
            raise missing_property("imageReference")
    _check_os_profile(properties, existing is not None, prefix=False, vm_name=name)
    _check_unchanged(properties, existing, "osProfile.computerName")
    _check_unchanged(properties, existing, "osProfile.adminUsername")
    nics = get_path(properties, "networkProfile.networkInterfaces")
    if not nics:
        raise missing_property("networkProfile.networkInterfaces")


def validate_scale_set(name: str, body: Body, existing: Body | None) -> None:
    check_size(_require(body, "sku.name", "sku.name"), "sku.name")
    capacity = _require(body, "sku.capacity", "sku.capacity")
    if isinstance(capacity, bool) or not isinstance(capacity, int) or not 0 <= capacity <= 1000:
        raise invalid_parameter("sku.capacity", "The capacity must be between 0 and 1000.")
    properties = _require(body, "properties")
    mode = _require(properties, "upgradePolicy.mode", "upgradePolicy.mode")
    if str(mode).lower() not in {"automatic", "manual", "rolling"}:
        raise invalid_parameter(
            "upgradePolicy.mode", f"The value '{mode}' is not valid for upgradePolicy.mode."
        )
    profile = _require(properties, "virtualMachineProfile")
    image = get_path(profile, "storageProfile.imageReference")
    if not image:
        raise missing_property("imageReference")
    _check_os_profile(profile, existing is not None, prefix=True, vm_name=name)
    configurations = get_path(profile, "networkProfile.networkInterfaceConfigurations")
    if not configurations:
        raise missing_property("networkInterfaceConfigurations")
    for nic in configurations:
        ip_configurations = get_path(nic, "properties.ipConfigurations")
        if not nic.get("name") or not ip_configurations:
            raise missing_property("networkInterfaceConfigurations.ipConfigurations")
        for ip_configuration in ip_configurations:
            if not get_path(ip_configuration, "properties.subnet.id"):
                raise missing_property("ipConfigurations.subnet")
    for extension in get_path(profile, "extensionProfile.extensions") or []:
        _check_extension_properties(extension.get("properties") or {})


def _check_extension_properties(properties: Body) -> None:
    for field in ("publisher", "type", "typeHandlerVersion"):
        if not properties.get(field):
            raise missing_property(f"properties.{field}")


def validate_extension(name: str, body: Body, existing: Body | None) -> None:
    _check_extension_properties(_require(body, "properties"))


# ---------------------------------------------------------------- network


def _check_prefix(value: Any, target: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    try:
        return ipaddress.ip_network(str(value), strict=True)
    except ValueError:
        raise ArmError(
            400,
            "InvalidAddressPrefixFormat",
            f"Address prefix {value} has an invalid format.",
            target=target,
        ) from None


def subnet_prefixes(subnet_properties: Body) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    """The address prefixes of a subnet body's properties."""
    values = subnet_properties.get("addressPrefixes") or []
    if subnet_properties.get("addressPrefix"):
        values = [subnet_properties["addressPrefix"], *values]
    return [_check_prefix(v, "properties.addressPrefix") for v in values]


def validate_virtual_network(name: str, body: Body, existing: Body | None) -> None:
    prefixes = _require(body, "properties.addressSpace.addressPrefixes")
    for prefix in prefixes:
        _check_prefix(prefix, "properties.addressSpace.addressPrefixes")
    for index, subnet in enumerate(get_path(body, "properties.subnets") or []):
        if not subnet.get("name"):
            raise missing_property(f"properties.subnets[{index}].name")
        validate_subnet(subnet["name"], subnet, None)


def validate_subnet(name: str, body: Body, existing: Body | None) -> None:
    properties = body.get("properties") or {}
    if not subnet_prefixes(properties):
        raise missing_property("properties.addressPrefix")


def validate_network_interface(name: str, body: Body, existing: Body | None) -> None:
    configurations = _require(body, "properties.ipConfigurations")
    for index, configuration in enumerate(configurations):
        target = f"properties.ipConfigurations[{index}]"
        if not configuration.get("name"):
            raise missing_property(f"{target}.name")
        if not get_path(configuration, "properties.subnet.id"):
            raise missing_property(f"{target}.properties.subnet")
        method = str(get_path(configuration, "properties.privateIPAllocationMethod") or "Dynamic")
        if method.lower() == "static" and not get_path(
            configuration, "properties.privateIPAddress"
        ):
            raise missing_property(f"{target}.properties.privateIPAddress")


def validate_public_ip(name: str, body: Body, existing: Body | None) -> None:
    sku = str(get_path(body, "sku.name") or "Standard")
    method = str(get_path(body, "properties.publicIPAllocationMethod") or "Static")
    if sku.lower() == "standard" and method.lower() != "static":
        raise ArmError(
            400,
            "StandardSkuPublicIPAddressesMustBeStatic",
            "Standard sku public IP addresses must have allocation method Static.",
            target="properties.publicIPAllocationMethod",
        )
    label = get_path(body, "properties.dnsSettings.domainNameLabel")
    if label is not None and not re.fullmatch(r"[a-z][a-z0-9-]{1,61}[a-z0-9]", str(label)):
        raise ArmError(
            400,
            "InvalidDomainNameLabel",
            f"The domain name label {label} is invalid. It must conform to the following regular "
            "expression: ^[a-z][a-z0-9-]{1,61}[a-z0-9]$.",
            target="properties.dnsSettings.domainNameLabel",
        )


_GATEWAY_COLLECTIONS = (
    "gatewayIPConfigurations",
    "frontendIPConfigurations",
    "frontendPorts",
    "backendAddressPools",
    "backendHttpSettingsCollection",
    "httpListeners",
    "requestRoutingRules",
)


def validate_application_gateway(name: str, body: Body, existing: Body | None) -> None:
    properties = _require(body, "properties")
    sku_name = str(_require(properties, "sku.name", "properties.sku.name"))
    _require(properties, "sku.tier", "properties.sku.tier")
    for collection in _GATEWAY_COLLECTIONS:
        _require(properties, collection, f"properties.{collection}")
    if sku_name.lower().endswith("_v2"):
        if not get_path(properties, "sku.capacity") and not properties.get(
            "autoscaleConfiguration"
        ):
            raise missing_property("properties.sku.capacity")
        for index, rule in enumerate(properties["requestRoutingRules"]):
            if get_path(rule, "properties.priority") is None:
                raise ArmError(
                    400,
                    "ApplicationGatewayRequestRoutingRulePriorityCannotBeEmpty",
                    "Priority for the request routing rule "
                    f"{rule.get('name')} cannot be empty. All request routing rules should have "
                    "a priority defined starting from api-version 2021-08-01",
                    target=f"properties.requestRoutingRules[{index}].properties.priority",
                )


def validate_bastion_host(name: str, body: Body, existing: Body | None) -> None:
    configurations = _require(body, "properties.ipConfigurations")
    for index, configuration in enumerate(configurations):
        target = f"properties.ipConfigurations[{index}].properties"
        _require(configuration, "properties.subnet.id", f"{target}.subnet")
        _require(configuration, "properties.publicIPAddress.id", f"{target}.publicIPAddress")
        subnet_id = str(get_path(configuration, "properties.subnet.id"))
        if not subnet_id.lower().endswith("/subnets/azurebastionsubnet"):
            raise ArmError(
                400,
                "BastionHostSubnetMustBeNamedAzureBastionSubnet",
                "The subnet of a Bastion host must be named AzureBastionSubnet.",
                target=f"{target}.subnet",
            )


# ---------------------------------------------------------------- SQL and storage

_RESERVED_SQL_LOGINS = frozenset(
    ["admin", "administrator", "sa", "root", "dbmanager", "loginmanager", "dbo", "guest", "public"]
)


def validate_sql_server(name: str, body: Body, existing: Body | None) -> None:
    properties = body.get("properties") or {}
    if existing is not None:
        _check_unchanged(properties, existing, "administratorLogin")
        return
    if get_path(properties, "administrators.azureADOnlyAuthentication") is True:
        return
    login = properties.get("administratorLogin")
    if not login:
        raise ArmError(
            400,
            "InvalidParameterValue",
            "Invalid value given for parameter Login. Specify a valid parameter value.",
            target="properties.administratorLogin",
        )
    # A login starts with a letter and has no whitespace (Microsoft's Azure Toolkit validator:
    # "must not begin with numbers or symbols", "cannot contain whitespaces"); hyphens are fine:
    # OutSystems' own template defaults to "OutSystemsOnAzureAdmin-SQL"
    # (OutSystems/AzureARMTemplates environmentAzSQL.json, commit 71b88ea) and its Marketplace
    # template names the login "<VM admin user>-sql" (docs-product quick-reference.md).
    if str(login).lower() in _RESERVED_SQL_LOGINS or not re.fullmatch(
        r"[A-Za-z][^\s]{0,127}", str(login)
    ):
        raise ArmError(
            400,
            "InvalidLoginName",
            f"Login '{login}' is not allowed: choose a name that is not a reserved system name.",
            target="properties.administratorLogin",
        )
    password = properties.get("administratorLoginPassword")
    if not password:
        raise ArmError(
            400,
            "InvalidParameterValue",
            "Invalid value given for parameter Password. Specify a valid parameter value.",
            target="properties.administratorLoginPassword",
        )
    if (
        not 8 <= len(password) <= 128
        or password_classes(password) < 3
        or str(login).lower() in password.lower()
    ):
        raise ArmError(
            400,
            "PasswordNotComplex",
            "Password validation failed. The password does not meet policy requirements because "
            "it is not complex enough.",
            target="properties.administratorLoginPassword",
        )


def validate_sql_database(name: str, body: Body, existing: Body | None) -> None:
    collation = get_path(body, "properties.collation")
    if collation is not None and not re.fullmatch(r"[A-Za-z0-9_]+", str(collation)):
        raise invalid_parameter(
            "properties.collation", f"The collation '{collation}' is not valid."
        )


def validate_sql_vnet_rule(name: str, body: Body, existing: Body | None) -> None:
    _require(body, "properties.virtualNetworkSubnetId")


def validate_storage_account(name: str, body: Body, existing: Body | None) -> None:
    _require(body, "sku.name")
    kind = _require(body, "kind")
    if str(kind) not in {"Storage", "StorageV2", "BlobStorage", "FileStorage", "BlockBlobStorage"}:
        raise invalid_parameter("kind", f"The value '{kind}' is not valid for kind.")


VALIDATORS: Mapping[str, Validator] = {
    "microsoft.compute/virtualmachines": validate_virtual_machine,
    "microsoft.compute/virtualmachinescalesets": validate_scale_set,
    "microsoft.compute/virtualmachines/extensions": validate_extension,
    "microsoft.compute/virtualmachinescalesets/extensions": validate_extension,
    "microsoft.network/virtualnetworks": validate_virtual_network,
    "microsoft.network/virtualnetworks/subnets": validate_subnet,
    "microsoft.network/networkinterfaces": validate_network_interface,
    "microsoft.network/publicipaddresses": validate_public_ip,
    "microsoft.network/applicationgateways": validate_application_gateway,
    "microsoft.network/bastionhosts": validate_bastion_host,
    "microsoft.sql/servers": validate_sql_server,
    "microsoft.sql/servers/databases": validate_sql_database,
    "microsoft.sql/servers/virtualnetworkrules": validate_sql_vnet_rule,
    "microsoft.storage/storageaccounts": validate_storage_account,
}

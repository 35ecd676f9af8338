"""The platform spec: the body of `PUT /api/platforms/{solutionId}` and of the plan request.

`parse_spec()` turns the request (path solution id + JSON body) into a frozen `PlatformSpec`
or raises `SpecError` listing every problem with the JSON path the user wrote. The models
mirror the JSON in camelCase aliases; Python attributes are snake_case. The normalized spec
(`to_json_dict()`) has every default and resolved value filled in and holds no secret, so it is
safe to put in orchestration input.

The package, by concern: `model` (the models), `fields` (checks of single fields, tags),
`network` (a new VNet's address plan or the user's subnets), `versions` (OutSystems versions and
pinned images), `upgrade` (how an upgrade of the versions goes), `secrets` (secrets refused),
`reporting` (problems as `FieldError`s), `parsing` (a request body into a spec), `naming` (the
naming scheme a platform keeps). Import from the package: these names are its interface.
"""

from outsystems.spec.fields import (
    RESERVED_USERNAMES,
    AdminUsername,
    ClockTime,
    IdentityId,
    KeyVaultSecretId,
    Location,
    ObjectId,
    Path,
    ResourceGroupName,
    SolutionId,
    SubscriptionId,
    TimeZoneName,
    VmSize,
)
from outsystems.spec.model import (
    DEFAULT_ADMIN_USERNAME,
    DEFAULT_CAPACITY,
    DEFAULT_MAX_CAPACITY,
    DEFAULT_MIN_CAPACITY,
    DEFAULT_VM_SIZE,
    MAX_FRONTENDS,
    TRIAL_LICENSE_FRONTENDS,
    EnvironmentSpec,
    EnvironmentsSpec,
    FrontendsSpec,
    License,
    PlatformSpec,
    ProdMode,
    ProdSpec,
    ScheduleSpec,
    SqlEntraAdminSpec,
    TlsSpec,
    WafMode,
    Weekday,
)
from outsystems.spec.naming import naming_change, resolve_naming
from outsystems.spec.network import (
    AZURE_RESERVED_ADDRESSES,
    BASTION,
    DEFAULT_ADDRESS_SPACE,
    GATEWAY,
    NAT_GATEWAY_OUTBOUND,
    AddressPlan,
    Cidr,
    ExistingSubnetIds,
    NetworkSpec,
    Outbound,
    SubnetId,
    address_plan,
    minimum_address_prefix,
    usable_addresses,
)
from outsystems.spec.parsing import parse_spec, spec_json_schema
from outsystems.spec.secrets import MAX_DEPTH
from outsystems.spec.upgrade import (
    DEFAULT_UPGRADE_ORDER,
    MAX_SOAK_MINUTES,
    UpgradeEnvironment,
    UpgradeSpec,
)
from outsystems.spec.versions import (
    DEFAULT_LIFETIME_VERSION,
    DEFAULT_PLATFORM_VERSION,
    DEFAULT_WINDOWS_SERVER_IMAGE_VERSION,
    OUTSYSTEMS_BASE_IMAGE_VERSIONS,
    Image,
    ImageVersion,
    Version,
)
from outsystems.tags import MAX_TAGS_PER_RESOURCE, TAG_KEY_MAX, TAG_VALUE_MAX

__all__ = [
    "AZURE_RESERVED_ADDRESSES",
    "BASTION",
    "DEFAULT_ADDRESS_SPACE",
    "DEFAULT_ADMIN_USERNAME",
    "DEFAULT_CAPACITY",
    "DEFAULT_LIFETIME_VERSION",
    "DEFAULT_MAX_CAPACITY",
    "DEFAULT_MIN_CAPACITY",
    "DEFAULT_PLATFORM_VERSION",
    "DEFAULT_UPGRADE_ORDER",
    "DEFAULT_VM_SIZE",
    "DEFAULT_WINDOWS_SERVER_IMAGE_VERSION",
    "GATEWAY",
    "MAX_DEPTH",
    "MAX_FRONTENDS",
    "MAX_SOAK_MINUTES",
    "MAX_TAGS_PER_RESOURCE",
    "NAT_GATEWAY_OUTBOUND",
    "OUTSYSTEMS_BASE_IMAGE_VERSIONS",
    "RESERVED_USERNAMES",
    "TAG_KEY_MAX",
    "TAG_VALUE_MAX",
    "TRIAL_LICENSE_FRONTENDS",
    "AddressPlan",
    "AdminUsername",
    "Cidr",
    "ClockTime",
    "EnvironmentSpec",
    "EnvironmentsSpec",
    "ExistingSubnetIds",
    "FrontendsSpec",
    "IdentityId",
    "Image",
    "ImageVersion",
    "KeyVaultSecretId",
    "License",
    "Location",
    "NetworkSpec",
    "ObjectId",
    "Outbound",
    "Path",
    "PlatformSpec",
    "ProdMode",
    "ProdSpec",
    "ResourceGroupName",
    "ScheduleSpec",
    "SolutionId",
    "SqlEntraAdminSpec",
    "SubnetId",
    "SubscriptionId",
    "TimeZoneName",
    "TlsSpec",
    "UpgradeEnvironment",
    "UpgradeSpec",
    "Version",
    "VmSize",
    "WafMode",
    "Weekday",
    "address_plan",
    "minimum_address_prefix",
    "naming_change",
    "parse_spec",
    "resolve_naming",
    "spec_json_schema",
    "usable_addresses",
]

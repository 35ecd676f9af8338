"""The platform spec: the body of `PUT /api/platforms/{solutionId}` and of the plan request.

`parse_spec()` turns the request (path solution id + JSON body) into a frozen `PlatformSpec`
or raises `SpecError` listing every problem with the JSON path the user wrote. The models
mirror the JSON in camelCase aliases; Python attributes are snake_case. The normalized spec
(`to_json_dict()`) has every default and resolved value filled in and holds no secret, so it is
safe to put in orchestration input.
"""

from __future__ import annotations

import difflib
import ipaddress
import json
import re
import types
import typing
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass
from datetime import time
from functools import lru_cache
from typing import Annotated, Any, Final, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel

from outsystems.errors import FieldError, SpecError
from outsystems.names import (
    BASTION_SUBNET,
    ENVIRONMENTS,
    Environment,
    NamingScheme,
    default_resource_group,
    is_valid_solution_id,
)
from outsystems.policy import (
    POLICY_TAG_PREFIX,
    WEEKDAYS,
    PolicyTagError,
    ScalingPolicy,
    ScheduleWindow,
    policy_to_tags,
)
from outsystems.tags import NAMING_TAG, PLATFORM_TAG_KEYS

DEFAULT_VM_SIZE: Final = "Standard_F4s_v2"
DEFAULT_ADDRESS_SPACE: Final = "10.0.0.0/16"
DEFAULT_PLATFORM_VERSION: Final = "11.32.0"
DEFAULT_LIFETIME_VERSION: Final = "11.25.2"
DEFAULT_ADMIN_USERNAME: Final = "osadmin"
DEFAULT_CAPACITY: Final = 2
DEFAULT_MIN_CAPACITY: Final = 2
DEFAULT_MAX_CAPACITY: Final = 10
MAX_FRONTENDS: Final = 1000
MAX_TAGS_PER_RESOURCE: Final = 50
# ARM allows 512-character tag names, but storage accounts (every platform has one) only 128.
TAG_KEY_MAX: Final = 128
TAG_VALUE_MAX: Final = 256

Image = Literal["windows-server", "outsystems-base"]
ProdMode = Literal["farm", "standalone"]
WafMode = Literal["Prevention", "Detection", "Off"]
License = Literal["trial", "own"]
#: Front-ends the trial license the setup installs allows: "The trial license included in the
#: templates only allows two frontend servers including the deployment controller"
#: (OutSystems/AzureARMTemplates README, commit 71b88ea). In a farm the controller is no
#: front-end, so the scale set may hold two.
TRIAL_LICENSE_FRONTENDS: Final = 2

#: The Windows Server image build a new platform gets when its spec pins none: a published build
#: of MicrosoftWindowsServer:WindowsServer:2022-datacenter (20348.2762, October 2024). Pinned, so
#: that a scale-out months later installs on the same build the controller has.
DEFAULT_WINDOWS_SERVER_IMAGE_VERSION: Final = "20348.2762.241006"
#: OutSystems' base image version (publisher `outsystems`, offer `os11-vm-baseimage`) that carries
#: each Platform Server (`platformserver` SKU) and LifeTime (`lifetime` SKU) version, from
#: OutSystems/AzureARMTemplates `environmentAzSQL.json` (`PSImage`/`LTImage`, commit 71b88ea,
#: "Update PS,LT & Base Image to 2.28.0"). A base image newer than the requested version would
#: carry a newer Platform Server, which the setup refuses to downgrade.
OUTSYSTEMS_BASE_IMAGE_VERSIONS: Final[Mapping[tuple[str, str], str]] = {
    ("platformserver", "11.32.0"): "2.28.0",
    ("lifetime", "11.25.2"): "2.28.0",
}
Weekday = Literal["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
#: Keys of `network.existingSubnetIds` besides the environments.
GATEWAY: Final = "gateway"
BASTION: Final = "bastion"
#: `network.outbound`: a NAT gateway of the app's, or the outbound the user's subnets have.
Outbound = Literal["natGateway", "existing"]
NAT_GATEWAY_OUTBOUND: Final = "natGateway"

Path = tuple[str | int, ...]


# --- Reusable field checks ------------------------------------------------------------------
#
# Each raises ValueError with a message a person can act on; pydantic attaches the field's path.

_GUID_RE = re.compile(r"[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}")
_LOCATION_RE = re.compile(r"[a-z][a-z0-9]*")
_VM_SIZE_RE = re.compile(r"Standard_[A-Z][A-Za-z0-9_-]*")
_VERSION_RE = re.compile(r"11\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)")
# Azure image versions are Major.Minor.Build (each a number); `latest` floats, so it is refused.
_IMAGE_VERSION_RE = re.compile(r"(0|[1-9][0-9]{0,8})\.(0|[1-9][0-9]{0,8})\.(0|[1-9][0-9]{0,8})")
_IDENTITY_ID_RE = re.compile(
    r"/subscriptions/[0-9a-fA-F-]{36}/resourceGroups/[-\w.()]{1,90}"
    r"/providers/Microsoft\.ManagedIdentity/userAssignedIdentities/[A-Za-z0-9][-\w]{2,127}",
    re.IGNORECASE,
)
_RESOURCE_GROUP_RE = re.compile(r"[-\w.()]{0,89}[-\w()]")
_CLOCK_RE = re.compile(r"([01][0-9]|2[0-3]):[0-5][0-9]")
_USERNAME_RE = re.compile(r"[A-Za-z0-9._-]{1,20}")
_SUBNET_ID_RE = re.compile(
    r"/subscriptions/(?P<sub>[0-9a-fA-F-]{36})/resourceGroups/(?P<rg>[-\w.()]{1,90})"
    r"/providers/Microsoft\.Network/virtualNetworks/(?P<vnet>[-\w.]{2,64})"
    r"/subnets/(?P<subnet>[-\w.]{1,80})",
    re.IGNORECASE,
)
_KEY_VAULT_SECRET_RE = re.compile(
    r"https://[A-Za-z][A-Za-z0-9-]{1,22}[A-Za-z0-9]"
    r"\.vault\.(azure\.net|azure\.cn|usgovcloudapi\.net|microsoftazure\.de)(:443)?"
    r"/secrets/[A-Za-z0-9-]{1,127}(/[0-9a-fA-F]{32})?/?"
)
# Azure rejects these admin user names on Windows VMs (compared case-insensitively).
RESERVED_USERNAMES: Final = frozenset(
    {
        "1", "123", "a", "actuser", "adm", "admin", "admin1", "admin2", "administrator",
        "aspnet", "backup", "console", "david", "guest", "john", "owner", "root", "server",
        "sql", "support", "support_388945a0", "sys", "test", "test1", "test2", "test3",
        "user", "user1", "user2", "user3", "user4", "user5",
    }
)  # fmt: skip
_TAG_KEY_FORBIDDEN = set("<>%&\\?/")
_RESERVED_TAG_PREFIXES = ("microsoft", "azure", "windows")


def _check_solution_id(value: str) -> str:
    if not is_valid_solution_id(value):
        raise ValueError("must be 1-6 lowercase letters and digits, starting with a letter")
    return value


def _check_subscription_id(value: str) -> str:
    if not _GUID_RE.fullmatch(value):
        raise ValueError("must be a subscription id (a GUID)")
    return value.lower()


def _check_location(value: str) -> str:
    if not _LOCATION_RE.fullmatch(value):
        hint = re.sub(r"[^a-z0-9]", "", value.lower())
        suggestion = hint if _LOCATION_RE.fullmatch(hint) else "westeurope"
        raise ValueError(
            f"must be an Azure region name in lowercase without spaces, e.g. {suggestion!r}"
        )
    return value


def _check_resource_group(value: str) -> str:
    if not _RESOURCE_GROUP_RE.fullmatch(value):
        raise ValueError(
            "must be 1-90 letters, digits, '_', '-', '.', '(' or ')', not ending with '.'"
        )
    return value


def _check_vm_size(value: str) -> str:
    if not _VM_SIZE_RE.fullmatch(value):
        raise ValueError("must be an Azure VM size such as 'Standard_F4s_v2'")
    return value


def _check_version(value: str) -> str:
    if not _VERSION_RE.fullmatch(value):
        raise ValueError("must be an OutSystems 11 version 11.x.y, e.g. '11.32.0'")
    return value


def _check_image_version(value: str) -> str:
    if value.lower() == "latest":
        raise ValueError(
            "must be a pinned image version such as '20348.2762.241006', not 'latest': a "
            "floating image gives servers added later another build than the ones they join"
        )
    if not _IMAGE_VERSION_RE.fullmatch(value):
        raise ValueError("must be an Azure image version Major.Minor.Build, e.g. '2.28.0'")
    return value


def _check_identity_id(value: str) -> str:
    if not _IDENTITY_ID_RE.fullmatch(value):
        raise ValueError(
            "must be the resource id of a user-assigned managed identity: /subscriptions/<id>/"
            "resourceGroups/<group>/providers/Microsoft.ManagedIdentity/"
            "userAssignedIdentities/<name>"
        )
    return value


def _check_guid(value: str) -> str:
    if not _GUID_RE.fullmatch(value):
        raise ValueError("must be an object id (a GUID)")
    return value.lower()


def _check_admin_username(value: str) -> str:
    if not _USERNAME_RE.fullmatch(value):
        raise ValueError("must be 1-20 characters: letters, digits, '.', '_' or '-'")
    if value.endswith("."):
        raise ValueError("must not end with '.'")
    if value.lower() in RESERVED_USERNAMES:
        raise ValueError(f"{value!r} is a name Azure reserves on Windows VMs; choose another")
    return value


def _check_clock(value: str) -> str:
    if not _CLOCK_RE.fullmatch(value):
        raise ValueError("must be a 24-hour time HH:MM, e.g. '08:00'")
    return value


@lru_cache(maxsize=1)
def _time_zone_names() -> frozenset[str]:
    return frozenset(available_timezones())


def _check_time_zone(value: str) -> str:
    valid = value in _time_zone_names()
    if valid:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            valid = False
    if not valid:
        close = difflib.get_close_matches(value, sorted(_time_zone_names()), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ", e.g. 'Europe/Lisbon'"
        raise ValueError(f"must be an IANA time zone name{hint}")
    return value


def _check_cidr(value: str) -> str:
    try:
        network = ipaddress.ip_network(value, strict=False)
    except ValueError:
        raise ValueError("must be an IPv4 CIDR block such as '10.0.0.0/16'") from None
    if network.version != 4 or "/" not in value:
        raise ValueError("must be an IPv4 CIDR block such as '10.0.0.0/16'")
    if str(network) != value:
        raise ValueError(f"has host bits set; did you mean {str(network)!r}?")
    return value


def _check_subnet_id(value: str) -> str:
    if not _SUBNET_ID_RE.fullmatch(value):
        raise ValueError(
            "must be a subnet resource id: /subscriptions/<id>/resourceGroups/<group>/"
            "providers/Microsoft.Network/virtualNetworks/<vnet>/subnets/<subnet>"
        )
    return value


def _check_key_vault_secret_id(value: str) -> str:
    if not _KEY_VAULT_SECRET_RE.fullmatch(value):
        raise ValueError(
            "must be a Key Vault secret URL: https://<vault>.vault.azure.net/secrets/<name>"
            "[/<version>]"
        )
    return value


SolutionId = Annotated[StrictStr, AfterValidator(_check_solution_id)]
SubscriptionId = Annotated[StrictStr, AfterValidator(_check_subscription_id)]
Location = Annotated[StrictStr, AfterValidator(_check_location)]
ResourceGroupName = Annotated[StrictStr, AfterValidator(_check_resource_group)]
VmSize = Annotated[StrictStr, AfterValidator(_check_vm_size)]
Version = Annotated[StrictStr, AfterValidator(_check_version)]
AdminUsername = Annotated[StrictStr, AfterValidator(_check_admin_username)]
ClockTime = Annotated[StrictStr, AfterValidator(_check_clock)]
TimeZoneName = Annotated[StrictStr, AfterValidator(_check_time_zone)]
Cidr = Annotated[StrictStr, AfterValidator(_check_cidr)]
SubnetId = Annotated[StrictStr, AfterValidator(_check_subnet_id)]
KeyVaultSecretId = Annotated[StrictStr, AfterValidator(_check_key_vault_secret_id)]
ImageVersion = Annotated[StrictStr, AfterValidator(_check_image_version)]
IdentityId = Annotated[StrictStr, AfterValidator(_check_identity_id)]
ObjectId = Annotated[StrictStr, AfterValidator(_check_guid)]


class _ProblemsError(ValueError):
    """Cross-field problems found by a model validator, each at a path below the model."""

    def __init__(self, problems: list[tuple[Path, str]]) -> None:
        super().__init__("; ".join(message for _, message in problems))
        self.problems = problems


def _raise_problems(problems: list[tuple[Path, str]]) -> None:
    if problems:
        raise _ProblemsError(problems)


# --- The address plan -----------------------------------------------------------------------

#: Azure keeps 5 addresses of every subnet (network, gateway, 2 DNS, broadcast).
AZURE_RESERVED_ADDRESSES: Final = 5
_SUBNET_BLOCKS: Final = (*ENVIRONMENTS, GATEWAY, BASTION)
# The address space is cut into 8 equal blocks (of at most a /24, as the Marketplace lays out
# 10.0.0.0/16): one per environment, the gateway's, then Bastion's.
_BLOCK_BITS: Final = 3
_LARGEST_BLOCK_PREFIX: Final = 24
_SMALLEST_BLOCK_PREFIX: Final = 27
_BASTION_PREFIX: Final = 26


@dataclass(frozen=True)
class AddressPlan:
    """The subnets carved out of a new VNet's address space."""

    address_space: ipaddress.IPv4Network
    subnets: Mapping[str, ipaddress.IPv4Network]

    def subnet(self, key: str) -> ipaddress.IPv4Network:
        """The prefix of `key`: an environment, `gateway` or `bastion`."""
        return self.subnets[key]

    def static_address(self, env: Environment) -> str:
        """The first address Azure hands out in the environment's subnet (x.x.x.4)."""
        return str(self.subnets[env].network_address + 4)


def minimum_address_prefix(bastion: bool) -> int:
    """The largest prefix length (smallest address space) the platform fits in."""
    smallest_block = _BASTION_PREFIX if bastion else _SMALLEST_BLOCK_PREFIX
    return smallest_block - _BLOCK_BITS


def address_plan(address_space: str, bastion: bool) -> AddressPlan:
    """The subnets of a new VNet; raises `ValueError` when the space is too small."""
    space = ipaddress.IPv4Network(address_space)
    minimum = minimum_address_prefix(bastion)
    if space.prefixlen > minimum:
        raise ValueError(
            f"is too small: the platform needs 4 environment subnets and the gateway subnet"
            f"{' and AzureBastionSubnet (at least /26)' if bastion else ''}; use at least a "
            f"/{minimum}"
        )
    block_prefix = max(space.prefixlen + _BLOCK_BITS, _LARGEST_BLOCK_PREFIX)
    blocks = space.subnets(new_prefix=block_prefix)
    subnets: dict[str, ipaddress.IPv4Network] = {}
    for key in _SUBNET_BLOCKS:
        block = next(blocks)
        if key == BASTION:
            if not bastion:
                continue
            block = (
                next(block.subnets(new_prefix=_BASTION_PREFIX)) if block.prefixlen < 26 else block
            )
        subnets[key] = block
    return AddressPlan(space, subnets)


def usable_addresses(subnet: ipaddress.IPv4Network) -> int:
    return subnet.num_addresses - AZURE_RESERVED_ADDRESSES


# --- The models -----------------------------------------------------------------------------


class _SpecModel(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, extra="forbid", frozen=True)


class EnvironmentSpec(_SpecModel):
    """Settings of the dev, test and life environments."""

    vm_size: VmSize = DEFAULT_VM_SIZE
    #: The gateway's web application firewall (Microsoft's Default Rule Set): off by default
    #: outside production, where developers publish large modules through it.
    waf: WafMode = "Off"


class ScheduleSpec(_SpecModel):
    """A window in which the front-end capacity never goes below `min_capacity`."""

    days: tuple[Weekday, ...] = Field(min_length=1)
    start: ClockTime
    end: ClockTime
    time_zone: TimeZoneName
    min_capacity: StrictInt

    @field_validator("days")
    @classmethod
    def _days_once(cls, days: tuple[Weekday, ...]) -> tuple[Weekday, ...]:
        repeated = sorted({day for day in days if days.count(day) > 1}, key=WEEKDAYS.index)
        if repeated:
            raise ValueError(f"lists {', '.join(repeated)} more than once")
        return days

    @model_validator(mode="after")
    def _not_empty(self) -> ScheduleSpec:
        if self.start == self.end:
            raise _ProblemsError([(("end",), "must differ from start (a window cannot be empty)")])
        return self

    def window(self) -> ScheduleWindow:
        return ScheduleWindow(
            days=frozenset(self.days),
            start=time.fromisoformat(self.start),
            end=time.fromisoformat(self.end),
            time_zone=self.time_zone,
            min_capacity=self.min_capacity,
        )


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


class FrontendsSpec(_SpecModel):
    """The production front-end scale set of a farm and its scaling policy.

    Defaults: capacity 2, bounds 2-10, clamped to the bounds the user gives (a spec that
    only says `"minCapacity": 4` gets capacity 4 and maximum 10).
    """

    vm_size: VmSize = DEFAULT_VM_SIZE
    capacity: StrictInt = DEFAULT_CAPACITY
    min_capacity: StrictInt = Field(default=DEFAULT_MIN_CAPACITY, ge=1)
    max_capacity: StrictInt = Field(default=DEFAULT_MAX_CAPACITY, le=MAX_FRONTENDS)
    scale_out_step: StrictInt = Field(default=1, ge=1)
    scale_in_step: StrictInt = Field(default=1, ge=1)
    cooldown_minutes: StrictInt = Field(default=10, ge=0)
    schedules: tuple[ScheduleSpec, ...] = ()

    @model_validator(mode="before")
    @classmethod
    def _clamp_defaults(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        data = dict(data)
        low, high = data.get("minCapacity"), data.get("maxCapacity")
        if "minCapacity" not in data and _is_int(high):
            data["minCapacity"] = min(DEFAULT_MIN_CAPACITY, max(high, 1))
        if "maxCapacity" not in data and _is_int(low):
            data["maxCapacity"] = min(max(DEFAULT_MAX_CAPACITY, low), MAX_FRONTENDS)
        low, high = data.get("minCapacity"), data.get("maxCapacity")
        if "capacity" not in data and _is_int(low) and _is_int(high):
            data["capacity"] = min(max(DEFAULT_CAPACITY, low), high)
        return data

    @model_validator(mode="after")
    def _bounds(self) -> FrontendsSpec:
        low, high = self.min_capacity, self.max_capacity
        problems: list[tuple[Path, str]] = []
        if high < low:
            problems.append((("maxCapacity",), f"must be at least minCapacity ({low})"))
        elif self.capacity < low:
            problems.append((("capacity",), f"must be at least minCapacity ({low})"))
        elif self.capacity > high:
            problems.append((("capacity",), f"must be at most maxCapacity ({high})"))
        for index, schedule in enumerate(self.schedules):
            if not low <= schedule.min_capacity <= high:
                problems.append(
                    (
                        ("schedules", index, "minCapacity"),
                        f"must be between minCapacity ({low}) and maxCapacity ({high})",
                    )
                )
        _raise_problems(problems)
        try:
            policy_to_tags(self.policy())
        except PolicyTagError as error:
            raise _ProblemsError(
                [(("schedules",), f"too many or too long schedules: {error}")]
            ) from None
        return self

    def policy(self) -> ScalingPolicy:
        """The scaling policy these settings describe."""
        return ScalingPolicy(
            min_capacity=self.min_capacity,
            max_capacity=self.max_capacity,
            scale_out_step=self.scale_out_step,
            scale_in_step=self.scale_in_step,
            cooldown_minutes=self.cooldown_minutes,
            schedules=tuple(schedule.window() for schedule in self.schedules),
        )


class ProdSpec(_SpecModel):
    """Production: a farm (controller VM + front-end scale set) or one standalone VM."""

    vm_size: VmSize = DEFAULT_VM_SIZE
    mode: ProdMode = "farm"
    frontends: FrontendsSpec | None = None
    waf: WafMode = "Prevention"

    @model_validator(mode="before")
    @classmethod
    def _farm_has_frontends(cls, data: Any) -> Any:
        farm = isinstance(data, dict) and data.get("mode", "farm") == "farm"
        if farm and data.get("frontends") is None:
            return {**data, "frontends": {}}
        return data

    @model_validator(mode="after")
    def _frontends_only_for_farm(self) -> ProdSpec:
        if self.mode == "standalone" and self.frontends is not None:
            raise _ProblemsError(
                [(("frontends",), "only allowed with mode 'farm'; remove it or set mode 'farm'")]
            )
        return self


class EnvironmentsSpec(_SpecModel):
    """Per-environment overrides; all four environments are always deployed."""

    dev: EnvironmentSpec = Field(default_factory=EnvironmentSpec)
    test: EnvironmentSpec = Field(default_factory=EnvironmentSpec)
    prod: ProdSpec = Field(default_factory=ProdSpec)
    life: EnvironmentSpec = Field(default_factory=EnvironmentSpec)

    def vm_size(self, env: Environment) -> str:
        """The size of the environment's Platform Server VM (the controller in a farm)."""
        settings: EnvironmentSpec | ProdSpec = getattr(self, env)
        return settings.vm_size

    def waf(self, env: Environment) -> WafMode:
        """The mode of the web application firewall on the environment's gateway."""
        settings: EnvironmentSpec | ProdSpec = getattr(self, env)
        return settings.waf


class ExistingSubnetIds(_SpecModel):
    """The user's own subnets: one per environment, the gateway's and optionally Bastion's."""

    dev: SubnetId
    test: SubnetId
    prod: SubnetId
    life: SubnetId
    gateway: SubnetId
    bastion: SubnetId | None = None

    @model_validator(mode="after")
    def _dedicated_subnets(self) -> ExistingSubnetIds:
        problems: list[tuple[Path, str]] = []
        environment_ids = {getattr(self, env).lower() for env in ENVIRONMENTS}
        if self.gateway.lower() in environment_ids:
            problems.append(((GATEWAY,), "the Application Gateway needs a subnet of its own"))
        if self.bastion is not None:
            match = _SUBNET_ID_RE.fullmatch(self.bastion)
            if match is not None and match.group("subnet") != BASTION_SUBNET:
                problems.append(((BASTION,), f"must be a subnet named {BASTION_SUBNET}"))
        _raise_problems(problems)
        return self

    def subnet_id(self, key: str) -> str:
        """The id of `key`'s subnet: an environment, `gateway` or `bastion`."""
        value: str | None = getattr(self, key)
        if value is None:
            raise KeyError(key)
        return value


class NetworkSpec(_SpecModel):
    """A new VNet (`addressSpace`) or the user's existing subnets (`existingSubnetIds`).

    `outbound` is how the servers reach the Internet (the setup downloads its module, installers
    and prerequisites; front-ends call the mobile app builder): `natGateway`, a NAT gateway the
    app creates on the environment subnets of a new VNet, whose subnets are private (no default
    outbound access); or `existing`, the outbound access the user's own subnets already have
    (a NAT gateway, a route to a firewall), which the app does not change.
    """

    address_space: Cidr | None = None
    existing_subnet_ids: ExistingSubnetIds | None = None
    outbound: Outbound | None = None

    @model_validator(mode="before")
    @classmethod
    def _default_address_space(cls, data: Any) -> Any:
        if (
            isinstance(data, dict)
            and data.get("addressSpace") is None
            and data.get("existingSubnetIds") is None
        ):
            return {**data, "addressSpace": DEFAULT_ADDRESS_SPACE}
        return data

    @model_validator(mode="before")
    @classmethod
    def _default_outbound(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("outbound") is None:
            existing = data.get("existingSubnetIds") is not None
            return {**data, "outbound": "existing" if existing else NAT_GATEWAY_OUTBOUND}
        return data

    @model_validator(mode="after")
    def _one_kind(self) -> NetworkSpec:
        if self.address_space is not None and self.existing_subnet_ids is not None:
            raise _ProblemsError(
                [((), "give either addressSpace (a new VNet) or existingSubnetIds, not both")]
            )
        if self.existing_subnet_ids is not None and self.outbound == NAT_GATEWAY_OUTBOUND:
            raise _ProblemsError(
                [
                    (
                        ("outbound",),
                        "the app adds a NAT gateway only to subnets it creates; attach your own "
                        "NAT gateway (or a route to your firewall) to the existing subnets and "
                        "use 'existing'",
                    )
                ]
            )
        if self.address_space is not None and self.outbound == "existing":
            raise _ProblemsError(
                [
                    (
                        ("outbound",),
                        "a new VNet's subnets are private and have no outbound access of their "
                        "own; use 'natGateway' (the servers' setup downloads from the Internet)",
                    )
                ]
            )
        return self


class TlsSpec(_SpecModel):
    """The gateways' certificate: the user's, from a Key Vault of theirs.

    Without `tls`, each gateway gets a self-signed certificate the app creates in the platform's
    vault: HTTPS works, but LifeTime refuses to register environments until it is replaced.
    The gateways read the user's certificate with `identityId` (a user-assigned identity the
    user has granted "Key Vault Secrets User" on the secret), or else with the platform's own
    gateway identity, which the user must grant that role before the gateways can be created.
    """

    certificate_secret_id: KeyVaultSecretId
    identity_id: IdentityId | None = None


class SqlEntraAdminSpec(_SpecModel):
    """An Entra group administering every SQL server of the platform (besides the SQL login)."""

    login: Annotated[StrictStr, Field(min_length=1, max_length=128)]
    object_id: ObjectId


class PlatformSpec(_SpecModel):
    """A whole platform: four environments, their network, images, versions and tags.

    `solution_id`, `subscription_id` and `resource_group` are resolved by `parse_spec()`
    (the path parameter and the defaults), so a spec is complete on its own.
    """

    solution_id: SolutionId
    subscription_id: SubscriptionId
    resource_group: ResourceGroupName
    location: Location
    network: NetworkSpec = Field(default_factory=NetworkSpec)
    image: Image = "windows-server"
    image_version: ImageVersion | None = None
    bastion: StrictBool = False
    platform_version: Version = DEFAULT_PLATFORM_VERSION
    lifetime_version: Version = DEFAULT_LIFETIME_VERSION
    admin_username: AdminUsername = DEFAULT_ADMIN_USERNAME
    environments: EnvironmentsSpec = Field(default_factory=EnvironmentsSpec)
    tls: TlsSpec | None = None
    sql_entra_admin: SqlEntraAdminSpec | None = None
    #: Set by the app, not by users: `marketplace` for new platforms, `legacy` for platforms
    #: deployed before the Marketplace names were adopted (`outsystems.names.NamingScheme`).
    naming: NamingScheme = "marketplace"
    #: `trial`: the 30-day license the setup installs, which allows two front-ends; `own`: the
    #: customer has installed theirs in Service Center (then any capacity).
    license: License = "trial"
    tags: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _trial_license_bounds(cls, data: Any) -> Any:
        """Under the trial license a farm's front-ends default to at most its two."""
        if not isinstance(data, dict) or data.get("license", "trial") != "trial":
            return data
        environments = data.get("environments", {})
        if not isinstance(environments, dict):
            return data
        prod = environments.get("prod", {})
        if not isinstance(prod, dict) or prod.get("mode", "farm") != "farm":
            return data
        frontends = prod.get("frontends") or {}
        if not isinstance(frontends, dict) or "maxCapacity" in frontends:
            return data
        low = frontends.get("minCapacity")
        if isinstance(low, int) and low > TRIAL_LICENSE_FRONTENDS:
            return data  # refused with a clear message by _consistent
        prod = {**prod, "frontends": {**frontends, "maxCapacity": TRIAL_LICENSE_FRONTENDS}}
        return {**data, "environments": {**environments, "prod": prod}}

    @field_validator("tags", mode="before")
    @classmethod
    def _valid_tags(cls, value: Any) -> Any:
        # Checked before pydantic's own type check so that every bad tag is named at once.
        if isinstance(value, dict):
            problems: list[tuple[Path, str]] = []
            for key, item in value.items():
                problem = _tag_problem(key, item)
                if problem:
                    problems.append(((key,), problem))
            _raise_problems(problems)
        return value

    @model_validator(mode="after")
    def _consistent(self) -> PlatformSpec:
        problems: list[tuple[Path, str]] = []
        problems.extend(self._network_problems())
        problems.extend(self._image_problems())
        problems.extend(self._license_problems())
        problems.extend(self._login_problems())
        # Besides its own three, the platform adds one tag to the resource group (the naming
        # scheme), and the policy and its MAC to the scale set: the most any one resource gets
        # decides.
        extra = 1
        frontends = self.frontends
        if frontends is not None:
            extra = max(extra, len(policy_to_tags(frontends.policy())) + 1)
        ours = len(PLATFORM_TAG_KEYS) + extra
        if len(self.tags) + ours > MAX_TAGS_PER_RESOURCE:
            problems.append(
                (
                    ("tags",),
                    f"at most {MAX_TAGS_PER_RESOURCE - ours} tags: Azure allows "
                    f"{MAX_TAGS_PER_RESOURCE} per resource and the platform adds {ours}",
                )
            )
        _raise_problems(problems)
        return self

    def _login_problems(self) -> Iterator[tuple[Path, str]]:
        # The SQL admin login is `<adminUsername>-sql`, and a SQL login must start with a letter.
        if self.naming == "marketplace" and not self.admin_username[:1].isalpha():
            yield (
                ("adminUsername",),
                "must start with a letter: the SQL admin login <adminUsername>-sql must",
            )

    def _license_problems(self) -> Iterator[tuple[Path, str]]:
        frontends = self.frontends
        if self.license != "trial" or frontends is None:
            return
        where = ("environments", "prod", "frontends")
        if frontends.max_capacity > TRIAL_LICENSE_FRONTENDS:
            yield (
                (*where, "maxCapacity"),
                f"the trial license the setup installs allows {TRIAL_LICENSE_FRONTENDS} "
                "front-ends; install your own license in Service Center and set license "
                "'own' to scale beyond",
            )

    def _image_problems(self) -> Iterator[tuple[Path, str]]:
        if self.image != "outsystems-base" or self.image_version is not None:
            return
        for sku, version, field in (
            ("platformserver", self.platform_version, "platformVersion"),
            ("lifetime", self.lifetime_version, "lifetimeVersion"),
        ):
            if (sku, version) not in OUTSYSTEMS_BASE_IMAGE_VERSIONS:
                known = sorted(v for s, v in OUTSYSTEMS_BASE_IMAGE_VERSIONS if s == sku)
                yield (
                    ("imageVersion",),
                    f"no OutSystems base image is known for {field} {version} (known: "
                    f"{', '.join(known)}); give imageVersion, the base image version that "
                    "carries it, or use image 'windows-server'",
                )

    def image_version_of(self, sku: str) -> str:
        """The pinned image version of a server (`platformserver` or `lifetime` SKU)."""
        if self.image_version is not None:
            return self.image_version
        if self.image == "windows-server":
            return DEFAULT_WINDOWS_SERVER_IMAGE_VERSION
        version = self.lifetime_version if sku == "lifetime" else self.platform_version
        return OUTSYSTEMS_BASE_IMAGE_VERSIONS[(sku, version)]

    def _network_problems(self) -> Iterator[tuple[Path, str]]:
        existing = self.network.existing_subnet_ids
        if existing is not None:
            for key in (*ENVIRONMENTS, GATEWAY, BASTION):
                subnet_id = getattr(existing, key)
                match = _SUBNET_ID_RE.fullmatch(subnet_id) if subnet_id else None
                if match and match.group("sub").lower() != self.subscription_id:
                    yield (
                        ("network", "existingSubnetIds", key),
                        f"must be in the platform's subscription {self.subscription_id} "
                        "(Azure attaches NICs only to subnets of their own subscription)",
                    )
            if self.bastion and existing.bastion is None:
                yield (
                    ("network", "existingSubnetIds", BASTION),
                    f"required with bastion: true (the id of an existing {BASTION_SUBNET})",
                )
            if not self.bastion and existing.bastion is not None:
                yield (("network", "existingSubnetIds", BASTION), "only used with bastion: true")
            return
        assert self.network.address_space is not None  # one of the two, by NetworkSpec
        try:
            plan = address_plan(self.network.address_space, self.bastion)
        except ValueError as error:
            yield (("network", "addressSpace"), str(error))
            return
        frontends = self.frontends
        room = usable_addresses(plan.subnet("prod")) - 1  # the controller's address
        if frontends is not None and frontends.max_capacity > room:
            yield (
                ("environments", "prod", "frontends", "maxCapacity"),
                f"the prod subnet {plan.subnet('prod')} has room for {room} front-ends beside "
                "the controller; lower maxCapacity, widen network.addressSpace or use "
                "network.existingSubnetIds",
            )

    # --- helpers ----------------------------------------------------------------------------
    @property
    def frontends(self) -> FrontendsSpec | None:
        """The production front-ends of a farm; None for a standalone production."""
        return self.environments.prod.frontends

    @property
    def is_farm(self) -> bool:
        return self.environments.prod.mode == "farm"

    def address_plan(self) -> AddressPlan | None:
        """The subnets of the new VNet; None when the user brings existing subnets."""
        space = self.network.address_space
        return address_plan(space, self.bastion) if space is not None else None

    def to_json_dict(self) -> dict[str, Any]:
        """The normalized spec as camelCase JSON (defaults filled in, no secrets)."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)

    @classmethod
    def from_json_dict(cls, data: Mapping[str, object]) -> PlatformSpec:
        """The spec back from `to_json_dict()` output; raises `SpecError` if it is invalid."""
        try:
            return cls.model_validate(dict(data))
        except ValidationError as error:
            raise SpecError("The platform spec is invalid.", _field_errors(error)) from None


def _tag_problem(key: str, value: object) -> str | None:
    if not isinstance(value, str):
        return "tag values must be strings"
    if not key:
        return "tag names must not be empty"
    if len(key) > TAG_KEY_MAX:
        return f"tag names hold at most {TAG_KEY_MAX} characters"
    bad = sorted(_TAG_KEY_FORBIDDEN.intersection(key))
    if bad:
        return f"tag names must not contain {' '.join(bad)}"
    lowered = key.lower()
    if lowered.startswith(_RESERVED_TAG_PREFIXES):
        return "tag names starting with 'microsoft', 'azure' or 'windows' are reserved by Azure"
    ours = {k.lower() for k in (*PLATFORM_TAG_KEYS, NAMING_TAG)}
    if lowered in ours or lowered.startswith(POLICY_TAG_PREFIX.lower()):
        return "this tag is set by the platform itself"
    if len(value) > TAG_VALUE_MAX:
        return f"tag values hold at most {TAG_VALUE_MAX} characters"
    return None


# --- Secrets are never part of the spec -----------------------------------------------------

_SECRET_SETTINGS: Final = "VM_ADMIN_PASSWORD, SQL_ADMIN_PASSWORD or PLATFORM_KEY_SEED"


def _secret_setting(key: str, path: Path) -> str | None:
    """The app setting that holds what `key` looks like, or None if it does not look secret."""
    normalized = re.sub(r"[^a-z0-9]", "", key.lower())
    context = "".join(str(part) for part in path).lower() + normalized
    if "privatekey" in normalized:
        return "PLATFORM_KEY_SEED"
    if "password" in normalized or "passwd" in normalized or normalized.endswith("pwd"):
        return "SQL_ADMIN_PASSWORD" if "sql" in context else "VM_ADMIN_PASSWORD"
    # A `...SecretId` is a reference (a Key Vault URL), not a secret.
    if normalized.endswith("secret") or normalized.endswith("secretvalue"):
        return _SECRET_SETTINGS
    return None


# A spec is 6 levels deep; anything much deeper is hostile or broken, and recursing into it
# would end in RecursionError (a 500) instead of a 400.
MAX_DEPTH: Final = 32


def _strip_secrets(value: object, path: Path = ()) -> tuple[object, list[FieldError]]:
    """`value` without password-like keys, and an error for each (never echoing the value)."""
    if len(path) > MAX_DEPTH and isinstance(value, dict | list):
        return None, [FieldError(_target(path), f"nested deeper than {MAX_DEPTH} levels")]
    if isinstance(value, dict):
        kept: dict[str, object] = {}
        errors: list[FieldError] = []
        for key, item in value.items():
            setting = _secret_setting(key, path) if isinstance(key, str) else None
            if setting is not None:
                errors.append(
                    FieldError(
                        _target((*path, key)),
                        f"secrets are never part of the spec: the app setting {setting} "
                        "holds it; remove this field",
                    )
                )
                continue
            kept[key], nested = _strip_secrets(item, (*path, key))
            errors.extend(nested)
        return kept, errors
    if isinstance(value, list):
        items: list[object] = []
        errors = []
        for index, item in enumerate(value):
            cleaned, nested = _strip_secrets(item, (*path, index))
            items.append(cleaned)
            errors.extend(nested)
        return items, errors
    return value, []


# --- Parsing and error reporting ------------------------------------------------------------


def _target(path: Path) -> str:
    return ".".join(str(part) for part in path)


_TYPE_MESSAGES: Final = {
    "model_type": "must be a JSON object",
    "model_attributes_type": "must be a JSON object",
    "dict_type": "must be a JSON object",
    "string_type": "must be a string",
    "int_type": "must be an integer",
    "int_parsing": "must be an integer",
    "int_from_float": "must be an integer",
    "bool_type": "must be true or false",
    "tuple_type": "must be a list",
    "list_type": "must be a list",
    "missing": "is required",
}


def _model_in(annotation: object) -> type[BaseModel] | None:
    """The spec model inside a field's annotation (through Optional and tuple), if any."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    origin = typing.get_origin(annotation)
    if origin is Annotated:
        return _model_in(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType, tuple, list):
        for argument in typing.get_args(annotation):
            found = _model_in(argument)
            if found is not None:
                return found
    return None


def _fields_at(path: Path) -> list[str]:
    """The JSON field names allowed in the object at `path` of a spec body."""
    model: type[BaseModel] | None = PlatformSpec
    for part in path:
        if model is None:
            return []
        if isinstance(part, int):
            continue
        field = next((f for f in model.model_fields.values() if f.alias == part), None)
        model = _model_in(field.annotation) if field is not None else None
    if model is None:
        return []
    names = [field.alias or name for name, field in model.model_fields.items()]
    return [name for name in names if model is not PlatformSpec or name != "solutionId"]


def _unknown_field_message(path: Path) -> str:
    name = str(path[-1])
    allowed = _fields_at(path[:-1])
    close = difflib.get_close_matches(name, allowed, n=1, cutoff=0.6)
    if not close:
        lowered = {a.lower(): a for a in allowed}
        if name.lower() in lowered:
            close = [lowered[name.lower()]]
    if close:
        return f"unknown field: did you mean {close[0]!r}?"
    if allowed:
        return f"unknown field; allowed here: {', '.join(allowed)}"
    return "unknown field"


def _field_errors(error: ValidationError) -> list[FieldError]:
    found: list[FieldError] = []
    for item in error.errors(include_url=False, include_input=False):
        loc: Path = tuple(item["loc"])
        kind = item["type"]
        cause = (item.get("ctx") or {}).get("error")
        if isinstance(cause, _ProblemsError):
            found.extend(FieldError(_target(loc + sub), message) for sub, message in cause.problems)
            continue
        if kind == "extra_forbidden":
            message = _unknown_field_message(loc)
        elif isinstance(cause, ValueError):
            message = str(cause)
        else:
            message = _TYPE_MESSAGES.get(kind, item["msg"])
        found.append(FieldError(_target(loc), message))
    return found


class _DuplicateKeyError(ValueError):
    pass


def _no_duplicate_keys(pairs: list[tuple[str, object]]) -> dict[str, object]:
    result: dict[str, object] = {}
    for key, value in pairs:
        if key in result:
            raise _DuplicateKeyError(f"the key {key!r} appears twice in one object")
        result[key] = value
    return result


def _reject_constant(name: str) -> object:
    raise _DuplicateKeyError(f"{name} is not valid JSON")


def _decode(text: str | bytes | bytearray) -> object:
    try:
        # JSON bodies are UTF-8 (RFC 8259); json.loads would otherwise guess UTF-16/32 too.
        decoded = text if isinstance(text, str) else bytes(text).decode("utf-8-sig")
        return json.loads(
            decoded, object_pairs_hook=_no_duplicate_keys, parse_constant=_reject_constant
        )
    except json.JSONDecodeError as error:
        detail = f"malformed JSON: {error.msg} at line {error.lineno} column {error.colno}"
    except UnicodeDecodeError:
        detail = "malformed JSON: the body is not UTF-8 text"
    except _DuplicateKeyError as error:
        detail = f"malformed JSON: {error}"
    except RecursionError:
        detail = "malformed JSON: nested too deeply"
    except ValueError:
        # json.loads refuses integers of more than 4300 digits (CPython's conversion limit).
        detail = "malformed JSON: a number is far too long"
    raise SpecError("The request body is not valid JSON.", [FieldError("body", detail)])


def parse_spec(
    solution_id: str,
    body: object,
    *,
    default_subscription_id: str,
    managed_subscription_ids: Collection[str] = (),
) -> PlatformSpec:
    """The validated spec of platform `solution_id`, or `SpecError` listing every problem.

    `body` is decoded JSON, or JSON text (`str`/`bytes`). The subscription defaults to
    `default_subscription_id` and must be it or one of `managed_subscription_ids`; the resource
    group defaults to `<solutionId>-rg`.
    """
    if isinstance(body, str | bytes | bytearray):
        body = _decode(body)
    if not isinstance(body, dict):
        raise SpecError(
            "The platform spec is invalid.", [FieldError("body", "must be a JSON object")]
        )
    cleaned, errors = _strip_secrets(body)
    assert isinstance(cleaned, dict)
    if "solutionId" in cleaned:
        errors.append(
            FieldError("solutionId", "unknown field: the solution id is given by the URL path")
        )
        del cleaned["solutionId"]

    subscription = cleaned.get("subscriptionId")
    if subscription is None:
        subscription = default_subscription_id
    managed = {s.strip().lower() for s in (default_subscription_id, *managed_subscription_ids)}
    if (
        isinstance(subscription, str)
        and _GUID_RE.fullmatch(subscription)
        and subscription.lower() not in managed
    ):
        errors.append(
            FieldError(
                "subscriptionId",
                f"this app does not manage subscription {subscription}: use the default "
                "(AZURE_SUBSCRIPTION_ID) or add it to the app setting MANAGED_SUBSCRIPTION_IDS",
            )
        )
    resource_group = cleaned.get("resourceGroup")
    if resource_group is None:
        # An invalid solution id is reported on its own; do not also derive a bad group from it.
        valid = is_valid_solution_id(solution_id)
        resource_group = default_resource_group(solution_id if valid else "invalid")
    data = {
        **cleaned,
        "solutionId": solution_id,
        "subscriptionId": subscription,
        "resourceGroup": resource_group,
    }
    spec: PlatformSpec | None = None
    try:
        spec = PlatformSpec.model_validate(data)
    except ValidationError as error:
        errors.extend(_field_errors(error))
    if errors or spec is None:
        raise SpecError("The platform spec is invalid.", errors)
    return spec


def spec_json_schema() -> dict[str, Any]:
    """The JSON schema of the request body (by alias), for the OpenAPI document."""
    schema = PlatformSpec.model_json_schema(by_alias=True, mode="validation")
    schema["properties"].pop("solutionId", None)
    schema["required"] = [
        name
        for name in schema.get("required", [])
        if name not in {"solutionId", "subscriptionId", "resourceGroup"}
    ]
    schema["properties"]["subscriptionId"]["description"] = (
        "Defaults to the app setting AZURE_SUBSCRIPTION_ID; must be a managed subscription."
    )
    schema["properties"]["resourceGroup"]["description"] = "Defaults to <solutionId>-rg."
    return schema


def resolve_naming(
    body: object,
    previous_spec: Mapping[str, Any] | None,
    group_tags: Mapping[str, str] | None,
) -> NamingScheme | None:
    """The naming scheme a PUT or plan must use, or None to keep what the body says.

    New platforms get the Marketplace's names. A platform deployed before keeps the scheme it
    was created with: the one its last spec recorded (none recorded: created before schemes
    existed, so `legacy`), else the one its resource group's tag says (a group of ours without
    the tag: `legacy`). Renaming a SQL server, a database or its admin login would mean new
    ones, so a body asking to change the scheme of a deployed platform is left as it is and
    refused by `naming_change`.
    """
    if isinstance(body, dict) and "naming" in body:
        return None
    if previous_spec is not None:
        return _scheme(previous_spec.get("naming"))
    if group_tags is not None:
        tags = {key.lower(): value for key, value in group_tags.items()}
        return _scheme(tags.get(NAMING_TAG.lower()))
    return "marketplace"


def _scheme(recorded: object) -> NamingScheme:
    return "marketplace" if recorded == "marketplace" else "legacy"


def naming_change(previous_spec: Mapping[str, Any] | None, spec: PlatformSpec) -> FieldError | None:
    """An error when a deployed platform's body asks for another naming scheme."""
    if previous_spec is None:
        return None
    before = previous_spec.get("naming") or "legacy"
    if before == spec.naming:
        return None
    return FieldError(
        "naming",
        f"cannot change the naming scheme of a deployed platform from {before} to "
        f"{spec.naming}: its SQL servers, databases and public IPs keep their names",
    )

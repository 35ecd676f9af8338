"""The spec's models: a whole platform, its environments, front-ends, TLS and SQL admin.

`PlatformSpec` composes the other concerns of the package: field checks (`fields`), the
network and its address plan (`network`), OutSystems versions and images (`versions`).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import time
from typing import Annotated, Any, Final, Literal

from pydantic import (
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    ValidationError,
    field_validator,
    model_validator,
)

from outsystems.errors import SpecError
from outsystems.names import Environment, NamingScheme
from outsystems.policy import (
    WEEKDAYS,
    PolicyTagError,
    ScalingPolicy,
    ScheduleWindow,
    policy_to_tags,
)
from outsystems.spec.fields import (
    AdminUsername,
    ClockTime,
    IdentityId,
    KeyVaultSecretId,
    Location,
    ObjectId,
    Path,
    ProblemsError,
    ResourceGroupName,
    SolutionId,
    SpecModel,
    SubscriptionId,
    TimeZoneName,
    VmSize,
    raise_problems,
    tag_problem,
)
from outsystems.spec.network import AddressPlan, NetworkSpec, address_plan, network_problems
from outsystems.spec.reporting import field_errors
from outsystems.spec.upgrade import UpgradeSpec
from outsystems.spec.versions import (
    DEFAULT_LIFETIME_VERSION,
    DEFAULT_PLATFORM_VERSION,
    Image,
    ImageVersion,
    Version,
    image_problems,
    image_version_of,
)
from outsystems.tags import MAX_TAGS_PER_RESOURCE, PLATFORM_TAG_KEYS

DEFAULT_VM_SIZE: Final = "Standard_F4s_v2"
DEFAULT_ADMIN_USERNAME: Final = "osadmin"
DEFAULT_CAPACITY: Final = 2
DEFAULT_MIN_CAPACITY: Final = 2
DEFAULT_MAX_CAPACITY: Final = 10
MAX_FRONTENDS: Final = 1000

ProdMode = Literal["farm", "standalone"]
WafMode = Literal["Prevention", "Detection", "Off"]
License = Literal["trial", "own"]
#: Front-ends the trial license the setup installs allows: "The trial license included in the
#: templates only allows two frontend servers including the deployment controller"
#: (OutSystems/AzureARMTemplates README, commit 71b88ea). In a farm the controller is no
#: front-end, so the scale set may hold two.
TRIAL_LICENSE_FRONTENDS: Final = 2
Weekday = Literal["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]


class EnvironmentSpec(SpecModel):
    """Settings of the dev, test and life environments."""

    vm_size: VmSize = DEFAULT_VM_SIZE
    #: The gateway's web application firewall (Microsoft's Default Rule Set): off by default
    #: outside production, where developers publish large modules through it.
    waf: WafMode = "Off"


class ScheduleSpec(SpecModel):
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
            raise ProblemsError([(("end",), "must differ from start (a window cannot be empty)")])
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


class FrontendsSpec(SpecModel):
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
        raise_problems(problems)
        try:
            policy_to_tags(self.policy())
        except PolicyTagError as error:
            raise ProblemsError(
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


class ProdSpec(SpecModel):
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
            raise ProblemsError(
                [(("frontends",), "only allowed with mode 'farm'; remove it or set mode 'farm'")]
            )
        return self


class EnvironmentsSpec(SpecModel):
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


class TlsSpec(SpecModel):
    """The gateways' certificate: the user's, from a Key Vault of theirs.

    Without `tls`, each gateway gets a self-signed certificate the app creates in the platform's
    vault: HTTPS works, but LifeTime refuses to register environments until it is replaced.
    The gateways read the user's certificate with `identityId` (a user-assigned identity the
    user has granted "Key Vault Secrets User" on the secret), or else with the platform's own
    gateway identity, which the user must grant that role before the gateways can be created.
    """

    certificate_secret_id: KeyVaultSecretId
    identity_id: IdentityId | None = None


class SqlEntraAdminSpec(SpecModel):
    """An Entra group administering every SQL server of the platform (besides the SQL login)."""

    login: Annotated[StrictStr, Field(min_length=1, max_length=128)]
    object_id: ObjectId


class PlatformSpec(SpecModel):
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
    #: How an upgrade of the versions goes (`outsystems.spec.upgrade`); absent: the defaults.
    upgrade: UpgradeSpec | None = None

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
                problem = tag_problem(key, item)
                if problem:
                    problems.append(((key,), problem))
            raise_problems(problems)
        return value

    @model_validator(mode="after")
    def _consistent(self) -> PlatformSpec:
        problems: list[tuple[Path, str]] = []
        problems.extend(network_problems(self))
        problems.extend(image_problems(self))
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
        raise_problems(problems)
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

    # --- helpers ----------------------------------------------------------------------------
    @property
    def frontends(self) -> FrontendsSpec | None:
        """The production front-ends of a farm; None for a standalone production."""
        return self.environments.prod.frontends

    @property
    def upgrade_settings(self) -> UpgradeSpec:
        """The `upgrade` block, its defaults when the spec gives none."""
        return self.upgrade if self.upgrade is not None else UpgradeSpec()

    @property
    def is_farm(self) -> bool:
        return self.environments.prod.mode == "farm"

    def image_version_of(self, sku: str) -> str:
        """The pinned image version of a server (`platformserver` or `lifetime` SKU)."""
        return image_version_of(self, sku)

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
            raise SpecError("The platform spec is invalid.", field_errors(error, cls)) from None

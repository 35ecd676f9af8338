"""The platform's network in the spec: a new VNet and its address plan, or the user's subnets.

A new VNet's address space is cut into one subnet per environment, the Application Gateway's
and, with `bastion`, AzureBastionSubnet (`address_plan`). Existing subnets are named by id, one
per environment, the gateway's and optionally Bastion's (`ExistingSubnetIds`).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, Final, Literal

from pydantic import AfterValidator, StrictStr, model_validator

from outsystems.names import BASTION_SUBNET, ENVIRONMENTS, Environment
from outsystems.spec.fields import Path, ProblemsError, SpecModel, raise_problems

if TYPE_CHECKING:
    from outsystems.spec.model import PlatformSpec

DEFAULT_ADDRESS_SPACE: Final = "10.0.0.0/16"
#: Keys of `network.existingSubnetIds` besides the environments.
GATEWAY: Final = "gateway"
BASTION: Final = "bastion"
#: `network.outbound`: a NAT gateway of the app's, or the outbound the user's subnets have.
Outbound = Literal["natGateway", "existing"]
NAT_GATEWAY_OUTBOUND: Final = "natGateway"

SUBNET_ID_RE: Final = re.compile(
    r"/subscriptions/(?P<sub>[0-9a-fA-F-]{36})/resourceGroups/(?P<rg>[-\w.()]{1,90})"
    r"/providers/Microsoft\.Network/virtualNetworks/(?P<vnet>[-\w.]{2,64})"
    r"/subnets/(?P<subnet>[-\w.]{1,80})",
    re.IGNORECASE,
)


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
    if not SUBNET_ID_RE.fullmatch(value):
        raise ValueError(
            "must be a subnet resource id: /subscriptions/<id>/resourceGroups/<group>/"
            "providers/Microsoft.Network/virtualNetworks/<vnet>/subnets/<subnet>"
        )
    return value


Cidr = Annotated[StrictStr, AfterValidator(_check_cidr)]
SubnetId = Annotated[StrictStr, AfterValidator(_check_subnet_id)]


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


class ExistingSubnetIds(SpecModel):
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
            match = SUBNET_ID_RE.fullmatch(self.bastion)
            if match is not None and match.group("subnet") != BASTION_SUBNET:
                problems.append(((BASTION,), f"must be a subnet named {BASTION_SUBNET}"))
        raise_problems(problems)
        return self

    def subnet_id(self, key: str) -> str:
        """The id of `key`'s subnet: an environment, `gateway` or `bastion`."""
        value: str | None = getattr(self, key)
        if value is None:
            raise KeyError(key)
        return value


class NetworkSpec(SpecModel):
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
            raise ProblemsError(
                [((), "give either addressSpace (a new VNet) or existingSubnetIds, not both")]
            )
        if self.existing_subnet_ids is not None and self.outbound == NAT_GATEWAY_OUTBOUND:
            raise ProblemsError(
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
            raise ProblemsError(
                [
                    (
                        ("outbound",),
                        "a new VNet's subnets are private and have no outbound access of their "
                        "own; use 'natGateway' (the servers' setup downloads from the Internet)",
                    )
                ]
            )
        return self


def network_problems(spec: PlatformSpec) -> Iterator[tuple[Path, str]]:
    """What the rest of the spec asks of its network: subnets in the platform's subscription,
    Bastion's subnet given exactly when Bastion is, an address space with room for the farm."""
    existing = spec.network.existing_subnet_ids
    if existing is not None:
        for key in (*ENVIRONMENTS, GATEWAY, BASTION):
            subnet_id = getattr(existing, key)
            match = SUBNET_ID_RE.fullmatch(subnet_id) if subnet_id else None
            if match and match.group("sub").lower() != spec.subscription_id:
                yield (
                    ("network", "existingSubnetIds", key),
                    f"must be in the platform's subscription {spec.subscription_id} "
                    "(Azure attaches NICs only to subnets of their own subscription)",
                )
        if spec.bastion and existing.bastion is None:
            yield (
                ("network", "existingSubnetIds", BASTION),
                f"required with bastion: true (the id of an existing {BASTION_SUBNET})",
            )
        if not spec.bastion and existing.bastion is not None:
            yield (("network", "existingSubnetIds", BASTION), "only used with bastion: true")
        return
    assert spec.network.address_space is not None  # one of the two, by NetworkSpec
    try:
        plan = address_plan(spec.network.address_space, spec.bastion)
    except ValueError as error:
        yield (("network", "addressSpace"), str(error))
        return
    frontends = spec.frontends
    room = usable_addresses(plan.subnet("prod")) - 1  # the controller's address
    if frontends is not None and frontends.max_capacity > room:
        yield (
            ("environments", "prod", "frontends", "maxCapacity"),
            f"the prod subnet {plan.subnet('prod')} has room for {room} front-ends beside "
            "the controller; lower maxCapacity, widen network.addressSpace or use "
            "network.existingSubnetIds",
        )

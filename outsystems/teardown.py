"""The order of a teardown: what depends on others goes first, as waves of parallel deletes.

A teardown works from what ARM lists as the platform's (its tags), not from a spec, so it also
removes resources an older spec created; the role assignments the spec's graph grants, which
carry no tags, are added to that list. Types are ranked so that a resource is deleted only
after everything that may reference it: alerts before the scale set they watch, VMs before
their NICs, NICs and gateways before the subnets' VNet and the NSGs. Child resources (subnets,
databases, extensions, file shares) go with their parent.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from outsystems.resource_types import (
    ACTION_GROUP,
    APP_GATEWAY,
    BASTION_HOST,
    DISK,
    IDENTITY,
    KEY_VAULT,
    METRIC_ALERT,
    NAT_GATEWAY,
    NIC,
    NSG,
    PUBLIC_IP,
    RESOURCE_GROUP,
    SCALE_SET,
    SQL_SERVER,
    STORAGE_ACCOUNT,
    VM,
    VNET,
    WAF_POLICY,
    api_version,
)
from outsystems.topology import Resource

#: Deletion waves by type; a type not listed goes in the first wave (nothing of ours needs it).
_WAVES: Final[tuple[frozenset[str], ...]] = (
    frozenset({METRIC_ALERT, BASTION_HOST}),
    frozenset({SCALE_SET, VM, ACTION_GROUP}),
    frozenset({APP_GATEWAY, NIC, DISK}),
    frozenset({SQL_SERVER, WAF_POLICY}),
    # Key Vault soft-deletes: a redeploy of the platform recovers the vault with its secrets.
    frozenset({STORAGE_ACCOUNT, IDENTITY, KEY_VAULT}),
    frozenset({VNET}),
    # A NAT gateway is in use until its subnets are gone; its public IP until it is.
    frozenset({NSG, NAT_GATEWAY}),
    frozenset({PUBLIC_IP}),
)
_RANK: Final[Mapping[str, int]] = {
    type_name.lower(): rank for rank, types in enumerate(_WAVES) for type_name in types
}


@dataclass(frozen=True)
class Found:
    """A resource ARM lists as the platform's: id, type and the environment tag."""

    id: str
    type: str
    environment: str

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Found:
        return cls(id=data["id"], type=data["type"], environment=data["environment"])

    def to_json(self) -> dict[str, str]:
        return {"id": self.id, "type": self.type, "environment": self.environment}


def rank(resource_type: str) -> int:
    """The deletion wave of a type (0 first)."""
    return _RANK.get(resource_type.lower(), 0)


def _api_version(resource_type: str) -> str:
    try:
        return api_version(resource_type)
    except KeyError:
        # A type our topology never creates (e.g. a managed disk left by a VM): ARM's resources
        # API version serves generic deletes of any type.
        return api_version(RESOURCE_GROUP)


def deletion_graph(found: Iterable[Found]) -> tuple[Resource, ...]:
    """The resources to delete as a graph: each depends on every resource of earlier waves.

    Fed to `outsystems.deployment.Walk`, this deletes wave after wave, each wave in parallel.
    """
    items = sorted(found, key=lambda f: (rank(f.type), f.id.lower()))
    resources: list[Resource] = []
    for item in items:
        earlier = tuple(r.id for r in resources if rank(r.type) < rank(item.type))
        resources.append(
            Resource(
                id=item.id,
                type=item.type,
                name=item.id.rsplit("/", 1)[-1],
                api_version=_api_version(item.type),
                environment=item.environment,
                body={},
                depends_on=earlier,
            )
        )
    return tuple(resources)


def select(
    found: Sequence[Found], environments: Sequence[str], *, whole_platform: bool
) -> list[Found]:
    """What a teardown of `environments` removes: their resources, and shared ones if whole."""
    wanted = {env.lower() for env in environments}
    return [
        f
        for f in found
        if f.environment.lower() in wanted or (whole_platform and f.environment == "shared")
    ]

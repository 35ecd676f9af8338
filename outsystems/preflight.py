"""What a spec may not ask for, given what already exists in Azure (issue 13.5).

Checked at PUT and plan time, before anything is created; each problem names the spec's field.
Pure: the ARM reads are `arm/preflight.py`'s, handed in as `Read`s.

- `resourceGroup` may name a group that does not exist yet (the app creates it) or one that is
  this platform's (tagged `managedBy` = this app and `osSolutionId` = the solution id), never a
  foreign group nor the app's own: the app puts the platform into it and tears it down with it.
  An existing group of the platform must be in the spec's `location`: ARM refuses to PUT a
  group with another location (`InvalidResourceGroupLocation`).
- `network.existingSubnetIds`: each subnet must be in a VNet of the `ALLOWED_VNET_IDS` app
  setting when it is set (a hub VNet, say, is no place for a platform), and must exist. The
  four environments' subnets must carry the `Microsoft.Sql` service endpoint (each
  environment's SQL server admits its servers through a virtual network rule on that subnet,
  which Azure refuses on a subnet without the endpoint: "Use virtual network service endpoints
  and rules for servers in Azure SQL Database",
  https://learn.microsoft.com/azure/azure-sql/database/vnet-service-endpoint-rule-overview) and
  an outbound path to the Internet (the setup downloads the installer, its prerequisites and
  PowerShell modules): a NAT gateway, a default route through a firewall or gateway
  (0.0.0.0/0 to a `VirtualAppliance` or `VirtualNetworkGateway`), or the default outbound access
  that a subnet has unless `defaultOutboundAccess` is false. A private subnet has none: "Default
  outbound access in Azure",
  https://learn.microsoft.com/azure/virtual-network/ip-services/default-outbound-access.
  Subnets bodies are ARM's `Microsoft.Network/virtualNetworks/subnets` (`properties.natGateway`,
  `.serviceEndpoints[].service`, `.defaultOutboundAccess`, `.routeTable`); route tables' routes
  `properties.routes[].properties.{addressPrefix, nextHopType}`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from outsystems.errors import ApiError, FieldError
from outsystems.names import ENVIRONMENTS
from outsystems.spec import BASTION, GATEWAY, PlatformSpec
from outsystems.tags import (
    MANAGED_BY_TAG,
    MANAGED_BY_VALUE,
    SOLUTION_TAG,
    owned_by,
)

SUBNETS_FIELD: Final = "network.existingSubnetIds"
RESOURCE_GROUP_FIELD: Final = "resourceGroup"
ALLOWED_VNETS_SETTING: Final = "ALLOWED_VNET_IDS"
SQL_ENDPOINT: Final = "Microsoft.Sql"
#: Next hops of a default route that lead out through the user's own network.
_OUTBOUND_HOPS: Final = frozenset(
    {"virtualappliance", "virtualapplianceecmp", "virtualnetworkgateway"}
)
_SUBNET_IN_VNET = re.compile(r"(?P<vnet>.+/virtualNetworks/[^/]+)/subnets/[^/]+", re.IGNORECASE)


class PreflightError(ApiError):
    """The spec asks for something that what exists in Azure rules out."""

    code = "PreflightFailed"


@dataclass(frozen=True)
class Read:
    """ARM's answer to a GET: the body; neither body nor error for a 404; the error text for a
    refusal (403, say)."""

    body: Mapping[str, Any] | None = None
    error: str | None = None

    @property
    def missing(self) -> bool:
        return self.body is None and self.error is None


def existing_subnets(spec: PlatformSpec) -> dict[str, str]:
    """The user's subnets of the spec by key (`dev` ... `life`, `gateway`, `bastion`)."""
    existing = spec.network.existing_subnet_ids
    if existing is None:
        return {}
    keys = (*ENVIRONMENTS, GATEWAY, BASTION)
    return {key: subnet for key in keys if (subnet := getattr(existing, key)) is not None}


def vnet_of(subnet_id: str) -> str:
    """The id of the VNet a subnet id belongs to."""
    match = _SUBNET_IN_VNET.fullmatch(subnet_id.rstrip("/"))
    return match["vnet"] if match else subnet_id


def _field(key: str) -> str:
    return f"{SUBNETS_FIELD}.{key}"


def allowed_vnet_problems(spec: PlatformSpec, allowed: Sequence[str]) -> list[FieldError]:
    """Subnets outside the allowed VNets (none when the allow-list is empty: no restriction)."""
    if not allowed:
        return []
    permitted = {vnet.lower().rstrip("/") for vnet in allowed}
    return [
        FieldError(
            _field(key),
            f"is in VNet {vnet_of(subnet)}, which is not one of the VNets this app may deploy "
            f"to (app setting {ALLOWED_VNETS_SETTING})",
        )
        for key, subnet in existing_subnets(spec).items()
        if vnet_of(subnet).lower() not in permitted
    ]


def resource_group_problems(spec: PlatformSpec, group: Read) -> list[FieldError]:
    """A group that exists must be this platform's."""
    name = spec.resource_group
    if group.error is not None:
        return [FieldError(RESOURCE_GROUP_FIELD, f"the app cannot read {name}: {group.error}")]
    if group.missing:
        return []
    tags = (group.body or {}).get("tags")
    if owned_by(tags if isinstance(tags, Mapping) else None, spec.solution_id):
        region = str((group.body or {}).get("location") or "")
        if region and _region(region) != _region(spec.location):
            # ARM refuses to PUT an existing group with another location.
            return [
                FieldError(
                    "location",
                    f"the platform's resource group {name} is in {region}: a platform stays "
                    "in the region it was created in",
                )
            ]
        return []
    return [
        FieldError(
            RESOURCE_GROUP_FIELD,
            f"{name} exists and is not this platform's (its tags do not say "
            f"{MANAGED_BY_TAG}={MANAGED_BY_VALUE} and {SOLUTION_TAG}={spec.solution_id}): the app "
            "deploys only into a group it created for the platform, or one tagged so by its "
            "owner; name another group, or leave resourceGroup out for "
            f"{spec.solution_id}-rg",
        )
    ]


def _region(location: str) -> str:
    """A location as ARM names it in URLs and bodies alike ("West Europe" is westeurope)."""
    return location.replace(" ", "").lower()


def _properties(body: Mapping[str, Any] | None) -> Mapping[str, Any]:
    properties = (body or {}).get("properties")
    return properties if isinstance(properties, Mapping) else {}


def _reference(value: Any) -> str | None:
    if isinstance(value, Mapping) and isinstance(value.get("id"), str) and value["id"]:
        return str(value["id"])
    return None


def route_table_ids(subnets: Mapping[str, Read]) -> list[str]:
    """The route tables of the environments' subnets (to see where their default route goes)."""
    found: list[str] = []
    for key in ENVIRONMENTS:
        read = subnets.get(key)
        table = _reference(_properties(read.body if read else None).get("routeTable"))
        if table and table.lower() not in {t.lower() for t in found}:
            found.append(table)
    return found


def _routes_out(table: Read) -> bool:
    for route in _properties(table.body).get("routes") or []:
        properties = _properties(route) if isinstance(route, Mapping) else {}
        if (
            properties.get("addressPrefix") == "0.0.0.0/0"
            and str(properties.get("nextHopType", "")).lower() in _OUTBOUND_HOPS
        ):
            return True
    return False


def _outbound_problem(properties: Mapping[str, Any], tables: Mapping[str, Read]) -> str | None:
    """Why a subnet has no outbound path to the Internet; None when it has one."""
    if _reference(properties.get("natGateway")):
        return None
    table_id = _reference(properties.get("routeTable"))
    table = tables.get(table_id.lower()) if table_id else None
    if table is not None and table.body is not None and _routes_out(table):
        return None
    if properties.get("defaultOutboundAccess") is not False:
        return None
    unread = ""
    if table is not None and table.error is not None:
        unread = f"; its route table {table_id} cannot be read by the app: {table.error}"
    return (
        "has no outbound path to the Internet, which the OutSystems setup needs for its "
        "downloads: no NAT gateway, no default route through a firewall, and "
        "defaultOutboundAccess is false (a private subnet)"
        f"{unread}; attach a NAT gateway to the subnet"
    )


def _has_sql_endpoint(properties: Mapping[str, Any]) -> bool:
    return any(
        isinstance(endpoint, Mapping)
        and str(endpoint.get("service", "")).lower() == "microsoft.sql"
        for endpoint in properties.get("serviceEndpoints") or []
    )


def subnet_problems(
    spec: PlatformSpec, subnets: Mapping[str, Read], route_tables: Mapping[str, Read]
) -> list[FieldError]:
    """Each of the user's subnets must exist; the environments' need SQL and outbound access.

    `subnets` by key as in `existing_subnets`; `route_tables` by lower-cased id.
    """
    problems: list[FieldError] = []
    tables = {table_id.lower(): read for table_id, read in route_tables.items()}
    for key, subnet_id in existing_subnets(spec).items():
        read = subnets.get(key, Read())
        if read.error is not None:
            problems.append(FieldError(_field(key), f"the app cannot read it: {read.error}"))
            continue
        if read.missing:
            problems.append(FieldError(_field(key), f"the subnet {subnet_id} does not exist"))
            continue
        if key not in ENVIRONMENTS:
            continue
        properties = _properties(read.body)
        if not _has_sql_endpoint(properties):
            problems.append(
                FieldError(
                    _field(key),
                    f"has no {SQL_ENDPOINT} service endpoint: the {key} SQL server admits its "
                    "servers through a virtual network rule on this subnet, which Azure refuses "
                    f"without it; add the {SQL_ENDPOINT} service endpoint to the subnet",
                )
            )
        outbound = _outbound_problem(properties, tables)
        if outbound:
            problems.append(FieldError(_field(key), outbound))
    return problems


def raise_problems(problems: Iterable[FieldError]) -> None:
    """`PreflightError` carrying every problem, if there is any."""
    listed = list(problems)
    if listed:
        raise PreflightError("The platform spec cannot be deployed as it stands.", listed)

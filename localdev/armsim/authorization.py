"""The caller's rights: which ARM action a request is, and ARM's 403s when a role lacks it.

Off by default (every action allowed, as before). With a permissions file (`--permissions
FILE`, the app's `infra/app/platform-operator-role.json`: `actions`, `notActions`,
`assignableRoleIds`) every request maps to the action ARM authorizes it as, and the caller holds
exactly that role at subscription scope:

- a resource's GET/HEAD and lists are `<type>/read`, PUT/PATCH `<type>/write`, DELETE
  `<type>/delete`, a POST `.../{name}/{action}` is `<type>/<action>/action`; child types,
  extension types (`Microsoft.Authorization/roleAssignments`), groups
  (`Microsoft.Resources/subscriptions/resourceGroups/...`), the subscription
  (`Microsoft.Resources/subscriptions/read`), operation polls (`<ns>/locations/<segment>/read`,
  `Microsoft.Resources/subscriptions/operationresults/read` for a group's deletion) included
  (action names: MicrosoftDocs/azure-docs, articles/role-based-access-control/
  resource-provider-operations.md);
- a write that links another resource needs that resource's linked action too: assigning a
  user-assigned identity `Microsoft.ManagedIdentity/userAssignedIdentities/assign/action`,
  putting something in a subnet `.../subnets/join/action` (SQL VNet rules and network ACLs:
  `.../subnets/joinViaServiceEndpoint/action`, articles/virtual-network/virtual-networks-faq.md),
  an NSG, public IP, NAT gateway, NIC, gateway backend pool or WAF policy its `join/action`;
- a role assignment may only assign the roles in `assignableRoleIds` (the condition of the
  app's "Role Based Access Control Administrator" assignment).

Refusals are ARM's (MicrosoftDocs/azure-docs commit 012ad308, articles/
role-based-access-control/troubleshooting.md): 403 `AuthorizationFailed` "The client '<client>'
with object id '<objectId>' does not have authorization to perform action '<action>' over scope
'<scope>' or the scope is invalid. If access was recently granted, please refresh your
credentials." ("does not have authorization or an ABAC condition not fulfilled" when the
condition refuses), and 403 `LinkedAuthorizationFailed` "The client '<client>' with object id
'<objectId>' has permission to perform action '<action>' on scope '<scope>'; however, it does
not have permission to perform action(s) '<linked>' on the linked scope(s) '<linked scope>'
(respectively) or the linked scope(s) are invalid."
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path
from typing import Any

from localdev.armsim.catalog import canonical_type, spec_for
from localdev.armsim.errors import ArmError
from localdev.armsim.messages import SimRequest
from localdev.armsim.paths import ResourcePath, Route, key, parse_resource_id

GROUPS = "Microsoft.Resources/subscriptions/resourceGroups"
ROLE_ASSIGNMENTS = "microsoft.authorization/roleassignments"
_SERVICE_ENDPOINT_JOIN = "Microsoft.Network/virtualNetworks/subnets/joinViaServiceEndpoint/action"

#: The action a write needs on each type of resource it links (lower-case target type).
LINKED_ACTIONS: Mapping[str, str] = {
    "microsoft.managedidentity/userassignedidentities": (
        "Microsoft.ManagedIdentity/userAssignedIdentities/assign/action"
    ),
    "microsoft.network/virtualnetworks/subnets": (
        "Microsoft.Network/virtualNetworks/subnets/join/action"
    ),
    "microsoft.network/networksecuritygroups": (
        "Microsoft.Network/networkSecurityGroups/join/action"
    ),
    "microsoft.network/publicipaddresses": "Microsoft.Network/publicIPAddresses/join/action",
    "microsoft.network/natgateways": "Microsoft.Network/natGateways/join/action",
    "microsoft.network/networkinterfaces": "Microsoft.Network/networkInterfaces/join/action",
    "microsoft.network/applicationgateways/backendaddresspools": (
        "Microsoft.Network/applicationGateways/backendAddressPools/join/action"
    ),
    "microsoft.network/loadbalancers/backendaddresspools": (
        "Microsoft.Network/loadBalancers/backendAddressPools/join/action"
    ),
    "microsoft.network/applicationgatewaywebapplicationfirewallpolicies": (
        "Microsoft.Network/ApplicationGatewayWebApplicationFirewallPolicies/join/action"
    ),
}
#: Body properties whose subnet reference is a service-endpoint link, not a join.
_SERVICE_ENDPOINT_PROPERTIES = ("virtualnetworksubnetid", "networkacls")


@lru_cache(maxsize=512)
def _pattern(action: str) -> re.Pattern[str]:
    # ARM's wildcard: `*` matches any text; `/*/` also matches a bare `/`, which is how the
    # built-in Managed Identity Operator's `userAssignedIdentities/*/assign/action` grants the
    # `userAssignedIdentities/assign/action` operation the linked check names.
    parts = [re.escape(part) for part in action.split("*")]
    regex = ".*".join(parts).replace("/.*/", "/(?:.*/)?")
    return re.compile(regex, re.IGNORECASE)


def matches(patterns: Iterable[str], action: str) -> bool:
    """Whether any role action pattern covers `action`."""
    return any(_pattern(pattern).fullmatch(action) for pattern in patterns)


@dataclass(frozen=True)
class Permissions:
    """What the caller may do: a role's actions and the roles it may assign."""

    role_name: str
    actions: tuple[str, ...]
    not_actions: tuple[str, ...] = ()
    #: Role definition GUIDs role assignments may use; None when unconstrained.
    assignable_role_ids: frozenset[str] | None = None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Permissions:
        """From the role file's shape (`roleName`, `actions`, `notActions`, `assignableRoleIds`)."""
        actions = data.get("actions")
        not_actions = data.get("notActions", [])
        assignable = data.get("assignableRoleIds")
        if not isinstance(actions, list) or not _strings(actions) or not _strings(not_actions):
            raise ValueError("permissions need 'actions' (and 'notActions') as lists of strings")
        if assignable is not None and not _strings(assignable):
            raise ValueError("'assignableRoleIds' must be a list of role definition GUIDs")
        return cls(
            role_name=str(data.get("roleName", "")),
            actions=tuple(actions),
            not_actions=tuple(not_actions),
            assignable_role_ids=(
                frozenset(r.lower() for r in assignable) if assignable is not None else None
            ),
        )

    @classmethod
    def load(cls, path: Path) -> Permissions:
        """Read a role file; ValueError when it is not one."""
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            raise ValueError(f"cannot read permissions file {path}: {error}") from None
        if not isinstance(data, dict):
            raise ValueError(f"permissions file {path} is not a JSON object")
        return cls.from_json(data)

    def to_json(self) -> dict[str, Any]:
        """The admin API's view (the role file's shape)."""
        return {
            "roleName": self.role_name,
            "actions": list(self.actions),
            "notActions": list(self.not_actions),
            "assignableRoleIds": (
                sorted(self.assignable_role_ids) if self.assignable_role_ids is not None else None
            ),
        }

    def allows(self, action: str) -> bool:
        """Whether the role grants `action` (and no `notActions` entry takes it away)."""
        return matches(self.actions, action) and not matches(self.not_actions, action)

    def may_assign(self, role_id: str) -> bool:
        """Whether a role assignment of this role definition GUID meets the condition."""
        return self.assignable_role_ids is None or role_id.lower() in self.assignable_role_ids

    def without(self, *actions: str) -> Permissions:
        """The same role without some of its action entries (as written in the file)."""
        dropped = {a.lower() for a in actions}
        return replace(self, actions=tuple(a for a in self.actions if a.lower() not in dropped))

    def with_actions(self, *actions: str) -> Permissions:
        """The same role with more action entries."""
        return replace(self, actions=(*self.actions, *actions))


def _strings(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(item, str) for item in value)


@dataclass(frozen=True)
class Caller:
    """Who calls ARM, as ARM names it in its 403s."""

    client_id: str
    object_id: str

    def denied(self, action: str, scope: str, *, condition: bool = False) -> ArmError:
        """403 `AuthorizationFailed` for an action the caller's role does not grant."""
        what = "authorization or an ABAC condition not fulfilled" if condition else "authorization"
        return ArmError(
            403,
            "AuthorizationFailed",
            f"The client '{self.client_id}' with object id '{self.object_id}' does not have "
            f"{what} to perform action '{action}' over scope '{scope}' or the scope is invalid. "
            "If access was recently granted, please refresh your credentials.",
        )

    def linked_denied(self, action: str, scope: str, linked: list[tuple[str, str]]) -> ArmError:
        """403 `LinkedAuthorizationFailed`: the write is allowed, a linked resource's action not."""
        actions = ",".join(a for a, _ in linked)
        scopes = ",".join(s for _, s in linked)
        return ArmError(
            403,
            "LinkedAuthorizationFailed",
            f"The client '{self.client_id}' with object id '{self.object_id}' has permission to "
            f"perform action '{action}' on scope '{scope}'; however, it does not have permission "
            f"to perform action(s) '{actions}' on the linked scope(s) '{scopes}' (respectively) "
            "or the linked scope(s) are invalid.",
        )


# ---------------------------------------------------------------- request -> action

_VERBS = {"GET": "read", "HEAD": "read", "PUT": "write", "PATCH": "write", "DELETE": "delete"}
#: POST actions whose operation name is cased otherwise than their path segment (the provider
#: operations list: `Microsoft.Compute/virtualMachineScaleSets/manualUpgrade/action`, while the
#: REST path is `.../manualupgrade`). Matching is case-insensitive anyway; this is how ARM names
#: the action in its 403.
_ACTION_NAMES = {
    "manualupgrade": "manualUpgrade",
    "restorepoints": "restorePoints",
    "runcommand": "runCommand",
}


def _type_name(path: ResourcePath) -> str:
    return canonical_type(path.full_type)


def required_action(route: Route, method: str) -> str | None:
    """The action ARM authorizes a request as (None for what needs no action)."""
    method = method.upper()
    if method == "POST":
        if route.path is None or not route.path.is_collection:
            return None
        target = route.path.parent
        if target is None or target.is_collection:
            return None
        action = route.path.types[-1]
        return f"{_type_name(target)}/{_ACTION_NAMES.get(action.lower(), action)}/action"
    verb = _VERBS.get(method)
    if verb is None:
        return None
    if route.kind in {"resource", "collection"} and route.path is not None:
        return f"{_type_name(route.path)}/{'read' if route.kind == 'collection' else verb}"
    fixed = {
        "subscription": "Microsoft.Resources/subscriptions/read",
        "group": f"{GROUPS}/{verb}",
        "group_list": f"{GROUPS}/read",
        "group_resources": f"{GROUPS}/resources/read",
        "subscription_resources": "Microsoft.Resources/subscriptions/resources/read",
        "group_operation_result": "Microsoft.Resources/subscriptions/operationresults/read",
        "usages": f"{route.namespace}/locations/usages/read",
    }
    if route.kind in fixed:
        return fixed[route.kind]
    if route.kind == "subscription_type_list":
        return f"{canonical_type(f'{route.namespace}/{route.type_name}')}/read"
    if route.kind in {"operation_status", "operation_result"}:
        return f"{route.namespace}/locations/{route.type_name}/read"
    return None


def _walk(value: Any, dotted: str = "") -> Iterator[tuple[str, str]]:
    """(property path, id) of every `{"id": "/subscriptions/..."}` nested in a body."""
    if isinstance(value, dict):
        for name, item in value.items():
            here = f"{dotted}.{name}" if dotted else name
            if name == "id" and dotted and isinstance(item, str):
                if item.lower().startswith("/subscriptions/"):
                    yield dotted, item
            else:
                yield from _walk(item, here)
    elif isinstance(value, list):
        for item in value:
            yield from _walk(item, dotted)


def linked_references(path: ResourcePath, body: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(linked action, linked id) for every other resource a write body links."""
    found: list[tuple[str, str]] = list(_walk(body))
    spec = spec_for(path.full_type)
    for dotted in spec.reference_paths:
        current: Any = body
        for part in dotted.split("."):
            current = current.get(part) if isinstance(current, Mapping) else None
        if isinstance(current, str) and current:
            found.append((dotted, current))
    identities = (body.get("identity") or {}) if isinstance(body.get("identity"), dict) else {}
    for identity_id in identities.get("userAssignedIdentities") or {}:
        found.append(("identity.userAssignedIdentities", str(identity_id)))
    own = key(path.id)
    linked: list[tuple[str, str]] = []
    for where, reference in found:
        ref_key = key(reference)
        if ref_key == own or ref_key.startswith(own + "/"):
            continue
        target = parse_resource_id(reference)
        if target is None:
            continue
        action = LINKED_ACTIONS.get(target.full_type.lower())
        if action is None:
            continue
        if target.full_type.lower().endswith("/subnets") and any(
            marker in where.lower() for marker in _SERVICE_ENDPOINT_PROPERTIES
        ):
            action = _SERVICE_ENDPOINT_JOIN
        if (action, reference) not in linked:
            linked.append((action, reference))
    return linked


def _json(request: SimRequest) -> dict[str, Any] | None:
    try:
        body = json.loads(request.body or b"{}")
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def role_guid(role_definition_id: str) -> str:
    """The GUID at the end of a role definition id."""
    return role_definition_id.rstrip("/").rsplit("/", 1)[-1]


def check(permissions: Permissions, caller: Caller, route: Route, request: SimRequest) -> None:
    """Raise ARM's 403 when `permissions` do not cover the request."""
    action = required_action(route, request.method)
    if action is None:
        return
    scope = request.path.rstrip("/") or "/"
    if not permissions.allows(action):
        raise caller.denied(action, scope)
    path = route.path
    if request.method.upper() not in {"PUT", "PATCH"} or route.kind != "resource" or path is None:
        return
    body = _json(request)
    if body is None:
        return
    if path.full_type.lower() == ROLE_ASSIGNMENTS:
        role = str((body.get("properties") or {}).get("roleDefinitionId", ""))
        if role and not permissions.may_assign(role_guid(role)):
            raise caller.denied(action, scope, condition=True)
    refused = [
        (linked, target)
        for linked, target in linked_references(path, body)
        if not permissions.allows(linked)
    ]
    if refused:
        raise caller.linked_denied(action, scope, refused)

"""Per-type behaviour where ARM does more than store a body.

Scale sets keep instances consistent with `sku.capacity`; NICs and scale-set instances get
private IPs from their subnet; VNets own their inline subnets; subnets stay inside their VNet's
address space; VMs and scale sets count against the regional vCPU quota; VMs, scale sets and
extensions have instance views; public IPs get addresses; SQL and Storage fill in their
read-only fields. Each behaviour hooks into the engine's write, completion, view and delete
steps; types without an entry behave generically.
"""

from __future__ import annotations

import hashlib
import ipaddress
import uuid
from collections.abc import Mapping
from typing import Any

from localdev.armsim import extensions, run_command, scale_sets, sql_backups
from localdev.armsim.bodies import references_of
from localdev.armsim.catalog import spec_for
from localdev.armsim.errors import ArmError
from localdev.armsim.hooks import ArmSim, Behaviour, properties_of
from localdev.armsim.messages import SimRequest, SimResponse
from localdev.armsim.network import public_ip_nat_gateway
from localdev.armsim.paths import ResourcePath, Route, key
from localdev.armsim.store import Operation, Resource, iso
from localdev.armsim.validation import get_path, is_windows, subnet_prefixes, vcpus_of

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

VM_TYPE = "Microsoft.Compute/virtualMachines"
VMSS_TYPE = "Microsoft.Compute/virtualMachineScaleSets"
VMSS_VM_TYPE = "Microsoft.Compute/virtualMachineScaleSets/virtualMachines"
VM_EXTENSION_TYPE = "Microsoft.Compute/virtualMachines/extensions"
VMSS_EXTENSION_TYPE = "Microsoft.Compute/virtualMachineScaleSets/extensions"
SUBNET_TYPE = "Microsoft.Network/virtualNetworks/subnets"
#: Fake public addresses come from the documentation ranges (RFC 5737): never routable.
_PUBLIC_RANGES = ("203.0.113.", "198.51.100.", "192.0.2.")


def _status(state: str, error: Mapping[str, Any] | None = None) -> dict[str, Any]:
    if state == "Failed":
        code = str((error or {}).get("code", "Failed"))
        return {
            "code": f"ProvisioningState/failed/{code}",
            "level": "Error",
            "displayStatus": "Provisioning failed",
            "message": str((error or {}).get("message", "")),
        }
    return {
        "code": f"ProvisioningState/{state.lower()}",
        "level": "Info",
        "displayStatus": f"Provisioning {state.lower()}",
    }


def _power_state(state: str) -> dict[str, Any]:
    power = {"Creating": "starting", "Deleting": "stopping"}.get(state, "running")
    return {"code": f"PowerState/{power}", "level": "Info", "displayStatus": f"VM {power}"}


# ================================================================ private IP addresses


def _usable_hosts(network: Network) -> tuple[int, int]:
    """First and last address Azure hands out (it reserves 4 at the start and 1 at the end)."""
    return int(network.network_address) + 4, int(network.broadcast_address) - 1


def subnet_networks(subnet: Resource) -> list[Network]:
    """The address ranges of a stored subnet."""
    return subnet_prefixes(subnet.body.get("properties") or {})


def allocate_ip(engine: ArmSim, subnet: Resource, owner_id: str, requested: str | None) -> str:
    """Reserve a private IP for an owner: the requested one (static) or the first free one."""
    address = find_ip(engine, subnet, owner_id, requested)
    engine.store.reserve_ip(subnet.id, address, owner_id)
    return address


def find_ip(engine: ArmSim, subnet: Resource, owner_id: str, requested: str | None) -> str:
    """The address an owner would get in a subnet, without reserving it."""
    networks = [n for n in subnet_networks(subnet) if n.version == 4]
    taken = engine.store.ip_reservations.get(key(subnet.id), {})
    owner = key(owner_id)
    if requested:
        try:
            wanted = ipaddress.ip_address(requested)
        except ValueError:
            raise ArmError(
                400, "InvalidPrivateIPAddress", f"Private IP address {requested} is not valid."
            ) from None
        inside = [n for n in networks if wanted in n]
        if not inside:
            raise ArmError(
                400,
                "PrivateIPAddressNotInSubnet",
                f"IP address {requested} does not belong to subnet {subnet.id}.",
            )
        low, high = _usable_hosts(inside[0])
        if not low <= int(wanted) <= high:
            raise ArmError(
                400,
                "PrivateIPAddressInReservedRange",
                f"IP address {requested} is reserved for Azure services in subnet {subnet.id}.",
            )
        holder = taken.get(str(wanted))
        if holder is not None and holder != owner and not holder.startswith(owner + "/"):
            raise ArmError(
                400,
                "PrivateIPAddressInUse",
                f"IP configuration {owner_id} is using the private IP address {requested} which "
                f"is already allocated to resource {holder}.",
            )
        return str(wanted)
    for network in networks:
        low, high = _usable_hosts(network)
        for value in range(low, high + 1):
            candidate = str(ipaddress.ip_address(value))
            if candidate not in taken:
                return candidate
    raise ArmError(
        400,
        "SubnetIsFull",
        f"Subnet {subnet.name} with address prefix {subnet_networks(subnet)} does not have "
        "enough capacity for 1 IP addresses.",
    )


def free_addresses(engine: ArmSim, subnet: Resource) -> int:
    """How many addresses a subnet can still hand out."""
    taken = engine.store.ip_reservations.get(key(subnet.id), {})
    total = 0
    for network in subnet_networks(subnet):
        if network.version == 4:
            low, high = _usable_hosts(network)
            total += max(0, high - low + 1)
    return total - len(taken)


# ================================================================ network


def _overlaps(a: Network, b: Network) -> bool:
    return a.version == b.version and a.overlaps(b)


def _inside(prefix: Network, space: list[Network]) -> bool:
    return any(
        prefix.version == s.version and prefix.subnet_of(s)  # type: ignore[arg-type]
        for s in space
    )


def _vnet_space(body: Mapping[str, Any]) -> list[Network]:
    prefixes = get_path(body, "properties.addressSpace.addressPrefixes") or []
    return [ipaddress.ip_network(str(p)) for p in prefixes]


def _subnet_in_use(engine: ArmSim, subnet: Resource) -> str | None:
    taken = engine.store.ip_reservations.get(key(subnet.id), {})
    if taken:
        return next(iter(taken.values()))
    doomed = key(subnet.id)
    for other in engine.store.resources.values():
        if key(other.id).startswith(doomed) or other.type == SUBNET_TYPE:
            continue
        for reference in references_of(spec_for(other.type), other.body):
            if key(reference) == doomed:
                return other.id
    return None


class VirtualNetwork(Behaviour):
    """A VNet owns its subnets: the inline `subnets` list is the complete set."""

    def check(
        self, engine: ArmSim, path: ResourcePath, body: dict[str, Any], existing: Resource | None
    ) -> None:
        space = _vnet_space(body)
        inline = get_path(body, "properties.subnets") or []
        seen: list[tuple[str, Network]] = []
        for subnet in inline:
            for prefix in subnet_prefixes(subnet.get("properties") or {}):
                _check_subnet_prefix(subnet["name"], path.name, prefix, space, seen)
                seen.append((subnet["name"], prefix))
        if existing is None:
            return
        keep = {str(s.get("name", "")).lower() for s in inline}
        for child in engine.store.children(existing.id, SUBNET_TYPE):
            if child.name.lower() not in keep:
                user = _subnet_in_use(engine, child)
                if user is not None:
                    raise ArmError(
                        400,
                        "InUseSubnetCannotBeDeleted",
                        f"Subnet {child.name} is in use by {user} and cannot be deleted. In "
                        "order to delete the subnet, delete all the resources within the subnet.",
                    )

    def applied(self, engine: ArmSim, resource: Resource, previous: dict[str, Any] | None) -> None:
        properties = resource.body.setdefault("properties", {})
        inline = properties.pop("subnets", None) or []
        wanted = {str(s["name"]).lower(): s for s in inline}
        for old in engine.store.children(resource.id, SUBNET_TYPE):
            if old.name.lower() not in wanted:
                engine.store.remove(old.id)
        for subnet in wanted.values():
            body = {k: v for k, v in subnet.items() if k not in {"id", "name", "type", "etag"}}
            child = engine.store.get(f"{resource.id}/subnets/{subnet['name']}")
            if child is None:
                child = Resource(
                    id=f"{resource.id}/subnets/{subnet['name']}",
                    type=SUBNET_TYPE,
                    body=body,
                    state=resource.state,
                    created=engine.now,
                    changed=engine.now,
                    etag=resource.etag,
                )
                engine.store.put(child)
                engine.store.record_creation(child.id)
            elif child.body != body or child.state in {"Failed", "Canceled"}:
                # A PUT of the VNet applies its inline subnets again, failed ones included.
                child.body, child.state, child.changed = body, resource.state, engine.now

    def completed(self, engine: ArmSim, resource: Resource, op: Operation | None) -> None:
        for child in engine.store.children(resource.id, SUBNET_TYPE):
            if child.state in {"Creating", "Updating"}:
                child.state = "Succeeded"

    def failed(self, engine: ArmSim, resource: Resource, op: Operation) -> None:
        for child in engine.store.children(resource.id, SUBNET_TYPE):
            if child.state in {"Creating", "Updating"}:
                child.state = "Failed"

    def decorate(
        self, engine: ArmSim, resource: Resource, view: dict[str, Any], expand: str
    ) -> None:
        properties_of(view)["subnets"] = [
            engine.view(child) for child in engine.store.children(resource.id, SUBNET_TYPE)
        ]


def _check_subnet_prefix(
    subnet_name: str,
    vnet_name: str,
    prefix: Network,
    space: list[Network],
    siblings: list[tuple[str, Network]],
) -> None:
    if not _inside(prefix, space):
        raise ArmError(
            400,
            "NetcfgSubnetRangeOutsideVnet",
            f"Subnet '{subnet_name}' is not valid because its IP address range is outside the IP "
            f"address range of virtual network '{vnet_name}'.",
        )
    for other_name, other in siblings:
        if other_name.lower() != subnet_name.lower() and _overlaps(prefix, other):
            raise ArmError(
                400,
                "NetcfgSubnetRangesOverlap",
                f"Subnet '{subnet_name}' is not valid because its IP address range overlaps with "
                f"that of an existing subnet '{other_name}' in virtual network '{vnet_name}'.",
            )


class Subnet(Behaviour):
    """A subnet lies inside its VNet's address space and does not overlap its siblings."""

    def check(
        self, engine: ArmSim, path: ResourcePath, body: dict[str, Any], existing: Resource | None
    ) -> None:
        parent = path.parent
        vnet = engine.store.get(parent.id) if parent else None
        if vnet is None:
            return
        siblings = [
            (child.name, prefix)
            for child in engine.store.children(vnet.id, SUBNET_TYPE)
            for prefix in subnet_networks(child)
        ]
        prefixes = subnet_prefixes(body.get("properties") or {})
        for prefix in prefixes:
            _check_subnet_prefix(path.name, vnet.name, prefix, _vnet_space(vnet.body), siblings)
        if existing is None or not engine.store.ip_reservations.get(key(existing.id)):
            return
        if sorted(map(str, prefixes)) != sorted(map(str, subnet_networks(existing))):
            raise ArmError(
                400,
                "InUseSubnetCannotBeUpdated",
                f"Subnet {path.name} is in use and its address prefix cannot be updated.",
            )

    def decorate(
        self, engine: ArmSim, resource: Resource, view: dict[str, Any], expand: str
    ) -> None:
        owners = sorted(set(engine.store.ip_reservations.get(key(resource.id), {}).values()))
        if owners:
            properties_of(view)["ipConfigurations"] = [{"id": owner} for owner in owners]


class NetworkInterface(Behaviour):
    """NICs get private IPs from their subnet (static if asked) and know their VM."""

    def check(
        self, engine: ArmSim, path: ResourcePath, body: dict[str, Any], existing: Resource | None
    ) -> None:
        for configuration in get_path(body, "properties.ipConfigurations") or []:
            properties = configuration.get("properties") or {}
            subnet = engine.store.get(str(get_path(properties, "subnet.id")))
            if subnet is None:
                continue
            owner = f"{path.id}/ipConfigurations/{configuration['name']}"
            requested = self._requested(properties)
            find_ip(engine, subnet, owner, requested)

    @staticmethod
    def _requested(properties: Mapping[str, Any]) -> str | None:
        method = str(properties.get("privateIPAllocationMethod") or "Dynamic")
        return str(properties["privateIPAddress"]) if method.lower() == "static" else None

    def applied(self, engine: ArmSim, resource: Resource, previous: dict[str, Any] | None) -> None:
        held: dict[str, dict[str, str]] = resource.extra.get("ips", {})
        engine.store.release_ips(resource.id)
        allocated: dict[str, dict[str, str]] = {}
        for configuration in get_path(resource.body, "properties.ipConfigurations") or []:
            properties = configuration.get("properties") or {}
            subnet = engine.store.get(str(get_path(properties, "subnet.id")))
            if subnet is None:
                continue
            name = str(configuration["name"])
            owner = f"{resource.id}/ipConfigurations/{name}"
            requested = self._requested(properties)
            before = held.get(name)
            if requested is None and before and key(before["subnet"]) == key(subnet.id):
                requested = before["ip"]
            address = allocate_ip(engine, subnet, owner, requested)
            allocated[name] = {"ip": address, "subnet": subnet.id}
        resource.extra["ips"] = allocated

    def decorate(
        self, engine: ArmSim, resource: Resource, view: dict[str, Any], expand: str
    ) -> None:
        properties = properties_of(view)
        held = resource.extra.get("ips", {})
        for index, configuration in enumerate(properties.get("ipConfigurations") or []):
            item = configuration.setdefault("properties", {})
            item.setdefault("privateIPAllocationMethod", "Dynamic")
            item.setdefault("privateIPAddressVersion", "IPv4")
            item.setdefault("primary", index == 0)
            allocation = held.get(configuration.get("name"))
            if allocation:
                item["privateIPAddress"] = allocation["ip"]
        vm = _vm_using_nic(engine, resource.id)
        if vm is not None:
            properties["virtualMachine"] = {"id": vm.id}
            digest = hashlib.sha256(key(resource.id).encode()).hexdigest()
            properties["macAddress"] = "00-0D-3A-" + "-".join(
                digest[i : i + 2].upper() for i in (0, 2, 4)
            )


def _vm_using_nic(engine: ArmSim, nic_id: str, exclude: str | None = None) -> Resource | None:
    for resource in engine.store.resources.values():
        if resource.type != VM_TYPE or (exclude and key(resource.id) == key(exclude)):
            continue
        for nic in get_path(resource.body, "properties.networkProfile.networkInterfaces") or []:
            if isinstance(nic, dict) and key(str(nic.get("id", ""))) == key(nic_id):
                return resource
    return None


class PublicIPAddress(Behaviour):
    """Public IPs get an address (from documentation ranges) and an FQDN from their label."""

    def applied(self, engine: ArmSim, resource: Resource, previous: dict[str, Any] | None) -> None:
        if "ipAddress" not in resource.extra:
            number = engine.store.next_public_ip
            engine.store.next_public_ip += 1
            block, host = divmod(number - 1, 254)
            resource.extra["ipAddress"] = f"{_PUBLIC_RANGES[block % 3]}{host + 1}"

    def decorate(
        self, engine: ArmSim, resource: Resource, view: dict[str, Any], expand: str
    ) -> None:
        properties = properties_of(view)
        properties.setdefault("publicIPAllocationMethod", "Static")
        properties.setdefault("publicIPAddressVersion", "IPv4")
        if resource.extra.get("ipAddress"):
            properties["ipAddress"] = resource.extra["ipAddress"]
        nat = public_ip_nat_gateway(engine, resource)
        if nat is not None:
            properties["natGateway"] = {"id": nat}
        label = get_path(properties, "dnsSettings.domainNameLabel")
        if label:
            location = engine.store.location_of(resource)
            properties["dnsSettings"]["fqdn"] = f"{label}.{location}.cloudapp.azure.com"


# ================================================================ compute


def _cores(resource: Resource) -> int:
    if resource.type == VM_TYPE:
        size = get_path(resource.body, "properties.hardwareProfile.vmSize")
        return vcpus_of(str(size)) if size else 0
    if resource.type == VMSS_TYPE:
        size = get_path(resource.body, "sku.name")
        capacity = int(get_path(resource.body, "sku.capacity") or 0)
        return vcpus_of(str(size)) * capacity if size else 0
    return 0


def _body_cores(type_name: str, body: Mapping[str, Any]) -> int:
    probe = Resource(
        id="/", type=type_name, body=dict(body), state="", created=0, changed=0, etag=""
    )
    return _cores(probe)


def cores_in_use(
    engine: ArmSim, subscription: str, location: str, exclude: str | None = None
) -> int:
    """vCPUs of the VMs and scale-set instances of a subscription in a region."""
    prefix = f"/subscriptions/{subscription}/".lower()
    total = 0
    for resource_key, resource in engine.store.resources.items():
        if not resource_key.startswith(prefix) or resource_key == (exclude or "").lower():
            continue
        if resource.type in {VM_TYPE, VMSS_TYPE} and engine.store.location_of(resource) == location:
            total += _cores(resource)
    return total


def check_quota(
    engine: ArmSim, path: ResourcePath, type_name: str, body: Mapping[str, Any]
) -> None:
    """409 `OperationNotAllowed` when a write would exceed the regional vCPU quota."""
    location = str(body.get("location", "")).replace(" ", "").lower()
    existing = engine.store.get(path.id)
    current = _cores(existing) if existing and engine.store.location_of(existing) == location else 0
    needed = _body_cores(type_name, body) - current
    used = cores_in_use(engine, path.subscription, location)
    limit = engine.config.vcpu_quota
    if needed > 0 and used + needed > limit:
        raise ArmError(
            409,
            "OperationNotAllowed",
            "Operation could not be completed as it results in exceeding approved Total Regional "
            "Cores quota. Additional details - Deployment Model: Resource Manager, Location: "
            f"{location}, Current Limit: {limit}, Current Usage: {used}, Additional Required: "
            f"{needed}, (Minimum) New Limit Required: {used + needed}. Submit a request for Quota "
            "increase at https://aka.ms/ProdportalCRP/#blade/Microsoft_Azure_Capacity/"
            "UsageAndQuota.ReactView by specifying parameters listed in the 'Details' section for "
            "deployment to succeed.",
        )


def compute_usages(engine: ArmSim, route: Route) -> list[dict[str, Any]]:
    """`/providers/Microsoft.Compute/locations/{loc}/usages`: the regional vCPU usage."""
    location = route.location.replace(" ", "").lower()
    used = cores_in_use(engine, route.subscription, location)
    return [
        {
            "name": {"value": "cores", "localizedValue": "Total Regional vCPUs"},
            "currentValue": used,
            "limit": engine.config.vcpu_quota,
            "unit": "Count",
        }
    ]


def script_extension_view(
    name: str,
    properties: Mapping[str, Any],
    state: str,
    run: Mapping[str, Any] | None,
    error: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """An extension's instance view: its status and, for a script handler, the last run's
    standard output and error as the `ComponentStatus/StdOut|StdErr/...` substatuses."""
    handler = str(properties.get("type", ""))
    view: dict[str, Any] = {
        "name": name,
        "type": f"{properties.get('publisher', '')}.{handler}",
        "typeHandlerVersion": properties.get("typeHandlerVersion", ""),
        "statuses": [_status(state, error)],
    }
    if "customscript" in handler.lower():
        outcome = {"Succeeded": "succeeded", "Failed": "failed"}.get(state, "transitioning")
        shown = run if outcome != "transitioning" and run is not None else {}
        view["substatuses"] = [
            {
                "code": f"ComponentStatus/{stream}/{outcome}",
                "level": "Info",
                "displayStatus": f"Provisioning {outcome}",
                "message": str(shown.get(field, "")),
            }
            for stream, field in (("StdOut", "stdout"), ("StdErr", "stderr"))
        ]
    return view


def _extension_view(resource: Resource) -> dict[str, Any]:
    return script_extension_view(
        resource.name,
        resource.body.get("properties") or {},
        resource.state,
        resource.extra.get("run"),
        resource.extra.get("error"),
    )


class Extension(Behaviour):
    """VM and scale-set extensions: instance view with the handler's status; a script's run
    ends as its outcome decider says (`extensions.py`)."""

    def outcome(self, engine: ArmSim, resource: Resource, op: Operation) -> dict[str, Any] | None:
        properties = resource.body.get("properties") or {}
        if op.kind == "delete" or not extensions.is_script(properties):
            return None
        host = engine.store.get(resource.id.rsplit("/", 2)[0])
        if host is None:
            return None
        result = extensions.run(engine, host, resource.name, properties)
        resource.extra["run"] = (result or extensions.ScriptResult(0)).to_json()
        return extensions.failure_of(resource.name, properties, result)

    def failed(self, engine: ArmSim, resource: Resource, op: Operation) -> None:
        resource.extra["error"] = op.error

    def completed(self, engine: ArmSim, resource: Resource, op: Operation | None) -> None:
        resource.extra.pop("error", None)

    def decorate(
        self, engine: ArmSim, resource: Resource, view: dict[str, Any], expand: str
    ) -> None:
        if "instanceview" in expand.lower():
            properties_of(view)["instanceView"] = _extension_view(resource)


class VirtualMachine(Behaviour):
    """VMs: quota, one VM per NIC, vmId, computer name and instance view."""

    def check(
        self, engine: ArmSim, path: ResourcePath, body: dict[str, Any], existing: Resource | None
    ) -> None:
        for nic in get_path(body, "properties.networkProfile.networkInterfaces") or []:
            nic_id = str(nic.get("id", ""))
            user = _vm_using_nic(engine, nic_id, exclude=path.id)
            if user is not None:
                raise ArmError(
                    400,
                    "NicInUse",
                    f"Network interface {nic_id} is used by existing resource {user.id}. A "
                    "network interface can be attached to one virtual machine only.",
                )
        check_quota(engine, path, VM_TYPE, body)

    def applied(self, engine: ArmSim, resource: Resource, previous: dict[str, Any] | None) -> None:
        resource.extra.setdefault("vmId", str(uuid.uuid4()))

    def action(
        self, engine: ArmSim, resource: Resource, name: str, request: SimRequest
    ) -> SimResponse | None:
        if name.lower() != run_command.ACTION:
            return None
        return run_command.start(engine, resource, request)

    def action_outcome(
        self, engine: ArmSim, resource: Resource, op: Operation
    ) -> dict[str, Any] | None:
        run_command.finish(engine, resource, op)
        return None

    def decorate(
        self, engine: ArmSim, resource: Resource, view: dict[str, Any], expand: str
    ) -> None:
        properties = properties_of(view)
        properties["vmId"] = resource.extra.get("vmId", "")
        properties["timeCreated"] = iso(resource.created)
        os_profile = properties.get("osProfile")
        if isinstance(os_profile, dict):
            os_profile.setdefault("computerName", resource.name)
        if "instanceview" in expand.lower():
            properties["instanceView"] = self.instance_view(engine, resource)

    def instance_view(self, engine: ArmSim, resource: Resource) -> dict[str, Any]:
        properties = resource.body.get("properties") or {}
        windows = is_windows(properties)
        return {
            "computerName": get_path(properties, "osProfile.computerName") or resource.name,
            "osName": "Windows Server 2022 Datacenter" if windows else "Linux",
            "vmAgent": {
                "vmAgentVersion": "2.7.41491.1102",
                "statuses": [
                    {
                        "code": "ProvisioningState/succeeded",
                        "level": "Info",
                        "displayStatus": "Ready",
                    }
                ],
            },
            "extensions": [
                _extension_view(e) for e in engine.store.children(resource.id, VM_EXTENSION_TYPE)
            ],
            "statuses": [_status(resource.state), _power_state(resource.state)],
        }


def _profile_subnet_ids(body: Mapping[str, Any]) -> list[str]:
    subnets = []
    profile = get_path(body, "properties.virtualMachineProfile") or {}
    for nic in get_path(profile, "networkProfile.networkInterfaceConfigurations") or []:
        for configuration in get_path(nic, "properties.ipConfigurations") or []:
            subnet_id = get_path(configuration, "properties.subnet.id")
            if subnet_id:
                subnets.append(str(subnet_id))
                break
        break
    return subnets


class VirtualMachineScaleSet(Behaviour):
    """Scale sets: instances follow `sku.capacity`, each with a private IP; quota applies."""

    def listed(
        self, engine: ArmSim, resource: Resource, child_type: str
    ) -> list[dict[str, Any]] | None:
        # Network's ListVirtualMachineScaleSetNetworkInterfaces: every instance's.
        if child_type.lower() != "networkinterfaces":
            return None
        return [
            nic
            for instance in engine.store.children(resource.id, VMSS_VM_TYPE)
            if instance.state != "Deleting"
            for nic in instance_network_interfaces(engine, resource, instance)
        ]

    def check(
        self, engine: ArmSim, path: ResourcePath, body: dict[str, Any], existing: Resource | None
    ) -> None:
        check_quota(engine, path, VMSS_TYPE, body)
        live = 0
        if existing is not None:
            live = len(
                [
                    c
                    for c in engine.store.children(existing.id, VMSS_VM_TYPE)
                    if c.state != "Deleting"
                ]
            )
        grow = int(get_path(body, "sku.capacity") or 0) - live
        for subnet_id in _profile_subnet_ids(body):
            subnet = engine.store.get(subnet_id)
            if subnet is not None and grow > free_addresses(engine, subnet):
                raise ArmError(
                    400,
                    "SubnetIsFull",
                    f"Subnet {subnet.name} does not have enough capacity for {grow} IP addresses.",
                )

    def applied(self, engine: ArmSim, resource: Resource, previous: dict[str, Any] | None) -> None:
        resource.extra.setdefault("uniqueId", str(uuid.uuid4()))
        scale_sets.track_model(engine, resource, previous)
        desired = int(get_path(resource.body, "sku.capacity") or 0)
        live = [
            c for c in engine.store.children(resource.id, VMSS_VM_TYPE) if c.state != "Deleting"
        ]
        live.sort(key=lambda c: int(c.name))
        if len(live) < desired:
            for _ in range(desired - len(live)):
                self._add_instance(engine, resource)
        elif len(live) > desired:
            rules = [
                str(r).lower()
                for r in get_path(resource.body, "properties.scaleInPolicy.rules") or []
            ]
            ordered = live if "oldestvm" in rules else list(reversed(live))
            for instance in ordered[: len(live) - desired]:
                if resource.operation_id:
                    instance.state = "Deleting"
                else:
                    engine.store.remove(instance.id)

    def _add_instance(self, engine: ArmSim, scale_set: Resource) -> None:
        number = int(scale_set.extra.get("nextInstanceId", 0))
        scale_set.extra["nextInstanceId"] = number + 1
        profile = get_path(scale_set.body, "properties.virtualMachineProfile") or {}
        prefix = get_path(profile, "osProfile.computerNamePrefix") or scale_set.name[:9]
        suffix = _base36(number).rjust(6, "0")
        instance = Resource(
            id=f"{scale_set.id}/virtualMachines/{number}",
            type=VMSS_VM_TYPE,
            body={
                "location": scale_set.body.get("location"),
                "sku": scale_set.body.get("sku"),
                "properties": {
                    "hardwareProfile": {"vmSize": get_path(scale_set.body, "sku.name")},
                    "storageProfile": profile.get("storageProfile", {}),
                    "osProfile": {
                        "computerName": f"{prefix}{suffix}",
                        "adminUsername": get_path(profile, "osProfile.adminUsername"),
                    },
                },
            },
            state="Creating" if scale_set.operation_id else "Succeeded",
            created=engine.now,
            changed=engine.now,
            etag=scale_set.etag,
            extra={"vmId": str(uuid.uuid4())},
        )
        # New instances are built from the latest model.
        scale_sets.apply_model(scale_set, instance)
        engine.store.put(instance)
        for subnet_id in _profile_subnet_ids(scale_set.body):
            subnet = engine.store.get(subnet_id)
            if subnet is not None and free_addresses(engine, subnet) > 0:
                instance.extra["privateIPAddress"] = allocate_ip(engine, subnet, instance.id, None)

    def outcome(self, engine: ArmSim, resource: Resource, op: Operation) -> dict[str, Any] | None:
        # New instances run the profile's extensions; a capacity decrease runs none.
        starting = [
            c for c in engine.store.children(resource.id, VMSS_VM_TYPE) if c.state == "Creating"
        ]
        if op.kind == "delete" or not starting:
            return None
        for name, properties in extensions.profile_scripts(resource.body):
            error = extensions.decide(engine, resource, name, properties)
            if error is not None:
                return error
        return None

    def completed(self, engine: ArmSim, resource: Resource, op: Operation | None) -> None:
        for instance in _instances_of_write(engine, resource):
            if instance.state == "Deleting":
                engine.store.remove(instance.id)
            elif instance.state in {"Creating", "Updating"}:
                instance.state = "Succeeded"

    def failed(self, engine: ArmSim, resource: Resource, op: Operation) -> None:
        for instance in _instances_of_write(engine, resource):
            if instance.state == "Deleting":
                engine.store.remove(instance.id)
            elif instance.state in {"Creating", "Updating"}:
                instance.state = "Failed"

    def decorate(
        self, engine: ArmSim, resource: Resource, view: dict[str, Any], expand: str
    ) -> None:
        properties = properties_of(view)
        properties["uniqueId"] = resource.extra.get("uniqueId", "")
        properties["timeCreated"] = iso(resource.created)

    def action(
        self, engine: ArmSim, resource: Resource, name: str, request: SimRequest
    ) -> SimResponse | None:
        return scale_sets.scale_set_action(engine, resource, name, request)

    def action_outcome(
        self, engine: ArmSim, resource: Resource, op: Operation
    ) -> dict[str, Any] | None:
        return scale_sets.action_outcome(engine, resource, op)

    def action_completed(self, engine: ArmSim, resource: Resource, op: Operation) -> None:
        scale_sets.action_ended(engine, resource, op)

    def action_failed(self, engine: ArmSim, resource: Resource, op: Operation) -> None:
        scale_sets.action_ended(engine, resource, op)

    def instance_view(self, engine: ArmSim, resource: Resource) -> dict[str, Any]:
        counts: dict[str, int] = {}
        for instance in engine.store.children(resource.id, VMSS_VM_TYPE):
            code = _status(instance.state)["code"]
            counts[code] = counts.get(code, 0) + 1
        extensions = [
            e.get("name")
            for e in get_path(
                resource.body, "properties.virtualMachineProfile.extensionProfile.extensions"
            )
            or []
        ] + [e.name for e in engine.store.children(resource.id, VMSS_EXTENSION_TYPE)]
        summary = [{"code": code, "count": count} for code, count in sorted(counts.items())]
        return {
            "virtualMachine": {"statusesSummary": summary},
            "extensions": [{"name": name, "statusesSummary": summary} for name in extensions],
            "statuses": [_status(resource.state)],
        }


def _instances_of_write(engine: ArmSim, scale_set: Resource) -> list[Resource]:
    """The instances a scale set's write changes: not those busy with an action of their own
    (an instance's reimage ends with its own operation)."""
    found = []
    for instance in engine.store.children(scale_set.id, VMSS_VM_TYPE):
        own = engine.store.operations.get(instance.operation_id or "")
        if own is None or own.status != "InProgress":
            found.append(instance)
    return found


def _base36(number: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while True:
        number, remainder = divmod(number, 36)
        out = digits[remainder] + out
        if number == 0:
            return out


def instance_network_interfaces(
    engine: ArmSim, scale_set: Resource, instance: Resource
) -> list[dict[str, Any]]:
    """An instance's network interfaces as Network's `ListVirtualMachineScaleSetVMNetwork
    Interfaces` returns them (Azure/azure-rest-api-specs, network networkInterface.json): one
    per NIC configuration of the profile, under the instance's id, with its private address."""
    profile = get_path(scale_set.body, "properties.virtualMachineProfile") or {}
    found = []
    for index, nic in enumerate(
        get_path(profile, "networkProfile.networkInterfaceConfigurations") or []
    ):
        configurations = []
        for number, configuration in enumerate(get_path(nic, "properties.ipConfigurations") or []):
            properties: dict[str, Any] = {
                "primary": number == 0,
                "privateIPAllocationMethod": "Dynamic",
                "privateIPAddressVersion": "IPv4",
                "subnet": {"id": get_path(configuration, "properties.subnet.id")},
                "provisioningState": "Succeeded",
            }
            address = instance.extra.get("privateIPAddress")
            if index == 0 and number == 0 and address:
                properties["privateIPAddress"] = address
            nic_id = f"{instance.id}/networkInterfaces/{nic.get('name', '')}"
            configurations.append(
                {
                    "name": configuration.get("name", ""),
                    "id": f"{nic_id}/ipConfigurations/{configuration.get('name', '')}",
                    "properties": properties,
                }
            )
        found.append(
            {
                "id": f"{instance.id}/networkInterfaces/{nic.get('name', '')}",
                "name": nic.get("name", ""),
                "type": "Microsoft.Network/networkInterfaces",
                "location": scale_set.body.get("location"),
                "properties": {
                    "primary": bool(get_path(nic, "properties.primary")),
                    "ipConfigurations": configurations,
                    "virtualMachine": {"id": instance.id},
                    "provisioningState": "Succeeded",
                },
            }
        )
    return found


def instance_name(instance_id: str) -> str:
    """ARM's name of the scale-set instance with this id: `{vmss}_{instanceId}`."""
    *_, scale_set, _, instance = instance_id.rstrip("/").split("/")
    return f"{scale_set}_{instance}"


class ScaleSetInstance(Behaviour):
    """A scale-set instance: deleting one lowers the scale set's capacity, as in Azure.

    Its id ends `/virtualMachineScaleSets/{vmss}/virtualMachines/{instanceId}` and ARM names it
    `{vmss}_{instanceId}` (azure-rest-api-specs, specification/compute/resource-manager/
    Microsoft.Compute/ComputeRP/stable/2024-11-01/examples/virtualMachineScaleSetExamples/
    VirtualMachineScaleSetVM_List_WithResiliencyView.json, commit 3ab2b9e9: `"name":
    "{vmss-vm-name}_1"`, `"instanceId": "1"`, id `.../virtualMachines/1`); the store keeps it
    under its id, so `Resource.name` is the instance id.
    """

    def listed(
        self, engine: ArmSim, resource: Resource, child_type: str
    ) -> list[dict[str, Any]] | None:
        scale_set = engine.store.get(resource.id.rsplit("/", 2)[0])
        if child_type.lower() != "networkinterfaces" or scale_set is None:
            return None
        return instance_network_interfaces(engine, scale_set, resource)

    def deleting(self, engine: ArmSim, resource: Resource) -> None:
        parent_id = resource.id.rsplit("/", 2)[0]
        scale_set = engine.store.get(parent_id)
        if scale_set is not None:
            sku = scale_set.body.setdefault("sku", {})
            sku["capacity"] = max(0, int(sku.get("capacity", 0)) - 1)

    def decorate(
        self, engine: ArmSim, resource: Resource, view: dict[str, Any], expand: str
    ) -> None:
        view["instanceId"] = resource.name
        view["name"] = instance_name(resource.id)
        properties = properties_of(view)
        properties["vmId"] = resource.extra.get("vmId", "")
        scale_set = engine.store.get(resource.id.rsplit("/", 2)[0])
        properties["latestModelApplied"] = scale_sets.latest_model_applied(scale_set, resource)
        properties["timeCreated"] = iso(resource.created)
        if "instanceview" in expand.lower():
            properties["instanceView"] = self.instance_view(engine, resource)

    def action(
        self, engine: ArmSim, resource: Resource, name: str, request: SimRequest
    ) -> SimResponse | None:
        if name.lower() == run_command.ACTION:
            return run_command.start(engine, resource, request)
        return scale_sets.instance_action(engine, resource, name, request)

    def action_outcome(
        self, engine: ArmSim, resource: Resource, op: Operation
    ) -> dict[str, Any] | None:
        if op.action == run_command.ACTION:
            run_command.finish(engine, resource, op)
            return None
        scale_set = engine.store.get(resource.id.rsplit("/", 2)[0])
        return scale_sets.action_outcome(engine, scale_set, op) if scale_set else None

    def action_completed(self, engine: ArmSim, resource: Resource, op: Operation) -> None:
        scale_set = engine.store.get(resource.id.rsplit("/", 2)[0])
        if scale_set is not None and op.action != run_command.ACTION:
            scale_sets.action_ended(engine, scale_set, op)

    def action_failed(self, engine: ArmSim, resource: Resource, op: Operation) -> None:
        self.action_completed(engine, resource, op)

    def instance_view(self, engine: ArmSim, resource: Resource) -> dict[str, Any]:
        view: dict[str, Any] = {
            "computerName": get_path(resource.body, "properties.osProfile.computerName"),
            "statuses": [_status(resource.state), _power_state(resource.state)],
        }
        # What the profile's script extensions printed on this instance (set by their
        # outcome deciders).
        runs = resource.extra.get("extensions") or {}
        scale_set = engine.store.get(resource.id.rsplit("/", 2)[0])
        profile = []
        if scale_set is not None:
            # The extensions of the model this instance runs (not a newer one it lacks).
            model = scale_sets.instance_model(scale_set, resource)
            profile = extensions.profile_scripts(
                {"properties": {"virtualMachineProfile": model["profile"]}}
            )
        found = [
            script_extension_view(
                name,
                properties,
                "Succeeded" if runs[name].get("exitCode") == 0 else "Failed",
                runs[name],
                runs[name].get("error"),
            )
            for name, properties in profile
            if name in runs
        ]
        if found:
            view["extensions"] = found
        return view


# ================================================================ SQL and storage


class SqlServer(Behaviour):
    def decorate(
        self, engine: ArmSim, resource: Resource, view: dict[str, Any], expand: str
    ) -> None:
        properties = properties_of(view)
        properties["fullyQualifiedDomainName"] = f"{resource.name.lower()}.database.windows.net"
        properties["state"] = "Ready"
        properties.setdefault("version", "12.0")
        properties.setdefault("publicNetworkAccess", "Enabled")


class SqlDatabase(Behaviour):
    """Databases: copies (`createMode: Copy`) and restore points (`sql_backups.py`)."""

    def check(
        self, engine: ArmSim, path: ResourcePath, body: dict[str, Any], existing: Resource | None
    ) -> None:
        sql_backups.check_copy(engine, path, body, existing)

    def prepare(
        self,
        engine: ArmSim,
        path: ResourcePath,
        body: dict[str, Any],
        existing: Resource | None,
    ) -> dict[str, Any] | None:
        return sql_backups.prepare_copy(engine, body, existing)

    def outcome(self, engine: ArmSim, resource: Resource, op: Operation) -> dict[str, Any] | None:
        return sql_backups.copy_outcome(engine, resource, op)

    def action(
        self, engine: ArmSim, resource: Resource, name: str, request: SimRequest
    ) -> SimResponse | None:
        if name.lower() != "restorepoints":
            return None
        return sql_backups.create_restore_point(engine, resource, request)

    def listed(
        self, engine: ArmSim, resource: Resource, child_type: str
    ) -> list[dict[str, Any]] | None:
        if child_type.lower() != "restorepoints":
            return None
        return sql_backups.restore_points(engine, resource)

    def applied(self, engine: ArmSim, resource: Resource, previous: dict[str, Any] | None) -> None:
        resource.extra.setdefault("databaseId", str(uuid.uuid4()))

    def decorate(
        self, engine: ArmSim, resource: Resource, view: dict[str, Any], expand: str
    ) -> None:
        properties = properties_of(view)
        sku = view.get("sku") or {}
        properties["status"] = "Online" if resource.state == "Succeeded" else "Creating"
        properties["databaseId"] = resource.extra.get("databaseId", "")
        properties.setdefault("collation", "SQL_Latin1_General_CP1_CI_AS")
        properties["currentServiceObjectiveName"] = sku.get("name", "S0")
        properties["requestedServiceObjectiveName"] = sku.get("name", "S0")
        properties["creationDate"] = iso(resource.created)


class SqlRestorePoint(Behaviour):
    """A database's DISCRETE restore point (`sql_backups.py`)."""

    def decorate(
        self, engine: ArmSim, resource: Resource, view: dict[str, Any], expand: str
    ) -> None:
        sql_backups.restore_point_view(engine, resource, view)

    def action_completed(self, engine: ArmSim, resource: Resource, op: Operation) -> None:
        sql_backups.restore_point_created(engine, resource, op)

    def action_failed(self, engine: ArmSim, resource: Resource, op: Operation) -> None:
        sql_backups.restore_point_failed(engine, resource)


class SqlVirtualNetworkRule(Behaviour):
    """A VNet rule needs its subnet in the server's region and, unless told to ignore it, the
    subnet's `Microsoft.Sql` service endpoint: 400 `VirtualNetworkRuleBadRequest` (the code
    real Azure returns, per hashicorp/terraform-provider-azurerm's acceptance test
    TestAccSqlVirtualNetworkRule_IgnoreEndpointInvalid; the region message as ARM returned it in
    a public deployment log; the endpoint message is ours)."""

    def check(
        self, engine: ArmSim, path: ResourcePath, body: dict[str, Any], existing: Resource | None
    ) -> None:
        properties = body.get("properties") or {}
        subnet = engine.store.get(str(properties.get("virtualNetworkSubnetId", "")))
        if subnet is None:
            return
        server = engine.store.get(path.id.rsplit("/", 2)[0])
        vnet = engine.store.get(subnet.id.rsplit("/", 2)[0])
        if server is not None and vnet is not None:
            sql_region, vnet_region = (
                engine.store.location_of(server),
                engine.store.location_of(vnet),
            )
            if sql_region != vnet_region:
                raise ArmError(
                    400,
                    "VirtualNetworkRuleBadRequest",
                    f"Microsoft.Sql resources in {sql_region} cannot be ACL-ed to virtual network "
                    f"in {vnet_region}. Only resources in {vnet_region} can be ACL-ed to virtual "
                    f"networks in {vnet_region}.",
                )
        if properties.get("ignoreMissingVnetServiceEndpoint"):
            return
        endpoints = get_path(subnet.body, "properties.serviceEndpoints") or []
        if not any(str(e.get("service", "")).lower() == "microsoft.sql" for e in endpoints):
            raise ArmError(
                400,
                "VirtualNetworkRuleBadRequest",
                f"Virtual network rule {path.name} refers to subnet {subnet.id}, which does not "
                "have the Microsoft.Sql service endpoint enabled.",
                target="properties.virtualNetworkSubnetId",
            )

    def decorate(
        self, engine: ArmSim, resource: Resource, view: dict[str, Any], expand: str
    ) -> None:
        properties_of(view)["state"] = "Ready" if resource.state == "Succeeded" else "InProgress"


class StorageAccount(Behaviour):
    """Storage accounts come with their `fileServices/default` service resource."""

    def applied(self, engine: ArmSim, resource: Resource, previous: dict[str, Any] | None) -> None:
        service_id = f"{resource.id}/fileServices/default"
        if engine.store.get(service_id) is None:
            engine.store.put(
                Resource(
                    id=service_id,
                    type="Microsoft.Storage/storageAccounts/fileServices",
                    body={
                        "properties": {"shareDeleteRetentionPolicy": {"enabled": True, "days": 7}}
                    },
                    state="Succeeded",
                    created=engine.now,
                    changed=engine.now,
                    etag=resource.etag,
                )
            )

    def decorate(
        self, engine: ArmSim, resource: Resource, view: dict[str, Any], expand: str
    ) -> None:
        properties = properties_of(view)
        name = resource.name.lower()
        properties["primaryEndpoints"] = {
            service: f"https://{name}.{service}.core.windows.net/"
            for service in ("blob", "queue", "table", "file", "dfs", "web")
        }
        properties["primaryLocation"] = engine.store.location_of(resource)
        properties["statusOfPrimary"] = "available"
        properties["creationTime"] = iso(resource.created)


#: Behaviours of the compute, network, SQL and storage types (see `registry.py`).
BEHAVIOURS: Mapping[str, Behaviour] = {
    "microsoft.network/virtualnetworks": VirtualNetwork(),
    "microsoft.network/virtualnetworks/subnets": Subnet(),
    "microsoft.network/networkinterfaces": NetworkInterface(),
    "microsoft.network/publicipaddresses": PublicIPAddress(),
    "microsoft.compute/virtualmachines": VirtualMachine(),
    "microsoft.compute/virtualmachines/extensions": Extension(),
    "microsoft.compute/virtualmachinescalesets": VirtualMachineScaleSet(),
    "microsoft.compute/virtualmachinescalesets/extensions": Extension(),
    "microsoft.compute/virtualmachinescalesets/virtualmachines": ScaleSetInstance(),
    "microsoft.sql/servers": SqlServer(),
    "microsoft.sql/servers/databases": SqlDatabase(),
    "microsoft.sql/servers/databases/restorepoints": SqlRestorePoint(),
    "microsoft.sql/servers/virtualnetworkrules": SqlVirtualNetworkRule(),
    "microsoft.storage/storageaccounts": StorageAccount(),
}

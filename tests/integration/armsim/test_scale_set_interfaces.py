"""A scale set's instances' network interfaces, as Network lists them.

Oracle: Azure/azure-rest-api-specs, specification/network/resource-manager/Microsoft.Network
networkInterface.json: `NetworkInterfaces_ListVirtualMachineScaleSetNetworkInterfaces`
(`.../virtualMachineScaleSets/{vmss}/networkInterfaces`) and
`NetworkInterfaces_ListVirtualMachineScaleSetVMNetworkInterfaces`
(`.../virtualMachineScaleSets/{vmss}/virtualMachines/{index}/networkInterfaces`) return
NetworkInterface objects whose ids lie under the instance, with their IP configurations' private
addresses and subnets and the instance as `virtualMachine`.
"""

from __future__ import annotations

import ipaddress

from tests.support import armsim_bodies as bodies
from tests.support.armsim_clients import SUBSCRIPTION, Clients, Raw

G = bodies.GROUP
GROUP_ID = f"/subscriptions/{SUBSCRIPTION}/resourceGroups/{G}"
VMSS = f"{GROUP_ID}/providers/Microsoft.Compute/virtualMachineScaleSets/fe"
NETWORK_API = "2024-05-01"


def test_instances_network_interfaces_carry_their_addresses(clients: Clients, raw: Raw) -> None:
    clients.resource.resource_groups.create_or_update(G, {"location": bodies.LOCATION})
    vnet = clients.network.virtual_networks.begin_create_or_update(
        G, "vnet", bodies.vnet({"fe": "10.0.2.0/24"})
    ).result()
    subnet = vnet.subnets[0].id
    body = bodies.scale_set(subnet, 2)
    clients.compute.virtual_machine_scale_sets.begin_create_or_update(G, "fe", body).result()

    everything = raw.send("GET", f"{VMSS}/networkInterfaces", api=NETWORK_API)
    assert everything.status == 200
    nics = everything.body["value"]
    assert [n["id"] for n in nics] == [
        f"{VMSS}/virtualMachines/{i}/networkInterfaces/fe-nic" for i in (0, 1)
    ]
    addresses = []
    for index, nic in enumerate(nics):
        assert nic["properties"]["virtualMachine"]["id"] == f"{VMSS}/virtualMachines/{index}"
        (configuration,) = nic["properties"]["ipConfigurations"]
        assert configuration["properties"]["subnet"]["id"].lower() == subnet.lower()
        addresses.append(ipaddress.IPv4Address(configuration["properties"]["privateIPAddress"]))
    assert len(set(addresses)) == 2
    assert all(a in ipaddress.IPv4Network("10.0.2.0/24") for a in addresses)

    one = raw.send("GET", f"{VMSS}/virtualMachines/1/networkInterfaces", api=NETWORK_API)
    assert one.body["value"] == [nics[1]]

"""The `/_sim` admin API, generically accepted types (Azure Monitor) and secrets in scale sets."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

from arm.connection import ArmConnection
from localdev.armsim.server import SimulatorServer
from tests.support import armsim_bodies as bodies
from tests.support.armsim_clients import SUBSCRIPTION, Clients

G = bodies.GROUP


def _admin(sim: SimulatorServer, method: str, action: str, body: Any = None) -> tuple[int, Any]:
    request = urllib.request.Request(
        f"{sim.url}/_sim/{action}",
        data=json.dumps(body).encode() if body is not None else None,
        method=method,
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_admin_api_lists_resources_requests_and_counters(clients: Clients, sim: SimulatorServer):
    clients.resource.resource_groups.create_or_update(G, {"location": bodies.LOCATION})
    clients.network.network_security_groups.begin_create_or_update(
        G, "nsg", {"location": bodies.LOCATION}
    ).result()
    status, resources = _admin(sim, "GET", "resources")
    assert status == 200
    assert [(r["type"], r["createdCount"], r["provisioningState"]) for r in resources["value"]] == [
        ("Microsoft.Resources/resourceGroups", 1, "Succeeded"),
        ("Microsoft.Network/networkSecurityGroups", 1, "Succeeded"),
    ]
    _, requests = _admin(sim, "GET", "requests")
    put = [r for r in requests["value"] if r["method"] == "PUT"]
    assert [r["status"] for r in put] == [201, 201]
    assert put[1]["operation"]["status"] == "Succeeded"
    assert all(r["end"] >= r["start"] for r in requests["value"])
    _, later = _admin(sim, "GET", f"requests?since={requests['value'][-1]['seq']}")
    assert later["value"] == []
    _, counters = _admin(sim, "GET", "counters")
    assert counters["status.201"] == 2
    assert counters["operations.succeeded"] == 1
    assert counters["created.Microsoft.Network/networkSecurityGroups"] == 1

    assert _admin(sim, "POST", "reset") == (200, {"status": "reset"})
    assert _admin(sim, "GET", "resources") == (200, {"value": []})


def test_admin_api_config_faults_and_clock(sim: SimulatorServer):
    status, config = _admin(sim, "PATCH", "config", {"latencyScale": 0.5, "vcpuQuota": 40})
    assert status == 200
    assert (config["latencyScale"], config["vcpuQuota"]) == (0.5, 40)
    assert _admin(sim, "PATCH", "config", {"latencyScale": -1})[0] == 400
    assert _admin(sim, "PATCH", "config", {"bogus": 1})[0] == 400
    assert _admin(sim, "PATCH", "config", {"buckets": {"reads": {"capacity": None}}})[0] == 400
    assert _admin(sim, "GET", "config")[1]["buckets"]["reads"]["capacity"] == 250
    assert _admin(sim, "PUT", "faults", {"rate": None})[0] == 400
    assert _admin(sim, "PUT", "faults", {"rules": [{"bogus": 1}]})[0] == 400
    status, faults = _admin(
        sim,
        "PUT",
        "faults",
        {
            "rate": 0.1,
            "seed": 9,
            "rules": [{"method": "PUT", "path": "/virtualmachines/", "kind": "503", "count": 2}],
        },
    )
    assert status == 200
    assert faults == {
        "rate": 0.1,
        "seed": 9,
        "rules": [{"method": "PUT", "path": "/virtualmachines/", "kind": "503", "count": 2}],
    }
    assert _admin(sim, "PUT", "faults", {"rules": [{"kind": "explode"}]})[0] == 400
    status, clock = _admin(sim, "POST", "clock", {"advance": 30})
    assert status == 200
    assert clock["offset"] >= 30
    assert _admin(sim, "GET", "nothing")[0] == 404


def test_targeted_503_is_retried_by_the_sdk(clients: Clients, sim: SimulatorServer):
    sim.add_fault_rule(method="PUT", path="/resourcegroups/rg-sim", kind="503", count=2)
    clients.resource.resource_groups.create_or_update(G, {"location": bodies.LOCATION})
    statuses = [(r["status"], r["fault"]) for r in sim.requests() if r["method"] == "PUT"]
    assert statuses == [(503, "503"), (503, "503"), (201, None)]


def test_monitor_action_groups_and_metric_alerts_are_accepted_generically(
    clients: Clients, connection: ArmConnection, sim: SimulatorServer
):
    from azure.mgmt.monitor import MonitorManagementClient

    monitor: Any = connection.client(MonitorManagementClient, SUBSCRIPTION)
    clients.resource.resource_groups.create_or_update(G, {"location": bodies.LOCATION})
    group = monitor.action_groups.create_or_update(
        G,
        "scale-hook",
        {
            "location": "Global",
            "properties": {
                "groupShortName": "scale",
                "enabled": True,
                "webhookReceivers": [
                    {
                        "name": "app",
                        "serviceUri": "https://example.invalid/api/alerts?code=secret-key",
                        "useCommonAlertSchema": True,
                    }
                ],
            },
        },
    )
    assert group.group_short_name == "scale"
    scope = bodies.rid(SUBSCRIPTION, G, "Microsoft.Compute/virtualMachineScaleSets/fe")
    alert = monitor.metric_alerts.create_or_update(
        G,
        "cpu-high",
        {
            "location": "global",
            "properties": {
                "severity": 2,
                "enabled": True,
                "scopes": [scope],
                "evaluationFrequency": "PT1M",
                "windowSize": "PT5M",
                "criteria": {
                    "odata.type": "Microsoft.Azure.Monitor.SingleResourceMultipleMetricCriteria",
                    "allOf": [
                        {
                            "name": "cpu",
                            "metricName": "Percentage CPU",
                            "operator": "GreaterThan",
                            "threshold": 75,
                            "timeAggregation": "Average",
                            "criterionType": "StaticThresholdCriterion",
                        }
                    ],
                },
                "actions": [{"actionGroupId": group.id}],
            },
        },
    )
    assert alert.scopes == [scope]
    assert [a.name for a in monitor.metric_alerts.list_by_resource_group(G)] == ["cpu-high"]
    monitor.metric_alerts.delete(G, "cpu-high")
    assert list(monitor.metric_alerts.list_by_resource_group(G)) == []


def test_scale_set_never_echoes_profile_secrets_but_expands_user_data(
    clients: Clients, sim: SimulatorServer
):
    clients.resource.resource_groups.create_or_update(G, {"location": bodies.LOCATION})
    clients.network.virtual_networks.begin_create_or_update(
        G, "vnet", bodies.vnet({"dev": "10.0.0.0/24"})
    ).result()
    subnet = bodies.rid(SUBSCRIPTION, G, "Microsoft.Network/virtualNetworks/vnet/subnets/dev")
    vmss = clients.compute.virtual_machine_scale_sets.begin_create_or_update(
        G, "fe", bodies.scale_set(subnet, 2)
    ).result()
    profile = vmss.virtual_machine_profile
    assert profile.os_profile.admin_password is None
    assert profile.extension_profile.extensions[0].protected_settings is None
    assert profile.user_data is None
    expanded = clients.compute.virtual_machine_scale_sets.get(G, "fe", expand="userData")
    assert expanded.virtual_machine_profile.user_data == "ZnJvbnRlbmQ="
    everything = json.dumps([sim.resources(), sim.requests()])
    assert bodies.PASSWORD not in everything
    assert "s3cret-value" not in everything
    instances = list(clients.compute.virtual_machine_scale_set_vms.list(G, "fe"))
    assert len(instances) == 2
    # Instances take addresses in their subnet, as NICs do.
    nic = clients.network.network_interfaces.begin_create_or_update(
        G, "nic", bodies.nic(subnet)
    ).result()
    assert nic.ip_configurations[0].private_ip_address == "10.0.0.6"


def test_a_tag_filtered_generic_list_returns_no_tags(clients: Clients) -> None:
    """Resources - List By Resource Group, `$filter`: "When you filter by a tag name and value,
    the tags for each resource are not returned in the results." (azure-rest-api-specs,
    specification/resources/resource-manager/Microsoft.Resources/stable/2021-04-01/
    resources.json; the same sentence in azure-mgmt-resource 26.0.0's
    `ResourcesOperations.list_by_resource_group` docstring.) Unfiltered, tags are returned."""
    clients.resource.resource_groups.create_or_update(G, {"location": bodies.LOCATION})
    clients.network.network_security_groups.begin_create_or_update(
        G, "tagged", {"location": bodies.LOCATION, "tags": {"osSolutionId": "acme"}}
    ).result()
    filtered = list(
        clients.resource.resources.list_by_resource_group(
            G, filter="tagName eq 'osSolutionId' and tagValue eq 'acme'"
        )
    )
    assert [(r.name, r.tags) for r in filtered] == [("tagged", None)]
    unfiltered = list(clients.resource.resources.list_by_resource_group(G))
    assert [(r.name, r.tags) for r in unfiltered] == [("tagged", {"osSolutionId": "acme"})]

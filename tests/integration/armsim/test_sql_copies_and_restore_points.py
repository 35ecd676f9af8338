"""Azure SQL database copies and restore points, through azure-mgmt-sql.

Oracle: Azure/azure-rest-api-specs, specification/sql/resource-manager/Microsoft.Sql/stable/
2021-11-01: Databases.json (`createMode: Copy` with `sourceDatabaseId`; the `default` response's
published errors 400 `MissingSourceDatabaseId`, `InvalidSourceDatabaseId`, `SourceServerNotFound`,
`SourceDatabaseNotFound`) and RestorePoints.json (commit 152c1a62: `RestorePoints_ListByDatabase`
GET and `RestorePoints_Create` POST `.../databases/{db}/restorePoints`, body
`{"restorePointLabel"}`, long-running, "Creates a restore point for a data warehouse."; 400
`FeatureDisabledOnSelectedEdition`; `RestorePoint.properties.restorePointType` CONTINUOUS |
DISCRETE, `earliestRestoreDate`, `restorePointCreationDate`, `restorePointLabel`). The app (and
this client) call Sql 2025-01-01.
"""

from __future__ import annotations

import pytest
from azure.core.exceptions import HttpResponseError

from localdev.armsim.server import SimulatorServer
from tests.support import armsim_bodies as bodies
from tests.support.armsim_clients import SUBSCRIPTION, Clients, Raw, error_of

G = bodies.GROUP
SERVER = f"/subscriptions/{SUBSCRIPTION}/resourceGroups/{G}/providers/Microsoft.Sql/servers/sim-sql"
SQL_API = "2025-01-01"


def _server_with_database(clients: Clients) -> str:
    clients.resource.resource_groups.create_or_update(G, {"location": bodies.LOCATION})
    clients.sql.servers.begin_create_or_update(G, "sim-sql", bodies.sql_server()).result()
    clients.sql.databases.begin_create_or_update(
        G, "sim-sql", "platform", bodies.sql_database()
    ).result()
    return f"{SERVER}/databases/platform"


def _copy(source_id: str | None) -> dict[str, object]:
    properties: dict[str, object] = {"createMode": "Copy"}
    if source_id is not None:
        properties["sourceDatabaseId"] = source_id
    return {"location": bodies.LOCATION, "properties": properties}


def test_copy_of_a_database(clients: Clients, sim: SimulatorServer) -> None:
    source = _server_with_database(clients)
    copied = clients.sql.databases.begin_create_or_update(
        G, "sim-sql", "platform-before-upgrade", _copy(source)
    ).result()
    assert copied.status == "Online"
    assert copied.sku.name == "S3"  # the source's service objective
    assert copied.database_id != clients.sql.databases.get(G, "sim-sql", "platform").database_id
    names = sorted(d.name for d in clients.sql.databases.list_by_server(G, "sim-sql"))
    assert names == ["platform", "platform-before-upgrade"]
    puts = [r for r in sim.requests() if r["method"] == "PUT" and "before-upgrade" in r["path"]]
    assert [r["status"] for r in puts] == [202]  # a long-running create, as any database's


def test_copy_needs_a_live_source(clients: Clients, raw: Raw) -> None:
    source = _server_with_database(clients)
    cases = {
        "MissingSourceDatabaseId": _copy(None),
        "InvalidSourceDatabaseId": _copy(f"{SERVER}/elasticPools/pool"),
        "SourceServerNotFound": _copy(source.replace("/sim-sql/", "/other-sql/")),
        "SourceDatabaseNotFound": _copy(f"{SERVER}/databases/absent"),
    }
    for code, body in cases.items():
        answer = raw.send("PUT", f"{SERVER}/databases/copy", body, api=SQL_API)
        assert (answer.status, answer.code) == (400, code)
    with pytest.raises(HttpResponseError) as raised:
        clients.sql.databases.begin_create_or_update(G, "sim-sql", "copy", _copy(None))
    assert error_of(raised.value)[:2] == (400, "MissingSourceDatabaseId")


def test_a_copy_whose_source_goes_away_fails(clients: Clients, sim: SimulatorServer) -> None:
    source = _server_with_database(clients)
    sim.configure({"latencyScale": 1.0})
    poller = clients.sql.databases.begin_create_or_update(G, "sim-sql", "copy", _copy(source))
    sim.configure({"latencyScale": 0.0})
    clients.sql.databases.begin_delete(G, "sim-sql", "platform").result()
    sim.fast_forward(3600)
    with pytest.raises(HttpResponseError) as raised:
        poller.result()
    assert error_of(raised.value)[1] == "SourceDatabaseNotFound"


def test_every_database_lists_its_continuous_restore_point(clients: Clients) -> None:
    _server_with_database(clients)
    (point,) = clients.sql.restore_points.list_by_database(G, "sim-sql", "platform")
    assert point.restore_point_type == "CONTINUOUS"
    assert point.earliest_restore_date is not None
    assert point.location == "westeurope"


def test_restore_points_are_for_data_warehouses(clients: Clients, raw: Raw) -> None:
    _server_with_database(clients)
    with pytest.raises(HttpResponseError) as raised:
        clients.sql.restore_points.begin_create(
            G, "sim-sql", "platform", {"restorePointLabel": "before 11.32"}
        ).result()
    assert error_of(raised.value)[:2] == (400, "FeatureDisabledOnSelectedEdition")

    clients.sql.databases.begin_create_or_update(
        G,
        "sim-sql",
        "warehouse",
        {"location": bodies.LOCATION, "sku": {"name": "DW100c", "tier": "DataWarehouse"}},
    ).result()
    created = clients.sql.restore_points.begin_create(
        G, "sim-sql", "warehouse", {"restorePointLabel": "before 11.32"}
    ).result()
    assert created.restore_point_type == "DISCRETE"
    assert created.restore_point_label == "before 11.32"
    assert created.restore_point_creation_date is not None
    listed = list(clients.sql.restore_points.list_by_database(G, "sim-sql", "warehouse"))
    assert sorted(p.restore_point_type for p in listed) == ["CONTINUOUS", "DISCRETE"]
    again = clients.sql.restore_points.get(G, "sim-sql", "warehouse", created.name)
    assert again.id == created.id == f"{SERVER}/databases/warehouse/restorePoints/{created.name}"

    answer = raw.send("POST", f"{SERVER}/databases/warehouse/restorePoints", {}, api=SQL_API)
    assert (answer.status, answer.code) == (400, "InvalidParameter")

    clients.sql.restore_points.delete(G, "sim-sql", "warehouse", created.name)
    remaining = clients.sql.restore_points.list_by_database(G, "sim-sql", "warehouse")
    assert [p.restore_point_type for p in remaining] == ["CONTINUOUS"]


def test_faults_on_restore_points(clients: Clients, sim: SimulatorServer, raw: Raw) -> None:
    _server_with_database(clients)
    clients.sql.databases.begin_create_or_update(
        G,
        "sim-sql",
        "warehouse",
        {"location": bodies.LOCATION, "sku": {"name": "DW100c", "tier": "DataWarehouse"}},
    ).result()
    sim.add_fault_rule("POST", "/databases/warehouse/restorepoints", "operation-failed")
    with pytest.raises(HttpResponseError) as raised:
        clients.sql.restore_points.begin_create(
            G, "sim-sql", "warehouse", {"restorePointLabel": "x"}
        ).result()
    assert error_of(raised.value)[1] == "RetryableError"
    listed = clients.sql.restore_points.list_by_database(G, "sim-sql", "warehouse")
    assert [p.restore_point_type for p in listed] == ["CONTINUOUS"]  # the failed one is gone

    label = {"restorePointLabel": "y"}
    answer = raw.send("POST", f"{SERVER}/databases/warehouse/restorePoints", label, api=SQL_API)
    assert answer.status == 202
    assert (
        "/providers/Microsoft.Sql/locations/westeurope/operations/"
        in (answer.headers["Azure-AsyncOperation"])
    )
    assert "/operationResults/" in answer.headers["Location"]

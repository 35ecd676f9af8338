"""Azure SQL database copies and restore points.

Facts (Azure/azure-rest-api-specs, specification/sql/resource-manager/Microsoft.Sql/stable/
2021-11-01; the app calls Sql 2025-01-01 through azure-mgmt-sql, same operations):

- Databases.json: a database PUT with `properties.createMode: Copy` creates "a database as a
  copy of an existing database" named by `sourceDatabaseId`; the published error list (the
  operation's `default` response) has 400 `MissingSourceDatabaseId` "Missing source database
  identifier.", 400 `InvalidSourceDatabaseId` "Invalid source database identifier.", 400
  `SourceServerNotFound` (the server part of the id maps to no server) and 400
  `SourceDatabaseNotFound` "The source database does not exist." The copy takes the source's
  service objective unless the request names one (Microsoft's "Copy a transactionally
  consistent copy of a database" page).
- RestorePoints.json: `GET .../databases/{db}/restorePoints` (`RestorePoints_ListByDatabase`),
  `POST` the same path (`RestorePoints_Create`, body `{"restorePointLabel"}` required,
  long-running: 200/201/202) "Creates a restore point for a data warehouse."; `GET/DELETE
  .../restorePoints/{name}`. A `RestorePoint` has `location` and `properties.restorePointType`
  (`CONTINUOUS` | `DISCRETE`), `earliestRestoreDate`, `restorePointCreationDate`,
  `restorePointLabel`. Errors published: 400 `FeatureDisabledOnSelectedEdition` "User attempted
  to use a feature which is disabled on current database edition." (so a restore point can be
  created on a DataWarehouse database only: any other gets this 400), 404
  `DatabaseRestorePointNotFound`.

A database (any edition) lists one `CONTINUOUS` restore point (its point-in-time restore window,
`earliestRestoreDate` its creation time; the name `ContinuousRestorePoint` is ours) and the
`DISCRETE` ones created on it (named by their creation time in 100 ns ticks since 0001-01-01, as
data-warehouse restore points are named: ours to confirm).
"""

from __future__ import annotations

import copy
from typing import Any

from localdev.armsim.bodies import json_body
from localdev.armsim.errors import ArmError
from localdev.armsim.hooks import ArmSim, properties_of
from localdev.armsim.latency import action_seconds
from localdev.armsim.messages import SimRequest, SimResponse
from localdev.armsim.paths import ResourcePath, parse_resource_id
from localdev.armsim.store import Operation, Resource, iso

DATABASE_TYPE = "Microsoft.Sql/servers/databases"
SERVER_TYPE = "Microsoft.Sql/servers"
RESTORE_POINT_TYPE = "Microsoft.Sql/servers/databases/restorePoints"
CONTINUOUS_NAME = "ContinuousRestorePoint"
#: Seconds between 0001-01-01 and the Unix epoch (.NET ticks are 100 ns since then).
_TICKS_EPOCH = 62135596800


# ================================================================ copies


def _source_of(engine: ArmSim, body: dict[str, Any]) -> Resource | None:
    """The source database of a `Copy` create (None when the body is no copy); 400 when the
    source is missing or not a database."""
    properties = body.get("properties") or {}
    if str(properties.get("createMode", "Default")).lower() != "copy":
        return None
    source_id = properties.get("sourceDatabaseId")
    if not source_id:
        raise ArmError(400, "MissingSourceDatabaseId", "Missing source database identifier.")
    parsed = parse_resource_id(str(source_id))
    if parsed is None or parsed.full_type.lower() != DATABASE_TYPE.lower():
        raise ArmError(400, "InvalidSourceDatabaseId", "Invalid source database identifier.")
    server = parsed.parent
    if server is None or engine.store.get(server.id) is None:
        raise ArmError(
            400,
            "SourceServerNotFound",
            f"The server '{server.name if server else ''}' of the source database id does not "
            "exist.",
        )
    source = engine.store.get(parsed.id)
    if source is None or source.state == "Deleting":
        raise ArmError(400, "SourceDatabaseNotFound", "The source database does not exist.")
    return source


def check_copy(
    engine: ArmSim, path: ResourcePath, body: dict[str, Any], existing: Resource | None
) -> None:
    """A `Copy` create needs a live source database."""
    if existing is None:
        _source_of(engine, body)


def prepare_copy(
    engine: ArmSim, body: dict[str, Any], existing: Resource | None
) -> dict[str, Any] | None:
    """A copy takes its source's sku unless the request names one."""
    if existing is not None:
        return None
    source = _source_of(engine, body)
    if source is None or body.get("sku"):
        return None
    return {**body, "sku": copy.deepcopy(source.body.get("sku"))}


def copy_outcome(engine: ArmSim, database: Resource, op: Operation) -> dict[str, Any] | None:
    """A copy fails when its source went away while it was being copied."""
    if op.kind != "create":
        return None
    properties = database.body.get("properties") or {}
    if str(properties.get("createMode", "Default")).lower() != "copy":
        return None
    source = engine.store.get(str(properties.get("sourceDatabaseId", "")))
    if source is None or source.state == "Deleting":
        return {"code": "SourceDatabaseNotFound", "message": "The source database does not exist."}
    database.extra["copiedFrom"] = source.id
    return None


# ================================================================ restore points


def _is_data_warehouse(database: Resource) -> bool:
    sku = database.body.get("sku") or {}
    return str(sku.get("tier", "")).lower() == "datawarehouse" or str(
        sku.get("name", "")
    ).upper().startswith("DW")


def create_restore_point(engine: ArmSim, database: Resource, request: SimRequest) -> SimResponse:
    """`POST .../restorePoints`: a DISCRETE restore point of a data warehouse."""
    body = json_body(request)
    label = body.get("restorePointLabel")
    if not isinstance(label, str) or not label:
        raise ArmError(
            400,
            "InvalidParameter",
            "Required parameter 'restorePointLabel' is missing (null).",
            target="restorePointLabel",
        )
    if not _is_data_warehouse(database):
        raise ArmError(
            400,
            "FeatureDisabledOnSelectedEdition",
            "User attempted to use a feature which is disabled on current database edition.",
        )
    engine.require_idle(database, request)
    name = str(int((engine.now + _TICKS_EPOCH) * 10**7))
    point = Resource(
        id=f"{database.id}/restorePoints/{name}",
        type=RESTORE_POINT_TYPE,
        body={"properties": {"restorePointLabel": label}},
        state="Creating",
        created=engine.now,
        changed=engine.now,
        etag=database.etag,
    )
    engine.store.put(point)
    seconds = action_seconds(database.type, "restorepoints")
    response = engine.start_action(point, "restorepoints", request, seconds)
    point.state = "Creating"
    return response


def restore_point_view(engine: ArmSim, point: Resource, view: dict[str, Any]) -> None:
    """A DISCRETE restore point as the provider shows it."""
    properties = properties_of(view)
    properties.pop("provisioningState", None)
    properties["restorePointType"] = "DISCRETE"
    properties["restorePointCreationDate"] = iso(point.created)
    view["location"] = engine.store.location_of(point)


def restore_points(engine: ArmSim, database: Resource) -> list[dict[str, Any]]:
    """`RestorePoints_ListByDatabase`: the continuous point and the discrete ones."""
    found = [
        {
            "id": f"{database.id}/restorePoints/{CONTINUOUS_NAME}",
            "name": CONTINUOUS_NAME,
            "type": RESTORE_POINT_TYPE,
            "location": engine.store.location_of(database),
            "properties": {
                "restorePointType": "CONTINUOUS",
                "earliestRestoreDate": iso(database.created),
            },
        }
    ]
    for point in engine.store.children(database.id, RESTORE_POINT_TYPE):
        if point.state == "Succeeded":
            found.append(engine.view(point))
    return found


def restore_point_created(engine: ArmSim, point: Resource, op: Operation) -> None:
    """The operation's result is the restore point."""
    op.result = engine.view(point)


def restore_point_failed(engine: ArmSim, point: Resource) -> None:
    """A restore point whose creation failed does not exist."""
    engine.store.remove(point.id)

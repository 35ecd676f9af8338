"""`GET /api/openapi.json`: the OpenAPI 3.1 description of the whole HTTP API.

The request body schemas come from the pydantic models that validate the input (the platform
spec); response shapes follow `docs/api.md`. Built on the first request and cached, never at
import time (`docs/architecture.md`, "Cold start").
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import azure.durable_functions as df
import azure.functions as func

from triggers.http import MAX_BODY_BYTES, json_response

bp = df.Blueprint()

_REF = "#/components/schemas/"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": _REF + name}


def _relocate_refs(node: Any) -> Any:
    """pydantic writes `#/$defs/X`; in OpenAPI the definitions live in components."""
    if isinstance(node, dict):
        return {
            key: (
                value.replace("#/$defs/", _REF)
                if key == "$ref" and isinstance(value, str)
                else _relocate_refs(value)
            )
            for key, value in node.items()
        }
    if isinstance(node, list):
        return [_relocate_refs(item) for item in node]
    return node


def _object(properties: dict[str, Any], required: list[str] | None = None) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        schema["required"] = required
    return schema


_NULLABLE_STRING = {"type": ["string", "null"]}
_ERROR = _object(
    {
        "error": _object(
            {
                "code": {"type": "string"},
                "message": {"type": "string"},
                "details": {
                    "type": "array",
                    "items": _object(
                        {"target": {"type": "string"}, "message": {"type": "string"}},
                        ["target", "message"],
                    ),
                },
            },
            ["code", "message"],
        )
    },
    ["error"],
)
_KIND = {"type": "string", "enum": ["deploy", "teardown", "upgrade"]}
_LAST_OPERATION = _object(
    {
        "kind": _KIND,
        "instanceId": {"type": "string"},
        "operationId": {"type": "string", "format": "uuid"},
        "runtimeStatus": {"type": "string"},
        "startedAt": _NULLABLE_STRING,
        "updatedAt": _NULLABLE_STRING,
    },
    ["kind", "instanceId", "runtimeStatus"],
)
_ACCEPTED = _object(
    {
        "id": {"type": "string", "format": "uuid"},
        "solutionId": {"type": "string"},
        "kind": _KIND,
        "status": {"type": "string", "const": "Running"},
        "resumes": {
            "type": "string",
            "format": "uuid",
            "description": "An upgrade that resumes a stopped one: that upgrade's operation id.",
        },
    },
    ["id", "solutionId", "kind", "status"],
)
_UPGRADE_STATE = {
    "type": "string",
    "enum": [
        "Pending",
        "Running",
        "AwaitingApproval",
        "Succeeded",
        "Failed",
        "Canceled",
        "Skipped",
    ],
}
_VERSIONS = _object(
    {"platformVersion": {"type": "string"}, "lifetimeVersion": {"type": "string"}},
    ["platformVersion", "lifetimeVersion"],
)
_ERROR_INFO = {
    "oneOf": [
        {"type": "null"},
        _object(
            {
                "code": {"type": "string"},
                "message": {"type": "string"},
                "resource": {"type": "string"},
            },
            ["code", "message"],
        ),
    ]
}
_UPGRADE = _object(
    {
        "operation": {"type": "string", "const": "upgrade"},
        "operationId": {"type": "string"},
        "from": _VERSIONS,
        "to": _VERSIONS,
        "state": _UPGRADE_STATE,
        "awaiting": {
            **_NULLABLE_STRING,
            "description": "The environment whose approval the upgrade waits for "
            "(POST /platforms/{solutionId}/upgrade/approve).",
        },
        "resumesAt": {
            **_NULLABLE_STRING,
            "format": "date-time",
            "description": "When the pause ends by itself (the spec's upgrade.soakMinutes).",
        },
        "environments": {
            "type": "array",
            "items": _object(
                {
                    "environment": {"type": "string"},
                    "state": _UPGRADE_STATE,
                    "step": _NULLABLE_STRING,
                    "stepsDone": {"type": "integer", "minimum": 0},
                    "stepsTotal": {"type": "integer", "minimum": 0},
                    "restorePoint": {
                        "oneOf": [
                            {"type": "null"},
                            _object(
                                {
                                    "kind": {"type": "string", "enum": ["copy", "pointInTime"]},
                                    "sourceDatabaseId": {"type": "string"},
                                    "databaseId": _NULLABLE_STRING,
                                    "restoreTo": {**_NULLABLE_STRING, "format": "date-time"},
                                },
                                ["kind", "sourceDatabaseId"],
                            ),
                        ]
                    },
                    "servers": {
                        "type": "array",
                        "items": _object(
                            {
                                "name": {"type": "string"},
                                "instanceId": _NULLABLE_STRING,
                                "group": {
                                    "type": ["string", "null"],
                                    "enum": ["updating", "loaded", None],
                                },
                                "state": _UPGRADE_STATE,
                                "version": _NULLABLE_STRING,
                                "step": _NULLABLE_STRING,
                                "error": _ERROR_INFO,
                                "temporary": {
                                    "type": "boolean",
                                    "description": "An instance the upgrade added to keep two "
                                    "sets of the minimum size; deleted at its end.",
                                },
                            },
                            ["name", "state"],
                        ),
                    },
                    "error": _ERROR_INFO,
                    "endedAt": {**_NULLABLE_STRING, "format": "date-time"},
                },
                ["environment", "state", "stepsDone", "stepsTotal", "servers"],
            ),
        },
    },
    ["operation", "from", "to", "state", "environments"],
)
_UPGRADE_PLAN = _object(
    {
        "operation": {"type": "string", "const": "upgrade"},
        "from": _VERSIONS,
        "to": _VERSIONS,
        "order": {
            "type": "array",
            "items": {"type": "string"},
            "description": "LifeTime first, then the spec's upgrade.order.",
        },
        "soakMinutes": {"type": ["integer", "null"]},
        "resumes": {**_NULLABLE_STRING, "description": "The stopped upgrade a PUT resumes."},
        "kept": {
            "type": "array",
            "items": {"type": "string"},
            "description": "Environments the resumed upgrade already upgraded (no steps shown).",
        },
        "steps": {
            "type": "array",
            "items": _object(
                {
                    "environment": {"type": "string"},
                    "step": {"type": "string"},
                    "target": {"type": "string", "description": "ARM id; empty for an approval"},
                    "detail": {"type": "string"},
                },
                ["environment", "step", "target", "detail"],
            ),
        },
    },
    ["operation", "from", "to", "order", "steps"],
)
_APPROVAL = {
    "type": "object",
    "properties": {
        "environment": {
            "type": "string",
            "enum": ["dev", "test", "prod", "life"],
            "description": "The environment the upgrade awaits; when given and another one is "
            "awaited, 400 (nothing approved).",
        }
    },
    "additionalProperties": False,
}
_APPROVED = _object(
    {
        "solutionId": {"type": "string"},
        "operationId": {"type": "string", "format": "uuid"},
        "environment": {"type": "string"},
        "status": {"type": "string", "const": "Approved"},
    },
    ["solutionId", "environment", "status"],
)
_ENVIRONMENT_STATE = _object(
    {
        "status": {
            "type": "string",
            "enum": ["Pending", "Running", "Succeeded", "Failed", "Canceled", "Deleted"],
        },
        "resourcesDone": {"type": "integer", "minimum": 0},
        "resourcesTotal": {"type": "integer", "minimum": 0},
        "step": _NULLABLE_STRING,
        "error": {
            "oneOf": [
                {"type": "null"},
                _object(
                    {
                        "code": {"type": "string"},
                        "message": {"type": "string"},
                        "resource": {"type": "string"},
                    },
                    ["code", "message"],
                ),
            ]
        },
    },
    ["status", "resourcesDone", "resourcesTotal"],
)
_ENVIRONMENTS = {"type": "object", "additionalProperties": _ref("EnvironmentState")}
_PLATFORM_STATE = _object(
    {
        "solutionId": {"type": "string"},
        "subscriptionId": _NULLABLE_STRING,
        "resourceGroup": _NULLABLE_STRING,
        "status": _ref("Outcome"),
        "lastOperation": _ref("LastOperation"),
        "environments": _ENVIRONMENTS,
        "outputs": {"type": "object"},
        "upgrade": {
            "oneOf": [{"type": "null"}, _ref("Upgrade")],
            "description": "When the last operation is an upgrade: its progress.",
        },
    },
    ["solutionId", "status", "lastOperation", "environments", "outputs"],
)
_OPERATION = _object(
    {
        "id": {"type": "string", "format": "uuid"},
        "solutionId": {"type": "string"},
        "kind": _KIND,
        "status": _ref("Outcome"),
        "runtimeStatus": {"type": "string"},
        "startedAt": _NULLABLE_STRING,
        "updatedAt": _NULLABLE_STRING,
        "environments": _ENVIRONMENTS,
        "outputs": {"type": "object"},
        "upgrade": {"oneOf": [{"type": "null"}, _ref("Upgrade")]},
    },
    ["id", "solutionId", "kind", "status", "environments", "outputs"],
)
_PLATFORM_LIST = _object(
    {
        "platforms": {
            "type": "array",
            "items": _object(
                {
                    "solutionId": {"type": "string"},
                    "subscriptionId": {"type": "string"},
                    "resourceGroup": {"type": "string"},
                    "status": {"oneOf": [{"type": "null"}, _ref("Outcome")]},
                    "lastOperation": {"oneOf": [{"type": "null"}, _ref("LastOperation")]},
                },
                ["solutionId", "subscriptionId", "resourceGroup", "status"],
            ),
        }
    },
    ["platforms"],
)
_PLAN = _object(
    {
        "resources": {
            "type": "array",
            "items": _object(
                {
                    "id": {"type": "string"},
                    "type": {"type": "string"},
                    "name": {"type": "string"},
                    "environment": {"type": "string"},
                    "action": {"type": "string", "enum": ["create", "update", "noop"]},
                    "changes": {
                        "type": "array",
                        "items": _object(
                            {"path": {"type": "string"}, "from": {}, "to": {}}, ["path"]
                        ),
                    },
                },
                ["id", "type", "name", "environment", "action", "changes"],
            ),
        },
        "totals": _object(
            {k: {"type": "integer"} for k in ("create", "update", "noop")},
            ["create", "update", "noop"],
        ),
    },
    ["resources", "totals"],
)
_SCALE_REQUEST = {
    "oneOf": [
        {
            "type": "object",
            "properties": {"capacity": {"type": "integer", "minimum": 0}},
            "required": ["capacity"],
            "additionalProperties": False,
        },
        {
            "type": "object",
            "properties": {"delta": {"type": "integer"}},
            "required": ["delta"],
            "additionalProperties": False,
        },
    ]
}
_SCALE_ACCEPTED = _object(
    {
        "requestId": {"type": "string"},
        "scaleSet": {"type": "string"},
        "target": {"type": "integer"},
    },
    ["requestId", "scaleSet", "target"],
)
_SCALING = _object(
    {
        "scaleSet": {"type": "string"},
        "capacity": {"type": ["integer", "null"]},
        "policy": {"type": "object"},
        "cooldownUntil": _NULLABLE_STRING,
        "decisions": {"type": "array", "items": {"type": "object"}},
        "heldBy": {"type": ["object", "null"]},
    },
    ["scaleSet", "policy", "decisions"],
)
_ALERT = _object(
    {
        "schemaId": {"type": "string", "const": "azureMonitorCommonAlertSchema"},
        "data": _object(
            {
                "essentials": {"type": "object"},
                "alertContext": {"type": ["object", "null"]},
                "customProperties": {"type": ["object", "null"]},
            },
            ["essentials"],
        ),
    },
    ["schemaId", "data"],
)
_ALERT_ACCEPTED = _object(
    {
        "accepted": {
            "type": "array",
            "items": _object(
                {
                    "scaleSet": {"type": "string"},
                    "direction": {"type": "string", "enum": ["out", "in"]},
                    "requestId": {"type": "string"},
                },
                ["scaleSet", "direction", "requestId"],
            ),
        }
    },
    ["accepted"],
)
_ALERT_IGNORED = _object({"ignored": {"type": "string"}}, ["ignored"])
_DRIFT = _object(
    {
        "solutionId": {"type": "string"},
        "status": {"type": "string", "enum": ["NeverChecked", "InSync", "Drifted"]},
        "checkedAt": {**_NULLABLE_STRING, "format": "date-time"},
        "drifted": {"type": ["boolean", "null"]},
        "differences": {
            "type": "array",
            "items": _object(
                {
                    "resourceId": {"type": "string"},
                    "path": {"type": "string"},
                    "expected": {},
                    "actual": {},
                },
                ["resourceId", "path", "expected", "actual"],
            ),
        },
    },
    ["solutionId", "status", "checkedAt", "drifted", "differences"],
)


def _json(schema: str | dict[str, Any], description: str) -> dict[str, Any]:
    body = _ref(schema) if isinstance(schema, str) else schema
    return {"description": description, "content": {"application/json": {"schema": body}}}


def _error(description: str) -> dict[str, Any]:
    return _json("Error", description)


_POLLING_HEADERS = {
    "Location": {
        "description": "The operation's URL on this app "
        "(`/api/platforms/{solutionId}/operations/{operationId}`): poll it with the key.",
        "schema": {"type": "string", "format": "uri"},
    },
    "Retry-After": {
        "description": "Seconds to wait before polling the Location.",
        "schema": {"type": "integer", "minimum": 1},
    },
}


_TOO_LARGE = _error(f"The body is over {MAX_BODY_BYTES} bytes (RequestTooLarge)")
_ARM_UNAVAILABLE = {
    **_error("Azure Resource Manager did not answer the checks of the spec; nothing started"),
    "headers": {"Retry-After": _POLLING_HEADERS["Retry-After"]},
}


def _accepted(description: str, schema: str = "Accepted") -> dict[str, Any]:
    """A 202 of Azure's asynchronous-operation pattern: follow its `Location`."""
    return {**_json(schema, description), "headers": _POLLING_HEADERS}


_SOLUTION_ID = {
    "name": "solutionId",
    "in": "path",
    "required": True,
    "description": "Lowercase letters and digits, starting with a letter, at most 6 characters.",
    "schema": {"type": "string"},
}
_SECURITY: list[dict[str, list[str]]] = [{"functionKey": []}, {"functionKeyQuery": []}]


def _operation(summary: str, responses: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"summary": summary, "security": _SECURITY, "responses": responses, **extra}


@lru_cache(maxsize=1)
def document() -> dict[str, Any]:
    """The OpenAPI document."""
    from outsystems.spec import spec_json_schema
    from services.platform_state import OUTCOMES

    spec_schema = _relocate_refs(spec_json_schema())
    definitions = spec_schema.pop("$defs", {})
    spec_body = {
        "required": True,
        "content": {"application/json": {"schema": _ref("PlatformSpec")}},
    }
    in_path = {"parameters": [_SOLUTION_ID]}
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "OutSystems 11 on Azure: provisioning and front-end scaling",
            "version": "1.0.0",
            "description": "Create, follow, plan, upgrade, scale and tear down OutSystems "
            "platforms. Every route but this document needs a function key. PUT and "
            "DELETE follow Azure's asynchronous-operation pattern: poll the Location of their 202 "
            "(with the key) "
            "until it answers 200. Request bodies are limited to "
            f"{MAX_BODY_BYTES} bytes (413).",
        },
        "servers": [{"url": "/api"}],
        "paths": {
            "/platforms": {
                "get": _operation(
                    "The platforms this app manages", {"200": _json("PlatformList", "Platforms")}
                )
            },
            "/platforms/{solutionId}": {
                **in_path,
                "put": _operation(
                    "Create or update a platform from a spec; upgrade it when the spec raises "
                    "platformVersion and/or lifetimeVersion",
                    {
                        "202": _accepted(
                            "Deployment started (kind deploy), or upgrade started or resumed "
                            "(kind upgrade)"
                        ),
                        "400": _error(
                            "Invalid spec (InvalidSpec), or one that what exists in Azure "
                            "rules out (PreflightFailed), a lower version than deployed, other "
                            "changes made together with an upgrade, or another target than "
                            "the stopped upgrade's (BadRequest); each detail names the field"
                        ),
                        "409": _error("An operation of the platform is running"),
                        "413": _TOO_LARGE,
                        "503": _ARM_UNAVAILABLE,
                    },
                    requestBody=spec_body,
                ),
                "get": _operation(
                    "The platform's state",
                    {"200": _json("PlatformState", "State"), "404": _error("Unknown platform")},
                ),
                "delete": _operation(
                    "Tear the platform down",
                    {
                        "202": _accepted("Teardown started"),
                        "400": _error("Invalid environments"),
                        "404": _error("Unknown platform"),
                        "409": _error("An operation is running"),
                        "413": _TOO_LARGE,
                    },
                    parameters=[
                        {
                            "name": "environments",
                            "in": "query",
                            "required": False,
                            "description": "Comma-separated environments (default: all).",
                            "schema": {"type": "string"},
                        }
                    ],
                ),
            },
            "/platforms/{solutionId}/operations/{operationId}": {
                "parameters": [
                    _SOLUTION_ID,
                    {
                        "name": "operationId",
                        "in": "path",
                        "required": True,
                        "description": "The id of the operation, from the Location of a 202.",
                        "schema": {"type": "string"},
                    },
                ],
                "get": _operation(
                    "An operation of the platform: 202 while it runs, 200 with its result",
                    {
                        "200": _json("Operation", "The operation ended: its result"),
                        "202": _accepted("The operation runs: its progress", "Operation"),
                        "404": _error(
                            "Unknown operation (or replaced by a later operation of the platform)"
                        ),
                    },
                ),
            },
            "/platforms/{solutionId}/plan": {
                **in_path,
                "post": _operation(
                    "What a PUT with this spec would change",
                    {
                        "200": _json(
                            {"oneOf": [_ref("Plan"), _ref("UpgradePlan")]},
                            "The change of each resource, or the steps of an upgrade in order",
                        ),
                        "400": _error("Invalid spec, or one that what exists in Azure rules out"),
                        "413": _TOO_LARGE,
                        "503": _ARM_UNAVAILABLE,
                    },
                    requestBody=spec_body,
                ),
            },
            "/platforms/{solutionId}/upgrade/approve": {
                **in_path,
                "post": _operation(
                    "Let the paused upgrade go on to the environment it awaits",
                    {
                        "202": {
                            **_json("Approved", "Approval sent to the upgrade"),
                            "headers": _POLLING_HEADERS,
                        },
                        "400": _error(
                            "The body names another environment than the one awaited "
                            "(WrongEnvironment), or is not an approval (InvalidApproval)"
                        ),
                        "404": _error("Unknown platform"),
                        "409": _error(
                            "No upgrade of the platform awaits an approval "
                            "(NoUpgradeAwaitingApproval)"
                        ),
                        "413": _TOO_LARGE,
                    },
                    requestBody={
                        "required": False,
                        "content": {"application/json": {"schema": _ref("Approval")}},
                    },
                ),
            },
            "/platforms/{solutionId}/cancel": {
                **in_path,
                "post": _operation(
                    "Stop the running deployment, upgrade or teardown",
                    {
                        "202": {
                            **_json(
                                _object(
                                    {
                                        "instanceId": {"type": "string"},
                                        "runtimeStatus": {"type": "string"},
                                    }
                                ),
                                "Canceled",
                            ),
                            "headers": {"Location": _POLLING_HEADERS["Location"]},
                        },
                        "404": _error("Unknown platform"),
                        "409": _error("Nothing is running"),
                        "413": _TOO_LARGE,
                    },
                ),
            },
            "/platforms/{solutionId}/scale": {
                **in_path,
                "post": _operation(
                    "Set the production front-end capacity by hand",
                    {
                        "202": _json("ScaleAccepted", "Scaling requested"),
                        "400": _error("Outside the bounds, or not a farm"),
                        "404": _error("Unknown platform"),
                        "409": _error("The scale set is not deployed (yet)"),
                        "413": _TOO_LARGE,
                    },
                    requestBody={
                        "required": True,
                        "content": {"application/json": {"schema": _ref("ScaleRequest")}},
                    },
                ),
            },
            "/platforms/{solutionId}/scaling": {
                **in_path,
                "get": _operation(
                    "Scaling policy, live capacity and recent decisions",
                    {
                        "200": _json("Scaling", "Scaling"),
                        "400": _error("Not a farm"),
                        "404": _error("Unknown platform"),
                    },
                ),
            },
            "/platforms/{solutionId}/drift": {
                **in_path,
                "get": _operation(
                    "The last drift check: where live resources differ from the spec",
                    {
                        "200": _json("Drift", "The last check (NeverChecked before the first)"),
                        "404": _error("Unknown platform"),
                    },
                ),
            },
            "/alerts": {
                "post": _operation(
                    "Azure Monitor action-group webhook (common alert schema)",
                    {
                        "503": _error(
                            "ARM or the task hub did not answer in time: nothing stored, "
                            "retry after Retry-After seconds (Azure Monitor does)"
                        ),
                        "202": _json("AlertAccepted", "Scaling requests accepted"),
                        "200": _json("AlertIgnored", "Nothing to do, and why"),
                        "400": _error("Not a common-schema alert"),
                        "413": _TOO_LARGE,
                    },
                    requestBody={
                        "required": True,
                        "content": {"application/json": {"schema": _ref("Alert")}},
                    },
                )
            },
            "/openapi.json": {
                "get": {
                    "summary": "This document",
                    "security": [],
                    "responses": {"200": {"description": "OpenAPI 3.1 document"}},
                }
            },
        },
        "components": {
            "securitySchemes": {
                "functionKey": {"type": "apiKey", "in": "header", "name": "x-functions-key"},
                "functionKeyQuery": {"type": "apiKey", "in": "query", "name": "code"},
            },
            "schemas": {
                "PlatformSpec": spec_schema,
                **definitions,
                "Error": _ERROR,
                "Outcome": {
                    "type": "string",
                    "enum": list(OUTCOMES),
                    "description": "How the operation went, from the outcome of each environment "
                    "it was about (Durable's runtimeStatus says Completed even when every "
                    "environment failed).",
                },
                "Accepted": _ACCEPTED,
                "Operation": _OPERATION,
                "LastOperation": _LAST_OPERATION,
                "EnvironmentState": _ENVIRONMENT_STATE,
                "PlatformState": _PLATFORM_STATE,
                "PlatformList": _PLATFORM_LIST,
                "Plan": _PLAN,
                "Upgrade": _UPGRADE,
                "UpgradePlan": _UPGRADE_PLAN,
                "Approval": _APPROVAL,
                "Approved": _APPROVED,
                "ScaleRequest": _SCALE_REQUEST,
                "ScaleAccepted": _SCALE_ACCEPTED,
                "Scaling": _SCALING,
                "Alert": _ALERT,
                "AlertAccepted": _ALERT_ACCEPTED,
                "AlertIgnored": _ALERT_IGNORED,
                "Drift": _DRIFT,
            },
        },
    }


@bp.route(route="openapi.json", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def get_openapi(req: func.HttpRequest) -> func.HttpResponse:
    """The OpenAPI description of the API (no key needed)."""
    return json_response(document())

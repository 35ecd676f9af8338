"""`GET /api/openapi.json`: the OpenAPI 3.1 description of the whole HTTP API.

The request body schemas come from the pydantic models that validate the input (the platform
spec); response shapes follow `docs/api.md`. Built on request (cheap) and cached, never at
import time: the worker imports this module at every cold start.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import azure.durable_functions as df
import azure.functions as func

from triggers.http import json_response

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
_CHECK_STATUS = _object(
    {
        name: {"type": "string"}
        for name in (
            "id",
            "statusQueryGetUri",
            "sendEventPostUri",
            "terminatePostUri",
            "purgeHistoryDeleteUri",
            "restartPostUri",
            "suspendPostUri",
            "resumePostUri",
        )
    },
    ["id", "statusQueryGetUri"],
)
_LAST_OPERATION = _object(
    {
        "kind": {"type": "string", "enum": ["deploy", "teardown"]},
        "instanceId": {"type": "string"},
        "runtimeStatus": {"type": "string"},
        "startedAt": _NULLABLE_STRING,
        "updatedAt": _NULLABLE_STRING,
    },
    ["kind", "instanceId", "runtimeStatus"],
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
_PLATFORM_STATE = _object(
    {
        "solutionId": {"type": "string"},
        "subscriptionId": _NULLABLE_STRING,
        "resourceGroup": _NULLABLE_STRING,
        "lastOperation": _ref("LastOperation"),
        "environments": {"type": "object", "additionalProperties": _ref("EnvironmentState")},
        "outputs": {"type": "object"},
    },
    ["solutionId", "lastOperation", "environments", "outputs"],
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
                    "lastOperation": {"oneOf": [{"type": "null"}, _ref("LastOperation")]},
                },
                ["solutionId", "subscriptionId", "resourceGroup"],
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


def _json(schema: str | dict[str, Any], description: str) -> dict[str, Any]:
    body = _ref(schema) if isinstance(schema, str) else schema
    return {"description": description, "content": {"application/json": {"schema": body}}}


def _error(description: str) -> dict[str, Any]:
    return _json("Error", description)


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
            "description": "Create, follow, plan, scale and tear down OutSystems platforms. "
            "Every route but this document needs a function key.",
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
                    "Create or update a platform from a spec",
                    {
                        "202": _json("CheckStatus", "Deployment started"),
                        "400": _error("Invalid spec"),
                        "409": _error("A deployment or teardown is running"),
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
                        "202": _json("CheckStatus", "Teardown started"),
                        "400": _error("Invalid environments"),
                        "404": _error("Unknown platform"),
                        "409": _error("An operation is running"),
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
            "/platforms/{solutionId}/plan": {
                **in_path,
                "post": _operation(
                    "What a PUT with this spec would change",
                    {"200": _json("Plan", "Plan"), "400": _error("Invalid spec")},
                    requestBody=spec_body,
                ),
            },
            "/platforms/{solutionId}/cancel": {
                **in_path,
                "post": _operation(
                    "Stop the running deployment or teardown",
                    {
                        "202": _json(
                            _object(
                                {
                                    "instanceId": {"type": "string"},
                                    "runtimeStatus": {"type": "string"},
                                }
                            ),
                            "Canceled",
                        ),
                        "404": _error("Unknown platform"),
                        "409": _error("Nothing is running"),
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
                "CheckStatus": _CHECK_STATUS,
                "LastOperation": _LAST_OPERATION,
                "EnvironmentState": _ENVIRONMENT_STATE,
                "PlatformState": _PLATFORM_STATE,
                "PlatformList": _PLATFORM_LIST,
                "Plan": _PLAN,
                "ScaleRequest": _SCALE_REQUEST,
                "ScaleAccepted": _SCALE_ACCEPTED,
                "Scaling": _SCALING,
                "Alert": _ALERT,
                "AlertAccepted": _ALERT_ACCEPTED,
                "AlertIgnored": _ALERT_IGNORED,
            },
        },
    }


@bp.route(route="openapi.json", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def get_openapi(req: func.HttpRequest) -> func.HttpResponse:
    """The OpenAPI description of the API (no key needed)."""
    return json_response(document())

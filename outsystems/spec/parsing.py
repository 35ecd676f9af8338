"""Parsing a request body into a `PlatformSpec`: JSON decoding, defaults from the request.

`parse_spec()` turns the request (path solution id + JSON body) into a frozen `PlatformSpec`
or raises `SpecError` listing every problem with the JSON path the user wrote.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from typing import Any

from pydantic import ValidationError

from outsystems.errors import FieldError, SpecError
from outsystems.names import default_resource_group, is_valid_solution_id
from outsystems.spec.fields import GUID_RE
from outsystems.spec.model import PlatformSpec
from outsystems.spec.reporting import field_errors
from outsystems.spec.secrets import strip_secrets


class _DuplicateKeyError(ValueError):
    pass


def _no_duplicate_keys(pairs: list[tuple[str, object]]) -> dict[str, object]:
    result: dict[str, object] = {}
    for key, value in pairs:
        if key in result:
            raise _DuplicateKeyError(f"the key {key!r} appears twice in one object")
        result[key] = value
    return result


def _reject_constant(name: str) -> object:
    raise _DuplicateKeyError(f"{name} is not valid JSON")


def _decode(text: str | bytes | bytearray) -> object:
    try:
        # JSON bodies are UTF-8 (RFC 8259); json.loads would otherwise guess UTF-16/32 too.
        decoded = text if isinstance(text, str) else bytes(text).decode("utf-8-sig")
        return json.loads(
            decoded, object_pairs_hook=_no_duplicate_keys, parse_constant=_reject_constant
        )
    except json.JSONDecodeError as error:
        detail = f"malformed JSON: {error.msg} at line {error.lineno} column {error.colno}"
    except UnicodeDecodeError:
        detail = "malformed JSON: the body is not UTF-8 text"
    except _DuplicateKeyError as error:
        detail = f"malformed JSON: {error}"
    except RecursionError:
        detail = "malformed JSON: nested too deeply"
    except ValueError:
        # json.loads refuses integers of more than 4300 digits (CPython's conversion limit).
        detail = "malformed JSON: a number is far too long"
    raise SpecError("The request body is not valid JSON.", [FieldError("body", detail)])


def parse_spec(
    solution_id: str,
    body: object,
    *,
    default_subscription_id: str,
    managed_subscription_ids: Collection[str] = (),
) -> PlatformSpec:
    """The validated spec of platform `solution_id`, or `SpecError` listing every problem.

    `body` is decoded JSON, or JSON text (`str`/`bytes`). The subscription defaults to
    `default_subscription_id` and must be it or one of `managed_subscription_ids`; the resource
    group defaults to `<solutionId>-rg`.
    """
    if isinstance(body, str | bytes | bytearray):
        body = _decode(body)
    if not isinstance(body, dict):
        raise SpecError(
            "The platform spec is invalid.", [FieldError("body", "must be a JSON object")]
        )
    cleaned, errors = strip_secrets(body)
    assert isinstance(cleaned, dict)
    if "solutionId" in cleaned:
        errors.append(
            FieldError("solutionId", "unknown field: the solution id is given by the URL path")
        )
        del cleaned["solutionId"]

    subscription = cleaned.get("subscriptionId")
    if subscription is None:
        subscription = default_subscription_id
    managed = {s.strip().lower() for s in (default_subscription_id, *managed_subscription_ids)}
    if (
        isinstance(subscription, str)
        and GUID_RE.fullmatch(subscription)
        and subscription.lower() not in managed
    ):
        errors.append(
            FieldError(
                "subscriptionId",
                f"this app does not manage subscription {subscription}: use the default "
                "(AZURE_SUBSCRIPTION_ID) or add it to the app setting MANAGED_SUBSCRIPTION_IDS",
            )
        )
    resource_group = cleaned.get("resourceGroup")
    if resource_group is None:
        # An invalid solution id is reported on its own; do not also derive a bad group from it.
        valid = is_valid_solution_id(solution_id)
        resource_group = default_resource_group(solution_id if valid else "invalid")
    data = {
        **cleaned,
        "solutionId": solution_id,
        "subscriptionId": subscription,
        "resourceGroup": resource_group,
    }
    spec: PlatformSpec | None = None
    try:
        spec = PlatformSpec.model_validate(data)
    except ValidationError as error:
        errors.extend(field_errors(error, PlatformSpec))
    if errors or spec is None:
        raise SpecError("The platform spec is invalid.", errors)
    return spec


def spec_json_schema() -> dict[str, Any]:
    """The JSON schema of the request body (by alias), for the OpenAPI document."""
    schema = PlatformSpec.model_json_schema(by_alias=True, mode="validation")
    schema["properties"].pop("solutionId", None)
    schema["required"] = [
        name
        for name in schema.get("required", [])
        if name not in {"solutionId", "subscriptionId", "resourceGroup"}
    ]
    schema["properties"]["subscriptionId"]["description"] = (
        "Defaults to the app setting AZURE_SUBSCRIPTION_ID; must be a managed subscription."
    )
    schema["properties"]["resourceGroup"]["description"] = "Defaults to <solutionId>-rg."
    return schema

"""Problems of a spec body as `FieldError`s: the JSON path the user wrote and what to do.

pydantic reports a field's own check (a `ValueError` message), a model's cross-field problems
(`ProblemsError`, each at its path), a wrong type or an unknown field (named with the closest
allowed one).
"""

from __future__ import annotations

import difflib
import types
import typing
from typing import Annotated, Final

from pydantic import BaseModel, ValidationError

from outsystems.errors import FieldError
from outsystems.spec.fields import Path, ProblemsError


def target(path: Path) -> str:
    """The dotted JSON path of a problem, e.g. `environments.prod.frontends.maxCapacity`."""
    return ".".join(str(part) for part in path)


_TYPE_MESSAGES: Final = {
    "model_type": "must be a JSON object",
    "model_attributes_type": "must be a JSON object",
    "dict_type": "must be a JSON object",
    "string_type": "must be a string",
    "int_type": "must be an integer",
    "int_parsing": "must be an integer",
    "int_from_float": "must be an integer",
    "bool_type": "must be true or false",
    "tuple_type": "must be a list",
    "list_type": "must be a list",
    "missing": "is required",
}


def _model_in(annotation: object) -> type[BaseModel] | None:
    """The spec model inside a field's annotation (through Optional and tuple), if any."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    origin = typing.get_origin(annotation)
    if origin is Annotated:
        return _model_in(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType, tuple, list):
        for argument in typing.get_args(annotation):
            found = _model_in(argument)
            if found is not None:
                return found
    return None


def _fields_at(root: type[BaseModel], path: Path) -> list[str]:
    """The JSON field names allowed in the object at `path` of a body of `root`."""
    model: type[BaseModel] | None = root
    for part in path:
        if model is None:
            return []
        if isinstance(part, int):
            continue
        field = next((f for f in model.model_fields.values() if f.alias == part), None)
        model = _model_in(field.annotation) if field is not None else None
    if model is None:
        return []
    names = [field.alias or name for name, field in model.model_fields.items()]
    # The solution id of the whole spec comes from the URL path, never from the body.
    return [name for name in names if model is not root or name != "solutionId"]


def _unknown_field_message(root: type[BaseModel], path: Path) -> str:
    name = str(path[-1])
    allowed = _fields_at(root, path[:-1])
    close = difflib.get_close_matches(name, allowed, n=1, cutoff=0.6)
    if not close:
        lowered = {a.lower(): a for a in allowed}
        if name.lower() in lowered:
            close = [lowered[name.lower()]]
    if close:
        return f"unknown field: did you mean {close[0]!r}?"
    if allowed:
        return f"unknown field; allowed here: {', '.join(allowed)}"
    return "unknown field"


def field_errors(error: ValidationError, root: type[BaseModel]) -> list[FieldError]:
    """Every problem pydantic found validating a body of the model `root`."""
    found: list[FieldError] = []
    for item in error.errors(include_url=False, include_input=False):
        loc: Path = tuple(item["loc"])
        kind = item["type"]
        cause = (item.get("ctx") or {}).get("error")
        if isinstance(cause, ProblemsError):
            found.extend(FieldError(target(loc + sub), message) for sub, message in cause.problems)
            continue
        if kind == "extra_forbidden":
            message = _unknown_field_message(root, loc)
        elif isinstance(cause, ValueError):
            message = str(cause)
        else:
            message = _TYPE_MESSAGES.get(kind, item["msg"])
        found.append(FieldError(target(loc), message))
    return found

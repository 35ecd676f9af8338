"""ASP.NET-style route templates, as HTTP triggers use them under ``/api/``.

Supported: literal segments (case-insensitive), ``{name}``, optional ``{name?}``, defaults
``{name=value}``, constraints ``{name:int}`` (int, long, double, bool, guid, alpha, and
``regex(...)``), and a trailing catch-all ``{*rest}``. When several templates match, the one with
more literal segments and fewer parameters wins, as ASP.NET's route precedence orders them.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from urllib.parse import unquote

_PARAM = re.compile(r"^\{(?P<star>\*{1,2})?(?P<name>[A-Za-z_][\w]*)(?P<rest>.*)\}$")


class RouteTemplateError(ValueError):
    """A route template that cannot be parsed."""


def _check_constraint(constraint: str, value: str) -> bool:
    kind = constraint.lower()
    if kind in ("int", "long"):
        return re.fullmatch(r"-?\d+", value) is not None
    if kind in ("double", "float", "decimal"):
        try:
            float(value)
        except ValueError:
            return False
        return True
    if kind == "bool":
        return value.lower() in ("true", "false")
    if kind == "guid":
        try:
            uuid.UUID(value)
        except ValueError:
            return False
        return True
    if kind == "alpha":
        return re.fullmatch(r"[A-Za-z]+", value) is not None
    if kind.startswith("regex(") and constraint.endswith(")"):
        # Route templates escape braces by doubling them.
        pattern = constraint[6:-1].replace("{{", "{").replace("}}", "}")
        return re.search(pattern, value, re.IGNORECASE) is not None
    if kind.startswith("minlength(") and constraint.endswith(")"):
        return len(value) >= int(constraint[10:-1])
    if kind.startswith("maxlength(") and constraint.endswith(")"):
        return len(value) <= int(constraint[10:-1])
    # Unknown constraints do not reject: the Functions host would have refused the route.
    return True


@dataclass(frozen=True)
class _Segment:
    literal: str | None
    name: str = ""
    optional: bool = False
    default: str | None = None
    constraints: tuple[str, ...] = ()
    catch_all: bool = False


@dataclass(frozen=True)
class RouteTemplate:
    """A parsed template; ``match`` returns the route values or ``None``."""

    template: str
    segments: tuple[_Segment, ...]

    @classmethod
    def parse(cls, template: str) -> RouteTemplate:
        text = template.strip().strip("/")
        segments: list[_Segment] = []
        parts = text.split("/") if text else []
        for index, part in enumerate(parts):
            match = _PARAM.match(part)
            if match is None:
                if "{" in part or "}" in part:
                    raise RouteTemplateError(
                        f"route '{template}': complex segment '{part}' is not supported"
                    )
                segments.append(_Segment(literal=part))
                continue
            rest = match.group("rest")
            optional = rest.endswith("?")
            if optional:
                rest = rest[:-1]
            default: str | None = None
            if "=" in rest:
                rest, default = rest.split("=", 1)
            constraints = tuple(c for c in _split_constraints(rest) if c)
            catch_all = bool(match.group("star"))
            if catch_all and index != len(parts) - 1:
                raise RouteTemplateError(f"route '{template}': catch-all must be last")
            segments.append(
                _Segment(
                    literal=None,
                    name=match.group("name"),
                    optional=optional or default is not None or catch_all,
                    default=default,
                    constraints=constraints,
                    catch_all=catch_all,
                )
            )
        return cls(template=template, segments=tuple(segments))

    @property
    def precedence(self) -> tuple[int, int, int]:
        literals = sum(1 for s in self.segments if s.literal is not None)
        params = sum(1 for s in self.segments if s.literal is None and not s.catch_all)
        catch_all = sum(1 for s in self.segments if s.catch_all)
        return (-literals, catch_all, params)

    def match(self, path: str) -> dict[str, str] | None:
        text = path.strip("/")
        parts = [_segment_value(p) for p in text.split("/")] if text else []
        values: dict[str, str] = {}
        for index, segment in enumerate(self.segments):
            if segment.catch_all:
                rest = "/".join(parts[index:])
                if rest:
                    values[segment.name] = rest
                elif segment.default is not None:
                    values[segment.name] = segment.default
                return values
            if index >= len(parts):
                if segment.literal is None and segment.optional:
                    if segment.default is not None:
                        values[segment.name] = segment.default
                    continue
                return None
            part = parts[index]
            if segment.literal is not None:
                if part.lower() != segment.literal.lower():
                    return None
                continue
            if not all(_check_constraint(c, part) for c in segment.constraints):
                return None
            values[segment.name] = part
        if len(parts) > len(self.segments):
            return None
        return values


def _split_constraints(text: str) -> list[str]:
    """Split ``:int:min(1)`` into constraints, keeping ``regex(a:b)`` whole."""
    constraints: list[str] = []
    depth = 0
    current = ""
    for char in text:
        if char == ":" and depth == 0:
            constraints.append(current)
            current = ""
            continue
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        current += char
    constraints.append(current)
    return constraints


def _segment_value(raw: str) -> str:
    """A path segment decoded as ASP.NET Core decodes route values: all but `%2F`, which stays
    encoded (an encoded slash is part of the value, never a separator)."""
    pieces = re.split("(%2[Ff])", raw)
    return "".join(piece if index % 2 else unquote(piece) for index, piece in enumerate(pieces))

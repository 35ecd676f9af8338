"""Domain errors that the HTTP edge turns into the API's error envelope.

The envelope is ARM's: `{"error": {"code", "message", "details": [{"target", "message"}]}}`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class FieldError:
    """One problem with one field: `target` is its JSON path in camelCase dot form."""

    target: str
    message: str

    def to_json(self) -> dict[str, str]:
        return {"target": self.target, "message": self.message}


class ApiError(ValueError):
    """A client error with an API error code and optional field details (a 4xx, never a 5xx)."""

    code: str = "BadRequest"

    def __init__(self, message: str, details: Sequence[FieldError] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.details: list[FieldError] = list(details)

    def __str__(self) -> str:
        if not self.details:
            return self.message
        listed = "; ".join(f"{d.target or 'body'}: {d.message}" for d in self.details)
        return f"{self.message} ({listed})"

    def to_envelope(self) -> dict[str, object]:
        """The error as the API's JSON envelope."""
        error: dict[str, object] = {"code": self.code, "message": self.message}
        if self.details:
            error["details"] = [detail.to_json() for detail in self.details]
        return {"error": error}


class SpecError(ApiError):
    """The platform spec (or the solution id in the path) is invalid."""

    code = "InvalidSpec"

"""Why a use case refused: one exception type the HTTP edge maps to an answer in one place
(`triggers.http.error_answer`).

`kind` says what kind of refusal it is (the edge picks the status code from it); `code`,
`message` and `details` are the API's error envelope. Invalid input found by the domain's own
parsers stays `outsystems.errors.ApiError` (always a 400), which the edge maps too.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from outsystems.errors import ApiError, FieldError

Kind = Literal["invalid", "not_found", "conflict", "unavailable"]


class ServiceError(Exception):
    """A refusal: nothing was started or changed."""

    def __init__(
        self,
        kind: Kind,
        code: str,
        message: str,
        details: Sequence[FieldError] = (),
        *,
        retry_after: int | None = None,
    ) -> None:
        super().__init__(message)
        self.kind: Kind = kind
        self.code = code
        self.message = message
        self.details = tuple(details)
        self.retry_after = retry_after

    @classmethod
    def invalid(cls, error: ApiError) -> ServiceError:
        """A 400 from a domain error (its code, message and field details)."""
        return cls("invalid", error.code, error.message, error.details)

    def to_envelope(self) -> dict[str, object]:
        """The API's error envelope (ARM's shape)."""
        error: dict[str, object] = {"code": self.code, "message": self.message}
        if self.details:
            error["details"] = [detail.to_json() for detail in self.details]
        return {"error": error}


def unknown_platform(solution_id: str) -> ServiceError:
    return ServiceError(
        "not_found", "PlatformNotFound", f"No platform {solution_id[:40]} is known."
    )


def arm_unavailable() -> ServiceError:
    """ARM did not answer a read the request needs: try again shortly."""
    return ServiceError(
        "unavailable",
        "ArmUnavailable",
        "Azure Resource Manager did not answer the checks of the spec; "
        "nothing was started. Try again shortly.",
        retry_after=30,
    )

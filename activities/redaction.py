"""`@redacting`: an activity's exceptions reach the history only with their secrets masked.

Applied at import time to every activity that touches ARM, so this module stays light: the
masking itself (`arm.secrets`, with the key derivation and the placeholders behind it) is
imported when an activity runs, not when the app is indexed (`docs/architecture.md`,
"Cold start").
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any, TypeVar, cast

Activity = TypeVar("Activity", bound=Callable[[Any], Any])


def redacting(activity: Activity) -> Activity:
    """An activity whose exceptions reach history only as `RedactedError` (see
    `arm.secrets.redacted_errors`). Put it below `@bp.activity_trigger`; the request names the
    platform in `solutionId` or `spec.solutionId`."""

    @functools.wraps(activity)
    def run(request: Any) -> Any:
        from arm.secrets import redacted_errors

        solution = None
        if isinstance(request, Mapping):
            solution = request.get("solutionId") or (request.get("spec") or {}).get("solutionId")
        with redacted_errors(str(solution) if solution else None):
            return activity(request)

    return cast(Activity, run)

"""The one place refusals become answers (`triggers.http.error_answer`): the status code of
each kind, the API's error envelope, `Retry-After` where the caller should try again."""

from __future__ import annotations

import json

import pytest

from outsystems.errors import ApiError, FieldError, SpecError
from services.errors import Kind, ServiceError, arm_unavailable, unknown_platform
from triggers.http import error_answer


@pytest.mark.parametrize(
    ("kind", "status"),
    [("invalid", 400), ("not_found", 404), ("conflict", 409), ("unavailable", 503)],
)
def test_each_kind_of_refusal_has_its_status_code(kind: Kind, status: int) -> None:
    answer = error_answer(ServiceError(kind, "Code", "what happened"))
    assert answer.status_code == status
    assert answer.mimetype == "application/json"
    assert json.loads(answer.get_body()) == {"error": {"code": "Code", "message": "what happened"}}
    assert "Retry-After" not in answer.headers


def test_field_details_and_retry_after_are_kept() -> None:
    detail = FieldError("environments", "must be a comma-separated list")
    answer = error_answer(ServiceError("invalid", "Bad", "no", [detail]))
    assert json.loads(answer.get_body())["error"]["details"] == [
        {"target": "environments", "message": "must be a comma-separated list"}
    ]
    unavailable = error_answer(arm_unavailable())
    assert (unavailable.status_code, unavailable.headers["Retry-After"]) == (503, "30")
    assert json.loads(unavailable.get_body())["error"]["code"] == "ArmUnavailable"


def test_domain_errors_are_400s_with_their_own_code() -> None:
    answer = error_answer(SpecError("The platform spec is invalid.", [FieldError("location", "x")]))
    assert answer.status_code == 400
    assert json.loads(answer.get_body())["error"]["code"] == "InvalidSpec"
    assert error_answer(ApiError("plain")).status_code == 400
    # A domain error carried by a refusal keeps its code and details.
    carried = error_answer(ServiceError.invalid(SpecError("bad", [FieldError("a", "b")])))
    assert json.loads(carried.get_body()) == json.loads(
        error_answer(SpecError("bad", [FieldError("a", "b")])).get_body()
    )


def test_an_unknown_platform_is_a_404_naming_it_cut_short() -> None:
    answer = error_answer(unknown_platform("x" * 100))
    assert answer.status_code == 404
    assert json.loads(answer.get_body())["error"] == {
        "code": "PlatformNotFound",
        "message": f"No platform {'x' * 40} is known.",
    }

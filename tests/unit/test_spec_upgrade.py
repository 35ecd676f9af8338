"""The spec's `upgrade` block (issue 17): the order after LifeTime and the soak time."""

from __future__ import annotations

from typing import Any

import pytest

from outsystems.errors import SpecError
from outsystems.spec import PlatformSpec, parse_spec, spec_json_schema

SUB = "11111111-2222-3333-4444-555555555555"


def parse(upgrade: Any) -> PlatformSpec:
    body: dict[str, Any] = {"location": "westeurope"}
    if upgrade is not None:
        body["upgrade"] = upgrade
    return parse_spec("acme", body, default_subscription_id=SUB)


def problems(upgrade: Any) -> dict[str, str]:
    with pytest.raises(SpecError) as raised:
        parse(upgrade)
    return {detail.target: detail.message for detail in raised.value.details}


def test_without_the_block_dev_test_prod_and_no_soak() -> None:
    spec = parse(None)
    assert spec.upgrade_settings.order == ("dev", "test", "prod")
    assert spec.upgrade_settings.soak_seconds is None
    # The normalized spec of a platform that never said anything keeps no `upgrade` key.
    assert "upgrade" not in spec.to_json_dict()


def test_the_order_and_soak_the_user_gives_are_kept() -> None:
    spec = parse({"order": ["test", "dev", "prod"], "soakMinutes": 90})
    assert spec.upgrade_settings.order == ("test", "dev", "prod")
    assert spec.upgrade_settings.soak_seconds == 5400.0
    assert spec.to_json_dict()["upgrade"] == {"order": ["test", "dev", "prod"], "soakMinutes": 90}
    again = PlatformSpec.from_json_dict(spec.to_json_dict())
    assert again.upgrade_settings == spec.upgrade_settings


@pytest.mark.parametrize(
    ("order", "words"),
    [
        (["life", "dev", "test", "prod"], "LifeTime is always upgraded first"),
        (["dev", "dev", "test", "prod"], "lists dev more than once"),
        (["dev", "prod"], "missing: test"),
        (["dev", "test", "prod", "qa"], "lists qa"),
        ([], "missing: dev, test, prod"),
    ],
)
def test_an_order_that_is_not_dev_test_prod_once_each_is_refused(
    order: list[str], words: str
) -> None:
    found = problems({"order": order})
    assert list(found) == ["upgrade.order"]
    assert words in found["upgrade.order"]


def test_a_bad_soak_and_unknown_fields_are_named() -> None:
    found = problems({"soakMinutes": -5, "approve": True})
    assert set(found) == {"upgrade.soakMinutes", "upgrade.approve"}
    assert "upgrade.soakMinutes" in problems({"soakMinutes": 30 * 24 * 60 + 1})
    assert "upgrade.soakMinutes" in problems({"soakMinutes": "60"})
    assert "upgrade.soakMinutes" in problems({"soakMinutes": True})
    assert list(problems(["dev"])) == ["upgrade"]


def test_the_schema_shows_the_block() -> None:
    schema = spec_json_schema()
    assert "upgrade" in schema["properties"]

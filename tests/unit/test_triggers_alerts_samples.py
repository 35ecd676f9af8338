"""Microsoft's published Azure Monitor payloads, as a table: source | expected outcome.

The samples live in `tests/data/alerts/` (their README names repository, path and commit of
each). They go through the webhook as the host calls it, against the fake ARM and Durable
client of `tests/support/alert_webhook.py`, in which the farm's scale set (`VMSS`) is managed.
Their times are years old, so each is sent with `firedDateTime` (and `resolvedDateTime`, where
the sample has one) set to one minute ago; `ALERT_MAX_AGE_MINUTES` is tested in
`test_triggers_alerts`.

Rows marked "retargeted" point the sample's `alertTargetIDs` at the farm's scale set, to see
what each alert type would ask of a scale set the app manages. Rows built from
`alert-contexts.json` put a section's `alertContext` into the envelope of the common schema's
sample, with the `signalType` and `monitoringService` the section's title names.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.support.alert_samples import DATA, TABLE, fresh, load
from tests.support.alert_webhook import VMSS, Arm, answer, arm, post
from tests.unit.durable_fakes import FakeDurableClient

__all__ = ["arm"]  # the fixture


@pytest.mark.parametrize(
    ("source", "body", "status", "words"), TABLE, ids=[row[0] for row in TABLE]
)
def test_microsofts_samples(arm: Arm, source: str, body: Any, status: int, words: str) -> None:
    arm.managed(VMSS)
    client = FakeDurableClient()
    response = post(fresh(body), client)
    text = json.dumps(answer(response))
    assert (response.status_code, words in text) == (status, True), f"{source}: {text}"
    if status != 202:
        assert client.signalled("add") == []


def test_every_sample_file_is_in_the_table() -> None:
    files = {
        str(path.relative_to(DATA))
        for path in DATA.rglob("*.json")
        if path.name != "alert-contexts.json"
    }
    sources = {row[0].split(" ")[0] for row in TABLE}
    assert files <= sources
    sections = {row[0].split(" ")[1] for row in TABLE if row[0].startswith("alert-contexts")}
    assert sections == set(load("alert-contexts.json"))

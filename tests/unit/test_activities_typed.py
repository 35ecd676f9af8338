"""Typed activities (`activities/typed.py`) and the contracts both sides share.

The worker finds functions by name and hands an activity its input through the binding its
trigger names (azure-functions 1.26, `azure/functions/decorators/function_app.py`:
`Function.get_function_name`, `get_bindings`); the Durable extension calls activities and
orchestrations by those names. So each contract of `outsystems.messages` must name a registered
function of its kind, whose trigger binding is the parameter the worker passes.
"""

from __future__ import annotations

import inspect
from typing import Any

import pytest

from activities.typed import serves
from outsystems.messages import ACTIVITIES, ORCHESTRATIONS, PLAN_ENVIRONMENT, CloudEvent, Contract
from tests.support.functions import indexed, user_function


def bindings(name: str) -> list[Any]:
    return list(indexed(name).get_bindings())


@pytest.mark.parametrize("contract", ACTIVITIES, ids=lambda c: c.name)
def test_every_activity_contract_names_a_registered_activity(contract: Contract[Any, Any]) -> None:
    trigger = bindings(contract.name)[0]
    assert trigger.type == "activityTrigger"
    function = user_function(contract.name)
    # The worker passes the input as the parameter the trigger binding names.
    assert list(inspect.signature(function).parameters) == [trigger.name]


@pytest.mark.parametrize("contract", ORCHESTRATIONS, ids=lambda c: c.name)
def test_every_orchestration_contract_names_a_registered_orchestration(
    contract: Contract[Any, Any],
) -> None:
    assert bindings(contract.name)[0].type == "orchestrationTrigger"


def test_a_body_must_serve_the_contract_of_its_name() -> None:
    def publish_event(request: CloudEvent) -> str:
        return request.id

    with pytest.raises(ValueError, match="does not serve the contract of plan_environment"):
        serves(PLAN_ENVIRONMENT)(publish_event)  # type: ignore[arg-type]


def test_a_served_activity_reads_json_and_answers_json() -> None:
    from outsystems.messages import PUBLISH_EVENT

    seen: list[CloudEvent] = []

    def publish_event(request: CloudEvent) -> str:
        seen.append(request)
        return request.id

    run = serves(PUBLISH_EVENT)(publish_event)
    assert run({"id": "e-1", "type": "t", "subject": "acme"}) == "e-1"
    assert seen == [CloudEvent({"id": "e-1", "type": "t", "subject": "acme"})]
    assert run.__name__ == "publish_event"

"""`arm.operations.check` against ARM's published answers to a poll.

What the walk and the batches start after a running operation hinges on one word: `check`
answering `Succeeded` (walk version 8's `check_operations_then_start`, a batch's extra poll of
its own operations). The oracle is Microsoft's article, not our simulator:
MicrosoftDocs/azure-docs, articles/azure-resource-manager/management/async-operations.md
("Track asynchronous Azure operations", ms.date 01/31/2022, commit
12f43d998362a581d1bc446b336488952808ca8a):

- "When an operation has completed, one of following three values is returned: Succeeded,
  Failed, Canceled. All other values indicate the operation is still running." Its examples
  poll `Azure-AsyncOperation` and read `{"status": "InProgress", ...}`, `{"status": "Running"}`,
  then `{"status": "Succeeded"}`; "The error object is returned when the status is Failed or
  Canceled."
- A resource's own `provisioningState`: "you may receive **Accepted** when the request is
  received and running"; "If no value is returned for `provisioningState`, the operation has
  finished and succeeded."
- `Location`: "If the request is still running, you receive a status code 202. If the request
  has completed, your receive a status code 200."

The responses below are those bodies and codes, served at the wire (the `Sender` the pipeline
gives `check`); nothing of ours is mocked.
"""

from __future__ import annotations

import json
from typing import Any, cast

import pytest
from azure.core.rest import HttpRequest

from arm.operations import Sender, check
from outsystems.messages import Operation, PollMode

ENDPOINT = "https://management.azure.com"
VM = "/subscriptions/s/resourceGroups/g/providers/Microsoft.Compute/virtualMachines/vm"
#: As the article's "Start virtual machine (202 with Azure-AsyncOperation)" example.
OPERATION_URL = (
    f"{ENDPOINT}/subscriptions/s/providers/Microsoft.Compute/locations/westeurope/operations/"
    "op-1?api-version=2019-12-01"
)


class Answer:
    """An HTTP answer as azure-core's `HttpResponse` exposes what `check` reads."""

    def __init__(self, status_code: int, body: dict[str, Any] | None) -> None:
        self.status_code = status_code
        self.headers: dict[str, str] = {"Content-Type": "application/json"}
        self._text = "" if body is None else json.dumps(body)

    def text(self) -> str:
        return self._text


class Arm:
    """Answers every request with one published answer; records what was asked."""

    def __init__(self, answer: Answer) -> None:
        self.answer = answer
        self.asked: list[tuple[str, str]] = []

    def send_request(self, request: HttpRequest, **kwargs: Any) -> Answer:
        self.asked.append((request.method, request.url))
        return self.answer


def polled(mode: PollMode, answer: Answer) -> Operation:
    started = Operation(
        VM,
        "PUT",
        "InProgress",
        "2024-07-01",
        poll_mode=mode,
        poll_url=None if mode == "resource" else OPERATION_URL,
    )
    return check(cast(Sender, Arm(answer)), started, ENDPOINT)


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"startTime": "2017-01-06T18:58:24.7596323+00:00", "status": "InProgress"}, "InProgress"),
        ({"status": "Running"}, "InProgress"),
        ({"status": "Accepted"}, "InProgress"),  # "{resource provider values}"
        ({"status": "Succeeded"}, "Succeeded"),
        ({"status": "Failed", "error": {"code": "Conflict", "message": "m"}}, "Failed"),
        ({"status": "Canceled", "error": {"code": "Canceled", "message": "m"}}, "Canceled"),
    ],
)
def test_an_azure_async_operation_is_done_only_on_the_three_published_states(
    body: dict[str, Any], status: str
) -> None:
    operation = polled("async-operation", Answer(200, body))
    assert operation.status == status
    if status in {"Failed", "Canceled"}:
        assert operation.error is not None
        assert operation.error.code == body["error"]["code"]


@pytest.mark.parametrize(
    ("properties", "status"),
    [
        ({"provisioningState": "Accepted"}, "InProgress"),
        ({"provisioningState": "Creating"}, "InProgress"),
        ({"provisioningState": "Succeeded"}, "Succeeded"),
        ({}, "Succeeded"),  # no provisioningState: finished and succeeded
        ({"provisioningState": "Failed"}, "Failed"),
    ],
)
def test_a_resource_polled_by_reading_it_is_done_per_its_provisioning_state(
    properties: dict[str, Any], status: str
) -> None:
    assert polled("resource", Answer(200, {"properties": properties})).status == status


@pytest.mark.parametrize(("code", "status"), [(202, "InProgress"), (200, "Succeeded")])
def test_a_location_poll_is_done_when_it_stops_answering_202(code: int, status: str) -> None:
    assert polled("location", Answer(code, None)).status == status

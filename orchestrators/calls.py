"""Typed calls from orchestrations: activities and sub-orchestrations take and answer messages.

An orchestration names what it calls by its contract (`outsystems.messages`), hands it a
message and gets a message back; the JSON stays inside the contract's readers. `orchestration`
turns a generator taking `(context, request)` and returning a message into the function the
Durable SDK registers. `wait_for_operation` is the one loop that polls an ARM operation with
durable timers until it ends or passes its deadline (a single resource's operation: the
scaler's capacity change, the teardown's resource group), when it can have changed
(`outsystems.polling`: ARM's `Retry-After`, else a backoff). `poll` is one step (a timer, then
`check_operations`) for all the running operations at once: the upgrade's waits give it the
wait their own backoff and `Retry-After` chose (`after`); only the walks of instances started
before walk version 2 take its default, the fixed shortest interval. All deterministic: time
comes from the context.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Sequence
from datetime import datetime, timedelta
from typing import Any, Final, TypeVar

import azure.durable_functions as df

from orchestrators import history_times
from outsystems.messages import (
    CHECK_OPERATIONS,
    PUBLISH_EVENT,
    ArmError,
    CheckRequest,
    CloudEvent,
    Contract,
    Operation,
    Tuning,
    to_wire,
)
from outsystems.polling import poll_interval, poll_wait

# Every orchestration comes through here: from its first episode, the SDK reads the history's
# timestamps with the standard library (`orchestrators.history_times`).
history_times.install()

Request = TypeVar("Request")
Answer = TypeVar("Answer")
#: What an orchestration's generator yields, is sent and returns (the SDK's tasks and results).
Steps = Generator[Any, Any, Answer]


#: How many times Durable runs an activity before its failure reaches the orchestration.
ACTIVITY_ATTEMPTS: Final = 5


def retry_options(tuning: Tuning) -> df.RetryOptions:
    """Retries of activities that failed transiently (after the ARM pipeline's own retries)."""
    return df.RetryOptions(
        first_retry_interval_in_milliseconds=tuning.retry_milliseconds,
        max_number_of_attempts=ACTIVITY_ATTEMPTS,
    )


def first_line(error: Exception, limit: int = 500) -> str:
    """What an activity that failed all its retries says (the SDK surfaces it as a plain
    Exception whose message ends with the remote stack)."""
    return str(error).split("\n", 1)[0][:limit]


class Calls:
    """One orchestration's typed calls, all with the same retry options."""

    def __init__(self, context: df.DurableOrchestrationContext, tuning: Tuning) -> None:
        self.context = context
        self.tuning = tuning
        self.retry = retry_options(tuning)

    def task(self, contract: Contract[Request, Any], request: Request) -> Any:
        """The SDK task of one call (to yield in a fan-out; read its result with the contract)."""
        return self.context.call_activity_with_retry(contract.name, self.retry, to_wire(request))

    def one(self, contract: Contract[Request, Answer], request: Request) -> Steps[Answer]:
        """Call one activity and read its answer (`yield from`)."""
        answer = yield self.task(contract, request)
        return contract.read_answer(answer)

    def all(
        self, contract: Contract[Request, Answer], requests: Sequence[Request]
    ) -> Steps[list[Answer]]:
        """Call one activity per request in parallel; the answers in the requests' order."""
        answers = yield self.context.task_all([self.task(contract, r) for r in requests])
        return [contract.read_answer(answer) for answer in answers]

    def sub_task(self, contract: Contract[Request, Any], request: Request, instance_id: str) -> Any:
        """The SDK task of a sub-orchestration with a deterministic instance id."""
        return self.context.call_sub_orchestrator(contract.name, to_wire(request), instance_id)

    def event(self, event_type: str, subject: str, data: dict[str, Any]) -> Any:
        """The task publishing one CloudEvent (deterministic id and time)."""
        from outsystems.events import cloud_event

        event = cloud_event(
            event_type,
            subject,
            data,
            id=str(self.context.new_uuid()),
            time=self.context.current_utc_datetime,
        )
        return self.task(PUBLISH_EVENT, CloudEvent(event))

    def poll(
        self,
        subscription_id: str,
        solution_id: str | None,
        operations: Sequence[Operation],
        after: timedelta | None = None,
    ) -> Steps[list[Operation]]:
        """Wait `after` (a durable timer; None: the shortest interval, `Tuning.poll`), then
        check running operations once."""
        context = self.context
        wait = self.tuning.poll if after is None else after
        yield context.create_timer(context.current_utc_datetime + wait)
        request = CheckRequest(subscription_id, solution_id, tuple(operations))
        return (yield from self.one(CHECK_OPERATIONS, request))

    def wait_for_operation(
        self,
        operation: Operation,
        *,
        subscription_id: str,
        solution_id: str | None,
        deadline: datetime,
        timed_out: Callable[[], str],
    ) -> Steps[Operation]:
        """Poll one operation after durable timers until it ends; past `deadline`, the
        operation as failed with `OperationTimedOut` (`timed_out()` says what did not end).

        Each poll comes when the operation can have changed, as the walks poll theirs: after
        ARM's `Retry-After` on its last answer (the begin answer's for the first poll), else
        after the backoff's next interval from `Tuning.poll_seconds`. Histories written when
        every poll came after `Tuning.poll` replay: the steps are the same (a timer, then
        `check_operations`), only the timers' times differ.
        """
        context = self.context
        shortest = self.tuning.poll_seconds
        interval: float | None = None
        while not operation.done:
            if context.current_utc_datetime > deadline:
                error = ArmError("OperationTimedOut", timed_out(), operation.resource_id)
                return Operation(
                    operation.resource_id,
                    operation.method,
                    "Failed",
                    operation.api_version,
                    error=error,
                )
            interval = poll_interval(shortest, interval)
            wait = timedelta(seconds=poll_wait(shortest, interval, operation.retry_after))
            (operation,) = yield from self.poll(subscription_id, solution_id, [operation], wait)
        return operation


Body = Callable[[df.DurableOrchestrationContext, Request], Steps[Any]]


def orchestration(
    contract: Contract[Request, Any],
) -> Callable[[Body[Request]], Callable[[df.DurableOrchestrationContext], Steps[Any]]]:
    """The orchestrator function of `body(context, request)`: it reads the input with the
    contract and writes the message it returns (None: nothing, e.g. after `continue_as_new`).

    The function keeps the body's name (Durable registers it under that name, which must be
    the contract's) and takes only `context`, the binding the SDK's trigger names.
    """

    def decorate(body: Body[Request]) -> Callable[[df.DurableOrchestrationContext], Steps[Any]]:
        if body.__name__ != contract.name:
            raise ValueError(f"{body.__name__} does not serve the contract of {contract.name}")

        def run(context: df.DurableOrchestrationContext) -> Steps[Any]:
            request = contract.read_request(context.get_input())
            result = yield from body(context, request)
            return to_wire(result)

        run.__name__ = run.__qualname__ = body.__name__
        run.__doc__ = body.__doc__
        run.__module__ = body.__module__
        return run

    return decorate

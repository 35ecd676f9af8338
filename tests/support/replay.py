"""Run an orchestrator function by history replay, as the Durable extension does, in-process.

The Durable Python SDK is a replay engine: the extension hands the orchestrator function the
instance's whole history (a JSON document), the SDK replays it through the generator and
answers with the actions the function asks for next (`isDone`, `actions`, `output`,
`customStatus`). The SDK's own tests build such histories by hand and check the actions
(Azure/azure-functions-durable-python, `tests/test_utils/ContextBuilder.py` and
`tests/orchestrator/`); this module does the same, with a history builder of our own, and adds a
small driver that plays the extension's part: it turns each new action into its history events
(`TaskScheduled`, `TimerCreated`, ...), asks the test's fakes for the outcome, and hands the
function one completion per episode until it is done.

What the history must look like, and how the SDK numbers its tasks, is read from the SDK itself
(azure-functions-durable 1.7, the version `requirements.txt` pins):
`azure/durable_functions/models/TaskOrchestrationExecutor.py` (completion events and the keys
naming their task: `TaskScheduledId`, `TimerId`, an entity response's `Name`),
`DurableOrchestrationContext.py` (`_add_to_open_tasks`: every atomic task but an external-event
wait takes the next sequence number when it is first yielded; `current_utc_datetime` is the
newest `OrchestratorStarted` timestamp), `Task.py` (`RetryAbleTask`: after a failed attempt the
SDK waits for one timer, then takes a new number for the next attempt, and after the last
attempt one more timer fires before the failure surfaces), `entities/ResponseMessage.py` (an
entity call answers as an `EventRaised` named by the request id of its `EventSent`) and
`models/history/HistoryEventType.py` (the event type numbers).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Generator, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import azure.durable_functions as df
from azure.durable_functions.models.actions.ActionType import ActionType
from azure.durable_functions.models.history.HistoryEventType import HistoryEventType

# History event and action types: the SDK's own enums (the published wire values), not copies.
EXECUTION_STARTED = HistoryEventType.EXECUTION_STARTED.value
TASK_SCHEDULED = HistoryEventType.TASK_SCHEDULED.value
TASK_COMPLETED = HistoryEventType.TASK_COMPLETED.value
TASK_FAILED = HistoryEventType.TASK_FAILED.value
SUB_ORCHESTRATION_CREATED = HistoryEventType.SUB_ORCHESTRATION_INSTANCE_CREATED.value
SUB_ORCHESTRATION_COMPLETED = HistoryEventType.SUB_ORCHESTRATION_INSTANCE_COMPLETED.value
SUB_ORCHESTRATION_FAILED = HistoryEventType.SUB_ORCHESTRATION_INSTANCE_FAILED.value
TIMER_CREATED = HistoryEventType.TIMER_CREATED.value
TIMER_FIRED = HistoryEventType.TIMER_FIRED.value
ORCHESTRATOR_STARTED = HistoryEventType.ORCHESTRATOR_STARTED.value
ORCHESTRATOR_COMPLETED = HistoryEventType.ORCHESTRATOR_COMPLETED.value
EVENT_SENT = HistoryEventType.EVENT_SENT.value
EVENT_RAISED = HistoryEventType.EVENT_RAISED.value

CALL_ACTIVITY = ActionType.CALL_ACTIVITY.value
CALL_ACTIVITY_WITH_RETRY = ActionType.CALL_ACTIVITY_WITH_RETRY.value
CALL_SUB_ORCHESTRATOR = ActionType.CALL_SUB_ORCHESTRATOR.value
CALL_SUB_ORCHESTRATOR_WITH_RETRY = ActionType.CALL_SUB_ORCHESTRATOR_WITH_RETRY.value
CONTINUE_AS_NEW = ActionType.CONTINUE_AS_NEW.value
CREATE_TIMER = ActionType.CREATE_TIMER.value
WAIT_FOR_EXTERNAL_EVENT = ActionType.WAIT_FOR_EXTERNAL_EVENT.value
CALL_ENTITY = ActionType.CALL_ENTITY.value
SIGNAL_ENTITY = ActionType.SIGNAL_ENTITY.value
WHEN_ANY = ActionType.WHEN_ANY.value
WHEN_ALL = ActionType.WHEN_ALL.value

START = datetime(2026, 11, 20, 9, 14, tzinfo=UTC)
_STAMP = "%Y-%m-%dT%H:%M:%S.%fZ"  # azure/durable_functions/constants.py, DATETIME_STRING_FORMAT
_OUT_OF_PROC = "$OutOfProcData$:"

Orchestrator = Callable[[Any], Generator[Any, Any, Any]]
Responder = Callable[[Any], Any]


def stamp(moment: datetime) -> str:
    """A history timestamp, in the SDK's format."""
    return moment.astimezone(UTC).strftime(_STAMP)


class History:
    """The history of one orchestration instance, built event by event (our own builder)."""

    def __init__(self, name: str, input_: Any, instance_id: str, start: datetime) -> None:
        self.instance_id = instance_id
        self.input = _dumps(input_)
        self.events: list[dict[str, Any]] = []
        self.started(start)
        self._add(EXECUTION_STARTED, start, Name=name, Input=self.input, Version="")

    def _add(self, event_type: int, at: datetime, event_id: int = -1, **fields: Any) -> None:
        self.events.append(
            {
                "EventType": event_type,
                "EventId": event_id,
                "IsPlayed": False,
                "Timestamp": stamp(at),
                **fields,
            }
        )

    def started(self, at: datetime) -> None:
        """An episode begins: the orchestration's clock reads `at`."""
        self._add(ORCHESTRATOR_STARTED, at)

    def completed(self, at: datetime) -> None:
        self._add(ORCHESTRATOR_COMPLETED, at)

    def task_scheduled(self, at: datetime, event_id: int, name: str, input_: str | None) -> None:
        self._add(TASK_SCHEDULED, at, event_id, Name=name, Input=input_)

    def task_completed(self, at: datetime, task_id: int, result: Any) -> None:
        self._add(TASK_COMPLETED, at, TaskScheduledId=task_id, Result=_dumps(result))

    def task_failed(self, at: datetime, task_id: int, reason: str, details: str) -> None:
        self._add(TASK_FAILED, at, TaskScheduledId=task_id, Reason=reason, Details=details)

    def timer_created(self, at: datetime, event_id: int, fire_at: datetime) -> None:
        self._add(TIMER_CREATED, at, event_id, FireAt=stamp(fire_at))

    def timer_fired(self, at: datetime, timer_id: int, fire_at: datetime) -> None:
        self._add(TIMER_FIRED, at, TimerId=timer_id, FireAt=stamp(fire_at))

    def sub_orchestration_created(
        self, at: datetime, event_id: int, name: str, instance_id: str, input_: str | None
    ) -> None:
        self._add(
            SUB_ORCHESTRATION_CREATED, at, event_id, Name=name, InstanceId=instance_id, Input=input_
        )

    def sub_orchestration_completed(self, at: datetime, task_id: int, result: Any) -> None:
        self._add(SUB_ORCHESTRATION_COMPLETED, at, TaskScheduledId=task_id, Result=_dumps(result))

    def sub_orchestration_failed(self, at: datetime, task_id: int, reason: str) -> None:
        self._add(SUB_ORCHESTRATION_FAILED, at, TaskScheduledId=task_id, Reason=reason, Details="")

    def event_sent(
        self, at: datetime, event_id: int, instance_id: str, operation: str, request_id: str
    ) -> None:
        body = {"id": request_id, "op": operation}
        self._add(EVENT_SENT, at, event_id, Name="op", InstanceId=instance_id, Input=_dumps(body))

    def event_raised(self, at: datetime, name: str, input_: Any) -> None:
        self._add(EVENT_RAISED, at, Name=name, Input=_dumps(input_))

    def context(self) -> str:
        """The orchestration trigger's payload (replay schema V2, as the extension sends)."""
        return json.dumps(
            {
                "history": self.events,
                "input": self.input,
                "instanceId": self.instance_id,
                "isReplaying": False,
                "parentInstanceId": None,
                "upperSchemaVersion": 1,
            }
        )


def run_episode(function: Orchestrator, history: History) -> dict[str, Any]:
    """One invocation of the orchestrator: the SDK's state document (`isDone`, `actions`, ...).

    A function that raised comes back with its `error` (the SDK raises an exception carrying
    the state after `$OutOfProcData$:`, azure/durable_functions/models/
    TaskOrchestrationExecutor.py, `get_orchestrator_state_str`).
    """
    handle = df.Orchestrator(function)
    context = df.DurableOrchestrationContext.from_json(history.context())
    try:
        text = handle.handle(context)
    except Exception as error:
        message = str(error)
        if _OUT_OF_PROC not in message:
            raise
        text = message.split(_OUT_OF_PROC, 1)[1]
    state: dict[str, Any] = json.loads(text)
    return state


def _dumps(value: Any) -> str | None:
    return None if value is None else json.dumps(value)


def _loads(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def _atomic(actions: list[Any]) -> Iterator[dict[str, Any]]:
    """Every action, compound ones walked depth first (the SDK numbers tasks in this order)."""
    for action in actions:
        if isinstance(action, list):
            yield from _atomic(action)
        elif action.get("actionType") in (WHEN_ANY, WHEN_ALL):
            yield from _atomic(action["compoundActions"])
        else:
            yield action


@dataclass
class Call:
    """One thing the orchestration asked for, with its decoded input and the custom status it
    had set when it asked."""

    kind: str  # activity | timer | entity | signal | orchestration | wait | continue
    name: str
    input: Any
    at: datetime
    status: Any
    attempt: int = 1


@dataclass
class Outcome:
    """How a run ended, and everything it asked for on the way."""

    output: Any
    error: str | None
    calls: list[Call]
    statuses: list[Any]
    continued_with: Any
    now: datetime
    #: Episodes run (all generations, with `follow_continue`), and the most history events
    #: any one episode replayed.
    episodes: int = 0
    longest_history: int = 0
    generations: int = 1

    def named(self, name: str) -> list[Call]:
        return [call for call in self.calls if call.name == name]

    def inputs(self, name: str) -> list[Any]:
        return [call.input for call in self.named(name)]

    def kinds(self) -> list[str]:
        return [call.kind for call in self.calls]

    @property
    def status(self) -> Any:
        """The last custom status."""
        return self.statuses[-1] if self.statuses else None


@dataclass
class _Pending:
    """A completion the driver will hand the orchestration once its time comes."""

    order: int
    ready_at: datetime
    deliver: Callable[[History, datetime], None]
    # A retryable activity whose attempt failed: the SDK then waits for a retry timer.
    retry: _Retry | None = None


@dataclass
class _Retry:
    name: str
    input: str | None
    attempts: int
    max_attempts: int
    interval: timedelta


@dataclass
class Replay:
    """Drives one orchestration to its end against fake activities, entities and children.

    `activities` maps an activity name to a function of its (decoded) input returning its
    (JSON-serialisable) output, or raising to fail it. `entity` answers entity calls
    `(entity instance id, operation, input)`. `orchestrators` are the functions of the
    sub-orchestrations it may call (run to their end by a nested driver, with the same fakes).
    `events` are raised as soon as the orchestration waits for them.
    """

    function: Orchestrator
    input: Any
    name: str = "orchestration"
    instance_id: str = "test-instance"
    start: datetime = START
    activities: Mapping[str, Responder] = field(default_factory=dict)
    entity: Callable[[str, str, Any], Any] | None = None
    orchestrators: Mapping[str, Orchestrator] = field(default_factory=dict)
    events: list[tuple[str, Any]] = field(default_factory=list)
    max_episodes: int = 5000
    #: Run the next generation when the orchestration continues as new (as the extension
    #: does), instead of ending with `continued_with`. Sub-orchestrations always do: their
    #: parent sees only the last generation's output.
    follow_continue: bool = False
    #: Every call of this run and of its sub-orchestrations, in the order they were asked for.
    calls: list[Call] = field(default_factory=list)
    children: dict[str, Outcome] = field(default_factory=dict)

    def run(self) -> Outcome:
        outcome = self._generation(self.input, self.start)
        episodes, longest, generations = outcome.episodes, outcome.longest_history, 1
        while self.follow_continue and outcome.continued_with is not None:
            outcome = self._generation(outcome.continued_with, outcome.now)
            episodes += outcome.episodes
            longest = max(longest, outcome.longest_history)
            generations += 1
        outcome.episodes, outcome.longest_history = episodes, longest
        outcome.generations = generations
        return outcome

    def _generation(self, input_: Any, start: datetime) -> Outcome:
        now = start
        history = History(self.name, input_, self.instance_id, now)
        episodes = longest = 0
        sequence = 0
        processed = 0
        pending: list[_Pending] = []
        waits: dict[str, int] = {}
        statuses: list[Any] = []
        order = 0
        for _ in range(self.max_episodes):
            episodes += 1
            longest = max(longest, len(history.events))
            state = run_episode(self.function, history)
            status = state.get("customStatus")
            statuses.append(status)
            continued = None
            # Replay schema V2: one cumulative list, to which each episode appends.
            actions = list(_atomic(state.get("actions") or []))
            new, processed = actions[processed:], len(actions)
            for action in new:
                kind = action["actionType"]
                if kind == CONTINUE_AS_NEW:
                    continued = _loads(action.get("input"))
                    self.calls.append(Call("continue", "continue_as_new", continued, now, status))
                    continue
                if kind == WAIT_FOR_EXTERNAL_EVENT:
                    name = action["externalEventName"]
                    self.calls.append(Call("wait", name, None, now, status))
                    waits[name] = waits.get(name, 0) + 1
                    continue
                event_id = sequence
                sequence += 1
                if kind == SIGNAL_ENTITY:
                    # Fire and forget: an EventSent in the history, no completion
                    # (`DurableOrchestrationContext._record_fire_and_forget_action`).
                    self._signal(action, event_id, history, now, status)
                    continue
                order += 1
                pending.append(self._schedule(action, event_id, order, history, now, status))
            if state.get("isDone") or state.get("error") or continued is not None:
                return Outcome(
                    output=state.get("output"),
                    error=state.get("error"),
                    calls=self.calls,
                    statuses=statuses,
                    continued_with=continued,
                    now=now,
                    episodes=episodes,
                    longest_history=longest,
                )
            history.completed(now)
            # An event raised for a wait that is open is the next completion.
            raised = next((i for i, (name, _) in enumerate(self.events) if waits.get(name)), None)
            if raised is not None:
                name, value = self.events.pop(raised)
                waits[name] -= 1
                history.started(now)
                history.event_raised(now, name, value)
                continue
            if not pending:
                raise AssertionError(f"the orchestration waits for nothing it will get: {state}")
            pending.sort(key=lambda p: (p.ready_at, p.order))
            due = pending.pop(0)
            now = max(now, due.ready_at)
            history.started(now)
            due.deliver(history, now)
            if due.retry is not None:
                # The SDK takes the retry timer's number as it reads the failure.
                timer_id = sequence
                sequence += 1
                fire_at = now + due.retry.interval
                history.timer_created(now, timer_id, fire_at)
                order += 1
                pending.append(_Pending(order, fire_at, _NextAttempt(due.retry, timer_id, fire_at)))
            elif isinstance(due.deliver, _NextAttempt):
                # The retry timer fired: the SDK numbers the next attempt now; after the last
                # attempt it surfaces the failure it kept instead.
                retry = due.deliver.retry
                if retry.attempts < retry.max_attempts:
                    event_id = sequence
                    sequence += 1
                    order += 1
                    pending.append(self._attempt(retry, event_id, order, history, now))
        raise AssertionError(f"no end after {self.max_episodes} episodes")

    # --- turning actions into history and outcomes -------------------------------------------

    def _signal(
        self, action: dict[str, Any], event_id: int, history: History, now: datetime, status: Any
    ) -> None:
        entity_id, operation = action["instanceId"], action["operation"]
        value = _loads(action.get("input"))
        self.calls.append(Call("signal", operation, value, now, status))
        history.event_sent(now, event_id, entity_id, operation, str(uuid.UUID(int=event_id + 1)))
        if self.entity is not None:
            self.entity(entity_id, operation, value)

    def _schedule(
        self,
        action: dict[str, Any],
        event_id: int,
        order: int,
        history: History,
        now: datetime,
        status: Any,
    ) -> _Pending:
        kind = action["actionType"]
        if kind in (CALL_ACTIVITY, CALL_ACTIVITY_WITH_RETRY):
            name = action["functionName"]
            options = action.get("retryOptions") or {}
            retry = _Retry(
                name,
                action.get("input"),
                attempts=0,
                max_attempts=int(options.get("maxNumberOfAttempts", 1)),
                interval=timedelta(
                    milliseconds=float(options.get("firstRetryIntervalInMilliseconds", 0))
                ),
            )
            return self._attempt(
                retry, event_id, order, history, now, status, retryable=kind != CALL_ACTIVITY
            )
        if kind == CREATE_TIMER:
            fire_at = datetime.strptime(action["fireAt"], _STAMP).replace(tzinfo=UTC)
            history.timer_created(now, event_id, fire_at)
            self.calls.append(Call("timer", "timer", fire_at, now, status))

            def fire(history: History, at: datetime) -> None:
                history.timer_fired(at, event_id, fire_at)

            return _Pending(order, fire_at, fire)
        if kind == CALL_ENTITY:
            entity_id, operation = action["instanceId"], action["operation"]
            value = _loads(action.get("input"))
            self.calls.append(Call("entity", operation, value, now, status))
            request_id = str(uuid.UUID(int=event_id + 1))
            history.event_sent(now, event_id, entity_id, operation, request_id)
            assert self.entity is not None, f"no entity fake for {operation}"
            result = self.entity(entity_id, operation, value)

            def respond(history: History, at: datetime) -> None:
                history.event_raised(at, request_id, {"result": json.dumps(result)})

            return _Pending(order, now, respond)
        if kind in (CALL_SUB_ORCHESTRATOR, CALL_SUB_ORCHESTRATOR_WITH_RETRY):
            name, child_id = action["functionName"], action["instanceId"]
            history.sub_orchestration_created(now, event_id, name, child_id, action.get("input"))
            value = _loads(action.get("input"))
            self.calls.append(Call("orchestration", name, value, now, status))
            child = Replay(
                self.orchestrators[name],
                value,
                name=name,
                instance_id=child_id,
                start=now,
                activities=self.activities,
                entity=self.entity,
                orchestrators=self.orchestrators,
                calls=self.calls,
                follow_continue=True,
            )
            outcome = child.run()
            self.children[child_id] = outcome

            def finish(history: History, at: datetime) -> None:
                if outcome.error is not None:
                    history.sub_orchestration_failed(at, event_id, outcome.error)
                else:
                    history.sub_orchestration_completed(at, event_id, outcome.output)

            return _Pending(order, outcome.now, finish)
        raise AssertionError(f"action type {kind} is not simulated: {action}")

    def _attempt(
        self,
        retry: _Retry,
        event_id: int,
        order: int,
        history: History,
        now: datetime,
        status: Any = None,
        *,
        retryable: bool = True,
    ) -> _Pending:
        """Run one attempt of an activity now; its completion is handed over next."""
        retry.attempts += 1
        history.task_scheduled(now, event_id, retry.name, retry.input)
        value = _loads(retry.input)
        self.calls.append(Call("activity", retry.name, value, now, status, retry.attempts))
        responder = self.activities.get(retry.name)
        if responder is None:
            raise AssertionError(f"no fake for the activity {retry.name}")
        try:
            result = responder(value)
        except Exception as error:
            reason = f"Activity function '{retry.name}' failed: {type(error).__name__}: {error}"

            def fail(history: History, at: datetime) -> None:
                history.task_failed(at, event_id, reason, "")

            return _Pending(order, now, fail, retry if retryable else None)

        def complete(history: History, at: datetime) -> None:
            history.task_completed(at, event_id, result)

        return _Pending(order, now, complete)


@dataclass
class _NextAttempt:
    """The retry timer of a failed attempt; once it fired, the next attempt (if any) runs."""

    retry: _Retry
    timer_id: int
    fire_at: datetime

    def __call__(self, history: History, at: datetime) -> None:
        history.timer_fired(at, self.timer_id, self.fire_at)

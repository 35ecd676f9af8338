"""Handing a scale request to a scale set's scaler, the same way from every use case.

`submit` stores the request in the scale set's entity (the durable client's `signal_entity`
returns once the host has stored the signal: from then on the request cannot be lost), then
`ensure_scaler` makes sure the scaler will decide it, from what the scaler's custom status says
it does (`orchestrators.scaler`):

- not running: start it (two callers may race to start it; the loser looks again);
- `working`: nothing to do, it looks at its requests again before it sleeps or ends;
- `idle`: asleep with nothing pending, until its lease ends; wake it (a `wake` event) for any
  request: nothing holds a request back, so none should wait for the lease to end;
- `cooldown`: asleep; wake it for a manual or timer request, which must not wait for the
  cooldown; an alert waits anyway, and the scaler notices it on its next look;
- `ending`/`done`: it will not look again; wait (briefly) for it to end and start a new one.

So an event is raised only on a scaler that waits for one (issue 14.11). What cannot be settled
in time is `deferred`: the request is stored, and the scaling timer starts the scaler of any
scale set with pending requests.

A scaler started here holds a lease (`ScalerRequest.lease_until`): it does not end before it,
and says it in its custom status. This process remembers the latest lease it read or gave per
scaler; until that lease is about to end (`LEASE_MARGIN`, for clocks that differ), an alert's
request is stored with its one signal and the scaler is looked at no more than once per
`IDLE_LOOK_SECONDS` (the requests stored meanwhile share that look): the request is stored
before the lease ends, so the scaler's last look sees it anyway, and the look only finds a
scaler that went `idle` early, to wake it (issue 16: an alert waited for the lease to end,
up to two seconds, when it came after a quiet moment). Urgent requests always look (they may
have to wake it). A scaler that stops early anyway (ARM unreachable, terminated) leaves
its requests pending for the scaling timer, as before.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime, timedelta

from appsettings import AppSettings
from orchestrators.scale_requests import scale_set_entity
from orchestrators.scaler import (
    COOLDOWN,
    DONE,
    ENDING,
    IDLE,
    WAKE_EVENT,
    scaler_instance_id,
    scaler_linger,
)
from outsystems.messages import (
    SCALE_FRONTENDS,
    AddScaleRequest,
    ScalerRequest,
    ScalerStatus,
    Tuning,
)
from outsystems.scaling import ScaleRequest, ScaleSource
from services.platform_state import RUNNING_STATES, json_value, runtime_status_of
from services.ports import DurableClient

log = logging.getLogger(__name__)


def scaler_tuning(settings: AppSettings) -> Tuning:
    """Polling pace, wait limits and cooldown scale of the scaler, from settings (kept in its
    input)."""
    return Tuning.from_settings(
        settings.operation_poll_seconds,
        settings.operation_timeout_scale,
        settings.scaling_cooldown_scale,
    )


async def submit(
    client: DurableClient,
    scale_set_id: str,
    solution_id: str | None,
    request: ScaleRequest,
    request_id: str,
    settings: AppSettings,
) -> None:
    """Store one request durably and make sure the scale set's scaler will decide it."""
    added = AddScaleRequest(request_id, request, scale_set_id, solution_id)
    await client.signal_entity(scale_set_entity(scale_set_id), "add", added.to_json())
    urgent = request.source is not ScaleSource.ALERT
    await ensure_scaler(client, scale_set_id, settings, urgent=urgent)


async def runtime_status(client: DurableClient, instance_id: str) -> str | None:
    """The runtime status of an orchestration instance; None when there is none."""
    return runtime_status_of(await client.get_status(instance_id))


#: How long a trigger waits for an ending scaler to end before it leaves it to the timer.
ENDING_WAIT_SECONDS = 2.0
_ENDING_POLL_SECONDS = 0.05
#: A lease is taken as ended this long before it does (clocks of hosts differ a little).
LEASE_MARGIN = timedelta(seconds=1)
#: While a lease holds, an alert looks at the scaler (to wake it when it is `idle`) only when
#: no look of this process began within this many seconds: a storm's cost stays one durable
#: call per alert, plus a few reads a second.
IDLE_LOOK_SECONDS = 0.25

#: When the latest look at each scaler began here (`time.monotonic()`), per instance id.
_looked: dict[str, float] = {}
#: When this process last raised a `wake` on each scaler (`time.monotonic()`).
_woken: dict[str, float] = {}

#: The latest lease this process read or gave, per scaler instance id.
_leases: dict[str, datetime] = {}


class _Read:
    """A status read of one scaler that triggers share: it begins after each of them stored
    its request, so its answer is as good as a read of their own."""

    def __init__(self) -> None:
        self.answer: asyncio.Future[tuple[str | None, str | None] | None] = (
            asyncio.get_running_loop().create_future()
        )
        self.started = False


#: The status read of each scaler that is under way or about to begin.
_reads: dict[str, _Read] = {}


def _leased(instance_id: str) -> bool:
    """Whether a scaler's lease known here still holds (with the margin)."""
    lease = _leases.get(instance_id)
    return lease is not None and datetime.now(UTC) + LEASE_MARGIN < lease


def _remember(instance_id: str, lease: datetime | None) -> None:
    known = _leases.get(instance_id)
    if lease is not None and (known is None or lease > known):
        _leases[instance_id] = lease


def _look_due(instance_id: str) -> bool:
    """Whether no look at this scaler began here within `IDLE_LOOK_SECONDS`."""
    looked = _looked.get(instance_id)
    return looked is None or time.monotonic() - looked >= IDLE_LOOK_SECONDS


def forget_leases() -> None:
    """Forget every lease known here (tests that end scalers behind the app's back)."""
    _leases.clear()
    _reads.clear()
    _looked.clear()
    _woken.clear()


async def _look(client: DurableClient, instance_id: str) -> tuple[str | None, str | None]:
    """`_scaler_state` by a read that begins after this call, shared with the triggers that
    call meanwhile: a burst of concurrent requests makes one read at a time, not one each."""
    read = _reads.get(instance_id)
    while read is not None and read.started:
        # Under way, so begun before this trigger's request was stored: wait for the next.
        await asyncio.wait([read.answer])
        read = _reads.get(instance_id)
    if read is not None:
        shared = await asyncio.shield(read.answer)
        # None: the read failed or was given up; look alone.
        return shared if shared is not None else await _scaler_state(client, instance_id)
    read = _reads[instance_id] = _Read()
    answer: tuple[str | None, str | None] | None = None
    # Whatever happens (a failed read, this trigger given up at its deadline, even before the
    # read began), the triggers that joined get an answer: None sends them to read alone.
    try:
        await asyncio.sleep(0)  # let the triggers that wait for the read under way join this one
        read.started = True
        _looked[instance_id] = time.monotonic()
        answer = await _scaler_state(client, instance_id)
        return answer
    finally:
        read.answer.set_result(answer)
        if _reads.get(instance_id) is read:
            del _reads[instance_id]


async def _scaler_state(client: DurableClient, instance_id: str) -> tuple[str | None, str | None]:
    """The scaler's runtime status and the phase its custom status says (None: none)."""
    status = await client.get_status(instance_id)
    runtime = runtime_status_of(status)
    if status is None or runtime is None:
        return None, None
    custom = ScalerStatus.from_json(json_value(status.custom_status))
    if custom is None:
        return runtime, None
    if runtime in RUNNING_STATES and custom.phase not in (ENDING, DONE):
        _remember(instance_id, custom.lease_until)
    return runtime, custom.phase


async def ensure_scaler(
    client: DurableClient,
    scale_set_id: str,
    settings: AppSettings,
    *,
    urgent: bool = False,
) -> str:
    """Make sure the scale set's scaler will decide what its entity holds (see the module
    docstring); returns `started`, `running`, `woken` or `deferred`."""
    instance_id = scaler_instance_id(scale_set_id)
    if not urgent and _leased(instance_id) and not _look_due(instance_id):
        return "running"
    deadline = time.monotonic() + ENDING_WAIT_SECONDS
    while time.monotonic() < deadline:
        asked = time.monotonic()
        status, phase = await _look(client, instance_id)
        if status in RUNNING_STATES:
            if phase in (ENDING, DONE):
                await asyncio.sleep(_ENDING_POLL_SECONDS)
                continue
            # Idle: nothing pending, nothing in the way: any request wakes it. In a cooldown
            # only an urgent one does (an alert would wait for the cooldown anyway).
            if phase != IDLE and (phase != COOLDOWN or not urgent):
                return "running"
            if _woken.get(instance_id, -1.0) >= asked:
                # Woken by a trigger that shared this read (or a later one): after this
                # request was stored, so the scaler's next look sees it. One event, not one each.
                return "woken"
            _woken[instance_id] = time.monotonic()
            try:
                await client.raise_event(instance_id, WAKE_EVENT, None)
            # The client raises a plain Exception for every refusal; here the scaler finished
            # between the status and the event (410/404): look again.
            except Exception as error:
                log.info("scaler %s could not be woken (%s); looking again", instance_id, error)
                _woken.pop(instance_id, None)
                await asyncio.sleep(_ENDING_POLL_SECONDS)
                continue
            return "woken"
        try:
            tuning = scaler_tuning(settings)
            lease = datetime.now(UTC) + scaler_linger(tuning)
            request = ScalerRequest(scale_set_id, tuning, lease)
            await client.start_new(SCALE_FRONTENDS.name, instance_id, request.to_json())
        # Refused because another trigger started it in between: look at that one instead.
        except Exception as error:
            log.info("scaler %s not started (%s); looking again", instance_id, error)
            await asyncio.sleep(_ENDING_POLL_SECONDS)
            continue
        _remember(instance_id, lease)
        _looked[instance_id] = time.monotonic()
        log.info("scaler %s started", instance_id)
        return "started"
    log.warning("scaler %s neither running nor started; the scaling timer will", instance_id)
    return "deferred"

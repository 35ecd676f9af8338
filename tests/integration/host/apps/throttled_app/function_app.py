# mypy: disable-error-code="untyped-decorator"
"""Sample app whose host.json allows two concurrent activities: the host must honour it."""

import threading
import time

import azure.durable_functions as df

app = df.DFApp()

_lock = threading.Lock()
_running = 0
_peak = 0


@app.activity_trigger(input_name="seconds")
def nap(seconds: float) -> int:
    global _running, _peak
    with _lock:
        _running += 1
        _peak = max(_peak, _running)
    time.sleep(seconds)
    with _lock:
        _running -= 1
        return _peak


@app.orchestration_trigger(context_name="context")
def naps(context: df.DurableOrchestrationContext):
    peaks = yield context.task_all([context.call_activity("nap", 0.2) for _ in range(6)])
    return max(peaks)

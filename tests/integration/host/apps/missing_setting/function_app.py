# mypy: disable-error-code="untyped-decorator"
"""Sample app whose timer schedule names a setting nobody defines: the host must refuse it."""

import azure.functions as func

app = func.FunctionApp()


@app.timer_trigger(schedule="%UNDEFINED_SCHEDULE_SETTING%", arg_name="timer")
def never(timer: func.TimerRequest) -> None:
    return None

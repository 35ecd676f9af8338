"""Replays recorded orchestration episodes through the Durable SDK in a fresh process.

Run as ``python replay_check.py`` with a JSON document on stdin:
``{"app_dir": ..., "cases": [{"name": orchestrator, "episodes": [{"payload", "state", "error"}],
"full": payload or null}]}``. For every episode it calls the orchestrator exactly as the worker
would (``OrchestrationTriggerConverter`` → the function) and reports whether the SDK answered
the same state (actions, isDone, output, customStatus) or the same error. ``full`` is the whole
stored history, every event played: replaying it must give the last episode's answer. Prints one
JSON object: ``{"mismatches": [...], "checked": n}``.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from typing import Any

_MARKER = "$OutOfProcData$:"


def _load(app_dir: str) -> dict[str, Any]:
    from azure.functions import FunctionRegister

    sys.path.insert(0, app_dir)
    spec = importlib.util.spec_from_file_location("function_app", Path(app_dir) / "function_app.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["function_app"] = module
    spec.loader.exec_module(module)
    apps = [v for v in vars(module).values() if isinstance(v, FunctionRegister)]
    return {str(f.get_function_name()): f for f in apps[0].get_functions()}


def _call(function: Any, payload: dict[str, Any]) -> tuple[dict[str, Any] | None, str | None]:
    from azure.functions import meta
    from azure.functions.durable_functions import OrchestrationTriggerConverter

    context = OrchestrationTriggerConverter.decode(
        meta.Datum(type="string", value=json.dumps(payload)), trigger_metadata=None
    )
    try:
        result = function.get_user_function()(context)
    except Exception as error:  # the SDK reports failures by raising
        text = str(error)
        if _MARKER in text:
            state = json.loads(text.partition(_MARKER)[2])
            return state, str(state.get("error"))
        return None, text
    return json.loads(result), None


def _same(recorded: dict[str, Any], replayed: dict[str, Any] | None) -> bool:
    if replayed is None:
        return False
    keys = ("isDone", "actions", "output", "customStatus", "error")
    return all(recorded.get(k) == replayed.get(k) for k in keys)


def main() -> None:
    document = json.load(sys.stdin)
    functions = _load(document["app_dir"])
    mismatches: list[dict[str, Any]] = []
    checked = 0
    for case in document["cases"]:
        function = functions[case["name"]]
        for index, episode in enumerate(case["episodes"]):
            state, error = _call(function, episode["payload"])
            checked += 1
            if error != episode["error"] or not _same(episode["state"], state):
                mismatches.append(
                    {"case": case["id"], "episode": index, "recorded": episode, "replayed": state}
                )
        if case.get("full") is not None:
            state, error = _call(function, case["full"])
            checked += 1
            last = case["episodes"][-1]
            if error != last["error"] or not _same(last["state"], state):
                mismatches.append(
                    {"case": case["id"], "episode": "full", "recorded": last, "replayed": state}
                )
    print(json.dumps({"mismatches": mismatches, "checked": checked}))


if __name__ == "__main__":
    main()

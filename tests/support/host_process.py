"""The local host as a separate process (`python -m localdev.host`), as a developer runs it."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import requests

from tests.support.azurite import free_port
from tests.support.stack import ROOT, TERMINAL


def write_settings(folder: Path, values: Mapping[str, str]) -> Path:
    """A `local.settings.json` with `values`."""
    path = folder / "local.settings.json"
    path.write_text(json.dumps({"IsEncrypted": False, "Values": dict(values)}))
    return path


@contextmanager
def host_process(
    settings: Path, hub: Path, output: Path, *extra: str
) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """`python -m localdev.host` on this repository; yields the process and its base URL."""
    port = free_port()
    with output.open("ab") as sink:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "localdev.host",
                "--app-dir",
                str(ROOT),
                "--settings",
                str(settings),
                "--port",
                str(port),
                "--hub-file",
                str(hub),
                *extra,
            ],
            cwd=ROOT,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                requests.get(f"{base}/api/openapi.json", timeout=5)
                break
            except requests.ConnectionError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(
                        f"the host did not start:\n{output.read_text(errors='replace')}"
                    ) from None
                time.sleep(0.1)
        yield process, base
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)


def wait_terminal(base: str, solution_id: str, seconds: float, **params: str) -> dict[str, Any]:
    """Poll `GET /api/platforms/{id}` until the last operation ends."""
    deadline = time.monotonic() + seconds
    while True:
        response = requests.get(f"{base}/api/platforms/{solution_id}", params=params, timeout=30)
        assert response.status_code == 200, response.text
        state: dict[str, Any] = response.json()
        if state["lastOperation"]["runtimeStatus"] in TERMINAL:
            return state
        assert time.monotonic() < deadline, f"still running: {state}"
        time.sleep(0.2)

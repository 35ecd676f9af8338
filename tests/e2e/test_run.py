"""`make run`'s scenario, non-interactively (RUN_ONCE=1): deploy the demo, then scale out.

It runs as on a developer's machine where another Azurite (VS Code's extension, say) already
holds Azurite's default ports 10000-10002: the demo must start its own Azurite on other ports,
say which, and point the app's storage at it.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from tests.support.azurite import free_port

ROOT = Path(__file__).resolve().parents[2]
AZURITE = ROOT / "node_modules" / ".bin" / "azurite"
AZURITE_DEFAULT_PORTS = (10000, 10001, 10002)


def _listening(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


@contextmanager
def foreign_azurite() -> Iterator[None]:
    """Something listening on 10000-10002 that is not this demo's Azurite.

    It accepts connections and never answers, so a demo that borrowed it would hang, not pass.
    A port another process already listens on is just as foreign and is left as it is.
    """
    with ExitStack() as stack:
        for port in AZURITE_DEFAULT_PORTS:
            listener = stack.enter_context(socket.socket())
            try:
                listener.bind(("127.0.0.1", port))
            except OSError:
                assert _listening(port), f"port {port} is taken but nothing listens on it"
                continue
            listener.listen()
        yield


def test_run_once_deploys_all_four_environments_and_scales_out(tmp_path: Path) -> None:
    settings = tmp_path / "local.settings.json"
    shutil.copy(ROOT / "local.settings.sample.json", settings)
    env = {**os.environ, "RUN_ONCE": "1", "OPERATION_POLL_SECONDS": "0.2"}
    with foreign_azurite():
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "localdev.run",
                "--settings",
                str(settings),
                "--port",
                str(free_port()),
                "--arm-port",
                str(free_port()),
                "--latency-scale",
                "0.002",
            ],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "4/4 environments succeeded" in output
    assert "front-ends: 2 -> 4" in output
    assert "Done: deployed all four environments and scaled out" in output

    # It says which Azurite it started, on which ports: not the foreign one's.
    command = re.search(r"\$ azurite (.+)", output)
    assert command is not None, output
    arguments = command.group(1).split()
    ports = {
        name: int(arguments[arguments.index(f"--{name}Port") + 1])
        for name in ("blob", "queue", "table")
    }
    assert not set(ports.values()) & set(AZURITE_DEFAULT_PORTS), ports
    assert "--disableTelemetry" in arguments
    # The app's storage (AzureWebJobsStorage) followed: its events queue is on that Azurite.
    host_log = (ROOT / ".localdev" / "run" / "host.log").read_text(errors="replace")
    assert f"127.0.0.1:{ports['queue']}/devstoreaccount1/platform-events" in host_log

    # Oracle for the options: the installed Azurite's own help (Azurite 3.35.0 lists
    # --disableTelemetry: "Disable telemtry collection of Azurite", and its README's "Disable
    # Telemetry Collection" section).
    help_text = subprocess.run(
        [str(AZURITE), "--help"], capture_output=True, text=True, timeout=60, check=False
    ).stdout
    for option in (a for a in arguments if a.startswith("--")):
        assert re.search(rf"{re.escape(option)}\b", help_text), option

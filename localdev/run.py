"""`make run`: the whole app on this machine, a demo deployment, and a scale-out.

Starts Azurite, the ARM simulator (at a latency scale that makes a platform take about a
minute) and the local Functions host, then drives the app through its HTTP API with the `osctl`
command-line client, as a user would: deploys `examples/spec-demo.json`, shows the outputs,
posts the sample high-CPU alert and follows the scale-out. Then it keeps the stack running and
prints how to call the API, until Ctrl-C. With `RUN_ONCE=1` it stops everything and exits after
the scale-out: 0 when every step succeeded, non-zero with the reason otherwise.

Azurite is the demo's own, in memory, on free ports it chooses and prints (unless
``--azurite-ports`` names them): a developer's machine often runs another Azurite on the default
ports 10000-10002 (VS Code's extension), with its own settings and shared queues, which the demo
must not borrow. The app's ``AzureWebJobsStorage`` points at the demo's Azurite.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
SOLUTION_ID = "acme"
#: A platform at scale 1 takes about 48 minutes along its critical path (see the simulator's
#: latency table); this makes it about a minute.
DEMO_LATENCY_SCALE = 0.02
# Azurite's well-known development account (public, documented by Microsoft; not a secret).
_AZURITE_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)


class DemoError(RuntimeError):
    """A step of the demo failed; the message says which and why."""


@dataclass(frozen=True)
class Ports:
    host: int
    arm: int
    azurite_blob: int
    azurite_queue: int
    azurite_table: int


def _free_ports(count: int) -> list[int]:
    """Distinct free loopback ports (all held while they are chosen, so they differ)."""
    with ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket()) for _ in range(count)]
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [int(sock.getsockname()[1]) for sock in sockets]


def _azurite_ports(text: str) -> tuple[int, int, int]:
    """``auto`` (free ports) or ``blob,queue,table``."""
    if text == "auto":
        blob, queue, table = _free_ports(3)
        return blob, queue, table
    try:
        blob, queue, table = (int(port) for port in text.split(","))
    except ValueError as error:
        raise argparse.ArgumentTypeError(
            f"expected 'auto' or three comma-separated ports, got {text!r}"
        ) from error
    return blob, queue, table


def _azurite_arguments(ports: Ports) -> list[str]:
    """Azurite in memory, telemetry off (its `--disableTelemetry`), on the demo's ports."""
    return [
        "--silent",
        "--skipApiVersionCheck",
        "--inMemoryPersistence",
        "--disableTelemetry",
        "--blobPort",
        str(ports.azurite_blob),
        "--queuePort",
        str(ports.azurite_queue),
        "--tablePort",
        str(ports.azurite_table),
    ]


def _say(message: str) -> None:
    print(f"\n==> {message}", flush=True)


def _port_in_use(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _wait_for_port(port: int, process: subprocess.Popen[Any], what: str, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not _port_in_use(port):
        if process.poll() is not None:
            raise DemoError(f"{what} exited with code {process.returncode} while starting")
        if time.monotonic() > deadline:
            raise DemoError(f"{what} did not start listening on port {port}")
        time.sleep(0.1)


class Services:
    """The processes the demo starts, stopped in reverse order (always)."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self._processes: list[tuple[str, subprocess.Popen[Any], IO[bytes]]] = []

    def start(
        self, name: str, command: Sequence[str], env: Mapping[str, str], port: int
    ) -> subprocess.Popen[Any]:
        if _port_in_use(port):
            raise DemoError(
                f"port {port} is already in use, so {name} cannot start "
                "(stop what listens there, or choose other ports: see --help)"
            )
        log = (self.log_dir / f"{name}.log").open("wb")
        process = subprocess.Popen(
            list(command), cwd=ROOT, env=dict(env), stdout=log, stderr=subprocess.STDOUT
        )
        self._processes.append((name, process, log))
        _wait_for_port(port, process, name, 60)
        print(f"    {name} is up on 127.0.0.1:{port} (log: {log.name})", flush=True)
        return process

    def stop(self) -> None:
        for _name, process, log in reversed(self._processes):
            if process.poll() is None:
                process.send_signal(signal.SIGINT if os.name != "nt" else signal.SIGTERM)
                try:
                    process.wait(15)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(5)
            log.close()
        self._processes.clear()


def _settings(path: Path) -> dict[str, str]:
    try:
        values = json.loads(path.read_text(encoding="utf-8"))["Values"]
    except (OSError, ValueError, KeyError) as error:
        raise DemoError(f"cannot read the settings in {path}: {error}") from error
    return {str(k): str(v) for k, v in values.items()}


def _host_environment(settings: Mapping[str, str], ports: Ports) -> dict[str, str]:
    """The local host's environment, pointed at the demo's services.

    The host reads the settings file itself (`--settings`), and the environment wins over it as
    in Azure Functions, so only what the demo's ports decide is set here.
    """
    storage = (
        f"DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey={_AZURITE_KEY};"
        f"BlobEndpoint=http://127.0.0.1:{ports.azurite_blob}/devstoreaccount1;"
        f"QueueEndpoint=http://127.0.0.1:{ports.azurite_queue}/devstoreaccount1;"
        f"TableEndpoint=http://127.0.0.1:{ports.azurite_table}/devstoreaccount1;"
    )
    return {
        **os.environ,
        "AzureWebJobsStorage": storage,
        "ARM_ENDPOINT": f"http://127.0.0.1:{ports.arm}",
        "ALERT_WEBHOOK_URL": f"http://127.0.0.1:{ports.host}/api/alerts",
        "OPERATION_POLL_SECONDS": os.environ.get("OPERATION_POLL_SECONDS")
        or settings.get("OPERATION_POLL_SECONDS", "1"),
        "PYTHONUNBUFFERED": "1",
    }


def _osctl(base_url: str, *arguments: str) -> int:
    """Run the CLI as a user would (live progress in this terminal); its exit code."""
    command = [sys.executable, "-m", "osctl", "--url", base_url, *arguments]
    print(f"    $ osctl {' '.join(arguments)}", flush=True)
    return subprocess.run(command, cwd=ROOT, check=False).returncode


def _api(base_url: str, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    import requests

    response = requests.request(method, f"{base_url}/api/{path}", json=body, timeout=30)
    try:
        return response.status_code, response.json()
    except ValueError:
        return response.status_code, response.text


def _scale_out(base_url: str, seconds: float) -> dict[str, Any]:
    """Post the sample high-CPU alert and wait until the scale set has grown."""
    status, scaling = _api(base_url, "GET", f"platforms/{SOLUTION_ID}/scaling")
    if status != 200:
        raise DemoError(f"reading the scaling state failed: {status} {scaling}")
    before = int(scaling["capacity"])
    alert = json.loads((EXAMPLES / "alert-cpu-high-fired.json").read_text(encoding="utf-8"))
    alert["data"]["essentials"]["firedDateTime"] = time.strftime(
        "%Y-%m-%dT%H:%M:%SZ", time.gmtime()
    )
    status, answer = _api(base_url, "POST", "alerts", alert)
    print(f"    POST /api/alerts -> {status} {json.dumps(answer)}", flush=True)
    if status != 202:
        raise DemoError(f"the alert was not accepted: {status} {answer}")
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        time.sleep(1)
        status, scaling = _api(base_url, "GET", f"platforms/{SOLUTION_ID}/scaling")
        if not isinstance(scaling, dict):
            continue
        capacity = scaling.get("capacity")
        applied = [d for d in scaling.get("decisions") or [] if d.get("outcome") == "applied"]
        # Done when the scale set has grown and the scaler has recorded why.
        if isinstance(capacity, int) and capacity > before and applied:
            print(f"    front-ends: {before} -> {capacity} ({applied[0]['reason']})", flush=True)
            return dict(scaling)
    raise DemoError(f"the scale set did not grow within {seconds:.0f} s (still {before})")


def _usage(base_url: str) -> None:
    print(
        f"""
The app is running on {base_url} (local host + simulated Azure + Azurite).
Try it:
    curl -s {base_url}/api/platforms | python -m json.tool
    curl -s {base_url}/api/platforms/{SOLUTION_ID} | python -m json.tool
    curl -s -X POST {base_url}/api/platforms/{SOLUTION_ID}/scale -d '{{"delta": 1}}'
    curl -s -X POST {base_url}/api/platforms/{SOLUTION_ID}/plan -d @examples/spec-farm.json
    curl -s {base_url}/api/openapi.json
or with the CLI (.venv/bin/osctl, or python -m osctl):
    osctl --url {base_url} status {SOLUTION_ID}
    osctl --url {base_url} scaling {SOLUTION_ID}
    osctl --url {base_url} scale {SOLUTION_ID} --capacity 3
    osctl --url {base_url} destroy {SOLUTION_ID} --yes
Press Ctrl-C to stop everything.""",
        flush=True,
    )


def run(ports: Ports, settings_file: Path, latency_scale: float, once: bool) -> None:
    """The demo scenario; raises `DemoError` when a step fails."""
    settings = _settings(settings_file)
    log_dir = ROOT / ".localdev" / "run"
    log_dir.mkdir(parents=True, exist_ok=True)
    base_url = f"http://127.0.0.1:{ports.host}"
    with ExitStack() as stack:
        services = Services(log_dir)
        stack.callback(services.stop)
        _say("Starting Azurite, the ARM simulator and the local Functions host")
        azurite = ROOT / "node_modules" / ".bin" / "azurite"
        if not azurite.exists():
            raise DemoError("Azurite is missing: run `npm ci` (make run does)")
        arguments = _azurite_arguments(ports)
        print(
            f"    Azurite of this run: blob port {ports.azurite_blob}, queue port "
            f"{ports.azurite_queue}, table port {ports.azurite_table} (its own; an Azurite "
            "already on 10000-10002 is left alone)",
            flush=True,
        )
        print(f"    $ azurite {' '.join(arguments)}", flush=True)
        services.start("azurite", [str(azurite), *arguments], os.environ, ports.azurite_queue)
        services.start(
            "armsim",
            [
                sys.executable,
                "-m",
                "localdev.armsim",
                "--port",
                str(ports.arm),
                "--latency-scale",
                str(latency_scale),
            ],
            os.environ,
            ports.arm,
        )
        services.start(
            "host",
            [
                sys.executable,
                "-m",
                "localdev.host",
                "--port",
                str(ports.host),
                "--settings",
                str(settings_file),
                "--fresh",
            ],
            _host_environment(settings, ports),
            ports.host,
        )

        _say(f"Deploying examples/spec-demo.json as platform '{SOLUTION_ID}' (about a minute)")
        code = _osctl(base_url, "deploy", SOLUTION_ID, "-f", str(EXAMPLES / "spec-demo.json"))
        if code != 0:
            raise DemoError(f"the deployment did not succeed (osctl exited with {code})")

        _say("Posting the sample high-CPU alert (examples/alert-cpu-high-fired.json)")
        _scale_out(base_url, 120)
        code = _osctl(base_url, "scaling", SOLUTION_ID)
        if code != 0:
            raise DemoError(f"showing the scaling state failed (osctl exited with {code})")

        if once:
            _say("Done: deployed all four environments and scaled out")
            return
        _usage(base_url)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            _say("Stopping")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m localdev.run", description=__doc__)
    parser.add_argument("--settings", type=Path, default=ROOT / "local.settings.json")
    parser.add_argument("--port", type=int, default=7071, help="local host port")
    parser.add_argument("--arm-port", type=int, default=4580, help="ARM simulator port")
    parser.add_argument(
        "--azurite-ports",
        type=_azurite_ports,
        default="auto",
        help="blob,queue,table ports of the demo's Azurite (default: free ports, printed)",
    )
    parser.add_argument("--latency-scale", type=float, default=DEMO_LATENCY_SCALE)
    parser.add_argument(
        "--once",
        action="store_true",
        default=os.environ.get("RUN_ONCE", "") not in {"", "0"},
        help="stop after the scale-out (also RUN_ONCE=1)",
    )
    args = parser.parse_args(argv)
    blob, queue, table = args.azurite_ports
    ports = Ports(args.port, args.arm_port, blob, queue, table)
    try:
        run(ports, args.settings, args.latency_scale, args.once)
    except DemoError as error:
        print(f"\nmake run failed: {error}", file=sys.stderr, flush=True)
        print(f"Logs of the services are in {ROOT / '.localdev' / 'run'}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())

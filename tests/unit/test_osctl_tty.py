"""osctl on a real terminal: `python -m osctl` in a pseudo-terminal against the fake API.

Live progress bars, the destroy confirmation and Ctrl-C only happen when a person is at a
terminal, so these tests give the process one (a pty) instead of pipes.
"""

from __future__ import annotations

import fcntl
import json
import os
import pty
import select
import signal
import struct
import subprocess
import sys
import termios
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.unit.osctl_fake_api import FakeApi

KEY = "TtyTestKey-0123456789abcdefghijklmnopqrstuvwxyz=="
ROOT = Path(__file__).resolve().parents[2]
SPEC = {"location": "westeurope"}


@pytest.fixture(scope="module")
def server() -> Iterator[FakeApi]:
    fake = FakeApi().start()
    yield fake
    fake.stop()


@pytest.fixture
def fake(server: FakeApi) -> FakeApi:
    server.reset(key=KEY)
    return server


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


class Terminal:
    """A child process on a 120x40 pseudo-terminal; everything it draws is kept in `screen`."""

    def __init__(self, *args: str) -> None:
        master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
        env = {
            name: value
            for name, value in os.environ.items()
            if not name.startswith("OSCTL_")
            and name not in {"NO_COLOR", "FORCE_COLOR", "COLUMNS", "LINES", "TTY_COMPATIBLE"}
        }
        env["TERM"] = "xterm-256color"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "osctl", *args],
            stdin=slave,
            stdout=slave,
            stderr=slave,
            cwd=ROOT,
            env=env,
            start_new_session=True,
            # A shell without job control starts background commands with SIGINT ignored, and a
            # child inherits that (Python then installs no KeyboardInterrupt handler): give the
            # child the default disposition a terminal user's osctl has.
            preexec_fn=_default_sigint,
        )
        os.close(slave)
        self._master = master
        self.screen = ""

    def read_until(self, text: str, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.screen:
            if time.monotonic() > deadline:
                raise AssertionError(f"{text!r} never appeared in {self.screen!r}")
            if not self._read(0.1) and self.process.poll() is not None:
                raise AssertionError(f"exited before {text!r} appeared: {self.screen!r}")

    def type(self, text: str) -> None:
        os.write(self._master, text.encode())

    def finish(self, timeout: float = 30.0) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self._read(0.1) and self.process.poll() is not None:
                break
        code = self.process.wait(timeout=max(deadline - time.monotonic(), 1))
        os.close(self._master)
        return code

    def _read(self, timeout: float) -> bool:
        ready, _, _ = select.select([self._master], [], [], timeout)
        if not ready:
            return False
        try:
            data = os.read(self._master, 65536)
        except OSError:  # EIO: the child closed the terminal
            return False
        self.screen += data.decode("utf-8", "replace")
        return bool(data)


@pytest.fixture
def spec(tmp_path: Path) -> Path:
    path = tmp_path / "spec.json"
    path.write_text(json.dumps(SPEC))
    return path


def osctl_args(fake: FakeApi, *args: str) -> list[str]:
    return ["--url", fake.url, "--key", KEY, *args]


def test_deploy_on_a_terminal_shows_live_bars_and_no_key(fake: FakeApi, spec: Path):
    terminal = Terminal(
        *osctl_args(fake, "deploy", "acme", "-f", str(spec), "--poll-interval", "0.2")
    )

    code = terminal.finish()

    screen = terminal.screen
    assert code == 0, screen
    assert "\x1b[?25l" in screen  # rich's live display hides the cursor while it redraws
    assert "━" in screen  # the bars
    assert "12/12" in screen
    assert "Succeeded" in screen
    assert "✓ deploy of acme succeeded" in screen
    assert "ServiceCenter" in screen
    # Bars, not the plain CI lines.
    assert "dev   Running     3/9" not in screen
    assert KEY not in screen


def test_plain_flag_gives_plain_lines_on_a_terminal_too(fake: FakeApi, spec: Path):
    terminal = Terminal(
        *osctl_args(fake, "--plain", "deploy", "acme", "-f", str(spec), "--poll-interval", "0")
    )

    code = terminal.finish()

    assert code == 0
    assert "dev   Running     3/9" in terminal.screen
    assert "\x1b[?25l" not in terminal.screen


@pytest.mark.parametrize(("answer", "expected_code"), [("n", 1), ("y", 0)])
def test_destroy_asks_before_tearing_down(fake: FakeApi, answer: str, expected_code: int):
    fake.seed("acme")
    terminal = Terminal(*osctl_args(fake, "destroy", "acme", "--poll-interval", "0"))

    terminal.read_until("Destroy all of platform acme (resource group acme-rg)? [y/N]")
    terminal.type(answer + "\r")
    code = terminal.finish()

    assert code == expected_code, terminal.screen
    deletes = [r for r in fake.requests if r[0] == "DELETE"]
    if answer == "n":
        assert "Nothing destroyed." in terminal.screen
        assert deletes == []
    else:
        assert "✓ teardown of acme succeeded" in terminal.screen
        assert len(deletes) == 1


def test_ctrl_c_stops_following_and_says_how_to_resume(fake: FakeApi, spec: Path):
    terminal = Terminal(
        *osctl_args(fake, "deploy", "acme", "-f", str(spec), "--poll-interval", "1")
    )
    terminal.read_until("Running")

    os.killpg(terminal.process.pid, signal.SIGINT)
    code = terminal.finish()

    assert code == 130, terminal.screen
    assert "Follow it again with: osctl wait acme" in terminal.screen
    assert "Traceback" not in terminal.screen
    # Only the client stopped: the deployment goes on.
    op = fake.platforms["acme"].op
    assert op is not None
    assert op.runtime_status == "Running"

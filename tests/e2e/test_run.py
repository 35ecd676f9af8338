"""`make run`'s scenario, non-interactively (RUN_ONCE=1): deploy the demo, then scale out."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from tests.support.azurite import free_port

ROOT = Path(__file__).resolve().parents[2]


def test_run_once_deploys_all_four_environments_and_scales_out(tmp_path: Path) -> None:
    settings = tmp_path / "local.settings.json"
    shutil.copy(ROOT / "local.settings.sample.json", settings)
    azurite_ports = ",".join(str(free_port()) for _ in range(3))
    env = {**os.environ, "RUN_ONCE": "1", "OPERATION_POLL_SECONDS": "0.2"}
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
            "--azurite-ports",
            azurite_ports,
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

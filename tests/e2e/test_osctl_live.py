"""osctl against the real app on the local host (function keys enforced, as in Azure)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from localdev.armsim.server import SimulatorServer
from osctl.main import app
from tests.support.azurite import Azurite
from tests.support.stack import Stack, assert_torn_down, running_stack

KEY = "live-function-key-0123456789abcdef"
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
CLEAN_ENV: dict[str, str | None] = {"OSCTL_URL": None, "OSCTL_KEY": None, "COLUMNS": None}

runner = CliRunner()


@pytest.fixture
def keyed(sim: SimulatorServer, azurite: Azurite) -> Iterator[Stack]:
    azurite.drain("platform-events")
    with running_stack(sim, azurite, require_keys=True, LOCALDEV_FUNCTION_KEY=KEY) as stack:
        yield stack


def osctl(stack: Stack, *args: str, key: str = KEY) -> Result:
    result = runner.invoke(
        app, ["--url", stack.base, "--key", key, *args], env=CLEAN_ENV, catch_exceptions=False
    )
    assert KEY not in result.output, "the function key must never be printed"
    return result


def test_deploy_status_plan_scale_and_destroy(keyed: Stack, tmp_path: Path) -> None:
    demo = str(EXAMPLES / "spec-demo.json")
    deployed = osctl(keyed, "deploy", "acme", "-f", demo, "--poll-interval", "0.2")
    assert deployed.exit_code == 0, deployed.output
    assert "4/4 environments succeeded" in deployed.output
    assert "/LifeTime" in deployed.output

    status = osctl(keyed, "status", "acme")
    assert status.exit_code == 0
    assert "Succeeded" in status.output
    listed = osctl(keyed, "list", "--json")
    assert [p["solutionId"] for p in json.loads(listed.output)["platforms"]] == ["acme"]

    bigger = json.loads(Path(demo).read_text())
    bigger["environments"]["life"] = {"vmSize": "Standard_D4s_v5"}
    spec_file = tmp_path / "bigger.json"
    spec_file.write_text(json.dumps(bigger))
    plan = osctl(keyed, "plan", "acme", "-f", str(spec_file), "--json")
    assert plan.exit_code == 0
    updates = [r["name"] for r in json.loads(plan.output)["resources"] if r["action"] == "update"]
    assert updates == ["acme-life-vm"]
    table = osctl(keyed, "plan", "acme", "-f", str(spec_file))
    assert "hardwareProfile.vmSize" in table.output

    scaled = osctl(keyed, "scale", "acme", "--capacity", "4")
    assert scaled.exit_code == 0, scaled.output
    deadline = time.monotonic() + 30

    def applied() -> bool:
        # The live capacity can read 4 as soon as ARM took the PATCH, a moment before the
        # scaler records its decision: wait for both.
        view = keyed.api("GET", "platforms/acme/scaling", headers={"x-functions-key": KEY})
        return bool(view.json()["capacity"] == 4 and view.json()["decisions"])

    while not applied():
        assert time.monotonic() < deadline, "the manual scaling was not applied"
        time.sleep(0.2)
    scaling = osctl(keyed, "scaling", "acme")
    assert scaling.exit_code == 0
    assert "manual" in scaling.output

    destroyed = osctl(keyed, "destroy", "acme", "--yes", "--poll-interval", "0.2")
    assert destroyed.exit_code == 0, destroyed.output
    assert_torn_down(keyed.sim)


def test_api_errors_are_messages_and_exit_codes(keyed: Stack, tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(
        json.dumps(
            {
                "location": "westeurope",
                "adminPassword": "Sup3r-Secret!",
                "environments": {"prod": {"frontends": {"minCapacity": 5, "maxCapacity": 3}}},
            }
        )
    )
    invalid = osctl(keyed, "deploy", "acme", "-f", str(bad))
    assert invalid.exit_code == 2
    assert "adminPassword" in invalid.output
    assert "VM_ADMIN_PASSWORD" in invalid.output
    assert "Sup3r-Secret!" not in invalid.output
    assert "Traceback" not in invalid.output

    unknown = osctl(keyed, "status", "nope")
    assert unknown.exit_code == 2
    assert "nope" in unknown.output

    nothing = osctl(keyed, "cancel", "nope")
    assert nothing.exit_code == 2

    wrong_key = osctl(keyed, "list", key="not-the-key")
    assert wrong_key.exit_code == 2
    assert "unauthorized: the function key is missing or wrong" in wrong_key.output

"""osctl's commands end to end against the wire-level fake API: output and exit codes.

Each command is run through typer's CliRunner, whose streams are not terminals: these tests also
pin the plain (CI log) mode, with no colours or control codes.
"""

from __future__ import annotations

import json
import re
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from osctl.main import app
from tests.unit.osctl_fake_api import FailPlan, FakeApi

KEY = "FaKeFuNcTiOnKeY-abcdefghijklmnopqrstuvwxyz0123456789=="
# The CLI must not pick up the machine's own settings or colour preferences.
CLEAN_ENV: dict[str, str | None] = {
    "OSCTL_URL": None,
    "OSCTL_KEY": None,
    "FORCE_COLOR": None,
    "TTY_COMPATIBLE": None,
    "TTY_INTERACTIVE": None,
    "COLUMNS": None,
}
DEMO_SPEC = {
    "location": "westeurope",
    "environments": {
        "prod": {
            "mode": "farm",
            "frontends": {
                "capacity": 2,
                "minCapacity": 2,
                "maxCapacity": 6,
                "scaleOutStep": 2,
                "scaleInStep": 1,
                "cooldownMinutes": 1,
            },
        }
    },
}
ANSI = re.compile(r"\x1b[\[\]()]")

runner = CliRunner()


@pytest.fixture(scope="module")
def server() -> Iterator[FakeApi]:
    fake = FakeApi().start()
    yield fake
    fake.stop()


@pytest.fixture
def fake(server: FakeApi) -> FakeApi:
    server.reset()
    return server


@pytest.fixture
def spec(tmp_path: Path) -> Path:
    path = tmp_path / "spec.json"
    path.write_text(json.dumps(DEMO_SPEC))
    return path


def osctl(fake: FakeApi, *args: str, key: str | None = None, input: str | None = None) -> Result:
    base = ["--url", fake.url] + (["--key", key] if key else [])
    result = runner.invoke(app, [*base, *args], env=CLEAN_ENV, input=input)
    # Whatever happened, the user sees a message, never a stack trace.
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    assert "Traceback" not in result.output
    return result


def write_spec(tmp_path: Path, spec: Any, name: str = "other.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(spec))
    return path


def lines(text: str) -> list[str]:
    return [line.rstrip() for line in text.splitlines()]


# --- deploy ------------------------------------------------------------------------------


def test_deploy_follows_progress_over_polls_and_prints_outputs(fake: FakeApi, spec: Path):
    result = osctl(fake, "deploy", "acme", "-f", str(spec), "--poll-interval", "0")

    assert result.exit_code == 0, result.output
    out = result.stdout
    # Plain mode: progress lines as resources get done, then the end state of each environment.
    assert "dev   Running     3/9   creating acme-dev-" in out
    assert "prod  Running     8/12  creating acme-prod-" in out
    for env, total in (("dev", 9), ("test", 9), ("prod", 12), ("life", 9)):
        assert f"{env:<5} Succeeded {total:>3}/{total}" in lines(out)
    assert "✓ deploy of acme succeeded" in out
    assert "4/4 environments succeeded" in out
    assert "http://acme-dev-agw.westeurope.cloudapp.azure.com/ServiceCenter" in out
    assert "http://acme-life-agw.westeurope.cloudapp.azure.com/LifeTime" in out
    assert "10.0.3.4" in out
    assert not ANSI.search(result.output)
    # Followed through the Location of the 202: the app's own operation route, never a
    # Durable management URL.
    polls = [
        path
        for method, path, _ in fake.requests
        if method == "GET" and path.startswith("/api/platforms/acme/operations/")
    ]
    assert len(polls) >= 4
    assert not any(path.startswith("/runtime/") for _, path, _ in fake.requests)
    assert fake.platforms["acme"].spec == DEMO_SPEC


def test_plain_mode_prints_one_line_per_change_of_an_environment(fake: FakeApi, spec: Path):
    result = osctl(fake, "deploy", "acme", "-f", str(spec), "--poll-interval", "0")

    assert result.exit_code == 0
    dev_lines = [line for line in lines(result.stdout) if line.startswith("dev ")]
    # dev goes 0 -> 3 -> 6 -> 9 resources: four states, each printed once, although every
    # poll (more than four) returned dev.
    assert dev_lines == [
        "dev   Running     0/9",
        "dev   Running     3/9   creating acme-dev-sql",
        "dev   Running     6/9   creating acme-dev-vmss",
        "dev   Succeeded   9/9",
    ]
    assert [line for line in lines(result.stdout) if line.startswith("acme: ")] == [
        "acme: deploy Running",
        "acme: deploy Completed",
    ]


def test_deploy_failing_in_one_environment_exits_1_with_code_message_and_resource(
    fake: FakeApi, spec: Path
):
    fake.fail_next_deploy(FailPlan("test", at=3, code="OperationNotAllowed", message="Quota"))

    result = osctl(fake, "deploy", "acme", "-f", str(spec), "--poll-interval", "0")

    assert result.exit_code == 1, result.output
    out = result.stdout
    assert "✗ deploy of acme failed (Failed): 3/4 environments succeeded" in out
    assert "  test: OperationNotAllowed: Quota" in lines(out)
    assert (
        "    resource: /subscriptions/00000000-0000-4000-8000-000000000001/resourceGroups/"
        "acme-rg/providers/Microsoft.Compute/virtualMachines/acme-test-vm"
    ) in lines(out)
    assert "test  Failed      3/9   OperationNotAllowed: Quota" in out


def test_deploy_completed_with_a_failed_environment_is_a_failure(fake: FakeApi, spec: Path):
    fake.fail_next_deploy(FailPlan("life", runtime_status="Completed"))

    result = osctl(fake, "deploy", "acme", "-f", str(spec), "--poll-interval", "0")

    assert result.exit_code == 1
    assert "✗ deploy of acme partially succeeded: 3/4 environments succeeded" in result.stdout
    assert any(line.startswith("  life: OperationNotAllowed:") for line in lines(result.stdout))


def test_redeploy_is_not_judged_by_the_previous_operation(fake: FakeApi, spec: Path):
    """The state may still show the previous, successful deployment right after the PUT."""
    fake.seed("acme", DEMO_SPEC)
    fake.fail_next_deploy(FailPlan("prod"))
    fake.lag_next_operation(3)

    result = osctl(fake, "deploy", "acme", "-f", str(spec), "--poll-interval", "0")

    assert result.exit_code == 1, result.output
    assert "  prod: OperationNotAllowed:" in result.stdout
    # The operation's own URL was followed, whatever the platform state said meanwhile.
    assert any("/operations/" in path for _, path, _ in fake.requests)


def test_deploy_invalid_spec_shows_message_and_each_target_exit_2(fake: FakeApi, tmp_path):
    bad = write_spec(
        tmp_path,
        {
            "locaton": "westeurope",
            "environments": {"prod": {"frontends": {"minCapacity": 4, "maxCapacity": 2}}},
        },
    )

    result = osctl(fake, "deploy", "acme", "-f", str(bad))

    assert result.exit_code == 2
    err = lines(result.stderr)
    assert err[0].startswith("error: The platform spec is invalid.")
    assert "InvalidSpec, HTTP 400" in err[0]
    assert "  location: field required" in err
    assert "  locaton: unknown field" in err
    assert "  environments.prod.frontends.maxCapacity: must be at least minCapacity" in err
    assert result.stdout == ""
    assert "acme" not in fake.platforms


def test_deploy_invalid_solution_id_exit_2(fake: FakeApi, spec: Path):
    result = osctl(fake, "deploy", "Acme-1", "-f", str(spec))

    assert result.exit_code == 2
    assert "  solutionId: lowercase letters and digits" in result.stderr


def test_deploy_while_running_is_409_exit_2_with_a_hint(fake: FakeApi, spec: Path):
    assert osctl(fake, "deploy", "acme", "-f", str(spec), "--no-wait").exit_code == 0

    result = osctl(fake, "deploy", "acme", "-f", str(spec), "--no-wait")

    assert result.exit_code == 2
    assert "error: A deploy of acme is running." in result.stderr
    assert "OperationInProgress, HTTP 409" in result.stderr
    assert "osctl wait acme" in result.stderr


def test_deploy_no_wait_returns_at_once_with_the_operation_url(fake: FakeApi, spec: Path):
    fake.key = KEY

    result = osctl(fake, "deploy", "acme", "-f", str(spec), "--no-wait", key=KEY)

    assert result.exit_code == 0, result.output
    assert fake.platforms["acme"].op is not None
    operation_id = fake.platforms["acme"].op.operation_id
    assert f"Deployment of acme accepted (operation {operation_id})." in result.stdout
    assert re.search(
        rf"Status: http://127\.0\.0\.1:\d+/api/platforms/acme/operations/{operation_id}$",
        result.stdout,
        re.MULTILINE,
    )
    assert "osctl wait acme" in result.stdout
    assert KEY not in result.output
    assert fake.platforms["acme"].op is not None
    assert fake.platforms["acme"].op.runtime_status == "Pending"


def test_deploy_reads_the_spec_from_standard_input(fake: FakeApi):
    result = osctl(
        fake, "deploy", "acme", "-f", "-", "--poll-interval", "0", input=json.dumps(DEMO_SPEC)
    )

    assert result.exit_code == 0
    assert fake.platforms["acme"].spec == DEMO_SPEC


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "cannot read the spec"),
        ("{not json", "is not valid JSON"),
        ("[1, 2]", "must be a JSON object"),
    ],
)
def test_deploy_with_an_unusable_spec_file_sends_nothing_exit_2(
    fake: FakeApi, tmp_path: Path, content: str | None, message: str
):
    path = tmp_path / "spec.json"
    if content is not None:
        path.write_text(content)

    result = osctl(fake, "deploy", "acme", "-f", str(path))

    assert result.exit_code == 2
    assert message in result.stderr
    assert fake.requests == []


# --- status, list, wait --------------------------------------------------------------------


def test_status_shows_operation_environments_and_outputs(fake: FakeApi):
    fake.seed("acme")

    result = osctl(fake, "status", "acme")

    assert result.exit_code == 0
    out = result.stdout
    assert re.search(r"Platform\s+acme", out)
    assert re.search(r"Status\s+Succeeded", out)
    assert re.search(r"Resource group\s+acme-rg", out)
    assert re.search(r"Last operation\s+deploy Completed", out)
    assert re.search(r"prod\s+│ Succeeded\s+│ 12/12", out)
    assert "http://acme-prod-agw.westeurope.cloudapp.azure.com/ServiceCenter" in out


def test_status_of_a_running_deployment_shows_progress_and_how_to_follow(fake: FakeApi, spec: Path):
    osctl(fake, "deploy", "acme", "-f", str(spec), "--no-wait")
    osctl(fake, "status", "acme")  # Pending -> Running

    result = osctl(fake, "status", "acme")

    # Not (yet) a success: a pipeline can tell "still running" from "failed".
    assert result.exit_code == 4
    assert re.search(r"Status\s+Running", result.stdout)
    assert re.search(r"Last operation\s+deploy Running", result.stdout)
    assert re.search(r"prod\s+│ Running\s+│ 4/12\s+│ creating acme-prod-", result.stdout)
    assert "Follow it with: osctl wait acme" in result.stdout


def test_status_of_a_partly_failed_deployment_says_so_and_exits_1(fake: FakeApi, spec: Path):
    """Issue 14.1: the orchestration completed, yet one environment failed."""
    fake.fail_next_deploy(FailPlan("test", runtime_status="Completed"))
    osctl(fake, "deploy", "acme", "-f", str(spec), "--poll-interval", "0")

    result = osctl(fake, "status", "acme")

    assert result.exit_code == 1
    assert re.search(r"Status\s+PartiallySucceeded", result.stdout)
    assert re.search(r"Last operation\s+deploy Completed", result.stdout)
    as_json = osctl(fake, "--json", "status", "acme")
    assert as_json.exit_code == 1
    assert json.loads(as_json.stdout)["status"] == "PartiallySucceeded"


def test_status_of_an_unknown_platform_is_404_exit_2(fake: FakeApi):
    result = osctl(fake, "status", "nope")

    assert result.exit_code == 2
    assert "error: No platform 'nope' is managed by this app." in result.stderr
    assert "PlatformNotFound, HTTP 404" in result.stderr
    assert "osctl list" in result.stderr


def test_list_shows_each_platform_and_its_last_operation(fake: FakeApi):
    fake.seed("acme")
    fake.seed("beta", {"location": "westeurope", "resourceGroup": "rg-beta"})

    result = osctl(fake, "list")

    assert result.exit_code == 0
    assert re.search(
        r"acme\s+│ 00000000-0000-4000-8000-000000000001 │ acme-rg\s+│ deploy Succeeded",
        result.stdout,
    )
    assert re.search(r"beta\s+│ .* │ rg-beta\s+│ deploy Succeeded", result.stdout)


def test_list_exits_1_unless_every_platform_succeeded(fake: FakeApi, spec: Path):
    fake.seed("acme")
    fake.fail_next_deploy(FailPlan("dev", runtime_status="Completed"))
    osctl(fake, "deploy", "beta", "-f", str(spec), "--poll-interval", "0")

    result = osctl(fake, "list")

    assert result.exit_code == 1
    assert re.search(r"acme\s+│ .* │ deploy Succeeded\s+│", result.stdout)
    assert re.search(r"beta\s+│ .* │ deploy PartiallySucceeded\s+│", result.stdout)
    as_json = osctl(fake, "list", "--json")
    assert as_json.exit_code == 1
    assert [p["status"] for p in json.loads(as_json.stdout)["platforms"]] == [
        "Succeeded",
        "PartiallySucceeded",
    ]


def test_list_without_platforms_says_how_to_deploy(fake: FakeApi):
    result = osctl(fake, "list")

    assert result.exit_code == 0
    assert "No platforms yet" in result.stdout


def test_wait_follows_a_running_deployment_to_its_end(fake: FakeApi, spec: Path):
    osctl(fake, "deploy", "acme", "-f", str(spec), "--no-wait")

    result = osctl(fake, "wait", "acme", "--poll-interval", "0")

    assert result.exit_code == 0
    assert "Following deploy of acme" in result.stdout
    assert "✓ deploy of acme succeeded" in result.stdout


def test_wait_on_a_finished_failed_deployment_exits_1(fake: FakeApi, spec: Path):
    fake.fail_next_deploy(FailPlan("dev"))
    osctl(fake, "deploy", "acme", "-f", str(spec), "--poll-interval", "0")

    result = osctl(fake, "wait", "acme", "--poll-interval", "0")

    assert result.exit_code == 1
    assert "  dev: OperationNotAllowed:" in result.stdout


# --- plan ----------------------------------------------------------------------------------


def test_plan_of_a_new_platform_creates_everything(fake: FakeApi, spec: Path):
    result = osctl(fake, "plan", "acme", "-f", str(spec))

    assert result.exit_code == 0
    assert re.search(r"\+ create │ dev\s+│ Compute/virtualMachines\s+│ acme-dev-vm", result.stdout)
    assert "Plan: 9 to create, 0 to update, 0 unchanged." in result.stdout
    assert "acme" not in fake.platforms  # planning changes nothing


def test_plan_shows_updates_with_their_changed_fields(fake: FakeApi, tmp_path: Path):
    fake.seed("acme")
    bigger = write_spec(
        tmp_path,
        {"location": "westeurope", "environments": {"life": {"vmSize": "Standard_D4s_v5"}}},
    )

    result = osctl(fake, "plan", "acme", "-f", str(bigger))

    assert result.exit_code == 0
    assert re.search(r"~ update │ life\s+│ Compute/virtualMachines\s+│ acme-life-vm", result.stdout)
    assert re.search(r"acme-life-vm\s+│ hardwareProfile\.vmSize\s+│", result.stdout)
    assert (
        "  ~ acme-life-vm properties.hardwareProfile.vmSize: Standard_F4s_v2 → Standard_D4s_v5"
        in lines(result.stdout)
    )
    assert "Plan: 0 to create, 1 to update, 8 unchanged." in result.stdout


def test_plan_of_an_invalid_spec_is_400_exit_2(fake: FakeApi, tmp_path: Path):
    result = osctl(fake, "plan", "acme", "-f", str(write_spec(tmp_path, {"tags": {}})))

    assert result.exit_code == 2
    assert "  location: field required" in result.stderr


# --- scale and scaling ---------------------------------------------------------------------


def test_scale_to_a_capacity(fake: FakeApi):
    fake.seed("acme", DEMO_SPEC)

    result = osctl(fake, "scale", "acme", "--capacity", "5")

    assert result.exit_code == 0
    assert "Scale request manual-1 accepted: acme-prod-vmss to 5 instances." in result.stdout
    assert fake.platforms["acme"].capacity == 5


def test_scale_by_a_negative_delta(fake: FakeApi):
    fake.seed("acme", DEMO_SPEC)
    fake.platforms["acme"].capacity = 4

    result = osctl(fake, "scale", "acme", "--delta", "-1")

    assert result.exit_code == 0, result.output
    assert "to 3 instances" in result.stdout


def test_scale_outside_the_bounds_is_400_with_the_bounds_exit_2(fake: FakeApi):
    fake.seed("acme", DEMO_SPEC)

    result = osctl(fake, "scale", "acme", "--capacity", "9")

    assert result.exit_code == 2
    assert "error: Capacity 9 is outside the bounds 2..6." in result.stderr
    assert "  capacity: must be between 2 and 6" in result.stderr


@pytest.mark.parametrize("args", [[], ["--capacity", "3", "--delta", "1"]])
def test_scale_needs_exactly_one_of_capacity_and_delta(fake: FakeApi, args: list[str]):
    fake.seed("acme", DEMO_SPEC)

    result = osctl(fake, "scale", "acme", *args)

    assert result.exit_code == 2
    assert "exactly one of --capacity N and --delta N" in result.stderr
    assert not [r for r in fake.requests if r[0] == "POST"]


def test_scale_of_a_standalone_platform_is_400(fake: FakeApi):
    fake.seed("solo", {"location": "westeurope", "environments": {"prod": {"mode": "standalone"}}})

    assert osctl(fake, "scale", "solo", "--delta", "1").exit_code == 2
    result = osctl(fake, "scaling", "solo")
    assert result.exit_code == 2
    assert "NotAFarm, HTTP 400" in result.stderr


def test_scale_of_an_unknown_platform_is_404(fake: FakeApi):
    result = osctl(fake, "scale", "nope", "--capacity", "3")

    assert result.exit_code == 2
    assert "PlatformNotFound, HTTP 404" in result.stderr


def test_scaling_shows_policy_capacity_and_recent_decisions_newest_first(fake: FakeApi):
    fake.seed("acme", DEMO_SPEC)
    osctl(fake, "scale", "acme", "--capacity", "4")
    osctl(fake, "scale", "acme", "--delta", "2")

    result = osctl(fake, "scaling", "acme")

    assert result.exit_code == 0
    out = result.stdout
    assert re.search(r"Scale set\s+acme-prod-vmss", out)
    assert re.search(r"Capacity\s+6  \(min 2, max 6\)", out)
    assert re.search(r"Policy\s+out \+2, in -1, cooldown 1 min", out)
    rows = re.findall(r"│ manual │ out\s+│ (\d → \d)\s+│ applied │ set by hand", out)
    assert rows == ["4 → 6", "2 → 4"]

    limited = osctl(fake, "scaling", "acme", "--limit", "1")
    assert re.findall(r"│ manual │", limited.stdout) == ["│ manual │"]
    assert "1 older decisions not shown" in limited.stdout


# --- destroy and cancel --------------------------------------------------------------------


def test_destroy_needs_yes_when_it_cannot_ask(fake: FakeApi):
    fake.seed("acme")

    result = osctl(fake, "destroy", "acme")

    assert result.exit_code == 2
    assert "pass --yes" in result.stderr
    assert not [r for r in fake.requests if r[0] == "DELETE"]


def test_destroy_some_environments_follows_the_teardown(fake: FakeApi):
    fake.seed("acme")

    result = osctl(
        fake, "destroy", "acme", "--environments", "dev, test", "--yes", "--poll-interval", "0"
    )

    assert result.exit_code == 0, result.output
    assert "Destroying environments dev, test of platform acme" in result.stdout
    assert "✓ teardown of acme succeeded" in result.stdout
    assert "2/2 environments deleted" in result.stdout
    envs = fake.platforms["acme"].envs
    assert (envs["dev"].status, envs["test"].status) == ("Deleted", "Deleted")
    assert envs["prod"].status == "Succeeded"


def test_destroy_of_a_platform_that_disappears_ends_through_the_status_url(fake: FakeApi):
    fake.seed("acme")
    fake.forget_destroyed = True

    result = osctl(fake, "destroy", "acme", "--yes", "--poll-interval", "0")

    assert result.exit_code == 0, result.output
    assert "acme" not in fake.platforms
    assert "4/4 environments deleted" in result.stdout


def test_destroy_with_an_unknown_environment_is_400(fake: FakeApi):
    fake.seed("acme")

    result = osctl(fake, "destroy", "acme", "--environments", "dev,qa", "--yes")

    assert result.exit_code == 2
    assert "  environments: unknown: qa" in result.stderr


def test_destroy_of_an_unknown_platform_is_404(fake: FakeApi):
    result = osctl(fake, "destroy", "nope", "--yes")

    assert result.exit_code == 2
    assert "PlatformNotFound, HTTP 404" in result.stderr


def test_destroy_while_deploying_is_409(fake: FakeApi, spec: Path):
    osctl(fake, "deploy", "acme", "-f", str(spec), "--no-wait")

    result = osctl(fake, "destroy", "acme", "--yes", "--no-wait")

    assert result.exit_code == 2
    assert "OperationInProgress, HTTP 409" in result.stderr


def test_cancel_stops_the_deployment_and_wait_reports_it_canceled(fake: FakeApi, spec: Path):
    osctl(fake, "deploy", "acme", "-f", str(spec), "--no-wait")

    cancel = osctl(fake, "cancel", "acme")
    waited = osctl(fake, "wait", "acme", "--poll-interval", "0")

    assert cancel.exit_code == 0
    assert "Cancellation of acme's running operation requested." in cancel.stdout
    assert waited.exit_code == 1
    assert "■ deploy of acme canceled" in waited.stdout


def test_cancel_with_nothing_running_is_409(fake: FakeApi):
    fake.seed("acme")

    result = osctl(fake, "cancel", "acme")

    assert result.exit_code == 2
    assert "error: Nothing is running on acme." in result.stderr
    assert "NothingRunning, HTTP 409" in result.stderr


def test_cancel_of_an_unknown_platform_is_404(fake: FakeApi):
    assert osctl(fake, "cancel", "nope").exit_code == 2


# --- JSON output ---------------------------------------------------------------------------


def test_json_output_of_each_query_is_the_apis_json(fake: FakeApi, spec: Path):
    fake.seed("acme", DEMO_SPEC)

    status = json.loads(osctl(fake, "--json", "status", "acme").stdout)
    listed = json.loads(osctl(fake, "list", "--json").stdout)
    plan = json.loads(osctl(fake, "plan", "acme", "-f", str(spec), "--json").stdout)
    scaling = json.loads(osctl(fake, "scaling", "acme", "--json").stdout)

    assert status["environments"]["prod"]["resourcesTotal"] == 12
    assert [p["solutionId"] for p in listed["platforms"]] == ["acme"]
    assert plan["totals"] == {"create": 0, "update": 0, "noop": 9}
    assert scaling["policy"]["maxCapacity"] == 6


def test_json_deploy_prints_only_the_final_state_on_stdout(fake: FakeApi, spec: Path):
    result = osctl(fake, "--json", "deploy", "acme", "-f", str(spec), "--poll-interval", "0")

    assert result.exit_code == 0
    final = json.loads(result.stdout)
    assert final["outcome"] == "succeeded"
    assert final["status"] == "Succeeded"
    assert final["lastOperation"]["runtimeStatus"] == "Completed"
    assert final["outputs"]["life"]["lifetimeUrl"].endswith("/LifeTime")
    # Progress still reaches a CI log, on stderr.
    assert "dev   Succeeded   9/9" in result.stderr


def test_json_deploy_that_fails_says_so_and_exits_1(fake: FakeApi, spec: Path):
    fake.fail_next_deploy(FailPlan("test"))

    result = osctl(fake, "deploy", "acme", "-f", str(spec), "--poll-interval", "0", "--json")

    assert result.exit_code == 1
    final = json.loads(result.stdout)
    assert final["outcome"] == "failed"
    assert final["environments"]["test"]["error"]["code"] == "OperationNotAllowed"


def test_json_errors_go_to_stderr_with_the_same_exit_codes(fake: FakeApi):
    result = osctl(fake, "--json", "status", "nope")

    assert result.exit_code == 2
    assert result.stdout == ""
    assert "PlatformNotFound" in result.stderr


# --- keys ----------------------------------------------------------------------------------


def test_the_key_is_sent_as_a_header_and_never_printed(fake: FakeApi, spec: Path):
    fake.key = KEY

    runs = [
        osctl(fake, "deploy", "acme", "-f", str(spec), "--no-wait", key=KEY),
        osctl(fake, "-v", "wait", "acme", "--poll-interval", "0", key=KEY),
        osctl(fake, "--json", "deploy", "acme", "-f", str(spec), "--no-wait", key=KEY),
        osctl(fake, "--json", "-v", "wait", "acme", "--poll-interval", "0", key=KEY),
        osctl(fake, "--json", "cancel", "acme", key=KEY),
        osctl(fake, "status", "acme", key=KEY),
    ]

    assert [run.exit_code for run in runs] == [0, 0, 0, 0, 2, 0]
    for run in runs:
        assert KEY not in run.output
        assert KEY[:20] not in run.output
    assert "/operations/" in runs[0].stdout
    assert "code=" not in runs[0].stdout
    assert json.loads(runs[2].stdout)["status"] == "Running"
    api_calls = [headers for _, path, headers in fake.requests if path.startswith("/api/")]
    assert api_calls
    assert all(headers.get("x-functions-key") == KEY for headers in api_calls)
    # Verbose logging shows the requests, redacted too.
    assert "GET http://127.0.0.1" in runs[1].stderr


def test_a_server_echoing_the_key_in_an_error_does_not_leak_it(fake: FakeApi):
    fake.key = KEY
    fake.inject(500, body=f"internal error while checking key {KEY} for ?code={KEY}")

    result = osctl(fake, "list", key=KEY)

    assert result.exit_code == 3
    assert "HTTP 500" in result.stderr
    assert KEY not in result.output
    assert "key *** for ?code=***" in result.stderr


def test_a_missing_or_wrong_key_is_a_401_exit_2(fake: FakeApi):
    fake.key = KEY

    missing = osctl(fake, "list")
    wrong = osctl(fake, "list", key="not-the-right-key-at-all")

    for result in (missing, wrong):
        assert result.exit_code == 2
        assert "unauthorized: the function key is missing or wrong" in result.stderr


def test_the_key_can_come_from_the_environment(fake: FakeApi):
    fake.key = KEY
    fake.seed("acme")

    result = runner.invoke(
        app, ["status", "acme"], env={**CLEAN_ENV, "OSCTL_URL": fake.url, "OSCTL_KEY": KEY}
    )

    assert result.exit_code == 0, result.output
    assert KEY not in result.output


# --- the server misbehaving or absent -----------------------------------------------------


def test_server_errors_exit_3_with_the_body(fake: FakeApi):
    fake.inject(503, body="Service Unavailable: host is restarting")

    result = osctl(fake, "list")

    assert result.exit_code == 3
    assert "HTTP 503 Service Unavailable: Service Unavailable: host is restarting" in result.stderr


def test_a_route_the_app_does_not_have_is_not_called_an_unknown_platform(fake: FakeApi):
    fake.inject(404)

    result = osctl(fake, "status", "acme")

    assert result.exit_code == 2
    assert "error: not found: GET /api/platforms/acme (is the URL right" in result.stderr
    assert "osctl list" not in result.stderr


def test_a_redirect_is_not_followed(fake: FakeApi):
    fake.inject(301)

    result = osctl(fake, "list")

    assert result.exit_code == 3
    assert "the server redirected" in result.stderr


def test_an_unreachable_server_exit_3_naming_the_url(fake: FakeApi):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    # Nothing listens on that port any more.
    result = runner.invoke(app, ["--url", f"http://127.0.0.1:{port}", "list"], env=CLEAN_ENV)

    assert result.exit_code == 3
    assert f"error: could not reach http://127.0.0.1:{port}/api/platforms" in result.stderr
    assert "connection refused" in result.stderr
    assert "Traceback" not in result.output


def test_a_url_with_an_api_suffix_still_works(fake: FakeApi):
    fake.seed("acme")

    result = runner.invoke(app, ["--url", fake.url + "/api/", "status", "acme"], env=CLEAN_ENV)

    assert result.exit_code == 0


def test_usage_errors_exit_2(fake: FakeApi):
    assert osctl(fake, "deploy", "acme").exit_code == 2  # no -f
    assert osctl(fake, "scale", "acme", "--capacity", "lots").exit_code == 2
    assert osctl(fake, "frobnicate").exit_code == 2


def test_version_and_help(fake: FakeApi):
    assert osctl(fake, "--version").stdout.startswith("osctl ")
    help_text = osctl(fake, "--help").stdout
    for command in ("deploy", "status", "plan", "scale", "scaling", "destroy", "cancel", "list"):
        assert command in help_text

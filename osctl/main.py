"""The `osctl` command line: one command per route of the app's HTTP API, plus `wait`.

Exit codes: 0 success; 1 the operation failed, partially succeeded or was canceled (or a
confirmation was declined); 2 usage or validation error (every 4xx); 3 the server could not be
reached or failed (5xx); 4 (`status`, `list`) an operation is still running. `status` and `list`
exit 0 only when the platform's (every platform's) last operation succeeded.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer

from osctl import __version__
from osctl.client import (
    DEFAULT_TIMEOUT,
    DEFAULT_URL,
    Accepted,
    ApiClient,
    ApiConnectionError,
    ApiError,
    JSONObject,
)
from osctl.follow import STATUS_OUTCOMES, Follower, Operation, Outcome, Snapshot, outcome
from osctl.redact import Redactor
from osctl.render import Output

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_SERVER = 3
EXIT_RUNNING = 4
EXIT_INTERRUPTED = 130

DEFAULT_POLL_INTERVAL = 2.0

app = typer.Typer(
    name="osctl",
    help="Deploy, upgrade, follow, scale and tear down OutSystems platforms through the function "
    "app's API.",
    no_args_is_help=True,
    add_completion=False,
    # Locals in a traceback would include the function key.
    pretty_exceptions_show_locals=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


upgrade_app = typer.Typer(
    name="upgrade",
    help="Upgrades of a platform's versions (start one with deploy and a spec with higher "
    "versions).",
    no_args_is_help=True,
)
app.add_typer(upgrade_app)


class UsageError(Exception):
    """Bad input found before anything was sent (a missing or invalid spec file, ...)."""


@dataclass(frozen=True)
class Settings:
    url: str
    key: str | None
    json_mode: bool
    timeout: float
    plain: bool

    def client(self) -> ApiClient:
        return ApiClient(self.url, self.key, self.timeout)

    def output(self, json_flag: bool) -> Output:
        return Output.create(
            secrets=[self.key], json_mode=self.json_mode or json_flag, plain=self.plain
        )


SolutionId = Annotated[
    str, typer.Argument(help="The platform's solution id (lowercase, at most 6 characters).")
]
SpecFile = Annotated[
    str,
    typer.Option("--file", "-f", help="The platform spec, a JSON file ('-' reads standard input)."),
]
JsonFlag = Annotated[
    bool, typer.Option("--json", help="Print the API's JSON (redacted) instead of tables.")
]
NoWait = Annotated[
    bool, typer.Option("--no-wait", help="Return once the API accepted the request.")
]
PollInterval = Annotated[
    float,
    typer.Option("--poll-interval", min=0.0, help="Seconds between two status polls."),
]


def _show_version(value: bool) -> None:
    if value:
        typer.echo(f"osctl {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    ctx: typer.Context,
    url: Annotated[
        str, typer.Option("--url", envvar="OSCTL_URL", help="Base URL of the function app.")
    ] = DEFAULT_URL,
    key: Annotated[
        str | None,
        typer.Option(
            "--key",
            envvar="OSCTL_KEY",
            show_default=False,
            help="Function key, sent as the x-functions-key header (never printed).",
        ),
    ] = None,
    json_mode: Annotated[
        bool, typer.Option("--json", help="Machine output: the API's JSON, redacted.")
    ] = False,
    timeout: Annotated[
        float, typer.Option("--timeout", min=0.1, help="Seconds to wait for each HTTP answer.")
    ] = DEFAULT_TIMEOUT,
    plain: Annotated[
        bool,
        typer.Option("--plain", help="Plain progress lines even on a terminal (as in CI logs)."),
    ] = False,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Log each HTTP request to stderr.")
    ] = False,
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_show_version, is_eager=True, help="Show the version and exit."
        ),
    ] = False,
) -> None:
    """Talk to the OutSystems platform function app at --url (OSCTL_URL) with --key (OSCTL_KEY)."""
    _configure_logging(Redactor([key]), verbose)
    ctx.obj = Settings(url=url, key=key, json_mode=json_mode, timeout=timeout, plain=plain)


@app.command()
def deploy(
    ctx: typer.Context,
    solution_id: SolutionId,
    spec_file: SpecFile,
    no_wait: NoWait = False,
    poll_interval: PollInterval = DEFAULT_POLL_INTERVAL,
    json_flag: JsonFlag = False,
) -> None:
    """Create or update a platform from a spec and follow the deployment until it ends.

    A spec with higher versions upgrades the platform (the same spec again resumes an upgrade
    that stopped); the upgrade pauses between environments for: osctl upgrade approve."""
    output, client = _context(ctx, json_flag)
    hints = {409: _busy_hint(solution_id)}
    with _handled(output, hints):
        spec = _read_spec(spec_file)
        baseline = _current_operation(client, solution_id)
        accepted = client.deploy(solution_id, spec)
        kind = "upgrade" if accepted.body.get("kind") == "upgrade" else "deploy"
        if kind == "upgrade":
            resumes = accepted.body.get("resumes")
            what = f"Upgrade of {solution_id}" + (f" (resuming {resumes})" if resumes else "")
            title = f"{'Resuming the upgrade' if resumes else 'Upgrading'} {solution_id} on "
        else:
            what, title = f"Deployment of {solution_id}", f"Deploying {solution_id} on "
        _accepted_or_follow(
            output,
            Follower(
                client,
                solution_id,
                poll_interval,
                baseline=baseline,
                status_url=accepted.status_url,
                kind=kind,
            ),
            accepted,
            no_wait,
            what=what,
            title=title + client.base_url,
        )


@app.command()
def status(ctx: typer.Context, solution_id: SolutionId, json_flag: JsonFlag = False) -> None:
    """Show a platform's last operation, its environments and its outputs."""
    output, client = _context(ctx, json_flag)
    with _handled(output, {404: _unknown_hint()}):
        data = client.get_platform(solution_id)
        if output.json_mode:
            output.json(data)
        else:
            output.platform(data)
    raise typer.Exit(_exit_code(outcome(Snapshot.from_platform(solution_id, data))))


@app.command()
def plan(
    ctx: typer.Context, solution_id: SolutionId, spec_file: SpecFile, json_flag: JsonFlag = False
) -> None:
    """Show what deploying this spec would create, update or leave as it is."""
    output, client = _context(ctx, json_flag)
    with _handled(output):
        data = client.plan(solution_id, _read_spec(spec_file))
        if output.json_mode:
            output.json(data)
        else:
            output.plan(data)


@app.command()
def scale(
    ctx: typer.Context,
    solution_id: SolutionId,
    capacity: Annotated[
        int | None, typer.Option("--capacity", min=0, help="Set the front-end capacity to N.")
    ] = None,
    delta: Annotated[
        int | None, typer.Option("--delta", help="Change the capacity by N (negative: in).")
    ] = None,
    json_flag: JsonFlag = False,
) -> None:
    """Set the production front-end capacity by hand (--capacity N or --delta N)."""
    output, client = _context(ctx, json_flag)
    with _handled(output, {404: _unknown_hint()}):
        if (capacity is None) == (delta is None):
            raise UsageError("give exactly one of --capacity N and --delta N")
        data = client.scale(solution_id, capacity=capacity, delta=delta)
        if output.json_mode:
            output.json(data)
            return
        scale_set = str(data.get("scaleSet") or "the scale set").rsplit("/", 1)[-1]
        output.line(
            f"Scale request {data.get('requestId', '?')} accepted: {scale_set} "
            f"to {data.get('target', '?')} instances.",
            style="bold",
        )
        output.line(f"See the decision with: osctl scaling {solution_id}")


@app.command()
def scaling(
    ctx: typer.Context,
    solution_id: SolutionId,
    limit: Annotated[
        int, typer.Option("--limit", min=1, help="How many recent decisions to show.")
    ] = 20,
    json_flag: JsonFlag = False,
) -> None:
    """Show the front-end scaling policy, live capacity, cooldown and recent decisions."""
    output, client = _context(ctx, json_flag)
    with _handled(output, {404: _unknown_hint()}):
        data = client.scaling(solution_id)
        if output.json_mode:
            output.json(data)
        else:
            output.scaling(data, limit)


@app.command()
def destroy(
    ctx: typer.Context,
    solution_id: SolutionId,
    environments: Annotated[
        str | None,
        typer.Option(
            "--environments", help="Only these environments, comma-separated (e.g. dev,test)."
        ),
    ] = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    no_wait: NoWait = False,
    poll_interval: PollInterval = DEFAULT_POLL_INTERVAL,
    json_flag: JsonFlag = False,
) -> None:
    """Tear a platform down (all of it, or --environments), after confirmation."""
    output, client = _context(ctx, json_flag)
    hints = {404: _unknown_hint(), 409: _busy_hint(solution_id)}
    with _handled(output, hints):
        selected = _environments(environments)
        current = client.get_platform(solution_id)
        if not yes:
            _confirm_destroy(solution_id, selected, current)
        baseline = Snapshot.from_platform(solution_id, current).operation
        accepted = client.destroy(solution_id, selected)
        _accepted_or_follow(
            output,
            Follower(
                client,
                solution_id,
                poll_interval,
                baseline=baseline,
                status_url=accepted.status_url,
                kind="teardown",
            ),
            accepted,
            no_wait,
            what=f"Teardown of {solution_id}",
            title=f"Destroying {_what(selected)} platform {solution_id} on {client.base_url}",
            targets=selected,
        )


@upgrade_app.command("approve")
def approve(
    ctx: typer.Context,
    solution_id: SolutionId,
    environment: Annotated[
        str | None,
        typer.Option(
            "--environment",
            "-e",
            help="The environment you approve; refused (nothing approved) when the upgrade "
            "awaits another one.",
        ),
    ] = None,
    json_flag: JsonFlag = False,
) -> None:
    """Let the platform's paused upgrade go on to the environment it awaits."""
    output, client = _context(ctx, json_flag)
    hints = {
        404: _unknown_hint(),
        409: f"See where the upgrade stands with: osctl status {solution_id}",
    }
    with _handled(output, hints):
        accepted = client.approve_upgrade(solution_id, environment)
        if output.json_mode:
            output.json(accepted.body)
            return
        approved = accepted.body.get("environment") or environment or "the next environment"
        output.line(f"Approved: the upgrade of {solution_id} goes on to {approved}.", style="bold")
        output.line(f"Follow it with: osctl wait {solution_id}")


@app.command()
def cancel(ctx: typer.Context, solution_id: SolutionId, json_flag: JsonFlag = False) -> None:
    """Stop the running deployment, upgrade or teardown; resources stay as they are."""
    output, client = _context(ctx, json_flag)
    with _handled(output, {404: _unknown_hint()}):
        accepted = client.cancel(solution_id)
        if output.json_mode:
            output.json(accepted.body)
            return
        output.line(f"Cancellation of {solution_id}'s running operation requested.", style="bold")
        output.line(f"Follow it to the end with: osctl wait {solution_id}")


@app.command("list")
def list_platforms(ctx: typer.Context, json_flag: JsonFlag = False) -> None:
    """List the platforms this app manages."""
    output, client = _context(ctx, json_flag)
    with _handled(output):
        data = client.list_platforms()
        if output.json_mode:
            output.json(data)
        else:
            output.platforms(data)
    items = [item for item in data.get("platforms") or [] if isinstance(item, dict)]
    codes = {
        _exit_code(STATUS_OUTCOMES.get(str(item.get("status")), Outcome.FAILED)) for item in items
    }
    raise typer.Exit(max(codes - {EXIT_RUNNING}, default=EXIT_RUNNING if codes else EXIT_OK))


@app.command()
def wait(
    ctx: typer.Context,
    solution_id: SolutionId,
    poll_interval: PollInterval = DEFAULT_POLL_INTERVAL,
    json_flag: JsonFlag = False,
) -> None:
    """Follow the platform's running operation until it ends (exit 0 if it succeeded)."""
    output, client = _context(ctx, json_flag)
    with _handled(output, {404: _unknown_hint()}):
        current = Snapshot.from_platform(solution_id, client.get_platform(solution_id))
        if current.operation is None:
            if output.json_mode:
                output.json(current.raw)
            else:
                output.line(f"{solution_id} has no operation to wait for.")
            return
        operation = current.operation
        _follow(
            output,
            Follower(client, solution_id, poll_interval),
            f"Following {operation.kind} of {solution_id} on {client.base_url}",
        )


# --- helpers -----------------------------------------------------------------------------


def _exit_code(result: Outcome) -> int:
    """0 for a success (or nothing to judge), 4 while it runs, 1 for any other outcome."""
    if result in {Outcome.SUCCEEDED, Outcome.NONE}:
        return EXIT_OK
    return EXIT_RUNNING if result is Outcome.RUNNING else EXIT_FAILED


def _context(ctx: typer.Context, json_flag: bool) -> tuple[Output, ApiClient]:
    settings = ctx.find_root().obj
    assert isinstance(settings, Settings)
    return settings.output(json_flag), settings.client()


@contextmanager
def _handled(output: Output, hints: Mapping[int, str] | None = None) -> Iterator[None]:
    """Turns the API's and the user's errors into a message and the documented exit code."""
    try:
        yield
    except ApiError as err:
        # A hint reads the app's own answer: a bare 404 from a wrong URL is not "unknown platform".
        hint = (hints or {}).get(err.status) if err.enveloped else None
        output.api_error(err, hint)
        raise typer.Exit(EXIT_USAGE if err.is_client_error else EXIT_SERVER) from None
    except ApiConnectionError as err:
        output.connection_error(err)
        raise typer.Exit(EXIT_SERVER) from None
    except UsageError as err:
        output.problem(str(err))
        raise typer.Exit(EXIT_USAGE) from None


def _follow(
    output: Output, follower: Follower, title: str, targets: Sequence[str] = ()
) -> NoReturn:
    try:
        with output.progress(title) as sink:
            final = follower.run(sink)
    except KeyboardInterrupt:
        output.line(
            "Stopped following; the operation goes on in the app. "
            f"Follow it again with: osctl wait {follower.solution_id}",
            stderr=True,
        )
        raise typer.Exit(EXIT_INTERRUPTED) from None
    result = outcome(final, targets)
    if output.json_mode:
        output.json({**final.raw, "outcome": result.value})
    else:
        output.summary(final, result, targets)
    raise typer.Exit(EXIT_OK if result is Outcome.SUCCEEDED else EXIT_FAILED)


def _accepted_or_follow(
    output: Output,
    follower: Follower,
    accepted: Accepted,
    no_wait: bool,
    *,
    what: str,
    title: str,
    targets: Sequence[str] = (),
) -> None:
    """With --no-wait, say what the API accepted; otherwise follow the operation to its end."""
    if not no_wait:
        _follow(output, follower, title, targets)  # exits with the operation's outcome
    if output.json_mode:
        output.json(accepted.body)
        return
    operation = f" (operation {accepted.operation_id})" if accepted.operation_id else ""
    output.line(f"{what} accepted{operation}.", style="bold")
    if accepted.status_url:
        output.line(f"Status: {accepted.status_url}")
    output.line(f"Follow it with: osctl wait {follower.solution_id}")


def _current_operation(client: ApiClient, solution_id: str) -> Operation | None:
    """The platform's last operation before a request, or None for a new platform."""
    try:
        return Snapshot.from_platform(solution_id, client.get_platform(solution_id)).operation
    except ApiError as err:
        if err.status == 404:
            return None
        raise


def _read_spec(path: str) -> JSONObject:
    name = "standard input" if path == "-" else path
    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
    except OSError as err:
        raise UsageError(f"cannot read the spec {name}: {err.strerror or err}") from None
    try:
        spec: Any = json.loads(text)
    except ValueError as err:
        raise UsageError(f"the spec {name} is not valid JSON: {err}") from None
    if not isinstance(spec, dict):
        raise UsageError(f"the spec {name} must be a JSON object")
    return spec


def _environments(value: str | None) -> list[str]:
    if value is None:
        return []
    names = [name.strip() for name in value.split(",") if name.strip()]
    if not names:
        raise UsageError("--environments needs at least one name, e.g. dev,test")
    return names


def _confirm_destroy(solution_id: str, selected: list[str], current: JSONObject) -> None:
    if not sys.stdin.isatty():
        raise UsageError(
            "destroy asks for confirmation, and this terminal cannot answer: pass --yes"
        )
    group = current.get("resourceGroup") or f"{solution_id}-rg"
    if not typer.confirm(
        f"Destroy {_what(selected)} platform {solution_id} (resource group {group})?",
        default=False,
    ):
        typer.echo("Nothing destroyed.")
        raise typer.Exit(EXIT_FAILED)


def _what(selected: Sequence[str]) -> str:
    return f"environments {', '.join(selected)} of" if selected else "all of"


def _busy_hint(solution_id: str) -> str:
    return (
        f"Follow the running operation with: osctl wait {solution_id} "
        f"(or stop it with: osctl cancel {solution_id})"
    )


def _unknown_hint() -> str:
    return "See the platforms this app manages with: osctl list"


class _RedactingHandler(logging.Handler):
    """Writes log records to the current stderr (so rich's live display can place them)."""

    def __init__(self, redactor: Redactor, level: int) -> None:
        super().__init__(level)
        self._redactor = redactor
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        sys.stderr.write(self._redactor.text(self.format(record)) + "\n")


def _configure_logging(redactor: Redactor, verbose: bool) -> None:
    logger = logging.getLogger("osctl")
    for handler in list(logger.handlers):
        if isinstance(handler, _RedactingHandler):
            logger.removeHandler(handler)
    level = logging.DEBUG if verbose else logging.WARNING
    logger.addHandler(_RedactingHandler(redactor, level))
    logger.setLevel(level)
    logger.propagate = False

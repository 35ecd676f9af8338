"""Everything osctl shows: rich tables, live progress bars, plain CI lines, JSON and errors.

All text passes through a `Redactor` before it is drawn, and the consoles write through a
`RedactingWriter`, so a function key can reach neither the screen nor a CI log. On a terminal,
progress is one live bar per environment (for an upgrade, one per environment and one per
server); anywhere else (a pipe, a CI log, `--plain`) it is one
plain line per change, without colours or cursor movement.
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import IO, Any, cast

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskID,
    TextColumn,
)
from rich.spinner import Spinner
from rich.table import Column, Table
from rich.text import Text

from osctl.client import ApiConnectionError, ApiError, JSONObject
from osctl.follow import (
    EnvFailure,
    EnvironmentProgress,
    EnvironmentUpgradeView,
    Outcome,
    ProgressSink,
    ServerUpgradeView,
    Snapshot,
    UpgradeView,
    involved,
    platform_order,
)
from osctl.redact import RedactingWriter, Redactor

# Wide enough for a plan's resource names and a step on one line in a CI log, where there is no
# terminal to ask (rich would assume 80 columns).
LOG_WIDTH = 120

STATUS_STYLES = {
    "Succeeded": "green",
    "PartiallySucceeded": "bold yellow",
    "Completed": "green",
    "Running": "cyan",
    "Pending": "dim",
    "Failed": "bold red",
    "Canceled": "yellow",
    "Terminated": "yellow",
    "Deleted": "magenta",
    "AwaitingApproval": "bold magenta",
    "Skipped": "dim",
}
#: How a state reads in a bar's status column (12 characters wide).
STATUS_LABELS = {"AwaitingApproval": "Awaiting"}
ACTION_STYLES = {"create": "green", "update": "yellow", "noop": "dim"}
ACTION_MARKS = {"create": "+", "update": "~", "noop": " "}
OUTPUT_LABELS = {
    "serviceCenterUrl": "Service Center",
    "lifetimeUrl": "LifeTime",
    "privateIps": "Private IPs",
}


def _console(stream: Any, redactor: Redactor) -> Console:
    width = None
    if not stream.isatty() and "COLUMNS" not in os.environ:
        width = LOG_WIDTH
    return Console(
        file=cast(IO[str], RedactingWriter(stream, redactor)),
        highlight=False,
        width=width,
    )


@dataclass
class Output:
    """The CLI's two consoles (stdout for results, stderr for errors) and its output mode."""

    out: Console
    err: Console
    redactor: Redactor
    json_mode: bool = False
    plain: bool = False

    @classmethod
    def create(cls, *, secrets: Sequence[str | None], json_mode: bool, plain: bool) -> Output:
        redactor = Redactor(secrets)
        out = _console(sys.stdout, redactor)
        err = _console(sys.stderr, redactor)
        return cls(out, err, redactor, json_mode, plain or not out.is_terminal)

    # --- plain text, JSON, errors ----------------------------------------------------------

    def line(self, text: str | Text, *, style: str | None = None, stderr: bool = False) -> None:
        console = self.err if stderr else self.out
        if isinstance(text, str):
            text = Text(self.redactor.text(text), style=style or "")
        console.print(text, soft_wrap=True)

    def json(self, data: Any) -> None:
        self.out.out(
            json.dumps(self.redactor.data(data), indent=2, ensure_ascii=False), highlight=False
        )

    def api_error(self, err: ApiError, hint: str | None = None) -> None:
        head = Text.assemble(
            ("error: ", "bold red"),
            self.redactor.text(err.message),
            (f"  [{err.code}, HTTP {err.status}]", "dim"),
        )
        self.err.print(head, soft_wrap=True)
        for detail in err.details:
            target = f"{detail.target}: " if detail.target else ""
            self.line(f"  {target}{detail.message}", stderr=True)
        if hint:
            self.line(hint, style="dim", stderr=True)

    def connection_error(self, err: ApiConnectionError) -> None:
        self.err.print(
            Text.assemble(
                ("error: ", "bold red"),
                self.redactor.text(f"could not reach {err.url} ({err.reason})"),
            ),
            soft_wrap=True,
        )
        self.line("Is the function app running? Set its URL with --url or OSCTL_URL.", stderr=True)

    def problem(self, message: str) -> None:
        self.err.print(
            Text.assemble(("error: ", "bold red"), self.redactor.text(message)), soft_wrap=True
        )

    # --- progress --------------------------------------------------------------------------

    @contextmanager
    def progress(self, title: str) -> Iterator[ProgressSink]:
        """Live bars on a terminal; plain lines otherwise (on stderr when stdout is JSON)."""
        if self.json_mode:
            yield PlainView(self.err, self.redactor)
            return
        self.line(title, style="bold")
        if self.plain:
            yield PlainView(self.out, self.redactor)
            return
        view = LiveView(self.out, self.redactor)
        with view.progress:
            yield view

    def summary(self, snapshot: Snapshot, result: Outcome, targets: Sequence[str] = ()) -> None:
        operation = snapshot.operation
        kind = operation.kind if operation else "operation"
        status = operation.runtime_status if operation else "unknown"
        envs = involved(snapshot, targets)
        upgrade = snapshot.upgrade
        if upgrade is not None:
            self._upgrade_summary(snapshot, upgrade, result)
            return
        if kind == "deploy":
            done = sum(env.status == "Succeeded" for env in envs)
            counts = f"{done}/{len(envs)} environments succeeded"
        else:
            done = sum(env.status == "Deleted" for env in envs)
            counts = f"{done}/{len(envs)} environments deleted"
        duration = _duration(operation.started_at, operation.updated_at) if operation else None
        took = f" in {duration}" if duration else ""
        if result is Outcome.SUCCEEDED:
            head = Text(f"✓ {kind} of {snapshot.solution_id} succeeded{took}", style="bold green")
        elif result is Outcome.PARTIALLY_SUCCEEDED:
            head = Text(f"✗ {kind} of {snapshot.solution_id} partially succeeded", style="bold red")
        elif result is Outcome.CANCELED:
            head = Text(f"■ {kind} of {snapshot.solution_id} {status.lower()}", style="bold yellow")
        else:
            head = Text(f"✗ {kind} of {snapshot.solution_id} failed ({status})", style="bold red")
        if envs:
            head.append(f": {counts}", style="")
        self.out.print(head, soft_wrap=True)
        for env in envs:
            if env.error is not None:
                self._failure_lines(env)
            elif env.status in {"Failed", "Canceled"}:
                self.line(f"  {env.name}: {env.status}", style=STATUS_STYLES[env.status])
        self.outputs(snapshot.outputs)

    def _upgrade_summary(self, snapshot: Snapshot, upgrade: UpgradeView, result: Outcome) -> None:
        operation = snapshot.operation
        what = f"upgrade of {snapshot.solution_id} to {upgrade.target}"
        done = sum(env.state == "Succeeded" for env in upgrade.environments)
        counts = f": {done}/{len(upgrade.environments)} environments upgraded"
        duration = _duration(operation.started_at, operation.updated_at) if operation else None
        took = f" in {duration}" if duration else ""
        if result is Outcome.SUCCEEDED:
            head = Text(f"✓ {what} succeeded{took}", style="bold green")
        elif result is Outcome.CANCELED or upgrade.state == "Canceled":
            head = Text(f"■ {what} canceled", style="bold yellow")
        else:
            head = Text(f"✗ {what} stopped ({upgrade.state})", style="bold red")
        head.append(counts, style="")
        self.out.print(head, soft_wrap=True)
        for env in upgrade.environments:
            if env.error is not None:
                self._error_lines(env.name, env.error)
            for server in env.servers:
                if server.error is not None:
                    self._error_lines(f"{env.name} {server.name}", server.error)
        if result is not Outcome.SUCCEEDED:
            self.line(
                "Resume it with the same spec (osctl deploy), or cancel it; a rollback is a "
                "restore from each environment's restore point.",
                style="dim",
            )
        self.outputs(snapshot.outputs)

    def _error_lines(self, who: str, error: EnvFailure) -> None:
        self.line(f"  {who}: {error.code}: {error.message}", style=STATUS_STYLES["Failed"])
        if error.resource:
            self.line(f"    resource: {error.resource}")

    def _failure_lines(self, env: EnvironmentProgress) -> None:
        assert env.error is not None
        self.line(
            f"  {env.name}: {env.error.code}: {env.error.message}",
            style=STATUS_STYLES["Failed"],
        )
        if env.error.resource:
            self.line(f"    resource: {env.error.resource}")

    def outputs(self, outputs: Mapping[str, Any]) -> None:
        rows = [
            (env, _label(key), _value(value))
            for env, values in _ordered(outputs)
            if isinstance(values, dict)
            for key, value in values.items()
            if value not in (None, "", [])
        ]
        if not rows:
            return
        table = Table(title="Outputs", title_justify="left", box=None, show_header=False)
        table.add_column("env", style="bold")
        table.add_column("what")
        table.add_column("value", overflow="fold")
        previous = None
        for env, label, value in rows:
            table.add_row(env if env != previous else "", label, self.redactor.text(value))
            previous = env
        self.out.print(table)

    # --- one command's result each -------------------------------------------------------

    def platform(self, data: JSONObject) -> None:
        data = self.redactor.data(data)
        snapshot = Snapshot.from_platform(str(data.get("solutionId", "")), data)
        info = Table.grid(padding=(0, 2))
        info.add_column(style="bold")
        info.add_column()
        info.add_row("Platform", snapshot.solution_id)
        if snapshot.status:
            info.add_row(
                "Status", Text(snapshot.status, style=STATUS_STYLES.get(snapshot.status, ""))
            )
        info.add_row("Subscription", str(data.get("subscriptionId") or "-"))
        info.add_row("Resource group", str(data.get("resourceGroup") or "-"))
        operation = snapshot.operation
        if operation is not None:
            info.add_row(
                "Last operation",
                Text.assemble(
                    f"{operation.kind} ",
                    (operation.runtime_status, STATUS_STYLES.get(operation.runtime_status, "")),
                    f"  started {operation.started_at or '-'}",
                    f", updated {operation.updated_at or '-'}",
                ),
            )
        upgrade = snapshot.upgrade
        if upgrade is not None:
            info.add_row(
                "Upgrade",
                Text.assemble(
                    f"{upgrade.source} → {upgrade.target} ",
                    (upgrade.state, STATUS_STYLES.get(upgrade.state, "")),
                ),
            )
        self.out.print(info)
        if upgrade is not None:
            self.out.print(upgrade_table(upgrade))
        elif snapshot.environments:
            self.out.print(environments_table(snapshot.environments))
        self.outputs(snapshot.outputs)
        if upgrade is not None and upgrade.awaiting and upgrade.state == "AwaitingApproval":
            self.line(awaiting_line(snapshot.solution_id, upgrade), style="bold magenta")
        if operation is not None and not operation.terminal:
            self.line(f"Follow it with: osctl wait {snapshot.solution_id}", style="dim")

    def platforms(self, data: JSONObject) -> None:
        data = self.redactor.data(data)
        items = [item for item in data.get("platforms") or [] if isinstance(item, dict)]
        if not items:
            self.line("No platforms yet. Deploy one with: osctl deploy <solutionId> -f spec.json")
            return
        table = Table("Solution", "Subscription", "Resource group", "Last operation", "Updated")
        for item in items:
            last = item.get("lastOperation") or {}
            # The outcome (issue 14.1); Durable's runtime status only from an app without it.
            status = str(item.get("status") or last.get("runtimeStatus") or "")
            table.add_row(
                str(item.get("solutionId", "")),
                str(item.get("subscriptionId") or "-"),
                str(item.get("resourceGroup") or "-"),
                Text.assemble(f"{last.get('kind', '')} ", (status, STATUS_STYLES.get(status, "")))
                if last
                else Text("-"),
                str(last.get("updatedAt") or "-"),
            )
        self.out.print(table)

    def plan(self, data: JSONObject) -> None:
        """A table of resources with their action and changed fields, then each change's values.

        The values go below the table, one line each, so that long paths and SKUs stay readable
        on narrow terminals and in CI logs.
        """
        data = self.redactor.data(data)
        if data.get("operation") == "upgrade":
            self.upgrade_plan(data)
            return
        resources = [item for item in data.get("resources") or [] if isinstance(item, dict)]
        table = Table("", "Env", "Type", "Name", "Changed fields")
        details: list[Text] = []
        for item in resources:
            action = str(item.get("action", ""))
            style = ACTION_STYLES.get(action, "")
            name = str(item.get("name", ""))
            changes = [c for c in item.get("changes") or [] if isinstance(c, dict)]
            table.add_row(
                Text(f"{ACTION_MARKS.get(action, '?')} {action}", style=style),
                str(item.get("environment") or "shared"),
                _short_type(str(item.get("type", ""))),
                name,
                ", ".join(_short_path(str(c.get("path", ""))) for c in changes),
            )
            details += [
                Text.assemble(
                    (f"  {ACTION_MARKS.get(action, '?')} {name} ", style),
                    f"{c.get('path')}: {_value(c.get('from'))} → {_value(c.get('to'))}",
                )
                for c in changes
            ]
        if resources:
            self.out.print(table)
        if details:
            self.line("Changes:", style="bold")
            for detail in details:
                self.out.print(detail, soft_wrap=True)
        totals = data.get("totals") or {}
        create, update, noop = (int(totals.get(key, 0)) for key in ("create", "update", "noop"))
        if create or update:
            self.line(
                f"Plan: {create} to create, {update} to update, {noop} unchanged.", style="bold"
            )
        else:
            self.line(f"No changes: all {noop} resources match the spec.", style="bold")

    def upgrade_plan(self, data: JSONObject) -> None:
        """An upgrade's steps in order: environment, step, resource, what it does."""
        source = data.get("from") or {}
        target = data.get("to") or {}
        self.line(
            f"Upgrade from Platform Server {source.get('platformVersion', '?')} (LifeTime "
            f"{source.get('lifetimeVersion', '?')}) to {target.get('platformVersion', '?')} "
            f"(LifeTime {target.get('lifetimeVersion', '?')}), in the order "
            f"{', '.join(str(env) for env in data.get('order') or [])}.",
            style="bold",
        )
        if data.get("resumes"):
            kept = ", ".join(str(env) for env in data.get("kept") or []) or "none"
            self.line(f"Resumes the stopped upgrade {data['resumes']} (already upgraded: {kept}).")
        steps = [item for item in data.get("steps") or [] if isinstance(item, dict)]
        table = Table("#", "Env", "Step", "Resource", "What", show_lines=False)
        for number, step in enumerate(steps, start=1):
            target_id = str(step.get("target") or "")
            table.add_row(
                str(number),
                str(step.get("environment", "")),
                str(step.get("step", "")),
                target_id.rsplit("/", 1)[-1] if target_id else "-",
                str(step.get("detail", "")),
            )
        if steps:
            self.out.print(table)
        soak = data.get("soakMinutes")
        pause = (
            f"each pause ends after {soak} minutes unless approved sooner"
            if soak is not None
            else "each pause waits for: osctl upgrade approve <solutionId>"
        )
        self.line(f"Plan: {len(steps)} steps; {pause}.", style="bold")

    def scaling(self, data: JSONObject, limit: int) -> None:
        data = self.redactor.data(data)
        policy = data.get("policy") or {}
        info = Table.grid(padding=(0, 2))
        info.add_column(style="bold")
        info.add_column()
        scale_set = str(data.get("scaleSet") or "-")
        info.add_row("Scale set", scale_set.rsplit("/", 1)[-1])
        info.add_row(
            "Capacity",
            f"{data.get('capacity', '?')}  (min {policy.get('minCapacity', '?')}, "
            f"max {policy.get('maxCapacity', '?')})",
        )
        info.add_row(
            "Policy",
            f"out +{policy.get('scaleOutStep', '?')}, in -{policy.get('scaleInStep', '?')}, "
            f"cooldown {policy.get('cooldownMinutes', '?')} min",
        )
        schedules = [s for s in policy.get("schedules") or [] if isinstance(s, dict)]
        info.add_row("Schedules", "\n".join(_schedule(s) for s in schedules) or "none")
        info.add_row("Cooldown until", str(data.get("cooldownUntil") or "-"))
        self.out.print(info)
        decisions = [d for d in data.get("decisions") or [] if isinstance(d, dict)]
        if not decisions:
            self.line("No scaling decisions yet.")
            return
        decisions.sort(key=lambda d: str(d.get("at") or ""), reverse=True)
        table = Table(
            "At", "Source", "Direction", "Change", "Outcome", "Reason", title="Recent decisions"
        )
        for decision in decisions[:limit]:
            outcome = str(decision.get("outcome", ""))
            change = ""
            if decision.get("from") is not None and decision.get("to") is not None:
                change = f"{decision['from']} → {decision['to']}"
            table.add_row(
                str(decision.get("at") or ""),
                str(decision.get("source") or ""),
                str(decision.get("direction") or ""),
                change,
                Text(outcome, style="green" if outcome == "applied" else "yellow"),
                str(decision.get("reason") or ""),
            )
        self.out.print(table)
        if len(decisions) > limit:
            self.line(f"({len(decisions) - limit} older decisions not shown; see --limit)")


def environments_table(environments: Sequence[EnvironmentProgress]) -> Table:
    table = Table("Environment", "Status", "Resources", "Step / error")
    for env in environments:
        detail = env.step or ""
        if env.error is not None:
            detail = f"{env.error.code}: {env.error.message}"
            if env.error.resource:
                detail += f"\n{env.error.resource}"
        table.add_row(
            env.name,
            Text(env.status, style=STATUS_STYLES.get(env.status, "")),
            f"{env.done}/{env.total}",
            detail,
        )
    return table


def _group(server: ServerUpgradeView) -> str:
    return {"updating": "U", "loaded": "L"}.get(server.group or "", "")


def _server_label(server: ServerUpgradeView) -> str:
    marks = [mark for mark in (_group(server), "temporary" if server.temporary else "") if mark]
    return f"{server.name} [{', '.join(marks)}]" if marks else server.name


def _server_detail(server: ServerUpgradeView) -> str:
    if server.error is not None:
        text = f"{server.error.code}: {server.error.message}"
        return f"{text} ({server.error.resource})" if server.error.resource else text
    parts = [server.step or "", f"at {server.version}" if server.version else ""]
    return " ".join(part for part in parts if part)


def _environment_detail(env: EnvironmentUpgradeView, upgrade: UpgradeView) -> str:
    if env.error is not None:
        text = f"{env.error.code}: {env.error.message}"
        return f"{text} ({env.error.resource})" if env.error.resource else text
    if upgrade.awaiting == env.name and upgrade.state == "AwaitingApproval":
        return "awaiting approval" + (
            f" (or the soak, until {upgrade.resumes_at})" if upgrade.resumes_at else ""
        )
    return env.step or ""


def awaiting_line(solution_id: str, upgrade: UpgradeView) -> str:
    soak = f" (or it goes on by itself at {upgrade.resumes_at})" if upgrade.resumes_at else ""
    return (
        f"The upgrade awaits the approval of {upgrade.awaiting}{soak}: "
        f"osctl upgrade approve {solution_id}"
    )


def upgrade_table(upgrade: UpgradeView) -> Table:
    """The upgrade's environments in their order, each followed by its servers."""
    table = Table("Environment / server", "State", "Steps", "Step / error")
    for env in upgrade.environments:
        table.add_row(
            Text(env.name, style="bold"),
            Text(env.state, style=STATUS_STYLES.get(env.state, "")),
            f"{env.done}/{env.total}",
            _environment_detail(env, upgrade),
        )
        for server in env.servers:
            table.add_row(
                f"  {_server_label(server)}",
                Text(server.state, style=STATUS_STYLES.get(server.state, "")),
                "",
                _server_detail(server),
            )
    return table


class PlainView:
    """One line whenever the operation's status or an environment's state changes."""

    def __init__(self, console: Console, redactor: Redactor) -> None:
        self._console = console
        self._redactor = redactor
        self._operation: str | None = None
        self._seen: dict[str, EnvironmentProgress] = {}
        self._lines: dict[str, str] = {}
        self._awaiting: str | None = None

    def update(self, snapshot: Snapshot) -> None:
        operation = snapshot.operation
        if operation is not None and operation.runtime_status != self._operation:
            self._operation = operation.runtime_status
            self._print(f"{snapshot.solution_id}: {operation.kind} {operation.runtime_status}")
        if snapshot.upgrade is not None:
            self._upgrade(snapshot.solution_id, snapshot.upgrade)
            return
        for env in snapshot.environments:
            if self._seen.get(env.name) == env:
                continue
            self._seen[env.name] = env
            line = f"{env.name:<5} {env.status:<9} {env.done:>3}/{env.total:<3}"
            if env.error is not None:
                line += f" {env.error.code}: {env.error.message}"
                if env.error.resource:
                    line += f" (resource {env.error.resource})"
            elif env.step:
                line += f" {env.step}"
            self._print(line.rstrip())

    def _upgrade(self, solution_id: str, upgrade: UpgradeView) -> None:
        """One line per change of an environment's or a server's state or step."""
        for env in upgrade.environments:
            line = f"{env.name:<5} {env.state:<16} {env.done:>2}/{env.total:<2}"
            self._changed(env.name, f"{line} {_environment_detail(env, upgrade)}".rstrip())
            for server in env.servers:
                text = f"  {_server_label(server)} {server.state} {_server_detail(server)}"
                self._changed(f"{env.name}/{server.name}", text.rstrip())
        awaiting = upgrade.awaiting if upgrade.state == "AwaitingApproval" else None
        if awaiting != self._awaiting:
            self._awaiting = awaiting
            if awaiting:
                self._print(awaiting_line(solution_id, upgrade))

    def _changed(self, key: str, line: str) -> None:
        if self._lines.get(key) != line:
            self._lines[key] = line
            self._print(line)

    def _print(self, line: str) -> None:
        self._console.print(Text(self._redactor.text(line)), soft_wrap=True)


class _StatusColumn(ProgressColumn):
    """The environment's status, with a spinner while it is still at work."""

    def __init__(self) -> None:
        super().__init__(table_column=Column(no_wrap=True, width=12))
        self._spinner = Spinner("dots", style="cyan")

    def render(self, task: Task) -> Text:
        status = str(task.fields.get("status", ""))
        style = STATUS_STYLES.get(status, "")
        label = STATUS_LABELS.get(status, status)
        if status in {"Running", "Pending"}:
            frame = self._spinner.render(task.get_time())
            return Text.assemble(frame if isinstance(frame, Text) else "", " ", (label, style))
        mark = {"Succeeded": "✓", "Deleted": "✓", "Failed": "✗", "AwaitingApproval": "⏸"}.get(
            status, "■"
        )
        return Text.assemble((mark, style), " ", (label, style))


class LiveView:
    """One live progress bar per environment: resources done/total, status, current step.

    For an upgrade: one bar per environment (its steps done/total) and, under it, one per
    server (done once the server is upgraded), in the order the upgrade goes."""

    def __init__(self, console: Console, redactor: Redactor) -> None:
        self._redactor = redactor
        self._tasks: dict[str, TaskID] = {}
        # Fixed widths for all but the step, which gets what is left and is cut with an
        # ellipsis: a long error message must not squeeze the bars.
        self.progress = Progress(
            TextColumn(
                "{task.description}",
                style="bold",
                markup=False,
                # An environment's name (5), or an upgrade's server name (wider).
                table_column=Column(min_width=5, max_width=28, no_wrap=True, overflow="ellipsis"),
            ),
            BarColumn(bar_width=30, table_column=Column(width=30, no_wrap=True)),
            MofNCompleteColumn(table_column=Column(width=7, justify="right", no_wrap=True)),
            _StatusColumn(),
            TextColumn(
                "{task.fields[step]}",
                markup=False,
                table_column=Column(ratio=1, no_wrap=True, overflow="ellipsis"),
            ),
            console=console,
            refresh_per_second=8,
            expand=True,
        )

    def update(self, snapshot: Snapshot) -> None:
        if snapshot.upgrade is not None:
            self._upgrade(snapshot.upgrade)
            return
        for env in snapshot.environments:
            step = env.step or ""
            if env.error is not None:
                step = f"{env.error.code}: {env.error.message}"
            step = self._redactor.text(step)
            total = env.total or None  # unknown yet: rich shows a pulsing bar
            task = self._tasks.get(env.name)
            if task is None:
                self._tasks[env.name] = self.progress.add_task(
                    f"{env.name:<5}", total=total, completed=env.done, status=env.status, step=step
                )
            else:
                self.progress.update(
                    task, total=total, completed=env.done, status=env.status, step=step
                )

    def _upgrade(self, upgrade: UpgradeView) -> None:
        rows: list[tuple[str, str, int | None, int, str, str]] = []
        for env in upgrade.environments:
            total = env.total or None
            detail = _environment_detail(env, upgrade)
            rows.append((env.name, f"{env.name:<5}", total, env.done, env.state, detail))
            for server in env.servers:
                done = 1 if server.state in {"Succeeded", "Skipped"} else 0
                label = f"  {_server_label(server)}"
                detail = _server_detail(server)
                rows.append((f"{env.name}/{server.name}", label, 1, done, server.state, detail))
        if [row[0] for row in rows] != list(self._tasks):
            # A server first seen (the farm's instances, once read): the bars are drawn again in
            # order, each server under its environment.
            for task in self._tasks.values():
                self.progress.remove_task(task)
            self._tasks.clear()
        for key, description, total, done, status, step in rows:
            step = self._redactor.text(step)
            existing = self._tasks.get(key)
            if existing is None:
                self._tasks[key] = self.progress.add_task(
                    description, total=total, completed=done, status=status, step=step
                )
            else:
                self.progress.update(
                    existing, total=total, completed=done, status=status, step=step
                )


def _ordered(outputs: Mapping[str, Any]) -> list[tuple[str, Any]]:
    return [(name, outputs[name]) for name in platform_order(outputs)]


def _label(key: str) -> str:
    if key in OUTPUT_LABELS:
        return OUTPUT_LABELS[key]
    words = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", key)
    return words[:1].upper() + words[1:].lower()


def _value(value: Any) -> str:
    if isinstance(value, list):
        return ", ".join(_value(item) for item in value)
    if isinstance(value, dict):
        return json.dumps(value, separators=(",", ":"))
    return "null" if value is None else str(value)


def _short_type(resource_type: str) -> str:
    return resource_type.removeprefix("Microsoft.")


def _short_path(path: str) -> str:
    # Every ARM resource keeps its settings under `properties.`: the rest is what tells.
    return path.removeprefix("properties.")


def _schedule(schedule: Mapping[str, Any]) -> str:
    days = ",".join(str(day) for day in schedule.get("days") or [])
    return (
        f"{days} {schedule.get('start', '?')}-{schedule.get('end', '?')} "
        f"{schedule.get('timeZone', '')}: at least {schedule.get('minCapacity', '?')}"
    )


def _duration(started: str | None, ended: str | None) -> str | None:
    if not started or not ended:
        return None
    try:
        seconds = int((_parse_time(ended) - _parse_time(started)).total_seconds())
    except (ValueError, TypeError):  # unparsable, or one naive and one aware
        return None
    if seconds < 0:
        return None
    minutes, seconds = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m{seconds:02d}s" if minutes else f"{seconds}s"


def _parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))

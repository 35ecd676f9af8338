"""The azd post-deploy hook that gives Azure Monitor its key (issue 13.1).

Oracle: "Work with access keys in Azure Functions" (MicrosoftDocs/azure-docs,
articles/azure-functions/function-keys-how-to.md at 02be6d7aead2d8dcea56dabcc13e96e7b9df65da):
a *function* key "allows access only to a specific function endpoint"; a *host* key (what
`az functionapp keys set --key-type functionKeys` makes) "allows access to all function
endpoints in a function app"; "when two keys are defined with the same name, the function key
is always used". The key in `ALERT_WEBHOOK_URL` travels into every farm's action group, so it
must be a function key of the alert function, and the host key the hook used to make must go.

`set-alert-webhook.sh` runs against a fake `az` (a script on PATH that keeps the app's keys and
the vault's secrets in a JSON file and logs every command line): the hook is driven as azd runs
it. Its `keys set` answer deliberately carries another value than the stored key, so a hook that
takes the key from that answer instead of reading it back is caught. `set-alert-webhook.ps1`
cannot run here (no PowerShell): its `az` commands are read with the PowerShell grammar.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from tests.support.powershell import parse, text, walk

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = ROOT / "infra" / "scripts"
URI = "https://func-ops-abc.azurewebsites.net"
ENV = {
    "AZURE_RESOURCE_GROUP": "rg-ops",
    "AZURE_FUNCTION_APP_NAME": "func-ops-abc",
    "AZURE_KEY_VAULT_NAME": "kv-ops-abc",
    "SERVICE_API_URI": URI,
}
KEY_NAME = "alertwebhook"
SECRET = "ALERT-WEBHOOK-URL"

FAKE_AZ = r"""
import json, secrets, sys
from pathlib import Path

STATE = Path(__file__).with_name("az-state.json")
state = json.loads(STATE.read_text())
args = sys.argv[1:]
with Path(__file__).with_name("az-calls.log").open("a") as log:
    log.write(json.dumps(args) + "\n")

def option(name, default=None):
    return args[args.index(name) + 1] if name in args else default

def query(document):
    path = option("--query")
    for part in (path.split(".") if path else []):
        document = document.get(part) if isinstance(document, dict) else None
    if document is None:
        return
    print(document if isinstance(document, str) else json.dumps(document))

def save():
    STATE.write_text(json.dumps(state))

words = [a for a in args if not a.startswith("-")][:4]
if args[:3] == ["functionapp", "keys", "list"]:
    query({"functionKeys": state["hostKeys"], "systemKeys": {}, "masterKey": "master"})
elif args[:3] == ["functionapp", "keys", "delete"]:
    state["hostKeys"].pop(option("--key-name"), None)
    save()
elif args[:3] == ["functionapp", "keys", "set"]:
    state["hostKeys"][option("--key-name")] = secrets.token_urlsafe(32)
    save()
elif args[:4] == ["functionapp", "function", "keys", "list"]:
    function = option("--function-name")
    if function not in state["functions"]:
        sys.exit(f"ERROR: Function {function} not found (is the code deployed?)")
    query(state["functions"][function])
elif args[:4] == ["functionapp", "function", "keys", "set"]:
    function = option("--function-name")
    if function not in state["functions"]:
        sys.exit(f"ERROR: Function {function} not found (is the code deployed?)")
    value = option("--key-value") or secrets.token_urlsafe(32)
    state["functions"][function][option("--key-name")] = value
    save()
    query({"name": option("--key-name"), "value": "not-what-was-stored"})
elif args[:3] == ["keyvault", "secret", "show"]:
    if option("--name") not in state["secrets"]:
        sys.exit("ERROR: SecretNotFound")
    query({"value": state["secrets"][option("--name")]})
elif args[:3] == ["keyvault", "secret", "set"]:
    state["secrets"][option("--name")] = Path(option("--file")).read_text()
    save()
elif args[:2] == ["functionapp", "restart"]:
    state["restarts"] += 1
    save()
else:
    sys.exit(f"fake az: unexpected command {args}")
"""


@cache
def alert_function_name() -> str:
    """The name under which the app registers `POST /api/alerts` (what Azure calls it)."""
    import importlib.util

    # Loaded under a name of its own: other tests load sample apps as `function_app`.
    location = Path(__file__).resolve().parents[2] / "function_app.py"
    loaded = importlib.util.spec_from_file_location("this_function_app", location)
    assert loaded is not None
    assert loaded.loader is not None
    function_app = importlib.util.module_from_spec(loaded)
    loaded.loader.exec_module(function_app)

    [name] = [
        f.get_function_name()
        for f in function_app.app.get_functions()
        if any(getattr(b, "route", None) == "alerts" for b in f.get_bindings())
    ]
    return str(name)


class Azure:
    """The fake `az` on a PATH of its own, its state and the command lines it saw."""

    def __init__(self, tmp: Path, state: dict[str, Any]) -> None:
        self.bin = tmp / "bin"
        self.bin.mkdir()
        az = self.bin / "az"
        az.write_text(f"#!{sys.executable}\n{FAKE_AZ}")
        az.chmod(az.stat().st_mode | stat.S_IEXEC)
        self.state_file = self.bin / "az-state.json"
        self.state_file.write_text(json.dumps(state))

    @property
    def state(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.state_file.read_text())
        return data

    @property
    def calls(self) -> list[list[str]]:
        log = self.bin / "az-calls.log"
        lines = log.read_text().splitlines() if log.exists() else []
        return [json.loads(line) for line in lines]

    def run_hook(self) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, **ENV, "PATH": f"{self.bin}:{os.environ['PATH']}"}
        return subprocess.run(
            ["sh", str(SCRIPTS / "set-alert-webhook.sh")],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )


def deployed(tmp: Path, **extra: Any) -> Azure:
    """An app whose code is deployed (the alert function exists, with its default key)."""
    state = {
        "hostKeys": {"default": "host-default-key"},
        "functions": {alert_function_name(): {"default": "function-default-key"}},
        "secrets": {},
        "restarts": 0,
        **extra,
    }
    return Azure(tmp, state)


def test_the_hook_stores_a_key_of_the_alert_function_only(tmp_path: Path) -> None:
    azure = deployed(tmp_path, hostKeys={"default": "host-default-key", KEY_NAME: "old-host-key"})
    result = azure.run_hook()
    assert result.returncode == 0, result.stderr
    state = azure.state
    key = state["functions"][alert_function_name()][KEY_NAME]
    assert state["secrets"][SECRET] == f"{URI}/api/alerts?code={key}"
    # The host key of the same name (earlier versions of the hook) opened every route: gone.
    assert KEY_NAME not in state["hostKeys"]
    assert state["restarts"] == 1
    made = [c for c in azure.calls if c[:4] == ["functionapp", "function", "keys", "set"]]
    assert len(made) == 1
    assert made[0][made[0].index("--function-name") + 1] == alert_function_name()
    assert "--key-value" not in made[0], "Functions generates the key"
    assert not [c for c in azure.calls if c[:3] == ["functionapp", "keys", "set"]]
    # The key never reaches a command line or the output.
    assert not [c for c in azure.calls if any(key in arg for arg in c)]
    assert key not in result.stdout + result.stderr


def test_the_hook_is_idempotent(tmp_path: Path) -> None:
    azure = deployed(tmp_path)
    assert azure.run_hook().returncode == 0
    first = azure.state
    before = len(azure.calls)
    assert azure.run_hook().returncode == 0
    again = azure.calls[before:]
    assert azure.state == first
    assert not [c for c in again if c[-2:] != ["-o", "tsv"] and "set" in c[:4]]
    assert not [c for c in again if c[:2] == ["functionapp", "restart"]]


def test_the_hook_needs_the_deployed_code(tmp_path: Path) -> None:
    """Before the code is deployed the function has no keys: the hook fails, saying why."""
    azure = deployed(tmp_path, functions={})
    result = azure.run_hook()
    assert result.returncode != 0
    assert azure.state["secrets"] == {}


def az_commands(path: Path) -> list[str]:
    """The text of every `az` command of a PowerShell script."""
    found = []
    for node in walk(parse(path.read_bytes()).root_node):
        if node.type == "command":
            name = node.child_by_field_name("command_name")
            if name is not None and text(name) == "az":
                found.append(" ".join(text(node).split()))
    return found


def test_the_windows_hook_does_the_same_steps() -> None:
    commands = az_commands(SCRIPTS / "set-alert-webhook.ps1")
    made = [c for c in commands if c.startswith("az functionapp function keys set")]
    assert len(made) == 1
    assert "--function-name $functionName" in made[0]
    assert "--key-value" not in made[0]
    assert any(c.startswith("az functionapp function keys list") for c in commands)
    assert not [c for c in commands if c.startswith("az functionapp keys set")]
    assert any(
        c.startswith("az functionapp keys delete") and "--key-type functionKeys" in c
        for c in commands
    )
    source = (SCRIPTS / "set-alert-webhook.ps1").read_text()
    assert f"$functionName = '{alert_function_name()}'" in source


@pytest.mark.parametrize("name", ["set-alert-webhook.sh", "set-alert-webhook.ps1"])
def test_both_hooks_name_the_alert_function(name: str) -> None:
    assert alert_function_name() in (SCRIPTS / name).read_text()

"""Whole platforms whose servers' setup meets what a real server would, end to end.

The ARM simulator runs with the app's own role (`infra/app/platform-operator-role.json`) and its
OutSystems server model (`localdev/armsim/setup_model.py`) decides how each setup extension
ends from the live resources. The farm and standalone examples come up whole; then each broken
design fails the environment it breaks, with what the setup script prints.

Each break is made the way a person at the portal would make it, through ARM, after the app
wrote the resource and just before the server that needs it is set up (`SimulatorServer.before`
on the app's PUT of that server's setup extension, or of the scale set): a redeploy could not
set it up, since the app puts its own resources back as they should be before it runs a setup.

Oracles: the setup script (`infra/scripts/Install-OutSystems.ps1`) for the texts and the line
numbers (its messages are checked word for word against the model in
tests/integration/armsim/test_setup_model.py); Microsoft's Custom Script Extension wording for
the failure ARM relays (Microsoft Learn, AKS troubleshooting "CniDownloadTimeoutVMExtensionError":
"... non-zero exit code of: '1'. The command had an error output of: '<stderr>' ..."), which
quotes the script's standard error only.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from localdev.armsim.authorization import Permissions
from localdev.armsim.server import SimulatorServer
from outsystems.names import ENVIRONMENTS
from outsystems.resource_types import (
    KEY_VAULT,
    NIC,
    NSG,
    ROLE_ASSIGNMENT,
    SCALE_SET,
    STORAGE_ACCOUNT,
    VM,
    VM_EXTENSION,
    VNET,
)
from outsystems.spec import parse_spec
from outsystems.topology import Resource, ResourceGraph, build_topology
from tests.e2e.test_deploy import sample
from tests.support.stack import SUBSCRIPTION, Stack

ROOT = Path(__file__).resolve().parents[2]
ROLE_FILE = ROOT / "infra" / "app" / "platform-operator-role.json"
SCRIPT = (ROOT / "infra" / "scripts" / "Install-OutSystems.ps1").read_text(encoding="utf-8-sig")
_ARGUMENT = re.compile(r"-(\w+) '((?:[^']|'')*)'")
COMPUTE_API = "2024-07-01"


def script_line(fragment: str) -> int:
    """The line of the script a statement is on (what `ScriptLineNumber` reports)."""
    return SCRIPT[: SCRIPT.index(fragment)].count("\n") + 1


PREFLIGHT_LINE = script_line('throw "Preflight: $($missing')
CONTROLLER_LINE = script_line('throw "the controller $ControllerAddress')


def preflight(*findings: str) -> str:
    return f"OutSystems setup failed: Preflight: {'; '.join(findings)} (line {PREFLIGHT_LINE})"


@dataclass
class Platform:
    """The desired graph of a spec, to name what the tests break and what they expect."""

    spec: dict[str, Any]
    graph: ResourceGraph

    @classmethod
    def of(cls, spec_file: str) -> Platform:
        spec = sample(spec_file)
        parsed = parse_spec("acme", spec, default_subscription_id=SUBSCRIPTION)
        return cls(spec, build_topology(parsed))

    def one(self, type_name: str, env: str | None = None, name: str | None = None) -> Resource:
        found = [
            r
            for r in self.graph
            if r.type == type_name
            and (env is None or r.environment == env)
            and (name is None or r.name == name)
        ]
        assert len(found) == 1, (type_name, env, name, [r.id for r in found])
        return found[0]

    def setup(self, env: str) -> Resource:
        return self.one(VM_EXTENSION, env)

    def arguments(self, env: str) -> dict[str, str]:
        """The setup script's arguments in the environment's setup command."""
        command = self.setup(env).body["properties"]["settings"]["commandToExecute"]
        return {k: v.replace("''", "'") for k, v in _ARGUMENT.findall(command)}

    def nsg(self, env: str) -> str:
        return self.one(NSG, name=f"acme-{env}-nsg").id

    def subnet(self, env: str) -> str:
        nic = self.one(NIC, env).body["properties"]["ipConfigurations"][0]["properties"]
        return str(nic["subnet"]["id"])

    def grant(self, env: str, scope: str) -> str:
        """The id of the role assignment of env's identity at `scope`."""
        return next(
            r.id
            for r in self.graph.for_environment(env)
            if r.type == ROLE_ASSIGNMENT and r.id.lower().startswith(scope.lower() + "/providers/")
        )

    def secret_id(self, name: str) -> str:
        return f"{self.one(KEY_VAULT).id}/secrets/{name}"


def someone_changes(sim: SimulatorServer, before: str, change: Callable[[], None]) -> None:
    """`change` happens just before the app's PUT to `before` (a resource id)."""
    path = before.split("/providers/", 1)[1]
    sim.before("PUT", f"/providers/{path}".lower(), lambda _: change())


def ok(answer: Any) -> Any:
    assert answer.status < 400, (answer.status, answer.body)
    return answer.body


def add_rule(sim: SimulatorServer, nsg: str, rule: dict[str, Any]) -> None:
    body = ok(sim.call("GET", nsg))
    rules = [*body["properties"].get("securityRules", []), rule]
    put = {"location": body["location"], "tags": body.get("tags", {})}
    put["properties"] = {"securityRules": rules}
    ok(sim.call("PUT", nsg, put))


def deny(name: str, priority: int, direction: str, **match: str) -> dict[str, Any]:
    properties = {
        "priority": priority,
        "direction": direction,
        "access": "Deny",
        "protocol": "Tcp",
        "sourceAddressPrefix": "*",
        "sourcePortRange": "*",
        "destinationAddressPrefix": "*",
        "destinationPortRange": "*",
        "description": "added by hand",
    }
    return {"name": name, "properties": properties | match}


def extension_stdout(sim: SimulatorServer, extension: str) -> str:
    view = ok(sim.call("GET", extension, query={"$expand": "instanceView"}))
    for substatus in view["properties"]["instanceView"]["substatuses"]:
        if substatus["code"].startswith("ComponentStatus/StdOut/"):
            return str(substatus["message"])
    raise AssertionError("no StdOut substatus")


def apps_role() -> Permissions:
    """The app's rights exactly as `infra/app/platform-operator-role.json` grants them."""
    return Permissions.load(ROLE_FILE)


def deployed(
    stack: Stack, platform: Platform, *, role: Permissions | None = None
) -> dict[str, Any]:
    stack.sim.set_permissions(role or apps_role())
    response = stack.deploy("acme", platform.spec)
    assert response.status_code == 202, response.text
    return stack.wait("acme")


def failed_only(state: dict[str, Any], env: str) -> dict[str, Any]:
    """The environment's error, after checking that it alone failed."""
    statuses = {e: state["environments"][e]["status"] for e in ENVIRONMENTS}
    assert statuses == {e: "Failed" if e == env else "Succeeded" for e in ENVIRONMENTS}
    error: dict[str, Any] = state["environments"][env]["error"]
    assert error["code"] == "VMExtensionProvisioningError"
    assert "returned a non-zero exit code of: '1'." in error["message"]
    return error


def reaches_the_platform_state(error: dict[str, Any], line: str) -> None:
    """The script's last line in the environment's error, as a user reads it."""
    # The script writes its last line to standard error too: the error output is what ARM's
    # VMExtensionProvisioningError quotes.
    assert "[Console]::Error.WriteLine($lastLine)" in SCRIPT
    assert line in error["message"]


# --- the whole platforms ------------------------------------------------------------------------


@pytest.mark.parametrize("spec_file", ["spec-farm.json", "spec-standalone.json"])
def test_every_server_of_a_platform_is_set_up(stack: Stack, spec_file: str) -> None:
    platform = Platform.of(spec_file)
    state = deployed(stack, platform)
    assert state["lastOperation"]["runtimeStatus"] == "Completed"
    assert {e: state["environments"][e]["status"] for e in ENVIRONMENTS} == dict.fromkeys(
        ENVIRONMENTS, "Succeeded"
    )
    # Each server's setup ran the model (not the default success of an unknown command).
    engine = stack.sim.engine
    for env in ENVIRONMENTS:
        vm = engine.store.get(platform.one(VM, env).id)
        assert vm is not None
        assert vm.extra["outsystems"] == {"setupToolsInstalled": True, "setupSucceeded": True}
        assert extension_stdout(stack.sim, platform.setup(env).id) == ""
    if spec_file == "spec-farm.json":
        scale_set = platform.one(SCALE_SET).id
        instances = ok(stack.sim.call("GET", f"{scale_set}/virtualMachines"))["value"]
        assert len(instances) == platform.spec["environments"]["prod"]["frontends"]["capacity"]
        for instance in instances:
            view = ok(stack.sim.call("GET", instance["id"], query={"$expand": "instanceView"}))
            (setup,) = view["properties"]["instanceView"]["extensions"]
            assert setup["statuses"][0]["code"] == "ProvisioningState/succeeded"


def test_the_apps_role_file_alone(stack: Stack) -> None:
    platform = Platform.of("spec-standalone.json")
    state = deployed(stack, platform, role=apps_role())
    assert {e: state["environments"][e]["status"] for e in ENVIRONMENTS} == dict.fromkeys(
        ENVIRONMENTS, "Succeeded"
    )


# --- broken designs -----------------------------------------------------------------------------


def test_an_nsg_rule_denying_sql_fails_the_dev_server(stack: Stack) -> None:
    platform = Platform.of("spec-standalone.json")
    nsg = platform.nsg("dev")
    someone_changes(
        stack.sim,
        platform.setup("dev").id,
        lambda: add_rule(
            stack.sim, nsg, deny("deny-sql", 90, "Outbound", destinationPortRange="1433")
        ),
    )
    error = failed_only(deployed(stack, platform), "dev")
    server = platform.arguments("dev")["DatabaseServer"]
    line = preflight(f"SQL server {server} is not reachable on TCP 1433")
    assert extension_stdout(stack.sim, platform.setup("dev").id) == line
    reaches_the_platform_state(error, line)


def test_the_test_subnet_without_its_nat_gateway(stack: Stack) -> None:
    platform = Platform.of("spec-farm.json")
    subnet = platform.subnet("test")

    def detach() -> None:
        body = ok(stack.sim.call("GET", subnet))
        kept = {
            k: v
            for k, v in body["properties"].items()
            if k not in {"provisioningState", "ipConfigurations", "natGateway"}
        }
        ok(stack.sim.call("PUT", subnet, {"properties": kept}))

    someone_changes(stack.sim, platform.setup("test").id, detach)
    error = failed_only(deployed(stack, platform), "test")
    args = platform.arguments("test")
    # Key Vault and Storage over the Internet: nothing answers (no HTTP status). SQL has its
    # service endpoint, but without the password there is no login to try.
    unreadable = [
        f"Key Vault secret '{args[name]}' is not readable in {args['KeyVaultUri']} (HTTP 0)"
        for name in ("DatabaseAdminPasswordSecret", "PrivateKeySecret", "AdminPasswordSecret")
    ]
    line = preflight(
        *unreadable,
        f"file share {args['StorageAccount']}/{args['FileShare']} is not writable with the "
        "managed identity (HTTP 0)",
        "the PowerShell Gallery (www.powershellgallery.com:443) is not reachable",
    )
    assert extension_stdout(stack.sim, platform.setup("test").id) == line
    reaches_the_platform_state(error, line)


def test_the_life_identity_without_its_role_on_the_share(stack: Stack) -> None:
    platform = Platform.of("spec-standalone.json")
    grant = platform.grant("life", platform.one(STORAGE_ACCOUNT).id)
    someone_changes(
        stack.sim, platform.setup("life").id, lambda: ok(stack.sim.call("DELETE", grant))
    )
    error = failed_only(deployed(stack, platform), "life")
    args = platform.arguments("life")
    line = preflight(
        f"file share {args['StorageAccount']}/{args['FileShare']} is not writable with the "
        "managed identity (HTTP 403)"
    )
    assert extension_stdout(stack.sim, platform.setup("life").id) == line
    reaches_the_platform_state(error, line)
    # The grant was the app's; the platform does not work without it.
    assert stack.sim.call("GET", grant).status == 404


def test_prod_without_its_role_on_the_sql_admin_secret(stack: Stack) -> None:
    platform = Platform.of("spec-farm.json")
    args = platform.arguments("prod")
    secret = platform.secret_id(args["DatabaseAdminPasswordSecret"])
    grant = platform.grant("prod", secret)
    someone_changes(
        stack.sim, platform.setup("prod").id, lambda: ok(stack.sim.call("DELETE", grant))
    )
    error = failed_only(deployed(stack, platform), "prod")
    line = preflight(
        f"Key Vault secret '{args['DatabaseAdminPasswordSecret']}' is not readable in "
        f"{args['KeyVaultUri']} (HTTP 403)"
    )
    assert extension_stdout(stack.sim, platform.setup("prod").id) == line
    reaches_the_platform_state(error, line)
    # The front-ends wait for a controller that never came up: the scale set is not created.
    assert stack.sim.call("GET", platform.one(SCALE_SET).id).status == 404


def test_front_ends_blocked_from_the_controllers_port_12000(stack: Stack) -> None:
    platform = Platform.of("spec-farm.json")
    nsg = platform.nsg("prod")
    controller = platform.arguments("prod")["ControllerAddress"]
    subnets = platform.one(VNET).body["properties"]["subnets"]
    prod = platform.subnet("prod").rsplit("/", 1)[-1]
    prod_prefix = next(s["properties"]["addressPrefix"] for s in subnets if s["name"] == prod)
    rule = deny(
        "deny-frontends-12000",
        105,
        "Inbound",
        sourceAddressPrefix=prod_prefix,
        destinationAddressPrefix=controller,
        destinationPortRange="12000",
    )
    scale_set = platform.one(SCALE_SET).id
    someone_changes(stack.sim, scale_set, lambda: add_rule(stack.sim, nsg, rule))
    error = failed_only(deployed(stack, platform), "prod")
    line = (
        f"OutSystems setup failed: the controller {controller} did not answer on TCP 12000 and "
        f"5672 within 20 minutes (line {CONTROLLER_LINE})"
    )
    # The controller is set up; the front-ends' setup fails, on every new instance.
    assert extension_stdout(stack.sim, platform.setup("prod").id) == ""
    instances = ok(stack.sim.call("GET", f"{scale_set}/virtualMachines"))["value"]
    assert instances
    for instance in instances:
        view = ok(stack.sim.call("GET", instance["id"], query={"$expand": "instanceView"}))
        (setup,) = view["properties"]["instanceView"]["extensions"]
        stdout = [s for s in setup["substatuses"] if s["code"].startswith("ComponentStatus/StdOut")]
        assert stdout[0]["message"] == line
    reaches_the_platform_state(error, line)

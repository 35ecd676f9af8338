"""Another party's change between two of the client's requests (`before`, `call`).

What a test can make happen in Azure at any moment: someone at the portal (or a policy) changes
a resource while a client deploys. `before` runs such a change just before a matching request
of the client, `call` makes the change through the same ARM engine.
"""

from __future__ import annotations

from localdev.armsim.server import SimulatorServer
from tests.support import armsim_bodies as bodies
from tests.support.armsim_clients import NETWORK_API, SUBSCRIPTION, Raw

GROUP_ID = f"/subscriptions/{SUBSCRIPTION}/resourceGroups/{bodies.GROUP}"
NSG = f"{GROUP_ID}/providers/Microsoft.Network/networkSecurityGroups"


def test_a_change_lands_just_before_the_matching_request(raw: Raw, sim: SimulatorServer) -> None:
    raw.send("PUT", GROUP_ID, {"location": bodies.LOCATION})
    seen: list[str] = []

    def someone(server: SimulatorServer) -> None:
        answer = server.call("PUT", f"{NSG}/by-hand", {"location": bodies.LOCATION})
        seen.append(f"{answer.status}")

    sim.before("PUT", "/networksecuritygroups/ours", someone)
    assert raw.put(f"{NSG}/ours", {"location": bodies.LOCATION}, api=NETWORK_API).status == 200
    assert seen == ["201"]
    puts = [r["path"].rsplit("/", 1)[-1] for r in sim.requests() if r["method"] == "PUT"]
    assert puts[-2:] == ["by-hand", "ours"]
    operator = [r for r in sim.requests() if r["clientRequestId"] == "armsim-operator"]
    assert [r["path"].rsplit("/", 1)[-1] for r in operator] == ["by-hand"]

    # Once only (count=1); and a reset forgets the ones not yet due.
    raw.put(f"{NSG}/ours", {"location": bodies.LOCATION}, api=NETWORK_API)
    assert seen == ["201"]
    sim.before("*", "/networksecuritygroups/ours", someone)
    sim.reset()
    raw.send("PUT", GROUP_ID, {"location": bodies.LOCATION})
    raw.put(f"{NSG}/ours", {"location": bodies.LOCATION}, api=NETWORK_API)
    assert seen == ["201"]


def test_a_change_goes_through_arm_with_the_callers_rights(sim: SimulatorServer) -> None:
    answer = sim.call("PUT", f"{NSG}/by-hand", {"location": bodies.LOCATION})
    assert answer.status == 404
    assert answer.body["error"]["code"] == "ResourceGroupNotFound"

"""The fleet link: a site's three-node cluster with leaf node connections to a central
nats-server (all real processes); fleet limit leases with a token, `hubgate fleet status`,
the site's state and sessions at the fleet, a site cut off from the fleet keeping its lease
until it runs out."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import trio
from nats.aio.msg import Msg

from hubgate.cluster.fleet import FleetLink, SessionWatch
from hubgate.cluster.link import open_nats_link
from hubgate.config.services import Cluster
from hubgate.control.limits import SITE, LimitBook, LimitSource
from hubgate.state import SiteState, StateHub
from tests.support.nats_cluster import LOOPBACK, NatsCluster
from tests.support.states import connector, node, site_state
from tests.support.wait import wait_until

pytestmark = [pytest.mark.peers("nats-server"), pytest.mark.timeout(90)]

HUBGATE = str(Path(sys.executable).parent / "hubgate")
TOKEN = "fleet-secret-0123456789"
LEASE_S = 60
"""The fleet lease first granted: it outlasts the test."""
CUT_OFF_LEASE_S = 5
"""The lease renewed just before the site is cut off, which it holds until it runs out."""


def plugged(status: str, energy_kwh: float, at: float) -> SiteState:
    """Site "north" with one connector in IEC state `status`, its meter at `energy_kwh`."""
    return site_state(
        site="north",
        at=at,
        nodes=[node("grid")],
        connectors=[connector("cp-1#1", status=status, energy_kwh=energy_kwh)],
    )


def test_a_session_runs_from_plug_in_to_unplug_whatever_comes_between() -> None:
    watch = SessionWatch()
    assert watch.update(plugged("A", 5.0, at=0.0)) == []
    [started] = watch.update(plugged("B", 5.0, at=1.0))
    assert started == {
        "connector": "cp-1#1", "charger": "cp-1", "at": 1.0, "event": "started", "energy_kwh": 5.0
    }  # fmt: skip
    for status in ("C", "Unreachable", "F", "Unknown", "D", "B"):
        assert watch.update(plugged(status, 7.0, at=2.0)) == []
    [ended] = watch.update(plugged("A", 9.0, at=3.0))
    assert (ended["event"], ended["started_at"], ended["delivered_kwh"]) == ("ended", 1.0, 4.0)
    watch.update(plugged("C", 9.0, at=4.0))
    [reset] = watch.update(plugged("A", 0.5, at=5.0))  # the meter went back: not a figure
    assert reset["delivered_kwh"] is None


async def test_fleet_limits_reach_the_site_through_a_leaf_node_and_lapse_when_cut_off(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HUBGATE_FLEET_TOKEN", TOKEN)
    fleet = NatsCluster.start(
        tmp_path / "fleet", size=1, jetstream=False, leaf=f"listen: {LOOPBACK}:-1"
    )
    leaf_port = fleet.nodes[0].listening("leafnode")
    site = NatsCluster.start(
        tmp_path / "site", leaf=f'remotes: [{{ url: "nats-leaf://{LOOPBACK}:{leaf_port}" }}]'
    )
    try:
        cluster = Cluster(
            site_id="north",
            node="gw-a",
            servers=(site.urls[0],),
            fleet_token_env="HUBGATE_FLEET_TOKEN",
        )
        central = Cluster(site_id="fleet", node="ops", servers=(fleet.urls[0],), replicas=1)
        limits = LimitBook()
        hub = StateHub()
        with trio.fail_after(60):
            async with (
                open_nats_link(cluster) as link,
                open_nats_link(central) as ops,
                trio.open_nursery() as nursery,
            ):
                link_to_site = FleetLink(link, cluster, hub, limits, lambda: "leader")
                await nursery.start(link_to_site.run)
                await ops.wait_connected()

                async def ask(body: dict[str, object]) -> dict[str, object]:
                    data = json.dumps(body).encode()
                    for _ in range(50):  # until the leaf connections carry the subscription
                        try:
                            reply = await ops.run(
                                lambda nc: nc.request("hubgate.north.limits.set", data, timeout=1)
                            )
                        except Exception:  # no responders yet
                            await trio.sleep(0.2)
                            continue
                        answer: dict[str, object] = json.loads(reply.data)
                        return answer
                    raise AssertionError("the site never answered through the leaf node")

                wrong = await ask({"token": "nope", "power_kw": 40, "lease_s": 2})
                assert wrong["status"] == "Rejected"
                assert limits.in_force(SITE, trio.current_time()).limit.power_kw is None
                taken = await ask(
                    {"token": TOKEN, "power_kw": 40, "lease_s": LEASE_S, "origin": "o"}
                )
                assert taken == {"status": "Accepted", "lease_s": LEASE_S}
                in_force = limits.in_force(SITE, trio.current_time())
                assert in_force.limit.power_kw == 40
                assert in_force.sources == (LimitSource.FLEET,)

                status = await trio.run_process(
                    [HUBGATE, "fleet", "status", "--server", fleet.urls[0], "--json"],
                    capture_stdout=True,
                )
                [line] = status.stdout.decode().splitlines()
                assert json.loads(line) == {"site": "north", "node": "gw-a", "role": "leader"}

                heard: list[tuple[str, dict[str, Any]]] = []

                async def hear(msg: Msg) -> None:
                    heard.append((msg.subject, json.loads(msg.data)))

                await ops.run(lambda nc: nc.subscribe("hubgate.north.>", cb=hear))
                await wait_until(lambda: heard, "the site's state at the fleet")

                def sessions() -> list[dict[str, Any]]:
                    return [body for subject, body in heard if subject == "hubgate.north.sessions"]

                hub.publish(plugged("B", 10.0, at=1000.0))
                [started] = await wait_until(sessions, "the session's start at the fleet")
                hub.publish(plugged("A", 12.5, at=1060.0))
                await wait_until(lambda: sessions()[1:], "the session's end at the fleet")
                _, ended = sessions()
                assert (started["event"], started["connector"]) == ("started", "cp-1#1")
                assert (ended["event"], ended["started_at"]) == ("ended", 1000.0)
                assert ended["delivered_kwh"] == 2.5
                state = [body for subject, body in heard if subject == "hubgate.north.state"][-1]
                assert state["site"] == "north"

                renewed = await ask(
                    {"token": TOKEN, "power_kw": 35, "lease_s": CUT_OFF_LEASE_S, "origin": "o"}
                )
                granted = trio.current_time()
                assert renewed == {"status": "Accepted", "lease_s": CUT_OFF_LEASE_S}
                await trio.to_thread.run_sync(fleet.close)  # the site is cut off
                assert trio.current_time() < granted + CUT_OFF_LEASE_S
                assert limits.in_force(SITE, trio.current_time()).limit.power_kw == 35
                await trio.sleep_until(granted + CUT_OFF_LEASE_S)  # ran out: its own limits
                assert limits.in_force(SITE, trio.current_time()).limit.power_kw is None
                nursery.cancel_scope.cancel()
    finally:
        site.close()
        fleet.close()


def test_fleet_status_without_a_gateway_says_none_answered(tmp_path: Path) -> None:
    """The server's own 'no responders' message to the request is no gateway's answer."""
    fleet = NatsCluster.start(tmp_path, size=1, jetstream=False)
    try:
        done = subprocess.run(
            [HUBGATE, "fleet", "status", "--server", fleet.urls[0]],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    finally:
        fleet.close()
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "no gateway answered\n")

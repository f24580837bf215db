"""The chargers' failsafes fit the limit whatever order their new ones land in: the gateway
between two charge points of the `ocpp` package under a 10 A connection, room for one 6 A
failsafe.

Each charge point applies the profiles it takes as OCPP 1.6 says (§3.13) and falls back,
once every lease lapsed (hubgate gone), to what its profiles give then. The first holds the
6 A; an EV arrives at the second, which is to have it instead. The first takes its new
profiles only after seconds (its answers held): hubgate may stop meanwhile, so the second is
given its 6 A only once the first's 0 A is in force.
"""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from typing import Any, ClassVar

import pytest
import trio
from ocpp.v16 import call as call16

from hubgate.config.model import SiteConfig
from hubgate.runtime.gateway import open_gateway
from tests.support.charge_points import ChargePointThread, Cp16, limit_at
from tests.support.wait import wait_until

IDENTITIES = ("FS-0", "FS-1")
LIMIT_A = 10.0


class FallingBack(Cp16):
    """A 1.6 charge point that notes, each time it takes a profile, what it falls back to
    then: its limit a day later, every lease lapsed (32 A, its maximum, without one)."""

    timeline: ClassVar[list[tuple[float, str, float]]] = []
    """(when, identity, its fallback) of every charge point of this class, in order."""
    lock: ClassVar[threading.Lock] = threading.Lock()

    def fallback_a(self) -> float:
        limit = limit_at(self.profiles, self.now() + timedelta(days=1))
        return 32.0 if limit is None else limit

    def _store_profile(self, profile: dict[str, Any]) -> str:
        self.answering.wait()  # held until let go (not at most 10 s): taken as it answers
        with self.lock:
            status = super()._store_profile(profile)
            self.timeline.append((time.monotonic(), self.id, self.fallback_a()))
        return status


def _site() -> SiteConfig:
    chargers = [
        {
            "id": f"cp-{i}",
            "node": "grid",
            "ocpp": {"identity": identity, "versions": ["1.6"]},
            "connectors": [{"id": 1, "max_current_a": 32}],
        }
        for i, identity in enumerate(IDENTITIES)
    ]
    return SiteConfig.model_validate(
        {
            "site": {"name": "failsafe order"},
            "grid": {"phase_current_limit_a": LIMIT_A},
            "control": {"cycle_s": 0.5, "failsafe_current_a": 6, "lease_s": 10},
            "ocpp": {"port": 0},
            "api": {"port": 0},
            "chargers": chargers,
        }
    )


def _status(peer: ChargePointThread, status: str) -> None:
    peer.call(call16.StatusNotification(connector_id=1, error_code="NoError", status=status))


def _fallbacks() -> dict[str, float]:
    """What each charge point falls back to now, as it took its profiles."""
    with FallingBack.lock:
        return {identity: a for _, identity, a in FallingBack.timeline}


@pytest.mark.timeout(90)  # after the deadline below, so that Trio ends the test cleanly
async def test_the_failsafe_moves_only_once_the_one_it_comes_from_is_in_force() -> None:
    FallingBack.timeline.clear()
    peers: list[ChargePointThread] = []
    try:
        with trio.fail_after(60):
            async with open_gateway(_site()) as gateway:
                for identity in IDENTITIES:
                    url = f"ws://127.0.0.1:{gateway.ports['ocpp']}/ocpp/{identity}"
                    peer = ChargePointThread(FallingBack, url, subprotocols=["ocpp1.6"])
                    peers.append(await trio.to_thread.run_sync(peer.start))
                    boot = call16.BootNotification(charge_point_model="F", charge_point_vendor="V")
                    await trio.to_thread.run_sync(peer.call, boot)
                    await trio.to_thread.run_sync(_status, peer, "Available")
                first = dict(zip(IDENTITIES, (6.0, 0.0), strict=True))
                await wait_until(lambda: _fallbacks() == first, what="one 6 A failsafe, FS-0's")

                held = peers[0].cp
                asked = len(held.received)
                held.answering.clear()  # FS-0 takes nothing for now
                await trio.to_thread.run_sync(_status, peers[1], "Preparing")  # an EV at FS-1
                await wait_until(
                    lambda: any(a == "SetChargingProfile" for a, _ in held.received[asked:]),
                    what="FS-0 asked for its 0 A",
                )
                await trio.sleep(3.0)  # cycles meanwhile: FS-1's 6 A waits
                assert _fallbacks() == first
                held.answering.set()
                moved = dict(zip(IDENTITIES, (0.0, 6.0), strict=True))
                await wait_until(lambda: _fallbacks() == moved, what="FS-1's 6 A")
                for peer in peers:
                    await trio.to_thread.run_sync(peer.stop)
                await gateway.shutdown()
    finally:
        for peer in peers:
            peer.cp.answering.set()  # (a failed test's peer thread is not left waiting)

    held: dict[str, float] = {}
    for _, identity, fallback_a in FallingBack.timeline:
        held[identity] = fallback_a
        assert sum(held.values()) <= LIMIT_A, FallingBack.timeline

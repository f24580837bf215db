"""The operator's inputs and the CSMS's profiles given to one gateway reach the other
(`cluster.operator_replica`), against three real nats-server processes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import trio

from hubgate.cloud.csms_limits import CsmsLimits, Followed
from hubgate.cluster.link import open_nats_link
from hubgate.cluster.operator_replica import OperatorReplica
from hubgate.config.model import LimitSchedule
from hubgate.config.services import Cluster
from hubgate.control.commands import CommandRejectedError
from hubgate.control.deadlines import SocTarget
from hubgate.control.limits import SITE, Limit, LimitBook
from hubgate.control.prices import PriceSeries
from hubgate.control.schedules import ScheduleBook
from tests.support.nats_cluster import NatsCluster
from tests.support.wait import wait_until

pytestmark = [pytest.mark.peers("nats-server"), pytest.mark.timeout(60)]


@dataclass
class Recorded:
    """`Commands` that records what it was asked."""

    calls: list[tuple[Any, ...]] = field(default_factory=list)

    async def set_priority(self, connector: str, priority: int) -> None:
        self.calls.append(("priority", connector, priority))

    async def set_pv_mode(self, connector: str, pv_mode: bool) -> None:
        self.calls.append(("pv_mode", connector, pv_mode))

    async def set_session(
        self,
        connector: str,
        energy_kwh: float | None,
        departure: datetime | None,
        *,
        max_current_a: float | None = None,
        target: SocTarget | None = None,
    ) -> None:
        self.calls.append(("need", connector, energy_kwh, departure))

    async def start_charging(self, connector: str, id_tag: str | None) -> None:
        self.calls.append(("start", connector, id_tag))

    async def stop_charging(self, connector: str) -> None:
        if connector == "cp-9#1":
            raise CommandRejectedError(f"{connector}: no session to stop")
        self.calls.append(("stop", connector))


@dataclass
class Gateway:
    replica: OperatorReplica
    commands: Recorded
    prices: PriceSeries
    schedules: ScheduleBook


@asynccontextmanager
async def gateway(node: str, server: str, *, leads: bool = True) -> AsyncIterator[Gateway]:
    """A gateway's operator inputs, replicated on its own NATS connection."""
    cluster = Cluster(site_id="test-site", node=node, servers=(server,))
    commands, prices, schedules = Recorded(), PriceSeries(), ScheduleBook()
    async with open_nats_link(cluster) as link, trio.open_nursery() as nursery:
        replica = OperatorReplica(link, cluster, commands, prices, schedules, leading=lambda: leads)
        await nursery.start(replica.run)
        yield Gateway(replica, commands, prices, schedules)
        nursery.cancel_scope.cancel()


NIGHT = LimitSchedule.model_validate(
    {
        "name": "night",
        "power_limit_kw": 40,
        "windows": [{"start": "22:00", "end": "06:00"}],
    }
)


def csms_profile(limit_a: float, later_a: float, seconds: int) -> dict[str, Any]:
    """A site profile of two periods: `limit_a` now, `later_a` from `seconds` on."""
    return {
        "chargingProfileId": 7,
        "stackLevel": 1,
        "chargingProfilePurpose": "ChargePointMaxProfile",
        "chargingProfileKind": "Absolute",
        "chargingSchedule": {
            "startSchedule": datetime.now(UTC).isoformat(),
            "chargingRateUnit": "A",
            "chargingSchedulePeriod": [
                {"startPeriod": 0, "limit": limit_a},
                {"startPeriod": seconds, "limit": later_a},
            ],
        },
    }


async def test_inputs_given_to_one_gateway_are_applied_on_the_other(nats: NatsCluster) -> None:
    departure = datetime.now(UTC) + timedelta(hours=3)
    start = datetime(2026, 12, 7, tzinfo=UTC).timestamp()
    with trio.fail_after(40):
        async with gateway("a", nats.urls[0]) as a, gateway("b", nats.urls[1]) as b:
            await a.replica.commands.set_priority("cp-1#1", 7)
            await a.replica.commands.set_pv_mode("cp-2#1", True)
            await a.replica.commands.set_session("cp-1#1", 20.0, departure)
            await a.replica.commands.start_charging("cp-2#1", None)  # an action: stays on a
            a.prices.put(start, 3600, [0.30, 0.10])
            a.schedules.put(a.schedules.schedule(NIGHT, "api 10.0.0.5"))
            expected = [
                ("priority", "cp-1#1", 7),
                ("pv_mode", "cp-2#1", True),
                ("need", "cp-1#1", 20.0, departure),
            ]
            await wait_until(lambda: b.commands.calls == expected, "the commands on b")
            await wait_until(lambda: b.prices.points() == a.prices.points(), "the prices on b")
            await wait_until(lambda: len(b.schedules.schedules()) == 1, "the schedule on b")
            night = b.schedules.schedules()[0]
            assert (night.name, night.limit, night.origin) == (
                "night",
                Limit(power_kw=40),
                "api 10.0.0.5",
            )
            assert a.commands.calls[:3] == expected  # carried out once on a, not again
            b.prices.clear()
            await b.replica.commands.set_session("cp-1#1", None, None)
            b.schedules.remove("night")
            await wait_until(lambda: not a.prices, "the prices cleared on a")
            await wait_until(lambda: a.schedules.schedules() == [], "the schedule gone on a")
            await wait_until(
                lambda: a.commands.calls[-1] == ("need", "cp-1#1", None, None), "no need on a"
            )
        async with gateway("c", nats.urls[2]) as c:  # a gateway (re)started later
            assert ("priority", "cp-1#1", 7) in c.commands.calls
            assert ("pv_mode", "cp-2#1", True) in c.commands.calls
            assert not [call for call in c.commands.calls if call[0] == "need" and call[2]]
            assert not c.prices


async def test_the_next_leader_follows_the_csms_profiles_the_old_one_was_given(
    nats: NatsCluster,
) -> None:
    """Only the limit in force travels as a lease (`limit_replica`); the profiles do too,
    so the next leader's CsmsLimits follows their later periods."""
    with trio.fail_after(40):
        async with gateway("a", nats.urls[0]) as a, gateway("b", nats.urls[1]) as b:
            received = datetime.now(UTC)
            a.replica.keep(SITE, [Followed(csms_profile(40, 20, 2), received, "csms")])
            await wait_until(lambda: SITE in b.replica.kept(), "the profiles on b")
            book = LimitBook()
            async with trio.open_nursery() as nursery:
                await nursery.start(CsmsLimits(book, keeper=b.replica).run)  # b leads
                in_force = book.in_force(SITE, trio.current_time()).limit
                assert in_force == Limit(phase_a=(40.0, 40.0, 40.0))
                await wait_until(
                    lambda: (
                        book.in_force(SITE, trio.current_time()).limit
                        == Limit(phase_a=(20.0, 20.0, 20.0))
                    ),
                    "the profile's second period on b",
                )
                nursery.cancel_scope.cancel()
            a.replica.keep(SITE, [])  # cleared by the CSMS
            await wait_until(lambda: not b.replica.kept().get(SITE), "no profile on b")


async def test_the_standbys_api_has_the_leader_start_and_stop_charging(nats: NatsCluster) -> None:
    """Starting and stopping are actions on the leader's charger connection: the standby
    forwards them, the leader carries them out once, and its refusal is the standby's."""
    with trio.fail_after(40):
        async with (
            gateway("a", nats.urls[0]) as a,
            gateway("b", nats.urls[1], leads=False) as b,
        ):
            await b.replica.commands.start_charging("cp-2#1", "TAG-7")
            await b.replica.commands.stop_charging("cp-1#1")
            with pytest.raises(CommandRejectedError, match="cp-9#1: no session to stop"):
                await b.replica.commands.stop_charging("cp-9#1")
            assert a.commands.calls == [("start", "cp-2#1", "TAG-7"), ("stop", "cp-1#1")]
            assert b.commands.calls == []

"""Station upkeep on one shared timer (`station_care.UpkeepTicks`): a station's task runs
its connectors' upkeep only when one is due, against a real 1.6 charge point."""

from __future__ import annotations

import trio
from ocpp.v16 import call

from hubgate.ocpp.device import OcppCharger
from hubgate.ocpp.smart_charging import LeaseSettings
from hubgate.ocpp.station_care import UpkeepTicks
from tests.support.ocpp_listener import V16, Running
from tests.support.wait import wait_until


async def test_a_station_is_woken_for_due_upkeep_only(server: Running) -> None:
    station = server.registry.get("CP16")
    assert station is not None
    charger = OcppCharger(station, settings=LeaseSettings(verify_after_s=0.5))
    runs: list[float] = []
    upkeep = charger.upkeep

    async def counted() -> None:
        runs.append(trio.current_time())
        await upkeep()

    charger.upkeep = counted  # type: ignore[method-assign]
    ticks = UpkeepTicks()
    cp = await server.connect("CP16", V16)
    try:
        with trio.fail_after(30):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(ticks.run)
                nursery.start_soon(charger.care.attend, await server.session_of("CP16"), ticks)
                boot = call.BootNotification(charge_point_model="M", charge_point_vendor="V")
                await trio.to_thread.run_sync(cp.call, boot)
                await wait_until(lambda: charger.care.prepared(station.session), "settled")
                await trio.sleep(2.5)  # no limit sent yet: nothing is due
                assert runs == []
                assert not charger.upkeep_due(trio.current_time())

                await charger.configure_failsafe(timeout_s=60.0, failsafe_current_a=6.0)
                await charger.set_limit(16.0, 3)  # its first lease: verified soon after
                await wait_until(lambda: charger.verification is not None, "verified")
                verification = charger.verification
                assert verification is not None
                assert verification.following
                verified = len(runs)
                assert verified >= 1
                await trio.sleep(2.5)  # verified, nothing stale: not woken again
                assert len(runs) == verified
                nursery.cancel_scope.cancel()
    finally:
        await trio.to_thread.run_sync(cp.stop)

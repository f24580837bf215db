"""NotifyEVChargingNeeds (OCPP 2.0.1): hubgate reads the EV's energy need, departure and
maximum current.

From `ocpp`-package charging stations: directly (hubgate as the CSMS: it accepts and
keeps them), and through the CSMS proxy while the CSMS is away (the charger still gets
the schema's rejection, as a forward-only action, but hubgate keeps the needs for its
own plan). `OcppCharger.charging_needs` hands them to the control loop.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import trio
from ocpp.v201 import call

from hubgate.ocpp.device import OcppCharger
from tests.support.ocpp_listener import V201, Running
from tests.support.proxy import open_proxied

NEEDS = call.NotifyEVChargingNeeds(
    evse_id=1,
    charging_needs={
        "requested_energy_transfer": "AC_three_phase",
        "departure_time": "2026-03-02T04:30:00Z",
        "ac_charging_parameters": {
            "energy_amount": 42_000,
            "ev_min_current": 6,
            "ev_max_current": 16,
            "ev_max_voltage": 400,
        },
    },
)
DEPARTURE = datetime(2026, 3, 2, 4, 30, tzinfo=UTC)


async def test_hubgate_as_csms_accepts_and_keeps_the_needs(server: Running) -> None:
    with trio.fail_after(20):
        cs = await server.connect("CP201", V201)
        try:
            boot = call.BootNotification(
                charging_station={"model": "Wallbox", "vendor_name": "Acme"}, reason="PowerUp"
            )
            await trio.to_thread.run_sync(cs.call, boot)
            answer = await trio.to_thread.run_sync(cs.call, NEEDS)
            assert answer.status == "Accepted"
            station = server.registry.get("CP201")
            assert station is not None
            needs = station.connector(1).charging_needs
            assert needs is not None
            assert (needs.energy_wh, needs.departure) == (42_000.0, DEPARTURE)
            assert needs.max_current_a == 16.0  # the EV's own maximum per phase
            charger = OcppCharger(station, connector_id=1)
            assert charger.charging_needs() is needs
        finally:
            await trio.to_thread.run_sync(cs.stop)


async def test_proxied_while_the_csms_is_away_the_needs_are_still_read(tmp_path: Path) -> None:
    with trio.fail_after(20):
        async with open_proxied(tmp_path, csms_up=False) as env:
            cp = await env.connect("CP201", V201)
            answer = await env.call(cp, NEEDS)
            assert answer.status == "Rejected"  # forward-only: the charger hears the schema's no
            station = env.registry.get("CP201")
            assert station is not None
            needs = station.connector(1).charging_needs
            assert needs is not None
            assert (needs.energy_wh, needs.departure) == (42_000.0, DEPARTURE)
            await trio.to_thread.run_sync(cp.stop)

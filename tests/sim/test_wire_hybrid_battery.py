"""The simulated SunSpec hybrid battery (models 1 + 103 + 124) on the wire: it runs at the
InWRte/OutWRte limits (in % of WChaMax) while StorCtl_Mod activates them, and reverts to its
own control (idle) once InOutWRte_RvrtTms of simulated time pass without a new limit."""

from __future__ import annotations

from pathlib import Path

import pytest

from hubgate.profiles.plan import resolve_switch
from hubgate.sim import load_scenario
from hubgate.sim.serving import SiteThread, site_thread
from tests.support.wire import client

SITE = """\
[site]
name = "hybrid"

[grid]
phase_current_limit_a = 100
power_limit_kw = 60

[[chargers]]
id = "cp"
node = "grid"
ocpp = { identity = "CP" }
connectors = [{ id = 1, max_current_a = 16 }]

[battery]
id = "battery"
modbus = { profile = "sunspec-hybrid-storage", host = "127.0.0.1" }
capacity_kwh = 100
max_charge_kw = 20
max_discharge_kw = 20
"""

SCENARIO = """\
[scenario]
name = "hybrid"
site = "site.toml"
duration_s = 600

[arrivals]
initial_occupancy = 0.0

[[ev_mix]]
name = "car"
capacity_kwh = 60
max_current_a = 16

[battery]
soc_percent = 50
"""

REVERT_S = 10


def battery_kw(running: SiteThread) -> float:
    """The simulated battery's power (positive: charging)."""
    return running.call(lambda: running.site.sim.battery.power_kw)  # type: ignore[union-attr]


def test_limits_in_percent_and_the_revert_timeout(tmp_path: Path) -> None:
    (tmp_path / "site.toml").write_text(SITE)
    (tmp_path / "scenario.toml").write_text(SCENARIO)
    with site_thread(load_scenario(tmp_path / "scenario.toml"), ports_auto=True) as running:
        running.advance(1)
        device = running.site.boxes["battery"].devices[0].device
        profile = device.profile
        assert device.get("battery_max_charge_power") == pytest.approx(20_000)
        charge = device.spec("commands.charge_power_limit")
        discharge = device.spec("commands.discharge_power_limit")
        timeout = device.spec("failsafe.timeout")
        assert profile.commands.enable is not None
        storctl = resolve_switch(profile, "enable", profile.commands.enable)
        modbus = client(running.site.boxes["battery"].port)
        try:  # percentages at exponent -1 (InOutWRte_SF): 25 % is raw 250
            assert device.exponent_at("commands.charge_power_limit") == -1
            assert not modbus.write_register(timeout.address, REVERT_S).isError()
            assert not modbus.write_register(discharge.address, 0).isError()
            assert not modbus.write_register(charge.address, 250).isError()
            assert not modbus.write_register(storctl.address, 3).isError()
            assert modbus.write_register(charge.address, 1010).isError()  # 101 % > max
        finally:
            modbus.close()
        running.advance(2)
        assert battery_kw(running) == pytest.approx(5.0)  # 25 % of 20 kW, charging
        running.advance(REVERT_S - 4)
        assert battery_kw(running) == pytest.approx(5.0)
        running.advance(4)  # no new limit within InOutWRte_RvrtTms: reverted
        assert device.failsafe_active
        assert battery_kw(running) == 0.0

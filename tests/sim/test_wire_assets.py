"""Protocol mode for PV, battery and a grid operator's relay contacts (SunSpec and coils)."""

from __future__ import annotations

from pathlib import Path

import pytest

from hubgate.sim import load_scenario
from hubgate.sim.serving import SiteThread, site_thread
from tests.support.wire import client

SITE = """\
[site]
name = "assets"

[grid]
phase_current_limit_a = 100
power_limit_kw = 60

[[chargers]]
id = "cp"
node = "grid"
ocpp = { identity = "CP" }
connectors = [{ id = 1, max_current_a = 16 }]

[[pv]]
id = "pv"
modbus = { profile = "sunspec-inverter", host = "127.0.0.1" }
peak_kw = 50

[battery]
id = "battery"
modbus = { profile = "sunspec-storage", host = "127.0.0.1" }
capacity_kwh = 100
max_charge_kw = 5
max_discharge_kw = 5

[grid_operator]
source = "relay-contacts"
modbus = { profile = "grid-operator-14a-relays", host = "127.0.0.1" }
"""

SCENARIO = """\
[scenario]
name = "assets"
site = "site.toml"
duration_s = 600
start_hour = 13

[arrivals]
initial_occupancy = 0.0

[[ev_mix]]
name = "car"
capacity_kwh = 60
max_current_a = 16

[battery]
soc_percent = 40

[[events]]
at_s = 10
kind = "grid-limit"
percent = 45

[[events]]
at_s = 12
kind = "feed-in-limit"
percent = 45
"""


def _read_scaled(running: SiteThread, box: str, path: str) -> float:
    """A SunSpec value through pymodbus: the register times 10^its scale-factor register."""
    fed = running.site.boxes[box].devices[0]
    spec = fed.device.spec(path)
    assert spec.scale_factor_address is not None
    modbus = client(running.site.boxes[box].port)
    try:
        value = modbus.read_holding_registers(spec.address, count=1).registers[0]
        factor = modbus.read_holding_registers(spec.scale_factor_address, count=1).registers[0]
    finally:
        modbus.close()
    signed = value - 0x10000 if value & 0x8000 and spec.type.value == "i16" else value
    exponent = factor - 0x10000 if factor & 0x8000 else factor
    return float(signed * spec.scale * 10.0**exponent)


def test_pv_battery_and_relay_contacts_on_the_wire(tmp_path: Path) -> None:
    (tmp_path / "site.toml").write_text(SITE)
    (tmp_path / "scenario.toml").write_text(SCENARIO)
    with site_thread(load_scenario(tmp_path / "scenario.toml"), ports_auto=True) as running:
        running.advance(5)
        pv_kw = running.call(lambda: running.site.sim.pv[0].power_kw)
        assert pv_kw > 10
        assert _read_scaled(running, "pv", "fields.pv_power") == pytest.approx(pv_kw * 1000, abs=10)
        assert _read_scaled(running, "battery", "fields.soc") == pytest.approx(40.0, abs=0.1)

        relays = client(running.site.boxes["grid-operator"].port)
        try:
            assert relays.read_coils(0, count=4).bits[:4] == [False] * 4
            running.advance(6)  # the import limit steps to 45 %: the §14a contact (DI1) closes
            assert relays.read_coils(0, count=4).bits[:4] == [True, False, False, False]
            running.advance(2)  # feed-in at most 45 %: the 30 % contact (DI3) closes
            assert relays.read_coils(0, count=4).bits[:4] == [True, False, True, False]
        finally:
            relays.close()

        storage = running.site.boxes["battery"].devices[0].device
        spec = storage.spec("commands.charge_power_limit")
        battery = client(running.site.boxes["battery"].port)
        try:  # WChaMax 2000 W at the served scale factor
            assert spec.scale_factor_address is not None
            factor = battery.read_holding_registers(spec.scale_factor_address).registers[0]
            exponent = factor - 0x10000 if factor & 0x8000 else factor
            assert battery.write_register(
                spec.address, round(7000 * 10**-exponent)
            ).isError()  # > max
            assert not battery.write_register(spec.address, round(2000 * 10**-exponent)).isError()
        finally:
            battery.close()
        running.advance(1)
        assert running.call(lambda: running.site.sim.battery.max_charge_kw) == pytest.approx(2.0)

"""Protocol mode over Modbus: registers follow the physics, written limits reach the EVs."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from pymodbus.client import ModbusTcpClient
from pymodbus.exceptions import ModbusIOException

from hubgate.sim import load_scenario
from hubgate.sim.serving import SiteThread, site_thread
from tests.support.peers import require_peer
from tests.support.wait import wait_until_blocking
from tests.support.wire import client, read_f32, write_wire_scenario

ALFEN_CURRENTS = 320
ALFEN_STATE = 1201
ALFEN_APPLIED = 1206
ALFEN_LIMIT = 1210
SDM_CURRENTS = 0x0006


def _start(folder: Path, events: str = "", device_workers: int = 0) -> Iterator[SiteThread]:
    loaded = load_scenario(write_wire_scenario(folder, events))
    with site_thread(loaded, ports_auto=True, device_workers=device_workers) as running:
        yield running


@pytest.fixture
def wire(tmp_path: Path) -> Iterator[SiteThread]:
    """The wire test site, served on free ports, not stepped yet."""
    yield from _start(tmp_path)


def _port(running: SiteThread, box: str) -> int:
    return running.site.boxes[box].port


def _write_limit(modbus: ModbusTcpClient, amps: float, unit: int) -> None:
    registers = modbus.convert_to_registers(amps, modbus.DATATYPE.FLOAT32)
    answer = modbus.write_registers(ALFEN_LIMIT, registers, device_id=unit)
    assert not answer.isError(), answer


def _ev_draw(running: SiteThread, slot: int) -> float:
    def draw() -> float:
        ev = running.site.sim.evs[slot]
        assert ev is not None
        return ev.draw_a

    return running.call(draw)


def test_meter_and_charger_registers_follow_the_physics(wire: SiteThread) -> None:
    wire.advance(10)
    grid = wire.call(lambda: wire.site.sim.node_current("grid"))
    meter = client(_port(wire, "meter"))
    charger = client(_port(wire, "wb"))
    try:
        assert read_f32(meter, SDM_CURRENTS, 3, 1, input=True) == pytest.approx(grid, abs=0.01)
        # base load 4/5/6 A, the Modbus twin's EVs at 32 A; with no CSMS to dial, the OCPP
        # chargers' EVs get the site's failsafe 6 A (the single-phase one on grid L2)
        assert grid == pytest.approx((4 + 64 + 6, 5 + 64 + 6 + 6, 6 + 64 + 6), abs=0.01)
        for unit, slot in ((1, 0), (2, 1)):
            amps = read_f32(charger, ALFEN_CURRENTS, 3, unit)
            assert amps == pytest.approx([_ev_draw(wire, slot)] * 3, abs=0.01)
            assert amps[0] == pytest.approx(32.0)
            state = charger.read_holding_registers(ALFEN_STATE, count=5, device_id=unit)
            text = charger.convert_from_registers(state.registers, charger.DATATYPE.STRING)
            assert str(text).strip("\x00 ") == "C2"
    finally:
        meter.close()
        charger.close()


def test_a_written_limit_reaches_the_ev_after_its_reaction_delay(wire: SiteThread) -> None:
    wire.advance(5)
    charger = client(_port(wire, "wb"))
    try:
        _write_limit(charger, 10.0, unit=2)
        assert read_f32(charger, ALFEN_APPLIED, 1, 2) == [10.0]
        wire.advance(3)  # reaction delay is 4 s: still the old current
        assert read_f32(charger, ALFEN_CURRENTS, 1, 2) == [32.0]
        wire.advance(2)
        assert read_f32(charger, ALFEN_CURRENTS, 1, 2) == [10.0]
        assert _ev_draw(wire, 1) == 10.0
        assert _ev_draw(wire, 0) == 32.0  # the other socket is not limited
        _write_limit(charger, 0.0, unit=1)  # 0 pauses an Alfen socket
        wire.advance(5)
        assert read_f32(charger, ALFEN_CURRENTS, 1, 1) == [0.0]
        state = charger.read_holding_registers(ALFEN_STATE, count=5, device_id=1)
        assert (
            str(charger.convert_from_registers(state.registers, charger.DATATYPE.STRING)).strip(
                "\x00 "
            )
            == "B1"
        )
    finally:
        charger.close()


def test_without_heartbeat_the_charger_falls_back_to_its_safe_current(wire: SiteThread) -> None:
    """No master connected: the watchdog runs on simulated time (`sim.device_clock`)."""
    box = wire.site.boxes["wb"]

    def read(address: int) -> list[float]:
        modbus = client(box.port)
        try:
            return read_f32(modbus, address, 1, 1)
        finally:
            modbus.close()
            wait_until_blocking(lambda: not box.linked, "the box to see the reader go")

    master = client(box.port)
    _write_limit(master, 16.0, unit=1)
    master.close()  # the gateway is gone
    wait_until_blocking(lambda: not box.linked, "the box to see the master go")
    wire.advance(50)  # the Alfen's validity is 60 s; the limit still holds
    assert read(ALFEN_CURRENTS) == [16.0]
    wire.advance(20)
    assert read(ALFEN_APPLIED) == [6.0]  # its safe current
    wire.advance(5)
    assert read(ALFEN_CURRENTS) == [6.0]
    master = client(box.port)
    try:
        _write_limit(master, 20.0, unit=1)  # a new setpoint lifts the failsafe
        wire.advance(5)
        assert read_f32(master, ALFEN_CURRENTS, 1, 1) == [20.0]
    finally:
        master.close()


def test_a_connected_master_feeds_the_watchdog_on_its_own_clock(wire: SiteThread) -> None:
    """At any speed: 70 simulated seconds in a moment of wall time do not expire a 60 s
    watchdog that a connected master fed (a real device times it on its own clock)."""
    master = client(_port(wire, "wb"))
    try:
        _write_limit(master, 16.0, unit=1)
        wire.advance(70)
        assert read_f32(master, ALFEN_APPLIED, 1, 1) == [16.0]
        assert read_f32(master, ALFEN_CURRENTS, 1, 1) == [16.0]
    finally:
        master.close()


@pytest.mark.timeout(120)
@pytest.mark.parametrize("device_workers", [0, 2])
def test_scenario_events_act_on_the_wire(tmp_path: Path, device_workers: int) -> None:
    """Also with the boxes served by two worker processes (`sim.device_workers`)."""
    events = """
[[events]]
at_s = 10
kind = "meter-dies"
meter = "meter"
duration_s = 20

[[events]]
at_s = 10
kind = "charger-offline"
charger = "wb"
duration_s = 20

[[events]]
at_s = 10
kind = "grid-limit"
percent = 30
duration_s = 20
"""
    for running in _start(tmp_path, events, device_workers):
        grid_box = client(_port(running, "grid-operator"))
        assert grid_box.read_holding_registers(0, count=1).registers == [100]
        running.advance(12)
        assert grid_box.read_holding_registers(0, count=1).registers == [30]
        meter = ModbusTcpClient("127.0.0.1", port=_port(running, "meter"), timeout=0.5, retries=0)
        assert meter.connect()  # it listens but does not answer
        with pytest.raises(ModbusIOException):
            meter.read_input_registers(SDM_CURRENTS, count=2, device_id=1)
        meter.close()
        charger = ModbusTcpClient("127.0.0.1", port=_port(running, "wb"), timeout=0.5, retries=0)
        assert not charger.connect()  # off the network
        running.advance(20)
        assert grid_box.read_holding_registers(0, count=1).registers == [100]
        meter = client(_port(running, "meter"))
        assert read_f32(meter, SDM_CURRENTS, 1, 1, input=True)[0] > 0
        charger = client(_port(running, "wb"))
        assert read_f32(charger, ALFEN_CURRENTS, 1, 1) == [32.0]
        for open_client in (grid_box, meter, charger):
            open_client.close()


def test_mbpoll_reads_the_meter_as_the_physics_has_it(wire: SiteThread) -> None:
    """Another Modbus client (mbpoll, big-endian floats) sees the same readings."""
    wire.advance(10)
    grid = wire.call(lambda: wire.site.sim.node_current("grid"))
    command = [
        require_peer("mbpoll"),
        "-m",
        "tcp",
        "-a",
        "1",
        "-r",
        str(SDM_CURRENTS + 1),
        "-c",
        "3",
    ]
    command += ["-t", "3:float", "-B", "-1", "-p", str(_port(wire, "meter")), "127.0.0.1"]
    out = subprocess.run(command, capture_output=True, text=True, timeout=10, check=True).stdout
    values = [float(line.split(":")[1]) for line in out.splitlines() if line.startswith("[")]
    assert values == pytest.approx(list(grid), abs=0.01)

"""End to end: hubgate's own OCPP listener and Modbus master against the simulated site.

`hubgate ocpp serve` holds every OCPP charger at 10 A with leased profiles over a
failsafe base profile; once it is gone, the stations fall back to the base profile
by themselves when the lease's validTo passes on their clock (the gateway's while
connected, then running on at the simulation's rate). hubgate's Trio
Modbus master reads a simulated charger and limits one of its sockets.
"""

from __future__ import annotations

import struct
import subprocess
import sys
from pathlib import Path

import trio

from hubgate.modbus.master import ModbusDevice
from hubgate.modbus.tcp_master import open_tcp_master
from hubgate.sim import load_scenario
from hubgate.sim.serving import SiteThread, site_thread
from tests.support.wait import wait_until_blocking
from tests.support.wire import write_wire_scenario

SLOTS = (2, 3)
"""The OCPP chargers' connectors in the wire test site."""
LEASE_S = 10
"""Short: the stations are held while simulated time runs 20 times as fast as the gateway's."""


def _draws(running: SiteThread) -> list[float]:
    def draws() -> list[float]:
        evs = [running.site.sim.evs[slot] for slot in SLOTS]
        return [ev.draw_a if ev is not None else -1.0 for ev in evs]

    return running.call(draws)


def _step_until(running: SiteThread, wanted: list[float], what: str) -> None:
    """One simulated second per poll of the wire until the EVs draw `wanted`."""

    def drawn() -> bool:
        if _draws(running) == wanted:
            return True
        running.advance(1)
        return False

    wait_until_blocking(drawn, f"{what} (EVs drawing {wanted})", timeout_s=20)


def test_the_gateway_holds_the_stations_and_its_lease_falls_back(tmp_path: Path) -> None:
    scenario = write_wire_scenario(tmp_path)
    site = tmp_path / "site.toml"
    site.write_text(site.read_text().replace("[control]\n", f"[control]\nlease_s = {LEASE_S}\n"))
    hubgate = Path(sys.executable).parent / "hubgate"
    gateway = subprocess.Popen(
        [str(hubgate), "ocpp", "serve", str(site), "--port", "0", "--limit-a", "10"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert gateway.stdout is not None
        first = gateway.stdout.readline()  # "listening on ws://127.0.0.1:PORT/ocpp/<identity>"
        assert "listening on ws://" in first, first
        url = first.split("listening on ")[1].split("/<identity>")[0]
        with site_thread(load_scenario(scenario), ports_auto=True, csms_url=url) as running:
            stations = running.site.stations
            wait_until_blocking(lambda: all(s.booted for s in stations), what="stations booted")
            _step_until(running, [10.0, 10.0], "held at 10 A by the gateway")
            gateway.terminate()
            gateway.wait(10)
            wait_until_blocking(
                lambda: not any(s.clock.linked for s in stations), what="gateway gone"
            )
            running.advance(LEASE_S)  # the lease's validTo passes on the stations' own clock
            running.advance(6)  # and the EVs react
            assert _draws(running) == [6.0, 6.0]  # the base profile: the site's failsafe
    finally:
        if gateway.poll() is None:
            gateway.kill()
        gateway.communicate()


def _f32(registers: list[int]) -> float:
    return float(struct.unpack(">f", struct.pack(">HH", *registers))[0])


async def test_hubgate_modbus_master_limits_a_simulated_charger(tmp_path: Path) -> None:
    """hubgate's own Trio Modbus master reads and writes the simulated twin charger."""
    loaded = load_scenario(write_wire_scenario(tmp_path))
    with site_thread(loaded, ports_auto=True) as running:
        port = running.site.boxes["wb"].port
        with trio.fail_after(20):
            async with open_tcp_master("127.0.0.1", port) as master:
                socket_2 = ModbusDevice(master, 2)
                await trio.to_thread.run_sync(running.advance, 5)
                assert _f32(await socket_2.read_registers(320, 2)) == 32.0
                limit = list(struct.unpack(">HH", struct.pack(">f", 12.0)))
                await socket_2.write_registers(1210, limit)
                await trio.to_thread.run_sync(running.advance, 5)
                assert _f32(await socket_2.read_registers(320, 2)) == 12.0
                assert _f32(await ModbusDevice(master, 1).read_registers(320, 2)) == 32.0

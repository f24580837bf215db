"""A grid-operator box that hangs but still answers (its PLC stopped, its Modbus interface
serving the last limit) is found by its heartbeat counter standing still: the control loop
reads a pymodbus box through the grid-operator-limit-register profile, holds the last limit,
falls back to `fallback_percent` whatever the frozen box shows, and takes the box's limit
again once the counter moves."""

from __future__ import annotations

import asyncio
import tomllib
from typing import Any

import pytest
import trio
from pymodbus.pdu import ModbusPDU

from hubgate.config.model import SiteConfig
from hubgate.control.grid_operator import heartbeat_timeout_s
from hubgate.control.limits import LimitSource
from hubgate.control.loop import ControlLoop
from hubgate.control.sensors import SiteDevices
from hubgate.devices.profile_driver import driver_for
from hubgate.modbus.master import ModbusDevice
from hubgate.modbus.tcp_master import open_tcp_master
from hubgate.profiles.loader import load_named
from hubgate.state import SiteState
from tests.support.loop_site import SITE_TOML, SimSite, running_loop
from tests.support.modbus_peers import pymodbus_server
from tests.support.wait import wait_cycles

CONNECTION_KW = 3 * 230 * 100 / 1000
"""The test site's connection: 100 A per phase."""


class BoxPlc:
    """The box's controller, as a pymodbus `trace_pdu`: while alive it moves the heartbeat
    counter (holding register 1) on every request, so that each read sees a new value
    however late it comes; frozen, the box answers with what its registers hold."""

    def __init__(self) -> None:
        self.alive = True
        self.server: Any = None
        self._counter = 0

    def __call__(self, sending: bool, pdu: ModbusPDU) -> ModbusPDU:
        if not sending and self.alive and self.server is not None:
            self._counter = (self._counter + 1) & 0xFFFF
            update = self.server.async_setValues(1, 16, 1, [self._counter])
            asyncio.get_running_loop().create_task(update)
        return pdu


def site(port: int) -> SiteConfig:
    text = (
        SITE_TOML.replace("port = 1506 }", f"port = {port} }}")
        .replace(
            'source = "modbus-device"\n',
            'source = "modbus-device"\nheartbeat_timeout_s = 2\nhold_last_s = 4\n'
            "fallback_percent = 20\n",
        )
        .replace("cycle_s = 1.0", "cycle_s = 0.5")
    )
    return SiteConfig.model_validate(tomllib.loads(text))


def operator_kw(loop: ControlLoop) -> float | None:
    lease = loop.limits.lease("site", LimitSource.GRID_OPERATOR)
    return None if lease is None else lease.limit.power_kw


def commanded_kw(state: SiteState | None) -> float:
    assert state is not None
    return sum(c.setpoint_a for c in state.connectors) * 3 * 230 / 1000


@pytest.mark.timeout(90)
async def test_a_hung_box_is_found_by_its_heartbeat_and_its_limit_taken_again_when_it_moves() -> (
    None
):
    profile = load_named("grid-operator-limit-register")
    plc = BoxPlc()
    with trio.fail_after(75), pymodbus_server({1: [30, 0]}, trace_pdu=plc) as box:
        plc.server = box.server
        config = site(box.port)
        assert config.grid_operator is not None
        assert heartbeat_timeout_s(config.grid_operator, profile) == 2.0  # the site's, not 60
        sim = SimSite.build()
        async with open_tcp_master("127.0.0.1", box.port, timeout_s=5.0) as master:
            devices = SiteDevices(
                chargers={(c.id, 1): c for c in sim.chargers},
                meters={"board-meter": sim.meter},
                grid_operator=driver_for("grid-operator", profile, ModbusDevice(master, 1)),
                grid_operator_heartbeat_s=heartbeat_timeout_s(config.grid_operator, profile),
            )
            async with running_loop(config, devices) as loop:
                curtailed = 0.3 * CONNECTION_KW
                await wait_cycles(
                    lambda: operator_kw(loop) == pytest.approx(curtailed),
                    "the box's 30 %",
                    loop.stats,
                    80,
                )
                # The PLC hangs; its register block still answers, now saying "no limit".
                plc.alive = False
                await trio.to_thread.run_sync(box.set_registers, 1, 0, [100])
                fallback = 0.2 * CONNECTION_KW

                def fell_back() -> bool:
                    audit = loop.limits.audit()[-1]
                    return audit.origin.startswith("grid-operator-box: heartbeat stopped") and (
                        audit.origin.endswith("s, fallback")
                    )

                await wait_cycles(fell_back, "the fallback", loop.stats, 80)
                assert operator_kw(loop) == pytest.approx(fallback)
                origins = [
                    e.origin for e in loop.limits.audit() if e.source is LimitSource.GRID_OPERATOR
                ]
                assert "grid-operator-box: heartbeat stopped, holding the last limit" in origins
                assert not any(kw == CONNECTION_KW for kw in _operator_kws(loop))  # 100 % unseen
                note = f"grid-operator-box heartbeat stopped: fallback {fallback:g} kW"
                await wait_cycles(  # the record of the cycle that fell back, or a later one
                    lambda: note in loop.decisions.recent(1)[0].notes,
                    "the note in the decision record",
                    loop.stats,
                    4,
                )
                await wait_cycles(
                    lambda: commanded_kw(loop.hub.latest) <= fallback + 0.01,
                    "the chargers under the fallback",
                    loop.stats,
                    8,
                )
                await wait_cycles(
                    lambda: any(m.startswith("heartbeat stopped for") for m in told(loop)),
                    "the operator told",
                    loop.stats,
                    4,
                )
                # The PLC is back: its counter moves and its 100 % is taken.
                plc.alive = True
                await wait_cycles(
                    lambda: operator_kw(loop) == pytest.approx(CONNECTION_KW),
                    "the box's limit again",
                    loop.stats,
                    40,
                )
                back = f"back (heartbeat moving again): {CONNECTION_KW:g} kW"
                await wait_cycles(lambda: back in told(loop), "the operator told", loop.stats, 4)


def told(loop: ControlLoop) -> list[str]:
    """The grid-operator events of the latest published state."""
    state = loop.hub.latest
    return (
        [] if state is None else [e.message for e in state.events if e.category == "grid-operator"]
    )


def _operator_kws(loop: ControlLoop) -> list[float | None]:
    return [e.limit.power_kw for e in loop.limits.audit() if e.source is LimitSource.GRID_OPERATOR]

"""The site's Modbus boxes served by child processes (`WireSite(device_workers=N)`): the
registers follow the parent's physics, what a master writes reaches the EVs (scenario
events: tests/sim/test_wire_modbus.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from hubgate.cli import main
from hubgate.sim import load_scenario
from hubgate.sim.serving import SiteThread, site_thread
from tests.support.wire import client, read_f32, write_wire_scenario

ALFEN_CURRENTS = 320
ALFEN_APPLIED = 1206
ALFEN_LIMIT = 1210
SDM_CURRENTS = 0x0006


@pytest.fixture
def served(tmp_path: Path) -> Iterator[SiteThread]:
    """The wire test site (its Alfen and grid operator's box in one worker, the meter in
    the other), not stepped yet."""
    loaded = load_scenario(write_wire_scenario(tmp_path))
    with site_thread(loaded, ports_auto=True, device_workers=2) as running:
        yield running


def _port(running: SiteThread, box: str) -> int:
    return running.site.boxes[box].port


@pytest.mark.timeout(120)
def test_registers_follow_the_physics_and_a_written_limit_reaches_the_ev(
    served: SiteThread,
) -> None:
    served.advance(5)
    grid = served.call(lambda: served.site.sim.node_current("grid"))
    meter, charger = client(_port(served, "meter")), client(_port(served, "wb"))
    try:
        assert read_f32(meter, SDM_CURRENTS, 3, 1, input=True) == pytest.approx(grid, abs=0.01)
        assert read_f32(charger, ALFEN_CURRENTS, 1, 2) == [32.0]
        registers = charger.convert_to_registers(10.0, charger.DATATYPE.FLOAT32)
        assert not charger.write_registers(ALFEN_LIMIT, registers, device_id=2).isError()
        assert read_f32(charger, ALFEN_APPLIED, 1, 2) == [10.0]  # the worker's device, at once
        served.advance(5)  # past the EV's 4 s reaction
        assert read_f32(charger, ALFEN_CURRENTS, 1, 2) == [10.0]
        assert read_f32(charger, ALFEN_CURRENTS, 1, 1) == [32.0]
        evs = served.call(lambda: [ev.draw_a if ev else None for ev in served.site.sim.evs[:2]])
        assert evs == [32.0, 10.0]
    finally:
        meter.close()
        charger.close()


def test_device_workers_need_serve(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    scenario = write_wire_scenario(tmp_path)
    assert main(["sim", str(scenario), "--device-workers", "2", "--duration", "1"]) == 2
    assert "--device-workers need --serve" in capsys.readouterr().err

"""Site simulator speed: simulated seconds per wall-clock second for the 500-connector depot.

The target is at least real time (1x) on one core; the figure per group is in
`extra_info["simulated_s_per_wall_s"]` (median round). The protocol-mode cases
run the depot behind its 148 Modbus servers (one per charger, meter, PV and
grid-operator box, on one asyncio loop in a thread), idle, polled once per
simulated second, or with its 125 OCPP stations connected to a test CSMS.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pymodbus.client import ModbusTcpClient

from hubgate.profiles.model import Function
from hubgate.sim import ClosedLoop, NaiveEqualShareController, Simulation, load_scenario, run_fast
from hubgate.sim.modbus_box import ModbusBox
from hubgate.sim.serving import SiteThread, site_thread
from tests.support.csms import running_csms
from tests.support.wait import wait_until_blocking

DEPOT_500 = Path(__file__).resolve().parent.parent / "examples" / "scenarios" / "depot-500.toml"
ROUND_S = 60.0
"""Simulated seconds per benchmark round."""


@pytest.fixture(scope="module")
def warm_depot() -> Simulation:
    """The depot after ten simulated minutes, so that every EV is charging."""
    sim = Simulation(load_scenario(DEPOT_500))
    run_fast(ClosedLoop(sim, NaiveEqualShareController(sim)), 600)
    return sim


def report(benchmark: Any, simulated_s: float) -> None:
    if benchmark.stats is not None:
        benchmark.extra_info["simulated_s_per_wall_s"] = simulated_s / benchmark.stats.stats.median


@pytest.mark.benchmark(group="sim-depot-500-closed-loop")
@pytest.mark.parametrize("impl", ["hubgate"])
def test_closed_loop_with_naive_controller(
    benchmark: Any, warm_depot: Simulation, impl: str
) -> None:
    loop = ClosedLoop(warm_depot, NaiveEqualShareController(warm_depot))
    benchmark(run_fast, loop, ROUND_S)
    report(benchmark, ROUND_S)
    assert len(warm_depot.tree.connectors) == 500
    assert sum(ev is not None for ev in warm_depot.evs) > 300


@pytest.mark.benchmark(group="sim-depot-500-physics")
@pytest.mark.parametrize("impl", ["hubgate"])
def test_physics_only(benchmark: Any, warm_depot: Simulation, impl: str) -> None:
    benchmark(run_fast, ClosedLoop(warm_depot), ROUND_S)
    report(benchmark, ROUND_S)
    assert warm_depot.recorder.energy_kwh > 0


# -- protocol mode: the depot behind its Modbus servers and OCPP stations ----------------------


WIRE_ROUND_S = 30.0


@pytest.fixture(scope="module")
def wire_depot() -> Iterator[SiteThread]:
    """The depot served on free ports (148 Modbus servers), no CSMS, warmed up 2 minutes."""
    with site_thread(load_scenario(DEPOT_500), ports_auto=True) as running:
        running.advance(120, timeout=120)
        yield running


def _first_field(box: ModbusBox) -> tuple[int, Function, int, int]:
    """(unit, function, address, count) of the box's first field: what a poller reads."""
    device = box.devices[0].device
    path = next(p for p in device.specs if p.startswith("fields."))
    unit, spec = device.specs[path]
    return unit, spec.function, spec.address, spec.count


@pytest.mark.benchmark(group="sim-depot-500-wire-idle")
@pytest.mark.parametrize("impl", ["hubgate"])
def test_wire_steps_with_every_server_up(benchmark: Any, wire_depot: SiteThread, impl: str) -> None:
    assert len(wire_depot.site.boxes) == 148
    benchmark(wire_depot.advance, WIRE_ROUND_S)
    report(benchmark, WIRE_ROUND_S)


@pytest.mark.benchmark(group="sim-depot-500-wire-polled")
@pytest.mark.parametrize("impl", ["hubgate"])
def test_wire_steps_with_every_box_read_each_second(
    benchmark: Any, wire_depot: SiteThread, impl: str
) -> None:
    """Each simulated second, one read of every box (pymodbus clients in this process)."""
    boxes = list(wire_depot.site.boxes.values())
    clients = [ModbusTcpClient("127.0.0.1", port=box.port, timeout=2, retries=0) for box in boxes]
    reads = [_first_field(box) for box in boxes]
    try:
        assert all(c.connect() for c in clients)

        def round_() -> None:
            for _ in range(round(WIRE_ROUND_S)):
                wire_depot.advance(1)
                for modbus, (unit, function, address, count) in zip(clients, reads, strict=True):
                    read = (
                        modbus.read_input_registers
                        if function is Function.INPUT
                        else modbus.read_holding_registers
                    )
                    assert not read(address, count=count, device_id=unit).isError()

        benchmark(round_)
        report(benchmark, WIRE_ROUND_S)
    finally:
        for modbus in clients:
            modbus.close()


@pytest.mark.timeout(600)  # its waits add up to more than the suite's 60 s on a loaded machine
@pytest.mark.benchmark(group="sim-depot-500-wire-ocpp")
@pytest.mark.parametrize("impl", ["hubgate"])
def test_wire_steps_with_125_ocpp_stations_connected(benchmark: Any, impl: str) -> None:
    """125 stations (1.6 and 2.0.1) on a test CSMS in this process, MeterValues every 10 s."""
    with (
        running_csms() as csms,
        site_thread(
            load_scenario(DEPOT_500), ports_auto=True, csms_url=csms.url, meter_values_s=10
        ) as running,
    ):
        stations = running.site.stations
        assert len(stations) == 125
        wait_until_blocking(lambda: all(s.booted for s in stations), timeout_s=60, what="125 boots")
        running.advance(60, timeout=120)

        def round_() -> None:  # steps, then until every message of theirs is out
            running.advance(WIRE_ROUND_S, 120)
            wait_until_blocking(
                lambda: running.call(lambda: sum(s.pending for s in stations)) == 0,
                timeout_s=120,
                what="stations' queues drained",
            )

        benchmark(round_)
        report(benchmark, WIRE_ROUND_S)
        wait_until_blocking(lambda: csms.received("D500-001", "MeterValues"), what="meter values")

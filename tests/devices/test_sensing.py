"""Per-cycle reads (`CycleReader`) against every charger and meter profile's simulated device:
control fields are fresh on every read, the others carried with their read time between full
reads, full reads come every Nth read and cost more requests than the control read."""

from __future__ import annotations

import pytest
import trio

from hubgate.devices.model import Reading
from hubgate.devices.profile_driver import driver_for
from hubgate.devices.sensing import PHASE_CURRENTS, CycleReader, control_quantities
from hubgate.modbus.master import ModbusDevice
from hubgate.modbus.tcp_master import TcpMaster
from hubgate.profiles.model import DeviceKind, Quantity
from hubgate.profiles.plan import RegisterSpec, field_specs, sunspec_layout
from hubgate.sim.simulated_device import SimulatedDevice
from tests.support.drivers import PROFILES, derived_currents, distinct_value, rig

SPLIT = sorted(n for n, p in PROFILES.items() if p.kind in (DeviceKind.CHARGER, DeviceKind.METER))
WHOLE = sorted(set(PROFILES) - set(SPLIT))


def fill(
    sim: SimulatedDevice, specs: dict[str, RegisterSpec], shift: int
) -> dict[str, float | str | None]:
    """Give every field a distinct value (another one per `shift`); returns what was set."""
    written = {}
    for index, name in enumerate(sorted(specs)):
        written[name] = distinct_value(index + shift, specs[name], sim.exponent)
        sim.set(name, written[name])
    return written


def holds(reading: Reading, quantity: Quantity, expected: float | str | None) -> bool:
    if isinstance(expected, str):
        return reading.text.get(quantity) == expected
    got = reading.values.get(quantity)
    return got is expected if got is None or expected is None else abs(got - expected) < 1e-6


@pytest.mark.parametrize("name", SPLIT)
async def test_control_fields_are_fresh_and_the_rest_carried(name: str) -> None:
    profile = PROFILES[name]
    specs = field_specs(profile, sunspec_layout(profile))
    control = control_quantities(profile)
    assert control is not None
    with trio.fail_after(10):
        async with rig(profile) as r:
            reader = CycleReader(r.driver, full_every=3, offset=0)
            first = fill(r.sim, specs, 0)
            full = await reader.read()
            second = fill(r.sim, specs, 1)
            await trio.sleep(0.01)
            fast = await reader.read()
            fast_again = await reader.read()
            full_again = await reader.read()
    assert not full.older
    assert fast.at > full.at
    if await reader.plan() is None:  # no control field, or nothing else: every read is full
        assert not fast.older
        assert all(holds(fast, Quantity(n), v) for n, v in second.items())
        return
    derived = derived_currents(profile)  # from this read's power
    assert not derived & {str(q) for q in fast.older}
    assert {str(q) for q in (*fast.values, *fast.text)} == set(specs) | derived
    for field_name in specs:
        q = Quantity(field_name)
        if q in control:
            assert q not in fast.older, field_name
            assert holds(fast, q, second[field_name]), field_name
        else:
            assert fast.older[q] == full.at, field_name
            assert holds(fast, q, first[field_name]), field_name
    assert fast_again.older == fast.older
    assert not full_again.older, "every third read is a full one"
    assert all(holds(full_again, Quantity(n), v) for n, v in second.items())
    assert fast.state == full_again.state


@pytest.mark.parametrize("name", SPLIT)
async def test_the_control_read_costs_fewer_requests_or_is_not_used(name: str) -> None:
    with trio.fail_after(10):
        async with rig(PROFILES[name]) as r:
            reader = CycleReader(r.driver, full_every=2, offset=0)
            plan = await reader.plan()  # after SunSpec discovery
            stats = r.driver.link.stats
            counts = []
            for _ in range(3):
                before = stats.requests
                await reader.read()
                counts.append(stats.requests - before)
    full, fast, full_again = counts
    assert full == full_again
    if plan is None:  # no control field, or no request saved
        assert fast == full
    else:
        assert fast == len(plan[1].requests) < full


@pytest.mark.parametrize("name", WHOLE)
async def test_other_kinds_read_every_field_every_time(name: str) -> None:
    profile = PROFILES[name]
    assert control_quantities(profile) is None
    with trio.fail_after(10):
        async with rig(profile) as r:
            reader = CycleReader(r.driver, full_every=5, offset=0)
            readings = [await reader.read() for _ in range(3)]
    assert all(not reading.older for reading in readings)
    assert await reader.plan() is None


def test_control_fields_are_phase_currents_and_the_chargers_state() -> None:
    """...or, for a charger that measures no current (derived from them), its power, else its
    energy register, and its phases in use."""
    for name in SPLIT:
        profile = PROFILES[name]
        control = control_quantities(profile)
        assert control is not None
        measures_current = bool(PHASE_CURRENTS & profile.fields.keys())
        if profile.kind is DeviceKind.METER or measures_current:
            assert control >= PHASE_CURRENTS
        elif profile.kind is DeviceKind.CHARGER:  # derived (devices.derived_current)
            fields = profile.fields.keys()
            source = Quantity.POWER_TOTAL if Quantity.POWER_TOTAL in fields else None
            source = source or (
                Quantity.ENERGY_IMPORT if Quantity.ENERGY_IMPORT in fields else None
            )
            assert source is None or source in control
            assert (Quantity.PHASES_ACTIVE in control) is (Quantity.PHASES_ACTIVE in fields)
        if profile.kind is DeviceKind.CHARGER and profile.states is not None:
            assert profile.states.field in control


def test_carried_phase_currents_are_not_this_cycles() -> None:
    values: dict[Quantity, float | None] = dict.fromkeys(PHASE_CURRENTS, 10.0)
    assert Reading(at=5.0, values=values).phase_currents() == (10.0, 10.0, 10.0)
    carried = Reading(at=5.0, values=values, older={Quantity.CURRENT_L2: 4.0})
    assert carried.phase_currents() is None


def test_full_reads_are_staggered_across_devices() -> None:
    master = TcpMaster("127.0.0.1", 502)
    profile = PROFILES["alfen-eve"]
    readers = [
        CycleReader(driver_for("cp", profile, ModbusDevice(master, unit)), full_every=10)
        for unit in range(1, 41)
    ]
    assert len({reader._count for reader in readers}) >= 5
    with pytest.raises(ValueError, match="full_every"):
        CycleReader(readers[0].device, full_every=0)

"""The profile driver against every profile's simulated device (pymodbus, the independent peer):
read every field, set limits and read them back, pause and resume, the device-side failsafe
with and without heartbeats, battery setpoints, and Modbus failures surfacing as hubgate errors."""

from __future__ import annotations

import math

import pytest
import trio

from hubgate.config.model import DcConnector
from hubgate.devices.errors import DeviceError, FailsafeNotAppliedError, SunSpecDiscoveryError
from hubgate.devices.heartbeat import FED_BY_A_WRITE
from hubgate.devices.profile_driver import ProfileBattery, ProfileCharger, clamp, driver_for
from hubgate.devices.sensing import control_quantities
from hubgate.modbus.codec import FieldValue, ReadPlan, Request, Response
from hubgate.modbus.errors import ModbusExceptionError, ModbusTimeoutError
from hubgate.modbus.master import Master, ModbusDevice, read_plan_in_turn
from hubgate.modbus.stats import RequestStats
from hubgate.modbus.tcp_master import open_tcp_master
from hubgate.profiles.model import (
    DataType,
    HeartbeatStyle,
    IecState,
    Pause,
    Profile,
    Quantity,
    SunSpecBlock,
    Unit,
)
from hubgate.profiles.plan import field_specs, sunspec_layout
from hubgate.sim.modbus_box import serve
from hubgate.sim.simulated_device import UNDOCUMENTED_TIMEOUT_S, SimulatedDevice
from tests.support.drivers import (
    CHARGERS,
    PROFILES,
    FakeClock,
    a_current,
    charger,
    derived_currents,
    distinct_value,
    limit_setpoint,
    per_amp,
    rig,
)

WITH_FAILSAFE = sorted(n for n in CHARGERS if PROFILES[n].failsafe.present)
PHASE_SWITCHED = sorted(n for n in CHARGERS if PROFILES[n].commands.phase_switch is not None)
BATTERIES = sorted(
    n
    for n, p in PROFILES.items()
    if p.commands.charge_power_limit is not None or p.commands.discharge_power_limit is not None
)
TIMEOUT_S = 30.0
FAILSAFE_A = 8.0


@pytest.mark.parametrize("name", sorted(PROFILES))
async def test_every_field_reads_as_the_device_holds_it(name: str) -> None:
    profile = PROFILES[name]
    specs = field_specs(profile, sunspec_layout(profile))
    with trio.fail_after(10):
        async with rig(profile) as r:
            written = {}
            for index, quantity in enumerate(sorted(specs)):
                written[quantity] = distinct_value(index, specs[quantity], r.sim.exponent)
                r.sim.set(quantity, written[quantity])
            before = trio.current_time()
            reading = await r.driver.read()
    assert before <= reading.at <= trio.current_time()
    assert {str(q) for q in (*reading.values, *reading.text)} == set(specs) | derived_currents(
        profile
    )
    for quantity, expected in written.items():
        q = Quantity(quantity)
        if isinstance(expected, str):
            assert reading.text[q] == expected, quantity
        elif expected is None:
            assert q in reading.values, quantity
            assert reading.values[q] is None, quantity
        else:
            assert reading.get(q) == pytest.approx(expected, rel=1e-6, abs=1e-9), quantity


@pytest.mark.parametrize("name", sorted(n for n in PROFILES if PROFILES[n].states is not None))
async def test_state_maps_to_iec(name: str) -> None:
    profile = PROFILES[name]
    states = profile.states
    assert states is not None
    spec = field_specs(profile)[str(states.field)]
    with trio.fail_after(10):
        async with rig(profile) as r:
            for raw, expected in states.map.items():
                value: float | str = raw if spec.type is DataType.STRING else float(raw)
                r.sim.set(states.field, value)
                reading = await r.driver.read()
                assert reading.state == IecState(expected.value), raw
            if states.default is not None and spec.type is not DataType.STRING:
                unmapped = next(v for v in range(1, 127) if str(v) not in states.map)
                r.sim.set(states.field, float(unmapped))
                assert (await r.driver.read()).state == IecState(states.default.value)


@pytest.mark.parametrize("name", CHARGERS)
async def test_limit_is_written_and_read_back(name: str) -> None:
    profile = PROFILES[name]
    setpoint, unit = limit_setpoint(profile), per_amp(profile)
    wanted = a_current(profile) + 0.37  # off-step for most: rounded down to the step
    expected = clamp(setpoint, wanted * unit)
    assert expected is not None
    with trio.fail_after(10):
        async with rig(profile) as r:
            applied = await charger(r).set_limit(wanted, 3)
            assert applied.current_a == pytest.approx(expected / unit, abs=1e-3)
            assert not applied.paused
            assert r.sim.applied_limit() == pytest.approx(expected, abs=1e-3)
            assert not r.sim.paused
            top = await charger(r).set_limit(setpoint.max / unit + 10, 3)
            assert top.current_a == pytest.approx(setpoint.max / unit, abs=1e-3)
            assert r.sim.applied_limit() == pytest.approx(setpoint.max, abs=1e-3)


@pytest.mark.parametrize(
    "name", [n for n in CHARGERS if PROFILES[n].commands.pause is not Pause.NONE]
)
async def test_pause_and_resume(name: str) -> None:
    profile = PROFILES[name]
    current = a_current(profile)
    with trio.fail_after(10):
        async with rig(profile) as r:
            assert not (await charger(r).set_limit(current, 3)).paused
            for pausing in (0.0, limit_setpoint(profile).min / per_amp(profile) - 1):
                paused = await charger(r).set_limit(pausing, 3)
                assert paused.paused, pausing
                assert paused.current_a == 0
                assert r.sim.paused
                if profile.commands.pause is Pause.ENABLE:
                    assert not r.sim.enabled
                resumed = await charger(r).set_limit(current, 3)
                assert not resumed.paused
                assert resumed.current_a == pytest.approx(current, abs=1e-3)
                assert not r.sim.paused
                assert r.sim.applied_limit() == pytest.approx(current * per_amp(profile), abs=1e-3)


@pytest.mark.parametrize("name", PHASE_SWITCHED)
async def test_phase_switching(name: str) -> None:
    profile = PROFILES[name]
    with trio.fail_after(10):
        async with rig(profile) as r:
            one = await charger(r).set_limit(a_current(profile), 1)
            assert (one.phases, r.sim.phases) == (1, "1p")
            three = await charger(r).set_limit(a_current(profile), 3)
            assert (three.phases, r.sim.phases) == (3, "3p")


def with_heartbeat(profile: Profile, style: HeartbeatStyle) -> Profile:
    """`profile` with its heartbeat register fed in another style (toggle, counter)."""
    beat = profile.failsafe.heartbeat
    assert beat is not None
    failsafe = profile.failsafe.model_copy(
        update={"heartbeat": beat.model_copy(update={"style": style, "value": None})}
    )
    return profile.model_copy(update={"failsafe": failsafe})


FAILSAFE_CASES = [
    *(pytest.param(PROFILES[n], id=n) for n in WITH_FAILSAFE),
    *(
        pytest.param(with_heartbeat(PROFILES["vestel-evc04"], style), id=str(style))
        for style in (HeartbeatStyle.TOGGLE, HeartbeatStyle.COUNTER)
    ),
]


@pytest.mark.parametrize("profile", FAILSAFE_CASES)
async def test_failsafe_configured_fed_and_lapsing(profile: Profile) -> None:
    failsafe = profile.failsafe
    assert failsafe.timeout is not None
    assert failsafe.fallback is not None
    with trio.fail_after(10):
        async with rig(profile) as r:
            driver = charger(r)
            await driver.configure_failsafe(TIMEOUT_S, FAILSAFE_A)
            settings = driver.failsafe
            assert settings is not None
            timeout_writable = failsafe.timeout.writable and failsafe.timeout.address is not None
            fallback_writable = failsafe.fallback.writable and failsafe.fallback.address is not None
            expected_timeout = TIMEOUT_S if timeout_writable else failsafe.timeout.default_s
            if expected_timeout is None:  # read from the device: what the twin was left at
                expected_timeout = UNDOCUMENTED_TIMEOUT_S
            assert settings.timeout_s == pytest.approx(expected_timeout)
            if fallback_writable:
                assert settings.fallback == pytest.approx(FAILSAFE_A * per_amp(profile))
            period = driver.heartbeat_period_s
            assert period is not None
            assert period <= settings.timeout_s / 2
            await driver.set_limit(a_current(profile), 3)
            for _ in range(math.ceil(3 * settings.timeout_s / period)):  # three timeouts long
                r.clock.advance(period)
                await driver.heartbeat()
                r.sim.poll()
                assert not r.sim.failsafe_active
            wanted = a_current(profile) * per_amp(profile)
            assert r.sim.applied_limit() == pytest.approx(wanted, abs=1e-3)
            r.clock.advance(settings.timeout_s + 1)  # hubgate is gone: no heartbeat, no traffic
            r.sim.poll()
            assert r.sim.failsafe_active
            # a fallback set on the device alone is unknown to hubgate: the twin's is 0
            fallback = settings.fallback if settings.fallback is not None else 0.0
            assert r.sim.applied_limit() == pytest.approx(fallback)


def requests_sent(driver: ProfileCharger, monkeypatch: pytest.MonkeyPatch) -> list[Request]:
    """From now on, every request `driver` sends but reads of plans (writes, heartbeats)."""
    sent: list[Request] = []
    master = driver.link.master
    send = master.request

    async def counted(unit: int, request: Request, **kwargs: float | None) -> Response:
        sent.append(request)
        return await send(unit, request, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(master, "request", counted)
    return sent


@pytest.mark.parametrize("name", WITH_FAILSAFE)
async def test_a_failsafe_in_place_is_read_not_written_again(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A second verification (a restart, a new leader taking over from the gateway that set
    them) finds the settings in place: nothing written but a watchdog's feed where a write
    of its own feeds it (a lapsed one takes no setpoint: `FED_BY_A_WRITE`), the same
    settings; a timeout the device does not hold is written again."""
    profile = PROFILES[name]
    timeout = profile.failsafe.timeout
    assert timeout is not None
    with trio.fail_after(10):
        async with rig(profile) as r:
            driver = charger(r)
            await driver.configure_failsafe(TIMEOUT_S, FAILSAFE_A)
            first = driver.failsafe
            sent = requests_sent(driver, monkeypatch)  # the writes
            await driver.configure_failsafe(TIMEOUT_S, FAILSAFE_A)
            assert driver.failsafe == first
            writes_timeout = timeout.writable and timeout.address is not None
            if timeout.enable_address is None:  # its enable is written every time
                beat = profile.failsafe.heartbeat
                assert len(sent) == (beat is not None and beat.style in FED_BY_A_WRITE)
            if writes_timeout:
                sent.clear()
                await driver.configure_failsafe(TIMEOUT_S + 10, FAILSAFE_A)
                assert sent, "the new timeout was not written"
                assert driver.failsafe is not None
                assert driver.failsafe.timeout_s == pytest.approx(TIMEOUT_S + 10)


TRAFFIC_FED = sorted(
    n
    for n in WITH_FAILSAFE
    if (beat := PROFILES[n].failsafe.heartbeat) is not None and beat.style is HeartbeatStyle.TRAFFIC
)


@pytest.mark.parametrize("name", TRAFFIC_FED)
async def test_a_traffic_fed_watchdog_is_fed_by_the_cycles_reads(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A device whose watchdog any request feeds (ABB's "any operation, e.g. a read"): while
    the control cycle's reads are answered, its heartbeat sends no request of its own and the
    watchdog stays fed; half a heartbeat period without a read answered, it sends one."""
    profile = PROFILES[name]
    beat = profile.failsafe.heartbeat
    assert beat is not None
    failsafe = profile.failsafe.model_copy(
        update={"heartbeat": beat.model_copy(update={"period_s": 0.4})}
    )
    profile = profile.model_copy(update={"failsafe": failsafe})
    with trio.fail_after(20):
        async with rig(profile) as r:
            driver = charger(r)
            await driver.configure_failsafe(TIMEOUT_S, FAILSAFE_A)
            await driver.set_limit(a_current(profile), 3)
            settings = driver.failsafe
            assert settings is not None
            assert settings.timeout_s is not None
            period = driver.heartbeat_period_s
            assert period == pytest.approx(0.4)
            sent = requests_sent(driver, monkeypatch)  # the heartbeats
            for _ in range(math.ceil(3 * settings.timeout_s / period)):  # three timeouts long
                r.clock.advance(period)
                await driver.read()  # the cycle's read
                await driver.heartbeat()
                r.sim.poll()
                assert not r.sim.failsafe_active
            assert sent == []
            await trio.sleep(period / 2)  # no read answered for half a period
            await driver.heartbeat()
            assert len(sent) == 1


@pytest.mark.parametrize("name", sorted(set(CHARGERS) - set(WITH_FAILSAFE)))
async def test_no_failsafe_means_no_heartbeat_but_a_keep_alive(name: str) -> None:
    keep_alive = PROFILES[name].failsafe.heartbeat
    with trio.fail_after(10):
        async with rig(PROFILES[name]) as r:
            await charger(r).configure_failsafe(TIMEOUT_S, FAILSAFE_A)
            assert charger(r).failsafe is None
            assert charger(r).heartbeat_period_s == (keep_alive and keep_alive.period_s)
            await charger(r).heartbeat()
            if keep_alive is not None and keep_alive.address is not None:
                assert r.sim.value("failsafe.heartbeat") == keep_alive.value


@pytest.mark.parametrize("name", BATTERIES)
async def test_battery_power_setpoints(name: str) -> None:
    profile = PROFILES[name]
    with trio.fail_after(10):
        async with rig(profile) as r:
            driver = r.driver
            assert isinstance(driver, ProfileBattery)
            wanted = {  # in the setpoint's unit: W, or % of the battery's maximum
                n: float(round(s.max * (0.15 if n.startswith("charge") else 0.25)))
                for n, s in profile.commands.setpoints.items()
            }
            applied = await driver.set_power_limits(
                charge_w=wanted.get("charge_power_limit"),
                discharge_w=wanted.get("discharge_power_limit"),
            )
            assert applied == pytest.approx(wanted)
            assert r.sim.setpoints == pytest.approx(wanted)
            capped = await driver.set_power_limits(charge_w=1e9)
            assert capped == {
                "charge_power_limit": profile.commands.setpoints["charge_power_limit"].max
            }


async def test_exception_response_is_a_modbus_exception_error() -> None:
    """A driver pointed at the wrong device reads registers that do not exist there."""
    wrong = PROFILES["eastron-sdm630"]
    with trio.fail_after(10):
        async with rig(PROFILES["alfen-eve"]) as r:
            link = r.driver.link
            with pytest.raises(ModbusExceptionError) as caught:
                await driver_for("meter", wrong, link).read()
            assert caught.value.code == 2
            setpoint = r.sim.profile.commands.current_limit
            assert setpoint is not None
            spec = await r.driver.resolve("current_limit", setpoint)
            with pytest.raises(ModbusExceptionError):  # above max: the device says 03
                await r.driver.write_value(spec, setpoint.max + 10, multiple=True)
            assert (await r.driver.read()).values  # the link survives


async def _silent_server(task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED) -> None:
    """A TCP peer that accepts and reads but never answers."""

    async def swallow(stream: trio.SocketStream) -> None:
        async with stream:
            while await stream.receive_some():
                pass

    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    task_status.started(listeners[0].socket.getsockname()[1])
    await trio.serve_listeners(swallow, listeners)


async def test_timeout_is_a_modbus_timeout_error() -> None:
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            port = await nursery.start(_silent_server)
            async with open_tcp_master("127.0.0.1", port, timeout_s=0.2, retries=0) as master:
                driver = ProfileCharger("cp", PROFILES["vestel-evc04"], ModbusDevice(master, 1))
                with pytest.raises(ModbusTimeoutError):
                    await driver.read()
                with pytest.raises(ModbusTimeoutError):
                    await driver.set_limit(10, 3)
            nursery.cancel_scope.cancel()


def in_watts(profile: Profile) -> Profile:
    """`profile` with its current setpoint replaced by a power setpoint in W (6-32 A at 230 V)."""
    current = profile.commands.current_limit
    assert current is not None
    power = current.model_copy(update={"unit": Unit.WATT, "min": 1380.0, "max": 22080.0})
    commands = profile.commands.model_copy(update={"current_limit": None, "power_limit": power})
    return profile.model_copy(update={"commands": commands})


async def test_power_setpoint_is_current_times_phases_times_voltage() -> None:
    with trio.fail_after(10):
        async with rig(in_watts(PROFILES["vestel-evc04"])) as r:
            three = await charger(r).set_limit(10, 3)
            assert r.sim.applied_limit() == pytest.approx(10 * 3 * 230)
            assert (three.current_a, three.phases, three.paused) == (pytest.approx(10), 3, False)
            one = await charger(r).set_limit(10, 1)
            assert r.sim.applied_limit() == pytest.approx(10 * 230)
            assert (one.current_a, one.phases) == (pytest.approx(10), 1)
            assert (await charger(r).set_limit(5, 1)).paused  # 1150 W is below 1380 W
            assert r.sim.paused


DC = DcConnector(max_power_kw=150, min_power_kw=5, efficiency=0.95, power_factor=0.99)


async def test_a_dc_connector_is_commanded_in_dc_power_and_drawn_by_its_power() -> None:
    """alpitronic-hypercharger (DC, W setpoint, no current field) with the site file's `dc`
    table: the AC amperes the loop allocates go out as DC power (efficiency and power factor,
    so below the AC power whichever side the charger limits), the DC power it reports comes
    back as AC current on three phases, every cycle; it cannot pause: 0 A writes its minimum."""
    profile = PROFILES["alpitronic-hypercharger"]
    sim = SimulatedDevice(profile, clock=FakeClock())
    with trio.fail_after(10), serve(sim) as port:
        async with open_tcp_master("127.0.0.1", port, timeout_s=2.0, retries=0) as master:
            link = ModbusDevice(master, sim.unit)
            driver = driver_for("dc-1", profile, link, voltage_v=230, dc=DC)
            assert isinstance(driver, ProfileCharger)
            applied = await driver.set_limit(100, 3)
            assert sim.applied_limit() == pytest.approx(100 * 0.95 * 0.99 * 3 * 230, abs=1)
            assert applied.current_a == pytest.approx(100, abs=0.01)
            assert not applied.paused
            sim.set(Quantity.POWER_TOTAL, 50_000)
            per_phase = 50_000 / (0.95 * 0.99 * 3 * 230)  # 76.9 A
            assert (await driver.read()).phase_currents() == pytest.approx((per_phase,) * 3)
            read = driver.cycle_reader(full_every=1_000).read
            await read()  # as the control loop reads it, every cycle
            sim.set(Quantity.POWER_TOTAL, 20_000)
            assert (await read()).phase_currents() == pytest.approx((per_phase * 0.4,) * 3)
            lowest = await driver.set_limit(0, 3)  # it cannot pause: its lowest, drawn still
            assert sim.applied_limit() == 1547  # (evcc-io/evcc#28493)
            assert (lowest.current_a, lowest.paused) == (
                pytest.approx(DC.ac_current_a(1547, 230)),
                False,
            )
            with pytest.raises(DeviceError, match="needs a setpoint in W"):
                driver_for("ac-1", PROFILES["alfen-eve"], link, dc=DC)


async def test_an_ac_charger_measuring_no_current_is_drawn_by_its_power() -> None:
    """mennekes-amtron-xtra (HCC3) reports power and phases in use, no current: its phase
    currents are derived from them (devices.derived_current), in full reads and every cycle;
    without the phases-active field, on the phases it was last commanded on."""
    profile = PROFILES["mennekes-amtron-xtra"]
    assert not {Quantity.CURRENT_L1, Quantity.CURRENT_L2} & profile.fields.keys()
    with trio.fail_after(10):
        async with rig(profile) as r:
            r.sim.set(Quantity.POWER_TOTAL, 11_040)
            r.sim.set(Quantity.PHASES_ACTIVE, 3)
            assert (await r.driver.read()).phase_currents() == pytest.approx((16.0,) * 3)
            read = r.driver.cycle_reader(full_every=1_000).read
            await read()
            r.sim.set(Quantity.POWER_TOTAL, 7_360)  # a one-phase EV at 32 A
            r.sim.set(Quantity.PHASES_ACTIVE, 1)
            assert (await read()).phase_currents() == pytest.approx((32.0, 0.0, 0.0))
    fields = {q: f for q, f in profile.fields.items() if q is not Quantity.PHASES_ACTIVE}
    unknown_phases = profile.model_copy(update={"fields": fields})
    with trio.fail_after(10):
        async with rig(unknown_phases) as r:
            r.sim.set(Quantity.POWER_TOTAL, 7_360)
            await charger(r).set_limit(32, 1)
            assert (await r.driver.read()).phase_currents() == pytest.approx((32.0, 0.0, 0.0))


async def test_an_ac_charger_with_an_energy_register_only_is_drawn_by_its_rate() -> None:
    """No current, no power: the energy register's average over 10 s gives the power (none
    before), on the phases commanded; the register is read every cycle."""
    profile = PROFILES["mennekes-amtron-xtra"]
    state = profile.fields[Quantity.CHARGER_STATE]
    energy = profile.fields[Quantity.SESSION_ENERGY]
    fields = {Quantity.CHARGER_STATE: state, Quantity.ENERGY_IMPORT: energy}
    only_energy = profile.model_copy(update={"fields": fields})
    assert Quantity.ENERGY_IMPORT in (control_quantities(only_energy) or ())
    quantities = [Quantity.CHARGER_STATE, Quantity.ENERGY_IMPORT]
    with trio.fail_after(10):
        async with rig(only_energy) as r:
            driver = charger(r)
            await driver.set_limit(16, 3)
            assert driver.reading(quantities, [5, 1_000], 100.0).phase_currents() is None
            at_10 = driver.reading(quantities, [5, 1_030], 110.0)  # 30 Wh in 10 s: 10.8 kW
            assert at_10.phase_currents() == pytest.approx((10_800 / 690,) * 3)


async def test_failsafe_timeout_the_register_cannot_hold() -> None:
    profile = PROFILES["heidelberg-energy-control"]  # timeout in ms in a u16: at most 65.5 s
    with trio.fail_after(10):
        async with rig(profile) as r:
            with pytest.raises(FailsafeNotAppliedError, match="cannot hold 100"):
                await charger(r).configure_failsafe(100, FAILSAFE_A)
            assert charger(r).failsafe is None
            await charger(r).configure_failsafe(TIMEOUT_S, FAILSAFE_A)  # the link survives
            assert charger(r).failsafe is not None


PAUSES_ON_FALLBACK = {
    "heidelberg-energy-control": 0.0,  # 262: 0 = error state (register table)
    "keba-p40": 0.0,  # 5016: 0 suspends charging (KEBA guide 4.7)
    "keba-p40-legacy": 0.0,
    "mennekes-amtron-compact-2.0s": 1.0,  # 0x073A: 0 disabled, 1 pause (Mennekes spec)
}
"""The chargers whose fallback register has a documented value that stops charging."""


def test_what_each_charger_falls_back_to_whatever_it_is_told() -> None:
    """Alfen's safe current is fixed at its documented 6 A; the ones that pause on fallback
    take any share; every other charger counts the site's failsafe current (8 A here)."""
    fixed = {name: PROFILES[name].failsafe.fixed_current_a(FAILSAFE_A) for name in CHARGERS}
    assert {n for n, a in fixed.items() if a is None} == set(PAUSES_ON_FALLBACK)
    assert {n: a for n, a in fixed.items() if a is not None and a != FAILSAFE_A} == {
        "alfen-eve": 6.0,
        "alfen-eve-scn": 6.0,
    }


@pytest.mark.parametrize("name", sorted(PAUSES_ON_FALLBACK))
async def test_a_failsafe_of_0_a_is_the_fallback_registers_pause_value(name: str) -> None:
    with trio.fail_after(10):
        async with rig(PROFILES[name]) as r:
            await charger(r).configure_failsafe(TIMEOUT_S, 0.0)
            settings = charger(r).failsafe
            assert settings is not None
            assert settings.fallback == PAUSES_ON_FALLBACK[name]
            assert r.sim.value("failsafe.fallback") == PAUSES_ON_FALLBACK[name]
            await charger(r).set_limit(a_current(PROFILES[name]), 3)
            r.clock.advance(settings.timeout_s + 1)  # hubgate is gone
            r.sim.poll()
            assert r.sim.failsafe_active
            assert r.sim.applied_limit() == 0.0


async def test_0_a_is_refused_where_no_fallback_value_pauses() -> None:
    with trio.fail_after(10):
        async with rig(PROFILES["abb-terra-ac"]) as r:
            with pytest.raises(FailsafeNotAppliedError, match="no fallback value that pauses"):
                await charger(r).configure_failsafe(TIMEOUT_S, 0.0)
            await charger(r).configure_failsafe(TIMEOUT_S, FAILSAFE_A)  # the link survives
            assert charger(r).failsafe is not None


class SlowWrites:
    """A master that announces each FC16 write and holds it back by the next of `delays`."""

    def __init__(self, master: Master) -> None:
        self.master = master
        self.writing = trio.Event()
        self.delays: list[float] = []

    @property
    def name(self) -> str:
        return self.master.name

    @property
    def stats(self) -> dict[int, RequestStats]:
        return self.master.stats

    async def request(
        self,
        unit: int,
        request: Request,
        *,
        timeout_s: float | None = None,
        delay_s: float = 0.0,
    ) -> Response:
        if isinstance(request, Request.WriteMultipleRegisters):
            self.writing.set()
            await trio.sleep(self.delays.pop(0) if self.delays else 0)
        return await self.master.request(unit, request, timeout_s=timeout_s, delay_s=delay_s)

    async def read_plan(
        self,
        unit: int,
        plan: ReadPlan,
        *,
        max_in_flight: int = 1,
        timeout_s: float | None = None,
        delay_s: float = 0.0,
    ) -> list[FieldValue]:
        return await read_plan_in_turn(self, unit, plan, timeout_s=timeout_s, delay_s=delay_s)


async def test_heartbeat_never_rewrites_a_stale_setpoint() -> None:
    """Alfen's heartbeat re-writes the setpoint; one due while a new limit is being written
    waits for it, and never puts the old limit back."""
    with trio.fail_after(10):
        async with rig(PROFILES["alfen-eve"]) as r:
            await charger(r).set_limit(10, 3)
            slow = SlowWrites(r.driver.link.master)
            driver = ProfileCharger("cp", r.sim.profile, ModbusDevice(slow, r.sim.unit))
            await driver.set_limit(10, 3)
            slow.writing = trio.Event()
            slow.delays = [0.05, 0.1]  # the limit's write, then the heartbeat's, lands last

            async def beat_while_writing() -> None:
                await slow.writing.wait()
                await driver.heartbeat()

            async with trio.open_nursery() as nursery:
                nursery.start_soon(beat_while_writing)
                nursery.start_soon(driver.set_limit, 16, 3)
            assert r.sim.applied_limit() == pytest.approx(16)


def with_extra_model(profile: Profile) -> Profile:
    """`profile` whose device has a model hubgate does not know between its blocks."""
    sunspec = profile.sunspec
    assert sunspec is not None
    first, *rest = sunspec.blocks.items()
    blocks = dict([first, ("vendor", SunSpecBlock(ids=(64_000,), length=7)), *rest])
    return profile.model_copy(update={"sunspec": sunspec.model_copy(update={"blocks": blocks})})


@pytest.mark.parametrize("name", sorted(n for n, p in PROFILES.items() if p.sunspec is not None))
async def test_sunspec_blocks_are_discovered_past_unknown_models(name: str) -> None:
    profile = PROFILES[name]
    device_profile = with_extra_model(profile)
    clock = FakeClock()
    sim = SimulatedDevice(device_profile, clock=clock)
    specs = field_specs(device_profile)
    written = {}
    for index, quantity in enumerate(sorted(specs)):
        written[quantity] = distinct_value(index, specs[quantity], sim.exponent)
        sim.set(quantity, written[quantity])
    with serve(sim) as port, trio.fail_after(10):
        async with open_tcp_master("127.0.0.1", port, timeout_s=2, retries=0) as master:
            driver = driver_for("ss", profile, ModbusDevice(master, sim.unit))
            reading = await driver.read()
            found = await driver.blocks()
    laid_out = sunspec_layout(device_profile)
    assert found == {k: v for k, v in laid_out.items() if k != "vendor"}
    assert found != sunspec_layout(profile)
    for quantity in specs:
        expected = None if written[quantity] is None else sim.get(quantity)
        got = reading.text.get(Quantity(quantity), reading.values.get(Quantity(quantity)))
        assert got == (pytest.approx(expected) if isinstance(expected, float) else expected)


async def test_a_missing_sunspec_block_is_a_discovery_error() -> None:
    with trio.fail_after(10):
        async with rig(PROFILES["sunspec-inverter"]) as r:
            meter = driver_for("m", PROFILES["sunspec-meter"], r.driver.link)
            with pytest.raises(SunSpecDiscoveryError, match="meter"):
                await meter.read()


@pytest.mark.parametrize("name", [n for n in CHARGERS if PROFILES[n].commands.pause is Pause.NONE])
async def test_a_charger_that_cannot_pause_stays_at_its_minimum(name: str) -> None:
    profile = PROFILES[name]
    setpoint = limit_setpoint(profile)
    with trio.fail_after(10):
        async with rig(profile) as r:
            held = await charger(r).set_limit(0.0, 3)
            assert not held.paused  # it still draws: the allocator must count it
            assert held.current_a == pytest.approx(setpoint.min / per_amp(profile), abs=1e-3)
            assert r.sim.applied_limit() == pytest.approx(setpoint.min)


FIXED_TIMEOUT = sorted(
    n
    for n in WITH_FAILSAFE
    if (t := PROFILES[n].failsafe.timeout) is not None and not t.writable and t.default_s
)


@pytest.mark.parametrize("name", FIXED_TIMEOUT)
async def test_a_fixed_timeout_is_logged_once_per_device_not_every_verification(
    name: str, caplog: pytest.LogCaptureFixture
) -> None:
    timeout = PROFILES[name].failsafe.timeout
    assert timeout is not None
    assert timeout.default_s != TIMEOUT_S
    with trio.fail_after(10):
        async with rig(PROFILES[name]) as r:
            for _ in range(3):  # verified again after every gap in contact
                await charger(r).configure_failsafe(TIMEOUT_S, FAILSAFE_A)
    fixed = [rec for rec in caplog.records if "timeout is fixed at" in rec.getMessage()]
    assert len(fixed) == 1, [rec.getMessage() for rec in fixed]
    assert fixed[0].getMessage().startswith(f"{charger(r).id}: ")

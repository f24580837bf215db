"""The control loop with a battery and PV, on Trio's MockClock: peak shaving, PV mode, safety.

A small site: three 32 A chargers on a 100 A connection with a 60 kW limit and a
40 kW peak target, a grid meter, a 30 kW battery and a PV inverter, all
in-memory devices over one shared physics (the chargers of `tests.support.loop_site`).
"""

from __future__ import annotations

import itertools
import tomllib
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field

import pytest
import trio
import trio.testing

from hubgate.config.model import SiteConfig
from hubgate.control.commands import CommandRejectedError
from hubgate.control.limits import SITE as SITE_TARGET
from hubgate.control.limits import Limit, LimitSource
from hubgate.control.loop import ControlLoop
from hubgate.control.sensors import SiteDevices
from hubgate.devices.model import BatteryCommandResult, Reading
from hubgate.profiles.model import Quantity
from tests.support.loop_site import (
    SimCharger,
    UnreachableError,
    modbus_chargers,
    running_loop,
    site_meter,
)

VOLTAGE = 230.0
LIMIT_W = 60_000.0
TARGET_W = 40_000.0

SITE = (
    """
[site]
name = "energy site"
[grid]
phase_current_limit_a = 100
power_limit_kw = 60
peak_target_kw = 40
"""
    + modbus_chargers("grid", pv_mode="cp-3")
    + site_meter("grid-meter", "grid")
    + """[battery]
id = "battery"
modbus = { profile = "sma-sunny-boy-storage", host = "127.0.0.1", port = 1506, unit = 3 }
capacity_kwh = 50
max_charge_kw = 30
max_discharge_kw = 30
min_soc_percent = 10
max_soc_percent = 90
[[pv]]
id = "pv-roof"
modbus = { profile = "sunspec-inverter", host = "127.0.0.1", port = 1507 }
peak_kw = 50
[control]
cycle_s = 1.0
meter_stale_s = 3
lease_s = 10
"""
)

PV_ONLY = SITE.replace("max_soc_percent = 90", "max_soc_percent = 90\ncharge_from_grid = false")

BATTERY_REACTION_S = 1.0


@dataclass
class SimBattery:
    """A battery that follows its command after a second, within its SoC window."""

    id: str = "battery"
    soc: float = 50.0
    command_w: float = 0.0
    power_w: float = 0.0
    reachable: bool = True
    commands: list[tuple[float, float]] = field(default_factory=list)
    _since: float = 0.0
    _last: float = 0.0
    max_charge_w: float = 30_000.0
    max_discharge_w: float = 30_000.0

    def advance(self, now: float) -> None:
        dt = now - self._last
        self._last = now
        self.soc -= self.power_w * dt / 3600 / 50_000 * 100
        wanted = self.command_w
        if (wanted > 0 and self.soc <= 10) or (wanted < 0 and self.soc >= 90):
            wanted = 0.0
        if now - self._since >= BATTERY_REACTION_S:
            self.power_w = wanted

    async def read(self) -> Reading:
        await trio.sleep(0.01)
        if not self.reachable:
            raise UnreachableError(self.id)
        now = trio.current_time()
        self.advance(now)
        return Reading(
            at=now, values={Quantity.SOC: self.soc, Quantity.BATTERY_POWER: self.power_w}
        )

    async def command(self, power_w: float) -> BatteryCommandResult:
        await trio.sleep(0.01)
        if not self.reachable:
            raise UnreachableError(self.id)
        now = trio.current_time()
        self.advance(now)
        if power_w != self.command_w:
            self._since = now
        self.command_w = power_w
        self.commands.append((now, power_w))
        return BatteryCommandResult(max(-power_w, 0.0), max(power_w, 0.0))


@dataclass
class SimPv:
    id: str = "pv-roof"
    power_w: float = 0.0

    async def read(self) -> Reading:
        await trio.sleep(0.01)
        return Reading(at=trio.current_time(), values={Quantity.POWER_TOTAL: -self.power_w})


@dataclass
class EnergySite:
    """Chargers, battery and PV behind one grid meter, with the import the meter sees."""

    chargers: list[SimCharger]
    battery: SimBattery
    pv: SimPv
    base_w: float = 10_000.0
    id: str = "grid-meter"
    peak_import_w: float = 0.0
    imports: list[tuple[float, float]] = field(default_factory=list)

    def import_w(self, now: float) -> float:
        for c in self.chargers:
            c.advance(now)
        self.battery.advance(now)
        evs = sum(c.draw_a for c in self.chargers) * 3 * VOLTAGE
        return self.base_w + evs - self.battery.power_w - self.pv.power_w

    async def read(self) -> Reading:
        await trio.sleep(0.01)
        now = trio.current_time()
        watts = self.import_w(now)
        self.imports.append((now, watts))
        amps = watts / (3 * VOLTAGE)
        return Reading(
            at=now,
            values={
                Quantity.CURRENT_L1: amps,
                Quantity.CURRENT_L2: amps,
                Quantity.CURRENT_L3: amps,
                Quantity.POWER_TOTAL: watts,
            },
        )

    def devices(self) -> SiteDevices:
        return SiteDevices(
            chargers={(c.id, 1): c for c in self.chargers},
            meters={"grid-meter": self},
            battery=self.battery,
            pv={"pv-roof": self.pv},
        )

    def charger(self, charger_id: str) -> SimCharger:
        return next(c for c in self.chargers if c.id == charger_id)

    def imports_since(self, start: float) -> list[float]:
        return [w for t, w in self.imports if t >= start]


def build(connected: tuple[str, ...] = ("cp-1", "cp-2")) -> EnergySite:
    chargers = [SimCharger(f"cp-{i}", connected=f"cp-{i}" in connected) for i in (1, 2, 3)]
    return EnergySite(chargers, SimBattery(), SimPv())


def running(site: EnergySite, toml: str = SITE) -> AbstractAsyncContextManager[ControlLoop]:
    return running_loop(SiteConfig.model_validate(tomllib.loads(toml)), site.devices())


def energy(loop: ControlLoop) -> dict[str, object]:
    record = loop.decisions.recent(1)[0]
    value = record.inputs["energy"]
    assert isinstance(value, dict)
    return value


async def test_battery_discharges_to_hold_the_peak_target(
    autojump_clock: trio.testing.MockClock,
) -> None:
    site = build()  # two EVs want 2 x 22 kW on top of 10 kW: 54 kW against a 40 kW target
    async with running(site) as loop:
        await trio.sleep(60)
        assert energy(loop)["battery_mode"] == "peak-shaving"
        assert site.battery.power_w > 10_000
        assert site.battery.soc < 50
        # the EVs get more than the target alone would allow, the import stays at the target
        state = loop.hub.latest
        assert state is not None
        assert state.energy is not None
        assert state.energy.battery_mode == "peak-shaving"
        ev_w = sum(c.draw_a for c in site.chargers) * 3 * VOLTAGE
        assert ev_w > TARGET_W - site.base_w + 5_000
        settled = site.imports_since(30)
        assert max(settled) <= TARGET_W + 500


async def test_import_never_exceeds_the_limit_through_soc_and_battery_loss(
    autojump_clock: trio.testing.MockClock,
) -> None:
    site = build()
    site.battery.soc = 12.0  # runs empty during the test
    async with running(site) as loop:
        await trio.sleep(40)
        site.battery.reachable = False
        await trio.sleep(20)
        assert energy(loop)["battery_mode"] == "unavailable"
        site.battery.reachable = True
        await trio.sleep(60)
    # the target can be passed briefly while EVs react, the connection's limit never
    assert max(w for _, w in site.imports) <= LIMIT_W
    assert site.battery.soc >= 10 - 0.1


async def test_battery_loss_while_discharging_cuts_the_evs_back(
    autojump_clock: trio.testing.MockClock,
) -> None:
    site = build()
    async with running(site) as loop:
        await trio.sleep(40)
        assert site.battery.power_w > 10_000
        site.battery.reachable = False
        await trio.sleep(15)
        notes = loop.decisions.recent(1)[0].notes
        assert any("battery not heard from" in n for n in notes)
        # the discharge may vanish any moment: the EVs are back under the target without it
        ev_w = sum(c.limit_a for c in site.chargers[:2]) * 3 * VOLTAGE
        assert site.base_w + ev_w <= TARGET_W + 1


async def test_pv_mode_connector_charges_from_surplus_only(
    autojump_clock: trio.testing.MockClock,
) -> None:
    site = build(connected=("cp-3",))
    site.base_w = 2_000.0
    async with running(site, PV_ONLY):
        await trio.sleep(30)
        assert site.charger("cp-3").limit_a == 0  # no PV: a PV-mode EV waits
        site.pv.power_w = 20_000.0  # 18 kW exported
        await trio.sleep(60)
        pv_ev = site.charger("cp-3")
        assert pv_ev.draw_a >= 6
        assert pv_ev.draw_a * 3 * VOLTAGE <= 18_000 + 1
        settled = site.imports_since(60)
        assert max(settled) <= 500  # drawn from the PV, not the grid
        site.pv.power_w = 0.0  # a cloud
        await trio.sleep(30)
        assert pv_ev.limit_a == 0


async def test_battery_recharges_from_pv_export(autojump_clock: trio.testing.MockClock) -> None:
    site = build(connected=())
    site.base_w = 2_000.0
    site.pv.power_w = 12_000.0
    async with running(site, PV_ONLY) as loop:
        await trio.sleep(30)
        assert energy(loop)["battery_mode"] == "pv-charge"
        assert site.battery.power_w < -9_000  # about the 10 kW exported
        assert site.battery.soc > 50
        assert max(site.imports_since(10)) <= 500


class CarriedPowerMeter(EnergySite):
    """A grid meter whose total power is an old full read's (an export long gone)."""

    async def read(self) -> Reading:
        fresh = await super().read()
        values = dict(fresh.values) | {Quantity.POWER_TOTAL: -20_000.0}
        return Reading(at=fresh.at, values=values, older={Quantity.POWER_TOTAL: fresh.at - 9})


async def test_a_carried_meter_power_is_not_taken_for_this_cycles_export(
    autojump_clock: trio.testing.MockClock,
) -> None:
    chargers = [SimCharger(f"cp-{i}", connected=False) for i in (1, 2, 3)]
    site = CarriedPowerMeter(chargers, SimBattery(), SimPv())
    site.base_w = 2_000.0  # importing: there is no surplus, whatever the old read said
    async with running(site, PV_ONLY) as loop:
        await trio.sleep(30)
        assert energy(loop)["battery_mode"] != "pv-charge"
        assert site.battery.power_w > -500


async def test_battery_recharges_from_spare_headroom(
    autojump_clock: trio.testing.MockClock,
) -> None:
    site = build(connected=())
    async with running(site) as loop:
        await trio.sleep(30)
        assert energy(loop)["battery_mode"] == "grid-charge"
        # 30 kW rating, 30 kW of headroom under the 40 kW target
        assert site.battery.power_w == -30_000
        assert max(site.imports_since(0)) <= TARGET_W + 1
        site.charger("cp-1").connected = True  # an EV arrives: the battery makes room
        await trio.sleep(30)
        assert site.battery.power_w > -30_000
        assert max(w for _, w in site.imports) <= LIMIT_W


async def test_the_battery_charges_into_no_room_reserved_for_a_charger_not_following(
    autojump_clock: trio.testing.MockClock,
) -> None:
    site = build(connected=())
    site.charger("cp-1").ignores_limits = True  # idle now, may draw its 22 kW at any time
    async with running(site) as loop:
        await trio.sleep(30)
        assert energy(loop)["battery_mode"] == "grid-charge"
        # 30 kW of headroom under the 40 kW target, 22 kW of it cp-1's: 8 kW for the battery
        assert site.battery.power_w == pytest.approx(-(TARGET_W - 10_000 - 32 * 3 * VOLTAGE))


async def test_battery_command_is_resent_within_half_a_lease(
    autojump_clock: trio.testing.MockClock,
) -> None:
    site = build(connected=())
    async with running(site):
        await trio.sleep(30)
    times = [t for t, _ in site.battery.commands]
    assert len(times) >= 5
    assert max(b - a for a, b in itertools.pairwise(times)) <= 5 + 1


async def test_pv_mode_switched_at_run_time(autojump_clock: trio.testing.MockClock) -> None:
    site = build(connected=("cp-1",))
    async with running(site, PV_ONLY) as loop:
        await trio.sleep(30)
        assert site.charger("cp-1").draw_a == 32  # from the grid
        await loop.commands.set_pv_mode("cp-1#1", True)
        await trio.sleep(10)
        assert site.charger("cp-1").limit_a == 0  # no PV: it waits
        state = loop.hub.latest
        assert state is not None
        assert next(c for c in state.connectors if c.charger == "cp-1").pv_mode
        await loop.commands.set_pv_mode("cp-1#1", False)
        await trio.sleep(130)  # its minimum pause, then the grid again
        assert site.charger("cp-1").limit_a > 0
        with pytest.raises(CommandRejectedError):
            await loop.commands.set_pv_mode("cp-9#1", True)


@dataclass
class RefusingBattery(SimBattery):
    """Answers reads but refuses commands while `refusing`."""

    refusing: bool = True

    async def command(self, power_w: float) -> BatteryCommandResult:
        if self.refusing:
            await trio.sleep(0.01)
            raise UnreachableError(f"{self.id}: write refused")
        return await super().command(power_w)


async def test_battery_command_failures_are_reported_once_and_retried(
    autojump_clock: trio.testing.MockClock,
) -> None:
    site = build(connected=())
    site.battery = battery = RefusingBattery()
    async with running(site) as loop:
        await trio.sleep(10)
        battery.refusing = False
        await trio.sleep(5)
        state = loop.hub.latest
        assert state is not None
        messages = [e.message for e in state.events if e.subject == "battery:battery"]
        assert messages == [
            "command failed (UnreachableError: battery: write refused)",
            "commands accepted again",
        ]
        assert battery.command_w == -30_000  # retried every cycle until it took


async def test_battery_back_from_silence_is_commanded_at_once(
    autojump_clock: trio.testing.MockClock,
) -> None:
    site = build(connected=())
    async with running(site, SITE.replace("lease_s = 10", "lease_s = 60")):  # re-sent each 30 s
        await trio.sleep(20)
        site.battery.reachable = False
        await trio.sleep(10)
        site.battery.command_w = 0.0  # it rebooted and forgot its limits
        site.battery.reachable = True
        back = trio.current_time()
        await trio.sleep(3)
    assert [t for t, _ in site.battery.commands if t > back]  # not only after half a lease
    assert site.battery.command_w == -30_000


async def test_battery_charging_respects_a_site_limit_from_the_limit_book(
    autojump_clock: trio.testing.MockClock,
) -> None:
    site = build(connected=())
    async with running(site) as loop:
        await trio.sleep(20)
        assert site.battery.power_w == -30_000  # grid-charging under the 100 A connection
        loop.limits.set(
            SITE_TARGET,
            LimitSource.API,
            Limit((30.0, 30.0, 30.0)),
            now=trio.current_time(),
            lease_s=600,
            origin="test",
        )
        changed = trio.current_time()
        await trio.sleep(20)
    limit_w = 30 * 3 * VOLTAGE
    after = [w for t, w in site.imports if t > changed + BATTERY_REACTION_S + 1.5]
    assert after
    assert max(after) <= limit_w + 1
    assert site.battery.power_w < -5_000  # still charging, within the room left


async def test_a_site_without_battery_or_pv_shows_no_energy(
    autojump_clock: trio.testing.MockClock,
) -> None:
    site = build()
    plain = SiteDevices(chargers={(c.id, 1): c for c in site.chargers}, meters={"grid-meter": site})
    toml = SITE.split("[battery]")[0].replace("pv_mode = true", "pv_mode = false")
    toml += "[control]\ncycle_s = 1.0\n"
    async with running_loop(SiteConfig.model_validate(tomllib.loads(toml)), plain) as loop:
        await trio.sleep(5)
        state = loop.hub.latest
        assert state is not None
        assert state.energy is None


def operator_limit(loop: ControlLoop, kw: float) -> None:
    """A grid operator's power limit on the site, written through the API."""
    loop.limits.set(
        SITE_TARGET,
        LimitSource.API,
        Limit(power_kw=kw),
        now=trio.current_time(),
        lease_s=600,
        origin="test",
    )


async def test_under_a_curtailment_the_battery_gives_the_evs_its_power_not_the_grid(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """The issue's case: limit 25 kW, base 10 kW, two EVs wanting 44 kW. Without the
    battery's power in the balance the EVs got 15 kW and the battery fed the grid; with it
    the import sits at the limit, nothing is exported and the EVs take the battery's power."""
    site = build()
    async with running(site) as loop:
        await trio.sleep(20)
        operator_limit(loop, 25.0)
        stepped = trio.current_time()
        await trio.sleep(60)
        record = loop.decisions.recent(1)[0]
    settled = [w for t, w in site.imports if t > stepped + 20]
    assert min(w for t, w in site.imports if t > stepped) >= -500  # nothing exported
    assert max(settled) <= 25_000 + 500
    assert min(settled) >= 25_000 - 3 * 3 * VOLTAGE  # at the limit (1 A steps, 2 EVs)
    ev_w = sum(c.draw_a for c in site.chargers) * 3 * VOLTAGE
    assert site.battery.power_w > 15_000
    assert ev_w >= 25_000 - site.base_w + site.battery.power_w - 3 * 3 * VOLTAGE
    balance = record.inputs["balance"]
    assert isinstance(balance, dict)
    assert balance["limit_w"] == 25_000
    assert balance["binding"] == "site-limit"
    assert balance["battery_w"] == pytest.approx(site.battery.power_w)
    assert balance["evs_w"] == pytest.approx(ev_w, abs=2 * 3 * VOLTAGE)


async def test_pv_power_goes_to_the_evs_under_a_limit(
    autojump_clock: trio.testing.MockClock,
) -> None:
    site = build()
    site.pv.power_w = 20_000.0
    async with running(site, PV_ONLY.replace("peak_target_kw = 40\n", "")) as loop:
        operator_limit(loop, 10.0)
        await trio.sleep(60)
    # 10 kW from the grid, 20 kW PV, 10 kW base: the EVs get 20 kW, not the 0 kW that a
    # base clamped at zero leaves them; nothing is fed in
    ev_w = sum(c.draw_a for c in site.chargers) * 3 * VOLTAGE
    assert ev_w >= 20_000 - 2 * 3 * VOLTAGE
    settled = site.imports_since(40)
    assert max(settled) <= 10_000 + 500
    assert min(settled) >= -500

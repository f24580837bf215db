"""A small in-memory site for control-loop tests: chargers with EVs, a meter, a grid-operator box.

Each device implements the `Charger`/`Device` protocol over a shared physics
state on the Trio clock, with the device-side behaviour the loop relies on:
an EV follows its limit after a reaction delay, a charger with a watchdog
falls back to its failsafe current when nobody talks to it, and any device
can be made unreachable. The same physics answers at a given time without
Trio (`sample`, `apply`, `configure`), which `PlannedSite` uses to drive the
sans-IO `CyclePlanner` one cycle per call.
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import trio

from hubgate.config.model import SiteConfig
from hubgate.control.cycle import TIMED_OUT, Failed
from hubgate.control.decisions import DecisionLog
from hubgate.control.limits import LimitBook
from hubgate.control.loop import ControlLoop
from hubgate.control.plan import CyclePlanner, Plan
from hubgate.control.sensors import SiteDevices
from hubgate.devices.errors import NotReadyError
from hubgate.devices.model import AppliedLimit, LimitCheck, Reading
from hubgate.profiles.model import IecState, Quantity
from hubgate.state import EventLevel, StateHub
from tests.support.events import RecordedEvents
from tests.support.toml_tables import connector_32a, meter, modbus, modbus_charger


def modbus_chargers(node: str, pv_mode: str = "") -> str:
    """Chargers cp-1 to cp-3 on `node`, 32 A on Modbus ports 1502 to 1504; one may be in PV mode."""
    return "".join(
        modbus_charger(
            f"cp-{i}",
            node,
            modbus("alfen-eve", port=1501 + i),
            connector_32a(pv_mode=pv_mode == f"cp-{i}"),
        )
        for i in (1, 2, 3)
    )


def site_meter(meter_id: str, node: str) -> str:
    """The site's meter on `node`, on Modbus port 1505."""
    return meter(meter_id, node, modbus("eastron-sdm630", port=1505))


CONTROL_TOML = """[control]
cycle_s = 1.0
meter_stale_s = 3
degraded_budget_percent = 50
failsafe_current_a = 6
lease_s = 10
"""
"""The test sites' control settings: 1 s cycles, a 10 s lease, 6 A failsafe."""

SITE_TOML = (
    """
[site]
name = "test site"
[grid]
phase_current_limit_a = 100
[[nodes]]
id = "board"
kind = "switchboard"
phase_current_limit_a = 64
"""
    + modbus_chargers("board")
    + site_meter("board-meter", "board")
    + """[grid_operator]
source = "modbus-device"
modbus = { profile = "grid-operator-limit-register", host = "127.0.0.1", port = 1506 }
"""
    + CONTROL_TOML
)

REACTION_S = 2.0
"""How long an EV takes to follow a lower or higher limit."""

REPORT_LAG_S = 0.1
"""How long before it arrives a charger that reports on its own schedule sampled it."""


def site_config(extra: str = "") -> SiteConfig:
    """The test site (three 32 A chargers behind a 64 A board), with extra TOML appended."""
    return SiteConfig.model_validate(tomllib.loads(SITE_TOML + extra))


@asynccontextmanager
async def running_loop(config: SiteConfig, devices: SiteDevices) -> AsyncIterator[ControlLoop]:
    """A control loop over `devices`, with its own limit book, decision log and state hub."""
    loop = ControlLoop(config, devices, limits=LimitBook(), decisions=DecisionLog(), hub=StateHub())
    async with trio.open_nursery() as nursery:
        await nursery.start(loop.run)
        yield loop
        nursery.cancel_scope.cancel()


class UnreachableError(Exception):
    """The device does not answer."""


@dataclass
class SimCharger:
    """A three-phase charger with an EV and a device-side watchdog."""

    id: str
    ev_max_a: float = 32.0
    connected: bool = True
    reachable: bool = True
    limit_a: float = 0.0
    draw_a: float = 0.0
    failsafe_a: float | None = None
    timeout_s: float | None = None
    last_contact: float = 0.0
    configured: int = 0
    ready_at: float = -math.inf
    """Before this time its failsafe cannot be configured and nothing is sent
    (`NotReadyError`: an OCPP charger whose boot is still being attended to)."""
    rejects_failsafe: bool = False
    ignores_limits: bool = False
    """Accepts every limit and draws what its EV wants (and says so in `limit_check`)."""
    checked: bool = False
    """A check showed it follows its limits (as an OCPP charger's composite schedule does)."""
    reports_every_s: float = 0.0
    """How often it reports its draw (an OCPP station's MeterValues interval): a read in
    between gives the last report; a report's values were sampled `REPORT_LAG_S` before
    it arrived (its timestamp), so before whatever was commanded in that cycle."""
    _report: Reading | None = None
    _target_since: float = 0.0
    _previous_draw: float = 0.0
    history: list[tuple[float, float]] = field(default_factory=list)

    def effective_limit(self, now: float) -> float:
        """The limit the charger applies: its setpoint, or the failsafe when the watchdog fired."""
        if (
            self.timeout_s is not None
            and self.failsafe_a is not None
            and now - self.last_contact > self.timeout_s
        ):
            return min(self.limit_a, self.failsafe_a) if self.limit_a else self.failsafe_a
        return self.limit_a

    def advance(self, now: float) -> None:
        """The EV follows the charger's limit after `REACTION_S`; unplugged, it draws nothing
        at once."""
        limit = self.ev_max_a if self.ignores_limits else self.effective_limit(now)
        wanted = min(limit, self.ev_max_a) if self.connected else 0.0
        if wanted != getattr(self, "_wanted", None):
            self._wanted = wanted
            self._previous_draw = self.draw_a if self.connected else 0.0
            self._target_since = now
        self.draw_a = wanted if now - self._target_since >= REACTION_S else self._previous_draw
        self.history.append((now, self.draw_a))

    def _contact(self, now: float) -> None:
        if not self.reachable:
            raise UnreachableError(self.id)
        self.last_contact = now

    def sample(self, now: float) -> Reading:
        """A read at `now` (raises `UnreachableError` when unreachable)."""
        self._contact(now)
        self.advance(now)
        report = self._report
        if self.reports_every_s and report is not None and now - report.at < self.reports_every_s:
            return report
        state = (
            IecState.C
            if self.connected and self.draw_a > 0
            else (IecState.B if self.connected else IecState.A)
        )
        d = self.draw_a
        self._report = Reading(
            at=now - REPORT_LAG_S if self.reports_every_s else now,
            values={Quantity.CURRENT_L1: d, Quantity.CURRENT_L2: d, Quantity.CURRENT_L3: d},
            state=state,
        )
        return self._report

    def apply(self, now: float, current_a: float, phases: int) -> AppliedLimit:
        """A limit written at `now`."""
        self._contact(now)
        self.limit_a = current_a
        self.advance(now)
        return AppliedLimit(current_a, phases, current_a <= 0, now)

    def configure(self, now: float, timeout_s: float, failsafe_current_a: float) -> None:
        """Failsafe settings written at `now`."""
        if now < self.ready_at:
            raise NotReadyError(f"{self.id}: capabilities not read yet")
        self._contact(now)
        if self.rejects_failsafe:
            raise UnreachableError(f"{self.id}: failsafe registers not writable")
        self.timeout_s, self.failsafe_a = timeout_s, failsafe_current_a
        self.configured += 1

    async def read(self) -> Reading:
        await trio.sleep(0.01)
        return self.sample(trio.current_time())

    async def set_limit(self, current_a: float, phases: int) -> AppliedLimit:
        await trio.sleep(0.01)
        return self.apply(trio.current_time(), current_a, phases)

    async def configure_failsafe(self, timeout_s: float, failsafe_current_a: float) -> None:
        await trio.sleep(0.01)
        self.configure(trio.current_time(), timeout_s, failsafe_current_a)

    async def heartbeat(self) -> None:
        await trio.sleep(0.01)
        self._contact(trio.current_time())

    @property
    def heartbeat_period_s(self) -> float | None:
        return 2.0

    @property
    def limit_check(self) -> LimitCheck:
        if self.ignores_limits:
            return LimitCheck(False, "ignores its limit")
        return LimitCheck(True, "checked") if self.checked else LimitCheck()


@dataclass
class SimMeter:
    """A meter on the board: the chargers' draw plus a base load."""

    id: str
    chargers: list[SimCharger]
    base_a: float = 0.0
    reachable: bool = True

    def current(self, now: float) -> float:
        for c in self.chargers:
            c.advance(now)
        return self.base_a + sum(c.draw_a for c in self.chargers)

    def sample(self, now: float) -> Reading:
        """A read at `now` (raises `UnreachableError` when unreachable)."""
        if not self.reachable:
            raise UnreachableError(self.id)
        i = self.current(now)
        return Reading(
            at=now,
            values={Quantity.CURRENT_L1: i, Quantity.CURRENT_L2: i, Quantity.CURRENT_L3: i},
        )

    async def read(self) -> Reading:
        await trio.sleep(0.01)
        return self.sample(trio.current_time())


@dataclass
class SimBox:
    """The grid operator's control box: a percentage."""

    id: str = "grid-operator"
    percent: float = 100.0
    reachable: bool = True

    def sample(self, now: float) -> Reading:
        """A read at `now` (raises `UnreachableError` when unreachable)."""
        if not self.reachable:
            raise UnreachableError(self.id)
        return Reading(at=now, values={Quantity.GRID_LIMIT_PERCENT: self.percent})

    async def read(self) -> Reading:
        await trio.sleep(0.01)
        return self.sample(trio.current_time())


@dataclass
class SimSite:
    """The test site's devices: its meters, the first the test site's board meter."""

    chargers: list[SimCharger]
    meters: list[SimMeter]
    box: SimBox

    @classmethod
    def build(cls) -> SimSite:
        chargers = [SimCharger(f"cp-{i}") for i in (1, 2, 3)]
        return cls(chargers, [SimMeter("board-meter", chargers)], SimBox())

    @property
    def meter(self) -> SimMeter:
        return self.meters[0]

    def devices(self) -> SiteDevices:
        return SiteDevices(
            chargers={(c.id, 1): c for c in self.chargers},
            meters={m.id: m for m in self.meters},
            grid_operator=self.box,
        )

    def charger(self, charger_id: str) -> SimCharger:
        return next(c for c in self.chargers if c.id == charger_id)


def _outcome(read: Callable[[float], Reading], now: float) -> object:
    try:
        return read(now)
    except UnreachableError as exc:
        return Failed(exc)


def commanded(planner: CyclePlanner, readings: dict[str, object], now: float) -> Plan:
    """One cycle at `now`: the plan, its every failsafe verified and setpoint accepted at
    once."""
    plan = planner.plan(readings, now)
    assert plan is not None
    for command in plan.commands:
        if command.verify_first:
            planner.verification.configured(command.index, ok=True)
    accepted = {c.name: AppliedLimit(c.current_a, c.phases, False, now) for c in plan.commands}
    planner.outcomes(plan, accepted, now, now)
    return plan


@dataclass
class PlannedSite:
    """The `CyclePlanner` over a `SimSite`, without Trio: one `cycle()` per control cycle,
    every device read and commanded at the cycle's time, time a plain number."""

    sim: SimSite
    planner: CyclePlanner
    now: float = 0.0
    events: list[tuple[EventLevel, str, str]] = field(default_factory=list)
    last: Plan | None = None
    cut_short: set[str] = field(default_factory=set)
    """Chargers whose failsafe configuration never ends within a cycle's command deadline."""

    @classmethod
    def build(cls, sim: SimSite, extra: str = "", limits: LimitBook | None = None) -> PlannedSite:
        recorded = RecordedEvents()
        planner = CyclePlanner(
            site_config(extra),
            limits or LimitBook(),
            meters=tuple(m.id for m in sim.meters),
            grid_operator_box=True,
            events=recorded,
        )
        return cls(sim, planner, events=recorded.emitted)

    def cycle(self) -> Plan | None:
        """Read, plan, command, hand back the outcomes; then the clock moves one cycle on."""
        sim, planner, now = self.sim, self.planner, self.now
        control = planner.site.control
        readings = {f"{c.id}#1": _outcome(c.sample, now) for c in sim.chargers}
        for sim_meter in sim.meters:
            readings[f"meter:{sim_meter.id}"] = _outcome(sim_meter.sample, now)
        readings["grid-operator"] = _outcome(sim.box.sample, now)
        planner.verification.checked({f"{c.id}#1": c.limit_check for c in sim.chargers})
        plan = planner.plan(readings, now)
        if plan is not None:
            results: dict[str, object] = {}
            for command in plan.commands:
                charger = sim.charger(command.name.partition("#")[0])
                if command.verify_first and charger.id in self.cut_short:
                    results[command.name] = TIMED_OUT
                    continue
                try:
                    if command.verify_first:
                        try:
                            charger.configure(now, control.lease_s, control.failsafe_current_a)
                        except UnreachableError:
                            planner.verification.configured(command.index, ok=False)
                            raise
                        planner.verification.configured(command.index, ok=True)
                    results[command.name] = charger.apply(now, command.current_a, command.phases)
                except UnreachableError as exc:
                    results[command.name] = Failed(exc)
            planner.outcomes(plan, results, now, now)
            self.last = plan
        self.now += control.cycle_s
        return plan

    def run(self, seconds: float) -> None:
        """Cycle for `seconds`."""
        for _ in range(round(seconds / self.planner.site.control.cycle_s)):
            self.cycle()

    def setpoints(self) -> dict[str, float]:
        """The last plan's setpoint per charger id."""
        assert self.last is not None
        setpoint = self.last.result.setpoint_a
        return {info.key[0]: setpoint[i] for i, info in enumerate(self.planner.model.connectors)}


def grid_metered_site(base_a: float, reports_every_s: float) -> PlannedSite:
    """The test site with its meter at the grid connection, where a grid operator's step
    applies, `base_a` of base load on it, and chargers whose reports lag their draws by
    `reports_every_s` (OCPP MeterValues)."""
    sim = SimSite.build()
    sim.meter.base_a = base_a
    for charger in sim.chargers:
        charger.reports_every_s = reports_every_s
    toml = SITE_TOML.replace(site_meter("board-meter", "board"), site_meter("board-meter", "grid"))
    planner = CyclePlanner(
        SiteConfig.model_validate(tomllib.loads(toml)),
        LimitBook(),
        meters=("board-meter",),
        grid_operator_box=True,
        events=RecordedEvents(),
    )
    return PlannedSite(sim, planner)

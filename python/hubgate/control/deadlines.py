"""Energy needs and departures per session, and the deadline plan they make each cycle.

Sans-IO, like `control.plan`: `SessionDeadlines` keeps, per connector, what its session
needs (energy, departure, where that came from: the API, OCPP `NotifyEVChargingNeeds`,
the site file's `session_default`) and how much it got since it began; every cycle
`plan()` runs the Rust `DeadlinePlanner` over the horizon (24 h in 15-minute slots
aligned to the clock, the first one the rest of the current slot) and turns what each
session must get now into the allocator's per-connector floor (A per phase) and laxity.
The allocator grants floors least laxity first within the safety limits, then shares the
rest fairly.

Times: `now` is the control loop's clock; departures are wall-clock (epoch s), mapped
with `wall_offset_s` (wall = now + offset), which the loop sets at its first cycle.
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from datetime import time as time_of_day
from enum import StrEnum
from zoneinfo import ZoneInfo

from hubgate._core import DeadlinePlanner
from hubgate.config.deadlines import Deadlines, Shortfall
from hubgate.config.deadlines import SessionDefault as SessionDefaultTable
from hubgate.config.model import SiteConfig
from hubgate.control.prices import PriceSeries, cheap_now
from hubgate.control.shortfall import FinishMost, Fits, Pick
from hubgate.control.site_model import ConnectorInfo

SLOT_S = 900.0
"""Planning slots are 15 minutes, aligned to the wall clock."""

HORIZON_SLOTS = 96
"""24 hours of slots."""

HOUR_S = 3600.0

MIN_SLOT_S = 1.0
"""A departure sooner than this does not cut the first slot (nothing to plan in it)."""

DEADLINE_MARGIN_S = 300.0
"""Each session is planned to have its energy this long before its departure (and by its
departure once that time has passed): the EVs' reaction, the cycles and the minimum off
time of a connector paused in the rotation eat into the last minutes of a plan that ends
on the dot. None while the site is short of energy: the margin would leave the last
minutes of every session unplanned, and the energy they could take unused."""

SHORT_WH = 1.0
"""A plan short by more than this (Wh, over what the sessions' own maximum leaves missing)
means the site is short of energy."""


class NeedSource(StrEnum):
    """Where a session's energy need and departure came from."""

    API = "api"
    OCPP = "ocpp"
    SITE = "site"


@dataclass(frozen=True, slots=True)
class SessionNeed:
    """What a session asks for: energy to add since it began, and its departure (epoch s)."""

    energy_wh: float
    departure: float
    source: NeedSource
    ev_max_a: float = math.inf
    """The most the EV takes per phase, as told with the need (ISO 15118's EVMaxCurrent,
    the fleet's system); infinity: not told."""
    target: SocTarget | None = None
    """A state of charge to reach instead of an energy: `energy_wh` follows the EV's
    reported state of charge (0 until it reports one: not planned meanwhile)."""
    floor_wh: float | None = None
    """What it gets before others finish when the site is short (`control.shortfall`);
    None: the site's `floor_percent` of `energy_wh`."""


@dataclass(frozen=True, slots=True)
class SocTarget:
    """A session's need as a state of charge to reach (%) and the battery's capacity."""

    soc_percent: float
    battery_wh: float

    def energy_wh(self, soc_percent: float) -> float:
        """What a battery at `soc_percent` still takes to reach the target."""
        return max(self.soc_percent - soc_percent, 0.0) / 100 * self.battery_wh


@dataclass(frozen=True, slots=True)
class SessionDefault:
    """The site file's need for sessions that state none: energy and local time of day."""

    energy_wh: float
    departure: time_of_day
    floor_wh: float | None = None

    def need(self, departure: float) -> SessionNeed:
        """The need of a session leaving at `departure` (epoch s)."""
        return SessionNeed(self.energy_wh, departure, NeedSource.SITE, floor_wh=self.floor_wh)


@dataclass
class _Session:
    need: SessionNeed | None = None
    active: bool = False
    delivered_wh: float = 0.0
    power_w: float = 0.0
    last_at: float | None = None
    meter_start_wh: float | None = None
    """The session-energy register at the session's start, when the charger reports one."""
    id_token: str | None = None
    ev_a: float = math.inf
    """The most the EV was seen to take per phase this session (the loop's estimate)."""
    soc: float | None = None
    """The EV's last reported state of charge (%)."""

    def remaining_wh(self) -> float:
        if self.need is None:
            return 0.0
        return max(self.need.energy_wh - self.delivered_wh, 0.0)


@dataclass(frozen=True, slots=True)
class DeadlineStatus:
    """One connector's session for the API and dashboard (energies in kWh, times epoch s)."""

    energy_kwh: float
    needed_kwh: float | None = None
    departure: float | None = None
    source: NeedSource | None = None
    planned_now_kw: float = 0.0
    """What the plan asks of it now."""
    laxity_s: float | None = None
    """Time to its planned finish (`DEADLINE_MARGIN_S` before the departure) less the time
    its need takes at its maximum."""
    projected_finish: float | None = None
    """At the current power; None when not drawing or nothing is needed."""
    shortfall_kwh: float = 0.0
    """What no schedule over the site's limits delivers by its departure."""
    ev_max_a: float | None = None
    """The most its EV takes per phase, as told with the need (None: not told)."""


CapsAhead = Callable[[Sequence[float], Sequence[float]], Sequence[float]]
"""Per slot (starts, ends: epoch s), the power the planned sessions may share in it, W."""

Group = tuple[Collection[int], CapsAhead]
"""Connectors (indices) below a node whose power ahead is limited on its own (a schedule on
it), and that power per slot."""


@dataclass(frozen=True, slots=True)
class DeadlineInputs:
    """The allocator's deadline columns for one cycle (connector order); None: no deadlines."""

    floor_a: array[float] | None
    laxity_s: array[float] | None
    ceiling_a: array[float] | None = None
    """With prices: what a session with slack may take in a slot that is not among its
    cheapest (its floor); infinity for the others. None without prices."""


class SessionDeadlines:
    """Sessions' needs and progress, and the per-cycle plan (see the module docstring)."""

    def __init__(
        self,
        connectors: Sequence[ConnectorInfo],
        voltage_v: float,
        *,
        defaults: dict[int, SessionDefault] | None = None,
        tokens: dict[str, SessionDefault] | None = None,
        timezone: str = "UTC",
        policy: Deadlines | None = None,
    ) -> None:
        """`defaults`: per connector index, the need of sessions that state none; `tokens`:
        per id token, the need of its sessions (before the connector's default); `policy`:
        the site's `[deadlines]` (who goes short when not every session can finish)."""
        self.connectors = connectors
        self.voltage_v = voltage_v
        self.defaults = defaults or {}
        self.tokens = tokens or {}
        self.zone = ZoneInfo(timezone)
        self.wall_offset_s: float | None = None
        n = len(connectors)
        self._sessions = [_Session() for _ in range(n)]
        self.policy = policy or Deadlines()
        self._planner = DeadlinePlanner()
        self._finish_most = FinishMost()
        self._now_w = array("d", bytes(8 * n))
        self._laxity = array("d", [math.inf]) * n
        self._shortfall = array("d", bytes(8 * n))

    def _wall(self, now: float) -> float:
        return now + (self.wall_offset_s or 0.0)

    # -- inputs ----------------------------------------------------------------------------

    def set_need(
        self,
        index: int,
        energy_wh: float,
        departure: float,
        source: NeedSource,
        ev_max_a: float = math.inf,
        target: SocTarget | None = None,
        floor_wh: float | None = None,
    ) -> None:
        """The session at `index` needs `energy_wh` more (or, with `target`, as much as
        takes its EV to that state of charge), by `departure` (epoch s), its EV taking at
        most `ev_max_a` per phase, and `floor_wh` of it before others finish when the site
        is short (None: the site's `floor_percent`); it applies to the session now plugged
        in, or to the next one."""
        session = self._sessions[index]
        already = session.delivered_wh if session.active else 0.0
        floor = None if floor_wh is None else already + floor_wh
        session.need = SessionNeed(already + energy_wh, departure, source, ev_max_a, target, floor)
        if target is not None and session.active and session.soc is not None:
            self._to_target(session, session.soc)

    def told_max_a(self, index: int) -> float:
        """The most the EV at `index` takes per phase, as told with its need (infinity when
        not told): neither the plan nor the allocator offers it more."""
        session = self._sessions[index]
        need = session.need if session.active else None
        return math.inf if need is None else need.ev_max_a

    def departure(self, index: int) -> float | None:
        """The departure (epoch s) of the session at `index`, None without one."""
        session = self._sessions[index]
        return session.need.departure if session.active and session.need is not None else None

    def identify(self, index: int, id_token: str, now: float) -> None:
        """The session at `index` charges for `id_token`: its default need, if it has one,
        replaces a need from the connector's default."""
        session = self._sessions[index]
        if not session.active or session.id_token == id_token:
            return
        session.id_token = id_token
        default = self.tokens.get(id_token)
        if default is not None and (session.need is None or session.need.source is NeedSource.SITE):
            session.need = default.need(self._next_local(default.departure, now))

    def clear_need(self, index: int) -> None:
        """The session at `index` has no deadline (plain fair share)."""
        self._sessions[index].need = None

    # -- a cycle ---------------------------------------------------------------------------

    def observe(
        self,
        index: int,
        plugged: bool,
        power_w: float,
        session_wh: float | None,
        now: float,
        ev_a: float = math.inf,
        soc: float | None = None,
    ) -> None:
        """Track the session at `index`: plugged in or not, its power, (when the charger
        reports them) its session-energy register and the EV's state of charge (%), and
        (when known) the most its EV takes per phase, which the plan holds it to from then
        on. Unplugging ends the session and its need."""
        if not plugged:
            self.unplugged(index)
            return
        session = self._sessions[index]
        if not session.active:
            session.active = True
            session.meter_start_wh = session_wh
            default = self.defaults.get(index)
            if session.need is None and default is not None:
                session.need = default.need(self._next_local(default.departure, now))
        elif session_wh is not None and session.meter_start_wh is not None:
            session.delivered_wh = max(session_wh - session.meter_start_wh, 0.0)
        elif session.last_at is not None:
            session.delivered_wh += session.power_w * (now - session.last_at) / HOUR_S
        if session_wh is not None and session.meter_start_wh is None:
            session.meter_start_wh = session_wh - session.delivered_wh
        session.last_at = now
        session.power_w = power_w
        if math.isfinite(ev_a):
            session.ev_a = ev_a
        if soc is not None:
            session.soc = soc
            self._to_target(session, soc)

    def unplugged(self, index: int) -> None:
        """No EV at `index` (`observe` unplugged): its session, if any, ends with its need."""
        session = self._sessions[index]
        if session.active:
            self._sessions[index] = _Session()
        else:
            session.power_w = 0.0

    @staticmethod
    def _to_target(session: _Session, soc: float) -> None:
        """A need to reach a state of charge: what is delivered plus what the battery at
        `soc` still takes."""
        need = session.need
        if need is not None and need.target is not None:
            energy = session.delivered_wh + need.target.energy_wh(soc)
            session.need = replace(need, energy_wh=energy)

    def plan(
        self,
        now: float,
        shared_w: float | CapsAhead,
        phases: Sequence[int],
        prices: PriceSeries | None = None,
        groups: Sequence[Group] = (),
    ) -> DeadlineInputs:
        """This cycle's floors. `shared_w`: the power the sessions may share, the same over
        the horizon, or per slot from `CapsAhead` (called only when a session is planned);
        `phases`: the phase count each connector draws on; `prices`: with some, sessions
        hold back to their floor outside their cheapest slots (`control.prices`); `groups`:
        nodes below the root with a power of their own ahead: their sessions are planned
        over it too, and each session must get now what the tighter of its plans asks."""
        n = len(self.connectors)
        need = array("d", bytes(8 * n))
        departure = array("d", [math.inf]) * n
        max_w = array("d", bytes(8 * n))
        wall = self._wall(now)
        planned = False
        for i, (info, session) in enumerate(zip(self.connectors, self._sessions, strict=True)):
            if session.need is None or not session.active:
                continue
            need[i] = session.remaining_wh()
            ev_a = min(info.max_current_a, session.ev_a, session.need.ev_max_a)
            max_w[i] = ev_a * phases[i] * self.voltage_v
            departure[i] = max(session.need.departure - wall, 0.0)
            planned = True
        if not planned:
            self._now_w = array("d", bytes(8 * n))
            self._laxity = array("d", [math.inf]) * n
            self._shortfall = array("d", bytes(8 * n))
            return DeadlineInputs(None, None)
        early = departure_early(departure)
        slot_s, starts, ends = slot_grid(wall, [*departure, *early])
        if callable(shared_w):
            cap_w = array("d", (max(w, 0.0) for w in shared_w(starts, ends)))
        else:
            cap_w = array("d", [max(shared_w, 0.0)]) * len(slot_s)
        plan = self._planner.plan(slot_s, cap_w, need, early, max_w)
        # Short of energy for want of the site's power, not of the sessions' own maximum.
        alone_wh = missing_alone(need, max_w, early)
        short = sum(plan.shortfall_wh) > sum(alone_wh) + SHORT_WH
        finish = early
        if short:  # every minute up to the departures counts
            finish = departure
            plan = self._planner.plan(slot_s, cap_w, need, finish, max_w)
        giving_way = False
        if self.policy.shortfall is Shortfall.MOST_FINISHED:
            # Short by the margins, or to the departures (where a session that its
            # maximum cannot finish by its margin hides it): some give way.
            to_departure = (
                plan if short else self._planner.plan(slot_s, cap_w, need, departure, max_w)
            )
            giving_way = short or self._short(to_departure.shortfall_wh, need, max_w, departure)
            if giving_way:
                need, finish = self._pick(slot_s, cap_w, need, max_w, early, departure, alone_wh)
                plan = self._planner.plan(slot_s, cap_w, need, finish, max_w)
                short = True
        if not giving_way:
            self._finish_most.clear()
        self._now_w, self._laxity, self._shortfall = plan.now_w, plan.laxity_s, plan.shortfall_wh
        for members, caps in groups:
            below = array("d", bytes(8 * n))
            for i in members:
                below[i] = need[i]
            if not any(below):
                continue
            node_w = array("d", (max(w, 0.0) for w in caps(starts, ends)))
            node_plan = self._planner.plan(slot_s, node_w, below, finish, max_w)
            for i in members:
                self._now_w[i] = max(self._now_w[i], node_plan.now_w[i])
                self._shortfall[i] = max(self._shortfall[i], node_plan.shortfall_wh[i])
        if giving_way:  # what the plan does not promise the sessions that give way
            for i, session in enumerate(self._sessions):
                if session.need is not None and session.active:
                    self._shortfall[i] += max(session.remaining_wh() - need[i], 0.0)
        floor = array("d", bytes(8 * n))
        for i in range(n):
            if self._now_w[i] > 0:
                floor[i] = self._now_w[i] / (phases[i] * self.voltage_v)
        ceiling = None
        if prices and not short:  # short of energy, no session waits for a cheaper slot
            slot_prices = prices.slot_prices(starts, ends)
            ceiling = array("d", [math.inf]) * n
            # Crowded, a session gets less than its maximum: it needs more slots. Every
            # connector counts: one free now may take a vehicle before the cheap slots come,
            # and the energy a session did not take now would then be missing.
            share_w = sum(c * s for c, s in zip(cap_w, slot_s, strict=True)) / sum(slot_s) / n
            for i in range(n):
                if (
                    need[i] > 0
                    and self._shortfall[i] <= 0
                    and not cheap_now(
                        slot_prices,
                        slot_s,
                        early[i],
                        need[i],
                        min(max_w[i], share_w),
                    )
                ):
                    ceiling[i] = floor[i]
        return DeadlineInputs(floor, self._laxity, ceiling)

    @staticmethod
    def _short(
        shortfall_wh: Sequence[float],
        need: Sequence[float],
        max_w: Sequence[float],
        departure: Sequence[float],
    ) -> bool:
        """Whether a plan to the departures leaves more missing than the sessions' own
        maximum does."""
        return sum(shortfall_wh) > sum(missing_alone(need, max_w, departure)) + SHORT_WH

    def _pick(
        self,
        slot_s: array[float],
        cap_w: array[float],
        need: array[float],
        max_w: array[float],
        early: array[float],
        departure: array[float],
        alone_wh: Sequence[float],
    ) -> Pick:
        """`most-finished`: the needs to plan and the times to plan them by
        (`control.shortfall`). A session finishes with what its maximum delivers by its
        margin before the departure; one its maximum cannot finish by the departure gives
        way. When none finishes above its floor, what is missing is spread (as `even`)
        where that still gives every session its floor, else each is planned to its floor."""
        floors = self._floors(need, max_w, departure)
        reach = array("d", bytes(8 * len(need)))
        lost = missing_alone(need, max_w, departure)
        for i, wh in enumerate(need):
            reach[i] = max(wh - alone_wh[i], floors[i]) if lost[i] <= 0 else floors[i]
        fits = self._fits(slot_s, cap_w, max_w)
        picked = self._finish_most.pick(reach, floors, early, departure, fits)
        if picked is not None:
            return picked
        spread = self._planner.plan(slot_s, cap_w, need, departure, max_w)
        if all(
            wh - missing >= floor - SHORT_WH
            for wh, missing, floor in zip(need, spread.shortfall_wh, floors, strict=True)
        ):
            return need, departure
        return floors, departure

    def _floors(
        self, need: array[float], max_w: array[float], departure: array[float]
    ) -> array[float]:
        """What each planned session still gets before others finish (Wh): its floor less
        what it got, at most what its maximum delivers by its departure; a session that its
        maximum cannot finish by then gets only that (it will not be ready whoever goes
        short: it gives way)."""
        floors = array("d", bytes(8 * len(need)))
        for i, session in enumerate(self._sessions):
            if need[i] <= 0 or session.need is None:
                continue
            reach = max_w[i] * departure[i] / HOUR_S
            total = session.need.floor_wh
            if total is None:
                total = session.need.energy_wh * self.policy.floor_percent / 100
            floors[i] = min(max(total - session.delivered_wh, 0.0), need[i], reach)
        return floors

    def _fits(self, slot_s: array[float], cap_w: array[float], max_w: array[float]) -> Fits:
        """Whether a plan over these slots delivers given needs by given times."""

        def fits(need: Sequence[float], finish: Sequence[float]) -> bool:
            plan = self._planner.plan(slot_s, cap_w, need, finish, max_w)
            return sum(plan.shortfall_wh) <= SHORT_WH

        return fits

    def status(self, index: int, now: float) -> DeadlineStatus:
        """The connector's session: energy so far, need, departure, projected finish."""
        session = self._sessions[index]
        need = session.need if session.active else None
        if need is None:
            return DeadlineStatus(energy_kwh=session.delivered_wh / 1000)
        remaining = session.remaining_wh()
        wall = self._wall(now)
        finish = None
        if remaining <= 0:
            finish = wall
        elif session.power_w > 0:
            finish = wall + remaining / session.power_w * HOUR_S
        laxity = self._laxity[index]
        return DeadlineStatus(
            energy_kwh=session.delivered_wh / 1000,
            needed_kwh=need.energy_wh / 1000,
            departure=need.departure,
            source=need.source,
            planned_now_kw=self._now_w[index] / 1000,
            laxity_s=laxity if math.isfinite(laxity) else None,
            projected_finish=finish,
            shortfall_kwh=self._shortfall[index] / 1000,
            ev_max_a=need.ev_max_a if math.isfinite(need.ev_max_a) else None,
        )

    def _next_local(self, at: time_of_day, now: float) -> float:
        """The next wall-clock time (epoch s) at local time of day `at`."""
        local = datetime.fromtimestamp(self._wall(now), self.zone)
        candidate = datetime.combine(local.date(), at, self.zone)
        if candidate <= local:
            candidate = datetime.combine(local.date() + timedelta(days=1), at, self.zone)
        return candidate.timestamp()


def need_text(energy_kwh: float | None, target: SocTarget | None) -> str:
    """A need for a person: '40 kWh', or '80 % of 200 kWh'."""
    if target is not None:
        return f"{target.soc_percent:g} % of {target.battery_wh / 1000:g} kWh"
    return f"{energy_kwh:g} kWh"


def session_defaults(
    site: SiteConfig, connectors: Sequence[ConnectorInfo]
) -> tuple[dict[int, SessionDefault], dict[str, SessionDefault]]:
    """The site file's defaults: per connector index (its charger's `session_default`) and
    per id token (`session_defaults`)."""
    by_charger = {
        c.id: _default(c.session_default) for c in site.chargers if c.session_default is not None
    }
    per_connector = {
        i: by_charger[info.key[0]] for i, info in enumerate(connectors) if info.key[0] in by_charger
    }
    per_token = {t.id_token: _default(t) for t in site.session_defaults}
    return per_connector, per_token


def _default(table: SessionDefaultTable) -> SessionDefault:
    floor = None if table.floor_kwh is None else table.floor_kwh * 1000
    return SessionDefault(table.energy_kwh * 1000, table.departure, floor)


def slot_grid(
    wall: float, cuts_s: Iterable[float]
) -> tuple[array[float], list[float], list[float]]:
    """The planning slots from `wall` (epoch s): `HORIZON_SLOTS` clock-aligned ones, the
    first the rest of the current one, each also cut where a session leaves or is
    planned to finish (`cuts_s`, s from now): a slot's power is shared only by the sessions
    still there, so a departure inside it must end a slot. Their lengths, starts and ends."""
    aligned = wall - wall % SLOT_S
    edges = {aligned + k * SLOT_S for k in range(1, HORIZON_SLOTS + 1)}
    end = aligned + HORIZON_SLOTS * SLOT_S
    edges.update(round(wall + s, 3) for s in cuts_s if MIN_SLOT_S <= s < end - wall)
    ends = sorted(edges)
    starts = [wall, *ends[:-1]]
    return array("d", (b - a for a, b in zip(starts, ends, strict=True))), starts, ends


def missing_alone(
    need_wh: Sequence[float], max_w: Sequence[float], finish_s: Sequence[float]
) -> list[float]:
    """Per session, what its own maximum leaves missing by `finish_s` (s from now); 0 for
    a session not planned."""
    return [
        max(wh - w * s / HOUR_S, 0.0) if wh > 0 else 0.0
        for wh, w, s in zip(need_wh, max_w, finish_s, strict=True)
    ]


def departure_early(departure_s: array[float]) -> array[float]:
    """The departures (s from now) the sessions are planned to finish by:
    `DEADLINE_MARGIN_S` early, or by the departure once less than that is left."""
    return array("d", (s - DEADLINE_MARGIN_S if s > DEADLINE_MARGIN_S else s for s in departure_s))


def hold_back(ceiling_a: array[float] | None, ev_max_a: array[float]) -> int:
    """Hold each connector's EV maximum to its price ceiling (`DeadlineInputs.ceiling_a`);
    how many it held back."""
    held = 0
    for i, ceiling in enumerate(ceiling_a or ()):
        if ceiling < ev_max_a[i]:
            ev_max_a[i], held = ceiling, held + 1
    return held

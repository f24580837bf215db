"""The grid operator's limit as read from a control box, relay contacts or a written lease.

A box reports a percentage (`grid_limit_percent`) or a power (`grid_limit_power`,
W); relay contacts report the §14a dimming contact (`relay_dim_14a`, closed =
dimmed: the limit is 0 and the devices keep their §14a minimum,
`control.paragraph_14a`). Every change becomes a `GRID_OPERATOR` lease on the site
in the limit book, so it is audited like any other limit. Where the grid operator
writes its limit through hubgate's Modbus server or API instead, that source's
lease on the site is what is watched.

A box with a heartbeat counter (`grid_limit_heartbeat`) whose counter has not changed for
`heartbeat_timeout_s` (the site's, else its profile's) is hung though it still answers with
its last limit: it counts as silent from its last change ("heartbeat stopped") until the
counter moves again. Such a box's raise of its limit is taken only once the counter has
moved after the raise was first read (a box whose controller hung or restarts may serve its
registers' defaults); a lowering at once. A source that falls silent (no valid reading, its lease lapsed or its
heartbeat stopped) does not lift the curtailment: its last limit holds for `hold_last_s` (the box may be restarting), then
the site file's `fallback_percent`, or the last limit still when there is none. Each
step is an audit entry naming the loss and an event for the operator; a source never
heard from since start-up is given `fallback_percent` (none: no limit) once it has
been silent as long as a lost meter would be.
"""

from __future__ import annotations

from dataclasses import dataclass

from hubgate.config.model import GridOperator, GridOperatorSource, SiteConfig
from hubgate.control.limits import SITE, Limit, LimitBook, LimitSource, grid_operator_limit_kw
from hubgate.devices.model import Reading
from hubgate.profiles.model import Profile, Quantity


def connection_kw(site: SiteConfig) -> float:
    """The connection's power: its power limit, else its weakest phase at nominal voltage."""
    grid = site.grid
    if grid.power_limit_kw is not None:
        return grid.power_limit_kw
    return 3 * grid.voltage_v * min(grid.phase_current_limit_a) / 1000


def limit_kw_of(reading: Reading, connection: float) -> float | None:
    """The limit a box or relay reading stands for (kW), None when it holds none."""
    percent = reading.get(Quantity.GRID_LIMIT_PERCENT)
    if percent is not None:
        return grid_operator_limit_kw(min(max(percent, 0.0), 100.0), connection)
    power_w = reading.get(Quantity.GRID_LIMIT_POWER)
    if power_w is not None:
        return min(max(power_w / 1000, 0.0), connection)
    dimmed = reading.get(Quantity.RELAY_DIM_14A)
    if dimmed is not None:
        return 0.0 if dimmed else connection
    return None


def heartbeat_timeout_s(operator: GridOperator, profile: Profile) -> float | None:
    """How long the box's heartbeat counter may stand still before its limit is stale: the
    site's `heartbeat_timeout_s`, else its profile's; None when the profile reads no counter."""
    if Quantity.GRID_LIMIT_HEARTBEAT not in profile.fields:
        return None
    rule = profile.grid_operator
    return operator.heartbeat_timeout_s or (rule.heartbeat_timeout_s if rule else None)


def operator_power_source(site: SiteConfig) -> LimitSource | None:
    """The limit-book source the grid operator writes its limit through (`[grid_operator]
    source`: Modbus server or API), None when a device or nothing reports it."""
    operator = site.grid_operator
    return {
        GridOperatorSource.MODBUS_SERVER: LimitSource.MODBUS_SERVER,
        GridOperatorSource.API: LimitSource.API,
    }.get(operator.source if operator else GridOperatorSource.MODBUS_DEVICE)


def grid_operator_input(
    site: SiteConfig, *, box: bool, heartbeat_s: float | None = None
) -> GridOperatorInput | None:
    """The site's grid-operator input: from its box (`box`: it has a device; `heartbeat_s`:
    its counter's `heartbeat_timeout_s`), else from the lease its `source` writes; None when
    the site has neither."""
    operator, source = site.grid_operator, operator_power_source(site)
    if operator is None or not (box or source is not None):
        return None
    return GridOperatorInput(
        connection_kw(site),
        site.control.meter_stale_s,
        operator.hold_last_s,
        operator.fallback_percent,
        origin="grid-operator-box" if box else "grid-operator",
        lease_source=None if box else source,
        heartbeat_s=heartbeat_s if box else None,
    )


@dataclass
class GridOperatorInput:
    """Turns the grid operator's signal into audited `GRID_OPERATOR` leases on the site,
    and holds it through a loss of the source."""

    connection_kw: float
    silent_after_s: float
    """Silence shorter than this is not a loss (a missed read or two)."""
    hold_last_s: float
    fallback_percent: float | None
    origin: str
    lease_source: LimitSource | None = None
    """Watch this source's lease on the site instead of a device's readings."""
    heartbeat_s: float | None = None
    """The box is silent when its heartbeat counter stood still this long (None: not watched)."""
    last_ok_at: float | None = None
    heard_kw: float | None = None
    """The limit the source last stood for."""
    in_force_kw: float | None = None
    """This input's own lease on the site (None: it holds none)."""
    _started_at: float | None = None
    _lost: str | None = None
    """Which stage of a loss is in force: "holding", "fallback", or None."""
    _loss: str = ""
    """What the loss in force is: "silent", "heartbeat stopped", "never heard from"."""
    _beat: float | None = None
    _beat_at: float | None = None
    """The heartbeat counter's last value and when it was first read."""
    _raise_beat: float | None = None
    """While a raise waits for the counter to move: the counter when it was first read."""

    def update(self, book: LimitBook, reading: Reading | None, now: float) -> str | None:
        """Take this cycle's reading (None when the box did not answer; ignored for a lease
        source); what to tell the operator when the source is lost, falls back or is back."""
        if self._started_at is None:
            self._started_at = now
        heard = self._heard_kw(book, reading, now)
        stopped = heard is not None and self._heartbeat_stopped(reading, now)
        if heard is not None and not stopped:
            heard = self._confirmed(heard, reading)
        if heard is not None and not stopped:
            self.last_ok_at, self.heard_kw = now, heard
            back = self._lost is not None
            why = " (heartbeat moving again)" if self._loss == "heartbeat stopped" else ""
            self._lost = None
            if self.lease_source is None:
                self._set(book, heard, now, self.origin)
            elif self.in_force_kw is not None:
                book.clear(SITE, LimitSource.GRID_OPERATOR, now=now, origin=f"{self.origin}: back")
                self.in_force_kw = None
            return f"back{why}: {heard:g} kW" if back else None
        if stopped and self._beat_at is not None and self.last_ok_at is not None:
            self.last_ok_at = min(self.last_ok_at, self._beat_at)  # alive until its last beat
        since = self.last_ok_at if self.last_ok_at is not None else self._started_at
        silent_s = now - since
        if silent_s <= self.silent_after_s:
            return None
        hung = stopped or (self._lost is not None and self._loss == "heartbeat stopped")
        loss = "heartbeat stopped" if hung else "silent"  # a missed read does not change it
        fallback = (
            None
            if self.fallback_percent is None
            else grid_operator_limit_kw(self.fallback_percent, self.connection_kw)
        )
        if self.heard_kw is None:  # never heard from since start-up
            if self._lost is not None:
                return None
            self._lost, self._loss = "fallback", "never heard from"
            if fallback is None:
                return "never heard from: no grid-operator limit in force (no fallback_percent)"
            self._set(book, fallback, now, f"{self.origin}: never heard from, fallback")
            return f"never heard from: fallback {fallback:g} kW"
        if silent_s <= self.hold_last_s:
            if self._lost is None:
                self._lost, self._loss = "holding", loss
                why = f"{self.origin}: {loss}, holding the last limit"
                self._set(book, self.heard_kw, now, why, force=True)
                return (
                    f"{loss} for {round(silent_s, 1):g} s: holding the last limit "
                    f"{self.heard_kw:g} kW for up to {self.hold_last_s:g} s"
                )
            return None
        if self._lost == "fallback":
            return None
        self._lost, self._loss = "fallback", loss
        limit = self.heard_kw if fallback is None else fallback
        what = "the last limit stays" if fallback is None else "fallback"
        self._set(
            book, limit, now, f"{self.origin}: {loss} {round(silent_s, 1):g} s, {what}", force=True
        )
        return f"{loss} for {round(silent_s, 1):g} s: {what} {limit:g} kW"

    @property
    def note(self) -> str | None:
        """What the decision record says while the source is lost (None: it is not)."""
        if self._lost is None:
            return None
        held = "no limit" if self.in_force_kw is None else f"{self.in_force_kw:g} kW"
        stage = "holding its last limit" if self._lost == "holding" else "fallback"
        return f"{self.origin} {self._loss}: {stage} {held}"

    def _confirmed(self, heard: float, reading: Reading | None) -> float | None:
        """The limit a live box with a heartbeat stands for: a raise once its counter moved
        after the raise was first read; until then the last limit, or None while lost."""
        if self.heartbeat_s is None or self.heard_kw is None or heard <= self.heard_kw:
            self._raise_beat = None
            return heard
        beat = None if reading is None else reading.get(Quantity.GRID_LIMIT_HEARTBEAT)
        if self._raise_beat is None:
            self._raise_beat = beat
        elif beat is not None and beat != self._raise_beat:
            self._raise_beat = None
            return heard
        return None if self._lost is not None else self.heard_kw

    def _heartbeat_stopped(self, reading: Reading | None, now: float) -> bool:
        """Whether the box's heartbeat counter has stood still longer than `heartbeat_s`
        (a reading without it, a missed read of it, does not move it)."""
        if self.heartbeat_s is None or reading is None:
            return False
        beat = reading.get(Quantity.GRID_LIMIT_HEARTBEAT)
        if self._beat_at is None or (beat is not None and beat != self._beat):
            self._beat, self._beat_at = beat, now
        return now - self._beat_at > self.heartbeat_s

    def _heard_kw(self, book: LimitBook, reading: Reading | None, now: float) -> float | None:
        if self.lease_source is None:
            return None if reading is None else limit_kw_of(reading, self.connection_kw)
        book.expire(now)
        lease = book.lease(SITE, self.lease_source)
        return None if lease is None else lease.limit.power_kw

    def _set(
        self, book: LimitBook, kw: float, now: float, origin: str, *, force: bool = False
    ) -> None:
        if kw == self.in_force_kw and not force:
            return
        self.in_force_kw = kw
        book.set(
            SITE,
            LimitSource.GRID_OPERATOR,
            Limit(power_kw=kw),
            now=now,
            lease_s=None,
            origin=origin,
        )

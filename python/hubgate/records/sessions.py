"""Charging sessions as the control loop sees them, recorded in the records file.

A session starts when a connector's EV is plugged in (IEC state B, C or D) or its charger
reports a transaction, and ends when neither holds any more (unplugged, the transaction
stopped). Each cycle adds what the loop knows: the energy (the connector's energy register
from the session's first reading on, else its power over time), the peak phase current, the
highest and lowest setpoint, and how long each allocation reason held it below what it could
take. Open sessions are written at their start, every `flush_s` and at their end; a session
still open when hubgate stopped is closed at its last write when the recorder starts again.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from hubgate.devices.model import ChargingTransaction
from hubgate.records.store import RecordStore
from hubgate.state import ChargingSession, PhaseCurrents

FLUSH_S = 30.0
PLUGGED = frozenset({"B", "C", "D"})
NOT_LIMITING = frozenset({"", "NOT_WANTING", "OWN_MAXIMUM", "UNREACHABLE"})
"""Reasons that hold nothing back: no EV demand, its own maximum, no news of it."""


class ConnectorSample(Protocol):
    """What the session records read of a connector each sample (a
    `hubgate.state.ConnectorState` has it)."""

    @property
    def key(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def setpoint_a(self) -> float: ...
    @property
    def measured_a(self) -> PhaseCurrents | None: ...
    @property
    def power_kw(self) -> float | None: ...
    @property
    def energy_kwh(self) -> float | None: ...
    @property
    def stale(self) -> bool: ...
    @property
    def reason(self) -> str: ...


@dataclass
class _Open:
    session: ChargingSession
    """As it started (with its id and transaction once known); the figures that move each
    sample are kept beside it and put in when it is written (`_snapshot`)."""
    energy_start_kwh: float | None
    energy_kwh: float = 0.0
    last_at: float = 0.0
    limited: dict[str, float] = field(default_factory=dict)
    max_setpoint_a: float | None = None
    min_setpoint_a: float | None = None
    peak_current_a: float = 0.0


class SessionRecorder:
    """Turns each cycle's connector states into session rows (module docstring)."""

    def __init__(self, store: RecordStore, now_wall: float, flush_s: float = FLUSH_S) -> None:
        self.store = store
        self.flush_s = flush_s
        self._open: dict[str, _Open] = {}
        self._flushed_at = now_wall
        store.close_open_sessions(now_wall, "hubgate stopped")

    def observe(
        self,
        connectors: Sequence[ConnectorSample],
        transactions: Mapping[str, ChargingTransaction | None],
        now_wall: float,
    ) -> None:
        """One sample of `connectors` (every connector with a session open, or one whose
        status or transaction changed: the others have nothing to add) and, where their
        chargers report them, their transactions."""
        ended: list[ChargingSession] = []
        started: list[str] = []
        for c in connectors:
            tx = transactions.get(c.key)
            active = tx is not None and not tx.stopped
            plugged = c.status in PLUGGED or active
            current = self._open.get(c.key)
            if current is None:
                if plugged:
                    self._open[c.key] = self._start(c, tx, now_wall)
                    started.append(c.key)
                continue
            if plugged or c.status == "Unreachable":
                self._add(current, c, tx, now_wall)
                continue
            stop = "EV unplugged" if tx is None else tx.stop_reason or "transaction stopped"
            ended.append(self._finish(current, now_wall, stop))
            del self._open[c.key]
        if started:
            new = [self._open[key].session for key in started]
            ids = self.store.save_sessions(new, now_wall)
            for key, id_ in zip(started, ids, strict=True):
                current = self._open[key]
                current.session = current.session.model_copy(update={"id": id_})
        if ended or now_wall - self._flushed_at >= self.flush_s:
            self.store.save_sessions([*ended, *self.current()], now_wall)
            self._flushed_at = now_wall

    def is_open(self, key: str) -> bool:
        """Whether the connector `key` has a session going on."""
        return key in self._open

    def current(self) -> list[ChargingSession]:
        """The sessions going on, as they stand."""
        return [self._snapshot(o) for o in self._open.values()]

    def close(self, now_wall: float) -> None:
        """Write the sessions going on (at shutdown; they stay open)."""
        self.store.save_sessions(self.current(), now_wall)

    def _start(self, c: ConnectorSample, tx: ChargingTransaction | None, now_wall: float) -> _Open:
        session = ChargingSession.model_construct(
            id=0,
            connector=c.key,
            transaction_id=None if tx is None else tx.transaction_id,
            id_token=None if tx is None else tx.id_token,
            started_at=now_wall,
            stopped_at=None,
            energy_kwh=0.0,
            peak_current_a=max(c.measured_a) if c.measured_a else 0.0,
            max_setpoint_a=c.setpoint_a,
            min_setpoint_a=c.setpoint_a,
            limited_s={},
            stop_reason=None,
        )
        return _Open(
            session,
            c.energy_kwh,
            last_at=now_wall,
            max_setpoint_a=session.max_setpoint_a,
            min_setpoint_a=session.min_setpoint_a,
            peak_current_a=session.peak_current_a,
        )

    def _add(
        self, o: _Open, c: ConnectorSample, tx: ChargingTransaction | None, now_wall: float
    ) -> None:
        dt = max(now_wall - o.last_at, 0.0)
        o.last_at = now_wall
        if c.energy_kwh is not None and o.energy_start_kwh is None:
            o.energy_start_kwh = c.energy_kwh - o.energy_kwh
        if c.energy_kwh is not None and o.energy_start_kwh is not None:
            o.energy_kwh = max(c.energy_kwh - o.energy_start_kwh, o.energy_kwh)
        elif c.power_kw is not None and not c.stale:
            o.energy_kwh += max(c.power_kw, 0.0) * dt / 3600
        if c.reason not in NOT_LIMITING:
            o.limited[c.reason] = o.limited.get(c.reason, 0.0) + dt
        o.max_setpoint_a = max(o.max_setpoint_a or 0.0, c.setpoint_a)
        o.min_setpoint_a = min(o.min_setpoint_a or c.setpoint_a, c.setpoint_a)
        if c.measured_a and not c.stale:
            o.peak_current_a = max(o.peak_current_a, *c.measured_a)
        if tx is not None and o.session.transaction_id is None:
            update = {"transaction_id": tx.transaction_id, "id_token": tx.id_token}
            o.session = o.session.model_copy(update=update)

    def _snapshot(self, o: _Open) -> ChargingSession:
        return o.session.model_copy(
            update={
                "energy_kwh": round(o.energy_kwh, 4),
                "limited_s": dict(o.limited),
                "max_setpoint_a": o.max_setpoint_a,
                "min_setpoint_a": o.min_setpoint_a,
                "peak_current_a": o.peak_current_a,
            }
        )

    def _finish(self, o: _Open, now_wall: float, reason: str) -> ChargingSession:
        return self._snapshot(o).model_copy(update={"stopped_at": now_wall, "stop_reason": reason})

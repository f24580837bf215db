"""Per charge point: its capabilities (asked on every boot, kept in a file, corrected from
the site file), its provisioning, and what hubgate learned of it by watching.

The connectors of a station (`OcppCharger`s) share one `StationCare`. On every
connection `attend`, a task beside the session, settles it (`settle`): it waits for the
charger's BootNotification (some chargers answer nothing before it: Wallbox,
lbbrhzn/ocpp#1503, evcc-io/evcc#27309; or a short while when it reconnects without one,
as 2.0.1 Part 4 §5.3 allows), then asks what it takes (`capabilities.discover`) and sets
its meter values (`provisioning.provision`), trying again a few times when it does not
answer. Until a charger answered once, the capabilities kept from an earlier boot
(`CapabilityStore`) apply, or the site file's; a charger of which nothing is known is not
commanded yet (`known`). Then, as long as the connection lasts, it runs each connector's
`upkeep` (composite-schedule checks, stale values asked for) when one is due, apart from the
control loop: `UpkeepTicks`, one timer for every station, looks each second and wakes only
the stations with something due (a sleep per station woke the gateway 50 times a second on
a 50-station site for nothing most of the time).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol, TypeVar

import trio

from hubgate.aside import Turns, run_aside
from hubgate.config.model import CapabilityOverride
from hubgate.ocpp.capabilities import Capabilities, discover
from hubgate.ocpp.errors import OcppCallError, OcppCallTimeoutError, OcppSessionClosedError
from hubgate.ocpp.operations import ChargerOperations
from hubgate.ocpp.provisioning import Provisioning, provision
from hubgate.ocpp.registry import Station
from hubgate.ocpp.session import OcppSession
from hubgate.ocpp.smart_charging import LeaseSettings, ProfileLease, Setpoint, lease_for_session

LOG = logging.getLogger("hubgate.ocpp")

CALL_FAILED = (OcppCallError, OcppCallTimeoutError, OcppSessionClosedError)
T = TypeVar("T")
BOOT_WAIT_S = 15.0
"""How long a new connection waits for a BootNotification before asking anyway."""
QUESTION_TIMEOUT_S = 5.0
"""Each question's answer is awaited this long (the session serves one call at a time)."""
UPKEEP_EVERY_S = 1.0
"""How often a connected station's connectors are checked (verification, stale values)."""
ATTEMPTS = 3
RETRY_S = 10.0
"""A charger that does not answer is asked `ATTEMPTS` times, this far apart; after that the
capabilities known so far (or the defaults) are used."""


class Kept(Protocol):
    """A connector a station's task keeps up (`OcppCharger`)."""

    def upkeep_due(self, now: float) -> bool:
        """Whether `upkeep` has anything to do at `now`."""
        ...

    async def upkeep(self) -> None:
        """Verify, ask for stale values: whatever is due."""
        ...


class CapabilityStore:
    """Every charger's last capabilities in one JSON file, replaced atomically."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._records: dict[str, dict[str, Any]] = {}
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            data = {}
        except (OSError, ValueError) as error:
            LOG.warning("%s: not read (%s); capabilities are asked again", path, error)
            data = {}
        if isinstance(data, dict):
            self._records = {k: v for k, v in data.items() if isinstance(v, dict)}

    def capabilities(self, identity: str) -> Capabilities | None:
        """What `identity` reported when last asked, None when never."""
        record = self._records.get(identity, {}).get("capabilities")
        return Capabilities.from_json(record) if isinstance(record, dict) else None

    async def save(self, identity: str, record: dict[str, Any]) -> None:
        """Keep `record` for `identity` and write the file (in a worker thread)."""
        self._records[identity] = record
        text = json.dumps(self._records, indent=1, sort_keys=True)
        await trio.to_thread.run_sync(self._write, text)

    def _write(self, text: str) -> None:
        temporary = self.path.with_name(self.path.name + ".tmp")
        temporary.write_text(text, encoding="utf-8")
        os.replace(temporary, self.path)


class StationCare:
    """What hubgate knows of one charge point beyond its messages."""

    def __init__(
        self,
        station: Station,
        *,
        override: CapabilityOverride | None = None,
        store: CapabilityStore | None = None,
        sample_interval_s: int = 5,
    ) -> None:
        self.station = station
        self.override = override
        self.store = store
        self.sample_interval_s = sample_interval_s
        self.reported: Capabilities | None = None
        """What the charger said at its latest boot."""
        self.stored = store.capabilities(station.identity) if store is not None else None
        self.provisioning: Provisioning | None = None
        self.discovery_error: str | None = None
        self.honours_valid_to: bool | None = None
        """Seen in its composite schedules (`ProfileLease.verify`)."""
        self.discovered_at: datetime | None = None
        self.caught: dict[int, str] = {}
        """Connector → what it was caught doing (drawing over its limit): not following."""
        self.kept: list[Kept] = []
        """Its connectors, kept up (`OcppCharger.upkeep`) while it is connected."""
        self.station_wide = False
        """It refused per-connector limits: its connectors share one station-wide limit."""
        self.lease_targets: set[int] = set()
        """The connectors (0: the station) its `OcppCharger`s keep a lease on."""
        self._shares: dict[int, Setpoint] = {}
        self._shared: ProfileLease | None = None
        self._prepared: OcppSession | None = None
        self._nursery: trio.Nursery | None = None
        """The attended connection's (`detached`)."""
        self._turns: dict[object, Turns[Any]] = {}
        """`in_turn`'s, by key."""
        self._settled = False
        self._lock = trio.Lock()
        self._capabilities: tuple[tuple[object, ...], float | None, Capabilities] | None = None
        """The capabilities in force, what they were made of and the clock offset seen then
        (`capabilities`)."""
        self._clock_off = False
        """Whether the capabilities last made counted its clock off (their hysteresis)."""

    @property
    def source(self) -> str:
        """Where the capabilities come from: reported, stored or default (+ site file)."""
        base = (
            "reported"
            if self.reported is not None
            else "stored"
            if self.stored is not None
            else "default"
        )
        return f"{base} + site file" if self.override is not None else base

    @property
    def capabilities(self) -> Capabilities:
        """The capabilities in force: reported (else stored, else defaults), with the
        clock and validTo behaviour seen, corrected by the site file; a clock counted off
        stays off until it is well within the tolerance (`Capabilities.clock_was_off`)."""
        seen = self.station.clock.offset_s
        known = self._capabilities
        if known is not None:  # (read for every limit: made again only when one changed)
            reported, stored, honours, override = known[0]
            if (
                known[1] == seen  # (a new sample of the same offset changes nothing)
                and reported is self.reported
                and stored is self.stored
                and honours is self.honours_valid_to
                and override is self.override
            ):
                return known[2]
        made_of = (self.reported, self.stored, self.honours_valid_to, self.override)
        base = self.reported or self.stored or Capabilities()
        clock = base.clock_offset_s if self.reported is not None else None
        honours = self.honours_valid_to
        capabilities = replace(
            base,
            clock_offset_s=seen if seen is not None else clock,
            honours_valid_to=base.honours_valid_to if honours is None else honours,
            clock_was_off=self._clock_off,
        ).corrected(self.override)
        self._clock_off = capabilities.clock_off
        self._capabilities = (made_of, seen, capabilities)
        return capabilities

    def shared_lease(self, session: OcppSession, settings: LeaseSettings) -> ProfileLease:
        """The station-wide lease (connector 0) of this connection."""
        lease = lease_for_session(
            self._shared, session, connector_id=0, settings=settings, capabilities=None
        )
        assert lease is not None, "a session is given"
        self._shared = lease
        return lease

    def share(self, connector_id: int, setpoint: Setpoint) -> Setpoint:
        """The station-wide setpoint once `connector_id` wants `setpoint`: per phase the
        sum of the connectors' setpoints (a one-phase connector on the charger's L1), the
        smallest of the three, so no phase is given more than its connectors were."""
        self._shares[connector_id] = setpoint
        per_phase = [0.0, 0.0, 0.0]
        for share in self._shares.values():
            for phase in range(share.phases):
                per_phase[phase] += share.current_a
        three = any(share.phases == 3 for share in self._shares.values())
        total = min(per_phase) if three else per_phase[0]
        return replace(setpoint, current_a=total, phases=3 if three else 1, active_phases=None)

    @property
    def known(self) -> bool:
        """Whether the capabilities are known: reported (or given up on) in this run, kept
        from an earlier one, or given in the site file."""
        return self._settled or self.stored is not None or self.override is not None

    def prepared(self, session: OcppSession | None) -> bool:
        """Whether this connection was attended to (asked, or given up on)."""
        return session is not None and self._prepared is session

    def upkeep_due(self, now: float) -> bool:
        """Whether one of its connectors has upkeep due."""
        return any(kept.upkeep_due(now) for kept in self.kept)

    async def attend(self, session: OcppSession, ticks: UpkeepTicks | None = None) -> None:
        """For one connection: `settle`, then run the connectors' `upkeep` when `ticks`
        finds one due (without: every `UPKEEP_EVERY_S`) until it ends; meanwhile it runs
        their `detached` exchanges."""
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            try:
                await self.settle(session)
                while True:
                    if ticks is None:
                        await trio.sleep(UPKEEP_EVERY_S)
                    else:
                        await ticks.due(self)
                    for kept in self.kept:
                        try:
                            await kept.upkeep()
                        except CALL_FAILED as error:
                            LOG.debug("%s: upkeep: %s", session.identity, error)
            finally:
                if self._nursery is nursery:
                    self._nursery = None

    async def detached(self, exchange: Callable[[], Awaitable[T]]) -> T:
        """`exchange`'s result, the exchange run in this connection's own task (`attend`):
        a caller cut short (the control loop moves on at its command deadline, a tenth of a
        second at a 0.25 s cycle, less than a cellular link's round trip) leaves it to
        finish and record what the charger accepted, instead of cancelling it every cycle
        (the charger was sent its profile again and again and never seen to accept one).
        Run in place while no connection is attended."""
        nursery = self._nursery
        if nursery is None:
            return await exchange()
        if not (result := await run_aside(nursery, exchange)):
            raise OcppSessionClosedError(f"{self.station.identity}: the connection ended")
        return result[0]

    async def in_turn(self, key: object, exchange: Callable[[], Awaitable[T]]) -> T:
        """`detached(exchange)`, the exchanges of one `key` (a connector's limit) taken in
        turns (`hubgate.aside.Turns`): while one waits for the one in flight, a later call
        shares its outcome, and it sends what is newest when its turn comes. A station slower
        than the cycle once piled up an exchange per connector per cycle (thousands of
        tasks on depot-200 at load 20, each with an older setpoint than the last)."""
        turns: Turns[T] = self._turns.setdefault(key, Turns())
        if not (outcome := await turns.take(exchange, self.detached)):
            raise OcppSessionClosedError(f"{self.station.identity}: the exchange was cut short")
        return outcome[0]

    def waiting(self, key: object) -> bool:
        """Whether an exchange of `key` waits for its turn (`in_turn` now would join it)."""
        turns = self._turns.get(key)
        return turns is not None and turns.waiting

    async def settle(self, session: OcppSession) -> None:
        """Wait for the boot, then ask and provision (with retries)."""
        with trio.move_on_after(BOOT_WAIT_S):
            await self.station.booted.wait()
        for attempt in range(1, ATTEMPTS + 1):
            if await self.prepare(session) or attempt == ATTEMPTS:
                break
            await trio.sleep(RETRY_S)
        self._settled = True
        self._prepared = session

    async def prepare(self, session: OcppSession) -> bool:
        """Ask the capabilities and provision the meter values; False when the charger
        did not answer (a refusal is an answer: it keeps the defaults)."""
        async with self._lock:
            answered = True
            try:
                reported = await discover(session, timeout_s=QUESTION_TIMEOUT_S)
            except OcppCallError as error:  # it refuses the question: nothing to learn
                self.discovery_error = f"{error.code}: {error}"
                LOG.warning("%s: capabilities not read: %s", session.identity, error)
            except CALL_FAILED as error:
                self.discovery_error = f"{type(error).__name__}: {error}"
                LOG.warning("%s: capabilities not read: %s", session.identity, error)
                answered = False
            else:
                if reported.clock_offset_s is not None:
                    self.station.clock.measured(reported.clock_offset_s)
                self.reported, self.discovery_error = reported, None
                self.discovered_at = datetime.now(UTC)
            if answered:
                self._settled = True
                try:
                    self.provisioning = await provision(
                        session, self.sample_interval_s, timeout_s=QUESTION_TIMEOUT_S
                    )
                except CALL_FAILED as error:
                    LOG.warning("%s: meter values not provisioned: %s", session.identity, error)
                if self.station.clock.offset_s is None:
                    await self._ask_the_time(session)
                await self._save()
            return answered

    async def _ask_the_time(self, session: OcppSession) -> None:
        """Ask for a stamped message: a 1.6 charger shows its clock only in what it
        stamps (a StatusNotification's timestamp is optional; MeterValues are always
        stamped), so before a transaction hubgate may know nothing of it (a 2.x charger
        that did not answer ClockCtrlr.DateTime neither). Until then its leases go out on
        ours (`smart_charging.SCHEDULE_BACKDATE` keeps them in force)."""
        try:
            await ChargerOperations(session, timeout_s=QUESTION_TIMEOUT_S).trigger("MeterValues")
        except CALL_FAILED as error:
            LOG.info("%s: no MeterValues asked for its clock: %s", session.identity, error)

    async def saw_lapse(self, lapses: bool) -> None:
        """A composite schedule showed whether the charger drops a profile at its validTo."""
        if lapses != self.honours_valid_to:
            self.honours_valid_to = lapses
            if not lapses:
                LOG.warning("%s: keeps profiles past their validTo", self.station.identity)
            await self._save()

    async def _save(self) -> None:
        if self.store is None:
            return
        capabilities = self.reported or self.stored
        if capabilities is None:
            return
        if self.honours_valid_to is not None:
            capabilities = replace(capabilities, honours_valid_to=self.honours_valid_to)
        boot = self.station.boot
        record: dict[str, Any] = {
            "capabilities": capabilities.to_json(),
            "discovered_at": None if self.discovered_at is None else self.discovered_at.isoformat(),
            "boot": None if boot is None else {"vendor": boot.vendor, "model": boot.model},
        }
        try:
            await self.store.save(self.station.identity, record)
        except OSError as error:
            LOG.warning("%s: capabilities not kept: %s", self.store.path, error)


class UpkeepTicks:
    """One timer for the upkeep of every attended station: `run` looks every
    `UPKEEP_EVERY_S` and wakes the stations waiting in `due` that have something due."""

    def __init__(self) -> None:
        self._waiting: dict[StationCare, trio.Event] = {}

    async def due(self, care: StationCare) -> None:
        """Return once `run` finds upkeep due for `care`."""
        woken = self._waiting[care] = trio.Event()
        try:
            await woken.wait()
        finally:
            if self._waiting.get(care) is woken:
                del self._waiting[care]

    async def run(self) -> None:
        """Look for due upkeep every `UPKEEP_EVERY_S`, forever."""
        while True:
            await trio.sleep(UPKEEP_EVERY_S)
            now = trio.current_time()
            for care, woken in self._waiting.items():
                if care.upkeep_due(now):
                    woken.set()


def attendant(
    cares: Iterable[StationCare], ticks: UpkeepTicks | None = None
) -> Callable[[Station, OcppSession], Awaitable[None]]:
    """The listener's `attend` hook for these stations (`OcppListener(attend=...)`); with
    `ticks`, their upkeep waits for it (whoever passes it runs `ticks.run`)."""
    by_identity = {care.station.identity: care for care in cares}

    async def attend(station: Station, session: OcppSession) -> None:
        care = by_identity.get(station.identity)
        if care is not None:
            await care.attend(session, ticks)

    return attend

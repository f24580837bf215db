"""A simulated OCPP charge point (1.6 or 2.0.1) dialling a CSMS, following its EVs.

Built on the `ocpp` package's asyncio ChargePoint over `websockets`. It boots,
heartbeats, sends status notifications as its EVs arrive, charge, pause and
leave, runs transactions (Authorize + Start/StopTransaction in 1.6,
TransactionEvent in 2.0.1; an id token the CSMS refuses gets no transaction and
no current), sends MeterValues every `meter_values_s` simulated
seconds, and applies the charging profiles it is sent (`station_limits`).
It reconnects with backoff when the CSMS goes away, and stays away while the
scenario has its charger offline. Periodic messages run on simulated time; its
clock (profiles, timestamps) is the CSMS's while connected (`station_clock`).
Its `personality` makes it behave like a real charger users reported
(`station_personalities`): W only, deaf until it boots, ignoring profiles, ...
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import websockets
from ocpp.v16 import call as call16  # type: ignore[import-untyped]
from ocpp.v201 import call as call201  # type: ignore[import-untyped]
from websockets.typing import Subprotocol

from hubgate.config.model import Charger, PhaseMode
from hubgate.ocpp.meter_values import parse_timestamp
from hubgate.ocpp.versions import OcppVersion
from hubgate.sim.ev import MIN_CURRENT_A
from hubgate.sim.ocpp_handlers import Handlers16, Handlers201, timestamp
from hubgate.sim.station_clock import StationClock
from hubgate.sim.station_limits import StationLimits
from hubgate.sim.station_meter import meter_value
from hubgate.sim.station_personalities import BOOK, ENERGY, Personality
from hubgate.sim.station_settings import offline_authorization, set_boolean
from hubgate.sim.station_state import ConnectorState, StationEnv, connector_status

_log = logging.getLogger(__name__)
ID_TAG = "SIMEV"
BACKOFF_S = (1.0, 30.0)
"""First and longest wait (wall-clock seconds) before dialling again."""

UNDECODABLE_CLOSE_CODES = (1002, 1007)
"""Close codes a station sends for a frame it cannot decode (protocol error: e.g. a
decompression failure; invalid payload data: text that is not UTF-8)."""

Send = Callable[[], Awaitable[None]]


@dataclass
class Station:
    """One OCPP charger of the site."""

    charger: Charger
    slots: tuple[int, ...]
    env: StationEnv
    csms_url: str
    """Where it dials: one URL, or several comma-separated in priority order (it tries
    them in turn, from the first, whenever its connection is lost)."""
    meter_values_s: float
    personality: Personality = BOOK
    version: OcppVersion = field(init=False)
    connectors: list[ConnectorState] = field(init=False)
    clock: StationClock = field(init=False)
    limits: StationLimits = field(init=False)
    """Its charging profiles and what they let each connector offer."""
    network_profiles: dict[int, str] = field(default_factory=dict)
    """2.0.1 network connection profiles: slot -> CSMS URL (SetNetworkProfile)."""
    network_priority: list[int] = field(default_factory=list)
    """NetworkConfigurationPriority: the slots in the order they are dialled."""
    connected: bool = False
    booted: bool = False
    heartbeat_s: float = 300.0
    _queue: asyncio.Queue[Send | None] = field(default_factory=asyncio.Queue)
    """What to send, in order; None only wakes the session up."""
    _next_heartbeat: float = 0.0
    _next_meter_values: float = 0.0
    _reboot: bool = False
    _rebooted: bool = False
    _stopped: bool = False
    _tx_numbers: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _cp: Any = None
    """The `ocpp` package's ChargePoint of the session, while connected."""
    _deaf_until: float = 0.0
    """Simulated time until which it answers no call (a `pending-boot` personality)."""
    _awake: asyncio.Event | None = None
    _next_reboot: float | None = None
    measurands: tuple[str, ...] | None = None
    """What the CSMS asked it to sample (None: everything)."""
    offline_authorization: dict[str, str] = field(default_factory=offline_authorization)
    stalled: bool = False
    """Hung but connected: sends nothing and answers no call while set (a frozen
    controller keeping its TCP connection)."""
    unreadable_frames: int = 0
    """Frames from the CSMS that were not OCPP-J or failed the schema, and connections the
    station closed for a frame it could not decode (1002, 1007); the demo reports them."""

    def __post_init__(self) -> None:
        assert self.charger.ocpp is not None
        spoken = (OcppVersion.V16, OcppVersion.V201)
        versions = [v for v in self.charger.ocpp.versions if v in spoken]
        self.version = versions[0] if versions else OcppVersion.V201  # 2.1-only: as 2.0.1
        self.connectors = [
            ConnectorState(
                c.id if self.v16 else i + 1,
                slot,
                c.max_current_a,
                dc=c.dc,
                switchable=c.phases == PhaseMode.SWITCHABLE,
            )
            for i, (c, slot) in enumerate(zip(self.charger.connectors, self.slots, strict=True))
        ]
        self.clock = StationClock(self.env.origin)
        self.limits = StationLimits(
            self.env, self.personality, self.connectors, self.now, self.identity, self.v16
        )
        if self.personality.meter_values_s is not None:
            self.meter_values_s = self.personality.meter_values_s

    @property
    def v16(self) -> bool:
        """Whether the station speaks OCPP 1.6 (else 2.0.1)."""
        return self.version is OcppVersion.V16

    @property
    def identity(self) -> str:
        """The charge point identity (last path segment of its URL)."""
        assert self.charger.ocpp is not None
        return self.charger.ocpp.identity

    def listing(self) -> dict[str, object]:
        """The station's entry in the listing file."""
        return {
            "id": self.charger.id,
            "identity": self.identity,
            "version": self.version.value,
            "url": self._urls()[0],
            "urls": self._urls(),
            "connectors": [c.id for c in self.connectors],
        }

    def now(self) -> datetime:
        """The station's time: its profiles are held and its messages stamped on it (off
        the CSMS's by its personality's `clock_offset_s`)."""
        offset = timedelta(seconds=self.personality.clock_offset_s)
        return self.clock.now(datetime.now(UTC), self.env.clock()) + offset

    def answers_calls(self) -> bool:
        """Whether it answers the CSMS's calls now (not while deaf after connecting)."""
        return not self.stalled and self.env.clock() >= self._deaf_until

    def _sync(self, current_time: object, sent: datetime) -> None:
        """Set the clock from a CSMS's `currentTime` (one it cannot read is ignored)."""
        try:
            moment = parse_timestamp(str(current_time))
        except ValueError:
            _log.warning("station %s: unreadable currentTime %r", self.identity, current_time)
            return
        self.clock.sync(moment, sent, datetime.now(UTC))

    # -- physics ------------------------------------------------------------------

    @property
    def pending(self) -> int:
        """Messages waiting to be sent."""
        return self._queue.qsize()

    def apply_limits(self) -> None:
        """Hand the physics what each connector offers (`StationLimits.apply`)."""
        self.limits.apply()
        for connector in self.connectors:
            self.env.offer(self.charger.id, connector.slot, connector.offered_a)

    def _status(self, connector: ConnectorState) -> tuple[str, str]:
        """(1.6 status or 2.0.1 connector status, 2.0.1 charging state)."""
        ev = self.env.ev(connector.slot)
        if not connector.available or self.limits.no_free_power(connector):
            return "Unavailable", ""
        if ev is None:
            return "Available", ""
        if connector.tx_id is None:
            return ("Finishing" if connector.stopped else "Preparing"), "EVConnected"
        if connector.offered_a < max(MIN_CURRENT_A if connector.dc is None else 0.0, 1e-9):
            state = "SuspendedEVSE"
        elif ev.draw_a <= 0:
            state = "SuspendedEV"
        else:
            state = "Charging"
        return state, state

    def tick(self) -> None:
        """After each step: transactions, status changes, heartbeats and meter values due."""
        if self.stalled:
            return
        now = self.env.clock()
        if self._awake is not None and self.answers_calls():
            self._awake.set()
        if self.connected and not self._online():
            self._wake()
        for connector in self.connectors:
            ev = self.env.ev(connector.slot)
            if ev is not connector.ev:
                if connector.tx_id is not None:
                    self._queue.put_nowait(self._stop_tx(connector, "EVDisconnected"))
                connector.ev, connector.stopped = ev, False
                connector.phases = 3  # a new EV starts on every phase it has
            if not self.booted:
                continue
            before, before_charging = connector.status, connector.charging_state
            connector.status, connector.charging_state = self._status(connector)
            if self.v16:
                report = connector.status != before
            else:
                report = connector_status(connector.status) != connector_status(before)
            if report:
                self._queue.put_nowait(self._send_status(connector, connector.status))
            changed = connector.charging_state != before_charging
            if not self.v16 and connector.tx_id is not None and changed:
                self._queue.put_nowait(self._tx_event(connector, "Updated", "ChargingStateChanged"))
            idle = connector.tx_id is None and not connector.stopped
            if (
                ev is not None
                and idle
                and connector.available
                and not self.limits.no_free_power(connector)
            ):
                self._start_tx(connector)
        if not self.booted:
            return
        every = self.personality.reboot_every_s
        if every is not None:
            if self._next_reboot is None:
                self._next_reboot = now + every
            elif now >= self._next_reboot:
                self._next_reboot = now + every
                self.reset()
        if now >= self._next_heartbeat:
            self._next_heartbeat = now + self.heartbeat_s
            self._queue.put_nowait(self._heartbeat())
        if now >= self._next_meter_values:
            self._next_meter_values = now + self.meter_values_s
            for connector in self.connectors:
                if connector.tx_id is not None:
                    self._queue.put_nowait(self._meter_values(connector))

    # -- messages -----------------------------------------------------------------

    def _sampled(self, connector: ConnectorState) -> list[dict[str, Any]]:
        measurands = self.personality.measurands or self.measurands
        return meter_value(connector, self.env, self.now(), v16=self.v16, measurands=measurands)

    async def _call(self, payload: object) -> Any:
        cp = self._cp
        if cp is None:
            raise ConnectionError("not connected")
        return await cp.call(payload)

    def _send_status(self, connector: ConnectorState, status: str) -> Send:
        async def send() -> None:
            when = timestamp(self.now())
            if self.v16:
                await self._call(
                    call16.StatusNotification(
                        connector_id=connector.id,
                        error_code="NoError",
                        status=status,
                        timestamp=when,
                    )
                )
            else:
                await self._call(
                    call201.StatusNotification(
                        timestamp=when,
                        connector_status=connector_status(status),
                        evse_id=connector.id,
                        connector_id=1,
                    )
                )

        return send

    def _heartbeat(self) -> Send:
        async def send() -> None:
            sent = datetime.now(UTC)
            answer = await self._call(call16.Heartbeat() if self.v16 else call201.Heartbeat())
            self._sync(answer.current_time, sent)

        return send

    def _meter_values(self, connector: ConnectorState) -> Send:
        async def send() -> None:
            if connector.tx_id in (None, "pending"):
                return
            if self.v16:
                await self._call(
                    call16.MeterValues(
                        connector_id=connector.id,
                        transaction_id=int(connector.tx_id),
                        meter_value=self._sampled(connector),
                    )
                )
            else:
                await self._call(
                    call201.MeterValues(evse_id=connector.id, meter_value=self._sampled(connector))
                )

        return send

    def _start_tx(self, connector: ConnectorState) -> None:
        """Open the transaction now (it is numbered when the CSMS answers, in 1.6)."""
        connector.tx_start = self.now()
        connector.tx_generation += 1
        connector.tx_id = "pending" if self.v16 else f"{self.identity}-{next(self._tx_numbers)}"
        connector.seq_no = 0
        self._queue.put_nowait(self._begin_tx(connector))

    def _begin_tx(self, connector: ConnectorState) -> Send:
        started = None if self.v16 else self._tx_event(connector, "Started", "CablePluggedIn")
        generation = connector.tx_generation

        async def send() -> None:
            if started is not None:
                authorized = await self._call(
                    call201.Authorize(id_token={"id_token": ID_TAG, "type": "Central"})
                )
                if self._refused(connector, generation, authorized):
                    return
                await started()
                return
            if connector.tx_generation != generation:
                return  # given up at a reconnect, or already over
            authorized = await self._call(call16.Authorize(id_tag=ID_TAG))
            if self._refused(connector, generation, authorized):
                return
            answer = await self._call(
                call16.StartTransaction(
                    connector_id=connector.id,
                    id_tag=ID_TAG,
                    meter_start=round(self.env.energy_wh(connector.slot)),
                    timestamp=timestamp(connector.tx_start or self.now()),
                )
            )
            if answer is None:
                return
            connector.numbers[generation] = str(answer.transaction_id)
            if connector.tx_generation == generation and connector.tx_id == "pending":
                connector.tx_id = str(answer.transaction_id)

        return send

    def _refused(self, connector: ConnectorState, generation: int, authorized: Any) -> bool:
        """Whether the CSMS refused the EV's id token: then no transaction and no current
        until the EV leaves (no answer at all, a CallError, lets it charge)."""
        if authorized is None:
            return False
        info = authorized.id_tag_info if self.v16 else authorized.id_token_info
        if info["status"] == "Accepted":
            return False
        if connector.tx_generation == generation:
            connector.tx_id, connector.tx_start, connector.stopped = None, None, True
        return True

    def _tx_event(self, connector: ConnectorState, event: str, trigger: str) -> Send:
        tx_id = connector.tx_id
        charging = connector.charging_state or "EVConnected"

        async def send() -> None:
            connector.seq_no += 1
            info: dict[str, Any] = {"transaction_id": tx_id, "charging_state": charging}
            if event == "Ended":
                info = {
                    "transaction_id": tx_id,
                    "stopped_reason": "EVDisconnected" if trigger == "EVDeparted" else "Remote",
                }
            await self._call(
                call201.TransactionEvent(
                    event_type=event,
                    timestamp=timestamp(self.now()),
                    trigger_reason=trigger,
                    seq_no=connector.seq_no - 1,
                    transaction_info=info,
                    evse={"id": connector.id, "connector_id": 1},
                    id_token={"id_token": ID_TAG, "type": "Central"}
                    if event == "Started"
                    else None,
                    meter_value=self._sampled(connector),
                )
            )

        return send

    def _stop_tx(self, connector: ConnectorState, reason: str) -> Send:
        """Close the transaction now; its message goes out in order, after its start."""
        generation = connector.tx_generation
        meter = round(self.env.energy_wh(connector.slot))
        when = timestamp(self.now())
        trigger = "EVDeparted" if reason == "EVDisconnected" else "RemoteStop"
        ended = None if self.v16 else self._tx_event(connector, "Ended", trigger)
        connector.tx_id, connector.tx_start = None, None

        async def send() -> None:
            if ended is not None:
                await ended()
                return
            number = connector.numbers.pop(generation, None)  # the CSMS's, once it answered
            if number is None:
                return
            await self._call(
                call16.StopTransaction(
                    meter_stop=meter, timestamp=when, transaction_id=int(number), reason=reason
                )
            )

        return send

    # -- connection ---------------------------------------------------------------

    def _urls(self) -> list[str]:
        """Where to dial, in order: the network profiles in their priority (2.0.1, once
        a CSMS set them), else `csms_url`."""
        bases = [self.network_profiles[slot] for slot in self.network_priority] or [
            u.strip() for u in self.csms_url.split(",")
        ]
        return [f"{base.rstrip('/')}/{self.identity}" for base in bases]

    async def run(self) -> None:
        """Dial the CSMS (each URL in turn), keep the session, dial again with backoff
        once every URL failed; forever."""
        backoff = BACKOFF_S[0]
        protocol = Subprotocol("ocpp1.6" if self.v16 else "ocpp2.0.1")
        while not self._stopped:
            if not self._online():
                await asyncio.sleep(0.1)
                continue
            for url in self._urls():
                try:
                    async with websockets.connect(
                        url,
                        subprotocols=[protocol],
                        open_timeout=5,
                    ) as ws:
                        backoff = BACKOFF_S[0]
                        try:
                            await self._session(ws)
                        finally:
                            closed = ws.protocol.close_sent
                            if closed is not None and closed.code in UNDECODABLE_CLOSE_CODES:
                                self.unreadable(f"closed the connection: {closed}")
                    break
                except (OSError, TimeoutError, websockets.exceptions.WebSocketException):
                    pass  # the CSMS went away or never answered: the next one
                except Exception:  # a message the CSMS refused, or a bug: say so, dial again
                    _log.exception("station %s: session failed", self.identity)
                    break
                finally:
                    self._cp, self.connected, self.booted = None, False, False
            if self._reboot:
                self._reboot = False
                continue
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, BACKOFF_S[1])

    def stop(self) -> None:
        """Hang up for good (the simulation ends)."""
        self._stopped = True
        self._wake()

    def _wake(self) -> None:
        """Let the session look at the connection, the scenario and a pending reboot."""
        self._queue.put_nowait(None)

    def _online(self) -> bool:
        return self.env.online(self.charger.id)

    async def _session(self, ws: Any) -> None:
        cp = (Handlers16 if self.v16 else Handlers201)(self.identity, ws, self)
        self._cp = cp
        self.connected = True
        receiver = asyncio.ensure_future(cp.start())
        receiver.add_done_callback(lambda _: self._link_lost())
        try:
            deaf_s = self.personality.deaf_after_connect_s
            if deaf_s > 0:  # still starting: answers nothing, boots later (`tick` wakes it)
                self._deaf_until = self.env.clock() + deaf_s
                self._awake = asyncio.Event()
                waking = asyncio.ensure_future(self._awake.wait())
                await asyncio.wait([waking, receiver], return_when=asyncio.FIRST_COMPLETED)
                waking.cancel()
            if not await self._until_lost(self._boot(), receiver):
                return
            for connector in self.connectors:
                connector.status = ""  # every status again after a boot
                if connector.tx_id == "pending":  # never numbered: start it again
                    connector.tx_id, connector.tx_start = None, None
                    connector.tx_generation += 1
            self.booted = True
            while not receiver.done() and self._online() and not (self._reboot or self._stopped):
                send = await self._queue.get()
                if send is not None and not self.stalled:
                    await self._until_lost(send(), receiver)
        finally:
            self._link_lost()
            receiver.cancel()
            await asyncio.wait([receiver])  # a cancellation of this task still propagates

    @staticmethod
    async def _until_lost(call: Awaitable[None], receiver: asyncio.Future[Any]) -> bool:
        """Run `call` (its errors raised) unless the connection is lost first: then it is
        given up, as a charger gives up a call whose connection closed (waiting out the
        call's response timeout kept a station of a killed gateway from dialling the other
        one for 30 s). Whether it ran to its end."""
        task = asyncio.ensure_future(call)
        await asyncio.wait([task, receiver], return_when=asyncio.FIRST_COMPLETED)
        if task.done():
            task.result()
            return True
        task.cancel()
        await asyncio.wait([task])
        return False

    def unreadable(self, what: str) -> None:
        """Count a frame from the CSMS the station could not take (logged, cut short)."""
        self.unreadable_frames += 1
        _log.warning("station %s: unreadable frame from the CSMS: %.200s", self.identity, what)

    def _link_lost(self) -> None:
        """The connection closed (or is being closed): the clock runs on by itself at once,
        even while a call in flight still waits for its answer."""
        self.clock.link_down(datetime.now(UTC), self.env.clock())
        self._wake()

    def _boot_notification(self, reason: str) -> object:
        if self.v16:
            return call16.BootNotification(
                charge_point_model="SimCharger", charge_point_vendor="hubgate-sim"
            )
        return call201.BootNotification(
            charging_station={"model": "SimCharger", "vendor_name": "hubgate-sim"}, reason=reason
        )

    async def _boot(self) -> None:
        reason = "RemoteReset" if self._rebooted else "PowerUp"
        while True:
            sent = datetime.now(UTC)
            answer = await self._call(self._boot_notification(reason))
            self._sync(answer.current_time, sent)
            self.clock.link_up()
            if answer.interval > 0:
                self.heartbeat_s = float(answer.interval)
            if answer.status == "Accepted":
                self._next_heartbeat = self.env.clock() + self.heartbeat_s
                return
            await asyncio.sleep(min(max(answer.interval, 1), 10))

    def _triggered_boot(self) -> Send:
        async def send() -> None:
            sent = datetime.now(UTC)
            answer = await self._call(self._boot_notification("Triggered"))
            self._sync(answer.current_time, sent)

        return send

    # -- requests from the CSMS ---------------------------------------------------

    def profile_from(self, ws: Any, target: int, data: dict[str, Any]) -> str:
        """SetChargingProfile over the connection `ws`: told to the site's writer log."""
        ours, theirs = ws.local_address, ws.remote_address
        what = {"profile": data.get("id", data.get("charging_profile_id")), "target": target}
        self.env.written(self.charger.id, what, ((ours[0], ours[1]), (theirs[0], theirs[1])))
        return self.limits.set_profile(target, data)

    def remote_start(self, target: int | None) -> bool:
        """Start a transaction at a connector with an EV and none running."""
        candidates = [c for c in self.connectors if target in (None, 0, c.id)]
        for connector in candidates:
            if self.env.ev(connector.slot) is not None and connector.tx_id is None:
                connector.stopped = False
                self._start_tx(connector)
                return True
        return False

    def remote_stop(self, tx_id: str) -> bool:
        """Stop the transaction with this id; its EV stays plugged, offered nothing."""
        for connector in self.connectors:
            if connector.tx_id is not None and connector.tx_id == tx_id:
                connector.stopped = True
                self._queue.put_nowait(self._stop_tx(connector, "Remote"))
                return True
        return False

    def set_available(self, target: int, available: bool) -> bool:
        """ChangeAvailability: one connector, or all (0)."""
        chosen = [c for c in self.connectors if target in (0, c.id)]
        for connector in chosen:
            connector.available = available
        return bool(chosen)

    def trigger(self, message: str, target: int | None) -> bool:
        """TriggerMessage for the messages the station knows."""
        chosen = [c for c in self.connectors if target in (None, 0, c.id)]
        if message == "BootNotification":
            self._queue.put_nowait(self._triggered_boot())
        elif message == "Heartbeat":
            self._queue.put_nowait(self._heartbeat())
        elif message == "StatusNotification":
            for connector in chosen:
                self._queue.put_nowait(self._send_status(connector, self._status(connector)[0]))
        elif message == "MeterValues":
            for connector in chosen:
                if connector.tx_id is not None:
                    self._queue.put_nowait(self._meter_values(connector))
        else:
            return False
        return True

    def network_profile(self, slot: int, url: str) -> str:
        """SetNetworkProfile (2.0.1): the slot's CSMS URL, used from the next connection."""
        if self.v16 or slot < 1:
            return "Rejected"
        self.network_profiles[slot] = url
        return "Accepted"

    def configuration(self) -> dict[str, tuple[str, bool]]:
        """Configuration keys (1.6) and variables (2.0.1, by variable name): value and
        whether read-only."""
        p = self.personality
        fixed_interval = p.meter_values_s is not None
        measurands = ",".join(p.measurands or self.measurands or (ENERGY,))
        interval = f"{self.meter_values_s:g}"
        switch = str(p.phase_switch_pause_s is not None).lower()
        priority = ",".join(str(slot) for slot in self.network_priority)
        limits: dict[str, tuple[str, bool]] = {}
        if p.max_profiles is not None:
            limits |= {"MaxChargingProfilesInstalled": (str(p.max_profiles), True)}
            limits |= {"Entries": (str(p.max_profiles), True)}
        if p.max_periods is not None:
            limits |= {"ChargingScheduleMaxPeriods": (str(p.max_periods), True)}
            limits |= {"PeriodsPerSchedule": (str(p.max_periods), True)}
        return (
            limits
            | ({} if self.v16 else {"NetworkConfigurationPriority": (priority, False)})
            | {
                "HeartbeatInterval": (f"{self.heartbeat_s:g}", False),
                "MeterValueSampleInterval": (interval, fixed_interval),
                "MeterValuesSampledData": (measurands, p.measurands is not None),
                "NumberOfConnectors": (str(len(self.connectors)), True),
                "ChargeProfileMaxStackLevel": (str(p.max_stack_level), True),
                "ChargingScheduleAllowedChargingRateUnit": (p.reported_units, True),
                "ConnectorSwitch3to1PhaseSupported": (switch, True),
                "RateUnit": (",".join(p.rate_units), True),
                "ProfileStackLevel": (str(p.max_stack_level), True),
                "Phases3to1": (switch, True),
                "DateTime": (timestamp(self.now()), True),
                "TxUpdatedInterval": (interval, fixed_interval),
                "TxUpdatedMeasurands": (measurands, p.measurands is not None),
            }
            | {name: (value, False) for name, value in self.offline_authorization.items()}
        )

    def configure(self, key: str, value: str) -> str:
        """Accepted, Rejected (read-only or bad value) or NotSupported (unknown key)."""
        known = self.configuration()
        if key not in known:
            return "NotSupported"
        if known[key][1]:
            return "Rejected"
        if key == "NetworkConfigurationPriority":
            slots = [int(s) for s in value.split(",") if s.strip().isdigit()]
            if not slots or any(slot not in self.network_profiles for slot in slots):
                return "Rejected"
            self.network_priority = slots
            return "Accepted"
        if key in ("MeterValuesSampledData", "TxUpdatedMeasurands"):
            self.measurands = tuple(m.strip() for m in value.split(",") if m.strip())
            return "Accepted"
        if (answer := set_boolean(self.offline_authorization, key, value)) is not None:
            return answer
        try:
            number = float(value)
        except ValueError:
            return "Rejected"
        if number <= 0:
            return "Rejected"
        if key == "HeartbeatInterval":
            self.heartbeat_s = number
        else:
            self.meter_values_s = number
            self._next_meter_values = min(self._next_meter_values, self.env.clock() + number)
        return "Accepted"

    def reset(self) -> None:
        """Reboot: close the connection and boot again (after the answer to Reset went out)."""
        self._reboot = self._rebooted = True
        self._wake()

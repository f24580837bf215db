"""Independent charge points for the tests: the `ocpp` package's asyncio ChargePoint
over the `websockets` library, each in its own thread with its own event loop."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from types import ModuleType
from typing import Any, TypeVar

import websockets
from ocpp.routing import after, on
from ocpp.v16 import ChargePoint as ChargePoint16
from ocpp.v16 import call as call16
from ocpp.v16 import call_result as result16
from ocpp.v21 import ChargePoint as ChargePoint21
from ocpp.v21 import call_result as result21
from ocpp.v201 import ChargePoint as ChargePoint201
from ocpp.v201 import call_result as result201


def _text(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def now_text(offset_s: float = 0.0) -> str:
    """An OCPP timestamp `offset_s` from now."""
    return _text(datetime.now(UTC) + timedelta(seconds=offset_s))


def _moment(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text.replace("Z", "+00:00"))


def _schedule(profile: dict[str, Any]) -> dict[str, Any]:
    schedule = profile["charging_schedule"]
    return schedule[0] if isinstance(schedule, list) else schedule


def _start(profile: dict[str, Any], origin: datetime | None) -> datetime | None:
    """Where a profile's periods count from: its startSchedule, or a Relative one's
    transaction start (`origin`; 1.6 §3.13.2), None: from any moment asked (no transaction)."""
    start = _moment(_schedule(profile).get("start_schedule"))
    return origin if start is None and profile["charging_profile_kind"] == "Relative" else start


def limit_at(
    profiles: list[dict[str, Any]],
    moment: datetime,
    *,
    ignore_valid_to: bool = False,
    origin: datetime | None = None,
) -> float | None:
    """What a charger applies at `moment` (OCPP 1.6 §3.13): per purpose the profile of the
    highest stack level that is valid and whose schedule has started, its period at that
    time; the smallest over the purposes. None: no profile applies. `origin`: the start of
    the transaction a Relative schedule counts from."""
    best: dict[str, tuple[int, float]] = {}
    for profile in profiles:
        valid_to = _moment(profile.get("valid_to"))
        if valid_to is not None and valid_to <= moment and not ignore_valid_to:
            continue
        schedule = _schedule(profile)
        start = _start(profile, origin) or moment
        offset = (moment - start).total_seconds()
        periods = [p for p in schedule["charging_schedule_period"] if p["start_period"] <= offset]
        if offset < 0 or not periods:
            continue
        limit = float(max(periods, key=lambda p: p["start_period"])["limit"])
        purpose, level = profile["charging_profile_purpose"], profile["stack_level"]
        if purpose not in best or level >= best[purpose][0]:
            best[purpose] = (level, limit)
    return min(limit for _, limit in best.values()) if best else None


def composite_periods(
    profiles: list[dict[str, Any]], start: datetime, duration_s: int, **kwargs: Any
) -> list[dict[str, float]]:
    """The composite schedule from `start` for `duration_s`: a period at every moment a
    profile starts, ends or changes period, merged where the limit stays the same."""
    moments = {0.0}
    for profile in profiles:
        schedule = _schedule(profile)
        begin = _start(profile, kwargs.get("origin"))
        edges = [_moment(profile.get("valid_to"))]
        if begin is not None:
            edges += [
                begin + timedelta(seconds=p["start_period"])
                for p in schedule["charging_schedule_period"]
            ]
        moments |= {
            (edge - start).total_seconds()
            for edge in edges
            if edge is not None and 0 < (edge - start).total_seconds() < duration_s
        }
    periods: list[dict[str, float]] = []
    for offset in sorted(moments):
        limit = limit_at(profiles, start + timedelta(seconds=offset), **kwargs)
        if limit is not None and (not periods or periods[-1]["limit"] != limit):
            periods.append({"start_period": int(offset), "limit": limit})
    return periods


@dataclass
class Quirks:
    """How a peer charger departs from the book (the personalities' tests cite the reports)."""

    rate_units: tuple[str, ...] = ("A",)
    """The units its profiles may use."""
    reported_units: tuple[str, ...] | None = None
    """The units it says it takes (None: `rate_units`)."""
    max_stack_level: int | None = 8
    """Profiles above it are rejected; None: it does not say (key unknown)."""
    ignore_valid_to: bool = False
    ignore_profiles: bool = False
    """Answers Accepted and keeps what it had."""
    default_limit: float | None = None
    """The composite schedule's limit without any profile (None: it answers Rejected)."""
    clock_offset_s: float = 0.0
    """Its clock minus the true time."""
    measurands: frozenset[str] | None = None
    """The measurands it can sample (None: any)."""
    fixed_interval: bool = False
    """It rejects a new sample interval."""
    rejected_purposes: set[str] = field(default_factory=set)
    max_profiles: int = 8
    """MaxChargingProfilesInstalled: a profile that would be one more is rejected."""
    sends_triggered: bool = False
    """Sends the MeterValues a TriggerMessage asks for (1.6), stamped on its clock."""


V16_UNITS = {"A": "Current", "W": "Power"}
ANSWER_HELD_S = 10.0
"""The longest a held answer waits (`answering`)."""


class _Recorder:
    """What the charger was told, and how it answers profiles; `results` is the
    version's `call_result` module."""

    results: ModuleType

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.received: list[tuple[str, dict[str, Any]]] = []
        self._arrived = threading.Condition()
        self.profiles: list[dict[str, Any]] = []
        self.quirks = Quirks()
        self.settings: dict[str, str] = {}
        self.answering = threading.Event()
        """Cleared: SetChargingProfile calls are recorded, their answers wait until it is set."""
        self.answering.set()
        self.transaction_started: datetime | None = None
        """When its transaction started, on its clock (its test's to set when it starts one)."""
        self.composites_asked = 0
        """GetCompositeSchedule calls answered."""

    @property
    def rejected_purposes(self) -> set[str]:
        return self.quirks.rejected_purposes

    @property
    def ignore_profiles(self) -> bool:
        return self.quirks.ignore_profiles

    @ignore_profiles.setter
    def ignore_profiles(self, value: bool) -> None:
        self.quirks.ignore_profiles = value

    def now(self) -> datetime:
        """Its clock."""
        return datetime.now(UTC) + timedelta(seconds=self.quirks.clock_offset_s)

    def _record(self, action: str, payload: dict[str, Any]) -> None:
        with self._arrived:
            self.received.append((action, payload))
            self._arrived.notify_all()

    def wait_received(self, action: str, count: int, timeout: float = 10.0) -> list[dict[str, Any]]:
        """Block until `count` calls of `action` arrived; their payloads."""

        def payloads() -> list[dict[str, Any]]:
            return [p for a, p in self.received if a == action]

        with self._arrived:
            if not self._arrived.wait_for(lambda: len(payloads()) >= count, timeout):
                raise TimeoutError(f"{action}: {len(payloads())} of {count} arrived")
            return payloads()

    def _store_profile(self, profile: dict[str, Any]) -> str:
        self.answering.wait(ANSWER_HELD_S)
        quirks = self.quirks
        if profile["charging_profile_purpose"] in quirks.rejected_purposes:
            return "Rejected"
        if quirks.max_stack_level is not None and profile["stack_level"] > quirks.max_stack_level:
            return "Rejected"
        if _schedule(profile)["charging_rate_unit"] not in quirks.rate_units:
            return "Rejected"
        if quirks.ignore_profiles:
            return "Accepted"
        key = profile.get("id", profile.get("charging_profile_id"))
        same = (profile["charging_profile_purpose"], profile["stack_level"])
        kept = [
            p
            for p in self.profiles
            if p.get("id", p.get("charging_profile_id")) != key
            and (p["charging_profile_purpose"], p["stack_level"]) != same
        ]
        if len(kept) >= quirks.max_profiles:
            return "Rejected"
        self.profiles = [*kept, profile]
        return "Accepted"

    def _composite(self, duration: int, unit: str | None) -> dict[str, Any] | None:
        """The composite schedule from its now, in the unit of its profiles."""
        now = self.now()
        periods = composite_periods(
            self.profiles,
            now,
            duration,
            ignore_valid_to=self.quirks.ignore_valid_to,
            origin=self.transaction_started,
        )
        if not periods and self.quirks.default_limit is None:
            return None
        if not periods:
            periods = [{"start_period": 0, "limit": self.quirks.default_limit}]
        units = {_schedule(p)["charging_rate_unit"] for p in self.profiles}
        return {
            "duration": duration,
            "charging_rate_unit": units.pop() if len(units) == 1 else unit or "A",
            "charging_schedule_period": periods,
        }

    def _configure(self, name: str, value: str) -> str:
        """Accepted or Rejected, as its quirks say."""
        quirks = self.quirks
        if name.endswith(("MeterValuesSampledData", "TxUpdatedMeasurands")):
            wanted = set(value.split(","))
            if quirks.measurands is not None and not wanted <= quirks.measurands:
                return "Rejected"
        elif name.endswith(("MeterValueSampleInterval", "TxUpdatedInterval")) and (
            quirks.fixed_interval
        ):
            return "Rejected"
        self.settings[name] = value
        return "Accepted"


_Peer = TypeVar("_Peer", bound=_Recorder)


def accepting(*actions: str) -> Callable[[type[_Peer]], type[_Peer]]:
    """Class decorator: for each action a handler that records the call and answers
    `status="Accepted"`."""

    def handler_of(action: str) -> Any:
        def handler(self: _Recorder, **kw: Any) -> Any:
            self._record(action, kw)
            return getattr(self.results, action)(status="Accepted")

        handler.__name__ = f"on_{action}"  # the `ocpp` package routes by method name
        return on(action)(handler)

    def add(cls: type[_Peer]) -> type[_Peer]:
        for action in actions:
            setattr(cls, f"on_{action}", handler_of(action))
        return cls

    return add


class _Profiles2(_Recorder):
    """SetChargingProfile and GetCompositeSchedule as 2.0.1 and 2.1 have them."""

    @on("SetChargingProfile")
    def set_charging_profile(
        self, evse_id: int, charging_profile: dict[str, Any], **kw: Any
    ) -> Any:
        self._record("SetChargingProfile", charging_profile)
        return self.results.SetChargingProfile(status=self._store_profile(charging_profile))

    @on("GetCompositeSchedule")
    def get_composite_schedule(self, duration: int, evse_id: int, **kw: Any) -> Any:
        self.composites_asked += 1
        schedule = self._composite(duration, kw.get("charging_rate_unit"))
        if schedule is None:
            return self.results.GetCompositeSchedule(status="Rejected")
        schedule |= {"evse_id": evse_id, "schedule_start": _text(self.now())}
        return self.results.GetCompositeSchedule(status="Accepted", schedule=schedule)


@accepting(
    "RemoteStartTransaction",
    "RemoteStopTransaction",
    "Reset",
    "ChangeAvailability",
    "TriggerMessage",
)
class Cp16(_Recorder, ChargePoint16):
    """A 1.6 charge point that accepts every operation and records it."""

    results = result16

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._tasks: set[asyncio.Task[Any]] = set()

    def configuration(self) -> dict[str, str]:
        """Its 1.6 configuration keys and their values."""
        quirks = self.quirks
        keys = {
            "ChargingScheduleAllowedChargingRateUnit": ",".join(
                V16_UNITS[u] for u in quirks.reported_units or quirks.rate_units
            ),
            "MaxChargingProfilesInstalled": str(quirks.max_profiles),
            "ChargingScheduleMaxPeriods": "24",
            "ConnectorSwitch3to1PhaseSupported": "false",
            "MeterValuesSampledData": "Energy.Active.Import.Register",
            "MeterValueSampleInterval": "60",
        }
        if quirks.max_stack_level is not None:
            keys["ChargeProfileMaxStackLevel"] = str(quirks.max_stack_level)
        return keys | self.settings

    @on("GetConfiguration")
    def get_configuration(self, **kw: Any) -> Any:
        self._record("GetConfiguration", kw)
        known = self.configuration()
        wanted = kw.get("key") or list(known)
        return result16.GetConfiguration(
            configuration_key=[
                {"key": k, "readonly": False, "value": known[k]} for k in wanted if k in known
            ],
            unknown_key=[k for k in wanted if k not in known],
        )

    @after("TriggerMessage")
    def after_trigger_message(self, requested_message: str, **kw: Any) -> None:
        """With `Quirks.sends_triggered`: the MeterValues asked for, from a task (a call
        awaited here would wait for an answer this handler holds up)."""
        if self.quirks.sends_triggered and requested_message == "MeterValues":
            sample = {"timestamp": _text(self.now()), "sampledValue": [{"value": "0"}]}
            request = call16.MeterValues(
                connector_id=kw.get("connector_id") or 1, meter_value=[sample]
            )
            task = asyncio.get_running_loop().create_task(self.call(request))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    @on("ChangeConfiguration")
    def change_configuration(self, key: str, value: str) -> Any:
        self._record("ChangeConfiguration", {"key": key, "value": value})
        return result16.ChangeConfiguration(status=self._configure(key, value))

    @on("SetChargingProfile")
    def set_charging_profile(self, connector_id: int, cs_charging_profiles: dict[str, Any]) -> Any:
        self._record("SetChargingProfile", cs_charging_profiles)
        return result16.SetChargingProfile(status=self._store_profile(cs_charging_profiles))

    @on("ClearChargingProfile")
    def clear_charging_profile(self, **kw: Any) -> Any:
        self._record("ClearChargingProfile", kw)
        self.profiles = [p for p in self.profiles if p["charging_profile_id"] != kw.get("id")]
        return result16.ClearChargingProfile(status="Accepted")

    @on("GetCompositeSchedule")
    def get_composite_schedule(self, connector_id: int, duration: int, **kw: Any) -> Any:
        self.composites_asked += 1
        schedule = self._composite(duration, kw.get("charging_rate_unit"))
        if schedule is None:
            return result16.GetCompositeSchedule(status="Rejected")
        return result16.GetCompositeSchedule(
            status="Accepted",
            connector_id=connector_id,
            schedule_start=_text(self.now()),
            charging_schedule=schedule,
        )


@accepting(
    "RequestStopTransaction",
    "Reset",
    "ChangeAvailability",
    "TriggerMessage",
    "ClearChargingProfile",
)
class Cp201(_Profiles2, ChargePoint201):
    """A 2.0.1 charging station that accepts every operation and records it."""

    results = result201

    @on("RequestStartTransaction")
    def request_start(self, **kw: Any) -> Any:
        self._record("RequestStartTransaction", kw)
        return result201.RequestStartTransaction(status="Accepted", transaction_id="tx-remote")

    def variables(self) -> dict[str, str]:
        """Its 2.0.1 variables (`Component.Variable`) and their values."""
        quirks = self.quirks
        values = {
            "SmartChargingCtrlr.RateUnit": ",".join(quirks.reported_units or quirks.rate_units),
            "SmartChargingCtrlr.Entries": str(quirks.max_profiles),
            "SmartChargingCtrlr.PeriodsPerSchedule": "24",
            "SmartChargingCtrlr.Phases3to1": "false",
            "ClockCtrlr.DateTime": _text(self.now()),
            "SampledDataCtrlr.TxUpdatedMeasurands": "Energy.Active.Import.Register",
            "SampledDataCtrlr.TxUpdatedInterval": "60",
        }
        if quirks.max_stack_level is not None:
            values["SmartChargingCtrlr.ProfileStackLevel"] = str(quirks.max_stack_level)
        return values | self.settings

    @on("GetVariables")
    def get_variables(self, get_variable_data: list[dict[str, Any]], **kw: Any) -> Any:
        self._record("GetVariables", {"get_variable_data": get_variable_data})
        known = self.variables()
        results = []
        for item in get_variable_data:
            name = f"{item['component']['name']}.{item['variable']['name']}"
            answer = {"component": item["component"], "variable": item["variable"]}
            if name in known:
                answer |= {"attribute_status": "Accepted", "attribute_value": known[name]}
            else:
                answer |= {"attribute_status": "UnknownVariable"}
            results.append(answer)
        return result201.GetVariables(get_variable_result=results)

    @on("SetVariables")
    def set_variables(self, set_variable_data: list[dict[str, Any]], **kw: Any) -> Any:
        self._record("SetVariables", {"set_variable_data": set_variable_data})
        results = [
            {
                "attribute_status": self._configure(
                    f"{item['component']['name']}.{item['variable']['name']}",
                    item["attribute_value"],
                ),
                "component": item["component"],
                "variable": item["variable"],
            }
            for item in set_variable_data
        ]
        return result201.SetVariables(set_variable_result=results)


class Cp21(_Profiles2, ChargePoint21):
    """A 2.1 charging station taking charging profiles; it handles nothing else."""

    results = result21


class ChargePointThread:
    """Runs one charge point in a thread; its blocking methods are for `trio.to_thread`."""

    def __init__(
        self,
        factory: Callable[[str, Any], Any],
        url: str,
        *,
        subprotocols: list[str],
        headers: dict[str, str] | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.identity = url.rsplit("/", 1)[-1]
        self._factory = factory
        self._url = url
        self._subprotocols = subprotocols
        self._headers = headers
        self._ssl = ssl_context
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ws: Any = None
        self.cp: Any = None
        self.error: BaseException | None = None
        self.subprotocol: str | None = None
        self._thread = threading.Thread(target=asyncio.run, args=(self._main(),), daemon=True)

    async def _main(self) -> None:
        try:
            async with websockets.connect(
                self._url,
                subprotocols=self._subprotocols,  # type: ignore[arg-type]
                additional_headers=self._headers,
                ssl=self._ssl,
                open_timeout=5,
                proxy=None,
            ) as ws:
                self._ws = ws
                self.subprotocol = ws.subprotocol
                self.cp = self._factory(self.identity, ws)
                self._loop = asyncio.get_running_loop()
                self._ready.set()
                with contextlib.suppress(websockets.ConnectionClosed):
                    await self.cp.start()
        except BaseException as exc:
            self.error = exc
        finally:
            self._ready.set()

    def start(self) -> ChargePointThread:
        """Connect (blocking); raises what the connection attempt raised."""
        self._thread.start()
        self._ready.wait(10)
        if self.error is not None:
            raise self.error
        return self

    def call(self, payload: Any, timeout: float = 5.0, unique_id: str | None = None) -> Any:
        """Send a call (with a chosen message id) and wait for the result (blocking)."""
        assert self._loop is not None
        future = asyncio.run_coroutine_threadsafe(
            self.cp.call(payload, suppress=False, unique_id=unique_id), self._loop
        )
        return future.result(timeout)

    def stop(self) -> None:
        """Close the connection and join the thread."""
        closing = None
        try:
            if self._loop is not None and self._thread.is_alive():
                closing = self._ws.close()
                asyncio.run_coroutine_threadsafe(closing, self._loop).result(5)
        finally:
            self._thread.join(5)
            if closing is not None and not self._thread.is_alive():
                closing.close()  # not run if the loop ended first: no "never awaited" later

    def wait_closed(self, timeout: float) -> None:
        """Block until the connection has ended (closed by the other side)."""
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise TimeoutError(f"{self.identity}: still connected")

    @property
    def alive(self) -> bool:
        """Whether the connection is still up."""
        return self._thread.is_alive()

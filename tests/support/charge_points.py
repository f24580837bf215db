"""Independent charge points for the tests: the `ocpp` package's asyncio ChargePoint
over the `websockets` library, each in its own thread with its own event loop."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from types import ModuleType
from typing import Any, TypeVar

import websockets
from ocpp.routing import on
from ocpp.v16 import ChargePoint as ChargePoint16
from ocpp.v16 import call_result as result16
from ocpp.v21 import ChargePoint as ChargePoint21
from ocpp.v21 import call_result as result21
from ocpp.v201 import ChargePoint as ChargePoint201
from ocpp.v201 import call_result as result201


def now_text(offset_s: float = 0.0) -> str:
    """An OCPP timestamp `offset_s` from now."""
    moment = datetime.now(UTC) + timedelta(seconds=offset_s)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def composite_limit(profiles: list[dict[str, Any]], now: datetime) -> float | None:
    """What a charger would apply: per purpose the highest valid stack level, then the minimum."""
    best: dict[str, dict[str, Any]] = {}
    for profile in profiles:
        valid_to = profile.get("valid_to")
        if valid_to is not None and datetime.fromisoformat(valid_to) <= now:
            continue
        purpose = profile["charging_profile_purpose"]
        if purpose not in best or profile["stack_level"] >= best[purpose]["stack_level"]:
            best[purpose] = profile
    limits = []
    for profile in best.values():
        schedule = profile["charging_schedule"]
        schedule = schedule[0] if isinstance(schedule, list) else schedule
        limits.append(float(schedule["charging_schedule_period"][0]["limit"]))
    return min(limits) if limits else None


class _Recorder:
    """What the charger was told, and how it answers profiles; `results` is the
    version's `call_result` module."""

    results: ModuleType

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.received: list[tuple[str, dict[str, Any]]] = []
        self._arrived = threading.Condition()
        self.profiles: list[dict[str, Any]] = []
        self.rejected_purposes: set[str] = set()
        self.ignore_profiles = False  # answers Accepted but keeps what it had

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
        if profile["charging_profile_purpose"] in self.rejected_purposes:
            return "Rejected"
        if self.ignore_profiles:
            return "Accepted"
        key = profile.get("id", profile.get("charging_profile_id"))
        self.profiles = [
            p for p in self.profiles if p.get("id", p.get("charging_profile_id")) != key
        ]
        self.profiles.append(profile)
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
        limit = composite_limit(self.profiles, datetime.now(UTC))
        if limit is None:
            return self.results.GetCompositeSchedule(status="Rejected")
        schedule = {
            "evse_id": evse_id,
            "duration": duration,
            "schedule_start": now_text(),
            "charging_rate_unit": kw.get("charging_rate_unit", "A"),
            "charging_schedule_period": [{"start_period": 0, "limit": limit}],
        }
        return self.results.GetCompositeSchedule(status="Accepted", schedule=schedule)


@accepting(
    "RemoteStartTransaction",
    "RemoteStopTransaction",
    "Reset",
    "ChangeAvailability",
    "ChangeConfiguration",
    "TriggerMessage",
)
class Cp16(_Recorder, ChargePoint16):
    """A 1.6 charge point that accepts every operation and records it."""

    results = result16

    @on("GetConfiguration")
    def get_configuration(self, **kw: Any) -> Any:
        self._record("GetConfiguration", kw)
        keys = [
            {"key": "ChargingScheduleAllowedChargingRateUnit", "readonly": True, "value": "Current"}
        ]
        return result16.GetConfiguration(configuration_key=keys, unknown_key=[])

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
        limit = composite_limit(self.profiles, datetime.now(UTC))
        if limit is None:
            return result16.GetCompositeSchedule(status="Rejected")
        schedule = {
            "duration": duration,
            "charging_rate_unit": kw.get("charging_rate_unit", "A"),
            "charging_schedule_period": [{"start_period": 0, "limit": limit}],
        }
        return result16.GetCompositeSchedule(
            status="Accepted",
            connector_id=connector_id,
            schedule_start=now_text(),
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

    @on("GetVariables")
    def get_variables(self, get_variable_data: list[dict[str, Any]], **kw: Any) -> Any:
        self._record("GetVariables", {"get_variable_data": get_variable_data})
        results = [
            {
                "attribute_status": "Accepted",
                "attribute_value": "A,W",
                "component": item["component"],
                "variable": item["variable"],
            }
            for item in get_variable_data
        ]
        return result201.GetVariables(get_variable_result=results)

    @on("SetVariables")
    def set_variables(self, set_variable_data: list[dict[str, Any]], **kw: Any) -> Any:
        self._record("SetVariables", {"set_variable_data": set_variable_data})
        results = [
            {
                "attribute_status": "Accepted",
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
        if self._loop is not None and self._thread.is_alive():
            asyncio.run_coroutine_threadsafe(self._ws.close(), self._loop).result(5)
        self._thread.join(5)

    def wait_closed(self, timeout: float) -> None:
        """Block until the connection has ended (closed by the other side)."""
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise TimeoutError(f"{self.identity}: still connected")

    @property
    def alive(self) -> bool:
        """Whether the connection is still up."""
        return self._thread.is_alive()

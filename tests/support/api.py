"""Helpers of the API tests: a recording `Commands`, snapshots of the small site, a served API."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import h11
import httpx
import trio

from hubgate.api import ApiContext, serve_api
from hubgate.config.loader import load_site
from hubgate.config.model import SiteConfig
from hubgate.config.services import Api
from hubgate.control.commands import CommandRejectedError
from hubgate.control.deadlines import SocTarget
from hubgate.control.decisions import DecisionLog, DecisionRecord, GridSample, Phases3
from hubgate.control.limits import LimitBook
from hubgate.control.prices import PriceSeries
from hubgate.control.schedules import ScheduleBook
from hubgate.state import (
    DeviceHealth,
    Event,
    EventCategory,
    EventLevel,
    SessionView,
    SiteState,
    StateHub,
)
from tests.support.states import connector, node, site_state

TOKEN = "test-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@dataclass
class RecordingCommands:
    """Our `Commands` protocol, recording each call; refuses all when `refuse` is set."""

    calls: list[tuple[str, ...]] = field(default_factory=list)
    refuse: str | None = None

    def _record(self, *call: str) -> None:
        if self.refuse is not None:
            raise CommandRejectedError(self.refuse)
        self.calls.append(call)

    async def set_priority(self, connector: str, priority: int) -> None:
        self._record("priority", connector, str(priority))

    async def start_charging(self, connector: str, id_tag: str | None) -> None:
        self._record("start", connector, str(id_tag))

    async def stop_charging(self, connector: str) -> None:
        self._record("stop", connector)

    async def set_pv_mode(self, connector: str, pv_mode: bool) -> None:
        self._record("pv-mode", connector, str(pv_mode))

    async def set_session(
        self,
        connector: str,
        energy_kwh: float | None,
        departure: datetime | None,
        *,
        max_current_a: float | None = None,
        target: SocTarget | None = None,
    ) -> None:
        told = () if max_current_a is None else (f"max {max_current_a:g} A",)
        if target is not None:
            told += (f"to {target.soc_percent:g} % of {target.battery_wh:g} Wh",)
        self._record("session", connector, str(energy_kwh), str(departure), *told)


def small_site(examples: Path, api: Api) -> SiteConfig:
    """The small example site with its API on port 0."""
    return load_site(examples / "sites" / "small-4.toml").model_copy(update={"api": api})


def grid_decision(
    cycle: int, measured_a: Phases3, limit_a: Phases3, limit_kw: float, source: str
) -> DecisionRecord:
    """A decision record of the small site at `cycle` with only its grid sample (48/32/32 A
    commanded, at wall time 1,700,000,000 s + `cycle`)."""
    return DecisionRecord(
        cycle=cycle,
        at=float(cycle),
        inputs={},
        connectors=(),
        grid=GridSample(
            wall_time=1_700_000_000.0 + cycle,
            measured_a=measured_a,
            commanded_a=(48.0, 32.0, 32.0),
            limit_a=limit_a,
            limit_kw=limit_kw,
            source=source,
        ),
    )


def snapshot(cycle: int, grid_a: tuple[float, float, float] = (40.0, 35.0, 30.0)) -> SiteState:
    """A plausible snapshot of the small site at `cycle`."""
    grid = node(
        "grid",
        measured_a=grid_a,
        commanded_a=(48.0, 32.0, 32.0),
        limit_a=(78.0, 78.0, 78.0),
        power_limit_kw=50.0,
        limit_sources=("config",),
        meter_health="ok",
    )
    board = node(
        "board",
        parent="grid",
        commanded_a=(32.0, 16.0, 16.0),
        limit_a=(63.0, 63.0, 63.0),
        limit_sources=("config",),
    )
    connectors = (
        connector(
            "cp-1#1",
            node="board",
            measured_a=(15.8, 15.9, 15.7),
            power_kw=10.9,
            reason="fair share",
            binding="board/L1",
            session=SessionView(
                energy_kwh=12.5,
                needed_kwh=40.0,
                departure=datetime(2026, 3, 2, 4, 30, tzinfo=UTC),
                source="api",
                shortfall_kwh=3.2,
                at_risk=True,
                ev_max_a=16.0,
            ),
        ),
        connector("cp-2#1", node="board", phases=1, reason="fair share", binding="board/L1"),
        connector(
            "wb-1#1",
            node="board",
            protocol="modbus",
            status="A",
            setpoint_a=0.0,
            reason="no vehicle",
        ),
        connector("wb-2#1", protocol="modbus", status="C", priority=1, reason="max current"),
    )
    devices = (
        DeviceHealth(
            id="grid-meter",
            kind="meter",
            protocol="modbus-tcp",
            reachable=True,
            last_ok_age_s=0.2,
            requests=100 * cycle,
            errors=1,
            latency_p50_ms=2.5,
            latency_p99_ms=9.0,
        ),
        DeviceHealth(id="wb-2", kind="charger", protocol="modbus-rtu", reachable=False, errors=3),
    )
    events = (
        Event(
            id=1,
            at=1_700_000_000.0,
            severity=EventLevel.WARNING,
            category=EventCategory.DEVICE,
            subject="wb-2",
            message="no answer",
        ),
        Event(
            id=2,
            at=1_700_000_001.0,
            severity=EventLevel.INFO,
            category=EventCategory.DEVICE,
            subject="cp-1",
            message="connected",
        ),
    )
    return site_state(
        site="Small car park",
        cycle=cycle,
        at=1_700_000_000.0 + cycle,
        cycle_time_ms=4.2,
        nodes=(grid, board),
        connectors=connectors,
        devices=devices,
        events=events,
    )


@dataclass
class RunningApi:
    """A served API and what it serves."""

    ctx: ApiContext
    commands: RecordingCommands
    client: httpx.AsyncClient

    @property
    def url(self) -> str:
        return str(self.client.base_url)


async def start_api(
    nursery: trio.Nursery,
    site: SiteConfig,
    wall_clock: float = 1_700_000_010.0,
    schedules: ScheduleBook | None = None,
    prices: PriceSeries | None = None,
) -> RunningApi:
    """Serve an API for `site` on a free port and return a client for it."""
    commands = RecordingCommands()
    ctx = ApiContext(
        site=site,
        hub=StateHub(),
        limits=LimitBook(),
        decisions=DecisionLog(size=100),
        commands=commands,
        wall_clock=lambda: wall_clock,
        schedules=schedules,
        prices=prices,
    )
    with trio.fail_after(10):
        port = await nursery.start(serve_api, ctx)
    client = httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10)
    return RunningApi(ctx, commands, client)


async def read_events(
    port: int, path: str, count: int, on_event: Callable[[int], None]
) -> list[dict[str, str]]:
    """The first `count` server-sent events of `path`, read with h11 over a plain TCP stream.

    `on_event(n)` runs after the n-th event (1-based), e.g. to publish the next snapshot.
    """
    connection = h11.Connection(h11.CLIENT)
    events: list[dict[str, str]] = []
    buffer = ""
    async with await trio.open_tcp_stream("127.0.0.1", port) as stream:
        request = h11.Request(
            method="GET",
            target=path,
            headers=[("Host", "127.0.0.1"), ("Accept", "text/event-stream")],
        )
        await stream.send_all(connection.send(request) + connection.send(h11.EndOfMessage()))
        while len(events) < count:
            event = connection.next_event()
            if event is h11.NEED_DATA:
                connection.receive_data(await stream.receive_some())
            elif isinstance(event, h11.Response):
                assert event.status_code == 200, event
                assert dict(event.headers)[b"content-type"].startswith(b"text/event-stream")
            elif isinstance(event, h11.Data):
                buffer += bytes(event.data).decode()
                while "\n\n" in buffer and len(events) < count:
                    block, buffer = buffer.split("\n\n", 1)
                    fields = dict(line.split(": ", 1) for line in block.split("\n"))
                    if "data" in fields:  # not a keep-alive comment
                        events.append(fields)
                        on_event(len(events))
            else:
                raise AssertionError(f"stream ended early: {event!r}")
    return events

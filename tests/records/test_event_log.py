"""The operator's event log: bursts of one kind become one event naming where they are,
single events pass as they came, everything is logged and streamed; a 200-device outage
under the real cycle planner is one warning and its end one info event."""

from __future__ import annotations

import logging
import tomllib

import pytest
import trio
import trio.testing

from hubgate.config.model import SiteConfig
from hubgate.control.cycle import Failed
from hubgate.control.limits import LimitBook
from hubgate.control.plan import CyclePlanner
from hubgate.devices.model import Reading
from hubgate.profiles.model import IecState, Quantity
from hubgate.records.events import Burst, EventLog
from hubgate.records.store import EventQuery
from hubgate.state import Event, EventCategory, EventLevel
from tests.support.toml_tables import meter, modbus, modbus_charger

LOST = "{n} devices unreachable"


class Clock:
    """Monotonic time the test moves."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def log_at(clock: Clock) -> EventLog:
    return EventLog(clock=clock, wall_clock=lambda: 1_700_000_000.0 + clock.now)


def lost(log: EventLog, name: str, path: tuple[str, ...]) -> None:
    log.emit(
        EventLevel.WARNING,
        name,
        "unreachable (no answer)",
        category=EventCategory.DEVICE,
        burst=Burst("device-lost", LOST, path),
    )


def stored(log: EventLog) -> list[Event]:
    return log.query(EventQuery(limit=1000))


def test_a_burst_is_one_event_on_the_deepest_shared_node() -> None:
    clock = Clock()
    log = log_at(clock)
    for i in range(34):
        lost(log, f"cp-{i}#1", ("feeder-3", "tr1", "grid"))
        clock.now += 0.1
    lost(log, "meter:feeder-3", ("feeder-3", "tr1", "grid"))
    clock.now += 4.9
    log.tick()
    assert stored(log) == []  # still coming in: not yet
    clock.now += 0.2
    log.tick()
    (event,) = stored(log)
    assert (event.subject, event.message) == ("feeder-3", "35 devices unreachable on feeder-3")
    assert event.severity is EventLevel.WARNING
    assert event.category is EventCategory.DEVICE
    assert event.members[:2] == ("cp-0#1", "cp-1#1")
    assert len(event.members) == 35
    assert event.until is not None
    assert event.until - event.at == pytest.approx(3.4)


def test_one_alone_is_logged_as_it_came_and_plain_events_at_once() -> None:
    clock = Clock()
    log = log_at(clock)
    lost(log, "cp-7#1", ("feeder-1", "grid"))
    log.emit(EventLevel.INFO, "site", "configuration loaded", category=EventCategory.CONFIG)
    assert [e.subject for e in stored(log)] == ["site"]
    clock.now += 5
    log.tick()
    (_, single) = stored(log)
    assert (single.subject, single.message, single.members) == (
        "cp-7#1",
        "unreachable (no answer)",
        (),
    )


def test_members_on_different_branches_meet_at_their_common_node() -> None:
    clock = Clock()
    log = log_at(clock)
    lost(log, "cp-1#1", ("feeder-1", "tr1", "grid"))
    lost(log, "cp-2#1", ("feeder-2", "tr1", "grid"))
    lost(log, "cp-3#1", ("feeder-5", "tr2", "grid"))
    log.flush()
    (event,) = stored(log)
    assert event.message == "3 devices unreachable on grid"
    clock.now += 1
    lost(log, "cp-1#1", ("feeder-1", "tr1", "grid"))
    lost(log, "cp-2#1", ("feeder-2", "tr1", "grid"))
    log.flush()
    assert stored(log)[-1].message == "2 devices unreachable on tr1"


def test_a_long_burst_is_cut_after_longest_s() -> None:
    clock = Clock()
    log = log_at(clock)
    for i in range(40):  # one every second: never quiet for 5 s
        lost(log, f"cp-{i}#1", ("grid",))
        clock.now += 1
        log.tick()
    log.flush()
    first, second = stored(log)
    assert len(first.members) == 30  # 0 s to 29 s; at 30 s it was logged
    assert second.members[0] == "cp-30#1"
    assert len(second.members) == 10


def test_recent_keeps_warnings_among_many_info_events() -> None:
    log = log_at(Clock())
    log.emit(EventLevel.WARNING, "grid-operator", "limit 300 kW")
    for i in range(100):
        log.emit(EventLevel.INFO, f"cp-{i}#1", "priority 0 -> 1")
    recent = log.recent
    assert recent[0].subject == "grid-operator"
    assert [e.subject for e in recent[-2:]] == ["cp-98#1", "cp-99#1"]
    assert len(recent) == 31


def test_every_event_is_a_log_line(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    log = log_at(clock)
    with caplog.at_level(logging.INFO, logger="hubgate.events"):
        for i in range(12):
            lost(log, f"cp-{i}#1", ("feeder-3", "grid"))
        log.emit(EventLevel.ALARM, "allocation", "failed", category=EventCategory.CONTROL)
        log.flush()
    lines = [(r.levelno, r.getMessage()) for r in caplog.records]
    assert lines == [
        (logging.ERROR, "[control] allocation: failed"),
        (
            logging.WARNING,
            "[device] feeder-3: 12 devices unreachable on feeder-3 (cp-0#1, cp-1#1, cp-2#1, "
            "cp-3#1, cp-4#1, cp-5#1, cp-6#1, cp-7#1, +4 more)",
        ),
    ]
    assert caplog.records[1].event.members[-1] == "cp-11#1"  # type: ignore[attr-defined]


async def test_readers_wake_for_each_new_event(autojump_clock: trio.testing.MockClock) -> None:
    log = EventLog()
    got: list[int] = []

    async def reader() -> None:
        seen = 0
        while len(got) < 3:
            seen = await log.wait_newer(seen)
            got.append(seen)

    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(reader)
            for i in range(3):
                await trio.testing.wait_all_tasks_blocked()
                log.emit(EventLevel.INFO, "site", f"event {i}")
    assert got == [1, 2, 3]


# -- a 200-device outage under the cycle planner ------------------------------------------

FEEDERS = 4
CHARGERS_PER_FEEDER = 25  # two connectors each: 200 connectors


def depot() -> SiteConfig:
    text = '[site]\nname = "depot"\n[grid]\nphase_current_limit_a = 2000\n'
    text += '[[nodes]]\nid = "tr1"\nkind = "transformer"\nphase_current_limit_a = 1800\n'
    port = 2000
    for f in range(1, FEEDERS + 1):
        text += f'[[nodes]]\nid = "feeder-{f}"\nkind = "feeder"\nparent = "tr1"\n'
        text += "phase_current_limit_a = 500\n"
        port += 1
        text += meter(f"meter-{f}", f"feeder-{f}", modbus("eastron-sdm630", port=port))
        for c in range(CHARGERS_PER_FEEDER):
            port += 1
            text += modbus_charger(
                f"cp-{f}-{c}",
                f"feeder-{f}",
                modbus("alfen-eve", port=port),
                "{ id = 1, max_current_a = 32 }, { id = 2, max_current_a = 32 }",
            )
    return SiteConfig.model_validate(tomllib.loads(text))


def readings(site: SiteConfig, now: float, down: set[str]) -> dict[str, object]:
    """Every device's answer at `now`; those on a feeder in `down` fail."""
    out: dict[str, object] = {}
    for charger in site.chargers:
        for connector in charger.connectors:
            name = f"{charger.id}#{connector.id}"
            out[name] = (
                Failed(TimeoutError("no answer"))
                if charger.node in down
                else Reading(now, {Quantity.CURRENT_L1: 0.0}, IecState.A)
            )
    for m in site.meters:
        currents = {Quantity.CURRENT_L1: 5.0, Quantity.CURRENT_L2: 5.0, Quantity.CURRENT_L3: 5.0}
        out[f"meter:{m.id}"] = (
            Failed(TimeoutError("no answer")) if m.node in down else Reading(now, currents)
        )
    return out


def test_a_200_device_outage_is_one_warning_and_its_end_one_info_event() -> None:
    site = depot()
    clock = Clock()
    log = log_at(clock)
    planner = CyclePlanner(site, LimitBook(), meters=[m.id for m in site.meters], events=log)
    feeders = {f"feeder-{f}" for f in range(1, FEEDERS + 1)}

    def run(seconds: int, down: set[str]) -> None:
        for _ in range(seconds):
            planner.plan(readings(site, clock.now, down), clock.now)
            log.tick()
            clock.now += 1.0

    run(20, set())
    before = len(stored(log))
    run(20, feeders)  # the simulator killed: every charger and meter at once
    outage = [e for e in stored(log)[before:] if e.category is EventCategory.DEVICE]
    (event,) = outage
    assert event.severity is EventLevel.WARNING
    assert event.message == "204 devices unreachable on tr1"  # 200 connectors, 4 meters
    assert len(event.members) == 204
    assert {"cp-3-7#2", "meter:meter-2"} <= set(event.members)

    before = len(stored(log))
    run(20, set())
    back = [e for e in stored(log)[before:] if e.category is EventCategory.DEVICE]
    assert [(e.severity, e.message) for e in back] == [
        (EventLevel.INFO, "204 devices reachable again on tr1")
    ]

    before = len(stored(log))
    run(20, {"feeder-3"})  # one feeder's switch trips
    (feeder,) = [e for e in stored(log)[before:] if e.category is EventCategory.DEVICE]
    assert feeder.message == "51 devices unreachable on feeder-3"

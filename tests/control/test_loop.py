"""The control loop against an in-memory site on Trio's MockClock (autojump): deterministic."""

from __future__ import annotations

import itertools
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field, replace
from typing import Any

import pytest
import trio
import trio.testing

from hubgate.config.model import SiteConfig
from hubgate.control.heartbeats import HEARTBEAT_EARLY_S
from hubgate.control.limits import SITE, AuditAction, Limit, LimitSource
from hubgate.control.loop import ControlLoop
from hubgate.control.sensors import SiteDevices
from hubgate.devices.model import Reading
from hubgate.profiles.model import IecState
from hubgate.state import SiteState
from tests.support.loop_site import SimCharger, SimSite, running_loop, site_config

BOARD_A = 64.0


def running(
    sim: SimSite, extra: str = "", devices: SiteDevices | None = None
) -> AbstractAsyncContextManager[ControlLoop]:
    return running_loop(site_config(extra), devices or sim.devices())


def setpoints(loop: ControlLoop) -> dict[str, float]:
    state = loop.hub.latest
    assert state is not None
    return {c.charger: c.setpoint_a for c in state.connectors}


async def test_shares_the_board_and_verifies_failsafe_first(
    autojump_clock: trio.testing.MockClock,
) -> None:
    sim = SimSite.build()
    async with running(sim) as loop:
        await trio.sleep(5)  # the meter trusted from its first reading: the whole board
        assert BOARD_A / 2 < sum(setpoints(loop).values()) <= BOARD_A
        await trio.sleep(35)
        sp = setpoints(loop)
        assert sum(sp.values()) <= BOARD_A
        assert min(sp.values()) >= 20  # fair: 64 A among three
        assert all(c.configured == 1 and c.failsafe_a == 6 for c in sim.chargers)
        assert loop.stats.cycles >= 29
        record = loop.decisions.recent(1)[0]
        assert {d.connector for d in record.connectors} == {"cp-1#1", "cp-2#1", "cp-3#1"}


async def test_ev_taking_less_gives_its_headroom_to_others(
    autojump_clock: trio.testing.MockClock,
) -> None:
    sim = SimSite.build()
    sim.charger("cp-1").ev_max_a = 8.0
    async with running(sim) as loop:
        await trio.sleep(60)
        sp = setpoints(loop)
        assert sp["cp-1"] <= 8 + 2  # trimmed to its draw plus headroom
        assert sp["cp-2"] >= 26
        assert sp["cp-3"] >= 26


async def test_base_load_in_the_meter_is_followed(autojump_clock: trio.testing.MockClock) -> None:
    sim = SimSite.build()
    async with running(sim) as loop:
        await trio.sleep(40)
        sim.meter.base_a = 30.0
        await trio.sleep(20)
        assert sum(setpoints(loop).values()) <= BOARD_A - 30 + 1


async def test_meter_lost_degrades_then_recovers_with_hysteresis(
    autojump_clock: trio.testing.MockClock,
) -> None:
    sim = SimSite.build()
    async with running(sim) as loop:
        await trio.sleep(40)
        assert sum(setpoints(loop).values()) > BOARD_A / 2 + 6
        sim.meter.reachable = False
        await trio.sleep(5)  # stale after 3 s
        state = loop.hub.latest
        assert state is not None
        board = state.node("board")
        assert board.budget_share == 0.5
        assert board.meter_health == "lost"
        assert sum(setpoints(loop).values()) <= BOARD_A / 2
        sim.meter.reachable = True
        await trio.sleep(3)  # fresh again, still inside the 6 s hysteresis
        assert loop.hub.latest is not None
        assert loop.hub.latest.node("board").meter_health == "recovering"
        assert sum(setpoints(loop).values()) <= BOARD_A / 2
        await trio.sleep(20)
        assert loop.hub.latest.node("board").budget_share == 1.0
        assert sum(setpoints(loop).values()) > BOARD_A / 2 + 6


async def test_unreachable_charger_is_reserved_and_reverified(
    autojump_clock: trio.testing.MockClock,
) -> None:
    sim = SimSite.build()
    async with running(sim) as loop:
        await trio.sleep(40)
        lost = sim.charger("cp-1")
        held = lost.limit_a
        lost.reachable = False
        await trio.sleep(10)
        sp = setpoints(loop)
        # verified: it holds its last command (or falls to its 6 A failsafe): the other two
        # share what is left of the board, no more, and still charge
        assert held > 6
        assert sp["cp-2"] + sp["cp-3"] <= BOARD_A - held
        assert sp["cp-2"] + sp["cp-3"] > BOARD_A - 32  # less than its maximum is reserved
        assert lost.limit_a == held  # no command reached it
        assert any("cp-1#1 unreachable" in n for n in loop.decisions.recent(1)[0].notes)
        assert lost.configured == 1
        lost.reachable = True
        await trio.sleep(10)
        assert lost.configured == 2  # failsafe settings configured and verified again
        assert sum(setpoints(loop).values()) <= BOARD_A


async def test_charger_whose_failsafe_cannot_be_set_is_reserved_and_retried(
    autojump_clock: trio.testing.MockClock,
) -> None:
    sim = SimSite.build()
    stubborn = sim.charger("cp-1")
    stubborn.rejects_failsafe = True
    async with running(sim) as loop:
        await trio.sleep(40)
        sp = setpoints(loop)
        assert stubborn.limit_a == 0  # never commanded
        assert sp["cp-2"] + sp["cp-3"] <= BOARD_A - 32
        assert any("cp-1#1 failsafe not verified" in n for n in loop.decisions.recent(1)[0].notes)
        stubborn.rejects_failsafe = False
        await trio.sleep(20)
        assert stubborn.configured == 1
        assert stubborn.limit_a > 0
        assert not loop.decisions.recent(1)[0].notes


async def test_gateway_gone_chargers_fall_back_within_the_lease(
    autojump_clock: trio.testing.MockClock,
) -> None:
    sim = SimSite.build()
    async with running(sim) as loop:
        await trio.sleep(30)
        assert all(c.limit_a > 6 for c in sim.chargers)
        stopped_at = trio.current_time()
        del loop
    # nobody talks to the chargers any more: the watchdog (lease_s = 10 s) takes over
    await trio.sleep(10 + 1)
    for charger in sim.chargers:
        charger.advance(trio.current_time())
    await trio.sleep(2)  # the EVs' reaction time
    for charger in sim.chargers:
        charger.advance(trio.current_time())
        assert charger.effective_limit(trio.current_time()) == 6
        assert charger.draw_a == 6
        assert charger.last_contact <= stopped_at + 1


async def test_grid_operator_step_is_audited_and_followed(
    autojump_clock: trio.testing.MockClock,
) -> None:
    sim = SimSite.build()
    async with running(sim, devices=None) as loop:
        await trio.sleep(30)
        sim.box.percent = 30.0  # 30 % of 3 x 230 V x 100 A = 20.7 kW
        await trio.sleep(5)
        total_kw = sum(setpoints(loop).values()) * 3 * 230 / 1000
        assert total_kw <= 20.7 + 0.1
        # The published state, the decision record and so the dashboard show it in force.
        assert loop.hub.latest is not None
        grid = loop.hub.latest.node("grid")
        assert grid.limit_a == (30.0, 30.0, 30.0)
        assert (grid.power_limit_kw, grid.limit_source) == (20.7, "grid-operator")
        assert grid.limit_expires_at is None
        assert "grid-operator" in [b.source for b in grid.limit_bounds]
        record = loop.decisions.recent(1)[0].grid
        assert record is not None
        step = loop.hub.latest.events[-1]  # the newest event is the step
        assert (step.category, step.severity, step.subject) == ("grid-operator", "warning", "site")
        assert step.message.startswith("grid-operator limit 20.7 kW (was 69 kW, -48.3 kW)")
        assert (record.limit_a, record.source) == ((30.0, 30.0, 30.0), "grid-operator")
        audit = [e for e in loop.limits.audit() if e.source is LimitSource.GRID_OPERATOR]
        assert [e.limit.power_kw for e in audit] == [69.0, 20.7]
        assert all(e.action is AuditAction.SET and e.target == SITE for e in audit)
        sim.box.reachable = False  # a silent box does not lift the curtailment
        await trio.sleep(10)
        last = loop.limits.audit()[-1]
        assert (last.limit.power_kw, last.origin) == (
            20.7,
            "grid-operator-box: silent, holding the last limit",
        )
        assert sum(setpoints(loop).values()) * 3 * 230 / 1000 <= 20.7 + 0.1
        state = loop.hub.latest
        assert state is not None
        events = [e for e in state.events if e.category == "grid-operator"]
        assert events
        assert "holding the last limit 20.7 kW" in events[-1].message


async def test_api_and_modbus_server_limits_are_applied(
    autojump_clock: trio.testing.MockClock,
) -> None:
    sim = SimSite.build()
    async with running(sim) as loop:
        await trio.sleep(40)
        now = trio.current_time()
        loop.limits.set(
            "board", LimitSource.API, Limit(phase_a=(30, 30, 30)), now=now, lease_s=60, origin="t"
        )
        loop.limits.set(
            "cp-2#1",
            LimitSource.MODBUS_SERVER,
            Limit(phase_a=(10, 10, 10)),
            now=now,
            lease_s=60,
            origin="t",
        )
        await trio.sleep(5)
        sp = setpoints(loop)
        assert sum(sp.values()) <= 30
        assert sp["cp-2"] <= 10
        assert loop.hub.latest is not None
        board = loop.hub.latest.node("board")
        assert (board.limit_a, board.limit_source) == ((30.0, 30.0, 30.0), "api")
        assert board.limit_expires_at is not None
        assert board.limit_expires_at - loop.hub.latest.at == pytest.approx(55, abs=1.5)
        await trio.sleep(70)  # both leases lapse
        assert sum(setpoints(loop).values()) > 40


async def test_csms_lost_local_control_goes_on(autojump_clock: trio.testing.MockClock) -> None:
    sim = SimSite.build()
    extra = '[csms]\nurl = "ws://127.0.0.1:9/ocpp"\n'
    async with running(sim, extra) as loop:
        await trio.sleep(40)
        assert loop.stats.cycles >= 39
        assert sum(setpoints(loop).values()) > 40


async def test_safe_stop_commands_the_failsafe_current(
    autojump_clock: trio.testing.MockClock,
) -> None:
    sim = SimSite.build()
    async with running(sim) as loop:
        await trio.sleep(10)
        done = await loop.safe_stop()
    assert all(done.values())
    assert all(c.limit_a == 6 for c in sim.chargers)


async def test_a_new_ev_starts_once_the_others_are_seen_to_follow_their_decrease(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """The current freed by lowering the others is confirmed by their draw after their
    reaction time (2 s), so the new EV starts within a few cycles, not after `settle_s`
    (10 s); the board never carries more than its limit meanwhile."""
    sim = SimSite.build()
    newcomer = sim.charger("cp-3")
    newcomer.connected = False
    async with running(sim) as loop:
        await trio.sleep(40)
        assert setpoints(loop) == {"cp-1": 32, "cp-2": 32, "cp-3": 0}
        newcomer.connected = True
        connected_at = trio.current_time()
        started_at = None
        peak = 0.0
        while trio.current_time() - connected_at < 20:
            await trio.sleep(0.25)
            peak = max(peak, sim.meter.current(trio.current_time()))
            if started_at is None and setpoints(loop)["cp-3"] > 0:
                started_at = trio.current_time()
        assert started_at is not None
        assert started_at - connected_at <= 5  # reaction 2 s, a reading, a cycle
        assert peak <= BOARD_A + 1e-9
        assert min(setpoints(loop).values()) >= 21  # fair again: 64 A among three


@dataclass
class MeterValuesCharger(SimCharger):
    """Reports its draw only every `every_s` seconds, like OCPP MeterValues, but its state
    at once with the time it changed, like a StatusNotification."""

    every_s: float = 4.0
    _reported: Reading | None = None
    _state: IecState | None = None
    _state_at: float | None = None

    async def read(self) -> Reading:
        fresh = await super().read()
        if self._reported is None or fresh.at - self._reported.at >= self.every_s:
            self._reported = fresh
        if fresh.state is not self._state:
            self._state, self._state_at = fresh.state, fresh.at
        return replace(self._reported, state=fresh.state, state_at=self._state_at)


async def test_a_start_reported_late_is_not_taken_for_base_load(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """The meter sees a new EV's current before its own report does, but its status said
    it started: the base load stays what it is, so nobody is paused for it."""
    sim = SimSite.build()
    late = MeterValuesCharger("cp-3", connected=False)
    sim.chargers[2] = late
    sim.meter.chargers[2] = late
    async with running(sim) as loop:
        await trio.sleep(40)
        late.connected = True
        await trio.sleep(30)
        records = loop.decisions.recent(30)
        base = [max(r.inputs["base_load_a"]["board"]) for r in records]  # type: ignore[index]
        assert max(base) <= 1.0
        assert all(c.setpoint_a > 0 for r in records[-10:] for c in r.connectors)


async def test_a_departure_its_state_reports_before_its_values_does_not_lower_the_base_load(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """The EV leaves; its status says so at once, its last values (drawing) come later: what
    the meter no longer shows is not base load gone (which could be held as the base while
    another EV starts, and let the others take more than the limit)."""
    sim = SimSite.build()
    leaving = MeterValuesCharger("cp-3", connected=True)
    sim.chargers[2] = leaving
    sim.meter.chargers[2] = leaving
    async with running(sim) as loop:
        await trio.sleep(40)
        assert leaving.draw_a > 20
        leaving.connected = False
        await trio.sleep(6)  # its values every 4 s
        base = [max(r.inputs["base_load_a"]["board"]) for r in loop.decisions.recent(24)]  # type: ignore[index]
        assert min(base) >= -1.0, " ".join(f"{b:.1f}" for b in base)


async def test_without_its_state_a_late_start_is_base_load_once_its_setpoint_settled(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """The same charger without the state's time (a Modbus charger polled slowly, here
    every 30 s): its draw shows in the meter first. For `settle_s` after it was given its
    setpoint, up to that setpoint, that is its start; after that, base load until it
    reports it."""
    sim = SimSite.build()
    late = MeterValuesCharger("cp-3", connected=False, every_s=30.0)
    sim.chargers[2] = late
    sim.meter.chargers[2] = late

    async def no_state_time() -> Reading:
        reading = await MeterValuesCharger.read(late)
        return replace(reading, state_at=None)

    late.read = no_state_time  # type: ignore[method-assign]
    async with running(sim) as loop:
        await trio.sleep(40)
        late.connected = True
        await trio.sleep(8)  # its setpoint, its EV's reaction (2 s), the meter sees it
        assert late.draw_a > 0
        base = [max(r.inputs["base_load_a"]["board"]) for r in loop.decisions.recent(8)]  # type: ignore[index]
        assert max(base) <= 1.0
        await trio.sleep(10)
        base = [max(r.inputs["base_load_a"]["board"]) for r in loop.decisions.recent(4)]  # type: ignore[index]
        assert min(base) > 5.0


async def test_a_charger_not_following_is_reserved_at_its_maximum(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A charger that ignores its limits is reserved at 32 A: the board never exceeds its
    limit, the others share what is left, and an alarm names it."""
    sim = SimSite.build()
    liar = sim.charger("cp-1")
    liar.ignores_limits = True
    async with running(sim) as loop:
        peak = 0.0
        for _ in range(160):
            await trio.sleep(0.25)
            if trio.current_time() > 20:
                peak = max(peak, sim.meter.current(trio.current_time()))
        assert peak <= BOARD_A + 1e-9
        sp = setpoints(loop)
        assert sp["cp-2"] + sp["cp-3"] <= BOARD_A - 32
        assert sp["cp-2"] > 0
        assert sp["cp-3"] > 0
        state = loop.hub.latest
        assert state is not None
        assert any(
            e.subject == "cp-1#1"
            and e.message.endswith(
                "not following its limit, reserved at its maximum: ignores its limit"
            )
            for e in state.events
        )
        notes = loop.decisions.recent(1)[0].notes
        assert "cp-1#1 not following its limit: 32 A reserved" in notes


async def test_at_a_short_cycle_the_state_is_built_when_read(
    autojump_clock: trio.testing.MockClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    sim = SimSite.build()
    async with running_loop(_cycle_s(0.1), sim.devices()) as loop:
        await trio.sleep(3)  # every EV charging
        built: list[int] = []
        site_state = loop.snapshot._site_state

        def building(*args: Any) -> SiteState:
            built.append(args[0])
            return site_state(*args)

        monkeypatch.setattr(loop.snapshot, "_site_state", building)
        cycles = loop.stats.cycles
        await trio.sleep(5.0)
        assert loop.stats.cycles - cycles >= 45
        assert built == []  # nobody read a state: none was built
        state = loop.hub.latest
        assert state is not None
        assert built == [state.cycle]
        assert state.cycle >= loop.stats.cycles - 1
        assert {c.status for c in state.connectors} == {"C"}
        assert loop.hub.latest is state  # built once


@pytest.mark.parametrize("cycle_s", [0.1, 1.0])
async def test_each_open_session_is_sampled_each_second_in_turn_and_a_change_at_once(
    autojump_clock: trio.testing.MockClock, monkeypatch: pytest.MonkeyPatch, cycle_s: float
) -> None:
    sim = SimSite.build()
    async with running_loop(_cycle_s(cycle_s), sim.devices()) as loop:
        await trio.sleep(3)  # every EV charging
        sampled: list[tuple[float, list[str]]] = []
        observe = loop.sessions.observe

        def observing(*args: Any) -> None:
            sampled.append((loop.snapshot._now, [c.key for c in args[0]]))
            observe(*args)

        monkeypatch.setattr(loop.sessions, "observe", observing)
        await trio.sleep(5.0)
        keys = ["cp-1#1", "cp-2#1", "cp-3#1"]
        at = {key: [t for t, sample in sampled if key in sample] for key in keys}
        for times in at.values():  # each once a second, the cycles' starts on their ticks
            assert len(times) >= 4
            assert all(b - a == pytest.approx(1.0) for a, b in itertools.pairwise(times))
        if cycle_s < 1:  # in turn: one connector's session in each of three cycles of ten
            assert all(len(sample) == 1 for _, sample in sampled)
            assert len({times[0] for times in at.values()}) == 3
        else:  # every cycle samples them all, as each is due
            assert all(sample == keys for _, sample in sampled)
        await loop.cycle_ready.wait()
        sim.charger("cp-1").connected = False
        unplugged_at, after = trio.current_time(), len(sampled)
        await trio.sleep(cycle_s + 0.05)
        # the unplug is handed to the session records in the next cycle, not a second later
        first = next(t for t, sample in sampled[after:] if "cp-1#1" in sample)
        assert 0 < first - unplugged_at <= cycle_s


def _cycle_s(cycle_s: float) -> SiteConfig:
    config = site_config()
    return config.model_copy(
        update={"control": config.control.model_copy(update={"cycle_s": cycle_s})}
    )


@dataclass
class BeatingCharger(SimCharger):
    """Counts its heartbeats and can be made to answer them slowly."""

    beats: list[float] = field(default_factory=list)
    beat_takes_s: float = 0.01
    beat_every_s: float | None = 2.0

    @property
    def heartbeat_period_s(self) -> float | None:
        return self.beat_every_s

    async def heartbeat(self) -> None:
        self.beats.append(trio.current_time())
        await trio.sleep(self.beat_takes_s)
        self._contact(trio.current_time())


async def test_every_charger_gets_its_heartbeat_on_its_period_from_one_timer(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Each heartbeat goes out on the charger's period (2 s), at most `HEARTBEAT_EARLY_S`
    early, the first ones spread over the period; one slower than its period is cut there
    and never has two in flight; none while it is unreachable; a period that changes counts
    from the next beat (None: no more)."""
    steady, slow, gone = (BeatingCharger(f"cp-{i}") for i in (1, 2, 3))
    slow.beat_takes_s = 5.0
    sim = SimSite.build()
    sim.chargers = sim.meters[0].chargers = [steady, slow, gone]
    async with running(sim) as loop:
        start = trio.current_time()
        await trio.sleep(20)
        gone.reachable = False
        steady.beat_every_s = 1.0
        await trio.sleep(20)
        slow.beat_every_s = None
        await trio.sleep(5)
    assert loop.stats.cycles >= 43
    firsts = [c.beats[0] - start for c in (steady, slow, gone)]
    assert firsts == pytest.approx([2 / 3, 4 / 3, 2.0], abs=HEARTBEAT_EARLY_S + 1e-6)
    gaps = [b - a for a, b in itertools.pairwise(steady.beats)]
    changed = next(n for n, b in enumerate(steady.beats) if b - start > 20)
    assert all(2 - HEARTBEAT_EARLY_S - 1e-6 <= gap <= 2 + 1e-6 for gap in gaps[:changed])
    assert all(1 - HEARTBEAT_EARLY_S - 1e-6 <= gap <= 1 + 1e-6 for gap in gaps[changed:])
    assert len(steady.beats) >= 10 + 25
    # the slow one: cut at its period, the next one after it (never two at once)
    slow_gaps = [b - a for a, b in itertools.pairwise(slow.beats)]
    assert all(gap >= 2 - HEARTBEAT_EARLY_S - 1e-6 for gap in slow_gaps)
    assert len(slow.beats) >= 9
    assert max(slow.beats) - start <= 40 + 4  # (its period gone at 40 s)
    # unreachable from 20 s (3 cycles to be counted so): no heartbeat after that
    assert max(gone.beats) - start <= 20 + 3 + 2


@dataclass
class QuietCharger(BeatingCharger):
    """A heartbeat that would send nothing until `sends_from` and again for `quiet_s` after
    each beat (`QuietBeat`: an OCPP lease, renewed only when due)."""

    sends_from: float = 9.0
    quiet_s: float = 7.0
    asked: list[float] = field(default_factory=list)

    def heartbeat_quiet_for_s(self) -> float:
        self.asked.append(now := trio.current_time())
        return max(0.0, self.sends_from - now)

    async def heartbeat(self) -> None:
        await super().heartbeat()
        self.sends_from = trio.current_time() + self.quiet_s


async def test_a_heartbeat_that_would_send_nothing_is_not_started_until_it_would(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A charger whose heartbeat would send nothing gets none then (no task: on main it beat
    on its 2 s period from the start), is asked again within its period, and its beat goes
    out when it would send, at most `HEARTBEAT_EARLY_S` early."""
    quiet = QuietCharger("cp-1")
    sim = SimSite.build()
    sim.chargers = sim.meters[0].chargers = [quiet, *sim.chargers[1:]]
    start = trio.current_time()
    quiet.sends_from = start + 9.0
    async with running(sim):
        await trio.sleep(27)  # (the next beat, at 30 s, is not waited for)
    beats = [b - start for b in quiet.beats]
    assert beats == pytest.approx([9.0, 16.0, 23.0], abs=HEARTBEAT_EARLY_S + 1e-6)
    asked = [a - start for a in quiet.asked]
    assert asked[0] <= 2
    assert all(b - a <= 2 + 1e-6 for a, b in itertools.pairwise(asked))

"""Priority changes at run time through `SiteAllocator.set_priority`."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from hubgate.config import load_site
from hubgate.control.allocation import AllocationSettings, CycleInputs, CycleResult, SiteAllocator
from hubgate.errors import TopologyError

INF = math.inf
QUIET = AllocationSettings(min_on_s=0.0, min_off_s=0.0, change_interval_s=0.0, settle_s=0.0)
"""No dwell times: the paused connectors take turns, longest waiting first."""

CP1, CP2, WB1, WB2 = ("cp-1", 1), ("cp-2", 1), ("wb-1", 1), ("wb-2", 1)


def tight_board(examples_dir: Path) -> SiteAllocator:
    """The small site, where the board's base load leaves room for one minimum (6 A)."""
    return SiteAllocator(load_site(examples_dir / "sites" / "small-4.toml"), QUIET)


def cycle(site: SiteAllocator, now: float) -> CycleResult:
    base = site.base_load({"board": (57.0, 57.0, 57.0)})
    wanting = [key != WB2 for key in site.connector_keys]
    return site.allocate(CycleInputs(now, base, [INF] * len(wanting), wanting))


def admitted(site: SiteAllocator, result: CycleResult) -> list[tuple[str, int]]:
    return [key for i, key in enumerate(site.connector_keys) if result.target_a[i] > 0]


def test_a_raised_priority_wins_admission_on_the_next_cycle_with_state_kept(
    examples_dir: Path,
) -> None:
    site, twin = tight_board(examples_dir), tight_board(examples_dir)
    first = cycle(site, 0.0)
    assert admitted(site, first) == [CP1]
    assert first.setpoint_a[site.connector_index(CP1)] == 6.0
    # Without a change, cp-2 has waited longest and goes next (one phase, L2);
    # wb-1 still fits on one phase (L1).
    cycle(twin, 0.0)
    turn = cycle(twin, 1.0)
    assert admitted(twin, turn) == [CP2, WB1]
    assert turn.phases[twin.connector_index(WB1)] == 1

    wb1 = site.connector_index(WB1)
    assert site.priority(wb1) == 0
    site.set_priority(wb1, 5)
    assert site.priority(wb1) == 5
    raised = cycle(site, 1.0)
    # wb-1 goes first and takes its three phases: nothing is left for cp-2.
    assert admitted(site, raised) == [WB1]
    assert raised.phases[wb1] == 3
    assert raised.decision(site.connector_index(CP1)).reason == "PAUSED_NO_CAPACITY"
    # cp-1's last setpoint (6 A) is remembered: until its decrease is confirmed,
    # wb-1 gets its target but not yet its setpoint.
    decision = raised.decision(wb1)
    assert (raised.target_a[wb1], decision.setpoint_a) == (6.0, 0.0)
    assert decision.reason == "AWAITING_HEADROOM"
    for now in (2.0, 3.0, 4.0):
        result = cycle(site, now)
        assert admitted(site, result) == [WB1]
        assert result.setpoint_a[wb1] == 6.0


def test_a_connector_that_does_not_exist_is_refused(examples_dir: Path) -> None:
    site = tight_board(examples_dir)
    with pytest.raises(TopologyError, match="there is no connector 4"):
        site.set_priority(4, 1)
    with pytest.raises(TopologyError, match="there is no connector 9"):
        site.priority(9)
    assert [site.priority(i) for i in range(4)] == [0, 0, 0, 1]

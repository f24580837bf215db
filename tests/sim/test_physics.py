"""The electrical model: every node carries its own loads plus its children, per phase."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hubgate.config.model import SiteConfig
from hubgate.sim import ClosedLoop, NaiveEqualShareController, Simulation, load_scenario, run_fast
from hubgate.sim.electrical import SiteTree


def test_node_current_is_children_plus_own_loads_with_rotation(
    write_scenario: Callable[..., Path],
) -> None:
    sim = Simulation(load_scenario(write_scenario()))
    loop = ClosedLoop(sim, NaiveEqualShareController(sim))
    run_fast(loop, 30)
    by_key = {(c.charger, c.connector): slot for slot, c in enumerate(sim.tree.connectors)}

    def draw(charger: str, connector: int) -> float:
        ev = sim.evs[by_key[(charger, connector)]]
        assert ev is not None
        return ev.draw_a

    # Every connector has a 3-phase EV drawing something by now.
    assert all(ev is not None and ev.draw_a > 0 for ev in sim.evs)
    # cp-rot is wired L2L3L1: its 1-phase connector sits on grid L2; the 3-phase one on all.
    rot_1p, rot_3p = draw("cp-rot", 1), draw("cp-rot", 2)
    sub = (rot_3p, rot_3p + rot_1p, rot_3p)
    assert sim.node_current("sub") == pytest.approx(sub)
    pv_a = sim.pv[0].power_kw * 1000 / (3 * 230)
    assert pv_a > 0
    board = [sub[p] + draw("cp-3p", 1) + base - pv_a for p, base in enumerate((10, 20, 30))]
    assert sim.node_current("board") == pytest.approx(board)
    base_grid = sim.base_load.flat[0:3]
    grid = [board[p] + draw("cp-grid", 1) + base_grid[p] for p in range(3)]
    assert sim.node_current("grid") == pytest.approx(grid)
    # The base load at the grid wanders within ±10 % of 5 A.
    assert all(4.5 <= b <= 5.5 for b in base_grid)
    # The grid meter reads the grid's true current.
    assert sim.meters["meter-grid"].currents_a == sim.node_current("grid")


def test_one_phase_ev_on_three_phase_connector_draws_on_the_rotated_first_phase(
    write_scenario: Callable[..., Path],
) -> None:
    path = write_scenario()
    text = path.read_text().replace("phases = 3", "phases = 1")
    path.write_text(text)
    sim = Simulation(load_scenario(path))
    run_fast(ClosedLoop(sim, NaiveEqualShareController(sim)), 30)
    slot = next(i for i, c in enumerate(sim.tree.connectors) if c.charger == "cp-3p")
    ev = sim.evs[slot]
    assert ev is not None
    assert ev.draw_a > 0
    # cp-3p is wired L3L1L2: its L1 is the grid's L3.
    pv_a = sim.pv[0].power_kw * 1000 / (3 * 230)
    board, sub = sim.node_current("board"), sim.node_current("sub")
    own = [board[p] - sub[p] - base + pv_a for p, base in enumerate((10, 20, 30))]
    assert own == pytest.approx([0, 0, ev.draw_a])


@st.composite
def trees(draw: st.DrawFn) -> tuple[list[int], list[float]]:
    size = draw(st.integers(1, 12))
    parents = [-1] + [draw(st.integers(0, i - 1)) for i in range(1, size)]
    own = draw(st.lists(st.floats(-500, 500), min_size=3 * size, max_size=3 * size))
    return parents, own


@given(trees())
def test_accumulate_conserves_current(tree: tuple[list[int], list[float]]) -> None:
    parents, own = tree
    nodes = [
        {"id": f"n{i}", "kind": "feeder", "parent": "grid" if parents[i] == 0 else f"n{parents[i]}"}
        for i in range(1, len(parents))
    ]
    site = SiteConfig.model_validate(
        {"site": {"name": "t"}, "grid": {"phase_current_limit_a": 100}, "nodes": nodes}
    )
    model = SiteTree.from_config(site)
    total = model.accumulate(own)
    for node in range(len(parents)):
        children = [c for c in range(len(parents)) if parents[c] == node]
        for phase in range(3):
            expected = own[3 * node + phase] + sum(total[3 * c + phase] for c in children)
            assert abs(total[3 * node + phase] - expected) < 1e-6

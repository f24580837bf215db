"""The site allocator from a configuration, the Python API's inputs and errors."""

from __future__ import annotations

import math
from array import array
from pathlib import Path

import pytest

from hubgate._core import Allocator, AllocConnector, AllocNode, AllocReason, AllocSettings
from hubgate.config import load_site
from hubgate.control.allocation import CycleInputs, SiteAllocator
from hubgate.errors import AllocationInputError, HubgateError, TopologyError

INF = math.inf


def small_site(examples_dir: Path) -> SiteAllocator:
    return SiteAllocator(load_site(examples_dir / "sites" / "small-4.toml"))


def everyone_wants(site: SiteAllocator, now: float = 0.0, **limits: float) -> CycleInputs:
    n = len(site.connector_keys)
    return CycleInputs(now, site.base_load({}), [INF] * n, [1] * n, **limits)


def test_site_tree_maps_nodes_rotation_and_steps(examples_dir: Path) -> None:
    site = small_site(examples_dir)
    assert site.node_ids == ("grid", "board")
    assert site.connector_keys == (("cp-1", 1), ("cp-2", 1), ("wb-1", 1), ("wb-2", 1))
    result = site.allocate(everyone_wants(site))
    cp2 = result.decision(site.connector_index(("cp-2", 1)))
    assert cp2.phases == 1
    # cp-2 is wired L2L3L1: its L1 terminal draws on grid phase L2.
    assert result.binding_phase[site.connector_index(("cp-2", 1))] in (-1, 1)
    wb2 = result.decision(site.connector_index(("wb-2", 1)))
    assert wb2.setpoint_a == 16.0  # priority 1 at its own maximum
    assert (wb2.connector, wb2.reason) == ("wb-2#1", "OWN_MAXIMUM")
    # The board (63 A) and the grid (80 A less the 2 A margin, 50 kW) hold the rest.
    loads = [0.0, 0.0, 0.0]
    for d in result.decisions():
        key_phases = [1] if d.phases == 1 else [0, 1, 2]
        for p in key_phases:
            loads[p if d.phases == 3 else 1] += d.setpoint_a
    assert max(loads) <= 78.0 + 1e-9
    assert sum(r.setpoint_a * r.phases for r in result.decisions()) * 230 <= 50_000 + 1e-6


def test_modbus_chargers_get_whole_amperes(examples_dir: Path) -> None:
    site = small_site(examples_dir)
    result = site.allocate(everyone_wants(site, grid_operator_w=9_000.0))
    for key in (("wb-1", 1), ("wb-2", 1)):
        value = result.setpoint_a[site.connector_index(key)]
        assert value == round(value)


def test_base_load_column_and_binding_node_names(examples_dir: Path) -> None:
    site = small_site(examples_dir)
    base = site.base_load({"board": (50.0, 50.0, 50.0)})
    assert list(base) == [0.0, 0.0, 0.0, 50.0, 50.0, 50.0]
    n = len(site.connector_keys)
    result = site.allocate(CycleInputs(0.0, base, [INF] * n, [1] * n))
    board_bound = [
        d for d in result.decisions() if d.binding and d.binding.partition("/")[0] == "board"
    ]
    assert board_bound, "13 A left on the board must bind its connectors"
    assert all(d.reason in ("PHASE_CURRENT", "PAUSED_NO_CAPACITY") for d in board_bound)


def test_depot_site_allocates_within_its_limits(examples_dir: Path) -> None:
    config = load_site(examples_dir / "sites" / "depot-200.toml")
    site = SiteAllocator(config)
    result = site.allocate(everyone_wants(site))
    assert len(result) == 200
    total_w = sum(d.setpoint_a * d.phases * config.grid.voltage_v for d in result.decisions())
    if config.grid.power_limit_kw is not None:
        assert total_w <= config.grid.power_limit_kw * 1000 + 1e-6


def one_node(cap: float = 32.0) -> Allocator:
    return Allocator(
        [AllocNode(None, (cap, cap, cap))],
        [AllocConnector(0, "3p", 0, 6.0, 32.0), AllocConnector(0, "1p", 1, 6.0, 32.0)],
    )


def test_buffers_and_sequences_give_the_same_result() -> None:
    a, b, c = one_node(), one_node(), one_node()
    ra = a.allocate(0.0, [0.0, 1.0, 0.0], [INF, 20.0], [True, True])
    rb = b.allocate(
        0.0, array("d", [0.0, 1.0, 0.0]), memoryview(array("d", [INF, 20.0])), b"\x01\x01"
    )
    rc = c.allocate(0.0, (0, 1, 0), (INF, 20), bytearray([1, 1]), pv_mode=array("B", [0, 0]))
    assert ra.setpoint_a == rb.setpoint_a == rc.setpoint_a
    assert list(ra.setpoint_a) == [15.5, 15.5]
    assert list(ra.phases) == [3, 1]
    assert len(ra) == 2


def test_bad_cycle_input_raises_and_keeps_state() -> None:
    alloc = one_node()
    first = alloc.allocate(10.0, [0.0] * 3, [INF, INF], [1, 1])
    bad_inputs: list[tuple[object, ...]] = [
        (11.0, [0.0] * 2, [INF, INF], [1, 1]),
        (11.0, [0.0] * 3, [INF], [1, 1]),
        (11.0, [0.0, math.nan, 0.0], [INF, INF], [1, 1]),
        (9.0, [0.0] * 3, [INF, INF], [1, 1]),
    ]
    for args in bad_inputs:
        with pytest.raises(AllocationInputError):
            alloc.allocate(*args)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        alloc.allocate(11.0, ["x", 0.0, 0.0], [INF, INF], [1, 1])  # type: ignore[list-item]
    again = alloc.allocate(10.0, [0.0] * 3, [INF, INF], [1, 1])
    assert again.setpoint_a == first.setpoint_a


@pytest.mark.parametrize(
    ("nodes", "connectors", "match"),
    [
        ([], [], "no node"),
        (
            [AllocNode(None, (1.0, 1.0, 1.0)), AllocNode(None, (1.0, 1.0, 1.0))],
            [],
            "exactly one root",
        ),
        ([AllocNode(None, (1.0, 1.0, 1.0)), AllocNode(5, (1.0, 1.0, 1.0))], [], "parent 5"),
        (
            [
                AllocNode(None, (1.0, 1.0, 1.0)),
                AllocNode(2, (1.0, 1.0, 1.0)),
                AllocNode(1, (1.0, 1.0, 1.0)),
            ],
            [],
            "does not lead to the root",
        ),
        ([AllocNode(None, (1.0, 1.0, 1.0))], [AllocConnector(3, "3p", 0, 6.0, 16.0)], "node 3"),
        ([AllocNode(None, (1.0, 1.0, 1.0))], [AllocConnector(0, "1p", 4, 6.0, 16.0)], "0, 1 or 2"),
        (
            [AllocNode(None, (1.0, 1.0, 1.0))],
            [AllocConnector(0, "3p", 0, 16.0, 6.0)],
            "at least the minimum",
        ),
        (
            [AllocNode(None, (1.0, 1.0, 1.0))],
            [AllocConnector(0, "3p", 0, 6.2, 6.8, 1.0)],
            "no multiple",
        ),
        ([AllocNode(None, (-1.0, 1.0, 1.0))], [], "phase limits"),
    ],
)
def test_bad_topology_raises_topology_error(
    nodes: list[AllocNode], connectors: list[AllocConnector], match: str
) -> None:
    with pytest.raises(TopologyError, match=match) as raised:
        Allocator(nodes, connectors)
    assert isinstance(raised.value, ValueError)
    assert isinstance(raised.value, HubgateError)


def test_bad_settings_and_phase_mode_are_refused() -> None:
    with pytest.raises(TopologyError, match="ramp"):
        Allocator([AllocNode(None, (1.0, 1.0, 1.0))], [], AllocSettings(ramp_a_per_s=0.0))
    with pytest.raises(TopologyError, match="'1p', '3p' or 'switchable'"):
        AllocConnector(0, "2p", 0, 6.0, 16.0)


def test_reason_members_are_indexed_by_code() -> None:
    members = AllocReason.members()
    assert [int(r) for r in members] == list(range(len(members)))
    assert members[int(AllocReason.PAUSED_MIN_OFF)] is AllocReason.PAUSED_MIN_OFF
    assert {AllocReason.POWER: 1}[members[3]] == 1

"""The server's register map: one table, consistent, and its documentation up to date."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import pytest

from hubgate.config.model import SiteConfig
from hubgate.modbus_api.register_map import BLOCKS, Block, Table, render_markdown
from hubgate.modbus_api.registers import SiteLayout

DOC = Path(__file__).resolve().parents[2] / "docs" / "modbus-server.md"


def test_the_documentation_is_generated_from_the_table() -> None:
    assert DOC.read_text() == render_markdown(), (
        "docs/modbus-server.md is stale: run "
        "`python -m hubgate.modbus_api.register_map > docs/modbus-server.md`"
    )


@pytest.mark.parametrize("table", list(Table))
def test_blocks_of_a_table_do_not_overlap(table: Table) -> None:
    spans = sorted((b.base, b.end) for b in BLOCKS if b.table is table)
    for (_, end), (start, _) in itertools.pairwise(spans):
        assert end <= start
    assert spans[-1][1] <= 0x10000


@pytest.mark.parametrize("block", BLOCKS, ids=lambda b: b.name)
def test_points_fit_their_block_without_overlap(block: Block[Any]) -> None:
    used: set[int] = set()
    for point in block.points:
        registers = set(range(point.offset, point.offset + point.count))
        assert not registers & used, point.name
        assert max(registers) < block.stride, point.name
        used |= registers
        assert point.writable == (block.table is Table.HOLDING and point.maximum is not None)


def test_a_site_too_large_for_the_map_is_refused() -> None:
    site = SiteConfig.model_validate(
        {
            "site": {"name": "huge"},
            "grid": {"phase_current_limit_a": 400},
            "nodes": [{"id": f"n{i}", "kind": "feeder"} for i in range(64)],
        }
    )
    with pytest.raises(ValueError, match="room for 64 nodes, the site has 65"):
        SiteLayout.from_site(site)

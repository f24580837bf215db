"""The server's registers without I/O: reads are consistent at any address and span."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hubgate.config.model import SiteConfig
from hubgate.control.limits import LimitBook
from hubgate.modbus.errors import ExceptionCode
from hubgate.modbus_api.register_map import BLOCKS, Table
from hubgate.modbus_api.registers import Refused, SiteLayout, SiteRegisters
from hubgate.state import StateHub

SITE = SiteConfig.model_validate(
    {
        "site": {"name": "registers"},
        "grid": {"phase_current_limit_a": 100},
        "chargers": [
            {
                "id": f"cp-{i}",
                "node": "grid",
                "ocpp": {"identity": f"cp-{i}"},
                "connectors": [{"id": 1, "max_current_a": 32}],
            }
            for i in range(3)
        ],
    }
)
REGISTERS = SiteRegisters(
    SiteLayout.from_site(SITE), StateHub(), LimitBook(), lease_s=10, clock=lambda: 0.0
)


def mapped(table: Table, address: int) -> bool:
    try:
        REGISTERS.read(table, address, 1)
    except Refused:
        return False
    return True


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(list(Table)), st.integers(0, 0xFFFF), st.integers(1, 125))
def test_a_span_reads_as_its_single_registers_or_is_refused_with_02(
    table: Table, address: int, count: int
) -> None:
    count = min(count, 0x10000 - address)
    singles = [mapped(table, a) for a in range(address, address + count)]
    if all(singles):
        expected = [REGISTERS.read(table, a, 1)[0] for a in range(address, address + count)]
        assert REGISTERS.read(table, address, count) == expected
    else:
        with pytest.raises(Refused) as refused:
            REGISTERS.read(table, address, count)
        assert refused.value.code is ExceptionCode.ILLEGAL_DATA_ADDRESS


def test_blocks_in_use_are_mapped_and_nothing_else() -> None:
    in_use = dict.fromkeys(Table, 0)
    for block in BLOCKS:
        in_use[block.table] += block.stride * REGISTERS.layout.instances(block)
    for table in Table:
        assert sum(mapped(table, a) for a in range(0x10000)) == in_use[table]

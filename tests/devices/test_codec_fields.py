"""A profile's quirks reach the Rust planner: forbidden and connection-closing ranges (in
documented addresses, converted to wire addresses), no gaps, maximum block; and `clamp`."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from hubgate.devices.profile_driver import clamp
from hubgate.modbus.codec import Request
from hubgate.profiles import Profile, load_named
from hubgate.profiles.codec_fields import forbidden_ranges, read_plan
from hubgate.profiles.model import Setpoint
from hubgate.profiles.plan import field_specs

ALFEN = load_named("alfen-eve")  # voltages 306-311, currents 320-325: an 8-register gap
IEM = load_named("schneider-iem3000")  # doc_base = 1: wire 2999 is documented 3000


def with_quirks(profile: Profile, **quirks: object) -> Profile:
    return profile.model_copy(update={"quirks": profile.quirks.model_copy(update=quirks)})


def spans(profile: Profile) -> list[tuple[int, int]]:
    """(first, last) wire address of every planned read."""
    found = []
    for request in read_plan(profile, field_specs(profile)).requests:
        assert isinstance(request, Request.ReadHoldingRegisters | Request.ReadInputRegisters)
        found.append((request.address, request.address + request.count - 1))
    return found


def touches(span: tuple[int, int], address: int) -> bool:
    return span[0] <= address <= span[1]


def test_a_short_gap_is_read_by_default() -> None:
    assert any(touches(s, 315) for s in spans(ALFEN))


def test_forbidden_and_closing_ranges_are_never_read() -> None:
    quirked = with_quirks(ALFEN, forbidden=((315, 315),), closes_connection=((317, 318),))
    for span in spans(quirked):
        assert not any(touches(span, a) for a in (315, 317, 318)), span
    assert len(spans(quirked)) == len(spans(ALFEN)) + 1


def test_ranges_are_converted_to_wire_addresses() -> None:
    quirked = with_quirks(IEM, forbidden=((3011, 3011),), closes_connection=((3021, 3022),))
    assert forbidden_ranges(quirked) == [(3010, 3010), (3020, 3021)]


def test_no_gaps_reads_only_defined_registers() -> None:
    defined = {a for s in field_specs(IEM).values() for a in range(s.address, s.address + s.count)}
    for first, last in spans(with_quirks(IEM, no_gaps=True)):
        assert set(range(first, last + 1)) <= defined


def test_max_block_is_honoured() -> None:
    assert all(last - first < 5 for first, last in spans(with_quirks(ALFEN, max_block=5)))


SETPOINT = Setpoint(address=0, min=6, max=32, step=0.5, unit="A")


@given(st.floats(min_value=-10, max_value=100, allow_nan=False))
def test_clamp_stays_within_min_max_and_step(value: float) -> None:
    got = clamp(SETPOINT, value)
    if got is None:
        assert value < SETPOINT.min
        return
    assert SETPOINT.min <= got <= SETPOINT.max
    assert got <= value
    assert (got / 0.5).is_integer()
    assert value > SETPOINT.max or value - got < 0.5

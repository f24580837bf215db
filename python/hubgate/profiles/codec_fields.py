"""Resolved profile registers as codec `Field`s, and a profile's fields as one `ReadPlan`.

The one place a `RegisterSpec` becomes a Rust codec field, and where the
profile's quirks (maximum block, no gaps, forbidden and connection-closing
ranges, converted to wire addresses) become the planner's limits.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

from hubgate._core import Field, ReadPlan
from hubgate.profiles.model import Function, Profile
from hubgate.profiles.plan import RegisterSpec

FUNCTION_CODES: dict[Function, Literal[1, 2, 3, 4]] = {
    Function.COIL: 1,
    Function.DISCRETE: 2,
    Function.HOLDING: 3,
    Function.INPUT: 4,
}
"""Read function code of each Modbus table."""

MAX_GAP = 8
"""Unwanted registers read to join two fields into one request (0 with the no_gaps quirk)."""


def field_of(spec: RegisterSpec) -> Field:
    """The codec field of a resolved profile register."""
    bit = spec.function.is_bit
    return Field(
        spec.address,
        "u16" if bit else spec.type.value,
        function=FUNCTION_CODES[spec.function],
        count=None if bit else spec.count,
        order=spec.order.value,
        scale=spec.scale,
        offset=spec.offset,
        sentinel=list(spec.sentinel),
        mask=spec.mask,
        shift=spec.shift,
        scale_factor=spec.scale_factor_address,
        invert=spec.invert,
        charset=spec.charset,  # type: ignore[arg-type]
    )


def forbidden_ranges(profile: Profile) -> list[tuple[int, int]]:
    """Wire ranges never to read: the forbidden and the connection-closing ones."""
    ranges = (*profile.quirks.forbidden, *profile.quirks.closes_connection)
    return [(profile.wire_address(first), profile.wire_address(last)) for first, last in ranges]


def read_plan(profile: Profile, specs: Mapping[str, RegisterSpec]) -> ReadPlan:
    """`specs` (in their order) compiled by the Rust planner under the profile's quirks."""
    quirks = profile.quirks
    return ReadPlan(
        [field_of(spec) for spec in specs.values()],
        max_gap=0 if quirks.no_gaps else MAX_GAP,
        max_block=quirks.max_block,
        forbidden=forbidden_ranges(profile),
    )

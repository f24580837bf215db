"""Profiles resolved to wire addresses: the shape a decoding plan takes.

A `RegisterSpec` is flat and 0-based (function, address, count, type, order,
scale, offset, sentinel, mask/shift, SunSpec scale-factor address): it is what
the Rust read planner and the simulated devices consume. SunSpec offsets are
resolved against a chain of block starts, found by discovery on a live device
or laid out by `sunspec_layout` for a simulated one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

from hubgate.profiles.model import (
    DataType,
    Fallback,
    Function,
    Profile,
    Register,
    Setpoint,
    Switch,
    Timeout,
    WordOrder,
)

SUNS_MARKER = (0x5375, 0x6E53)
"""The registers "SunS" at the SunSpec base address."""

SUNSPEC_END = 0xFFFF
"""Model id ending the SunSpec chain (with length 0)."""


@dataclass(frozen=True)
class RegisterSpec:
    """One value on the wire: where it is and how to decode it."""

    name: str
    function: Function
    address: int
    count: int
    type: DataType
    order: WordOrder
    scale: float = 1.0
    offset: float = 0.0
    sentinel: tuple[int, ...] = ()
    mask: int | None = None
    shift: int = 0
    scale_factor_address: int | None = None
    invert: bool = False
    charset: str = "utf-8"

    @property
    def end(self) -> int:
        """One past the last address."""
        return self.address + self.count


def sunspec_layout(profile: Profile) -> dict[str, int]:
    """Start (the model-id register) of each block, chained from the base."""
    if profile.sunspec is None:
        return {}
    start = profile.wire_address(profile.sunspec.base) + len(SUNS_MARKER)
    layout = {}
    for name, block in profile.sunspec.blocks.items():
        layout[name] = start
        start += 2 + block.length
    return layout


def resolve(
    profile: Profile,
    name: str,
    register: Register | Timeout | Fallback,
    blocks: Mapping[str, int] | None = None,
) -> RegisterSpec:
    """The wire spec of one register of `profile`.

    `blocks` gives SunSpec block starts (defaults to `sunspec_layout`); block
    offsets count from the block's model-id register, as SunSpec documents them.
    """
    if register.address is None:
        raise ValueError(f"{name} is not held in a register")
    if register.block is not None:
        starts = blocks if blocks is not None else sunspec_layout(profile)
        base = starts[register.block]
        address = base + register.address
        scale_factor = None if register.scale_factor is None else base + register.scale_factor
    else:
        address = profile.wire_address(register.address)
        scale_factor = None
    return RegisterSpec(
        name=name,
        function=register.function,
        address=address,
        count=register.registers,
        type=register.type,
        order=register.order,
        scale=register.scale,
        offset=register.offset,
        sentinel=register.sentinel,
        mask=register.mask,
        shift=register.shift,
        scale_factor_address=scale_factor,
        invert=register.invert,
        charset=register.charset,
    )


def resolve_switch(
    profile: Profile, name: str, switch: Switch, blocks: Mapping[str, int] | None = None
) -> RegisterSpec:
    """The wire spec of a switch (a SunSpec block offset like `resolve`'s)."""
    if switch.block is not None:
        address = (blocks if blocks is not None else sunspec_layout(profile))[switch.block]
        address += switch.address
    else:
        address = profile.wire_address(switch.address)
    kind = DataType.BITFIELD if switch.function.is_bit else DataType.U16
    return RegisterSpec(name, switch.function, address, 1, kind, WordOrder.ABCD)


def field_specs(
    profile: Profile, blocks: Mapping[str, int] | None = None
) -> dict[str, RegisterSpec]:
    """Every readable field of the profile, resolved; the input of a read plan."""
    return {
        str(q): resolve(profile, str(q), f, blocks) for q, f in profile.fields.items() if f.readable
    }


def timeout_enable(profile: Profile) -> RegisterSpec | None:
    """The register switching the device's timeout on (`enable_address`), if it has one."""
    timeout = profile.failsafe.timeout
    if timeout is None or timeout.enable_address is None:
        return None
    return RegisterSpec(
        "timeout enable",
        Function.HOLDING,
        profile.wire_address(timeout.enable_address),
        timeout.enable_type.registers or 1,
        timeout.enable_type,
        WordOrder.ABCD,
    )


def setpoint_phases(setpoint: Setpoint) -> tuple[str, ...]:
    """Path suffixes of a setpoint's registers: one, or L1 to L3 `phase_stride` apart."""
    return ("", ".l2", ".l3") if setpoint.per_phase else ("",)


def all_registers(profile: Profile) -> dict[str, tuple[int | None, RegisterSpec]]:
    """Every register the profile names, by path, with its unit id override.

    Fields, identification, setpoints, switches and the failsafe registers:
    the set the overlap check and the simulated device work on.
    """
    found: dict[str, tuple[int | None, RegisterSpec]] = {}
    for q, f in profile.fields.items():
        found[f"fields.{q}"] = (None, resolve(profile, str(q), f))
    for i, ident in enumerate(profile.identification):
        found[f"identification[{i}]"] = (ident.unit_id, resolve(profile, ident.what, ident))
    for name, setpoint in profile.commands.setpoints.items():
        first = resolve(profile, name, setpoint)
        for phase, suffix in enumerate(setpoint_phases(setpoint)):
            shifted = replace(first, address=first.address + phase * (setpoint.phase_stride or 0))
            found[f"commands.{name}{suffix}"] = (None, shifted)
    for name in ("enable", "phase_switch"):
        switch = getattr(profile.commands, name)
        if switch is not None:
            found[f"commands.{name}"] = (None, resolve_switch(profile, name, switch))
    failsafe = profile.failsafe
    for name, register in (("timeout", failsafe.timeout), ("fallback", failsafe.fallback)):
        if register is not None and register.address is not None:
            found[f"failsafe.{name}"] = (None, resolve(profile, name, register))
        if register is not None and register.read_at is not None:
            found[f"failsafe.{name}.read"] = (None, resolve(profile, name, register.read_at))
    enable = timeout_enable(profile)
    if enable is not None:
        found["failsafe.timeout.enable"] = (None, enable)
    beat = failsafe.heartbeat
    if beat is not None and beat.address is not None:
        found["failsafe.heartbeat"] = (
            None,
            RegisterSpec(
                "heartbeat",
                beat.function,
                profile.wire_address(beat.address),
                1,
                DataType.U16,
                WordOrder.ABCD,
            ),
        )
    return found

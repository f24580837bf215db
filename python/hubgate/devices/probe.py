"""Which firmware profile fits a live device: try every profile's identification.

A profile matches when every identification register it names can be read
(SunSpec profiles: when their model blocks are found from the base) and every
`match` pattern matches the text read. Matches are ranked by the patterns
they passed (each SunSpec block found counts as one), so a device recognised by its vendor string beats a profile that
only found a readable register, and then by whether all of the profile's
fields can be read. The firmware read is checked against the
profile's range where both are dotted version numbers.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from hubgate.devices.errors import SunSpecDiscoveryError
from hubgate.devices.profile_driver import ProfileDevice
from hubgate.devices.sunspec import discover
from hubgate.modbus.codec import FieldValue, Request, Response
from hubgate.modbus.errors import ModbusBadResponseError, ModbusExceptionError, ModbusTimeoutError
from hubgate.modbus.master import Master, ModbusDevice
from hubgate.profiles.codec_fields import field_of
from hubgate.profiles.model import Firmware, Function, Profile
from hubgate.profiles.plan import RegisterSpec, resolve

_NO_ANSWER = (ModbusExceptionError, ModbusTimeoutError, ModbusBadResponseError)
_VERSION = re.compile(r"v?(\d+(?:\.\d+)+)")


@dataclass(frozen=True)
class ProbeResult:
    """What trying one profile found."""

    profile: str
    vendor: str
    model: str
    matched: bool
    patterns: int
    """Identification patterns that matched (the rank of a match)."""
    read: dict[str, str] = field(default_factory=dict)
    """Identification text by what it is (vendor, model, firmware, ...)."""
    firmware_in_range: bool | None = None
    """None when no firmware was read or the versions do not compare."""
    fields_readable: bool = False
    """Every field of the profile reads without an error (ranks matches with equal patterns)."""
    reason: str | None = None
    """Why it did not match."""

    @property
    def firmware(self) -> str | None:
        """The firmware the device reported, if the profile reads it."""
        return self.read.get("firmware")


def as_text(value: FieldValue) -> str:
    """A decoded identification value as the text patterns match."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def version(text: str) -> tuple[int, ...] | None:
    """The dotted version number at the start of `text` ("v3.187.0" → (3, 187, 0))."""
    found = _VERSION.match(text.strip())
    return None if found is None else tuple(int(p) for p in found.group(1).split("."))


def in_range(firmware: Firmware, text: str) -> bool | None:
    """Whether `text` lies in [min, below); None when they do not compare."""
    got = version(text)
    low = version(firmware.min) if firmware.min else ()
    high = version(firmware.below) if firmware.below else None
    if got is None or low is None or (firmware.below and high is None):
        return None
    return got >= low and (high is None or got < high)


async def _read(link: ModbusDevice, spec: RegisterSpec) -> FieldValue:
    request: Request
    if spec.function is Function.COIL:
        request = Request.ReadCoils(spec.address, 1)
    elif spec.function is Function.DISCRETE:
        request = Request.ReadDiscreteInputs(spec.address, 1)
    elif spec.function is Function.INPUT:
        request = Request.ReadInputRegisters(spec.address, spec.count)
    else:
        request = Request.ReadHoldingRegisters(spec.address, spec.count)
    response = await link.request(request)
    assert not isinstance(response, Response.Exception)
    return field_of(spec).decode(response)


async def try_profile(master: Master, unit: int | None, profile: Profile) -> ProbeResult:
    """Read `profile`'s identification from the device (`unit` or the profile's own)."""
    own = ModbusDevice(master, profile.transport.unit if unit is None else unit)
    blocks: dict[str, int] = {}
    read: dict[str, str] = {}
    patterns = 0
    try:
        if profile.sunspec is not None:
            base = profile.wire_address(profile.sunspec.base)
            blocks = await discover(own, profile.sunspec, base)
            patterns += len(blocks)  # a profile finding more of the chain is more specific
        for ident in profile.identification:
            link = own if ident.unit_id is None else ModbusDevice(master, ident.unit_id)
            text = as_text(await _read(link, resolve(profile, ident.what, ident, blocks)))
            read[ident.what] = text
            if ident.match is not None:
                if re.search(ident.match, text) is None:
                    reason = f"{ident.what} {text!r} does not match {ident.match!r}"
                    return _result(profile, patterns, read, reason=reason)
                patterns += 1
    except (*_NO_ANSWER, SunSpecDiscoveryError) as exc:
        return _result(profile, patterns, read, reason=str(exc))
    try:
        await ProfileDevice(profile.name, profile, own).read()
    except (*_NO_ANSWER, SunSpecDiscoveryError):
        return _result(profile, patterns, read)
    return _result(profile, patterns, read, fields_readable=True)


def _result(
    profile: Profile,
    patterns: int,
    read: dict[str, str],
    *,
    reason: str | None = None,
    fields_readable: bool = False,
) -> ProbeResult:
    firmware = read.get("firmware")
    return ProbeResult(
        profile=profile.name,
        vendor=profile.vendor,
        model=profile.model,
        matched=reason is None,
        patterns=patterns,
        read=read,
        firmware_in_range=None if firmware is None else in_range(profile.firmware, firmware),
        reason=reason,
        fields_readable=fields_readable,
    )


async def probe(master: Master, unit: int | None, profiles: Iterable[Profile]) -> list[ProbeResult]:
    """Every profile tried against the device, best match first: most patterns matched,
    then every field readable, then firmware not out of range."""
    results = [await try_profile(master, unit, profile) for profile in profiles]
    return sorted(results, key=lambda r: (not r.matched, -r.patterns, r.firmware_in_range is False))

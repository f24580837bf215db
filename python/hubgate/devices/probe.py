"""Which firmware profile fits a live device: scan unit ids, ask the device who it is, then
try every profile's identity check.

For each unit id that answers at all (any response, even an exception), the probe first
reads what the device says about itself: the FC43/14 device-identification objects and the
SunSpec common model (manufacturer, model, serial, firmware). Then every profile's identity
check runs: its SunSpec model blocks must be found, every identification register read and
every `match` pattern match, and a manufacturer the device names must be the profile's
vendor (or a brand it is also sold as); a profile with no vendor or model evidence (only
plausibility markers, or none) must also read all its fields. Only profiles that pass are
matches; they are ranked by their evidence: vendor/model/firmware patterns, SunSpec blocks
and the device's own manufacturer (strong), then all fields readable, then plausibility
markers, then the number of fields read (a profile that reads more of the device is the more
specific one), then firmware not out of range.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from hubgate.devices.errors import SunSpecDiscoveryError
from hubgate.devices.profile_driver import ProfileDevice
from hubgate.devices.sunspec import discover
from hubgate.modbus.codec import FieldValue, Request, Response
from hubgate.modbus.errors import (
    ModbusBadResponseError,
    ModbusError,
    ModbusExceptionError,
    ModbusTimeoutError,
)
from hubgate.modbus.master import Master, ModbusDevice
from hubgate.profiles.codec_fields import field_of
from hubgate.profiles.model import Firmware, Function, Profile
from hubgate.profiles.plan import SUNS_MARKER, RegisterSpec, resolve

_NO_ANSWER = (ModbusExceptionError, ModbusTimeoutError, ModbusBadResponseError)
_VERSION = re.compile(r"v?(\d+(?:\.\d+)+)")
_GENERIC_VENDORS = {"sunspec", "generic"}
_STRONG = {"vendor", "model", "firmware", "serial", "layout"}

SUNSPEC_BASES = (40000, 50000, 0)
"""Where a SunSpec chain may start ("SunS"), most common first."""

DEVICE_ID_OBJECTS = {0: "manufacturer", 1: "product code", 2: "firmware", 4: "product", 5: "model"}
"""FC43/14 objects the probe reports: VendorName, ProductCode, MajorMinorRevision (basic),
ProductName and ModelName (regular)."""


@dataclass(frozen=True)
class DeviceIdentity:
    """What a device says about itself, whatever profile fits it."""

    device_id: dict[str, str] = field(default_factory=dict)
    """FC43/14 objects by name (manufacturer, product code, firmware, product, model)."""
    sunspec: dict[str, str] = field(default_factory=dict)
    """SunSpec common model: manufacturer, model, firmware, serial."""

    @property
    def manufacturer(self) -> str | None:
        """The manufacturer the device names, if any."""
        return self.device_id.get("manufacturer") or self.sunspec.get("manufacturer")

    def summary(self) -> str:
        """One line: what the device said and where."""
        parts = []
        if self.device_id:
            parts.append("device id: " + ", ".join(f"{k} {v!r}" for k, v in self.device_id.items()))
        if self.sunspec:
            parts.append("SunSpec: " + ", ".join(f"{k} {v!r}" for k, v in self.sunspec.items()))
        return "; ".join(parts) or "no device id, no SunSpec common model"


@dataclass(frozen=True)
class ProbeResult:
    """What trying one profile on one unit found."""

    profile: str
    vendor: str
    model: str
    unit: int
    matched: bool
    """The profile's identity check passed."""
    evidence: tuple[str, ...] = ()
    """Why it matched (or as far as it got), strongest first."""
    strong: int = 0
    """Vendor/model/firmware/serial/layout patterns matched, SunSpec blocks found and the
    device's own manufacturer agreeing."""
    markers: int = 0
    """Plausibility markers matched (a frequency in range, a state code...)."""
    fields_readable: bool = False
    """Every field of the profile reads without an error."""
    fields: int = 0
    """Fields read (0 unless all of them read)."""
    read: dict[str, str] = field(default_factory=dict)
    """Identification text by what it is (vendor, model, firmware, serial, ...)."""
    firmware_in_range: bool | None = None
    """None when no firmware was read or the versions do not compare."""
    reason: str | None = None
    """Why it did not match."""

    @property
    def patterns(self) -> int:
        """All identity evidence counted together."""
        return self.strong + self.markers

    @property
    def firmware(self) -> str | None:
        """The firmware the device reported, if the profile reads it."""
        return self.read.get("firmware")

    @property
    def rank(self) -> tuple[bool, int, bool, int, int, bool]:
        """Higher is a better match."""
        return (
            self.matched,
            self.strong,
            self.fields_readable,
            self.markers,
            self.fields,
            self.firmware_in_range is not False,
        )


@dataclass(frozen=True)
class UnitProbe:
    """One unit id: whether it answered, what it said, and every profile tried on it."""

    unit: int
    answered: bool
    identity: DeviceIdentity = DeviceIdentity()
    results: tuple[ProbeResult, ...] = ()

    @property
    def matches(self) -> list[ProbeResult]:
        """The profiles whose identity check passed, best first."""
        return [r for r in self.results if r.matched]


def parse_units(text: str) -> list[int]:
    """`"1-10,200"` as `[1, ..., 10, 200]`; `ValueError` naming the bad part."""
    units: list[int] = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        low, dash, high = part.partition("-")
        try:
            span = range(int(low), int(high) + 1) if dash else range(int(low), int(low) + 1)
        except ValueError:
            raise ValueError(f"unit ids: {part!r} is not a number or a range like 1-10") from None
        if not span or span.start < 0 or span.stop > 256:
            raise ValueError(f"unit ids: {part!r} is outside 0-255")
        units.extend(u for u in span if u not in units)
    if not units:
        raise ValueError("unit ids: give at least one, e.g. 1 or 1-10,200")
    return units


def common_units(profiles: Iterable[Profile]) -> list[int]:
    """The default unit ids of `profiles`: what a probe without `--units` scans."""
    return sorted({p.transport.unit for p in profiles})


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


def _text(registers: Sequence[int]) -> str:
    raw = b"".join(r.to_bytes(2, "big") for r in registers)
    return raw.decode("utf-8", "replace").strip("\x00 ").strip()


_GATEWAY_EXCEPTIONS = (10, 11)
"""A gateway's "path unavailable" and "target failed to respond": nothing on that unit."""


async def answers(device: ModbusDevice) -> bool:
    """Whether anything answers on this unit: a response or an exception, not silence
    (nor a gateway saying the unit is not there)."""
    try:
        await device.request(Request.ReadHoldingRegisters(0, 1))
    except ModbusExceptionError as exc:
        return exc.code not in _GATEWAY_EXCEPTIONS
    except (ModbusTimeoutError, ModbusBadResponseError):
        return False
    return True


async def _device_id(device: ModbusDevice) -> dict[str, str]:
    found: dict[str, str] = {}
    for read_code in (1, 2):  # basic, then regular objects
        try:
            response = await device.request(Request.ReadDeviceIdentification(read_code, 0))
        except ModbusError:
            break
        if not isinstance(response, Response.ReadDeviceIdentification):
            break
        for object_id, value in response.objects:
            name = DEVICE_ID_OBJECTS.get(object_id)
            text = value.decode("utf-8", "replace").strip("\x00 ").strip()
            if name is not None and text:
                found.setdefault(name, text)
    return found


async def _sunspec_common(device: ModbusDevice) -> dict[str, str]:
    for base in SUNSPEC_BASES:
        try:
            if tuple(await device.read_registers(base, 2)) != SUNS_MARKER:
                continue
            model_id, length = await device.read_registers(base + 2, 2)
            if model_id != 1 or length < 66:
                return {}
            block = await device.read_registers(base + 4, 66)
        except ModbusError:
            continue
        points = {
            "manufacturer": (0, 16),
            "model": (16, 16),
            "firmware": (40, 8),
            "serial": (48, 16),
        }
        return {name: t for name, (at, n) in points.items() if (t := _text(block[at : at + n]))}
    return {}


async def identify(device: ModbusDevice) -> DeviceIdentity:
    """What the device says about itself: FC43/14 objects and the SunSpec common model."""
    return DeviceIdentity(await _device_id(device), await _sunspec_common(device))


def _names(profile: Profile) -> list[str]:
    """Lower-case words the device's manufacturer may contain for this profile."""
    brands = [profile.vendor, *profile.also_sold_as]
    return [b.split()[0].strip("()").lower() for b in brands if b.strip()]


async def try_profile(
    master: Master,
    unit: int | None,
    profile: Profile,
    identity: DeviceIdentity | None = None,
    silent: set[int] | None = None,
) -> ProbeResult:
    """Run `profile`'s identity check on the device (`unit`, or the profile's own), then
    read its fields. `silent` collects unit ids that did not answer (another unit an
    identification register names is not asked again)."""
    silent = set() if silent is None else silent
    unit = profile.transport.unit if unit is None else unit
    delay_s = profile.transport.delay_s  # the pause the device needs between requests
    own = ModbusDevice(master, unit, delay_s=delay_s)
    blocks: dict[str, int] = {}
    read: dict[str, str] = {}
    evidence: list[str] = []
    counts = {"strong": 0, "markers": 0}

    def result(reason: str | None = None, fields: int = 0) -> ProbeResult:
        firmware = read.get("firmware")
        return ProbeResult(
            profile=profile.name,
            vendor=profile.vendor,
            model=profile.model,
            unit=unit,
            matched=reason is None,
            evidence=tuple(evidence),
            strong=counts["strong"],
            markers=counts["markers"],
            fields_readable=reason is None and fields > 0,
            fields=fields,
            read=read,
            firmware_in_range=None if firmware is None else in_range(profile.firmware, firmware),
            reason=reason,
        )

    manufacturer = identity.manufacturer if identity else None
    if manufacturer and profile.vendor.lower() not in _GENERIC_VENDORS:
        if not any(name in manufacturer.lower() for name in _names(profile)):
            return result(f"the device says it is made by {manufacturer!r}")
        counts["strong"] += 1
        evidence.append(f"made by {manufacturer!r}")
    try:
        if profile.sunspec is not None:
            base = profile.wire_address(profile.sunspec.base)
            blocks = await discover(own, profile.sunspec, base)
            counts["strong"] += len(blocks)  # a profile finding more of the chain is more specific
            models = sorted({own_id for b in profile.sunspec.blocks.values() for own_id in b.ids})
            evidence.append(f"SunSpec blocks {', '.join(blocks)} (models {models})")
        for ident in profile.identification:
            link = (
                own
                if ident.unit_id is None
                else ModbusDevice(master, ident.unit_id, delay_s=delay_s)
            )
            if link.unit in silent:
                return result(f"unit {link.unit} ({ident.what}) does not answer")
            try:
                text = as_text(await _read(link, resolve(profile, ident.what, ident, blocks)))
            except ModbusTimeoutError:
                silent.add(link.unit)
                raise
            read[ident.what] = text
            if ident.match is not None:
                if re.search(ident.match, text) is None:
                    return result(f"{ident.what} {text!r} does not match {ident.match!r}")
                counts["strong" if ident.what in _STRONG else "markers"] += 1
                evidence.append(f"{ident.what} {text!r} matches {ident.match!r}")
    except (*_NO_ANSWER, SunSpecDiscoveryError) as exc:
        return result(str(exc))
    try:
        reading = await ProfileDevice(profile.name, profile, own).read()
    except (*_NO_ANSWER, SunSpecDiscoveryError) as exc:
        if not counts["strong"]:  # plausibility markers alone do not identify a device
            return result(f"no vendor or model evidence and not every field reads ({exc})")
        evidence.append("not every field reads")
        return result()
    fields = len(reading.values) + len(reading.text)
    evidence.append(f"all {fields} fields read")
    return result(fields=fields)


async def probe_unit(master: Master, unit: int, profiles: Iterable[Profile]) -> UnitProbe:
    """Every profile tried on one unit id, best first; nothing tried when the unit is silent."""
    device = ModbusDevice(master, unit)
    if not await answers(device):
        return UnitProbe(unit, answered=False)
    identity = await identify(device)
    silent: set[int] = set()
    results = [await try_profile(master, unit, p, identity, silent) for p in profiles]
    results.sort(key=lambda r: r.rank, reverse=True)
    return UnitProbe(unit, answered=True, identity=identity, results=tuple(results))


async def probe(
    master: Master, units: Sequence[int] | None, profiles: Iterable[Profile]
) -> list[UnitProbe]:
    """Scan `units` (default: every profile's default unit id) and try every profile on
    each unit that answers."""
    candidates = list(profiles)
    scan = list(units) if units is not None else common_units(candidates)
    return [await probe_unit(master, unit, candidates) for unit in scan]

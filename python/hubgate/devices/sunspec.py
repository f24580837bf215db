"""SunSpec model discovery: "SunS" at the base, then the chain of (id, length) headers."""

from __future__ import annotations

from hubgate.devices.errors import SunSpecDiscoveryError
from hubgate.modbus.master import ModbusDevice
from hubgate.profiles.model import SunSpec
from hubgate.profiles.plan import SUNS_MARKER, SUNSPEC_END

MAX_MODELS = 64
"""Models walked before the chain is declared broken."""


async def discover(device: ModbusDevice, sunspec: SunSpec, base: int) -> dict[str, int]:
    """Start (model-id register) of each block of `sunspec`, found on the device.

    `base` is the wire address of the marker. Blocks are matched in chain order
    by id; models the profile does not name are skipped.
    """
    if tuple(await device.read_registers(base, 2)) != SUNS_MARKER:
        raise SunSpecDiscoveryError(f"{device.name}: no 'SunS' marker at {base}")
    wanted = list(sunspec.blocks.items())
    found: dict[str, int] = {}
    address = base + len(SUNS_MARKER)
    for _ in range(MAX_MODELS):
        model_id, length = await device.read_registers(address, 2)
        if model_id == SUNSPEC_END:
            break
        for name, block in wanted:
            if name not in found and model_id in block.ids:
                found[name] = address
                break
        if len(found) == len(wanted):
            break
        address += 2 + length
    missing = [name for name, _ in wanted if name not in found]
    if missing:
        raise SunSpecDiscoveryError(
            f"{device.name}: SunSpec block(s) {', '.join(missing)} not in the model chain"
        )
    return found

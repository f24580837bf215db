"""Where a site listens and whom it polls: clashes that would stop it from running.

Checked on the validated model (so the defaults count): two of hubgate's listeners (OCPP,
API, Modbus server) on one port, and two devices on one Modbus address (TCP host, port and
unit; serial device and unit) that cannot be one device.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from dataclasses import dataclass

from hubgate.config.model import ModbusEndpoint, SerialLine, SiteConfig
from hubgate.tomlcheck import Loc, format_path


@dataclass(frozen=True)
class Listener:
    """One socket hubgate listens on; `loc` is its table in the site file."""

    name: str
    loc: Loc
    host: str
    port: int


def listeners(site: SiteConfig) -> list[Listener]:
    """The site's listening sockets: OCPP, API and (when configured) the Modbus server."""
    found = [
        Listener("the OCPP listener", ("ocpp",), site.ocpp.host, site.ocpp.port),
        Listener("the API", ("api",), site.api.host, site.api.port),
    ]
    if site.modbus_server is not None:
        server = site.modbus_server
        found.append(Listener("the Modbus server", ("modbus_server",), server.host, server.port))
    return found


def _overlap(a: str, b: str) -> bool:
    """Whether sockets bound to hosts `a` and `b` on one port would collide. Host names are
    not resolved here, so a name overlaps everything; `::` takes IPv4 too (dual stack)."""
    try:
        x, y = ipaddress.ip_address(a.strip("[]")), ipaddress.ip_address(b.strip("[]"))
    except ValueError:
        return True
    if x == y or (x.version == 6 and x.is_unspecified) or (y.version == 6 and y.is_unspecified):
        return True
    return x.version == y.version and (x.is_unspecified or y.is_unspecified)


def listener_problems(site: SiteConfig) -> list[tuple[Loc, str]]:
    """Listeners sharing a port (0, a free port picked at start, never clashes)."""
    problems: list[tuple[Loc, str]] = []
    seen: list[Listener] = []
    for listener in listeners(site):
        clash = next(
            (o for o in seen if listener.port == o.port and _overlap(listener.host, o.host)), None
        )
        if listener.port and clash is not None:
            problems.append(
                (
                    (*listener.loc, "port"),
                    f"port {listener.port} is also {clash.name}'s "
                    f"({format_path((*clash.loc, 'port'))}); give each listener its own port",
                )
            )
        seen.append(listener)
    return problems


def modbus_devices(site: SiteConfig) -> Iterator[tuple[Loc, ModbusEndpoint]]:
    """Every Modbus device of the site with the path of its `modbus` table."""
    for index, charger in enumerate(site.chargers):
        if charger.modbus is not None:
            yield ("chargers", index, "modbus"), charger.modbus
    for index, meter in enumerate(site.meters):
        yield ("meters", index, "modbus"), meter.modbus
    for index, pv in enumerate(site.pv):
        yield ("pv", index, "modbus"), pv.modbus
    if site.battery is not None:
        yield ("battery", "modbus"), site.battery.modbus
    if site.grid_operator is not None and site.grid_operator.modbus is not None:
        yield ("grid_operator", "modbus"), site.grid_operator.modbus


def _address(endpoint: ModbusEndpoint) -> str:
    if endpoint.serial is not None:
        return f"{endpoint.serial.device} unit {endpoint.unit}"
    return f"{endpoint.host}:{endpoint.port} unit {endpoint.unit}"


def _key(endpoint: ModbusEndpoint) -> tuple[str, int, int]:
    if endpoint.serial is not None:
        return endpoint.serial.device, 0, endpoint.unit
    return (endpoint.host or "").lower(), endpoint.port, endpoint.unit


def device_problems(site: SiteConfig) -> list[tuple[Loc, str]]:
    """Two devices on one Modbus address where one device cannot be both: two of one role
    (two meters, two PV inverters), or a charger with anything. One device in different
    roles is fine: a hybrid inverter is the PV, the battery and often the grid meter."""
    problems: list[tuple[Loc, str]] = []
    seen: dict[tuple[str, int, int], list[Loc]] = {}
    for loc, endpoint in modbus_devices(site):
        others = seen.setdefault(_key(endpoint), [])
        clash = next((o for o in others if o[0] == loc[0] or "chargers" in (o[0], loc[0])), None)
        if clash is not None:
            problems.append(
                (
                    (*loc, "unit"),
                    f"{_address(endpoint)} is also {format_path(clash)}'s address; "
                    "give each device its own unit id (or host, port, serial device)",
                )
            )
        others.append(loc)
    return problems + _line_problems(site)


def _line_problems(site: SiteConfig) -> list[tuple[Loc, str]]:
    """Devices on one serial line with other line settings (given, or their profiles')."""
    problems: list[tuple[Loc, str]] = []
    first: dict[str, tuple[Loc, SerialLine]] = {}
    for loc, endpoint in modbus_devices(site):
        line = endpoint.serial
        if line is None:
            continue
        seen = first.setdefault(line.device, (loc, line))
        if seen[1] != line:
            other = seen[1]
            problems.append(
                (
                    (*loc, "serial"),
                    f"serial line {line.device} is {_settings(line)} here but"
                    f" {_settings(other)} in {format_path(seen[0])}; a line has one setting:"
                    " give baud, parity and stop_bits the same on every device on it",
                )
            )
    return problems


def _settings(line: SerialLine) -> str:
    return f"{line.baud} {line.parity.value}{line.stop_bits}"

"""`hubgate run --check`: what would stop a valid site file from running on this machine.

Every listener's port can be bound now (then released at once), every device address is
well-formed (a TCP host is an IP address or a valid host name; a serial device exists).
"""

from __future__ import annotations

import errno
import ipaddress
import os
import re
import socket

from hubgate.config.addresses import listeners, modbus_devices
from hubgate.config.model import SiteConfig
from hubgate.tomlcheck import Loc

_LABEL = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")


def host_problem(host: str) -> str | None:
    """Why `host` is not an IP address or an RFC 1123 host name; None when it is one."""
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        labels = host.removesuffix(".").split(".")
        if len(host) > 253 or not all(_LABEL.match(label) for label in labels):
            return f"'{host}' is neither an IP address nor a host name"
    return None


def bind_problem(host: str, port: int) -> str | None:
    """Why a listening socket on (host, port) cannot be bound now; None when it can."""
    try:
        addresses = socket.getaddrinfo(
            host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )
    except socket.gaierror as exc:
        return f"cannot resolve '{host}': {exc.strerror}"
    for family, kind, proto, _name, address in addresses:
        with socket.socket(family, kind, proto) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the listeners do
            try:
                sock.bind(address)
            except OSError as exc:
                return f"cannot listen on {host}:{port}: {listen_fix(exc, host, port)}"
    return None


def listen_fix(error: OSError, host: str, port: int, field: str = "") -> str:
    """Why a listener cannot bind `host:port`, with the fix its error calls for (`field`:
    where its port is set, when the message does not say it already)."""
    why = error.strerror or str(error)
    where = f" ({field}; 0 takes any free one)" if field else ""
    if error.errno == errno.EADDRINUSE:
        return f"{why}; stop the program that holds it or pick another port{where}"
    if error.errno == errno.EACCES and 0 < port < 1024:
        return (
            f"{why}; a port below 1024 needs root or CAP_NET_BIND_SERVICE: pick a higher one{where}"
        )
    if error.errno == errno.EADDRNOTAVAIL:
        return f"{why}; '{host}' is no address of this machine: give one of its own, or 0.0.0.0"
    return why


def preflight_problems(site: SiteConfig) -> list[tuple[Loc, str]]:
    """Every listener that cannot bind and every malformed device address, as (path, why)."""
    problems: list[tuple[Loc, str]] = []
    for listener in listeners(site):
        if listener.port:
            why = bind_problem(listener.host, listener.port)
            if why is not None:
                problems.append(((*listener.loc, "port"), why))
    for loc, endpoint in modbus_devices(site):
        if endpoint.host is not None:
            why = host_problem(endpoint.host)
            if why is not None:
                problems.append(((*loc, "host"), why))
        if endpoint.serial is not None and not os.path.exists(endpoint.serial.device):
            problems.append(
                (
                    (*loc, "serial", "device"),
                    f"serial device {endpoint.serial.device} does not exist; "
                    "is the adapter plugged in?",
                )
            )
    if site.mqtt is not None:
        why = host_problem(site.mqtt.host)
        if why is not None:
            problems.append((("mqtt", "host"), why))
    return problems

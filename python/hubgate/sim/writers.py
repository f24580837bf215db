"""Who commanded the simulated devices: every Modbus write and every OCPP
SetChargingProfile, with the process that sent it (`hubgate sim --serve --writes FILE`).

The evidence that two gateways never command at once: the sender is the process on
this machine that owns the other end of the TCP connection the command came over
(Linux: `/proc/net/tcp` and each process's `/proc/PID/fd`), looked up once per
connection. One JSON object per line: wall-clock time, simulated time, the device,
what was written and the sender's pid (null when not found, e.g. another machine).
"""

from __future__ import annotations

import contextvars
import json
import os
import queue
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TextIO

Address = tuple[str, int]
Connection = tuple[Address, Address]
"""(our address, theirs)."""

PEER: contextvars.ContextVar[Connection | None] = contextvars.ContextVar(
    "modbus_peer", default=None
)
"""The Modbus connection the request being served came over."""

OnWrite = Callable[[str, dict[str, Any], Connection | None], None]
"""Told of every command: the device, what was written, the connection."""


def _hex(address: Address) -> str:
    """An IPv4 address as /proc/net/tcp writes it."""
    packed = socket.inet_aton(address[0])
    return f"{int.from_bytes(packed, 'little'):08X}:{address[1]:04X}"


def socket_inode(local: Address, remote: Address) -> str | None:
    """The inode of the TCP socket whose own address is `local` and peer `remote`."""
    want = (_hex(local), _hex(remote))
    try:
        lines = Path("/proc/net/tcp").read_text(encoding="ascii").splitlines()[1:]
    except OSError:
        return None
    for line in lines:
        fields = line.split()
        if (fields[1], fields[2]) == want:
            return fields[9]
    return None


def owner_pid(inode: str) -> int | None:
    """The process that holds the socket `inode` open."""
    target = f"socket:[{inode}]"
    with os.scandir("/proc") as processes:
        for process in processes:
            if process.name.isdigit() and target in _descriptors(process.name):
                return int(process.name)
    return None


def _descriptors(pid: str) -> Iterator[str]:
    """What the files process `pid` holds open are (`socket:[inode]` for a socket)."""
    try:
        fds = list(os.scandir(f"/proc/{pid}/fd"))
    except OSError:  # gone, or not ours to read
        return
    for fd in fds:
        try:
            yield os.readlink(fd.path)
        except OSError:  # closed since the listing: the process's other files still count
            continue


class WriterLog:
    """The log file, written by a thread of its own (finding a sender scans /proc, which
    must not hold up the simulation); `record` one command as it arrives."""

    def __init__(self, path: Path) -> None:
        self._file: TextIO = path.open("a", encoding="utf-8", buffering=1)
        self._pids: dict[Connection, int | None] = {}
        self._queue: queue.SimpleQueue[tuple[dict[str, Any], Connection | None] | None] = (
            queue.SimpleQueue()
        )
        self._thread = threading.Thread(target=self._write, name="sim-writers", daemon=True)
        self._thread.start()

    def sender(self, ours: Address, theirs: Address) -> int | None:
        """The pid at the other end of our connection `ours` ↔ `theirs` (cached once
        found; not found is asked again at the connection's next command)."""
        key = (ours, theirs)
        if self._pids.get(key) is None:
            inode = socket_inode(theirs, ours)
            self._pids[key] = None if inode is None else owner_pid(inode)
        return self._pids[key]

    def record(
        self,
        sim_s: float,
        device: str,
        kind: str,
        what: dict[str, Any],
        connection: Connection | None,
    ) -> None:
        """One command to `device` (`kind`: modbus or ocpp) over `connection`."""
        line = {"at": time.time(), "sim_s": sim_s, "device": device, "kind": kind}
        self._queue.put((line | what, connection))

    def _write(self) -> None:
        while (item := self._queue.get()) is not None:
            line, connection = item
            line["pid"] = None if connection is None else self.sender(*connection)
            self._file.write(json.dumps(line) + "\n")

    def close(self) -> None:
        """Write what is queued and close the file."""
        self._queue.put(None)
        self._thread.join(30)
        self._file.close()

"""A gateway (`hubgate run`) in its own process with few file descriptors, and the floods
of issue 19 against it: idle connections on every listener, pipelined Heartbeats that are
never read, large unauthenticated API bodies. Its RSS is read from /proc."""

from __future__ import annotations

import contextlib
import re
import resource
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import trio

from hubgate.benchmarking.footprint import rss_mib

HUBGATE = str(Path(sys.executable).parent / "hubgate")
IDENTITY = "FLOOD-1"
SITE = f"""\
[site]
name = "flood"

[grid]
phase_current_limit_a = 80

[ocpp]
port = 0

[api]
port = 0
token = "flood-test-token-0123"

[modbus_server]
port = 0

[[chargers]]
id = "cp-1"
node = "grid"
ocpp = {{ identity = "{IDENTITY}" }}
connectors = [{{ id = 1, max_current_a = 32 }}]
"""


@dataclass
class Gateway:
    """The gateway process and where it listens."""

    process: trio.Process
    ocpp: int
    api: int
    modbus: int

    @property
    def ocpp_url(self) -> str:
        """Where charger `IDENTITY` connects."""
        return f"ws://127.0.0.1:{self.ocpp}/ocpp/{IDENTITY}"

    def rss_mib(self) -> float:
        """Its resident memory now."""
        return rss_mib(self.process.pid)

    def open_descriptors(self) -> int:
        """Its open file descriptors now."""
        return len(list(Path(f"/proc/{self.process.pid}/fd").iterdir()))


def _lower_descriptors(nofile: int) -> None:
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, hard))


@asynccontextmanager
async def running_gateway(folder: Path, nofile: int) -> AsyncIterator[Gateway]:
    """`hubgate run` of `SITE` in `folder` with at most `nofile` descriptors; its stderr goes to
    `folder/gateway.log`."""
    site = folder / "flood.toml"
    site.write_text(SITE)
    log = (folder / "gateway.log").open("wb")
    process = await trio.lowlevel.open_process(
        [HUBGATE, "run", str(site)],
        stdout=subprocess.PIPE,
        stderr=log,
        cwd=folder,  # its records file goes there, not into the checkout
        preexec_fn=lambda: _lower_descriptors(nofile),
    )
    try:
        assert process.stdout is not None
        text = ""
        with trio.fail_after(60):
            while "dashboard: " not in text:
                chunk = await process.stdout.receive_some(4096)
                assert chunk, f"the gateway ended: {text}"
                text += chunk.decode()
        ocpp = int(re.search(r"OCPP on ws://[^:]+:(\d+)/", text).group(1))  # type: ignore[union-attr]
        modbus = int(re.search(r"Modbus server on [^:]+:(\d+)", text).group(1))  # type: ignore[union-attr]
        api = int(re.search(r"dashboard: http://[^:]+:(\d+)/", text).group(1))  # type: ignore[union-attr]
        yield Gateway(process, ocpp, api, modbus)
    finally:
        process.kill()
        with trio.move_on_after(10):
            await process.wait()
        log.close()


async def open_idle(port: int, count: int) -> list[trio.SocketStream]:
    """`count` connections to `port` that send nothing."""
    return [await trio.open_tcp_stream("127.0.0.1", port) for _ in range(count)]


async def close_all(streams: list[trio.SocketStream]) -> None:
    for stream in streams:
        await trio.aclose_forcefully(stream)


async def pipelined_heartbeats(url: str, count: int) -> int:
    """Send up to `count` Heartbeats to the OCPP listener at `url` (1.6, no deflate, a 4 KiB
    receive buffer) without reading a single answer; how many went out before it hung up."""
    from tests.support.deflate_peer import DeflatePeer

    peer = await DeflatePeer.open(url, "ocpp1.6", deflate=False, receive_buffer=4096)
    sent = 0
    try:
        while sent < count:
            peer.send([2, str(sent), "Heartbeat", {}])
            await peer.flush()
            sent += 1
    except (trio.BrokenResourceError, trio.ClosedResourceError):
        pass
    finally:
        await trio.aclose_forcefully(peer.stream)
    return sent


async def unauthenticated_bodies(port: int, count: int, size: int) -> list[int]:
    """PUT `count` bodies of `size` bytes without a token, each sent whole whatever the
    gateway answers after the head; the status of each (0: no answer)."""
    return [await _unauthenticated_body(port, size) for _ in range(count)]


async def _unauthenticated_body(port: int, size: int) -> int:
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    head = (
        f"PUT /api/v1/limits/site HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Content-Type: application/json\r\nContent-Length: {size}\r\n\r\n"
    )
    answer = b""
    gone = (trio.BrokenResourceError, trio.ClosedResourceError)

    async def read() -> None:
        nonlocal answer
        with contextlib.suppress(*gone):
            while data := await stream.receive_some(4096):
                answer += data

    chunk = b"x" * 65_536
    with trio.fail_after(120):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(read)
            with contextlib.suppress(*gone):
                await stream.send_all(head.encode())
                for _ in range(size // len(chunk)):
                    await stream.send_all(chunk)
                await stream.send_eof()
    await trio.aclose_forcefully(stream)
    return int(answer.split(b" ")[1]) if answer.startswith(b"HTTP/") else 0

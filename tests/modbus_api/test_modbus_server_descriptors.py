"""The Modbus server out of file descriptors: it backs off, makes room and keeps serving,
with a few log lines instead of a traceback every 100 ms (issue 19, item 6)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import trio
from pymodbus.client import ModbusTcpClient

SCRIPT = Path(__file__).parent.parent / "support" / "modbus_server_process.py"
NOFILE = 48
IDLE = 300


def read_site_registers(port: int) -> list[int]:
    client = ModbusTcpClient("127.0.0.1", port=port, timeout=30, retries=0)
    assert client.connect()
    try:
        registers: list[int] = client.read_input_registers(0, count=2, device_id=1).registers
        return registers
    finally:
        client.close()


@pytest.mark.timeout(90)  # after its deadline, so that Trio ends it cleanly
async def test_out_of_descriptors_the_server_backs_off_and_serves_a_new_client() -> None:
    command = [sys.executable, str(SCRIPT), str(NOFILE), "1024"]  # no cap: descriptors run out
    process = await trio.lowlevel.open_process(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert process.stdout is not None
    assert process.stderr is not None
    idle: list[trio.SocketStream] = []
    try:
        with trio.fail_after(60):
            line = b""
            while not line.endswith(b"\n"):
                line += await process.stdout.receive_some(64)
            port = int(line)
            for _ in range(IDLE):
                idle.append(await trio.open_tcp_stream("127.0.0.1", port))
            registers = await trio.to_thread.run_sync(read_site_registers, port)
            assert registers == [1, 0]  # map version 1, no snapshot yet
    finally:
        for stream in idle:
            await trio.aclose_forcefully(stream)
        process.kill()
        with trio.fail_after(10):
            await process.wait()
    log = b""
    while chunk := await process.stderr.receive_some(65536):
        log += chunk
    lines = log.decode().splitlines()
    assert any("cannot accept: EMFILE" in line for line in lines), lines
    assert "Traceback" not in log.decode()
    assert len(lines) <= 6, lines  # rate-limited: about one line per 10 s and kind

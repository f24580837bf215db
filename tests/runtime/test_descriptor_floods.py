"""2,000 idle connections on each listener of a gateway whose descriptor limit is lowered to
256 (issue 19: 1,100 idle Modbus connections locked the OCPP chargers and the API out at
the usual 1,024): while they are open, a charger boots, the API and a Modbus client are
served, the gateway's descriptors stay under its limit and its log stays short. The RSS
figures of these floods are in bench/test_bench_floods.py."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
import trio
from ocpp.v16 import call as call16

from tests.support.charge_points import ChargePointThread, Cp16
from tests.support.floods import IDENTITY, close_all, open_idle, running_gateway
from tests.support.peers import require_peer

NOFILE = 256
IDLE = 2_000


async def mbpoll_read(port: int) -> bytes:
    """Input registers 0 and 1 read by mbpoll (its own process: this one has thousands of
    descriptors open, past what select() in pymodbus's synchronous client takes)."""
    command = [require_peer("mbpoll"), "-m", "tcp", "-p", str(port), "-a", "1", "-0", "-1"]
    command += ["-t", "3", "-r", "0", "-c", "2", "-o", "5", "127.0.0.1"]
    result = await trio.run_process(command, capture_stdout=True, capture_stderr=True)
    return bytes(result.stdout)


@pytest.mark.timeout(300)  # after its deadline, so that Trio ends it cleanly
@pytest.mark.peers("mbpoll")
async def test_idle_floods_on_every_listener_lock_nobody_out(tmp_path: Path) -> None:
    async with running_gateway(tmp_path, NOFILE) as gateway:
        idle = []
        try:
            with trio.fail_after(180):
                for port in (gateway.ocpp, gateway.modbus, gateway.api):
                    idle += await open_idle(port, IDLE)
                assert gateway.open_descriptors() < NOFILE
                charger = ChargePointThread(
                    Cp16, f"ws://127.0.0.1:{gateway.ocpp}/ocpp/{IDENTITY}", subprotocols=["ocpp1.6"]
                )
                await trio.to_thread.run_sync(charger.start)
                boot = call16.BootNotification(charge_point_model="M", charge_point_vendor="V")
                answer = await trio.to_thread.run_sync(charger.call, boot)
                assert answer.status == "Accepted"
                async with httpx.AsyncClient(timeout=30) as client:
                    health = await client.get(f"http://127.0.0.1:{gateway.api}/api/v1/health")
                assert health.status_code in (200, 503)
                polled = await mbpoll_read(gateway.modbus)
                assert b"[0]:\t1\n[1]:\t1" in polled.replace(b" ", b"")  # map 1, a snapshot
                assert gateway.open_descriptors() < NOFILE
                await trio.to_thread.run_sync(charger.stop)
        finally:
            await close_all(idle)
    log = (tmp_path / "gateway.log").read_text().splitlines()
    assert "Traceback" not in "\n".join(log)
    assert len(log) < 40, log  # rate-limited: a few lines per listener, not one per connection

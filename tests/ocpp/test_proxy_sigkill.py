"""`hubgate ocpp serve --csms`: SIGKILL during replay, restart, replay resumes; nothing lost."""

from __future__ import annotations

import signal
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest
import trio

from hubgate.cloud.store import Store
from tests.support.charge_points import ChargePointThread, Cp16
from tests.support.csms import proxy_csms
from tests.support.proxy import HUBGATE, IDENTITIES, outage_script, proxy_site

TRANSACTIONS = 50  # per charge point: 500 messages each, 2,000 in all


class Hubgate:
    """`hubgate ocpp serve` as a child process."""

    def __init__(self, site: Path, csms_port: int) -> None:
        self.process = subprocess.Popen(
            [
                HUBGATE,
                "ocpp",
                "serve",
                str(site),
                "--port",
                "0",
                "--status-every",
                "60",
                "--csms",
                f"ws://127.0.0.1:{csms_port}/ocpp",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )

    async def url(self, identity: str) -> str:
        assert self.process.stdout is not None
        line = await trio.to_thread.run_sync(self.process.stdout.readline)
        assert line.startswith("listening on "), line
        return line.split()[-1].replace("<identity>", identity)

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)
        assert self.process.returncode == -signal.SIGKILL
        self.close()

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)
        self.close()

    def close(self) -> None:
        assert self.process.stdout is not None
        self.process.stdout.close()


async def _connect(base_url: str) -> list[ChargePointThread]:
    peers = []
    for identity in IDENTITIES:
        peer = ChargePointThread(
            Cp16, base_url.replace("/K0", f"/{identity}"), subprotocols=["ocpp1.6"]
        )
        peers.append(await trio.to_thread.run_sync(peer.start))
    return peers


@pytest.mark.timeout(180)  # after the two deadlines below: Trio ends the test cleanly
async def test_sigkill_during_replay_resumes_after_restart(tmp_path: Path) -> None:
    site = proxy_site(tmp_path)
    csms = await trio.to_thread.run_sync(proxy_csms().start)
    await trio.to_thread.run_sync(csms.stop)  # the CSMS is away; its port is known
    total = len(IDENTITIES) * TRANSACTIONS * 10
    expected: dict[str, list[str]] = {}
    first = Hubgate(site, csms.port)
    try:
        with trio.fail_after(60):
            peers = await _connect(await first.url("K0"))

            async def outage(peer: ChargePointThread) -> None:
                base = datetime(2026, 11, 1, tzinfo=UTC)
                expected[peer.identity] = await trio.to_thread.run_sync(
                    outage_script, peer, TRANSACTIONS, base
                )

            async with trio.open_nursery() as nursery:
                for peer in peers:
                    nursery.start_soon(outage, peer)
            # every message was answered, so it is on disk: replay starts with the CSMS
            await trio.to_thread.run_sync(csms.start)
            received_at_kill = await trio.to_thread.run_sync(csms.wait_calls, total // 4, 20)
            await trio.to_thread.run_sync(first.kill)
            assert total // 4 <= received_at_kill < total  # killed during replay
            for peer in peers:  # their connections died with hubgate
                await trio.to_thread.run_sync(peer.wait_closed, 5)
    finally:
        if first.process.returncode is None:
            first.kill()
        first.close()

    store = Store(tmp_path / "q.sqlite3")
    left = store.pending_count()
    store.close()
    assert 0 < left <= total - received_at_kill + len(IDENTITIES)  # in flight: at most one each

    second = Hubgate(site, csms.port)
    try:
        with trio.fail_after(60):
            peers = await _connect(await second.url("K0"))  # the chargers come back
            last = {identity: ids[-1] for identity, ids in expected.items()}
            await trio.to_thread.run_sync(csms.wait_delivered, last, 40)
            for peer in peers:
                await trio.to_thread.run_sync(peer.stop)
    finally:
        second.stop()
        await trio.to_thread.run_sync(csms.stop)

    repeats = 0
    for identity, ids in expected.items():
        frames = csms.calls(identity)
        collapsed = [f for i, f in enumerate(frames) if i == 0 or frames[i - 1][1] != f[1]]
        assert [f[1] for f in collapsed] == ids  # in order, none lost
        current = None
        for frame in collapsed:  # local transaction ids became the CSMS's, across the restart
            if frame[2] == "StartTransaction":
                current = csms.transaction_id(identity, frame[1])
            else:
                assert frame[3]["transactionId"] == current, frame
        extra = len(frames) - len(collapsed)
        assert extra <= 1  # only the message in flight at the kill, sent again at once
        repeats += extra
    assert repeats <= len(IDENTITIES)
    store = Store(tmp_path / "q.sqlite3")
    assert store.pending_count() == 0
    store.close()


def test_serve_rejects_a_csms_url_that_is_not_websocket(tmp_path: Path) -> None:
    done = subprocess.run(
        [HUBGATE, "ocpp", "serve", str(proxy_site(tmp_path)), "--csms", "http://example"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 1
    assert done.stderr.startswith("hubgate: error: --csms http://example: String should match")
    assert done.stderr.count("\n") == 1

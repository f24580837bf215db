"""SIGKILL at random moments loses nothing acknowledged; replay resumes without duplicates."""

from __future__ import annotations

import random
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import trio

from hubgate.cloud.store import Store
from tests.support.queue_worker import csms_transaction_id, transaction_script

WORKER = Path(__file__).parent.parent / "support" / "queue_worker.py"
CHARGE_POINTS = ("CP1", "CP2", "CP3", "CP4")


RUN_S = 60.0
"""How long one worker may take, its interpreter's start included (0.6 s of CPU: several
seconds at a load of 20, which made 90 s for 20 runs too short)."""


async def run_and_kill(args: list[str], kill_after: float | None) -> str:
    """Run the worker; SIGKILL it `kill_after` seconds after its first line; its whole stdout
    (the test fails when it takes over `RUN_S`)."""
    process = await trio.lowlevel.open_process(
        [sys.executable, str(WORKER), *args], stdout=subprocess.PIPE
    )
    assert process.stdout is not None
    output = bytearray()
    try:
        with trio.fail_after(RUN_S):
            with trio.CancelScope() as timer:
                while chunk := await process.stdout.receive_some():
                    if not output and kill_after is not None:
                        timer.deadline = trio.current_time() + kill_after
                    output += chunk
            if timer.cancelled_caught:
                process.send_signal(signal.SIGKILL)
            while chunk := await process.stdout.receive_some():  # written before the kill
                output += chunk
            await process.wait()
    finally:
        with trio.CancelScope(shield=True):  # a run that failed leaves no pipe to the next test
            if process.returncode is None:
                process.kill()
                await process.wait()
            await process.stdout.aclose()
    assert process.returncode in (0, -signal.SIGKILL), process.returncode
    return output.decode()


@pytest.mark.timeout(20 * RUN_S + 30)  # after run_and_kill's, so that Trio ends the test
async def test_sigkill_during_enqueue_loses_nothing_acknowledged(tmp_path: Path) -> None:
    db = tmp_path / "q.sqlite3"
    acknowledged = dict.fromkeys(CHARGE_POINTS, -1)
    rng = random.Random(8)
    for _ in range(20):
        args = [f"{cp}:{n + 1}" for cp, n in acknowledged.items()]
        output = await run_and_kill(["enqueue", str(db), *args], rng.uniform(0.0, 0.3))
        for line in output.splitlines()[1:]:
            cp, n = line.split()
            assert int(n) == acknowledged[cp] + 1  # each acknowledged once, in order
            acknowledged[cp] = int(n)
    store = Store(db)
    for cp, last in acknowledged.items():
        stored = [m.payload["n"] for m in store.pending(cp, limit=1_000_000)]
        assert last > 0
        # everything acknowledged is there, in order, once; at most the one message in
        # flight at the last kill is stored without having been acknowledged
        assert stored[: last + 1] == list(range(last + 1))
        assert len(stored) - (last + 1) in (0, 1)
    store.close()


def _queue_transactions(db: Path, per_charge_point: int) -> dict[str, list[str]]:
    """Offline transactions (see test_queue.transaction_script); message ids in order per CP."""
    store = Store(db)
    expected = {}
    for cp in CHARGE_POINTS:
        items = transaction_script(cp, per_charge_point)
        store.enqueue_many(items)
        expected[cp] = [item.message_id for item in items]
    store.close()
    return expected


@pytest.mark.timeout(6 * RUN_S + 60)  # after run_and_kill's, so that Trio ends the test
async def test_sigkill_during_replay_resumes_in_order_without_loss(tmp_path: Path) -> None:
    db, log = tmp_path / "q.sqlite3", tmp_path / "csms.log"
    expected = await trio.to_thread.run_sync(_queue_transactions, db, 2500)
    rng = random.Random(9)
    kills = 0
    for _ in range(5):
        output = await run_and_kill(["replay", str(db), str(log)], rng.uniform(0.3, 1.5))
        kills += "done" not in output
    output = await run_and_kill(["replay", str(db), str(log)], None)
    assert "done" in output
    assert kills >= 1
    received: dict[str, list[tuple[str, str]]] = {cp: [] for cp in CHARGE_POINTS}
    for line in log.read_text().splitlines():
        cp, mid, tx = line.split()
        received[cp].append((mid, tx))
    repeats = 0
    for cp, ids in expected.items():
        collapsed = [r for i, r in enumerate(received[cp]) if i == 0 or received[cp][i - 1] != r]
        repeats += len(received[cp]) - len(collapsed)
        assert [mid for mid, _ in collapsed] == ids  # in order, none lost, none twice
        start = None
        for mid, tx in collapsed:
            if int(mid[1:]) % 10 == 0:
                start = mid
            else:  # local ids were rewritten to the CSMS's, also across restarts
                assert start is not None
                assert tx == str(csms_transaction_id(start)), (cp, mid, tx)
    # only a message in flight at a kill (answered, not yet marked) is sent again, in place
    assert repeats <= kills * len(CHARGE_POINTS)
    store = Store(db)
    assert store.pending_count() == 0
    store.close()

"""A process the SIGKILL tests kill at random moments.

queue_worker.py enqueue DB CP:START ...   enqueue MeterValues n=START.. per charge
    point (one task each, group-committed); print "CP n" once n is durable
queue_worker.py replay DB LOG             replay every queue to a fake CSMS that
    appends "CP message_id transactionId" to LOG before answering
"""

from __future__ import annotations

import os
import sys
import zlib
from typing import Any

import trio

from hubgate.cloud.queue import DurableQueue, open_durable_queue
from hubgate.cloud.store import Outgoing, QueuedMessage, Store


def transaction_script(charge_point: str, count: int) -> list[Outgoing]:
    """`count` messages: offline 1.6 transactions of Start, MeterValues x8, Stop.

    The store issues local transaction ids -1, -2, ... in order, so the
    messages of the k-th transaction refer to -(k + 1).
    """
    items: list[Outgoing] = []
    for n in range(count):
        local = -(n // 10 + 1)
        if n % 10 == 0:
            items.append(
                Outgoing(
                    charge_point, f"m{n}", "StartTransaction", {"n": n}, issue_transaction_id=True
                )
            )
        else:
            action = "StopTransaction" if n % 10 == 9 else "MeterValues"
            items.append(Outgoing(charge_point, f"m{n}", action, {"n": n, "transactionId": local}))
    return items


async def enqueue(queue: DurableQueue, charge_point: str, start: int) -> None:
    for n in range(start, 1_000_000):
        await queue.enqueue(Outgoing(charge_point, f"m{n}", "MeterValues", {"n": n}))
        sys.stdout.write(f"{charge_point} {n}\n")
        sys.stdout.flush()


def csms_transaction_id(message_id: str) -> int:
    """The fake CSMS gives a repeated StartTransaction the id it gave the first time."""
    return 1000 + zlib.crc32(message_id.encode()) % 1_000_000


async def replay(queue: DurableQueue, log_path: str) -> None:
    log = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)

    async def send(message: QueuedMessage) -> dict[str, Any]:
        tx = message.payload.get("transactionId", "-")
        os.write(log, f"{message.charge_point} {message.message_id} {tx}\n".encode())
        if message.action == "StartTransaction":
            return {"transactionId": csms_transaction_id(message.message_id)}
        return {}

    charge_points = await queue.run(Store.charge_points_with_pending)
    async with trio.open_nursery() as nursery:
        for charge_point in charge_points:
            nursery.start_soon(queue.replay, charge_point, send)
    print("done", flush=True)


async def main(mode: str, path: str, args: list[str]) -> None:
    async with open_durable_queue(path) as queue:
        print("ready", flush=True)
        if mode == "enqueue":
            async with trio.open_nursery() as nursery:
                for arg in args:
                    charge_point, start = arg.split(":")
                    nursery.start_soon(enqueue, queue, charge_point, int(start))
        else:
            await replay(queue, args[0])


if __name__ == "__main__":
    trio.run(main, sys.argv[1], sys.argv[2], sys.argv[3:])

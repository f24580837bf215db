"""The simulated site's Modbus boxes served by child processes (`WireSite(device_workers=N)`).

One process cannot answer depot-500's 273 Modbus devices ten times a second (the 100 ms
cycle benchmark; docs/performance.md). With N workers each serves every
N-th box on its own ports, from the same scenario file; the parent keeps the physics, the
scenario's events and the OCPP stations, and talks to each worker over its stdin and
stdout (length-prefixed pickles, `Channel`):

- after each step the parent sends what its boxes show (`FedDevice.forward`) and the
  events that reach them (a charger offline, a dead meter), with the simulated time;
- before each step it asks what they apply (`WireSite.applied`: the chargers' offers, the
  battery's and the inverters' limits, their watchdogs included): the answer comes after
  every message sent before it.

The writer log (`--writes`) is not kept in this mode: it finds a command's sender while the
connection is open, in the process that serves it.
"""

from __future__ import annotations

import asyncio
import os
import pickle
import signal
import struct
import sys
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hubgate.sim.wire_site import WireSite

Applied = tuple[float | None, ...]
"""What a box applies (`WireSite.applied`)."""

START_TIMEOUT_S = 60.0
_HEADER = struct.Struct(">I")


class Channel:
    """Length-prefixed pickles over a pair of asyncio streams."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    def send(self, message: object) -> None:
        """Queue `message` (written as the loop gets to it)."""
        data = pickle.dumps(message, pickle.HIGHEST_PROTOCOL)
        self.writer.write(_HEADER.pack(len(data)) + data)

    async def receive(self) -> Any:
        """The next message; None once the other side closed."""
        try:
            size = _HEADER.unpack(await self.reader.readexactly(_HEADER.size))[0]
            return pickle.loads(await self.reader.readexactly(size))
        except asyncio.IncompleteReadError:
            return None


@dataclass
class _Worker:
    process: asyncio.subprocess.Process
    channel: Channel
    feeds: list[tuple[str, int, str, float | str]] = field(default_factory=list)
    events: list[tuple[str, str, bool]] = field(default_factory=list)

    async def reply(self, number: int) -> Any:
        message = await self.channel.receive()
        if message is None:
            code = await self.process.wait()
            raise RuntimeError(f"device worker {number} exited ({code})")
        if message[0] == "error":
            raise OSError(message[1])
        return message


class DeviceWorkers:
    """The parent's side: starts the workers, feeds their boxes, asks what they apply."""

    def __init__(self, scenario: Path, count: int, ports_auto: bool) -> None:
        """`count` workers serving the boxes of the site of the `scenario` file, on free
        ports (`ports_auto`) or the site file's."""
        self.scenario, self.count, self.ports_auto = scenario, count, ports_auto
        self.applied: dict[str, Applied] = {}
        """What every worker's boxes applied at the last `exchange`."""
        self._workers: list[_Worker] = []
        self._owner: dict[str, _Worker] = {}
        self._silent: dict[str, bool] = {}

    async def start(self, site: WireSite) -> None:
        """Start the workers for `site`'s boxes, wait until each listens (`OSError` when
        one cannot), and send the boxes' values through them from now on."""
        ports = "auto" if self.ports_auto else "site"
        for number in range(self.count):
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-c",
                "from hubgate.sim.device_workers import worker_main; worker_main()",
                str(self.scenario),
                str(number),
                str(self.count),
                ports,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
            )
            assert process.stdin is not None
            assert process.stdout is not None
            self._workers.append(_Worker(process, Channel(process.stdout, process.stdin)))
        async with asyncio.timeout(START_TIMEOUT_S):
            for number, worker in enumerate(self._workers):
                _, bound = await worker.reply(number)
                for id, port in bound.items():
                    box = site.boxes[id]
                    box.port = port
                    self._owner[id] = worker
                    for index, fed in enumerate(box.devices):
                        fed.forward = partial(self._put, worker, id, index)

    @staticmethod
    def _put(worker: _Worker, id: str, index: int, quantity: str, value: float | str) -> None:
        worker.feeds.append((id, index, quantity, value))

    def event(self, id: str, what: str, flag: bool) -> None:
        """Box `id` goes "online" (or not) or "silent" (or not); sent when it changes."""
        if what == "silent":
            if self._silent.get(id, False) == flag:
                return
            self._silent[id] = flag
        self._owner[id].events.append((id, what, flag))

    def flush(self, now: float) -> None:
        """Send each worker its boxes' new values and events at simulated time `now`."""
        for worker in self._workers:
            if worker.feeds or worker.events:
                worker.channel.send(("feed", now, worker.feeds, worker.events))
                worker.feeds, worker.events = [], []

    async def exchange(self, now: float) -> None:
        """Ask every worker what its boxes apply at simulated time `now`."""
        for worker in self._workers:
            worker.channel.send(("ask", now))
        for number, worker in enumerate(self._workers):
            await worker.channel.writer.drain()
            _, applied = await worker.reply(number)
            self.applied |= applied

    async def close(self) -> None:
        """Stop the workers (each closes its servers), killing one that does not end."""
        for worker in self._workers:
            if worker.process.returncode is None:
                worker.channel.send(("stop",))
                worker.channel.writer.close()
        for worker in self._workers:
            try:
                async with asyncio.timeout(10):
                    await worker.process.wait()
            except TimeoutError:
                worker.process.kill()
                await worker.process.wait()


# -- the worker's side ------------------------------------------------------------------


def worker_main() -> None:
    """A worker process: argv is the scenario file, the worker's number, how many there
    are, and "auto" or "site" ports."""
    path, number, count, ports = sys.argv[1:5]
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent stops it (or its pipe closes)
    out = os.fdopen(os.dup(1), "wb", buffering=0)
    os.dup2(2, 1)  # anything printed goes to stderr, not into the channel
    asyncio.run(_serve_share(Path(path), int(number), int(count), ports == "auto", out))


async def _serve_share(path: Path, number: int, count: int, ports_auto: bool, out: Any) -> None:
    from hubgate.sim.scenario_loader import load_scenario
    from hubgate.sim.wire_site import WireSite  # which imports this module

    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    transport, protocol = await loop.connect_write_pipe(asyncio.streams.FlowControlMixin, out)
    channel = Channel(reader, asyncio.StreamWriter(transport, protocol, reader, loop))
    site = WireSite(load_scenario(path), ports_auto=ports_auto)
    sim = site.sim  # never stepped here: its clock (the devices' watchdogs) is the parent's
    boxes = list(site.boxes.values())[number::count]
    try:
        for box in boxes:
            await box.start()
    except OSError as error:
        channel.send(("error", str(error)))
        await channel.writer.drain()
        return
    ids = [box.id for box in boxes]
    channel.send(("ports", {box.id: box.port for box in boxes}))
    switching: set[asyncio.Task[None]] = set()
    try:
        while (message := await channel.receive()) is not None and message[0] != "stop":
            sim.steps = round(message[1] / sim.step_s)
            if message[0] == "feed":
                for id, index, quantity, value in message[2]:
                    site.boxes[id].devices[index].device.set(quantity, value)
                for id, what, flag in message[3]:
                    if what == "silent":
                        site.boxes[id].silence(flag)
                    else:
                        task = asyncio.create_task(site.boxes[id].go_online(flag))
                        switching.add(task)
                        task.add_done_callback(switching.discard)
            else:
                channel.send(("applied", site.applied(ids)))
    finally:
        for box in boxes:
            await box.stop()

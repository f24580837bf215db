"""Who sent a command (`hubgate.sim.writers`): the process at the other end of the
connection, found through /proc."""

from __future__ import annotations

import os
import socket
import sys
from pathlib import Path

import pytest

from hubgate.sim import writers

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="reads Linux's /proc")


def test_the_sender_is_found_though_one_of_its_files_closes_during_the_search(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A busy sender opens and closes files all the time: one closed between the listing of
    its descriptors and the look at it must not hide the connection (it did: the failover
    tests saw a gateway's commands logged with no sender, 1 lookup in ~100 at startup)."""
    real_readlink = os.readlink
    own = f"/proc/{os.getpid()}/fd/"
    closed: list[str] = []

    def readlink(path: str) -> str:
        if path.startswith(own) and not closed:
            closed.append(path)
            raise FileNotFoundError(path)
        return real_readlink(path)

    with (
        socket.create_server(("127.0.0.1", 0)) as server,
        socket.create_connection(server.getsockname()) as client,
    ):
        accepted, _ = server.accept()
        with accepted:
            log = writers.WriterLog(tmp_path / "writes.jsonl")
            try:
                monkeypatch.setattr(writers.os, "readlink", readlink)
                found = log.sender(accepted.getsockname(), accepted.getpeername())
            finally:
                monkeypatch.undo()
                log.close()
            assert closed, "no descriptor of this process was looked at"
            assert client.fileno() != int(closed[0].rsplit("/", 1)[1])
            assert found == os.getpid()

"""A real mosquitto broker on loopback (tests/cloud, tests/runtime).

Its port is held (`hubgate.runtime.demo.held_port`) until mosquitto starts; that mosquitto
itself listens, and not another process that took the port meanwhile, is read from its log
("running" once its sockets are open; it exits when it cannot bind).
"""

from __future__ import annotations

import getpass
from pathlib import Path

import trio

from hubgate.runtime.demo import held_port
from tests.support.peers import require_peer

__all__ = ["Mosquitto"]

TRIES = 3
"""First starts, each on another port, before giving up."""


class Mosquitto:
    """A mosquitto broker on 127.0.0.1 that keeps sessions across restarts."""

    def __init__(self, directory: Path, pki: Path | None = None) -> None:
        self.mosquitto, self.mosquitto_sub = (
            require_peer("mosquitto"),
            require_peer("mosquitto_sub"),
        )
        self.directory, self.pki = directory, pki
        self.config, self.log = directory / "mosquitto.conf", directory / "mosquitto.log"
        self._holder = held_port()
        self.port: int = self._holder.getsockname()[1]
        self.process: trio.Process | None = None

    def _write_config(self) -> None:
        tls = (
            ""
            if self.pki is None
            else f"cafile {self.pki}/ca.pem\ncertfile {self.pki}/server.pem\n"
            f"keyfile {self.pki}/server.key\nrequire_certificate true\ntls_version tlsv1.2\n"
        )
        # With TLS, also on 127.0.0.2: an address the server certificate does not name.
        second = "" if self.pki is None else f"listener {self.port} 127.0.0.2\n{tls}"
        self.config.write_text(
            f"listener {self.port} 127.0.0.1\n"
            f"{tls}{second}"
            "allow_anonymous true\n"
            "persistence true\n"
            f"persistence_location {self.directory}/\n"
            f"log_dest file {self.log}\n"
            f"user {getpass.getuser()}\n"  # as root, mosquitto would switch to its own user
        )

    def _runs(self) -> int:
        return self.log.read_text().count(" running\n") if self.log.exists() else 0

    async def _started(self) -> bool:
        """Start mosquitto on `port`: whether it listens (False: it could not bind)."""
        before = self._runs()
        self._holder.close()
        self.process = process = await trio.lowlevel.open_process(
            [self.mosquitto, "-c", str(self.config)]
        )
        with trio.fail_after(10):
            while self._runs() == before:
                if process.poll() is not None:
                    self.process = None
                    return False
                await trio.sleep(0.02)
        return True

    async def start(self) -> None:
        """Start it (again: on the same port, for its clients to come back)."""
        for _ in range(TRIES):
            self._write_config()
            if await self._started():
                return
            if self._runs() > 0:  # a restart: the port is the clients', not ours to change
                break
            self._holder = held_port()  # taken between release and bind: another one
            self.port = self._holder.getsockname()[1]
        raise RuntimeError(f"mosquitto could not listen on {self.port}: {self.log.read_text()}")

    async def stop(self) -> None:
        """A clean stop (SIGTERM): mosquitto saves its sessions to disk."""
        assert self.process is not None
        self.process.terminate()
        with trio.fail_after(10):
            await self.process.wait()
        self.process = None

    async def subscribe(self, *args: str, count: int | None = None, wait_s: int = 10) -> list[str]:
        """Run mosquitto_sub (QoS 1) and return its lines: retain flag, QoS, topic, payload
        (none after `wait_s` without a message)."""
        command = [self.mosquitto_sub, "-h", "localhost", "-p", str(self.port), "-q", "1"]
        if self.pki is not None:
            pki = self.pki
            command += ["--cafile", f"{pki}/ca.pem", "--cert", f"{pki}/CP16.pem"]
            command += ["--key", f"{pki}/CP16.key"]
        command += ["-F", "%r %q %t %p", "-W", str(wait_s), *args]
        if count is not None:
            command += ["-C", str(count)]
        result = await trio.run_process(command, capture_stdout=True)
        return result.stdout.decode().splitlines()

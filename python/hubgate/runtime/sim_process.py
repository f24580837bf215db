"""A simulated site served by `hubgate sim SCENARIO --serve` in a child process.

    async with open_sim_process(Path("depot-200-steady.toml")) as served:
        async with open_gateway(served.site) as gateway: ...

The child serves the site's Modbus devices on free loopback ports and dials the OCPP port
picked here with every station; `served.site` is the site file rewired to them (listeners
on loopback, the API on a free port, no CSMS or MQTT). The child's own processing (pymodbus
servers, stations, physics) costs nothing in this process: what this process spends is the
gateway's. `served.kill()` ends it at once (SIGKILL), as a power cut would.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import trio

from hubgate.config.model import SiteConfig
from hubgate.runtime.demo import LOOPBACK, held_port, rewired
from hubgate.sim.scenario_loader import load_scenario

START_TIMEOUT_S = 180.0
"""How long the child may take to listen (a 500-connector site on a busy machine)."""


@dataclass(frozen=True)
class SimProcess:
    """The running child and the site file that reaches it."""

    process: subprocess.Popen[bytes]
    site: SiteConfig

    def kill(self) -> None:
        """End the child at once: its sockets close without a goodbye."""
        self.process.kill()


@asynccontextmanager
async def open_sim_process(scenario: Path, device_workers: int = 0) -> AsyncIterator[SimProcess]:
    """Start the child for `scenario` (its Modbus devices served by `device_workers` child
    processes of its own, or by itself), yield once it listens; terminate it at the end."""
    loaded = load_scenario(scenario)
    holder = held_port()  # while the stations start dialling it, until the gateway binds it
    ocpp_port: int = holder.getsockname()[1]
    with holder, tempfile.TemporaryDirectory(prefix="hubgate-sim-") as folder:
        listing, errors = Path(folder) / "listing.json", Path(folder) / "stderr.txt"
        argv = [
            sys.executable,
            "-c",
            "import sys; from hubgate.cli import main; sys.exit(main())",
            "sim",
            str(scenario),
            "--serve",
            "--ports",
            "auto",
            "--listing",
            str(listing),
            "--csms",
            f"ws://{LOOPBACK}:{ocpp_port}/ocpp",
            "--meter-values",
            "10",
            "--status-every",
            "86400",
            "--device-workers",
            str(device_workers),
        ]
        with errors.open("wb") as stderr:
            process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=stderr)
        try:
            ports = await _listening(listing, process, errors)
            holder.close()
            yield SimProcess(process, rewired(loaded.site, ports, ocpp_port, 0))
        finally:
            process.terminate()
            with trio.CancelScope(shield=True):
                try:
                    await trio.to_thread.run_sync(process.wait, 30)
                except subprocess.TimeoutExpired:
                    process.kill()
                    await trio.to_thread.run_sync(process.wait, 30)


async def _listening(
    listing: Path, process: subprocess.Popen[bytes], errors: Path
) -> dict[str, int]:
    """Every simulated Modbus device's port, once the child wrote them."""
    with trio.fail_after(START_TIMEOUT_S):
        while not (listing.exists() and listing.read_text()):
            if process.poll() is not None:
                tail = errors.read_text(errors="replace")[-2000:]
                raise RuntimeError(f"the simulator exited ({process.returncode}): {tail}")
            await trio.sleep(0.2)
    data = json.loads(listing.read_text())
    return {box["id"]: int(box["port"]) for box in data["modbus"]}

"""With `[mqtt]` configured, the running gateway publishes its snapshots to a real mosquitto."""

from __future__ import annotations

import getpass
import json
import tomllib
from pathlib import Path

import pytest
import trio

from hubgate.config.model import SiteConfig
from hubgate.runtime.demo import free_port
from hubgate.runtime.gateway import open_gateway
from tests.support.peers import require_peer
from tests.support.wait import wait_until

SITE_FILE = Path(__file__).parent / "e2e-site.toml"


async def until_listening(port: int) -> None:
    async def listening() -> bool:
        try:
            stream = await trio.open_tcp_stream("127.0.0.1", port)
        except OSError:
            return False
        await stream.aclose()
        return True

    await wait_until(listening, f"mosquitto to listen on {port}")


@pytest.mark.peers("mosquitto", "mosquitto_sub")
async def test_snapshots_reach_the_broker(tmp_path: Path) -> None:
    mosquitto = require_peer("mosquitto")  # in /usr/sbin, maybe not on PATH
    port = free_port()
    config = tmp_path / "mosquitto.conf"
    config.write_text(
        f"listener {port} 127.0.0.1\nallow_anonymous true\n"
        f"log_dest file {tmp_path}/mosquitto.log\nuser {getpass.getuser()}\n"
    )
    data = tomllib.loads(SITE_FILE.read_text())
    data["mqtt"] = {"host": "127.0.0.1", "port": port, "client_id": "e2e-site"}
    site = SiteConfig.model_validate(data)
    broker = await trio.lowlevel.open_process([mosquitto, "-c", str(config)])
    try:
        with trio.fail_after(30):
            await until_listening(port)
            async with open_gateway(site) as gateway:
                result = await trio.run_process(
                    [
                        "mosquitto_sub",
                        "-h",
                        "127.0.0.1",
                        "-p",
                        str(port),
                        "-q",
                        "1",
                        "-W",
                        "20",
                        "-C",
                        "1",
                        "-t",
                        "hubgate/e2e-site/node/board/commanded_a",
                    ],
                    capture_stdout=True,
                )
                status = gateway.supervisor.health["mqtt"]
                await gateway.shutdown()
    finally:
        broker.terminate()
        await broker.wait()
    message = json.loads(result.stdout)
    assert message["unit"] == "A"
    assert len(message["value"]) == 3
    assert status.restarts == 0

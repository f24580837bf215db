"""With `[mqtt]` configured, the running gateway publishes its snapshots to a real mosquitto."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest
import trio

from hubgate.config.model import SiteConfig
from hubgate.runtime.gateway import open_gateway
from tests.support.mosquitto import Mosquitto

SITE_FILE = Path(__file__).parent / "e2e-site.toml"


@pytest.mark.peers("mosquitto", "mosquitto_sub")
async def test_snapshots_reach_the_broker(tmp_path: Path) -> None:
    broker = Mosquitto(tmp_path)
    data = tomllib.loads(SITE_FILE.read_text())
    await broker.start()
    try:
        data["mqtt"] = {"host": "127.0.0.1", "port": broker.port, "client_id": "e2e-site"}
        site = SiteConfig.model_validate(data)
        with trio.fail_after(30):
            async with open_gateway(site) as gateway:
                lines = await broker.subscribe(
                    "-t", "hubgate/e2e-site/node/board/commanded_a", count=1, wait_s=20
                )
                status = gateway.supervisor.health["mqtt"]
                await gateway.shutdown()
    finally:
        await broker.stop()
    message = json.loads(lines[0].split(" ", 3)[3])
    assert message["unit"] == "A"
    assert len(message["value"]) == 3
    assert status.restarts == 0

"""Grid-operator limits reach the running gateway's control loop through its Modbus server.

The writer is `mbpoll`, an independent Modbus client; the write is a lease of
source `modbus-server` in the audit log and, because the site names the Modbus
server as the grid operator's source, the loop's grid-operator limit.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
import trio

from hubgate.config.model import SiteConfig
from hubgate.control.limits import SITE, LimitSource
from hubgate.runtime.gateway import open_gateway

SITE_FILE = Path(__file__).parent / "e2e-site.toml"


def site_with_modbus_server_operator() -> SiteConfig:
    data = tomllib.loads(SITE_FILE.read_text())
    data["grid_operator"] = {"source": "modbus-server"}
    data["modbus_server"] = {"port": 0, "lease_s": 30}
    return SiteConfig.model_validate(data)


@pytest.mark.peers("mbpoll")
async def test_modbus_server_write_is_the_grid_operator_limit() -> None:
    site = site_with_modbus_server_operator()
    with trio.fail_after(30):
        async with open_gateway(site) as gateway:
            loop = gateway.loop
            await loop.cycle_ready.wait()
            assert loop.last_inputs is not None
            assert loop.last_inputs.grid_operator_w == float("inf")
            port = gateway.ports["modbus-server"]
            # site-limit block, power_limit (u32, 0.1 kW) at address 2: 20.7 kW
            await trio.run_process(
                [
                    "mbpoll",
                    "-m",
                    "tcp",
                    "-p",
                    str(port),
                    "-a",
                    "1",
                    "-0",
                    "-r",
                    "2",
                    "-t",
                    "4",
                    "-1",
                    "127.0.0.1",
                    "0",
                    "207",
                ],
                capture_stdout=True,
            )
            await loop.cycle_ready.wait()
            await loop.cycle_ready.wait()
            assert loop.last_inputs.grid_operator_w == pytest.approx(20_700)
            audit = [e for e in loop.limits.audit() if e.target == SITE]
            await gateway.shutdown()
    assert [e.source for e in audit] == [LimitSource.MODBUS_SERVER]
    assert audit[0].limit.power_kw == pytest.approx(20.7)
    assert "127.0.0.1" in audit[0].origin

"""A site without a CSMS decides who charges from its `[authorization]` table: the gateway
answers `ocpp`-package charge points (1.6 and 2.0.1) from it, and tokens added with
`hubgate auth` (another process) or the API apply to the next answer."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import trio
from ocpp.v16 import call as call16
from ocpp.v201 import call as call201

from hubgate.config import load_site
from hubgate.runtime.gateway import open_gateway
from tests.support.charge_points import ChargePointThread, Cp16, Cp201, now_text

TOKEN = "api-token-0123456789"
SITE = f"""\
[site]
name = "depot without a CSMS"

[grid]
phase_current_limit_a = 80

[ocpp]
port = 0

[api]
port = 0
token = "{TOKEN}"

[[chargers]]
id = "cp-a"
node = "grid"
ocpp = {{ identity = "CP-A", versions = ["1.6"] }}
connectors = [{{ id = 1, max_current_a = 32 }}]

[[chargers]]
id = "cp-b"
node = "grid"
ocpp = {{ identity = "CP-B", versions = ["2.0.1"] }}
connectors = [{{ id = 1, max_current_a = 32 }}]

[authorization]
unknown = "reject"
tokens_file = "tokens.toml"

[authorization.groups.fleet]

[[authorization.tokens]]
id = "04A1B2C3"
group = "fleet"

[[authorization.tokens]]
id = "LOST"
blocked = true
"""


def _authorize16(tag: str) -> Any:
    return call16.Authorize(id_tag=tag)


def _authorize201(tag: str) -> Any:
    return call201.Authorize(id_token={"id_token": tag, "type": "ISO14443"})


async def test_the_site_file_decides_who_charges(tmp_path: Path) -> None:
    path = tmp_path / "site.toml"
    path.write_text(SITE)
    site = load_site(path)
    with trio.fail_after(40):
        async with open_gateway(site) as gateway:
            url = f"ws://127.0.0.1:{gateway.ports['ocpp']}/ocpp"
            a = ChargePointThread(Cp16, f"{url}/CP-A", subprotocols=["ocpp1.6"])
            b = ChargePointThread(Cp201, f"{url}/CP-B", subprotocols=["ocpp2.0.1"])
            await trio.to_thread.run_sync(a.start)
            await trio.to_thread.run_sync(b.start)

            async def ask16(tag: str) -> dict[str, Any]:
                answer = await trio.to_thread.run_sync(a.call, _authorize16(tag))
                return dict(answer.id_tag_info)

            async def ask201(tag: str) -> dict[str, Any]:
                answer = await trio.to_thread.run_sync(b.call, _authorize201(tag))
                return dict(answer.id_token_info)

            assert await ask16("04a1b2c3") == {"status": "Accepted", "parent_id_tag": "fleet"}
            assert await ask16("LOST") == {"status": "Blocked"}
            assert await ask16("STRANGER") == {"status": "Invalid"}
            start = call16.StartTransaction(
                connector_id=1, id_tag="STRANGER", meter_start=0, timestamp=now_text()
            )
            started = await trio.to_thread.run_sync(a.call, start)
            assert started.id_tag_info == {"status": "Invalid"}
            assert await ask201("04A1B2C3") == {
                "status": "Accepted",
                "group_id_token": {"id_token": "fleet", "type": "Central"},
            }
            assert await ask201("STRANGER") == {"status": "Unknown"}
            event = call201.TransactionEvent(
                event_type="Started",
                timestamp=now_text(),
                trigger_reason="Authorized",
                seq_no=0,
                transaction_info={"transaction_id": "t-1"},
                evse={"id": 1, "connector_id": 1},
                id_token={"id_token": "STRANGER", "type": "ISO14443"},
            )
            answered = await trio.to_thread.run_sync(b.call, event)
            assert answered.id_token_info == {"status": "Unknown"}

            # another process adds a token: the running gateway answers from it next time
            hubgate = str(Path(sys.executable).parent / "hubgate")
            command = [hubgate, "auth", "add", str(path), "STRANGER", "--group", "fleet"]
            added = await trio.to_thread.run_sync(
                lambda: subprocess.run(
                    command,
                    capture_output=True,
                    text=True,
                    timeout=60,
                    check=False,
                )
            )
            assert added.returncode == 0, added.stderr
            assert await ask16("STRANGER") == {"status": "Accepted", "parent_id_tag": "fleet"}

            base = f"http://127.0.0.1:{gateway.ports['api']}/api/v1/authorization/tokens"
            auth = {"Authorization": f"Bearer {TOKEN}"}
            async with httpx.AsyncClient() as client:
                put = await client.put(
                    f"{base}/VISITOR", json={"expires": "2020-01-01T00:00:00Z"}, headers=auth
                )
                assert put.status_code == 200, put.text
                assert put.json()["status"] == "Expired"
                assert (await ask201("visitor"))["status"] == "Expired"
                anonymous = await client.delete(f"{base}/VISITOR")
                assert anonymous.status_code == 401
                deleted = await client.delete(f"{base}/VISITOR", headers=auth)
                assert deleted.status_code == 200
                assert (await ask201("VISITOR"))["status"] == "Unknown"
                site_token = await client.put(f"{base}/LOST", json={}, headers=auth)
                assert site_token.status_code == 409
                assert "defined in the site file" in site_token.json()["detail"]
                listed = (await client.get(base)).json()
                assert [(t["id"], t["status"], t["source"]) for t in listed] == [
                    ("04A1B2C3", "Accepted", "site"),
                    ("LOST", "Blocked", "site"),
                    ("STRANGER", "Accepted", "file"),
                ]
            await trio.to_thread.run_sync(a.stop)
            await trio.to_thread.run_sync(b.stop)
            await gateway.shutdown()

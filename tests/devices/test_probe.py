"""`hubgate probe` and the probe behind it against simulated devices of every profile."""

from __future__ import annotations

import json
from functools import partial

import pytest
import trio

from hubgate.cli import main
from hubgate.devices.probe import in_range, probe, version
from hubgate.modbus.tcp_master import open_tcp_master
from hubgate.profiles.model import Firmware
from hubgate.sim.modbus_box import serve
from hubgate.sim.simulated_device import SimulatedDevice
from tests.support.drivers import PROFILES


async def hubgate(*argv: str) -> int:
    """Run the command line in a worker thread (it runs its own Trio loop)."""
    return await trio.to_thread.run_sync(partial(main, list(argv)))


@pytest.mark.parametrize("name", sorted(PROFILES))
async def test_best_match_is_the_profile_simulated(name: str) -> None:
    profile = PROFILES[name]
    with serve(SimulatedDevice(profile)) as port, trio.fail_after(20):
        async with open_tcp_master("127.0.0.1", port, timeout_s=1.0, retries=0) as master:
            results = await probe(master, None, PROFILES.values())
    best = results[0]
    assert (best.profile, best.matched, best.fields_readable) == (name, True, True)
    assert best.firmware_in_range is not False
    for ident in profile.identification:
        if isinstance(ident.example, str):
            assert best.read[ident.what] == ident.example
        else:
            assert float(best.read[ident.what]) == pytest.approx(ident.example)
    others = [r for r in results[1:] if r.matched]
    assert all(
        (r.patterns, r.fields_readable) < (best.patterns, best.fields_readable) for r in others
    )
    assert {r.profile for r in results} == set(PROFILES)


@pytest.mark.parametrize("name", ["alfen-eve", "eastron-sdm630", "sunspec-meter", "vestel-evc04"])
async def test_cli_probe_json(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    with serve(SimulatedDevice(PROFILES[name])) as port, trio.fail_after(20):
        code = await hubgate("probe", f"127.0.0.1:{port}", "--json")
    assert code == 0
    rows = json.loads(capsys.readouterr().out)
    assert rows[0]["profile"] == name
    assert all(row["matched"] for row in rows)


async def test_cli_probe_text_shows_firmware(capsys: pytest.CaptureFixture[str]) -> None:
    with serve(SimulatedDevice(PROFILES["alfen-eve"])) as port, trio.fail_after(20):
        code = await hubgate("probe", f"127.0.0.1:{port}")
    assert code == 0
    first = capsys.readouterr().out.splitlines()[0]
    assert first.startswith("match  alfen-eve ")
    assert "firmware 6.4.0-4210 (in range)" in first


async def test_cli_probe_on_a_unit_no_profile_knows(capsys: pytest.CaptureFixture[str]) -> None:
    with serve(SimulatedDevice(PROFILES["vestel-evc04"])) as port, trio.fail_after(20):
        code = await hubgate("probe", f"127.0.0.1:{port}", "--unit", "7", "--timeout", "0.3")
    assert code == 1
    assert "no profile matches" in capsys.readouterr().err


async def test_cli_probe_unreachable(capsys: pytest.CaptureFixture[str]) -> None:
    listener = trio.socket.socket()
    await listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    listener.close()  # nothing listens there now
    with trio.fail_after(20):
        code = await hubgate("probe", f"127.0.0.1:{port}", "--timeout", "0.3")
    assert code == 1
    assert "cannot connect" in capsys.readouterr().err


def test_firmware_ranges() -> None:
    assert version("v3.187.0") == (3, 187, 0)
    assert version("6.4.0-4210") == (6, 4, 0)
    assert version("10201") is None
    assert in_range(Firmware(min="1.6.5"), "1.7") is True
    assert in_range(Firmware(min="1.6.5"), "1.6.4") is False
    assert in_range(Firmware(min="2.0", below="3.0"), "3.0.1") is False
    assert in_range(Firmware(), "whatever") is None


async def test_cli_probe_all_says_why_the_others_failed(capsys: pytest.CaptureFixture[str]) -> None:
    with serve(SimulatedDevice(PROFILES["keba-p40"])) as port, trio.fail_after(20):
        code = await hubgate("probe", f"127.0.0.1:{port}", "--all")
    assert code == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == len(PROFILES)
    assert lines[0].startswith("match  keba-p40 ")
    p30 = next(line for line in lines if " keba-p30 " in line)
    assert p30.startswith("no ")
    assert "model '4110000' does not match" in p30

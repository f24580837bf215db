"""`hubgate probe` and the probe behind it: simulated devices of every profile, unit scans,
device identification (FC43/14, SunSpec common model), and RTU over a socat pty pair."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from functools import partial

import pytest
import trio

from hubgate.cli import main
from hubgate.config.model import Parity, SerialLine
from hubgate.devices.probe import common_units, in_range, parse_units, probe, probe_unit, version
from hubgate.modbus.rtu_master import open_rtu_master
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
    with serve(SimulatedDevice(profile)) as port, trio.fail_after(30):
        async with open_tcp_master("127.0.0.1", port, timeout_s=1.0, retries=0) as master:
            unit = await probe_unit(master, profile.transport.unit, PROFILES.values())
    assert unit.answered
    best = unit.results[0]
    assert (best.profile, best.matched, best.fields_readable) == (name, True, True), best
    assert best.firmware_in_range is not False
    assert best.evidence
    for ident in profile.identification:
        if isinstance(ident.example, str):
            assert best.read[ident.what] == ident.example
        else:
            assert float(best.read[ident.what]) == pytest.approx(ident.example)
    assert all(r.rank < best.rank for r in unit.results[1:])
    assert {r.profile for r in unit.results} == set(PROFILES)


@pytest.mark.parametrize("name", ["alfen-eve", "eastron-sdm630", "sunspec-meter", "vestel-evc04"])
async def test_cli_probe_json(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    unit = str(PROFILES[name].transport.unit)
    with serve(SimulatedDevice(PROFILES[name])) as port, trio.fail_after(30):
        code = await hubgate("probe", f"127.0.0.1:{port}", "--units", unit, "--json")
    assert code == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert row["unit"] == int(unit)
    assert row["results"][0]["profile"] == name
    assert all(r["matched"] for r in row["results"])
    assert row["results"][0]["evidence"]


async def test_cli_probe_text_shows_firmware_and_evidence(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with serve(SimulatedDevice(PROFILES["alfen-eve"])) as port, trio.fail_after(30):
        code = await hubgate("probe", f"127.0.0.1:{port}", "--unit", "1")
    assert code == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("unit 1: ")
    assert lines[1].startswith("  match  alfen-eve ")
    assert "firmware '6.4.0-4210' (in range)" in lines[1]
    assert lines[2].lstrip().startswith("evidence: vendor 'Alfen NV' matches '^Alfen'")


async def test_a_scan_finds_a_device_on_a_unit_no_profile_names(
    capsys: pytest.CaptureFixture[str],
) -> None:
    device = SimulatedDevice(PROFILES["vestel-evc04"], unit=7)
    with serve(device) as port, trio.fail_after(30):
        code = await hubgate(
            "probe", f"127.0.0.1:{port}", "--units", "5-8", "--timeout", "0.3", "--json"
        )
    assert code == 0
    (row,) = json.loads(capsys.readouterr().out)  # units 5, 6 and 8 are silent
    assert (row["unit"], row["results"][0]["profile"]) == (7, "vestel-evc04")


async def test_cli_probe_on_a_unit_nothing_answers(capsys: pytest.CaptureFixture[str]) -> None:
    with serve(SimulatedDevice(PROFILES["vestel-evc04"])) as port, trio.fail_after(30):
        code = await hubgate("probe", f"127.0.0.1:{port}", "--unit", "7", "--timeout", "0.3")
    assert code == 1
    err = capsys.readouterr().err
    assert "no profile matches" in err
    assert "no unit answered; silent: 7 (try --units)" in err


async def test_cli_probe_unreachable(capsys: pytest.CaptureFixture[str]) -> None:
    listener = trio.socket.socket()
    await listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    listener.close()  # nothing listens there now
    with trio.fail_after(30):
        code = await hubgate("probe", f"127.0.0.1:{port}", "--timeout", "0.3")
    assert code == 1
    assert "cannot connect" in capsys.readouterr().err


async def test_cli_probe_rejects_two_links(capsys: pytest.CaptureFixture[str]) -> None:
    with trio.fail_after(10):
        code = await hubgate("probe", "127.0.0.1", "--rtu", "/dev/null")
    assert code == 2
    assert "either HOST[:PORT] or --rtu DEVICE" in capsys.readouterr().err


def test_firmware_ranges_and_unit_lists() -> None:
    assert version("v3.187.0") == (3, 187, 0)
    assert version("6.4.0-4210") == (6, 4, 0)
    assert version("10201") is None
    assert in_range(Firmware(min="1.6.5"), "1.7") is True
    assert in_range(Firmware(min="1.6.5"), "1.6.4") is False
    assert in_range(Firmware(min="2.0", below="3.0"), "3.0.1") is False
    assert in_range(Firmware(), "whatever") is None
    assert parse_units("1-3,200,2") == [1, 2, 3, 200]
    for bad in ("", "a", "5-2", "250-260"):
        with pytest.raises(ValueError, match="unit ids"):
            parse_units(bad)
    assert {1, 200, 255} <= set(common_units(PROFILES.values()))


async def test_cli_probe_all_says_why_the_others_failed(capsys: pytest.CaptureFixture[str]) -> None:
    with serve(SimulatedDevice(PROFILES["keba-p40"])) as port, trio.fail_after(30):
        code = await hubgate("probe", f"127.0.0.1:{port}", "--unit", "255", "--all")
    assert code == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("  ")]
    assert lines[0].startswith("  match  keba-p40 ")
    p30 = next(line for line in lines if " keba-p30 " in line)
    assert p30.startswith("  no ")
    assert "model '4110000' does not match" in p30


async def test_a_sunspec_inverter_is_named_with_what_it_read(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with serve(SimulatedDevice(PROFILES["sunspec-inverter"])) as port, trio.fail_after(30):
        code = await hubgate("probe", f"127.0.0.1:{port}", "--unit", "1", "--json")
    assert code == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert row["identity"]["sunspec"] == {
        "manufacturer": "Example Solar",
        "model": "SI-5000",
        "firmware": "1.2.3",
        "serial": "SN-0012345",
    }
    names = [r["profile"] for r in row["results"]]
    assert names[0] == "sunspec-inverter"
    assert "grid-operator-14a-relays" not in names
    assert "solaredge-inverter" not in names  # its vendor check: 'Example Solar' is not SolarEdge


async def test_device_identification_names_the_maker_and_rules_out_others() -> None:
    device_id = {
        "VendorName": "Eastron",
        "ProductCode": "SDM630-Modbus",
        "MajorMinorRevision": "2.1",
    }
    device = SimulatedDevice(PROFILES["eastron-sdm630"])
    with serve(device, device_id=device_id) as port, trio.fail_after(30):
        async with open_tcp_master("127.0.0.1", port, timeout_s=1.0, retries=0) as master:
            (unit,) = await probe(master, [1], PROFILES.values())
    assert unit.identity.device_id == {
        "manufacturer": "Eastron",
        "product code": "SDM630-Modbus",
        "firmware": "2.1",
    }
    best = unit.matches[0]
    assert best.profile == "eastron-sdm630"
    assert "made by 'Eastron'" in best.evidence
    others = {r.profile: r for r in unit.results}
    assert not others["janitza-umg96rm"].matched
    assert others["janitza-umg96rm"].reason == "the device says it is made by 'Eastron'"


@pytest.fixture
def socat_ptys() -> Iterator[tuple[str, str]]:
    if shutil.which("socat") is None:
        pytest.skip("socat is not installed")
    process = subprocess.Popen(
        ["socat", "-d", "-d", "pty,raw,echo=0", "pty,raw,echo=0"],
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stderr is not None
    ends = []
    while len(ends) < 2:
        line = process.stderr.readline()
        if not line:
            raise RuntimeError("socat exited before opening its pseudo-terminals")
        if "PTY is " in line:
            ends.append(line.rsplit(" ", 1)[-1].strip())
    try:
        yield ends[0], ends[1]
    finally:
        process.terminate()
        process.wait(5)
        process.stderr.close()


@pytest.mark.timeout(90)  # after its deadline, so that Trio ends it cleanly
async def test_probe_over_rtu_scans_the_bus(
    socat_ptys: tuple[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    master_end, device_end = socat_ptys
    device = SimulatedDevice(PROFILES["heidelberg-energy-control"], unit=3)
    with serve(device, serial_port=device_end, baud=19200), trio.fail_after(60):
        line = SerialLine(device=master_end, baud=19200, parity=Parity.NONE)
        async with open_rtu_master(line, timeout_s=1.0, retries=0) as master:
            units = await probe(master, [2, 3], PROFILES.values())
        assert [u.answered for u in units] == [False, True]
        heidelberg = next(r for r in units[1].results if r.profile == "heidelberg-energy-control")
        assert heidelberg.matched, heidelberg.reason
        assert units[1].matches[0] == heidelberg
        code = await hubgate(
            "probe", "--rtu", master_end, "--baud", "19200", "--parity", "N", "--units", "3"
        )
    assert code == 0
    assert "match  heidelberg-energy-control " in capsys.readouterr().out

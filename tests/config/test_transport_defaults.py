"""What a site's `modbus` table leaves out comes from the profile's `[transport]`: the unit id,
the Modbus TCP port and the factory serial line settings; a Modbus-TCP-only device is
refused on a serial line."""

from __future__ import annotations

from pathlib import Path

from hubgate.config.model import Parity
from tests.support.site_files import load_text as load
from tests.support.site_files import site_problems as problems
from tests.support.toml_tables import meter

BATTERY = """\
[battery]
id = "battery"
modbus = {modbus}
capacity_kwh = 20
max_charge_kw = 10
max_discharge_kw = 10
"""


def test_the_unit_and_port_the_site_leaves_out_are_the_profiles(tmp_path: Path) -> None:
    # kostal-plenticore: [transport] tcp_port = 1502, unit = 71 (Kostal's Modbus TCP spec).
    site = load(
        tmp_path, BATTERY.format(modbus='{ profile = "kostal-plenticore", host = "10.0.0.5" }')
    )
    assert site.battery is not None
    assert (site.battery.modbus.port, site.battery.modbus.unit) == (1502, 71)


def test_what_the_site_gives_wins(tmp_path: Path) -> None:
    table = '{ profile = "kostal-plenticore", host = "10.0.0.5", port = 502, unit = 1 }'
    site = load(tmp_path, BATTERY.format(modbus=table))
    assert site.battery is not None
    assert (site.battery.modbus.port, site.battery.modbus.unit) == (502, 1)


def test_a_serial_line_gets_the_profiles_factory_settings(tmp_path: Path) -> None:
    # sungrow-sh: serial = { baud = 9600, parity = "N", stop_bits = 1 } (the site default is E).
    table = '{ profile = "sungrow-sh", serial = { device = "/dev/ttyUSB0" } }'
    site = load(tmp_path, BATTERY.format(modbus=table))
    assert site.battery is not None
    line = site.battery.modbus.serial
    assert line is not None
    assert (line.baud, line.parity, line.stop_bits) == (9600, Parity.NONE, 1)
    table = '{ profile = "sungrow-sh", serial = { device = "/dev/ttyUSB0", baud = 19200 } }'
    site = load(tmp_path, BATTERY.format(modbus=table))
    assert site.battery is not None
    line = site.battery.modbus.serial
    assert line is not None
    assert (line.baud, line.parity) == (19200, Parity.NONE)


def test_a_tcp_only_device_on_a_serial_line_is_refused(tmp_path: Path) -> None:
    table = '{ profile = "kostal-plenticore", serial = { device = "/dev/ttyUSB0" } }'
    [problem] = problems(tmp_path, BATTERY.format(modbus=table))
    assert problem.endswith(
        "battery.modbus.serial: profile 'kostal-plenticore' is reached over Modbus TCP only"
        " ([transport] link = 'tcp'), not a serial line: give its host (and port) instead"
    )
    table = '{ profile = "kostal-plenticore", host = "10.0.0.5", rtu_over_tcp = true }'
    [problem] = problems(tmp_path, BATTERY.format(modbus=table))
    assert "battery.modbus.rtu_over_tcp: profile 'kostal-plenticore' is reached over" in problem


def test_one_line_with_two_settings_is_refused(tmp_path: Path) -> None:
    # eastron-sdm630 has no factory line in its profile (the site default 9600 8E1);
    # sungrow-sh's is 9600 8N1: on one line, one of them cannot answer.
    text = meter(
        "m1", "grid", '{ profile = "eastron-sdm630", serial = { device = "/dev/ttyS1" }, unit = 2 }'
    ) + BATTERY.format(modbus='{ profile = "sungrow-sh", serial = { device = "/dev/ttyS1" } }')
    [problem] = problems(tmp_path, text)
    assert (
        "battery.modbus.serial: serial line /dev/ttyS1 is 9600 N1 here but 9600 E1 in"
        " meters[0].modbus; a line has one setting" in problem
    )


def test_a_heartbeat_timeout_needs_a_box_that_reads_a_counter(tmp_path: Path) -> None:
    box = """[grid_operator]
source = "modbus-device"
modbus = {{ profile = "{profile}", host = "10.0.0.9" }}
heartbeat_timeout_s = 10
"""
    site = load(tmp_path, box.format(profile="grid-operator-limit-register"))
    assert site.grid_operator is not None
    assert site.grid_operator.heartbeat_timeout_s == 10
    [problem] = problems(tmp_path, box.format(profile="grid-operator-14a-relays"))
    assert problem.endswith(
        "grid_operator.heartbeat_timeout_s: profile 'grid-operator-14a-relays' reads no"
        " grid_limit_heartbeat: drop heartbeat_timeout_s, or use a profile with a"
        " [fields.grid_limit_heartbeat] counter"
    )

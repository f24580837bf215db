"""Configuration that cannot run is refused by `config check`: listeners on one port, two
devices on one Modbus address."""

from __future__ import annotations

from pathlib import Path

import pytest

from hubgate.cli import EXIT_BAD_INPUT, EXIT_OK, main
from tests.support.site_files import MINIMAL_SITE as BASE
from tests.support.site_files import site_problems as problems
from tests.support.toml_tables import meter, modbus, modbus_charger


def listeners(ocpp: str, api: str, modbus_server: str | None = None) -> str:
    text = f"[ocpp]\n{ocpp}\n\n[api]\n{api}\n"
    return text + ("" if modbus_server is None else f"\n[modbus_server]\n{modbus_server}\n")


def test_the_api_on_the_ocpp_port_is_refused_with_both_fields(tmp_path: Path) -> None:
    found = problems(tmp_path, listeners("port = 9000", "port = 9000"))
    assert found == [
        f"{tmp_path / 'site.toml'}:11: api.port: port 9000 is also the OCPP listener's "
        "(ocpp.port); give each listener its own port"
    ]


def test_a_default_port_counts(tmp_path: Path) -> None:
    """The Modbus server's default is 5020: an API on 5020 clashes with it."""
    [problem] = problems(tmp_path, listeners("port = 0", "port = 5020", "unit = 1"))
    assert "modbus_server.port: port 5020 is also the API's (api.port)" in problem


@pytest.mark.parametrize(
    ("ocpp_host", "api_host", "clash"),
    [
        ("127.0.0.1", "127.0.0.1", True),
        ("0.0.0.0", "127.0.0.1", True),  # the wildcard takes every IPv4 address
        ("::", "127.0.0.1", True),  # dual stack: the IPv6 wildcard takes IPv4 too
        ("localhost", "127.0.0.1", True),  # a name may be any address
        ("127.0.0.1", "127.0.0.2", False),
        ("127.0.0.1", "::1", False),
        ("0.0.0.0", "::1", False),
    ],
)
def test_hosts_that_share_a_port(
    tmp_path: Path, ocpp_host: str, api_host: str, clash: bool
) -> None:
    text = listeners(f'host = "{ocpp_host}"\nport = 9000', f'host = "{api_host}"\nport = 9000')
    assert bool(problems(tmp_path, text)) is clash


def test_port_zero_never_clashes(tmp_path: Path) -> None:
    assert problems(tmp_path, listeners("port = 0", "port = 0", "port = 0")) == []


def test_two_chargers_on_one_modbus_address(tmp_path: Path) -> None:
    text = modbus_charger("a", "grid", modbus("alfen-eve", port=1502, unit=3))
    text += "\n" + modbus_charger("b", "grid", modbus("alfen-eve", port=1502, unit=3))
    [problem] = problems(tmp_path, text)
    assert "chargers[1].modbus.unit: 127.0.0.1:1502 unit 3 is also chargers[0].modbus's" in problem
    assert "give each device its own unit id" in problem


def test_a_charger_and_a_meter_cannot_share_an_address(tmp_path: Path) -> None:
    text = modbus_charger("a", "grid", modbus("alfen-eve", port=1502, unit=1))
    text += "\n" + meter("m", "grid", modbus("eastron-sdm630", port=1502, unit=1))
    [problem] = problems(tmp_path, text)
    assert "meters[0].modbus.unit" in problem


def test_other_units_ports_and_serial_lines_are_other_devices(tmp_path: Path) -> None:
    text = modbus_charger("a", "grid", modbus("alfen-eve", port=1502, unit=1))
    text += "\n" + modbus_charger("b", "grid", modbus("alfen-eve", port=1502, unit=2))
    text += "\n" + modbus_charger("c", "grid", modbus("alfen-eve", port=1503, unit=1))
    for name, device in (("m1", "/dev/ttyUSB0"), ("m2", "/dev/ttyUSB1")):
        serial = f'{{ profile = "eastron-sdm630", serial = {{ device = "{device}" }}, unit = 1 }}'
        text += "\n" + meter(name, "grid", serial)
    assert problems(tmp_path, text) == []


def test_two_meters_on_one_serial_address(tmp_path: Path) -> None:
    serial = '{ profile = "eastron-sdm630", serial = { device = "/dev/ttyUSB0" }, unit = 4 }'
    text = meter("m1", "grid", serial) + "\n" + meter("m2", "grid", serial)
    [problem] = problems(tmp_path, text)
    assert "meters[1].modbus.unit: /dev/ttyUSB0 unit 4 is also meters[0].modbus's" in problem


def test_a_hybrid_inverter_is_the_pv_and_the_battery_at_one_address(tmp_path: Path) -> None:
    """SunSpec hybrid inverters (models 103 and 124 on one unit) are both roles at once."""
    text = """\
[battery]
id = "battery"
modbus = { profile = "sunspec-hybrid-storage", host = "10.0.0.7", unit = 1 }
capacity_kwh = 10
max_charge_kw = 5
max_discharge_kw = 5

[[pv]]
id = "pv"
modbus = { profile = "sunspec-inverter", host = "10.0.0.7", unit = 1 }
peak_kw = 10
"""
    assert problems(tmp_path, text) == []


def test_config_check_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "site.toml"
    path.write_text(BASE + listeners("port = 8080", "port = 8080"))
    assert main(["config", "check", str(path)]) == EXIT_BAD_INPUT
    assert "api.port: port 8080 is also the OCPP listener's" in capsys.readouterr().err
    path.write_text(BASE + listeners("port = 8081", "port = 8080"))
    assert main(["config", "check", str(path), "--quiet"]) == EXIT_OK

"""A tiny protocol-mode site for the wire tests, and a pymodbus client helper."""

from __future__ import annotations

from pathlib import Path

from pymodbus.client import ModbusTcpClient

from tests.support.toml_tables import car_3p_32a, meter, modbus, modbus_charger

WIRE_SITE = (
    """\
[site]
name = "wire test"

[grid]
phase_current_limit_a = 100
power_limit_kw = 60

"""
    + modbus_charger(
        "wb",
        "grid",
        modbus("alfen-eve", port=1501, unit=1),
        "{ id = 1, max_current_a = 32 }, { id = 2, max_current_a = 32 }",
    )
    + """
[[chargers]]
id = "cp16"
node = "grid"
ocpp = { identity = "SIM-16", versions = ["1.6"] }
connectors = [{ id = 1, max_current_a = 32 }]

[[chargers]]
id = "cp201"
node = "grid"
phase_rotation = "L2L3L1"
ocpp = { identity = "SIM-201", versions = ["2.0.1"] }
connectors = [{ id = 1, phases = "1p", max_current_a = 32 }]

"""
    + meter("meter", "grid", modbus("eastron-sdm630", port=1502))
    + """
[grid_operator]
source = "modbus-device"
modbus = { profile = "grid-operator-limit-register", host = "127.0.0.1", port = 1503 }

[control]
failsafe_current_a = 6
"""
)

WIRE_SCENARIO = (
    """\
[scenario]
name = "wire test"
site = "site.toml"
duration_s = 3600
seed = 5

[arrivals]
initial_occupancy = 1.0

"""
    + car_3p_32a("car", 80, reaction_s=[4, 4], arrival_soc=[0.2, 0.2])
    + """
[[base_load]]
node = "grid"
amps = [4, 5, 6]
"""
)


def write_wire_scenario(folder: Path, events: str = "") -> Path:
    """The wire test's site and scenario (with `events` appended) in `folder`."""
    (folder / "site.toml").write_text(WIRE_SITE)
    path = folder / "scenario.toml"
    path.write_text(WIRE_SCENARIO + events)
    return path


def client(port: int) -> ModbusTcpClient:
    """A connected pymodbus client with a short timeout."""
    modbus = ModbusTcpClient("127.0.0.1", port=port, timeout=1, retries=0)
    assert modbus.connect()
    return modbus


def read_f32(
    modbus: ModbusTcpClient, address: int, count: int, unit: int, *, input: bool = False
) -> list[float]:
    """`count` big-endian floats from holding (or input) registers."""
    read = modbus.read_input_registers if input else modbus.read_holding_registers
    answer = read(address, count=2 * count, device_id=unit)
    assert not answer.isError(), answer
    return [
        float(
            modbus.convert_from_registers(
                answer.registers[2 * i : 2 * i + 2], modbus.DATATYPE.FLOAT32
            )
        )
        for i in range(count)
    ]

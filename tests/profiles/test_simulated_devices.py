"""Every profile against its own simulated device, through pymodbus's client.

Values are decoded here with pymodbus's conversions and this file's own word
order and scaling, independent of the simulator's encoder.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from pymodbus.client import ModbusTcpClient
from pymodbus.pdu import ExceptionResponse

from hubgate.profiles.model import DataType, Function, HeartbeatStyle, Pause, Setpoint
from hubgate.profiles.plan import RegisterSpec
from tests.support.simulated_devices import PROFILES, Served

DT = ModbusTcpClient.DATATYPE
TYPES = {
    "u16": DT.UINT16,
    "i16": DT.INT16,
    "u32": DT.UINT32,
    "i32": DT.INT32,
    "u64": DT.UINT64,
    "i64": DT.INT64,
    "f32": DT.FLOAT32,
    "f64": DT.FLOAT64,
}
ILLEGAL_VALUE = 3

ALL = sorted(PROFILES)
WITH_SETPOINT = [n for n in ALL if PROFILES[n].commands.setpoints]
CHARGERS = [n for n in ALL if PROFILES[n].commands.current_limit is not None]
WITH_FAILSAFE = [
    n for n in ALL if PROFILES[n].failsafe.present and PROFILES[n].commands.current_limit
]


def logical(spec: RegisterSpec, registers: list[int]) -> list[int]:
    """Wire registers in ABCD order (or back: each swap is its own inverse)."""
    if spec.order in ("CDAB", "DCBA"):
        registers = registers[::-1]
    if spec.order in ("BADC", "DCBA"):
        registers = [((r & 0xFF) << 8) | (r >> 8) for r in registers]
    return registers


def read(client: ModbusTcpClient, function: Function, address: int, count: int, unit: int) -> Any:
    call = {
        Function.HOLDING: client.read_holding_registers,
        Function.INPUT: client.read_input_registers,
        Function.COIL: client.read_coils,
        Function.DISCRETE: client.read_discrete_inputs,
    }[function]
    response = call(address, count=count, device_id=unit)
    assert not response.isError(), response
    return response


def exponent(served: Served, spec: RegisterSpec, unit: int) -> int:
    if spec.scale_factor_address is None:
        return 0
    raw = read(served.client, spec.function, spec.scale_factor_address, 1, unit).registers[0]
    return int(ModbusTcpClient.convert_from_registers([raw], DT.INT16))


def decode(served: Served, spec: RegisterSpec, unit: int) -> float | str:
    response = read(served.client, spec.function, spec.address, spec.count, unit)
    if spec.function.is_bit:
        return float(response.bits[0] != spec.invert)
    registers = logical(spec, list(response.registers))
    if spec.type == "string":
        text = ModbusTcpClient.convert_from_registers(
            registers, DT.STRING, string_encoding=spec.charset
        )
        return str(text).strip("\x00 ")
    if spec.type == "bitfield":
        raw: float = 0
        for register in registers:
            raw = int(raw) << 16 | register
    else:
        raw = ModbusTcpClient.convert_from_registers(registers, TYPES[spec.type])  # type: ignore[assignment]
    if spec.mask is not None or spec.shift:
        raw = (int(raw) >> spec.shift) & (spec.mask or -1)
    return raw * spec.scale * 10.0 ** exponent(served, spec, unit) + spec.offset


def encode(spec: RegisterSpec, value: float, exp: int = 0) -> list[int]:
    raw = (value - spec.offset) / (spec.scale * 10.0**exp)
    if spec.type in ("f32", "f64"):
        return logical(spec, ModbusTcpClient.convert_to_registers(raw, TYPES[spec.type]))
    return logical(spec, ModbusTcpClient.convert_to_registers(round(raw), TYPES[spec.type]))


def sample(spec: RegisterSpec, index: int, exp: int) -> float | str:
    """A value the field can hold exactly."""
    if spec.type == "string":
        return f"T{index}"[: spec.count * 2]
    if spec.function.is_bit:
        return 1.0
    steps = (index % spec.mask) + 1 if spec.mask is not None else 100 + index
    return steps * spec.scale * 10.0**exp + spec.offset


def write(served: Served, name: str, value: float) -> Any:
    setpoint: Setpoint = served.profile.commands.setpoints[name]
    spec = served.device.spec(f"commands.{name}")
    registers = encode(spec, value, served.device.exponent if spec.scale_factor_address else 0)
    unit = served.device.unit
    if setpoint.write == "single" and len(registers) == 1:
        return served.client.write_register(spec.address, registers[0], device_id=unit)
    return served.client.write_registers(spec.address, registers, device_id=unit)


def switch(served: Served, name: str, state: str) -> None:
    command = getattr(served.profile.commands, name)
    spec = served.device.spec(f"commands.{name}")
    value = command.values[state]
    unit = served.device.unit
    if spec.function is Function.COIL:
        response = served.client.write_coil(spec.address, bool(value), device_id=unit)
    elif command.write == "multiple":
        response = served.client.write_registers(spec.address, [value], device_id=unit)
    else:
        response = served.client.write_register(spec.address, value, device_id=unit)
    assert not response.isError(), response


def middle(setpoint: Setpoint) -> float:
    value = (setpoint.min + setpoint.max) / 2
    step = setpoint.step or 0.5
    return round(round(value / step) * step, 6)


@pytest.mark.parametrize("served", ALL, indirect=True)
def test_serves_every_field(served: Served) -> None:
    expected = {}
    for index, quantity in enumerate(served.profile.fields):
        spec = served.device.spec(f"fields.{quantity}")
        exp = served.device.exponent if spec.scale_factor_address is not None else 0
        expected[quantity] = sample(spec, index, exp)
        served.device.set(quantity, expected[quantity])
    for quantity, value in expected.items():
        spec = served.device.spec(f"fields.{quantity}")
        got = decode(served, spec, served.device.unit)
        if isinstance(value, str):
            assert got == value, quantity
        else:
            assert got == pytest.approx(value, rel=1e-6), quantity


@pytest.mark.parametrize("served", ALL, indirect=True)
def test_identification_serves_examples(served: Served) -> None:
    for i, ident in enumerate(served.profile.identification):
        spec = served.device.spec(f"identification[{i}]")
        unit = ident.unit_id if ident.unit_id is not None else served.device.unit
        got = decode(served, spec, unit)
        if isinstance(got, str):
            assert got == ident.example
        else:
            assert got == pytest.approx(ident.example)
        if ident.match is not None:
            text = str(int(got)) if isinstance(got, float) and got.is_integer() else str(got)
            assert re.search(ident.match, text), (ident.match, text)


@pytest.mark.parametrize("served", WITH_SETPOINT, indirect=True)
def test_limit_within_range_is_accepted_and_read_back(served: Served) -> None:
    for name, setpoint in served.profile.commands.setpoints.items():
        value = middle(setpoint)
        response = write(served, name, value)
        assert not response.isError(), response
        assert served.device.setpoints[name] == pytest.approx(value)
        if setpoint.readable:
            spec = served.device.spec(f"commands.{name}")
            assert decode(served, spec, served.device.unit) == pytest.approx(value)
        if "applied_current_limit" in served.profile.fields and name == "current_limit":
            spec = served.device.spec("fields.applied_current_limit")
            assert decode(served, spec, served.device.unit) == pytest.approx(value)


@pytest.mark.parametrize("served", WITH_SETPOINT, indirect=True)
def test_limit_out_of_range_is_rejected(served: Served) -> None:
    for name, setpoint in served.profile.commands.setpoints.items():
        response = write(served, name, setpoint.max + (setpoint.step or 1))
        assert isinstance(response, ExceptionResponse), response
        assert response.exception_code == ILLEGAL_VALUE
        if setpoint.below_min == "reject" and setpoint.min > 0:
            below = setpoint.min / 2 if setpoint.step is None else setpoint.min - setpoint.step
            response = write(served, name, below)
            assert isinstance(response, ExceptionResponse), (below, response)
            assert response.exception_code == ILLEGAL_VALUE
    assert served.device.setpoints == {}


@pytest.mark.parametrize("served", CHARGERS, indirect=True)
def test_pause_and_resume(served: Served) -> None:
    setpoint = served.profile.commands.current_limit
    assert setpoint is not None
    assert not write(served, "current_limit", middle(setpoint)).isError()
    assert not served.device.paused
    if served.profile.commands.pause is Pause.ENABLE:
        switch(served, "enable", "off")
        assert served.device.paused
        switch(served, "enable", "on")
    else:
        assert not write(served, "current_limit", 0).isError()
        assert served.device.paused
        assert not write(served, "current_limit", middle(setpoint)).isError()
    assert not served.device.paused
    assert served.device.applied_limit() == pytest.approx(middle(setpoint))


def feed(served: Served) -> None:
    """One heartbeat in the profile's style."""
    beat = served.profile.failsafe.heartbeat
    assert beat is not None
    unit = served.device.unit
    if beat.style is HeartbeatStyle.TOKEN:
        assert beat.address is not None
        assert beat.value is not None
        address = served.profile.wire_address(beat.address)
        assert not served.client.write_register(address, beat.value, device_id=unit).isError()
    elif beat.style is HeartbeatStyle.SETPOINT_REWRITE:
        setpoint = served.profile.commands.current_limit
        assert setpoint is not None
        assert not write(served, "current_limit", middle(setpoint)).isError()
    elif beat.style is HeartbeatStyle.TIMEOUT_REWRITE:
        timeout = served.profile.failsafe.timeout
        assert timeout is not None
        spec = served.device.spec("failsafe.timeout")
        registers = encode(spec, served.device.timeout_s() or 30.0)
        assert not served.client.write_registers(spec.address, registers, device_id=unit).isError()
    else:
        spec = served.device.spec("commands.current_limit")
        read(served.client, Function.HOLDING, spec.address, spec.count, unit)


@pytest.mark.parametrize("served", WITH_FAILSAFE, indirect=True)
def test_heartbeat_lapse_falls_back(served: Served) -> None:
    failsafe = served.profile.failsafe
    assert failsafe.timeout is not None
    assert failsafe.fallback is not None
    setpoint = served.profile.commands.current_limit
    assert setpoint is not None
    fallback = failsafe.fallback.default or 0.0
    if failsafe.fallback.writable and failsafe.fallback.address is not None:
        fallback = setpoint.min + 2
        spec = served.device.spec("failsafe.fallback")
        registers = encode(spec, fallback)
        assert not served.client.write_registers(
            spec.address, registers, device_id=served.device.unit
        ).isError()
    if failsafe.timeout.enable_address is not None:  # switched on, whatever it starts at
        spec = served.device.spec("failsafe.timeout.enable")
        assert not served.client.write_register(
            spec.address, failsafe.timeout.enable_value, device_id=served.device.unit
        ).isError()
    if failsafe.timeout.writable and failsafe.timeout.address is not None:
        spec = served.device.spec("failsafe.timeout")  # armed, whatever it starts at
        registers = encode(spec, 30.0)
        assert not served.client.write_registers(
            spec.address, registers, device_id=served.device.unit
        ).isError()
    assert not write(served, "current_limit", middle(setpoint)).isError()
    timeout = served.device.timeout_s()
    assert timeout is not None
    for _ in range(3):  # fed in time: the setpoint holds
        served.clock.now += timeout * 0.6
        feed(served)
        assert served.device.applied_limit() == pytest.approx(middle(setpoint))
    served.clock.now += timeout + 1
    assert served.device.applied_limit() == pytest.approx(fallback)
    assert served.device.failsafe_active
    if "applied_current_limit" in served.profile.fields:
        spec = served.device.spec("fields.applied_current_limit")
        assert decode(served, spec, served.device.unit) == pytest.approx(fallback)
    feed(served)  # back in contact: a new setpoint lifts the fallback
    assert not write(served, "current_limit", setpoint.max).isError()
    assert served.device.applied_limit() == pytest.approx(setpoint.max)


@pytest.mark.parametrize("served", ["sunspec-meter", "sunspec-storage"], indirect=True)
def test_sunspec_marker_and_chain(served: Served) -> None:
    sunspec = served.profile.sunspec
    assert sunspec is not None
    registers = read(served.client, Function.HOLDING, 40000, 2, 1).registers
    assert ModbusTcpClient.convert_from_registers(registers, DT.STRING) == "SunS"
    address, chain = 40002, []
    while True:
        model, length = read(served.client, Function.HOLDING, address, 2, 1).registers
        if model == 0xFFFF:
            break
        chain.append((model, length))
        address += 2 + length
    assert chain == [(b.ids[0], b.length) for b in sunspec.blocks.values()]


@pytest.mark.parametrize("served", ["alfen-eve"], indirect=True)
def test_unknown_register_and_fc6_on_float_are_refused(served: Served) -> None:
    response = served.client.read_holding_registers(5000, count=1, device_id=1)
    assert isinstance(response, ExceptionResponse)
    assert response.exception_code == 2
    response = served.client.write_register(1210, 0, device_id=1)
    assert isinstance(response, ExceptionResponse)
    assert response.exception_code == 1


def test_every_type_is_exercised() -> None:
    types = {f.type for p in PROFILES.values() for f in p.fields.values()}
    assert {DataType.U16, DataType.I16, DataType.U32, DataType.I32, DataType.F32} <= types
    assert {DataType.I64, DataType.F64, DataType.STRING, DataType.BITFIELD} <= types


@pytest.mark.parametrize("served", ["mennekes-amtron-professional", "sunspec-meter"], indirect=True)
def test_unavailable_value_reads_as_its_sentinel(served: Served) -> None:
    for quantity, field in served.profile.fields.items():
        if not field.sentinel:
            continue
        served.device.set(quantity, None)
        spec = served.device.spec(f"fields.{quantity}")
        unit = served.device.unit
        response = read(served.client, spec.function, spec.address, spec.count, unit)
        raw = 0
        for register in logical(spec, list(response.registers)):
            raw = raw << 16 | register
        assert raw == field.sentinel[0], quantity
    with pytest.raises(ValueError, match="has no sentinel"):
        served.device.set("energy_import", None)


@pytest.mark.parametrize("served", ["alfen-eve-scn"], indirect=True)
def test_per_phase_limits(served: Served) -> None:
    setpoint = served.profile.commands.current_limit
    assert setpoint is not None
    assert setpoint.per_phase
    for phase, amps in enumerate((40.0, 25.5, 32.0)):
        spec = served.device.spec("commands.current_limit" + ("", ".l2", ".l3")[phase])
        assert spec.address == 1417 + 2 * phase
        registers = encode(spec, amps)
        response = served.client.write_registers(spec.address, registers, device_id=200)
        assert not response.isError(), response
        assert decode(served, spec, 200) == amps
    assert served.device.applied_limit() == 25.5
    assert decode(served, served.device.spec("fields.applied_current_limit"), 200) == 25.5

"""`hubgate modbus read|write` against a pymodbus device (TCP and RTU) and faulty devices."""

from __future__ import annotations

import struct
from functools import partial

import pytest
import trio

from hubgate.cli import main
from tests.support.modbus_faults import serve_faulty_device, silent
from tests.support.modbus_peers import HOLDING, RunningServer
from tests.support.ports import refused_port


async def hubgate(*argv: str) -> int:
    """Run the command line in a worker thread (it runs its own Trio loop)."""
    return await trio.to_thread.run_sync(partial(main, list(argv)))


async def test_read_registers(
    pymodbus_tcp: RunningServer, capsys: pytest.CaptureFixture[str]
) -> None:
    with trio.fail_after(10):
        code = await hubgate(
            "modbus", "read", f"127.0.0.1:{pymodbus_tcp.port}", "--address", "5", "--count", "3"
        )
    assert code == 0
    assert capsys.readouterr().out == "".join(f"{5 + i}\t{HOLDING[5 + i]}\n" for i in range(3))


async def test_read_input_registers_of_another_unit(
    pymodbus_tcp: RunningServer, capsys: pytest.CaptureFixture[str]
) -> None:
    with trio.fail_after(10):
        code = await hubgate(
            "modbus",
            "read",
            f"127.0.0.1:{pymodbus_tcp.port}",
            "--unit",
            "2",
            "--function",
            "4",
            "--address",
            "0",
        )
    assert code == 0
    assert capsys.readouterr().out == f"0\t{HOLDING[0] * 10}\n"


async def test_write_then_read_typed_values_in_word_order(
    pymodbus_tcp: RunningServer, capsys: pytest.CaptureFixture[str]
) -> None:
    target = f"127.0.0.1:{pymodbus_tcp.port}"
    with trio.fail_after(10):
        assert (
            await hubgate(
                "modbus",
                "write",
                target,
                "--address",
                "80",
                "--type",
                "f32",
                "--order",
                "CDAB",
                "--values",
                "230.5",
                "-1.25",
            )
            == 0
        )
        high, low = struct.unpack(">HH", struct.pack(">f", 230.5))
        assert pymodbus_tcp.get_registers(1, 80, 2) == [low, high]
        assert (
            await hubgate(
                "modbus",
                "read",
                target,
                "--address",
                "80",
                "--count",
                "2",
                "--type",
                "f32",
                "--order",
                "CDAB",
            )
            == 0
        )
    out = capsys.readouterr().out
    assert out.endswith("80\t230.5\n82\t-1.25\n")
    assert "wrote 4 register(s) at 80 of unit 1" in out
    pymodbus_tcp.set_registers(1, 80, HOLDING[80:84])


async def test_exception_response_exits_1_naming_the_exception(
    pymodbus_tcp: RunningServer, capsys: pytest.CaptureFixture[str]
) -> None:
    with trio.fail_after(10):
        code = await hubgate(
            "modbus", "read", f"127.0.0.1:{pymodbus_tcp.port}", "--address", "5000"
        )
    assert code == 1
    assert "exception 2 (Illegal Data Address)" in capsys.readouterr().err


async def test_timeout_exits_1(capsys: pytest.CaptureFixture[str]) -> None:
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            port = await nursery.start(serve_faulty_device, silent)
            code = await hubgate(
                "modbus", "read", f"127.0.0.1:{port}", "--address", "0", "--timeout", "0.2"
            )
            nursery.cancel_scope.cancel()
    assert code == 1
    assert f"no answer from 127.0.0.1:{port}/1 within 0.2 s" in capsys.readouterr().err


async def test_refused_connection_exits_1(capsys: pytest.CaptureFixture[str]) -> None:
    with refused_port() as port, trio.fail_after(10):
        code = await hubgate("modbus", "read", f"127.0.0.1:{port}", "--address", "0")
    assert code == 1
    assert "cannot connect" in capsys.readouterr().err


async def test_rtu_read_and_write(pymodbus_serial: str, capsys: pytest.CaptureFixture[str]) -> None:
    serial = ("--rtu", pymodbus_serial, "--baud", "19200", "--parity", "N")
    with trio.fail_after(10):
        assert (
            await hubgate(
                "modbus",
                "write",
                *serial,
                "--unit",
                "2",
                "--address",
                "90",
                "--type",
                "i16",
                "--values",
                "-7",
            )
            == 0
        )
        assert (
            await hubgate(
                "modbus", "read", *serial, "--unit", "2", "--address", "90", "--type", "i16"
            )
            == 0
        )
    assert capsys.readouterr().out.endswith("90\t-7\n")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["modbus", "read", "--address", "0"], "give either HOST[:PORT] or --rtu DEVICE"),
        (["modbus", "read", "h:1", "--rtu", "/dev/x", "--address", "0"], "give either"),
        (
            ["modbus", "read", "h:1", "--address", "0", "--count", "63", "--type", "u32"],
            "1-125 registers, not 126",
        ),
        (
            ["modbus", "write", "h:1", "--address", "0", "--values", "70000"],
            "cannot write 70000 as u16",
        ),
    ],
)
def test_bad_input_exits_2(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    assert message in capsys.readouterr().err


async def test_read_a_string(
    pymodbus_tcp: RunningServer, capsys: pytest.CaptureFixture[str]
) -> None:
    pymodbus_tcp.set_registers(1, 90, [0x5375, 0x6E53])  # "SunS"
    with trio.fail_after(10):
        code = await hubgate(
            "modbus",
            "read",
            f"127.0.0.1:{pymodbus_tcp.port}",
            "--address",
            "90",
            "--count",
            "2",
            "--type",
            "string",
        )
    pymodbus_tcp.set_registers(1, 90, HOLDING[90:92])
    assert code == 0
    assert capsys.readouterr().out == "90\tSunS\n"

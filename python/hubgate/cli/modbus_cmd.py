"""`hubgate modbus read|write`: talk to one Modbus device from the command line.

    hubgate modbus read 10.0.0.5:502 --unit 1 --address 40000 --count 2 --type f32 --order CDAB
    hubgate modbus write 10.0.0.5 --unit 1 --address 100 --type u32 --values 70000 -5
    hubgate modbus read --rtu /dev/ttyUSB0 --baud 9600 --unit 3 --address 0 --count 10

`--count` counts values of `--type` (for `string`: registers). Exit code 1 on a
timeout, an unreachable device or an exception response (named in the message).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import get_args

import trio

from hubgate._core import Field, FieldError
from hubgate.cli.common import EXIT_BAD_INPUT, EXIT_OK, add_command
from hubgate.config.model import Parity, SerialLine
from hubgate.modbus.codec import FieldValue, ValueType, WordOrder
from hubgate.modbus.master import MAX_READ, Master, ModbusDevice
from hubgate.modbus.rtu_master import open_rtu_master, open_rtu_over_tcp_master
from hubgate.modbus.tcp_master import open_tcp_master

TYPES = ("u16", "i16", "u32", "i32", "u64", "i64", "f32", "f64", "string")


def register(parser: argparse.ArgumentParser) -> None:
    """Add the `modbus` sub-commands."""
    commands = parser.add_subparsers(title="modbus commands", metavar="COMMAND", required=True)
    read = add_command(commands, "read", "read holding or input registers", _read)
    add_link_arguments(read)
    _add_register_arguments(read)
    read.add_argument("--count", type=int, default=1, help="values to read (default 1)")
    read.add_argument("--function", type=int, choices=(3, 4), default=3, help="3 holding, 4 input")
    write = add_command(commands, "write", "write holding registers (function 6 or 16)", _write)
    add_link_arguments(write)
    _add_register_arguments(write)
    write.add_argument(
        "--values", nargs="+", required=True, metavar="VALUE", help="values of --type to write"
    )


def add_link_arguments(parser: argparse.ArgumentParser) -> None:
    """HOST[:PORT], or --rtu DEVICE with its line settings, or --rtu-over-tcp; --timeout."""
    parser.add_argument("target", nargs="?", metavar="HOST[:PORT]", help="Modbus TCP device")
    parser.add_argument("--timeout", type=float, default=1.0, help="seconds (default 1)")
    parser.add_argument("--rtu", metavar="DEVICE", help="serial device for Modbus RTU")
    parser.add_argument("--baud", type=int, default=9600, help="serial baud rate (default 9600)")
    parser.add_argument(
        "--parity", choices=[p.value for p in Parity], default="E", help="serial parity (default E)"
    )
    parser.add_argument("--stop-bits", type=int, choices=(1, 2), default=1)
    parser.add_argument(
        "--rtu-over-tcp", action="store_true", help="RTU frames to HOST (serial gateway)"
    )


def _add_register_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--unit", type=int, default=1, help="unit id (default 1)")
    parser.add_argument("--address", type=int, required=True, help="first register (0-based)")
    parser.add_argument("--type", choices=TYPES, default="u16", help="value type (default u16)")
    parser.add_argument(
        "--order", choices=get_args(WordOrder), default="ABCD", help="byte order (default ABCD)"
    )


def split_target(target: str) -> tuple[str, int]:
    """`host`, `host:port` or `[v6]:port` as (host, port); the port defaults to 502."""
    if target.startswith("["):
        host, _, rest = target[1:].partition("]")
        return host, int(rest[1:]) if rest.startswith(":") else 502
    if target.count(":") == 1:
        host, port = target.split(":")
        return host, int(port)
    return target, 502


@asynccontextmanager
async def open_master(args: argparse.Namespace) -> AsyncIterator[Master]:
    """The master that `add_link_arguments`' options name."""
    if args.rtu is not None:
        line = SerialLine(
            device=args.rtu, baud=args.baud, parity=Parity(args.parity), stop_bits=args.stop_bits
        )
        async with open_rtu_master(line, timeout_s=args.timeout, retries=0) as bus:
            yield bus
        return
    host, port = split_target(args.target)
    if args.rtu_over_tcp:
        async with open_rtu_over_tcp_master(host, port, timeout_s=args.timeout, retries=0) as gw:
            yield gw
        return
    async with open_tcp_master(host, port, timeout_s=args.timeout, retries=0) as master:
        yield master


def _fields(args: argparse.Namespace, count: int) -> list[Field]:
    if args.type == "string":
        return [Field(args.address, "string", count=count)]
    value_type: ValueType = args.type
    size = Field(args.address, value_type).count
    return [Field(args.address + i * size, value_type, order=args.order) for i in range(count)]


def check_link(args: argparse.Namespace) -> str | None:
    """What is wrong with the link options, if anything."""
    if (args.rtu is None) == (args.target is None):
        return "give either HOST[:PORT] or --rtu DEVICE"
    if args.rtu_over_tcp and args.rtu is not None:
        return "--rtu-over-tcp goes with HOST, not --rtu"
    return None


def _bad_input(message: str) -> int:
    print(f"hubgate modbus: {message}", file=sys.stderr)
    return EXIT_BAD_INPUT


def _read(args: argparse.Namespace) -> int:
    if (problem := check_link(args)) is not None:
        return _bad_input(problem)
    fields = _fields(args, args.count)
    registers = sum(f.count for f in fields)
    if args.count < 1 or registers > MAX_READ:
        return _bad_input(f"a read takes 1-{MAX_READ} registers, not {registers}")

    async def run() -> list[int]:
        async with open_master(args) as master:
            device = ModbusDevice(master, args.unit)
            return await device.read_registers(args.address, registers, function=args.function)

    values = trio.run(run)
    position = 0
    for field in fields:
        value: FieldValue = field.decode(values[position : position + field.count])
        print(f"{field.address}\t{value}")
        position += field.count
    return EXIT_OK


def _parse(value_type: str, text: str) -> int | float | str:
    if value_type == "string":
        return text
    if value_type.startswith("f"):
        return float(text)
    return int(text, 0)


def _write(args: argparse.Namespace) -> int:
    if (problem := check_link(args)) is not None:
        return _bad_input(problem)
    fields = _fields(args, 1 if args.type == "string" else len(args.values))
    try:
        registers = [
            register
            for field, text in zip(fields, args.values, strict=True)
            for register in field.encode(_parse(args.type, text))
        ]
    except (ValueError, FieldError) as exc:
        return _bad_input(f"cannot write {' '.join(args.values)} as {args.type}: {exc}")

    async def run() -> None:
        async with open_master(args) as master:
            await ModbusDevice(master, args.unit).write_registers(args.address, registers)

    trio.run(run)
    print(f"wrote {len(registers)} register(s) at {args.address} of unit {args.unit}")
    return EXIT_OK

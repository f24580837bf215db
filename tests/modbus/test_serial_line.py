"""Serial lines: termios settings on a real pseudo-terminal, bytes both ways, RTU timers."""

from __future__ import annotations

import os
import termios
from collections.abc import Iterator

import pytest
import trio

from hubgate.config.model import Parity, SerialLine
from hubgate.modbus.serial_line import RtuTiming, open_serial_line, raw_attributes


@pytest.fixture
def pty_pair() -> Iterator[tuple[int, str]]:
    """(controller fd, path of the device end) of a fresh pseudo-terminal."""
    controller, device = os.openpty()
    path = os.ttyname(device)
    os.close(device)
    yield controller, path
    os.close(controller)


def test_timing_below_and_above_19200() -> None:
    slow = RtuTiming.for_line(SerialLine(device="x", baud=9600, parity=Parity.EVEN))
    assert slow.character_s == pytest.approx(11 / 9600)
    assert slow.t35_s == pytest.approx(3.5 * 11 / 9600)  # about 4.01 ms
    fast = RtuTiming.for_line(SerialLine(device="x", baud=115200, parity=Parity.NONE))
    assert fast.character_s == pytest.approx(10 / 115200)
    assert (fast.t15_s, fast.t35_s) == (750e-6, 1.75e-3)
    assert fast.transmit_s(8) == pytest.approx(80 / 115200)


async def test_configured_raw_and_bytes_flow_both_ways(pty_pair: tuple[int, str]) -> None:
    controller, path = pty_pair
    line = SerialLine(device=path, baud=19200, parity=Parity.ODD, stop_bits=2)
    with trio.fail_after(5):
        stream = open_serial_line(line)
        async with stream:
            _i, _o, _c, lflag, ispeed, ospeed, _cc = termios.tcgetattr(stream.fileno())
            assert ispeed == ospeed == termios.B19200
            assert not lflag & termios.ICANON
            assert not lflag & termios.ECHO
            # 0x0D and 0x11 pass untouched in raw mode (no CR translation, no XON/XOFF)
            frame = bytes([0x01, 0x03, 0x0D, 0x11, 0x00, 0x0A, 0xFF, 0x00])
            await stream.send_all(frame)
            sent = b""
            while len(sent) < len(frame):
                await trio.lowlevel.wait_readable(controller)
                sent += os.read(controller, 64)
            assert sent == frame
            os.write(controller, frame[::-1])
            received = b""
            while len(received) < len(frame):
                received += await stream.receive_some(64)
            assert received == frame[::-1]


@pytest.mark.parametrize(
    ("parity", "stop_bits", "set_bits", "clear_bits"),
    [
        (Parity.EVEN, 1, termios.PARENB, termios.PARODD | termios.CSTOPB),
        (Parity.ODD, 2, termios.PARENB | termios.PARODD | termios.CSTOPB, 0),
        (Parity.NONE, 2, termios.CSTOPB, termios.PARENB | termios.PARODD),
    ],
)
def test_frame_format_bits(
    pty_pair: tuple[int, str], parity: Parity, stop_bits: int, set_bits: int, clear_bits: int
) -> None:
    # A pseudo-terminal keeps its own hardware bits, so the computed attributes are checked.
    controller, _path = pty_pair
    line = SerialLine(device="x", baud=9600, parity=parity, stop_bits=stop_bits)
    _i, _o, cflag, _l, ispeed, _os, _cc = raw_attributes(termios.tcgetattr(controller), line)
    assert cflag & set_bits == set_bits
    assert cflag & clear_bits == 0
    assert cflag & termios.CSIZE == termios.CS8
    assert ispeed == termios.B9600


def test_unsupported_baud_is_a_clear_error(pty_pair: tuple[int, str]) -> None:
    _controller, path = pty_pair
    with pytest.raises(ValueError, match="baud rate 12345 is not supported"):
        open_serial_line(SerialLine(device=path, baud=12345))


def test_missing_device_raises_os_error() -> None:
    with pytest.raises(FileNotFoundError):
        open_serial_line(SerialLine(device="/dev/does-not-exist-hubgate"))

"""Serial lines for Modbus RTU: open a tty raw with termios, drive it with Trio.

No thread per port: the tty's file descriptor is wrapped in a
`trio.lowlevel.FdStream`. The RTU timing rules live here too (Modbus over
Serial Line V1.02 §2.5.1.1): frames are separated by 3.5 character times,
with fixed 750 µs / 1.75 ms timers above 19200 baud.
"""

from __future__ import annotations

import os
import termios
from dataclasses import dataclass
from typing import Any

import trio

from hubgate.config.model import Parity, SerialLine

_FIXED_RATE_ABOVE = 19_200
_FIXED_T15_S = 750e-6
_FIXED_T35_S = 1.75e-3


@dataclass(frozen=True)
class RtuTiming:
    """Character time and the t1.5 / t3.5 timers of one serial line setting."""

    character_s: float
    t15_s: float
    t35_s: float

    @classmethod
    def for_line(cls, line: SerialLine) -> RtuTiming:
        """The timers for `line`'s baud rate, parity and stop bits."""
        bits = 1 + 8 + (0 if line.parity is Parity.NONE else 1) + line.stop_bits
        character = bits / line.baud
        if line.baud > _FIXED_RATE_ABOVE:
            return cls(character, _FIXED_T15_S, _FIXED_T35_S)
        return cls(character, 1.5 * character, 3.5 * character)

    def transmit_s(self, frame_bytes: int) -> float:
        """How long `frame_bytes` take on the wire."""
        return frame_bytes * self.character_s


def _baud_constant(baud: int) -> int:
    constant = getattr(termios, f"B{baud}", None)
    if not isinstance(constant, int):
        raise ValueError(f"baud rate {baud} is not supported by this system's termios")
    return constant


TtyAttributes = list[Any]
"""termios attributes: [iflag, oflag, cflag, lflag, ispeed, ospeed, cc]."""


def raw_attributes(current: TtyAttributes, line: SerialLine) -> TtyAttributes:
    """`current` made raw (8 data bits, no flow control) at the line's settings."""
    iflag, oflag, cflag, lflag, _ispeed, _ospeed, cc = current
    cc = list(cc)
    speed = _baud_constant(line.baud)
    iflag &= ~(
        termios.IGNBRK
        | termios.BRKINT
        | termios.PARMRK
        | termios.ISTRIP
        | termios.INLCR
        | termios.IGNCR
        | termios.ICRNL
        | termios.IXON
        | termios.IXOFF
        | termios.IXANY
        | termios.INPCK
    )
    oflag &= ~termios.OPOST
    lflag &= ~(termios.ECHO | termios.ECHONL | termios.ICANON | termios.ISIG | termios.IEXTEN)
    cflag &= ~(termios.CSIZE | termios.PARENB | termios.PARODD | termios.CSTOPB)
    cflag |= termios.CS8 | termios.CREAD | termios.CLOCAL
    if line.parity is not Parity.NONE:
        cflag |= termios.PARENB
        iflag |= termios.INPCK
        if line.parity is Parity.ODD:
            cflag |= termios.PARODD
    if line.stop_bits == 2:
        cflag |= termios.CSTOPB
    if hasattr(termios, "CRTSCTS"):
        cflag &= ~termios.CRTSCTS
    # VMIN 1: a non-blocking read with no data fails with EAGAIN, which Trio waits on;
    # with VMIN 0 it returns b"", which a stream reports as end of file.
    cc[termios.VMIN] = 1
    cc[termios.VTIME] = 0
    return [iflag, oflag, cflag, lflag, speed, speed, cc]


def configure_tty(fd: int, line: SerialLine) -> None:
    """Put the tty raw at the line's settings."""
    termios.tcsetattr(fd, termios.TCSANOW, raw_attributes(termios.tcgetattr(fd), line))


def open_serial_line(line: SerialLine) -> trio.lowlevel.FdStream:
    """Open and configure `line.device`; the stream owns the file descriptor."""
    fd = os.open(line.device, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
    try:
        configure_tty(fd, line)
        termios.tcflush(fd, termios.TCIOFLUSH)
    except BaseException:
        os.close(fd)
        raise
    return trio.lowlevel.FdStream(fd)

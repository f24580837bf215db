"""A reader that stops early (`hubgate config check depot-200 | head -2`) ends the command
quietly with 141 (128 + SIGPIPE, as a shell reports it), not with a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

HUBGATE = str(Path(sys.executable).parent / "hubgate")


def test_a_reader_that_stopped_reading_gets_no_traceback() -> None:
    read, write = os.pipe()
    os.close(read)  # the reader is gone before the first line: every write fails
    try:
        done = subprocess.run(
            [HUBGATE, "config", "check", "depot-200"],
            stdout=write,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
            check=False,
        )
    finally:
        os.close(write)
    assert done.stderr == ""
    assert done.returncode == 141

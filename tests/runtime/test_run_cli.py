"""`hubgate run`: starts every service, stops on SIGTERM with chargers commanded, exit 0."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

SITE = Path(__file__).parent / "e2e-site.toml"
HUBGATE = str(Path(sys.executable).parent / "hubgate")


def test_run_starts_and_stops_cleanly_on_sigterm() -> None:
    process = subprocess.Popen(
        [HUBGATE, "run", str(SITE)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        lines = []
        for line in process.stdout:
            lines.append(line)
            if line.startswith("dashboard: http://127.0.0.1:"):
                break
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=30)
    finally:
        process.kill()
    assert process.returncode == 0, err
    assert lines[0].startswith("e2e: OCPP on ws://127.0.0.1:")
    # the site's chargers are not there: none could be commanded, and that is reported
    assert "stopped: 0/6 connectors commanded to the failsafe current" in out


def test_run_with_a_broken_site_file_exits_2(tmp_path: Path) -> None:
    site = tmp_path / "site.toml"
    site.write_text("[site]\nname = 'x'\n[grid]\nphase_current_limit_a = -1\n")
    result = subprocess.run(
        [HUBGATE, "run", str(site)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 2
    assert "phase_current_limit_a" in result.stderr

"""A missing peer fails its test with the install command; only HUBGATE_SKIP_PEERS skips."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from tests.support import peers

ROOT = Path(__file__).resolve().parent.parent
PEERS_SCRIPT = ROOT / "tests" / "support" / "peers.py"


@pytest.fixture
def no_peers_on_path(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(peers, "SYSTEM_DIRS", ())
    monkeypatch.delenv(peers.SKIP_VARIABLE, raising=False)


def test_every_peer_is_on_this_machine() -> None:
    """What `make test` installed is what the tests find (no test runs without its peer)."""
    assert peers.missing() == []


@pytest.mark.usefixtures("no_peers_on_path")
def test_a_missing_peer_fails_naming_the_install_command() -> None:
    with pytest.raises(pytest.fail.Exception) as failed:
        peers.require_peer("mosquitto_sub")
    assert "sudo apt-get install -y mosquitto-clients" in str(failed.value)
    assert "HUBGATE_SKIP_PEERS=mosquitto_sub" in str(failed.value)


@pytest.mark.usefixtures("no_peers_on_path")
def test_an_opted_out_peer_skips_and_is_counted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(peers.SKIP_VARIABLE, "socat, mbpoll")
    monkeypatch.setattr(peers, "skipped", Counter[str]())
    with pytest.raises(pytest.skip.Exception, match="mbpoll skipped by HUBGATE_SKIP_PEERS"):
        peers.require_peer("mbpoll")
    with pytest.raises(pytest.fail.Exception):
        peers.require_peer("openssl")
    assert peers.skipped == {"mbpoll": 1}
    monkeypatch.setenv(peers.SKIP_VARIABLE, "all")
    assert peers.missing() == []


def test_a_real_test_without_its_peer_fails(tmp_path: Path) -> None:
    """A peer test run as pytest runs it, with mbpoll hidden from PATH: it fails, it does not
    pass or skip, and the failure is the install command."""
    tests = tmp_path / "tests"
    tests.mkdir()
    (tests / "test_one.py").write_text(
        "from tests.support.peers import require_peer\n\n"
        "def test_reads_with_mbpoll():\n"
        "    require_peer('mbpoll')\n"
    )
    env = {k: v for k, v in os.environ.items() if k != peers.SKIP_VARIABLE}
    env |= {"PATH": str(tmp_path), "PYTHONPATH": str(ROOT)}
    args = [sys.executable, "-m", "pytest", "-q", "-p", "no:randomly", "-p", "no:cacheprovider"]
    done = subprocess.run(
        [*args, str(tests)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 1, done.stdout
    assert "1 failed" in done.stdout
    assert "mbpoll is missing: sudo apt-get install -y mbpoll" in done.stdout


def test_make_test_stops_at_once_naming_the_command_when_not_root() -> None:
    """`tests/support/peers.py --install` (what `make test` runs first) as a user without root:
    nothing to do when the peers are there; one line with the exact command when not."""
    as_user: list[str] = []
    if os.geteuid() == 0:  # root would install: run it as nobody
        setpriv = shutil.which("setpriv")
        assert setpriv is not None
        as_user = [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups"]
    script = [*as_user, sys.executable, str(PEERS_SCRIPT), "--install"]
    present = subprocess.run(
        script, env={"PATH": os.environ["PATH"]}, capture_output=True, text=True, timeout=30
    )
    assert (present.returncode, present.stderr) == (0, "")
    hidden = subprocess.run(
        script, env={"PATH": "/nonexistent"}, capture_output=True, text=True, timeout=30
    )
    assert hidden.returncode == 1
    [line] = hidden.stderr.splitlines()
    in_system_dirs = {p for p in peers.PEERS for d in peers.SYSTEM_DIRS if Path(d, p).exists()}
    packages = sorted({peers.PEERS[p] for p in peers.PEERS.keys() - in_system_dirs})
    assert f"run `sudo apt-get install -y {' '.join(packages)}`" in line

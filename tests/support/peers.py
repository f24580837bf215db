"""The programs the tests use as real protocol peers, and the one check every test makes.

A test that needs a peer calls `require_peer("mbpoll")` first: it returns the program's
path, or FAILS naming the command that installs it, so a missing peer never lets a test
pass or skip silently. A developer may opt out explicitly with HUBGATE_SKIP_PEERS (a
comma-separated list of programs, or `all`): those tests skip, and the pytest summary
says so.

`make test` runs this file (`python3 tests/peers.py --install`, standard library only)
before anything else: as root it installs the missing Debian packages with apt-get,
otherwise it stops with one line naming the command.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections import Counter

SKIP_VARIABLE = "HUBGATE_SKIP_PEERS"

PEERS = {
    "socat": "socat",  # linked pseudo-terminal pairs for the Modbus RTU tests
    "mbpoll": "mbpoll",  # an independent Modbus client
    "mosquitto": "mosquitto",  # the MQTT broker
    "mosquitto_sub": "mosquitto-clients",  # an independent MQTT subscriber
    "chromium": "chromium",  # the headless browser for the dashboard tests
    "openssl": "openssl",  # certificates for the OCPP TLS tests
    "nats-server": "nats-server",  # the NATS JetStream cluster of the failover tests
}
"""Program -> the Debian package that provides it (the one list: tests, Makefile, CI)."""

SYSTEM_DIRS = ("/usr/sbin", "/sbin")
"""Searched after PATH: Debian installs mosquitto in /usr/sbin, which a user's PATH may lack."""

skipped: Counter[str] = Counter()
"""Peers skipped through HUBGATE_SKIP_PEERS in this run -> how many times (for the summary)."""


def install_command(packages: list[str]) -> str:
    """The command that installs these Debian packages."""
    return "sudo apt-get install -y " + " ".join(sorted(set(packages)))


def opted_out(program: str) -> bool:
    """Whether HUBGATE_SKIP_PEERS names this program (or is `all`)."""
    names = {n.strip() for n in os.environ.get(SKIP_VARIABLE, "").split(",")}
    return "all" in names or program in names


def find(program: str) -> str | None:
    """The program's path: on PATH, else in the system folders."""
    search = os.pathsep.join([os.environ.get("PATH", os.defpath), *SYSTEM_DIRS])
    return shutil.which(program, path=search)


def missing(programs: list[str] | None = None) -> list[str]:
    """The peer programs not found and not opted out."""
    return [p for p in (programs or list(PEERS)) if find(p) is None and not opted_out(p)]


def require_peer(program: str) -> str:
    """The path of a peer program; fails the test (skips it when opted out) if missing."""
    import pytest  # only here: `make test` runs this file with the system Python

    if program not in PEERS:
        raise KeyError(f"{program} is not a known peer; add it to PEERS in {__file__}")
    if opted_out(program):
        skipped[program] += 1
        pytest.skip(f"{program} skipped by {SKIP_VARIABLE}")
    path = find(program)
    if path is None:
        pytest.fail(
            f"{program} is missing: {install_command([PEERS[program]])} "
            f"(or {SKIP_VARIABLE}={program} to skip its tests)",
            pytrace=False,
        )
    return path


def ensure_installed() -> int:
    """Install the missing peers' packages (as root, with apt-get); else name the command."""
    packages = sorted({PEERS[p] for p in missing()})
    if not packages:
        return 0
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        print(
            f"make test needs the test peers {', '.join(packages)}: run "
            f"`{install_command(packages)}` (or set {SKIP_VARIABLE}=all to skip their tests)",
            file=sys.stderr,
        )
        return 1
    environment = os.environ | {"DEBIAN_FRONTEND": "noninteractive"}
    print(f"installing the test peers: {' '.join(packages)}", flush=True)
    for command in (
        ["apt-get", "update", "-qq"],
        ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *packages],
    ):
        subprocess.run(command, env=environment, check=True, stdout=subprocess.DEVNULL)
    still = missing()
    if still:
        print(f"installed, yet still not on PATH: {', '.join(still)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    if sys.argv[1:] != ["--install"]:
        sys.exit(f"usage: {sys.argv[0]} --install")
    sys.exit(ensure_installed())

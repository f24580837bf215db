"""Each command loads only what it uses: the start-up cost (bench group `cli-startup`) stays
low because `hubgate --help` imports no command module and no heavy library, and a command
does not drag in another's (the simulator's protocol peers, the API server, Trio)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

PROBE = """\
import json, sys
from hubgate.cli import main
try:
    main(sys.argv[1:])
except SystemExit:
    pass
print("MODULES=" + json.dumps(sorted(sys.modules)))
"""

HEAVY = {"trio", "pydantic", "ocpp", "pymodbus", "websockets", "sqlite3"}


def loaded(*argv: str) -> set[str]:
    """The top-level packages and hubgate modules loaded by running `hubgate ARGV`."""
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *argv], capture_output=True, text=True, timeout=60
    )
    line = next(x for x in done.stdout.splitlines() if x.startswith("MODULES="))
    names = json.loads(line.removeprefix("MODULES="))
    return {n for n in names if n.startswith("hubgate.")} | {n.split(".")[0] for n in names}


def test_help_loads_no_command_and_no_heavy_library() -> None:
    modules = loaded("--help")
    assert not {m for m in modules if m.endswith("_cmd")}
    assert not modules & HEAVY


@pytest.mark.parametrize(
    ("argv", "not_loaded"),
    [
        (("config", "check", "small-4", "--quiet"), HEAVY - {"pydantic"}),
        (("profiles", "list"), HEAVY - {"pydantic"}),
        (("examples", "list"), HEAVY),
        (  # its control loop keeps its event log and sessions in SQLite (in memory)
            ("sim", "grid-limit-step", "--duration", "2", "--speed", "max"),
            {"pymodbus", "websockets", "hubgate.api.server"},
        ),
        (("run", "--help"), {"pymodbus", "websockets"}),
    ],
)
def test_a_command_loads_only_its_own_modules(argv: tuple[str, ...], not_loaded: set[str]) -> None:
    modules = loaded(*argv)
    command = f"hubgate.cli.{'gateway' if argv[0] == 'run' else argv[0]}_cmd"
    assert command in modules
    others = {m for m in modules if m.endswith("_cmd")} - {command, "hubgate.cli.examples_cmd"}
    assert not others
    assert not modules & not_loaded

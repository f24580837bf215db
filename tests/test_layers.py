"""The package layers of docs/architecture.md hold: every import inside `hubgate` points down.

The layers are read from the `layers` block of docs/architecture.md (the one place they are
written). A module belongs to the longest unit named there that contains it (`ocpp.versions`
before `ocpp`); it may import its own unit and any unit on a lower line, nothing on its own
line or above. Imports under `TYPE_CHECKING` and inside functions count too.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "python" / "hubgate"
DOC = ROOT / "docs" / "architecture.md"
MAX_LINES = 700


def layers() -> dict[str, int]:
    """Unit -> its line in the layers block, counted from the bottom."""
    block = re.search(r"```layers\n(.*?)```", DOC.read_text(), re.S)
    assert block is not None, f"{DOC} has no ```layers block"
    lines = [line.split() for line in block.group(1).splitlines() if line.strip()]
    return {unit: len(lines) - n for n, line in enumerate(lines) for unit in line}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def unit_of(module: str, units: dict[str, int]) -> str | None:
    """The unit a `hubgate...` module belongs to (None: not hubgate)."""
    parts = module.split(".")
    if parts[0] != "hubgate":
        return None
    for end in range(len(parts), 1, -1):
        name = ".".join(parts[1:end])
        if name in units:
            return name
    return "hubgate"  # the package itself, or a name in it (`from hubgate import x`)


def imports(path: Path) -> list[tuple[int, str]]:
    """(line, module) of every absolute import in the file; `from a import b` is `a.b`
    (b may be a module) and `a` (b may be a name in it)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found += [(node.lineno, f"{node.module}.{alias.name}") for alias in node.names]
        elif isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
    return found


def test_every_import_points_down_the_layers() -> None:
    units = layers()
    wrong = []
    for path in sorted(PACKAGE.rglob("*.py")):
        module = module_name(path)
        source = unit_of(module, units)
        top = module.split(".")[1] if "." in module else "hubgate"
        assert top in units or top == "hubgate", (
            f"{path.relative_to(ROOT)}: {top!r} is in no layer of docs/{DOC.name}"
        )
        for line, imported in imports(path):
            target = unit_of(imported, units)
            if target is None or target == source:
                continue
            if units[target] >= units[source]:
                wrong.append(f"{path.relative_to(ROOT)}:{line}: {source} imports {imported}")
    assert wrong == [], "imports that do not point down the layers:\n" + "\n".join(wrong)


def test_no_module_is_over_700_lines() -> None:
    long = {
        str(path.relative_to(ROOT)): n
        for path in PACKAGE.rglob("*.py")
        if (n := len(path.read_text().splitlines())) > MAX_LINES
    }
    assert long == {}, f"split these modules (at most {MAX_LINES} lines each)"


def test_the_control_loop_is_a_thin_shell() -> None:
    """control/loop.py stays the Trio shell around the planner (under 300 lines) and knows
    devices only through the protocols of `devices.model`: no adapter, no API."""
    path = PACKAGE / "control" / "loop.py"
    assert len(path.read_text().splitlines()) < 300
    adapters = ("hubgate.ocpp", "hubgate.api", "hubgate.devices.", "hubgate.runtime")
    wrong = [
        f"line {line}: {module}"
        for line, module in imports(path)
        if module.startswith(adapters) and not module.startswith("hubgate.devices.model.")
    ]
    assert wrong == [], f"{path.relative_to(ROOT)} imports adapters: {wrong}"

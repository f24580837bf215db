"""Every package a module imports is declared in pyproject.toml, none only there by chance.

python/hubgate may import the `dependencies` alone (tests/test_wheel.py installs just those);
tests/ and bench/ may import those and the `dev` extras. A package that arrives only as
another one's dependency (scipy through acnportal) goes the day that one drops it. Imports
inside functions count too, those under `if TYPE_CHECKING:` not (mypy reads them, from its
own stubs); the installed distributions say which one provides each module
(importlib.metadata).
"""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LOCAL = {"hubgate", "tests", "bench"}


def declared(*groups: str) -> set[str]:
    """The normalized distribution names of pyproject's `dependencies` and `groups` extras."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    requirements = list(project["dependencies"])
    for group in groups:
        requirements += project["optional-dependencies"][group]
    return {normalized(re.split(r"[\s<>=!~;\[]", r, maxsplit=1)[0]) for r in requirements}


def normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def imported(*folders: str) -> dict[str, set[str]]:
    """Top-level third-party module -> the files under `folders` that import it."""
    found: dict[str, set[str]] = {}
    for folder in folders:
        for path in sorted((ROOT / folder).rglob("*.py")):
            tree = ast.parse(path.read_text(), str(path))
            typing_only = {
                id(inner)
                for node in ast.walk(tree)
                if isinstance(node, ast.If) and ast.unparse(node.test).endswith("TYPE_CHECKING")
                for statement in node.body
                for inner in ast.walk(statement)
            }
            for node in ast.walk(tree):
                if id(node) in typing_only:
                    continue
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
                    names = [node.module]
                else:
                    continue
                for name in names:
                    top = name.partition(".")[0]
                    if top not in sys.stdlib_module_names and top not in LOCAL:
                        found.setdefault(top, set()).add(str(path.relative_to(ROOT)))
    return found


@pytest.mark.parametrize(
    ("folders", "groups"),
    [(("python",), ()), (("tests", "bench"), ("dev",))],
    ids=["package", "tests-and-bench"],
)
def test_every_import_is_declared(folders: tuple[str, ...], groups: tuple[str, ...]) -> None:
    providers = packages_distributions()
    allowed = declared(*groups)
    undeclared = {
        module: sorted(files)
        for module, files in imported(*folders).items()
        if not {normalized(d) for d in providers.get(module, [module])} & allowed
    }
    assert undeclared == {}, "declare these in pyproject.toml (module: files)"

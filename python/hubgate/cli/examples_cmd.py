"""`hubgate examples list|copy`: the example sites and scenarios shipped inside the package.

They live in the package as `hubgate/examples` (in a checkout a link to `examples/`, their
one source). Commands that take a site or scenario file also take an example's bare name:

    hubgate sim grid-limit-step          # the packaged scenario
    hubgate sim ./my-scenario.toml       # a path, from the working directory
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
import textwrap
from importlib import resources
from pathlib import Path
from typing import Literal

from hubgate.cli.common import EXIT_BAD_INPUT, EXIT_OK, add_command

Kind = Literal["sites", "scenarios"]
KINDS: tuple[Kind, ...] = ("sites", "scenarios")


def examples_dir() -> Path:
    """The packaged examples folder (`sites/`, `scenarios/`)."""
    return Path(str(resources.files("hubgate") / "examples")).resolve()


def example_files(kind: Kind) -> dict[str, Path]:
    """Example name (the file stem) -> file, sorted by name."""
    return {p.stem: p for p in sorted((examples_dir() / kind).glob("*.toml"))}


def example_path(argument: str, kind: Kind) -> Path:
    """The file an argument names: an existing path or one with a folder or `.toml` is taken
    from the working directory; a bare name is a packaged example of `kind`."""
    path = Path(argument)
    if path.exists() or path.name != argument or path.suffix == ".toml":
        return path
    packaged = example_files(kind)
    if argument in packaged:
        return packaged[argument]
    from hubgate.tomlcheck import ConfigError, ConfigProblem

    names = ", ".join(packaged)
    other: Kind = "scenarios" if kind == "sites" else "sites"
    if argument in example_files(other):  # `hubgate sim small-4`, `run grid-limit-step`
        what = f"a packaged {other[:-1]}, not a {kind[:-1]}"
    else:
        what = "no such file, nor a packaged example"
    message = f"{what}; the packaged {kind}: {names}"
    raise ConfigError([ConfigProblem(argument, "", None, message)])


def description(path: Path) -> str:
    """An example's first sentence: its leading comment up to the first full stop."""
    words: list[str] = []
    with path.open(encoding="utf-8") as file:
        for line in file:
            if not line.startswith("#"):
                break
            words += line.lstrip("#").split()
    text = " ".join(words)
    end = re.search(r"\.(\s|$)", text)
    return text if end is None else text[: end.start() + 1]


def register(parser: argparse.ArgumentParser) -> None:
    """Add the `examples` sub-commands to its parser."""
    commands = parser.add_subparsers(title="examples commands", metavar="COMMAND", required=True)
    add_command(commands, "list", "list the packaged example sites and scenarios", _list)
    copy = add_command(
        commands, "copy", "copy the examples into a folder, to start a site of your own", _copy
    )
    copy.add_argument("folder", type=Path, help="where to (created; sites/ and scenarios/)")


def _list(_args: argparse.Namespace) -> int:
    found = {kind: example_files(kind) for kind in KINDS}
    width = max(len(name) for files in found.values() for name in files)
    columns = max(shutil.get_terminal_size().columns, width + 40)
    for kind, files in found.items():
        print(f"{kind}:")
        for name, path in files.items():
            print(
                textwrap.fill(
                    description(path),
                    columns - 1,
                    initial_indent=f"  {name:{width}}  ",
                    subsequent_indent=" " * (width + 4),
                    break_on_hyphens=False,
                )
            )
    return EXIT_OK


def _copy(args: argparse.Namespace) -> int:
    folder: Path = args.folder
    plan = {
        path: folder / kind / path.name for kind in KINDS for path in example_files(kind).values()
    }
    taken = [str(target) for target in plan.values() if target.exists()]
    if taken:
        print(f"hubgate examples: not overwriting {', '.join(taken)}", file=sys.stderr)
        return EXIT_BAD_INPUT
    for source, target in plan.items():
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
    print(f"copied {len(plan)} example files to {folder}")
    print(f"try: hubgate sim {folder / 'scenarios' / 'grid-limit-step.toml'} --speed max")
    return EXIT_OK

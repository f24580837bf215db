"""`hubgate profiles ...`: list, show and check firmware profiles; coverage; the schema."""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from hubgate.cli.common import EXIT_FAILURE, EXIT_OK, add_command
from hubgate.profiles import Profile, load_all, load_named, problems_in_file, profile_files
from hubgate.profiles.coverage import coverage_table
from hubgate.profiles.facts import cited_facts, uncertain
from hubgate.tomlcheck import ConfigError


def register(parser: argparse.ArgumentParser) -> None:
    """Add the `profiles` sub-commands."""
    parser.add_argument("--dir", type=Path, default=None, help="profiles folder")
    commands = parser.add_subparsers(title="profiles commands", metavar="COMMAND", required=True)
    listing = add_command(commands, "list", "list every profile", _list)
    listing.add_argument("--json", action="store_true", help="machine-readable output")
    show = add_command(commands, "show", "print one profile as JSON", _show)
    show.add_argument("name", help="profile name (the file name without .toml)")
    check = add_command(
        commands,
        "check",
        "validate every profile: schema, overlaps, units, failsafe, sources; count unsure facts",
        _check,
    )
    check.add_argument(
        "--uncertain", action="store_true", help="list every unverified and conflicting fact"
    )
    check.add_argument(
        "--max-uncertain",
        type=int,
        default=None,
        metavar="N",
        help="fail when more than N facts are unverified or conflicting",
    )
    add_command(commands, "coverage", "print the coverage table (Markdown)", _coverage)
    add_command(commands, "schema", "print the profile file's JSON Schema", _schema)


def _summary(profile: Profile) -> dict[str, Any]:
    failsafe = profile.failsafe
    return {
        "name": profile.name,
        "kind": str(profile.kind),
        "vendor": profile.vendor,
        "model": profile.model,
        "firmware": profile.firmware.model_dump(include={"min", "below"}),
        "fields": len(profile.fields),
        "commands": sorted(profile.commands.setpoints),
        "failsafe": failsafe.heartbeat.style if failsafe.heartbeat else None,
    }


def _list(args: argparse.Namespace) -> int:
    rows = [_summary(p) for p in load_all(args.dir).values()]
    if args.json:
        print(json.dumps(rows, indent=2))
        return EXIT_OK
    for row in rows:
        failsafe = row["failsafe"] or "none"
        print(
            f"{row['name']:32} {row['kind']:13} {row['vendor']} {row['model']} "
            f"(fields {row['fields']}, failsafe {failsafe})"
        )
    return EXIT_OK


def _show(args: argparse.Namespace) -> int:
    profile = load_named(args.name, args.dir)
    print(json.dumps(profile.model_dump(mode="json", exclude_defaults=True), indent=2))
    return EXIT_OK


def _check(args: argparse.Namespace) -> int:
    files = profile_files(args.dir)
    problems = [p for path in files.values() for p in problems_in_file(path)]
    if problems:
        raise ConfigError(problems)
    profiles = load_all(args.dir)
    facts = sum(len(cited_facts(p)) for p in profiles.values())
    unsure = [(name, f) for name, p in profiles.items() for f in uncertain(p)]
    counts = Counter(str(f.fact.status) for _, f in unsure)
    print(
        f"{len(files)} profiles ok: {facts} facts, every one sourced; "
        f"{counts['unverified']} unverified, {counts['conflict']} conflict"
    )
    if args.uncertain:
        for name, fact in unsure:
            print(f"  {name}: {fact.path}: {fact.fact.status}: {fact.fact.notes}")
    if args.max_uncertain is not None and len(unsure) > args.max_uncertain:
        print(
            f"hubgate profiles check: {len(unsure)} unverified or conflicting facts, "
            f"more than {args.max_uncertain}",
            file=sys.stderr,
        )
        return EXIT_FAILURE
    return EXIT_OK


def _coverage(args: argparse.Namespace) -> int:
    print(coverage_table(load_all(args.dir).values()), end="")
    return EXIT_OK


def _schema(_args: argparse.Namespace) -> int:
    print(json.dumps(Profile.model_json_schema(), indent=2))
    return EXIT_OK

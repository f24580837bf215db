"""Every fact of a profile with the sources it cites, and the checks on them.

A fact is any table or register of the file (a field, a setpoint, the
failsafe timeout, the transport, the firmware range...). It cites its own
`source` ids, else those of the table it sits in, else the profile's.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from pydantic import BaseModel

from hubgate.profiles.citations import Fact, Status
from hubgate.profiles.model import Profile
from hubgate.tomlcheck import Loc, format_path


@dataclass(frozen=True)
class CitedFact:
    """One fact, where it is in the file and the source ids it cites."""

    loc: Loc
    fact: Fact
    sources: tuple[str, ...]

    @property
    def path(self) -> str:
        """`fields.current_l1`, `identification[0]`: as `profiles check` prints it."""
        return format_path(self.loc)


def _children(model: BaseModel) -> Iterator[tuple[Loc, Fact]]:
    """The facts directly inside `model`, in file order (only those the file sets)."""
    for name in model.model_fields_set:
        value = getattr(model, name)
        if isinstance(value, Fact):
            yield (name,), value
        elif isinstance(value, tuple):
            for i, item in enumerate(value):
                if isinstance(item, Fact):
                    yield (name, i), item
        elif isinstance(value, dict):
            for key, item in value.items():
                if isinstance(item, Fact):
                    yield (name, str(key)), item


def cited_facts(profile: Profile) -> list[CitedFact]:
    """Every fact below the profile, each with the sources it cites (own or inherited)."""
    found: list[CitedFact] = []

    def walk(model: Fact, loc: Loc, inherited: tuple[str, ...]) -> None:
        for sub, fact in _children(model):
            here = (*loc, *sub)
            cites = fact.source or inherited
            found.append(CitedFact(here, fact, cites))
            walk(fact, here, cites)

    walk(profile, (), profile.source)
    return sorted(found, key=lambda f: f.path)


def uncertain(profile: Profile) -> list[CitedFact]:
    """The facts marked unverified or conflict."""
    return [f for f in cited_facts(profile) if f.fact.status is not Status.VERIFIED]


def source_problems(profile: Profile) -> list[tuple[Loc, str]]:
    """Unknown, duplicate or unused source ids; facts citing nothing; conflicts without both
    sides; uncertain facts without a note."""
    ids = [s.id for s in profile.sources]
    known = ", ".join(ids)
    found: list[tuple[Loc, str]] = []
    for i, source_id in enumerate(ids):
        if source_id in ids[:i]:
            found.append(
                (("sources", i, "id"), f"source id '{source_id}' is used twice: rename one")
            )
    cited: set[str] = set()
    facts = cited_facts(profile)
    root = CitedFact((), profile, profile.source)
    for cited_fact in [root, *facts]:
        fact, loc = cited_fact.fact, cited_fact.loc
        cited.update(cited_fact.sources)
        for source_id in fact.source:
            if source_id not in ids:
                found.append(
                    (
                        (*loc, "source"),
                        f"no source '{source_id}' in [[sources]]; the profile's sources: {known}",
                    )
                )
        if cited_fact is root:
            continue
        if not cited_fact.sources:
            found.append(
                (
                    (*loc, "source"),
                    f"this fact cites no source: add source = '<id>' (one of {known}) here, "
                    "on its table or at the top of the file",
                )
            )
        if fact.status is Status.CONFLICT and len(cited_fact.sources) < 2:
            found.append(
                (
                    (*loc, "source"),
                    "a conflict cites the sources that disagree: give at least two ids",
                )
            )
        if fact.status is not Status.VERIFIED and not fact.notes:
            found.append(
                (
                    (*loc, "notes"),
                    f"an {fact.status} fact needs notes saying why (and who says what)",
                )
            )
    for i, source_id in enumerate(ids):
        if source_id not in cited:
            found.append(
                (
                    ("sources", i, "id"),
                    f"source '{source_id}' is cited by no fact: cite it (source = "
                    f"'{source_id}') or drop it",
                )
            )
    return found

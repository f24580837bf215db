"""Every fact of every profile cites a public source; the unsure ones are few and say why."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from hubgate.cli import EXIT_BAD_INPUT, EXIT_FAILURE, EXIT_OK, main
from hubgate.profiles import default_dir, problems_in_file
from hubgate.profiles.citations import Status
from hubgate.profiles.facts import cited_facts, uncertain
from tests.support.simulated_devices import PROFILES

ALFEN = default_dir() / "alfen-eve.toml"
MAX_UNCERTAIN = 10
"""Unverified plus conflicting facts allowed in the whole set (issue #23)."""


def problems(tmp_path: Path, old: str, new: str) -> str:
    text = ALFEN.read_text()
    assert old in text
    path = tmp_path / "alfen-eve.toml"
    path.write_text(text.replace(old, new, 1))
    return "\n".join(str(p) for p in problems_in_file(path))


def test_few_facts_are_unsure_and_each_says_why() -> None:
    unsure = [(n, f) for n, p in PROFILES.items() for f in uncertain(p)]
    assert len(unsure) <= MAX_UNCERTAIN, [f"{n}: {f.path}" for n, f in unsure]
    for _, fact in unsure:
        assert fact.fact.notes
        if fact.fact.status is Status.CONFLICT:
            assert len(fact.sources) >= 2


@pytest.mark.parametrize("name", sorted(PROFILES))
def test_every_fact_cites_a_listed_source(name: str) -> None:
    profile = PROFILES[name]
    ids = {s.id for s in profile.sources}
    facts = cited_facts(profile)
    assert facts
    for fact in facts:
        assert fact.sources, fact.path
        assert set(fact.sources) <= ids, fact.path


def test_a_profile_without_sources_is_refused(tmp_path: Path) -> None:
    text = ALFEN.read_text()
    start = text.index("[[sources]]")
    end = text.index("[transport]")
    path = tmp_path / "alfen-eve.toml"
    path.write_text(text[:start] + text[end:])
    found = "\n".join(str(p) for p in problems_in_file(path))
    assert "required key 'sources' is missing" in found


def test_unknown_unused_and_missing_citations_are_located(tmp_path: Path) -> None:
    found = problems(tmp_path, 'source = ["manual", "evcc"]', 'source = ["manual", "evcc", "oem"]')
    assert "source: no source 'oem' in [[sources]]; the profile's sources: manual, evcc" in found
    found = problems(tmp_path, 'source = "manual"\n', "")
    assert re.search(r"fields\.voltage_l2\.source: this fact cites no source", found), found
    unused = (
        '[[sources]]\nid = "oem"\nkind = "community"\ntitle = "a forum post"\nurl = "https://x"\n\n'
    )
    found = problems(tmp_path, "[[sources]]\n", unused + "[[sources]]\n")
    assert "sources[0].id: source 'oem' is cited by no fact: cite it" in found


def test_unsure_facts_need_notes_and_conflicts_both_sides(tmp_path: Path) -> None:
    found = problems(
        tmp_path,
        'address = 1212\ntype = "f32"\nunit = "A"',
        'address = 1212\ntype = "f32"\nunit = "A"\nstatus = "conflict"',
    )
    assert "a conflict cites the sources that disagree: give at least two ids" in found
    found = problems(
        tmp_path,
        "[fields.limit_validity]\naddress = 1208",
        '[fields.limit_validity]\nstatus = "unverified"\naddress = 1208',
    )
    assert "fields.limit_validity.notes: an unverified fact needs notes" in found


def test_a_vendor_source_needs_its_version(tmp_path: Path) -> None:
    found = problems(
        tmp_path,
        'version = "2.3 (30-10-2020)"\npage = "register tables of the station (unit 200) and '
        'sockets (units 1, 2)"\n',
        "",
    )
    assert "a vendor source needs the manual's version or page" in found


def test_cli_check_counts_the_unsure_facts(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["profiles", "check", "--uncertain"]) == EXIT_OK
    out = capsys.readouterr().out
    head = re.match(
        r"(\d+) profiles ok: (\d+) facts, every one sourced; (\d+) unverified, (\d+) conflict", out
    )
    assert head is not None, out
    profiles, facts, unverified, conflict = map(int, head.groups())
    assert profiles == len(PROFILES)
    assert facts == sum(len(cited_facts(p)) for p in PROFILES.values())
    assert unverified + conflict == len(out.splitlines()) - 1
    limit = unverified + conflict
    assert main(["profiles", "check", "--max-uncertain", str(limit)]) == EXIT_OK
    capsys.readouterr()
    if limit:
        assert main(["profiles", "check", "--max-uncertain", str(limit - 1)]) == EXIT_FAILURE
        assert "more than" in capsys.readouterr().err


def test_cli_check_fails_on_a_file_without_sources(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = ALFEN.read_text()
    start = text.index("[[sources]]")
    (tmp_path / "alfen-eve.toml").write_text(text[:start] + text[text.index("[transport]") :])
    assert main(["profiles", "--dir", str(tmp_path), "check"]) == EXIT_BAD_INPUT
    assert "sources" in capsys.readouterr().err

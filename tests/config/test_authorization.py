"""`[authorization]`: who may charge at a site without a CSMS, its tokens file, and the
problems of both located by file, line and field."""

from __future__ import annotations

import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from hubgate.config import ConfigError, load_site
from hubgate.config.services import AuthToken
from hubgate.config.tokens import TokenBook, Verdict
from tests.support.toml_tables import ocpp_charger

SITE = (
    '[site]\nname = "t"\n\n[grid]\nphase_current_limit_a = 80\n\n'
    + ocpp_charger("grid")
    + """
[authorization]
unknown = "reject"
tokens_file = "tokens.toml"

[authorization.groups.fleet]
expires = 2030-01-01T00:00:00Z

[authorization.groups.gone]
blocked = true

[[authorization.tokens]]
id = "04A1B2C3"
group = "fleet"

[[authorization.tokens]]
id = "OLD-CARD"
expires = 2020-01-01T00:00:00+01:00

[[authorization.tokens]]
id = "LOST-CARD"
blocked = true

[[authorization.tokens]]
id = "EX-STAFF"
group = "gone"
"""
)
NOW = datetime(2026, 6, 1, tzinfo=UTC)


def write(tmp_path: Path, text: str, name: str = "site.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def problems(path: Path) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_site(path)
    return [str(p) for p in info.value.problems]


def test_verdicts_from_the_site_file(tmp_path: Path) -> None:
    site = load_site(write(tmp_path, SITE))
    assert site.authorization is not None
    assert site.authorization.tokens_file == str(tmp_path / "tokens.toml")  # by the site file
    book = TokenBook(site.authorization)
    fleet_end = datetime(2030, 1, 1, tzinfo=UTC)
    assert book.verdict("04a1b2c3", NOW) == Verdict("Accepted", "fleet", fleet_end)  # any case
    assert book.verdict("04A1B2C3", fleet_end) == Verdict("Expired", "fleet", fleet_end)
    assert book.verdict("OLD-CARD", NOW).status == "Expired"
    assert book.verdict("LOST-CARD", NOW).status == "Blocked"
    assert book.verdict("EX-STAFF", NOW) == Verdict("Blocked", "gone", None)
    assert book.verdict("STRANGER", NOW) == Verdict(None)
    assert not book.accepts_unknown


def test_tokens_file_changes_are_kept_and_seen_by_another_book(tmp_path: Path) -> None:
    site = load_site(write(tmp_path, SITE))
    assert site.authorization is not None
    gateway, cli = TokenBook(site.authorization), TokenBook(site.authorization)
    later = NOW + timedelta(days=30)
    cli.put(AuthToken(id="NEW-1", group="fleet", expires=later))
    cli.put(AuthToken(id="NEW-2", blocked=True))
    assert gateway.verdict("new-1", NOW) == Verdict("Accepted", "fleet", later)  # read again
    assert gateway.verdict("NEW-2", NOW).status == "Blocked"
    written = (tmp_path / "tokens.toml").read_text()
    assert '[[tokens]]\nid = "NEW-1"\ngroup = "fleet"\nexpires = 2026-07-01T00:00:00Z' in written
    assert cli.remove("NEW-2")
    assert not cli.remove("NEW-2")
    assert gateway.verdict("NEW-2", NOW) == Verdict(None)
    assert [(t.token.id, t.source) for t in gateway.listed()][-1] == ("NEW-1", "file")
    with pytest.raises(ValueError, match="defined in the site file"):
        cli.put(AuthToken(id="lost-card"))
    with pytest.raises(ValueError, match="group 'nobody' does not exist"):
        cli.put(AuthToken(id="NEW-3", group="nobody"))


def test_a_group_on_a_site_without_groups_names_the_fix(tmp_path: Path) -> None:
    """`hubgate auth add --group` and `config check` say alike how to define one."""
    bare = SITE.split("[authorization.groups.fleet]")[0]
    site = load_site(write(tmp_path, bare))
    assert site.authorization is not None
    fix = "group 'fleet' does not exist; groups: none; add [authorization.groups.NAME] to the"
    with pytest.raises(ValueError, match=re.escape(fix)):
        TokenBook(site.authorization).put(AuthToken(id="NEW-1", group="fleet"))
    found = problems(
        write(tmp_path, bare + '[[authorization.tokens]]\nid = "A"\ngroup = "fleet"\n')
    )
    assert any(fix in p for p in found), found


def test_site_file_problems_are_located(tmp_path: Path) -> None:
    broken = (
        SITE.replace('id = "OLD-CARD"', 'id = "04a1b2c3"')
        .replace('group = "gone"', 'group = "former"')
        .replace("expires = 2020-01-01T00:00:00+01:00", "expires = 2020-01-01T00:00:00")
        + '\n[csms]\nurl = "ws://csms.example.com/ocpp"\n'
    )
    path = write(tmp_path, broken)
    found = problems(path)
    assert any(
        p.startswith(f"{path}:31: authorization.tokens[1].id: token '04a1b2c3' is listed twice")
        for p in found
    ), found
    assert any(
        p.startswith(f"{path}:40: authorization.tokens[3].group: group 'former' does not exist")
        and "fleet, gone" in p
        for p in found
    ), found
    assert any(
        p.startswith(f"{path}:32: authorization.tokens[1].expires:") and "timezone" in p
        for p in found
    ), found
    assert any(
        p.startswith(f"{path}:16: authorization: with a [csms] the CSMS authorizes") for p in found
    ), found


def test_tokens_file_problems_are_located(tmp_path: Path) -> None:
    site = load_site(write(tmp_path, SITE))
    assert site.authorization is not None
    tokens = write(
        tmp_path,
        '[[tokens]]\nid = "A"\n\n[[tokens]]\nid = "lost-card"\n\n'
        '[[tokens]]\nid = "B"\ngroup = "nobody"\ncolour = "red"\n',
        "tokens.toml",
    )
    with pytest.raises(ConfigError) as info:
        TokenBook(site.authorization)
    found = [str(p) for p in info.value.problems]
    assert any(
        p.startswith(f"{tokens}:5: tokens[1].id: token 'lost-card' is in the site file")
        for p in found
    ), found
    assert any(p.startswith(f"{tokens}:9: tokens[2].group: group 'nobody'") for p in found)
    assert any(p.startswith(f"{tokens}:10: tokens[2].colour:") for p in found), found


def _hubgate(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(Path(sys.executable).parent / "hubgate"), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_the_auth_command_keeps_tokens(tmp_path: Path) -> None:
    site = str(write(tmp_path, SITE))
    added = _hubgate(
        "auth", "add", site, "CARD-7", "--group", "fleet", "--expires", "2031-01-01T00:00Z"
    )
    assert added.returncode == 0, added.stderr
    assert _hubgate("auth", "add", site, "CARD-8", "--blocked").returncode == 0
    listing = _hubgate("auth", "list", site)
    assert listing.returncode == 0
    lines = listing.stdout.splitlines()
    assert lines[0] == "unknown tokens are refused"
    assert "LOST-CARD\tBlocked\t(site)" in lines
    assert "CARD-8\tBlocked\t(file)" in lines
    assert any(
        line.startswith("CARD-7\tAccepted group fleet, expires 2030-01-01") for line in lines
    )
    assert _hubgate("auth", "remove", site, "card-8").returncode == 0
    refused = _hubgate("auth", "remove", site, "LOST-CARD")
    assert refused.returncode == 2
    assert refused.stderr == (
        "hubgate: error: token 'LOST-CARD' is defined in the site file; remove it there\n"
    )
    unknown_group = _hubgate("auth", "add", site, "CARD-9", "--group", "vip")
    assert unknown_group.returncode == 2
    assert "group 'vip' does not exist; groups: fleet, gone" in unknown_group.stderr
    too_long = _hubgate("auth", "add", site, "C" * 37)
    assert too_long.returncode == 2
    assert "String should have at most 36 characters" in too_long.stderr
    bad_time = _hubgate("auth", "add", site, "CARD-9", "--expires", "2031-01-01T00:00")
    assert bad_time.returncode == 2
    assert "give the time's offset" in bad_time.stderr
    bare = write(tmp_path, SITE.split("[authorization]")[0], "bare.toml")
    no_table = _hubgate("auth", "list", str(bare))
    assert no_table.returncode == 2
    assert "no [authorization] table" in no_table.stderr

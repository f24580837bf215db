"""Loading a scenario file and its site: every problem located, as for site files."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from hubgate.config import ConfigError, SiteConfig, load_site
from hubgate.config.model import GRID_NODE_ID, GridOperatorSource
from hubgate.profiles.loader import load_named
from hubgate.sim.scenario import EventKind, Scenario
from hubgate.tomlcheck import Loc, locate, read_toml, validation_problems


@dataclass(frozen=True)
class LoadedScenario:
    """A validated scenario with the site it runs on."""

    scenario: Scenario
    site: SiteConfig
    path: Path


def _reference_problems(scenario: Scenario, site: SiteConfig) -> list[tuple[Loc, str]]:
    problems: list[tuple[Loc, str]] = []
    nodes = [GRID_NODE_ID, *(n.id for n in site.nodes)]
    for index, load in enumerate(scenario.base_load):
        if load.node not in nodes:
            problems.append(
                (
                    ("base_load", index, "node"),
                    f"node '{load.node}' is not in the site; valid: {', '.join(nodes)}",
                )
            )
    known = {
        "meter": [m.id for m in site.meters],
        "charger": [c.id for c in site.chargers],
        "pv": [p.id for p in site.pv],
    }
    ocpp = [c.id for c in site.chargers if c.ocpp is not None]
    for charger_id in scenario.personalities:
        if charger_id not in ocpp:
            valid = ", ".join(ocpp) or "none in the site"
            problems.append(
                (
                    ("personalities", charger_id),
                    f"'{charger_id}' is not an OCPP charger of the site; valid: {valid}",
                )
            )
    for index, event in enumerate(scenario.events):
        for key, ids in known.items():
            value = getattr(event, key)
            if value is not None and value not in ids:
                valid = ", ".join(ids) or "none in the site"
                problems.append(
                    (("events", index, key), f"{key} '{value}' is not in the site; valid: {valid}")
                )
        if event.kind == EventKind.GRID_LIMIT and site.grid_operator is None:
            problems.append(
                (("events", index, "kind"), "the site has no [grid_operator] to send a limit")
            )
        if event.kind == EventKind.FEED_IN_LIMIT and not _has_feed_in_contacts(site):
            problems.append(
                (
                    ("events", index, "kind"),
                    "the site's [grid_operator] has no feed-in contacts to signal it: use "
                    "source = 'relay-contacts' with a profile that has [grid_operator] "
                    "feed_in_percent (grid-operator-14a-relays)",
                )
            )
        if event.kind == EventKind.CLOUD and not site.pv:
            problems.append((("events", index, "kind"), "the site has no PV for a cloud to cover"))
        if event.at_s >= scenario.scenario.duration_s:
            problems.append(
                (
                    ("events", index, "at_s"),
                    f"at {event.at_s:g} s is not before the end "
                    f"(duration_s = {scenario.scenario.duration_s:g})",
                )
            )
    return problems


def _has_feed_in_contacts(site: SiteConfig) -> bool:
    """Whether the site's grid-operator box has §9 EEG feed-in contacts."""
    operator = site.grid_operator
    if operator is None or operator.modbus is None:
        return False
    if operator.source is not GridOperatorSource.RELAY_CONTACTS:
        return False
    rule = load_named(operator.modbus.profile).grid_operator
    return rule is not None and bool(rule.feed_in_percent)


def load_scenario(path: str | Path) -> LoadedScenario:
    """Read and validate a scenario file and its site; `ConfigError` with every problem."""
    file = str(path)
    text, data = read_toml(path)
    found = validation_problems(Scenario, data)
    if found:
        raise ConfigError(locate(file, text, found))
    scenario = Scenario.model_validate(data)
    site_path = Path(path).parent / scenario.scenario.site
    if not site_path.is_file():
        missing = f"site file '{site_path}' does not exist"
        raise ConfigError(locate(file, text, [(("scenario", "site"), missing)]))
    site = load_site(site_path)
    found = _reference_problems(scenario, site)
    if found:
        raise ConfigError(locate(file, text, found))
    return LoadedScenario(scenario, site, Path(path))

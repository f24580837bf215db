"""PV curtailment under hubgate's own loop on the simulated site: a zero-export site, and the
grid operator's §9 EEG feed-in contacts through the relay box.

At noon a 60 kW roof (SunSpec model 123) produces far more than the site uses: the caps
hold the feed-in at the limit (after the loop's reaction), the EVs get the PV's power
first, and lifting the contact lets the PV feed in again.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import trio
import trio.testing

from hubgate.config import ConfigError
from hubgate.control.loop import ControlLoop
from hubgate.sim import Simulation, load_scenario
from hubgate.sim.inprocess import control_loop, run_hubgate
from tests.support.toml_tables import car_3p_32a

PEAK_KW = 60.0

SITE = f"""\
[site]
name = "pv curtailment"

[grid]
phase_current_limit_a = 100
power_limit_kw = 60
EXPORT

[[chargers]]
id = "cp-1"
node = "grid"
ocpp = {{ identity = "CP-1" }}
connectors = [{{ id = 1, max_current_a = 16 }}]

[[meters]]
id = "meter-grid"
node = "grid"
modbus = {{ profile = "eastron-sdm630", host = "127.0.0.1", port = 1502 }}

[[pv]]
id = "roof"
modbus = {{ profile = "sunspec-inverter-controls", host = "127.0.0.1", port = 1503 }}
peak_kw = {PEAK_KW}

GRID_OPERATOR
"""

RELAYS = """\
[grid_operator]
source = "relay-contacts"
modbus = { profile = "grid-operator-14a-relays", host = "127.0.0.1", port = 1504 }
"""

SCENARIO = """\
[scenario]
name = "pv curtailment"
site = "site.toml"
duration_s = 600
seed = 3
start_hour = 12

[arrivals]
initial_occupancy = 1.0
rate_per_hour = 0
mean_stay_h = 5

[[base_load]]
node = "grid"
amps = 10

"""


def run(tmp_path: Path, site: str, events: str = "") -> tuple[Simulation, ControlLoop]:
    (tmp_path / "site.toml").write_text(site)
    (tmp_path / "scenario.toml").write_text(
        SCENARIO + car_3p_32a("car", 60, arrival_soc=[0.2, 0.3]) + events
    )
    sim = Simulation(load_scenario(tmp_path / "scenario.toml"))
    loop = control_loop(sim)
    trio.run(
        lambda: run_hubgate(sim, 120.0, loop=loop),
        clock=trio.testing.MockClock(autojump_threshold=0),
    )
    return sim, loop


def exported_kw(sim: Simulation, since_s: float) -> list[float]:
    """The feed-in per step from `since_s` on (kW, positive exported)."""
    recorder = sim.recorder
    return [
        -w / 1000
        for t, w in zip(recorder.times, recorder.grid_power_w, strict=True)
        if t >= since_s
    ]


@pytest.mark.timeout(120)
def test_a_zero_export_site_caps_its_pv_at_what_it_uses(tmp_path: Path) -> None:
    site = SITE.replace("EXPORT", "export_limit_kw = 0").replace("GRID_OPERATOR", "")
    sim, loop = run(tmp_path, site)
    (pv,) = sim.pv
    assert pv.available_kw > 50  # noon: far more than the site uses
    assert pv.cap_kw is not None
    assert pv.power_kw < pv.available_kw
    assert max(exported_kw(sim, 20)) <= 0.5  # after the first caps: nothing fed in
    ev = sim.evs[0]
    assert ev is not None
    assert ev.draw_a > 15  # the EV takes the PV's power
    assert sim.recorder.summary().violations == ()
    assert loop.energy.balance()["export_limit_w"] == 0.0


@pytest.mark.timeout(120)
def test_the_grid_operators_feed_in_contact_caps_and_releases(tmp_path: Path) -> None:
    site = SITE.replace("EXPORT", "").replace("GRID_OPERATOR", RELAYS)
    events = """
[[events]]
at_s = 30
kind = "feed-in-limit"
percent = 30
duration_s = 60
"""
    sim, loop = run(tmp_path, site, events)
    before = exported_kw(sim, 0)[:25]
    assert max(before) > 30  # free feed-in first
    capped = [
        kw for t, kw in zip(sim.recorder.times, exported_kw(sim, 0), strict=True) if 40 <= t < 90
    ]
    assert max(capped) <= 0.3 * PEAK_KW + 0.5  # S2: 30 % of the installed power
    assert min(capped) >= 0.3 * PEAK_KW - 3  # ... and no less: the PV is capped, not off
    after = [kw for t, kw in zip(sim.recorder.times, exported_kw(sim, 0), strict=True) if t >= 100]
    assert min(after) > 30  # the contact opened: no cap
    assert sim.recorder.summary().violations == ()
    assert loop.energy.feed_in_percent == 100.0


def test_a_feed_in_limit_needs_a_box_with_feed_in_contacts(tmp_path: Path) -> None:
    (tmp_path / "site.toml").write_text(SITE.replace("EXPORT", "").replace("GRID_OPERATOR", ""))
    events = '\n[[events]]\nat_s = 30\nkind = "feed-in-limit"\npercent = 30\n'
    (tmp_path / "scenario.toml").write_text(SCENARIO + car_3p_32a("car", 60) + events)
    with pytest.raises(
        ConfigError,
        match=r"events\[0\]\.kind: the site's \[grid_operator\] has no feed-in contacts",
    ):
        load_scenario(tmp_path / "scenario.toml")

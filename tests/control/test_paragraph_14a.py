"""§14a EnWG: the minimum a dimmed site keeps for its controllable devices, per the rule.

The expected figures are transcribed from the Bundesnetzagentur's Festlegung BK6-22-300
(27 November 2023), Anlage 1: Ziff. 2.4.1 (a steuVE has a grid connection power of more
than 4.2 kW), Ziff. 4.5.1 (direct control: 4.2 kW per steuVE) and Ziff. 4.5.2 (one EMS:
P_min,14a = 4.2 kW + (n - 1) x GZF x 4.2 kW, with the GZF table below). The 2-device
figure, 7.56 kW, is also the worked example quoted in Tinkerforge/esp32-firmware#407.
"""

from __future__ import annotations

import math
import tomllib
from pathlib import Path

import pytest

from hubgate.config import load_site
from hubgate.config.model import Paragraph14aFloor, SiteConfig
from hubgate.control.allocation import CycleInputs, SiteAllocator
from hubgate.control.paragraph_14a import (
    ControllableDevice,
    Paragraph14a,
    ems_minimum_kw,
    simultaneity_factor,
)

GZF_TABLE = {2: 0.8, 3: 0.75, 4: 0.7, 5: 0.65, 6: 0.6, 7: 0.55, 8: 0.5, 9: 0.45}
"""Anlage 1 Ziff. 4.5.2, "Gleichzeitigkeitsfaktor" by number of steuVE (9: "ab 9")."""

EMS_MINIMUM_KW = {
    1: 4.2,  # 4.2
    2: 7.56,  # 4.2 + 1 x 0.8 x 4.2
    9: 19.32,  # 4.2 + 8 x 0.45 x 4.2
    10: 21.21,  # 4.2 + 9 x 0.45 x 4.2
    200: 380.31,  # 4.2 + 199 x 0.45 x 4.2
}
"""P_min,14a for n devices behind one EMS, worked out by hand from the table."""


def test_the_simultaneity_factor_is_the_rules_table() -> None:
    for n, factor in GZF_TABLE.items():
        assert simultaneity_factor(n) == factor
    assert simultaneity_factor(10) == simultaneity_factor(200) == 0.45


@pytest.mark.parametrize("n", sorted(EMS_MINIMUM_KW))
def test_the_ems_minimum_for_1_2_9_10_and_200_devices(n: int) -> None:
    assert ems_minimum_kw(n) == pytest.approx(EMS_MINIMUM_KW[n])
    devices = [ControllableDevice(f"cp-{i}", (i,), 11.0) for i in range(n)]
    ems = Paragraph14a(devices, Paragraph14aFloor.EMS)
    assert ems.floor_w([1] * n) == pytest.approx(EMS_MINIMUM_KW[n] * 1000)
    per_device = Paragraph14a(devices, Paragraph14aFloor.PER_DEVICE)
    assert per_device.floor_w([1] * n) == pytest.approx(n * 4200)  # Ziff. 4.5.1


def site(chargers: str, floor: str = "ems") -> SiteConfig:
    return SiteConfig.model_validate(
        tomllib.loads(
            f"""
[site]
name = "s"
[grid]
phase_current_limit_a = 100
{chargers}
[grid_operator]
source = "api"
paragraph_14a_floor = "{floor}"
"""
        )
    )


def charger(charger_id: str, connectors: str, *, marked: bool = False) -> str:
    return (
        f'[[chargers]]\nid = "{charger_id}"\nnode = "grid"\nocpp = {{ identity = "{charger_id}" }}\n'
        + ("paragraph_14a = true\n" if marked else "")
        + f"connectors = [{connectors}]\n"
    )


def of(config: SiteConfig) -> Paragraph14a:
    found = Paragraph14a.of_site(config, SiteAllocator(config).connector_keys)
    assert found is not None
    return found


def test_a_charger_is_one_device_whatever_its_connectors_and_small_ones_do_not_count() -> None:
    twin = "{ id = 1, max_current_a = 32 }, { id = 2, max_current_a = 32 }"
    config = site(
        charger("twin", twin, marked=True)  # one device of 44 kW
        + charger("pair", twin.replace("}", ", paragraph_14a = true }"))  # two devices
        + charger("small", '{ id = 1, phases = "1p", max_current_a = 16, paragraph_14a = true }')
        + charger("1p32", '{ id = 1, phases = "1p", max_current_a = 32, paragraph_14a = true }')
        + charger("plain", "{ id = 1, max_current_a = 32 }")
    )
    rule = of(config)
    # small: 16 A x 230 V = 3.68 kW, not more than 4.2 kW: no steuVE (Ziff. 2.4.1)
    assert [d.name for d in rule.devices] == ["twin", "pair#1", "pair#2", "1p32#1"]
    assert rule.devices[0].rated_kw == pytest.approx(2 * 32 * 3 * 230 / 1000)
    assert rule.minimum_kw == pytest.approx(4.2 + 3 * 0.7 * 4.2)


def test_marks_on_a_charger_and_its_connectors_or_without_a_signal_are_errors() -> None:
    with pytest.raises(
        ValueError, match="set it on the charger \\(one device\\) or on each connector"
    ):
        site(charger("cp", "{ id = 1, max_current_a = 32, paragraph_14a = true }", marked=True))
    data = tomllib.loads(
        '[site]\nname = "s"\n[grid]\nphase_current_limit_a = 100\n'
        + charger("cp", "{ id = 1, max_current_a = 32 }", marked=True)
    )
    with pytest.raises(ValueError, match="no \\[grid_operator\\]"):
        SiteConfig.model_validate(data)


def test_the_floor_counts_only_devices_that_want_power_and_never_more_than_they_draw() -> None:
    rule = Paragraph14a(
        [ControllableDevice("a", (0, 1), 44.16), ControllableDevice("b", (2,), 5.0)],
        Paragraph14aFloor.EMS,
    )
    assert rule.floor_w([0, 0, 0]) == 0.0
    assert rule.floor_w([0, 1, 0]) == pytest.approx(7560)  # P_min for n = 2: device a alone
    assert rule.floor_w([0, 0, 1]) == pytest.approx(5000)  # b cannot draw the 7.56 kW
    per_device = Paragraph14a(rule.devices, Paragraph14aFloor.PER_DEVICE)
    assert per_device.floor_w([1, 1, 0]) == pytest.approx(4200)
    assert per_device.floor_w([1, 0, 1]) == pytest.approx(8400)


def test_local_generation_comes_on_top_of_the_minimum() -> None:
    """Ziff. 2.3: the grid-effective draw is dimmed; PV or a battery may add to it."""
    rule = Paragraph14a([ControllableDevice("a", (0,), 22.08)], Paragraph14aFloor.EMS)
    # base load 3 kW: the devices keep 4.2 kW, so the connection may take 7.2 kW
    assert rule.operator_limit_w(0.0, 3000.0, [1]) == pytest.approx(7200)
    # PV covers 5 kW more than the base load: 4.2 kW from the grid plus the 5 kW
    limit = rule.operator_limit_w(0.0, -5000.0, [1])
    assert limit - (-5000.0) == pytest.approx(9200)
    # a limit above the minimum stands as it is
    assert rule.operator_limit_w(50_000.0, 3000.0, [1]) == 50_000.0


def test_the_allocator_gives_the_minimum_under_a_dimming_to_zero() -> None:
    config = site(
        "".join(charger(f"cp-{i}", "{ id = 1, max_current_a = 32 }", marked=True) for i in range(4))
    )
    allocator = SiteAllocator(config)
    rule = of(config)
    base = allocator.base_load({"grid": (2.0, 2.0, 2.0)})
    wanting = [1] * 4
    limit = rule.operator_limit_w(0.0, sum(base[0:3]) * 230, wanting)
    result = allocator.allocate(
        CycleInputs(0.0, base, [math.inf] * 4, wanting, grid_operator_w=limit)
    )
    total_w = sum(a * 3 * 230 for a in result.setpoint_a)
    assert total_w <= ems_minimum_kw(4) * 1000 + 1e-6
    assert total_w >= ems_minimum_kw(4) * 1000 - 4 * 3 * 230  # within one ampere each


def test_the_depot_example_keeps_the_rules_figure(examples_dir: Path) -> None:
    config = load_site(examples_dir / "sites" / "depot-200.toml")
    rule = of(config)
    assert len(rule.devices) == 100  # 100 twin chargers, each one device
    assert rule.minimum_kw == pytest.approx(4.2 + 99 * 0.45 * 4.2)  # 191.31 kW, not 840 kW
    wanting = [1] * 200
    assert rule.floor_w(wanting) == pytest.approx(191_310)

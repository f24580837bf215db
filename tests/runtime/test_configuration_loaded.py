"""The event a gateway starts with says what it controls, counted in words."""

from __future__ import annotations

from hubgate.runtime.gateway import configuration_loaded
from tests.support.loop_site import site_config


def test_one_of_a_kind_is_singular() -> None:
    text = configuration_loaded(site_config(), "site.toml")  # one board, one meter
    assert text == (
        "configuration loaded from site.toml: 3 chargers (0 OCPP, 3 Modbus) with 3 connectors, "
        "1 meter, 1 node; grid 100/100/100 A"
    )

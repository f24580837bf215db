"""TOML tables the tests' site and scenario files share, so that each has one shape.

Each builder returns the table's lines, newline-terminated, to be joined into a
file; what a test varies (ids, nodes, addresses) is a parameter.
"""

from __future__ import annotations


def battery_20kwh(modbus_table: str) -> str:
    """A 20 kWh, 10 kW battery that charges from PV only, on the given `modbus` table."""
    return f"""\
[battery]
id = "battery"
modbus = {modbus_table}
capacity_kwh = 20
max_charge_kw = 10
max_discharge_kw = 10
charge_from_grid = false
"""


SMA_BATTERY_20KWH = battery_20kwh(
    '{ profile = "sma-sunny-boy-storage", host = "127.0.0.1", unit = 3 }'
)


def connector_32a(*, pv_mode: bool = False) -> str:
    """Connector 1 with a 32 A maximum, as an inline table."""
    return (
        "{ id = 1, max_current_a = 32, pv_mode = true }"
        if pv_mode
        else "{ id = 1, max_current_a = 32 }"
    )


def modbus(profile: str, **address: int) -> str:
    """An inline Modbus table for a device on 127.0.0.1 (`port`, `unit` in the order given)."""
    fields = "".join(f", {key} = {value}" for key, value in address.items())
    return f'{{ profile = "{profile}", host = "127.0.0.1"{fields} }}'


def modbus_charger(charger_id: str, node: str, device: str, connectors: str | None = None) -> str:
    """A charger on `node` reached over Modbus (`device` from `modbus`)."""
    return (
        f'[[chargers]]\nid = "{charger_id}"\nnode = "{node}"\n'
        f"modbus = {device}\nconnectors = [{connectors or connector_32a()}]\n"
    )


def ocpp_charger(node: str, *, pv_mode: bool = False) -> str:
    """Charger cp-1 (OCPP identity CP-1) on `node` with one 32 A connector in its own table."""
    return (
        f'[[chargers]]\nid = "cp-1"\nnode = "{node}"\nocpp = {{ identity = "CP-1" }}\n\n'
        "[[chargers.connectors]]\nid = 1\nmax_current_a = 32\n"
        + ("pv_mode = true\n" if pv_mode else "")
    )


def dc_holding(max_power_kw: int, *, idle_kw: float | None = None) -> str:
    """A DC connector's `dc` line: up to `max_power_kw`, a 5 kW minimum held while idle
    (`hold_minimum`), its cabinet's `idle_kw` when given."""
    idle = "" if idle_kw is None else f", idle_kw = {idle_kw:g}"
    return f"dc = {{ max_power_kw = {max_power_kw}, min_power_kw = 5{idle}, hold_minimum = true }}"


def dc_charger(charger_id: str, node: str, connector: str) -> str:
    """An OCPP charger (its identity the id in capitals) on `node`, connector 1 with the
    `connector` lines (`dc_holding`'s, say) after its id."""
    return (
        f'[[chargers]]\nid = "{charger_id}"\nnode = "{node}"\n'
        f'ocpp = {{ identity = "{charger_id.upper()}" }}\n'
        f"[[chargers.connectors]]\nid = 1\n{connector}\n"
    )


def failsafe_site(name: str, *, grid_a: int, lease_s: int, chargers: str) -> str:
    """A site file: the `chargers` (their tables) straight on a grid of `grid_a` per phase,
    0.25 s cycles, the chargers falling back to 6 A `lease_s` after their last command."""
    return f"""
[site]
name = "{name}"
[grid]
phase_current_limit_a = {grid_a}
[control]
cycle_s = 0.25
meter_stale_s = 3
failsafe_current_a = 6
lease_s = {lease_s}
{chargers}"""


def meter(meter_id: str, node: str, device: str) -> str:
    """A meter on `node` reached over Modbus (`device` from `modbus`)."""
    return f'[[meters]]\nid = "{meter_id}"\nnode = "{node}"\nmodbus = {device}\n'


def car_3p_32a(name: str, capacity_kwh: int, **fields: list[float]) -> str:
    """A scenario's three-phase 32 A car, with its other `fields` (lists) in the order given."""
    rest = "".join(f"{key} = {value}\n" for key, value in fields.items())
    return (
        f'[[ev_mix]]\nname = "{name}"\ncapacity_kwh = {capacity_kwh}\n'
        f"max_current_a = 32\nphases = 3\n{rest}"
    )


def occupied_site_scenario(
    name: str, *, seed: int, start_hour: int, base_load_a: int, step_s: float | None = None
) -> str:
    """The head of a 600 s scenario on `site.toml`: every connector occupied from the start
    by an 80 kWh three-phase 32 A car (20-30 % SoC, reacting in 2-3 s) that stays, over a
    steady base load on the grid node; a test adds its own tables (battery, events)."""
    step = "" if step_s is None else f"step_s = {step_s}\n"
    return (
        f'[scenario]\nname = "{name}"\nsite = "site.toml"\nduration_s = 600\n'
        f"seed = {seed}\nstart_hour = {start_hour}\n{step}\n"
        "[arrivals]\ninitial_occupancy = 1.0\nrate_per_hour = 0\nmean_stay_h = 5\n\n"
        + car_3p_32a("car-3p-32a", 80, arrival_soc=[0.2, 0.3], reaction_s=[2, 3])
        + f'\n[[base_load]]\nnode = "grid"\namps = {base_load_a}\n'
    )

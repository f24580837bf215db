"""The site's allocator: built once from a `SiteConfig`, called every control cycle.

The Rust core (`hubgate._core.Allocator`) does the work; this module maps the
configuration onto it (node tree, rotation, steps, grid margin) and gives
the control loop a typed per-cycle call. The hot path passes plain buffers:
three base-load values per node in `node_ids` order, one value per connector
in `connector_keys` order, and gets `array.array` columns back.
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from functools import cached_property
from typing import TYPE_CHECKING

from hubgate._core import (
    Allocation,
    Allocator,
    AllocConnector,
    AllocNode,
    AllocReason,
    AllocSettings,
)
from hubgate.config.model import GRID_NODE_ID, Charger, SiteConfig
from hubgate.control.decisions import ConnectorColumns, ConnectorDecision

ConnectorKey = tuple[str, int]
"""A connector by (charger id, connector id)."""

OCPP_STEP_A = 0.1
"""Charging-profile limits resolve 0.1 A (OCPP multipleOf 0.1)."""

MODBUS_STEP_A = 1.0
"""Modbus chargers take whole amperes."""

REASON_NAMES = tuple(str(r).rpartition(".")[2] for r in AllocReason.members())
"""Reason names by code (`CycleResult.reason`), e.g. `PHASE_CURRENT`."""

if TYPE_CHECKING:
    from typing_extensions import Buffer

    FloatColumn = Buffer | Sequence[float]
    FlagColumn = Buffer | Sequence[bool] | Sequence[int]


@dataclass(frozen=True)
class AllocationSettings:
    """Dwell, interval and ramp rules of the allocator (seconds, A/s): the fields of the
    core's `AllocSettings` that do not come from the site file, passed on as they are."""

    min_on_s: float = 300.0
    min_off_s: float = 120.0
    change_interval_s: float = 5.0
    ramp_a_per_s: float = math.inf
    settle_s: float = 10.0
    phase_switch_s: float = 600.0
    max_phase_switches: int = 0


@dataclass(frozen=True, slots=True)
class CycleInputs:
    """One cycle's measurements and limits, as plain columns.

    `base_load_a`: the non-EV current through each node, L1, L2, L3 per node in
    `SiteAllocator.node_ids` order. `ev_max_a`, `wanting`, `pv_mode`: one entry
    per connector in `SiteAllocator.connector_keys` order (`ev_max_a` is the EV's
    limit or the estimate from its draw; infinity for none). Root limits in W.
    `floor_a`/`laxity_s`: per connector, what its deadline needs now (A per phase) and
    its laxity (s), from `control.deadlines`; None without deadlines.
    """

    now: float
    base_load_a: FloatColumn
    ev_max_a: FloatColumn
    wanting: FlagColumn
    pv_mode: FlagColumn | None = None
    grid_operator_w: float = math.inf
    peak_w: float = math.inf
    pv_surplus_w: float = math.inf
    battery_discharge_w: float = 0.0
    floor_a: FloatColumn | None = None
    laxity_s: FloatColumn | None = None


class CycleResult:
    """One cycle's result: array columns in connector order (built on first access),
    and per-connector views for the decision log."""

    def __init__(self, allocation: Allocation, site: SiteAllocator) -> None:
        self._allocation = allocation
        self._site = site

    @cached_property
    def setpoint_a(self) -> array[float]:
        """Setpoints to send now, A per phase (0 = paused)."""
        return self._allocation.setpoint_a

    @cached_property
    def target_a(self) -> array[float]:
        """Targets before transition shaping, A per phase."""
        return self._allocation.target_a

    @cached_property
    def fair_a(self) -> array[float]:
        """Exact weighted max-min fair shares before rounding, A per phase."""
        return self._allocation.fair_a

    @cached_property
    def phases(self) -> array[int]:
        """Phases drawn on, 1 or 3."""
        return self._allocation.phases

    @cached_property
    def reason(self) -> array[int]:
        """Reason codes (`AllocReason.members()[code]`)."""
        return self._allocation.reason

    @cached_property
    def binding_node(self) -> array[int]:
        """Index into `SiteAllocator.node_ids` of the binding limit, or -1."""
        return self._allocation.binding_node

    @cached_property
    def binding_phase(self) -> array[int]:
        """Grid phase (0-2) of the binding limit, or -1."""
        return self._allocation.binding_phase

    def __len__(self) -> int:
        return len(self._allocation)

    def decision(self, index: int) -> ConnectorDecision:
        """The decision for the connector at `index`."""
        return self.decisions()[index]

    def decisions(self) -> ConnectorColumns:
        """Every connector's decision, in connector order: what bound it, e.g. `board/L2`
        (a node and phase) or `grid` (a power limit), for the decision log (columns: a
        decision is built when read)."""
        site = self._site
        return ConnectorColumns(
            site.connector_names,
            site.node_ids,
            REASON_NAMES,
            self.setpoint_a,
            self.phases,
            self.reason,
            self.binding_node,
            self.binding_phase,
        )


def _step(charger: Charger) -> float:
    return OCPP_STEP_A if charger.ocpp is not None else MODBUS_STEP_A


class SiteAllocator:
    """The allocator of one site; the topology is fixed at construction."""

    def __init__(self, config: SiteConfig, settings: AllocationSettings | None = None) -> None:
        settings = settings or AllocationSettings()
        self.settings = settings
        """The allocation's settings (`settle_s`: how long an EV may take to follow)."""
        grid = config.grid
        self.node_ids: tuple[str, ...] = (GRID_NODE_ID, *(n.id for n in config.nodes))
        self._node_index = {node_id: i for i, node_id in enumerate(self.node_ids)}
        root_caps = grid.usable_phase_a
        nodes = [
            AllocNode(
                None,
                (root_caps[0], root_caps[1], root_caps[2]),
                grid.usable_power_w,
                grid.unbalance_limit_a or math.inf,
            )
        ]
        for node in config.nodes:
            caps = node.phase_current_limit_a or (math.inf, math.inf, math.inf)
            nodes.append(
                AllocNode(
                    self._node_index[node.parent],
                    caps,
                    _watts(node.power_limit_kw),
                    node.unbalance_limit_a or math.inf,
                )
            )
        keys: list[ConnectorKey] = []
        connectors: list[AllocConnector] = []
        for charger in config.chargers:
            first_phase = charger.phase_rotation.grid_phases()[0]
            for c in charger.connectors:
                keys.append((charger.id, c.id))
                connectors.append(
                    AllocConnector(
                        self._node_index[charger.node],
                        str(c.phases),
                        first_phase,
                        c.min_current_a,
                        c.max_current_a,
                        _step(charger),
                        c.weight,
                        c.priority,
                    )
                )
        self.connector_keys: tuple[ConnectorKey, ...] = tuple(keys)
        self.connector_names = tuple(f"{charger}#{number}" for charger, number in keys)
        """Every connector as `charger-id#n`, in connector order."""
        self._connector_index = {key: i for i, key in enumerate(keys)}
        self._core = Allocator(
            nodes,
            connectors,
            AllocSettings(**asdict(settings), voltage_v=grid.voltage_v),
        )
        self.alone_on = array("b", [-1] * len(keys))
        """Per connector: the grid phase its EV draws on alone (`set_ev_phase`), -1: none."""

    def node_index(self, node_id: str) -> int:
        """Position of `node_id` in `node_ids` (and in the base-load column / 3)."""
        return self._node_index[node_id]

    def connector_index(self, key: ConnectorKey) -> int:
        """Position of a connector in every per-connector column."""
        return self._connector_index[key]

    def find_node(self, node_id: str) -> int | None:
        """Position of `node_id`, None when the site has no such node."""
        return self._node_index.get(node_id)

    def find_connector(self, name: str) -> int | None:
        """Position of the connector `charger-id#n`, None when there is none."""
        charger, _, number = name.rpartition("#")
        if not number.isdigit():
            return None
        return self._connector_index.get((charger, int(number)))

    def priority(self, index: int) -> int:
        """Priority tier of the connector at `index` (as configured or last set)."""
        return self._core.priority(index)

    def set_priority(self, index: int, priority: int) -> None:
        """Serve the connector at `index` in tier `priority` from the next cycle on.

        What the allocator remembers about it (charging or paused since when, its
        last setpoint) is kept. Raises `TopologyError` for an index out of range.
        """
        self._core.set_priority(index, priority)

    def set_ev_phase(self, index: int, phase: int | None) -> None:
        """The EV at the three-phase connector at `index` draws on grid phase `phase` alone
        (a one-phase EV), or on all three again (None): from the next cycle on it counts on
        that phase only. Raises `TopologyError` for a connector not built on three phases."""
        self._core.set_ev_phase(index, phase)
        self.alone_on[index] = -1 if phase is None else phase

    def confirm_draw(self, index: int, drawn_a: float) -> None:
        """A reading taken after the connector's last decrease was in force shows it draws
        `drawn_a` A, above its setpoint (the EV still follows an older, higher one): no more
        than that stays reserved for it to follow."""
        self._core.confirm_draw(index, drawn_a)

    def confirm_followed(self, index: int) -> None:
        """A reading taken after the connector's last decrease was in force shows it draws
        no more than its setpoint: the current kept reserved for the EV to follow (`settle_s`)
        is free from the next cycle on, instead of after the full settle time, and an
        increase after that decrease need not wait out `change_interval_s`."""
        self._core.confirm_followed(index)

    def reserved_a(self, index: int, now: float) -> float:
        """The current per phase the connector at `index` keeps reserved at `now` for its EV
        to follow a decrease (`settle_s`, lowered by `confirm_draw`, freed by
        `confirm_followed`); 0.0 for none."""
        return self._core.reserved_a(index, now)

    def base_load(self, per_node: Mapping[str, tuple[float, float, float]]) -> array[float]:
        """The base-load column from per-node (L1, L2, L3) currents; missing nodes are 0 A."""
        column = array("d", bytes(8 * 3 * len(self.node_ids)))
        for node_id, currents in per_node.items():
            at = 3 * self._node_index[node_id]
            column[at : at + 3] = array("d", currents)
        return column

    def allocate(self, inputs: CycleInputs) -> CycleResult:
        """Runs one cycle; raises `AllocationInputError` and keeps its state on bad input."""
        allocation = self._core.allocate(
            inputs.now,
            inputs.base_load_a,
            inputs.ev_max_a,
            inputs.wanting,
            inputs.pv_mode,
            grid_operator_w=inputs.grid_operator_w,
            peak_w=inputs.peak_w,
            pv_budget_w=inputs.pv_surplus_w + inputs.battery_discharge_w,
            floor_a=inputs.floor_a,
            laxity_s=inputs.laxity_s,
        )
        return CycleResult(allocation, self)


def _watts(kilowatts: float | None) -> float:
    return math.inf if kilowatts is None else kilowatts * 1000.0

"""Type stubs for the Rust extension `hubgate._core` (built from `rust/py`)."""

from array import array
from collections.abc import Sequence
from typing import ClassVar, final

from typing_extensions import Buffer

__version__: str

class HubgateError(Exception):
    """Base of every error raised by hubgate's Rust core."""

class CodecError(HubgateError, ValueError):
    """Bytes that do not form a valid frame, or a value that cannot be encoded."""

class CrcError(CodecError):
    """An RTU frame whose CRC does not match its content."""

def crc16(data: bytes) -> int:
    """CRC-16/MODBUS of `data`."""

def check_crc(frame: bytes) -> None:
    """Check the trailing CRC (low byte first) of a whole RTU frame; raise `CrcError`."""

class TopologyError(HubgateError, ValueError):
    """A site tree or connector set the allocator cannot work on."""

class AllocationInputError(HubgateError, ValueError):
    """A cycle's measurements the allocator cannot use; its state is unchanged."""

@final
class AllocReason:
    """Why a connector got its setpoint (codes as in `Allocation.reason`)."""

    NOT_WANTING: ClassVar[AllocReason]
    OWN_MAXIMUM: ClassVar[AllocReason]
    PHASE_CURRENT: ClassVar[AllocReason]
    POWER: ClassVar[AllocReason]
    UNBALANCE: ClassVar[AllocReason]
    GRID_OPERATOR: ClassVar[AllocReason]
    PEAK_TARGET: ClassVar[AllocReason]
    PV_BUDGET: ClassVar[AllocReason]
    PAUSED_NO_CAPACITY: ClassVar[AllocReason]
    PAUSED_MIN_OFF: ClassVar[AllocReason]
    RAMPING: ClassVar[AllocReason]
    CHANGE_INTERVAL: ClassVar[AllocReason]
    AWAITING_HEADROOM: ClassVar[AllocReason]
    def __int__(self) -> int: ...
    @staticmethod
    def members() -> list[AllocReason]:
        """Every reason, indexed by its code."""

@final
class AllocNode:
    """One node of the tree (index = position in the list given to `Allocator`)."""

    parent: int | None
    phase_cap_a: tuple[float, float, float]
    power_cap_w: float
    unbalance_cap_a: float
    def __new__(
        cls,
        parent: int | None,
        phase_cap_a: tuple[float, float, float],
        power_cap_w: float = ...,
        unbalance_cap_a: float = ...,
    ) -> AllocNode: ...

@final
class AllocConnector:
    """One connector: its node, grid phases ('1p', '3p', 'switchable'), limits and share.

    `phase` is the grid phase (0-2) it draws on when on one phase.
    """

    node: int
    phases: str
    phase: int
    min_a: float
    max_a: float
    step_a: float
    weight: float
    priority: int
    def __new__(
        cls,
        node: int,
        phases: str,
        phase: int,
        min_a: float,
        max_a: float,
        step_a: float = 0.1,
        weight: float = 1.0,
        priority: int = 0,
    ) -> AllocConnector: ...

@final
class AllocSettings:
    """Timing and policy settings (seconds, A/s, W)."""

    voltage_v: float
    min_on_s: float
    min_off_s: float
    change_interval_s: float
    ramp_a_per_s: float
    settle_s: float
    phase_switch_s: float
    max_phase_switches: int
    grid_operator_floor_w: float
    def __new__(
        cls,
        voltage_v: float = 230.0,
        min_on_s: float = 300.0,
        min_off_s: float = 120.0,
        change_interval_s: float = 5.0,
        ramp_a_per_s: float = ...,
        settle_s: float = 10.0,
        phase_switch_s: float = 600.0,
        max_phase_switches: int = 0,
        grid_operator_floor_w: float = 0.0,
    ) -> AllocSettings: ...

@final
class Allocation:
    """One cycle's result; each attribute is a new `array.array`, one entry per connector."""

    def __len__(self) -> int: ...
    @property
    def setpoint_a(self) -> array[float]:
        """Setpoints to send now, A per phase (0 = paused)."""
    @property
    def target_a(self) -> array[float]:
        """Fair targets before transition shaping, A per phase."""
    @property
    def fair_a(self) -> array[float]:
        """Exact weighted max-min fair shares before rounding, A per phase."""
    @property
    def phases(self) -> array[int]:
        """Phases drawn on, 1 or 3."""
    @property
    def reason(self) -> array[int]:
        """Reason codes: `AllocReason.members()[code]`."""
    @property
    def binding_node(self) -> array[int]:
        """Node index of the binding limit, or -1."""
    @property
    def binding_phase(self) -> array[int]:
        """Grid phase (0-2) of the binding limit, or -1."""

@final
class Allocator:
    """The allocator: topology and per-connector memory; call `allocate` every cycle."""

    def __new__(
        cls,
        nodes: Sequence[AllocNode],
        connectors: Sequence[AllocConnector],
        settings: AllocSettings | None = None,
    ) -> Allocator: ...
    @property
    def node_count(self) -> int: ...
    @property
    def connector_count(self) -> int: ...
    def allocate(
        self,
        now: float,
        base_load_a: Buffer | Sequence[float],
        ev_max_a: Buffer | Sequence[float],
        wanting: Buffer | Sequence[bool] | Sequence[int],
        pv_mode: Buffer | Sequence[bool] | Sequence[int] | None = None,
        grid_operator_w: float = ...,
        peak_w: float = ...,
        pv_budget_w: float = ...,
    ) -> Allocation:
        """Run one cycle.

        `base_load_a` has 3 values per node (L1, L2, L3, node by node); `ev_max_a`,
        `wanting` and `pv_mode` one per connector. Raises `AllocationInputError`.
        """

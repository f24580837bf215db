"""Who may command the site: the control loop asks before every cycle's dispatch and
before every single command.

A gateway alone on its site always may (`SOLE`, epoch 0). With `[cluster]`,
`hubgate.cluster.leadership.Leadership` answers: the epoch of the leader lease this
gateway holds, None while it is the standby or once its lease ran out on its own clock.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

__all__ = [
    "NOTHING_INHERITED",
    "SOLE",
    "Authority",
    "FencedError",
    "Held",
    "Inheritance",
    "Promotion",
    "Succession",
    "fenced",
]

from hubgate.fencing import SEND_GUARD, FencedError


class Authority(Protocol):
    """The right to command, as a fencing epoch."""

    def epoch(self) -> int | None:
        """The epoch this gateway may command under now, None when it may not."""

    def holds(self, epoch: int) -> bool:
        """Whether a command under `epoch` may go out now."""


class _Sole:
    """The only gateway of its site: always epoch 0."""

    def epoch(self) -> int | None:
        return 0

    def holds(self, epoch: int) -> bool:
        return epoch == 0


SOLE: Authority = _Sole()


@dataclass(frozen=True)
class Held:
    """After a hand-over: what the old leader last commanded a connector (its lease profile
    holds it there or below until it lapses) and the draw it last read there (A per grid
    phase), which the board meters still show while the charger redials."""

    current_a: float
    draw_a: tuple[float, float, float] = (0.0, 0.0, 0.0)


@dataclass(frozen=True)
class Inheritance:
    """What the leader before this epoch left its successor: the connectors whose own
    failsafe it had verified (OCPP chargers whose stored profiles fall back to the failsafe
    current when its lease ends, and that follow them), each with the failsafe current in
    force on it, and whether it handed over (then its leases may still run for one device
    lease) or went silent (then the standby waited for them to run out before it took
    over)."""

    failsafes: Mapping[str, float] = field(default_factory=dict, hash=False)
    """By connector name, the failsafe current its stored profile falls back to (the
    larger of the one verified and one being configured, when they differ)."""
    handed_over: bool = False
    held: Mapping[str, Held] = field(default_factory=dict, hash=False)
    """After a hand-over: each of `failsafes` as the old leader left it (`Held`)."""


NOTHING_INHERITED = Inheritance()


@runtime_checkable
class Succession(Protocol):
    """An authority that passes what the leader knows of its chargers on to the next one
    (`hubgate.cluster.leadership.Leadership`: in the lease key)."""

    def bequeath(self, failsafes: Mapping[str, float], held: Mapping[str, Held]) -> None:
        """As leader: the connectors a successor may count on (`Inheritance.failsafes`)
        and their last commands and draws (`Inheritance.held`)."""

    def inherited(self) -> Inheritance:
        """As a new leader: what the leader before this epoch left."""


@runtime_checkable
class Promotion(Protocol):
    """An authority that tells when it is granted an epoch (`Leadership`: as it takes the
    lease), so that the new leader's first cycle starts then, not at its next tick."""

    async def promoted(self) -> None:
        """Return the next time this gateway starts to command."""


def fenced(
    authority: Authority, epoch: int, op: Callable[[], Awaitable[object]]
) -> Callable[[], Awaitable[object]]:
    """`op`, sent only while `epoch` is still held: checked as it starts, and by the
    transports right before each request leaves (`hubgate.fencing`)."""

    async def run() -> object:
        if not authority.holds(epoch):
            raise FencedError(f"epoch {epoch} is no longer held: not sent")
        SEND_GUARD.set(lambda: authority.holds(epoch))
        return await op()

    return run

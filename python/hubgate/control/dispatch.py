"""How a cycle's setpoints go out: each charger's command (its failsafe configured and
verified first where the planner asks), the battery's and the PV inverters' commands, all
at once under the authority's epoch and one deadline (`gather_by_deadline`).

A charger that paces its own commands (`HeldLimit`: an OCPP charge point) is handed its
setpoint when it changed, when the charger said it comes due (its lease's renewal, a paced
increase: `HeldLimit.quiet_until`) or may be due (a new connection, a new report:
`HeldLimit.due_again`), and at least every `QUIET_AT_MOST_S`; one that would send nothing
then gives its limit in force at once, without a task, and one whose exchange waits for its
turn already is left the newest setpoint to send, without a task either (`joins_turn`: at
depot-500 in 0.1 s cycles at load 10-17, 21 of the 67 OCPP connectors handed a setpoint
each cycle, each a task that waited for that exchange and was cut at the deadline).

Such a charger's failsafe configuration runs aside (`Dispatch.run`): cut short at the
command deadline, it goes on and its outcome counts when it ends; the connector is not
tried again meanwhile (`ConnectorRuntime.verify_tried_at`). Each try used to be cut at the
deadline and tried again a second later, queued behind the one before: at depot-500 with
0.1 s cycles, 12,467 tries in 94 s for 250 connectors, 370 of them verified.

The battery's command runs aside too, in turns (`Dispatch._in_turn`): its writes and read
backs took longer than the command deadline on a loaded machine (the demo logged "command
failed (no answer)" and sent it again 3-4 times a minute).
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable, Mapping
from functools import partial

import trio

from hubgate.aside import Turns, run_aside
from hubgate.config.model import SiteConfig
from hubgate.control.authority import Authority, FencedError, fenced
from hubgate.control.cycle import TIMED_OUT, Failed, gather_by_deadline
from hubgate.control.plan import CyclePlanner, Plan, SetpointCommand
from hubgate.devices.errors import NotReadyError
from hubgate.devices.model import AppliedLimit, Charger, HeldFallback, HeldLimit

Operation = Callable[[], Awaitable[object]]

QUIET_AT_MOST_S = 5.0
"""An unchanged setpoint is handed to a charger that paces its commands at least this
often: what makes its lease due without a new setpoint, is not foreseen and not told
(`due_again`), such as new capabilities changing the lease's shape, waits at most this
long (meanwhile the lease in force holds, renewed by its heartbeat)."""


class Dispatch:
    """Sends the planner's commands to the site's chargers, battery and PV inverters."""

    def __init__(
        self,
        site: SiteConfig,
        planner: CyclePlanner,
        chargers: Mapping[str, Charger],
        authority: Authority,
    ) -> None:
        """`chargers`: each connector's charger, by connector name."""
        self.site = site
        self.planner = planner
        self.chargers = chargers
        self.authority = authority
        self._held = {name: c for name, c in chargers.items() if isinstance(c, HeldLimit)}
        self._aside: trio.Nursery | None = None
        self._turns: dict[str, Turns[None]] = {}
        """The battery's commands, taken in turns (`_in_turn`)."""
        for name, charger in self._held.items():
            charger.due_again = partial(self._due_again, planner.connector_index(name))

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Run the paced chargers' failsafe configurations aside until cancelled (without
        it they run in the cycle's command, cut short at its deadline)."""
        async with trio.open_nursery() as nursery:
            self._aside = nursery
            task_status.started()
            try:
                await trio.sleep_forever()
            finally:
                self._aside = None

    def _due_again(self, index: int | None) -> None:
        """The connector at `index` is handed its setpoint next cycle (`HeldLimit.due_again`)."""
        if index is not None:
            self.planner.quiet_until[index] = -math.inf

    async def send(self, plan: Plan, now: float, epoch: int, deadline: float) -> None:
        """Send `plan`'s commands and the energy devices' under `epoch`, each cancelled at
        `deadline`, and hand the planner what came of them."""
        ops: dict[str, Operation] = {}
        held: dict[str, object] = {}
        handed: list[tuple[int, HeldLimit]] = []
        for command in plan.commands:
            name = command.name
            charger = self.chargers[name]
            paced = self._held.get(name)
            if paced is not None:
                handed.append((command.index, paced))
            if command.verify_first:
                ops[name] = self._verify_then_set(charger, command, epoch)
                continue
            limit = (
                None if paced is None else paced.limit_in_force(command.current_a, command.phases)
            )
            if limit is not None:
                held[name] = limit
            elif paced is not None and paced.joins_turn(command.current_a, command.phases):
                held[name] = TIMED_OUT  # (its answer comes in a later cycle)
            else:
                ops[name] = setter(charger, command.current_a, command.phases)
        energy = self.planner.energy.command_ops(now)
        ops |= energy
        ops = {name: fenced(self.authority, epoch, op) for name, op in ops.items()}
        aside = {name for name in energy if name.startswith("battery:")} if self._aside else ()
        for name in aside:
            ops[name] = self._in_turn(name, ops[name], now, epoch)
        results = held | await gather_by_deadline(ops, deadline)
        at, quiet_until = trio.current_time(), self.planner.quiet_until
        for index, asked in handed:
            quiet_until[index] = now + min(asked.quiet_until - at, QUIET_AT_MOST_S)
        for name in energy:
            outcome = results.pop(name, None)
            if name not in aside:
                self.planner.energy_commanded(name, outcome, now)
        self.planner.outcomes(plan, results, now, trio.current_time())

    def _in_turn(self, name: str, op: Operation, now: float, epoch: int) -> Operation:
        """The battery's command `op` run aside, in turns (`hubgate.aside.Turns`): cut short
        at the command deadline it goes on, and its outcome is the planner's when it ends
        (a late answer is an answer, not "no answer"; and it was sent again each cycle); one
        asked meanwhile waits, at most one, and sends the newest command when its turn
        comes (`SiteEnergy.command_ops`). Its answer counts from `now`, the cycle that asked
        for it (a refresh is due `lease_s / 2` after that, at the latest)."""
        turns = self._turns.setdefault(name, Turns())
        aside = self._aside
        assert aside is not None

        async def commanded() -> None:
            try:
                outcome: object = await op()
            except Exception as error:  # its outcome, for the planner
                outcome = Failed(error)
            if self.authority.holds(epoch):
                self.planner.energy_commanded(name, outcome, now)

        async def detached(op: Callable[[], Awaitable[None]]) -> None:
            await run_aside(aside, op)

        async def run() -> None:
            await turns.take(commanded, detached)

        return run

    def _verify_then_set(self, charger: Charger, command: SetpointCommand, epoch: int) -> Operation:
        configure = self._configure(charger, command, epoch)
        aside = self._aside if command.name in self._held else None

        async def run() -> AppliedLimit:
            if aside is None:
                await configure()
            else:
                await run_aside(aside, configure)
            if not self.authority.holds(epoch):
                raise FencedError(f"epoch {epoch} is no longer held: not sent")
            return await charger.set_limit(command.current_a, command.phases)

        return run

    def _configure(
        self, charger: Charger, command: SetpointCommand, epoch: int
    ) -> Callable[[], Awaitable[None]]:
        """One try at `charger`'s failsafe settings, its outcome handed to the planner as it
        ends (while `epoch` is held: a later leader's take-over asks again)."""
        runtime, index = self.planner.connectors[command.index], command.index
        verification, failsafe_a = self.planner.verification, command.failsafe_a

        async def configure() -> None:
            runtime.verify_tried_at, verified = math.inf, False  # (in flight)
            try:
                await charger.configure_failsafe(self.site.control.lease_s, failsafe_a)
                held = charger.held_fallback() if isinstance(charger, HeldFallback) else None
                if verified := self.authority.holds(epoch):
                    verification.configured(index, ok=True, held=held, failsafe_a=failsafe_a)
            except NotReadyError:  # nothing sent: not a try, and nothing changed on it
                runtime.verify_tried_at = -math.inf
                raise
            except Exception:
                verification.configured(index, ok=False)
                raise
            finally:
                if runtime.verify_tried_at == math.inf:
                    runtime.verify_ended(trio.current_time(), verified)

        return configure


def setter(charger: Charger, current_a: float, phases: int) -> Operation:
    """The operation that sends `charger` its limit."""

    async def run() -> AppliedLimit:
        return await charger.set_limit(current_a, phases)

    return run

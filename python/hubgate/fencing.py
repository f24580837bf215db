"""The last check before a command's bytes leave: is the fencing epoch still held?

With two gateways on a site (docs/ha.md) the control loop sends each command under the
epoch of its leader lease. It checks the epoch as the command starts, and sets
`SEND_GUARD` for the task that sends it; the transports (Modbus TCP and RTU masters, the
OCPP session) call `check_send()` right before they hand a request to the socket, with no
await in between, so a gateway that lost its lease while a command waited (for a lock,
for an earlier request, or because the process was stopped) does not send it. Requests
sent without a guard (reads, answers to a charger's calls) are not affected.
"""

from __future__ import annotations

from collections.abc import Callable
from contextvars import ContextVar

from hubgate._core import HubgateError

SEND_GUARD: ContextVar[Callable[[], bool] | None] = ContextVar("send_guard", default=None)
"""Set for a command's task: True while its epoch is held."""


class FencedError(HubgateError):
    """A command was not sent: the epoch it was planned under is no longer held."""


def check_send() -> None:
    """Raise `FencedError` when this task's command may no longer go out."""
    guard = SEND_GUARD.get()
    if guard is not None and not guard():
        raise FencedError("the fencing epoch is no longer held: not sent")

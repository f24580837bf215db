"""What every Modbus master (TCP, RTU, RTU over TCP) offers, and a device behind one."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Literal, Protocol

from hubgate._core import Field, ReadPlan, Request, Response
from hubgate.modbus.codec import FieldValue
from hubgate.modbus.errors import ModbusExceptionError
from hubgate.modbus.stats import RequestStats

_REGISTER_RESPONSES = (Response.ReadHoldingRegisters, Response.ReadInputRegisters)


class Master(Protocol):
    """A link to one or more unit ids; requests are answered or raise `ModbusError`."""

    @property
    def name(self) -> str:
        """Where the link goes, e.g. `10.0.0.5:502` or `/dev/ttyUSB0`."""

    @property
    def stats(self) -> dict[int, RequestStats]:
        """Request statistics per unit id."""

    def dial_again(self) -> None:
        """Let the next connection attempt start at once, whatever failed before."""

    async def request(
        self,
        unit: int,
        request: Request,
        *,
        timeout_s: float | None = None,
        delay_s: float = 0.0,
    ) -> Response:
        """Send `request` to `unit` and return its normal response; the link has been
        quiet for `delay_s` (since its last exchange with any unit ended) when it is sent.

        Raises `ModbusExceptionError`, or after the retries `ModbusTimeoutError`,
        `ModbusConnectionError` or `ModbusBadResponseError`.
        """

    async def read_plan(
        self,
        unit: int,
        plan: ReadPlan,
        *,
        max_in_flight: int = 1,
        timeout_s: float | None = None,
        delay_s: float = 0.0,
    ) -> list[FieldValue]:
        """Every field of `plan` read from `unit`, with at most `max_in_flight` of its
        requests on the link at once (where the link can pipeline; one when `delay_s`
        keeps the link quiet before each request); raises as `request`."""


async def read_plan_in_turn(
    master: Master,
    unit: int,
    plan: ReadPlan,
    *,
    timeout_s: float | None = None,
    delay_s: float = 0.0,
) -> list[FieldValue]:
    """`Master.read_plan` for a link that takes one request at a time (RTU): the plan's
    requests one after the other, then one `ReadPlan.decode` call."""
    responses = [
        await master.request(unit, r, timeout_s=timeout_s, delay_s=delay_s) for r in plan.requests
    ]
    return plan.decode(responses)


def stats_of(stats: dict[int, RequestStats], unit: int) -> RequestStats:
    """The statistics of `unit`, created on first use."""
    found = stats.get(unit)
    if found is None:
        found = stats[unit] = RequestStats()
    return found


def check_response(
    link: str, unit: int, response: Response, stats: RequestStats, latency_s: float
) -> Response:
    """Record `response` in `stats`; raise `ModbusExceptionError` for an exception."""
    if isinstance(response, Response.Exception):
        stats.record_exception(latency_s)
        raise ModbusExceptionError(f"{link}/{unit}", response.function, response.code)
    stats.record_ok(latency_s)
    return response


MAX_READ = 125
"""Registers one FC3/FC4 request reads at most (MODBUS Application Protocol V1.1b3 §6.3)."""


@functools.lru_cache(maxsize=1024)
def registers_plan(function: int, address: int, count: int) -> ReadPlan:
    """`count` registers from `address` as the u16 fields of a plan of one request."""
    code: Literal[3, 4] = 3 if function == 3 else 4
    return ReadPlan([Field(a, function=code) for a in range(address, address + count)])


@dataclass(frozen=True)
class ModbusDevice:
    """One unit id behind a master: the handle device drivers use."""

    master: Master
    unit: int
    max_in_flight: int = 1
    """Requests of one read plan the device answers at once (pipelining; its profile's
    `[transport] max_in_flight`)."""
    delay_s: float = 0.0
    """How long its link stays quiet before each request to it (its profile's
    `[transport] inter_request_delay_ms`); such a device is never pipelined."""

    @property
    def name(self) -> str:
        """`link/unit`, as used in messages."""
        return f"{self.master.name}/{self.unit}"

    @property
    def stats(self) -> RequestStats:
        """This device's request statistics."""
        return stats_of(self.master.stats, self.unit)

    async def request(self, request: Request, *, timeout_s: float | None = None) -> Response:
        """Send any request to this device."""
        return await self.master.request(
            self.unit, request, timeout_s=timeout_s, delay_s=self.delay_s
        )

    async def read_registers(
        self, address: int, count: int, *, function: int = 3, timeout_s: float | None = None
    ) -> list[int]:
        """Read `count` holding (function 3) or input (function 4) registers."""
        if function in (3, 4) and 1 <= count <= MAX_READ and 0 <= address <= 0x10000 - count:
            # As a one-request plan: the exchange is matched and decoded in Rust.
            plan = registers_plan(function, address, count)
            # The fields are registers (ints); `typing.cast` would be a Python call per read.
            return await self.master.read_plan(  # type: ignore[return-value]
                self.unit, plan, timeout_s=timeout_s, delay_s=self.delay_s
            )
        request: Request
        if function == 3:
            request = Request.ReadHoldingRegisters(address, count)
        elif function == 4:
            request = Request.ReadInputRegisters(address, count)
        else:
            raise ValueError(f"registers are read with function 3 or 4, not {function}")
        response = await self.master.request(
            self.unit, request, timeout_s=timeout_s, delay_s=self.delay_s
        )
        assert isinstance(response, _REGISTER_RESPONSES)
        return response.registers

    async def write_registers(
        self, address: int, values: list[int], *, timeout_s: float | None = None
    ) -> None:
        """Write one register (function 6) or several (function 16)."""
        request: Request = (
            Request.WriteSingleRegister(address, values[0])
            if len(values) == 1
            else Request.WriteMultipleRegisters(address, values)
        )
        await self.request(request, timeout_s=timeout_s)

    async def read_plan(
        self, plan: ReadPlan, *, timeout_s: float | None = None
    ) -> list[FieldValue]:
        """Every field of `plan` (see `Master.read_plan`)."""
        return await self.master.read_plan(
            self.unit,
            plan,
            max_in_flight=self.max_in_flight,
            timeout_s=timeout_s,
            delay_s=self.delay_s,
        )

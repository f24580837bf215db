"""Every firmware profile compiles into one `ReadPlan`, and reading each
profile's simulated device (a pymodbus server) through the codec gives the
values the simulator holds."""

from __future__ import annotations

import pytest
import trio

from hubgate.modbus.codec import ReadPlan, ResponseReceived, TcpClientCodec
from hubgate.profiles.codec_fields import read_plan
from hubgate.profiles.loader import load_all
from hubgate.profiles.model import Profile
from hubgate.profiles.plan import RegisterSpec, field_specs
from hubgate.sim.modbus_box import serve
from hubgate.sim.simulated_device import SimulatedDevice

PROFILES = load_all()


def plan_of(profile: Profile) -> tuple[list[str], ReadPlan]:
    specs = field_specs(profile)
    names = sorted(specs)
    return names, read_plan(profile, {n: specs[n] for n in names})


def distinct_value(index: int, spec: RegisterSpec, exponent: int) -> float | str | None:
    """A value the field can hold, different for every field; every third field
    with a sentinel is "not available"."""
    if spec.sentinel and index % 3 == 0:
        return None
    if spec.function.is_bit:
        return float(index % 2)
    if str(spec.type) == "string":
        return "H" if spec.charset == "utf-16-be" else f"H{index % 10}"
    raw = 100 + index
    if spec.mask is not None:
        raw = min(raw, spec.mask)
    power = 10.0**exponent if spec.scale_factor_address is not None else 1.0
    return raw * spec.scale * power + spec.offset


@pytest.mark.parametrize("name", sorted(PROFILES))
async def test_profile_read_through_the_codec(name: str) -> None:
    profile = PROFILES[name]
    names, plan = plan_of(profile)
    device = SimulatedDevice(profile)
    specs = field_specs(profile)
    written = {}
    for index, quantity in enumerate(names):
        written[quantity] = distinct_value(index, specs[quantity], device.exponent)
        device.set(quantity, written[quantity])
    client = TcpClientCodec()
    with serve(device) as port, trio.fail_after(10):
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        async with stream:
            responses = []
            for request in plan.requests:
                _, frame = client.encode_request(device.unit, request)
                await stream.send_all(frame)
                while (event := client.next_event()) is None:
                    client.receive_data(await stream.receive_some())
                assert isinstance(event, ResponseReceived), event
                assert not event.response.is_exception, (request, event.response)
                responses.append(event.response)
    values = dict(zip(names, plan.decode(responses), strict=True))
    for quantity, value in values.items():
        expected = written[quantity]
        if expected is None:  # the simulator wrote the sentinel (its `get` decodes it raw)
            assert value is None, quantity
            continue
        for got in (device.get(quantity), value):  # the simulator agrees, and so do we
            if isinstance(expected, float):
                assert got == pytest.approx(expected, rel=1e-6, abs=1e-9), quantity
            else:
                assert got == expected, quantity

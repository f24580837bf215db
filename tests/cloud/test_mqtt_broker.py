"""The telemetry publisher against a real mosquitto broker, read with mosquitto_sub."""

from __future__ import annotations

import json
import signal
import socket
import ssl
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import trio

from hubgate.cloud.mqtt.publisher import TelemetryPublisher, open_broker_stream
from hubgate.config.services import Mqtt
from tests.support.mosquitto import Mosquitto
from tests.support.wait import wait_until

pytestmark = pytest.mark.peers("mosquitto", "mosquitto_sub")

WORKER = Path(__file__).parent.parent / "support" / "mqtt_worker.py"


@pytest.fixture
async def broker(tmp_path: Path) -> AsyncIterator[Mosquitto]:
    mosquitto = Mosquitto(tmp_path)
    await mosquitto.start()
    yield mosquitto
    if mosquitto.process is not None:
        await mosquitto.stop()


def publisher_for(broker: Mosquitto, buffer_size: int = 100) -> TelemetryPublisher:
    config = Mqtt(
        host="127.0.0.1",
        port=broker.port,
        client_id="site1",
        keepalive_s=5,
        buffer_size=buffer_size,
    )
    return TelemetryPublisher(config, min_backoff_s=0.05, max_backoff_s=0.2)


async def test_retained_status_and_qos1_delivery(broker: Mosquitto) -> None:
    with trio.fail_after(30):
        # a persistent subscriber session that is offline: only QoS 1 messages are kept for it
        await broker.subscribe("-c", "-i", "fleet", "-t", "hubgate/site1/connector/#", "-E")
        publisher = publisher_for(broker)
        async with trio.open_nursery() as nursery:
            await nursery.start(publisher.run)
            await publisher.wait_idle()
            status = await broker.subscribe("-t", "hubgate/site1/status", count=1)
            assert status == ["1 1 hubgate/site1/status online"]
            topic = publisher.topics.connector("cp-1", 2, "current_a")
            for n in range(5):
                publisher.measure(topic, [16.0, 16.0, float(n)], "A", at=1_764_000_000 + n)
            await publisher.wait_idle()
            nursery.cancel_scope.cancel()
        lines = await broker.subscribe(
            "-c", "-i", "fleet", "-t", "hubgate/site1/connector/#", count=5
        )
        assert [line.split(" ", 3)[:3] for line in lines] == [["0", "1", topic]] * 5
        values = [json.loads(line.split(" ", 3)[3]) for line in lines]
        assert values[0] == {
            "ts": "2025-11-24T16:00:00.000Z",
            "value": [16.0, 16.0, 0.0],
            "unit": "A",
        }
        assert [v["value"][2] for v in values] == [0, 1, 2, 3, 4]
        # cancelling the publisher said goodbye: the retained status is now "offline"
        after = await broker.subscribe("-t", "hubgate/site1/status", count=1)
        assert after == ["1 0 hubgate/site1/status offline"]  # sent with QoS 0 on the way out


async def test_buffered_while_broker_is_away_then_delivered(broker: Mosquitto) -> None:
    filters = ["-t", "hubgate/site1/site/#", "-t", "hubgate/site1/event"]
    with trio.fail_after(30):
        await broker.subscribe("-c", "-i", "fleet", *filters, "-E")
        publisher = publisher_for(broker, buffer_size=50)
        async with trio.open_nursery() as nursery:
            await nursery.start(publisher.run)
            await publisher.wait_idle()
            await broker.stop()
            await publisher.wait_disconnected()
            for n in range(3):
                publisher.event("charger-offline", at=1_764_000_000, charger="cp-1", n=n)
            for n in range(60):
                publisher.measure(
                    publisher.topics.site("power_kw"), float(n), "kW", at=1_764_000_000
                )
            assert len(publisher.outbox) == 50
            assert publisher.outbox.dropped_measurements == 13
            assert publisher.outbox.dropped_events == 0
            tried = publisher.attempts
            await wait_until(lambda: publisher.attempts >= tried + 2, "two failed reconnects")
            await broker.start()
            await publisher.wait_idle()
            nursery.cancel_scope.cancel()
        lines = await broker.subscribe("-c", "-i", "fleet", *filters, count=50)
    events = [
        json.loads(line.split(" ", 3)[3]) for line in lines if " hubgate/site1/event " in line
    ]
    power = [
        json.loads(line.split(" ", 3)[3])["value"] for line in lines if "/site/power_kw " in line
    ]
    assert [e["n"] for e in events] == [0, 1, 2]
    assert events[0]["kind"] == "charger-offline"
    assert power == [float(n) for n in range(13, 60)]  # the 13 oldest measurements were dropped


async def test_will_says_offline_when_the_process_dies(broker: Mosquitto) -> None:
    with trio.fail_after(30):
        process = await trio.lowlevel.open_process(
            [sys.executable, str(WORKER), str(broker.port), "site9"], stdout=subprocess.PIPE
        )
        assert process.stdout is not None
        try:
            line = b""
            while not line.endswith(b"\n"):
                line += await process.stdout.receive_some()
            assert line == b"idle\n"
            online = await broker.subscribe("-t", "hubgate/site9/status", count=1)
            assert online == ["1 1 hubgate/site9/status online"]
            process.send_signal(signal.SIGKILL)
            await process.wait()
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
            await process.stdout.aclose()
        offline = await broker.subscribe("-t", "hubgate/site9/status", count=1)
        assert offline == ["1 1 hubgate/site9/status offline"]


async def refused_after_handshake(config: Mqtt) -> bool:
    """Whether the broker ends the connection before answering a CONNECT (with TLS 1.3 a
    missing client certificate is refused after the client's handshake is done)."""
    try:
        stream = await open_broker_stream(config)
    except trio.BrokenResourceError:
        return True
    async with stream:
        try:
            await stream.send_all(b"\x10\x0c\x00\x04MQTT\x04\x02\x00\x05\x00\x00")
            return await stream.receive_some(4) == b""
        except trio.BrokenResourceError:
            return True


async def test_an_unreadable_tls_file_dials_nothing(tmp_path: Path) -> None:
    """A broken CA file fails before the broker is dialled: no connection is left open
    (it was, on every retry of the publisher, until garbage collection closed it)."""
    (tmp_path / "ca.pem").write_text("not a certificate\n")
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(4)
        listener.setblocking(False)
        config = Mqtt(
            host="127.0.0.1",
            port=listener.getsockname()[1],
            client_id="site1",
            tls=True,
            tls_ca=str(tmp_path / "ca.pem"),
        )
        with trio.fail_after(10), pytest.raises(ssl.SSLError):
            await open_broker_stream(config)
        # A loopback connect is in the accept queue once it returns: none may be there.
        with pytest.raises(BlockingIOError):
            listener.accept()


async def test_tls_with_a_client_certificate_and_the_broker_verified(
    tmp_path: Path, pki: Path
) -> None:
    """Issue 19: the fleet link was plain TCP. Over TLS, hubgate checks the broker's
    certificate and name and presents its own; the broker requires one."""
    broker = Mosquitto(tmp_path, pki)
    await broker.start()
    try:
        secure = Mqtt(
            host="localhost",
            port=broker.port,
            client_id="site1",
            keepalive_s=5,
            tls=True,
            tls_ca=str(pki / "ca.pem"),
            tls_client_cert=str(pki / "CP201.pem"),
            tls_client_key=str(pki / "CP201.key"),
        )
        with trio.fail_after(30):
            publisher = TelemetryPublisher(secure, min_backoff_s=0.05, max_backoff_s=0.2)
            async with trio.open_nursery() as nursery:
                await nursery.start(publisher.run)
                await publisher.wait_idle()
                status = await broker.subscribe("-t", "hubgate/site1/status", count=1)
                assert status == ["1 1 hubgate/site1/status online"]
                nursery.cancel_scope.cancel()
            # The system's CAs do not know the test CA: no connection, nothing sent.
            unverified = secure.model_copy(update={"tls_ca": None})
            with pytest.raises(trio.BrokenResourceError):
                await open_broker_stream(unverified)
            # The same broker at an address its certificate does not name: refused as well.
            misnamed = secure.model_copy(update={"host": "127.0.0.2"})
            with pytest.raises(trio.BrokenResourceError):
                await open_broker_stream(misnamed)
            # Without a client certificate the broker ends the handshake.
            anonymous = secure.model_copy(update={"tls_client_cert": None, "tls_client_key": None})
            assert await refused_after_handshake(anonymous)
    finally:
        await broker.stop()

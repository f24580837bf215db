"""The Trio telemetry publisher: keeps a broker connection and drains the outbox into it.

`measure` and `event` never block: they put a message in the bounded outbox
(`hubgate.cloud.mqtt.outbox`). `run` connects, publishes a retained "online"
status (the will is a retained "offline"), then publishes the outbox in order
with QoS 1, at most `max_inflight` unacknowledged at once. When the broker goes
away, unacknowledged messages stay in the session and are sent again after the
reconnect; new ones wait in the outbox. Reconnects back off exponentially
(with jitter) from `min_backoff_s` to `max_backoff_s`. Cancelling `run` sets
the status to "offline" and disconnects cleanly. With `tls = true` the link is
TLS (`open_broker_stream`): the broker's certificate and host name are verified,
a client certificate is presented when configured.
"""

from __future__ import annotations

import contextlib
import json
import logging
import random
import ssl
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import trio

from hubgate.cloud.mqtt.client import (
    Connected,
    ConnectionLost,
    Delivered,
    MqttClient,
    Received,
    Refused,
    State,
)
from hubgate.cloud.mqtt.outbox import Kind, Message, Outbox
from hubgate.cloud.mqtt.packets import MqttProtocolError, Will, check_topic
from hubgate.cloud.mqtt.topics import Topics
from hubgate.config.services import Mqtt

log = logging.getLogger(__name__)

ONLINE, OFFLINE = b"online", b"offline"


class BrokerLostError(Exception):
    """This connection to the broker ended; `run` reconnects."""


def _timestamp(epoch_s: float) -> str:
    return (
        datetime.fromtimestamp(epoch_s, UTC)
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z")
    )


def tls_context(config: Mqtt) -> ssl.SSLContext | None:
    """TLS for the broker link (`tls = true`): the broker's certificate and name verified
    against `tls_ca` or the system's CAs, `tls_client_cert` presented; else None."""
    if not config.tls:
        return None
    context = ssl.create_default_context(cafile=config.tls_ca)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if config.tls_client_cert is not None:
        context.load_cert_chain(config.tls_client_cert, config.tls_client_key)
    return context


async def open_broker_stream(config: Mqtt) -> trio.abc.Stream:
    """A connection to the broker, its TLS handshake done when `tls` is set (the TLS
    files are read first: one unreadable dials nothing, so no connection is left open)."""
    context = tls_context(config)
    stream = await trio.open_tcp_stream(config.host, config.port)
    if context is None:
        return stream
    secure = trio.SSLStream(stream, context, server_hostname=config.host)
    try:
        await secure.do_handshake()
    except BaseException:
        await trio.aclose_forcefully(secure)
        raise
    return secure


class TelemetryPublisher:
    """Site and connector telemetry to one MQTT broker (see the module docstring)."""

    def __init__(
        self,
        config: Mqtt,
        *,
        max_inflight: int = 20,
        min_backoff_s: float = 0.5,
        max_backoff_s: float = 30.0,
    ) -> None:
        self._config = config
        self.topics = Topics(config.topic_prefix, config.client_id)
        self.outbox = Outbox(config.buffer_size)
        self._client = MqttClient(
            config.client_id,
            keepalive_s=config.keepalive_s,
            will=Will(self.topics.status, OFFLINE, qos=1, retain=True),
            username=config.username,
            password=config.password,
        )
        self._max_inflight = max_inflight
        self._backoff = (min_backoff_s, max_backoff_s)
        self._wake = trio.Event()
        self._progress = trio.Event()
        self._connected_once = False
        self.delivered = 0
        """QoS 1 messages the broker has acknowledged."""
        self.attempts = 0
        """Connections tried so far, the first one included."""

    @property
    def _address(self) -> str:
        return f"{self._config.host}:{self._config.port}"

    @property
    def connected(self) -> bool:
        """True while the broker has accepted the current connection."""
        return self._client.state is State.CONNECTED

    def measure(self, topic: str, value: float | Sequence[float], unit: str, *, at: float) -> None:
        """Queue a measurement (`at` in epoch seconds) for a topic from `self.topics`."""
        body = {"ts": _timestamp(at), "value": value, "unit": unit}
        self._put(Message(topic, json.dumps(body).encode(), Kind.MEASUREMENT))

    def event(self, kind: str, *, at: float, **fields: Any) -> None:
        """Queue an event on `<root>/event` as JSON {"ts", "kind", ...fields}."""
        body = {"ts": _timestamp(at), "kind": kind, **fields}
        self._put(Message(self.topics.event, json.dumps(body).encode(), Kind.EVENT))

    def _put(self, message: Message) -> None:
        check_topic(message.topic)
        self.outbox.put(message)
        self._wake.set()

    async def wait_idle(self) -> None:
        """Until connected with an empty outbox and every QoS 1 message acknowledged."""
        while not (self.connected and not self.outbox and not self._client.unacknowledged):
            await self._progress.wait()

    async def wait_disconnected(self) -> None:
        """Until the broker connection is gone."""
        while self.connected:
            await self._progress.wait()

    def _progressed(self) -> None:
        self._progress.set()
        self._progress = trio.Event()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Publish until cancelled, reconnecting with backoff."""
        task_status.started()
        low, high = self._backoff
        delay = low
        while True:
            self.attempts += 1
            try:
                await self._connection()
            except* (OSError, trio.BrokenResourceError, trio.TooSlowError, BrokerLostError) as lost:
                log.info("MQTT broker %s: %s", self._address, lost.exceptions[0])
            except* MqttProtocolError as bad:
                log.warning("MQTT broker %s: %s", self._address, bad.exceptions[0])
            finally:
                self._client.connection_closed()
                self._progressed()
            if self._connected_once:
                delay = low
            await trio.sleep(delay * random.uniform(0.5, 1.0))
            delay = min(delay * 2, high)

    async def _connection(self) -> None:
        self._connected_once = False
        with trio.fail_after(self._config.keepalive_s):
            stream = await open_broker_stream(self._config)
        async with stream:
            self._client.connect(trio.current_time())
            try:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(self._read, stream)
                    await self._write(stream)
            finally:
                with trio.CancelScope(shield=True), trio.move_on_after(1):
                    await self._goodbye(stream)

    async def _goodbye(self, stream: trio.abc.Stream) -> None:
        """Leaving while connected (cancelled, or an I/O error): "offline", then DISCONNECT."""
        if self._client.state is State.CONNECTED:
            now = trio.current_time()
            self._client.publish(self.topics.status, OFFLINE, qos=0, retain=True, now=now)
            self._client.disconnect(now)
            with contextlib.suppress(OSError, trio.BrokenResourceError):
                await stream.send_all(self._client.data_to_send())

    async def _read(self, stream: trio.abc.Stream) -> None:
        while True:
            data = await stream.receive_some(65536)
            self._client.receive_data(bytes(data), trio.current_time())
            self._handle_events()
            self._wake.set()

    async def _write(self, stream: trio.abc.Stream) -> None:
        while True:
            now = trio.current_time()
            self._client.handle_timers(now)
            self._handle_events()
            while (
                self.connected and self.outbox and self._client.unacknowledged < self._max_inflight
            ):
                message = self.outbox.pop()
                self._client.publish(message.topic, message.payload, retain=message.retain, now=now)
            if data := self._client.data_to_send():
                await stream.send_all(data)
            deadline = self._client.next_deadline()
            with trio.move_on_at(float("inf") if deadline is None else deadline):
                await self._wake.wait()
            self._wake = trio.Event()

    def _handle_events(self) -> None:
        while (event := self._client.next_event()) is not None:
            if isinstance(event, Connected):
                self._connected_once = True
                now = trio.current_time()
                self._client.publish(self.topics.status, ONLINE, retain=True, now=now)
                self._progressed()
            elif isinstance(event, Delivered):
                self.delivered += 1
                self._progressed()
            elif isinstance(event, Refused):
                raise BrokerLostError(
                    f"connection refused, CONNACK return code {event.return_code}"
                )
            elif isinstance(event, ConnectionLost):
                raise BrokerLostError(event.reason)
            elif isinstance(event, Received):
                log.debug(
                    "ignoring a message on %s: hubgate subscribes to nothing", event.message.topic
                )

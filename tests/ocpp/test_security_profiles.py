"""Security profiles 2 (TLS + Basic) and 3 (mutual TLS), with the `pki` fixture's certificates."""

from __future__ import annotations

import base64
import ssl
from pathlib import Path

import pytest
import trio
from ocpp.v16 import call
from websockets.exceptions import InvalidHandshake, InvalidStatus

from hubgate.config.services import OcppServer
from tests.support.ocpp_listener import PASSWORD, V16, start_listener


def client_context(pki: Path, identity: str | None = None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(pki / "ca.pem"))
    if identity is not None:
        context.load_cert_chain(pki / f"{identity}.pem", pki / f"{identity}.key")
    return context


def config(pki: Path, profile: int) -> OcppServer:
    return OcppServer(
        port=0,
        security_profile=profile,  # type: ignore[arg-type]
        tls_cert=str(pki / "server.pem"),
        tls_key=str(pki / "server.key"),
        tls_client_ca=str(pki / "ca.pem") if profile == 3 else None,
    )


async def test_profile_2_tls_with_basic_auth(nursery: trio.Nursery, pki: Path) -> None:
    running = await start_listener(nursery, config(pki, 2))
    assert running.scheme == "wss"
    auth = {"Authorization": "Basic " + base64.b64encode(f"CP16:{PASSWORD}".encode()).decode()}
    with trio.fail_after(15):
        cp = await running.connect("CP16", V16, headers=auth, ssl_context=client_context(pki))
        try:
            beat = await trio.to_thread.run_sync(cp.call, call.Heartbeat())
            assert beat.current_time
        finally:
            await trio.to_thread.run_sync(cp.stop)
        with pytest.raises(InvalidStatus) as rejected:
            await running.connect("CP16", V16, ssl_context=client_context(pki))
        assert rejected.value.response.status_code == 401
    nursery.cancel_scope.cancel()


async def test_profile_3_mutual_tls_checks_the_certificate_name(
    nursery: trio.Nursery, pki: Path
) -> None:
    running = await start_listener(nursery, config(pki, 3))
    with trio.fail_after(15):
        cp = await running.connect("CP16", V16, ssl_context=client_context(pki, "CP16"))
        try:
            assert (await trio.to_thread.run_sync(cp.call, call.Heartbeat())).current_time
        finally:
            await trio.to_thread.run_sync(cp.stop)
        with pytest.raises(InvalidStatus) as rejected:
            await running.connect("CP16", V16, ssl_context=client_context(pki, "CP201"))
        assert rejected.value.response.status_code == 403
        # TLS 1.3: the client finishes first, then the server aborts for the missing certificate.
        with pytest.raises((ssl.SSLError, OSError, InvalidHandshake)):
            await running.connect("CP16", V16, ssl_context=client_context(pki))
        # The listener survived the failed handshakes.
        cp = await running.connect("CP16", V16, ssl_context=client_context(pki, "CP16"))
        await trio.to_thread.run_sync(cp.stop)
    nursery.cancel_scope.cancel()

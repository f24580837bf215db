"""The proxy's credentials towards the CSMS: Basic auth (security profiles 1 and 2), TLS with
the operator's CA, client certificates (profile 3); the test CSMS checks each."""

from __future__ import annotations

import base64
import functools
import gc
import logging
import ssl
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest
import trio
from ocpp.v16 import call as call16
from ocpp.v201 import call as call201

from hubgate.backoff import Backoff
from hubgate.cloud.credentials import CsmsAuth
from hubgate.cloud.upstream import UpstreamLink
from hubgate.config.services import Csms
from hubgate.ocpp.session import SessionLimits
from hubgate.ocpp.versions import OcppVersion
from tests.support.csms import CsmsThread
from tests.support.proxy import (
    GATEWAY,
    HUBGATE,
    Proxied,
    check_replayed,
    open_proxied,
    outage_script,
    proxy_site,
)

V16, V201 = OcppVersion.V16, OcppVersion.V201
SITE_PASSWORD = "site-default-password-1"
CP16_PASSWORD = "cp16-own-password-2345"
PASSWORD_ENV = "HUBGATE_TEST_CSMS_PASSWORD"


def csms_with_passwords(ssl_context: ssl.SSLContext | None = None) -> CsmsThread:
    """The proxy tests' CSMS, requiring each identity's password."""
    passwords = {GATEWAY: SITE_PASSWORD, "CP201": SITE_PASSWORD, "CP16": CP16_PASSWORD}
    return CsmsThread(
        accepted={"TAG-OK"}, heartbeat_s=123, passwords=passwords, ssl_context=ssl_context
    )


def server_context(pki: Path, *, client_certificates: bool = False) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(pki / "server.pem", pki / "server.key")
    if client_certificates:
        context.verify_mode = ssl.CERT_REQUIRED
        context.load_verify_locations(pki / "ca.pem")
    return context


async def boot16(env: Proxied, identity: str) -> int:
    """Connect a 1.6 charger and boot it; the interval it was answered with."""
    cp = await env.connect(identity, V16)
    await env.online(identity)  # else the boot may be answered locally
    boot = call16.BootNotification(charge_point_model="M", charge_point_vendor="V")
    answer = await env.call(cp, boot)
    await trio.to_thread.run_sync(cp.stop)
    return int(answer.interval)


async def test_basic_auth_a_wrong_password_is_retried_and_the_queue_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv(PASSWORD_ENV, SITE_PASSWORD)
    cp16_file = tmp_path / "cp16.password"
    cp16_file.write_text("not-the-password-000\n")
    with trio.fail_after(30):
        async with open_proxied(
            tmp_path,
            csms=csms_with_passwords(),
            security_profile=1,
            password_env=PASSWORD_ENV,
            chargers={"CP16": {"password_file": str(cp16_file)}},
        ) as env:
            cp201 = await env.connect("CP201", V201)
            await env.online("CP201")
            station = {"model": "M", "vendor_name": "V"}
            boot = await env.call(
                cp201, call201.BootNotification(charging_station=station, reason="PowerUp")
            )
            assert boot.interval == 123  # the CSMS's answer: the site password was accepted
            await trio.to_thread.run_sync(cp201.stop)

            cp = await env.connect("CP16", V16)
            ids = await trio.to_thread.run_sync(
                outage_script, cp, 3, datetime(2026, 11, 1, tzinfo=UTC)
            )
            await trio.to_thread.run_sync(env.csms.wait_refused, "CP16", 3, 10)  # retried
            assert not env.proxy.chargers["CP16"].upstream.online
            assert env.csms.calls("CP16") == []  # answered locally, queued

            cp16_file.write_text(CP16_PASSWORD + "\n")  # read again at the next attempt
            await trio.to_thread.run_sync(env.csms.wait_delivered, {"CP16": ids[-1]}, 10)
            assert check_replayed(env, "CP16", ids) == 0  # in order, none lost
            await trio.to_thread.run_sync(cp.stop)
    logged = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("hubgate"))
    assert "CP16: the CSMS rejected the connection: HTTP 401" in logged
    for secret in (SITE_PASSWORD, CP16_PASSWORD, "not-the-password-000"):
        assert secret not in logged
        assert base64.b64encode(secret.encode()).decode()[:12] not in logged


async def test_profile_2_trusts_the_configured_ca_only(
    tmp_path: Path, pki: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    (tmp_path / "no-ca").mkdir()
    monkeypatch.setenv(PASSWORD_ENV, SITE_PASSWORD)
    csms = csms_with_passwords(server_context(pki))
    settings = {"security_profile": 2, "password_env": PASSWORD_ENV}
    with trio.fail_after(30):
        async with open_proxied(tmp_path, csms=csms, tls_ca=str(pki / "ca.pem"), **settings) as env:
            assert env.proxy.csms.url.startswith("wss://")
            assert await boot16(env, "CP201") == 123  # through TLS, with the site password
            assert env.csms.calls("CP201", "BootNotification")
        # The same CSMS without its CA: the system's CAs do not know it, nothing connects.
        arrivals = len(csms.arrivals)
        async with open_proxied(tmp_path / "no-ca", csms=csms, **settings) as env:
            cp = await env.connect("CP16", V16)
            link = await env.link("CP16")
            await link.attempted.wait()
            assert not link.online
            await trio.to_thread.run_sync(cp.stop)
        assert len(csms.arrivals) == arrivals
    assert "CERTIFICATE_VERIFY_FAILED" in caplog.text


async def test_profile_3_presents_each_chargers_client_certificate(
    tmp_path: Path, pki: Path
) -> None:
    csms = CsmsThread(ssl_context=server_context(pki, client_certificates=True))
    own = {"tls_client_cert": str(pki / "CP16.pem"), "tls_client_key": str(pki / "CP16.key")}
    with trio.fail_after(30):
        async with open_proxied(
            tmp_path,
            csms=csms,
            security_profile=3,
            tls_ca=str(pki / "ca.pem"),
            tls_client_cert=str(pki / "CP201.pem"),
            tls_client_key=str(pki / "CP201.key"),
            chargers={"CP16": own},
        ) as env:
            assert await boot16(env, "CP16") == 300
            assert await boot16(env, "CP16-0") == 300  # with the site's certificate
            assert csms.peer_names["CP16"] == "CP16"
            assert csms.peer_names["CP16-0"] == "CP201"


async def test_a_tls_handshake_cut_short_closes_its_socket(pki: Path) -> None:
    """A CSMS that takes the TCP connection but never answers the TLS handshake: the
    attempt times out and closes its socket then (the garbage collector closing it later
    warned about it in whichever test was running)."""
    closed = trio.Event()

    async def silent(stream: trio.SocketStream) -> None:
        while await stream.receive_some():  # the ClientHello, unanswered
            pass
        closed.set()

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            listeners = await nursery.start(
                functools.partial(trio.serve_tcp, host="127.0.0.1"), silent, 0
            )
            port = listeners[0].socket.getsockname()[1]
            csms = Csms(url=f"wss://127.0.0.1:{port}/ocpp", tls_ca=str(pki / "ca.pem"))
            link = UpstreamLink(
                csms.url,
                "CP16",
                V16,
                {},
                auth=CsmsAuth(csms),
                backoff=Backoff(initial_s=60.0, maximum_s=60.0),
                limits=SessionLimits(),
                connect_timeout_s=0.2,
            )
            nursery.start_soon(link.run)
            await link.attempted.wait()
            gc.disable()  # the socket is closed by the link, not by a collection
            try:
                await closed.wait()
            finally:
                gc.enable()
            nursery.cancel_scope.cancel()
    gc.collect()  # an unclosed socket would warn now (pytest: an error)


def test_serve_stops_on_a_missing_tls_file(tmp_path: Path) -> None:
    site = proxy_site(tmp_path)
    missing = tmp_path / "missing-ca.pem"
    site.write_text(
        site.read_text().replace('url = "ws://127.0.0.1:1/unused"', 'url = "wss://127.0.0.1:1/x"')
        + f'security_profile = 3\ntls_ca = "{missing}"\n'
        f'tls_client_cert = "{missing}"\ntls_client_key = "{missing}"\n'
    )
    done = subprocess.run(
        [HUBGATE, "ocpp", "serve", str(site), "--port", "0"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 1
    assert (
        done.stderr
        == f"hubgate: error: [csms] TLS files {missing}, {missing}, {missing}: [Errno 2] No such file or directory\n"
    )

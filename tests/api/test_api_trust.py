"""What the API checks before the app (issue 19, item 7): the Host header, the token of a
request with a body before the body is read, the body's size; HTTPS with client
certificates."""

from __future__ import annotations

import ssl
from pathlib import Path

import httpx
import pytest
import trio

from hubgate.api.guard import TrustedHosts
from hubgate.config.services import Api
from tests.support.api import AUTH, TOKEN, RunningApi, small_site, start_api

BIG = 100_000_000
"""The issue's unauthenticated bodies: 100 MB each."""


def port_of(api: RunningApi) -> int:
    port = api.client.base_url.port
    assert port is not None
    return port


async def raw_request(port: int, head: str, body: bytes = b"") -> tuple[int, bytes, bool]:
    """Send `head` (and `body`) on a fresh connection; the status, the whole answer and
    whether the server closed the connection after it."""
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    async with stream:
        await stream.send_all(head.encode() + b"\r\n\r\n" + body)
        answer = b""
        while b"\r\n\r\n" not in answer:
            chunk = await stream.receive_some(65536)
            assert chunk, answer
            answer += chunk
        header, _, rest = answer.partition(b"\r\n\r\n")
        length = next(
            int(line.split(b":", 1)[1])
            for line in header.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        )
        while len(rest) < length:
            rest += await stream.receive_some(65536)
        closed = False
        try:
            closed = await stream.receive_some(1) == b""
        except trio.BrokenResourceError:
            closed = True
        return int(header.split(b" ")[1]), header + b"\r\n\r\n" + rest, closed


async def test_a_body_without_the_token_is_refused_before_it_is_read(api: RunningApi) -> None:
    """Only the head of a 100 MB request goes out: the answer comes without the body."""
    head = (
        f"PUT /api/v1/limits/site HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Content-Type: application/json\r\nContent-Length: {BIG}"
    )
    with trio.fail_after(10):
        status, answer, closed = await raw_request(port_of(api), head)
    assert status == 401
    assert b"www-authenticate: Bearer" in answer
    assert closed  # the rest of the body is not waited for
    wrong = head.replace("Content-Type", f"Authorization: Bearer {'x' * 20}\r\nContent-Type")
    with trio.fail_after(10):
        status, _, closed = await raw_request(port_of(api), wrong)
    assert status == 401
    assert closed


async def test_a_body_over_the_limit_is_413_declared_or_chunked(api: RunningApi) -> None:
    declared = (
        f"PUT /api/v1/limits/site HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {TOKEN}"
        f"\r\nContent-Type: application/json\r\nContent-Length: {BIG}"
    )
    with trio.fail_after(10):
        status, _, closed = await raw_request(port_of(api), declared)
    assert status == 413
    assert closed
    chunk = b"x" * 40_000
    chunked_body = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(3))
    chunked = declared.replace(f"Content-Length: {BIG}", "Transfer-Encoding: chunked")
    with trio.fail_after(10):
        status, _, closed = await raw_request(port_of(api), chunked, chunked_body)
    assert status == 413
    small = await api.client.put(
        "/api/v1/limits/site", json={"phase_a": [10, 10, 10], "lease_s": 5}, headers=AUTH
    )
    assert small.status_code == 200


@pytest.mark.parametrize(
    ("host", "answered"),
    [
        ("127.0.0.1", True),
        ("127.0.0.1:8080", True),
        ("10.1.2.3:8080", True),
        ("[::1]:8080", True),
        ("localhost:8080", True),
        ("LOCALHOST", True),
        ("gateway-7", True),  # this machine's name
        ("charging.depot.example", True),  # trusted_hosts
        ("anything.site.lan", True),  # *.site.lan
        ("site.lan", False),
        ("attacker.example", False),
        ("127.0.0.1.attacker.example:8080", False),
        ("", False),
    ],
)
def test_trusted_hosts(host: str, answered: bool) -> None:
    api = Api(trusted_hosts=("charging.depot.example", "*.site.lan"))
    assert TrustedHosts(api, machine="gateway-7").allows(host) is answered


async def test_an_untrusted_host_header_is_400_even_for_open_reads(api: RunningApi) -> None:
    """A page on another domain that DNS rebinding points here gets nothing."""
    refused = await api.client.get("/api/v1/health", headers={"Host": "attacker.example"})
    assert refused.status_code == 400
    assert "trusted_hosts" in refused.json()["detail"]
    assert (await api.client.get("/api/v1/health", headers={"Host": "localhost"})).status_code in (
        200,
        503,
    )


def client_context(pki: Path, certificate: str | None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(pki / "ca.pem"))
    if certificate is not None:
        context.load_cert_chain(pki / f"{certificate}.pem", pki / f"{certificate}.key")
    return context


async def test_https_with_client_certificates(
    nursery: trio.Nursery, examples_dir: Path, pki: Path
) -> None:
    api = Api(
        port=0,
        token=TOKEN,
        tls_cert=str(pki / "server.pem"),
        tls_key=str(pki / "server.key"),
        tls_client_ca=str(pki / "ca.pem"),
    )
    running = await start_api(nursery, small_site(examples_dir, api))
    url = f"https://localhost:{port_of(running)}/api/v1/health"
    with trio.fail_after(20):
        async with httpx.AsyncClient(verify=client_context(pki, "CP16")) as client:
            assert (await client.get(url)).status_code in (200, 503)
        async with httpx.AsyncClient(verify=client_context(pki, None)) as client:
            with pytest.raises((httpx.ConnectError, httpx.ReadError, httpx.RemoteProtocolError)):
                await client.get(url)  # no client certificate: the handshake fails
        async with httpx.AsyncClient(verify=ssl.create_default_context()) as client:
            with pytest.raises(httpx.ConnectError):
                await client.get(url)  # the test CA is not one the system trusts
    await running.client.aclose()
    nursery.cancel_scope.cancel()


async def test_wrong_tokens_are_rate_limited_per_address(api: RunningApi) -> None:
    body = {"phase_a": [10, 10, 10], "lease_s": 5}
    wrong = {"Authorization": "Bearer guess-guess-guess-guess"}
    for _ in range(10):
        response = await api.client.put("/api/v1/limits/site", json=body, headers=wrong)
        assert response.status_code == 401
    refused = await api.client.put("/api/v1/limits/site", json=body, headers=AUTH)
    assert refused.status_code == 429  # the right token is not even checked now
    assert 0 < int(refused.headers["retry-after"]) <= 60
    cleared = await api.client.delete("/api/v1/limits/site", headers=AUTH)  # no body: the route
    assert cleared.status_code == 429

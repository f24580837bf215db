"""The `server` fixture: a running OCPP listener (see tests.support.ocpp_listener); `pki`: a test CA and
certificates made by openssl."""

from __future__ import annotations

import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import trio

from hubgate.ocpp.server import ListenerLimits
from tests.support.ocpp_listener import Running, start_listener
from tests.support.peers import require_peer


@pytest.fixture
async def server(nursery: trio.Nursery) -> AsyncIterator[Running]:
    running = await start_listener(nursery, limits=ListenerLimits(ping_interval_s=0.5))
    yield running
    nursery.cancel_scope.cancel()


CURVE = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]


def openssl(*args: str, cwd: Path) -> None:
    subprocess.run(
        [require_peer("openssl"), *args], cwd=cwd, check=True, capture_output=True, timeout=30
    )


def issue(pki: Path, name: str, subject: str, extensions: str) -> None:
    openssl(
        "req", *CURVE, "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", subject, cwd=pki
    )
    (pki / f"{name}.ext").write_text(extensions)
    openssl(
        "x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
        "-CAcreateserial", "-days", "2", "-out", f"{name}.pem", "-extfile", f"{name}.ext",
        cwd=pki,
    )  # fmt: skip


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A test CA, a server certificate for 127.0.0.1 and client certificates for CP16 and CP201."""
    pki = tmp_path_factory.mktemp("pki")
    openssl(
        "req", "-x509", *CURVE, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
        "-subj", "/O=hubgate test/CN=test CA",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        cwd=pki,
    )  # fmt: skip
    issue(
        pki, "server", "/CN=127.0.0.1", "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n"
    )
    for identity in ("CP16", "CP201"):
        issue(pki, identity, f"/O=hubgate test/CN={identity}", "extendedKeyUsage=clientAuth\n")
    return pki

"""Shared pytest fixtures; `pki`: a test CA and certificates made by openssl."""

from __future__ import annotations

import subprocess
from collections.abc import Generator
from pathlib import Path

import pytest
from hypothesis import settings

from tests.support import peers

ROOT = Path(__file__).resolve().parent.parent

# Hypothesis's default 200 ms deadline per example is a timed assert: on a loaded machine an
# example of a codec comparison took longer and failed a correct test. No property here is
# about speed (bench/ measures that), so no deadline for any of them.
settings.register_profile("hubgate", deadline=None)
settings.load_profile("hubgate")


@pytest.fixture
def examples_dir() -> Path:
    """The repository's `examples/` folder."""
    return ROOT / "examples"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "peers(*programs): the test runs these peer programs (see tests/support/peers.py)",
    )
    config.pluginmanager.register(FailureReportGuard(), "hubgate-failure-report-guard")


class FailureReportGuard:
    """Keeps a failure an ordinary failure when a plugin's `pytest_exception_interact` raises.

    schemathesis's (its plugin is installed, so it sees every failing test, in tests/ and
    bench/) walks an exception group recursively to deduplicate it: a deeply nested group
    ends in RecursionError, which pytest turns into INTERNALERROR and the end of the whole
    session. The failure's own report is already made by then; the hook's error is added to
    it and the session goes on. Registered as a plugin, not a conftest hook, so that it
    wraps the hook for every directory."""

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_exception_interact(
        self, report: pytest.TestReport | pytest.CollectReport
    ) -> Generator[None]:
        try:
            yield
        except Exception as error:  # any plugin's error: reported, the session goes on
            report.sections.append(
                ("pytest_exception_interact", f"a plugin failed on this failure: {error!r}")
            )


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Fail (or skip, when opted out) a test marked `peers(...)` whose peer is missing, before
    its fixtures start and outside Trio, so the message reaches the report whole."""
    for marker in item.iter_markers("peers"):
        for program in marker.args:
            peers.require_peer(program)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Name the peers HUBGATE_SKIP_PEERS skipped: their tests did not run."""
    if peers.skipped:
        counts = ", ".join(f"{p} ({n} tests)" for p, n in sorted(peers.skipped.items()))
        terminalreporter.write_sep("=", f"{peers.SKIP_VARIABLE}: peers skipped", yellow=True)
        terminalreporter.write_line(f"not tested against: {counts}")


CURVE = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]


def openssl(*args: str, cwd: Path) -> None:
    subprocess.run(
        [peers.require_peer("openssl"), *args], cwd=cwd, check=True, capture_output=True, timeout=30
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
    """A test CA, a server certificate for 127.0.0.1 and localhost, and client certificates
    for CP16 and CP201."""
    pki = tmp_path_factory.mktemp("pki")
    openssl(
        "req", "-x509", *CURVE, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
        "-subj", "/O=hubgate test/CN=test CA",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        cwd=pki,
    )  # fmt: skip
    issue(
        pki,
        "server",
        "/CN=127.0.0.1",
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n",
    )
    for identity in ("CP16", "CP201"):
        issue(pki, identity, f"/O=hubgate test/CN={identity}", "extendedKeyUsage=clientAuth\n")
    return pki

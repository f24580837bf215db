"""The `[csms]` credential settings: which combinations are valid, per-identity overrides,
and reading passwords (their source named in errors, never their value)."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from hubgate.cloud.credentials import CredentialError, CsmsAuth, read_password
from hubgate.config.services import Csms, CsmsCredentials

WSS = "wss://csms.example/ocpp"


def csms(**settings: Any) -> Csms:
    return Csms.model_validate({"url": WSS, **settings})


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"url": "ws://csms.example", "security_profile": 2, "password_env": "P"}, "wss://"),
        ({"security_profile": 1}, "needs password_file or password_env"),
        ({"security_profile": 0, "password_env": "P"}, "only security_profile 1 and 2"),
        ({"security_profile": 3, "chargers": {"A": {"password_env": "P"}}}, "only security"),
        ({"security_profile": 3}, "needs tls_client_cert"),
        ({"security_profile": 1, "password_env": "P", "password_file": "f"}, "not both"),
        ({"tls_client_cert": "c.pem"}, "go together"),
    ],
)
def test_invalid_combinations_are_refused(settings: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        csms(**settings)


def test_an_identity_overrides_password_and_certificate_separately() -> None:
    config = csms(
        security_profile=2,
        password_env="SITE",
        tls_client_cert="site.pem",
        tls_client_key="site.key",
        chargers={
            "A": {"password_file": "a.pw"},
            "B": {"tls_client_cert": "b.pem", "tls_client_key": "b.key"},
        },
    )
    assert config.credentials("A") == CsmsCredentials(
        password_file="a.pw", tls_client_cert="site.pem", tls_client_key="site.key"
    )
    assert config.credentials("B") == CsmsCredentials(
        password_env="SITE", tls_client_cert="b.pem", tls_client_key="b.key"
    )
    assert config.credentials("C") == CsmsCredentials(
        password_env="SITE", tls_client_cert="site.pem", tls_client_key="site.key"
    )


def test_passwords_are_read_from_a_file_or_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = tmp_path / "password"
    secret.write_text("from-the-file-0123\r\nignored\n")
    assert read_password(CsmsCredentials(password_file=str(secret))) == "from-the-file-0123"
    monkeypatch.setenv("CSMS_PW", "from-the-environment")
    assert read_password(CsmsCredentials(password_env="CSMS_PW")) == "from-the-environment"
    assert read_password(CsmsCredentials()) is None


def test_an_unreadable_password_names_its_source_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(CredentialError, match=r"cannot read the password file .*missing"):
        read_password(CsmsCredentials(password_file=str(tmp_path / "missing")))
    monkeypatch.delenv("CSMS_PW", raising=False)
    with pytest.raises(CredentialError, match=r"no password in \$CSMS_PW"):
        read_password(CsmsCredentials(password_env="CSMS_PW"))
    empty = tmp_path / "empty"
    empty.write_text("\n")
    with pytest.raises(CredentialError, match=r"no password in .*empty"):
        read_password(CsmsCredentials(password_file=str(empty)))


def test_basic_auth_header_under_profiles_1_and_2_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CSMS_PW", "s3cret-password-16")
    auth = CsmsAuth(csms(url="ws://csms.example", security_profile=1, password_env="CSMS_PW"))
    ((name, value),) = auth.headers("CP/1")
    assert name == b"Authorization"
    assert base64.b64decode(value.removeprefix(b"Basic ")) == b"CP/1:s3cret-password-16"
    assert CsmsAuth(csms(url="ws://csms.example")).headers("CP/1") == []
    only_a = csms(security_profile=1, chargers={"A": {"password_env": "CSMS_PW"}})
    assert CsmsAuth(only_a).headers("A")
    with pytest.raises(CredentialError, match="no password is configured for B"):
        CsmsAuth(only_a).headers("B")


def test_tls_files_are_loaded_at_start(tmp_path: Path) -> None:
    with pytest.raises(OSError, match=r"\[csms\] TLS files .*missing-ca.pem: .*No such file"):
        CsmsAuth(csms(tls_ca=str(tmp_path / "missing-ca.pem")))

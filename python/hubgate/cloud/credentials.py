"""How hubgate's upstream connections authenticate to the CSMS (OCPP security profiles).

Profile 1 sends HTTP Basic auth (user: the identity, password: its own or the site's),
profile 2 does so over TLS, profile 3 presents a TLS client certificate instead. A `wss://`
CSMS's certificate must chain to `tls_ca` (or the system's CAs). Passwords are read from
their file or environment variable at each connection attempt, so a rotated password
applies at the next one; they are never logged or kept.
"""

from __future__ import annotations

import base64
import os
import ssl
from pathlib import Path

from hubgate.config.services import Csms, CsmsCredentials


class CredentialError(Exception):
    """A password that cannot be read (the message names its source, never its value)."""


def read_password(credentials: CsmsCredentials) -> str | None:
    """The password from its file (first line) or environment variable; None if none is set."""
    if credentials.password_file is not None:
        path = Path(credentials.password_file)
        try:
            lines = path.read_text().splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise CredentialError(f"cannot read the password file {path}: {exc}") from None
        password = lines[0] if lines else ""
    elif credentials.password_env is not None:
        password = os.environ.get(credentials.password_env, "")
    else:
        return None
    if not password:
        source = credentials.password_file or f"${credentials.password_env}"
        raise CredentialError(f"no password in {source}")
    return password


class CsmsAuth:
    """The credentials of every upstream connection of one CSMS configuration."""

    def __init__(self, csms: Csms) -> None:
        """Loads the TLS files now (`OSError` if one cannot be read), passwords later."""
        self.csms = csms
        self._contexts: dict[tuple[str | None, str | None], ssl.SSLContext] = {}
        if csms.url.startswith("wss://"):
            for credentials in (csms, *map(csms.credentials, csms.chargers)):
                self._context(credentials)

    def ssl_context(self, identity: str) -> ssl.SSLContext:
        """TLS for `identity`: the CSMS's CA and, if it has one, its client certificate."""
        return self._context(self.csms.credentials(identity))

    def _context(self, credentials: CsmsCredentials) -> ssl.SSLContext:
        key = (credentials.tls_client_cert, credentials.tls_client_key)
        if key not in self._contexts:
            try:
                context = ssl.create_default_context(cafile=self.csms.tls_ca)
                if credentials.tls_client_cert is not None:
                    context.load_cert_chain(credentials.tls_client_cert, credentials.tls_client_key)
            except OSError as exc:
                files = ", ".join(f for f in (self.csms.tls_ca, *key) if f is not None)
                raise OSError(f"[csms] TLS files {files}: {exc}") from exc
            self._contexts[key] = context
        return self._contexts[key]

    def headers(self, identity: str) -> list[tuple[bytes, bytes]]:
        """The opening handshake's extra headers: Basic auth under profiles 1 and 2.
        Raises `CredentialError` when the password cannot be read."""
        if self.csms.security_profile not in (1, 2):
            return []
        password = read_password(self.csms.credentials(identity))
        if password is None:
            raise CredentialError(f"no password is configured for {identity}")
        token = base64.b64encode(f"{identity}:{password}".encode()).decode("ascii")
        return [(b"Authorization", f"Basic {token}".encode("ascii"))]

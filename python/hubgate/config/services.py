"""The site file's service tables: the OCPP listener, the operator's CSMS, the Modbus
server, the API, MQTT telemetry, the records file, the cluster and standalone authorization."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AwareDatetime, BeforeValidator, Field, model_validator

from hubgate.config.base import Identifier, ListenPort, Seconds, Strict, TcpPort

FromCharger = Literal["charger"]
"""A `[csms]` offline rule that follows each charger's own setting."""


class OcppServer(Strict):
    """The OCPP WebSocket listener for charge points."""

    host: str = "127.0.0.1"
    port: ListenPort = 9000
    security_profile: Literal[0, 1, 2, 3] = 0
    tls_cert: str | None = None
    tls_key: str | None = None
    tls_client_ca: str | None = None
    capabilities_path: str | None = Field(
        default=None,
        description="JSON file keeping each charger's discovered capabilities across restarts",
    )

    @model_validator(mode="after")
    def _tls_files(self) -> OcppServer:
        if self.security_profile >= 2 and (self.tls_cert is None or self.tls_key is None):
            raise ValueError(f"security_profile {self.security_profile} needs tls_cert and tls_key")
        if self.security_profile == 3 and self.tls_client_ca is None:
            raise ValueError("security_profile 3 needs tls_client_ca")
        return self


class CsmsCredentials(Strict):
    """What one identity presents to the CSMS: a Basic-auth password (security profiles 1
    and 2; read at each connection attempt, never logged) and a TLS client certificate."""

    password_file: str | None = Field(
        default=None, description="File holding the password (one line)"
    )
    password_env: str | None = Field(
        default=None, min_length=1, description="Environment variable holding the password"
    )
    tls_client_cert: str | None = Field(default=None, description="Client certificate (PEM)")
    tls_client_key: str | None = Field(default=None, description="Its private key (PEM)")

    @model_validator(mode="after")
    def _one_source_each(self) -> CsmsCredentials:
        if self.password_file is not None and self.password_env is not None:
            raise ValueError("give password_file or password_env, not both")
        if (self.tls_client_cert is None) != (self.tls_client_key is None):
            raise ValueError("tls_client_cert and tls_client_key go together")
        return self

    @property
    def has_password(self) -> bool:
        """Whether a password source is set."""
        return self.password_file is not None or self.password_env is not None


class Csms(CsmsCredentials):
    """The operator's cloud CSMS that hubgate proxies to. The credential fields are the
    site's default; `chargers` overrides them per OCPP identity."""

    url: str = Field(pattern=r"^wss?://", description="ws:// or wss:// base URL")
    identity: str | None = Field(default=None, description="The gateway's own identity")
    queue_path: str = Field(default="hubgate-queue.sqlite3", description="Store-and-forward file")
    security_profile: Literal[0, 1, 2, 3] = Field(
        default=0,
        description="OCPP security profile: 0 none, 1 Basic auth, 2 Basic auth over TLS, "
        "3 TLS client certificate",
    )
    tls_ca: str | None = Field(
        default=None, description="CA file the CSMS's certificate must chain to (default: system)"
    )
    chargers: dict[str, CsmsCredentials] = Field(
        default_factory=dict, description="Per-identity credentials, overriding the defaults"
    )
    local_authorize_offline: bool | FromCharger = Field(
        default="charger",
        description="While the CSMS is away, id tokens the local list or cache accepts may "
        "charge (OCPP LocalAuthorizeOffline); false: they count as unknown; the default "
        "'charger': as each charger's own setting says (true when it does not say)",
    )
    allow_offline_tx_for_unknown_id: bool | FromCharger = Field(
        default="charger",
        description="While the CSMS is away, id tokens in neither the local list nor the cache "
        "may charge (OCPP AllowOfflineTxForUnknownId, 2.x OfflineTxForUnknownIdEnabled); "
        "false: they are refused; the default 'charger': as each charger's own setting says "
        "(false when it does not say)",
    )
    stop_transaction_on_invalid_id: bool = Field(
        default=True,
        description="When the CSMS refuses the id token of a transaction started while it "
        "was away, hubgate stops it at the charger (OCPP StopTransactionOnInvalidId)",
    )

    @model_validator(mode="after")
    def _profile_needs(self) -> Csms:
        profile = self.security_profile
        every = [self, *self.chargers.values()]
        if profile >= 2 and not self.url.startswith("wss://"):
            raise ValueError(f"security_profile {profile} needs a wss:// url")
        if profile in (1, 2) and not any(c.has_password for c in every):
            raise ValueError(f"security_profile {profile} needs password_file or password_env")
        if profile in (0, 3) and any(c.has_password for c in every):
            raise ValueError("only security_profile 1 and 2 send a password")
        if profile == 3 and not any(c.tls_client_cert for c in every):
            raise ValueError("security_profile 3 needs tls_client_cert and tls_client_key")
        return self

    def credentials(self, identity: str) -> CsmsCredentials:
        """What `identity` presents: its own password and certificate, else the defaults."""
        own = self.chargers.get(identity)
        password = own if own is not None and own.has_password else self
        cert = own if own is not None and own.tls_client_cert is not None else self
        return CsmsCredentials(
            password_file=password.password_file,
            password_env=password.password_env,
            tls_client_cert=cert.tls_client_cert,
            tls_client_key=cert.tls_client_key,
        )


def _networks(entries: object) -> object:
    """Each entry must be an address or a network (`10.0.0.0/8`, `::1`)."""
    if isinstance(entries, list | tuple):
        for entry in entries:
            try:
                ipaddress.ip_network(str(entry), strict=False)
            except ValueError:
                raise ValueError(
                    f"{entry!r} is not an IP address or network (e.g. 192.168.1.20, 10.0.0.0/8)"
                ) from None
    return entries


Networks = Annotated[tuple[str, ...], BeforeValidator(_networks)]


class ModbusServer(Strict):
    """The Modbus TCP server for site controllers (PLC, SCADA, grid-operator box)."""

    host: str = "127.0.0.1"
    port: ListenPort = 5020
    unit: int = Field(default=1, ge=0, le=255)
    allow_writes_from: Networks = Field(
        default=("127.0.0.1",), description="Addresses or networks that may write (and read)"
    )
    allow_reads_from: Networks | None = Field(
        default=None,
        description="Addresses or networks that may read; others are disconnected at once. "
        "Not set: any address may read",
    )
    lease_s: Seconds = Field(default=60.0, description="A written limit expires after this")
    max_connections: int = Field(
        default=16,
        ge=1,
        le=1024,
        description="Open connections at most; one more closes the one quiet longest",
    )
    idle_timeout_s: Seconds = Field(
        default=60.0, description="A connection that sends no request for this long is closed"
    )


class Api(Strict):
    """The operator API and dashboard."""

    host: str = "127.0.0.1"
    port: ListenPort = 8080
    token: str | None = Field(default=None, min_length=16, description="Bearer token for writes")
    open_reads: bool = True
    trusted_hosts: tuple[str, ...] = Field(
        default=(),
        description="Host names clients may use besides IP addresses, localhost and this "
        "machine's name (`*.example.com` for every subdomain); other Host headers get 400",
    )
    tls_cert: str | None = Field(default=None, description="Certificate chain (PEM): serve HTTPS")
    tls_key: str | None = Field(default=None, description="Its private key (PEM)")
    tls_client_ca: str | None = Field(
        default=None, description="CA (PEM) that must have signed every client's certificate"
    )
    max_connections: int = Field(
        default=64,
        ge=1,
        le=4096,
        description="Open connections at most; one more closes the one quiet longest",
    )
    max_body_bytes: int = Field(
        default=65_536, ge=1024, le=16_777_216, description="Larger request bodies get 413"
    )

    @model_validator(mode="after")
    def _token_for_closed_reads(self) -> Api:
        if not self.open_reads and self.token is None:
            raise ValueError("open_reads = false needs a token (reads then need it too)")
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("tls_cert and tls_key go together")
        if self.tls_client_ca is not None and self.tls_cert is None:
            raise ValueError(
                "tls_client_ca needs tls_cert and tls_key (client certificates need TLS)"
            )
        return self


class Mqtt(Strict):
    """MQTT telemetry to a fleet broker (topic scheme in docs/mqtt.md)."""

    host: str = Field(min_length=1, description="Broker host name or address")
    port: TcpPort = 1883
    client_id: Identifier = Field(
        description="MQTT client id; also the site's topic level: <topic_prefix>/<client_id>/..."
    )
    topic_prefix: str = Field(
        default="hubgate",
        pattern=r"^[^/+#\s]+(/[^/+#\s]+)*$",
        description="First topic level(s), without wildcards or a trailing slash",
    )
    username: str | None = None
    password: str | None = Field(default=None, description="Needs a username (MQTT 3.1.1)")
    keepalive_s: int = Field(default=30, ge=5, le=3600, description="MQTT keepalive")
    buffer_size: int = Field(
        default=10_000, ge=1, le=1_000_000, description="Messages kept while the broker is away"
    )
    tls: bool = Field(
        default=False,
        description="Connect over TLS (usually port 8883), verifying the broker's certificate "
        "and name against tls_ca, or the system's CAs",
    )
    tls_ca: str | None = Field(default=None, description="CA (PEM) that signed the broker's cert")
    tls_client_cert: str | None = Field(default=None, description="Client certificate (PEM)")
    tls_client_key: str | None = Field(default=None, description="Its private key (PEM)")

    @model_validator(mode="after")
    def _password_needs_username(self) -> Mqtt:
        if self.password is not None and self.username is None:
            raise ValueError("'password' needs 'username' (MQTT 3.1.1)")
        if (self.tls_client_cert is None) != (self.tls_client_key is None):
            raise ValueError("tls_client_cert and tls_client_key go together")
        if not self.tls and (self.tls_ca or self.tls_client_cert):
            raise ValueError("tls_ca and tls_client_cert need tls = true")
        return self


RECORDS_FILE = "hubgate-records.sqlite3"


class Records(Strict):
    """The operator's records: the event log and the charging sessions (one SQLite file)."""

    path: str | None = Field(
        default=None,
        description=f"SQLite file; default for `hubgate run`: {RECORDS_FILE} beside the CSMS "
        "queue, else in the working directory",
    )
    event_max_age_days: float = Field(
        default=90.0, gt=0, le=36_500, description="Events older than this are removed"
    )
    event_max_count: int = Field(
        default=100_000,
        ge=100,
        le=100_000_000,
        description="At most this many events; info goes first, warnings only when they "
        "alone are more",
    )

    def default_path(self, csms: Csms | None) -> str:
        """Where the file is when `path` is not set: beside the CSMS queue, else here."""
        if self.path is not None:
            return self.path
        if csms is not None:
            return str(Path(csms.queue_path).parent / RECORDS_FILE)
        return RECORDS_FILE


class Cluster(Strict):
    """Two gateways, one site: leadership and the replicated queue on a NATS JetStream
    cluster (docs/ha.md). Each gateway's site file names its own `node`."""

    site_id: Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")] = Field(
        description="The site on NATS: the lease key and the subjects hubgate.<site_id>.>"
    )
    node: Identifier = Field(description="This gateway's name (each gateway its own)")
    servers: tuple[Annotated[str, Field(pattern=r"^(nats|tls)://")], ...] = Field(
        min_length=1, description="NATS URLs to connect to, nats://host:port or tls://host:port"
    )
    replicas: Literal[1, 3, 5] = Field(
        default=3, description="JetStream replicas of the lease bucket (3 on a real site)"
    )
    lease_s: Seconds = Field(
        default=3.0, description="Leader lease: renewed every lease_s / 3, expires after lease_s"
    )
    ocpp_urls: tuple[Annotated[str, Field(pattern=r"^wss?://")], ...] = Field(
        default=(),
        description="Every gateway's OCPP base URL in priority order (the chargers' "
        "network connection profiles)",
    )
    user: str | None = Field(default=None, description="NATS user name")
    password_env: str | None = Field(
        default=None, description="Environment variable holding the NATS password"
    )
    creds_file: str | None = Field(default=None, description="NATS credentials file (.creds)")
    tls_ca: str | None = Field(
        default=None, description="CA the NATS servers' certificates chain to"
    )
    fleet_token_env: str | None = Field(
        default=None,
        description="Environment variable holding the token fleet limit leases must carry "
        "(none: fleet limits are refused)",
    )


TokenId = Annotated[
    str,
    Field(
        min_length=1,
        max_length=36,
        pattern=r"^[!-~]+$",
        description="An idTag (1.6, up to 20 characters) or idToken (2.x, up to 36); "
        "printable ASCII, compared without regard to case",
    ),
]
GroupName = Annotated[
    str,
    Field(
        min_length=1,
        max_length=20,
        pattern=r"^[!-~]+$",
        description="Sent as the 1.6 parentIdTag / 2.x groupIdToken (up to 20 characters)",
    ),
]


class AuthGroup(Strict):
    """A group of id tokens (a fleet, a company): blocked or expiring together."""

    expires: AwareDatetime | None = Field(
        default=None, description="From then on every member counts as Expired"
    )
    blocked: bool = Field(default=False, description="Every member is Blocked")


class AuthToken(Strict):
    """An id token that may charge: an RFID card's UID, an app's token, ..."""

    id: TokenId
    group: GroupName | None = Field(default=None, description="One of [authorization.groups]")
    expires: AwareDatetime | None = Field(
        default=None, description="From then on it counts as Expired (with its offset, e.g. Z)"
    )
    blocked: bool = Field(default=False, description="Known, but may not charge")


class Authorization(Strict):
    """Who may charge when hubgate is the chargers' CSMS (a site without [csms])."""

    unknown: Literal["accept", "reject"] = Field(
        default="reject",
        description="What a token found neither here nor in tokens_file gets: accept lets "
        "everyone charge (as a site without this table does)",
    )
    groups: dict[GroupName, AuthGroup] = Field(default_factory=dict)
    tokens: tuple[AuthToken, ...] = ()
    tokens_file: str | None = Field(
        default=None,
        description="TOML file of further [[tokens]], kept by `hubgate auth` and the API "
        "(relative to the site file; created on the first change)",
    )

"""The daemon's configuration: one TOML file, validated completely at start-up.

An invalid file never half-starts the daemon: :func:`load_config` raises
:class:`ConfigError` whose message names every offending key, the value found
(unless the key holds a secret) and what is expected. The CLI prints that
message and exits with status 2.

Secrets (database passwords, key-store master keys, ...) may be written inline
but never have to be: any secret field also accepts ``{ env = "NAME" }`` or
``{ file = "/path" }``, resolved while the file is validated.
"""

from __future__ import annotations

import ipaddress
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Final, Literal, Self, TypeVar, get_args, get_origin

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from devices.registry.settings import DevicesSettings
from gateway.audit.settings import AuditConfig
from gateway.cardservices.settings import PinSettings
from gateway.issuance.settings import ProductionConfig
from gateway.operations.settings import BusinessConfig
from gateway.upstream.settings import UpstreamSettings

__all__ = [
    "AuditConfig",
    "BusinessConfig",
    "Config",
    "ConfigError",
    "DatabaseConfig",
    "KeyStoreConfig",
    "LoggingConfig",
    "SecurityConfig",
    "ServerConfig",
    "SupervisorConfig",
    "TerminalConfig",
    "TlsConfig",
    "load_config",
    "load_model",
    "parse_config",
]

DEFAULT_DATA_DIR = Path("/var/lib/branchd")
M = TypeVar("M", bound=BaseModel)


class ConfigError(Exception):
    """The configuration file cannot be used; ``problems`` lists every reason."""

    def __init__(self, source: str, problems: list[str]) -> None:
        """Keep the file name and one line per problem."""
        self.source = source
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"invalid configuration {source}:\n{lines}")


def _resolve_secret(value: object, info: ValidationInfo) -> object:
    """Turn ``{env = NAME}`` / ``{file = PATH}`` into the secret's text."""
    if not isinstance(value, Mapping):
        return value
    environ: Mapping[str, str] = (info.context or {}).get("environ", os.environ)
    if set(value) == {"env"} and isinstance(value["env"], str):
        name = value["env"]
        if name not in environ:
            raise ValueError(f"environment variable {name} is not set")
        return environ[name]
    if set(value) == {"file"} and isinstance(value["file"], str):
        path = Path(value["file"])
        try:
            mode = path.stat().st_mode
            text = path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ValueError(f"cannot read secret file {path}: {exc.strerror}") from None
        if mode & 0o077:
            raise ValueError(
                f"secret file {path} is accessible by group or others "
                f"(mode {mode & 0o777:04o}); make it 0600 or 0400"
            )
        return text
    raise ValueError('expected a string, { env = "NAME" } or { file = "/path" }')


#: A secret: inline string, or a table naming an environment variable or a file.
Secret = Annotated[SecretStr, BeforeValidator(_resolve_secret)]


#: The shortest bearer token accepted (guessing one must stay out of reach).
_SHORTEST_TOKEN: Final = 32


def _long_token(token: SecretStr | None, what: str) -> SecretStr | None:
    """``token`` unless it is shorter than :data:`_SHORTEST_TOKEN` (the value is never named)."""
    if token is not None and len(token.get_secret_value()) < _SHORTEST_TOKEN:
        raise ValueError(f"{what} must be at least {_SHORTEST_TOKEN} characters")
    return token


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class BranchConfig(_Section):
    """Who this daemon is."""

    id: str = Field(pattern=r"^[0-9A-Za-z_-]{1,32}$", description="branch code")
    name: str = ""
    region: str = Field(pattern=r"^\d{6}$", description="AAB301 region code, 6 digits")


class TlsConfig(_Section):
    """HTTPS with mutual authentication for the teller API (PEM files)."""

    cert: Path
    key: Path
    ca: Path
    #: Refuse clients without a certificate from ``ca`` (teller terminals, kiosks).
    require_client_cert: bool = True

    def resolved(self, base: Path) -> TlsConfig:
        """The same settings with relative paths taken relative to ``base``."""
        return self.model_copy(
            update={name: base / getattr(self, name) for name in ("cert", "key", "ca")}
        )


class ServerConfig(_Section):
    """The teller-facing HTTP server."""

    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    shutdown_timeout: float = Field(default=30.0, gt=0, le=600)
    #: Serve HTTPS with mutual TLS; plain HTTP when absent (a loopback-only setup).
    tls: TlsConfig | None = None
    #: Serve the teller API in plain HTTP (or TLS without client certificates) on an
    #: address other than loopback anyway: bearer tokens then cross the LAN in clear.
    #: Refused unless set; logged as a warning at every start when used.
    allow_plain_http: bool = False
    #: secret: the token /metrics, /ops and the details of /readyz ask for (Bearer, or
    #: the password of HTTP Basic); open without it. 32 characters or more.
    ops_token: Secret | None = None

    @field_validator("ops_token")
    @classmethod
    def _long_ops_token(cls, token: SecretStr | None) -> SecretStr | None:
        return _long_token(token, "the ops token")

    @property
    def loopback(self) -> bool:
        """Whether ``host`` is a loopback address (or ``localhost``)."""
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:  # a host name: only ``localhost`` is known to stay on the box
            return False

    @property
    def plain_on_the_network(self) -> bool:
        """Teller credentials would cross the network without mutual TLS."""
        mutual = self.tls is not None and self.tls.require_client_cert
        return not mutual and not self.loopback

    @model_validator(mode="after")
    def _secure_off_loopback(self) -> Self:
        if self.plain_on_the_network and not self.allow_plain_http:
            raise ValueError(
                f"the teller API on {self.host!r} (not loopback) needs [server.tls] with client "
                "certificates (require_client_cert = true); set allow_plain_http = true to "
                "serve it without anyway"
            )
        return self


class DatabaseConfig(_Section):
    """Where the daemon keeps its state."""

    url: Secret | None = None
    busy_timeout_ms: int = Field(default=5000, ge=0, le=600_000)
    pool_size: int = Field(default=5, ge=1, le=100)
    connect_timeout: float = Field(default=10.0, gt=0, le=300)
    #: SQLite only: ``FULL`` (each commit on disk when it returns, survives a power cut)
    #: or ``NORMAL`` (WAL stays consistent; the last commits can be lost on power loss).
    sqlite_synchronous: Literal["FULL", "NORMAL"] = "FULL"

    @field_validator("url")
    @classmethod
    def _known_driver(cls, url: SecretStr | None) -> SecretStr | None:
        if url is None:
            return None
        text = url.get_secret_value()
        if not text.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
            # The value may hold a password: name only its scheme.
            scheme = text.split(":", 1)[0] if ":" in text else "(none)"
            raise ValueError(
                f"scheme {scheme!r} is not supported; expected a URL starting with "
                "'sqlite+aiosqlite://' or 'postgresql+asyncpg://'"
            )
        return url


class LoggingConfig(_Section):
    """How the daemon logs."""

    level: Literal["debug", "info", "warning", "error"] = "info"
    #: ``auto``: readable on a terminal, JSON lines otherwise (as a service).
    format: Literal["auto", "json", "console"] = "auto"


class SupervisorConfig(_Section):
    """Restart policy of background tasks."""

    backoff_initial: float = Field(default=1.0, gt=0, le=3600)
    backoff_max: float = Field(default=60.0, gt=0, le=86400)
    #: A task that ran this long without crashing starts its backoff afresh.
    reset_after: float = Field(default=60.0, gt=0)
    stop_timeout: float = Field(default=10.0, gt=0, le=600)
    #: Seconds between liveness records of the daemon in the database.
    heartbeat_interval: float = Field(default=15.0, gt=0, le=3600)


class SecurityConfig(_Section):
    """Algorithms for hashes, signatures and encryption."""

    #: ``gm``: SM2/SM3/SM4; ``intl``: ECDSA P-256/SHA-256/AES-256-GCM.
    suite: Literal["gm", "intl"] = "gm"


class KeyStoreConfig(_Section):
    """Where the branch's keys live (software store; PKCS#11 tokens in production)."""

    backend: Literal["software"] = "software"
    #: The encrypted key file; default ``<data_dir>/keystore.bin``. Mode 0600 or it is refused.
    path: Path | None = None
    #: secret: the master key as hex (64 hex digits or more).
    master_key: Secret
    #: The key that signs audit checkpoints (created on first start when missing).
    signing_key: str = Field(default="branch-signing", pattern=r"^[A-Za-z0-9._-]{1,64}$")


class TerminalConfig(_Section):
    """One teller terminal, kiosk or operator console allowed to call the API.

    A terminal authenticates with its TLS client certificate (its common name is
    ``certificate_cn``) or, for development, with a bearer ``token``.
    """

    id: str = Field(pattern=r"^[A-Za-z0-9._-]{1,64}$")
    role: Literal["teller", "supervisor", "archive", "kiosk", "ops"]
    certificate_cn: str | None = None
    #: secret: a development bearer token (32 characters or more).
    token: Secret | None = None

    @field_validator("token")
    @classmethod
    def _long_token(cls, token: SecretStr | None) -> SecretStr | None:
        return _long_token(token, "a terminal token")


class Config(_Section):
    """The whole ``branchd.toml``."""

    data_dir: Path = DEFAULT_DATA_DIR
    branch: BranchConfig
    server: ServerConfig = ServerConfig()
    database: DatabaseConfig = DatabaseConfig()
    logging: LoggingConfig = LoggingConfig()
    supervisor: SupervisorConfig = SupervisorConfig()
    security: SecurityConfig = SecurityConfig()
    keystore: KeyStoreConfig | None = None
    business: BusinessConfig = BusinessConfig()
    #: Printers and encoders, local or behind a device agent, and the telemetry broker.
    devices: DevicesSettings | None = None
    terminals: list[TerminalConfig] = []
    #: The provincial platform and the bank: clients, outbox, relay.
    upstream: UpstreamSettings | None = None
    #: Instant issuance: stations (printer + encoder) and the job's rules.
    production: ProductionConfig | None = None
    #: PIN change, reset and unlock at the windows: each window's encoder and PIN pad.
    pin: PinSettings | None = None
    audit: AuditConfig = AuditConfig()

    def audit_branch(self) -> str:
        """The branch id audit anchors are signed for: its topic segment when it has one."""
        return self.devices.branch if self.devices is not None else self.branch.id

    @model_validator(mode="after")
    def _production_needs(self) -> Self:
        production = self.production
        if production is None:
            return self
        problems: list[str] = []
        if self.upstream is None or self.upstream.bank is None:
            problems.append("[production] needs [upstream] with [upstream.bank]")
        if self.keystore is None:
            problems.append("[production] needs [keystore] (personal data is sealed)")
        printers = {p.id for p in self.devices.printers} if self.devices else set()
        encoders = {e.id for e in self.devices.encoders} if self.devices else set()
        for station in production.stations:
            if station.printer not in printers:
                problems.append(
                    f"station {station.name}: no printer {station.printer!r} in [devices]"
                )
            if station.encoder is not None and station.encoder not in encoders:
                problems.append(
                    f"station {station.name}: no encoder {station.encoder!r} in [devices]"
                )
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @field_validator("terminals")
    @classmethod
    def _unique_terminals(cls, terminals: list[TerminalConfig]) -> list[TerminalConfig]:
        ids = [t.id for t in terminals]
        if len(set(ids)) != len(ids):
            raise ValueError("terminal ids must be unique")
        return terminals

    @property
    def keystore_path(self) -> Path:
        """The key store file (``data_dir/keystore.bin`` unless configured)."""
        configured = self.keystore.path if self.keystore is not None else None
        return configured if configured is not None else self.data_dir / "keystore.bin"

    @property
    def database_url(self) -> str:
        """The database URL; SQLite in ``data_dir`` when none is configured."""
        if self.database.url is not None:
            return self.database.url.get_secret_value()
        return f"sqlite+aiosqlite:///{self.data_dir / 'branchd.db'}"


def load_config(path: Path, environ: Mapping[str, str] | None = None) -> Config:
    """Read and validate ``path``; raise :class:`ConfigError` naming every problem."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(str(path), [f"cannot read the file: {exc.strerror}"]) from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(str(path), ["the file is not UTF-8 text"]) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(str(path), [f"not valid TOML: {exc}"]) from None
    config = parse_config(data, source=str(path), environ=environ)
    # Relative paths are taken relative to the file that names them.
    base = path.parent.resolve()
    if not config.data_dir.is_absolute():
        config = config.model_copy(update={"data_dir": base / config.data_dir})
    if config.server.tls is not None:
        server = config.server.model_copy(update={"tls": config.server.tls.resolved(base)})
        config = config.model_copy(update={"server": server})
    if config.upstream is not None:
        config = config.model_copy(update={"upstream": config.upstream.resolved(base)})
    if config.production is not None and config.production.font is not None:
        font = base / config.production.font
        production = config.production.model_copy(update={"font": font})
        config = config.model_copy(update={"production": production})
    return config


def parse_config(
    data: Mapping[str, Any], *, source: str = "<config>", environ: Mapping[str, str] | None = None
) -> Config:
    """Validate an already parsed TOML document."""
    context = {"environ": os.environ if environ is None else environ}
    try:
        return Config.model_validate(data, context=context)
    except ValidationError as exc:
        problems = [_describe(error) for error in exc.errors(include_url=False)]
        raise ConfigError(source, problems) from None


def _describe(error: Mapping[str, Any]) -> str:
    loc = tuple(str(part) for part in error["loc"])
    key = ".".join(loc) or "(top level)"
    kind = error["type"]
    if kind == "missing":
        return f"{key}: required key is missing"
    if kind == "extra_forbidden":
        allowed = ", ".join(sorted(_fields_at(Config, loc[:-1])))
        return f"{key}: unknown key (expected one of: {allowed})"
    message = str(error["msg"]).removeprefix("Value error, ")
    if _is_secret_path(loc):
        return f"{key}: {message} (value not shown: it may hold a secret)"
    return f"{key}: {message} (got {error['input']!r})"


def _model_at(model: type[BaseModel], loc: tuple[str, ...]) -> type[BaseModel] | None:
    names = [name for name in loc if not name.isdigit()]  # list positions: same model
    for name in names:
        field = model.model_fields.get(name)
        if field is None:
            return None
        nested = _models_in(field.annotation)
        if not nested:
            return None
        model = nested[0]
    return model


def _models_in(annotation: object) -> list[type[BaseModel]]:
    """The pydantic models an annotation holds (``X``, ``X | None``, ``list[X]``)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in get_args(annotation) for m in _models_in(arg)]


def _fields_at(model: type[BaseModel], loc: tuple[str, ...]) -> list[str]:
    found = _model_at(model, loc)
    return list(found.model_fields) if found is not None else []


def _is_secret_path(loc: tuple[str, ...]) -> bool:
    if not loc:
        return False
    parent = _model_at(Config, loc[:-1])
    field = parent.model_fields.get(loc[-1]) if parent is not None else None
    if field is None:
        return False
    return _mentions_secret(field.annotation)


def _mentions_secret(annotation: object) -> bool:
    if annotation is SecretStr:
        return True
    return get_origin(annotation) is not None and any(
        _mentions_secret(arg) for arg in get_args(annotation)
    )


def load_model(path: Path, model: type[M]) -> M:
    """Read ``path`` as TOML and validate it with ``model``; ConfigError names every problem.

    For the configuration files of other programs of the package (``branchd agent``).
    """
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(str(path), [f"cannot read the file: {exc.strerror}"]) from None
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(str(path), [f"not valid TOML: {exc}"]) from None
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = [
            f"{'.'.join(str(p) for p in error['loc']) or '(top level)'}: "
            f"{str(error['msg']).removeprefix('Value error, ')}"
            for error in exc.errors(include_url=False, include_input=False)
        ]
        raise ConfigError(str(path), problems) from None

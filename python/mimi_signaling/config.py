"""The server's configuration file (TOML) and its signing key file.

Example::

    server_name = "hub.example"            # the server name in room and user IDs
    listen = "0.0.0.0:8448"                # host:port ("[::]:8448" for IPv6)
    data_dir = "/var/lib/mimi"
    signing_key = "signing.key"            # see load_signing_key
    storage = "sqlite:////var/lib/mimi/mimi.db"   # default: sqlite:///<data_dir>/mimi.db
    # ds_domain = "ds.hub.example"         # answer of /.well-known/mimi/ds-domain (default: server_name)

    [tls]
    cert = "tls/hub.example.pem"           # names server_name in subjectAltName
    key = "tls/hub.example.key"
    ca = "tls/ca.pem"                      # the CA whose certificates peers present

    [peers]                                # server name -> URL; others are discovered
    "follower.example" = "https://127.0.0.1:8449"

    [rate_limit]                           # per peer server; each entry of a batch counts
    rate = 1000.0                          # transactions per second, sustained
    burst = 2048                           # at once (a full batch is 1,024)

    [follower]                             # rooms this server follows (hubbed elsewhere)
    history = "full"                       # "full": replay from the create event; "recent":
                                           # join from the hub's snapshot (docs/PARTIAL_HISTORY.md)
    keep_recent = 1000                     # "recent": events kept besides the state
    verify_history = false                 # "recent": replay the history before the snapshot
                                           # in the background (logged; mimi status)

    [http]
    max_body_size = 69632                  # bytes of one request body
    body_timeout = 10.0                    # seconds to receive a request body
    keepalive_timeout = 75.0               # seconds an idle connection stays open
    request_timeout = 30.0                 # seconds for one outgoing request
    max_retries = 3                        # outgoing retries (connection errors, 5xx, 429)
    batches = true                         # send and accept mimi.signaling.batch; false: single
                                           # transactions only, as a peer that does not batch

    [ops]                                  # metrics, health checks, status page (plain HTTP)
    listen = "127.0.0.1:9464"              # off when absent; no authentication: keep it local

Secrets can stay out of this file, so that it can be committed: ``signing_key`` and
``tls.key`` name files, and ``storage_password_file`` names a file holding the PostgreSQL
password (put into the ``storage`` URL when the store is opened, never logged).  The
environment variables ``MIMI_SIGNING_KEY_FILE``, ``MIMI_TLS_KEY_FILE`` and
``MIMI_STORAGE_PASSWORD_FILE`` name those files instead and win over the file's keys (the way
container secrets are mounted); with them set, the keys may be left out of the file.

Relative paths are relative to the directory of the configuration file.  Unknown keys are
errors (a misspelt key must not be silently ignored).
"""

from __future__ import annotations

import json
import logging
import math
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Mapping, Optional, Tuple, Union

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.9/3.10
    import tomli as tomllib

import mimi_signaling as ms

from .node import keyfile
from .ops.logs import register_secret

log = logging.getLogger(__name__)

__all__ = [
    "Config",
    "TLSConfig",
    "RateLimitConfig",
    "HTTPConfig",
    "OpsConfig",
    "SECRET_FILE_VARIABLES",
    "FollowerConfig",
    "ConfigError",
    "load_signing_key",
    "save_signing_key",
    "parse_listen",
]

PathLike = Union[str, "os.PathLike[str]"]


class ConfigError(Exception):
    """The configuration (or key file) is missing, unreadable or invalid."""


# --- sections ---------------------------------------------------------------------------------


@dataclass
class TLSConfig:
    cert: Path
    key: Path
    ca: Path


@dataclass
class RateLimitConfig:
    # Transactions, not requests: a batch's entries each take a token (docs/DECISIONS.md).
    rate: float = 1000.0
    burst: int = 2048


@dataclass
class HTTPConfig:
    max_body_size: int = ms.MAX_EVENT_SIZE + 4_096  # one event and its envelope (batches: their own bound)
    body_timeout: float = 10.0
    keepalive_timeout: float = 75.0
    request_timeout: float = 30.0
    max_retries: int = 3
    # False: this server neither sends nor accepts ``mimi.signaling.batch`` (a batch request
    # is refused ``malformed``, as by a server that does not know the type), as a peer that
    # does not batch.  For interop tests and the benchmark's single-transaction path.
    batches: bool = True


@dataclass
class OpsConfig:
    listen: str = ""  # "" -> no ops listener


#: Environment variables that name secret files, and the setting each one replaces.
SECRET_FILE_VARIABLES = {
    "MIMI_SIGNING_KEY_FILE": "signing_key",
    "MIMI_TLS_KEY_FILE": "tls.key",
    "MIMI_STORAGE_PASSWORD_FILE": "storage_password_file",
}


@dataclass
class FollowerConfig:
    """How rooms hubbed elsewhere are followed (``node/partial.py``)."""

    history: str = "full"
    keep_recent: int = 1000
    verify_history: bool = False


@dataclass
class Config:
    server_name: str
    listen: str
    signing_key: Path
    tls: TLSConfig
    data_dir: Path
    storage: str = ""  # "" -> sqlite:///<data_dir>/mimi.db
    ds_domain: str = ""  # "" -> server_name
    peers: Dict[str, str] = field(default_factory=dict)
    rate_limit: RateLimitConfig = field(default_factory=RateLimitConfig)
    http: HTTPConfig = field(default_factory=HTTPConfig)
    ops: OpsConfig = field(default_factory=OpsConfig)
    storage_password_file: Optional[Path] = None
    follower: FollowerConfig = field(default_factory=FollowerConfig)

    def __post_init__(self) -> None:
        if not self.storage:
            self.storage = f"sqlite:///{str(self.data_dir).lstrip('/')}/mimi.db" if Path(self.data_dir).is_absolute() else f"sqlite:{self.data_dir}/mimi.db"
        if not self.ds_domain:
            self.ds_domain = self.server_name

    # --- derived --------------------------------------------------------------------------

    @property
    def listen_host(self) -> str:
        return parse_listen(self.listen)[0]

    @property
    def listen_port(self) -> int:
        return parse_listen(self.listen)[1]

    # --- validation -----------------------------------------------------------------------

    def validate(self) -> "Config":
        """Raise ConfigError naming the first bad setting; returns self."""
        _check_server_name("server_name", self.server_name)
        _check_server_name("ds_domain", self.ds_domain)
        try:
            parse_listen(self.listen)
        except ValueError as exc:
            raise ConfigError(f"listen: {exc}") from None
        if not self.storage.startswith(("sqlite:///", "postgresql://", "postgres://")):
            raise ConfigError(
                f"storage: {self.storage!r} is not a sqlite:///PATH or postgresql:// URL"
            )
        for name, url in self.peers.items():
            _check_server_name(f"peers.{name!r}", name)
            from .transport.discovery import normalize_base_url

            try:
                normalize_base_url(url)
            except ValueError as exc:
                raise ConfigError(f"peers.{name!r}: {exc}") from None
        rl = self.rate_limit
        if not (math.isfinite(rl.rate) and rl.rate > 0):
            raise ConfigError("rate_limit.rate: must be a positive number of transactions per second")
        if rl.burst < 1:
            raise ConfigError("rate_limit.burst: must be at least 1")
        h = self.http
        if h.max_body_size < 1024:
            raise ConfigError("http.max_body_size: must be at least 1024 bytes")
        for key in ("body_timeout", "keepalive_timeout", "request_timeout"):
            value = getattr(h, key)
            if not (math.isfinite(value) and value > 0):
                raise ConfigError(f"http.{key}: must be a positive number of seconds")
        if not 0 <= h.max_retries <= 20:
            raise ConfigError("http.max_retries: must be between 0 and 20")
        if self.ops.listen:
            try:
                parse_listen(self.ops.listen)
            except ValueError as exc:
                raise ConfigError(f"ops.listen: {exc}") from None
        if self.storage_password_file is not None and not self.storage.startswith(("postgresql://", "postgres://")):
            raise ConfigError("storage_password_file: only a postgresql:// store takes a password")
        from .node.partial import HISTORY_MODES

        if self.follower.history not in HISTORY_MODES:
            raise ConfigError(f"follower.history: must be one of {', '.join(map(repr, HISTORY_MODES))}")
        if not 1 <= self.follower.keep_recent <= 10_000_000:
            raise ConfigError("follower.keep_recent: must be between 1 and 10000000 events")
        return self

    def storage_url(self) -> str:
        """The store URL to open: ``storage`` with the password from ``storage_password_file``
        (when set) put in.  Holds a secret: never log it."""
        if self.storage_password_file is None:
            return self.storage
        password = _read_secret(self.storage_password_file, "storage_password_file")
        register_secret(password)
        from urllib.parse import quote, urlsplit, urlunsplit

        parts = urlsplit(self.storage)
        user = parts.username or ""
        host = parts.netloc.rpartition("@")[2]
        netloc = f"{quote(user, safe='') if user else ''}:{quote(password, safe='')}@{host}"
        return urlunsplit(parts._replace(netloc=netloc))

    # --- files ----------------------------------------------------------------------------

    @classmethod
    def load(cls, path: PathLike) -> "Config":
        """Read and validate a TOML configuration file."""
        path = Path(path)
        try:
            with open(path, "rb") as f:
                data = tomllib.load(f)
        except FileNotFoundError:
            raise ConfigError(f"{path}: no such configuration file") from None
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: not valid TOML: {exc}") from None
        try:
            return cls.from_dict(data, base_dir=path.parent.resolve())
        except ConfigError as exc:
            raise ConfigError(f"{path}: {exc}") from None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], base_dir: Optional[Path] = None) -> "Config":
        base = base_dir or Path.cwd()
        r = _Reader(data, "", base)
        secret_files = _secret_files_from_environment()
        config = cls(
            server_name=r.text("server_name"),
            listen=r.text("listen"),
            signing_key=_required_secret_setting(r, "signing_key", secret_files),
            data_dir=r.path("data_dir"),
            storage=r.text("storage", ""),
            ds_domain=r.text("ds_domain", ""),
            tls=_read_tls(r.table("tls", required=True), secret_files),
            peers=_read_peers(r.table("peers")),
            rate_limit=_read_rate_limit(r.table("rate_limit")),
            http=_read_http(r.table("http")),
            ops=_read_ops(r.table("ops")),
            storage_password_file=_secret_setting(r, "storage_password_file", secret_files, required=False),
            follower=_read_follower(r.table("follower")),
        )
        r.finish()
        return config.validate()

    def to_dict(self) -> Dict[str, Any]:
        out: Dict[str, Any] = {
            "server_name": self.server_name,
            "listen": self.listen,
            "data_dir": str(self.data_dir),
            "signing_key": str(self.signing_key),
            "storage": self.storage,
            "ds_domain": self.ds_domain,
            "tls": {"cert": str(self.tls.cert), "key": str(self.tls.key), "ca": str(self.tls.ca)},
            "peers": dict(self.peers),
            "rate_limit": {"rate": float(self.rate_limit.rate), "burst": int(self.rate_limit.burst)},
            "http": {
                "max_body_size": int(self.http.max_body_size),
                "body_timeout": float(self.http.body_timeout),
                "keepalive_timeout": float(self.http.keepalive_timeout),
                "request_timeout": float(self.http.request_timeout),
                "max_retries": int(self.http.max_retries),
                "batches": bool(self.http.batches),
            },
            "follower": {"history": self.follower.history, "keep_recent": int(self.follower.keep_recent),
                         "verify_history": bool(self.follower.verify_history)},
        }
        if self.storage_password_file is not None:
            out["storage_password_file"] = str(self.storage_password_file)
        if self.ops.listen:
            out["ops"] = {"listen": self.ops.listen}
        return out

    def dump(self, path: PathLike) -> None:
        """Write as TOML (paths as stored: absolute after ``load``)."""
        Path(path).write_text(_to_toml(self.to_dict()), encoding="utf-8")

    def check_files(self) -> None:
        """Raise ConfigError unless the TLS files, the signing key file and the password file
        (when named) are readable (``load`` does not require them: a configuration may be
        written before its keys)."""
        files = [
            ("tls.cert", self.tls.cert),
            ("tls.key", self.tls.key),
            ("tls.ca", self.tls.ca),
            ("signing_key", self.signing_key),
        ]
        if self.storage_password_file is not None:
            files.append(("storage_password_file", self.storage_password_file))
        for key, p in files:
            if not p.is_file():
                raise ConfigError(f"{key}: {p} is not a file")
            if not os.access(p, os.R_OK):
                raise ConfigError(f"{key}: {p} is not readable")

    # --- building the transport -----------------------------------------------------------

    def server_ssl_context(self):  # -> ssl.SSLContext
        from .transport.tls import server_ssl_context

        return server_ssl_context(self.tls.cert, self.tls.key, self.tls.ca)

    def client_ssl_context(self):  # -> ssl.SSLContext
        from .transport.tls import client_ssl_context

        return client_ssl_context(self.tls.cert, self.tls.key, self.tls.ca)

    def load_signing_key(self) -> "ms.SigningKey":
        return load_signing_key(self.signing_key)


# --- reading helpers -------------------------------------------------------------------------


class _Reader:
    """Typed access to one TOML table that remembers which keys were used."""

    def __init__(self, data: Mapping[str, Any], prefix: str, base: Path) -> None:
        if not isinstance(data, Mapping):
            raise ConfigError(f"{prefix.rstrip('.') or 'configuration'}: must be a table")
        self.data, self.prefix, self.base = data, prefix, base
        self.used: set = set()

    def _get(self, key: str, default: Any, required: bool) -> Any:
        self.used.add(key)
        if key not in self.data:
            if required:
                raise ConfigError(f"{self.prefix}{key}: missing")
            return default
        return self.data[key]

    def text(self, key: str, default: Optional[str] = None) -> str:
        value = self._get(key, default, default is None)
        if not isinstance(value, str):
            raise ConfigError(f"{self.prefix}{key}: must be a string")
        return value

    def path(self, key: str) -> Path:
        value = self.text(key)
        if not value:
            raise ConfigError(f"{self.prefix}{key}: must not be empty")
        p = Path(value).expanduser()
        return p if p.is_absolute() else (self.base / p)

    def number(self, key: str, default: float) -> float:
        value = self._get(key, default, False)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{self.prefix}{key}: must be a number")
        return float(value)

    def boolean(self, key: str, default: bool) -> bool:
        value = self._get(key, default, False)
        if not isinstance(value, bool):
            raise ConfigError(f"{self.prefix}{key}: must be true or false")
        return value

    def integer(self, key: str, default: int) -> int:
        value = self._get(key, default, False)
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{self.prefix}{key}: must be an integer")
        return value

    def table(self, key: str, required: bool = False) -> "_Reader":
        value = self._get(key, {}, required)
        if not isinstance(value, Mapping):
            raise ConfigError(f"{self.prefix}{key}: must be a table")
        return _Reader(value, f"{self.prefix}{key}.", self.base)

    def finish(self) -> None:
        unknown = sorted(set(self.data) - self.used)
        if unknown:
            raise ConfigError(f"{self.prefix}{unknown[0]}: unknown setting")


def _read_tls(r: _Reader, secret_files: Mapping[str, Path]) -> TLSConfig:
    tls = TLSConfig(cert=r.path("cert"), key=_required_secret_setting(r, "key", secret_files), ca=r.path("ca"))
    r.finish()
    return tls


def _read_ops(r: _Reader) -> OpsConfig:
    ops = OpsConfig(listen=r.text("listen", ""))
    r.finish()
    return ops


def _secret_setting(r: _Reader, key: str, secret_files: Mapping[str, Path], *, required: bool = True) -> Optional[Path]:
    """The path of a secret file: the one its ``MIMI_*_FILE`` variable names when set (the
    file's setting, if any, is then overridden), else the setting."""
    name = f"{r.prefix}{key}"
    if name in secret_files:
        r.used.add(key)
        return secret_files[name]
    if key not in r.data:
        r.used.add(key)
        if required:
            variable = next(v for v, k in SECRET_FILE_VARIABLES.items() if k == name)
            raise ConfigError(f"{name}: missing (or set {variable})")
        return None
    return r.path(key)


def _required_secret_setting(r: _Reader, key: str, secret_files: Mapping[str, Path]) -> Path:
    path = _secret_setting(r, key, secret_files, required=True)
    assert path is not None  # required: missing raised ConfigError
    return path


def _secret_files_from_environment() -> Dict[str, Path]:
    """The settings named by ``MIMI_*_FILE`` variables (absolute, or relative to the working
    directory as any path given in the environment)."""
    out: Dict[str, Path] = {}
    for variable, key in SECRET_FILE_VARIABLES.items():
        value = os.environ.get(variable, "")
        if value:
            out[key] = Path(value).expanduser().absolute()
    return out


def _read_secret(path: Path, key: str) -> str:
    """A secret file's text without the final newline; errors name the file, never the text."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{key}: {path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{key}: {path}: cannot read: {getattr(exc, 'strerror', None) or type(exc).__name__}") from None
    secret = text.rstrip("\r\n")
    if not secret:
        raise ConfigError(f"{key}: {path} is empty")
    return secret


def _read_peers(r: _Reader) -> Dict[str, str]:
    peers: Dict[str, str] = {}
    for name in list(r.data):
        peers[name] = r.text(name)
    r.finish()
    return peers


def _read_rate_limit(r: _Reader) -> RateLimitConfig:
    d = RateLimitConfig()
    rl = RateLimitConfig(rate=r.number("rate", d.rate), burst=r.integer("burst", d.burst))
    r.finish()
    return rl


def _read_http(r: _Reader) -> HTTPConfig:
    d = HTTPConfig()
    h = HTTPConfig(
        max_body_size=r.integer("max_body_size", d.max_body_size),
        body_timeout=r.number("body_timeout", d.body_timeout),
        keepalive_timeout=r.number("keepalive_timeout", d.keepalive_timeout),
        request_timeout=r.number("request_timeout", d.request_timeout),
        max_retries=r.integer("max_retries", d.max_retries),
        batches=r.boolean("batches", d.batches),
    )
    r.finish()
    return h


def _read_follower(r: _Reader) -> FollowerConfig:
    d = FollowerConfig()
    f = FollowerConfig(history=r.text("history", d.history), keep_recent=r.integer("keep_recent", d.keep_recent),
                       verify_history=r.boolean("verify_history", d.verify_history))
    r.finish()
    return f


def _check_server_name(key: str, value: str) -> None:
    try:
        ms.validate_server_name(value)
    except ms.MimiError as exc:
        raise ConfigError(f"{key}: {value!r} is not a server name: {exc}") from None


def parse_listen(listen: str) -> Tuple[str, int]:
    """``host:port`` or ``[v6]:port`` -> (host, port).  Raises ValueError."""
    text = listen.strip()
    if text.startswith("["):
        end = text.find("]")
        if end < 0 or text[end + 1 : end + 2] != ":":
            raise ValueError(f"{listen!r} is not [host]:port")
        host, port_text = text[1:end], text[end + 2 :]
    else:
        host, sep, port_text = text.rpartition(":")
        if not sep or not host or ":" in host:
            raise ValueError(f"{listen!r} is not host:port")
    if not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise ValueError(f"{listen!r}: port must be 0-65535")
    return host, int(port_text)


# --- TOML writing (tomllib only reads) --------------------------------------------------------


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        # A JSON string without \u-escaped non-ASCII is a valid TOML basic string.
        return json.dumps(value, ensure_ascii=False)
    raise TypeError(f"cannot write {type(value).__name__} to TOML")


def _to_toml(data: Mapping[str, Any]) -> str:
    lines = []
    tables = []
    for key, value in data.items():
        if isinstance(value, Mapping):
            tables.append((key, value))
        else:
            lines.append(f"{_toml_key(key)} = {_toml_value(value)}")
    for name, table in tables:
        lines.append("")
        lines.append(f"[{_toml_key(name)}]")
        for key, value in table.items():
            lines.append(f"{_toml_key(key)} = {_toml_value(value)}")
    return "\n".join(lines) + "\n"


def _toml_key(key: str) -> str:
    if key and all(c.isascii() and (c.isalnum() or c in "_-") for c in key):
        return key
    return json.dumps(key, ensure_ascii=False)


# --- the signing key file (node/keyfile.py owns the format) ---------------------------------


def save_signing_key(path: PathLike, key: "ms.SigningKey", *, overwrite: bool = False) -> None:
    """``node.keyfile.save_signing_key``, its errors as ``ConfigError``."""
    try:
        keyfile.save_signing_key(path, key, overwrite=overwrite)
    except keyfile.KeyFileError as exc:
        raise ConfigError(str(exc)) from None


def load_signing_key(path: PathLike) -> "ms.SigningKey":
    """``node.keyfile.load_signing_key``, its errors as ``ConfigError``; the seed is registered
    as a secret the logs never show."""
    try:
        key = keyfile.load_signing_key(path)
    except keyfile.KeyFileError as exc:
        raise ConfigError(str(exc)) from None
    register_secret(ms.wire.base64url_encode(key.seed))
    register_secret(key.seed.hex())
    return key

"""The coordinator's configuration file (TOML): one place for the SuperLink, API and runs.

`fl-server certs` writes a documented default (DEFAULT_TEXT) when none exists. Relative
paths are read relative to the file's own directory, so a coordinator directory can move.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fl_server.deploy.errors import ConfigError

DEFAULT_FILE = "fedkg-coordinator.toml"

DEFAULT_TEXT = """\
# fedkg coordinator configuration, read by `fl-server start`, `run`, `register-node`.
# Relative paths are relative to this file's directory. See docs/deployment.md.

[superlink]
# Interface and port of Flower's SuperLink (Fleet, Control and Runtime APIs share the port,
# always over TLS). Use host = "0.0.0.0" to accept institutions from other machines.
host = "127.0.0.1"
port = 9093
# How fl-server itself reaches the SuperLink; empty: 127.0.0.1:<port>.
address = ""
# The SuperLink's database (runs, registered node keys, names), logs, the Flower app that
# `fl-server run` submits, and a private FLWR_HOME all live here.
state-dir = "state"
# TLS. `fl-server certs` makes a development CA and server certificate here; in production
# point these at your own PKI's files. Institutions get ca-certfile, nothing else.
certfile = "certs/server.pem"
keyfile = "certs/server.key"
ca-certfile = "certs/ca.crt"

[api]
# The coordinator API and dashboard (`fl-server api`), started next to the SuperLink.
enabled = true
host = "127.0.0.1"
port = 8080
# Where runs, rounds and the audit log are stored; empty: $FEDKG_DATABASE_URL, else a
# SQLite file in state-dir. A PostgreSQL URL with a password is best given through
# $FEDKG_DATABASE_URL: the ServerApp inherits it from the SuperLink's environment.
database-url = ""
# The knowledge graph on disk (Oxigraph); empty: rebuilt in memory from the stored cards.
kg-dir = ""

[run]
# Defaults of `fl-server run`; each has a command-line option.
rounds = 3
min-clients = 2
dp-epsilon = 3.0
dp-delta = 1e-5
# The federation's public CKKS context from the key ceremony; empty: plaintext FedAvg.
he-public-context = ""
# Global state after every round (plaintext weights or the encrypted aggregate).
checkpoint-dir = "checkpoints"
connect-timeout = 300.0
round-timeout = 600.0
seed = 0
"""


@dataclass
class SuperLinkConfig:
    host: str = "127.0.0.1"
    port: int = 9093
    address: str = ""
    state_dir: Path = Path("state")
    certfile: Path = Path("certs/server.pem")
    keyfile: Path = Path("certs/server.key")
    ca_certfile: Path = Path("certs/ca.crt")

    @property
    def connect_address(self) -> str:
        if self.address:
            return self.address
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::", "") else self.host
        return f"[{host}]:{self.port}" if ":" in host else f"{host}:{self.port}"


@dataclass
class ApiConfig:
    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = 8080
    database_url: str = ""
    kg_dir: Path | None = None


@dataclass
class RunDefaults:
    rounds: int = 3
    min_clients: int = 2
    dp_epsilon: float = 3.0
    dp_delta: float = 1e-5
    he_public_context: Path | None = None
    checkpoint_dir: Path = Path("checkpoints")
    connect_timeout: float = 300.0
    round_timeout: float = 600.0
    seed: int = 0


@dataclass
class CoordinatorConfig:
    path: Path
    superlink: SuperLinkConfig = field(default_factory=SuperLinkConfig)
    api: ApiConfig = field(default_factory=ApiConfig)
    run: RunDefaults = field(default_factory=RunDefaults)

    @property
    def base_dir(self) -> Path:
        return self.path.parent

    @property
    def state_dir(self) -> Path:
        return self.superlink.state_dir

    @property
    def flwr_home(self) -> Path:
        return self.state_dir / "flwr-home"

    @property
    def app_dir(self) -> Path:
        return self.state_dir / "app"

    @property
    def runs_dir(self) -> Path:
        return self.state_dir / "runs"

    @property
    def superlink_database(self) -> Path:
        return self.state_dir / "superlink.db"

    @property
    def database_url(self) -> str:
        """The API's database; the one the ServerApp records runs in."""
        import os

        from fl_server.db.engine import DATABASE_URL_ENV

        return (
            self.api.database_url
            or os.environ.get(DATABASE_URL_ENV, "")
            or f"sqlite:///{self.state_dir / 'coordinator.db'}"
        )


def _table(doc: dict[str, Any], name: str) -> dict[str, Any]:
    value = doc.get(name, {})
    if not isinstance(value, dict):
        raise ConfigError(f"[{name}] must be a table")
    return value


def _typed(table: dict[str, Any], section: str, key: str, kind: type, default: Any) -> Any:
    if key not in table:
        return default
    value = table[key]
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ConfigError(
            f"[{section}] {key} = {value!r} must be a {kind.__name__}; fix the configuration file"
        )
    return value


def _known(table: dict[str, Any], section: str, keys: set[str]) -> None:
    unknown = sorted(set(table) - keys)
    if unknown:
        raise ConfigError(
            f"[{section}] has unknown key {unknown[0]!r}; known: {', '.join(sorted(keys))}"
        )


def load_config(path: Path | str = DEFAULT_FILE) -> CoordinatorConfig:
    """The configuration at `path`, or the defaults (relative to its directory) if absent."""
    path = Path(path).expanduser().resolve()
    doc: dict[str, Any] = {}
    if path.exists():
        try:
            doc = tomllib.loads(path.read_text())
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"{path} is not valid TOML ({exc})") from None
    _known(doc, "top level", {"superlink", "api", "run"})
    base = path.parent

    def rel(value: str) -> Path:
        p = Path(value).expanduser()
        return p if p.is_absolute() else base / p

    def opt_rel(value: str) -> Path | None:
        return rel(value) if value else None

    sl = _table(doc, "superlink")
    _known(
        sl,
        "superlink",
        {"host", "port", "address", "state-dir", "certfile", "keyfile", "ca-certfile"},
    )
    d = SuperLinkConfig()
    superlink = SuperLinkConfig(
        host=_typed(sl, "superlink", "host", str, d.host),
        port=_typed(sl, "superlink", "port", int, d.port),
        address=_typed(sl, "superlink", "address", str, d.address),
        state_dir=rel(_typed(sl, "superlink", "state-dir", str, str(d.state_dir))),
        certfile=rel(_typed(sl, "superlink", "certfile", str, str(d.certfile))),
        keyfile=rel(_typed(sl, "superlink", "keyfile", str, str(d.keyfile))),
        ca_certfile=rel(_typed(sl, "superlink", "ca-certfile", str, str(d.ca_certfile))),
    )
    if not 0 < superlink.port < 65536:
        raise ConfigError(f"[superlink] port = {superlink.port} is not a TCP port")
    ap = _table(doc, "api")
    _known(ap, "api", {"enabled", "host", "port", "database-url", "kg-dir"})
    a = ApiConfig()
    api = ApiConfig(
        enabled=_typed(ap, "api", "enabled", bool, a.enabled),
        host=_typed(ap, "api", "host", str, a.host),
        port=_typed(ap, "api", "port", int, a.port),
        database_url=_typed(ap, "api", "database-url", str, a.database_url),
        kg_dir=opt_rel(_typed(ap, "api", "kg-dir", str, "")),
    )
    rn = _table(doc, "run")
    r = RunDefaults()
    keys = {
        "rounds", "min-clients", "dp-epsilon", "dp-delta", "he-public-context",
        "checkpoint-dir", "connect-timeout", "round-timeout", "seed",
    }  # fmt: skip
    _known(rn, "run", keys)
    run = RunDefaults(
        rounds=_typed(rn, "run", "rounds", int, r.rounds),
        min_clients=_typed(rn, "run", "min-clients", int, r.min_clients),
        dp_epsilon=_typed(rn, "run", "dp-epsilon", float, r.dp_epsilon),
        dp_delta=_typed(rn, "run", "dp-delta", float, r.dp_delta),
        he_public_context=opt_rel(_typed(rn, "run", "he-public-context", str, "")),
        checkpoint_dir=rel(_typed(rn, "run", "checkpoint-dir", str, str(r.checkpoint_dir))),
        connect_timeout=_typed(rn, "run", "connect-timeout", float, r.connect_timeout),
        round_timeout=_typed(rn, "run", "round-timeout", float, r.round_timeout),
        seed=_typed(rn, "run", "seed", int, r.seed),
    )
    return CoordinatorConfig(path=path, superlink=superlink, api=api, run=run)


def write_default_config(path: Path | str = DEFAULT_FILE) -> Path:
    """Write the documented defaults; never overwrites an existing file."""
    path = Path(path).expanduser()
    if path.exists():
        return path
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(DEFAULT_TEXT)
    except OSError as exc:
        raise ConfigError(f"cannot write {path} ({exc.strerror})") from None
    return path

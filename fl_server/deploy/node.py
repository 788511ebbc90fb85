"""An institution's node: its local configuration file and the SuperNode it runs.

`node.toml` (written by `fl-client init`, completed by `fl-client card`) says where the
SuperLink is, which CA to trust, where the node's key, data, ledger and HE context are.
`NodeConfig.argv()` is the command `fl-client start` runs: fedkg's SuperNode entry point
(`fl_server.deploy.supernode`) with Flower's own flags after `--`.
"""

from __future__ import annotations

import os
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tomli_w

from fl_server.deploy.certs import write_private
from fl_server.deploy.errors import ConfigError, DeployError

NODE_FILE = "node.toml"
KEY_NAME = "node-key"
SECRET_FILE = "superexec.secret"


@dataclass
class NodeConfig:
    """Everything paths are relative to `home` unless absolute."""

    home: Path
    institution: str
    superlink: str
    root_certificates: Path
    private_key: Path
    data_path: Path | None = None
    dataset_id: str = ""
    he_context: Path | None = None
    ledger: Path | None = None
    dp_budget: float = 10.0
    allow_no_dp: bool = False
    runtime_port: int = 9094
    api_url: str = ""
    task: str = ""

    @property
    def state_dir(self) -> Path:
        return self.home / "state"

    @property
    def ledger_path(self) -> Path:
        return self.ledger or self.home / "ledger.db"

    @property
    def public_key(self) -> Path:
        return self.private_key.with_name(self.private_key.name + ".pub")

    def node_config(self) -> str:
        """The `--node-config` string: TOML values, as fedkg's ClientApp reads them."""
        if self.data_path is None or not self.dataset_id:
            raise ConfigError(
                "the node has no data set yet; run `fl-client card DATA.csv --task TASK` first"
            )
        values: dict[str, Any] = {
            "institution": self.institution,
            "data-path": str(self.data_path),
            "dataset-id": self.dataset_id,
            "state-dir": str(self.state_dir),
            "ledger": str(self.ledger_path),
            "dp-budget": float(self.dp_budget),
            "allow-no-dp": self.allow_no_dp,
        }
        if self.he_context is not None:
            values["he-context"] = str(self.he_context)
        from fl_server.deploy.flwr_cli import toml_value

        return " ".join(f"{k}={toml_value(v)}" for k, v in values.items())

    def superexec_secret(self) -> Path:
        """A random secret only this node's SuperNode and worker share (owner-only)."""
        path = self.state_dir / SECRET_FILE
        if not path.exists():
            write_private(path, os.urandom(32).hex().encode())
        return path

    def argv(self, *, flower_defaults: bool = False) -> list[str]:
        """The SuperNode command: TLS to the SuperLink, the node's key, its node config."""
        for what, path in (
            ("CA certificate", self.root_certificates),
            ("node key", self.private_key),
        ):
            if not path.exists():
                raise DeployError(f"the {what} {path} does not exist; run `fl-client init`")
        flower = [
            "--superlink", self.superlink,
            "--root-certificates", str(self.root_certificates),
            "--auth-supernode-private-key", str(self.private_key),
            "--node-config", self.node_config(),
            "--host", "127.0.0.1",
            "--port", str(self.runtime_port),
        ]  # fmt: skip
        if flower_defaults:
            from fl_server.deploy.environment import executable

            return [executable("flower-supernode"), *flower]
        flower += ["--superexec-auth-secret-file", str(self.superexec_secret())]
        return [sys.executable, "-m", "fl_server.deploy.supernode", "--", *flower]

    # --- the file --------------------------------------------------------------------------
    def to_toml(self) -> dict[str, Any]:
        def rel(p: Path | None) -> str:
            if p is None:
                return ""
            try:
                return str(p.relative_to(self.home))
            except ValueError:
                return str(p)

        return {
            "institution": self.institution,
            "superlink": self.superlink,
            "root-certificates": rel(self.root_certificates),
            "private-key": rel(self.private_key),
            "data-path": rel(self.data_path),
            "dataset-id": self.dataset_id,
            "task": self.task,
            "he-context": rel(self.he_context),
            "ledger": rel(self.ledger),
            "dp-budget": float(self.dp_budget),
            "allow-no-dp": self.allow_no_dp,
            "runtime-port": self.runtime_port,
            "api-url": self.api_url,
        }

    def save(self) -> Path:
        path = self.home / NODE_FILE
        self.home.mkdir(parents=True, exist_ok=True, mode=0o700)
        header = (
            "# fedkg node configuration (fl-client init / card / start). Paths are relative\n"
            "# to this directory. The private key, ledger and HE context never leave it.\n"
        )
        tmp = path.with_suffix(".tmp")
        tmp.write_text(header + tomli_w.dumps(self.to_toml()))
        os.replace(tmp, path)
        return path


def load_node_config(home: Path) -> NodeConfig:
    home = Path(home).expanduser().resolve()
    path = home / NODE_FILE
    try:
        doc = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"no {path}; run `fl-client init` first (or pass --home)") from None
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path} is not valid TOML ({exc})") from None

    def text(key: str) -> str:
        value = doc.get(key, "")
        if not isinstance(value, str):
            raise ConfigError(f"{path}: {key} must be a string")
        return value

    def path_of(key: str) -> Path | None:
        value = text(key)
        if not value:
            return None
        p = Path(value).expanduser()
        return p if p.is_absolute() else home / p

    for key in ("institution", "superlink", "root-certificates", "private-key"):
        if not text(key):
            raise ConfigError(f"{path} lacks {key}; run `fl-client init` again")
    try:
        return NodeConfig(
            home=home,
            institution=text("institution"),
            superlink=text("superlink"),
            root_certificates=path_of("root-certificates") or home,
            private_key=path_of("private-key") or home,
            data_path=path_of("data-path"),
            dataset_id=text("dataset-id"),
            task=text("task"),
            he_context=path_of("he-context"),
            ledger=path_of("ledger"),
            dp_budget=float(doc.get("dp-budget", 10.0)),
            allow_no_dp=bool(doc.get("allow-no-dp", False)),
            runtime_port=int(doc.get("runtime-port", 9094)),
            api_url=text("api-url"),
        )
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{path} holds a value of the wrong type ({exc})") from None

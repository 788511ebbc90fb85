"""The deployment tooling's pieces that need no running process."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import load_ssh_private_key

from fl_server.deploy.certs import (
    certificate_names,
    create_dev_certificates,
    generate_node_keys,
    read_public_key,
)
from fl_server.deploy.config import DEFAULT_TEXT, load_config, write_default_config
from fl_server.deploy.coordinator import RunRequest, shareable_database_url
from fl_server.deploy.errors import ConfigError, DeployError
from fl_server.deploy.manifest import RUN_CONFIG_DEFAULTS, manifest, write_app_dir
from fl_server.deploy.node import NodeConfig, load_node_config
from fl_server.deploy.plan import plan_from_json, plan_to_json
from fl_server.federation import FederationPlan

pytestmark = pytest.mark.slow


def test_dev_certificates_chain_to_the_ca_and_name_the_hosts(tmp_path: Path) -> None:
    files = create_dev_certificates(tmp_path, ["coord.example", "10.1.2.3"])
    ca = x509.load_pem_x509_certificate(files.ca_cert.read_bytes())
    server = x509.load_pem_x509_certificate(files.server_cert.read_bytes())
    server.verify_directly_issued_by(ca)
    assert certificate_names(files.server_cert) == ["coord.example", "10.1.2.3"]
    assert files.server_key.stat().st_mode & 0o077 == 0
    with pytest.raises(DeployError, match="--force"):
        create_dev_certificates(tmp_path)


def test_node_keys_are_p384_openssh_and_the_private_half_is_owner_only(tmp_path: Path) -> None:
    keys = generate_node_keys(tmp_path, "node")
    private = load_ssh_private_key(keys.private.read_bytes(), None)
    assert private.curve.name == "secp384r1"  # type: ignore[union-attr]
    assert keys.private.stat().st_mode & 0o077 == 0
    assert read_public_key(keys.public).startswith(b"ecdsa-sha2-nistp384 ")
    (tmp_path / "rsa.pub").write_text("ssh-rsa AAAA nope\n")
    with pytest.raises(DeployError, match="OpenSSH public key"):
        read_public_key(tmp_path / "rsa.pub")


def test_config_defaults_are_documented_and_relative_to_the_file(tmp_path: Path) -> None:
    path = write_default_config(tmp_path / "c.toml")
    assert path.read_text() == DEFAULT_TEXT
    cfg = load_config(path)
    assert cfg.superlink.port == 9093 and cfg.superlink.connect_address == "127.0.0.1:9093"
    assert cfg.superlink.certfile == tmp_path / "certs" / "server.pem"
    assert cfg.run.he_public_context is None and cfg.run.min_clients == 2
    assert cfg.database_url.startswith("sqlite:///") or cfg.database_url
    path.write_text(DEFAULT_TEXT.replace("port = 9093", 'port = "x"'))
    with pytest.raises(ConfigError, match=r"\[superlink\] port"):
        load_config(path)
    path.write_text(DEFAULT_TEXT + "\n[extra]\n")
    with pytest.raises(ConfigError, match="unknown key 'extra'"):
        load_config(path)


def test_every_run_override_is_declared_by_the_flower_app(tmp_path: Path) -> None:
    request = RunRequest(task="credit-default", plan=FederationPlan(allowed={"a"}))
    assert set(request.overrides()) <= set(RUN_CONFIG_DEFAULTS)
    app = write_app_dir(tmp_path / "app")
    doc = tomllib.loads((app / "pyproject.toml").read_text())
    assert doc == manifest()
    assert doc["tool"]["flwr"]["app"]["components"]["clientapp"] == "fl_client.app:app"


def test_plans_survive_the_run_config_and_bad_ones_are_refused() -> None:
    plan = FederationPlan(node_config={"a": {"mapping": "{}", "dataset-id": "x"}}, allowed={"a"})
    back = plan_from_json(plan_to_json(plan))
    assert back.allowed == {"a"} and back.node_config == plan.node_config
    assert plan_from_json("").allowed is None
    with pytest.raises(ConfigError):
        plan_from_json('{"allowed": "a"}')


def test_a_database_password_never_enters_the_run_config() -> None:
    assert shareable_database_url("sqlite:///x.db") == "sqlite:///x.db"
    assert shareable_database_url("postgresql://u:secret@h/db") == ""


def test_node_config_round_trips_and_builds_the_supernode_command(tmp_path: Path) -> None:
    keys = generate_node_keys(tmp_path / "keys", "node-key")
    (tmp_path / "ca.crt").write_text("x")
    node = NodeConfig(
        home=tmp_path,
        institution="bank-a",
        superlink="coord:9093",
        root_certificates=tmp_path / "ca.crt",
        private_key=keys.private,
    )
    with pytest.raises(ConfigError, match="fl-client card"):
        node.argv()
    node.data_path, node.dataset_id = tmp_path / "d.csv", "loans"
    node.save()
    again = load_node_config(tmp_path)
    assert again == node
    argv = again.argv()
    assert argv[1:4] == ["-m", "fl_server.deploy.supernode", "--"]
    assert 'institution="bank-a"' in argv[argv.index("--node-config") + 1]
    assert (tmp_path / "state" / "superexec.secret").stat().st_mode & 0o077 == 0

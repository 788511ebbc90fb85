"""A real deployment on loopback: SuperLink, coordinator API and three SuperNodes as separate
processes, TLS and SuperNode authentication on, DP and HE on.

One federation serves the whole module (starting it costs more than most tests); tests run
in file order and each leaves the three institutions connected. Every process is started
through `LoopbackFederation`, whose teardown stops them all (SIGTERM, then SIGKILL).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from fl_server.checkpoint import CheckpointStore
from fl_server.deploy.certs import generate_node_keys
from fl_server.deploy.coordinator import RunRequest
from fl_server.deploy.environment import executable, process_env
from fl_server.deploy.export import decrypt_state, read_checkpoint
from fl_server.deploy.loopback import LoopbackFederation
from fl_server.deploy.node import NodeConfig
from fl_server.deploy.processes import ManagedProcess

pytestmark = pytest.mark.slow

ROUNDS = 3
RUN_TIMEOUT = 240.0
# The cheaper RDP accountant keeps the module fast; the ledger logic is the same.
COMMON = {"dp_accountant": "rdp", "seed": 7, "local_epochs": 1, "round_timeout": 120.0}


@pytest.fixture(scope="module")
def fed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LoopbackFederation]:
    federation = LoopbackFederation(tmp_path_factory.mktemp("deployment"), api=True)
    try:
        federation.start()
        yield federation
    finally:
        federation.stop()
    for proc in federation.processes.values():
        assert not proc.alive()


def _request(fed: LoopbackFederation, **kw: object) -> RunRequest:
    values = {"task": "credit-default", "rounds": ROUNDS, "he_public_context": fed.he_public}
    return RunRequest(**{**values, **COMMON, **kw})  # type: ignore[arg-type]


def _records(fed: LoopbackFederation, run_id: str, directory: Path | None = None) -> list[dict]:
    store = CheckpointStore(directory or fed.config.run.checkpoint_dir)
    return [store.load(run_id, r).state["record"] for r in store._rounds(run_id)]


def _wait_for(path: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} did not appear"
        time.sleep(0.1)


def _admin_token(fed: LoopbackFederation) -> str:
    from fl_server.db import Database
    from fl_server.db.institutions import create_admin_key

    db = Database(fed.config.database_url)
    try:
        with db.write() as s:
            return create_admin_key(s, actor="test", label="deployment test")
    finally:
        db.dispose()


def test_plaintext_connections_are_refused(fed: LoopbackFederation, tmp_path: Path) -> None:
    sl = fed.config.superlink
    with pytest.raises(httpx.TransportError):
        httpx.post(f"http://127.0.0.1:{sl.port}/v1/fleet/create-node", content=b"", timeout=5)
    # A SuperNode that does not speak TLS cannot reach the SuperLink either.
    argv = [
        executable("flower-supernode"),
        "--insecure",
        "--superlink", sl.connect_address,
        "--port", "0",
        "--max-retries", "1",
        "--max-wait-time", "10",
    ]  # fmt: skip
    node = ManagedProcess(
        "plaintext SuperNode",
        argv,
        tmp_path / "plaintext.log",
        process_env(tmp_path / "flwr-home"),
    )
    try:
        code = node.wait(60)
    finally:
        node.stop()
    assert code not in (None, 0), node.log_tail()
    assert fed.online() == set(fed.institutions)


def test_a_supernode_with_an_unregistered_key_is_refused(
    fed: LoopbackFederation, tmp_path: Path
) -> None:
    keys = generate_node_keys(tmp_path / "keys", "intruder")
    before = {n["node-id"] for n in fed.coordinator.flower.list_nodes()}
    template = fed.nodes["bank-a"]
    intruder = NodeConfig(
        home=tmp_path,
        institution="intruder",
        superlink=template.superlink,
        root_certificates=template.root_certificates,
        private_key=keys.private,
        data_path=template.data_path,
        dataset_id="stolen",
        runtime_port=template.runtime_port + 1,
    )
    node = ManagedProcess(
        "intruder", intruder.argv(), tmp_path / "intruder.log", process_env(tmp_path / "home")
    )
    try:
        code = node.wait(60)
    finally:
        node.stop()
    assert code not in (None, 0), node.log_tail()
    assert {n["node-id"] for n in fed.coordinator.flower.list_nodes()} == before


def test_three_institutions_complete_a_private_encrypted_run_visible_in_the_api(
    fed: LoopbackFederation,
) -> None:
    argv = [
        sys.executable, "-m", "fl_server.cli_deploy", "run", "credit-default",
        "--config", str(fed.config.path),
        "--rounds", str(ROUNDS), "--seed", "7", "--local-epochs", "1",
        "--min-clients", "3", "--timeout", str(RUN_TIMEOUT), "--no-plan",
    ]  # fmt: skip
    res = subprocess.run(
        argv,
        env=process_env(),
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT + 60,
    )
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    submitted = [
        line.strip()
        for line in res.stdout.splitlines()
        if line.strip() and (fed.config.runs_dir / f"{line.strip()}.json").exists()
    ]
    assert len(submitted) == 1, res.stdout
    run_id = submitted[0]

    api = f"http://{fed.config.api.host}:{fed.config.api.port}/api"
    headers = {"Authorization": f"Bearer {_admin_token(fed)}"}
    run = httpx.get(f"{api}/runs/{run_id}", headers=headers, timeout=10).json()
    rounds = httpx.get(f"{api}/runs/{run_id}/rounds", headers=headers, timeout=10).json()
    assert run["status"] == "finished", run
    assert "database-url" not in run["config"]
    assert [r["round"] for r in rounds] == [1, 2, 3]
    for r in rounds:
        assert r["clients"] == sorted(fed.institutions), r["rejected"]
        assert set(r["epsilon"]) == set(fed.institutions)
        assert 0 < max(r["epsilon"].values()) <= 3.0 + 1e-6
        assert r["he"]["sum_seconds"] > 0  # summed encrypted
    # The coordinator's checkpoint is ciphertext; the institutions' key opens it.
    final = read_checkpoint(fed.config.run.checkpoint_dir / run_id)
    assert final.round == ROUNDS and "he-meta" in final.arrays
    state = decrypt_state(final, "credit-default", fed.he_secret)
    assert all(np.isfinite(v).all() for v in state.values())


def test_an_institution_killed_mid_run_is_left_out_and_the_run_completes(
    fed: LoopbackFederation,
) -> None:
    run = fed.coordinator.submit(_request(fed, run_id="node-crash", rounds=2, min_clients=2))
    victim = "bank-c"
    try:
        _wait_for(fed.config.run.checkpoint_dir / "node-crash" / "round-00001.ckpt", 180)
        fed.processes[victim].kill()  # kill -9 of the institution's SuperNode and worker
        info = fed.coordinator.wait(run.flower_run_id, RUN_TIMEOUT)
        assert info.succeeded, info.raw.get("status-details")
        records = _records(fed, "node-crash")
        assert [r["round"] for r in records] == [1, 2]
        assert victim in records[0]["clients"]
        assert records[-1]["clients"] == ["bank-a", "bank-b"]
        assert victim in records[-1]["rejected"]
    finally:  # the institution comes back with the same key, as the next tests need
        fed.start_node(victim)
        fed.wait_online(set(fed.institutions), 120)


def _ledger_charges(fed: LoopbackFederation, name: str, run_id: str) -> list[tuple[int, float]]:
    from privacy.ledger import Ledger

    node = fed.nodes[name]
    ledger = Ledger(node.ledger_path)
    try:
        return [(c.round, c.run_epsilon) for c in ledger.charges(node.dataset_id, run_id)]
    finally:
        ledger.close()


def test_a_crashed_coordinator_resumes_to_the_model_of_an_uninterrupted_run(
    fed: LoopbackFederation, tmp_path: Path
) -> None:
    from fl_server.db import Database
    from fl_server.db.models import AuditEntry, RoundRow

    run_id = "coordinator-crash"
    run = fed.coordinator.submit(_request(fed, run_id=run_id, min_clients=3))
    _wait_for(fed.config.run.checkpoint_dir / run_id / "round-00001.ckpt", 180)
    time.sleep(1.0)  # round 2 is under way at the institutions
    fed.coordinator.superlink.kill()  # kill -9: SuperLink, its SuperExec and the ServerApp
    fed.coordinator.start_superlink()  # same database: runs, keys and node ids survive
    fed.wait_online(set(fed.institutions), 120)
    resumed = fed.coordinator.resume(run_id)
    assert len(resumed.flower_run_ids) == 2
    info = fed.coordinator.wait(resumed.flower_run_id, RUN_TIMEOUT)
    assert info.succeeded, info.raw.get("status-details")

    db = Database(fed.config.database_url)
    try:
        with db.read() as s:
            rows = s.query(RoundRow).filter(RoundRow.run_id == run_id).all()
            actions = [
                a.action
                for a in s.query(AuditEntry).filter(AuditEntry.target.like(f"run:{run_id}/%"))
            ]
    finally:
        db.dispose()
    assert sorted(r.round for r in rows) == [1, 2, 3]
    assert actions.count("round.recorded") == 3 and "round.replaced" not in actions
    charges = {name: _ledger_charges(fed, name, run_id) for name in fed.institutions}
    for name, rows_ in charges.items():
        assert [r for r, _ in rows_] == [1, 2, 3], name  # the retried round charged once
        assert rows_[-1][1] <= 3.0 + 1e-6, name  # the run's epsilon, no more

    # The same run, uninterrupted, submitted straight to Flower with its own checkpoints.
    reference_dir = tmp_path / "reference"
    overrides = _request(fed, run_id=run_id, min_clients=3, checkpoint_dir=reference_dir)
    overrides.database_url = f"sqlite:///{tmp_path / 'reference.db'}"
    flower_id = fed.coordinator.flower.submit(fed.config.app_dir, overrides.overrides())
    info = fed.coordinator.wait(flower_id, RUN_TIMEOUT)
    assert info.succeeded, info.raw.get("status-details")
    assert {n: _ledger_charges(fed, n, run_id) for n in fed.institutions} == charges

    a = decrypt_state(
        read_checkpoint(fed.config.run.checkpoint_dir / run_id), "credit-default", fed.he_secret
    )
    b = decrypt_state(read_checkpoint(reference_dir / run_id), "credit-default", fed.he_secret)
    worst = max(float(np.abs(a[k] - b[k]).max()) for k in a)
    assert worst < 1e-4, worst
    record = json.loads((fed.config.runs_dir / f"{run_id}.json").read_text())
    assert record["overrides"]["resume"] is True and run.flower_run_id in record["flower_run_ids"]

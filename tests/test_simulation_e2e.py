"""A real federated run through Flower's Simulation Engine (Ray), small and fast."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from simulations.runner import SimulationConfig, run

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def banks_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("banks")
    metrics = run(SimulationConfig(scenario="banks", clients=3, rounds=3, seed=7, out=out, cpus=2))
    return out, metrics


def test_metrics_json_contract(banks_run: tuple[Path, dict]) -> None:
    out, metrics = banks_run
    on_disk = json.loads((out / "metrics.json").read_text())
    assert on_disk == json.loads(json.dumps(metrics))
    assert on_disk["config"]["task"] == "credit-default"
    assert on_disk["config"]["clients"] == 3
    assert [r["round"] for r in on_disk["rounds"]] == [1, 2, 3]
    for r in on_disk["rounds"]:
        assert r["clients"] == ["bank-0", "bank-1", "bank-2"]
        assert r["bytes_up"] > 0 and r["bytes_down"] > r["bytes_up"]  # train + evaluate go down
        assert 0.0 <= r["metrics"]["accuracy"] <= 1.0 and r["metrics"]["loss"] > 0
        assert r["seconds"] > 0
    for key in ("final", "centralized"):
        assert set(on_disk[key]) == {"accuracy", "auc"}
    assert sum(i["records"] for i in on_disk["institutions"]) == 1000


def test_federated_model_learns(banks_run: tuple[Path, dict]) -> None:
    _, metrics = banks_run
    # German Credit: 70% of applicants are good payers; a useful model ranks above chance.
    assert metrics["final"]["auc"] > 0.65
    assert metrics["final"]["accuracy"] >= 0.68


def test_plots_and_model_written(banks_run: tuple[Path, dict]) -> None:
    out, _ = banks_run
    for name in ("rounds.png", "roc.png", "model.pt"):
        assert (out / name).stat().st_size > 1000
    assert len(list((out / "data").glob("bank-*.csv"))) == 3


def test_privacy_spent_is_recorded_per_institution_and_round(banks_run: tuple[Path, dict]) -> None:
    out, metrics = banks_run
    assert metrics["config"]["dp"] is True and metrics["config"]["dp_epsilon"] == 8.0
    series: dict[str, list[float]] = {}
    for r in metrics["rounds"]:
        assert set(r["epsilon"]) == {"bank-0", "bank-1", "bank-2"}
        for who, eps in r["epsilon"].items():
            series.setdefault(who, []).append(eps)
    for eps in series.values():
        assert eps == sorted(eps) and 0 < eps[0] < eps[-1] <= 8.0
        assert eps[-1] > 7.0  # calibrated for the whole run: the last round lands near the target
    assert (out / "epsilon.png").stat().st_size > 1000


def test_an_institution_out_of_budget_is_left_out_and_the_reason_recorded(tmp_path: Path) -> None:
    metrics = run(
        SimulationConfig(
            scenario="banks",
            clients=3,
            rounds=2,
            seed=5,
            he=False,
            out=tmp_path,
            cpus=2,
            dp_budgets={"bank-1": 1.0},
        )
    )
    for r in metrics["rounds"]:
        assert r["clients"] == ["bank-0", "bank-2"]
        assert "budget" in r["rejected"]["bank-1"] and "bank-1" not in r["epsilon"]
    from privacy.ledger import Ledger

    refused = Ledger(tmp_path / "state" / "bank-1" / "ledger.db")
    assert refused.charges() == [] and refused.budget("credit-default@bank-1") is None
    kept = Ledger(tmp_path / "state" / "bank-0" / "ledger.db")
    assert [c.round for c in kept.charges()] == [1, 2]


def test_digits_image_task_runs(tmp_path: Path) -> None:
    metrics = run(
        SimulationConfig(
            scenario="hospitals",
            task="digits",
            clients=2,
            rounds=2,
            partition="iid",
            out=tmp_path,
            cpus=2,
            dp=False,  # learning in two rounds; DP on images is covered in test_dp
        )
    )
    assert metrics["final"]["accuracy"] > 0.5
    assert "auc" not in metrics["final"]
    assert not (tmp_path / "roc.png").exists()


def test_runs_on_a_ray_cluster(tmp_path: Path) -> None:
    ray = shutil.which("ray", path=str(Path(sys.executable).parent))
    assert ray, "the ray CLI ships with flwr[simulation]"
    port = 6391
    subprocess.run(
        [
            ray,
            "start",
            "--head",
            f"--port={port}",
            "--num-cpus=2",
            "--include-dashboard=false",
            "--disable-usage-stats",
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    try:
        metrics = run(
            SimulationConfig(
                scenario="hospitals",
                clients=2,
                rounds=1,
                partition="iid",
                out=tmp_path,
                ray_address=f"127.0.0.1:{port}",
            )
        )
        assert metrics["rounds"][0]["clients"] == ["hospital-0", "hospital-1"]
    finally:
        subprocess.run([ray, "stop", "--force"], capture_output=True, timeout=120)


def test_cli_reports_bad_input_in_one_line(tmp_path: Path) -> None:
    cli = Path(sys.executable).parent / "fl-sim"
    res = subprocess.run(
        [str(cli), "run", "airlines", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode == 2
    assert "unknown scenario 'airlines'" in res.stdout
    assert "Traceback" not in res.stdout + res.stderr


def test_resume_after_crash_equals_uninterrupted_run(tmp_path: Path) -> None:
    """A run stopped after round 2 and resumed to round 4 ends where a straight run ends."""
    import torch

    # Same seed, same federation keys; without DP so that both runs draw identical batches.
    common = dict(
        scenario="banks", clients=2, partition="iid", seed=3, cpus=2, dp=False, home=tmp_path
    )
    straight = tmp_path / "straight"
    run(SimulationConfig(rounds=4, out=straight, **common))
    ckpts = tmp_path / "ckpts"
    first = run(SimulationConfig(rounds=2, out=tmp_path / "a", checkpoint_dir=ckpts, **common))
    run_id = first["config"]["run_id"]
    resumed = run(
        SimulationConfig(
            rounds=4, out=tmp_path / "b", checkpoint_dir=ckpts, resume_run=run_id, **common
        )
    )
    assert [r["round"] for r in resumed["rounds"]] == [3, 4]
    a = torch.load(straight / "model.pt")
    b = torch.load(tmp_path / "b" / "model.pt")
    for k in a:
        assert torch.allclose(a[k], b[k], atol=1e-5), k


def test_encrypted_aggregation_equals_plaintext_fedavg(tmp_path: Path) -> None:
    """3 rounds, 5 institutions: the model decrypted at every institution is FedAvg's."""
    import torch

    common = dict(
        scenario="hospitals", clients=5, rounds=3, partition="dirichlet", seed=11, cpus=2, dp=False
    )
    enc = run(SimulationConfig(out=tmp_path / "he", he=True, **common))
    plain = run(SimulationConfig(out=tmp_path / "plain", he=False, **common))
    a = torch.load(tmp_path / "he" / "model.pt")
    b = torch.load(tmp_path / "plain" / "model.pt")
    worst = max(float((a[k] - b[k]).abs().max()) for k in a)
    assert worst < 1e-4, worst
    assert enc["rounds"][0]["bytes_up"] > plain["rounds"][0]["bytes_up"] > 0
    for r in enc["rounds"]:
        assert len(r["per_client"]) == 5
        for c in r["per_client"].values():
            assert c["bytes_up"] > 0 and c["he-encrypt-s"] > 0
        assert r["he"]["sum_seconds"] > 0


def test_audit_after_the_final_round_reports_every_institution(tmp_path: Path) -> None:
    metrics = run(
        SimulationConfig(
            scenario="hospitals",
            clients=2,
            rounds=2,
            seed=2,
            he=False,
            out=tmp_path,
            cpus=2,
            audit=True,
        )
    )
    assert set(metrics["audit"]) == {"hospital-0", "hospital-1"}
    for who, rep in metrics["audit"].items():
        assert rep["accountant_epsilon"] == metrics["rounds"][-1]["epsilon"][who]
        assert set(rep["attacks"]) == {"loss", "lira"}
        for a in rep["attacks"].values():
            assert 0.0 <= a["auc_ci"][0] <= a["auc"] <= a["auc_ci"][1] <= 1.0
            # the attack may not prove more than DP promised (beyond its interval)
            assert a["epsilon_lower_bound"] <= rep["accountant_epsilon"]
    on_disk = json.loads((tmp_path / "metrics.json").read_text())
    assert on_disk["audit"] == json.loads(json.dumps(metrics["audit"]))
    for name in ("audit_roc.png", "audit_epsilon.png"):
        assert (tmp_path / name).stat().st_size > 1000


def test_a_private_run_repeats_exactly_with_its_seed(tmp_path: Path) -> None:
    import torch

    common = dict(scenario="banks", clients=2, rounds=2, seed=9, he=False, cpus=2)
    one = run(SimulationConfig(out=tmp_path / "one", **common))
    two = run(SimulationConfig(out=tmp_path / "two", **common))
    assert one["rounds"][-1]["epsilon"] == two["rounds"][-1]["epsilon"]
    a, b = torch.load(tmp_path / "one" / "model.pt"), torch.load(tmp_path / "two" / "model.pt")
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_provenance_of_the_final_model_after_a_run(banks_run: tuple[Path, dict]) -> None:
    from knowledge_graph.provenance import contributors
    from knowledge_graph.store import KnowledgeGraph

    out, metrics = banks_run
    last = metrics["rounds"][-1]
    with KnowledgeGraph.open(out / "kg") as kg:
        who = contributors(kg, metrics["config"]["run_id"], f"round-{last['round']}")
    assert [w for w, _, _ in who] == ["bank-0", "bank-1", "bank-2"]
    for name, eps, rounds in who:
        assert eps == pytest.approx(last["epsilon"][name]) and rounds == 3


def test_own_column_names_and_units_train_as_well_as_shared_ones(tmp_path: Path) -> None:
    """Each bank names, codes and scales its columns its own way; the graph aligns them."""
    common = dict(scenario="banks", clients=3, rounds=3, seed=4, he=False, dp=False, cpus=2)
    own = run(SimulationConfig(out=tmp_path / "own", kg=True, **common))
    shared = run(SimulationConfig(out=tmp_path / "shared", kg=False, **common))
    header = (tmp_path / "own" / "data" / "bank-1.csv").read_text().splitlines()[0]
    assert "kreditbetrag_dm" in header and "credit_amount" not in header
    assert "credit_amount_thousand_euro" in (tmp_path / "own" / "data" / "bank-2.csv").read_text()
    assert own["final"]["accuracy"] == pytest.approx(shared["final"]["accuracy"], abs=0.005)
    assert own["final"]["auc"] == pytest.approx(shared["final"]["auc"], abs=0.005)

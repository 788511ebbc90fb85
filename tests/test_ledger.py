"""The institution's privacy ledger: budgets, refusals, idempotence and durability."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest
import torch
from typer.testing import CliRunner

from fl_client.cli import app as client_cli
from fl_client.data import prepare
from fl_client.node import NodeSettings
from fl_client.private_round import train_round
from fl_client.run_config import TrainConfig
from fl_client.tasks import get_task
from privacy.dp import BudgetExceeded, DPConfig, epsilon_of
from privacy.ledger import Ledger

STEP = (1.2, 0.05, 60)  # noise multiplier, sample rate, steps


def test_overspend_is_refused_before_anything_is_written(tmp_path) -> None:
    ledger = Ledger(tmp_path / "l.db")
    one, three = epsilon_of([STEP], 1e-5), epsilon_of([STEP, STEP, STEP], 1e-5)
    budget = round((one + three) / 2, 2)
    ledger.set_budget("loans", budget)
    ledger.charge("loans", "r1", 1, STEP, 1e-5)
    with pytest.raises(
        BudgetExceeded, match=rf"past its budget {budget:g} .*fl-client budget --dataset loans"
    ) as err:
        for rnd in (2, 3):
            ledger.charge("loans", "r1", rnd, STEP, 1e-5)
    assert "\n" not in str(err.value)
    rounds = [c.round for c in ledger.charges("loans")]
    assert rounds == sorted(set(rounds)) and len(rounds) < 3
    assert ledger.spent("loans") <= budget


def test_two_runs_draw_on_one_budget_and_each_has_its_own_epsilon(tmp_path) -> None:
    ledger = Ledger(tmp_path / "l.db")
    ledger.set_budget("loans", 5.0)
    a = ledger.charge("loans", "run-a", 1, STEP, 1e-5)
    b = ledger.charge("loans", "run-b", 1, STEP, 1e-5)
    assert a.run_epsilon == pytest.approx(b.run_epsilon)  # each run alone spent one round
    assert b.dataset_epsilon == pytest.approx(epsilon_of([STEP, STEP], 1e-5))
    assert b.dataset_epsilon > a.dataset_epsilon
    other = (
        ledger.charge("xrays", "run-a", 1, STEP, 1e-5) if ledger.set_budget("xrays", 5.0) else None
    )
    assert other is not None and other.dataset_epsilon == pytest.approx(a.dataset_epsilon)


def test_a_retried_round_is_charged_once(tmp_path) -> None:
    ledger = Ledger(tmp_path / "l.db")
    ledger.set_budget("loans", 5.0)
    first = ledger.charge("loans", "r", 4, STEP, 1e-5)
    again = ledger.charge("loans", "r", 4, STEP, 1e-5)
    assert again.id == first.id and len(ledger.charges()) == 1


def test_no_budget_and_no_default_is_refused(tmp_path) -> None:
    ledger = Ledger(tmp_path / "l.db")
    with pytest.raises(BudgetExceeded, match="has no privacy budget"):
        ledger.charge("loans", "r", 1, STEP, 1e-5)
    assert ledger.charges() == []
    ledger.set_budget("loans", 5.0, delta=1e-6)
    with pytest.raises(BudgetExceeded, match="above the budget's delta"):
        ledger.charge("loans", "r", 1, STEP, 1e-5)
    assert ledger.charges() == []


def test_accountant_state_survives_a_client_restart(tmp_path) -> None:
    task = get_task("credit-default")
    data = prepare(task.reference_data().iloc[:300].reset_index(drop=True), task.schema, 0.2, 0)
    node = NodeSettings("bank-0", tmp_path / "x.csv", "loans", tmp_path / "state")
    cfg = TrainConfig("run-z", task.name, 3, 1, 32, 0.05, 0)
    dp = DPConfig(target_epsilon=3.0)
    eps = []
    for rnd in (1, 2, 3):  # every round opens the ledger afresh, as a restarted client does
        out = train_round(
            node, cfg, dp, rnd, task, data, task.build_model(), torch.device("cpu"), 0
        )
        eps.append(out.metrics["epsilon"])
    reopened = Ledger(node.ledger_path)
    history = reopened.history("loans", "run-z")
    assert len(history) == 3
    assert eps[-1] == pytest.approx(epsilon_of(history, 1e-5))
    assert reopened.spent("loans") == pytest.approx(eps[-1])


def test_a_killed_process_loses_no_recorded_charge(tmp_path) -> None:
    db = tmp_path / "l.db"
    script = textwrap.dedent(
        f"""
        import sys, time
        from privacy.ledger import Ledger
        ledger = Ledger({str(db)!r})
        ledger.set_budget("loans", 50.0)
        for rnd in range(1, 6):
            ledger.charge("loans", "r", rnd, {STEP!r}, 1e-5)
            print(rnd, flush=True)
        time.sleep(60)
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        seen = [proc.stdout.readline().strip() for _ in range(5)]  # type: ignore[union-attr]
        assert seen == ["1", "2", "3", "4", "5"]
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    time.sleep(0.1)
    assert [c.round for c in Ledger(db).charges("loans")] == [1, 2, 3, 4, 5]


def test_budget_cli_sets_and_shows(tmp_path) -> None:
    db = tmp_path / "l.db"
    runner = CliRunner()
    res = runner.invoke(
        client_cli, ["budget", "--ledger", str(db), "--dataset", "loans", "--limit", "4"]
    )
    assert res.exit_code == 0, res.output
    Ledger(db).charge("loans", "run-q", 1, STEP, 1e-5)
    res = runner.invoke(client_cli, ["budget", "--ledger", str(db)], env={"COLUMNS": "200"})
    assert res.exit_code == 0 and "loans" in res.output and "run-q" in res.output
    assert f"{epsilon_of([STEP], 1e-5):.3f}" in res.output
    res = runner.invoke(
        client_cli, ["budget", "--ledger", str(tmp_path / "none.db")], env={"COLUMNS": "200"}
    )
    assert res.exit_code == 2 and "no ledger yet" in res.output
    res = runner.invoke(
        client_cli, ["budget", "--ledger", str(db), "--dataset", "loans", "--limit", "-1"]
    )
    assert res.exit_code == 2 and "must be > 0" in res.output
    assert Ledger(db).budget("loans").epsilon == 4.0  # type: ignore[union-attr]

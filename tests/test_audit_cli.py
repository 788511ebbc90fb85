"""`fl-client audit` on a model file trained here, and the one-line errors users meet."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import typer
from click.testing import Result
from typer.testing import CliRunner

from fl_client.cli_audit import audit
from fl_client.data import load_table, prepare
from fl_client.tasks import get_task
from privacy.audit import standard_trainer

app = typer.Typer(pretty_exceptions_enable=False)
app.command("audit")(audit)
app.command("noop")(lambda: None)  # a second command keeps "audit" a subcommand, as mounted
runner = CliRunner()
TASK = get_task("credit-default")


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """An institution's CSV and the model trained on its split (seed 42, 20% held out)."""
    root = tmp_path_factory.mktemp("inst")
    csv = root / "bank.csv"
    TASK.reference_data().iloc[:300].to_csv(csv, index=False)
    data = prepare(load_table(csv, TASK.schema), TASK.schema, 0.2, 42)
    model = standard_trainer(TASK, epochs=40)(data.x_train, data.y_train, 1)
    path = root / "model.pt"
    torch.save(model.state_dict(), path)
    return csv, path


def _args(csv: Path, model: Path, out: Path, *extra: str) -> list[str]:
    return [
        "audit",
        "--model",
        str(model),
        "--data",
        str(csv),
        "--task",
        TASK.name,
        "--out",
        str(out),
        "--shadows",
        "4",
        "--epochs",
        "40",
        "--bootstrap",
        "200",
        *extra,
    ]


def test_audit_writes_report_and_plots(trained: tuple[Path, Path], tmp_path: Path) -> None:
    csv, model = trained
    res = runner.invoke(app, _args(csv, model, tmp_path, "--accountant-epsilon", "1000"))
    assert res.exit_code == 0, res.output
    assert "membership-inference audit" in res.output and "≤ accountant's ε 1000" in res.output
    report = json.loads((tmp_path / "audit.json").read_text())
    assert set(report["attacks"]) == {"loss", "lira"}
    loss = report["attacks"]["loss"]
    assert loss["n_members"] == 240 and loss["n_nonmembers"] == 60  # the run's own split
    assert 0.0 <= loss["auc"] <= 1.0 and loss["epsilon_lower_bound"] >= 0.0
    assert report["target"]["member_accuracy"] > report["target"]["nonmember_accuracy"]
    for name in ("audit_roc.png", "audit_epsilon.png"):
        assert (tmp_path / name).stat().st_size > 1000


def _one_line_error(res: Result) -> str:
    assert res.exit_code == 2, res.output
    assert res.stderr.startswith("error: ") and res.stderr.count("\n") == 1, res.stderr
    assert "Traceback" not in res.output
    return res.stderr


def test_bad_input_gives_one_line_errors_and_keeps_the_old_report(
    trained: tuple[Path, Path], tmp_path: Path
) -> None:
    csv, model = trained
    ok = runner.invoke(app, [*_args(csv, model, tmp_path), "--attack", "loss"])
    assert ok.exit_code == 0, ok.output
    before = (tmp_path / "audit.json").read_bytes()

    other = tmp_path / "bc.pt"
    torch.save(get_task("breast-cancer").build_model().state_dict(), other)
    assert "does not fit task 'credit-default'" in _one_line_error(
        runner.invoke(app, _args(csv, other, tmp_path))
    )
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a model")
    assert "not a PyTorch state dict" in _one_line_error(
        runner.invoke(app, _args(csv, junk, tmp_path))
    )
    whole = tmp_path / "whole.pt"
    torch.save({"model": {"weights": [1, 2]}}, whole)
    assert "no state dict of tensors" in _one_line_error(
        runner.invoke(app, _args(csv, whole, tmp_path))
    )
    assert "no such model file" in _one_line_error(
        runner.invoke(app, _args(csv, tmp_path / "absent.pt", tmp_path))
    )
    assert "no such file" in _one_line_error(
        runner.invoke(app, _args(tmp_path / "absent.csv", model, tmp_path))
    )
    assert "unknown task" in _one_line_error(
        runner.invoke(app, [*_args(csv, model, tmp_path)[:5], "--task", "weather"])
    )
    assert "--test-fraction" in _one_line_error(
        runner.invoke(app, [*_args(csv, model, tmp_path), "--test-fraction", "1.5"])
    )
    assert "at least 4 shadow" in _one_line_error(
        runner.invoke(app, [*_args(csv, model, tmp_path), "--shadows", "2"])
    )
    bad_map = tmp_path / "map.json"
    bad_map.write_text("{not json")
    assert "--mapping" in _one_line_error(
        runner.invoke(app, [*_args(csv, model, tmp_path), "--mapping", str(bad_map)])
    )
    assert (tmp_path / "audit.json").read_bytes() == before

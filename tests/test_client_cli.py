from pathlib import Path

from typer.testing import CliRunner

from fl_client.cli import app
from fl_client.tasks import get_task

runner = CliRunner()


def _text(output: str) -> str:
    return " ".join(output.split())  # rich wraps long lines


def test_tasks_lists_the_registry() -> None:
    res = runner.invoke(app, ["tasks"])
    assert res.exit_code == 0
    for name in ("credit-default", "breast-cancer", "digits"):
        assert name in res.output
    res = runner.invoke(app, ["tasks", "credit-default"])
    assert "credit_amount" in res.output and "Deutsche Mark" in res.output


def test_check_accepts_good_data_and_names_the_problem_in_bad(tmp_path: Path) -> None:
    df = get_task("breast-cancer").reference_data()
    good = tmp_path / "h.csv"
    df.to_csv(good, index=False)
    res = runner.invoke(app, ["check", "--data", str(good), "--task", "breast-cancer"])
    assert res.exit_code == 0 and "569 records" in _text(res.output)
    bad = tmp_path / "bad.csv"
    df.drop(columns=["mean_radius"]).to_csv(bad, index=False)
    res = runner.invoke(app, ["check", "--data", str(bad), "--task", "breast-cancer"])
    assert res.exit_code == 2
    assert "column 'mean_radius' is missing" in _text(res.output)
    assert res.exception is None or isinstance(res.exception, SystemExit)

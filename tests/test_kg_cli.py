"""`fl-kg` beyond the basics: JSON-LD cards, export/import through files, one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from fl_client.tasks import get_task
from knowledge_graph.cli import app
from knowledge_graph.simulated import localize

ENV = {"COLUMNS": "200"}


def _card_files(tmp_path: Path) -> tuple[Path, Path]:
    task = get_task("credit-default")
    _, card = localize(task.reference_data().iloc[:40], task.name, 2, "bank-2", 0)
    yaml_file = tmp_path / "card.yaml"
    yaml_file.write_text(card.to_yaml())
    jsonld = tmp_path / "card.jsonld"
    jsonld.write_text(card.to_jsonld())
    return yaml_file, jsonld


def test_json_ld_card_dump_and_restore(tmp_path: Path) -> None:
    runner = CliRunner()
    _, jsonld = _card_files(tmp_path)
    store = ["--store", str(tmp_path / "kg")]
    assert runner.invoke(app, ["validate", str(jsonld)], env=ENV).exit_code == 0
    assert runner.invoke(app, ["add", str(jsonld), *store], env=ENV).exit_code == 0
    dump = runner.invoke(app, ["export", "--format", "trig", *store], env=ENV)
    assert dump.exit_code == 0 and "credit_amount_thousand_euro" in dump.output
    (tmp_path / "dump.trig").write_text(dump.output)
    restored = ["--store", str(tmp_path / "kg2")]
    res = runner.invoke(app, ["import", str(tmp_path / "dump.trig"), *restored], env=ENV)
    assert res.exit_code == 0 and "imported" in res.output
    plan = runner.invoke(app, ["plan", "credit-default", *restored], env=ENV)
    assert plan.exit_code == 0 and "bank-2" in plan.output and "×" in plan.output


@pytest.mark.parametrize(
    ("args", "message", "with_store"),
    [
        (["plan", "credit-default"], "no knowledge graph at", False),
        (["query", "ASK { ?s ?p ?o }"], "no knowledge graph at", False),
        (["remove", "bank-2", "x"], "no knowledge graph at", False),
        (["remove", "bank-2", "x"], "no card for data set 'x' of 'bank-2'", True),
        (["plan", "weather"], "unknown task", True),
        (["import", "{tmp}/dump.xyz"], "cannot tell the format from the name; pass --format", True),
        (["import", "{tmp}/missing.ttl"], "missing.ttl: cannot read it", True),
        (["query", "DELETE WHERE { ?s ?p ?o }"], "only read-only queries", True),
        (["export", "--format", "rdfa"], "unknown format 'rdfa'", True),
    ],
)
def test_errors_are_one_line_and_exit_2(
    tmp_path: Path, args: list[str], message: str, with_store: bool
) -> None:
    runner = CliRunner()
    store = ["--store", str(tmp_path / "kg")]
    if with_store:
        yaml_file, _ = _card_files(tmp_path)
        assert runner.invoke(app, ["add", str(yaml_file), *store], env=ENV).exit_code == 0
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    res = runner.invoke(app, [*args, *store], env=ENV)
    assert res.exit_code == 2, res.output
    assert message in res.output and len(res.output.strip().splitlines()) == 1, res.output


def test_default_store_comes_from_the_environment(tmp_path: Path) -> None:
    runner = CliRunner()
    yaml_file, _ = _card_files(tmp_path)
    env = {**ENV, "FEDKG_KG_DIR": str(tmp_path / "env-kg")}
    assert runner.invoke(app, ["add", str(yaml_file)], env=env).exit_code == 0
    assert (tmp_path / "env-kg").is_dir()
    res = runner.invoke(app, ["query", "SELECT ?id WHERE { ?d dct:identifier ?id }"], env=env)
    assert res.exit_code == 0 and "credit-default@bank-2" in res.output
    concepts = runner.invoke(app, ["concepts", "digits"], env=ENV)
    assert "imaging:pixel_63" in concepts.output and "finance:" not in concepts.output


def test_the_documented_example_card_is_valid() -> None:
    from knowledge_graph.alignment import align
    from knowledge_graph.cards import load_card, validate_card

    doc = (Path(__file__).parent.parent / "docs" / "knowledge_graph.md").read_text()
    block = doc.split("```yaml\n", 1)[1].split("```", 1)[0]
    card = load_card(block)
    assert validate_card(card) == []
    rules = align(get_task("credit-default"), card).mapping.rules
    assert rules["duration_in_month"].scale == 12.0
    assert rules["credit_amount"].scale == pytest.approx(1955.83)
    assert rules["purpose"].recode is not None and rules["purpose"].recode["verw_1"] == "car (used)"

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fl_client.data import ColumnRule, DataError, FeatureMapping, load_table, prepare
from fl_client.tasks import get_task

TASK = get_task("credit-default")


def _write(tmp_path: Path, df: pd.DataFrame, name: str = "bank.csv") -> Path:
    path = tmp_path / name
    df.to_csv(path, index=False)
    return path


def test_reads_csv_and_parquet_alike(tmp_path: Path) -> None:
    df = TASK.reference_data().head(50)
    csv = load_table(_write(tmp_path, df), TASK.schema)
    pq_path = tmp_path / "bank.parquet"
    df.to_parquet(pq_path)
    pq = load_table(pq_path, TASK.schema)
    pd.testing.assert_frame_equal(csv, pq)
    assert list(csv.columns) == [*TASK.schema.feature_names, "creditability"]


def test_missing_column_names_file_and_column(tmp_path: Path) -> None:
    path = _write(tmp_path, TASK.reference_data().drop(columns=["age_in_years"]))
    with pytest.raises(DataError, match=r"bank\.csv: column 'age_in_years' is missing"):
        load_table(path, TASK.schema)


def test_wrong_type_names_column_and_row(tmp_path: Path) -> None:
    df = TASK.reference_data().head(10)
    df["credit_amount"] = df["credit_amount"].astype(object)
    df.loc[3, "credit_amount"] = "twelve hundred"
    with pytest.raises(DataError, match=r"column 'credit_amount' must be numeric but row 5"):
        load_table(_write(tmp_path, df), TASK.schema)


def test_unknown_category_is_refused(tmp_path: Path) -> None:
    df = TASK.reference_data().head(10)
    df.loc[0, "housing"] = "castle"
    with pytest.raises(DataError, match=r"column 'housing' row 2 holds 'castle'"):
        load_table(_write(tmp_path, df), TASK.schema)


def test_empty_and_header_only_files(tmp_path: Path) -> None:
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(DataError, match=r"empty\.csv: the file is empty"):
        load_table(empty, TASK.schema)
    header = tmp_path / "header.csv"
    header.write_text(",".join(TASK.reference_data().columns) + "\n")
    with pytest.raises(DataError, match="no rows"):
        load_table(header, TASK.schema)


def test_malformed_csv_and_missing_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text('a,b\n1,"unterminated\n')
    with pytest.raises(DataError, match=r"bad\.csv: cannot be parsed"):
        load_table(bad, TASK.schema)
    with pytest.raises(DataError, match="no such file"):
        load_table(tmp_path / "nope.csv", TASK.schema)


def test_mapping_renames_converts_and_recodes(tmp_path: Path) -> None:
    df = TASK.reference_data().head(40)
    local = df.rename(columns={"credit_amount": "kreditbetrag_tsd"})
    local["kreditbetrag_tsd"] = local["kreditbetrag_tsd"] / 1000.0
    local["foreign_worker"] = local["foreign_worker"].map({"yes": "Y", "no": "N"})
    rules = {c: ColumnRule(c) for c in df.columns}
    rules["credit_amount"] = ColumnRule("kreditbetrag_tsd", scale=1000.0)
    rules["foreign_worker"] = ColumnRule("foreign_worker", recode={"Y": "yes", "N": "no"})
    mapping = FeatureMapping.from_json(FeatureMapping(rules).to_json())
    got = load_table(_write(tmp_path, local), TASK.schema, mapping)
    want = load_table(_write(tmp_path, df, "orig.csv"), TASK.schema)
    pd.testing.assert_frame_equal(got, want)


def test_standardisation_uses_only_local_training_split() -> None:
    df = load_table_from_reference("breast-cancer")
    data = prepare(df, get_task("breast-cancer").schema, test_fraction=0.25, seed=0)
    assert np.allclose(data.x_train.mean(axis=0), 0.0, atol=1e-5)
    assert np.allclose(data.x_train.std(axis=0), 1.0, atol=1e-3)
    assert not np.allclose(data.x_test.mean(axis=0), 0.0, atol=1e-3)
    assert data.num_train + data.num_test == len(df)


def load_table_from_reference(name: str) -> pd.DataFrame:
    from fl_client.data import validate_frame

    task = get_task(name)
    return validate_frame(task.reference_data(), task.schema)


def test_federated_statistics_equal_pooled_ones() -> None:
    from fl_client.data import Encoder, FeatureStats

    task = get_task("breast-cancer")
    df = load_table_from_reference("breast-cancer")
    parts = [df.iloc[:100], df.iloc[100:350], df.iloc[350:]]
    total = FeatureStats.of(parts[0], task.schema)
    for p in parts[1:]:
        total = total + FeatureStats.of(p, task.schema)
    total = FeatureStats.from_json(total.to_json())
    fed = Encoder(task.schema).fit_stats(total)
    pooled = Encoder(task.schema).fit(df)
    assert np.allclose(fed.mean, pooled.mean) and np.allclose(fed.std, pooled.std)
    local = Encoder(task.schema).fit(parts[0])
    assert not np.allclose(local.mean, pooled.mean)

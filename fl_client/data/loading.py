"""Read an institution's own table and check it against the task's schema.

Errors are one line naming the file, the column and the fix: the person running this is an
institution's data engineer, not the author of the model.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from fl_client.data.errors import DataError
from fl_client.data.mapping import FeatureMapping
from fl_client.data.schema import Column, Schema


def read_table(path: str | Path) -> pd.DataFrame:
    """CSV or Parquet by extension; nothing else is guessed."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file; point --data at the institution's CSV or Parquet")
    try:
        if path.suffix.lower() in {".parquet", ".pq"}:
            df = pd.read_parquet(path)
        else:
            df = pd.read_csv(path, skipinitialspace=True)
    except pd.errors.EmptyDataError:
        raise DataError(
            f"{path}: the file is empty; export the data set with a header row"
        ) from None
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError, OSError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(f"{path}: cannot be parsed ({first}); save it as UTF-8 CSV") from None
    if df.empty:
        raise DataError(f"{path}: the file has a header but no rows; it holds no records")
    df.columns = [str(c).strip() for c in df.columns]
    return df


def load_table(
    path: str | Path, schema: Schema, mapping: FeatureMapping | None = None
) -> pd.DataFrame:
    """The institution's table in the task's columns, typed and validated."""
    raw = read_table(path)
    origin = str(path)
    if mapping is not None:
        raw = mapping.apply(raw, origin=origin)
    return validate_frame(raw, schema, origin)


def validate_frame(df: pd.DataFrame, schema: Schema, origin: str = "table") -> pd.DataFrame:
    out: dict[str, pd.Series] = {}
    for column in (*schema.columns, schema.target):
        if column.name not in df.columns:
            raise DataError(
                f"{origin}: column {column.name!r} is missing; rename the column or map it "
                "in the data set card"
            )
        out[column.name] = _typed(df[column.name], column, origin)
    return pd.DataFrame(out, index=df.index).reset_index(drop=True)


def _typed(series: pd.Series, column: Column, origin: str) -> pd.Series:
    if column.kind == "numeric":
        values = pd.to_numeric(series, errors="coerce")
        bad = values.isna() | ~np.isfinite(values.to_numpy(dtype=float, na_value=np.nan))
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0])
            raise DataError(
                f"{origin}: column {column.name!r} must be numeric but row {row + 2} holds "
                f"{series.iloc[row]!r}; fix or drop that row"
            )
        return values.astype("float64")
    labels = series.astype("string").str.strip()
    unknown = labels.isna() | ~labels.isin(column.categories)
    if unknown.any():
        row = int(np.flatnonzero(unknown.to_numpy())[0])
        allowed = ", ".join(repr(c) for c in column.categories[:6])
        more = ", ..." if len(column.categories) > 6 else ""
        raise DataError(
            f"{origin}: column {column.name!r} row {row + 2} holds {series.iloc[row]!r}, "
            f"not one of {allowed}{more}; recode it in the data set card"
        )
    return labels

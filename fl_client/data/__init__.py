"""An institution's data: read its own file, align it to the task, encode it locally."""

from fl_client.data.errors import DataError
from fl_client.data.loading import load_table, read_table, validate_frame
from fl_client.data.mapping import ColumnRule, FeatureMapping
from fl_client.data.preprocess import Encoder, FeatureStats, LocalData, prepare, split
from fl_client.data.schema import Column, Schema

__all__ = [
    "Column",
    "ColumnRule",
    "DataError",
    "Encoder",
    "FeatureMapping",
    "FeatureStats",
    "LocalData",
    "Schema",
    "load_table",
    "prepare",
    "read_table",
    "split",
    "validate_frame",
]

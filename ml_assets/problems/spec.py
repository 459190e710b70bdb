"""The spec types a problem module fills in."""

from __future__ import annotations

from dataclasses import dataclass

import pandera.pandas as pa


@dataclass(frozen=True)
class DatasetSpec:
    """A daily landed dataset: where its files land, its contract, and its time column.

    Files land as `<landing_dir>/<name>/<name>_<YYYY-MM-DD>[_suffix].(csv|parquet)`; the date in
    the file name is the partition (the day the file describes or arrived for).
    """

    name: str
    model: type[pa.DataFrameModel]
    date_column: str  # values may not lie after the partition day

    @property
    def schema(self) -> pa.DataFrameSchema:
        return self.model.to_schema()

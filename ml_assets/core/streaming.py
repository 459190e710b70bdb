"""Training sets from a window of daily Parquet partitions, one day in memory at a time.

Why per day with pyarrow and pandas, not DuckDB or Dask: the join key (id, day) contains the day,
so the window's join falls apart into independent daily joins; streaming them keeps one day plus
the kept rows in memory, with no new dependency, no spill files and no cluster. DuckDB would pay off
for cross-day SQL, Dask for more than one machine; neither is needed for a window of days.

Three passes, each reading only the columns it needs (Parquet is columnar):
1. the time column of every partition: which partitions hold which day (labels land days after the
   snapshots they label, so a labels partition is not the day it labels);
2. per day, the keys of features and labels: joined rows and classes per day (every row is counted,
   so the window, the counts and the class balance are those of the whole window);
3. per window day, the full feature rows joined with their labels: a seeded, time-stratified sample
   when the training set is capped (`max_training_rows`), and the profile sketch of the rows a
   model learns from (train + validation), which sees every row.

Uncapped, the result equals `build_training_set` on the concatenated window (tested).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ml_assets.core.datasets import assign_splits, day_splits, days_in_window, require_days
from ml_assets.core.profile import ReferenceProfile
from ml_assets.core.profile_sketch import SAMPLE_ROWS, ProfileSketch
from ml_assets.problem.spec import ProblemSpec


@dataclass(frozen=True)
class PartitionWindow:
    """Stored partitions by key, not loaded: what the Parquet IO manager hands an input whose
    metadata asks for `lazy_partitions`. Paths are anything with `.open("rb")` (Path, UPath)."""

    paths: dict[str, Any]

    def read(self, key: str, columns: list[str] | None = None) -> pd.DataFrame:
        with self.paths[key].open("rb") as fh:
            return pd.read_parquet(fh, columns=columns)

    def __len__(self) -> int:
        return len(self.paths)


@dataclass
class WindowScan:
    frame: pd.DataFrame  # the training set (a sample of the window's rows when capped)
    days: list[str]  # every day of the window
    rows_seen: dict[str, int]  # per split, every labelled row of the window
    class_counts_seen: dict[str, dict[Any, int]] = field(default_factory=dict)  # per split
    profile: ReferenceProfile | None = None  # train + validation rows, all of them

    @property
    def capped(self) -> bool:
        return len(self.frame) < sum(self.rows_seen.values())


def _day_index(window: PartitionWindow, time_column: str) -> dict[np.datetime64, list[str]]:
    """day -> the partitions holding rows of that day (pass 1: one column read per partition)."""
    index = defaultdict(list)
    for key in sorted(window.paths):
        times = window.read(key, [time_column])[time_column].to_numpy().astype("datetime64[D]")
        for day in np.unique(times):
            index[day].append(key)
    return index


def _table_of_day(window: PartitionWindow, partitions: list[str], day: np.datetime64, time_column: str,
                  columns: list[str] | None = None) -> pa.Table:
    parts = []
    for key in partitions:
        with window.paths[key].open("rb") as fh:
            part = pq.read_table(fh, columns=columns)
        at = part[time_column].to_numpy().astype("datetime64[D]") == day
        parts.append(part if at.all() else part.filter(pa.array(at)))
    return pa.concat_tables(parts)


def _join(left: pa.Table, right: pa.Table, keys: list[str], day: np.datetime64) -> pa.Table:
    """Inner join in Arrow (pandas' merge of object-string ids cost 10x more per row), one-to-one
    as `build_training_set` requires."""
    for side, table in (("features", left), ("labels", right)):
        if table.group_by(keys).aggregate([]).num_rows != table.num_rows:
            raise ValueError(f"{side} of {day} repeat a ({', '.join(keys)}) pair: the join must be one-to-one; "
                             f"deduplicate the {side} of that day")
    right = right.cast(pa.schema([left.schema.field(c) if c in keys else right.schema.field(c)
                                  for c in right.column_names]))  # e.g. timestamp units may differ
    return left.join(right, keys=keys, join_type="inner")


def _quotas(counts: np.ndarray, cap: int) -> np.ndarray:
    """Rows per day, proportional to the day's rows and summing to `cap` (largest remainder)."""
    exact = counts * (cap / counts.sum())
    quota = np.floor(exact).astype(np.int64)
    short = cap - int(quota.sum())
    quota[np.argsort(-(exact - quota), kind="stable")[:short]] += 1
    return np.minimum(quota, counts)


def _ordinal(day: np.datetime64) -> int:
    return int(day.astype("datetime64[D]").astype(np.int64))


def scan_window(features: PartitionWindow, labels: PartitionWindow, spec: ProblemSpec, since: str | None = None,
                max_rows: int | None = None, seed: int = 0, profile: bool | None = None,
                profile_rows: int = SAMPLE_ROWS) -> WindowScan:
    """The training set of `build_training_set`, streamed from stored daily partitions; with
    `max_rows`, each day keeps its proportional share of rows, drawn with `default_rng([seed, day])`
    (so the sample is the same for the same seed and data, whatever the order of the files).
    `profile`: sketch the train + validation rows; None: only when the cap drops rows (otherwise the
    training set holds every row, and the reference profile is built from it exactly)."""
    d, target = spec.data, spec.data.target
    keys = [d.id_column, d.time_column]
    if max_rows is not None and max_rows < 1:
        raise ValueError(f"max_training_rows={max_rows}: use a positive number of rows, or None for all")
    if not len(features):
        raise ValueError("no feature rows to train on: materialize the features for some days first")
    if not len(labels):
        raise ValueError("no labels have arrived yet; labels land days after the snapshots: ingest label files first")
    feature_days, label_days = _day_index(features, d.time_column), _day_index(labels, d.time_column)
    joined, classes, feature_rows = {}, {}, 0
    for day in sorted(feature_days):  # pass 2: keys only
        left = _table_of_day(features, feature_days[day], day, d.time_column, keys)
        feature_rows += left.num_rows
        if day not in label_days:
            continue
        both = _join(left, _table_of_day(labels, label_days[day], day, d.time_column, [*keys, target]), keys, day)
        if both.num_rows:
            joined[day] = both.num_rows
            classes[day] = {c["values"]: c["counts"] for c in pc.value_counts(both[target]).to_pylist()}
    if not joined:
        raise ValueError(f"no labels have arrived for the {feature_rows} feature rows; labels land days "
                         "after the snapshots: ingest later label files first")
    days = days_in_window(np.array(sorted(joined)), spec, since)
    require_days(days, spec, max(joined), since)
    counts = np.array([joined[day] for day in days])
    capped = max_rows is not None and max_rows < counts.sum()
    quota = _quotas(counts, max_rows) if capped else counts
    profile = capped if profile is None else profile
    split_of = {day: str(split) for day, split in zip(days, day_splits(days, days, spec))}
    sketch = ProfileSketch(d.numeric_features, d.categorical_features, profile_rows, seed) if profile else None
    pieces = []
    for day, rows in zip(days, quota):  # pass 3: full rows of the window's days
        table = _join(_table_of_day(features, feature_days[day], day, d.time_column),
                      _table_of_day(labels, label_days[day], day, d.time_column, [*keys, target]), keys, day)
        frame = table.to_pandas().sort_values([d.time_column, d.id_column], kind="stable", ignore_index=True)
        if sketch is not None and split_of[day] != "test":  # what the model is fit and tuned on
            sketch.update(frame, _ordinal(day))
        if rows < len(frame):
            pick = np.random.default_rng([seed, _ordinal(day), 1]).choice(len(frame), int(rows), replace=False)
            frame = frame.iloc[np.sort(pick)]
        pieces.append(frame)
    frame = assign_splits(pd.concat(pieces, ignore_index=True), days, spec)
    rows_seen, balance = defaultdict(int), defaultdict(lambda: defaultdict(int))
    for day in days:
        rows_seen[split_of[day]] += joined[day]
        for label, n in classes[day].items():
            balance[split_of[day]][label] += n
    return WindowScan(frame, [str(day) for day in days], dict(rows_seen),
                      {s: dict(c) for s, c in balance.items()}, sketch.result() if sketch is not None else None)

"""Reference profiles: what the drift tests need of a model's training rows, kept with the model.

Numeric columns keep their finite values sorted (so a daily check sorts only the current day, and
every Evidently statistic stays exact), categorical columns their category counts; both keep null
counts. Stored as one .npz without pickles. A profile streamed over more rows than fit in memory
(core/profile_sketch.py) keeps a seeded uniform sample of the values with the exact count, nulls,
standard deviation and category counts.
"""

from __future__ import annotations

import json
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import BinaryIO

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class NumericProfile:
    values: np.ndarray  # sorted, finite: all of them, or a seeded uniform sample (see `count`)
    nulls: int
    std: float
    n_unique: int
    count: int | None = None  # finite values in the reference; None: all of them are in `values`

    @property
    def n(self) -> int:
        """How many finite values the reference had (what null rates and bin counts are taken over)."""
        return len(self.values) if self.count is None else self.count

    @property
    def sampled(self) -> bool:
        return self.n != len(self.values)


@dataclass(frozen=True)
class CategoricalProfile:
    categories: np.ndarray  # str
    counts: np.ndarray  # int64, aligned with categories
    nulls: int

    @property
    def n_unique(self) -> int:
        return len(self.categories)


@dataclass(frozen=True)
class ReferenceProfile:
    columns: dict[str, NumericProfile | CategoricalProfile]
    rows: int

    def save(self, out: BinaryIO) -> None:
        """One uncompressed .npz (no pickles): arrays per column plus a JSON header."""
        arrays, header = {}, {"rows": self.rows, "columns": {}}
        for i, (name, col) in enumerate(self.columns.items()):
            if isinstance(col, NumericProfile):
                arrays[f"v{i}"] = col.values
                header["columns"][name] = {"kind": "numeric", "nulls": col.nulls, "std": col.std,
                                           "n_unique": col.n_unique, "count": col.count, "key": i}
            else:
                arrays[f"c{i}"], arrays[f"n{i}"] = col.categories.astype(str), col.counts
                header["columns"][name] = {"kind": "categorical", "nulls": col.nulls, "key": i}
        np.savez(out, header=np.array(json.dumps(header)), **arrays)

    @classmethod
    def load(cls, source: BinaryIO) -> ReferenceProfile:
        with np.load(source, allow_pickle=False) as data:
            header = json.loads(str(data["header"]))
            columns = {}
            for name, meta in header["columns"].items():
                i = meta["key"]
                columns[name] = (NumericProfile(data[f"v{i}"], meta["nulls"], meta["std"], meta["n_unique"],
                                                meta.get("count"))
                                 if meta["kind"] == "numeric" else
                                 CategoricalProfile(data[f"c{i}"].astype(object), data[f"n{i}"], meta["nulls"]))
        return cls(columns, header["rows"])


def default_workers() -> int:
    """One thread more than cores: the calling thread's GIL-bound work (category counts, tests)
    runs between the pool's GIL-free sorts, so cores + 1 sort threads keep every core busy
    (measured at 1M rows on 2 cores: 0.94 s one-shot vs 1.02 s with 2 threads)."""
    return (os.cpu_count() or 1) + 1


def unique_sorted(values: np.ndarray) -> np.ndarray:
    return values[np.concatenate(([True], values[1:] != values[:-1]))] if len(values) else values


def finite_values(series: pd.Series) -> tuple[np.ndarray, int]:
    values = series.to_numpy(dtype=float, na_value=np.nan)
    keep = np.isfinite(values)
    return values[keep], int(len(values) - keep.sum())


def category_key(value) -> str:
    """The one spelling of a category value, whatever dtype carried it: an integer code is the same
    category as int64 `1`, float64 `1.0` (a day with one NaN turns int codes into floats), nullable
    Int64 or a string `"1"`; booleans are `True`/`False` (also inside an object column with NaN);
    a pandas categorical counts by its values. Other floats keep their shortest round-trip text."""
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        return str(int(value)) if float(value).is_integer() else repr(float(value))
    return str(value)


def category_counts(series: pd.Series) -> tuple[np.ndarray, np.ndarray, int]:
    """(categories as their normalised text, counts, nulls): the same for the reference profile
    and every current batch, so dtype differences never show up as unseen categories."""
    counts = series.value_counts(dropna=True, sort=False)
    counts = counts[counts > 0]  # a categorical dtype also lists categories absent from the data
    keys = [category_key(value) for value in counts.index.to_numpy(dtype=object)]  # distinct values only: cheap
    merged = pd.Series(counts.to_numpy(np.int64), index=keys).groupby(level=0, sort=False).sum()  # 1 and "1"
    return merged.index.to_numpy(dtype=object), merged.to_numpy(np.int64), int(len(series) - counts.sum())


def sorted_finite(series: pd.Series) -> tuple[np.ndarray, int]:
    """The finite values sorted, and how many were null or infinite."""
    values, nulls = finite_values(series)
    values.sort()
    return values, nulls


def numeric_profile(values: np.ndarray, nulls: int) -> NumericProfile:
    return NumericProfile(values, nulls, float(np.std(values)) if len(values) else float("nan"),
                          len(unique_sorted(values)))


def build_profile(frame: pd.DataFrame, numeric: list[str] | tuple[str, ...],
                  categorical: list[str] | tuple[str, ...], workers: int | None = None) -> ReferenceProfile:
    if frame.empty:
        raise ValueError("cannot profile an empty reference frame")
    with ThreadPoolExecutor(workers or default_workers()) as pool:
        # numpy sorts release the GIL: they run on the pool while this thread counts categories
        # (pandas hashing holds the GIL, so a pool would only serialize it)
        pending = {c: pool.submit(sorted_finite, frame[c]) for c in numeric}
        categories = {c: CategoricalProfile(*category_counts(frame[c])) for c in categorical}
        columns = {c: numeric_profile(*pending[c].result()) for c in numeric}
    return ReferenceProfile({**columns, **categories}, len(frame))

"""Reference profiles: what the drift tests need of a model's training rows, kept with the model.

Numeric columns keep their finite values sorted (so a daily check sorts only the current day, and
every Evidently statistic stays exact), categorical columns their category counts; both keep null
counts. Stored as one .npz without pickles.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import BinaryIO

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class NumericProfile:
    values: np.ndarray  # sorted, finite
    nulls: int
    std: float
    n_unique: int


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
                                           "n_unique": col.n_unique, "key": i}
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
                columns[name] = (NumericProfile(data[f"v{i}"], meta["nulls"], meta["std"], meta["n_unique"])
                                 if meta["kind"] == "numeric" else
                                 CategoricalProfile(data[f"c{i}"].astype(object), data[f"n{i}"], meta["nulls"]))
        return cls(columns, header["rows"])


def unique_sorted(values: np.ndarray) -> np.ndarray:
    return values[np.concatenate(([True], values[1:] != values[:-1]))] if len(values) else values


def finite_values(series: pd.Series) -> tuple[np.ndarray, int]:
    values = series.to_numpy(dtype=float, na_value=np.nan)
    keep = np.isfinite(values)
    return values[keep], int(len(values) - keep.sum())


def category_counts(series: pd.Series) -> tuple[np.ndarray, np.ndarray, int]:
    counts = series.value_counts(dropna=True, sort=False)
    counts = counts[counts > 0]  # a categorical dtype also lists categories absent from the data
    return counts.index.to_numpy(dtype=object).astype(str).astype(object), counts.to_numpy(np.int64), \
        int(len(series) - counts.sum())


def profile_column(series: pd.Series, categorical: bool) -> NumericProfile | CategoricalProfile:
    if categorical:
        return CategoricalProfile(*category_counts(series))
    values, nulls = finite_values(series)
    values = np.sort(values)
    n_unique = len(unique_sorted(values))
    return NumericProfile(values, nulls, float(np.std(values)) if len(values) else float("nan"), n_unique)


def build_profile(frame: pd.DataFrame, numeric: list[str] | tuple[str, ...],
                  categorical: list[str] | tuple[str, ...], workers: int = 2) -> ReferenceProfile:
    if frame.empty:
        raise ValueError("cannot profile an empty reference frame")
    jobs = [(c, False) for c in numeric] + [(c, True) for c in categorical]
    with ThreadPoolExecutor(workers) as pool:  # numpy sorts release the GIL
        profiles = pool.map(lambda job: profile_column(frame[job[0]], job[1]), jobs)
        return ReferenceProfile(dict(zip([c for c, _ in jobs], profiles)), len(frame))

"""A reference profile built day by day in bounded memory.

Keeping every numeric value (profile.py) costs 8 bytes per row and column: 800 MB for ten columns
of a 10M-row window, more than the window's Parquet. The sketch keeps instead, per day streamed:

- exact counts: rows, nulls/inf per column, category counts (what class-free drift tests and null
  rates read), and the standard deviation (Chan's pairwise merge of count/mean/M2);
- distinct values per numeric column while there are at most `distinct_limit` of them (drift only
  asks whether a column has <= 20; beyond the limit the profile records a lower bound);
- a seeded uniform sample of `sample_rows` rows (bottom-k of a random key per row), the same rows for
  every numeric column, from which Wasserstein distances and histogram shares are read.

Every key comes from `default_rng([seed, day])` over the day's rows in their canonical (id) order,
so the sample does not depend on the order days are fed in. Up to `sample_rows` finite values the
sample holds them all and the column equals `build_profile`'s exactly.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ml_assets.core.profile import (
    CategoricalProfile,
    NumericProfile,
    ReferenceProfile,
    category_counts,
    numeric_profile,
    unique_sorted,
)

SAMPLE_ROWS = 1_000_000  # per numeric column: 8 MB, and exact for training sets up to this size
DISTINCT_LIMIT = 10_000
_MIN_SAMPLE = 1_001  # drift uses a KS test on references <= 1000 values: those must stay exact


class ProfileSketch:
    def __init__(self, numeric, categorical, sample_rows: int = SAMPLE_ROWS, seed: int = 0,
                 distinct_limit: int = DISTINCT_LIMIT):
        if sample_rows < _MIN_SAMPLE:
            raise ValueError(f"sample_rows={sample_rows} is too small: the drift tests need an exact reference up "
                             f"to 1000 values; use {_MIN_SAMPLE} or more")
        self.numeric, self.categorical = list(numeric), list(categorical)
        self.sample_rows, self.seed, self.distinct_limit = sample_rows, seed, distinct_limit
        self.rows = 0
        self._keys: list[np.ndarray] = []
        self._values: list[np.ndarray] = []  # (rows, numeric columns) per piece
        self._buffered = 0
        n = len(self.numeric)
        self._count, self._mean, self._m2 = np.zeros(n, np.int64), np.zeros(n), np.zeros(n)
        self._nulls = np.zeros(n, np.int64)
        self._distinct: list[np.ndarray | None] = [np.empty(0) for _ in self.numeric]  # None: over the limit
        self._categories: dict[str, pd.Series] = {c: pd.Series(dtype=np.int64) for c in self.categorical}
        self._category_nulls = dict.fromkeys(self.categorical, 0)

    def update(self, frame: pd.DataFrame, day: int) -> None:
        """Add one day's rows (`day`: any integer naming the day, e.g. days since the epoch)."""
        if frame.empty:
            return
        self.rows += len(frame)
        values = np.column_stack([frame[c].to_numpy(dtype=float, na_value=np.nan) for c in self.numeric]) \
            if self.numeric else np.empty((len(frame), 0))
        finite = np.isfinite(values)
        values[~finite] = np.nan  # inf is a null to the drift tests too
        for j in range(len(self.numeric)):
            self._add_moments(j, values[finite[:, j], j])
        self._nulls += (~finite).sum(axis=0)
        for name in self.categorical:
            keys, counts, nulls = category_counts(frame[name])
            self._categories[name] = self._categories[name].add(pd.Series(counts, index=keys), fill_value=0)
            self._category_nulls[name] += nulls
        self._keys.append(np.random.default_rng([self.seed, int(day)]).random(len(frame)))
        self._values.append(values)
        self._buffered += len(frame)
        if self._buffered > 2 * self.sample_rows:  # amortised: one selection per sample's worth of rows
            self._compact()

    def _add_moments(self, j: int, x: np.ndarray) -> None:
        if len(x) == 0:
            return
        n, mean = len(x), float(x.mean())
        m2 = float(((x - mean) ** 2).sum())
        total = self._count[j] + n
        delta = mean - self._mean[j]
        self._m2[j] += m2 + delta * delta * self._count[j] * n / total
        self._mean[j] += delta * n / total
        self._count[j] = total
        if (seen := self._distinct[j]) is not None:
            merged = np.union1d(seen, unique_sorted(np.sort(x)))
            self._distinct[j] = merged if len(merged) <= self.distinct_limit else None

    def _compact(self) -> None:
        keys, values = np.concatenate(self._keys), np.concatenate(self._values)
        if len(keys) > self.sample_rows:
            keep = np.argpartition(keys, self.sample_rows - 1)[:self.sample_rows]
            keys, values = keys[keep], values[keep]
        self._keys, self._values, self._buffered = [keys], [values], len(keys)

    def result(self) -> ReferenceProfile:
        if self.rows == 0:
            raise ValueError("cannot profile an empty reference: no rows were streamed")
        self._compact()
        sample = self._values[0]
        columns: dict[str, NumericProfile | CategoricalProfile] = {}
        for j, name in enumerate(self.numeric):
            values = sample[:, j]
            values = np.sort(values[np.isfinite(values)])
            nulls = int(self._nulls[j])
            if len(values) == self._count[j]:  # every finite value is in the sample: exact, as build_profile
                columns[name] = numeric_profile(values, nulls)
                continue
            distinct = self._distinct[j]
            n_unique = len(distinct) if distinct is not None else max(len(unique_sorted(values)), self.distinct_limit + 1)
            columns[name] = NumericProfile(values, nulls, float(np.sqrt(self._m2[j] / self._count[j])), n_unique,
                                           int(self._count[j]))
        for name in self.categorical:
            counts = self._categories[name]
            columns[name] = CategoricalProfile(counts.index.to_numpy(dtype=object), counts.to_numpy(np.int64),
                                               int(self._category_nulls[name]))
        return ReferenceProfile(columns, self.rows)

"""Data drift: a reference profile kept with each model, compared with one day of scoring data.

The per-column test follows Evidently's published defaults (`DataDriftPreset`, 0.7) so verdicts
are comparable, column for column (see benchmarks/drift, which checks agreement on every column):

- NaN and ±inf are dropped first; "n values" counts distinct values over reference + current;
- reference <= 1000 rows: numeric with > 5 values -> Kolmogorov-Smirnov (drift if p <= 0.05);
  otherwise chi-square (> 2 values) or a two-proportion z-test (drift if p < 0.05);
- larger references: numeric with > 5 values -> Wasserstein distance / max(std_ref, 0.001)
  (drift if >= 0.1); otherwise Jensen-Shannon distance over value frequencies (>= 0.1);
- PSI for every column (Sturges bins over both samples when the reference has > 20 distinct
  numeric values, value frequencies otherwise; zeros filled as Evidently does), reported beside;
- dataset drift when the share of drifted columns reaches `drift_share`.

The reference keeps sorted numeric values and category counts, so a daily check sorts only the
current day. A reference streamed from more rows than memory holds keeps a seeded uniform sample of
each numeric column with its exact size: distances and histogram shares are read off the sample, the
bin count and null rate off the size (ml_assets_tests/core/test_profile_sketch.py checks the verdicts). Wasserstein (from the quantile functions) and the histograms (by binary search) are
read off the two sorted samples without re-sorting either; the sorts run on a thread pool (they
release the GIL) while the calling thread tests the columns that are ready.
"""

from __future__ import annotations

import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd
from scipy import stats
from scipy.spatial import distance

from ml_assets.core.profile import (
    CategoricalProfile,
    NumericProfile,
    ReferenceProfile,
    build_profile,
    category_counts,
    default_workers,
    sorted_finite,
    unique_sorted,
)

SMALL_REFERENCE = 1000  # Evidently: statistical tests up to here, distances above
FEW_VALUES = 5  # numeric columns with at most this many distinct values are tested as categories
HIST_MIN_VALUES = 20  # PSI bins numeric columns with more distinct reference values than this
P_VALUE, DISTANCE, PSI = 0.05, 0.1, 0.1  # Evidently default thresholds
NULL_JUMP = 0.05  # flag a column whose null share rose by more than this (absolute)


@dataclass(frozen=True)
class ColumnDrift:
    column: str
    kind: str
    test: str
    statistic: float
    threshold: float
    drifted: bool
    psi: float
    null_rate_reference: float
    null_rate_current: float
    null_jump: bool
    unseen: tuple[str, ...] = ()
    unseen_share: float = 0.0


@dataclass(frozen=True)
class DriftReport:
    columns: list[ColumnDrift]
    drift_share: float  # the threshold
    rows_reference: int
    rows_current: int
    share: float = field(init=False)
    dataset_drift: bool = field(init=False)

    def __post_init__(self) -> None:
        share = sum(c.drifted for c in self.columns) / len(self.columns) if self.columns else 0.0
        object.__setattr__(self, "share", share)
        object.__setattr__(self, "dataset_drift", bool(share >= self.drift_share))

    @property
    def drifted_columns(self) -> list[str]:
        return [c.column for c in self.columns if c.drifted]

    def to_frame(self) -> pd.DataFrame:
        frame = pd.DataFrame([asdict(c) for c in self.columns])
        frame["unseen"] = frame["unseen"].map(lambda u: ", ".join(u[:5]) + (" …" if len(u) > 5 else ""))
        return frame


def _counts_on(keys: np.ndarray, categories: np.ndarray, counts: np.ndarray) -> np.ndarray:
    lookup = dict(zip(categories.tolist(), counts.tolist()))
    return np.array([lookup.get(k, 0) for k in keys.tolist()], dtype=float)


def _fill_zeros(percents: np.ndarray) -> np.ndarray:
    """Evidently's PSI zero-fill: 1e-4, or a millionth of the smallest share when that is smaller."""
    nonzero = percents[percents != 0]
    low = nonzero.min() if len(nonzero) else 0.0001
    out = percents.copy()
    out[out == 0] = low / 10**6 if low <= 0.0001 else 0.0001
    return out


def _psi(ref: np.ndarray, cur: np.ndarray) -> float:
    ref, cur = _fill_zeros(ref), _fill_zeros(cur)
    return float(np.sum((ref - cur) * np.log(ref / cur)))


def _frequency_tests(keys, ref_counts, cur_counts, n_ref, n_cur, small: bool) -> tuple[str, float, float, bool]:
    """Tests on value frequencies (categories, or numeric columns with few values)."""
    if not small:
        value = float(distance.jensenshannon(ref_counts / n_ref, cur_counts / n_cur))
        return "jensenshannon", value, DISTANCE, value >= DISTANCE
    if len(keys) > 2:
        with np.errstate(divide="ignore", invalid="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # an unseen value makes an expected count 0: p = 0, drift
            p = float(stats.chisquare(cur_counts, ref_counts * (n_cur / n_ref))[1])
        return "chisquare", p, P_VALUE, p < P_VALUE
    if len(keys) == 1:
        return "z", 1.0, P_VALUE, False
    first = np.argsort(keys.astype(str) if keys.dtype == object else keys)[0]
    p1, p2 = 1 - ref_counts[first] / n_ref, 1 - cur_counts[first] / n_cur
    pooled = (p1 * n_ref + p2 * n_cur) / (n_ref + n_cur)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = (p1 - p2) / np.sqrt(pooled * (1 - pooled) * (1 / n_ref + 1 / n_cur))
    p = float(2 * (1 - stats.norm.cdf(abs(z))))
    return "z", p, P_VALUE, p < P_VALUE


def _wasserstein(ref: np.ndarray, cur: np.ndarray, block: int = 1 << 16) -> float:
    """W1 between two sorted samples, as the area between their quantile functions.

    Equal to the area between the CDFs that scipy integrates, but with no merge sort: the
    quantile breakpoints i/n and j/m are merged by arithmetic, and both quantile functions are
    read off the sorted samples at each breakpoint. Breakpoints are kept in units of 1/(n*m) as
    floats: i*m is exact below 2**53, and a correctly rounded i*m/n lies closer than 1/n to no
    integer but its own, so floor/ceil are exact (n, m up to ~10**7, far beyond daily batches).
    Blocks of reference breakpoints keep every temporary in cache."""
    n, m = len(ref), len(cur)
    total = 0.0
    for i0 in range(0, n, block):
        i1 = min(i0 + block, n)
        j0, j1 = i0 * m // n, i1 * m // n  # current breakpoints j0+1 .. j1 fall in (i0/n, i1/n]
        at_ref = np.arange(i0 + 1, i1 + 1, dtype=float) * m
        at_cur = np.arange(j0 + 1, j1 + 1, dtype=float) * n
        cur_rank = np.ceil(at_ref / n).astype(np.int64)  # current quantile (1-based) at i/n
        ref_below = np.floor(at_cur / m).astype(np.int64)  # reference breakpoints at or below j/m
        where_ref = np.arange(i1 - i0) + (cur_rank - 1 - j0)  # after current breakpoints below it
        where_cur = np.arange(j1 - j0) + (ref_below - i0)  # after reference breakpoints at or below
        grid, gap = np.empty(len(at_ref) + len(at_cur)), np.empty(len(at_ref) + len(at_cur))
        grid[where_ref], grid[where_cur] = at_ref, at_cur
        gap[where_ref] = np.abs(ref[i0:i1] - cur[cur_rank - 1])
        gap[where_cur] = np.abs(ref[ref_below + (ref_below * m < at_cur) - 1] - cur[j0:j1])
        total += float(np.dot(gap, np.diff(grid, prepend=float(i0) * m)))
    return total / n / m


def _histograms(ref: np.ndarray, cur: np.ndarray, n_ref: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """np.histogram_bin_edges(concat, 'sturges') and both histograms, from the sorted samples.
    `n_ref`: the reference's size when `ref` is a sample of it (Sturges counts the whole reference)."""
    first, last = min(ref[0], cur[0]), max(ref[-1], cur[-1])
    width = (last - first) / (np.log2((n_ref or len(ref)) + len(cur)) + 1.0)
    edges = np.linspace(first, last, int(np.ceil((last - first) / width)) + 1)

    def counts(values: np.ndarray) -> np.ndarray:  # bins [a, b), the last one closed, as np.histogram
        at = np.searchsorted(values, edges, side="left")
        at[-1] = np.searchsorted(values, edges[-1], side="right")
        return np.diff(at) / len(values)

    return counts(ref), counts(cur)


def _numeric_drift(name: str, ref: NumericProfile, cur: np.ndarray, nulls: int) -> ColumnDrift:
    """`cur`: the day's finite values, sorted; `nulls`: how many were null or infinite."""
    n_ref, n_cur = ref.n, len(cur)
    if n_cur == 0:
        return _all_missing(name, "numeric", ref.nulls, n_ref, nulls)
    low_cardinality = ref.n_unique <= HIST_MIN_VALUES
    keys = np.union1d(unique_sorted(ref.values), unique_sorted(cur)) if low_cardinality else None
    few = ref.n_unique <= FEW_VALUES and len(keys) <= FEW_VALUES
    if low_cardinality:  # frequencies over the values seen on either side
        # a sampled reference's counts stand for the whole reference (exact: the factor is 1)
        ref_counts = np.diff(np.searchsorted(ref.values, keys, side="right"), prepend=0) * (n_ref / len(ref.values))
        cur_counts = np.diff(np.searchsorted(cur, keys, side="right"), prepend=0).astype(float)
        psi = _psi(ref_counts / n_ref, cur_counts / n_cur)
    else:
        psi = _psi(*_histograms(ref.values, cur, n_ref))
    if few:
        test, statistic, threshold, drifted = _frequency_tests(keys, ref_counts, cur_counts, n_ref, n_cur,
                                                               n_ref <= SMALL_REFERENCE)
    elif n_ref <= SMALL_REFERENCE:
        test, threshold = "ks", P_VALUE
        statistic = float(stats.ks_2samp(ref.values, cur)[1])
        drifted = statistic <= threshold
    else:
        test, threshold = "wasserstein", DISTANCE
        statistic = _wasserstein(ref.values, cur) / max(ref.std, 0.001)
        drifted = statistic >= threshold
    return ColumnDrift(name, "numeric", test, statistic, threshold, bool(drifted), psi,
                       *_null_rates(ref.nulls, n_ref, nulls, n_cur))


def _categorical_drift(name: str, ref: CategoricalProfile, series: pd.Series) -> ColumnDrift:
    categories, counts, nulls = category_counts(series)
    if len(counts) == 0:
        return _all_missing(name, "categorical", ref.nulls, int(ref.counts.sum()), nulls)
    keys = np.array(sorted(set(ref.categories.tolist()) | set(categories.tolist())), dtype=object)
    ref_counts, cur_counts = _counts_on(keys, ref.categories, ref.counts), _counts_on(keys, categories, counts)
    n_ref, n_cur = int(ref.counts.sum()), int(counts.sum())
    test, statistic, threshold, drifted = _frequency_tests(keys, ref_counts, cur_counts, n_ref, n_cur,
                                                           n_ref <= SMALL_REFERENCE)
    unseen = tuple(keys[(ref_counts == 0) & (cur_counts > 0)].tolist())
    unseen_share = float(cur_counts[ref_counts == 0].sum() / n_cur)
    return ColumnDrift(name, "categorical", test, statistic, threshold, bool(drifted),
                       _psi(ref_counts / n_ref, cur_counts / n_cur), *_null_rates(ref.nulls, n_ref, nulls, n_cur),
                       unseen=unseen, unseen_share=unseen_share)


def _null_rates(ref_nulls: int, ref_rows: int, cur_nulls: int, cur_rows: int):
    reference, current = ref_nulls / (ref_nulls + ref_rows), cur_nulls / (cur_nulls + cur_rows)
    return reference, current, bool(current - reference > NULL_JUMP)


def _all_missing(name: str, kind: str, ref_nulls: int, ref_rows: int, cur_nulls: int) -> ColumnDrift:
    """A column with no usable value today: nothing to compare, so it counts as drifted."""
    return ColumnDrift(name, kind, "all_null", float("nan"), float("nan"), True, float("nan"),
                       *_null_rates(ref_nulls, ref_rows, cur_nulls, 0))


def compare(profile: ReferenceProfile, current: pd.DataFrame, drift_share: float = 0.5,
            workers: int | None = None) -> DriftReport:
    """Drift of every profiled column of `current` against the reference."""
    if current.empty:
        raise ValueError("no current rows to compare with the reference")
    if missing := [c for c in profile.columns if c not in current.columns]:
        raise ValueError(f"current data lacks profiled column(s) {missing}")

    numeric = [name for name, ref in profile.columns.items() if isinstance(ref, NumericProfile)]
    with ThreadPoolExecutor(workers or default_workers()) as pool:
        # the sorts release the GIL and run on the pool; this thread meanwhile tests the categorical
        # columns, then each numeric one as soon as its sorted values are ready
        pending = {name: pool.submit(sorted_finite, current[name]) for name in numeric}
        done = {name: _categorical_drift(name, ref, current[name]) for name, ref in profile.columns.items()
                if name not in pending}
        done |= {name: _numeric_drift(name, profile.columns[name], *pending[name].result()) for name in numeric}
    return DriftReport([done[name] for name in profile.columns], drift_share, profile.rows, len(current))


def detect(reference: pd.DataFrame, current: pd.DataFrame, numeric: list[str] | tuple[str, ...],
           categorical: list[str] | tuple[str, ...], drift_share: float = 0.5,
           workers: int | None = None) -> DriftReport:
    """One shot on two raw frames (Evidently's use case): profile the reference, then compare."""
    return compare(build_profile(reference, numeric, categorical, workers), current, drift_share, workers)

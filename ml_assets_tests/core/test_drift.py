"""Drift statistics: the merged-sort fast paths equal scipy/numpy on raw data, and the per-column
test choice follows Evidently's defaults (benchmarks/drift checks against Evidently itself)."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from scipy.spatial import distance

from ml_assets.core.drift import _histograms, _wasserstein, compare, detect
from ml_assets.core.profile import ReferenceProfile, build_profile

RNG = np.random.default_rng(3)


@pytest.mark.parametrize("n, m, decimals", [(1, 1, 3), (7, 3, 1), (5000, 3000, 1), (200_000, 150_000, 4)])
def test_wasserstein_equals_scipy_including_ties(n, m, decimals):
    ref, cur = np.round(RNG.normal(0, 1, n), decimals), np.round(RNG.normal(0.2, 1.3, m), decimals)
    fast = _wasserstein(np.sort(ref), np.sort(cur))
    assert fast == pytest.approx(stats.wasserstein_distance(ref, cur), rel=1e-12, abs=1e-15)


def test_histograms_equal_numpy_sturges_bins():
    ref, cur = RNG.gamma(2, 3, 40_000), RNG.gamma(2.5, 3, 9_000)
    edges = np.histogram_bin_edges(np.concatenate([ref, cur]), bins="sturges")
    ref_share, cur_share = _histograms(np.sort(ref), np.sort(cur))
    assert np.array_equal(np.round(ref_share * len(ref)), np.histogram(ref, edges)[0])
    assert np.array_equal(np.round(cur_share * len(cur)), np.histogram(cur, edges)[0])


def _frame(n: int, shift: float = 0.0, new_region: float = 0.0, nulls: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(n)
    region = rng.choice(["north", "south", "east"], n, p=[0.5, 0.3, 0.2]).astype(object)
    region[rng.random(n) < new_region] = "metro"
    charges = rng.normal(70 + shift, 15, n)
    charges[rng.random(n) < nulls] = np.nan
    return pd.DataFrame({"charges": charges, "tenure": rng.integers(0, 72, n).astype(float),
                         "is_senior": (rng.random(n) < 0.2).astype(float),
                         "products": rng.integers(1, 5, n).astype(float), "region": region})


NUMERIC, CATEGORICAL = ["charges", "tenure", "is_senior", "products"], ["region"]


def _evidently_formulas(ref: pd.Series, cur: pd.Series, categorical: bool) -> tuple[str, float]:
    """Evidently's defaults written directly against the raw columns with scipy."""
    ref, cur = ref.replace([np.inf, -np.inf], np.nan).dropna(), cur.replace([np.inf, -np.inf], np.nan).dropna()
    n_values = pd.concat([ref, cur]).nunique()
    keys = sorted(set(ref.unique()) | set(cur.unique()))
    ref_counts = np.array([(ref == k).sum() for k in keys], float)
    cur_counts = np.array([(cur == k).sum() for k in keys], float)
    if len(ref) <= 1000:
        if not categorical and n_values > 5:
            return "ks", stats.ks_2samp(ref, cur)[1]
        if n_values > 2:
            return "chisquare", stats.chisquare(cur_counts, ref_counts * len(cur) / len(ref))[1]
        p1, p2 = (ref != keys[0]).mean(), (cur != keys[0]).mean()
        pooled = (p1 * len(ref) + p2 * len(cur)) / (len(ref) + len(cur))
        z = (p1 - p2) / np.sqrt(pooled * (1 - pooled) * (1 / len(ref) + 1 / len(cur)))
        return "z", 2 * (1 - stats.norm.cdf(abs(z)))
    if not categorical and n_values > 5:
        return "wasserstein", stats.wasserstein_distance(ref, cur) / max(np.std(ref), 0.001)
    return "jensenshannon", distance.jensenshannon(ref_counts / len(ref), cur_counts / len(cur))


@pytest.mark.parametrize("n_ref", [400, 20_000])
@pytest.mark.parametrize("shift", [0.0, 6.0])
def test_tests_and_statistics_follow_evidently_defaults(n_ref, shift):
    reference, current = _frame(n_ref), _frame(3_000 + n_ref % 7, shift=shift, new_region=0.1)
    report = compare(build_profile(reference, NUMERIC, CATEGORICAL), current)
    for column in report.columns:
        test, statistic = _evidently_formulas(reference[column.column], current[column.column],
                                              column.column in CATEGORICAL)
        assert (column.test, column.statistic) == (test, pytest.approx(statistic, rel=1e-9, abs=1e-12))
    by_name = {c.column: c for c in report.columns}
    assert by_name["charges"].drifted == (shift > 0)  # a 0.4-sigma shift is drift; no shift is not
    assert by_name["region"].unseen == ("metro",) and by_name["region"].drifted
    assert not by_name["tenure"].drifted


def test_one_shot_detect_equals_profile_then_compare():
    reference, current = _frame(30_000), _frame(4_000, shift=4, new_region=0.05, nulls=0.1)
    one_shot = detect(reference, current, NUMERIC, CATEGORICAL, drift_share=0.3)
    daily = compare(build_profile(reference, NUMERIC, CATEGORICAL), current, drift_share=0.3)
    assert one_shot.to_frame().equals(daily.to_frame()) and one_shot.dataset_drift == daily.dataset_drift


def test_no_drift_between_samples_of_the_same_world():
    report = compare(build_profile(_frame(50_000), NUMERIC, CATEGORICAL), _frame(2_000))
    assert report.drifted_columns == [] and not report.dataset_drift and report.share == 0
    assert all(abs(c.psi) < 0.1 for c in report.columns)


def test_dataset_drift_follows_the_share_threshold():
    profile = build_profile(_frame(50_000), NUMERIC, CATEGORICAL)
    current = _frame(2_000, shift=10, new_region=0.3)  # charges and region: 2 of 5 columns
    assert compare(profile, current, drift_share=0.4).dataset_drift
    low = compare(profile, current, drift_share=0.5)
    assert low.share == pytest.approx(0.4) and not low.dataset_drift


def test_null_jump_and_all_null_columns_are_flagged():
    profile = build_profile(_frame(20_000), NUMERIC, CATEGORICAL)
    report = {c.column: c for c in compare(profile, _frame(2_000, nulls=0.3)).columns}
    assert report["charges"].null_jump and report["charges"].null_rate_current == pytest.approx(0.3, abs=0.03)
    gone = _frame(500).assign(charges=np.nan, region=None)
    report = {c.column: c for c in compare(profile, gone).columns}
    for column in ("charges", "region"):
        assert (report[column].test, report[column].drifted, report[column].null_jump) == ("all_null", True, True)


def test_profile_round_trips_without_pickles(tmp_path):
    reference = _frame(5_000)
    profile = build_profile(reference, NUMERIC, CATEGORICAL)
    with open(tmp_path / "profile.npz", "wb") as out:
        profile.save(out)
    with open(tmp_path / "profile.npz", "rb") as source:
        loaded = ReferenceProfile.load(source)
    current = _frame(1_000, shift=3)
    assert compare(loaded, current).to_frame().equals(compare(profile, current).to_frame())
    assert loaded.rows == 5_000 and np.array_equal(loaded.columns["charges"].values, profile.columns["charges"].values)


def test_bad_input_gets_a_clear_error():
    profile = build_profile(_frame(1_000), NUMERIC, CATEGORICAL)
    with pytest.raises(ValueError, match="no current rows"):
        compare(profile, _frame(10).iloc[:0])
    with pytest.raises(ValueError, match=r"lacks profiled column\(s\) \['region'\]"):
        compare(profile, _frame(10).drop(columns="region"))
    with pytest.raises(ValueError, match="empty reference"):
        build_profile(_frame(10).iloc[:0], NUMERIC, CATEGORICAL)


def test_categorical_dtype_with_unused_categories_is_not_a_value():
    reference = _frame(3_000).assign(region=lambda f: pd.Categorical(f["region"], ["north", "south", "east", "x"]))
    report = compare(build_profile(reference, NUMERIC, CATEGORICAL), _frame(800))
    region = next(c for c in report.columns if c.column == "region")
    assert region.statistic == region.statistic and not region.drifted  # not NaN from a 0/0 category


def _codes(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).choice([1, 2, 3, 4], n, p=[0.4, 0.3, 0.2, 0.1])


def _with_one_nan(codes: np.ndarray) -> pd.Series:
    current = pd.Series(codes).astype("float64")  # one NaN turns int64 codes into 1.0, 2.0, ...
    current.iloc[0] = np.nan
    return current


@pytest.mark.parametrize("rows", [600, 5000], ids=["chisquare", "jensenshannon"])
def test_integer_codes_are_the_same_category_with_or_without_nan(rows):
    """The issue's case: reference int64 codes, a current day float64 because of one NaN. Before,
    every category was unseen ("1" vs "1.0"): JS 0.83, chi-square p = 0, PSI ~ 16, drift."""
    columns = [f"code_{i}" for i in range(28)]
    reference = pd.DataFrame({c: _codes(rows, i) for i, c in enumerate(columns)})
    shuffle = np.random.default_rng(7).permutation(rows)  # the same rows in another order: no drift
    current_codes = {c: reference[c].to_numpy()[shuffle] for c in columns}
    floats = compare(build_profile(reference, [], columns),
                     pd.DataFrame({c: _with_one_nan(v) for c, v in current_codes.items()}))
    ints = compare(build_profile(reference, [], columns),
                   pd.DataFrame({c: pd.Series(v).iloc[1:].reset_index(drop=True) for c, v in current_codes.items()}))
    assert floats.drifted_columns == [] and not floats.dataset_drift
    for f, i in zip(floats.columns, ints.columns):
        assert f.unseen == () and f.unseen_share == 0.0
        assert (f.test, f.statistic, f.psi) == (i.test, pytest.approx(i.statistic, rel=1e-12), pytest.approx(i.psi))
        assert f.psi < 0.1 and (f.statistic > 0.05 if f.test == "chisquare" else f.statistic < 0.1)


@pytest.mark.parametrize("reference, current", [
    (pd.Series([1, 2, 3] * 200), pd.Series([1, 2, 3] * 200, dtype="Int64")),
    (pd.Series([1, 2, 3] * 200), pd.Series(pd.Categorical([1.0, 2.0, 3.0] * 200))),
    (pd.Series([1, 2, 3] * 200), pd.Series(["1", "2", "3"] * 200)),
    (pd.Series(pd.Categorical(["a", "b", "c"] * 200)), pd.Series(["a", "b", "c"] * 200, dtype=object)),
    (pd.Series([True, False, True] * 200), pd.Series([True, False, True] * 199 + [True, False, None], dtype=object)),
    (pd.Series([True, False, True] * 200), pd.Series([True, False, True] * 200, dtype="boolean")),
], ids=["Int64", "float-categorical", "digit-strings", "categorical-strings", "bool-with-none", "nullable-boolean"])
def test_every_category_dtype_is_normalised_the_same_way(reference, current):
    report = compare(build_profile(pd.DataFrame({"c": reference}), [], ["c"]), pd.DataFrame({"c": current}))
    column = report.columns[0]
    assert (column.unseen, column.drifted) == ((), False)
    assert column.psi == pytest.approx(0.0, abs=1e-4)


def test_distinct_categories_stay_distinct_after_normalisation():
    profile = build_profile(pd.DataFrame({"c": [1.5, 2.0, True, "x"] * 100}), [], ["c"])
    assert sorted(profile.columns["c"].categories) == ["1.5", "2", "True", "x"]
    report = compare(profile, pd.DataFrame({"c": [1.5, 2, 7, "x"] * 100}))
    assert report.columns[0].unseen == ("7",) and report.columns[0].drifted

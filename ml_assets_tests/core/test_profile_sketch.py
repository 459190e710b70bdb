"""The bounded reference profile (core/profile_sketch.py): exact counts, a seeded sample of values,
and drift verdicts that match the exact profile's where the answer is known."""

import io

import numpy as np
import pandas as pd
import pytest

from ml_assets.core.drift import PSI, compare
from ml_assets.core.profile import ReferenceProfile, build_profile
from ml_assets.core.profile_sketch import ProfileSketch

NUMERIC, CATEGORICAL = ["charges", "tenure", "products", "is_senior"], ["region"]
DAYS, ROWS = 40, 5_000  # a 200k-row reference, sketched with a 20k-row sample


def _day(day: int, rows: int = ROWS, shift: float = 0.0, new_region: float = 0.0, nulls: float = 0.0):
    rng = np.random.default_rng([11, day])
    charges = rng.normal(70 + shift * 15, 15, rows)  # shift in standard deviations: W1 / std = shift
    charges[rng.random(rows) < nulls] = np.nan
    charges[:3] = np.inf if day % 7 == 0 else charges[:3]  # inf counts as null, as in the exact profile
    region = rng.choice(["north", "south", "east"], rows, p=[0.5, 0.3, 0.2]).astype(object)
    region[rng.random(rows) < new_region] = "metro"
    return pd.DataFrame({"charges": charges, "tenure": rng.integers(0, 72, rows).astype(float),
                         "products": rng.integers(1, 5, rows).astype(float),
                         "is_senior": (rng.random(rows) < 0.2).astype(float), "region": region})


@pytest.fixture(scope="module")
def reference():
    days = [_day(d) for d in range(DAYS)]
    sketch = ProfileSketch(NUMERIC, CATEGORICAL, sample_rows=20_000, seed=5)
    for d, frame in enumerate(days):
        sketch.update(frame, d)
    return build_profile(pd.concat(days, ignore_index=True), NUMERIC, CATEGORICAL), sketch.result()


def test_counts_nulls_std_and_categories_are_exact_and_values_a_bounded_sample(reference):
    exact, sketched = reference
    assert sketched.rows == exact.rows == DAYS * ROWS
    for name in NUMERIC:
        e, s = exact.columns[name], sketched.columns[name]
        assert len(s.values) <= 20_000 and s.sampled and s.n == len(e.values)
        assert s.nulls == e.nulls and s.std == pytest.approx(e.std, rel=1e-9)
        assert s.n_unique == e.n_unique if e.n_unique <= 10_000 else s.n_unique > 10_000
        assert np.all(np.diff(s.values) >= 0) and np.isin(s.values, e.values).all()  # real values, sorted
    assert exact.columns["charges"].nulls == 3 * len(range(0, DAYS, 7))
    region_e, region_s = exact.columns["region"], sketched.columns["region"]
    assert dict(zip(region_s.categories, region_s.counts)) == dict(zip(region_e.categories, region_e.counts))


@pytest.mark.parametrize("shift, drifted", [(0.0, False), (0.04, False), (0.2, True), (0.6, True)])
def test_wasserstein_verdicts_match_the_exact_profile_where_the_answer_is_known(reference, shift, drifted):
    """Normal(70 + 15 s, 15) against Normal(70, 15): W1 / std = s, so the verdict (>= 0.1) is known."""
    exact, sketched = reference
    current = _day(1_000, rows=20_000, shift=shift)
    e, s = compare(exact, current, 0.5).columns[0], compare(sketched, current, 0.5).columns[0]
    assert e.test == s.test == "wasserstein" and e.drifted == s.drifted == drifted
    assert s.statistic == pytest.approx(e.statistic, abs=0.02) and e.statistic == pytest.approx(shift, abs=0.02)
    assert s.psi == pytest.approx(e.psi, abs=0.01)


def test_every_column_verdict_and_psi_match_on_drifted_and_clean_days(reference):
    exact, sketched = reference
    for current in (_day(2_000), _day(2_001, shift=0.5, new_region=0.3, nulls=0.2)):
        e, s = compare(exact, current, 0.5), compare(sketched, current, 0.5)
        assert [c.drifted for c in e.columns] == [c.drifted for c in s.columns]
        assert [c.test for c in e.columns] == [c.test for c in s.columns]
        for ec, sc in zip(e.columns, s.columns):  # PSI off a sample: same verdict, within sampling error
            assert (sc.psi >= PSI) == (ec.psi >= PSI) and sc.psi == pytest.approx(ec.psi, rel=0.1, abs=0.01)
            assert (sc.null_rate_reference, sc.null_jump, sc.unseen) == (ec.null_rate_reference, ec.null_jump, ec.unseen)
        assert e.dataset_drift == s.dataset_drift


def test_the_sample_does_not_depend_on_the_order_of_days_and_survives_a_round_trip(reference):
    _, sketched = reference
    backwards = ProfileSketch(NUMERIC, CATEGORICAL, sample_rows=20_000, seed=5)
    for d in reversed(range(DAYS)):
        backwards.update(_day(d), d)
    again = backwards.result()
    for name in NUMERIC:
        np.testing.assert_array_equal(again.columns[name].values, sketched.columns[name].values)
    buffer = io.BytesIO()
    sketched.save(buffer)
    buffer.seek(0)
    loaded = ReferenceProfile.load(buffer)
    assert loaded.columns["charges"].n == sketched.columns["charges"].n and loaded.columns["charges"].sampled


def test_a_sample_below_the_exact_test_size_is_refused():
    with pytest.raises(ValueError, match="sample_rows=500 is too small.*use 1001 or more"):
        ProfileSketch(NUMERIC, CATEGORICAL, sample_rows=500)

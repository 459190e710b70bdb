from datetime import date

import pandas as pd
import pytest
from ml_examples.bundled import DIABETES, WINE
from ml_examples.churn.problem import CHURN

from ml_assets.core.datasets import build_training_set, split_static, training_days
from ml_assets_tests.core.churn_data import churn_frames


def test_time_split_puts_the_newest_days_in_test_and_never_mixes_days():
    features, labels = churn_frames(days=12)
    frame = build_training_set(features, labels, CHURN)
    days = {s: set(frame.loc[frame.split == s, "snapshot_date"]) for s in ("train", "validation", "test")}
    assert max(days["train"]) < min(days["validation"]) and max(days["validation"]) < min(days["test"])
    assert (len(days["validation"]), len(days["test"])) == (CHURN.training.validation_days, CHURN.training.test_days)
    assert len(frame) == len(features)  # every feature row had a label


def test_window_keeps_only_the_latest_labelled_days():
    features, labels = churn_frames(days=12)
    frame = build_training_set(features, labels, CHURN.evolve(window_days=8))
    assert frame["snapshot_date"].nunique() == 8 and frame["snapshot_date"].min() == pd.Timestamp("2026-01-05")


def test_days_older_than_the_calendar_window_never_enter():
    """60 calendar days back from the newest labelled day, not the last 60 labelled days: a day
    five months old stays out even when only 20 labelled days are recent."""
    old = churn_frames(days=10, rows=100, start=date(2026, 1, 1))
    recent = churn_frames(days=20, rows=100, start=date(2026, 6, 1))
    features, labels = (pd.concat([a, b], ignore_index=True) for a, b in zip(old, recent))
    frame = build_training_set(features, labels, CHURN)
    assert frame["snapshot_date"].min() == pd.Timestamp("2026-06-01")
    assert training_days(frame, CHURN) == [f"2026-06-{d:02d}" for d in range(1, 21)]
    window = (date(2026, 6, 20) - date(2026, 1, 10)).days + 1
    edge = build_training_set(features, labels, CHURN.evolve(window_days=window))
    assert edge["snapshot_date"].min() == pd.Timestamp("2026-01-10")  # exactly window_days back, inclusive
    assert list(edge["snapshot_date"]) == sorted(edge["snapshot_date"])  # rows ordered by day


def test_too_few_days_in_the_calendar_window_names_the_window():
    old = churn_frames(days=10, rows=100, start=date(2026, 1, 1))
    recent = churn_frames(days=4, rows=100, start=date(2026, 6, 1))
    features, labels = (pd.concat([a, b], ignore_index=True) for a, b in zip(old, recent))
    with pytest.raises(ValueError, match=r"found 4 in the window of 60 calendar days up to 2026-06-04"):
        build_training_set(features, labels, CHURN)


def test_rows_without_labels_are_left_out():
    features, labels = churn_frames(days=12)
    late = labels[labels.snapshot_date < "2026-01-10"]  # the last days' labels have not arrived yet
    frame = build_training_set(features, late, CHURN)
    assert frame["snapshot_date"].max() == pd.Timestamp("2026-01-09")


@pytest.mark.parametrize("mutate, message", [
    (lambda f, l: (f.iloc[0:0], l), "no feature rows to train on"),
    (lambda f, l: (f, l.iloc[0:0]), "no labels have arrived"),
    (lambda f, l: (f, pd.DataFrame()), "no labels have arrived"),  # an empty window has no columns either
    (lambda f, l: (pd.DataFrame(), l), "no feature rows to train on"),
    (lambda f, l: (f[f.snapshot_date < "2026-01-06"], l), r"at least 7 labelled days \(test 3 \+ validation 3"),
    (lambda f, l: (f, l.assign(churned=0)), "the train split has 1 class"),
])
def test_training_set_errors_say_what_to_do(mutate, message):
    with pytest.raises(ValueError, match=message):
        build_training_set(*mutate(*churn_frames(days=12)), CHURN)


def test_duplicate_labels_are_refused():
    features, labels = churn_frames(days=8)
    with pytest.raises(Exception, match="one_to_one|not a one-to-one"):
        build_training_set(features, pd.concat([labels, labels.head(1)]), CHURN)


@pytest.mark.parametrize("spec", [WINE, DIABETES])
def test_static_split_is_seeded_and_complete(spec):
    data = spec.data.load_static()
    first, again = split_static(data, spec, seed=3), split_static(data, spec, seed=3)
    pd.testing.assert_frame_equal(first, again)
    assert not first["split"].equals(split_static(data, spec, seed=4)["split"])
    shares = first["split"].value_counts(normalize=True)
    assert shares["train"] == pytest.approx(0.7, abs=0.02) and shares["test"] == pytest.approx(0.15, abs=0.02)
    if spec.task != "regression":  # stratified: every class in every split
        assert first.groupby("split")[spec.data.target].nunique().min() == data[spec.data.target].nunique()


def test_static_split_refuses_tiny_data():
    with pytest.raises(ValueError, match="too few to split"):
        split_static(WINE.data.load_static().head(10), WINE, seed=0)

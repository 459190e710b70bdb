"""The streamed training set (core/streaming.py): the same rows, splits and errors as the in-memory
path on a multi-partition window, and a capped sample that is honoured and seeded."""

from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from ml_examples.churn.problem import CHURN

from ml_assets.core.datasets import build_training_set
from ml_assets.core.profile import build_profile
from ml_assets.core.streaming import PartitionWindow, scan_window
from ml_assets.io.io_managers import write_parquet
from ml_assets.problem import SpecError
from ml_assets_tests.core.churn_data import churn_frames

LABEL_DELAY = 3


def _store(frame: pd.DataFrame, folder: Path, delay: int = 0) -> PartitionWindow:
    """One Parquet file per day, named like the warehouse's; labels land `delay` days after their day."""
    paths = {}
    for day, part in frame.groupby("snapshot_date"):
        key = f"{day + pd.Timedelta(days=delay):%Y-%m-%d}"
        paths[key] = folder / f"{key}.parquet"
        write_parquet(part, paths[key])
    return PartitionWindow(paths)


@pytest.fixture(scope="module")
def window(tmp_path_factory):
    """14 days of features, labels for the first 12 (partitioned by landing day), one day of features
    missing and a few labels without features: what the in-memory path gets, and the stored window."""
    features, labels = churn_frames(days=14, rows=300)
    features = features[features.snapshot_date != "2026-01-05"]
    features = features.drop(features.index[:7])  # labels without a snapshot: never joined
    labels = labels[labels.snapshot_date < "2026-01-13"]
    root = tmp_path_factory.mktemp("window")
    return features, labels, _store(features, root / "features"), _store(labels, root / "labels", LABEL_DELAY)


def _in_memory(window: PartitionWindow) -> pd.DataFrame:
    """Today's path: every partition read into one frame (as the Parquet IO manager's dict + concat)."""
    return pd.concat([window.read(key) for key in window.paths], ignore_index=True)


@pytest.mark.parametrize("since", [None, "2026-01-03"])
def test_uncapped_stream_equals_the_in_memory_training_set(window, since):
    _, _, features, labels = window
    expected = build_training_set(_in_memory(features), _in_memory(labels), CHURN, since)
    scan = scan_window(features, labels, CHURN, since)
    pd.testing.assert_frame_equal(scan.frame, expected)
    assert scan.days == sorted(expected["snapshot_date"].dt.strftime("%Y-%m-%d").unique())
    assert scan.rows_seen == expected["split"].value_counts().to_dict() and not scan.capped
    assert scan.profile is None  # the training set holds every row: the reference is built from it


def test_the_window_profile_equals_the_exact_one_while_the_sample_holds_every_value(window):
    _, _, features, labels = window
    full = scan_window(features, labels, CHURN, profile=True, profile_rows=5_000)
    learned = full.frame[full.frame["split"] != "test"]
    exact = build_profile(learned, CHURN.data.numeric_features, CHURN.data.categorical_features)
    assert full.profile.rows == exact.rows == len(learned)
    for name, column in exact.columns.items():
        streamed = full.profile.columns[name]
        if hasattr(column, "values"):
            np.testing.assert_array_equal(streamed.values, column.values)
            assert (streamed.nulls, streamed.n_unique, streamed.std) == (column.nulls, column.n_unique, column.std)
        else:
            assert dict(zip(streamed.categories, streamed.counts)) == dict(zip(column.categories, column.counts))
            assert streamed.nulls == column.nulls


def test_the_cap_is_honoured_per_day_and_every_row_is_still_counted(window):
    _, _, features, labels = window
    full = scan_window(features, labels, CHURN)
    scan = scan_window(features, labels, CHURN, max_rows=1_500, seed=4)
    assert len(scan.frame) == 1_500 and scan.capped
    seen = full.frame.groupby("snapshot_date").size()
    kept = scan.frame.groupby("snapshot_date").size()
    assert list(kept.index) == list(seen.index)  # time-stratified: every day keeps its share
    assert (abs(kept - seen * 1_500 / seen.sum()) < 1).all()
    assert scan.rows_seen == full.rows_seen  # counts and class balance see every row
    assert scan.class_counts_seen == {s: part["churned"].value_counts().to_dict()
                                      for s, part in full.frame.groupby("split")}
    assert scan.frame["split"].tolist() == full.frame.set_index(["customer_id", "snapshot_date"]).loc[
        pd.MultiIndex.from_frame(scan.frame[["customer_id", "snapshot_date"]]), "split"].tolist()
    # every sampled row is a real row of the window, unchanged
    merged = scan.frame.merge(full.frame, on=list(full.frame.columns), how="left", indicator=True)
    assert (merged["_merge"] == "both").all()
    # the profile of a capped training set is the whole window's learned rows, not the sample's
    assert scan.profile.rows == full.rows_seen["train"] + full.rows_seen["validation"]


def test_the_sample_is_the_same_for_a_seed_whatever_the_file_order(window):
    _, _, features, labels = window
    first = scan_window(features, labels, CHURN, max_rows=1_200, seed=1).frame
    reordered = PartitionWindow(dict(reversed(features.paths.items())))
    pd.testing.assert_frame_equal(scan_window(reordered, labels, CHURN, max_rows=1_200, seed=1).frame, first)
    other = scan_window(features, labels, CHURN, max_rows=1_200, seed=2).frame
    assert len(other) == len(first) and not other["customer_id"].equals(first["customer_id"])


def test_a_cap_above_the_window_keeps_every_row(window):
    _, _, features, labels = window
    pd.testing.assert_frame_equal(scan_window(features, labels, CHURN, max_rows=10**9).frame,
                                  scan_window(features, labels, CHURN).frame)


def test_stream_errors_are_those_of_the_in_memory_path(tmp_path):
    features, labels = churn_frames(days=12, rows=100, start=date(2026, 1, 1))
    stored = _store(features, tmp_path / "f")
    with pytest.raises(ValueError, match="no feature rows to train on"):
        scan_window(PartitionWindow({}), _store(labels, tmp_path / "l"), CHURN)
    with pytest.raises(ValueError, match="no labels have arrived yet"):
        scan_window(stored, PartitionWindow({}), CHURN)
    late = _store(labels[labels.snapshot_date < "2026-01-05"], tmp_path / "late")
    with pytest.raises(ValueError, match=r"found 4 in the window of 60 calendar days up to 2026-01-04"):
        scan_window(stored, late, CHURN)
    strangers = _store(labels.assign(customer_id="x" + labels["customer_id"]), tmp_path / "strangers")
    with pytest.raises(ValueError, match="no labels have arrived for the 1200 feature rows"):
        scan_window(stored, strangers, CHURN)
    with pytest.raises(ValueError, match="the train split has 1 class"):
        scan_window(stored, _store(labels.assign(churned=0), tmp_path / "one_class"), CHURN)
    twice = _store(pd.concat([labels, labels.tail(1)]), tmp_path / "twice")
    with pytest.raises(ValueError, match=r"labels of 2026-01-12 repeat a \(customer_id, snapshot_date\) pair"):
        scan_window(stored, twice, CHURN)


def test_a_tiny_cap_is_refused_when_the_problem_loads():
    with pytest.raises(SpecError, match=r"training.max_training_rows is 10; use None \(every row\) or at least 1000"):
        CHURN.evolve(max_training_rows=10)
    assert CHURN.evolve(max_training_rows=5_000).training.max_training_rows == 5_000

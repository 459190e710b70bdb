import itertools
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from ml_examples.bundled import DIABETES, WINE
from ml_examples.problems import example_problems

from ml_assets.core.datasets import build_training_set, split_static
from ml_assets.core.lineage import frame_hash, git_sha, model_hash
from ml_assets.core.training import (
    build_pipeline,
    cv_splits,
    default_n_jobs,
    describe_folds,
    train_candidates,
)
from ml_assets_tests.core.churn_data import SMALL_CHURN, churn_frames


@pytest.fixture(scope="module")
def churn_set():
    return build_training_set(*churn_frames(days=10, rows=250), SMALL_CHURN)


def test_every_family_is_searched_and_the_best_on_validation_wins(churn_set):
    logs = []
    result = train_candidates(churn_set, SMALL_CHURN, seed=0, log=logs.append)
    assert [c.name for c in result.candidates] == ["logistic_regression", "hist_gradient_boosting", "random_forest"]
    assert result.best == max(result.candidates, key=lambda c: c.validation_score).name
    assert all(0.5 < c.cv_score <= 1 and c.params for c in result.candidates)
    assert len(logs) == 3 and logs[0].startswith("[1/3] logistic_regression: cv roc_auc")
    scores = result.pipeline.predict_proba(churn_set[SMALL_CHURN.feature_columns])[:, 1]
    assert scores.min() >= 0 and scores.max() <= 1


def test_same_inputs_and_seed_give_identical_metrics_and_model(churn_set):
    first = train_candidates(churn_set, SMALL_CHURN, seed=7, log=lambda _: None)
    second = train_candidates(churn_set, SMALL_CHURN, seed=7, log=lambda _: None)
    assert [(c.cv_score, c.validation_score, c.params) for c in first.candidates] == \
        [(c.cv_score, c.validation_score, c.params) for c in second.candidates]
    assert model_hash(first.pipeline) == model_hash(second.pipeline)


def test_the_pipeline_ignores_unseen_categories_and_extra_columns(churn_set):
    result = train_candidates(churn_set, SMALL_CHURN.evolve(candidates=SMALL_CHURN.training.candidates[:1]), log=print)
    rows = churn_set.head(3).assign(region="atlantis", contract="weekly", unexpected="x")
    assert result.pipeline.predict_proba(rows).shape == (3, 2)


def test_missing_splits_are_an_error(churn_set):
    with pytest.raises(ValueError, match="non-empty 'train' and 'validation'"):
        train_candidates(churn_set[churn_set.split == "test"], SMALL_CHURN)


@pytest.mark.parametrize("spec, check", [
    (WINE, lambda p, x: set(p.predict(x)) <= {0, 1, 2}),
    (DIABETES, lambda p, x: np.isfinite(p.predict(x)).all()),
])
def test_multiclass_and_regression_specs_train(spec, check):
    data = split_static(spec.data.load_static(), spec, seed=0)
    result = train_candidates(data, spec, seed=0, log=lambda _: None)
    assert result.best in {c.name for c in spec.training.candidates} and check(result.pipeline, data[spec.feature_columns])


def test_pipeline_drops_ids_and_times():
    pipeline = build_pipeline(SMALL_CHURN, SMALL_CHURN.training.candidates[0].estimator(0))
    features, labels = churn_frames(days=1, rows=60)
    pipeline.fit(features, labels["churned"])
    assert not any("customer_id" in name or "snapshot" in name for name in pipeline[:-1].get_feature_names_out())


def test_lineage_helpers(tmp_path):
    frame = pd.DataFrame({"a": [1, 2], "b": ["x", "y"]})
    assert frame_hash(frame) == frame_hash(frame.copy()) != frame_hash(frame.assign(a=[1, 3]))
    assert frame_hash(frame) != frame_hash(frame.rename(columns={"a": "c"}))
    assert git_sha(tmp_path) == "unknown"  # not a checkout
    assert len(git_sha(Path(__file__).parent)) == 40  # the tests run from a clone
    assert default_n_jobs() >= 1


def _loky_workers() -> list[int]:
    """Live child processes that are loky workers (resource trackers end with us; workers do not)."""
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        cmdline = (stat.parent / "cmdline").read_bytes()
        if int(fields[1]) == os.getpid() and fields[0] != "Z" and b"resource_tracker" not in cmdline:
            pids.append(int(stat.parent.name))
    return pids


def test_no_worker_processes_outlive_training(churn_set):
    """Idle loky workers would keep a Dagster step process alive for 300 s after it finished."""
    train_candidates(churn_set, SMALL_CHURN, n_jobs=2, log=lambda _: None)
    assert _loky_workers() == []


def test_a_family_without_search_space_is_fit_once_with_its_defaults(churn_set):
    from sklearn.neighbors import (
        KNeighborsClassifier,  # has no random_state to fake a grid with
    )

    from ml_assets.problem import CandidateSpec

    spec = SMALL_CHURN.evolve(candidates=(CandidateSpec("knn", lambda seed: KNeighborsClassifier()),))
    result = train_candidates(churn_set, spec, log=lambda _: None)
    assert (result.best, result.candidates[0].params) == ("knn", {})


LANDED = [p for p in example_problems() if p.data.inputs is not None]


@pytest.fixture(scope="module")
def simulated():
    """Customers and labels of 24 simulated days, straight from the world every landed problem reads."""
    return churn_frames(days=24, rows=150, raw=True)


@pytest.mark.parametrize("gap", [0, 2])
@pytest.mark.parametrize("spec", LANDED, ids=lambda s: s.name)
def test_every_fold_validates_only_on_days_after_every_day_it_fit(spec, gap, simulated):
    customers, labels = simulated
    spec = spec.evolve(cv_gap_days=gap)
    frame = build_training_set(spec.features_of(customers), labels, spec)
    train = frame[frame.split == "train"].reset_index(drop=True)
    searched, folds = cv_splits(spec, train, frame[frame.split == "validation"], seed=0)
    assert searched is train and len(folds) == spec.training.cv_folds
    day = train[spec.data.time_column]
    validated = []
    for fit, val in folds:
        fit_days, val_days = set(day.iloc[fit]), set(day.iloc[val])
        assert max(fit_days) + pd.Timedelta(days=gap) < min(val_days)  # strictly later, `gap` days apart
        assert max(fit_days) + pd.Timedelta(days=gap + 1) in set(day)  # and no later day was left out
        assert set(val) == set(np.flatnonzero(day.isin(val_days)))  # whole days: no day is cut
        validated.append(sorted(val_days))
    assert all(a[-1] < b[0] for a, b in itertools.pairwise(validated))  # folds move forward in time
    assert validated[-1][-1] == day.max()


@pytest.mark.parametrize("train_days, folds", [(3, 2), (2, 1)])
def test_fewer_train_days_than_folds_need_give_as_many_folds_as_the_days_allow(train_days, folds, simulated):
    customers, labels = simulated
    spec = SMALL_CHURN.evolve(cv_folds=3, window_days=train_days + 4)
    frame = build_training_set(spec.features_of(customers), labels, spec)
    train = frame[frame.split == "train"].reset_index(drop=True)
    _, cv = cv_splits(spec, train, frame[frame.split == "validation"], seed=0)
    assert [len(set(train.snapshot_date.iloc[fit])) for fit, _ in cv] == list(range(1, folds + 1))


def test_a_single_train_day_is_fit_on_and_validated_on_the_later_validation_days(simulated):
    """A drift retrain on the episode's first labelled days can leave one train day: the one fold
    is the split itself, and the winner's validation score still comes from unseen rows."""
    customers, labels = simulated
    spec = SMALL_CHURN.evolve(candidates=SMALL_CHURN.training.candidates[:1], window_days=5)
    frame = build_training_set(spec.features_of(customers), labels, spec)
    result = train_candidates(frame, spec, log=lambda _: None)
    [fold] = result.candidates[0].folds
    assert (fold.fit_days, fold.validation_days) == (("2026-01-20", "2026-01-20"), ("2026-01-21", "2026-01-22"))
    assert fold.validation_rows == (frame.split == "validation").sum()
    assert result.candidates[0].cv_score == pytest.approx(result.candidates[0].validation_score)
    with pytest.raises(ValueError, match="no train day lies more than cv_gap_days=1 before the validation days"):
        train_candidates(frame, spec.evolve(cv_gap_days=1), log=lambda _: None)


def test_the_search_uses_the_time_folds_and_reports_their_days(simulated):
    customers, labels = simulated
    spec = SMALL_CHURN.evolve(candidates=SMALL_CHURN.training.candidates[:1], cv_gap_days=1)
    frame = build_training_set(spec.features_of(customers), labels, spec)
    result = train_candidates(frame, spec, log=lambda _: None)
    folds = result.candidates[0].folds
    train = frame[frame.split == "train"].reset_index(drop=True)
    _, cv = cv_splits(spec, train, frame[frame.split == "validation"], 0)
    assert folds == describe_folds(train["snapshot_date"], cv)
    assert [(f.fit_days, f.validation_days) for f in folds] == [
        (("2026-01-01", "2026-01-07"), ("2026-01-09", "2026-01-14")),  # 20 train days, 1 day left out
        (("2026-01-01", "2026-01-13"), ("2026-01-15", "2026-01-20"))]
    assert folds[0].validation_rows == (train["snapshot_date"].between("2026-01-09", "2026-01-14")).sum()
    assert len(result.candidates[0].fold_scores) == 2 and np.mean(result.candidates[0].fold_scores) == \
        pytest.approx(result.candidates[0].cv_score)

"""ProblemSpec: defaults that are valid for every kind of problem, and errors that say the fix."""

from dataclasses import replace

import pytest

from ml_assets.core.datasets import build_training_set
from ml_assets.problems.churn import (
    CANDIDATES,
    CATEGORICAL,
    CHURN,
    CUSTOMERS,
    LABELS,
    NUMERIC,
    ChurnFeatures,
)
from ml_assets.problems.spec import ProblemSpec
from ml_assets_tests.core.churn_data import churn_frames


def _landed(**options) -> ProblemSpec:
    """A landed problem that gives only what has no default."""
    required = {"task": "binary", "primary_metric": "roc_auc"} | options
    return ProblemSpec(name="mine", target="churned", id_column="customer_id", time_column="snapshot_date",
                       numeric_features=NUMERIC, categorical_features=CATEGORICAL, build_features=CHURN.build_features,
                       features_model=ChurnFeatures, candidates=CANDIDATES, metric_floor=0.7, customers=CUSTOMERS,
                       labels=LABELS, **required)


def test_a_landed_problem_with_default_values_loads_and_builds_a_training_set():
    """The old default retrain_min_labeled_days=10 was below test 7 + validation 7 + 1: refused."""
    spec = _landed()
    assert spec.retrain_min_labeled_days == spec.test_days + spec.validation_days + 1 == 15
    frame = build_training_set(*churn_frames(days=20, rows=60), spec)
    assert frame.groupby("split")["snapshot_date"].nunique().to_dict() == {"test": 7, "train": 6, "validation": 7}


def test_the_default_retrain_wait_keeps_ten_days_where_that_suffices():
    assert CHURN.retrain_min_labeled_days == 10
    assert _landed(test_days=3, validation_days=3).retrain_min_labeled_days == 10


@pytest.mark.parametrize("options, message", [
    ({"retrain_min_labeled_days": 9}, (r"retrain_min_labeled_days \(9\) must cover test_days \(7\) \+ "
                                      r"validation_days \(7\) \+ 1 = 15")),
    ({"window_days": 10}, r"window_days \(10\) must cover test_days \(7\)"),
    ({"cv_gap_days": -1}, "cv_gap_days is -1; use 0 or more days"),
    ({"primary_metric": "auc"}, "'auc' is not a scikit-learn scorer name"),
    ({"task": "multiclass", "primary_metric": "neg_log_loss"},
     "'neg_log_loss' cannot be computed from multiclass prediction rows; use one of accuracy, balanced_accuracy"),
])
def test_invalid_options_say_what_to_change(options, message):
    with pytest.raises(ValueError, match=message):
        _landed(**options)


def test_static_problems_may_use_any_scorer_and_name_it_after_the_evaluation():
    from ml_assets.problems.bundled import DIABETES, WINE

    assert (WINE.primary_metric_name, DIABETES.primary_metric_name) == ("f1_macro", "rmse")
    assert replace(WINE, primary_metric="neg_log_loss").primary_metric_name == "log_loss"
    assert replace(WINE, primary_metric="jaccard_macro").primary_metric_name == "primary_jaccard_macro"

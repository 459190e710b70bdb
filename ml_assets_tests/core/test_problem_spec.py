"""ProblemSpec: sections whose defaults are valid for every kind of problem, and load-time errors
that name the field and the fix."""

import numpy as np
import pytest
from ml_examples.bundled import WINE
from ml_examples.churn.problem import CATEGORICAL, CHURN, CUSTOMERS, LABELS, NUMERIC, ChurnFeatures
from scipy.stats import norm

from ml_assets.core.datasets import build_training_set
from ml_assets.problem import CandidateSpec, DataSection, ProblemSpec, SpecError, TrainingSection, load_problem
from ml_assets.problem.loading import problem_from_tags, ref_tags
from ml_assets_tests.core.churn_data import churn_frames


def _data(**options) -> DataSection:
    values = {"target": "churned", "id_column": "customer_id", "time_column": "snapshot_date",
              "numeric_features": NUMERIC, "categorical_features": CATEGORICAL,
              "build_features": CHURN.data.build_features, "features_model": ChurnFeatures,
              "inputs": CUSTOMERS, "labels": LABELS} | options
    return DataSection(**values)


def _landed(task: str = "binary", data: DataSection | None = None, **training) -> ProblemSpec:
    """A landed problem that gives only its data: every other section is the default."""
    return ProblemSpec(name="mine", task=task, data=data or _data(), training=TrainingSection(**training))


@pytest.mark.parametrize("task", ["binary", "multiclass", "regression"])
def test_defaults_are_valid_for_every_task(task):
    spec = _landed(task)
    assert spec.training.primary_metric and spec.training.candidates  # the task's metric and a baseline pair
    assert spec.retraining.min_labeled_days == spec.training.test_days + spec.training.validation_days + 1 == 15
    assert spec.retraining.schedule_running is True and spec.gate.metric_floor is None


def test_a_landed_problem_with_default_values_builds_a_training_set():
    frame = build_training_set(*churn_frames(days=20, rows=60), _landed())
    assert frame.groupby("split")["snapshot_date"].nunique().to_dict() == {"test": 7, "train": 6, "validation": 7}


def test_the_default_retrain_wait_keeps_ten_days_where_that_suffices():
    assert CHURN.retraining.min_labeled_days == 10
    assert _landed(test_days=3, validation_days=3).retraining.min_labeled_days == 10


@pytest.mark.parametrize("build, message", [
    (lambda: _landed().evolve(min_labeled_days=9),
     r"retraining.min_labeled_days \(9\) is below training.test_days \(7\) \+ training.validation_days \(7\) \+ 1"),
    (lambda: _landed(window_days=10), r"training.window_days \(10\) is below training.test_days \(7\)"),
    (lambda: _landed(cv_gap_days=-1), "training.cv_gap_days is -1; use 0 or more days"),
    (lambda: _landed(primary_metric="auc"), "training.primary_metric 'auc' is not a scikit-learn scorer name"),
    (lambda: _landed("multiclass", primary_metric="neg_log_loss"),
     "'neg_log_loss' cannot be computed from multiclass prediction rows.*use one of accuracy"),
    (lambda: _landed(data=_data(numeric_features=tuple(np.array(NUMERIC)))),
     r"data.numeric_features holds names that are not str \(np.str_\('tenure_months'\).*tuple\(str\(c\)"),
    (lambda: _landed(data=_data(categorical_features=(*CATEGORICAL, "contract"))),
     r"lists features twice \(contract\); name each feature once"),
    (lambda: _landed(data=_data(numeric_features=(*NUMERIC, "churned"))), "uses 'churned' as a feature"),
    (lambda: _landed(data=_data(labels=None)), "data.labels is missing"),
    (lambda: _landed(data=_data(time_column=None)), "data.time_column is None"),
    (lambda: _landed(data=_data(features_model=None)), "data.features_model is missing"),
    (lambda: _landed("ordinal"), "task is 'ordinal'; use one of binary, multiclass, regression"),
    (lambda: CHURN.with_overrides({"gate": {"metric_flor": 0.9}}),
     r"gate.metric_flor is not a field; the fields of gate are latency_budget_ms, max_regression, metric_floor"),
    (lambda: CHURN.with_overrides({"gates": {}}), "unknown section 'gates'"),
    (lambda: CHURN.with_overrides({"training": {"search": "grid"}}),
     "training.search is 'grid'; use 'random' .* or 'optuna'"),
    (lambda: CHURN.with_overrides({"training": {"optuna_pruner": "hyperband"}}),
     "training.optuna_pruner is 'hyperband'; use one of median, none"),
    (lambda: CHURN.evolve(optuna_heartbeat_seconds=0), "training.optuna_heartbeat_seconds is 0; use 1 or more"),
    (lambda: CHURN.evolve(search="optuna", candidates=(CandidateSpec("lr", CHURN.training.candidates[0].estimator,
                                                                     {"C": norm(1, 0.1)}),)),
     r"training.candidates\['lr'\].search_space\['C'\] is norm, which an Optuna study cannot sample; give a list"),
    (lambda: CHURN.evolve(promotion="champion"), "experiment.promotion is 'champion'; use direct or experiment"),
    (lambda: CHURN.evolve(mode="bandit"), "experiment.mode is 'bandit'; use one of shadow, canary, ab"),
    (lambda: CHURN.evolve(challenger_share=1.0), r"experiment.challenger_share is 1.0; use a share in \(0, 1\)"),
    (lambda: CHURN.evolve(alpha=0.5), r"experiment.alpha is 0.5; use an error rate in \(0, 0.5\)"),
    (lambda: CHURN.evolve(min_samples=10), "min_samples=10, max_days=28; use min_samples >= 30"),
    (lambda: CHURN.evolve(max_error_rate=0), r"experiment.max_error_rate is 0; use a value in \(0, 1\]"),
    (lambda: CHURN.evolve(max_p99_ms=-1.0), "experiment.max_p99_ms is -1.0; use milliseconds > 0"),
    (lambda: WINE.evolve(promotion="experiment"),
     "experiment.promotion is experiment for a problem without served traffic"),
    (lambda: CHURN.with_overrides({"training": {"candidates": ["xgboost"]}}),
     "training.candidates names xgboost; the spec's candidates are logistic_regression, hist_gradient_boosting"),
])
def test_a_wrong_value_fails_at_load_naming_the_field_and_the_fix(build, message):
    with pytest.raises(SpecError, match=message):
        build()


def test_static_problems_may_use_any_scorer_and_name_it_after_the_evaluation():
    from ml_examples.bundled import DIABETES, WINE

    assert (WINE.primary_metric_name, DIABETES.primary_metric_name) == ("f1_macro", "rmse")
    assert WINE.evolve(primary_metric="neg_log_loss").primary_metric_name == "log_loss"
    assert WINE.evolve(primary_metric="jaccard_macro").primary_metric_name == "primary_jaccard_macro"
    assert WINE.retraining.schedule_running is False  # bundled data never changes: no scheduled retrain


def test_a_reference_with_overrides_rebuilds_the_same_spec_in_another_process():
    """What a model version records is enough to rebuild the spec (the canary, the service, the CLI)."""
    variant = CHURN.evolve(metric_floor=0.8, test_days=2, cooldown_hours=0)
    assert (variant.ref, variant.overrides) == ("ml_examples.churn.problem:CHURN", {
        "gate": {"metric_floor": 0.8}, "training": {"test_days": 2}, "retraining": {"cooldown_hours": 0}})
    rebuilt = problem_from_tags(ref_tags(variant), "churn")
    assert (rebuilt.gate, rebuilt.training.test_days, rebuilt.retraining) == (
        variant.gate, 2, variant.retraining)
    assert load_problem("ml_examples.churn.problem:CHURN", {"monitoring": {"drift_share": 0.3}}).monitoring.drift_share \
        == 0.3


def test_yaml_selects_the_optuna_search_and_the_choice_is_recorded():
    picked = load_problem("ml_examples.churn.problem:CHURN", {"training": {
        "search": "optuna", "optuna_pruner": "none", "optuna_heartbeat_seconds": 5}})
    assert (CHURN.training.search, picked.training.search, picked.training.optuna_pruner) == ("random", "optuna", "none")
    assert problem_from_tags(ref_tags(picked), "churn").training == picked.training


def test_yaml_picks_candidate_families_by_name_and_the_pick_is_recorded():
    picked = CHURN.with_overrides({"training": {"candidates": ["random_forest"]}})
    assert [c.name for c in picked.training.candidates] == ["random_forest"]
    assert [c.name for c in problem_from_tags(ref_tags(picked), "churn").training.candidates] == ["random_forest"]


@pytest.mark.parametrize("ref, message", [
    ("ml_examples.churn.problem", "is not 'package.module:ATTRIBUTE'"),
    ("no_such_package.problems:X", "cannot import 'no_such_package.problems'.*install the package"),
    ("ml_examples.churn.problem:NUMERIC", "'NUMERIC' in ml_examples.churn.problem is tuple, not a ProblemSpec"),
    ("ml_examples.churn.problem:CHRN", "ml_examples.churn.problem defines no 'CHRN'; it defines .*CHURN"),
])
def test_a_bad_reference_says_what_is_wrong(ref, message):
    with pytest.raises(SpecError, match=message):
        load_problem(ref)


def test_a_variant_with_new_functions_needs_its_own_reference():
    variant = CHURN.evolve(build_features=lambda frame: frame)
    assert variant.ref is None
    with pytest.raises(SpecError, match="has no reference.*load_problem"):
        ref_tags(variant)

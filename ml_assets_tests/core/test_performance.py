"""Realized performance: only served predictions count, per snapshot day and model version, for
every task type, with the evaluation's metric names and a drop rule for any primary metric."""


import numpy as np
import pandas as pd
import pytest
from ml_examples.churn.problem import CHURN
from sklearn import metrics

from ml_assets.core.metrics import METRICS, metric_for_scorer, monitorable_scorers
from ml_assets.core.performance import (
    join_labels,
    performance_columns,
    performance_drop,
    primary,
    realized_metrics,
    with_baselines,
)

MULTICLASS = CHURN.evolve(task="multiclass", primary_metric="f1_macro")
REGRESSION = CHURN.evolve(task="regression", primary_metric="neg_root_mean_squared_error")


def _predictions(day: str, n: int, version: str, seed: int, task: str = "binary") -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    score = rng.random(n) * (100 if task == "regression" else 1)
    frame = pd.DataFrame({"customer_id": [f"C{i}" for i in range(n)], "snapshot_date": pd.Timestamp(day),
                          "score": score, "model_name": "churn_model", "model_version": version})
    if task != "regression":
        frame["label"] = (score > 0.5).astype(int) if task == "binary" else rng.integers(0, 3, n)
    return frame


def _labels(predictions: pd.DataFrame, task: str, seed: int = 2) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    labels = predictions[["customer_id", "snapshot_date"]].copy()
    labels["churned"] = {"binary": lambda: (rng.random(len(labels)) < predictions["score"]).astype(int),
                         "multiclass": lambda: np.where(rng.random(len(labels)) < 0.7, predictions.get("label", 0),
                                                        rng.integers(0, 3, len(labels))),
                         "regression": lambda: predictions["score"] + rng.normal(0, 10, len(labels))}[task]()
    return labels


def test_metrics_per_day_and_version_from_the_joined_rows_only():
    predictions = pd.concat([_predictions("2026-03-01", 400, "1", 0), _predictions("2026-03-02", 300, "2", 1)])
    labels = _labels(predictions, "binary").iloc[::2]  # half the labels arrived
    labels = pd.concat([labels, pd.DataFrame({"customer_id": ["X"], "snapshot_date": [pd.Timestamp("2026-03-01")],
                                              "churned": [1]})])  # a label for a row never scored
    realized = realized_metrics(join_labels(predictions, labels, CHURN), CHURN)
    assert list(realized.columns) == performance_columns("binary")
    assert realized[["day", "model_version", "rows"]].values.tolist() == [["2026-03-01", "1", 200], ["2026-03-02", "2", 150]]
    first = predictions.iloc[::2].merge(labels, on=["customer_id", "snapshot_date"]).query("model_version == '1'")
    assert realized["roc_auc"].iloc[0] == pytest.approx(metrics.roc_auc_score(first["churned"], first["score"]))
    assert realized["pr_auc"].iloc[0] == \
        pytest.approx(metrics.average_precision_score(first["churned"], first["score"]))


@pytest.mark.parametrize("spec, expected", [
    (CHURN, {"roc_auc": lambda y, f: metrics.roc_auc_score(y, f.score),
             "brier": lambda y, f: metrics.brier_score_loss(y, f.score), "f1": lambda y, f: metrics.f1_score(y, f.label)}),
    (MULTICLASS, {"accuracy": lambda y, f: metrics.accuracy_score(y, f.label),
                  "f1_macro": lambda y, f: metrics.f1_score(y, f.label, average="macro")}),
    (REGRESSION, {"rmse": lambda y, f: np.sqrt(metrics.mean_squared_error(y, f.score)),
                  "r2": lambda y, f: metrics.r2_score(y, f.score), "mean_prediction": lambda y, f: f.score.mean()}),
], ids=["binary", "multiclass", "regression"])
def test_every_task_type_has_its_realized_metrics_by_the_evaluation_names(spec, expected):
    predictions = _predictions("2026-03-01", 500, "1", 0, spec.task)
    joined = join_labels(predictions, _labels(predictions, spec.task), spec)
    realized = realized_metrics(joined, spec)
    assert list(realized.columns) == performance_columns(spec.task)
    assert spec.primary_metric_name in realized.columns  # the evaluation's name of the primary metric
    for name, reference in expected.items():
        assert realized[name].iloc[0] == pytest.approx(reference(joined["churned"], joined)), name
    assert "roc_auc" not in realized.columns or spec.task == "binary"  # nothing binary is hard-coded


def test_one_class_day_has_no_auc_and_empty_inputs_are_empty():
    predictions = _predictions("2026-03-01", 50, "1", 0)
    labels = predictions[["customer_id", "snapshot_date"]].assign(churned=0)
    realized = realized_metrics(join_labels(predictions, labels, CHURN), CHURN)
    assert np.isnan(realized["roc_auc"].iloc[0]) and realized["positive_rate"].iloc[0] == 0
    assert realized_metrics(join_labels(predictions.iloc[:0], labels, CHURN), CHURN).empty


@pytest.mark.parametrize("scorer, name", [("roc_auc", "roc_auc"), ("average_precision", "pr_auc"),
                                          ("neg_log_loss", "log_loss"), ("neg_brier_score", "brier"), ("f1", "f1")])
def test_any_binary_primary_metric_gets_baseline_and_drop_under_the_evaluation_name(scorer, name):
    """average_precision used to be a KeyError: realized metrics only had roc_auc/log_loss/brier,
    and the baseline was looked up as test_average_precision while the evaluation logs test_pr_auc."""
    spec = CHURN.evolve(primary_metric=scorer)
    assert spec.primary_metric_name == name and primary(spec).name == name
    predictions = pd.concat([_predictions("2026-03-01", 400, "1", 0), _predictions("2026-03-02", 400, "2", 1)])
    realized = realized_metrics(join_labels(predictions, _labels(predictions, "binary"), spec), spec)
    better = realized[name].iloc[0] + (0.2 if primary(spec).greater_is_better else -0.2)
    out = with_baselines(realized, {"1": better, "2": None}, spec)  # v1 evaluated far better than it now does
    assert out["drop"].tolist() == [True, False] and out["baseline"].iloc[0] == pytest.approx(better)


@pytest.mark.parametrize("scorer, realized, baseline, expected", [
    ("roc_auc", 0.80, 0.90, True), ("roc_auc", 0.86, 0.90, False), ("roc_auc", float("nan"), 0.9, False),
    ("roc_auc", 0.5, None, False), ("roc_auc", 0.5, float("nan"), False),
    ("neg_log_loss", 0.40, 0.30, True), ("neg_log_loss", 0.33, 0.30, False), ("neg_log_loss", 0.10, 0.30, False),
])
def test_a_drop_is_worse_than_baseline_by_more_than_the_tolerance_for_any_metric(scorer, realized, baseline, expected):
    assert performance_drop(realized, baseline, 0.05, metric_for_scorer("binary", scorer)) is expected


@pytest.mark.parametrize("task, scorer, realized, baseline, expected", [
    ("regression", "neg_root_mean_squared_error", 60.0, 50.0, True),  # the error rose by 10 > tolerance 5
    ("regression", "neg_root_mean_squared_error", 54.0, 50.0, False),
    ("regression", "r2", 0.30, 0.45, True), ("multiclass", "f1_macro", 0.80, 0.90, True),
])
def test_the_drop_rule_for_regression_and_multiclass(task, scorer, realized, baseline, expected):
    tolerance = 5.0 if scorer.startswith("neg_") else 0.05
    assert performance_drop(realized, baseline, tolerance, metric_for_scorer(task, scorer)) is expected


def test_every_metric_name_is_unique_per_task_and_every_monitorable_scorer_resolves():
    for task, table in METRICS.items():
        assert len({m.name for m in table}) == len(table) and len({m.scorer for m in table}) == len(table)
        assert all(metric_for_scorer(task, s).needs in ("score", "label", "value") for s in monitorable_scorers(task))
    assert "neg_log_loss" not in monitorable_scorers("multiclass")  # batch predictions keep only the top class

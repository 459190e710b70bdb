"""Realized performance: only served predictions count, per snapshot day and model version."""

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from ml_assets.core.performance import PERFORMANCE_COLUMNS, join_labels, performance_drop, realized_metrics
from ml_assets.problems.churn import CHURN


def _predictions(day: str, n: int, version: str, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    score = rng.random(n)
    return pd.DataFrame({"customer_id": [f"C{i}" for i in range(n)], "snapshot_date": pd.Timestamp(day),
                         "score": score, "label": (score > 0.5).astype(int), "model_name": "churn_model",
                         "model_version": version})


def test_metrics_per_day_and_version_from_the_joined_rows_only():
    predictions = pd.concat([_predictions("2026-03-01", 400, "1", 0), _predictions("2026-03-02", 300, "2", 1)])
    labels = predictions[["customer_id", "snapshot_date"]].iloc[::2].copy()  # half the labels arrived
    labels["churned"] = (np.random.default_rng(2).random(len(labels)) < predictions["score"].iloc[::2]).astype(int)
    labels = pd.concat([labels, pd.DataFrame({"customer_id": ["X"], "snapshot_date": [pd.Timestamp("2026-03-01")],
                                              "churned": [1]})])  # a label for a row never scored
    realized = realized_metrics(join_labels(predictions, labels, CHURN), CHURN)
    assert list(realized.columns) == PERFORMANCE_COLUMNS
    assert realized[["day", "model_version", "rows"]].values.tolist() == [["2026-03-01", "1", 200], ["2026-03-02", "2", 150]]
    first = predictions.iloc[::2].merge(labels, on=["customer_id", "snapshot_date"]).query("model_version == '1'")
    assert realized["roc_auc"].iloc[0] == pytest.approx(roc_auc_score(first["churned"], first["score"]))


def test_one_class_day_has_no_auc_and_empty_inputs_are_empty():
    predictions = _predictions("2026-03-01", 50, "1", 0)
    labels = predictions[["customer_id", "snapshot_date"]].assign(churned=0)
    realized = realized_metrics(join_labels(predictions, labels, CHURN), CHURN)
    assert np.isnan(realized["roc_auc"].iloc[0]) and realized["positive_rate"].iloc[0] == 0
    assert realized_metrics(join_labels(predictions.iloc[:0], labels, CHURN), CHURN).empty


@pytest.mark.parametrize("realized, baseline, expected", [(0.80, 0.90, True), (0.86, 0.90, False),
                                                          (float("nan"), 0.9, False), (0.5, None, False)])
def test_a_drop_is_below_baseline_by_more_than_the_tolerance(realized, baseline, expected):
    assert performance_drop(realized, baseline, 0.05) is expected

"""Evaluate a fitted pipeline on the held-out test split: metrics per task, slices, curves."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sklearn import metrics as m
from sklearn.calibration import calibration_curve

from ml_assets.core.metrics import LABEL, PROBA, SCORE, VALUE, compute_metrics
from ml_assets.problem.spec import ProblemSpec


@dataclass
class Evaluation:
    metrics: dict[str, float]
    slices: pd.DataFrame  # segment column, value, rows, primary metric
    confusion: np.ndarray | None = None
    labels: list = field(default_factory=list)
    curves: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)


def _binary(y, score, threshold: float) -> tuple[dict, np.ndarray, dict]:
    predicted = (score >= threshold).astype(int)
    prob_true, prob_pred = calibration_curve(y, score, n_bins=10, strategy="quantile")
    fpr, tpr, _ = m.roc_curve(y, score)
    precision, recall, _ = m.precision_recall_curve(y, score)
    values = {**compute_metrics("binary", y, {SCORE: score, LABEL: predicted}),
              "calibration_error": float(np.mean(np.abs(prob_true - prob_pred))), "threshold": threshold}
    curves = {"roc": (fpr, tpr), "pr": (recall, precision), "calibration": (prob_pred, prob_true)}
    return values, m.confusion_matrix(y, predicted, labels=[0, 1]), curves


def score_primary(pipeline, frame: pd.DataFrame, spec: ProblemSpec) -> float:
    """The spec's primary metric of any fitted pipeline on a labelled frame (e.g. the champion on
    the candidate's test split, so the two are compared on the same rows)."""
    return _score(spec.task, spec.training.primary_metric, frame[spec.data.target].to_numpy(), pipeline, frame[spec.feature_columns])


def _score(task: str, metric: str, y, pipeline, x) -> float:
    if task == "binary" and len(np.unique(y)) < 2:
        return float("nan")  # AUC is undefined on a one-class slice
    return float(m.get_scorer(metric)(pipeline, x, y))


def evaluate_model(pipeline, test: pd.DataFrame, spec: ProblemSpec) -> Evaluation:
    """All metrics of the spec's task by their names in core/metrics.py, the primary metric as its
    scorer computes it (`primary_<scorer>`), and the primary metric per segment value."""
    if test.empty:
        raise ValueError("the test split is empty: nothing to evaluate")
    x, y = test[spec.feature_columns], test[spec.data.target].to_numpy()
    confusion, labels, curves = None, [], {}
    if spec.task == "binary":
        values, confusion, curves = _binary(y, pipeline.predict_proba(x)[:, 1], spec.decision_threshold)
        labels = [0, 1]
    elif spec.task == "multiclass":
        proba, predicted = pipeline.predict_proba(x), pipeline.predict(x)
        labels = list(pipeline.classes_)
        values = compute_metrics("multiclass", y, {LABEL: predicted, PROBA: proba}, labels)
        confusion = m.confusion_matrix(y, predicted, labels=labels)
    else:
        values = compute_metrics("regression", y, {VALUE: pipeline.predict(x)})
    values[f"primary_{spec.training.primary_metric}"] = _score(spec.task, spec.training.primary_metric, y, pipeline, x)
    rows = []
    for column in spec.data.segment_columns:
        for value, part in test.groupby(column, observed=True):
            rows.append({"segment": column, "value": str(value), "rows": len(part),
                         spec.training.primary_metric: _score(spec.task, spec.training.primary_metric, part[spec.data.target].to_numpy(),
                                                     pipeline, part[spec.feature_columns])})
    slices = pd.DataFrame(rows, columns=["segment", "value", "rows", spec.training.primary_metric])
    return Evaluation(metrics={k: float(v) for k, v in values.items()}, slices=slices, confusion=confusion,
                      labels=labels, curves=curves)

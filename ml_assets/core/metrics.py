"""The metric names of the platform, in one place: what the evaluation logs (`test_<name>` in
MLflow), what realized performance computes (`realized_<name>`), and which scikit-learn scorer
name means which metric (a spec's `primary_metric` is a scorer name: `average_precision` is the
metric `pr_auc`, `neg_root_mean_squared_error` is `rmse`). Pure: no Dagster, no MLflow.

Each metric says which model output it needs, so realized performance computes exactly the ones
a prediction row carries: P(positive) and the class for binary problems, the class for
multiclass (batch predictions keep only the top class), the value for regression.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from sklearn import metrics as m

SCORE, LABEL, PROBA, VALUE = "score", "label", "proba", "value"  # model outputs a metric reads


@dataclass(frozen=True)
class Metric:
    name: str  # the evaluation's name: `test_<name>` in MLflow, `realized_<name>` in monitoring
    needs: str  # SCORE (binary P(positive)), LABEL (predicted class), PROBA (all classes) or VALUE
    compute: Callable  # (y, output, classes) -> float
    greater_is_better: bool = True
    scorer: str | None = None  # the scikit-learn scorer name meaning this metric
    both_classes: bool = False  # undefined (NaN) unless y holds both classes
    bounds: tuple[float | None, float | None] = (0.0, 1.0)  # the values it can take (None: unbounded)

    def __call__(self, y: np.ndarray, output: np.ndarray, classes: list | None = None) -> float:
        if self.both_classes and len(np.unique(y)) < 2:
            return float("nan")
        with warnings.catch_warnings():  # a one-class day is normal in monitoring, not worth a warning per day
            warnings.simplefilter("ignore", UserWarning)
            return float(self.compute(y, output, classes))

    def as_score(self, value: float) -> float:
        """The value on the scorer's scale, greater is better (errors negated, as scikit-learn does)."""
        return value if self.greater_is_better else -value


def _label(fn, **kw) -> Callable:
    return lambda y, out, _: fn(y, out, **kw)


def _rmse(y, out, _) -> float:
    return float(np.sqrt(m.mean_squared_error(y, out)))


METRICS: dict[str, tuple[Metric, ...]] = {
    "binary": (
        Metric("roc_auc", SCORE, _label(m.roc_auc_score), scorer="roc_auc", both_classes=True),
        Metric("pr_auc", SCORE, _label(m.average_precision_score), scorer="average_precision", both_classes=True),
        Metric("log_loss", SCORE, _label(m.log_loss, labels=[0, 1]), False, "neg_log_loss", bounds=(0.0, None)),
        Metric("brier", SCORE, _label(m.brier_score_loss, pos_label=1), False, "neg_brier_score"),
        Metric("f1", LABEL, _label(m.f1_score, zero_division=0), scorer="f1"),
        Metric("precision", LABEL, _label(m.precision_score, zero_division=0), scorer="precision"),
        Metric("recall", LABEL, _label(m.recall_score, zero_division=0), scorer="recall"),
        Metric("accuracy", LABEL, _label(m.accuracy_score), scorer="accuracy"),
        Metric("balanced_accuracy", LABEL, _label(m.balanced_accuracy_score), scorer="balanced_accuracy"),
    ),
    "multiclass": (
        Metric("accuracy", LABEL, _label(m.accuracy_score), scorer="accuracy"),
        Metric("balanced_accuracy", LABEL, _label(m.balanced_accuracy_score), scorer="balanced_accuracy"),
        Metric("f1_macro", LABEL, _label(m.f1_score, average="macro", zero_division=0), scorer="f1_macro"),
        Metric("f1_weighted", LABEL, _label(m.f1_score, average="weighted", zero_division=0), scorer="f1_weighted"),
        Metric("log_loss", PROBA, lambda y, p, classes: m.log_loss(y, p, labels=classes), False, "neg_log_loss",
               bounds=(0.0, None)),
        Metric("roc_auc_ovr", PROBA, lambda y, p, classes: m.roc_auc_score(y, p, multi_class="ovr", labels=classes),
               scorer="roc_auc_ovr", both_classes=True),
    ),
    "regression": (
        Metric("rmse", VALUE, _rmse, False, "neg_root_mean_squared_error", bounds=(0.0, None)),
        Metric("mae", VALUE, _label(m.mean_absolute_error), False, "neg_mean_absolute_error", bounds=(0.0, None)),
        Metric("mse", VALUE, _label(m.mean_squared_error), False, "neg_mean_squared_error", bounds=(0.0, None)),
        Metric("r2", VALUE, _label(m.r2_score), scorer="r2", bounds=(None, 1.0)),
    ),
}

# What a prediction row carries per task (core/scoring.py: score and label; regression: the value as score)
PREDICTION_OUTPUTS = {"binary": (SCORE, LABEL), "multiclass": (LABEL,), "regression": (VALUE,)}


def task_metrics(task: str, outputs: tuple[str, ...] | None = None) -> tuple[Metric, ...]:
    """The task's metrics, or only those computable from the given outputs."""
    return tuple(x for x in METRICS[task] if outputs is None or x.needs in outputs)


def metric_for_scorer(task: str, scorer: str) -> Metric | None:
    """The metric a scikit-learn scorer name means for this task (None: not one of the platform's)."""
    return next((x for x in METRICS[task] if x.scorer == scorer), None)


def monitorable_scorers(task: str) -> list[str]:
    return [x.scorer for x in task_metrics(task, PREDICTION_OUTPUTS[task]) if x.scorer]


def compute_metrics(task: str, y: np.ndarray, outputs: dict[str, np.ndarray],
                    classes: list | None = None) -> dict[str, float]:
    """Every metric of the task whose model output is given, by the evaluation's names."""
    return {x.name: x(y, outputs[x.needs], classes) for x in task_metrics(task, tuple(outputs))}

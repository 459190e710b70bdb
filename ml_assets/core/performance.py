"""Realized model performance: the predictions that were served, joined with the labels that
arrived later, per snapshot day and model version, for every task type. The metrics carry the
evaluation's names (core/metrics.py), so a version's baseline is its `test_<name>`. Pure."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ml_assets.core.metrics import (
    LABEL,
    PREDICTION_OUTPUTS,
    SCORE,
    VALUE,
    Metric,
    metric_for_scorer,
    task_metrics,
)
from ml_assets.problem.spec import ProblemSpec

KEYS = ["day", "model_version", "rows"]
_RATES = {"binary": ["positive_rate", "predicted_rate"], "multiclass": [],
          "regression": ["mean_target", "mean_prediction"]}


def realized_metric_list(task: str) -> tuple[Metric, ...]:
    """The metrics computable from prediction rows of this task (named as the evaluation names them)."""
    return task_metrics(task, PREDICTION_OUTPUTS[task])


def rate_columns(task: str) -> list[str]:
    return list(_RATES[task])


def performance_columns(task: str) -> list[str]:
    return [*KEYS, *_RATES[task], *(x.name for x in realized_metric_list(task))]


def primary(spec: ProblemSpec) -> Metric:
    """The spec's primary metric among the realized ones (ProblemSpec refuses others for landed problems)."""
    return metric_for_scorer(spec.task, spec.training.primary_metric)


def join_labels(predictions: pd.DataFrame, labels: pd.DataFrame, spec: ProblemSpec) -> pd.DataFrame:
    keys = [spec.data.id_column, spec.data.time_column]
    if predictions.empty or labels.empty:
        return pd.DataFrame(columns=[*keys, "score", "label", "model_version", spec.data.target])
    return predictions.merge(labels[[*keys, spec.data.target]], on=keys, how="inner", validate="one_to_one")


def _outputs(group: pd.DataFrame, task: str) -> dict[str, np.ndarray]:
    """What a prediction row carries (core/scoring.py): regression keeps its value as `score`."""
    if task == "regression":
        return {VALUE: group["score"].to_numpy(dtype=float)}
    outputs = {LABEL: group["label"].to_numpy()}
    if task == "binary":
        outputs[SCORE] = group["score"].to_numpy(dtype=float)
    return outputs


def _rates(y: np.ndarray, outputs: dict[str, np.ndarray], task: str) -> dict[str, float]:
    if task == "binary":
        return {"positive_rate": y.mean(), "predicted_rate": outputs[LABEL].mean()}
    if task == "regression":
        return {"mean_target": y.mean(), "mean_prediction": outputs[VALUE].mean()}
    return {}


def _day_metrics(group: pd.DataFrame, spec: ProblemSpec) -> pd.Series:
    y, outputs = group[spec.data.target].to_numpy(), _outputs(group, spec.task)
    metrics = {x.name: x(y, outputs[x.needs]) for x in task_metrics(spec.task, tuple(outputs))}
    return pd.Series({"rows": len(group), **_rates(y, outputs, spec.task), **metrics})


def realized_metrics(joined: pd.DataFrame, spec: ProblemSpec) -> pd.DataFrame:
    """One row per (snapshot day, model version) of the joined predictions."""
    columns = performance_columns(spec.task)
    if joined.empty:
        return pd.DataFrame(columns=columns)
    day = joined[spec.data.time_column].dt.strftime("%Y-%m-%d").rename("day")
    out = joined.groupby([day, "model_version"]).apply(_day_metrics, spec, include_groups=False)
    return out.reset_index().astype({"rows": "int64"})[columns]


def performance_drop(realized: float, baseline: float | None, tolerance: float, metric: Metric) -> bool:
    """Realized worse than the evaluation baseline by more than the tolerance, on the scorer's
    greater-is-better scale (an error metric rising by more than the tolerance is a drop too).
    No baseline or no realized value (e.g. AUC of a one-class day): no verdict."""
    if baseline is None or baseline != baseline or realized != realized:
        return False
    return metric.as_score(realized) < metric.as_score(baseline) - tolerance


def with_baselines(realized: pd.DataFrame, baselines: dict[str, float | None], spec: ProblemSpec) -> pd.DataFrame:
    """`baseline` (the version's evaluation value of the primary metric) and `drop` per row."""
    metric, out = primary(spec), realized.copy()
    out["baseline"] = out["model_version"].map(baselines).astype(float)
    out["drop"] = pd.Series([performance_drop(r, b, spec.monitoring.performance_tolerance, metric)
                             for r, b in zip(out[metric.name], out["baseline"])], index=out.index, dtype=bool)
    return out

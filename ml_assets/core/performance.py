"""Realized model performance: the predictions that were served, joined with the labels that
arrived later, per snapshot day and model version. Pure."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import brier_score_loss, log_loss, roc_auc_score

from ml_assets.problems.spec import ProblemSpec

PERFORMANCE_COLUMNS = ["day", "model_version", "rows", "positive_rate", "predicted_rate", "roc_auc", "log_loss",
                       "brier"]


def join_labels(predictions: pd.DataFrame, labels: pd.DataFrame, spec: ProblemSpec) -> pd.DataFrame:
    keys = [spec.id_column, spec.time_column]
    if predictions.empty or labels.empty:
        return pd.DataFrame(columns=[*keys, "score", "label", "model_version", spec.target])
    return predictions.merge(labels[[*keys, spec.target]], on=keys, how="inner", validate="one_to_one")


def _day_metrics(group: pd.DataFrame, target: str) -> pd.Series:
    y, score = group[target].to_numpy(), group["score"].to_numpy()
    both = len(np.unique(y)) == 2  # AUC and log loss need both classes in the day
    return pd.Series({"rows": len(group), "positive_rate": y.mean(), "predicted_rate": group["label"].mean(),
                      "roc_auc": roc_auc_score(y, score) if both else np.nan,
                      "log_loss": log_loss(y, score, labels=[0, 1]), "brier": brier_score_loss(y, score)})


def realized_metrics(joined: pd.DataFrame, spec: ProblemSpec) -> pd.DataFrame:
    """One row per (snapshot day, model version) of the joined predictions (binary problems)."""
    if joined.empty:
        return pd.DataFrame(columns=PERFORMANCE_COLUMNS)
    day = joined[spec.time_column].dt.strftime("%Y-%m-%d").rename("day")
    out = joined.groupby([day, "model_version"]).apply(_day_metrics, spec.target, include_groups=False)
    return out.reset_index().astype({"rows": "int64"})[PERFORMANCE_COLUMNS]


def performance_drop(realized: float, baseline: float | None, tolerance: float) -> bool:
    """Realized below the evaluation baseline by more than the tolerance (no baseline: no verdict)."""
    return baseline is not None and realized == realized and realized < baseline - tolerance

"""Scoring with a fitted pipeline: one function for the batch asset, the service and the canary,
so every path turns model output into (score, label) the same way."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ml_assets.problem.spec import ProblemSpec


def to_features(raw: pd.DataFrame, spec: ProblemSpec) -> pd.DataFrame:
    """Raw input records (the spec's input contract) -> model features."""
    return spec.features_of(raw)


def predict(pipeline, features: pd.DataFrame, spec: ProblemSpec) -> tuple[np.ndarray, np.ndarray | None]:
    """(score, label) per row: P(positive) and the thresholded class for binary problems, the top
    probability and its class for multiclass, the prediction (and no label) for regression."""
    if spec.task == "regression":
        return np.asarray(pipeline.predict(features), dtype=float), None
    proba = pipeline.predict_proba(features)
    if spec.task == "binary":
        score = proba[:, 1]
        return score, (score >= spec.decision_threshold).astype(np.int64)
    top = proba.argmax(axis=1)
    return proba[np.arange(len(top)), top], np.asarray(pipeline.classes_)[top]


def score_frame(pipeline, features: pd.DataFrame, spec: ProblemSpec, model_name: str,
                model_version: str, chunk_rows: int = 250_000) -> pd.DataFrame:
    """Batch predictions with the id (and time) columns kept. Scored in chunks so that a day of any
    size needs a bounded amount of intermediate memory (one-hot matrices are wide)."""
    keys = [spec.data.id_column] + ([spec.data.time_column] if spec.data.time_column else [])
    scores, labels = [], []
    for start in range(0, len(features), chunk_rows):
        score, label = predict(pipeline, features.iloc[start:start + chunk_rows], spec)
        scores.append(score)
        labels.append(label)
    out = features[keys].reset_index(drop=True)
    out["score"] = np.concatenate(scores) if scores else np.empty(0)
    if spec.task != "regression":
        out["label"] = np.concatenate(labels) if labels else np.empty(0, dtype=np.int64)
    out["model_name"] = model_name
    out["model_version"] = model_version
    return out

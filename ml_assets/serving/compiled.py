"""A numpy fast path for the platform's preprocessing, verified against scikit-learn at load time.

Online requests are a handful of rows, where scikit-learn's per-call overhead (input checks,
ColumnTransformer dispatch, pandas round trips: ~5-8 ms) dwarfs the arithmetic. The pipelines
`core.training.build_pipeline` builds are a ColumnTransformer of [median imputer -> scaler] and
[most-frequent imputer -> one-hot(ignore unknown)] in front of an estimator; their fitted state
is a few arrays, replayed here with numpy. The compiled form is only used when it reproduces the
pipeline's own output on the model's input example plus edge cases (missing values, unseen
categories); anything else (other transformers, options) keeps the plain pipeline.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from ml_assets.serving import trees


class Unsupported(ValueError):
    pass


def _numeric(step: Pipeline, columns: list[str]):
    imputer, scaler = step.steps[0][1], step.steps[1][1]
    if not (isinstance(imputer, SimpleImputer) and isinstance(scaler, StandardScaler) and len(step.steps) == 2):
        raise Unsupported(f"numeric branch {step}")
    if imputer.add_indicator or np.isnan(imputer.statistics_.astype(float)).any():
        raise Unsupported("imputer with indicator or all-missing columns")
    fill = imputer.statistics_.astype(float)
    mean = scaler.mean_ if scaler.with_mean else np.zeros(len(columns))
    scale = scaler.scale_ if scaler.with_std else np.ones(len(columns))

    def transform(frame: pd.DataFrame | dict[str, np.ndarray]) -> np.ndarray:
        if isinstance(frame, pd.DataFrame):
            x = frame[columns].to_numpy(dtype=float, na_value=np.nan)
        else:  # feature arrays (`problem.columnwise`): float already, NaN for missing
            x = np.column_stack([np.asarray(frame[c], dtype=float) for c in columns])
        x = np.where(np.isnan(x), fill, x)
        return (x - mean) / scale

    return transform


def _categorical(step: Pipeline, columns: list[str]):
    imputer, encoder = step.steps[0][1], step.steps[1][1]
    if not (isinstance(imputer, SimpleImputer) and isinstance(encoder, OneHotEncoder) and len(step.steps) == 2):
        raise Unsupported(f"categorical branch {step}")
    if encoder.drop_idx_ is not None or getattr(encoder, "infrequent_categories_", None) is not None \
            or encoder.handle_unknown != "ignore" or imputer.add_indicator:
        raise Unsupported("one-hot with drop/infrequent categories/errors on unknown")
    lookups = [{value: i for i, value in enumerate(cats)} for cats in encoder.categories_]
    offsets = np.cumsum([0] + [len(c) for c in encoder.categories_])

    def transform(frame: pd.DataFrame | dict[str, np.ndarray]) -> np.ndarray:
        n = len(frame) if isinstance(frame, pd.DataFrame) else len(frame[columns[0]])
        out = np.zeros((n, offsets[-1]))
        rows = np.arange(n)
        for j, column in enumerate(columns):
            values = np.asarray(frame[column], dtype=object)
            missing = values != values  # NaN only, exactly as SimpleImputer(missing_values=nan) sees it
            if missing.any():
                values = np.where(missing, imputer.statistics_[j], values)
            codes = np.fromiter((lookups[j].get(v, -1) for v in values), dtype=np.int64, count=len(values))
            known = codes >= 0  # unseen categories encode as all zeros, as handle_unknown="ignore" does
            out[rows[known], offsets[j] + codes[known]] = 1.0
        return out

    return transform


class CompiledPipeline:
    def __init__(self, pipeline: Pipeline, replay_trees: bool = True):
        if len(pipeline.steps) != 2:
            raise Unsupported("expected [features, model]")
        features, self.model = pipeline.steps[0][1], pipeline.steps[1][1]
        if replay_trees:
            self.model = trees.replay(self.model)
        if getattr(features, "sparse_output_", False) or features.remainder != "drop":
            raise Unsupported("sparse output or passthrough columns")
        self.parts = []
        for name, step, columns in features.transformers_:
            if name == "remainder" or step == "drop" or not len(columns):
                continue
            if name == "numeric":
                self.parts.append(_numeric(step, list(columns)))
            elif name == "categorical":
                self.parts.append(_categorical(step, list(columns)))
            else:
                raise Unsupported(f"transformer {name!r}")
        self.classes_ = getattr(self.model, "classes_", None)

    def transform(self, frame: pd.DataFrame | dict[str, np.ndarray]) -> np.ndarray:
        """A frame of feature columns, or a dict of their arrays (the service's columnwise path)."""
        return np.hstack([part(frame) for part in self.parts])

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        return self.model.predict_proba(self.transform(frame))

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        return self.model.predict(self.transform(frame))


def edge_cases(example: pd.DataFrame, categorical: list[str], numeric: list[str]) -> pd.DataFrame:
    """The example, plus the same rows with missing numerics and unseen/missing categories."""
    missing, unseen = example.copy(), example.copy()
    for column in numeric:
        missing[column] = np.nan
    for column in categorical:
        missing[column] = np.nan
        unseen[column] = "__never_seen_in_training__"
    return pd.concat([example, missing, unseen], ignore_index=True)


def compile_pipeline(pipeline, example: pd.DataFrame | None, categorical: list[str], numeric: list[str],
                     task: str):
    """The compiled pipeline when it reproduces scikit-learn exactly on the checks (with the model's
    trees replayed in numpy if they reproduce it too, else with the fitted model), else the pipeline."""
    if example is None or example.empty:
        return pipeline
    probe = edge_cases(example, categorical, numeric)
    method = "predict" if task == "regression" else "predict_proba"
    try:
        expected = getattr(pipeline, method)(probe)
    except (AttributeError, KeyError, IndexError, ValueError, TypeError):  # not a pipeline this can check
        return pipeline
    for replay_trees in (True, False):
        try:
            compiled = CompiledPipeline(pipeline, replay_trees)
            arrays = {str(c): probe[c].to_numpy() for c in probe.columns}  # as the columnwise path hands them
            if all(np.allclose(expected, getattr(compiled, method)(data), rtol=1e-9, atol=1e-12, equal_nan=True)
                   for data in (probe, arrays)):
                return compiled
        except (Unsupported, AttributeError, KeyError, IndexError, ValueError, TypeError):
            continue  # without the replay, or else the plain pipeline
    return pipeline

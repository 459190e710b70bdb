"""Problems on real data that ships inside scikit-learn (its `load_*` functions read files in the
installed package: no download). They exercise the multiclass and regression paths of the platform."""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd
import pandera.pandas as pa
from sklearn.datasets import load_diabetes, load_wine
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestRegressor
from sklearn.linear_model import LogisticRegression, Ridge

from ml_assets.problem import CandidateSpec, DataSection, GateSection, ProblemSpec, TrainingSection


def _loader(load: Callable, target: str) -> Callable[[], pd.DataFrame]:
    def load_frame() -> pd.DataFrame:
        frame = load(as_frame=True).frame.rename(columns={"target": target})
        return frame.rename(columns=lambda c: c.replace("/", "_")).reset_index(names="row_id")

    return load_frame


def _describe(name: str, load_frame: Callable[[], pd.DataFrame], target: str,
              target_dtype) -> tuple[tuple[str, ...], pa.DataFrameSchema]:
    """Feature names and the contract of a bundled dataset, from one load of it."""
    features = tuple(c for c in load_frame().columns if c not in ("row_id", target))
    schema = pa.DataFrameSchema({"row_id": pa.Column(int, unique=True), **{c: pa.Column(float) for c in features},
                                 target: pa.Column(target_dtype)}, name=name, strict=True)
    return features, schema


_wine = _loader(load_wine, "cultivar")
_diabetes = _loader(load_diabetes, "progression")
WINE_FEATURES, _WINE_SCHEMA = _describe("WineSamples", _wine, "cultivar", int)
DIABETES_FEATURES, _DIABETES_SCHEMA = _describe("DiabetesPatients", _diabetes, "progression", float)

WINE = ProblemSpec(
    name="wine", task="multiclass",
    data=DataSection(target="cultivar", id_column="row_id", numeric_features=WINE_FEATURES,
                     features_model=_WINE_SCHEMA, load_static=_wine),
    training=TrainingSection(
        candidates=(CandidateSpec("logistic_regression",
                                  lambda seed: LogisticRegression(max_iter=2000, random_state=seed), {"C": [0.1, 1.0, 10.0]}),
                    CandidateSpec("hist_gradient_boosting", lambda seed: HistGradientBoostingClassifier(random_state=seed),
                                  {"learning_rate": [0.05, 0.1], "max_leaf_nodes": [7, 15]})),
        primary_metric="f1_macro", search_iterations=3),
    gate=GateSection(metric_floor=0.85), ref="ml_examples.bundled:WINE")

DIABETES = ProblemSpec(
    name="diabetes", task="regression",
    data=DataSection(target="progression", id_column="row_id", numeric_features=DIABETES_FEATURES,
                     features_model=_DIABETES_SCHEMA, load_static=_diabetes),
    training=TrainingSection(
        candidates=(CandidateSpec("ridge", lambda seed: Ridge(random_state=seed), {"alpha": [0.1, 1.0, 10.0]}),
                    CandidateSpec("random_forest", lambda seed: RandomForestRegressor(n_estimators=60, random_state=seed),
                                  {"min_samples_leaf": [3, 10], "max_features": [0.5, 1.0]})),
        primary_metric="neg_root_mean_squared_error", search_iterations=3),
    gate=GateSection(metric_floor=-70.0), ref="ml_examples.bundled:DIABETES")

"""Small real churn models registered in a real MLflow registry, for deployment and serving tests."""

import os
from datetime import date

import mlflow
import mlflow.sklearn
import numpy as np
from sklearn.linear_model import LogisticRegression

from ml_assets.core.training import build_pipeline
from ml_assets.problems.churn import CHURN
from ml_assets.resources.mlflow import ensure_experiment
from ml_assets.serving.scorer import canary_records
from ml_assets.simulation import WorldConfig, simulate_day
from ml_assets.tracking import REQUIREMENTS
from ml_assets_tests.core.churn_data import churn_frames


def fit_churn(c: float = 1.0, shuffle_labels: bool = False):
    features, labels = churn_frames(days=3, rows=300)
    frame = features.merge(labels, on=["customer_id", "snapshot_date"])
    y = frame["churned"].to_numpy()
    if shuffle_labels:
        y = np.random.default_rng(0).permutation(y)
    return build_pipeline(CHURN, LogisticRegression(C=c, max_iter=500)).fit(frame[CHURN.feature_columns], y)


def register(pipeline, name: str = CHURN.registered_model_name) -> str:
    """Log + register into the store the environment points at (set by the fresh_mlflow fixture)."""
    uri = os.environ["MLFLOW_TRACKING_URI"]
    mlflow.set_tracking_uri(uri)  # other tests in this worker may have pointed MLflow elsewhere
    experiment = ensure_experiment(uri, "tests", os.environ["ML_ASSETS_MLFLOW_ARTIFACTS"])
    example = churn_frames(days=1, rows=20)[0][CHURN.feature_columns].head(5)  # as the training asset logs it
    with mlflow.start_run(experiment_id=experiment):
        info = mlflow.sklearn.log_model(pipeline, name="model", registered_model_name=name, input_example=example,
                                        pip_requirements=REQUIREMENTS, serialization_format="cloudpickle")
    return str(info.registered_model_version)


def raw_records(rows: int = 50, day: int = 0) -> list[dict]:
    """Raw customer records in the wire format clients send."""
    customers, _ = simulate_day(WorldConfig(start_date=date(2026, 1, 1), rows_per_day=rows, population=rows * 5, dirty_rate=0.0), day)
    return canary_records(customers, CHURN, rows)

"""Small real churn models registered in a real MLflow registry, for deployment and serving tests."""

from datetime import date

import numpy as np
from ml_examples.churn.problem import CHURN
from ml_examples.churn.simulation import WorldConfig, simulate_day
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.linear_model import LogisticRegression

from ml_assets.core.training import build_pipeline
from ml_assets.mlflow.resource import MlflowResource
from ml_assets.mlflow.tracking import REQUIREMENTS, TrackedRun
from ml_assets.problem.loading import ref_tags
from ml_assets.serving.scorer import canary_records
from ml_assets_tests.core.churn_data import churn_frames


def fit_churn(c: float = 1.0, shuffle_labels: bool = False):
    features, labels = churn_frames(days=3, rows=300)
    frame = features.merge(labels, on=["customer_id", "snapshot_date"])
    y = frame["churned"].to_numpy()
    if shuffle_labels:
        y = np.random.default_rng(0).permutation(y)
    return build_pipeline(CHURN, LogisticRegression(C=c, max_iter=500)).fit(frame[CHURN.feature_columns], y)


def register(pipeline, name: str = CHURN.registered_model_name) -> str:
    """Log + register into the store the environment points at (set by the fresh_mlflow fixture),
    through an explicit client as the training asset does (no MLflow global state)."""
    store = MlflowResource(experiment_name="tests")
    client = store.client()
    run = TrackedRun(client, client.create_run(store.experiment_id()).info.run_id)
    example = churn_frames(days=1, rows=20)[0][CHURN.feature_columns].head(5)  # as the training asset logs it
    source = run.log_sklearn_model(pipeline, "model", input_example=example, pip_requirements=REQUIREMENTS,
                                   serialization_format="cloudpickle")
    version = run.register(name, source)
    for key, value in ref_tags(CHURN).items():  # as training records it: how the service finds the problem
        client.set_model_version_tag(name, version, key, value)
    client.set_terminated(run.run_id)
    return version


def raw_records(rows: int = 50, day: int = 0) -> list[dict]:
    """Raw customer records in the wire format clients send."""
    customers, _ = simulate_day(WorldConfig(start_date=date(2026, 1, 1), rows_per_day=rows, population=rows * 5, dirty_rate=0.0), day)
    return canary_records(customers, CHURN, rows)


class Broken(BaseEstimator, ClassifierMixin):
    """A challenger that cannot score (a bad release): at once, or once `failing` is set (it loaded
    and passed the service's checks, then breaks on live traffic)."""

    failing = True

    def fit(self, X, y):
        self.classes_ = np.array([0, 1])
        return self

    def predict_proba(self, X):
        if Broken.failing:
            raise RuntimeError("the challenger is broken")
        return np.tile([0.5, 0.5], (len(X), 1))


def broken_churn():
    """A churn pipeline whose model is `Broken`, fitted like the others (it registers and loads)."""
    features, labels = churn_frames(days=1, rows=100)
    frame = features.merge(labels, on=["customer_id", "snapshot_date"])
    return build_pipeline(CHURN, Broken()).fit(frame[CHURN.feature_columns], frame["churned"])

"""Shared set-up for the scoring benchmarks: a realistic churn model, fitted on simulated data
and registered (champion) in a throw-away MLflow store."""

import os
from datetime import date
from pathlib import Path

import pandas as pd
from ml_examples.churn.problem import CHURN
from ml_examples.churn.simulation import WorldConfig, simulate_day


def simulated_features(rows: int, day: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(raw customers, features with the label) for one simulated day."""
    cfg = WorldConfig(start_date=date(2026, 1, 1), rows_per_day=rows, population=int(rows * 1.2), dirty_rate=0.0)
    customers, labels = simulate_day(cfg, day)
    customers["snapshot_date"] = pd.to_datetime(customers["snapshot_date"])
    labels["snapshot_date"] = pd.to_datetime(labels["snapshot_date"])
    features = CHURN.features_of(customers).merge(labels, on=["customer_id", "snapshot_date"])
    return customers, features


def fitted_pipeline(train_rows: int = 50_000):
    """The family the demo usually picks (histogram gradient boosting), in the platform's pipeline."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    from ml_assets.core.training import build_pipeline

    _, features = simulated_features(train_rows)
    return build_pipeline(CHURN, HistGradientBoostingClassifier(random_state=0)).fit(
        features[CHURN.feature_columns], features[CHURN.data.target])


def register_champion(root: Path, pipeline, example: pd.DataFrame) -> tuple[str, str]:
    """Register into a fresh SQLite store under `root` and make it champion; (tracking URI, version)."""
    import mlflow
    import mlflow.sklearn
    from mlflow.models import infer_signature

    from ml_assets.mlflow.registry import client, promote
    from ml_assets.mlflow.resource import ensure_experiment
    from ml_assets.mlflow.tracking import REQUIREMENTS
    from ml_assets.problem.loading import ref_tags

    uri = f"sqlite:///{root / 'mlflow.db'}"
    os.environ["MLFLOW_TRACKING_URI"] = uri
    mlflow.set_tracking_uri(uri)
    experiment = ensure_experiment(uri, "benchmarks", (root / "artifacts").as_uri())
    with mlflow.start_run(experiment_id=experiment):
        info = mlflow.sklearn.log_model(
            pipeline, name="model", registered_model_name=CHURN.registered_model_name, input_example=example.head(5),
            signature=infer_signature(example, pipeline.predict(example)), pip_requirements=REQUIREMENTS,
            serialization_format="cloudpickle")
    version = str(info.registered_model_version)
    for key, value in ref_tags(CHURN).items():  # how the service finds the problem, as training records it
        client(uri).set_model_version_tag(CHURN.registered_model_name, version, key, value)
    promote(client(uri), CHURN.registered_model_name, version)
    return uri, version

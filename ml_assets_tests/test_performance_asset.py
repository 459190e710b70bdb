"""The `performance` asset for every task type and primary metric, against a real MLflow registry:
the baseline is the version's evaluation metric under the same name (test_<name>)."""


import dagster as dg
import numpy as np
import pandas as pd
import pytest
from ml_examples.churn.problem import CHURN
from mlflow.tracking import MlflowClient

from ml_assets.assets.monitoring import build_monitoring_assets, performance_schema
from ml_assets.definitions import daily_partitions
from ml_assets.mlflow.resource import MlflowResource

DAY = "2026-03-01"


def _register(uri: str, spec, metrics: dict[str, float]) -> str:
    """A model version whose run logged the evaluation metrics (no artifact needed for the lookup)."""
    client = MlflowClient(uri)
    run = client.create_run(client.create_experiment(f"eval-{spec.name}"))
    for key, value in metrics.items():
        client.log_metric(run.info.run_id, key, value)
    client.create_registered_model(spec.registered_model_name)
    return client.create_model_version(spec.registered_model_name, f"runs:/{run.info.run_id}/model",
                                       run.info.run_id).version


def _served(spec, version: str, n: int = 400) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(0)
    score = rng.random(n) * (100 if spec.task == "regression" else 1)
    predictions = pd.DataFrame({"customer_id": [f"C{i}" for i in range(n)], "snapshot_date": pd.Timestamp(DAY),
                                "score": score, "model_name": spec.registered_model_name, "model_version": version})
    truth = {"binary": (rng.random(n) < 0.5).astype(int), "multiclass": rng.integers(0, 3, n),
             "regression": score + rng.normal(0, 30, n)}[spec.task]  # a poor model: realized far below baseline
    if spec.task != "regression":
        predictions["label"] = (score > 0.5).astype(int) if spec.task == "binary" else rng.integers(0, 3, n)
    return predictions, predictions[["customer_id", "snapshot_date"]].assign(churned=truth)


@pytest.mark.parametrize("task, scorer, name, baseline", [
    ("binary", "average_precision", "pr_auc", 0.95), ("binary", "neg_log_loss", "log_loss", 0.1),
    ("binary", "roc_auc", "roc_auc", 0.95), ("multiclass", "f1_macro", "f1_macro", 0.95),
    ("regression", "neg_root_mean_squared_error", "rmse", 5.0),
])
def test_realized_performance_follows_the_primary_metric(fresh_mlflow, task, scorer, name, baseline):
    spec = CHURN.evolve(name=f"p_{task}", task=task, primary_metric=scorer, performance_tolerance=0.05)
    version = _register(fresh_mlflow, spec, {f"test_{name}": baseline})
    predictions, labels = _served(spec, version)
    performance = build_monitoring_assets(spec, daily_partitions())[2]
    with dg.instance_for_test() as instance:
        out = performance(dg.build_asset_context(instance=instance, partition_key=DAY), labels=labels,
                          predictions={DAY: predictions}, mlflow=MlflowResource(tracking_uri=fresh_mlflow))
    performance_schema(task).validate(out.value)  # the asset's own type, built from the task's metrics
    meta = {k: getattr(v, "value", v) for k, v in out.metadata.items()}
    assert meta["metric"] == name and meta[f"baseline_{name}"] == pytest.approx(baseline)
    assert meta[f"realized_{name}"] == pytest.approx(out.value[name].iloc[0])
    assert out.value["drop"].tolist() == [True] and meta["performance_drop"] is True
    assert not {"roc_auc", "log_loss", "brier"} & set(out.value.columns) or task == "binary"

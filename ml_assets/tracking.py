"""What the model assets write to MLflow: child runs per candidate, the registered pipeline with
signature, input example and lineage tags, and the evaluation. No Dagster here."""

from __future__ import annotations

import json

import mlflow
import mlflow.sklearn
import pandas as pd
import sklearn
from mlflow.models import infer_signature
from mlflow.tracking import MlflowClient

from ml_assets import __version__
from ml_assets.core.training import CandidateResult, TrainingResult
from ml_assets.model_registry import CHALLENGER
from ml_assets.problems.spec import ProblemSpec

# Explicit requirements: MLflow would otherwise spawn a process to infer them on every log.
REQUIREMENTS = [f"scikit-learn=={sklearn.__version__}", f"pandas=={pd.__version__}",
                f"mlflow=={mlflow.__version__}"]


def log_candidate(result: CandidateResult) -> None:
    with mlflow.start_run(run_name=result.name, nested=True):
        mlflow.log_params({"candidate": result.name, **result.params})
        mlflow.log_metrics({"cv_score": result.cv_score, "cv_std": result.cv_std,
                            "validation_score": result.validation_score, "search_seconds": result.seconds})
        for k, score in enumerate(result.fold_scores):
            mlflow.log_metric("cv_fold_score", score, step=k)
        for k, fold in enumerate(result.folds):  # time-ordered CV: which days each fold fit and scored
            mlflow.log_params({f"fold{k}.fit_days": "..".join(fold.fit_days),
                               f"fold{k}.validation_days": "..".join(fold.validation_days)})


def register_model(result: TrainingResult, spec: ProblemSpec, example: pd.DataFrame, tags: dict[str, str]) -> dict:
    """Log the winning pipeline to the active run and register it as a new model version."""
    run_id = mlflow.active_run().info.run_id
    winner = next(c for c in result.candidates if c.name == result.best)
    mlflow.log_params({"best_candidate": result.best, **{f"best.{k}": v for k, v in winner.params.items()}})
    mlflow.log_metrics({"best_cv_score": winner.cv_score, "best_validation_score": winner.validation_score})
    output = (result.pipeline.predict_proba(example)[:, 1] if spec.task == "binary"
              else result.pipeline.predict(example))
    info = mlflow.sklearn.log_model(
        result.pipeline, name="model", registered_model_name=spec.registered_model_name,
        signature=infer_signature(example, output), input_example=example.head(5),
        pip_requirements=REQUIREMENTS, serialization_format="cloudpickle")
    version = str(info.registered_model_version)
    client = MlflowClient()
    for key, value in {**tags, "package_version": __version__, "best_candidate": result.best}.items():
        client.set_model_version_tag(spec.registered_model_name, version, key, str(value))
    client.set_registered_model_alias(spec.registered_model_name, CHALLENGER, version)
    return {"name": spec.registered_model_name, "version": version,
            "uri": f"models:/{spec.registered_model_name}/{version}", "run_id": run_id,
            "best_candidate": result.best, "primary_metric": spec.primary_metric,
            "validation_score": winner.validation_score}


def log_evaluation(metrics: dict[str, float], slices: pd.DataFrame, plots: dict[str, bytes]) -> None:
    mlflow.log_metrics({f"test_{k}": v for k, v in metrics.items() if pd.notna(v)})
    mlflow.log_text(slices.to_csv(index=False), "evaluation/slices.csv")
    mlflow.log_text(json.dumps(metrics, indent=2), "evaluation/metrics.json")
    for name, png in plots.items():
        mlflow.log_image(_decode(png), f"evaluation/{name}.png")


def _decode(png: bytes):
    import io

    from PIL import Image

    return Image.open(io.BytesIO(png))

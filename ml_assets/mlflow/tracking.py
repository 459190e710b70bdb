"""What the model assets write to MLflow: child runs per candidate, the registered pipeline with
signature, input example and lineage tags, and the evaluation. Every write goes through an
explicit MlflowClient and run id (a `TrackedRun`), never the fluent API's global active run.
No Dagster here."""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import mlflow
import mlflow.sklearn
import pandas as pd
import sklearn
from dagster_mlflow.resources import MlFlow
from mlflow.entities import Metric, Param, RunStatus
from mlflow.exceptions import MlflowException
from mlflow.models import infer_signature
from mlflow.tracking import MlflowClient
from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID

from ml_assets import __version__
from ml_assets.core.training import CandidateResult, TrainingResult
from ml_assets.mlflow.registry import CHALLENGER
from ml_assets.problem.spec import ProblemSpec

# Explicit requirements: MLflow would otherwise spawn a process to infer them on every log.
REQUIREMENTS = [f"scikit-learn=={sklearn.__version__}", f"pandas=={pd.__version__}",
                f"mlflow=={mlflow.__version__}"]


@dataclass(frozen=True)
class TrackedRun:
    """One MLflow run, written to through an explicit client."""

    client: MlflowClient
    run_id: str

    def log_params(self, params: dict) -> None:
        for chunk in MlFlow.chunks(params, 100):  # dagster-mlflow's batching: MLflow takes 100 per call
            self.client.log_batch(self.run_id, params=[Param(k, str(v)) for k, v in chunk.items()])

    def log_metrics(self, metrics: dict[str, float]) -> None:
        now = _now_ms()
        self.client.log_batch(self.run_id, metrics=[Metric(k, float(v), now, 0) for k, v in metrics.items()])

    def log_metric_steps(self, key: str, values) -> None:
        """One metric over steps (e.g. a score per CV fold), charted as a line in the MLflow UI."""
        now = _now_ms()
        if values := [Metric(key, float(v), now, step) for step, v in enumerate(values)]:
            self.client.log_batch(self.run_id, metrics=values)

    def log_text(self, text: str, artifact_file: str) -> None:
        self.client.log_text(self.run_id, text, artifact_file)

    def log_png(self, png: bytes, artifact_file: str) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / Path(artifact_file).name
            path.write_bytes(png)
            self.client.log_artifact(self.run_id, str(path), str(Path(artifact_file).parent))

    @contextmanager
    def child(self, run_name: str) -> Iterator[TrackedRun]:
        """A nested run (the MLflow UI shows it under this one), closed with its block's outcome."""
        run = self.client.create_run(self.client.get_run(self.run_id).info.experiment_id, run_name=run_name,
                                     tags={MLFLOW_PARENT_RUN_ID: self.run_id})
        try:
            yield TrackedRun(self.client, run.info.run_id)
        except BaseException:
            self.client.set_terminated(run.info.run_id, status=RunStatus.to_string(RunStatus.FAILED))
            raise
        self.client.set_terminated(run.info.run_id, status=RunStatus.to_string(RunStatus.FINISHED))

    def log_sklearn_model(self, pipeline, artifact_path: str, **save_kwargs) -> str:
        """Save the model locally in MLflow's format and upload it as run artifacts; its URI."""
        with tempfile.TemporaryDirectory() as tmp:
            mlflow.sklearn.save_model(pipeline, str(Path(tmp) / artifact_path), **save_kwargs)
            self.client.log_artifacts(self.run_id, str(Path(tmp) / artifact_path), artifact_path)
        return f"{self.client.get_run(self.run_id).info.artifact_uri.rstrip('/')}/{artifact_path}"

    def register(self, name: str, source: str) -> str:
        try:
            self.client.create_registered_model(name)
        except MlflowException as err:
            if err.error_code != "RESOURCE_ALREADY_EXISTS":
                raise
        return str(self.client.create_model_version(name, source, run_id=self.run_id).version)


def _now_ms() -> int:
    return int(time.time() * 1000)


def log_candidate(run: TrackedRun, result: CandidateResult) -> None:
    folds = {}  # time-ordered CV: which days each fold fit and scored
    for k, fold in enumerate(result.folds):
        folds[f"fold{k}.fit_days"] = "..".join(fold.fit_days)
        folds[f"fold{k}.validation_days"] = "..".join(fold.validation_days)
    with run.child(result.name) as child:
        child.log_params({"candidate": result.name, **result.params, **folds})
        child.log_metrics({"cv_score": result.cv_score, "cv_std": result.cv_std,
                           "validation_score": result.validation_score, "search_seconds": result.seconds})
        child.log_metric_steps("cv_fold_score", result.fold_scores)


def register_model(run: TrackedRun, result: TrainingResult, spec: ProblemSpec, example: pd.DataFrame,
                   tags: dict[str, str]) -> dict:
    """Log the winning pipeline to the run and register it as a new model version."""
    winner = next(c for c in result.candidates if c.name == result.best)
    run.log_params({"best_candidate": result.best, **{f"best.{k}": v for k, v in winner.params.items()}})
    run.log_metrics({"best_cv_score": winner.cv_score, "best_validation_score": winner.validation_score})
    output = (result.pipeline.predict_proba(example)[:, 1] if spec.task == "binary"
              else result.pipeline.predict(example))
    source = run.log_sklearn_model(result.pipeline, "model", signature=infer_signature(example, output),
                                   input_example=example.head(5), pip_requirements=REQUIREMENTS,
                                   serialization_format="cloudpickle")
    name, client = spec.registered_model_name, run.client
    version = run.register(name, source)
    for key, value in {**tags, "package_version": __version__, "best_candidate": result.best}.items():
        client.set_model_version_tag(name, version, key, str(value))
    client.set_registered_model_alias(name, CHALLENGER, version)
    return {"name": name, "version": version, "uri": f"models:/{name}/{version}", "run_id": run.run_id,
            "best_candidate": result.best, "primary_metric": spec.training.primary_metric,
            "validation_score": winner.validation_score}


def log_evaluation(run: TrackedRun, metrics: dict[str, float], slices: pd.DataFrame, plots: dict[str, bytes]) -> None:
    run.log_metrics({f"test_{k}": v for k, v in metrics.items() if pd.notna(v)})
    run.log_text(slices.to_csv(index=False), "evaluation/slices.csv")
    run.log_text(json.dumps(metrics, indent=2), "evaluation/metrics.json")
    for name, png in plots.items():
        run.log_png(png, f"evaluation/{name}.png")

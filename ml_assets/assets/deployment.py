"""Gate -> champion -> scoring, built from a ProblemSpec.

Blocking asset checks on the candidate and its evaluation are the gate; the champion asset moves
the registry alias only when every one of them passed for the *current* materializations (it
checks the instance itself, so materializing the champion alone cannot skip the gate).
"""

import tempfile
from pathlib import Path

import dagster as dg
import pandas as pd
import pandera.pandas as pa

from ml_assets.assets.conditions import follows_days
from ml_assets.assets.naming import problem_asset_args
from ml_assets.assets.types import dagster_type
from ml_assets.core.gates import (
    GateResult,
    floor_gate,
    latency_gate,
    regression_gate,
    sanity_gate,
)
from ml_assets.core.scoring import score_frame
from ml_assets.mlflow import experiments
from ml_assets.mlflow.registry import (
    CHAMPION,
    alias_version,
    promote,
    rollback,
    version_url,
)
from ml_assets.mlflow.resource import MlflowResource
from ml_assets.problem.spec import ProblemSpec
from ml_assets.serving.canary import run_canary
from ml_assets.serving.scorer import canary_records

GROUP = "deployment"


def _check(gate: GateResult) -> dg.AssetCheckResult:
    values = {k: v for k, v in gate.values.items() if isinstance(v, int | float | str) and v == v}
    return dg.AssetCheckResult(passed=gate.passed, severity=dg.AssetCheckSeverity.ERROR,
                               description=gate.message, metadata={"message": gate.message, **values})


def build_gate_checks(spec: ProblemSpec) -> list:
    candidate, evaluation = dg.AssetKey([spec.name, "candidate_model"]), dg.AssetKey([spec.name, "evaluation"])
    primary = f"primary_{spec.training.primary_metric}"

    @dg.asset_check(asset=evaluation, name="metric_floor", blocking=True,
                    description=f"{spec.training.primary_metric} on the test split >= {spec.gate.metric_floor}.")
    def metric_floor(evaluation: dict) -> dg.AssetCheckResult:
        return _check(floor_gate(evaluation["metrics"][primary], spec))

    @dg.asset_check(asset=evaluation, name="no_regression", blocking=True,
                    description=f"No drop of more than {spec.gate.max_regression} {spec.training.primary_metric} vs the "
                                "champion, both scored on this candidate's test split.")
    def no_regression(evaluation: dict) -> dg.AssetCheckResult:
        return _check(regression_gate(evaluation["metrics"][primary], evaluation.get("champion"), spec))

    @dg.asset_check(asset=evaluation, name="prediction_sanity", blocking=True,
                    description="No NaN/inf predictions, scores in range, not a constant model.")
    def prediction_sanity(evaluation: dict) -> dg.AssetCheckResult:
        return _check(sanity_gate(evaluation["prediction_stats"], spec.task))

    @dg.asset_check(asset=candidate, name="servable", blocking=True,
                    additional_ins={"training_set": dg.AssetIn([spec.name, "training_set"])},
                    description="Loads from the registry in a fresh process, scores a canary batch through the "
                                "serving code path, and times single-record predictions: p99 CPU time per record "
                                f"<= {spec.gate.latency_budget_ms} ms, best of several windows (CPU time, not wall "
                                "clock, so a busy machine does not fail a fast model; wall-clock p50/p99 are in "
                                "the metadata).")
    def servable(candidate_model: dict, training_set: pd.DataFrame, mlflow: MlflowResource) -> dg.AssetCheckResult:
        with tempfile.TemporaryDirectory() as tmp:
            report = run_canary(spec.registered_model_name, candidate_model["version"], canary_records(training_set, spec),
                                mlflow.get_tracking_uri(), Path(tmp))
        return _check(latency_gate(report, spec.gate.latency_budget_ms))

    return [metric_floor, no_regression, prediction_sanity, servable]


def latest_check_evaluations(instance: dg.DagsterInstance, keys: list[dg.AssetCheckKey]) -> dict:
    """key -> its latest AssetCheckEvaluation (None when never evaluated or still running)."""
    latest = instance.event_log_storage.get_latest_asset_check_execution_by_key(keys)
    out = {}
    for key in keys:
        record = latest.get(key)
        evaluation = record.event.dagster_event.event_specific_data if record and record.event else None
        out[key] = evaluation if hasattr(evaluation, "passed") else None
    return out


def gate_failures(instance: dg.DagsterInstance, checks: list) -> list[str]:
    """Why the gate is not passed for the latest materializations, or [] when it is."""
    keys = [key for check in checks for key in check.check_keys]
    failures = []
    for key, evaluation in latest_check_evaluations(instance, keys).items():
        materialized = instance.get_latest_materialization_event(key.asset_key)
        if evaluation is None:
            failures.append(f"{key.to_user_string()}: not evaluated")
        elif not evaluation.passed:
            failures.append(f"{key.to_user_string()}: failed ({evaluation.description})")
        elif materialized is None or evaluation.target_materialization_data is None or \
                evaluation.target_materialization_data.run_id != materialized.run_id:
            failures.append(f"{key.to_user_string()}: passed for an older materialization")
    return failures


def build_deployment_assets(spec: ProblemSpec, partitions_def, checks: list) -> list:
    name = spec.registered_model_name

    @dg.asset(key=[spec.name, "champion"], **problem_asset_args(spec, GROUP), kinds={"mlflow"},
              ins={"evaluation": dg.AssetIn([spec.name, "evaluation"])},
              description=f"Moves the registry alias `{name}@champion` to the evaluated candidate, only when every "
                          "blocking gate passed; the old champion stays addressable as `@previous`. With "
                          "experiment.promotion = experiment the candidate becomes `@challenger` and an online "
                          "experiment decides instead (the first model is promoted directly).")
    def champion(context: dg.AssetExecutionContext, evaluation: dict, mlflow: MlflowResource) -> dg.MaterializeResult:
        if failures := gate_failures(context.instance, checks):
            raise dg.Failure("the candidate did not pass the gate; champion unchanged", metadata={
                "failures": dg.MetadataValue.md("\n".join(f"- {f}" for f in failures))})
        version, champion_before = evaluation["model"]["version"], evaluation.get("champion") or {}
        if spec.experiment.promotion == "experiment" and alias_version(mlflow.client(), name, CHAMPION) is not None:
            return _start_experiment(context, spec, mlflow, version)
        move = promote(mlflow.client(), name, version)
        deltas = {}
        if "score" in champion_before:
            deltas[f"delta_{spec.training.primary_metric}"] = evaluation["metrics"][f"primary_{spec.training.primary_metric}"] \
                - champion_before["score"]
        context.log.info(f"{name}@champion: v{move.previous} -> v{move.champion}")
        return dg.MaterializeResult(metadata={
            "action": "promote", "version": move.champion, "previous_version": str(move.previous),
            "model_uri": f"models:/{name}@{CHAMPION}", "mlflow_model_version": dg.MetadataValue.url(
                version_url(name, move.champion)), **deltas,
            **{f"test_{k}": v for k, v in evaluation["metrics"].items() if v == v}})

    if spec.data.inputs is None:  # static problems have no daily records to score
        return [champion]

    @dg.asset(key=[spec.name, "predictions"], partitions_def=partitions_def, **problem_asset_args(spec, GROUP),
              kinds={"pandas", "parquet"}, deps=[champion], ins={"features": dg.AssetIn([spec.name, "features"])},
              # a new champion re-scores the newest day; a day of features, late or not, is scored
              automation_condition=follows_days(spec.monitoring.label_window_days, dg.AssetSelection.assets([spec.name, "features"])),
              dagster_type=dagster_type(predictions_schema(spec)),
              description="The day's records scored by the champion of the moment; every row names its model version.")
    def predictions(context: dg.AssetExecutionContext, features: pd.DataFrame,
                    mlflow: MlflowResource) -> dg.Output[pd.DataFrame]:
        version = alias_version(mlflow.client(), name, CHAMPION)
        if version is None:
            raise dg.Failure(f"no {name}@champion yet: train and promote a model first (`make demo`)")
        model = mlflow.load_version(name, version)
        frame = score_frame(model.pipeline, features, spec, name, version)
        meta = {"dagster/row_count": len(frame), "model_version": version, "mean_score": float(frame["score"].mean())
                if len(frame) else float("nan")}
        if "label" in frame and spec.task == "binary":
            meta["positive_rate"] = float(frame["label"].mean()) if len(frame) else float("nan")
        return dg.Output(frame, metadata=meta)

    return [champion, predictions]


def _start_experiment(context: dg.AssetExecutionContext, spec: ProblemSpec, mlflow: MlflowResource,
                      version: str) -> dg.MaterializeResult:
    """promotion: experiment — the gated candidate becomes @challenger and an online experiment
    starts; only its decision moves @champion. A newer gated candidate supersedes a running one."""
    client, name = mlflow.client(), spec.registered_model_name
    running = experiments.current(client, name)
    if running is not None and running.running:
        experiments.stop(client, name, running.id, f"superseded by v{version}")
        context.log.info(f"experiment {running.id} stopped: superseded by v{version}")
    e = spec.experiment
    started = experiments.start(client, name, version, e.mode, e.challenger_share)
    context.log.info(f"{name}@challenger -> v{version}: experiment {started.id} ({e.mode}, "
                     f"{started.challenger_share:.0%} of entities) against champion v{started.champion_version}")
    return dg.MaterializeResult(metadata={
        "action": "experiment", "version": started.champion_version, "challenger_version": version,
        "experiment_id": started.id, "mode": e.mode, "challenger_share": started.challenger_share,
        "model_uri": f"models:/{name}@{CHAMPION}"})


def predictions_schema(spec: ProblemSpec) -> pa.DataFrameSchema:
    columns = {spec.data.id_column: pa.Column(str),
               "score": pa.Column(float, pa.Check.in_range(0.0, 1.0) if spec.task != "regression" else None),
               "model_name": pa.Column(str), "model_version": pa.Column(str, pa.Check.str_matches(r"^\d+$"))}
    if spec.data.time_column:
        columns[spec.data.time_column] = pa.Column("datetime64[ns]")
    if spec.task != "regression":
        columns["label"] = pa.Column("int64")
    return pa.DataFrameSchema(columns, name=f"{spec.name.title()}Predictions", strict=True)


def build_rollback_job(spec: ProblemSpec) -> dg.JobDefinition:
    class RollbackConfig(dg.Config):
        reason: str = "manual rollback"

    @dg.op(name=f"rollback_{spec.name}_champion", out={},
           description=f"{spec.registered_model_name}@champion -> @previous")
    def rollback_champion(context: dg.OpExecutionContext, config: RollbackConfig, mlflow: MlflowResource):
        move = rollback(mlflow.client(), spec.registered_model_name, config.reason)
        context.log.info(f"rolled back {move.name}@champion: v{move.previous} -> v{move.champion}")
        yield dg.AssetMaterialization(asset_key=[spec.name, "champion"], metadata={
            "action": "rollback", "version": move.champion, "rolled_back_version": move.previous,
            "reason": config.reason, "mlflow_model_version": dg.MetadataValue.url(
                version_url(spec.registered_model_name, move.champion))})

    @dg.job(name=f"rollback_{spec.name}_job", description=f"Undo the last {spec.name} promotion.")
    def rollback_job():
        rollback_champion()

    return rollback_job

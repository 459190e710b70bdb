"""Served traffic, built from a ProblemSpec: what the scoring service answered (its prediction log),
its realized performance once labels arrive, and its drift against the reference profile of the
model that answered (training/serving skew). Batch predictions are monitored by monitoring.py;
these are the same measurements of the online path, kept apart so the two can be compared."""

from pathlib import Path

import dagster as dg
import pandas as pd
import pandera.pandas as pa

from ml_assets import settings
from ml_assets.assets.conditions import follows_days, follows_labels
from ml_assets.assets.monitoring import DRIFT_SCHEMA, drift_output
from ml_assets.assets.naming import problem_asset_args
from ml_assets.assets.types import dagster_type
from ml_assets.core.datasets import concat_partitions
from ml_assets.core.performance import join_labels, realized_metrics
from ml_assets.core.scoring import to_features
from ml_assets.core.served import last_answers, served_day
from ml_assets.mlflow.resource import MlflowResource
from ml_assets.problem.spec import ProblemSpec
from ml_assets.serving.logstore import shipped_root
from ml_assets.serving.predlog import read_log

GROUP = "monitoring"
SERVED_DRIFT_SCHEMA = pa.DataFrameSchema(DRIFT_SCHEMA.columns, name="ServedDriftReport", strict=True)  # a type name each


class ServedConfig(dg.Config):
    # empty: <data>/prediction_log/<problem>, where `ml-assets serve` logs by default; with
    # ML_ASSETS_PREDICTION_LOG_URL set, the log's shipped Parquet is read from <url>/<folder name> too,
    # so this asset may run on another machine than the service (where the folder does not exist)
    log_dir: str = ""


def prediction_log_dir(spec: ProblemSpec, config: ServedConfig) -> Path:
    return Path(config.log_dir) if config.log_dir else settings.data_dir() / "prediction_log" / spec.name


def served_schema(spec: ProblemSpec) -> pa.DataFrameSchema:
    columns = {spec.data.id_column: pa.Column(str), "request_id": pa.Column(str),
               "served_at": pa.Column("datetime64[ns]"), "model_version": pa.Column(str, pa.Check.str_matches(r"^\d+$")),
               "score": pa.Column(float)}
    return pa.DataFrameSchema(columns, name=f"{spec.name.title()}ServedPredictions", strict=False, coerce=True)


def build_served_assets(spec: ProblemSpec, partitions_def) -> list:
    key = [spec.name, "served_predictions"]
    labels_key = dg.AssetKey(f"validated_{spec.data.labels.name}")

    @dg.asset(key=key, partitions_def=partitions_def, **problem_asset_args(spec, GROUP), kinds={"pandas", "parquet"},
              dagster_type=dagster_type(served_schema(spec)),
              # the log has no upstream to follow: each night, yesterday's answers (other days: on demand)
              automation_condition=dg.AutomationCondition.on_cron("30 0 * * *"),
              description="What the scoring service answered for the day's records, from its prediction log: every "
                          "answer with its request id, time, inputs, score and model version.")
    def served_predictions(context: dg.AssetExecutionContext, config: ServedConfig) -> dg.Output[pd.DataFrame]:
        root = prediction_log_dir(spec, config)
        frame = served_day(read_log(root), context.partition_key, spec)
        versions = frame["model_version"].value_counts().to_dict() if len(frame) else {}
        return dg.Output(frame, metadata={
            "dagster/row_count": len(frame), "rows_served": len(frame), "prediction_log": str(root),
            "prediction_log_store": str(shipped_root(root) or root),
            "requests": int(frame["request_id"].nunique()) if len(frame) else 0,
            "rows_by_model_version": dg.MetadataValue.json({str(v): int(n) for v, n in versions.items()})})

    @dg.asset(key=[spec.name, "served_drift_report"], partitions_def=partitions_def, **problem_asset_args(spec, GROUP),
              kinds={"pandas", "parquet"}, ins={"served": dg.AssetIn(key)},
              deps=[dg.AssetKey([spec.name, "reference_profile"])],
              dagster_type=dagster_type(SERVED_DRIFT_SCHEMA),
              automation_condition=follows_days(spec.monitoring.label_window_days, dg.AssetSelection.assets(key)),
              description="Training/serving skew: the features of the requests served that day vs the reference "
                          "profile of the model version that answered most of them.")
    def served_drift_report(context: dg.AssetExecutionContext, served: pd.DataFrame,
                            mlflow: MlflowResource) -> dg.Output[pd.DataFrame]:
        if served.empty:
            return dg.Output(pd.DataFrame(columns=list(DRIFT_SCHEMA.columns)).astype(
                {c: str(col.dtype) for c, col in DRIFT_SCHEMA.columns.items()}), metadata={
                "rows_current": 0, "dataset_drift": False, "note": "no request was served for this day"})
        version = str(served["model_version"].mode().iloc[0])
        return drift_output(context, spec, version, to_features(served, spec), mlflow)

    window = dg.TimeWindowPartitionMapping(start_offset=-spec.monitoring.label_window_days, end_offset=0,
                                           allow_nonexistent_upstream_partitions=True)

    @dg.asset(key=[spec.name, "served_performance"], partitions_def=partitions_def, **problem_asset_args(spec, GROUP),
              kinds={"pandas", "parquet"}, automation_condition=follows_labels(spec.monitoring.label_window_days, labels_key),
              ins={"labels": dg.AssetIn(labels_key),
                   "served": dg.AssetIn(key, partition_mapping=window, metadata={"allow_missing_partitions": True})},
              description="The day's late labels joined with what the service answered for those records (its last "
                          "answer per record): realized metrics per snapshot day and model version, next to the batch "
                          "predictions' in `performance`.")
    def served_performance(context: dg.AssetExecutionContext, labels: pd.DataFrame,
                           served: dict) -> dg.Output[pd.DataFrame]:
        answered = concat_partitions({day: frame for day, frame in served.items() if len(frame)})  # typed days only
        joined = join_labels(last_answers(answered, spec), labels, spec) if len(answered) else answered
        realized = realized_metrics(joined, spec)
        meta = {"dagster/row_count": len(realized), "rows_joined": int(realized["rows"].sum()) if len(realized) else 0,
                "labeled_days": dg.MetadataValue.json(sorted(realized["day"].unique().tolist())),
                "table": dg.MetadataValue.md(realized.round(4).to_markdown(index=False) if len(realized) else
                                             "no served answer for the labeled rows")}
        if len(realized):
            latest = realized.sort_values("day").iloc[-1]
            meta.update({f"realized_{spec.primary_metric_name}": float(latest[spec.primary_metric_name]),
                         "model_version": str(latest["model_version"]), "snapshot_day": latest["day"]})
        context.log.info(f"{len(realized)} (day, version) group(s) of served realized performance")
        return dg.Output(realized, metadata=meta)

    return [served_predictions, served_drift_report, served_performance]

"""Monitoring, built from a ProblemSpec: reference profile -> daily drift report, and realized
performance once late labels arrive. Scoring and monitoring follow their upstreams by declarative
automation (eager): a new day of features, a new champion, a new day of labels."""

import io
import tempfile
from pathlib import Path

import dagster as dg
import pandas as pd
import pandera.pandas as pa
from upath import UPath

from ml_assets import settings
from ml_assets.assets.conditions import follows_days, follows_labels
from ml_assets.assets.naming import problem_asset_args
from ml_assets.assets.types import dagster_type
from ml_assets.core.datasets import concat_partitions
from ml_assets.core.drift import compare
from ml_assets.core.lineage import frame_hash
from ml_assets.core.performance import (
    join_labels,
    primary,
    rate_columns,
    realized_metric_list,
    realized_metrics,
    with_baselines,
)
from ml_assets.core.plots import markdown_image, plot_drift
from ml_assets.core.profile import ReferenceProfile, build_profile
from ml_assets.mlflow.registry import (
    CHAMPION,
    alias_version,
    log_version_artifact,
    version_metrics,
)
from ml_assets.mlflow.resource import MlflowResource
from ml_assets.problem.spec import ProblemSpec

GROUP = "monitoring"
PROFILE_ARTIFACT = "monitoring"

_SHARE = pa.Check.in_range(0, 1)
DRIFT_SCHEMA = pa.DataFrameSchema({
    "column": pa.Column(str, unique=True), "kind": pa.Column(str, pa.Check.isin(["numeric", "categorical"])),
    "test": pa.Column(str), "statistic": pa.Column(float, nullable=True), "threshold": pa.Column(float, nullable=True),
    "drifted": pa.Column(bool), "psi": pa.Column(float, nullable=True),
    "null_rate_reference": pa.Column(float, _SHARE), "null_rate_current": pa.Column(float, _SHARE),
    "null_jump": pa.Column(bool), "unseen": pa.Column(str), "unseen_share": pa.Column(float, _SHARE)},
    name="DriftReport", strict=True)


def _bounded(low: float | None, high: float | None) -> list[pa.Check]:
    return ([pa.Check.ge(low)] if low is not None else []) + ([pa.Check.le(high)] if high is not None else [])


def performance_schema(task: str) -> pa.DataFrameSchema:
    """The realized-performance table of a task: its columns come from the task's metrics."""
    rates = {c: pa.Column(float, _SHARE if c.endswith("_rate") else None) for c in rate_columns(task)}
    metrics = {x.name: pa.Column(float, _bounded(*x.bounds), nullable=True) for x in realized_metric_list(task)}
    return pa.DataFrameSchema({
        "day": pa.Column(str, pa.Check.str_matches(r"^\d{4}-\d{2}-\d{2}$")),
        "model_version": pa.Column(str, pa.Check.str_matches(r"^\d+$")), "rows": pa.Column("int64", pa.Check.ge(1)),
        **rates, **metrics, "baseline": pa.Column(float, nullable=True), "drop": pa.Column(bool)},
        name=f"RealizedPerformance_{task}", strict=True, coerce=True)


def profile_path(spec: ProblemSpec, version: str) -> UPath:
    return UPath(settings.warehouse_dir()) / spec.name / "reference_profiles" / f"v{version}.npz"


def window_profile_path(spec: ProblemSpec, data_hash: str) -> UPath:
    return UPath(settings.warehouse_dir()) / spec.name / "window_profiles" / f"{data_hash}.npz"


def save_window_profile(spec: ProblemSpec, data_hash: str, profile: ReferenceProfile) -> UPath:
    """The profile of every train + validation row behind a capped (sampled) training set, found by
    the training set's data hash. Only the newest is kept: the reference profile of an older
    training set falls back to its sample."""
    path = window_profile_path(spec, data_hash)
    path.parent.mkdir(parents=True, exist_ok=True)
    for old in path.parent.iterdir():
        if old.name != path.name:
            old.unlink()
    buffer = io.BytesIO()
    profile.save(buffer)
    path.write_bytes(buffer.getvalue())
    return path


def learned_profile(spec: ProblemSpec, training_set: pd.DataFrame) -> tuple[ReferenceProfile, str]:
    """(profile, where it came from) of the rows a model was fit and tuned on: the streamed profile
    of the whole window when the training set is a sample of it, else the training set's own rows."""
    folder = window_profile_path(spec, "").parent
    if folder.exists() and any(folder.iterdir()):  # hash only when a capped training set left a profile
        path = window_profile_path(spec, frame_hash(training_set))
        if path.exists():
            with path.open("rb") as source:
                return ReferenceProfile.load(io.BytesIO(source.read())), "window (every train + validation row)"
    learned = training_set[training_set["split"] != "test"]
    return build_profile(learned, spec.data.numeric_features, spec.data.categorical_features), "training set"


def load_profile(spec: ProblemSpec, version: str, mlflow: MlflowResource | None = None) -> ReferenceProfile:
    """The version's profile from the warehouse, or from its MLflow run when the warehouse lost it."""
    path = profile_path(spec, version)
    if not path.exists():
        registry = (mlflow or MlflowResource()).client()
        run_id = registry.get_model_version(spec.registered_model_name, version).run_id
        with tempfile.TemporaryDirectory() as tmp:
            local = registry.download_artifacts(run_id, f"{PROFILE_ARTIFACT}/reference_profile.npz", tmp)
            return ReferenceProfile.load(io.BytesIO(Path(local).read_bytes()))
    with path.open("rb") as source:
        return ReferenceProfile.load(io.BytesIO(source.read()))


def drift_output(context, spec: ProblemSpec, version: str, features: pd.DataFrame,
                 mlflow: MlflowResource) -> dg.Output[pd.DataFrame]:
    """`features` vs the reference profile of model `version`: the per-column report and its metadata
    (shared by the batch drift report and the served-traffic one)."""
    profile = load_profile(spec, version, mlflow)
    report = compare(profile, features, spec.monitoring.drift_share)
    frame = report.to_frame()
    plots = [markdown_image(plot_drift(c, profile.columns[c], features[c]), c) for c in report.drifted_columns[:6]]
    context.log.info(f"drift share {report.share:.2f} ({', '.join(report.drifted_columns) or 'no column'})")
    return dg.Output(frame, metadata={
        "dagster/row_count": len(frame), "champion_version": version, "rows_current": report.rows_current,
        "drift_share": report.share, "dataset_drift": report.dataset_drift, "threshold": spec.monitoring.drift_share,
        "drifted_columns": ", ".join(report.drifted_columns) or "none",
        "columns": dg.MetadataValue.json({c.column: {"test": c.test, "statistic": c.statistic, "drifted": c.drifted,
                                                     "psi": c.psi} for c in report.columns}),
        "unseen_categories": dg.MetadataValue.json({c.column: list(c.unseen) for c in report.columns if c.unseen}),
        "null_jumps": ", ".join(c.column for c in report.columns if c.null_jump) or "none",
        "table": dg.MetadataValue.md(frame.round(4).to_markdown(index=False)),
        "plots": dg.MetadataValue.md("\n\n".join(plots) or "no drifted column")})


def build_monitoring_assets(spec: ProblemSpec, partitions_def) -> list:
    name = spec.registered_model_name

    @dg.asset(key=[spec.name, "reference_profile"], **problem_asset_args(spec, GROUP), kinds={"numpy", "mlflow"},
              io_manager_key="json_io_manager",
              ins={"training_set": dg.AssetIn([spec.name, "training_set"]),
                   "candidate_model": dg.AssetIn([spec.name, "candidate_model"])},
              description="What the drift tests need of the candidate's train + validation rows (sorted numeric values, "
                          "category counts, null rates), stored per model version and as an MLflow artifact.")
    def reference_profile(training_set: pd.DataFrame, candidate_model: dict, mlflow: MlflowResource) -> dg.Output[dict]:
        profile, source = learned_profile(spec, training_set)  # what the model was fit and tuned on
        version = candidate_model["version"]
        with tempfile.TemporaryDirectory() as tmp:
            local = Path(tmp) / "reference_profile.npz"
            with local.open("wb") as out:
                profile.save(out)
            path = profile_path(spec, version)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(local.read_bytes())
            artifact = log_version_artifact(mlflow.client(), name, version, str(local), PROFILE_ARTIFACT)
        summary = pd.DataFrame([{"column": c, "kind": "numeric" if hasattr(p, "std") else "categorical",
                                 "distinct": p.n_unique, "nulls": p.nulls} for c, p in profile.columns.items()])
        return dg.Output({"version": version, "path": str(path), "artifact_uri": artifact, "rows": profile.rows},
                         metadata={"model_version": version, "rows": profile.rows, "artifact_uri": artifact,
                                   "profiled": source,
                                   "columns": dg.MetadataValue.md(summary.to_markdown(index=False))})

    @dg.asset(key=[spec.name, "drift_report"], partitions_def=partitions_def, **problem_asset_args(spec, GROUP),
              kinds={"pandas", "parquet"}, ins={"features": dg.AssetIn([spec.name, "features"])},
              deps=[reference_profile, dg.AssetKey([spec.name, "champion"])],
              dagster_type=dagster_type(DRIFT_SCHEMA),
              automation_condition=follows_days(spec.monitoring.label_window_days, dg.AssetSelection.assets([spec.name, "features"])),
              description="The day's scoring population vs the champion's reference profile, per column with "
                          f"Evidently's default tests; dataset drift at a drifted share >= {spec.monitoring.drift_share}.")
    def drift_report(context: dg.AssetExecutionContext, features: pd.DataFrame,
                     mlflow: MlflowResource) -> dg.Output[pd.DataFrame]:
        version = alias_version(mlflow.client(), name, CHAMPION)
        if version is None:
            raise dg.Failure(f"no {name}@champion yet: nothing to compare the day with")
        return drift_output(context, spec, version, features, mlflow)

    window = dg.TimeWindowPartitionMapping(start_offset=-spec.monitoring.label_window_days, end_offset=0,
                                           allow_nonexistent_upstream_partitions=True)

    @dg.asset(key=[spec.name, "performance"], partitions_def=partitions_def, **problem_asset_args(spec, GROUP),
              kinds={"pandas", "parquet"}, automation_condition=follows_labels(spec.monitoring.label_window_days,
                                                                     dg.AssetKey(f"validated_{spec.data.labels.name}")),
              dagster_type=dagster_type(performance_schema(spec.task)),
              ins={"labels": dg.AssetIn(f"validated_{spec.data.labels.name}"),
                   "predictions": dg.AssetIn([spec.name, "predictions"], partition_mapping=window,
                                             metadata={"allow_missing_partitions": True})},
              description="The day's late labels joined with the predictions that were served for them: realized "
                          f"metrics per snapshot day and model version, flagged when {spec.primary_metric_name} is "
                          f"more than {spec.monitoring.performance_tolerance} worse than in the version's evaluation.")
    def performance(context: dg.AssetExecutionContext, labels: pd.DataFrame, predictions: dict,
                    mlflow: MlflowResource) -> dg.Output[pd.DataFrame]:
        realized = realized_metrics(join_labels(concat_partitions(predictions), labels, spec), spec)
        metric, registry = primary(spec).name, mlflow.client()  # the evaluation's name: baseline is test_<name>
        realized = with_baselines(realized, {v: version_metrics(registry, name, v).get(f"test_{metric}")
                                             for v in realized["model_version"].unique()}, spec)
        dropped = {day: bool(d) for day, d in realized.groupby("day")["drop"].any().items()}
        context.log.info(f"{len(realized)} (day, version) group(s) of realized performance; drops: {dropped}")
        meta = {"dagster/row_count": len(realized), "rows_joined": int(realized["rows"].sum()),
                "labeled_days": dg.MetadataValue.json(sorted(dropped)), "dropped_days": dg.MetadataValue.json(
                    sorted(d for d, flag in dropped.items() if flag)),
                "performance_drop": any(dropped.values()), "tolerance": spec.monitoring.performance_tolerance, "metric": metric,
                "table": dg.MetadataValue.md(realized.round(4).to_markdown(index=False) if len(realized) else "no "
                                             "prediction was served for the labeled rows")}
        if len(realized):
            latest = realized.sort_values("day").iloc[-1]
            meta.update({f"realized_{metric}": float(latest[metric]), "model_version": str(latest["model_version"]),
                         f"baseline_{metric}": float(latest["baseline"]), "snapshot_day": latest["day"]})
        return dg.Output(realized, metadata=meta)

    return [reference_profile, drift_report, performance]

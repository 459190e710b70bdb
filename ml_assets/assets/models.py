"""Model assets, built from a ProblemSpec: features -> training set -> candidate model -> evaluation."""

import dagster as dg
import pandas as pd

from ml_assets.assets.candidates import TrainingConfig, build_candidate_model
from ml_assets.assets.monitoring import save_window_profile
from ml_assets.assets.naming import problem_asset_args
from ml_assets.assets.types import dagster_type
from ml_assets.core.datasets import split_static
from ml_assets.core.evaluation import evaluate_model, score_primary
from ml_assets.core.gates import prediction_stats
from ml_assets.core.lineage import frame_hash
from ml_assets.core.plots import (
    feature_importance,
    markdown_image,
    plot_confusion,
    plot_curves,
    plot_importance,
)
from ml_assets.core.scoring import predict
from ml_assets.core.streaming import PartitionWindow, scan_window
from ml_assets.core.usage import measure_step
from ml_assets.mlflow.registry import CHAMPION, alias_version
from ml_assets.mlflow.resource import MlflowResource
from ml_assets.mlflow.tracking import log_evaluation
from ml_assets.problem.spec import ProblemSpec

GROUP = "models"
# a day without data is not an error for the window; the window arrives as paths and is streamed a day
# at a time (core/streaming.py), so it can outgrow memory
_WINDOW = {"allow_missing_partitions": True, "lazy_partitions": True}


class TrainingSetConfig(dg.Config):
    since: str = ""
    """Train only on days from this date on (YYYY-MM-DD); the drift sensor sets it to the first day
    of the episode. Empty: the spec's trailing window."""
    seed: int = 0
    """Seeds the per-day sample drawn when the window has more rows than training.max_training_rows."""


def _split_metadata(frame: pd.DataFrame, spec: ProblemSpec) -> dict:
    meta = {"dagster/row_count": len(frame), "data_hash": frame_hash(frame)}
    for split, part in frame.groupby("split"):
        meta[f"rows_{split}"] = len(part)
        if spec.task != "regression":
            meta[f"class_balance_{split}"] = dg.MetadataValue.json(
                part[spec.data.target].value_counts(normalize=True).round(4).to_dict())
        if spec.data.time_column:
            meta[f"dates_{split}"] = f"{part[spec.data.time_column].min():%Y-%m-%d} .. {part[spec.data.time_column].max():%Y-%m-%d}"
    return meta


def _source_assets(spec: ProblemSpec, partitions_def) -> list:
    """The inputs of the training set: daily features for landed problems, the bundled data otherwise."""
    key = dg.AssetKey([spec.name, "training_set"])
    if spec.data.load_static is not None:
        @dg.asset(key=[spec.name, "dataset"], **problem_asset_args(spec, GROUP), kinds={"pandas", "parquet"},
                  dagster_type=dagster_type(spec.data.features_model),
                  description=f"The {spec.name} data shipped inside an installed package (no download), "
                              "with the problem's features built on it.")
        def dataset() -> pd.DataFrame:
            return spec.features_of(spec.data.load_static())

        @dg.asset(key=key, **problem_asset_args(spec, GROUP), kinds={"pandas", "parquet"}, ins={"dataset": dg.AssetIn([spec.name, "dataset"])},
                  description="Seeded train/validation/test split of the static data.")
        def training_set(config: TrainingConfig, dataset: pd.DataFrame) -> dg.Output[pd.DataFrame]:
            frame = split_static(dataset, spec, config.seed)
            return dg.Output(frame, metadata=_split_metadata(frame, spec))

        return [dataset, training_set]

    @dg.asset(key=[spec.name, "features"], partitions_def=partitions_def, **problem_asset_args(spec, GROUP),
              kinds={"pandas", "parquet"}, ins={"inputs": dg.AssetIn(f"validated_{spec.data.inputs.name}")},
              dagster_type=dagster_type(spec.data.features_model), description=spec.data.features_model.__doc__)
    def features(inputs: pd.DataFrame) -> pd.DataFrame:
        return spec.features_of(inputs)

    @dg.asset(key=key, **problem_asset_args(spec, GROUP), kinds={"pandas", "parquet"},
              ins={"features": dg.AssetIn([spec.name, "features"], metadata=_WINDOW),
                   "labels": dg.AssetIn(f"validated_{spec.data.labels.name}", metadata=_WINDOW)},
              description=f"Features joined with arrived labels over the {spec.training.window_days} calendar days up to the "
                          "newest labelled day, split by time.")
    def training_set(config: TrainingSetConfig, features: PartitionWindow,
                     labels: PartitionWindow) -> dg.Output[pd.DataFrame]:
        scan = scan_window(features, labels, spec, config.since or None, spec.training.max_training_rows, config.seed)
        frame, days = scan.frame, scan.days
        meta = {**_split_metadata(frame, spec), "since": config.since or "window",
                "window": f"{spec.training.window_days} calendar days up to {days[-1]}",
                "input_days": dg.MetadataValue.json(days), "rows_seen": sum(scan.rows_seen.values()),
                "max_training_rows": spec.training.max_training_rows or "all"}
        if scan.capped:  # what the sample stands for: the whole window's counts, classes and profile
            meta.update({f"rows_seen_{split}": n for split, n in scan.rows_seen.items()} | {"sample_seed": config.seed})
            if spec.task != "regression":
                meta.update({f"class_balance_seen_{split}": dg.MetadataValue.json(
                    {str(k): round(v / scan.rows_seen[split], 4) for k, v in counts.items()})
                    for split, counts in scan.class_counts_seen.items()})
            meta["window_profile"] = str(save_window_profile(spec, meta["data_hash"], scan.profile))
        return dg.Output(frame, metadata=meta)

    return [features, training_set]


def build_model_assets(spec: ProblemSpec, partitions_def=None) -> list:
    """The model group of one problem; the same factory serves every spec."""

    candidate_model = build_candidate_model(spec, GROUP)

    @dg.asset(key=[spec.name, "evaluation"], **problem_asset_args(spec, GROUP), kinds={"mlflow"}, io_manager_key="json_io_manager",
              ins={"candidate_model": dg.AssetIn([spec.name, "candidate_model"]),
                   "training_set": dg.AssetIn([spec.name, "training_set"])},
              description="The registered candidate scored on the held-out test split: metrics, slices, plots.")
    def evaluation(context: dg.AssetExecutionContext, candidate_model: dict,
                   training_set: pd.DataFrame, mlflow: MlflowResource) -> dg.Output[dict]:
        with mlflow.training_run(context.run.run_id, context.job_name, spec.name) as run:
            with measure_step() as usage:
                # what the registry really holds
                pipeline = mlflow.load_version(spec.registered_model_name, candidate_model["version"]).pipeline
                test = training_set[training_set["split"] == "test"]
                result = evaluate_model(pipeline, test, spec)
                importance = feature_importance(pipeline, test, spec)
                plots = {**plot_curves(result), "feature_importance": plot_importance(importance)}
                if (confusion := plot_confusion(result)) is not None:
                    plots["confusion_matrix"] = confusion
                log_evaluation(run, result.metrics, result.slices, plots)
                score, label = predict(pipeline, test, spec)
                stats = prediction_stats(score, label, spec.task, test[spec.data.target].to_numpy())
                champion = _champion_on(test, spec, candidate_model["version"], mlflow)
            run.log_metrics(usage.metrics("evaluation"))
        record = {"model": candidate_model, "metrics": result.metrics, "slices": result.slices.to_dict("records"),
                  "prediction_stats": stats, "champion": champion}
        return dg.Output(record, metadata={
            "champion": dg.MetadataValue.json(champion or {"version": None}),
            **{k: dg.MetadataValue.float(v) for k, v in result.metrics.items()},
            "slices": dg.MetadataValue.md(result.slices.round(4).to_markdown(index=False)),
            "plots": dg.MetadataValue.md("\n\n".join(markdown_image(png, name) for name, png in plots.items())),
            "model_uri": candidate_model["uri"], **usage.metrics("step")})

    return [*_source_assets(spec, partitions_def), candidate_model, evaluation]


def _champion_on(test: pd.DataFrame, spec: ProblemSpec, candidate_version: str,
                 mlflow: MlflowResource) -> dict | None:
    """The current champion's primary metric on the candidate's own test split (the no-regression
    gate must compare like with like), or None when there is no other champion yet."""
    version = alias_version(mlflow.client(), spec.registered_model_name, CHAMPION)
    if version is None or version == str(candidate_version):
        return None
    try:
        pipeline = mlflow.load_version(spec.registered_model_name, version).pipeline
        return {"version": version, "score": score_primary(pipeline, test, spec)}
    except Exception as err:  # e.g. the champion expects columns the new features no longer have
        return {"version": version, "error": f"{type(err).__name__}: {err}"}

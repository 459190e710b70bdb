"""Jobs: named selections of assets that sensors, schedules and people launch."""

from __future__ import annotations

import dagster as dg

from ml_assets.automation.executors import training_executor
from ml_assets.problem import DatasetSpec, ProblemSpec


def ingestion_job(spec: DatasetSpec, problems: tuple[ProblemSpec, ...] = ()):
    """One day of a dataset: archive, parse, validate, and the features of every problem fed by it.

    Features ride along in the same run (not by an automation condition) so that one mechanism,
    the landing sensor, triggers the work once."""
    keys = [[f"raw_{spec.name}"], [f"validated_{spec.name}"], [f"quarantined_{spec.name}"]]
    keys += [[p.name, "features"] for p in problems if p.data.inputs is not None and p.data.inputs.name == spec.name]
    return dg.define_asset_job(f"ingest_{spec.name}_job", selection=dg.AssetSelection.assets(*keys),
                               description=f"Archive, parse and validate one day of {spec.name}.")


def training_job(problem: ProblemSpec, executor: dg.ExecutorDefinition | None = None):
    """Training set -> candidate -> evaluation in one run (= one MLflow run). In process by default
    (on one machine worker processes would only add start-up); with `executor` (or
    ML_ASSETS_EXECUTOR, see ml_assets.automation.executors) e.g. on Celery workers, where the
    candidate families of `<problem>/candidate_model` run as parallel steps."""
    keys = [[problem.name, "training_set"], [problem.name, "candidate_model"], [problem.name, "evaluation"],
            [problem.name, "champion"]]
    if problem.data.inputs is not None:  # landed problems are monitored: profile the training rows
        keys.append([problem.name, "reference_profile"])
    else:  # the bundled data is one unpartitioned asset: load it in the same run, a fresh instance has none
        keys.insert(0, [problem.name, "dataset"])
    return dg.define_asset_job(f"train_{problem.name}_job", selection=dg.AssetSelection.assets(*keys),
                               executor_def=executor or training_executor(),
                               description=f"Retrain, register, evaluate and gate the {problem.name} model; "
                                           "promote it to champion when every blocking check passes.")


def scoring_job(problem: ProblemSpec, partitions_def):
    """Batch scoring of one day with the champion (landed problems only)."""
    return dg.define_asset_job(f"score_{problem.name}_job",
                               selection=dg.AssetSelection.assets([problem.name, "predictions"]),
                               description=f"Score one day of {problem.name} records with the champion.")


def decide_experiment_job(problem: ProblemSpec):
    """The day's decision of a running experiment (the experiment sensor requests it once a day)."""
    return dg.define_asset_job(f"decide_{problem.name}_experiment_job",
                               selection=dg.AssetSelection.assets([problem.name, "experiment"]),
                               description=f"Test the running {problem.name} experiment on the labels so far.")

"""Benchmark-only: the project's Definitions with the training job on the multiprocess executor."""

import dagster as dg
from ml_examples.problems import example_problems

from ml_assets.definitions import build_definitions


def _multiprocess() -> dg.Definitions:
    base = build_definitions(example_problems())
    keys = [["churn", "training_set"], ["churn", "candidate_model"], ["churn", "evaluation"]]
    job = dg.define_asset_job("train_churn_job", selection=dg.AssetSelection.assets(*keys),
                              executor_def=dg.multiprocess_executor)
    return dg.Definitions(assets=list(base.assets), resources=base.resources, jobs=[job])


defs = _multiprocess()

"""`<problem>/candidate_model` as a graph: one search step per model family, then one step that
picks the winner on validation, logs every family to MLflow and registers the winner.

Each family is its own step so that an executor with workers (Celery, see
ml_assets.automation.executors) runs the families in different processes or on different machines;
under the default in-process executor the steps run one after the other, as the single loop did,
and give the same result (core.training's phases are functions of their arguments only).

The family steps are pure computation, with no MLflow: the final step opens the run's MLflow
run once and logs one child run per family, so concurrent families never race to create the parent
run and the run keeps the shape it always had (one parent per training, one child per family).
"""

import os
import re
import socket
from dataclasses import dataclass

import dagster as dg
import pandas as pd
from sklearn.pipeline import Pipeline

from ml_assets.assets.naming import problem_asset_args
from ml_assets.core.datasets import training_days
from ml_assets.core.lineage import frame_hash, git_sha
from ml_assets.core.training import CandidateResult, pick_winner, prepare_search, search_candidate
from ml_assets.core.usage import StepUsage, measure_step
from ml_assets.mlflow.resource import MlflowResource
from ml_assets.mlflow.tracking import log_candidate, register_model
from ml_assets.problem import CandidateSpec
from ml_assets.problem.loading import ref_tags
from ml_assets.problem.spec import ProblemSpec
from ml_assets.settings import project_home

STEP_IO_MANAGER = "step_io_manager"
"""Carries each family's fitted pipeline to the final step. It must be storage every worker can
read (Dagster's FilesystemIOManager under the shared DAGSTER_HOME by default): a fitted
scikit-learn pipeline has no faithful serialization but pickle, as in MLflow's own model format."""


class TrainingConfig(dg.Config):
    seed: int = 0
    search_iterations: int = 0
    """Random-search draws per model family; 0 uses the problem spec's default."""


@dataclass(frozen=True)
class FamilySearch:
    """What one family's step hands to the final step."""

    result: CandidateResult
    pipeline: Pipeline  # the family's best parameters, fit on the train split
    usage: StepUsage
    worker: str  # `host:pid` of the process that ran the search


def _op_name(text: str) -> str:
    return re.sub(r"\W", "_", text)


def _family_op(spec: ProblemSpec, candidate: CandidateSpec, position: int) -> dg.OpDefinition:
    count = len(spec.training.candidates)

    # Op names carry the problem: two problems' graphs share the location, and a name means one op.
    @dg.op(name=_op_name(f"{spec.name}__search_{candidate.name}"), out=dg.Out(io_manager_key=STEP_IO_MANAGER),
           description=f"Randomized search + cross-validation of {candidate.name} on the train split, "
                       "scored on the validation split.")
    def search(context: dg.OpExecutionContext, config: TrainingConfig, training_set: pd.DataFrame) -> dg.Output:
        with measure_step() as usage:
            inputs = prepare_search(training_set, spec, config.seed)
            result, pipeline = search_candidate(inputs, spec, candidate, config.seed, config.search_iterations or None)
        host, pid = socket.gethostname(), os.getpid()
        context.log.info(f"[{position}/{count}] {candidate.name}: cv {spec.training.primary_metric} "
                         f"{result.cv_score:.4f} ± {result.cv_std:.4f}, validation {result.validation_score:.4f} "
                         f"({result.seconds:.1f}s) on {host} pid {pid}")
        return dg.Output(FamilySearch(result, pipeline, usage, f"{host}:{pid}"), metadata={
            "candidate": candidate.name, "cv_score": result.cv_score, "validation_score": result.validation_score,
            "params": dg.MetadataValue.json({k: str(v) for k, v in result.params.items()}),
            # which process ran the family: with workers, the families of one run spread over them
            "worker_host": host, "worker_pid": pid, **usage.metrics("step")})

    return search


def _combined(usages: list[StepUsage]) -> StepUsage:
    """The asset's cost whichever executor ran it: seconds and CPU seconds summed over its steps
    (with workers, wall-clock time is shorter than this), peak memory the largest step's."""
    return StepUsage(seconds=sum(u.seconds for u in usages), cpu_seconds=sum(u.cpu_seconds for u in usages),
                     peak_memory_bytes=max(u.peak_memory_bytes for u in usages))


def _register_op(spec: ProblemSpec) -> dg.OpDefinition:
    @dg.op(name=_op_name(f"{spec.name}__register_winner"), out=dg.Out(io_manager_key="json_io_manager"),
           description="The best family on validation, refit on train + validation, registered as a new MLflow "
                       "model version; every family is logged as a child run of the training's MLflow run.")
    def register_winner(context: dg.OpExecutionContext, config: TrainingConfig, training_set: pd.DataFrame,
                        searches: list[FamilySearch], mlflow: MlflowResource) -> dg.Output:
        with mlflow.training_run(context.run.run_id, context.job_name, spec.name) as run:
            with measure_step() as own:
                for search in searches:  # fan-in keeps the spec's order, so ties break as before
                    log_candidate(run, search.result)
                inputs = prepare_search(training_set, spec, config.seed)
                result = pick_winner(inputs, spec, [s.result for s in searches],
                                     {s.result.name: s.pipeline for s in searches})
                tags = {"dagster_run_id": context.run.run_id, "data_hash": frame_hash(training_set),
                        "seed": config.seed, "git_sha": git_sha(project_home()), "problem": spec.name, **ref_tags(spec),
                        "input_days": ",".join(training_days(training_set, spec)) or "static"}
                example = training_set[training_set["split"] == "validation"][spec.feature_columns]
                ref = register_model(run, result, spec, example, tags)
            usage = _combined([*(s.usage for s in searches), own])
            run.log_metrics(usage.metrics("candidate_model"))
        scores = pd.DataFrame([{**vars(c), "worker": s.worker} for c, s in zip(result.candidates, searches, strict=True)])
        return dg.Output(ref, metadata={
            "model_uri": ref["uri"], "version": ref["version"], "best_candidate": result.best,
            "validation_score": ref["validation_score"], "mlflow_run_id": ref["run_id"], **usage.metrics("step"),
            "candidates": dg.MetadataValue.md(scores.drop(columns=["params", "folds", "fold_scores"]).round(4)
                                              .to_markdown(index=False)),
            "cv_folds": dg.MetadataValue.json([fold.describe() for fold in result.candidates[0].folds])})

    return register_winner


def build_candidate_model(spec: ProblemSpec, group: str) -> dg.AssetsDefinition:
    families = [_family_op(spec, candidate, i) for i, candidate in enumerate(spec.training.candidates, 1)]
    register = _register_op(spec)

    # One config for the whole asset, as when it was one step: run config stays
    # `ops: {<problem>__candidate_model: {config: {seed, search_iterations}}}`.
    @dg.config_mapping(config_schema=TrainingConfig.to_config_schema())
    def same_config_everywhere(config: dict) -> dict:
        return {op.name: {"config": config} for op in [*families, register]}

    @dg.graph_asset(key=[spec.name, "candidate_model"], **problem_asset_args(spec, group),
                    kinds={"scikit-learn", "mlflow"}, ins={"training_set": dg.AssetIn([spec.name, "training_set"])},
                    config=same_config_everywhere,
                    description="Best tuned, cross-validated pipeline, registered as a new MLflow model version "
                                "(one search step per model family, then one step that picks and registers).")
    def candidate_model(training_set):
        return register(training_set, [family(training_set) for family in families])

    return candidate_model

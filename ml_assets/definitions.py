"""A code location's Definitions from its problems: assets (with their checks), jobs, schedules,
sensors and resources. The Component (ml_assets.components) calls this; so can a user's own
`definitions.py` with problems loaded by reference."""

from __future__ import annotations

from collections.abc import Sequence

import dagster as dg

from ml_assets import settings
from ml_assets.assets.candidates import STEP_IO_MANAGER
from ml_assets.assets.deployment import build_deployment_assets, build_gate_checks, build_rollback_job
from ml_assets.assets.experiment import build_experiment_asset, build_experiment_job
from ml_assets.assets.ingestion import build_ingestion_assets
from ml_assets.assets.models import build_model_assets
from ml_assets.assets.monitoring import build_monitoring_assets
from ml_assets.assets.served import build_served_assets
from ml_assets.automation.executors import training_executor as configured_training_executor
from ml_assets.automation.experiment_sensor import build_experiment_sensor
from ml_assets.automation.jobs import decide_experiment_job, ingestion_job, scoring_job, training_job
from ml_assets.automation.schedules import build_ingestion_schedule, build_weekly_retrain_schedule
from ml_assets.automation.sensors import (
    build_landing_sensor,
    build_retrain_sensor,
    interval_seconds,
    run_failure_alert_sensor,
)
from ml_assets.io import JsonIOManager, ParquetIOManager
from ml_assets.mlflow.resource import build_mlflow_failure_sensor, default_mlflow_resource
from ml_assets.ops.location import problems_metadata
from ml_assets.problem.loading import load_problem, require_ref
from ml_assets.problem.sections import DatasetSpec, SpecError
from ml_assets.problem.spec import ProblemSpec
from ml_assets.sources.landing import LandingZoneResource


def daily_partitions(start: str | None = None) -> dg.DailyPartitionsDefinition:
    return dg.DailyPartitionsDefinition(start_date=start or settings.partitions_start(), timezone="UTC")


def default_resources() -> dict:
    """Embedded defaults; every path resolves from the environment when first used."""
    return {"io_manager": ParquetIOManager(), "json_io_manager": JsonIOManager(),
            "landing": LandingZoneResource(), "mlflow": default_mlflow_resource()}


def step_resources() -> dict:
    """Storage of values passed between the steps of one asset (a family's fitted pipeline):
    Dagster's pickling FilesystemIOManager under the instance's storage directory, which every
    worker sharing DAGSTER_HOME reads. Added when a caller's resources do not name one."""
    return {STEP_IO_MANAGER: dg.FilesystemIOManager()}


def _resolve(problems: Sequence[ProblemSpec | str]) -> tuple[ProblemSpec, ...]:
    resolved = tuple(load_problem(p) if isinstance(p, str) else p for p in problems)
    for problem in resolved:
        require_ref(problem)
    names = [p.name for p in resolved]
    if dupes := sorted({n for n in names if names.count(n) > 1}):
        raise SpecError(f"two problems are named {', '.join(map(repr, dupes))}; give each problem its own name")
    return resolved


def datasets_of(problems: Sequence[ProblemSpec]) -> dict[str, tuple[DatasetSpec, tuple[ProblemSpec, ...]]]:
    """Each dataset once, with the problems that read it: a dataset shared by two problems is one
    set of ingestion assets. Two different datasets under one name are an error."""
    found: dict[str, tuple[DatasetSpec, tuple[ProblemSpec, ...]]] = {}
    for problem in problems:
        for dataset in (problem.data.inputs, problem.data.labels):
            if dataset is None:
                continue
            known, users = found.get(dataset.name, (dataset, ()))
            if known != dataset:
                raise SpecError(f"problems {', '.join(p.name for p in users)} and {problem.name} both name a dataset "
                                f"{dataset.name!r} but define it differently; share one DatasetSpec or rename one")
            found[dataset.name] = (dataset, (*users, problem) if problem not in users else users)
    return found


def _dataset_defs(dataset: DatasetSpec, users: tuple[ProblemSpec, ...]) -> dg.Definitions:
    """Partitions start at the earliest start of the problems that read the dataset."""
    partitions = daily_partitions(min((p.data.partitions_start or settings.partitions_start()) for p in users))
    fed = tuple(p for p in users if p.data.inputs == dataset)
    job = ingestion_job(dataset, fed)
    # A landed dataset has its landing sensor; a pulled one (SQL, HTTP) is fetched by the daily
    # schedule, or on demand and by backfill from the UI (re-pulling unchanged content changes nothing).
    sensors = [build_landing_sensor(dataset, job, partitions)] if dataset.source is None else []
    return dg.Definitions(
        assets=build_ingestion_assets(dataset, partitions, tuple(dg.AssetKey([p.name, "features"]) for p in fed)),
        jobs=[job], sensors=sensors, schedules=[build_ingestion_schedule(dataset, job, partitions)])


def _problem_defs(problem: ProblemSpec,
                  executor: dg.ExecutorDefinition) -> tuple[dg.Definitions, dg.JobDefinition]:
    partitions = daily_partitions(problem.data.partitions_start)
    train, gate = training_job(problem, executor), build_gate_checks(problem)
    assets = build_model_assets(problem, partitions) + build_deployment_assets(problem, partitions, gate)
    jobs, sensors = [train, build_rollback_job(problem)], []
    if problem.data.landed:
        assets += build_monitoring_assets(problem, partitions) + build_served_assets(problem, partitions)
        assets.append(build_experiment_asset(problem, partitions))
        decide, act = decide_experiment_job(problem), build_experiment_job(problem, partitions)
        jobs += [scoring_job(problem, partitions), decide, act]
        sensors += [build_retrain_sensor(problem, train), build_experiment_sensor(problem, decide, act)]
    return dg.Definitions(assets=assets, asset_checks=gate, jobs=jobs, sensors=sensors,
                          schedules=[build_weekly_retrain_schedule(problem, train)]), train


def build_definitions(problems: Sequence[ProblemSpec | str], resources: dict | None = None,
                      training_executor: dg.ExecutorDefinition | None = None) -> dg.Definitions:
    """problems: specs or references ("package.module:ATTRIBUTE"); each needs a reference, which
    processes outside the code location (the gate's canary, the service, the CLI) import.
    training_executor: of the training jobs; default from ML_ASSETS_EXECUTOR (in process)."""
    problems = _resolve(problems)
    parts = [_dataset_defs(dataset, users) for dataset, users in datasets_of(problems).values()]
    executor = training_executor or configured_training_executor()
    trained = [_problem_defs(problem, executor) for problem in problems]
    parts += [defs for defs, _ in trained]
    location = dg.Definitions(
        metadata=problems_metadata(problems),  # how the CLI and the exporter find the problems again
        sensors=[build_mlflow_failure_sensor([train for _, train in trained]), run_failure_alert_sensor,
                 dg.AutomationConditionSensorDefinition(
                     "automation_sensor", target=dg.AssetSelection.all(), default_status=dg.DefaultSensorStatus.RUNNING,
                     minimum_interval_seconds=interval_seconds("automation", 30),
                     description="Scoring and monitoring follow new features, labels and champions.")],
        resources={**step_resources(), **(resources or default_resources())},
        # Runs execute their steps in process: a day's steps are small and mostly sequential, and a
        # worker process per step re-imports the whole stack (seconds each), most of a daily run's
        # cost under the daemon. Parallelism comes from concurrent runs (one per partition) instead.
        executor=dg.in_process_executor)
    return dg.Definitions.merge(*parts, location)

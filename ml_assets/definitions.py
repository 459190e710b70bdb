"""The one Definitions object: assets (with their checks), jobs, schedules, sensors and resources."""

from __future__ import annotations

import dagster as dg

from ml_assets import settings
from ml_assets.assets.deployment import (
    build_deployment_assets,
    build_gate_checks,
    build_rollback_job,
)
from ml_assets.assets.ingestion import build_ingestion_assets
from ml_assets.assets.models import build_model_assets
from ml_assets.assets.monitoring import build_monitoring_assets
from ml_assets.assets.served import build_served_assets
from ml_assets.jobs import ingestion_job, scoring_job, training_job
from ml_assets.problems import registry
from ml_assets.problems.churn import DATASETS
from ml_assets.resources import JsonIOManager, LandingZoneResource, ParquetIOManager
from ml_assets.resources.mlflow import (
    build_mlflow_failure_sensor,
    default_mlflow_resource,
)
from ml_assets.schedules import build_ingestion_schedule, build_weekly_retrain_schedule
from ml_assets.sensors import (
    build_landing_sensor,
    build_retrain_sensor,
    interval_seconds,
    run_failure_alert_sensor,
)


def daily_partitions() -> dg.DailyPartitionsDefinition:
    return dg.DailyPartitionsDefinition(start_date=settings.partitions_start(), timezone="UTC")


def default_resources() -> dict:
    """Embedded defaults; every path resolves from the environment when first used."""
    return {"io_manager": ParquetIOManager(), "json_io_manager": JsonIOManager(),
            "landing": LandingZoneResource(), "mlflow": default_mlflow_resource()}


def build_definitions(resources: dict | None = None, problems: tuple | None = None) -> dg.Definitions:
    """problems: the discovered ones by default; tests pass variants (e.g. an unreachable gate)."""
    partitions = daily_partitions()
    problems = registry.discover() if problems is None else problems
    assets, jobs, sensors, schedules = [], [], [], []
    for spec in DATASETS:
        feeds = tuple(dg.AssetKey([p.name, "features"]) for p in problems
                      if p.customers is not None and p.customers.name == spec.name)
        job = ingestion_job(spec, problems)
        assets += build_ingestion_assets(spec, partitions, feeds)
        jobs.append(job)
        sensors.append(build_landing_sensor(spec, job, partitions))
        schedules.append(build_ingestion_schedule(spec, job, partitions))
    training_jobs = [training_job(problem) for problem in problems]
    checks = []
    for problem, train in zip(problems, training_jobs):
        gate = build_gate_checks(problem)
        checks += gate
        assets += build_model_assets(problem, partitions) + build_deployment_assets(problem, partitions, gate)
        jobs.append(build_rollback_job(problem))
        schedules.append(build_weekly_retrain_schedule(problem, train))
        if problem.customers is not None:
            assets += build_monitoring_assets(problem, partitions) + build_served_assets(problem, partitions)
            jobs.append(scoring_job(problem, partitions))
            sensors.append(build_retrain_sensor(problem, train))
    jobs += training_jobs
    sensors += [build_mlflow_failure_sensor(training_jobs), run_failure_alert_sensor,
                dg.AutomationConditionSensorDefinition(
                    "automation_sensor", target=dg.AssetSelection.all(), default_status=dg.DefaultSensorStatus.RUNNING,
                    minimum_interval_seconds=interval_seconds("automation", 30),
                    description="Scoring and monitoring follow new features, labels and champions (eager).")]
    # Runs execute their steps in process: a day's steps are small and mostly sequential, and a worker
    # process per step re-imports the whole stack (seconds each), which is most of a daily run's cost
    # under the daemon. Parallelism comes from concurrent runs (one per partition) instead.
    return dg.Definitions(assets=assets, asset_checks=checks, jobs=jobs, sensors=sensors, schedules=schedules,
                          resources=resources or default_resources(), executor=dg.in_process_executor)


defs = build_definitions()

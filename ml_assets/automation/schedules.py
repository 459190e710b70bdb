"""Schedules: the safety net behind the sensors."""

from datetime import timedelta

import dagster as dg

from ml_assets.problem import DatasetSpec, ProblemSpec


def build_ingestion_schedule(spec: DatasetSpec, job,
                             partitions_def: dg.TimeWindowPartitionsDefinition) -> dg.ScheduleDefinition:
    """Daily at 06:00 UTC, ingest yesterday's partition unless the landing sensor already did.

    A missing file then fails the run loudly ("no file landed"), which is the alert we want. A day
    whose last ingestion failed (a blocked batch, an unreadable file) is not retried blindly: the
    same file would fail the same way; the skip reason points at that run.
    """

    @dg.schedule(name=f"{spec.name}_daily_schedule", cron_schedule="0 6 * * *", job=job,
                 execution_timezone="UTC", default_status=dg.DefaultScheduleStatus.RUNNING)
    def ingestion_schedule(context: dg.ScheduleEvaluationContext):
        yesterday = context.scheduled_execution_time - timedelta(days=1)
        day = partitions_def.get_partition_key_for_timestamp(yesterday.timestamp())
        [last] = context.instance.get_runs(dg.RunsFilter(job_name=job.name, tags={"dagster/partition": day}),
                                           limit=1) or [None]
        if last is not None and last.status == dg.DagsterRunStatus.FAILURE:
            return dg.SkipReason(f"{spec.name} {day} failed in run {last.run_id} (a blocked batch or an unreadable "
                                 "file; its failure says why): fix the landing file and the sensor re-ingests it")
        done = context.instance.get_materialized_partitions(dg.AssetKey(f"validated_{spec.name}"))
        if day in done:
            return dg.SkipReason(f"{spec.name} {day} already ingested")
        return dg.RunRequest(run_key=f"{spec.name}:{day}:schedule", partition_key=day)

    return ingestion_schedule


def retrain_readiness(instance: dg.DagsterInstance, problem: ProblemSpec) -> str | None:
    """Why a scheduled retrain could not succeed yet (None: it can). A landed problem needs enough
    days of features and of labels ingested for a training set; a static one loads its own data."""
    if problem.data.inputs is None:
        return None
    need = problem.training.test_days + problem.training.validation_days + 1
    have = {name: len(instance.get_materialized_partitions(dg.AssetKey(key))) for name, key in (
        ("features", [problem.name, "features"]), ("labels", f"validated_{problem.data.labels.name}"))}
    short = [f"{name} of {n} day(s)" for name, n in have.items() if n < need]
    if short:
        return (f"{problem.name}: not retraining yet, training needs {need} labelled days and the instance has "
                f"{' and '.join(short)} ingested; land more days (the landing sensors ingest them)")
    return None


def build_weekly_retrain_schedule(problem: ProblemSpec, job) -> dg.ScheduleDefinition:
    """On `retraining.cron` (Mondays 03:00 UTC by default): retrain on the standard window even when no drift was detected (slow
    drift under every threshold still ages a model). The gate decides, as for any candidate.

    On by default (`retraining.schedule_running`) for landed problems, whose data grows; it skips (saying why) until enough days
    are ingested. Off by default for static problems: their bundled data never changes, so a weekly
    retrain would re-register the same model (the job itself runs on a fresh instance; turn the
    schedule on in the UI when the data behind `load_static` does change)."""
    status = dg.DefaultScheduleStatus.RUNNING if problem.retraining.schedule_running else dg.DefaultScheduleStatus.STOPPED

    @dg.schedule(name=f"{problem.name}_weekly_retrain", cron_schedule=problem.retraining.cron, job=job,
                 execution_timezone="UTC", default_status=status,
                 description=f"Weekly retrain of {problem.name}; the gate decides whether it is promoted.")
    def weekly_retrain(context: dg.ScheduleEvaluationContext):
        if (reason := retrain_readiness(context.instance, problem)) is not None:
            return dg.SkipReason(reason)
        return dg.RunRequest(tags={"ml_assets/trigger": "weekly"})  # one run per tick: the tick dedups it

    return weekly_retrain

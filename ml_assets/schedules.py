"""Schedules: the safety net behind the sensors."""

from datetime import timedelta

import dagster as dg

from ml_assets.problems.spec import DatasetSpec

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


def build_weekly_retrain_schedule(problem_name: str, job) -> dg.ScheduleDefinition:
    """Mondays 03:00 UTC: retrain on the standard window even when no drift was detected (slow
    drift under every threshold still ages a model). The gate decides, as for any candidate."""
    return dg.ScheduleDefinition(name=f"{problem_name}_weekly_retrain", cron_schedule="0 3 * * 1", job=job,
                                 execution_timezone="UTC", default_status=dg.DefaultScheduleStatus.RUNNING,
                                 tags={"ml_assets/trigger": "weekly"})

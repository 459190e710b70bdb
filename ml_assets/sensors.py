"""Sensors: thin, idempotent, cursor-based. Decisions live in ml_assets.core."""

import dagster as dg

from ml_assets.core.landing import LandingCursor, plan_ingestion
from ml_assets.problems.spec import DatasetSpec
from ml_assets.resources.landing import LandingZoneResource

def build_landing_sensor(spec: DatasetSpec, job,
                         partitions_def: dg.TimeWindowPartitionsDefinition) -> dg.SensorDefinition:
    @dg.sensor(name=f"{spec.name}_landing_sensor", job=job, minimum_interval_seconds=30,
               default_status=dg.DefaultSensorStatus.RUNNING,
               description=f"Requests the day's partition when a new or changed {spec.name} file lands.")
    def landing_sensor(context: dg.SensorEvaluationContext, landing: LandingZoneResource):
        cursor = LandingCursor.from_json(context.cursor)
        by_day, unrecognised = landing.scan(spec.name)
        plans, not_partitions = plan_ingestion(cursor, by_day, spec.name, partitions_def.has_partition_key)
        context.update_cursor(cursor.to_json())
        for path in unrecognised:
            context.log.warning(f"ignoring {path.name}: expected {spec.name}_YYYY-MM-DD[_suffix].csv|.parquet")
        if not_partitions:
            context.log.warning(f"files for days outside the partitions ({not_partitions}) are not ingested")
        if not plans:
            return dg.SkipReason(f"no new or changed {spec.name} files in {landing.landing_path / spec.name}")
        return [dg.RunRequest(run_key=key, partition_key=day, tags={"ml_assets/files": ",".join(f.name for f in files)})
                for day, key, files in plans]

    return landing_sensor

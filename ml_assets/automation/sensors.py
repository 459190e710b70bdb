"""Sensors: thin, idempotent, cursor-based. Decisions live in ml_assets.core."""

import json
import os
import time
import urllib.request

import dagster as dg

from ml_assets.assets.ingestion import inventory_key
from ml_assets.core.inventory import build_inventory
from ml_assets.core.landing import LandingCursor, plan_ingestion
from ml_assets.core.retraining import RetrainState, decide
from ml_assets.problem import DatasetSpec, ProblemSpec
from ml_assets.sources.landing import LandingZoneResource

ALERTED_TAG = "ml_assets/failure_alerted"


def _env_number(variable: str, default: float) -> float:
    text = os.environ.get(variable)
    if text is None or text.strip() == "":
        return default
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value >= 0:
        raise ValueError(f"{variable}={text!r} is not a non-negative number: set e.g. {variable}={default:g}, "
                         "or unset it for the default")
    return value


def interval_seconds(sensor: str, default: int) -> int:
    """How often the daemon may tick a kind of sensor (`landing`, `retrain`, `automation`):
    ML_ASSETS_<KIND>_SENSOR_INTERVAL_SECONDS, read when the Definitions are built, so an
    end-to-end test (or an impatient demo) can tick in seconds what production ticks in minutes."""
    return max(1, round(_env_number(f"ML_ASSETS_{sensor.upper()}_SENSOR_INTERVAL_SECONDS", default)))


def retrain_cooldown_hours(spec: ProblemSpec) -> float:
    """The spec's cooldown between two retrain requests, unless ML_ASSETS_RETRAIN_COOLDOWN_HOURS overrides it."""
    return _env_number("ML_ASSETS_RETRAIN_COOLDOWN_HOURS", spec.retraining.cooldown_hours)


def build_landing_sensor(spec: DatasetSpec, job,
                         partitions_def: dg.TimeWindowPartitionsDefinition) -> dg.SensorDefinition:
    @dg.sensor(name=f"{spec.name}_landing_sensor", job=job,
               minimum_interval_seconds=interval_seconds("landing", 30),
               default_status=dg.DefaultSensorStatus.RUNNING,
               description=f"Requests the day's partition when a new or changed {spec.name} file is complete "
                           f"(unchanged for one tick); records every file's fate in {spec.name}_landing_inventory.")
    def landing_sensor(context: dg.SensorEvaluationContext, landing: LandingZoneResource):
        cursor = LandingCursor.from_json(context.cursor)
        scan = landing.scan(spec.name)
        plan = plan_ingestion(cursor, scan.by_day, spec.name, partitions_def.has_partition_key, landing.settle_ticks)
        inventory = build_inventory(scan, plan, lambda day: _outside(day, partitions_def))
        events = []
        if inventory.fingerprint != cursor.inventory:  # record on change only: no event per tick
            cursor.inventory = inventory.fingerprint
            events.append(dg.AssetMaterialization(inventory_key(spec.name), metadata={
                "files": dg.MetadataValue.md(inventory.markdown()), **inventory.counts(),
                "folder": dg.MetadataValue.path(str(landing.landing_path / spec.name))}))
        if ignored := inventory.ignored():  # the user's to fix: a warning; waiting files are normal
            context.log.warning(ignored)
        attention = inventory.attention()
        requests = [dg.RunRequest(run_key=key, partition_key=day, tags={"ml_assets/files": ",".join(f.name for f in files)})
                    for day, key, files in plan.requests]
        skip = None if requests else (f"no new or changed complete {spec.name} files in "
                                      f"{landing.landing_path / spec.name}" + (f"; {attention}" if attention else ""))
        return dg.SensorResult(run_requests=requests, skip_reason=skip, asset_events=events, cursor=cursor.to_json())

    return landing_sensor


def _outside(day: str, partitions_def: dg.TimeWindowPartitionsDefinition) -> str:
    first, last = partitions_def.get_first_partition_key(), partitions_def.get_last_partition_key()
    return f"day {day} is not a partition (partitions run {first} .. {last}); it is ingested once it is one"


def latest_by_partition(instance: dg.DagsterInstance, key: list[str], limit: int = 120) -> dict[str, dict]:
    """Metadata of the newest materialization of each recent partition (no asset values loaded)."""
    latest: dict[str, dict] = {}
    for record in instance.fetch_materializations(dg.AssetKey(key), limit=limit).records:  # newest first
        materialization = record.asset_materialization
        if materialization and materialization.partition and materialization.partition not in latest:
            latest[materialization.partition] = {k: v.value for k, v in materialization.metadata.items()}
    return latest


def monitoring_signals(instance: dg.DagsterInstance, problem: str) -> tuple[dict, dict, set]:
    """(day -> dataset drift, snapshot day -> performance drop, labeled snapshot days)."""
    drifted = {day: bool(meta.get("dataset_drift")) for day, meta in
               latest_by_partition(instance, [problem, "drift_report"]).items()}
    dropped, labeled = {}, set()
    for meta in latest_by_partition(instance, [problem, "performance"]).values():
        labeled.update(meta.get("labeled_days") or [])
        for day in meta.get("labeled_days") or []:
            dropped[day] = dropped.get(day, False) or day in (meta.get("dropped_days") or [])
    return drifted, dropped, labeled


def build_retrain_sensor(spec: ProblemSpec, job) -> dg.SensorDefinition:
    cooldown_seconds = retrain_cooldown_hours(spec) * 3600

    @dg.sensor(name=f"{spec.name}_drift_retrain_sensor", job=job,
               minimum_interval_seconds=interval_seconds("retrain", 300),
               default_status=dg.DefaultSensorStatus.RUNNING,
               description="Requests one retrain per drift episode (data drift or a realized performance drop), "
                           "once enough of the episode has labels; reads materialization metadata only.")
    def retrain_sensor(context: dg.SensorEvaluationContext):
        drifted, dropped, labeled = monitoring_signals(context.instance, spec.name)
        decision, state = decide(spec.name, drifted, dropped, labeled, RetrainState.from_json(context.cursor),
                                 time.time(), spec.retraining.min_labeled_days, cooldown_seconds, spec.retraining.episode_gap_days)
        context.update_cursor(state.to_json())
        if not decision.request:
            return dg.SkipReason(decision.reason)
        context.log.info(decision.reason)
        return dg.RunRequest(run_key=decision.run_key, tags={"ml_assets/trigger": "drift",
                                                             "ml_assets/episode": decision.episode},
                             run_config={"ops": {f"{spec.name}__training_set": {"config": {"since": decision.episode}}}})

    return retrain_sensor


def post_alert(url: str, payload: dict, timeout: float = 5.0) -> None:
    request = urllib.request.Request(url, data=json.dumps(payload).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        response.read()


@dg.run_failure_sensor(name="run_failure_alert_sensor", default_status=dg.DefaultSensorStatus.RUNNING,
                       description="Logs every failed run, tags it as alerted (the exporter counts failures per job) "
                                   "and posts it to ML_ASSETS_ALERT_WEBHOOK when that is set.")
def run_failure_alert_sensor(context: dg.RunFailureSensorContext):
    run = context.dagster_run
    message = context.failure_event.message or "run failed"
    context.log.error(f"run {run.run_id} of {run.job_name} failed: {message}")
    context.instance.add_run_tags(run.run_id, {ALERTED_TAG: str(int(time.time()))})
    if url := os.environ.get("ML_ASSETS_ALERT_WEBHOOK"):
        try:
            post_alert(url, {"run_id": run.run_id, "job": run.job_name, "message": message,
                             "partition": run.tags.get("dagster/partition")})
        except OSError as err:  # the alert channel being down must not hide the failure itself
            context.log.warning(f"could not post the alert to {url}: {err}")

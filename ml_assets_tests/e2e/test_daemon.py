"""The closed loop under the REAL daemon (`dagster-daemon run` + a gRPC code server) on an
on-disk instance, configured only through the environment as a deployment would be.

History is ingested and the first champion trained in this process (as a person would, and
through the same run keys the daemon honours). Then the daemon does everything: a landed day is
ingested by the landing sensor, scored and drift-checked by the automation sensor, and the drift
sensor records why it did not retrain. Then, as after an outage, eight days land at once, all
after their date, with a new segment and a changed churn relationship from the first of them:
every day is scored, drift-checked and joined with its labels, the drift sensor requests exactly
one retrain once seven days of the episode have labels, and the gate promotes it.
"""

import os
import time
from datetime import datetime, timedelta, timezone

import dagster as dg
import pytest

from ml_assets.model_registry import CHAMPION, alias_version, client
from ml_assets.runner import RUN_KEY_TAG, SENSOR_NAME_TAG, tick_sensor
from ml_assets.simulation import ScenarioStart, WorldConfig, write_world
from ml_assets_tests.conftest import project_env
from ml_assets_tests.e2e.daemon import runs_summary, running_daemon, sensor_ticks, wait_for

pytestmark = pytest.mark.e2e

HISTORY, NORMAL, K, LAST = 10, 10, 11, 18  # days 0-9 before the daemon; day 10 normal; drift from day 11
TODAY = datetime.now(timezone.utc).date()
WORLD = WorldConfig(start_date=TODAY - timedelta(days=LAST + 4), rows_per_day=600, population=6_000,
                    label_delay_days=1, scenarios=(ScenarioStart("new_segment", K), ScenarioStart("concept_drift", K)))
ENV = {"ML_ASSETS_LANDING_SENSOR_INTERVAL_SECONDS": "2", "ML_ASSETS_AUTOMATION_SENSOR_INTERVAL_SECONDS": "2",
       "ML_ASSETS_RETRAIN_SENSOR_INTERVAL_SECONDS": "3", "ML_ASSETS_RETRAIN_COOLDOWN_HOURS": "0"}
BUDGET = 480  # seconds for the whole daemon part; a healthy run takes about half


def _day(day: int) -> str:
    return str(WORLD.day_date(day))


def _materialized(instance, asset: str) -> set[str]:
    return instance.get_materialized_partitions(dg.AssetKey(["churn", asset]))


def _idle(instance) -> bool:
    return not instance.get_runs(filters=dg.RunsFilter(statuses=[
        dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.STARTING,
        dg.DagsterRunStatus.STARTED]), limit=1)


@pytest.fixture(scope="module")
def world(tmp_path_factory, mlflow_template):
    root = tmp_path_factory.mktemp("daemon")
    landing = root / "data" / "landing"
    with project_env(root, mlflow_template):
        os.environ.update(ENV)
        try:
            from ml_assets_tests.e2e.definitions import defs

            with dg.DagsterInstance.get() as instance:
                write_world(WORLD, HISTORY, landing)
                for sensor in ("customers_landing_sensor", "labels_landing_sensor"):
                    assert all(r.success for r in tick_sensor(defs, sensor, instance)[0])
                assert defs.resolve_job_def("train_churn_job").execute_in_process(instance=instance).success
                yield _run_daemon(root, landing, instance)
        finally:
            for key in ENV:
                os.environ.pop(key)


def _run_daemon(root, landing, instance) -> dict:
    seen: dict = {}
    deadline = time.time() + BUDGET
    with running_daemon(root, "ml_assets_tests.e2e.definitions", dict(os.environ)) as log:
        def diagnose() -> str:
            return f"runs:\n{runs_summary(instance)}\ndaemon log:\n{log.read_text()[-4000:]}"

        write_world(WORLD, NORMAL + 1, landing, first_day=NORMAL)  # one normal day lands
        wait_for(lambda: _day(NORMAL) in _materialized(instance, "drift_report"), "day 10 scored", deadline, diagnose)
        started = time.time()
        seen["first_ticks"] = wait_for(lambda: [t for t in sensor_ticks(instance, "churn_drift_retrain_sensor")
                                                if t.timestamp > started and t.skip_reason],
                                       "a drift-sensor tick after day 10", deadline, diagnose)
        write_world(WORLD, LAST + 1, landing, first_day=K)  # the outage is over: eight late days at once
        wait_for(lambda: alias_version(client(), "churn_model", CHAMPION) == "2", "the retrained champion",
                 deadline, diagnose)
        wait_for(lambda: _idle(instance), "every run to finish", deadline, diagnose)
        promoted = time.time()
        seen["last_ticks"] = wait_for(lambda: [t for t in sensor_ticks(instance, "churn_drift_retrain_sensor")
                                               if t.timestamp > promoted and t.skip_reason],
                                      "a drift-sensor tick after the promotion", deadline, diagnose)
        wait_for(lambda: _idle(instance), "every run to finish", deadline, diagnose)
    seen["instance"] = instance
    return seen


def test_a_landed_file_is_ingested_scored_and_judged_by_the_daemon(world):
    instance = world["instance"]
    [ingest] = instance.get_runs(filters=dg.RunsFilter(tags={SENSOR_NAME_TAG: "customers_landing_sensor",
                                                             "dagster/partition": _day(NORMAL)}))
    assert ingest.status == dg.DagsterRunStatus.SUCCESS and ingest.tags[RUN_KEY_TAG].startswith("customers:")
    scored = instance.get_latest_materialization_event(dg.AssetKey(["churn", "predictions"]))
    runs = {r.run_id: r for r in instance.get_runs(filters=dg.RunsFilter(tags={SENSOR_NAME_TAG: "automation_sensor"}))}
    assert runs, "the automation sensor launched no run"
    assert {e.run_id for e in instance.fetch_materializations(dg.AssetKey(["churn", "predictions"]), limit=50).records
            } <= set(runs) and scored is not None
    [tick, *_] = world["first_ticks"]
    assert tick.status.value == "SKIPPED"
    assert tick.skip_reason == f"no drift or performance drop in the last 3 monitored days (up to {_day(NORMAL)})"


def test_history_ingested_in_process_is_not_ingested_again_by_the_daemon(world):
    instance = world["instance"]
    for day in range(HISTORY):
        runs = instance.get_runs(filters=dg.RunsFilter(tags={SENSOR_NAME_TAG: "customers_landing_sensor",
                                                             "dagster/partition": _day(day)}))
        assert len(runs) == 1, f"{_day(day)} ingested {len(runs)} times"


def test_every_late_day_is_scored_drift_checked_and_joined_with_its_labels(world):
    instance = world["instance"]
    late = {_day(d) for d in range(NORMAL, LAST + 1)}
    assert all(d < str(TODAY - timedelta(days=3)) for d in late)  # every one landed after its date
    assert late <= _materialized(instance, "predictions") and late <= _materialized(instance, "drift_report")
    labeled = set()
    for record in instance.fetch_materializations(dg.AssetKey(["churn", "performance"]), limit=200).records:
        labeled.update(record.asset_materialization.metadata["labeled_days"].value)
    assert {_day(d) for d in range(NORMAL, LAST)} <= labeled  # labels land a day late: day 18's are to come
    drifted = {record.asset_materialization.partition for record in instance.fetch_materializations(
        dg.AssetKey(["churn", "drift_report"]), limit=200).records
        if record.asset_materialization.metadata["dataset_drift"].value}
    assert min(drifted) == _day(K)


def test_exactly_one_drift_retrain_and_its_promotion(world):
    instance = world["instance"]
    [retrain] = instance.get_runs(filters=dg.RunsFilter(tags={"ml_assets/trigger": "drift"}))
    assert retrain.status == dg.DagsterRunStatus.SUCCESS
    assert retrain.tags[RUN_KEY_TAG] == f"churn-retrain-{_day(K)}" and retrain.tags[SENSOR_NAME_TAG] == \
        "churn_drift_retrain_sensor"
    assert alias_version(client(), "churn_model", CHAMPION) == "2"
    champion = instance.get_latest_materialization_event(dg.AssetKey(["churn", "champion"]))
    assert champion.run_id == retrain.run_id and champion.asset_materialization.metadata["action"].value == "promote"
    [tick, *_] = world["last_ticks"]
    assert tick.skip_reason == f"drift episode since {_day(K)} already retrained; waiting for it to end"

"""The closed loop under the REAL daemon (`dagster-daemon run` + a gRPC code server) on an
on-disk instance, configured only through the environment as a deployment would be.

History is ingested and the first champion trained in this process (as a person would, and
through the same run keys the daemon honours). Then the daemon does everything. As after an
outage, five days of customer files land at once, all after their date, with a new segment and a
changed churn relationship from the second of them: the landing sensor's runs ingest them, the
automation sensor scores and drift-checks every one, and the drift sensor's tick history says it
is waiting for labels. Then their labels land: every day is joined with its labels, the drift
sensor requests exactly one retrain (three days of the episode have labels), and the gate
promotes it.
"""

import os
import time
from datetime import datetime, timedelta, timezone

import dagster as dg
import pytest
from ml_examples.churn.simulation import ScenarioStart, WorldConfig, write_world

from ml_assets.mlflow.registry import CHAMPION, alias_version, client
from ml_assets.testing.runner import RUN_KEY_TAG, SENSOR_NAME_TAG, tick_sensor
from ml_assets.testing.watch import idle
from ml_assets_tests.conftest import project_env
from ml_assets_tests.e2e.daemon import (
    running_daemon,
    runs_summary,
    sensor_ticks,
    wait_for,
)

pytestmark = pytest.mark.e2e

HISTORY, NORMAL, K, LAST = 10, 10, 11, 14  # days 0-9 before the daemon; 10-14 late; drift from day 11
TODAY = datetime.now(timezone.utc).date()
WORLD = WorldConfig(start_date=TODAY - timedelta(days=LAST + 4), rows_per_day=1_000, population=10_000,
                    label_delay_days=1, scenarios=(ScenarioStart("new_segment", K), ScenarioStart("concept_drift", K)))
ENV = {"ML_ASSETS_LANDING_SENSOR_INTERVAL_SECONDS": "2", "ML_ASSETS_AUTOMATION_SENSOR_INTERVAL_SECONDS": "2",
       "ML_ASSETS_RETRAIN_SENSOR_INTERVAL_SECONDS": "3", "ML_ASSETS_RETRAIN_COOLDOWN_HOURS": "0"}
BUDGET = 1200  # seconds for the daemon part: a bound, not a benchmark (about 20 runs, each a new process)


def _day(day: int) -> str:
    return str(WORLD.day_date(day))


def _materialized(instance, asset: str) -> set[str]:
    return instance.get_materialized_partitions(dg.AssetKey(["churn", asset]))


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
                    assert all(r.success for r in tick_sensor(defs, sensor, instance, ticks=2)[0])
                assert defs.resolve_job_def("train_churn_job").execute_in_process(instance=instance).success
                yield _run_daemon(root, landing, instance)
        finally:
            for key in ENV:
                os.environ.pop(key)


def _land(staging, landing, dataset: str) -> None:
    (landing / dataset).mkdir(parents=True, exist_ok=True)
    for path in sorted((staging / dataset).iterdir()):
        path.rename(landing / dataset / path.name)


def _ticks_since(instance, since: float, reason: str) -> list:
    return [t for t in sensor_ticks(instance, "churn_drift_retrain_sensor")
            if t.timestamp > since and reason in (t.skip_reason or "")]


def _run_daemon(root, landing, instance) -> dict:
    seen: dict = {}
    deadline = time.time() + BUDGET
    staging = root / "staging"
    write_world(WORLD, LAST + 1, staging, first_day=NORMAL)
    late = {_day(d) for d in range(NORMAL, LAST + 1)}
    with running_daemon(root, "ml_assets_tests.e2e.definitions", dict(os.environ)) as log:
        def diagnose() -> str:
            return f"runs:\n{runs_summary(instance)}\ndaemon log:\n{log.read_text()[-4000:]}"

        _land(staging, landing, "customers")  # the outage is over: five late days at once, labels to follow
        wait_for(lambda: late <= _materialized(instance, "drift_report"), "every late day scored", deadline, diagnose)
        scored = time.time()
        seen["waiting"] = wait_for(lambda: _ticks_since(instance, scored, "waiting for labels"),
                                   "a drift-sensor tick after the late days were scored", deadline, diagnose)
        _land(staging, landing, "labels")
        wait_for(lambda: alias_version(client(), "churn_model", CHAMPION) == "2", "the retrained champion",
                 deadline, diagnose)
        wait_for(lambda: idle(instance), "every run to finish", deadline, diagnose)
        promoted = time.time()
        seen["retrained"] = wait_for(lambda: _ticks_since(instance, promoted, "already retrained"),
                                     "a drift-sensor tick after the promotion", deadline, diagnose)
        wait_for(lambda: idle(instance), "every run to finish", deadline, diagnose)
    seen["instance"] = instance
    return seen


def test_a_landed_file_is_ingested_scored_and_judged_by_the_daemon(world):
    instance = world["instance"]
    [ingest] = instance.get_runs(filters=dg.RunsFilter(tags={SENSOR_NAME_TAG: "customers_landing_sensor",
                                                             "dagster/partition": _day(NORMAL)}))
    assert ingest.status == dg.DagsterRunStatus.SUCCESS and ingest.tags[RUN_KEY_TAG].startswith("customers:")
    for asset in ("predictions", "drift_report"):  # scored and drift-checked by runs the automation sensor launched
        [record, *_] = instance.fetch_materializations(dg.AssetRecordsFilter(
            asset_key=dg.AssetKey(["churn", asset]), asset_partitions=[_day(NORMAL)]), limit=5).records
        run = instance.get_run_by_id(record.run_id)
        assert run.tags[SENSOR_NAME_TAG] == "automation_sensor" and run.status == dg.DagsterRunStatus.SUCCESS
    [tick, *_] = world["waiting"]  # the instance's tick history, as the UI shows it
    assert tick.status.value == "SKIPPED"
    assert tick.skip_reason == f"drift episode since {_day(K)}: waiting for labels (0/3 days of the episode labeled)"


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
    assert {_day(d) for d in range(NORMAL, LAST)} <= labeled  # labels land a day late: the last day's are to come
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
    [tick, *_] = world["retrained"]
    assert tick.skip_reason == f"drift episode since {_day(K)} already retrained; waiting for it to end"

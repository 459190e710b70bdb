"""deploy/dagster.postgres.yaml on the real PostgreSQL of this machine: the daemon's landing
sensors and the runs they launch, a training run, the gate's promotion and the drift sensor's
cursor are all stored in Postgres, and another process reads them back from there."""

import json
import os
import shutil
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

import dagster as dg
import pytest
from ml_examples.definitions import example_definitions

defs = example_definitions()
from ml_examples.churn.simulation import WorldConfig, write_world

from ml_assets.mlflow.registry import CHAMPION, alias_version, client
from ml_assets_tests.conftest import _environ, project_env
from ml_assets_tests.daemon import dagster_daemon, wait_for, write_workspace
from ml_assets_tests.postgres import PG, count_rows, scratch_database

pytestmark = pytest.mark.slow
DEPLOY = Path(__file__).resolve().parents[1] / "deploy"
DAYS = 9  # customers for 9 days, labels (1 day late) for 8: test 3 + validation 3 + 2 train days

READ_BACK = """
import json, dagster as dg
with dg.DagsterInstance.get() as instance:
    runs = [{"job": r.job_name, "status": r.status.value, "sensor": r.tags.get("dagster/sensor_name")}
            for r in instance.get_runs()]
    champion = instance.get_latest_materialization_event(dg.AssetKey(["churn", "champion"]))
    sensors = {}
    for state in instance.all_instigator_state():
        ticks = instance.get_ticks(state.instigator_origin_id, state.selector_id, limit=1)
        data = state.instigator_data
        sensors[state.instigator_name] = {"cursor": getattr(data, "cursor", None),
                                          "skip": ticks[0].skip_reason if ticks else None}
    print(json.dumps({"storage": type(instance.run_storage).__name__, "runs": runs, "sensors": sensors,
                      "champion": champion.asset_materialization.metadata["version"].value if champion else None}))
"""


@pytest.fixture
def pg_database():
    with scratch_database() as name:
        yield name


def test_daemon_runs_training_and_sensor_state_live_in_postgres(tmp_path, pg_database, mlflow_template):
    pg_env = {"DAGSTER_PG_HOST": PG["host"], "DAGSTER_PG_PORT": str(PG["port"]), "DAGSTER_PG_USER": PG["user"],
              "DAGSTER_PG_PASSWORD": "", "DAGSTER_PG_DB": pg_database,
              "ML_ASSETS_LANDING_SENSOR_INTERVAL_SECONDS": "3"}  # a file settles over two ticks
    with project_env(tmp_path, mlflow_template), _environ(pg_env):
        shutil.copyfile(DEPLOY / "dagster.postgres.yaml", Path(os.environ["DAGSTER_HOME"]) / "dagster.yaml")
        world = WorldConfig(start_date=date.today() - timedelta(days=DAYS + 1), rows_per_day=400, population=4_000,
                            label_delay_days=1)
        files = write_world(world, DAYS, tmp_path / "data" / "landing")
        log = tmp_path / "daemon.log"
        with dg.DagsterInstance.get() as instance:
            assert type(instance.run_storage).__name__ == "PostgresRunStorage"

            def ingested():
                runs = instance.get_runs(filters=dg.RunsFilter(job_name="ingest_customers_job")) + \
                    instance.get_runs(filters=dg.RunsFilter(job_name="ingest_labels_job"))
                failed = [r.run_id for r in runs if r.status == dg.DagsterRunStatus.FAILURE]
                assert not failed, f"ingestion runs failed: {failed}"
                return len(runs) == len(files) and all(r.status == dg.DagsterRunStatus.SUCCESS for r in runs)

            with dagster_daemon(write_workspace(tmp_path), log):
                wait_for(ingested, 900, f"{len(files)} ingestion runs launched by the landing sensors", log)
            result = defs.resolve_job_def("train_churn_job").execute_in_process(
                instance=instance, raise_on_error=False,
                run_config={"ops": {"churn__candidate_model": {"config": {"search_iterations": 1}}}})
            assert result.success, [e.message for e in result.all_events if e.is_failure]
        champion = alias_version(client(), "churn_model", CHAMPION)
        assert champion == "1"

        # Another process, reading only through the instance config: everything came from Postgres.
        done = subprocess.run([sys.executable, "-c", READ_BACK], capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr[-3000:]
        stored = json.loads(done.stdout.strip().splitlines()[-1])
    assert stored["storage"] == "PostgresRunStorage"
    by_job = {}
    for run in stored["runs"]:
        by_job.setdefault(run["job"], []).append(run)
    ingest = by_job["ingest_customers_job"] + by_job["ingest_labels_job"]
    assert len(ingest) == len(files) and {r["status"] for r in ingest} == {"SUCCESS"}
    assert {r["sensor"] for r in by_job["ingest_customers_job"]} == {"customers_landing_sensor"}
    assert [r["status"] for r in by_job["train_churn_job"]] == ["SUCCESS"]
    assert stored["champion"] == champion
    retrain = stored["sensors"]["churn_drift_retrain_sensor"]
    assert json.loads(retrain["cursor"]) and retrain["skip"]  # the daemon ticked it and stored why it skipped
    assert count_rows(pg_database, "runs") == len(stored["runs"])

"""The closed loop once on the `make cluster` topology: `python -m ml_assets.ops.cluster up` (what
`make cluster` runs) starts the webserver, the daemon, two Celery workers, an MLflow server on
PostgreSQL and a local S3 server; the cluster demo (what `ML_ASSETS_PROFILE=cluster make demo`
runs) lands files and asks for the first training, and the cluster's daemon does the rest. Read
back from this process: the runs in PostgreSQL, the models on the MLflow server, the data on S3.
Then `down` stops exactly what `up` started.

Its own databases (a unique prefix), RabbitMQ virtual host, ports and folder: it can run beside
a developer's own cluster."""

import json
import os
import shlex
import subprocess
import sys
import uuid
from pathlib import Path

import dagster as dg
import psycopg2
import pytest
import s3fs
from mlflow.tracking import MlflowClient

from ml_assets.mlflow.registry import CHAMPION, alias_version
from ml_assets.ops.supervisor import environment, port_open
from ml_assets.testing.runner import SENSOR_NAME_TAG
from ml_assets_tests.conftest import _environ
from ml_assets_tests.postgres import PG, count_rows
from ml_assets_tests.processes import free_port
from ml_assets_tests.rabbitmq import broker_url, scratch_vhost

pytestmark = [pytest.mark.slow, pytest.mark.cluster]
ROOT = Path(__file__).resolve().parents[1]
CLUSTER = [sys.executable, "-m", "ml_assets.ops.cluster"]
HISTORY, LATE = 10, 6  # drift from the second late day: its first three days have labels by the end


def _env_file(path: Path) -> dict[str, str | None]:
    """The `export K=V` (values shell-quoted) and `unset K` (None) lines `up` wrote."""
    env = {}
    for line in path.read_text().splitlines():
        if line.startswith("unset "):
            env[line[len("unset "):]] = None
        elif line.startswith("export "):
            key, _, value = line[len("export "):].partition("=")
            env[key] = shlex.split(value)[0] if value else ""
    return env


def _leftover_database(name: str) -> None:
    admin = psycopg2.connect(dbname="postgres", **PG)
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"')
    admin.close()
    with psycopg2.connect(dbname=name, **PG) as conn, conn.cursor() as cur:
        cur.execute("CREATE TABLE leftover (x int)")
    conn.close()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    folder, prefix = tmp_path_factory.mktemp("cluster"), f"ml_assets_test_{uuid.uuid4().hex[:8]}"
    workspace = folder / "workspace.yaml"
    workspace.write_text("load_from:\n  - python_module:\n      module_name: ml_assets_tests.cluster_definitions\n"
                         f"      location_name: cluster_test\n      working_directory: {ROOT}\n")
    with scratch_vhost() as vhost:
        args = ["--folder", str(folder), "--prefix", prefix]
        _leftover_database(f"{prefix}_dagster")  # of an earlier cluster whose S3 objects are gone
        up = subprocess.run([*CLUSTER, "up", *args, "--ui-port", str(free_port()), "--mlflow-port", str(free_port()),
                             "--s3-port", str(free_port()), "--broker", broker_url(vhost), "--workspace", str(workspace)],
                            cwd=ROOT, capture_output=True, env={**os.environ, "ML_ASSETS_HOME": str(ROOT),
                                                          # a shell's setting that must not reach the cluster
                                                          "ML_ASSETS_MLFLOW_ARTIFACTS": (folder / "elsewhere").as_uri()}, text=True,
                            timeout=900)
        try:
            assert up.returncode == 0, up.stdout + up.stderr
            env = _env_file(folder / "env")
            demo = subprocess.run([sys.executable, "-m", "ml_examples.churn.cluster_demo", "--history", str(HISTORY),
                                   "--late", str(LATE), "--timeout", "1500"], cwd=folder, env=environment(env),
                                  capture_output=True, text=True, timeout=1800)
            with _environ(env), dg.DagsterInstance.get() as instance:
                yield {"up": up, "demo": demo, "env": env, "instance": instance, "folder": folder, "args": args,
                       "prefix": prefix}
        finally:
            subprocess.run([*CLUSTER, "down", *args, "--drop-databases"], cwd=ROOT, capture_output=True, timeout=300)


def test_up_prints_where_everything_is(cluster):
    out = cluster["up"].stdout
    for name in ("s3", "mlflow", "celery-worker-1", "celery-worker-2", "daemon", "webserver", "postgres"):
        assert f"\n  {name} " in out, out
    assert cluster["env"]["MLFLOW_TRACKING_URI"] in out and cluster["env"]["ML_ASSETS_DAGSTER_URL"] in out


def test_a_new_cluster_starts_with_fresh_databases(cluster):
    with psycopg2.connect(dbname=cluster["env"]["DAGSTER_PG_DB"], **PG) as conn, conn.cursor() as cur:
        cur.execute("SELECT to_regclass('leftover')")
        assert cur.fetchone()[0] is None
    conn.close()


def test_the_demo_closes_the_loop_on_the_cluster(cluster):
    demo = cluster["demo"]
    assert demo.returncode == 0, demo.stdout[-4000:] + demo.stderr[-4000:]
    assert "churn_model@champion v1 -> v2" in demo.stdout, demo.stdout


def test_every_run_was_launched_by_the_daemon_and_is_stored_in_postgres(cluster):
    instance, env = cluster["instance"], cluster["env"]
    runs = instance.get_runs(limit=500)
    assert runs and all(r.status == dg.DagsterRunStatus.SUCCESS for r in runs), [(r.job_name, r.status) for r in runs]
    assert count_rows(env["DAGSTER_PG_DB"], "runs") == len(runs)  # the instance is the cluster's PostgreSQL
    by_sensor = {}
    for run in runs:
        by_sensor.setdefault(run.tags.get(SENSOR_NAME_TAG, "(user)"), []).append(run)
    # every landed day through the landing sensors; scoring and drift by the automation sensor
    assert len(by_sensor["customers_landing_sensor"]) == HISTORY + LATE
    late_days = sorted(r.tags["dagster/partition"] for r in by_sensor["customers_landing_sensor"])[-LATE:]
    assert set(late_days) <= {r.tags["dagster/partition"] for r in by_sensor["automation_sensor"]}
    [retrain] = by_sensor["churn_drift_retrain_sensor"]
    assert retrain.tags["ml_assets/trigger"] == "drift" and retrain.job_name == "train_churn_job"
    [first] = by_sensor["(user)"]  # the one run this process asked for, through the webserver
    assert first.job_name == "train_churn_job"


def test_training_steps_ran_on_both_celery_workers(cluster):
    instance = cluster["instance"]
    for run in instance.get_runs(filters=dg.RunsFilter(job_name="train_churn_job")):
        workers = {record.dagster_event.step_key: record.dagster_event.engine_event_data.metadata["Celery worker"].value
                   for record in instance.all_logs(run.run_id, of_type=dg.DagsterEventType.ENGINE_EVENT)
                   if "Celery worker" in record.dagster_event.engine_event_data.metadata}
        families = {step: worker for step, worker in workers.items() if "__search_" in step}
        assert len(families) == 2 and len(set(families.values())) == 2, workers


def test_models_on_the_mlflow_server_and_data_on_s3(cluster):
    env = cluster["env"]
    registry = MlflowClient(env["MLFLOW_TRACKING_URI"])
    assert alias_version(registry, "churn_model", CHAMPION) == "2"
    fs = s3fs.S3FileSystem(key=env["AWS_ACCESS_KEY_ID"], secret=env["AWS_SECRET_ACCESS_KEY"],
                           client_kwargs={"endpoint_url": env["AWS_ENDPOINT_URL"]})
    assert len(fs.glob("ml-assets/mlflow/**/MLmodel")) >= 2  # both versions' artifacts, served from S3
    for prefix in ("warehouse", "raw", "landing/customers"):
        assert fs.find(f"ml-assets/{prefix}"), f"nothing under s3://ml-assets/{prefix}"
    assert count_rows(f"{cluster['prefix']}_mlflow", "model_versions") == 2


def test_down_stops_exactly_what_up_started(cluster):
    started = json.loads((cluster["folder"] / "state.json").read_text())
    status = subprocess.run([*CLUSTER, "status", *cluster["args"]], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert all(f"\n  {name} " in "\n" + status.stdout for name in started), status.stdout
    down = subprocess.run([*CLUSTER, "down", *cluster["args"]], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert down.returncode == 0 and down.stdout.startswith("stopped "), down.stdout + down.stderr
    for entry in started.values():
        with pytest.raises(ProcessLookupError):
            os.killpg(entry["pid"], 0)  # the whole group: servers and what they forked
    url = cluster["env"]["ML_ASSETS_DAGSTER_URL"]
    assert not port_open(int(url.rsplit(":", 1)[1]))
    assert count_rows("postgres", "pg_database") > 0  # the machine's PostgreSQL still serves

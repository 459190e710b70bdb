"""The platform against an MLflow tracking server on PostgreSQL with served artifacts, over HTTP
only: training, the registry aliases, the fresh-process canary of the gate, the scoring service's
hot swap and the exporter. The client side never touches the store's files: the experiment's
artifact location is the server's `mlflow-artifacts:` and the project's data/mlflow stays empty."""

import time
from pathlib import Path

import dagster as dg
import pytest
from ml_examples.churn.simulation import WorldConfig, write_world
from prometheus_client import generate_latest

from ml_assets.mlflow.registry import CHAMPION, alias_version
from ml_assets.serving.app import ServiceConfig
from ml_assets.testing.runner import tick_sensor
from ml_assets_tests.conftest import START, _environ, project_env
from ml_assets_tests.mlflow_server import mlflow_server as tracking_server
from ml_assets_tests.postgres import count_rows, scratch_database, sqlalchemy_url
from ml_assets_tests.serving.conftest import running

pytestmark = pytest.mark.slow
NAME = "churn_model"
QUICK = {"ops": {"churn__candidate_model": {"config": {"search_iterations": 1}}}}


@pytest.fixture
def mlflow_server(tmp_path):
    """`mlflow server` on a scratch PostgreSQL database, artifacts served from its own folder."""
    with scratch_database("ml_assets_mlflow") as database:
        store = tmp_path / "server-artifacts"
        with tracking_server(tmp_path, sqlalchemy_url(database), store.as_uri()) as url:
            yield {"url": url, "store": store, "database": database}


def test_training_gate_service_and_exporter_work_over_http_only(tmp_path, mlflow_server, mlflow_template):
    root = tmp_path / "project"
    with project_env(root), _environ({"MLFLOW_TRACKING_URI": mlflow_server["url"],
                                      "ML_ASSETS_MLFLOW_ARTIFACTS": None}):
        from ml_examples.problems import example_problems

        from ml_assets.definitions import build_definitions
        from ml_assets.ops.exporter import pipeline_registry
        from ml_assets.ops.location import location_problems

        defs = build_definitions(example_problems())
        mlflow = defs.resources["mlflow"]
        write_world(WorldConfig(start_date=START, rows_per_day=200, population=2_000, label_delay_days=3), 12,
                    root / "data" / "landing")
        with dg.DagsterInstance.get() as instance:
            for sensor in ("customers_landing_sensor", "labels_landing_sensor"):
                tick_sensor(defs, sensor, instance, ticks=2)
            train = defs.resolve_job_def("train_churn_job")
            first = train.execute_in_process(instance=instance, run_config=QUICK, raise_on_error=False)
            assert first.success, [e.message for e in first.all_events if e.is_failure]
            checks = {e.event_specific_data.check_name: e.event_specific_data for e in first.all_events
                      if e.event_type_value == "ASSET_CHECK_EVALUATION"}
            assert checks["servable"].passed  # the canary loaded the version over HTTP in a fresh process
            registry_client = mlflow.client()
            assert alias_version(registry_client, NAME, CHAMPION) == "1"
            experiment = registry_client.get_experiment_by_name(mlflow.problem_experiment("churn"))
            assert experiment.artifact_location.startswith("mlflow-artifacts:")
            assert list(mlflow_server["store"].rglob("MLmodel"))  # the model's files sit on the server side
            assert count_rows(mlflow_server["database"], "model_versions") == 1

            with running(ServiceConfig(problem="churn", tracking_uri=mlflow_server["url"], poll_seconds=0.2,
                                       log_dir=tmp_path / "log")) as http:
                assert http.get("/health").json()["champion"]["version"] == "1"
                keys = [dg.AssetKey(["churn", k]) for k in ("candidate_model", "evaluation", "champion")]
                second = train.execute_in_process(instance=instance, raise_on_error=False, asset_selection=keys,
                                                  run_config={"ops": {"churn__candidate_model": {"config": {
                                                      "search_iterations": 1, "seed": 1}}}})
                assert second.success, [e.message for e in second.all_events if e.is_failure]
                assert alias_version(registry_client, NAME, CHAMPION) == "2"
                deadline = time.monotonic() + 60
                while http.get("/health").json()["champion"]["version"] != "2":
                    assert time.monotonic() < deadline, "the service did not swap to v2"
                    time.sleep(0.2)

            exported = generate_latest(pipeline_registry(defs, location_problems(defs), lambda: instance)).decode()
        assert 'ml_assets_champion_version{problem="churn"} 2.0' in exported
    local = root / "data" / "mlflow"
    assert not local.exists() or not any(local.rglob("*")), f"files written locally: {list(local.rglob('*'))}"
    assert not list(Path(root).rglob("mlflow.db")) and not list(Path(root).rglob("mlruns"))

"""The training job on Celery (ML_ASSETS_EXECUTOR=celery) over the machine's real RabbitMQ: two
`dagster-celery worker start` processes on a virtual host of the test's own, a persistent instance
shared through DAGSTER_HOME, and the run launched as a user would (`dagster job execute`). The
candidate families must run in different worker processes and give exactly what an in-process run
with the same seed gives: the same family scores and parameters, the same winner, the same model."""

import hashlib
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import dagster as dg
import pytest
import yaml
from ml_examples.bundled import WINE
from ml_examples.definitions import example_definitions
from mlflow.tracking import MlflowClient

from ml_assets.automation.executors import BROKER_VARIABLE, EXECUTOR_VARIABLE
from ml_assets.mlflow.resource import MlflowResource
from ml_assets_tests.conftest import project_env
from ml_assets_tests.daemon import _stop, wait_for
from ml_assets_tests.rabbitmq import broker_url, scratch_vhost

pytestmark = pytest.mark.slow
ROOT, BIN = Path(__file__).resolve().parents[1], Path(sys.executable).parent
JOB = "train_wine_job"  # a bundled problem: training needs no ingestion first
CONFIG = {"ops": {"wine__candidate_model": {"config": {"seed": 3, "search_iterations": 2}}}}
FAMILIES = {c.name for c in WINE.training.candidates}


def _ready(process: subprocess.Popen, log: Path, name: str) -> bool:
    """The worker said `<name>@<host> ready.`, or it died (then the caller shows its log)."""
    text = log.read_text(errors="replace")
    return process.poll() is not None or (f"{name}@" in text and " ready." in text)


@contextmanager
def celery_workers(names: list[str], folder: Path, env: dict) -> Iterator[None]:
    """One `dagster-celery worker start` per name, one pool process each (so each worker is one
    process that runs steps), each in its own process group; stopped, group and all, on exit."""
    # `dagster-celery worker start` opens the instance: two workers creating one new SQLite storage at
    # once would both stamp its schema (alembic then finds two heads), so it exists before they start
    with dg.DagsterInstance.get():
        pass
    with ExitStack() as stack:
        started = []
        for name in names:
            log = folder / f"{name}.log"
            out = stack.enter_context(log.open("wb"))
            process = subprocess.Popen(
                [str(BIN / "dagster-celery"), "worker", "start", "-A", "dagster_celery.app", "-y",
                 str(ROOT / "deploy" / "celery.yaml"), "-n", name, "--", "--concurrency=1"],
                cwd=folder, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
            stack.callback(_stop, process)
            started.append((process, log, name))
        for process, log, name in started:  # all listen before the run starts, or one could take every step
            wait_for(lambda p=process, f=log, n=name: _ready(p, f, n), 300, f"celery worker {name} ready", log)
            assert process.poll() is None, log.read_text(errors="replace")[-3000:]
        yield


def family_outputs(instance: dg.DagsterInstance, run_id: str) -> dict[str, dict]:
    """Each family step's output metadata (scores, parameters, the process that ran it) from the
    event log, with the Celery worker that took the step when there was one."""
    families, workers = {}, {}
    for record in instance.all_logs(run_id):
        event = record.dagster_event
        if event is None or ".wine__search_" not in (event.step_key or ""):
            continue
        if event.event_type == dg.DagsterEventType.STEP_OUTPUT:
            meta = {k: v.value for k, v in event.step_output_data.metadata.items()}
            families[meta["candidate"]] = meta
        elif event.event_type == dg.DagsterEventType.ENGINE_EVENT and "Celery worker" in event.engine_event_data.metadata:
            workers[event.step_key] = event.engine_event_data.metadata["Celery worker"].value
    for meta in families.values():
        meta["celery_worker"] = workers.get(f"wine__candidate_model.wine__search_{meta['candidate']}")
    return families


def result_of(instance: dg.DagsterInstance, run_id: str, mlflow: MlflowResource, test_rows) -> dict:
    """What must not depend on the executor: family scores and parameters, the winner, the data it
    was trained on, and a hash of the registered model's predictions on the test split."""
    families = family_outputs(instance, run_id)
    candidate = next(e.asset_materialization for e in instance.all_logs(run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION)
                     if e.asset_materialization.asset_key == dg.AssetKey(["wine", "candidate_model"]))
    training = next(e.asset_materialization for e in instance.all_logs(run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION)
                    if e.asset_materialization.asset_key == dg.AssetKey(["wine", "training_set"]))
    pipeline = mlflow.load_version(WINE.registered_model_name, candidate.metadata["version"].value).pipeline
    return {"families": {name: (m["cv_score"], m["validation_score"], m["params"]) for name, m in families.items()},
            "best": candidate.metadata["best_candidate"].value, "data_hash": training.metadata["data_hash"].value,
            "validation_score": candidate.metadata["validation_score"].value,
            "model_hash": hashlib.sha256(pipeline.predict_proba(test_rows).tobytes()).hexdigest()}


def test_families_run_on_different_celery_workers_with_the_in_process_result(tmp_path, mlflow_template):
    with scratch_vhost() as vhost, project_env(tmp_path, mlflow_template):
        env = {**os.environ, EXECUTOR_VARIABLE: "celery", BROKER_VARIABLE: broker_url(vhost),
               "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}  # the worker starts `celery` by name
        config = tmp_path / "run.yaml"
        config.write_text(yaml.safe_dump(CONFIG))
        with celery_workers(["w1", "w2"], tmp_path, env):
            done = subprocess.run([str(BIN / "dagster"), "job", "execute", "-m", "ml_examples.definitions", "-j", JOB,
                                   "-c", str(config)], cwd=tmp_path, env=env, capture_output=True, text=True,
                                  timeout=1800)
        assert done.returncode == 0, done.stderr[-4000:]

        # in process, as by default: this process has no ML_ASSETS_EXECUTOR
        job = example_definitions().resolve_job_def(JOB)
        assert job.executor_def is dg.in_process_executor
        with dg.DagsterInstance.get() as instance:  # the instance the workers wrote to
            [celery_run] = instance.get_runs(filters=dg.RunsFilter(job_name=JOB))
            assert celery_run.status == dg.DagsterRunStatus.SUCCESS
            local = job.execute_in_process(instance=instance, run_config=CONFIG)
            assert local.success

            on_celery = family_outputs(instance, celery_run.run_id)
            assert set(on_celery) == FAMILIES
            # the families ran at once in two worker processes, each on its own Celery worker
            assert len({m["worker_pid"] for m in on_celery.values()}) == len(FAMILIES)
            assert {m["celery_worker"].split("@")[0] for m in on_celery.values()} == {"w1", "w2"}
            assert all(m["worker_pid"] != os.getpid() for m in on_celery.values())
            assert {m["worker_pid"] for m in family_outputs(instance, local.run_id).values()} == {os.getpid()}

            mlflow = MlflowResource()  # the project's store, which both runs used
            test_rows = local.output_for_node("wine__training_set").query("split == 'test'")[WINE.feature_columns]
            expected = result_of(instance, local.run_id, mlflow, test_rows)
            assert result_of(instance, celery_run.run_id, mlflow, test_rows) == expected
            assert set(expected["families"]) == FAMILIES

        # one MLflow run for the Celery run, with a child per family, though its steps ran in 2 processes
        client = MlflowClient(mlflow.get_tracking_uri())
        experiments = [e.experiment_id for e in client.search_experiments()]
        [parent] = client.search_runs(experiments, f"tags.dagster_run_id = '{celery_run.run_id}'")
        children = client.search_runs(experiments, f"tags.mlflow.parentRunId = '{parent.info.run_id}'")
        assert parent.info.status == "FINISHED" and "test_primary_f1_macro" in parent.data.metrics
        assert sorted(c.data.params["candidate"] for c in children) == sorted(FAMILIES)

"""The training job's executor is configuration: in process unless ML_ASSETS_EXECUTOR says celery,
and the workers' config file is one the Celery executor accepts. (The Celery run itself, on real
RabbitMQ and workers, is test_celery.py.)"""

from pathlib import Path

import dagster as dg
import pytest
from dagster_celery.cli import get_validated_config
from ml_examples.bundled import WINE

from ml_assets.automation.executors import BROKER_VARIABLE, EXECUTOR_VARIABLE, training_executor
from ml_assets.definitions import build_definitions
from ml_assets_tests.conftest import _environ

WORKERS_CONFIG = Path(__file__).resolve().parents[1] / "deploy" / "celery.yaml"
BROKER = "pyamqp://someone:secret@broker.internal:5672/training"


def _train_executor(**env: str | None) -> dg.ExecutorDefinition:
    with _environ({EXECUTOR_VARIABLE: None, BROKER_VARIABLE: None, **env}):
        return build_definitions([WINE]).resolve_job_def("train_wine_job").executor_def


def test_training_runs_in_process_by_default():
    assert _train_executor() is dg.in_process_executor
    assert _train_executor(ML_ASSETS_EXECUTOR="in_process") is dg.in_process_executor


def test_celery_is_chosen_by_the_environment_with_the_broker_by_reference():
    executor = _train_executor(ML_ASSETS_EXECUTOR="celery", ML_ASSETS_CELERY_BROKER=BROKER)
    assert executor.name == "celery"
    # the URL (and its password) is read when a run starts, not kept in the definition
    with _environ({BROKER_VARIABLE: "pyamqp://guest:guest@127.0.0.1:5672/other"}):
        resolved = executor.config_schema.resolve_config({})
    assert resolved.success and resolved.value["config"]["broker"] == "pyamqp://guest:guest@127.0.0.1:5672/other"


def test_an_explicit_executor_wins_over_the_environment():
    with _environ({EXECUTOR_VARIABLE: "celery", BROKER_VARIABLE: None}):
        job = build_definitions([WINE], training_executor=dg.in_process_executor).resolve_job_def("train_wine_job")
    assert job.executor_def is dg.in_process_executor


@pytest.mark.parametrize(("env", "message"), [
    ({EXECUTOR_VARIABLE: "celery", BROKER_VARIABLE: None}, "ML_ASSETS_CELERY_BROKER is not set"),
    ({EXECUTOR_VARIABLE: "dask", BROKER_VARIABLE: None}, "ML_ASSETS_EXECUTOR='dask' is not an executor here"),
])
def test_a_bad_setting_says_which_variable_and_what_to_set(env, message):
    with _environ(env), pytest.raises(ValueError, match=message):
        training_executor()


def test_the_workers_config_is_the_executors_own_with_the_broker_from_the_environment():
    """What `dagster-celery worker start -y deploy/celery.yaml` reads (make celery-workers)."""
    with _environ({BROKER_VARIABLE: BROKER}):
        config = get_validated_config(str(WORKERS_CONFIG))
    assert config["broker"] == BROKER
    assert config["config_source"] == {"task_acks_late": True}  # one step per worker at a time

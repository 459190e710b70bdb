"""Shared fixtures: a small simulated world under tmp_path and resources pointing at it."""

import os
import shutil
from contextlib import contextmanager
from datetime import date
from pathlib import Path

import dagster as dg
import pytest
from ml_examples.churn.simulation import WorldConfig, write_world
from ml_examples.problems import example_problems

from ml_assets.definitions import build_definitions
from ml_assets.io import JsonIOManager, LandingZoneResource, ParquetIOManager
from ml_assets.mlflow.resource import MlflowResource

START = date(2026, 1, 1)


@pytest.fixture
def world() -> WorldConfig:
    return WorldConfig(start_date=START, rows_per_day=200, population=2_000, label_delay_days=3)


@pytest.fixture
def landing(tmp_path, world):
    root = tmp_path / "landing"
    write_world(world, 5, root)
    return root


MLFLOW_VARIABLES = ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI", "ML_ASSETS_MLFLOW_ARTIFACTS")


@contextmanager
def _environ(variables: dict[str, str | None]):
    """Set (or, for None, unset) environment variables for the block."""
    saved = {k: os.environ.get(k) for k in variables}
    for key, value in variables.items():
        os.environ.pop(key, None) if value is None else os.environ.__setitem__(key, value)
    try:
        yield
    finally:
        for key, value in saved.items():
            os.environ.pop(key, None) if value is None else os.environ.__setitem__(key, value)


@contextmanager
def project_env(root: Path, template: Path | None = None):
    """A whole project home under `root` (data, Dagster home, MLflow store), configured only
    through ML_ASSETS_HOME and DAGSTER_HOME: no MLflow variable is set (any inherited one is unset),
    so everything must find the project's store (data/mlflow) through the platform's settings."""
    home = root / ".dagster_home"
    home.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(Path(__file__).resolve().parents[1] / "deploy" / "dagster.yaml", home / "dagster.yaml")
    (root / "data" / "mlflow").mkdir(parents=True, exist_ok=True)
    if template is not None:
        shutil.copyfile(template, root / "data" / "mlflow" / "mlflow.db")
    with _environ({"ML_ASSETS_HOME": str(root), "ML_ASSETS_DATA_DIR": None, "DAGSTER_HOME": str(home),
                   "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false", **dict.fromkeys(MLFLOW_VARIABLES)}):
        from ml_assets import settings

        assert settings.mlflow_tracking_uri() == f"sqlite:///{root.resolve() / 'data' / 'mlflow' / 'mlflow.db'}"
        yield settings.mlflow_tracking_uri()


@contextmanager
def mlflow_env(root: Path, template: Path | None = None):
    """Point the platform (and MLflow) at a store under `root`; a copied template skips migrations."""
    root.mkdir(parents=True, exist_ok=True)
    if template is not None:
        shutil.copyfile(template, root / "mlflow.db")
    env = {"MLFLOW_TRACKING_URI": f"sqlite:///{root / 'mlflow.db'}",
           "ML_ASSETS_MLFLOW_ARTIFACTS": (root / "artifacts").as_uri()}
    with _environ(env):
        yield env["MLFLOW_TRACKING_URI"]


@pytest.fixture(scope="session")
def mlflow_store(tmp_path_factory):
    """A real MLflow store (SQLite + local artifacts) per test worker; the schema is built once."""
    with mlflow_env(tmp_path_factory.mktemp("mlflow")) as uri:
        from mlflow.tracking import MlflowClient

        MlflowClient(uri).search_experiments()  # creates the schema
        yield uri


@pytest.fixture(scope="session")
def mlflow_template(tmp_path_factory) -> Path:
    """An empty, migrated MLflow database to copy (migrating a new one costs seconds)."""
    from mlflow.tracking import MlflowClient

    path = tmp_path_factory.mktemp("mlflow_template") / "mlflow.db"
    MlflowClient(f"sqlite:///{path}").search_experiments()
    return path


@pytest.fixture
def fresh_mlflow(tmp_path, mlflow_template):
    """An empty registry of the test's own: aliases like `champion` cannot leak between tests."""
    with mlflow_env(tmp_path / "mlflow", mlflow_template) as uri:
        yield uri


@pytest.fixture
def resources(tmp_path, landing, mlflow_store):
    return {"io_manager": ParquetIOManager(base_path=str(tmp_path / "warehouse")),
            "json_io_manager": JsonIOManager(base_path=str(tmp_path / "warehouse")),
            "landing": LandingZoneResource(landing_dir=str(landing), archive_dir=str(tmp_path / "raw")),
            "mlflow": MlflowResource(tracking_uri=mlflow_store, experiment_name="tests")}


@pytest.fixture
def defs(resources) -> dg.Definitions:
    return build_definitions(example_problems(), resources)


@pytest.fixture
def instance():
    with dg.instance_for_test() as inst:  # a real SQLite-backed instance in a temp dir
        yield inst


@pytest.fixture(scope="session")
def s3(tmp_path_factory):
    """A local S3 server (moto's, over real HTTP) with a bucket of the session's own. Credentials and
    endpoint reach the code only through the environment, as in production (AWS_ENDPOINT_URL)."""
    from ml_assets_tests.s3 import CREDENTIALS, S3, drop_bucket, new_bucket, s3_server

    with s3_server(tmp_path_factory.mktemp("s3") / "moto.log") as url, _environ({**CREDENTIALS, "AWS_ENDPOINT_URL": url}):
        import s3fs

        fs = s3fs.S3FileSystem()
        bucket = new_bucket(fs)
        try:
            yield S3(url, bucket, fs)
        finally:
            drop_bucket(fs, bucket)

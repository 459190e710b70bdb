"""Shared fixtures: a small simulated world under tmp_path and resources pointing at it."""

import os
from datetime import date

import dagster as dg
import pytest

from ml_assets.definitions import build_definitions
from ml_assets.resources import JsonIOManager, LandingZoneResource, ParquetIOManager
from ml_assets.resources.mlflow import default_mlflow_resource
from ml_assets.simulation import WorldConfig, write_world

START = date(2026, 1, 1)


@pytest.fixture
def world() -> WorldConfig:
    return WorldConfig(start_date=START, rows_per_day=200, population=2_000, label_delay_days=3)


@pytest.fixture
def landing(tmp_path, world):
    root = tmp_path / "landing"
    write_world(world, 5, root)
    return root


@pytest.fixture(scope="session")
def mlflow_store(tmp_path_factory):
    """A real MLflow store (SQLite + local artifacts) per test worker; the schema is built once."""
    root = tmp_path_factory.mktemp("mlflow")
    env = {"MLFLOW_TRACKING_URI": f"sqlite:///{root / 'mlflow.db'}",
           "ML_ASSETS_MLFLOW_ARTIFACTS": (root / "artifacts").as_uri()}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    yield env["MLFLOW_TRACKING_URI"]
    for key, value in saved.items():
        os.environ.pop(key) if value is None else os.environ.__setitem__(key, value)


@pytest.fixture
def resources(tmp_path, landing, mlflow_store):
    return {"io_manager": ParquetIOManager(base_path=str(tmp_path / "warehouse")),
            "json_io_manager": JsonIOManager(base_path=str(tmp_path / "warehouse")),
            "landing": LandingZoneResource(landing_dir=str(landing), archive_dir=str(tmp_path / "raw")),
            "mlflow": default_mlflow_resource("tests")}


@pytest.fixture
def defs(resources) -> dg.Definitions:
    return build_definitions(resources)


@pytest.fixture
def instance():
    with dg.instance_for_test() as inst:  # a real SQLite-backed instance in a temp dir
        yield inst

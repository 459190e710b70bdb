"""Shared fixtures: a small simulated world under tmp_path and resources pointing at it."""

from datetime import date

import dagster as dg
import pytest

from ml_assets.definitions import build_definitions
from ml_assets.resources import JsonIOManager, LandingZoneResource, ParquetIOManager
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


@pytest.fixture
def resources(tmp_path, landing):
    return {"io_manager": ParquetIOManager(base_path=str(tmp_path / "warehouse")),
            "json_io_manager": JsonIOManager(base_path=str(tmp_path / "warehouse")),
            "landing": LandingZoneResource(landing_dir=str(landing), archive_dir=str(tmp_path / "raw"))}


@pytest.fixture
def defs(resources) -> dg.Definitions:
    return build_definitions(resources)


@pytest.fixture
def instance():
    with dg.instance_for_test() as inst:  # a real SQLite-backed instance in a temp dir
        yield inst

"""One code location, several problems: no name collides, shared datasets are ingested once, and a
clash between two problems is reported at load time."""

import sys
from pathlib import Path

import dagster as dg
import pytest
from ml_examples.churn.problem import CHURN, LABELS

from ml_assets.definitions import build_definitions
from ml_assets.problem import DatasetSpec, SpecError

USER_PROJECT = str(Path(__file__).parent / "user_project")


@pytest.fixture
def loans_importable():
    sys.path.insert(0, USER_PROJECT)
    yield
    sys.path.remove(USER_PROJECT)


# Churn's customers, read by a second problem with its own name and gate.
CHURN_LITE = CHURN.evolve(name="churn_lite", metric_floor=0.6)


def test_two_landed_problems_and_a_static_one_share_a_location(loans_importable):
    """Failed on the old main: a second landed problem's DriftReport type collided, and only churn's
    datasets were ingested."""
    defs = build_definitions(["ml_examples.churn.problem:CHURN", "loans_project.problems:LOANS",
                              "ml_examples.bundled:WINE"])
    job = defs.resolve_implicit_global_asset_job_def()  # resolves every asset and Dagster type together
    assert {"DriftReport", "ChurnServedPredictions", "LoansServedPredictions"} <= {
        t.display_name for t in job.all_dagster_types()}
    for name in ("ingest_customers_job", "ingest_applications_job", "ingest_outcomes_job", "train_loans_job",
                 "score_loans_job", "train_wine_job"):
        defs.resolve_job_def(name)
    assert {"loans_drift_retrain_sensor", "churn_drift_retrain_sensor", "applications_landing_sensor"} <= {
        s.name for s in defs.sensors}


def test_a_dataset_shared_by_two_problems_is_ingested_once_for_both():
    defs = build_definitions([CHURN, CHURN_LITE])
    keys = defs.resolve_job_def("ingest_customers_job").asset_layer.selected_asset_keys
    assert {dg.AssetKey(["churn", "features"]), dg.AssetKey(["churn_lite", "features"]),
            dg.AssetKey("validated_customers")} <= keys
    assert [s.name for s in defs.sensors].count("customers_landing_sensor") == 1


def test_two_datasets_under_one_name_are_refused_naming_both_problems():
    other = CHURN.evolve(ref="x:y", name="other", labels=DatasetSpec("labels", LABELS.model, "churned"))
    with pytest.raises(SpecError, match="problems churn and other both name a dataset 'labels'"):
        build_definitions([CHURN, other])


def test_two_problems_with_one_name_are_refused():
    with pytest.raises(SpecError, match="two problems are named 'churn'"):
        build_definitions([CHURN, CHURN.evolve(metric_floor=0.5)])

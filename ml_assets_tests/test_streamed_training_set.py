"""The training set asset streams its window through Dagster: capped by training.max_training_rows,
it records what it saw and used, and the reference profile then covers every learned row."""

import dagster as dg
import pandas as pd
import pytest
from ml_examples.churn.problem import CHURN

from ml_assets.assets.models import build_model_assets
from ml_assets.assets.monitoring import learned_profile
from ml_assets.core.lineage import frame_hash
from ml_assets.io import ParquetIOManager
from ml_assets.io.io_managers import write_parquet
from ml_assets_tests.core.churn_data import churn_frames

DAYS = dg.DailyPartitionsDefinition(start_date="2026-01-01", end_date="2026-01-20")


@pytest.fixture
def warehouse(tmp_path, monkeypatch):
    """12 days of features and their labels (landing 3 days later), stored as the pipeline stores them."""
    monkeypatch.setenv("ML_ASSETS_WAREHOUSE", str(tmp_path))
    features, labels = churn_frames(days=12, rows=300)
    for day, part in features.groupby("snapshot_date"):
        write_parquet(part, tmp_path / "churn" / "features" / f"{day:%Y-%m-%d}.parquet")
    for day, part in labels.groupby("snapshot_date"):
        write_parquet(part, tmp_path / "validated_labels" / f"{day + pd.Timedelta(days=3):%Y-%m-%d}.parquet")
    return tmp_path


def _training_set(warehouse, spec, seed: int = 0):
    assets = [a for a in build_model_assets(spec, DAYS) if a.key.path[-1] in ("features", "training_set")]
    upstream = [dg.AssetSpec(f"validated_{name}", partitions_def=DAYS) for name in ("customers", "labels")]
    result = dg.materialize([*assets, *upstream], selection=[dg.AssetKey(["churn", "training_set"])],
                            resources={"io_manager": ParquetIOManager(base_path=str(warehouse))},
                            run_config={"ops": {"churn__training_set": {"config": {"seed": seed}}}})
    event = result.asset_materializations_for_node("churn__training_set")[0]
    return result.output_for_node("churn__training_set"), {k: v.value for k, v in event.metadata.items()}


def test_a_capped_training_set_records_rows_seen_and_used_and_profiles_every_row(warehouse):
    frame, meta = _training_set(warehouse, CHURN.evolve(max_training_rows=1_200), seed=3)
    assert len(frame) == meta["dagster/row_count"] == 1_200 and meta["rows_seen"] == 3_600
    assert (meta["rows_seen_train"], meta["rows_seen_validation"], meta["rows_seen_test"]) == (1_800, 900, 900)
    assert meta["sample_seed"] == 3 and meta["max_training_rows"] == 1_200
    assert set(meta["class_balance_seen_train"]) == {"0", "1"} and len(meta["input_days"]) == 12
    profile, source = learned_profile(CHURN, frame)
    assert profile.rows == 2_700 and source.startswith("window")  # not the 900 sampled train + validation rows
    assert meta["window_profile"].endswith(f"{frame_hash(frame)}.npz")
    again, _ = _training_set(warehouse, CHURN.evolve(max_training_rows=1_200), seed=3)
    pd.testing.assert_frame_equal(again, frame)  # deterministic per seed


def test_without_a_cap_the_asset_keeps_every_row_and_profiles_the_training_set(warehouse):
    frame, meta = _training_set(warehouse, CHURN)
    assert len(frame) == meta["rows_seen"] == 3_600 and meta["max_training_rows"] == "all"
    assert "window_profile" not in meta and "sample_seed" not in meta
    profile, source = learned_profile(CHURN, frame)
    assert (profile.rows, source) == (2_700, "training set")

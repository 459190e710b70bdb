"""Ingestion with the landing zone, the raw archive and the warehouse all on an S3-compatible server
(moto over HTTP, through s3fs): the landing sensor's tick lists the bucket, each run archives,
validates, quarantines and writes Parquet to S3, and bad files are blocked and reported as on disk."""

import hashlib
import io

import dagster as dg
import pandas as pd
import pytest
from ml_examples.churn.simulation import write_world
from ml_examples.problems import example_problems

from ml_assets.definitions import build_definitions
from ml_assets.io import JsonIOManager, LandingZoneResource, ParquetIOManager
from ml_assets.mlflow.resource import MlflowResource
from ml_assets.testing.runner import tick_sensor

pytestmark = pytest.mark.slow
DAYS = [f"2026-01-0{d}" for d in range(1, 6)]


def _spoil(text: str, column: str, value: str, share: float) -> str:
    frame = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)
    frame.loc[: int(len(frame) * share) - 1, column] = value
    return frame.to_csv(index=False)


def _failure(result) -> str:
    """What the failed step told the user (its dg.Failure's description)."""
    [failure] = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    return failure.event_specific_data.error.message


def _parquet(s3, url: str) -> pd.DataFrame:
    with s3.fs.open(url, "rb") as fh:
        return pd.read_parquet(fh)


def test_a_landed_day_is_ingested_from_s3_to_s3_and_bad_files_are_reported(s3, tmp_path, world, instance, mlflow_store):
    root = s3.folder()
    local = tmp_path / "upstream"
    write_world(world, len(DAYS), local)
    landed = {}
    for path in sorted((local / "customers").glob("*.csv")):
        text = path.read_text()
        if path.name.endswith("01-03.csv"):  # half the rows with a non-numeric charge: a blocked batch
            text = _spoil(text, "monthly_charges", "abc", 0.5)
        data = b"PK\x03\x04 a zipped export" if path.name.endswith("01-04.csv") else text.encode()
        landed[path.name] = data
        s3.fs.pipe(f"{root}/landing/customers/{path.name}", data)
    resources = {"io_manager": ParquetIOManager(base_path=f"{root}/warehouse"),
                 "json_io_manager": JsonIOManager(base_path=f"{root}/warehouse"),
                 "landing": LandingZoneResource(landing_dir=f"{root}/landing", archive_dir=f"{root}/raw"),
                 "mlflow": MlflowResource(tracking_uri=mlflow_store, experiment_name="tests")}
    defs = build_definitions(example_problems(), resources)

    results, cursor, _ = tick_sensor(defs, "customers_landing_sensor", instance, ticks=2)
    runs = {r.dagster_run.tags["dagster/partition"]: r for r in results}
    assert sorted(runs) == DAYS
    assert {day for day, r in runs.items() if r.success} == {"2026-01-01", "2026-01-02", "2026-01-05"}

    for day in ("2026-01-01", "2026-01-02", "2026-01-05"):
        name = f"customers_{day}.csv"
        sha = hashlib.sha256(landed[name]).hexdigest()
        assert s3.fs.cat(f"{root}/raw/customers/{day}/{sha[:16]}_{name}") == landed[name]  # archived unchanged
        valid = _parquet(s3, f"{root}/warehouse/validated_customers/{day}.parquet")
        assert len(valid) > 0 and set(valid["snapshot_date"].dt.strftime("%Y-%m-%d")) == {day}
        assert len(valid) + len(_parquet(s3, f"{root}/warehouse/quarantined_customers/{day}.parquet")) \
            == landed[name].decode().count("\n") - 1  # every record is in one of the two tables
        assert s3.fs.cat(f"{root}/landing/customers/{name}") == landed[name]  # the landing zone only read

    blocked = runs["2026-01-03"]
    message = _failure(blocked)
    assert "validated_customers 2026-01-03 is BLOCKED" in message and "quarantine_rate" in message
    assert (f"landing file: {root}/landing/customers/customers_2026-01-03.csv "
            f"(archive copy: {root}/raw/customers/2026-01-03/") in message
    quarantine = _parquet(s3, f"{root}/warehouse/quarantined_customers/2026-01-03.parquet")
    assert len(quarantine) >= 100 and quarantine["quarantine_reason"].str.contains("monthly_charges").sum() >= 100
    assert set(quarantine["source_file"]) == {"customers_2026-01-03.csv"}
    assert not s3.fs.exists(f"{root}/warehouse/validated_customers/2026-01-03.parquet")

    unreadable = _failure(runs["2026-01-04"])
    assert f"{root}/landing/customers/customers_2026-01-04.csv: the file is a zip archive, not CSV text" in unreadable
    assert f"(archive copy: {root}/raw/customers/2026-01-04/" in unreadable

    [inventory] = instance.fetch_materializations(dg.AssetKey("customers_landing_inventory"), limit=1).records
    assert inventory.asset_materialization.metadata["folder"].value == f"{root}/landing/customers"
    again, _, skipped = tick_sensor(defs, "customers_landing_sensor", instance, cursor, ticks=1)
    assert again == [] and any("no new or changed complete customers files" in s for s in skipped)
    assert not list(tmp_path.glob("warehouse")) and not list(tmp_path.glob("raw"))  # nothing written locally

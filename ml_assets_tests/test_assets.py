"""Ingestion assets materialized through Dagster on a temporary instance."""

import gzip
import hashlib

import dagster as dg
import pandas as pd
from ml_examples.churn.simulation import WorldConfig, parse_scenario, write_world

from ml_assets_tests.conftest import START


def _ingest(defs, instance, day, dataset="customers"):
    job = defs.resolve_job_def(f"ingest_{dataset}_job")
    return job.execute_in_process(instance=instance, partition_key=day, raise_on_error=False)


def _checks(result):
    return {e.event_specific_data.check_name: e.event_specific_data.passed
            for e in result.all_events if e.event_type_value == "ASSET_CHECK_EVALUATION"}


def _metadata(result, key):
    [event] = [e for e in result.get_asset_materialization_events()
               if e.event_specific_data.materialization.asset_key == dg.AssetKey(key)]
    return {k: getattr(v, "value", v) for k, v in event.event_specific_data.materialization.metadata.items()}


def test_a_clean_day_lands_validates_and_passes_its_checks(defs, instance, tmp_path, landing):
    result = _ingest(defs, instance, "2026-01-02")
    assert result.success
    assert _checks(result) == {"row_accounting": True, "quarantine_rate": True, "duplicate_ids": True}
    raw = _metadata(result, "raw_customers")
    source = landing / "customers" / "customers_2026-01-02.csv"
    assert raw["sha256"] == {source.name: hashlib.sha256(source.read_bytes()).hexdigest()}
    validated = _metadata(result, "validated_customers")
    quarantined = _metadata(result, "quarantined_customers")
    assert validated["rows_in"] == 200 == validated["dagster/row_count"] + quarantined["dagster/row_count"]
    stored = pd.read_parquet(tmp_path / "warehouse" / "validated_customers" / "2026-01-02.parquet")
    assert len(stored) == validated["dagster/row_count"]
    assert next(iter((tmp_path / "raw" / "customers" / "2026-01-02").iterdir())).read_bytes() == source.read_bytes()


def test_labels_ingest_for_the_day_they_arrive(defs, instance):
    result = _ingest(defs, instance, "2026-01-04", dataset="labels")  # delay 3: labels of Jan 1
    assert result.success and _metadata(result, "validated_labels")["dagster/row_count"] == 200


def test_a_mostly_bad_batch_is_blocked_and_only_its_quarantine_is_stored(defs, instance, landing, tmp_path):
    cfg = WorldConfig(start_date=START, rows_per_day=200, population=2_000,
                      scenarios=(parse_scenario("quality_incident@0"),))
    write_world(cfg, 1, landing)
    result = _ingest(defs, instance, "2026-01-01")
    assert not result.success
    assert _checks(result) == {"row_accounting": True, "quarantine_rate": False, "duplicate_ids": True}
    quarantine = pd.read_parquet(tmp_path / "warehouse" / "quarantined_customers" / "2026-01-01.parquet")
    assert quarantine["quarantine_reason"].str.startswith("monthly_charges:").mean() > 0.9
    assert not (tmp_path / "warehouse" / "validated_customers" / "2026-01-01.parquet").exists()


def test_quarantine_threshold_is_config(defs, instance, landing):
    cfg = WorldConfig(start_date=START, rows_per_day=200, population=2_000,
                      scenarios=(parse_scenario("quality_incident@0"),))
    write_world(cfg, 1, landing)
    job = defs.resolve_job_def("ingest_customers_job")
    result = job.execute_in_process(instance=instance, partition_key="2026-01-01", run_config={
        "ops": {"validate_customers": {"config": {"max_quarantine_rate": 0.9}}}})
    assert result.success and _checks(result)["quarantine_rate"]


def test_a_broken_file_fails_the_run_with_file_problem_and_fix(defs, instance, landing, tmp_path):
    path = landing / "customers" / "customers_2026-01-03.csv"
    path.write_text(path.read_text().replace("monthly_charges", "MonthlyCharges", 1))
    before = path.read_bytes()
    result = _ingest(defs, instance, "2026-01-03")
    assert not result.success
    [failure] = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    message = failure.event_specific_data.error.message
    archive = next((tmp_path / "raw" / "customers" / "2026-01-03").iterdir())
    assert f"{path}: missing required column(s) 'monthly_charges'" in message  # the file the user dropped
    assert "Fix: restore the column names" in message and f"(archive copy: {archive})" in message
    assert path.read_bytes() == before


def _failure_message(result) -> str:
    [failure] = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    return failure.event_specific_data.error.message


def test_cr_only_line_endings_fail_with_the_landing_file_and_the_fix(defs, instance, landing):
    path = landing / "customers" / "customers_2026-01-03.csv"
    path.write_bytes(path.read_bytes().replace(b"\n", b"\r"))
    message = _failure_message(_ingest(defs, instance, "2026-01-03"))
    assert (f"{path}: the lines end with a carriage return only (classic Mac line endings). "
                              "Fix: save the file with LF or CRLF line endings. (archive copy: ") in message


def test_a_gzip_file_named_csv_says_to_rename_it(defs, instance, landing):
    path = landing / "customers" / "customers_2026-01-03.csv"
    path.write_bytes(gzip.compress(path.read_bytes()))
    message = _failure_message(_ingest(defs, instance, "2026-01-03"))
    assert f"{path}: the file is gzip-compressed, not CSV text. Fix: name it 'customers_2026-01-03.csv.gz'" in message


def test_a_csv_gz_file_is_ingested_like_its_csv(defs, instance, landing):
    path = landing / "customers" / "customers_2026-01-03.csv"
    packed = path.with_name(path.name + ".gz")
    packed.write_bytes(gzip.compress(path.read_bytes()))
    path.unlink()
    result = _ingest(defs, instance, "2026-01-03")
    assert result.success and _metadata(result, "validated_customers")["records_in"] == 200


def test_a_row_lost_in_parsing_fails_row_accounting_and_blocks_the_day(defs, instance, monkeypatch, tmp_path):
    from ml_assets.core import csv_input

    real = csv_input.pcsv.read_csv
    monkeypatch.setattr(csv_input.pcsv, "read_csv", lambda *a, **k: (t := real(*a, **k)).slice(0, t.num_rows - 1))
    result = _ingest(defs, instance, "2026-01-02")
    assert not result.success and _checks(result)["row_accounting"] is False
    assert "row_accounting failed: 1 record(s) missing: the file holds 200 records" in _failure_message(result)
    assert not (tmp_path / "warehouse" / "validated_customers" / "2026-01-02.parquet").exists()


def test_a_redelivery_under_a_second_name_is_reported_not_duplicates(defs, instance, landing):
    path = landing / "customers" / "customers_2026-01-02.csv"
    path.with_name("customers_2026-01-02_resend.csv").write_bytes(path.read_bytes())
    result = _ingest(defs, instance, "2026-01-02")
    assert result.success and _checks(result)["duplicate_ids"] is True
    validated = _metadata(result, "validated_customers")
    assert validated["redelivered_files"] == {"customers_2026-01-02_resend.csv": "customers_2026-01-02.csv"}
    assert validated["records_in"] == 200


def test_a_day_without_a_file_says_so(defs, instance):
    result = _ingest(defs, instance, "2026-02-01")
    [failure] = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    assert "No customers file landed for 2026-02-01" in failure.event_specific_data.error.message


def test_rematerializing_a_day_is_idempotent(defs, instance, tmp_path):
    first = _ingest(defs, instance, "2026-01-02")
    second = _ingest(defs, instance, "2026-01-02")
    assert first.success and second.success
    assert len(list((tmp_path / "raw" / "customers" / "2026-01-02").iterdir())) == 1


def test_offsets_reach_the_warehouse_as_utc_and_are_reported(defs, instance, landing, tmp_path):
    """The time-zone rule through the Dagster asset: +02:00 and Z are converted to UTC, counted in
    `utc_converted`, and the stored rows are the UTC instants."""
    path = landing / "customers" / "customers_2026-01-03.csv"
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    frame.loc[0, "snapshot_date"], frame.loc[1, "snapshot_date"] = "2026-01-04T01:30:00+02:00", "2026-01-03T08:00:00Z"
    frame.to_csv(path, index=False)
    result = _ingest(defs, instance, "2026-01-03")
    assert result.success
    mat = next(m for m in result.asset_materializations_for_node("validate_customers")
               if m.asset_key == dg.AssetKey("validated_customers"))
    assert mat.metadata["utc_converted"].value == {"snapshot_date": 2}
    stored = pd.read_parquet(tmp_path / "warehouse" / "validated_customers" / "2026-01-03.parquet")
    first = stored.set_index("customer_id").loc[frame.loc[0, "customer_id"], "snapshot_date"]
    assert str(first) == "2026-01-03 23:30:00"  # 01:30 at +02:00 is the evening before, in UTC

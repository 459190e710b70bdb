"""Blocked means blocked: a batch failing a blocking check reaches nothing downstream, in that run or
any later one, until the day is re-ingested and passes. Real Dagster instance, real IO managers."""

import json
import re

import dagster as dg
import pandas as pd
import pytest
from ml_examples.churn.simulation import WorldConfig, write_world

from ml_assets.testing.runner import tick_sensor
from ml_assets_tests.conftest import START

TRAINING_SET = dg.AssetKey(["churn", "training_set"])


def _spoil(path, column, value, share):
    """Overwrite `column` in the first `share` of the rows; returns the original text."""
    original = path.read_text()
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    frame.loc[: int(len(frame) * share) - 1, column] = value
    frame.to_csv(path, index=False)
    return original


def _events(result, kind):
    return [e for e in result.all_events if e.event_type_value == kind]


def _training_days(defs, instance, warehouse) -> set[str]:
    job = defs.resolve_implicit_global_asset_job_def()
    assert job.execute_in_process(instance=instance, asset_selection=[TRAINING_SET]).success
    frame = pd.read_parquet(warehouse / "churn" / "training_set.parquet")
    return set(frame["snapshot_date"].dt.strftime("%Y-%m-%d"))


def _ingest_all(defs, instance, cursors):
    runs = {}
    for name in ("customers", "labels"):
        results, cursors[name], _ = tick_sensor(defs, f"{name}_landing_sensor", instance, cursors.get(name), ticks=2)
        runs.update({(name, r.dagster_run.tags["dagster/partition"]): r for r in results})
    return runs


def test_failed_days_inside_a_training_window_never_reach_it_until_reingested(defs, instance, landing, tmp_path):
    write_world(WorldConfig(start_date=START, rows_per_day=200, population=2_000, label_delay_days=3), 13, landing)
    labels = _spoil(landing / "labels" / "labels_2026-01-08.csv", "churned", "2", 0.2)  # snapshots of Jan 5
    customers = _spoil(landing / "customers" / "customers_2026-01-06.csv", "monthly_charges", "abc", 0.5)
    cursors = {}
    runs = _ingest_all(defs, instance, cursors)
    assert not runs[("labels", "2026-01-08")].success and not runs[("customers", "2026-01-06")].success
    assert sum(r.success for r in runs.values()) == len(runs) - 2
    warehouse = tmp_path / "warehouse"
    assert not (warehouse / "validated_labels" / "2026-01-08.parquet").exists()  # the 80 valid rows: not stored
    assert not (warehouse / "churn" / "features" / "2026-01-06.parquet").exists()
    assert len(pd.read_parquet(warehouse / "quarantined_labels" / "2026-01-08.parquet")) == 40  # rejected: visible
    days = _training_days(defs, instance, warehouse)
    assert "2026-01-05" not in days and "2026-01-06" not in days and "2026-01-04" in days

    (landing / "labels" / "labels_2026-01-08.csv").write_text(labels)  # corrected resends
    (landing / "customers" / "customers_2026-01-06.csv").write_text(customers)
    again = _ingest_all(defs, instance, cursors)
    assert sorted(again) == [("customers", "2026-01-06"), ("labels", "2026-01-08")]
    assert all(r.success for r in again.values())
    assert {"2026-01-05", "2026-01-06"} <= _training_days(defs, instance, warehouse)


def test_a_blocked_day_removes_what_an_earlier_good_batch_stored(defs, instance, landing, tmp_path):
    job = defs.resolve_job_def("ingest_customers_job")
    assert job.execute_in_process(instance=instance, partition_key="2026-01-02").success
    stored = [tmp_path / "warehouse" / "validated_customers" / "2026-01-02.parquet",
              tmp_path / "warehouse" / "churn" / "features" / "2026-01-02.parquet"]
    assert all(path.exists() for path in stored)
    _spoil(landing / "customers" / "customers_2026-01-02.csv", "contract", "weekly", 0.3)
    result = job.execute_in_process(instance=instance, partition_key="2026-01-02", raise_on_error=False)
    assert not result.success and not any(path.exists() for path in stored)
    [failure] = _events(result, "STEP_FAILURE")
    assert failure.step_key == "validate_customers"
    meta = failure.event_specific_data.error_source and failure.event_specific_data.user_failure_data.metadata
    assert meta["blocked"].value is True and meta["failed_checks"].value == ["quarantine_rate"]
    assert meta["removed_partitions"].value == ["validated_customers 2026-01-02", "churn/features 2026-01-02"]
    # What the UI's partition view shows: the partition's latest attempt failed.
    status = instance.get_status_by_partition(dg.AssetKey("validated_customers"), ["2026-01-02"],
                                              defs.resolve_assets_def("validated_customers").partitions_def)
    assert status == {"2026-01-02": dg.AssetPartitionStatus.FAILED}
    # Scoring and drift of the day have no rows to read: they fail on their missing input, store nothing.
    for asset in ("predictions", "drift_report"):
        run = defs.resolve_implicit_global_asset_job_def().execute_in_process(
            instance=instance, partition_key="2026-01-02", raise_on_error=False,
            asset_selection=[dg.AssetKey(["churn", asset])])
        [failure] = _events(run, "STEP_FAILURE")
        assert 'loading input "features"' in failure.event_specific_data.error.message
        assert not run.get_asset_materialization_events()


@pytest.fixture
def blocked_labels(defs, instance, landing):
    path = landing / "labels" / "labels_2026-01-05.csv"
    _spoil(path, "churned", "2", 0.2)
    job = defs.resolve_job_def("ingest_labels_job")
    return path, job.execute_in_process(instance=instance, partition_key="2026-01-05", raise_on_error=False)


def test_the_blocked_message_says_rate_threshold_reasons_files_and_the_override(blocked_labels, tmp_path):
    path, result = blocked_labels
    [failure] = _events(result, "STEP_FAILURE")
    message = failure.event_specific_data.error.message
    assert "validated_labels 2026-01-05 is BLOCKED: 160 valid row(s) were not stored" in message
    assert "quarantine_rate failed: 20.0% of 200 records quarantined (max 5.0%)" in message
    assert "top reasons: churned:isin (40)" in message
    archive = next((tmp_path / "raw" / "labels" / "2026-01-05").iterdir())
    assert f"landing file: {path} (archive copy: {archive})" in message
    assert "max_quarantine_rate: 0.205" in message  # the launchpad form


def test_the_override_in_the_message_is_a_working_command(blocked_labels, defs, instance):
    _, result = blocked_labels
    message = _events(result, "STEP_FAILURE")[0].event_specific_data.error.message
    command = re.search(r"dagster asset materialize -m ml_examples.definitions --select (\S+) --partition (\S+) "
                        r"--config-json '([^']+)'", message)
    assert command[1] == "raw_labels,validated_labels,quarantined_labels" and command[2] == "2026-01-05"
    keys = [dg.AssetKey(key.split("/")) for key in command[1].split(",")]
    job = defs.resolve_implicit_global_asset_job_def()
    rerun = job.execute_in_process(instance=instance, partition_key=command[2], asset_selection=keys,
                                   run_config=json.loads(command[3]))
    assert rerun.success


def test_failed_checks_are_recorded_with_their_figures(blocked_labels):
    _, result = blocked_labels
    checks = {e.event_specific_data.check_name: e.event_specific_data for e in _events(result, "ASSET_CHECK_EVALUATION")}
    assert (checks["quarantine_rate"].passed, checks["row_accounting"].passed) == (False, True)
    figures = {k: v.value for k, v in checks["quarantine_rate"].metadata.items()}
    assert figures["quarantine_rate"] == 0.2 and figures["max_rate"] == 0.05
    assert figures["top_reasons"] == {"churned:isin": 40}
    assert checks["quarantine_rate"].description == "20.0% of 200 records quarantined (max 5.0%)"

"""The one Definitions object loads, and every job, sensor and schedule resolves."""

import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import dagster as dg
from ml_examples.definitions import example_definitions

defs = example_definitions()

ROOT = Path(__file__).resolve().parents[1]


def test_everything_resolves():
    jobs = {"ingest_customers_job", "ingest_labels_job", "train_churn_job", "train_wine_job", "train_diabetes_job",
            "decide_churn_experiment_job", "experiment_churn_job"}
    assert {defs.resolve_job_def(j).name for j in jobs} == jobs
    assert {s.name for s in defs.sensors} == {"customers_landing_sensor", "labels_landing_sensor",
                                              "mlflow_run_failure_sensor", "churn_drift_retrain_sensor",
                                              "run_failure_alert_sensor", "automation_sensor", "churn_experiment_sensor"}
    assert {s.name for s in defs.schedules} == {"customers_daily_schedule", "labels_daily_schedule",
                                                "churn_weekly_retrain", "wine_weekly_retrain",
                                                "diabetes_weekly_retrain"}
    for sensor in defs.sensors:
        defs.resolve_sensor_def(sensor.name)
    for schedule in defs.schedules:
        defs.resolve_schedule_def(schedule.name)


def test_assets_are_grouped_typed_and_fresh():
    specs = {s.key.to_user_string(): s for s in defs.resolve_all_asset_specs()}
    assert {k for k, s in specs.items() if s.group_name == "ingestion"} == {
        f"{stage}_{d}" for stage in ("raw", "validated", "quarantined") for d in ("customers", "labels")} | {
        f"{d}_landing_inventory" for d in ("customers", "labels")}
    for p in ("churn", "wine", "diabetes"):  # each problem in its own groups: same-named nodes never mix
        assert {k for k, s in specs.items() if s.group_name == f"{p}_models"} == {
            f"{p}/{a}" for a in ("training_set", "candidate_model", "evaluation",
                                 "features" if p == "churn" else "dataset")}
        assert {s.tags.get("ml_assets/problem") for k, s in specs.items() if k.startswith(f"{p}/")} == {p}
    assert specs["churn/evaluation"].owners == ["team:ml-platform"]  # from defs.yaml
    assert all(s.description for s in specs.values())
    for dataset in ("customers", "labels"):
        policy = specs[f"validated_{dataset}"].freshness_policy  # the day's data by 09:00 UTC, at most a day old
        assert (policy.deadline_cron, policy.lower_bound_delta, policy.timezone) == ("0 9 * * *", timedelta(hours=24),
                                                                                    "UTC")
        columns = specs[f"validated_{dataset}"].metadata["dagster/column_schema"].columns
        assert columns[0].name == "customer_id" and columns[0].constraints.other  # checks are listed
        quarantine = specs[f"quarantined_{dataset}"].metadata["dagster/column_schema"].columns
        assert quarantine[-3].name == "quarantine_reason"
        assert {"pandas", "parquet"} <= set(specs[f"validated_{dataset}"].kinds)
    graph = defs.resolve_asset_graph()
    node = graph.get(dg.AssetKey("validated_customers"))
    assert node.partitions_def is not None
    checks = {key.name for key in graph.asset_check_keys}
    assert {"row_accounting", "quarantine_rate", "duplicate_ids"} <= checks


def test_pandera_schemas_are_the_dagster_types():
    job = defs.resolve_job_def("ingest_customers_job")
    types = {t.display_name for t in job.all_dagster_types()}
    assert {"ChurnCustomers", "ChurnCustomersQuarantine", "ChurnLabels"} & types == {
        "ChurnCustomers", "ChurnCustomersQuarantine"}


def test_dagster_cli_materializes_a_partition(tmp_path, landing):
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path / "home"), "ML_ASSETS_HOME": str(tmp_path),
           "ML_ASSETS_LANDING_DIR": str(landing)}
    (tmp_path / "home").mkdir()
    cli = [sys.executable, "-m", "dagster"]
    run = subprocess.run([*cli, "asset", "materialize", "-m", "ml_examples.definitions", "--select",
                          "raw_customers,validated_customers,quarantined_customers", "--partition", "2026-01-02"],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=180)
    assert run.returncode == 0, run.stderr[-2000:]
    assert (tmp_path / "data" / "warehouse" / "validated_customers" / "2026-01-02.parquet").exists()


def test_scoring_and_monitoring_follow_upstream_by_declarative_automation():
    specs = {s.key.to_user_string(): s for s in defs.resolve_all_asset_specs()}
    assert {k for k, s in specs.items() if s.group_name == "churn_monitoring"} == {
        "churn/reference_profile", "churn/drift_report", "churn/performance", "churn/served_predictions",
        "churn/served_drift_report", "churn/served_performance"}
    automated = {k for k, s in specs.items() if s.automation_condition is not None}
    assert automated == {"churn/predictions", "churn/drift_report", "churn/performance",  # one mechanism each
                         "churn/served_predictions", "churn/served_drift_report", "churn/served_performance"}
    train = defs.resolve_job_def("train_churn_job")
    assert dg.AssetKey(["churn", "reference_profile"]) in train.asset_layer.selected_asset_keys
    types = {t.display_name for t in defs.resolve_implicit_global_asset_job_def().all_dagster_types()}
    assert {"DriftReport", "RealizedPerformance_binary", "ServedDriftReport", "ChurnServedPredictions"} <= types


def test_weekly_retrain_is_the_safety_net_once_training_can_succeed():
    schedule = defs.resolve_schedule_def("churn_weekly_retrain")
    assert schedule.cron_schedule == "0 3 * * 1" and schedule.job_name == "train_churn_job"
    assert schedule.default_status == dg.DefaultScheduleStatus.RUNNING
    with dg.instance_for_test() as instance:
        tick = lambda: schedule.evaluate_tick(dg.build_schedule_context(instance=instance))
        assert tick().skip_message == ("churn: not retraining yet, training needs 7 labelled days and the instance has "
                                       "features of 0 day(s) and labels of 0 day(s) ingested; land more days "
                                       "(the landing sensors ingest them)")
        for day in range(1, 8):
            for key in (["churn", "features"], ["validated_labels"]):
                instance.report_runless_asset_event(dg.AssetMaterialization(key, partition=f"2026-01-0{day}"))
        data = tick()
    assert [r.tags.get("ml_assets/trigger") for r in data.run_requests] == ["weekly"]


def test_static_weekly_retrains_are_off_by_default():
    """Their bundled data never changes: a weekly retrain would re-register the same model. The job
    itself runs on a fresh instance (test_models.py::test_train_job_of_a_static_problem_on_a_fresh_instance)."""
    for name in ("wine", "diabetes"):
        schedule = defs.resolve_schedule_def(f"{name}_weekly_retrain")
        assert schedule.default_status == dg.DefaultScheduleStatus.STOPPED
        with dg.instance_for_test() as instance:
            [request] = schedule.evaluate_tick(dg.build_schedule_context(instance=instance)).run_requests
        assert request.tags["ml_assets/trigger"] == "weekly"

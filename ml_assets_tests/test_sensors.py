"""Landing sensors and the fallback schedule, evaluated on a real (ephemeral) Dagster instance."""

from datetime import datetime, timezone

import dagster as dg

from ml_assets.testing.runner import tick_sensor


def _tick(defs, instance, cursor=None, name="customers_landing_sensor"):
    sensor = defs.resolve_sensor_def(name)
    context = dg.build_sensor_context(instance=instance, cursor=cursor, definitions=defs, sensor_name=name,
                                      resources={"landing": defs.resources["landing"]})
    return sensor.evaluate_tick(context)


def _settled(defs, instance, cursor=None, name="customers_landing_sensor"):
    """Two ticks: the first sees the files, the second finds them unchanged (complete)."""
    return _tick(defs, instance, _tick(defs, instance, cursor, name).cursor, name)


def test_first_tick_waits_then_requests_every_landed_day_with_a_content_run_key(defs, instance):
    first = _tick(defs, instance)
    assert not first.run_requests and "waiting: customers_2026-01-01.csv (not complete yet" in first.skip_message
    data = _tick(defs, instance, first.cursor)
    assert [r.partition_key for r in data.run_requests] == [f"2026-01-0{d}" for d in range(1, 6)]
    assert all(r.run_key.startswith(f"customers:{r.partition_key}:") for r in data.run_requests)
    assert data.run_requests[0].tags["ml_assets/files"] == "customers_2026-01-01.csv"


def test_nothing_new_means_a_skip_reason(defs, instance):
    cursor = _settled(defs, instance).cursor
    data = _tick(defs, instance, cursor)
    assert not data.run_requests and "no new or changed complete customers files" in data.skip_message


def test_a_changed_or_new_file_triggers_exactly_its_day(defs, instance, landing):
    cursor = _settled(defs, instance).cursor
    day3 = landing / "customers" / "customers_2026-01-03.csv"
    day3.write_text(day3.read_text() + "C9999999,2026-01-03,1,one_year,50,50,credit_card,dsl,0,1,0,0,north\n")
    (landing / "customers" / "customers_2026-01-09.csv").write_text(day3.read_text())
    (landing / "customers" / "README.txt").write_text("not data")
    data = _settled(defs, instance, cursor)
    assert [r.partition_key for r in data.run_requests] == ["2026-01-03", "2026-01-09"]
    assert not _tick(defs, instance, data.cursor).run_requests


def test_the_skip_reason_names_every_file_not_ingested_and_why(defs, instance, landing):
    folder = landing / "customers"
    (folder / "old").mkdir()
    (folder / "old" / "customers_2026-01-02.csv").write_text("x")
    (folder / ".customers_2026-01-06.csv.part").write_text("x")
    (folder / "customers_2026-01-06.xlsx").write_text("x")
    (folder / "customers_2999-01-01.csv").write_text("x")
    data = _settled(defs, instance)
    assert len(data.run_requests) == 5  # the five good days
    skip = _tick(defs, instance, data.cursor).skip_message
    assert "ignored: old/customers_2026-01-02.csv (in subdirectory old/" in skip
    assert "ignored: .customers_2026-01-06.csv.part (dot-file" in skip
    assert "ignored: customers_2026-01-06.xlsx (unsupported file type .xlsx" in skip
    assert "ignored: customers_2999-01-01.csv (day 2999-01-01 is not a partition (partitions run 2024-01-01 .." in skip


def test_the_inventory_asset_lists_every_file_and_is_recorded_on_change_only(defs, instance, landing):
    (landing / "customers" / "notes.txt").write_text("x")
    _, cursor, _ = tick_sensor(defs, "customers_landing_sensor", instance, ticks=2)
    _, cursor, _ = tick_sensor(defs, "customers_landing_sensor", instance, cursor)  # nothing changed
    records = instance.fetch_materializations(dg.AssetKey("customers_landing_inventory"), limit=10).records
    assert len(records) == 2  # first look (all waiting), then requested; the unchanged tick adds none
    meta = records[0].asset_materialization.metadata  # newest first
    table = meta["files"].value
    assert "| customers_2026-01-01.csv | requested | day 2026-01-01, run key customers:2026-01-01:" in table
    assert "| notes.txt | ignored | the name does not carry the day" in table
    assert (meta["requested"].value, meta["ignored"].value) == (5, 1)


def test_a_half_written_file_is_not_ingested_until_complete(defs, instance, landing):
    folder = landing / "labels"
    _, cursor, _ = tick_sensor(defs, "labels_landing_sensor", instance, ticks=2)  # the fixture's days
    path = folder / "labels_2026-01-06.csv"
    full = (folder / "labels_2026-01-05.csv").read_text().replace("2026-01-02", "2026-01-03")
    path.write_text(full[: len(full) // 2])  # the writer is half way
    results, cursor, skipped = tick_sensor(defs, "labels_landing_sensor", instance, cursor)
    assert results == [] and "waiting: labels_2026-01-06.csv" in skipped[0]
    path.write_text(full)
    results, cursor, _ = tick_sensor(defs, "labels_landing_sensor", instance, cursor, ticks=2)
    assert [r.dagster_run.tags["dagster/partition"] for r in results] == ["2026-01-06"] and results[0].success
    assert tick_sensor(defs, "labels_landing_sensor", instance, cursor, ticks=2)[0] == []  # once
    [record] = instance.fetch_materializations(dg.AssetKey("validated_labels"), limit=10).records[:1]
    assert record.asset_materialization.metadata["records_in"].value == full.count("\n") - 1


def test_sensor_runs_ingest_and_run_keys_never_ingest_twice(defs, instance):
    results, _cursor, _ = tick_sensor(defs, "labels_landing_sensor", instance, ticks=2)
    assert [r.dagster_run.tags["dagster/partition"] for r in results] == ["2026-01-04", "2026-01-05"]
    assert all(r.success for r in results)
    again, _, _ = tick_sensor(defs, "labels_landing_sensor", instance, ticks=2)  # cursor lost: run keys still dedup
    assert again == []
    done = instance.get_materialized_partitions(dg.AssetKey("validated_labels"))
    assert done == {"2026-01-04", "2026-01-05"}


def _schedule(defs, instance, when):
    schedule = defs.resolve_schedule_def("customers_daily_schedule")
    context = dg.build_schedule_context(instance=instance, scheduled_execution_time=when,
                                        repository_def=defs.get_repository_def())
    return schedule.evaluate_tick(context)


def test_schedule_is_a_fallback_for_missed_days(defs, instance):
    when = datetime(2026, 1, 6, 6, tzinfo=timezone.utc)
    [request] = _schedule(defs, instance, when).run_requests
    assert request.partition_key == "2026-01-05"
    tick_sensor(defs, "customers_landing_sensor", instance, ticks=2)
    data = _schedule(defs, instance, when)
    assert not data.run_requests and "already ingested" in data.skip_message


def test_schedule_does_not_call_a_blocked_day_ingested(defs, instance, landing):
    path = landing / "customers" / "customers_2026-01-05.csv"
    job = defs.resolve_job_def("ingest_customers_job")
    assert job.execute_in_process(instance=instance, partition_key="2026-01-05").success
    path.write_text(path.read_text().replace("month_to_month", "weekly"))  # a bad resend: blocked
    failed = job.execute_in_process(instance=instance, partition_key="2026-01-05", raise_on_error=False)
    data = _schedule(defs, instance, datetime(2026, 1, 6, 6, tzinfo=timezone.utc))
    assert not data.run_requests and f"customers 2026-01-05 failed in run {failed.run_id}" in data.skip_message


def test_a_failed_run_is_tagged_even_when_the_alert_webhook_is_down(instance, monkeypatch):
    from ml_assets.automation.sensors import ALERTED_TAG, run_failure_alert_sensor
    from ml_assets_tests.serving.conftest import free_port

    @dg.op
    def boom():
        raise RuntimeError("upstream exploded")

    failing = dg.GraphDefinition("failing", node_defs=[boom]).to_job()
    defs = dg.Definitions(jobs=[failing], sensors=[run_failure_alert_sensor])

    def tick(cursor=None):
        return run_failure_alert_sensor.evaluate_tick(dg.build_sensor_context(
            instance=instance, definitions=defs, sensor_name=run_failure_alert_sensor.name, cursor=cursor))

    cursor = tick().cursor  # the first tick starts watching from now
    result = failing.execute_in_process(instance=instance, raise_on_error=False)
    monkeypatch.setenv("ML_ASSETS_ALERT_WEBHOOK", f"http://127.0.0.1:{free_port()}/nobody-listens")
    tick(cursor)  # must not raise: the alert channel being down cannot hide the failure
    assert instance.get_run_by_id(result.run_id).tags.get(ALERTED_TAG)


def test_a_run_key_whose_run_failed_is_not_requested_again_as_the_daemon_skips_it(defs, instance, landing):
    from ml_assets.testing.runner import RUN_KEY_TAG, SENSOR_NAME_TAG

    (landing / "labels" / "labels_2026-01-07.csv").write_text("")  # an empty file fails its run
    for path in (landing / "labels").glob("labels_2026-01-0[45].csv"):
        path.unlink()
    [failed], _, _ = tick_sensor(defs, "labels_landing_sensor", instance, ticks=2)
    assert not failed.success and failed.dagster_run.tags[SENSOR_NAME_TAG] == "labels_landing_sensor"
    again, _, _ = tick_sensor(defs, "labels_landing_sensor", instance, ticks=2)  # cursor lost: the daemon would skip it
    assert again == []
    runs = instance.get_runs(filters=dg.RunsFilter(tags={RUN_KEY_TAG: failed.dagster_run.tags[RUN_KEY_TAG]}))
    assert [r.status for r in runs] == [dg.DagsterRunStatus.FAILURE]


def test_sensor_intervals_and_the_cooldown_come_from_the_environment_when_the_definitions_are_built(
        resources, monkeypatch):
    import pytest
    from ml_examples.churn.problem import CHURN

    from ml_assets.automation.sensors import retrain_cooldown_hours
    from ml_assets.definitions import build_definitions

    def intervals() -> dict[str, int]:
        built = build_definitions((CHURN,), resources)
        return {name: built.resolve_sensor_def(name).minimum_interval_seconds for name in
                ("customers_landing_sensor", "churn_drift_retrain_sensor", "automation_sensor")}

    assert intervals() == {"customers_landing_sensor": 30, "churn_drift_retrain_sensor": 300, "automation_sensor": 30}
    assert retrain_cooldown_hours(CHURN) == CHURN.retraining.cooldown_hours
    for kind, seconds in (("LANDING", "2"), ("RETRAIN", "3"), ("AUTOMATION", "4")):
        monkeypatch.setenv(f"ML_ASSETS_{kind}_SENSOR_INTERVAL_SECONDS", seconds)
    monkeypatch.setenv("ML_ASSETS_RETRAIN_COOLDOWN_HOURS", "0")
    assert intervals() == {"customers_landing_sensor": 2, "churn_drift_retrain_sensor": 3, "automation_sensor": 4}
    assert retrain_cooldown_hours(CHURN) == 0
    monkeypatch.setenv("ML_ASSETS_RETRAIN_SENSOR_INTERVAL_SECONDS", "5m")
    with pytest.raises(ValueError, match=r"ML_ASSETS_RETRAIN_SENSOR_INTERVAL_SECONDS='5m' is not a non-negative "
                                         r"number: set e\.g\. ML_ASSETS_RETRAIN_SENSOR_INTERVAL_SECONDS=300"):
        intervals()

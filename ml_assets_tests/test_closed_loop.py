"""The closed loop end to end on a real on-disk Dagster instance and MLflow registry: normal days,
then a new segment arrives with a changed churn relationship (day K). Drift is detected from day K,
the drift sensor waits for labels, retrains exactly once, the gate promotes the new model, the
scoring service swaps to it, drift clears and realized performance recovers."""

import time
from contextlib import nullcontext
from datetime import date

import numpy as np
import pandas as pd
import pytest
from ml_examples.churn.simulation import ScenarioStart, WorldConfig

from ml_assets.mlflow.registry import CHAMPION, alias_version, client
from ml_assets.serving.app import ServiceConfig
from ml_assets_tests.closed_loop import (
    QUICK,
    SERVED_PER_DAY,
    day_after,
    scrape,
    trained_loop,
)
from ml_assets_tests.serving.conftest import running

pytestmark = pytest.mark.slow

START, FIRST_TRAINING, K, LAST = date(2025, 3, 1), 9, 12, 27
WORLD = WorldConfig(start_date=START, rows_per_day=600, population=6_000, label_delay_days=2,
                    scenarios=(ScenarioStart("new_segment", K), ScenarioStart("concept_drift", K)))


@pytest.fixture(scope="module")
def loop(tmp_path_factory, mlflow_template):
    with trained_loop(tmp_path_factory.mktemp("closed_loop"), mlflow_template, QUICK, WORLD, FIRST_TRAINING) as (
            days, defs, instance, uri):
        served = ServiceConfig(problem="churn", tracking_uri=uri, poll_seconds=0.5, log_roll_seconds=0.5)  # the default log
        with running(served) as http:
            days.http, versions = http, {}  # from now on a client asks the service about each day
            for day in range(FIRST_TRAINING + 1, LAST + 1):
                days.run_day(day)
                if days.retrains and days.retrains[-1][0] == day:  # the service must follow the registry
                    versions[day] = _wait_for_new_version(http, alias_version(client(), "churn_model", CHAMPION))
            yield {"loop": days, "versions": versions, "defs": defs, "instance": instance,
                   "predict": http.post("/predict", json={"records": [_record()]}).json()}


def _record() -> dict:
    return {"customer_id": "C1", "snapshot_date": "2025-03-28", "tenure_months": 3, "contract": "month_to_month",
            "monthly_charges": 80.0, "total_charges": 240.0, "payment_method": "electronic_check",
            "internet_service": "fiber_optic", "support_calls": 1, "num_products": 1, "is_senior": 0,
            "has_partner": 0, "region": "metro"}


def _wait_for_new_version(http, version: str, timeout: float = 60) -> str:
    deadline = time.time() + timeout
    while time.time() < deadline:
        health = http.get("/health").json()
        if health["champion"]["version"] == version:
            return version
        time.sleep(0.2)
    raise AssertionError(f"the service never loaded v{version}: {health}")


def test_drift_is_detected_from_the_first_drifted_day(loop):
    drift = loop["loop"].metadata("drift_report")
    assert next(d for d, m in sorted(drift.items()) if m["dataset_drift"]) == day_after(START, K)
    assert not any(m["dataset_drift"] for d, m in drift.items() if d < day_after(START, K))
    region = drift[day_after(START, K)]
    assert "region" in region["drifted_columns"] and region["unseen_categories"]["region"] == ["metro"]


def test_exactly_one_retrain_for_the_episode_once_labels_arrived(loop):
    days = loop["loop"]
    assert [day for day, _ in days.retrains] == [K + QUICK.retraining.min_labeled_days - 1 + WORLD.label_delay_days]
    run = days.retrains[0][1].dagster_run
    assert run.tags["dagster/run_key"] == f"churn-retrain-{day_after(START, K)}"
    assert run.run_config["ops"]["churn__training_set"]["config"]["since"] == day_after(START, K)
    assert "waiting for labels (0/7" in days.skips[K]  # the sensor said why it did not act yet
    assert all("no drift or performance drop" in days.skips[d] for d in range(FIRST_TRAINING + 1, K))


def test_the_gate_promoted_the_retrained_model_and_the_service_swapped(loop):
    result = loop["loop"].retrains[0][1]
    checks = {e.event_specific_data.check_name: e.event_specific_data.passed for e in result.all_events
              if e.event_type_value == "ASSET_CHECK_EVALUATION"}
    assert checks == dict.fromkeys(("metric_floor", "no_regression", "prediction_sanity", "servable"), True)
    assert result.success and alias_version(client(), "churn_model", CHAMPION) == "2"
    assert list(loop["versions"].values()) == ["2"]
    assert loop["predict"]["model_version"] == "2" and 0 <= loop["predict"]["predictions"][0]["score"] <= 1


def test_drift_clears_and_realized_performance_recovers(loop):
    retrained = loop["loop"].retrains[0][0]
    drift = loop["loop"].metadata("drift_report")
    assert not any(m["dataset_drift"] for d, m in drift.items() if d > day_after(START, retrained))
    realized = pd.concat(pd.read_parquet(p) for p in
                         sorted((loop["loop"].landing.parent / "warehouse" / "churn" / "performance").glob("*.parquet")))
    before = realized[(realized["model_version"] == "1") & (realized["day"] >= day_after(START, K))]
    after = realized[realized["model_version"] == "2"]
    assert len(before) >= 7 and len(after) >= 4
    assert np.mean(after["roc_auc"]) > np.mean(before["roc_auc"]) + 0.01, realized.to_string()


def test_pipeline_metrics_are_exported(loop):
    from ml_assets.ops.exporter import pipeline_registry

    samples = scrape(pipeline_registry(loop["defs"], (QUICK,), lambda: nullcontext(loop["instance"])))
    churn = (("problem", "churn"),)
    assert samples[("ml_assets_champion_version", churn)] == 2
    assert samples[("ml_assets_drift_share", churn)] < QUICK.monitoring.drift_share
    assert samples[("ml_assets_dataset_drift", churn)] == 0
    tests = {dict(labels)["feature"]: dict(labels)["test"] for name, labels in samples
             if name == "ml_assets_feature_drift_statistic"}
    assert len(tests) == 14 and tests["region"] == "jensenshannon"  # a reference of > 1000 rows
    assert 0.7 < samples[("ml_assets_realized_metric", (("metric", "roc_auc"), ("problem", "churn")))] <= 1
    assert time.time() - samples[("ml_assets_last_successful_training_timestamp_seconds", churn)] < 3600
    assert all(samples[("ml_assets_gate_check_passed", (("check", c), ("problem", "churn")))] == 1
               for c in ("metric_floor", "no_regression", "prediction_sanity", "servable"))
    assert samples[("ml_assets_run_failures_total", (("job", "train_churn_job"),))] == 0
    assert samples[("ml_assets_served_rows", churn)] == SERVED_PER_DAY
    assert 0.5 < samples[("ml_assets_served_realized_metric", (("metric", "roc_auc"), ("problem", "churn")))] <= 1
    assert samples[("ml_assets_served_drift_share", churn)] < QUICK.monitoring.drift_share


def test_served_traffic_is_monitored_apart_from_batch_scoring(loop):
    days = loop["loop"]
    served = days.metadata("served_predictions")
    rows = {d: m["rows_served"] for d, m in served.items()}
    assert {d: n for d, n in rows.items() if n} == {
        day_after(START, d): SERVED_PER_DAY for d in range(FIRST_TRAINING + 1, LAST + 1)}
    assert rows[day_after(START, FIRST_TRAINING)] == 0  # the nightly run found no traffic before the service
    by_version = {d: m["rows_by_model_version"] for d, m in served.items()}
    assert by_version[day_after(START, FIRST_TRAINING + 1)] == {"1": SERVED_PER_DAY}
    assert by_version[day_after(START, LAST)] == {"2": SERVED_PER_DAY}  # the service swapped to the retrained model
    skew = days.metadata("served_drift_report")
    assert next(d for d, m in sorted(skew.items()) if m["dataset_drift"]) == day_after(START, K)
    assert "region" in skew[day_after(START, K)]["drifted_columns"]
    realized = days.metadata("served_performance")
    labeled = {day for m in realized.values() for day in m["labeled_days"]}
    assert {day_after(START, d) for d in range(FIRST_TRAINING + 1, LAST + 1 - WORLD.label_delay_days)} <= labeled
    batch = days.metadata("performance")[day_after(START, LAST)]
    online = realized[day_after(START, LAST)]
    assert online["snapshot_day"] == batch["snapshot_day"] and 0.5 < online["realized_roc_auc"] <= 1
    assert online["rows_joined"] < batch["rows_joined"]  # the service saw half of the day's customers


def test_the_demo_story_tells_this_loop(loop, capsys):
    from ml_examples.churn.replay import Day
    from ml_examples.churn.story import _line, _summary

    days = loop["loop"]
    day, run = days.retrains[0]
    line = _line(days, Day(day, runs=[run], retrains=[run]), days.metadata("drift_report"), days.metadata("performance"))
    assert line.startswith(f"{day_after(START, day)}  YES") and \
        f"RETRAIN (episode since {day_after(START, K)}), gate 4/4 passed -> v2 promoted" in line
    _summary(days, "1", day_after(START, day), 1.0)
    out = capsys.readouterr().out
    assert f"champion: v1 -> v2 (retrained on {day_after(START, day)} by the drift sensor)" in out
    assert f"drift share: before {day_after(START, K)} 0.00" in out

"""The closed loop's negative case: drift triggers a retrain, but the candidate fails the gate.
The champion stays, the failure is visible (check result, run failure, exported metrics, the
alert webhook) and the episode is not retrained again."""

import json
import os
import sys
from contextlib import nullcontext
from datetime import date
from pathlib import Path

import dagster as dg
import pytest
from ml_examples.churn.simulation import ScenarioStart, WorldConfig

from ml_assets.mlflow.registry import CHAMPION, alias_version, client
from ml_assets_tests.closed_loop import QUICK, DailyLoop, Webhook, scrape
from ml_assets_tests.conftest import project_env
from ml_assets_tests.processes import scrape_until
from ml_assets_tests.serving.conftest import free_port

pytestmark = pytest.mark.slow

START, FIRST_TRAINING, K = date(2025, 5, 1), 9, 10
WORLD = WorldConfig(start_date=START, rows_per_day=400, population=4_000, label_delay_days=2,
                    scenarios=(ScenarioStart("new_segment", K), ScenarioStart("concept_drift", K)))
UNREACHABLE = QUICK.evolve(metric_floor=0.999)  # no candidate can pass this gate


@pytest.fixture(scope="module")
def loop(tmp_path_factory, mlflow_template):
    root = tmp_path_factory.mktemp("closed_loop_gate")
    webhook = Webhook()
    os.environ["ML_ASSETS_ALERT_WEBHOOK"] = webhook.url
    try:
        with project_env(root, mlflow_template):
            from ml_assets.definitions import build_definitions

            defs, strict = build_definitions((QUICK,)), build_definitions((UNREACHABLE,))
            with dg.DagsterInstance.get() as instance:
                days = DailyLoop(defs, instance, WORLD, root / "data" / "landing")
                for day in range(FIRST_TRAINING + 1):
                    days.run_day(day)
                assert days.train().success
                alert_cursor = _tick_alerts(strict, instance)  # the first tick only starts watching
                for day in range(FIRST_TRAINING + 1, K + QUICK.retraining.min_labeled_days + WORLD.label_delay_days + 2):
                    days.run_day(day, strict)
                yield {"loop": days, "defs": strict, "instance": instance, "webhook": webhook.received,
                       "alert_skip": _tick_alerts(strict, instance, alert_cursor)}
    finally:
        os.environ.pop("ML_ASSETS_ALERT_WEBHOOK")
        webhook.close()


def _tick_alerts(defs, instance, cursor=None):
    sensor = defs.resolve_sensor_def("run_failure_alert_sensor")
    data = sensor.evaluate_tick(dg.build_sensor_context(instance=instance, definitions=defs,
                                                        sensor_name=sensor.name, cursor=cursor))
    return data.cursor if cursor is None else data


def test_the_failing_candidate_is_not_promoted(loop):
    (day, result), = loop["loop"].retrains  # one retrain for the episode, even though it failed
    assert day == K + QUICK.retraining.min_labeled_days - 1 + WORLD.label_delay_days
    checks = {e.event_specific_data.check_name: e.event_specific_data for e in result.all_events
              if e.event_type_value == "ASSET_CHECK_EVALUATION"}
    assert not checks["metric_floor"].passed and "floor 0.999" in checks["metric_floor"].description
    assert not result.success and not result.is_node_success("churn__champion")
    assert alias_version(client(), "churn_model", CHAMPION) == "1"
    later = [loop["loop"].skips[d] for d in sorted(loop["loop"].skips) if d > day]
    assert later and all("already retrained" in s for s in later)


def test_the_failure_is_visible_in_metrics_and_alerts(loop):
    from ml_assets.ops.exporter import pipeline_registry

    samples = scrape(pipeline_registry(loop["defs"], (UNREACHABLE,), lambda: nullcontext(loop["instance"])))
    assert samples[("ml_assets_gate_check_passed", (("check", "metric_floor"), ("problem", "churn")))] == 0
    assert samples[("ml_assets_champion_version", (("problem", "churn"),))] == 1
    assert samples[("ml_assets_run_failures_total", (("job", "train_churn_job"),))] == 1
    assert samples[("ml_assets_dataset_drift", (("problem", "churn"),))] == 1  # the drift is still there
    posted = [json.loads(body) for body in loop["webhook"]]
    assert [p["job"] for p in posted] == ["train_churn_job"] and posted[0]["message"]
    failed = loop["instance"].get_runs(dg.RunsFilter(statuses=[dg.DagsterRunStatus.FAILURE]))
    assert [r.tags.get("ml_assets/failure_alerted") is not None for r in failed] == [True]


def test_a_lost_warehouse_profile_is_read_back_from_mlflow(loop):
    from ml_assets.assets.monitoring import load_profile, profile_path

    tags = client().get_model_version("churn_model", "1").tags
    assert tags["reference_profile"].endswith("/monitoring/reference_profile.npz")  # named on the version
    kept = load_profile(UNREACHABLE, "1")
    profile_path(UNREACHABLE, "1").unlink()
    restored = load_profile(UNREACHABLE, "1")
    assert restored.rows == kept.rows and list(restored.columns) == list(kept.columns)
    assert (restored.columns["monthly_charges"].values == kept.columns["monthly_charges"].values).all()


def test_the_exporter_command_serves_the_same_metrics(loop):
    port = free_port()
    text = scrape_until([str(Path(sys.executable).parent / "ml-assets"), "exporter", "--port", str(port)],
                        f"http://127.0.0.1:{port}/metrics", 'ml_assets_champion_version{problem="churn"}')
    assert 'ml_assets_champion_version{problem="churn"} 1.0' in text
    assert 'ml_assets_gate_check_passed{check="metric_floor",problem="churn"} 0.0' in text
    assert 'ml_assets_run_failures_total{job="train_churn_job"} 1.0' in text

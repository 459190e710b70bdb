"""Online experiments end to end, on a real on-disk Dagster instance, MLflow registry and scoring
service, in a simulated world whose answer is known (an arm effect on the challenger's traffic):

1. with `experiment.promotion: experiment` a gated candidate becomes @challenger and an experiment
   starts instead of a promotion; the service splits traffic by the sticky hash;
2. a truly better challenger is promoted by the experiment's decision, once, within the horizon;
3. a truly worse one is stopped and never promoted;
4. a guardrail breach (a challenger that cannot score) stops the experiment within one sensor tick
   and the service routes everything back to the champion.
Day by day as the daemon would run it (landing, automation, drift and experiment sensors)."""

import dataclasses
import json
import os
import time
from datetime import date

import pytest
from ml_examples.churn.simulation import ArmEffect, WorldConfig

from ml_assets.mlflow import experiments
from ml_assets.mlflow.registry import CHALLENGER, CHAMPION, PREVIOUS, alias_version, client
from ml_assets.serving.app import ServiceConfig
from ml_assets.testing.runner import tick_sensor
from ml_assets_tests.closed_loop import QUICK, DailyLoop, Webhook, trained_loop
from ml_assets_tests.conftest import _environ
from ml_assets_tests.serving.conftest import running

pytestmark = pytest.mark.slow

START, FIRST_TRAINING = date(2025, 6, 1), 9
# mixture_sd: the test is tuned to effects of about 0.05 in log loss, the size this world's arm effect makes
SPEC = QUICK.evolve(promotion="experiment", mode="ab", challenger_share=0.5, min_samples=250, max_days=10, mixture_sd=0.05)
WORLD = WorldConfig(start_date=START, rows_per_day=600, population=6_000, label_delay_days=2)
NAME = SPEC.registered_model_name


def _routing(http, experiment_id: str | None, timeout: float = 60) -> None:
    deadline = time.time() + timeout
    while (http.get("/health").json()["experiment"] or {}).get("id") != experiment_id:
        assert time.time() < deadline, f"the service never routed experiment {experiment_id}"
        time.sleep(0.2)


def _run(days: DailyLoop, effect: float, experiment, first_day: int) -> tuple[int, list]:
    """Days from `first_day` with the arm effect, until the experiment ends (or the horizon passes)."""
    days.world = dataclasses.replace(WORLD, arm_effect=ArmEffect(experiment.id, experiment.challenger_share, effect))
    day, applied = first_day, []
    while experiments.current(client(), NAME).running:
        assert day < first_day + SPEC.experiment.max_days + WORLD.label_delay_days + 2, "no decision within the horizon"
        applied += [r for r in days.run_day(day).experiment if r.dagster_run.job_name == f"experiment_{SPEC.name}_job"]
        day += 1
    return day, applied


@pytest.fixture(scope="module")
def flow(tmp_path_factory, mlflow_template):
    with trained_loop(tmp_path_factory.mktemp("experiment_flow"), mlflow_template, SPEC, WORLD, FIRST_TRAINING) as (
            days, defs, instance, uri):
        assert alias_version(client(), NAME, CHAMPION) == "1"  # no champion yet: promoted directly
        second = days.train({"ops": {"churn__candidate_model": {"config": {"seed": 1, "search_iterations": 1}}}})
        assert second.success, [e.message for e in second.all_events if e.is_failure]
        served = ServiceConfig(problem="churn", tracking_uri=uri, poll_seconds=0.3, log_roll_seconds=0.5)
        with running(served) as http:
            days.http = http
            yield {"defs": defs, "instance": instance, "days": days, "http": http, "uri": uri,
                   "second": second, "day": FIRST_TRAINING + 1}


def test_a_gated_candidate_starts_an_experiment_instead_of_a_promotion(flow):
    champion = flow["second"].asset_materializations_for_node("churn__champion")[-1].metadata
    assert champion["action"].value == "experiment" and champion["challenger_version"].value == "2"
    record = experiments.current(client(), NAME)
    assert record.running and (record.mode, record.challenger_share) == ("ab", 0.5)
    assert alias_version(client(), NAME, CHAMPION) == "1" and alias_version(client(), NAME, CHALLENGER) == "2"
    _routing(flow["http"], record.id)


def test_a_better_challenger_is_promoted_once_within_the_horizon(flow):
    record = experiments.current(client(), NAME)
    flow["day"], applied = _run(flow["days"], +1.0, record, flow["day"])
    ended = experiments.current(client(), NAME)
    assert ended.id == record.id and ended.status == experiments.PROMOTED, ended
    assert "challenger's loss is lower" in ended.reason
    assert alias_version(client(), NAME, CHAMPION) == "2" and alias_version(client(), NAME, PREVIOUS) == "1"
    assert len(applied) == 1 and applied[0].success  # one promotion run
    decision = flow["days"].metadata("experiment")
    decisive = [m for m in decision.values() if m.get("experiment_id") == record.id and m["action"] == "promote"
                and "statistic" in m]  # the decision (the applied promotion is recorded without a test)
    assert len(decisive) == 1 and decisive[0]["difference"] < 0 and decisive[0]["statistic"] >= decisive[0]["boundary"]
    assert decisive[0]["labelled_rows_challenger"] >= SPEC.experiment.min_samples
    results, _, said = tick_sensor(flow["defs"], "churn_experiment_sensor", flow["instance"])
    assert results == [] and "ended: promoted" in said[0]  # never twice
    _routing(flow["http"], None)
    answered = flow["http"].post("/predict", json=_record()).json()
    assert answered["model_version"] == "2"


def test_a_worse_challenger_is_stopped_and_never_promoted(flow):
    defs, instance = flow["defs"], flow["instance"]
    start = defs.resolve_job_def("experiment_churn_job").execute_in_process(
        instance=instance, run_config={"ops": {"apply_churn_experiment_action": {"config": {
            "action": "start", "version": "1", "reason": "operator: v1 again"}}}})
    assert start.success
    record = experiments.current(client(), NAME)
    _routing(flow["http"], record.id)
    flow["day"], _ = _run(flow["days"], -0.6, record, flow["day"])
    ended = experiments.current(client(), NAME)
    assert ended.status == experiments.STOPPED and "loss is higher" in ended.reason, ended
    assert alias_version(client(), NAME, CHAMPION) == "2"


def test_a_guardrail_breach_stops_the_experiment_within_one_tick(flow):
    from ml_assets_tests.registered import Broken, broken_churn, register

    Broken.failing = True
    version = register(broken_churn())
    started = experiments.start(client(), NAME, version, "ab", 0.5)
    http = flow["http"]
    _routing(http, started.id)
    for record in [_record(f"C{i}") for i in range(60)]:
        assert http.post("/predict", json=record).status_code == 200  # the champion answers the challenger's rows
    base, webhook = str(http.base_url).rstrip("/"), Webhook()
    try:
        with _environ({"ML_ASSETS_SERVICE_URLS": base, "ML_ASSETS_ALERT_WEBHOOK": webhook.url}):
            results, _, _ = tick_sensor(flow["defs"], "churn_experiment_sensor", flow["instance"])
    finally:
        webhook.close()
    assert [r.success for r in results] == [True]
    alert = json.loads(webhook.received[0])
    assert alert["experiment"] == started.id and alert["message"].startswith("guardrail: challenger failed")
    ended = experiments.current(client(), NAME)
    assert ended.status == experiments.STOPPED and ended.reason.startswith("guardrail: challenger failed"), ended
    _routing(http, None)
    assert alias_version(client(), NAME, CHAMPION) == "2"
    assert os.environ.get("ML_ASSETS_SERVICE_URLS") is None


def _record(customer: str = "C1") -> dict:
    return {"customer_id": customer, "snapshot_date": "2025-06-30", "tenure_months": 3, "contract": "month_to_month",
            "monthly_charges": 80.0, "total_charges": 240.0, "payment_method": "electronic_check",
            "internet_service": "fiber_optic", "support_calls": 1, "num_products": 1, "is_senior": 0,
            "has_partner": 0, "region": "north"}

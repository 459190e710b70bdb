"""The sensor that runs an online experiment: on every tick it checks the challenger's guardrails on
the live service, asks for the day's decision, and applies a decision once. Run keys make every
request happen once per experiment (a decision, a guardrail stop) or once per experiment and day
(the test).

The live guardrails read the service's /metrics at ML_ASSETS_SERVICE_URLS (comma-separated base
URLs: each replica, or one address per replica set behind which all share counters via Prometheus
federation); without it only the daily calibration guardrail runs, and the sensor says so."""

from __future__ import annotations

import os

import dagster as dg
import httpx

from ml_assets.assets.experiment import experiment_key
from ml_assets.automation.sensors import interval_seconds, post_alert
from ml_assets.core import guardrails
from ml_assets.core.experiments import PROMOTE, STOP
from ml_assets.mlflow import experiments
from ml_assets.mlflow.resource import MlflowResource
from ml_assets.problem.spec import ProblemSpec


def latest_decision(instance: dg.DagsterInstance, spec: ProblemSpec) -> dict:
    event = instance.get_latest_materialization_event(experiment_key(spec))
    materialization = event.asset_materialization if event else None
    return {k: v.value for k, v in materialization.metadata.items()} if materialization else {}


def scrape_services(urls: list[str], timeout: float = 3.0) -> tuple[dict, list[str]]:
    """Every service's metrics merged (counters add up across replicas), and what could not be read."""
    token = os.environ.get("ML_ASSETS_SERVICE_TOKEN")
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    families, unreachable = {}, []
    for url in urls:
        try:
            response = httpx.get(f"{url.rstrip('/')}/metrics", headers=headers, timeout=timeout)
            response.raise_for_status()
        except httpx.HTTPError as err:
            unreachable.append(f"{url}: {type(err).__name__}")
            continue
        for name, samples in guardrails.parse(response.text).items():
            families.setdefault(name, []).extend(samples)
    return families, unreachable


def limits_of(spec: ProblemSpec) -> guardrails.Limits:
    e = spec.experiment
    return guardrails.Limits(max_error_rate=e.max_error_rate, max_score_shift=e.max_score_shift,
                             max_p99_ms=e.max_p99_ms if e.max_p99_ms is not None else spec.gate.latency_budget_ms)


def build_experiment_sensor(spec: ProblemSpec, decide_job, action_job) -> dg.SensorDefinition:
    action_op = f"apply_{spec.name}_experiment_action"

    @dg.sensor(name=f"{spec.name}_experiment_sensor", jobs=[decide_job, action_job],
               minimum_interval_seconds=interval_seconds("experiment", 300),
               default_status=dg.DefaultSensorStatus.RUNNING,
               description=f"While an experiment of {spec.registered_model_name} runs: the day's decision once a "
                           "day, and a promote/stop decision applied to the registry exactly once.")
    def experiment_sensor(context: dg.SensorEvaluationContext, mlflow: MlflowResource):
        record = experiments.current(mlflow.client(), spec.registered_model_name)
        if record is None or not record.running:
            return dg.SkipReason("no experiment running" if record is None else
                                 f"experiment {record.id} ended: {record.status} ({record.reason})")
        urls = [u for u in os.environ.get("ML_ASSETS_SERVICE_URLS", "").split(",") if u.strip()]
        if not urls and context.cursor != record.id:  # said once per experiment, not every tick
            context.log.warning(f"ML_ASSETS_SERVICE_URLS is not set: the live guardrails of experiment {record.id} "
                                "(error rate, latency, score shift) are off; only the daily calibration check runs")
            context.update_cursor(record.id)
        if urls:
            families, unreachable = scrape_services(urls)
            if unreachable:
                context.log.warning(f"guardrails could not read {', '.join(unreachable)}")
            if breaches := guardrails.check(families, record.id, limits_of(spec)):
                reason = "guardrail: " + "; ".join(b.message for b in breaches)
                context.log.error(f"experiment {record.id} breached its guardrails: {reason}")
                _alert(context, spec, record.id, reason)
                return _action(action_job, action_op, record.id, STOP, reason, "guardrail")
        decision = latest_decision(context.instance, spec)
        if decision.get("experiment_id") == record.id and decision.get("action") in (PROMOTE, STOP):
            return _action(action_job, action_op, record.id, decision["action"], decision.get("reason", ""),
                           decision["action"])
        # The newest day the service's answers were collected for (nightly, yesterday's; in a replay
        # or a backfill, the day replayed): once per experiment and day, its decision covers every
        # earlier day of the experiment too.
        served = context.instance.get_latest_materialization_event(dg.AssetKey([spec.name, "served_predictions"]))
        day = served.asset_materialization.partition if served and served.asset_materialization else None
        if day is None:
            return dg.SkipReason(f"experiment {record.id}: no served predictions collected yet")
        return dg.RunRequest(job_name=decide_job.name, partition_key=day, run_key=f"{record.id}:{day}",
                             tags={"ml_assets/experiment": record.id})

    return experiment_sensor


def _action(job, op: str, experiment_id: str, action: str, reason: str, key: str) -> dg.RunRequest:
    return dg.RunRequest(job_name=job.name, run_key=f"{experiment_id}:{key}", tags={"ml_assets/experiment": experiment_id},
                         run_config={"ops": {op: {"config": {"action": action, "experiment_id": experiment_id,
                                                             "reason": reason}}}})


def _alert(context, spec: ProblemSpec, experiment_id: str, reason: str) -> None:
    if url := os.environ.get("ML_ASSETS_ALERT_WEBHOOK"):
        try:
            post_alert(url, {"problem": spec.name, "experiment": experiment_id, "message": reason})
        except OSError as err:  # the alert channel being down must not keep the challenger serving
            context.log.warning(f"could not post the alert to {url}: {err}")

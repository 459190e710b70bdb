"""The sensor that runs an online experiment: it asks for the day's decision, and applies a decision
once. It reads the registry record and materialization metadata only; run keys make every request
happen once per experiment (a decision) or once per experiment and day (the test)."""

from __future__ import annotations

import dagster as dg

from ml_assets.assets.experiment import experiment_key
from ml_assets.automation.sensors import interval_seconds
from ml_assets.core.experiments import PROMOTE, STOP
from ml_assets.mlflow import experiments
from ml_assets.mlflow.resource import MlflowResource
from ml_assets.problem.spec import ProblemSpec


def latest_decision(instance: dg.DagsterInstance, spec: ProblemSpec) -> dict:
    event = instance.get_latest_materialization_event(experiment_key(spec))
    materialization = event.asset_materialization if event else None
    return {k: v.value for k, v in materialization.metadata.items()} if materialization else {}


def build_experiment_sensor(spec: ProblemSpec, decide_job, action_job,
                            partitions_def: dg.TimeWindowPartitionsDefinition) -> dg.SensorDefinition:
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
        decision = latest_decision(context.instance, spec)
        if decision.get("experiment_id") == record.id and decision.get("action") in (PROMOTE, STOP):
            action = decision["action"]
            return dg.RunRequest(job_name=action_job.name, run_key=f"{record.id}:{action}",
                                 tags={"ml_assets/experiment": record.id},
                                 run_config={"ops": {action_op: {"config": {
                                     "action": action, "experiment_id": record.id, "reason": decision.get("reason", "")}}}})
        day = partitions_def.get_last_partition_key()
        if day is None or day < record.started_utc[:10]:
            return dg.SkipReason(f"experiment {record.id} started {record.started_utc}; its first day is not over")
        return dg.RunRequest(job_name=decide_job.name, partition_key=day, run_key=f"{record.id}:{day}",
                             tags={"ml_assets/experiment": record.id})

    return experiment_sensor

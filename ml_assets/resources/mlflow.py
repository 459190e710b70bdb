"""MLflow tracking through dagster-mlflow, with the two things its resource leaves out.

1. The experiment is created with an explicit artifact location (under the project by default):
   left to MLflow, a SQLite-backed store puts artifacts in `./mlruns` of whatever the cwd is.
2. The final run status. dagster-mlflow's `end_mlflow_on_run_finished` hook ends the MLflow run
   when the *topologically last* op succeeds, which can be early (dagster#21872), and its resource
   teardown never marks success. Here every MLflow step closes the run with its own outcome
   (`tracked_step`), and `mlflow_run_failure_sensor` marks the MLflow run FAILED when the Dagster
   run fails anywhere. One Dagster run = one MLflow run (dagster-mlflow finds it by the
   `dagster_run_id` tag), with the right final status.
"""

from contextlib import contextmanager
from pathlib import Path

import dagster as dg
import mlflow
from dagster_mlflow.resources import CONFIG_SCHEMA, MlFlow
from mlflow.entities import RunStatus
from mlflow.tracking import MlflowClient

from ml_assets import settings


def ensure_experiment(tracking_uri: str, name: str, artifact_location: str | None) -> str:
    if tracking_uri.startswith("sqlite:///"):
        Path(tracking_uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    client = MlflowClient(tracking_uri)
    experiment = client.get_experiment_by_name(name)
    return experiment.experiment_id if experiment else client.create_experiment(name, artifact_location)


@dg.resource(config_schema={**CONFIG_SCHEMA, "artifact_location": dg.Field(
    dg.Noneable(dg.StringSource), default_value=None, description="where a new experiment stores artifacts")})
def mlflow_tracking(context):
    """dagster-mlflow's MlFlow tracking resource, with the experiment bootstrapped first."""
    config = context.resource_config
    ensure_experiment(config["mlflow_tracking_uri"], config["experiment_name"], config["artifact_location"])
    mlf = MlFlow(context)
    mlf.mlflow_run_id = mlf.mlflow_run_id or mlflow.active_run().info.run_id  # None when it started one
    yield mlf
    mlf.cleanup_on_error()


def default_mlflow_resource(experiment_name: str = "ml_assets"):
    return mlflow_tracking.configured({
        "experiment_name": experiment_name, "mlflow_tracking_uri": settings.mlflow_tracking_uri(),
        "artifact_location": settings.mlflow_artifact_location()})


@contextmanager
def tracked_step(mlf: MlFlow):
    """Run a step inside the Dagster run's MLflow run, and close it with the step's outcome.

    A step after another one (in the same process) resumes the run the resource found or started,
    instead of letting MLflow open an untagged run of its own.
    """
    active = mlflow.active_run()
    if active is None or active.info.run_id != mlf.mlflow_run_id:
        mlflow.start_run(run_id=mlf.mlflow_run_id)
    try:
        yield
    except BaseException as err:
        failed = RunStatus.KILLED if isinstance(err, KeyboardInterrupt) else RunStatus.FAILED
        mlflow.end_run(status=RunStatus.to_string(failed))
        raise
    mlflow.end_run(status=RunStatus.to_string(RunStatus.FINISHED))


def mark_failed_runs(tracking_uri: str, dagster_run_id: str) -> list[str]:
    """Set every MLflow run of a failed Dagster run to FAILED; return their ids."""
    client = MlflowClient(tracking_uri)
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()],
                              filter_string=f"tags.dagster_run_id = '{dagster_run_id}'")
    for run in runs:
        client.set_terminated(run.info.run_id, status=RunStatus.to_string(RunStatus.FAILED))
    return [run.info.run_id for run in runs]


def build_mlflow_failure_sensor(jobs: list) -> dg.SensorDefinition:
    """Watches only the jobs that track to MLflow, so other failures cost the tick nothing."""

    @dg.run_failure_sensor(name="mlflow_run_failure_sensor", monitored_jobs=jobs,
                           default_status=dg.DefaultSensorStatus.RUNNING,
                           description="Marks the MLflow run of a failed training run FAILED.")
    def mlflow_run_failure_sensor(context: dg.RunFailureSensorContext):
        marked = mark_failed_runs(settings.mlflow_tracking_uri(), context.dagster_run.run_id)
        if marked:
            context.log.info(f"marked MLflow run(s) {marked} FAILED")

    return mlflow_run_failure_sensor

"""MLflow tracking and registry as one Dagster resource, injected into every asset, check, sensor
and tool that talks to MLflow: one place decides where the stores are.

Nothing here touches MLflow's process-global state (`mlflow.set_tracking_uri`, the fluent active
run, `mlflow.get_registry_uri()`): every call goes through an `MlflowClient` built from this
resource's URIs, so two resources pointing at two stores can live in one process and a process
without MLFLOW_TRACKING_URI never falls back to a stray `./mlflow.db`.

dagster-mlflow's `mlflow_tracking` resource cannot be used that way: its `MlFlow.__init__` calls
`mlflow.set_tracking_uri`, `mlflow.set_experiment` and `mlflow.start_run` (all global), may
`os.environ.update` its config, and its `end_mlflow_on_run_finished` hook ends the *global*
active run when the topologically last op succeeds (dagster#21872). What still fits is kept: its
run-finding convention (one MLflow run per Dagster run, found by the `dagster_run_id` tag) and its
parameter chunking (`MlFlow.chunks`, see ml_assets.mlflow.tracking).

The run lifecycle: each training step resumes the Dagster run's MLflow run (or starts it) and
closes it with the step's own outcome; `mlflow_run_failure_sensor` marks it FAILED when the
Dagster run fails anywhere. One Dagster run = one MLflow run, with the right final status.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
from mlflow.entities import RunStatus
from mlflow.tracking import MlflowClient
from pydantic import Field

from ml_assets import settings
from ml_assets.mlflow.registry import LoadedModel, load_version
from ml_assets.mlflow.tracking import TrackedRun

DAGSTER_RUN_TAG = "dagster_run_id"


def _ensure_local_store(uri: str) -> None:
    """SQLite creates the database file but not its directory."""
    if uri.startswith("sqlite:///"):
        Path(uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)


def ensure_experiment(tracking_uri: str, name: str, artifact_location: str | None) -> str:
    """The experiment's id, created with an explicit artifact location when new (left to MLflow, a
    SQLite-backed store puts artifacts in `./mlruns` of whatever the cwd is)."""
    _ensure_local_store(tracking_uri)
    client = MlflowClient(tracking_uri)
    experiment = client.get_experiment_by_name(name)
    return experiment.experiment_id if experiment else client.create_experiment(name, artifact_location)


class MlflowResource(dg.ConfigurableResource):
    """MLflow tracking + model registry. Every field left empty is resolved from ml_assets.settings
    when used (MLFLOW_TRACKING_URI / MLFLOW_REGISTRY_URI, else the project's data/mlflow store);
    give a secret-bearing URI as `dg.EnvVar("…")` so it never lands in the run config."""

    tracking_uri: str | None = Field(default=None, description="MLflow tracking URI (default: the platform's)")
    registry_uri: str | None = Field(default=None, description="model registry URI (default: the tracking store)")
    experiment_name: str = Field(default="ml_assets", description="experiment of the training runs")
    artifact_location: str | None = Field(
        default=None, description="where a new experiment stores artifacts (default: data/mlflow/artifacts)")

    def get_tracking_uri(self) -> str:
        return self.tracking_uri or settings.mlflow_tracking_uri()

    def get_registry_uri(self) -> str:
        return self.registry_uri or settings.mlflow_registry_uri(self.tracking_uri)

    def client(self) -> MlflowClient:
        """An explicit client for this resource's stores (tracking and registry)."""
        tracking, registry = self.get_tracking_uri(), self.get_registry_uri()
        _ensure_local_store(tracking)
        _ensure_local_store(registry)
        return MlflowClient(tracking, registry)

    def experiment_id(self, name: str | None = None) -> str:
        return ensure_experiment(self.get_tracking_uri(), name or self.experiment_name,
                                 self.artifact_location or settings.mlflow_artifact_location(self.get_tracking_uri()))

    def load_version(self, name: str, version: str) -> LoadedModel:
        """A registered version, downloaded through this resource's registry."""
        return load_version(name, version, self.get_tracking_uri(), self.get_registry_uri())

    def problem_experiment(self, problem: str) -> str:
        """One experiment per problem, under this resource's experiment name: `ml_assets/loans`."""
        return f"{self.experiment_name}/{problem}"

    def find_run(self, dagster_run_id: str, experiment: str | None = None) -> str | None:
        """The MLflow run of a Dagster run (dagster-mlflow's convention: the `dagster_run_id` tag)."""
        client = self.client()
        runs = client.search_runs([self.experiment_id(experiment)], filter_string=f"tags.{DAGSTER_RUN_TAG} = '{dagster_run_id}'",
                                  max_results=1, order_by=["attributes.start_time ASC"])
        return runs[0].info.run_id if runs else None

    @contextmanager
    def training_run(self, dagster_run_id: str, run_name: str, problem: str | None = None) -> Iterator[TrackedRun]:
        """The Dagster run's MLflow run (in the problem's experiment), resumed (a later step) or
        started (the first), closed with this step's outcome: FINISHED, FAILED, or KILLED on an interrupt."""
        client = self.client()
        experiment = self.problem_experiment(problem) if problem else None
        run_id = self.find_run(dagster_run_id, experiment)
        if run_id is None:
            run_id = client.create_run(self.experiment_id(experiment), run_name=run_name,
                                       tags={DAGSTER_RUN_TAG: dagster_run_id}).info.run_id
        else:
            client.update_run(run_id, status=RunStatus.to_string(RunStatus.RUNNING))
        try:
            yield TrackedRun(client, run_id)
        except BaseException as err:
            status = RunStatus.KILLED if isinstance(err, KeyboardInterrupt) else RunStatus.FAILED
            client.set_terminated(run_id, status=RunStatus.to_string(status))
            raise
        client.set_terminated(run_id, status=RunStatus.to_string(RunStatus.FINISHED))

    def mark_failed_runs(self, dagster_run_id: str, run_name: str = "", reason: str = "") -> list[str]:
        """Set every MLflow run of a failed Dagster run to FAILED (in any experiment); return their ids.
        A run that failed before any MLflow step still gets its FAILED MLflow run, with the reason, so
        every training attempt is one MLflow run."""
        client = self.client()
        runs = client.search_runs([e.experiment_id for e in client.search_experiments()],
                                  filter_string=f"tags.{DAGSTER_RUN_TAG} = '{dagster_run_id}'")
        ids = [run.info.run_id for run in runs]
        if not ids:
            ids = [client.create_run(self.experiment_id(), run_name=run_name or None,
                                     tags={DAGSTER_RUN_TAG: dagster_run_id, "failure": reason[:4000]}).info.run_id]
        for run_id in ids:
            client.set_terminated(run_id, status=RunStatus.to_string(RunStatus.FAILED))
        return ids


def default_mlflow_resource(experiment_name: str = "ml_assets") -> MlflowResource:
    return MlflowResource(experiment_name=experiment_name)


def mlflow_of(defs: dg.Definitions) -> MlflowResource:
    """The code location's MLflow resource, configured (EnvVars resolved) for use outside a run:
    the CLI, the exporter and the demo see exactly what the assets see."""
    resource = (defs.resources or {}).get("mlflow")
    return resource.process_config_and_initialize() if isinstance(resource, MlflowResource) else MlflowResource()


def user_message(error) -> str:
    """The user's exception message inside Dagster's wrapping step error (a SerializableErrorInfo)."""
    while error.cause is not None:
        error = error.cause
    return error.message.strip()


def failure_reason(context: dg.RunFailureSensorContext) -> str:
    """`<step>: <the user's error>` of the first failed step (the run's own message only lists steps)."""
    for record in context.instance.all_logs(context.dagster_run.run_id, of_type=dg.DagsterEventType.STEP_FAILURE):
        return f"{record.dagster_event.step_key}: {user_message(record.dagster_event.step_failure_data.error)}"
    return context.failure_event.message or "run failed"


def build_mlflow_failure_sensor(jobs: list) -> dg.SensorDefinition:
    """Watches only the jobs that track to MLflow, so other failures cost the tick nothing."""

    @dg.run_failure_sensor(name="mlflow_run_failure_sensor", monitored_jobs=jobs,
                           default_status=dg.DefaultSensorStatus.RUNNING,
                           description="Marks the MLflow run of a failed training run FAILED.")
    def mlflow_run_failure_sensor(context: dg.RunFailureSensorContext, mlflow: MlflowResource):
        run = context.dagster_run
        marked = mlflow.mark_failed_runs(run.run_id, run.job_name, failure_reason(context))
        if marked:
            context.log.info(f"marked MLflow run(s) {marked} FAILED")

    return mlflow_run_failure_sensor

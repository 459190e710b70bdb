"""`ML_ASSETS_PROFILE=cluster make demo`: the churn story on the `make cluster` topology, where the
cluster's own daemon does the work, as in production. This process only lands files, asks for
the first training through the webserver's GraphQL API (as the UI's Materialize button does), and
watches the Postgres-backed instance and the MLflow server:

1. ten days of history land in the S3 landing zone; the daemon's landing sensors ingest every day,
   each run in a process of its own launched from the run queue;
2. the first model is trained: the candidate families are steps on the Celery workers, the model
   goes to the MLflow server (artifacts on S3), the gate promotes it;
3. after an outage twelve late days land at once, with a new segment and a changed churn
   relationship from the second: the automation sensor scores and drift-checks each, the drift
   sensor waits for labels;
4. the labels land: the drift sensor retrains once (on Celery again) and the gate promotes v2.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

import dagster as dg
import httpx
from mlflow.tracking import MlflowClient

from ml_assets import settings
from ml_assets.mlflow.registry import CHAMPION, alias_version
from ml_assets.testing.watch import idle, runs_summary, sensor_ticks, wait_for
from ml_examples.churn.simulation import ScenarioStart, WorldConfig, write_world

MODEL = "churn_model"


def _land(staging: Path, dataset: str) -> int:
    """Copy the staged files of `dataset` into the landing zone (a folder or s3://…), one object each."""
    files = sorted((staging / dataset).glob("*"))
    for path in files:
        (settings.landing_dir() / dataset / path.name).write_bytes(path.read_bytes())
    return len(files)


def _partitions(instance: dg.DagsterInstance, *key: str) -> set[str]:
    return instance.get_materialized_partitions(dg.AssetKey(list(key)))


def _celery_workers(instance: dg.DagsterInstance, run_id: str) -> dict[str, str]:
    """step -> the Celery worker that ran it, from the run's engine events."""
    workers = {}
    for record in instance.all_logs(run_id, of_type=dg.DagsterEventType.ENGINE_EVENT):
        event = record.dagster_event
        if "Celery worker" in event.engine_event_data.metadata:
            workers[event.step_key] = event.engine_event_data.metadata["Celery worker"].value
    return workers


def _finished(instance: dg.DagsterInstance, run_id: str) -> dg.DagsterRun | None:
    run = instance.get_run_by_id(run_id)
    return run if run.is_finished else None


class Story:
    def __init__(self, instance: dg.DagsterInstance, world: WorldConfig, timeout_s: float):
        self.instance, self.world = instance, world
        self.deadline = time.time() + timeout_s
        self.registry = MlflowClient(os.environ["MLFLOW_TRACKING_URI"])

    def day(self, day: int) -> str:
        return str(self.world.day_date(day))

    def failed(self) -> str | None:
        """The first failed run, with the step and error: a story that cannot end should stop now."""
        from ml_assets.mlflow.resource import user_message  # imports dagster-mlflow (beta warnings): only when needed

        runs = self.instance.get_runs(filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.FAILURE]), limit=1)
        if not runs:
            return None
        failures = self.instance.all_logs(runs[0].run_id, of_type=dg.DagsterEventType.STEP_FAILURE)
        failure = failures[0].dagster_event if failures else None
        error = user_message(failure.step_failure_data.error) if failure else "see the run in the UI"
        return f"run {runs[0].run_id[:8]} of {runs[0].job_name} failed at {failure.step_key if failure else '?'}: {error}"

    def wait(self, condition, what: str):
        def done_or_failed():
            if failed := self.failed():
                raise RuntimeError(failed)
            return condition()

        started = time.time()
        value = wait_for(done_or_failed, what, self.deadline,
                         lambda: f"runs:\n{runs_summary(self.instance)}\n(logs: the cluster's logs/ folder)", 2.0)
        print(f"  ... {what}: {time.time() - started:.0f}s", flush=True)
        return value

    def champion(self) -> str | None:
        return alias_version(self.registry, MODEL, CHAMPION)

    def ingested(self, days: range) -> None:
        wanted = {self.day(d) for d in days}
        self.wait(lambda: wanted <= _partitions(self.instance, "churn", "features"),
                  f"the daemon ingested {len(wanted)} days")

    def train(self) -> dg.DagsterRun:
        from dagster_graphql import DagsterGraphQLClient

        url = httpx.URL(os.environ["ML_ASSETS_DAGSTER_URL"])
        run_id = DagsterGraphQLClient(url.host, port_number=url.port).submit_job_execution(
            "train_churn_job")  # the location that has it
        run = self.wait(lambda: _finished(self.instance, run_id), f"training run {run_id[:8]} (queued, launched)")
        for step, worker in sorted(_celery_workers(self.instance, run_id).items()):
            print(f"  {step:<48} on {worker}")
        return run

    def late_days(self, days: range) -> None:
        wanted = {self.day(d) for d in days}
        self.wait(lambda: wanted <= _partitions(self.instance, "churn", "drift_report"),
                  f"the automation sensor scored and drift-checked the {len(wanted)} late days")
        reports = {r.asset_materialization.partition: r.asset_materialization.metadata
                   for r in self.instance.fetch_materializations(dg.AssetKey(["churn", "drift_report"]), limit=100).records}
        for day in sorted(wanted):
            meta = reports[day]
            print(f"  {day}  drift {'YES' if meta['dataset_drift'].value else 'no ':<3} "
                  f"share {meta['drift_share'].value:.2f}")
        since = time.time()
        tick = self.wait(lambda: [t for t in sensor_ticks(self.instance, "churn_drift_retrain_sensor")
                                  if t.timestamp > since and "waiting for labels" in (t.skip_reason or "")],
                         "the drift sensor's verdict")[0]
        print(f"  drift sensor: {tick.skip_reason}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--history", type=int, default=10, help="days landed before the first training")
    parser.add_argument("--late", type=int, default=12, help="days that land at once after an outage (the drift "
                        "sensor retrains once the spec's min_labeled_days of the episode have labels: 10 for churn)")
    parser.add_argument("--rows-per-day", type=int, default=1_000)
    parser.add_argument("--timeout", type=float, default=1_800, help="seconds for the whole story")
    args = parser.parse_args(argv)
    if not os.environ.get("ML_ASSETS_DAGSTER_URL"):
        print("no cluster environment: start one with `make cluster`, then `ML_ASSETS_PROFILE=cluster make demo`",
              file=sys.stderr)
        return 2
    try:
        httpx.get(f"{os.environ['ML_ASSETS_DAGSTER_URL']}/server_info", timeout=5).raise_for_status()
    except httpx.HTTPError as err:
        print(f"the cluster's webserver does not answer at {os.environ['ML_ASSETS_DAGSTER_URL']} ({err}): "
              "is it up? `make cluster-status`, or start it with `make cluster`", file=sys.stderr)
        return 2
    last = args.history + args.late - 1
    world = WorldConfig(start_date=date.today() - timedelta(days=last + 4), rows_per_day=args.rows_per_day,
                        population=10 * args.rows_per_day, label_delay_days=1,
                        scenarios=(ScenarioStart("new_segment", args.history + 1),
                                   ScenarioStart("concept_drift", args.history + 1)))
    with tempfile.TemporaryDirectory() as tmp, dg.DagsterInstance.get() as instance:
        if ran := len(instance.get_runs(limit=1_000)):  # its world would land on top of the last one's
            print(f"this cluster has run {ran} runs already: the demo tells its story on a fresh one "
                  "(`make cluster-down && make cluster`)", file=sys.stderr)
            return 2
        staging = Path(tmp)
        write_world(world, args.history, staging / "history")
        write_world(world, last + 1, staging / "late", first_day=args.history)
        story = Story(instance, world, args.timeout)
        try:
            return _tell(story, staging, args.history, last)
        except (TimeoutError, RuntimeError) as err:
            print(f"\ncluster demo FAILED: {err}", file=sys.stderr)
            return 1
        finally:
            shutil.rmtree(staging, ignore_errors=True)


def _tell(story: Story, staging: Path, history: int, last: int) -> int:
    landing = settings.landing_dir()
    print(f"1. {_land(staging / 'history', 'customers') + _land(staging / 'history', 'labels')} files of "
          f"{history} days ({story.day(0)} .. {story.day(history - 1)}) landed in {landing}")
    story.ingested(range(history))
    print("2. first training through the webserver (GraphQL), its steps on the Celery workers:")
    first = story.train()
    if first.status != dg.DagsterRunStatus.SUCCESS or story.champion() is None:
        print(f"\ncluster demo FAILED: training run {first.run_id[:8]} {first.status.value}, "
              f"champion {story.champion()}", file=sys.stderr)
        return 1
    print(f"  {MODEL}@{CHAMPION} -> v{story.champion()}")
    print(f"3. after an outage, {last - history + 1} late days land at once ({story.day(history)} .. "
          f"{story.day(last)}), a new segment and changed churn from {story.day(history + 1)}:")
    _land(staging / "late", "customers")
    story.late_days(range(history, last + 1))
    print("4. their labels land:")
    _land(staging / "late", "labels")
    before = story.champion()
    story.wait(lambda: story.champion() not in (None, before), "the drift retrain's promotion")
    story.wait(lambda: idle(story.instance), "every run to finish")
    [retrain] = story.instance.get_runs(filters=dg.RunsFilter(tags={"ml_assets/trigger": "drift"}), limit=1)
    workers = sorted(set(_celery_workers(story.instance, retrain.run_id).values()))
    print(f"  retrain run {retrain.run_id[:8]} ({retrain.tags.get('dagster/run_key')}) on {', '.join(workers)}: "
          f"{MODEL}@{CHAMPION} v{before} -> v{story.champion()}")
    runs = story.instance.get_runs(limit=1_000)
    failed = [r for r in runs if r.status == dg.DagsterRunStatus.FAILURE]
    print(f"\n{len(runs)} runs, each launched by the daemon's run queue in a process of its own"
          f"{f'; {len(failed)} FAILED' if failed else ''}. See them: {os.environ['ML_ASSETS_DAGSTER_URL']} "
          f"(Runs, Assets, Automation); models: {os.environ.get('ML_ASSETS_MLFLOW_UI_URL', '')}/#/models/{MODEL}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())

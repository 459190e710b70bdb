"""`make demo-experiment`: one online experiment from start to decision, through Dagster.

1. three weeks of the simulated world land and are ingested; the first model becomes champion;
2. churn is switched to `experiment.promotion: experiment`: the next gated candidate becomes
   `@challenger` and an A/B experiment starts instead of a promotion;
3. a scoring service (this process, 127.0.0.1) answers each day's customers, half of them (by the
   sticky hash) with the challenger; the world gives the challenger's traffic a known effect
   (`--effect`: > 0 truly better, < 0 truly worse);
4. day by day, as the daemon would: labels arrive, the experiment sensor asks for the day's decision
   (`churn/experiment`, the sequential test) and applies it once: promote or stop.

`DAGSTER_HOME=.dagster_home_experiment make ui` afterwards shows the decisions (Assets -> churn/experiment, with the test's plot), the
runs that applied them and the sensor's ticks.
"""

import argparse
import dataclasses
import os
import sys
import threading
import time
import warnings
from datetime import date, timedelta

import dagster as dg
import httpx
import uvicorn

from ml_assets import settings
from ml_assets.definitions import build_definitions
from ml_assets.mlflow import experiments
from ml_assets.mlflow.registry import CHAMPION, alias_version
from ml_assets.mlflow.resource import mlflow_of
from ml_assets.ops.location import ensure_dagster_home
from ml_assets.serving.app import ServiceConfig, create_app
from ml_assets.testing.runner import tick_sensor
from ml_examples.churn.problem import CHURN
from ml_examples.churn.replay import Replay
from ml_examples.churn.simulation import ArmEffect, WorldConfig, write_world

QUIET = "ERROR"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--effect", type=float, default=1.0, help="the challenger arm's true effect, -1..1")
    parser.add_argument("--first-days", type=int, default=21, help="days before the experiment")
    parser.add_argument("--max-days", type=int, default=14, help="the experiment's horizon")
    parser.add_argument("--served-per-day", type=int, default=600)
    parser.add_argument("--port", type=int, default=8011, help="the demo's scoring service (127.0.0.1)")
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore", message=".*is currently in beta")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    ensure_dagster_home()
    start = date.today() - timedelta(days=args.first_days + args.max_days + 4)
    world = WorldConfig(start_date=start, rows_per_day=1_500, label_delay_days=2)
    write_world(world, args.first_days, settings.landing_dir())
    spec = CHURN.evolve(promotion="experiment", max_days=args.max_days, min_samples=400, mixture_sd=0.05,
                        search_iterations=2)
    defs = build_definitions([spec])
    name = spec.registered_model_name
    with dg.DagsterInstance.get() as instance:
        for sensor in ("customers_landing_sensor", "labels_landing_sensor"):
            tick_sensor(defs, sensor, instance, log_level=QUIET, ticks=2)
        replay = Replay(defs, instance, world, settings.landing_dir(), log_level=QUIET)
        client = mlflow_of(defs).client()
        for seed in (0, 1):  # the first model is promoted directly; the next one is what the experiment tests
            if not replay.train({"ops": {"churn__candidate_model": {"config": {"seed": seed}}}}).success:
                print(f"training (seed {seed}) failed: see `make ui` -> Runs", file=sys.stderr)
                return 1
            print(f"trained v{_latest(client, name)}: {name}@champion -> v{alias_version(client, name, CHAMPION)}")
        record = experiments.current(client, name)
        if record is None or not record.running:
            print("the second candidate did not pass the gate, so no experiment started (see `make ui`)", file=sys.stderr)
            return 1
        print(f"experiment {record.id}: challenger v{record.challenger_version} answers "
              f"{record.challenger_share:.0%} of customers, champion v{record.champion_version} the rest")
        replay.world = dataclasses.replace(world, arm_effect=ArmEffect(record.id, record.challenger_share, args.effect))
        with _service(args.port, settings.mlflow_tracking_uri()) as http:
            replay.http = http
            for day in range(args.first_days, args.first_days + args.max_days + world.label_delay_days + 2):
                replay.serve_day(day, args.served_per_day)
                replay.run_day(day)
                decision = replay.metadata("experiment").get(str(world.day_date(day)), {})
                print(f"{world.day_date(day)}  {decision.get('action', '-'):<9} {decision.get('reason', '')}")
                if not experiments.current(client, name).running:
                    break
    ended = experiments.current(client, name)
    print(f"\nexperiment {ended.status}: {ended.reason}\n{name}@champion -> v{alias_version(client, name, CHAMPION)}")
    print(f"See it in the UI: `DAGSTER_HOME={os.environ['DAGSTER_HOME']} make ui` -> Assets -> churn/experiment "
          "(each day's decision and the test's plot), Runs (the promotion or stop), Automation (the sensor's ticks).")
    return 0 if not ended.running else 1


def _latest(client, name: str) -> str:
    return max((v.version for v in client.search_model_versions(f"name = '{name}'")), key=int)


class _service:
    """The scoring service on 127.0.0.1 in a thread (the champion, the challenger, the prediction log)."""

    def __init__(self, port: int, tracking_uri: str):
        config = ServiceConfig(problem="churn", tracking_uri=tracking_uri, poll_seconds=0.5, log_roll_seconds=1)
        self.server = uvicorn.Server(uvicorn.Config(create_app(config), host="127.0.0.1", port=port,
                                                    log_level="warning"))
        self.port = port

    def __enter__(self) -> httpx.Client:
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 60
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the demo's scoring service did not start on 127.0.0.1:{self.port}")
            time.sleep(0.1)
        self.http = httpx.Client(base_url=f"http://127.0.0.1:{self.port}", timeout=60)
        deadline = time.monotonic() + 60  # it routes the experiment once it has polled the record
        while not (self.http.get("/health").json().get("experiment") or {}).get("running"):
            if time.monotonic() > deadline:
                raise RuntimeError("the demo's scoring service never picked up the experiment")
            time.sleep(0.2)
        return self.http

    def __exit__(self, *exc) -> None:
        self.http.close()
        self.server.should_exit = True
        self.thread.join(timeout=30)


if __name__ == "__main__":
    raise SystemExit(main())

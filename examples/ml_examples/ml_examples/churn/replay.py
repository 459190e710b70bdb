"""Replay a simulated world day by day through Dagster, as the daemon would run it: land the day's
files, tick the landing sensors, tick the automation conditions at the simulated "now", tick
the drift sensor, executing every run requested. `make demo` and the closed-loop tests use it."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import datetime, time, timezone
from pathlib import Path
from time import monotonic, sleep

import dagster as dg

from ml_assets import settings
from ml_assets.automation.sensors import latest_by_partition
from ml_assets.mlflow.registry import CHAMPION, alias_version
from ml_assets.mlflow.resource import mlflow_of
from ml_assets.ops.location import location_problems
from ml_assets.serving.predlog import read_log
from ml_assets.serving.scorer import canary_records
from ml_assets.testing.runner import console, tick_automation, tick_sensor
from ml_examples.churn.simulation import WorldConfig, simulate_day, write_world


@dataclass
class Day:
    day: int
    runs: list[dg.ExecuteInProcessResult] = field(default_factory=list)
    retrains: list[dg.ExecuteInProcessResult] = field(default_factory=list)
    sensor_said: str | None = None  # why the drift sensor did not request a retrain
    experiment: list[dg.ExecuteInProcessResult] = field(default_factory=list)  # decision and its application

    @property
    def failed(self) -> list[dg.ExecuteInProcessResult]:
        return [r for r in self.runs if not r.success]


class Replay:
    def __init__(self, defs: dg.Definitions, instance: dg.DagsterInstance, world: WorldConfig, landing: Path,
                 problem: str = "churn", log_level: str | None = None):
        self.defs, self.instance, self.world, self.landing = defs, instance, world, landing
        self.problem, self.log_level = problem, log_level
        self.automation_cursor = self.retrain_cursor = self.experiment_cursor = None
        self.landing_cursors: dict[str, str | None] = {}
        self.http = None  # an httpx client of a running scoring service: `serve_day` asks it

    def serve_day(self, day: int, rows: int, request_rows: int = 100) -> None:
        """A client asks the service about `rows` of the day's customers (as landed, minus bad rows),
        then the day's served predictions are built from its prediction log, as the nightly run does."""
        customers, _ = simulate_day(dataclasses.replace(self.world, dirty_rate=0.0), day)
        records = canary_records(customers, self.spec, rows)
        for start in range(0, len(records), request_rows):
            self.http.post("/predict", json={"records": records[start:start + request_rows]}).raise_for_status()
        stamp, root = str(self.world.day_date(day)), settings.data_dir() / "prediction_log" / self.problem
        deadline = monotonic() + 60  # the log is written behind the answers
        while True:
            log = read_log(root)
            if len(log) and (log[self.spec.data.time_column].dt.strftime("%Y-%m-%d") == stamp).sum() >= len(records):
                break
            if monotonic() > deadline:
                raise RuntimeError(f"the prediction log never showed day {stamp}'s answers")
            sleep(0.2)
        job = self.defs.resolve_implicit_global_asset_job_def()
        if not job.execute_in_process(instance=self.instance, partition_key=stamp, run_config=console(self.log_level),
                                      asset_selection=[dg.AssetKey([self.problem, "served_predictions"])]).success:
            raise RuntimeError(f"served predictions of {stamp} failed")

    def now(self, day: int) -> datetime:
        """Early on the morning after `day`: that day is the latest complete partition."""
        return datetime.combine(self.world.day_date(day + 1), time(1), tzinfo=timezone.utc)

    def run_day(self, day: int, defs: dg.Definitions | None = None) -> Day:
        defs, report = defs or self.defs, Day(day)
        write_world(self.world, day + 1, self.landing, first_day=day)
        for sensor in ("customers_landing_sensor", "labels_landing_sensor"):
            # the daemon keeps each sensor's cursor: only the day's new files are new to it
            results, self.landing_cursors[sensor], _ = tick_sensor(
                defs, sensor, self.instance, self.landing_cursors.get(sensor), log_level=self.log_level, ticks=2)
            report.runs += results
        results, self.automation_cursor = tick_automation(defs, self.instance, self.now(day), self.automation_cursor,
                                                          self.log_level)
        report.runs += results
        report.retrains, self.retrain_cursor, skipped = tick_sensor(
            defs, f"{self.problem}_drift_retrain_sensor", self.instance, self.retrain_cursor, self.log_level)
        report.runs += report.retrains
        report.sensor_said = skipped[0] if skipped else None
        # an online experiment's day: its decision, then (next tick) the decision applied, once
        report.experiment, self.experiment_cursor, _ = tick_sensor(
            defs, f"{self.problem}_experiment_sensor", self.instance, self.experiment_cursor, self.log_level, ticks=2)
        report.runs += report.experiment
        return report

    def train(self, run_config: dict | None = None) -> dg.ExecuteInProcessResult:
        job = self.defs.resolve_job_def(f"train_{self.problem}_job")
        return job.execute_in_process(instance=self.instance, raise_on_error=False,
                                      run_config={**(run_config or {}), **console(self.log_level)})

    @property
    def spec(self):
        return next(p for p in location_problems(self.defs) if p.name == self.problem)

    def champion(self) -> str | None:
        return alias_version(mlflow_of(self.defs).client(), self.spec.registered_model_name, CHAMPION)

    def metadata(self, asset: str) -> dict[str, dict]:
        """partition -> metadata of its latest materialization."""
        return latest_by_partition(self.instance, [self.problem, asset], limit=500)

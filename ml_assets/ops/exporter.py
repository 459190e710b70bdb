"""Pipeline metrics for Prometheus, read on each scrape from the Dagster instance (materialization
metadata, check results, run records) and the MLflow registry: nothing is computed here, so a
scrape costs a few indexed queries. The scoring service exports its own metrics on /metrics;
`ml-assets exporter` serves these next to it (deploy/prometheus/prometheus.yml scrapes both)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from statistics import median

import dagster as dg
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector, CollectorRegistry

from ml_assets.assets.deployment import latest_check_evaluations
from ml_assets.automation.sensors import latest_by_partition
from ml_assets.mlflow.registry import CHAMPION, alias_version
from ml_assets.mlflow.resource import MlflowResource, mlflow_of
from ml_assets.problem.spec import ProblemSpec


def _latest_metadata(instance: dg.DagsterInstance, key: list[str]) -> tuple[str | None, dict]:
    latest = latest_by_partition(instance, key, limit=40)
    if not latest:
        return None, {}
    day = max(latest)
    return day, latest[day]


TRAINING_STEPS = ("candidate_model", "evaluation")  # the steps that record their usage (`step_*` metadata)
MEDIAN_OF, MEDIAN_MIN = 10, 3  # the recent median: of up to 10 earlier trainings, once there are 3


def step_usage(instance: dg.DagsterInstance, key: list[str]) -> tuple[dict, float | None]:
    """The latest materialization's `step_*` metadata, and the median duration of the earlier ones
    (None until there are enough to call it usual)."""
    records = instance.fetch_materializations(dg.AssetKey(key), limit=MEDIAN_OF + 1).records  # newest first
    usage = [{k: v.value for k, v in r.asset_materialization.metadata.items() if k.startswith("step_")}
             for r in records if r.asset_materialization]
    usage = [u for u in usage if "step_seconds" in u]
    if not usage:
        return {}, None
    earlier = [u["step_seconds"] for u in usage[1:]]
    return usage[0], median(earlier) if len(earlier) >= MEDIAN_MIN else None


class PipelineCollector(Collector):
    def __init__(self, problems: Iterable[ProblemSpec], jobs: Iterable[str], checks: Iterable[dg.AssetCheckKey],
                 instance: Callable[[], dg.DagsterInstance] = dg.DagsterInstance.get,
                 mlflow: MlflowResource | None = None):
        self.problems, self.jobs, self.instance = tuple(problems), tuple(jobs), instance
        self.mlflow = mlflow or MlflowResource()
        self.checks = tuple(checks)  # the Definitions' checks: what each problem's gate consists of

    def collect(self):
        g = {name: GaugeMetricFamily(f"ml_assets_{name}", doc, labels=labels) for name, doc, labels in (
            ("drift_share", "Share of drifted features on the latest monitored day", ["problem"]),
            ("dataset_drift", "1 when the latest day's drift share reached the threshold", ["problem"]),
            ("feature_drift_statistic", "Per-feature drift statistic (p-value or distance, see `test`)",
             ["problem", "feature", "test"]),
            ("feature_drifted", "1 when the feature drifted on the latest monitored day", ["problem", "feature"]),
            ("realized_metric", "Realized model metric on the latest labeled day", ["problem", "metric"]),
            ("baseline_metric", "The serving version's evaluation metric", ["problem", "metric"]),
            ("performance_drop", "1 when realized performance fell below baseline - tolerance", ["problem"]),
            ("last_successful_training_timestamp_seconds", "When a candidate was last trained and registered",
             ["problem"]),
            ("champion_version", "Registry version behind the champion alias", ["problem"]),
            ("gate_check_passed", "Latest result of each blocking gate check (1 passed, 0 failed)",
             ["problem", "check"]),
            ("training_step_seconds", "Wall-clock seconds of the latest training's step", ["problem", "step"]),
            ("training_step_cpu_seconds", "CPU seconds of the latest training's step (worker processes included)",
             ["problem", "step"]),
            ("training_step_peak_memory_bytes", "Peak resident memory of the latest training's step",
             ["problem", "step"]),
            ("training_step_median_seconds", (f"Median wall-clock seconds of the step over the {MEDIAN_OF} trainings "
             f"before the latest (once there are {MEDIAN_MIN})"), ["problem", "step"]))}
        failures = CounterMetricFamily("ml_assets_run_failures", "Failed Dagster runs by job", labels=["job"])
        with self.instance() as instance:
            for spec in self.problems:
                self._problem(instance, spec, g)
            for job in self.jobs:
                failures.add_metric([job], instance.get_runs_count(dg.RunsFilter(
                    job_name=job, statuses=[dg.DagsterRunStatus.FAILURE])))
        yield from g.values()
        yield failures

    def _problem(self, instance: dg.DagsterInstance, spec: ProblemSpec, g: dict) -> None:
        p, metric = spec.name, spec.primary_metric_name  # the evaluation's name (realized_<name>)
        version = alias_version(self.mlflow.client(), spec.registered_model_name, CHAMPION)
        if version is not None:
            g["champion_version"].add_metric([p], float(version))
        trained = instance.get_latest_materialization_event(dg.AssetKey([p, "candidate_model"]))
        if trained is not None:
            g["last_successful_training_timestamp_seconds"].add_metric([p], trained.timestamp)
        gate = [key for key in self.checks if key.asset_key.path[0] == p]  # checks on the problem's own assets
        for key, evaluation in latest_check_evaluations(instance, gate).items():
            if evaluation is not None:
                g["gate_check_passed"].add_metric([p, key.name], float(evaluation.passed))
        self._training_usage(instance, p, g)
        if spec.data.inputs is None:
            return
        _, drift = _latest_metadata(instance, [p, "drift_report"])
        if drift:
            g["drift_share"].add_metric([p], float(drift["drift_share"]))
            g["dataset_drift"].add_metric([p], float(drift["dataset_drift"]))
            for feature, column in (drift.get("columns") or {}).items():
                statistic = column["statistic"]
                if statistic is not None and statistic == statistic:
                    g["feature_drift_statistic"].add_metric([p, feature, column["test"]], float(statistic))
                g["feature_drifted"].add_metric([p, feature], float(column["drifted"]))
        _, performance = _latest_metadata(instance, [p, "performance"])
        if f"realized_{metric}" in performance:
            g["realized_metric"].add_metric([p, metric], float(performance[f"realized_{metric}"]))
            g["baseline_metric"].add_metric([p, metric], float(performance[f"baseline_{metric}"]))
        if performance:
            g["performance_drop"].add_metric([p], float(bool(performance.get("performance_drop"))))


    @staticmethod
    def _training_usage(instance: dg.DagsterInstance, p: str, g: dict) -> None:
        for step in TRAINING_STEPS:
            latest, usual = step_usage(instance, [p, step])
            if latest:
                g["training_step_seconds"].add_metric([p, step], float(latest["step_seconds"]))
                g["training_step_cpu_seconds"].add_metric([p, step], float(latest["step_cpu_seconds"]))
                g["training_step_peak_memory_bytes"].add_metric([p, step], latest["step_peak_memory_mb"] * 2**20)
            if usual is not None:
                g["training_step_median_seconds"].add_metric([p, step], float(usual))


class ServedCollector(Collector):
    """Served traffic next to the batch figures above: rows the service answered, their realized
    metric once labels arrived, and their skew against the answering model's reference profile."""

    def __init__(self, problems: Iterable[ProblemSpec],
                 instance: Callable[[], dg.DagsterInstance] = dg.DagsterInstance.get):
        self.problems, self.instance = tuple(p for p in problems if p.data.inputs is not None), instance

    def collect(self):
        g = {name: GaugeMetricFamily(f"ml_assets_served_{name}", doc, labels=labels) for name, doc, labels in (
            ("rows", "Rows the scoring service answered on the latest served day", ["problem"]),
            ("realized_metric", "Realized metric of the served answers on the latest labeled day",
             ["problem", "metric"]),
            ("drift_share", "Share of drifted features in the latest served day's requests (training/serving skew)",
             ["problem"]),
            ("dataset_drift", "1 when the latest served day's requests drifted from the reference", ["problem"]))}
        with self.instance() as instance:
            for spec in self.problems:
                _served(instance, spec, g)
        yield from g.values()


def _served(instance: dg.DagsterInstance, spec: ProblemSpec, g: dict) -> None:
    p, metric = spec.name, spec.primary_metric_name  # the evaluation's name (realized_<name>)
    _, served = _latest_metadata(instance, [p, "served_predictions"])
    if served:
        g["rows"].add_metric([p], float(served["rows_served"]))
    _, performance = _latest_metadata(instance, [p, "served_performance"])
    if f"realized_{metric}" in performance:
        g["realized_metric"].add_metric([p, metric], float(performance[f"realized_{metric}"]))
    _, drift = _latest_metadata(instance, [p, "served_drift_report"])
    if "drift_share" in drift:
        g["drift_share"].add_metric([p], float(drift["drift_share"]))
        g["dataset_drift"].add_metric([p], float(drift["dataset_drift"]))


def pipeline_registry(defs: dg.Definitions, problems: Iterable[ProblemSpec],
                      instance: Callable[[], dg.DagsterInstance] = dg.DagsterInstance.get) -> CollectorRegistry:
    """The collectors over the code location's instance and its `mlflow` resource's registry."""
    problems = tuple(problems)  # read by both collectors
    registry = CollectorRegistry()
    jobs = sorted(job.name for job in defs.resolve_all_job_defs() if not job.name.startswith("__"))
    registry.register(PipelineCollector(problems, jobs, defs.resolve_asset_graph().asset_check_keys, instance,
                                        mlflow_of(defs)))
    registry.register(ServedCollector(problems, instance))
    return registry

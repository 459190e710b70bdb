"""Alert rules and the dashboard: promtool validates and unit-tests the rules (CI installs Debian's
`prometheus` package for it), and every metric they use is one this project exports."""

import json
import re
import shutil
import subprocess
from contextlib import nullcontext
from pathlib import Path

import dagster as dg
import pytest
import yaml
from ml_examples.churn.problem import CHURN
from ml_examples.problems import example_problems

from ml_assets.core.metrics import metric_for_scorer
from ml_assets.ops.exporter import pipeline_registry
from ml_assets.problem.spec import ProblemSpec
from ml_assets.serving.metrics import ServiceMetrics

DEPLOY = Path(__file__).resolve().parents[1] / "deploy"
PROMTOOL = shutil.which("promtool")


def _promtool(*args: str) -> str:
    assert PROMTOOL, "promtool not found: `make test` installs it (Debian package `prometheus`)"
    done = subprocess.run([PROMTOOL, *args], capture_output=True, text=True, cwd=DEPLOY / "prometheus")
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_rules_and_config_are_valid():
    assert "SUCCESS: 12 rules found" in _promtool("check", "rules", "alerts.yml")
    assert "valid prometheus config" in _promtool("check", "config", "prometheus.yml")


def test_every_alert_fires_when_it_should_and_only_then():
    assert "SUCCESS" in _promtool("test", "rules", "alerts_test.yml")
    rules = (DEPLOY / "prometheus" / "alerts.yml").read_text()
    tests = (DEPLOY / "prometheus" / "alerts_test.yml").read_text()
    for alert in re.findall(r"- alert: (\w+)", rules):
        assert re.search(rf"alertname: {alert}\n\s+exp_alerts:\n\s+- exp_labels", tests), f"{alert} never fires"


def _exported_names(tmp_path, fresh_mlflow) -> set[str]:
    """Sample names the exporter and the scoring service really expose."""
    with dg.DagsterInstance.ephemeral() as instance:
        defs = dg.Definitions(jobs=[dg.define_asset_job("train_churn_job")])
        registries = [pipeline_registry(defs, (CHURN,), lambda: nullcontext(instance)), ServiceMetrics().registry]
        names = {family.name for registry in registries for family in registry.collect()}
    suffixes = ("", "_total", "_bucket", "_count", "_sum")
    return {name + suffix for name in names for suffix in suffixes}


def test_rules_and_dashboard_only_use_exported_metrics(tmp_path, fresh_mlflow):
    exported = _exported_names(tmp_path, fresh_mlflow)
    dashboard = json.loads((DEPLOY / "grafana" / "ml_assets.json").read_text())
    exprs = [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
    rules = yaml.safe_load((DEPLOY / "prometheus" / "alerts.yml").read_text())
    exprs += [rule["expr"] for group in rules["groups"] for rule in group["rules"]]
    used = set(re.findall(r"ml_assets_[a-z_0-9]+", "\n".join(exprs)))
    assert used and used <= exported, used - exported
    assert len({p["id"] for p in dashboard["panels"]}) == len(dashboard["panels"]) >= 12


def _samples(instance) -> dict:
    defs = dg.Definitions(jobs=[dg.define_asset_job("train_churn_job")])
    registry = pipeline_registry(defs, (CHURN,), lambda: nullcontext(instance))
    return {(s.name, s.labels.get("step")): s.value for family in registry.collect() for s in family.samples
            if s.name.startswith("ml_assets_training_step")}


def test_training_time_and_resources_are_exported_with_the_recent_median(fresh_mlflow):
    """Each training's step usage (materialization metadata) becomes gauges; the median of the
    trainings before the latest appears once there are 3 of them, for the slow-training rule."""
    with dg.instance_for_test() as instance:
        def trained(seconds: float) -> None:
            for step in ("candidate_model", "evaluation"):
                instance.report_runless_asset_event(dg.AssetMaterialization(["churn", step], metadata={
                    "step_seconds": seconds, "step_cpu_seconds": seconds * 1.5, "step_peak_memory_mb": 512.0}))

        assert _samples(instance) == {}
        for seconds in (10.0, 30.0, 20.0):
            trained(seconds)
        assert ("ml_assets_training_step_median_seconds", "candidate_model") not in _samples(instance)  # 2 earlier
        trained(95.0)
        samples = _samples(instance)
        assert samples[("ml_assets_training_step_seconds", "candidate_model")] == 95.0
        assert samples[("ml_assets_training_step_cpu_seconds", "evaluation")] == 142.5
        assert samples[("ml_assets_training_step_peak_memory_bytes", "candidate_model")] == 512 * 2**20
        assert samples[("ml_assets_training_step_median_seconds", "candidate_model")] == 20.0  # of 10, 30, 20


def _alert_exprs(rules: dict, alert: str) -> list[str]:
    return [" ".join(rule["expr"].split()) for group in rules["groups"] for rule in group["rules"]
            if rule.get("alert") == alert]


def _expected(spec: ProblemSpec) -> dict[str, str]:
    """The rules a landed problem's spec implies (error metrics: floor -70 on neg_rmse is rmse > 70)."""
    metric, p = metric_for_scorer(spec.task, spec.training.primary_metric), spec.name
    below = f"< {spec.gate.metric_floor:g}" if metric.greater_is_better else f"> {-spec.gate.metric_floor:g}"
    return {"ModelMetricBelowFloor": f'ml_assets_realized_metric{{problem="{p}", metric="{metric.name}"}} {below}',
            "DataDriftHigh": f'ml_assets_drift_share{{problem="{p}"}} >= {spec.monitoring.drift_share:g}'}


def spec_mismatches(rules: dict, problems) -> list[str]:
    """Every way alerts.yml disagrees with the landed problems' specs (empty: they agree)."""
    landed = [p for p in problems if p.data.inputs is not None]
    wrong = []
    for alert in ("ModelMetricBelowFloor", "DataDriftHigh"):
        have, want = _alert_exprs(rules, alert), [_expected(p)[alert] for p in landed]
        wrong += [f"{alert}: missing `{w}`" for w in want if w not in have]
        wrong += [f"{alert}: `{h}` matches no landed problem's spec" for h in have if h not in want]
    budgets = {p.gate.latency_budget_ms for p in landed}
    latency = _alert_exprs(rules, "ServingLatencyP99High")
    if len(budgets) != 1 or not latency or not all(e.endswith(f"> {min(budgets) / 1000:g}") for e in latency):
        wrong.append(f"ServingLatencyP99High: {latency} vs latency_budget_ms of the landed problems")
    return wrong


def test_alert_thresholds_are_the_landed_problems_spec_values():
    rules = yaml.safe_load((DEPLOY / "prometheus" / "alerts.yml").read_text())
    assert spec_mismatches(rules, example_problems()) == []


@pytest.mark.parametrize("change, wrong", [
    ({"metric_floor": 0.8}, ('ModelMetricBelowFloor: missing `ml_assets_realized_metric{problem="churn", '
                            'metric="roc_auc"} < 0.8`')),
    ({"primary_metric": "average_precision"}, 'metric="pr_auc"} < 0.75`'),
    ({"drift_share": 0.5}, 'DataDriftHigh: missing `ml_assets_drift_share{problem="churn"} >= 0.5`'),
    ({"latency_budget_ms": 80.0}, "ServingLatencyP99High"),
])
def test_a_spec_change_without_its_rule_fails_the_check(change, wrong):
    rules = yaml.safe_load((DEPLOY / "prometheus" / "alerts.yml").read_text())
    assert any(wrong in line for line in spec_mismatches(rules, (CHURN.evolve(**change),)))


def test_an_error_metric_floor_alerts_above_its_negation():
    spec = CHURN.evolve(task="regression", primary_metric="neg_root_mean_squared_error", metric_floor=-70.0)
    assert _expected(spec)["ModelMetricBelowFloor"] == 'ml_assets_realized_metric{problem="churn", metric="rmse"} > 70'

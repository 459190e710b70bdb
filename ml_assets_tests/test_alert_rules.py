"""Alert rules and the dashboard: promtool validates and unit-tests the rules (CI installs Debian's
`prometheus` package for it), and every metric they use is one this project exports."""

import json
import re
import shutil
import subprocess
from contextlib import nullcontext
from pathlib import Path

import dagster as dg
import yaml

from ml_assets.exporter import pipeline_registry
from ml_assets.problems.churn import CHURN
from ml_assets.serving.metrics import ServiceMetrics

DEPLOY = Path(__file__).resolve().parents[1] / "deploy"
PROMTOOL = shutil.which("promtool")


def _promtool(*args: str) -> str:
    assert PROMTOOL, "promtool not found: `make test` installs it (Debian package `prometheus`)"
    done = subprocess.run([PROMTOOL, *args], capture_output=True, text=True, cwd=DEPLOY / "prometheus")
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_rules_and_config_are_valid():
    assert "SUCCESS: 10 rules found" in _promtool("check", "rules", "alerts.yml")
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

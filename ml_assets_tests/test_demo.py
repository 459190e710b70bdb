"""`make demo` in miniature: simulate, then ingest through sensor requests on an on-disk instance.
(The training half of the demo is the train_churn_job, covered in test_models.py.)"""

import uuid
from pathlib import Path
from types import SimpleNamespace

import dagster as dg
import pytest
from ml_examples.churn import demo
from ml_examples.churn.story import failed_checks, run_failure

from ml_assets.mlflow import experiments
from ml_assets.ops.location import ensure_dagster_home

ROOT = Path(__file__).resolve().parents[1]


def test_demo_ingests_every_day_then_nothing_twice(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("ML_ASSETS_HOME", str(tmp_path))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / ".dagster_home"))
    (tmp_path / "deploy").mkdir()
    (tmp_path / "deploy" / "dagster.yaml").write_text((ROOT / "deploy" / "dagster.yaml").read_text())
    assert demo.main(["--days", "9", "--rows-per-day", "100", "--no-train"]) == 0
    out = capsys.readouterr().out
    assert "customers_landing_sensor: 9 run(s) launched" in out
    assert "labels_landing_sensor: 6 run(s) launched" in out  # the demo's labels land 3 days late
    assert out.count("validated_customers") == 9 and "FAILED" not in out
    assert (tmp_path / ".dagster_home" / "dagster.yaml").exists()
    assert demo.main(["--days", "9", "--rows-per-day", "100", "--no-train"]) == 0
    assert "customers_landing_sensor: 0 run(s) launched" in capsys.readouterr().out


def _project(tmp_path, monkeypatch):
    """A project home with nothing of MLflow's configuration exported (its store: data/mlflow)."""
    monkeypatch.setenv("ML_ASSETS_HOME", str(tmp_path))
    for variable in ("DAGSTER_HOME", "ML_ASSETS_DATA_DIR", "MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI",
                     "ML_ASSETS_MLFLOW_ARTIFACTS"):
        monkeypatch.delenv(variable, raising=False)
    (tmp_path / "deploy").mkdir()
    (tmp_path / "deploy" / "dagster.yaml").write_text((ROOT / "deploy" / "dagster.yaml").read_text())


def test_the_dagster_home_is_recorded_in_the_projects_env_file(tmp_path, monkeypatch):
    """The `dagster` CLI loads `.env` from its working directory: the README's commands then find
    the demo's instance with nothing exported (see test_deployment.py)."""
    _project(tmp_path, monkeypatch)
    (tmp_path / ".env").write_text("ML_ASSETS_ALERT_WEBHOOK=http://127.0.0.1:9/hook\n")
    assert ensure_dagster_home() == str(tmp_path / ".dagster_home")
    monkeypatch.delenv("DAGSTER_HOME")
    ensure_dagster_home()  # again: recorded once, the user's own lines kept
    assert (tmp_path / ".env").read_text().splitlines() == [
        "ML_ASSETS_ALERT_WEBHOOK=http://127.0.0.1:9/hook", f"DAGSTER_HOME={tmp_path / '.dagster_home'}"]
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "elsewhere"))  # the user's own choice is not recorded
    (tmp_path / ".env").unlink()
    ensure_dagster_home()
    assert not (tmp_path / ".env").exists()


def test_a_demo_whose_first_training_fails_the_gate_exits_non_zero_with_the_reason(tmp_path, monkeypatch, capsys):
    _project(tmp_path, monkeypatch)
    code = demo.main(["--days", "12", "--first-training", "11", "--rows-per-day", "200", "--search-iterations", "1",
                      "--metric-floor", "0.999"])
    err = capsys.readouterr().err
    assert code == 1, err
    assert "demo FAILED (1 problem(s)):" in err
    [reason] = [line for line in err.splitlines() if line.startswith("  - ")]
    assert reason.startswith("  - no champion after the first training: gate metric_floor: roc_auc ")
    assert reason.endswith("< floor 0.999")
    assert (tmp_path / "data" / "mlflow" / "mlflow.db").exists() and not (tmp_path / "mlflow.db").exists()


def test_failed_runs_and_checks_are_reported_in_one_line_each():
    @dg.asset
    def scored() -> int:
        return 1

    @dg.asset_check(asset=scored, blocking=True)
    def floor() -> dg.AssetCheckResult:
        return dg.AssetCheckResult(passed=False, description="auc 0.61\n< floor 0.75")

    @dg.asset
    def broken() -> None:
        raise ValueError("the file is empty:\n  land it again")

    checked = dg.materialize([scored, floor], raise_on_error=False)
    assert failed_checks(checked) == ["gate floor: auc 0.61 < floor 0.75"]
    failed = dg.materialize([broken], raise_on_error=False)
    assert run_failure(failed, "2026-01-05") == \
        f"2026-01-05 run {failed.run_id[:8]} failed at broken: ValueError: the file is empty: land it again"
    assert run_failure(dg.materialize([scored]), "ok") is None


@pytest.mark.slow
def test_demo_experiment_runs_one_experiment_to_its_decision(tmp_path, monkeypatch, capsys):
    """`make demo-experiment` in miniature: the known-better challenger is promoted by the experiment."""
    from ml_examples.churn import experiment_demo

    from ml_assets_tests.serving.conftest import free_port

    _project(tmp_path, monkeypatch)
    (tmp_path / "data" / "mlflow").mkdir(parents=True)
    # The arms are a hash of the experiment's id, new (random) in every run: each run then samples
    # other customers, and one in CI reached no decision within the 8 days. With the id fixed the
    # run is the same every time (promoted on day 5 of 8); how often the sequential test decides
    # rightly over many samples is tested in core/test_experiments.py and BENCHMARKS.md.
    monkeypatch.setattr(experiments, "uuid", SimpleNamespace(uuid4=lambda: uuid.UUID(int=7)))
    assert experiment_demo.main(["--first-days", "14", "--max-days", "8", "--served-per-day", "400",
                                 "--port", str(free_port())]) == 0
    out = capsys.readouterr().out
    assert "trained v2: churn_model@champion -> v1" in out and "answers 50% of customers" in out
    assert "experiment promoted: the challenger's loss is lower" in out and "churn_model@champion -> v2" in out

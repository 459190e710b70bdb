"""A user's own project outside ml_assets (ml_assets_tests/user_project): a landed problem with its
own datasets and names (loan applications, outcomes two days late, PR AUC) and a static regression,
declared with the Component in the project's defs.yaml and loaded through its own workspace.

The landed problem goes ingestion -> features -> training -> gate (with the canary in a fresh
process) -> champion -> predictions -> drift -> realized performance -> a retrain-sensor decision,
and `ml-assets serve --problem loans` answers over HTTP; the static one trains to champion."""

import os
import shutil
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from datetime import time as clock
from pathlib import Path

import dagster as dg
import httpx
import pytest

from ml_assets.mlflow.registry import CHAMPION, alias_version, client
from ml_assets.testing.runner import tick_automation, tick_sensor
from ml_assets_tests.conftest import _environ, project_env
from ml_assets_tests.serving.conftest import free_port

SOURCE = Path(__file__).parent / "user_project"
BIN = Path(sys.executable).parent
DRIFT_FROM, DAYS = 12, 15
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def project(tmp_path_factory, mlflow_template):
    """The user's project copied to its own folder, importable as their installed package would be."""
    root = tmp_path_factory.mktemp("user") / "project"
    shutil.copytree(SOURCE, root)
    sys.path.insert(0, str(root))
    try:
        with project_env(root, mlflow_template), _environ({"PYTHONPATH": str(root)}):
            yield root
    finally:
        sys.path.remove(str(root))
        for name in [m for m in sys.modules if m.startswith("loans_project")]:
            del sys.modules[name]


def test_the_users_workspace_loads_their_code_location(project):
    done = subprocess.run([str(BIN / "dagster"), "definitions", "validate", "-w", "workspace.yaml"], cwd=project,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "loans_project" in done.stdout + done.stderr


def test_dg_sees_the_component_and_checks_the_users_yaml(project):
    components = subprocess.run([str(BIN / "dg"), "list", "components"], cwd=project, capture_output=True, text=True,
                                timeout=300)
    assert components.returncode == 0 and "ml_assets.components.MLProblems" in components.stdout, components.stderr
    check = subprocess.run([str(BIN / "dg"), "check", "yaml"], cwd=project, capture_output=True, text=True,
                           timeout=300)
    assert check.returncode == 0 and "validated successfully" in check.stdout + check.stderr, check.stderr[-2000:]
    yaml = project / "loans_project" / "defs" / "problems" / "defs.yaml"
    original = yaml.read_text()
    yaml.write_text(original.replace("spec: loans_project.problems:houses", "spec: loans_project.problems:houses\n"
                                     "      gate_settings: {metric_floor: 1}"))
    try:  # a key the Component does not have is caught before anything loads
        bad = subprocess.run([str(BIN / "dg"), "check", "yaml"], cwd=project, capture_output=True, text=True,
                             timeout=300)
    finally:
        yaml.write_text(original)
    assert bad.returncode != 0 and "gate_settings" in bad.stdout + bad.stderr


def test_a_landed_problem_of_the_users_own_runs_the_whole_loop(project):
    from loans_project import world
    from loans_project.definitions import defs as location

    defs = location()
    landing = project / "data" / "landing"
    with dg.DagsterInstance.get() as instance:
        for day in range(DRIFT_FROM):
            world.land(landing, day, DRIFT_FROM)
        for sensor in ("applications_landing_sensor", "outcomes_landing_sensor"):
            runs = tick_sensor(defs, sensor, instance, ticks=2)[0]
            assert runs and all(r.success for r in runs)
        train = defs.resolve_job_def("train_loans_job").execute_in_process(instance=instance, raise_on_error=False)
        assert train.success, [e.message for e in train.all_events if e.is_failure]
        checks = {e.event_specific_data.check_name: e.event_specific_data for e in train.all_events
                  if e.event_type_value == "ASSET_CHECK_EVALUATION"}
        assert all(c.passed for c in checks.values()) and "fresh process" in checks["servable"].description
        assert alias_version(client(), "loans_model", CHAMPION) == "1"
        candidate = train.output_for_node("loans__candidate_model")
        assert candidate["best_candidate"] == "logistic_regression"  # defs.yaml picked that family alone
        experiment = client().get_experiment_by_name("ml_assets/loans")  # one experiment per problem
        folds = [(run.data.params[f"fold{i}.fit_days"], run.data.params[f"fold{i}.validation_days"])
                 for run in client().search_runs([experiment.experiment_id]) for i in range(2)
                 if f"fold{i}.fit_days" in run.data.params]
        assert folds and all(fit.split("..")[1] < valid.split("..")[0] for fit, valid in folds)  # time-ordered CV

        # the daemon's automation sensor ticks all along; its first tick only records what exists
        _, cursor = tick_automation(defs, instance, _morning_after(DRIFT_FROM - 1))
        for day in range(DRIFT_FROM, DAYS):  # days land one at a time; automation follows each
            world.land(landing, day, DRIFT_FROM)
            for sensor in ("applications_landing_sensor", "outcomes_landing_sensor"):
                assert all(r.success for r in tick_sensor(defs, sensor, instance, ticks=2)[0])
            results, cursor = tick_automation(defs, instance, _morning_after(day), cursor)
            assert all(r.success for r in results)
        last = str(world.START + timedelta(days=DAYS - 1))
        drift = _latest(instance, ["loans", "drift_report"], last)
        assert drift["dataset_drift"] is True and drift["drift_share"] >= 0.3
        assert _latest(instance, ["loans", "predictions"], last)["dagster/row_count"] == world.ROWS
        labelled = str(world.START + timedelta(days=DAYS - 1 - world.LABEL_DELAY))
        assert 0 < _latest(instance, ["loans", "performance"], labelled)["realized_pr_auc"] <= 1
        _, _, said = tick_sensor(defs, "loans_drift_retrain_sensor", instance)
        assert said and "drift episode since" in said[0] and "waiting for labels" in said[0], said


def test_a_static_problem_of_the_users_own_trains_to_champion(project):
    from loans_project.definitions import defs as location

    with dg.DagsterInstance.get() as instance:
        result = location().resolve_job_def("train_houses_job").execute_in_process(instance=instance)
    assert result.success
    assert alias_version(client(), "houses_model", CHAMPION) == "1"


def test_the_service_serves_the_users_problem_by_name(project):
    """`ml-assets serve --problem loans`: the problem is imported by the reference the version records."""
    from loans_project import world

    port = free_port()
    service = subprocess.Popen([str(BIN / "ml-assets"), "serve", "--problem", "loans", "--port", str(port)],
                               cwd=project, env=os.environ.copy(), stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, start_new_session=True)
    try:
        record = world.applications(DAYS, drift=False)[0].iloc[0].to_dict()
        deadline = time.monotonic() + 120
        while True:
            assert service.poll() is None, service.stderr.read().decode()[-3000:]
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the service never became healthy"
            time.sleep(0.5)
        answer = httpx.post(f"http://127.0.0.1:{port}/predict", json=record, timeout=10)
        assert answer.status_code == 200, answer.text
        assert answer.json()["model_version"] == "1" and 0 <= answer.json()["score"] <= 1
        bad = httpx.post(f"http://127.0.0.1:{port}/predict", json={**record, "term_months": 7}, timeout=10)
        assert bad.status_code == 422 and "term_months" in bad.text  # the user's contract, not churn's
    finally:
        os.killpg(service.pid, 15)
        service.wait(timeout=60)
    status = subprocess.run([str(BIN / "ml-assets"), "status", "--problem", "loans"], cwd=project,
                            capture_output=True, text=True, timeout=300)
    assert status.returncode == 0 and "loans_model@champion: v1" in status.stdout, status.stderr[-2000:]


def _morning_after(day: int) -> datetime:
    from loans_project import world

    return datetime.combine(world.START + timedelta(days=day + 1), clock(1), tzinfo=timezone.utc)


def _latest(instance: dg.DagsterInstance, key: list[str], partition: str) -> dict:
    from ml_assets.automation.sensors import latest_by_partition

    metadata = latest_by_partition(instance, key, limit=100)[partition]
    return {k: getattr(v, "value", v) for k, v in metadata.items()}
